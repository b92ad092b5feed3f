//! The "given" side: an [`App`] on the in-memory store with a fixed clock, sequential ids and
//! seeded entropy, bootstrapped, plus helpers to create orgs, users and callers with roles
//! through the public API, and to read what was recorded.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use passlink_core::app::{App, AppConfig, Caller, Deps, NewHuman, NewMachine};
use passlink_core::error::{Error, Kind};
use passlink_core::event::{AggregateKind, Event, HumanProfile, MachineProfile, Recorded};
use passlink_core::jwt::{SigningKey, TokenKeys};
use passlink_core::keys::ServerKeys;
use passlink_core::passkey::Ceremony;
use passlink_core::ports::{FixedClock, SeededEntropy, SequentialIds};
use passlink_core::secret::Secret;
use passlink_core::store::{Commit, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::{Change, Scope, UserView};
use passlink_store_memory::MemoryStore;

/// The external URL: issuer, default WebAuthn relying party and origin.
pub const EXTERNAL: &str = "http://localhost:8080";
/// The start of every test's clock.
pub const T0: Timestamp = Timestamp::from_unix_secs(1_800_000_000);
pub const ADMIN_TOKEN: &str = "bootstrap-admin-token";

pub struct World {
    pub app: App,
    pub store: MemoryStore,
    pub clock: Arc<FixedClock>,
    /// The bootstrap admin (IAM_OWNER), its org (the default org) and the instance.
    pub admin: Caller,
    pub admin_id: String,
    pub default_org: String,
    pub instance_id: String,
    n: std::sync::atomic::AtomicU32,
}

/// One RSA signing key for the whole test binary (generating one takes a while).
fn signing_key() -> SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(&SeededEntropy::new(99), "sig-1".into(), T0).expect("signing key")
    })
    .clone()
}

pub struct Options {
    pub delivery_enabled: bool,
    /// The events webhook is configured: the store writes notifications with the events.
    pub events: bool,
    pub signing: bool,
    pub cfg: AppConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            delivery_enabled: true,
            events: false,
            signing: false,
            cfg: AppConfig { issuer: EXTERNAL.into(), ..AppConfig::default() },
        }
    }
}

