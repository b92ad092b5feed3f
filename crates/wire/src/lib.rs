//! passlink's wire types: generated from `proto/` (ZITADEL's packages, services, field names and
//! numbers), nothing hand-written but the route table's home.
//!
//! Layout:
//! - `zitadel::...`: buffa messages, views and connectrpc service traits/servers/clients, one
//!   module per proto package (`zitadel::user::v2beta`, `zitadel::org::v2`, ...).
//! - [`REST_ROUTES`]: the `google.api.http` bindings of every RPC, read from the protos.

#![allow(clippy::all, missing_docs, unreachable_pub)]

connectrpc::include_generated!();

include!(concat!(env!("OUT_DIR"), "/rest_routes.rs"));
