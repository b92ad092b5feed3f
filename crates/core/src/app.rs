//! The application layer: one method per use case, each `load → decide → append`.
//!
//! This is the only async code in the core. It is generic over the [`Store`] port and takes
//! time, ids and randomness from the ports in [`Deps`], so it runs unchanged against SQLite,
//! PostgreSQL or a test store. It knows nothing about REST, gRPC or Connect.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::code::CodeView;
use crate::error::{Error, Kind, Result};
use crate::event::{AggregateKind, CodeRequested, Event, HumanProfile, MachineProfile, OutboxJob, Recorded};
use crate::permission::{self as perm, require_in, require_somewhere};
use crate::ports::{Clock, Entropy, IdGenerator};
use crate::secret::{self, Secret, ServerKeys};
use crate::store::{Commit, Store, UniqueClaim};
use crate::template;
use crate::time::Timestamp;
use crate::validate;
use crate::view::{Change, InstanceView, Membership, OrgView, PatView, Scope, UserState, UserView};

pub use delivery::{DeliveryPolicy, Failed, LinkMessage, Prepared, backoff, default_link_template};
pub use oauth::{ClientCredentials, KeyAdded, OAuthError, TokenGranted, TokenRequest};
pub use passkeys::{PasskeyListed, PasskeyStarted, RegisterPasskey, RegistrationInfo};

/// Tunables of the core, with ZITADEL's defaults.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// How long a passkey registration code is valid (ZITADEL: 1 h).
    pub code_lifetime: Duration,
    /// Length of a passkey registration code (ZITADEL: 12).
    pub code_length: usize,
    /// How long a verified token stays in the in-memory cache before it is checked again.
    pub token_cache_ttl: Duration,
    /// How often a command is retried after losing an optimistic-concurrency race.
    pub max_conflict_retries: u32,
    /// The OAuth2 issuer (the external URL): `iss` of access tokens, `aud` of assertions.
    pub issuer: String,
    /// Lifetime of access tokens from the token endpoint (ZITADEL: 12 h).
    pub access_token_lifetime: Duration,
    /// Is a delivery provider (SMTP or webhook) configured? Without one, links to be sent are
    /// refused at request time (400) instead of waiting forever.
    pub delivery_enabled: bool,
    pub delivery: DeliveryPolicy,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            code_lifetime: Duration::from_secs(3600),
            code_length: 12,
            token_cache_ttl: Duration::from_secs(30),
            max_conflict_retries: 8,
            issuer: "http://localhost:8080".to_string(),
            access_token_lifetime: Duration::from_secs(12 * 3600),
            delivery_enabled: false,
            delivery: DeliveryPolicy::default(),
        }
    }
}

/// The ports the core needs.
pub struct Deps {
    pub store: Arc<dyn Store>,
    /// The WebAuthn relying parties (from the external URL and extra origins).
    pub webauthn: crate::passkey::Ceremony,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub entropy: Arc<dyn Entropy>,
    pub keys: ServerKeys,
    /// External issuers whose JWTs authenticate users (by user id = `sub`).
    pub trusted_issuers: Vec<Arc<dyn crate::ports::TrustedIssuer>>,
}

/// Who is calling: the authenticated user, their memberships, and the context organization
/// (`x-zitadel-orgid`, else their own).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub context_org: String,
}

/// An authenticated user as the token cache keeps it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub org_id: String,
    pub memberships: Vec<Membership>,
    pub token_expires: Timestamp,
}

/// ZITADEL's object details of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// Sequence of the last event written to the aggregate.
    pub sequence: u64,
    pub change_date: Timestamp,
    pub resource_owner: String,
    /// Set when the write created the object.
    pub creation_date: Option<Timestamp>,
}

/// How the registration link reaches the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkMedium {
    /// Deliver it (email/webhook) with this URL template, or the hosted page when `None`.
    Send { url_template: Option<String> },
    /// Give the code back to the caller.
    Return,
}

#[derive(Debug)]
pub struct LinkCreated {
    pub details: Details,
    /// For [`LinkMedium::Return`]: the code id and the code.
    pub code: Option<(String, Secret)>,
}

/// A new human user.
#[derive(Debug, Clone, Default)]
pub struct NewHuman {
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// `None`: the caller's context organization.
    pub org_id: Option<String>,
    pub profile: HumanProfile,
}

/// A new machine user.
#[derive(Debug, Clone, Default)]
pub struct NewMachine {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub org_id: String,
    pub profile: MachineProfile,
}

#[derive(Debug, Clone)]
pub struct UserCreated {
    pub user_id: String,
    pub details: Details,
}

