//! Stop and start on the same data directory: everything is there, sequences continue, the admin
//! token still works, pending delivery jobs survive.

use passlink_core::event::AggregateKind;
use serde_json::json;

use crate::clients::{self, Api};
use crate::harness;
use crate::setup::{LINK_V2BETA, TEMPLATE, human, ok};

#[tokio::test]
async fn restart_keeps_everything() {
    let dir = harness::temp_dir("restart");
    let s = harness::start_in(dir.clone()).await;
    let admin = s.admin_token.clone();
    let keys_before = std::fs::read(dir.join("keys.json")).unwrap();
    let rest = clients::Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let org = ok(rest
        .call("zitadel.org.v2.OrganizationService/AddOrganization", json!({"name": "r"}), Some(&admin), None)
        .await);
    let org = org["organizationId"].as_str().unwrap().to_string();
    let user = human(&rest, &admin, &org, "restart").await;
    let first =
        ok(rest.call(LINK_V2BETA, json!({"userId": user, "returnCode": {}}), Some(&admin), None).await);
    ok(rest
        .call(LINK_V2BETA, json!({"userId": user, "sendLink": {"urlTemplate": TEMPLATE}}), Some(&admin), None)
        .await);
    let events_before = s.server.app.store().events_of(AggregateKind::User, &user).await.unwrap();
    let jobs_before = s.server.app.store().pending_jobs(10).await.unwrap();
    s.server.shutdown().await.unwrap();

    let s2 = harness::start_in(dir.clone()).await;
    assert_eq!(s2.admin_token, admin, "the admin token file is kept");
    assert_eq!(std::fs::read(dir.join("keys.json")).unwrap(), keys_before, "keys are reused");
    let rest = clients::Rest { base: s2.base.clone(), http: reqwest::Client::new() };
    let got = ok(rest
        .call("zitadel.user.v2.UserService/GetUserByID", json!({"userId": user}), Some(&admin), None)
        .await);
    assert_eq!(got["user"]["userId"], user.as_str());
    assert_eq!(got["details"]["resourceOwner"], org.as_str());
    assert_eq!(s2.server.app.store().events_of(AggregateKind::User, &user).await.unwrap(), events_before);
    assert_eq!(s2.server.app.store().pending_jobs(10).await.unwrap(), jobs_before);
    let code_id = first["code"]["id"].as_str().unwrap();
    assert!(s2.server.app.store().code(code_id).await.unwrap().is_some());
    // Sequences continue.
    let next =
        ok(rest.call(LINK_V2BETA, json!({"userId": user, "returnCode": {}}), Some(&admin), None).await);
    assert_eq!(next["details"]["sequence"], (events_before.len() + 1).to_string());
    // Only one instance, one admin: no second bootstrap.
    let grpc = clients::Generated::new("grpc", &s2.base, connectrpc::Protocol::Grpc);
    ok(grpc
        .call("zitadel.user.v2.UserService/GetUserByID", json!({"userId": user}), Some(&admin), None)
        .await);
    s2.server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