impl World {
    /// A bootstrapped world with delivery configured.
    pub async fn new() -> World {
        World::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> World {
        let (app, store, clock) = app(opts);
        let boot =
            app.bootstrap("passlink", Secret::new(ADMIN_TOKEN)).await.unwrap().expect("first bootstrap");
        let p = app.authenticate(Some(&format!("Bearer {ADMIN_TOKEN}"))).await.unwrap();
        let admin = app.caller(p, None);
        World {
            app,
            store,
            clock,
            admin,
            admin_id: boot.admin_user_id,
            default_org: boot.org_id,
            instance_id: boot.instance_id,
            n: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    }

    /// Move the clock forward.
    pub fn advance(&self, d: Duration) {
        self.clock.set(self.app.now().plus(d));
    }

    pub async fn given_org(&self, name: &str) -> String {
        self.app.add_org(&self.admin, name, None, vec![]).await.unwrap().org_id
    }

    /// A human with an email address in `org`.
    pub async fn given_human(&self, org: &str) -> String {
        let username = self.unique("human");
        self.app.add_human(&self.admin, new_human(org, &username)).await.unwrap().user_id
    }

    pub async fn given_machine(&self, org: &str) -> String {
        let username = self.unique("machine");
        let m = NewMachine {
            user_id: None,
            username: Some(username),
            org_id: org.into(),
            profile: MachineProfile { name: "Robot".into(), ..MachineProfile::default() },
        };
        self.app.add_machine(&self.admin, m).await.unwrap().user_id
    }

    /// A human without an email address (as an import would leave it: the API requires one).
    pub async fn given_human_without_email(&self, org: &str) -> String {
        let id = self.unique("noemail");
        let r = Recorded {
            aggregate_kind: AggregateKind::User,
            aggregate_id: id.clone(),
            sequence: 1,
            created_at: self.app.now(),
            resource_owner: org.into(),
            creator: String::new(),
            event: Event::HumanAdded {
                username: id.clone(),
                profile: HumanProfile {
                    given_name: "No".into(),
                    family_name: "Mail".into(),
                    ..HumanProfile::default()
                },
            },
        };
        let v = UserView::created(&r).unwrap();
        self.store
            .commit(Commit { events: vec![r], changes: vec![Change::User(v)], ..Commit::default() })
            .await
            .unwrap();
        id
    }

    /// A caller: a machine user of `home` holding `roles` on `scope` (none: no membership),
    /// authenticated with a personal access token.
    pub async fn caller(&self, home: &str, scope: Scope, roles: &[&str]) -> Caller {
        let (caller, _) = self.caller_with_token(home, scope, roles).await;
        caller
    }

    pub async fn caller_with_token(&self, home: &str, scope: Scope, roles: &[&str]) -> (Caller, String) {
        let id = self.given_machine(home).await;
        if !roles.is_empty() {
            let roles = roles.iter().map(|r| r.to_string()).collect();
            self.app.create_administrator(&self.admin, &id, scope, roles).await.unwrap();
        }
        let pat = self.app.add_pat(&self.admin, &id, None).await.unwrap();
        let token = pat.token.expose().to_string();
        let p = self.app.authenticate(Some(&format!("Bearer {token}"))).await.unwrap();
        (self.app.caller(p, None), token)
    }

    /// A caller with no role anywhere.
    pub async fn nobody(&self) -> Caller {
        self.caller(&self.default_org, Scope::Instance, &[]).await
    }

    pub async fn user_events(&self, user: &str) -> Vec<Recorded> {
        self.store.events_of(AggregateKind::User, user).await.unwrap()
    }

    /// The event type names of a user's log, oldest first.
    pub async fn user_event_types(&self, user: &str) -> Vec<&'static str> {
        self.user_events(user).await.iter().map(|r| r.event.type_name()).collect()
    }

    pub async fn last_user_event(&self, user: &str) -> Event {
        self.user_events(user).await.pop().expect("an event").event
    }

    pub async fn user(&self, id: &str) -> UserView {
        self.store.user(id).await.unwrap().expect("user exists")
    }
}

/// A new app on a fresh in-memory store (not bootstrapped).
pub fn app(opts: Options) -> (App, MemoryStore, Arc<FixedClock>) {
    app_on(MemoryStore::new(), opts)
}

/// A new app on `store` (e.g. a second replica on the same data).
pub fn app_on(store: MemoryStore, opts: Options) -> (App, MemoryStore, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::at(T0));
    let entropy = Arc::new(SeededEntropy::new(7));
    let mut keys = ServerKeys::generate(&*entropy);
    if opts.signing {
        keys.signing = TokenKeys { keys: vec![signing_key()] };
    }
    let deps = Deps {
        store: if opts.events {
            Arc::new(passlink_core::notify::NotifyingStore::new(Arc::new(store.clone())))
        } else {
            Arc::new(store.clone())
        },
        webauthn: Ceremony::new("passlink", EXTERNAL, &[]).unwrap(),
        clock: clock.clone(),
        ids: Arc::new(SequentialIds::default()),
        entropy,
        keys,
        trusted_issuers: Vec::new(),
    };
    let cfg = AppConfig { delivery_enabled: opts.delivery_enabled, ..opts.cfg };
    (App::new(deps, cfg), store, clock)
}

pub fn new_human(org: &str, username: &str) -> NewHuman {
    NewHuman {
        user_id: None,
        username: Some(username.into()),
        org_id: Some(org.into()),
        profile: HumanProfile {
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            email: format!("{username}@example.com"),
            preferred_language: "en".into(),
            ..HumanProfile::default()
        },
    }
}

/// The error has this kind and ZITADEL id.
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(r: Result<T, Error>, kind: Kind, id: &str) -> Error {
    match r {
        Ok(v) => panic!("expected {kind:?} {id}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!((e.kind, e.id), (kind, id), "{e:?}");
            e
        }
    }
}

