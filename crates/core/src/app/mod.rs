//! The application layer: one method per use case, each `load → decide → append`.
//!
//! This is the only async code in the core. It is generic over the [`Store`] port and takes
//! time, ids and randomness from the ports in [`Deps`], so it runs unchanged against SQLite,
//! PostgreSQL or a test store. It knows nothing about REST, gRPC or Connect.
//!
//! Each command's `App` method loads views from the store, draws the time, ids and random values
//! it needs, calls a **pure** `decide` function of its module (views + caller + request + those
//! values → events, outbox job, claims, or an error), appends the result in one commit, and
//! retries on a lost race. The decide functions have unit tests next to them (no store).
//!
//! Layout:
//! - [`config`]: [`AppConfig`], [`DeliveryPolicy`] and every default (`DEFAULT_*`).
//! - `tx`: `Tx` records events and folds them (`apply`) into the views they change; the folded
//!   views are the commit's read-model changes (no view is written by hand). `locks`:
//!   per-aggregate locks and the `retry!` of lost races. `testing`: fixtures of the unit tests.
//! - `tokens`: authentication (Bearer header → cached [`Principal`]: PATs, our JWTs, trusted
//!   issuers) and AddPersonalAccessToken.
//! - `bootstrap`, `orgs`, `users`, `administrators`: instance, organizations, users, members.
//! - `links`: CreatePasskeyRegistrationLink (and the hosted page's link); `bulk`:
//!   CreateRegistrationLinks (links for many users, idempotent, paged); `codes`: checks of a
//!   presented registration code, the hosted page's look-up; `revoke`: RevokeRegistrationCodes
//!   (and revoking on registration); `passkeys`: the passkey ceremony;
//!   `delivery`: the outbox worker's use cases; `sessions`: sign-in sessions (SessionService v2)
//!   with the passkey challenge and check, username-less included.
//! - `lookups`: what a login UI reads before a sign-in: ListUsers, ListAuthenticationMethodTypes,
//!   ListOrganizations (rows filtered by the caller's read permissions) and the settings reads
//!   ([`LOGIN_FACTS`]: passkeys only).
//! - `oidc`: ProjectService / ApplicationService (projects and OIDC clients) and the
//!   authorization code flow: authorize, GetAuthRequest / CreateCallback, code exchange with
//!   PKCE, refresh rotation, userinfo, end session.
//! - `machine_credentials`: AddSecret, AddKey; `client_auth`: OAuth2 client authentication,
//!   rate limit, [`OAuthError`]; `grants`: the token endpoint, introspection, revocation.
//! - `notifications`: the events webhook's worker use cases (outcomes, code expiry checks).
//! - `status`: GetStatus, the operator's view of a running server ([`Status`]).

use std::sync::Arc;

use crate::error::{Error, Kind, Result};
use crate::keys::ServerKeys;
use crate::ports::{Clock, Entropy, IdGenerator};
use crate::store::{Store, UniqueClaim};
use crate::time::Timestamp;
use crate::view::{Membership, UserState, UserView};

#[macro_use]
mod locks;
mod administrators;
mod bootstrap;
mod bulk;
mod client_auth;
mod codes;
pub mod config;
mod delivery;
mod grants;
mod links;
mod lookups;
mod machine_credentials;
mod notifications;
mod oidc;
mod orgs;
mod passkeys;
mod revoke;
mod sessions;
mod status;
#[cfg(test)]
mod testing;
mod tokens;
mod tx;
mod users;

pub use bootstrap::Bootstrapped;
pub use bulk::{BulkCreated, BulkOutcome, BulkRequest, BulkResult, BulkSelection, MAX_BULK_USERS};
pub use client_auth::{CLIENT_FAILURE_WINDOW, ClientCredentials, OAuthError, OAuthErrorKind};
pub use codes::RegistrationInfo;
pub use config::{
    AppConfig, DEFAULT_ACCESS_TOKEN_LIFETIME_SECS, DEFAULT_CODE_LIFETIME_SECS, DEFAULT_DELIVERY_LEASE_SECS,
    DEFAULT_DELIVERY_MAX_AGE_SECS, DEFAULT_DELIVERY_MAX_ATTEMPTS, DEFAULT_DELIVERY_RETRY_MAX_SECS,
    DEFAULT_DELIVERY_RETRY_MIN_MS, DeliveryPolicy, backoff,
};
pub use delivery::{Failed, LinkMessage, Prepared};
pub use grants::{TokenGranted, TokenRequest};
pub use links::{LinkCreated, LinkMedium, default_link_template};
pub use lookups::{
    AuthMethod, LOGIN_FACTS, LoginFacts, OrgList, OrgSearch, SettingsContext, UserList, UserSearch,
};
pub use machine_credentials::KeyAdded;
pub use notifications::{DEFAULT_EVENTS_LEASE_SECS, DEFAULT_EVENTS_MAX_AGE_SECS, events_policy};
pub use oidc::{
    AppCreated, AuthorizeParams, Authorized, Callback, NewApp, OidcClient, OidcTokens, user_claims,
};
pub use orgs::{OrgAdmin, OrgCreated};
pub use passkeys::{PasskeyListed, PasskeyStarted, RegisterPasskey};
pub use revoke::{CodesRevoked, REVOKED_ON_REGISTRATION, REVOKED_ON_REQUEST};
pub use sessions::{
    CHALLENGE_LIFETIME, ChallengeRequest, DateMethod, SessionChange, SessionList, SessionQuery,
    SessionWritten, UserCheck, query_invalid,
};
pub use status::Status;
pub use tokens::PatCreated;
pub use users::{NewHuman, NewMachine, UserCreated, UserRead};

