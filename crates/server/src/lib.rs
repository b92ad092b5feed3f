//! passlink's server: configuration, wiring, and the four protocols on one port.
//!
//! Where a request goes (read in this order):
//! 1. [`server::router`]: one axum router. REST paths (from the protos' HTTP bindings) go to
//!    [`rest`]; `/openapi.json` (the REST routes' OpenAPI document, [`api::Api::openapi`]), `/healthz`, `/readyz` answer directly; [`ui`] serves the hosted registration page (and [`aaguid`] its authenticator look-up),
//!    [`ui_login`] the hosted sign-in pages (`/ui/login` for OIDC, the demo page; an in-process login client), [`oauth_endpoints`] the OAuth2 endpoints and [`oidc_endpoints`] OpenID Connect's authorize, userinfo and end-session; everything else is connectrpc's service (gRPC,
//!    gRPC-web, Connect) over [`api::Api`], and after it [`ops`]: gRPC health checking and server
//!    reflection (no token, no REST routes).
//! 2. [`api`]: every RPC is one entry of [`rpc::table`]; the entry decodes the request once,
//!    authenticates it ([`auth::authenticate`]: bearer token → cached principal,
//!    `x-zitadel-orgid` → context org), calls the handler and maps a core error to the
//!    protocol's shape ([`error`]: `ConnectError` or grpc-gateway's status JSON).
//! 3. [`rpc`]: one async handler per RPC: convert ([`convert`], wire ↔ domain), call the core's
//!    [`App`](passlink_core::app::App), convert back.
//!
//! The path of CreatePasskeyRegistrationLink from the socket to the commit, one hop per line:
//! - REST:
//!   1. `server.rs:router` (axum matches the route built by `api.rs:Api::rest_routes`)
//!   2. `api.rs:Rpc::rest` (decode the body once, set the path parameters, authenticate, call
//!      the handler; a core error → `error.rs:to_rest`)
//!   3. `rpc/user.rs:create_passkey_registration_link` (convert, call the core)
//!   4. `core: App::create_passkey_link` (load → decide → append; one user's concurrent
//!      requests are decided and appended as one group)
//!   5. `store-sqlite: SqliteStore::commit` (its writer thread group-commits the transaction)
//! - gRPC, gRPC-web, Connect:
//!   1. `server.rs:router` (fallback: connectrpc's `ConnectRpcService` reads the protocol's
//!      framing; `api.rs:Api::call_unary` finds the table entry)
//!   2. `api.rs:Rpc::rpc` (authenticate, decode the payload once, call the handler; a core error
//!      → `error.rs:to_connect`)
//!   3. to 5. as for REST.
//!
//! Around every route, [`observe`] gives each response its `x-request-id`, records the request
//! metrics and logs one line per request; inside it, [`limits`] refuses a body over the limit
//! by its `Content-Length`, tells the routes the client's address, and rate limits failed
//! attempts on the hosted pages and OAuth endpoints (the RPC entries that redeem codes or check
//! sessions are limited in [`api`], where their targets are known); [`metrics`] holds every metric and renders
//! `GET /metrics` (on the main port, or on `--metrics-listen`'s own listener).
//!
//! Beside the delivery worker, [`events`] runs the events webhook's worker (enrollment events to
//! the application; `passlink_core::notify`).
//!
//! Before the router: [`listen`] accepts the connections of the main port (plain TCP, or TLS
//! with [`tls`]: ALPN h2/http/1.1, a certificate reloaded on SIGHUP) and serves each with hyper
//! (HTTP/1.1 or HTTP/2) under the connection limits ([`listen::ConnLimits`]: header and body
//! read timeouts, header size and count, HTTP/2 streams and resets).
//!
//! [`Server::start`] takes an already-bound listener (port 0 in tests) and runs until
//! [`Server::shutdown`]; [`assemble`] builds what it serves (the core app on the configured
//! store, the first start's bootstrap, the delivery worker); `platform` holds the real clock and
//! randomness, [`keyfile`] the key file (modes, rotation), [`authenticator_policy`] the
//! authenticator policy file and the attestation roots (shipped `data/attestation-roots.pem`,
//! `--attestation-roots`) read at start.

pub mod aaguid;
pub mod api;
pub mod assemble;
pub mod auth;
pub mod authenticator_policy;
pub mod backup;
pub mod config;
pub mod convert;
pub mod error;
pub mod events;
pub mod inspect;
pub mod keyfile;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod oauth_endpoints;
pub mod observe;
pub mod oidc_endpoints;
pub mod ops;
pub mod platform;
pub mod rest;
pub mod rpc;
pub mod server;
pub mod tls;
pub mod trust;
pub mod ui;
pub mod ui_login;
pub mod ui_text;

pub use config::Config;
pub use server::Server;
