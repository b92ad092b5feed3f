//! The supporting RPCs (organizations, users, tokens, administrators) on every protocol.

use serde_json::{Value, json};

use crate::clients::{self, has_rest};
use crate::harness;
use crate::setup::{LINK_V2, ok, world};

#[tokio::test]
async fn supporting_rpcs_on_every_protocol() {
    let s = harness::start("admin").await;
    let w = world(&s, "adm").await;
    for (i, api) in clients::all(&s.base).into_iter().enumerate() {
        let api = &*api;
        let n = api.name();
        // AddOrganization with a new human admin.
        let org = ok(api
            .call(
                "zitadel.org.v2.OrganizationService/AddOrganization",
                json!({"name": format!("org-{n}"), "admins": [{"human": {"profile": {"givenName": "A", "familyName": "B"},
                    "email": {"email": format!("owner-{n}@example.com")}}}]}),
                Some(&w.admin),
                None,
            )
            .await);
        let org_id = org["organizationId"].as_str().unwrap().to_string();
        assert_eq!(org["details"]["resourceOwner"], org_id.as_str());
        assert_eq!(org["createdAdmins"].as_array().unwrap().len(), 1);
        // Same name again: 409 AlreadyExists.
        let dup = api
            .call(
                "zitadel.org.v2.OrganizationService/AddOrganization",
                json!({"name": format!("org-{n}")}),
                Some(&w.admin),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(dup.code, 6, "[{n}] {dup:?}");

        for version in ["v2beta", "v2"] {
            let rpc = format!("zitadel.user.{version}.UserService/AddHumanUser");
            let r = ok(api
                .call(
                    &rpc,
                    json!({"organization": {"orgId": org_id}, "profile": {"givenName": "Grace", "familyName": "Hopper", "preferredLanguage": "en"},
                           "email": {"email": format!("grace-{n}-{version}@example.com"), "isVerified": true},
                           "password": {"password": "ignored-Secr3t!", "changeRequired": false}}),
                    Some(&w.admin),
                    None,
                )
                .await);
            let uid = r["userId"].as_str().unwrap().to_string();
            assert_eq!(r["details"]["resourceOwner"], org_id.as_str());
            assert_eq!(r["details"]["sequence"], "1");
            let got = ok(api
                .call(
                    &format!("zitadel.user.{version}.UserService/GetUserByID"),
                    json!({"userId": uid}),
                    Some(&w.admin),
                    None,
                )
                .await);
            let u = &got["user"];
            assert_eq!(u["userId"], uid.as_str());
            assert_eq!(u["state"], "USER_STATE_ACTIVE");
            assert_eq!(u["username"], format!("grace-{n}-{version}@example.com"));
            assert_eq!(u["human"]["profile"]["givenName"], "Grace");
            assert_eq!(u["human"]["profile"]["displayName"], "Grace Hopper");
            assert_eq!(
                u["human"]["email"],
                json!({"email": format!("grace-{n}-{version}@example.com"), "isVerified": true})
            );
            assert_eq!(got["details"]["resourceOwner"], org_id.as_str());
            // Deactivate, then delete: the user disappears.
            let d = ok(api
                .call(
                    &format!("zitadel.user.{version}.UserService/DeactivateUser"),
                    json!({"userId": uid}),
                    Some(&w.admin),
                    None,
                )
                .await);
            assert_eq!(d["details"]["sequence"], "2");
            let again = api
                .call(
                    &format!("zitadel.user.{version}.UserService/DeactivateUser"),
                    json!({"userId": uid}),
                    Some(&w.admin),
                    None,
                )
                .await;
            assert_eq!(again.unwrap_err().code, 9);
            ok(api
                .call(
                    &format!("zitadel.user.{version}.UserService/DeleteUser"),
                    json!({"userId": uid}),
                    Some(&w.admin),
                    None,
                )
                .await);
            let gone = api
                .call(
                    &format!("zitadel.user.{version}.UserService/GetUserByID"),
                    json!({"userId": uid}),
                    Some(&w.admin),
                    None,
                )
                .await;
            assert_eq!(gone.unwrap_err().code, 5);
            // The username is free again after the removal; taken usernames are AlreadyExists.
            let same = |given: &str| {
                json!({"organization": {"orgId": org_id}, "profile": {"givenName": given, "familyName": "Again"},
                       "email": {"email": format!("grace-{n}-{version}@example.com")}})
            };
            let again = ok(api.call(&rpc, same("Grace"), Some(&w.admin), None).await);
            assert_ne!(again["userId"], uid.as_str());
            let dup = api.call(&rpc, same("Dup"), Some(&w.admin), None).await.unwrap_err();
            assert_eq!(dup.code, 6, "[{n}] {dup:?}");
        }

        if has_rest("zitadel.user.v2.UserService/CreateUser") {
            panic!("CreateUser has no REST binding in ZITADEL");
        }
        if n == "rest" {
            continue; // CreateUser, AddPersonalAccessToken: RPC protocols only, as in ZITADEL.
        }
        // CreateUser (machine) + AddPersonalAccessToken + CreateAdministrator, then use the token.
        let m = ok(api
            .call(
                "zitadel.user.v2.UserService/CreateUser",
                json!({"organizationId": org_id, "username": format!("svc-{n}"), "machine": {"name": "svc"}}),
                Some(&w.admin),
                None,
            )
            .await);
        let mid = m["id"].as_str().unwrap().to_string();
        assert!(m["creationDate"].is_string());
        let h = ok(api
            .call("zitadel.user.v2.UserService/CreateUser", json!({"organizationId": org_id, "human": {"profile": {"givenName": "H", "familyName": "U"}, "email": {"email": format!("h-{n}@example.com")}}}), Some(&w.admin), None)
            .await);
        let hid = h["id"].as_str().unwrap().to_string();
        let pat = ok(api
            .call(
                "zitadel.user.v2.UserService/AddPersonalAccessToken",
                json!({"userId": mid, "expirationDate": "2099-01-01T00:00:00Z"}),
                Some(&w.admin),
                None,
            )
            .await);
        let token = pat["token"].as_str().unwrap().to_string();
        assert!(!pat["tokenId"].as_str().unwrap().is_empty());
        // Without a role the token authenticates but grants nothing.
        let denied = api
            .call(LINK_V2, json!({"userId": hid, "returnCode": {}}), Some(&token), None)
            .await
            .unwrap_err();
        assert_eq!(denied.code, 7);
        let adm = ok(api
            .call(
                "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
                json!({"userId": mid, "resource": {"organizationId": org_id}, "roles": ["ORG_OWNER"]}),
                Some(&w.admin),
                None,
            )
            .await);
        assert!(adm["creationDate"].is_string());
        // The new role applies at once.
        let r = ok(api.call(LINK_V2, json!({"userId": hid, "returnCode": {}}), Some(&token), None).await);
        assert_eq!(r["details"]["resourceOwner"], org_id.as_str());
        // Invalid role for the scope, and a PAT for a human: 400s.
        let bad = api
            .call(
                "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
                json!({"userId": mid, "resource": {"instance": true}, "roles": ["ORG_OWNER"]}),
                Some(&w.admin),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(bad.code, 3, "[{n}] {bad:?}");
        let human_pat = api
            .call(
                "zitadel.user.v2.UserService/AddPersonalAccessToken",
                json!({"userId": hid}),
                Some(&w.admin),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(human_pat.code, 9);
        // Deactivating the machine user invalidates its token at once.
        ok(api
            .call("zitadel.user.v2.UserService/DeactivateUser", json!({"userId": mid}), Some(&w.admin), None)
            .await);
        let e = api
            .call(LINK_V2, json!({"userId": hid, "returnCode": {}}), Some(&token), None)
            .await
            .unwrap_err();
        assert_eq!(e.code, 16, "[{n}] deactivated caller");
        let _: &Value = &org;
        let _ = i;
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_readiness() {
    let s = harness::start("health").await;
    let c = reqwest::Client::new();
    assert_eq!(c.get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);
    assert_eq!(c.get(format!("{}/readyz", s.base)).send().await.unwrap().status(), 200);
    // CORS: another origin may call the API (preflight, then the call), for every protocol path.
    for path in ["/v2/users/1/passkeys", "/zitadel.user.v2.UserService/RegisterPasskey"] {
        let pre = c
            .request(reqwest::Method::OPTIONS, format!("{}{path}", s.base))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,connect-protocol-version")
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{path}: {}", pre.status());
        assert_eq!(pre.headers()["access-control-allow-origin"], "*");
        let allowed = pre.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("connect-protocol-version"),
            "{allowed}"
        );
    }
    let r = c
        .post(format!("{}/v2/users/1/passkeys", s.base))
        .header("origin", "https://app.example.com")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.status(), 401);
    // A REST path with the wrong method: grpc-gateway's 405 with code 12.
    let r = c.get(format!("{}/v2beta/users/1/passkeys/registration_link", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"code": 12, "message": "Method Not Allowed"})
    );
    // The database disappears: not ready, but still alive.
    std::fs::remove_file(s.dir.join("passlink.db")).unwrap();
    assert_eq!(c.get(format!("{}/readyz", s.base)).send().await.unwrap().status(), 503);
    assert_eq!(c.get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);
    s.server.shutdown().await.unwrap();
}

/// passlink.admin.v1 GetStatus on every protocol: version, store, readiness, uptime and the
/// outbox; instance-wide `iam.read` only (IAM_OWNER, IAM_OWNER_VIEWER), 403 for everyone else.
#[tokio::test]
async fn get_status_on_every_protocol_for_instance_readers_only() {
    const STATUS: &str = "passlink.admin.v1.AdminService/GetStatus";
    let s = harness::start("status").await;
    let w = world(&s, "st").await;
    let grpc = clients::Generated::new("grpc", &s.base, connectrpc::Protocol::Grpc);
    let (_, viewer) =
        crate::setup::caller(&grpc, &w.admin, &w.org_a, "st-viewer", &["IAM_OWNER_VIEWER"]).await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let n = api.name();
        for token in [&w.admin, &viewer] {
            let st = ok(api.call(STATUS, json!({}), Some(token), None).await);
            assert_eq!(st["version"], env!("CARGO_PKG_VERSION"), "[{n}] {st}");
            assert_eq!(
                (st["store"].as_str(), st["storeReady"].as_bool()),
                (Some("sqlite"), Some(true)),
                "[{n}]"
            );
            assert!(
                st["startTime"].is_string() && st["uptime"].as_str().is_some_and(|u| u.ends_with('s')),
                "[{n}] {st}"
            );
            // No links were sent: every count is zero (and omitted).
            assert!(st["outbox"].as_object().is_none_or(|o| o.values().all(|v| v == 0)), "[{n}] {st}");
        }
        for token in [&w.org_owner_a, &w.iam_user_manager, &w.no_role] {
            let err = api.call(STATUS, json!({}), Some(token), None).await.unwrap_err();
            assert_eq!(err.code, 7, "[{n}] {err:?}");
        }
        let err = api.call(STATUS, json!({}), None, None).await.unwrap_err();
        assert_eq!(err.code, 16, "[{n}] {err:?}");
    }
}
