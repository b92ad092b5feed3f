//! passlink's domain core: no I/O, no async runtime, no protocol.
//!
//! Layout (read in this order; no two modules import each other):
//! - [`app`]: the use cases, one module per area (bootstrap, orgs, users, administrators,
//!   tokens, links, passkeys, codes, delivery, machine credentials, OAuth2 client auth and
//!   grants), each `load → decide → append` with a pure `decide`; [`app::config`] holds every
//!   default. See the `app` module's note for its files.
//! - [`notify`]: the events webhook's notifications (which events, their JSON, the store
//!   decorator that writes them with the events).
//! - [`store`]: the storage port (one commit per command); [`ports`]: clock, ids, entropy,
//!   trusted issuers; [`ids`]: sonyflake ids driven by an injected clock.
//! - [`view`]: read models and how events fold into them; [`code`]: the registration code
//!   state machine; [`passkey`]: the passkeys read model (folded from a user's events), the WebAuthn
//!   ceremony (webauthn-rs) and the sign-in assertion check (`passkey/assertion.rs`, ring for ES256).
//! - [`policy`]: the authenticator policy (AAGUID allow-/deny-lists per instance and organization,
//!   attestation none or verified), parsed from its JSON file and checked at registration.
//! - [`aaguid`]: which authenticator made a passkey (its AAGUID → provider name and icons, from
//!   a catalog in the community list's format).
//! - [`session`]: sign-in sessions (SessionService v2) folded from their events, the store's
//!   session filter and the credential → user index of username-less sign-in.
//! - [`event`]: the facts passlink records, with ZITADEL's event type names.
//! - [`permission`]: roles → permissions, and the target-org authorization rule.
//! - [`template`], [`validate`]: request checks (URL templates, field lengths).
//! - [`query`]: the search queries of the list RPCs (text methods, user and organization
//!   filters, paging) and the narrowing a store reads candidate users by.
//! - [`keys`]: the server's keys (code HMAC, AES-GCM seal, token signing); [`jwt`]: signing
//!   keys, JWKS, access tokens, machine key pairs, assertions; [`secret`]: secret values (codes,
//!   tokens, client-secret hashes) with redacting `Debug`; [`hex`].
//! - [`error`]: the one error type (kind, ZITADEL id, message key); [`time`]: timestamps.
//! - `tests/usecases`: given/when/then tests of every use case on `passlink-store-memory`.
//!   The storage contract suite every [`store::Store`] adapter runs is `passlink-store-contract`.

pub mod aaguid;
pub mod app;
pub mod code;
pub mod error;
pub mod event;
pub mod hex;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod notify;
pub mod oidc;
pub mod passkey;
pub mod permission;
pub mod policy;
pub mod ports;
pub mod query;
pub mod secret;
pub mod session;
pub mod store;
pub mod template;
pub mod time;
pub mod validate;
pub mod view;

pub use error::{Error, Kind, Result};
