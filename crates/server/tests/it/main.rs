//! The in-process integration suite: the real server on 127.0.0.1:0, driven over real sockets by
//! a real client per protocol. Every case runs on REST, Connect JSON, Connect binary, gRPC and
//! gRPC-web, and responses are compared field by field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation is a panic

mod clients;
mod harness;
mod setup;

mod admin;
mod authenticators;
mod bulk;
mod connection;
mod delivery;
mod events;
mod headers;
mod language;
mod limits;
mod link;
mod login_page;
mod lookups;
mod matrix;
mod metrics;
mod oauth;
mod oidc;
mod openapi;
mod ops;
mod passkey;
mod policy;
mod properties;
mod restart;
mod revoke;
mod session;
mod tls;
mod trust;