/// An admin of a new organization: an existing user or a new human.
#[derive(Debug, Clone)]
pub enum OrgAdmin {
    Existing { user_id: String, roles: Vec<String> },
    New { human: Box<NewHuman>, roles: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct OrgCreated {
    pub org_id: String,
    pub details: Details,
    pub admin_ids: Vec<String>,
}

#[derive(Debug)]
pub struct PatCreated {
    pub token_id: String,
    pub token: Secret,
    pub creation_date: Timestamp,
}

#[derive(Debug)]
pub struct Bootstrapped {
    pub instance_id: String,
    pub org_id: String,
    pub admin_user_id: String,
    pub admin_token: Secret,
}

/// A user as GetUserByID returns it.
#[derive(Debug, Clone)]
pub struct UserRead {
    pub user: UserView,
    pub details: Details,
}

pub(crate) fn unauthenticated() -> Error {
    Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Missing")
}

pub(crate) const NEVER_EXPIRES: Timestamp = Timestamp::from_unix_secs(253_402_300_799); // 9999-12-31T23:59:59Z

pub fn user_not_found() -> Error {
    Error::new(Kind::NotFound, "COMMAND-M9dsd", "Errors.User.NotFound")
}

fn org_not_found() -> Error {
    Error::new(Kind::NotFound, "ORG-o0Ng9", "Errors.Org.NotFound")
}

fn token_invalid() -> Error {
    Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Invalid")
}

fn username_claim(username: &str) -> UniqueClaim {
    UniqueClaim {
        kind: "username",
        value: username.to_lowercase(),
        taken: Error::new(Kind::AlreadyExists, "COMMAND-k2unb", "Errors.User.UsernameTaken"),
    }
}

fn user_id_claim(id: &str) -> UniqueClaim {
    UniqueClaim {
        kind: "user_id",
        value: id.to_string(),
        taken: Error::new(Kind::AlreadyExists, "V3-DKcYh", "Errors.User.AlreadyExists"),
    }
}

/// Collects the events of one command, numbering them per aggregate.
struct Tx {
    now: Timestamp,
    creator: String,
    commit: Commit,
}

impl Tx {
    fn new(now: Timestamp, creator: &str) -> Tx {
        Tx { now, creator: creator.to_string(), commit: Commit::default() }
    }

    /// Record `event` as the next event after `*sequence` of the aggregate; bumps `*sequence`.
    fn record(
        &mut self,
        kind: AggregateKind,
        id: &str,
        owner: &str,
        sequence: &mut u64,
        event: Event,
    ) -> Recorded {
        *sequence += 1;
        let r = Recorded {
            aggregate_kind: kind,
            aggregate_id: id.to_string(),
            sequence: *sequence,
            created_at: self.now,
            resource_owner: owner.to_string(),
            creator: self.creator.clone(),
            event,
        };
        self.commit.events.push(r.clone());
        r
    }

    fn details(&self, sequence: u64, owner: &str, created: bool) -> Details {
        Details {
            sequence,
            change_date: self.now,
            resource_owner: owner.to_string(),
            creation_date: created.then_some(self.now),
        }
    }
}

/// A [`Tx`] appending to one existing user's aggregate, keeping the user's view in step.
struct UserTx {
    tx: Tx,
    user: UserView,
}

impl UserTx {
    fn new(now: Timestamp, creator: &str, user: &UserView) -> UserTx {
        UserTx { tx: Tx::new(now, creator), user: user.clone() }
    }

    /// Record `event` as the user's next event and fold it into the view.
    fn record(&mut self, event: Event) -> Recorded {
        let mut seq = self.user.sequence;
        let r = self.tx.record(AggregateKind::User, &self.user.id, &self.user.org_id, &mut seq, event);
        self.user.apply(&r);
        r
    }

    /// Details of the write (the sequence of the last event recorded so far).
    fn details(&self) -> Details {
        self.tx.details(self.user.sequence, &self.user.org_id, false)
    }

    /// The commit: the recorded events, the user's new view, and whatever else was added.
    fn into_commit(mut self) -> Commit {
        self.tx.commit.changes.push(Change::User(self.user));
        self.tx.commit
    }
}

/// The in-memory cache of verified tokens: one hash lookup per request instead of store reads.
/// Entries live for `token_cache_ttl`; local writes that change who may do what clear it.
/// Token hash → (principal, when it was loaded).
type TokenMap = HashMap<[u8; 32], (Arc<Principal>, Timestamp)>;

#[derive(Default)]
struct TokenCache {
    entries: RwLock<TokenMap>,
}

impl TokenCache {
    fn get(&self, hash: &[u8; 32], now: Timestamp, ttl: Duration) -> Option<Arc<Principal>> {
        let map = self.entries.read().ok()?;
        let (p, fetched) = map.get(hash)?;
        (now < fetched.plus(ttl) && now < p.token_expires).then(|| p.clone())
    }

    fn put(&self, hash: [u8; 32], p: Arc<Principal>, now: Timestamp) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= 100_000 {
                map.clear();
            }
            map.insert(hash, (p, now));
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

/// Run the async block again while it loses optimistic-concurrency races (up to the limit).
macro_rules! retry {
    ($self:ident, $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $body.await {
                Err(e) if e.kind == Kind::Aborted && attempt < $self.cfg.max_conflict_retries => attempt += 1,
                r => break r,
            }
        }
    }};
}

mod delivery;
mod oauth;
mod passkeys;

pub struct App {
    deps: Deps,
    cfg: AppConfig,
    tokens: TokenCache,
    /// OAuth2 client failures (rate limit) and seen assertion ids (replay protection).
    oauth: oauth::OAuthState,
    /// Striped per-aggregate locks: writes to one aggregate from this process queue up instead
    /// of losing optimistic-concurrency races to each other. Races with other replicas are still
    /// caught by the store's sequence check and retried.
    stripes: Vec<async_lock::Mutex<()>>,
}

const STRIPES: usize = 1024;

impl App {
    pub fn new(deps: Deps, cfg: AppConfig) -> App {
        let stripes = (0..STRIPES).map(|_| async_lock::Mutex::new(())).collect();
        App { deps, cfg, tokens: TokenCache::default(), oauth: oauth::OAuthState::default(), stripes }
    }

