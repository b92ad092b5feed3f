//! passlink's domain core: no I/O, no async runtime, no protocol.
//!
//! Layout (read in this order):
//! - [`event`]: the facts passlink records, with ZITADEL's event type names.
//! - [`view`]: read models folded from events; [`code`]: the registration code state machine;
//!   [`passkey`]: passkeys folded from a user's events, and the WebAuthn ceremony.
//! - [`permission`]: roles → permissions, and the target-org authorization rule.
//! - [`template`], [`validate`]: request checks (URL templates, field lengths).
//! - [`secret`]: codes, tokens, keys (redacting `Debug`, HMAC, AES-GCM); [`oauth`]: signing keys,
//!   access tokens, machine keys, assertions, client-secret hashes.
//! - [`error`]: the one error type (kind, ZITADEL id, message key).
//! - [`ports`], [`store`]: what the core needs from outside (clock, ids, entropy, storage).
//! - [`ids`]: sonyflake ids driven by an injected clock.
//! - [`app`]: the use cases, `load → decide → append`, generic over the ports.
//! - `contract` (feature `contract-tests`): the test suite every [`store::Store`] adapter runs.

pub mod app;
pub mod code;
#[cfg(feature = "contract-tests")]
pub mod contract;
pub mod error;
pub mod event;
pub mod hex;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod passkey;
pub mod permission;
pub mod ports;
pub mod secret;
pub mod store;
pub mod template;
pub mod time;
pub mod validate;
pub mod view;

pub use error::{Error, Kind, Result};