#[track_caller]
pub fn assert_kind<T: std::fmt::Debug>(r: Result<T, Error>, kind: Kind) -> Error {
    match r {
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{e:?}");
            e
        }
    }
}

pub const DENIED: &str = "AUTH-5mWD2";
pub const USER_NOT_FOUND: &str = "COMMAND-M9dsd";
pub const CODE_INVALID: &str = "COMMAND-Eeb2a";

/// The callers of the permission matrix, by label: no role; each instance role; each org role in
/// the target's org; and org roles held only in another org (`@other`).
pub const LABELS: &[&str] = &[
    "none",
    "IAM_OWNER",
    "IAM_ORG_MANAGER",
    "IAM_USER_MANAGER",
    "IAM_LOGIN_CLIENT",
    "IAM_OWNER_VIEWER",
    "ORG_OWNER",
    "ORG_USER_MANAGER",
    "ORG_OWNER_VIEWER",
    "ORG_OWNER@other",
    "ORG_USER_MANAGER@other",
];

/// What a use case answers each caller of [`LABELS`]: `ok` labels succeed, `not_found` labels
/// get `not_found_id` (404: the target is invisible to them), every other label 403.
pub struct Matrix {
    pub ok: &'static [&'static str],
    pub not_found: &'static [&'static str],
    pub not_found_id: &'static str,
}

/// Holders of `user.write` (and `user.credential.write`): ZITADEL's user managers and owners.
pub const USER_WRITERS: &[&str] = &[
    "IAM_OWNER",
    "IAM_ORG_MANAGER",
    "IAM_USER_MANAGER",
    "IAM_LOGIN_CLIENT",
    "ORG_OWNER",
    "ORG_USER_MANAGER",
];

/// Holders of `user.read`: the writers and the viewers.
pub const USER_READERS: &[&str] = &[
    "IAM_OWNER",
    "IAM_ORG_MANAGER",
    "IAM_USER_MANAGER",
    "IAM_LOGIN_CLIENT",
    "IAM_OWNER_VIEWER",
    "ORG_OWNER",
    "ORG_USER_MANAGER",
    "ORG_OWNER_VIEWER",
];

/// Holders of `user.passkey.write` (ORG_USER_MANAGER is not one).
pub const PASSKEY_WRITE: Matrix = Matrix {
    ok: &["IAM_OWNER", "IAM_ORG_MANAGER", "IAM_USER_MANAGER", "IAM_LOGIN_CLIENT", "ORG_OWNER"],
    not_found: &["ORG_OWNER@other"],
    not_found_id: USER_NOT_FOUND,
};

impl World {
    /// Run `op` once per caller of [`LABELS`], in a fresh org (`org`) with another org
    /// (`other`) beside it, and check each outcome against `m`.
    pub async fn check_matrix<T: std::fmt::Debug>(
        &self,
        m: &Matrix,
        op: impl AsyncFn(&Caller, &str) -> Result<T, Error>,
    ) {
        let org = self.given_org(&self.unique("matrix-org")).await;
        let other = self.given_org(&self.unique("matrix-other")).await;
        for label in LABELS {
            let (scope, roles): (Scope, Vec<&str>) = match *label {
                "none" => (Scope::Instance, vec![]),
                l if l.starts_with("IAM_") => (Scope::Instance, vec![l]),
                l => match l.split_once('@') {
                    Some((role, _)) => (Scope::Org(other.clone()), vec![role]),
                    None => (Scope::Org(org.clone()), vec![l]),
                },
            };
            let caller = self.caller(&self.default_org, scope, &roles).await;
            let r = op(&caller, &org).await;
            if m.ok.contains(label) {
                assert!(r.is_ok(), "{label}: expected success, got {r:?}");
            } else if m.not_found.contains(label) {
                let e = r.expect_err(label);
                assert_eq!((e.kind, e.id), (Kind::NotFound, m.not_found_id), "{label}: {e:?}");
            } else {
                let e = r.expect_err(label);
                assert_eq!((e.kind, e.id), (Kind::PermissionDenied, DENIED), "{label}: {e:?}");
            }
        }
    }
}
