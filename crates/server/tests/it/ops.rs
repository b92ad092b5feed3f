//! gRPC health checking and server reflection on the API's port, over real sockets: Check over
//! gRPC (connectrpc's client, h2c) and Connect JSON (plain HTTP), Watch's first message and its
//! end when the server shuts down, and reflection over gRPC (list_services, a method's file with
//! its imports, NOT_FOUND for an unknown symbol).

use std::collections::BTreeSet;
use std::time::Duration;

use buffa::Message as _;
use buffa_descriptor::generated::descriptor::FileDescriptorProto;
use connectrpc::client::{ClientConfig, HttpClient};
use connectrpc::{ErrorCode, Protocol};
use passlink_wire::grpc::health::v1::health_check_response::ServingStatus;
use passlink_wire::grpc::health::v1::{HealthCheckRequest, HealthClient};
use passlink_wire::grpc::reflection::v1;
use passlink_wire::grpc::reflection::v1::__buffa::oneof::server_reflection_request::MessageRequest;
use passlink_wire::grpc::reflection::v1::__buffa::oneof::server_reflection_response::MessageResponse;
use serde_json::{Value, json};

use crate::harness;

fn grpc_config(base: &str) -> (HttpClient, ClientConfig) {
    let config = ClientConfig::new(base.parse().unwrap()).with_protocol(Protocol::Grpc);
    (HttpClient::plaintext_http2_only(), config)
}

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest { service: service.to_string(), ..Default::default() }
}

#[tokio::test]
async fn health_check_over_grpc_and_connect() {
    let s = harness::start("ops-check").await;
    let (transport, config) = grpc_config(&s.base);
    let health = HealthClient::new(transport, config);
    for service in
        ["", "zitadel.user.v2.UserService", "zitadel.session.v2.SessionService", "grpc.health.v1.Health"]
    {
        let status = health.check(request(service)).await.unwrap().into_owned().status;
        assert_eq!(status, ServingStatus::SERVING, "gRPC Check {service:?}");
    }
    let unknown = health.check(request("zitadel.user.v2.NoSuchService")).await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::NotFound, "gRPC Check of an unknown service");

    // Connect JSON, no token (health needs none).
    let http = reqwest::Client::new();
    let connect = |body: Value| {
        http.post(format!("{}/grpc.health.v1.Health/Check", s.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let ok = connect(json!({})).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"status": "SERVING"}));
    let ok = connect(json!({"service": "zitadel.org.v2.OrganizationService"})).await.unwrap();
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"status": "SERVING"}));
    let unknown = connect(json!({"service": "nope.Service"})).await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "not_found");

    // No REST route: the health service is not among the protos' HTTP bindings.
    assert!(!passlink_wire::REST_ROUTES.iter().any(|r| r.2.starts_with("grpc.")));
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_watch_sends_the_status_at_once_and_ends_when_the_server_shuts_down() {
    let s = harness::start("ops-watch").await;
    let (transport, config) = grpc_config(&s.base);
    let health = HealthClient::new(transport, config);
    let mut watch = health.watch(request("")).await.unwrap();
    let first = watch.message().await.unwrap().expect("a first message").to_owned_message();
    assert_eq!(first.status, ServingStatus::SERVING);
    let mut unknown = health.watch(request("no.such.Service")).await.unwrap();
    let first = unknown.message().await.unwrap().expect("a first message").to_owned_message();
    assert_eq!(first.status, ServingStatus::SERVICE_UNKNOWN);

    // The shutdown does not wait for the open watches: they end.
    tokio::time::timeout(Duration::from_secs(10), s.server.shutdown())
        .await
        .expect("shutdown with open Watch streams finishes")
        .unwrap();
    let last = watch.message().await.unwrap().expect("NOT_SERVING before the end").to_owned_message();
    assert_eq!(last.status, ServingStatus::NOT_SERVING);
    let end = watch.message().await.unwrap_err();
    assert_eq!(end.code, ErrorCode::Unavailable);
    assert_eq!(unknown.message().await.unwrap_err().code, ErrorCode::Unavailable);
}

fn reflection_request(query: MessageRequest) -> v1::ServerReflectionRequest {
    v1::ServerReflectionRequest { message_request: Some(query), ..Default::default() }
}

#[tokio::test]
async fn reflection_over_grpc_lists_the_served_services_and_sends_files_with_their_imports() {
    let s = harness::start("ops-reflection").await;
    let (transport, config) = grpc_config(&s.base);
    let client = v1::ServerReflectionClient::new(transport, config);
    let mut stream = client.server_reflection_info().await.unwrap();
    for query in [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("zitadel.user.v2.UserService.AddHumanUser".into()),
        MessageRequest::FileContainingSymbol("zitadel.user.v2.AddHumanUserRequest".into()),
        MessageRequest::FileContainingSymbol("zitadel.user.v2.NoSuchMessage".into()),
        MessageRequest::FileByFilename("grpc/health/v1/health.proto".into()),
    ] {
        stream.send(reflection_request(query)).await.unwrap();
    }
    stream.close_send();
    let mut answers = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        answers.push(m.to_owned_message().message_response.expect("an answer"));
    }
    assert_eq!(answers.len(), 5, "one response per request");

    // Every service of the RPC table, plus health and reflection, and nothing else.
    let MessageResponse::ListServicesResponse(list) = &answers[0] else { panic!("{:?}", answers[0]) };
    let listed: BTreeSet<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    let table = passlink_server::rpc::table();
    let expected = passlink_server::ops::served_services(table.iter().map(|(p, _)| *p));
    assert_eq!(listed, expected.iter().map(String::as_str).collect::<BTreeSet<_>>());
    assert!(listed.contains("zitadel.session.v2.SessionService"));
    assert!(listed.contains("grpc.reflection.v1alpha.ServerReflection"));

    let files = |answer: &MessageResponse| -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(files) = answer else { panic!("{answer:?}") };
        files
            .file_descriptor_proto
            .iter()
            .map(|b| FileDescriptorProto::decode_from_slice(b).unwrap().name.unwrap_or_default())
            .collect()
    };
    let first = files(&answers[1]);
    assert_eq!(first[0], "zitadel/user/v2/user_service.proto");
    for import in
        ["google/api/annotations.proto", "google/protobuf/timestamp.proto", "zitadel/object/v2/object.proto"]
    {
        assert!(first.iter().any(|f| f == import), "{import} missing from {first:?}");
    }
    // Same file again on the same stream: only the file itself.
    assert_eq!(files(&answers[2]), ["zitadel/user/v2/user_service.proto"]);
    let MessageResponse::ErrorResponse(err) = &answers[3] else { panic!("{:?}", answers[3]) };
    assert_eq!(err.error_code, 5);
    assert_eq!(files(&answers[4]), ["grpc/health/v1/health.proto"]);
    s.server.shutdown().await.unwrap();
}