    /// Hold the write lock of one aggregate (by id) for the duration of a command.
    async fn lock_aggregate(&self, id: &str) -> async_lock::MutexGuard<'_, ()> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for b in id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.stripes[(h % STRIPES as u64) as usize].lock().await
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.deps.store
    }

    pub fn keys(&self) -> &ServerKeys {
        &self.deps.keys
    }

    pub fn now(&self) -> Timestamp {
        self.deps.clock.now()
    }

    // ---------------------------------------------------------------- authentication

    /// Resolve an `Authorization` header value to a principal. Missing or invalid → 401.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Principal>> {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Err(Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Missing"));
        };
        let token = match header.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Err(token_invalid()),
        };
        let hash = secret::token_hash(token);
        let now = self.now();
        if let Some(p) = self.tokens.get(&hash, now, self.cfg.token_cache_ttl) {
            return Ok(p);
        }
        if crate::oauth::looks_like_jwt(token) {
            let p = Arc::new(self.principal_from_jwt(token, now).await?);
            self.tokens.put(hash, p.clone(), now);
            return Ok(p);
        }
        let pat = self.deps.store.pat_by_hash(&hash).await?.ok_or_else(token_invalid)?;
        if pat.revoked {
            return Err(token_invalid().with_cause("token revoked"));
        }
        if now >= pat.expiration {
            return Err(token_invalid().with_cause("token expired"));
        }
        let user = self.deps.store.user(&pat.user_id).await?.ok_or_else(token_invalid)?;
        if user.state != UserState::Active {
            return Err(token_invalid().with_cause("token owner is not active"));
        }
        let memberships = self.deps.store.memberships_of(&user.id).await?;
        let p = Arc::new(Principal {
            user_id: user.id,
            org_id: user.org_id,
            memberships,
            token_expires: pat.expiration,
        });
        self.tokens.put(hash, p.clone(), now);
        Ok(p)
    }

    /// Build the caller from a principal and an optional `x-zitadel-orgid` value.
    pub fn caller(&self, principal: Arc<Principal>, context_org: Option<&str>) -> Caller {
        let context_org = context_org
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map_or_else(|| principal.org_id.clone(), str::to_string);
        Caller { principal, context_org }
    }

    // ---------------------------------------------------------------- bootstrap

    /// First start: create the instance, a default organization and the machine user `admin`
    /// (IAM_OWNER) with a personal access token. Returns `None` when the instance exists.
    ///
    /// The caller generates `token` (see [`secret::generate_token`]) so it can persist it before
    /// the commit makes it valid: a crash in between never leaves an admin nobody can act as.
    pub async fn bootstrap(&self, instance_name: &str, token: Secret) -> Result<Option<Bootstrapped>> {
        if self.deps.store.instance().await?.is_some() {
            return Ok(None);
        }
        let ids = &self.deps.ids;
        let (instance_id, org_id, admin_id, pat_id) =
            (ids.next_id(), ids.next_id(), ids.next_id(), ids.next_id());
        let now = self.now();
        let mut tx = Tx::new(now, "");
        let (mut iseq, mut oseq, mut useq) = (0, 0, 0);
        let i = AggregateKind::Instance;
        let i1 = tx.record(
            i,
            &instance_id,
            &instance_id,
            &mut iseq,
            Event::InstanceAdded { name: instance_name.into() },
        );
        tx.record(
            i,
            &instance_id,
            &instance_id,
            &mut iseq,
            Event::InstanceDefaultOrgSet { org_id: org_id.clone() },
        );
        let roles = vec!["IAM_OWNER".to_string()];
        tx.record(
            i,
            &instance_id,
            &instance_id,
            &mut iseq,
            Event::InstanceMemberAdded { user_id: admin_id.clone(), roles: roles.clone() },
        );
        tx.record(
            AggregateKind::Org,
            &org_id,
            &org_id,
            &mut oseq,
            Event::OrgAdded { name: "Default".into() },
        );
        let profile = MachineProfile { name: "Administrator".into(), ..Default::default() };
        let u1 = tx.record(
            AggregateKind::User,
            &admin_id,
            &org_id,
            &mut useq,
            Event::MachineAdded { username: "admin".into(), profile },
        );
        let token_hash = secret::token_hash(token.expose());
        tx.record(
            AggregateKind::User,
            &admin_id,
            &org_id,
            &mut useq,
            Event::PatAdded {
                token_id: pat_id.clone(),
                token_hash: hex(&token_hash),
                expiration: NEVER_EXPIRES,
            },
        );
        let mut user = UserView::created(&u1).ok_or_else(|| Error::internal("bootstrap user"))?;
        user.sequence = useq;
        let _ = i1;
        tx.commit.claims = vec![
            UniqueClaim {
                kind: "instance",
                value: "default".into(),
                taken: Error::new(Kind::AlreadyExists, "INST-b00t1", "Errors.Instance.AlreadyExists"),
            },
            UniqueClaim {
                kind: "org_name",
                value: "default".into(),
                taken: Error::new(Kind::AlreadyExists, "ORG-lapo2m", "Errors.Org.NameTaken"),
            },
            username_claim("admin"),
        ];
        tx.commit.changes = vec![
            Change::Instance(InstanceView {
                id: instance_id.clone(),
                name: instance_name.into(),
                default_org_id: org_id.clone(),
                sequence: iseq,
                created_at: now,
                changed_at: now,
            }),
            Change::Org(OrgView {
                id: org_id.clone(),
                name: "Default".into(),
                sequence: oseq,
                created_at: now,
                changed_at: now,
            }),
            Change::User(user),
            Change::Membership(Membership {
                user_id: admin_id.clone(),
                scope: Scope::Instance,
                roles,
                created_at: now,
            }),
            Change::Pat(PatView {
                id: pat_id,
                user_id: admin_id.clone(),
                token_hash,
                expiration: NEVER_EXPIRES,
                created_at: now,
                revoked: false,
            }),
        ];
        match self.deps.store.commit(tx.commit).await {
            Ok(()) => {
                Ok(Some(Bootstrapped { instance_id, org_id, admin_user_id: admin_id, admin_token: token }))
            }
            // Another replica bootstrapped first.
            Err(e) if e.id == "INST-b00t1" => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------- passkey registration link

    /// CreatePasskeyRegistrationLink: a one-time code for a human user, returned or delivered.
    pub async fn create_passkey_link(
        &self,
        caller: &Caller,
        user_id: &str,
        medium: LinkMedium,
    ) -> Result<LinkCreated> {
        const MSG: &str = "CreatePasskeyRegistrationLinkRequest";
        let ms = &caller.principal.memberships;
        require_somewhere(ms, perm::USER_PASSKEY_WRITE)?;
        validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
        if let LinkMedium::Send { url_template: Some(t) } = &medium {
            validate::runes_between("SendPasskeyRegistrationLink", "UrlTemplate", t, 1, 200)
                .map_err(|e| validate::embedded(MSG, "SendLink", e))?;
        }
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            require_in(ms, perm::USER_PASSKEY_WRITE, &user.org_id, user_not_found)?;
            let Some(human) = user.human() else {
                return Err(Error::new(Kind::FailedPrecondition, "COMMAND-xu3Ag", "Errors.User.NotHuman"));
            };
            if user.state != UserState::Active {
                return Err(Error::new(Kind::FailedPrecondition, "COMMAND-Nd7ah", "Errors.User.NotActive"));
            }
            if let LinkMedium::Send { url_template } = &medium {
                if let Some(t) = url_template {
                    template::validate(t, &user.id, &user.org_id)?;
                }
                if human.email.is_empty() {
                    return Err(Error::new(
                        Kind::FailedPrecondition,
                        "COMMAND-mL4il",
                        "Errors.User.Code.NoEmail",
                    ));
                }
                if !self.cfg.delivery_enabled {
                    return Err(delivery::no_provider());
                }
            }
            let deps = &self.deps;
            let now = self.now();
            let code_id = deps.ids.next_id();
            let code = secret::generate_code(&*deps.entropy, self.cfg.code_length);
            let returned = medium == LinkMedium::Return;
            let requested = CodeRequested {
                id: code_id.clone(),
                code_hash: hex(&deps.keys.hash_code(&code_id, &code)),
                expiry_secs: self.cfg.code_lifetime.as_secs(),
                url_template: match &medium {
                    LinkMedium::Send { url_template } => url_template.clone(),
                    LinkMedium::Return => None,
                },
                code_returned: returned,
            };
            let mut tx = UserTx::new(now, &caller.principal.user_id, &user);
            let r = tx.record(Event::PasskeyCodeRequested(requested.clone()));
            let code_view = CodeView::requested(&r, &requested);
            if !returned {
                let job_id = deps.ids.next_id();
                let sealed = deps.keys.seal(&*deps.entropy, code.expose().as_bytes(), job_id.as_bytes())?;
                tx.tx.commit.outbox.push(OutboxJob {
                    id: job_id,
                    kind: "passkey_registration_link".into(),
                    user_id: user.id.clone(),
                    org_id: user.org_id.clone(),
                    code_id: code_id.clone(),
                    created_at: now,
                    not_after: code_view.expires_at,
                    url_template: requested.url_template.clone(),
                    sealed_code: Some(sealed),
                    attempts: 0,
                });
            }
            tx.tx.commit.changes.push(Change::Code(code_view));
            let details = tx.details();
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(LinkCreated { details, code: returned.then(|| (code_id.clone(), code.clone())) })
        })
    }

    /// A user that exists and is not deleted, else 404.
    async fn visible_user(&self, user_id: &str) -> Result<UserView> {
        self.deps
            .store
            .user(user_id)
            .await?
            .filter(|u| u.state != UserState::Deleted)
            .ok_or_else(user_not_found)
    }

    // ---------------------------------------------------------------- organizations

    /// AddOrganization, with optional admins (existing users or new humans).
    pub async fn add_org(
        &self,
        caller: &Caller,
        name: &str,
        org_id: Option<&str>,
        admins: Vec<OrgAdmin>,
    ) -> Result<OrgCreated> {
        const MSG: &str = "AddOrganizationRequest";
        let ms = &caller.principal.memberships;
        require_somewhere(ms, perm::ORG_CREATE)?;
        if !perm::holds_instance_wide(ms, perm::ORG_CREATE) {
            return Err(perm::denied());
        }
        validate::runes_between(MSG, "Name", name.trim(), 1, 200)?;
        if let Some(id) = org_id {
            validate::runes_between(MSG, "OrgId", id, 1, 200)?;
        }
        let now = self.now();
        let org_id = org_id.map_or_else(|| self.deps.ids.next_id(), str::to_string);
        let mut tx = Tx::new(now, &caller.principal.user_id);
        let mut oseq = 0;
        tx.record(
            AggregateKind::Org,
            &org_id,
            &org_id,
            &mut oseq,
            Event::OrgAdded { name: name.trim().into() },
        );
        tx.commit.claims.push(UniqueClaim {
            kind: "org_name",
            value: name.trim().to_lowercase(),
            taken: Error::new(Kind::AlreadyExists, "ORG-lapo2m", "Errors.Org.NameTaken"),
        });
        tx.commit.claims.push(UniqueClaim {
            kind: "org_id",
            value: org_id.clone(),
            taken: Error::new(Kind::AlreadyExists, "ORG-8nfSr", "Errors.Org.AlreadyExists"),
        });
        let mut admin_ids = Vec::new();
        for admin in admins {
            let (user_id, roles) = match admin {
                OrgAdmin::Existing { user_id, roles } => {
                    self.visible_user(&user_id).await?;
                    (user_id, roles)
                }
                OrgAdmin::New { human, roles } => {
                    let mut human = *human;
                    human.org_id = Some(org_id.clone());
                    let id = self.record_new_human(&mut tx, &human, &org_id)?;
                    (id, roles)
                }
            };
            let roles = if roles.is_empty() { vec!["ORG_OWNER".to_string()] } else { roles };
            check_roles(&Scope::Org(org_id.clone()), &roles)?;
            tx.record(
                AggregateKind::Org,
                &org_id,
                &org_id,
                &mut oseq,
                Event::OrgMemberAdded { user_id: user_id.clone(), roles: roles.clone() },
            );
            tx.commit.changes.push(Change::Membership(Membership {
                user_id: user_id.clone(),
                scope: Scope::Org(org_id.clone()),
                roles,
                created_at: now,
            }));
            admin_ids.push(user_id);
        }
        tx.commit.changes.push(Change::Org(OrgView {
            id: org_id.clone(),
            name: name.trim().into(),
            sequence: oseq,
            created_at: now,
            changed_at: now,
        }));
        let details = tx.details(oseq, &org_id, true);
        self.deps.store.commit(tx.commit).await?;
        if !admin_ids.is_empty() {
            self.tokens.clear();
        }
        Ok(OrgCreated { org_id, details, admin_ids })
    }

    // ---------------------------------------------------------------- users

    /// Validate a new human and record its `user.human.added` in `tx`; returns the new id.
    fn record_new_human(&self, tx: &mut Tx, h: &NewHuman, org_id: &str) -> Result<String> {
        const MSG: &str = "AddHumanUserRequest";
        let p = &h.profile;
        validate::runes_between("SetHumanProfile", "GivenName", &p.given_name, 1, 200)
            .map_err(|e| validate::embedded(MSG, "Profile", e))?;
        validate::runes_between("SetHumanProfile", "FamilyName", &p.family_name, 1, 200)
            .map_err(|e| validate::embedded(MSG, "Profile", e))?;
        validate::runes_at_most("SetHumanProfile", "NickName", &p.nick_name, 200)
            .map_err(|e| validate::embedded(MSG, "Profile", e))?;
        validate::runes_at_most("SetHumanProfile", "DisplayName", &p.display_name, 200)
            .map_err(|e| validate::embedded(MSG, "Profile", e))?;
        validate::runes_at_most("SetHumanProfile", "PreferredLanguage", &p.preferred_language, 10)
            .map_err(|e| validate::embedded(MSG, "Profile", e))?;
        validate::email("SetHumanEmail", "Email", &p.email)
            .map_err(|e| validate::embedded(MSG, "Email", e))?;
        if let Some(id) = &h.user_id {
            validate::runes_between(MSG, "UserId", id, 1, 200)?;
        }
        if let Some(u) = &h.username {
            validate::runes_between(MSG, "Username", u, 1, 200)?;
        }
        let user_id = h.user_id.clone().unwrap_or_else(|| self.deps.ids.next_id());
        let username = h.username.clone().unwrap_or_else(|| p.email.clone());
        let mut profile = p.clone();
        if profile.display_name.is_empty() {
            profile.display_name = profile.effective_display_name();
        }
        let mut seq = 0;
        let r = tx.record(
            AggregateKind::User,
            &user_id,
            org_id,
            &mut seq,
            Event::HumanAdded { username: username.clone(), profile },
        );
        let view = UserView::created(&r).ok_or_else(|| Error::internal("human view"))?;
        tx.commit.changes.push(Change::User(view));
        tx.commit.claims.push(user_id_claim(&user_id));
        tx.commit.claims.push(username_claim(&username));
        Ok(user_id)
    }

    /// The organization a new user goes to, checked for existence and the caller's `user.write`.
    async fn target_org_for_new_user(&self, caller: &Caller, org_id: Option<&str>) -> Result<OrgView> {
        let ms = &caller.principal.memberships;
        require_somewhere(ms, perm::USER_WRITE)?;
        let org_id = org_id.filter(|o| !o.is_empty()).unwrap_or(&caller.context_org);
        require_in(ms, perm::USER_WRITE, org_id, org_not_found)?;
        self.deps.store.org(org_id).await?.ok_or_else(org_not_found)
    }

    /// AddHumanUser (v2beta, v2) and CreateUser with a human.
    pub async fn add_human(&self, caller: &Caller, h: NewHuman) -> Result<UserCreated> {
        let org = self.target_org_for_new_user(caller, h.org_id.as_deref()).await?;
        let mut tx = Tx::new(self.now(), &caller.principal.user_id);
        let user_id = self.record_new_human(&mut tx, &h, &org.id)?;
        let details = tx.details(1, &org.id, true);
        self.deps.store.commit(tx.commit).await?;
        Ok(UserCreated { user_id, details })
    }

    /// CreateUser with a machine.
    pub async fn add_machine(&self, caller: &Caller, m: NewMachine) -> Result<UserCreated> {
        const MSG: &str = "CreateUserRequest";
        validate::runes_between(MSG, "OrganizationId", &m.org_id, 1, 200)?;
        let org = self.target_org_for_new_user(caller, Some(&m.org_id)).await?;
        validate::runes_between("Machine", "Name", &m.profile.name, 1, 200)
            .map_err(|e| validate::embedded(MSG, "Machine", e))?;
        validate::runes_at_most("Machine", "Description", &m.profile.description, 500)
            .map_err(|e| validate::embedded(MSG, "Machine", e))?;
        if let Some(id) = &m.user_id {
            validate::runes_between(MSG, "UserId", id, 1, 200)?;
        }
        if let Some(u) = &m.username {
            validate::runes_between(MSG, "Username", u, 1, 200)?;
        }
        let user_id = m.user_id.clone().unwrap_or_else(|| self.deps.ids.next_id());
        let username = m.username.clone().unwrap_or_else(|| user_id.clone());
        let mut tx = Tx::new(self.now(), &caller.principal.user_id);
        let mut seq = 0;
        let r = tx.record(
            AggregateKind::User,
            &user_id,
            &org.id,
            &mut seq,
            Event::MachineAdded { username: username.clone(), profile: m.profile },
        );
        let view = UserView::created(&r).ok_or_else(|| Error::internal("machine view"))?;
        tx.commit.changes.push(Change::User(view));
        tx.commit.claims.push(user_id_claim(&user_id));
        tx.commit.claims.push(username_claim(&username));
        let details = tx.details(1, &org.id, true);
        self.deps.store.commit(tx.commit).await?;
        Ok(UserCreated { user_id, details })
    }

    /// GetUserByID: the user itself, or a caller with `user.read` in the user's organization.
    pub async fn get_user(&self, caller: &Caller, user_id: &str) -> Result<UserRead> {
        let ms = &caller.principal.memberships;
        let is_self = caller.principal.user_id == user_id;
        if !is_self {
            require_somewhere(ms, perm::USER_READ)?;
        }
        validate::runes_between("GetUserByIDRequest", "UserId", user_id, 1, 200)?;
        let user = self.visible_user(user_id).await?;
        if !is_self {
            require_in(ms, perm::USER_READ, &user.org_id, user_not_found)?;
        }
        let details = Details {
            sequence: user.sequence,
            change_date: user.changed_at,
            resource_owner: user.org_id.clone(),
            creation_date: Some(user.created_at),
        };
        Ok(UserRead { user, details })
    }

    /// DeactivateUser.
    pub async fn deactivate_user(&self, caller: &Caller, user_id: &str) -> Result<Details> {
        self.change_user_state(
            caller,
            user_id,
            perm::USER_WRITE,
            "DeactivateUserRequest",
            Event::UserDeactivated {},
        )
        .await
    }

    /// DeleteUser: the user, its tokens and its codes stop working at once.
    pub async fn delete_user(&self, caller: &Caller, user_id: &str) -> Result<Details> {
        self.change_user_state(caller, user_id, perm::USER_DELETE, "DeleteUserRequest", Event::UserRemoved {})
            .await
    }

    async fn change_user_state(
        &self,
        caller: &Caller,
        user_id: &str,
        permission: &str,
        msg: &str,
        event: Event,
    ) -> Result<Details> {
        let ms = &caller.principal.memberships;
        require_somewhere(ms, permission)?;
        validate::runes_between(msg, "UserId", user_id, 1, 200)?;
        let _lock = self.lock_aggregate(user_id).await;
        let details = retry!(self, async {
            let user = self.visible_user(user_id).await?;
            require_in(ms, permission, &user.org_id, user_not_found)?;
            if matches!(event, Event::UserDeactivated {}) && user.state == UserState::Inactive {
                return Err(Error::new(
                    Kind::FailedPrecondition,
                    "COMMAND-5M0sd",
                    "Errors.User.AlreadyInactive",
                ));
            }
            let mut tx = UserTx::new(self.now(), &caller.principal.user_id, &user);
            tx.record(event.clone());
            if matches!(event, Event::UserRemoved {}) {
                // The username may be used again; the id stays taken.
                tx.tx.commit.released.push(("username", user.username.to_lowercase()));
            }
            let details = tx.details();
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(details)
        })?;
        self.tokens.clear();
        Ok(details)
    }

    /// AddPersonalAccessToken for a machine user.
    pub async fn add_pat(
        &self,
        caller: &Caller,
        user_id: &str,
        expiration: Option<Timestamp>,
    ) -> Result<PatCreated> {
        let ms = &caller.principal.memberships;
        require_somewhere(ms, perm::USER_WRITE)?;
        validate::runes_between("AddPersonalAccessTokenRequest", "UserId", user_id, 1, 200)?;
        let now = self.now();
        let expiration = expiration.unwrap_or(NEVER_EXPIRES);
        if expiration <= now {
            return Err(Error::new(Kind::InvalidArgument, "COMMAND-dv3t5", "Errors.PAT.ExpirationInPast"));
        }
        let _lock = self.lock_aggregate(user_id).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            require_in(ms, perm::USER_WRITE, &user.org_id, user_not_found)?;
            if user.is_human() {
                return Err(Error::new(Kind::FailedPrecondition, "COMMAND-Sdj4f", "Errors.User.NotMachine"));
            }
            let token_id = self.deps.ids.next_id();
            let token = secret::generate_token(&*self.deps.entropy);
            let token_hash = secret::token_hash(token.expose());
            let mut tx = UserTx::new(now, &caller.principal.user_id, &user);
            tx.record(Event::PatAdded {
                token_id: token_id.clone(),
                token_hash: hex(&token_hash),
                expiration,
            });
            tx.tx.commit.changes.push(Change::Pat(PatView {
                id: token_id.clone(),
                user_id: user.id.clone(),
                token_hash,
                expiration,
                created_at: now,
                revoked: false,
            }));
            self.deps.store.commit(tx.into_commit()).await?;
            Ok(PatCreated { token_id, token, creation_date: now })
        })
    }

    /// CreateAdministrator: grant roles on the instance or on an organization.
    pub async fn create_administrator(
        &self,
        caller: &Caller,
        user_id: &str,
        scope: Scope,
        roles: Vec<String>,
    ) -> Result<Timestamp> {
        const MSG: &str = "CreateAdministratorRequest";
        let ms = &caller.principal.memberships;
        let permission = match scope {
            Scope::Instance => perm::IAM_MEMBER_WRITE,
            Scope::Org(_) => perm::ORG_MEMBER_WRITE,
        };
        require_somewhere(ms, permission)?;
        validate::runes_between(MSG, "UserId", user_id, 1, 200)?;
        if roles.is_empty() {
            return Err(Error::validation(format!(
                "invalid {MSG}.Roles: value must contain at least 1 item(s)"
            )));
        }
        check_roles(&scope, &roles)?;
        let now = self.now();
        let _lock = self.lock_aggregate(scope.key()).await;
        retry!(self, async {
            let user = self.visible_user(user_id).await?;
            let existing = self.deps.store.memberships_of(user_id).await?;
            if existing.iter().any(|m| m.scope == scope) {
                return Err(Error::new(Kind::AlreadyExists, "COMMAND-PtXi1", "Errors.Member.AlreadyExists"));
            }
            let mut tx = Tx::new(now, &caller.principal.user_id);
            match &scope {
                Scope::Instance => {
                    if !perm::holds_instance_wide(ms, permission) {
                        return Err(perm::denied());
                    }
                    let mut inst =
                        self.deps.store.instance().await?.ok_or_else(|| Error::internal("no instance"))?;
                    let mut seq = inst.sequence;
                    let r = tx.record(
                        AggregateKind::Instance,
                        &inst.id,
                        &inst.id,
                        &mut seq,
                        Event::InstanceMemberAdded { user_id: user.id.clone(), roles: roles.clone() },
                    );
                    inst.apply(&r);
                    tx.commit.changes.push(Change::Instance(inst));
                }
                Scope::Org(org_id) => {
                    require_in(ms, permission, org_id, org_not_found)?;
                    let mut org = self.deps.store.org(org_id).await?.ok_or_else(org_not_found)?;
                    let mut seq = org.sequence;
                    let r = tx.record(
                        AggregateKind::Org,
                        &org.id,
                        &org.id,
                        &mut seq,
                        Event::OrgMemberAdded { user_id: user.id.clone(), roles: roles.clone() },
                    );
                    org.apply(&r);
                    tx.commit.changes.push(Change::Org(org));
                }
            }
            tx.commit.changes.push(Change::Membership(Membership {
                user_id: user.id.clone(),
                scope: scope.clone(),
                roles: roles.clone(),
                created_at: now,
            }));
            self.deps.store.commit(tx.commit).await?;
            Ok(now)
        })
        .inspect(|_| self.tokens.clear())
    }
}

/// Roles must exist and fit the scope (IAM_* on the instance, ORG_* on organizations).
fn check_roles(scope: &Scope, roles: &[String]) -> Result<()> {
    let allowed = match scope {
        Scope::Instance => perm::INSTANCE_ROLES,
        Scope::Org(_) => perm::ORG_ROLES,
    };
    if let Some(bad) = roles.iter().find(|r| !allowed.contains(&r.as_str())) {
        return Err(Error::new(Kind::InvalidArgument, "MEMBER-4m0fS", "Errors.Member.InvalidRole")
            .with_cause(format!("role {bad}")));
    }
    Ok(())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}
