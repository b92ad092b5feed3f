//! gRPC's standard operational services, beside the API on the same port and over the same
//! protocols (gRPC, gRPC-web, Connect; no REST routes, no token):
//!
//! - [`health`]: `grpc.health.v1.Health` (Check, Watch) for the whole server (`""`) and for each
//!   service served; the status follows the store, as `/readyz` does.
//! - [`reflection`]: `grpc.reflection.v1.ServerReflection` and its `v1alpha` twin, answering from
//!   the descriptors compiled from `proto/` ([`passlink_wire::FILE_DESCRIPTOR_SET`]).
//!
//! The services both know are the ones [`rpc::table`](crate::rpc::table) serves, plus these three.

use std::sync::Arc;

use connectrpc::Chain;
use passlink_core::app::App;
use passlink_wire::grpc::health::v1::{HEALTH_SERVICE_NAME, HealthServer};
use passlink_wire::grpc::reflection::{v1, v1alpha};
use tokio::sync::watch;

pub mod health;
pub mod reflection;

/// The full names of the services served: the API's (from the RPC table's `pkg.Service/Method`
/// paths) and the operational ones, sorted, each once.
pub fn served_services<'a>(rpc_paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = rpc_paths
        .into_iter()
        .filter_map(|path| {
            path.trim_start_matches('/').split_once('/').map(|(service, _)| service.to_string())
        })
        .chain(
            [
                HEALTH_SERVICE_NAME,
                v1::SERVER_REFLECTION_SERVICE_NAME,
                v1alpha::SERVER_REFLECTION_SERVICE_NAME,
            ]
            .map(String::from),
        )
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The dispatcher of the operational services (chained after the API's in the router).
/// `stopping` turns true when the server shuts down: Watch streams end then.
pub fn dispatcher(
    app: Arc<App>,
    services: Vec<String>,
    stopping: watch::Receiver<bool>,
) -> Result<impl connectrpc::Dispatcher, String> {
    let descriptors = Arc::new(reflection::Descriptors::load(passlink_wire::FILE_DESCRIPTOR_SET, &services)?);
    let health = HealthServer::new(health::Health::new(app, services, stopping));
    let reflection = Chain(
        v1::ServerReflectionServer::new(reflection::Reflection::new(descriptors.clone())),
        v1alpha::ServerReflectionServer::new(reflection::Reflection::new(descriptors)),
    );
    Ok(Chain(health, reflection))
}
