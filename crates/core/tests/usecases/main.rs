//! Given/when/then tests of every use case of `passlink_core::app::App` on the in-memory store
//! (`passlink-store-memory`), with a fixed clock, sequential ids and seeded entropy: no socket,
//! no file. They assert on returned values and on the recorded events.
//!
//! Layout: `world` (the given side: an app, callers with roles, the permission matrix), then one
//! module per area: `auth`, `bootstrap`, `users`, `orgs`, `admins`, `pats`, `links`, `codes`
//! (the passkey ceremony and code states), `policy` (the authenticator policy in it), `bulk`
//! (CreateRegistrationLinks), `delivery`, `notifications` (the events webhook's outbox), `oauth`, `sessions` (sign-in with the passkey), `oidc` (projects, applications, the
//! authorization code flow),
//! `lookups` (ListUsers, ListAuthenticationMethodTypes, ListOrganizations, the settings reads),
//! `properties` (property tests of the parsers and checks an attacker reaches: URL templates,
//! codes, bearer tokens, JWTs, WebAuthn credentials; `PROPTEST_CASES` sets the cases).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admins;
mod auth;
mod bootstrap;
mod bulk;
mod codes;
mod delivery;
mod links;
mod lookups;
mod notifications;
mod oauth;
mod oidc;
mod orgs;
mod pats;
mod policy;
mod properties;
mod sessions;
mod users;
mod world;
