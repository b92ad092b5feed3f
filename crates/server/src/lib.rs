//! passlink's server: configuration, wiring, and the four protocols on one port.
//!
//! Where a request goes (read in this order):
//! 1. [`http::router`]: one axum router. REST paths (from the protos' HTTP bindings) go to
//!    [`rest`]; `/healthz`, `/readyz` answer directly; everything else is the connectrpc service
//!    (gRPC, gRPC-web, Connect).
//! 2. [`auth::Authenticated`]: the dispatcher wrapper every protocol passes through: bearer token
//!    → principal (cached), `x-zitadel-orgid` → context org.
//! 3. [`rpc`]: one implementation per ZITADEL service: convert, call the core's
//!    [`App`](passlink_core::app::App), convert back. Errors map in [`error`], once per protocol.
//!
//! [`ui`] serves the hosted registration page the default link opens; [`oauth_endpoints`] the OAuth2
//! endpoints (discovery, JWKS, token, introspection, revocation).
//!
//! [`Server::start`] takes an already-bound listener (port 0 in tests) and runs until
//! [`Server::shutdown`]; `platform` holds the real clock, randomness and key files.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod inspect;
pub mod oauth_endpoints;
pub mod platform;
pub mod rest;
pub mod rpc;
pub mod trust;
pub mod ui;

pub use config::Config;
pub use http::Server;