/// Lower-case hex (see [`crate::hex`]).
pub use crate::hex::encode as hex;

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

impl Caller {
    pub(crate) fn memberships(&self) -> &[Membership] {
        &self.principal.memberships
    }

    pub(crate) fn user_id(&self) -> &str {
        &self.principal.user_id
    }
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

pub(crate) fn unauthenticated() -> Error {
    Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Missing")
}

pub(crate) const NEVER_EXPIRES: Timestamp = Timestamp::from_unix_secs(253_402_300_799); // 9999-12-31T23:59:59Z

pub fn user_not_found() -> Error {
    Error::new(Kind::NotFound, "COMMAND-M9dsd", "Errors.User.NotFound")
}

pub(crate) fn org_not_found() -> Error {
    Error::new(Kind::NotFound, "ORG-o0Ng9", "Errors.Org.NotFound")
}

pub(crate) fn token_invalid() -> Error {
    Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Invalid")
}

pub(crate) fn not_machine() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Sdj4f", "Errors.User.NotMachine")
}

pub(crate) fn not_human() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-xu3Ag", "Errors.User.NotHuman")
}

pub(crate) fn not_active() -> Error {
    Error::new(Kind::FailedPrecondition, "COMMAND-Nd7ah", "Errors.User.NotActive")
}

pub(crate) fn expiration_in_past() -> Error {
    Error::new(Kind::InvalidArgument, "COMMAND-dv3t5", "Errors.PAT.ExpirationInPast")
}

pub(crate) fn username_claim(username: &str) -> UniqueClaim {
    UniqueClaim {
        kind: "username",
        value: username.to_lowercase(),
        taken: Error::new(Kind::AlreadyExists, "COMMAND-k2unb", "Errors.User.UsernameTaken"),
    }
}

pub(crate) fn user_id_claim(id: &str) -> UniqueClaim {
    UniqueClaim {
        kind: "user_id",
        value: id.to_string(),
        taken: Error::new(Kind::AlreadyExists, "V3-DKcYh", "Errors.User.AlreadyExists"),
    }
}

pub struct App {
    deps: Deps,
    cfg: AppConfig,
    tokens: tokens::TokenCache,
    /// OAuth2 client failures (rate limit) and seen assertion ids (replay protection).
    oauth: client_auth::OAuthState,
    locks: locks::AggregateLocks,
    /// Link requests waiting to be decided with others for the same user.
    link_groups: links::LinkGroups,
    /// Told about sessions and sign-ins (metrics); counts nothing unless [`App::with_observer`].
    observer: Arc<dyn crate::ports::Observer>,
    /// When the app was built (the server's start), for GetStatus's uptime.
    started_at: Timestamp,
}

impl App {
    pub fn new(deps: Deps, cfg: AppConfig) -> App {
        let started_at = deps.clock.now();
        App {
            started_at,
            deps,
            cfg,
            tokens: tokens::TokenCache::default(),
            oauth: client_auth::OAuthState::default(),
            locks: locks::AggregateLocks::default(),
            link_groups: links::LinkGroups::default(),
            observer: Arc::new(crate::ports::NoObserver),
        }
    }

    /// This app, telling `observer` about sessions created and passkey sign-ins.
    pub fn with_observer(mut self, observer: Arc<dyn crate::ports::Observer>) -> App {
        self.observer = observer;
        self
    }

    /// Hold the write lock of one aggregate (by id) for the duration of a command.
    async fn lock_aggregate(&self, id: &str) -> async_lock::MutexGuard<'_, ()> {
        self.locks.lock(id).await
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

    fn next_id(&self) -> String {
        self.deps.ids.next_id()
    }

    /// Load: a user that exists and is not deleted, else 404.
    async fn visible_user(&self, user_id: &str) -> Result<UserView> {
        self.deps
            .store
            .user(user_id)
            .await?
            .filter(|u| u.state != UserState::Deleted)
            .ok_or_else(user_not_found)
    }
}
