//! passlink's wire types: generated from `proto/` (ZITADEL's packages, services, field names and
//! numbers), nothing hand-written but the route table's home.
//!
//! Layout:
//! - `zitadel::...`: buffa messages, views and connectrpc service traits/servers/clients, one
//!   module per proto package (`zitadel::user::v2beta`, `zitadel::org::v2`, ...).
//! - [`REST_ROUTES`]: the `google.api.http` bindings of every RPC, read from the protos.
//! - [`FILE_DESCRIPTOR_SET`]: the compiled protos, for the wire-conformance check against
//!   ZITADEL's published descriptors (`examples/write-descriptors.rs`).

#![allow(clippy::all, missing_docs, unreachable_pub)]

connectrpc::include_generated!();

include!(concat!(env!("OUT_DIR"), "/rest_routes.rs"));

/// The compiled `proto/` files (a `google.protobuf.FileDescriptorSet` with source info).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/passlink.pb"));
