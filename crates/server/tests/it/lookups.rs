//! What a login UI reads before a sign-in, on every protocol: ListUsers, ListAuthenticationMethodTypes,
//! ListOrganizations and the four SettingsService reads, with ZITADEL's permissions.

use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::clients::{self, Rest};
use crate::harness;
use crate::passkey::{REGISTER, VERIFY, create_credential, origin, returned_code, start, verify};
use crate::setup::{human, ok, world};

const LIST_USERS: &str = "zitadel.user.v2.UserService/ListUsers";
const AUTH_METHODS: &str = "zitadel.user.v2.UserService/ListAuthenticationMethodTypes";
const LIST_ORGS: &str = "zitadel.org.v2.OrganizationService/ListOrganizations";
const LOGIN: &str = "zitadel.settings.v2.SettingsService/GetLoginSettings";
const BRANDING: &str = "zitadel.settings.v2.SettingsService/GetBrandingSettings";
const SECURITY: &str = "zitadel.settings.v2.SettingsService/GetSecuritySettings";
const TRANSLATION: &str = "zitadel.settings.v2.SettingsService/GetHostedLoginTranslation";
const IDPS: &str = "zitadel.settings.v2.SettingsService/GetActiveIdentityProviders";

fn ids(r: &Value) -> Vec<String> {
    r["result"]
        .as_array()
        .map(|a| a.iter().map(|u| u["userId"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn org_ids(r: &Value) -> Vec<String> {
    r["result"]
        .as_array()
        .map(|a| a.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[track_caller]
fn failure(r: clients::Outcome, code: u32, id: &str, what: &str) {
    let f = r.err().unwrap_or_else(|| panic!("{what}: expected a failure"));
    assert_eq!(f.code, code, "{what}: {f:?}");
    assert!(f.details.iter().any(|(i, _)| i == id), "{what}: {f:?}");
}

#[tokio::test]
async fn list_users_on_every_protocol() {
    let s = harness::start("lookups-users").await;
    let w = world(&s, "lku").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let extra = human(&rest, &w.admin, &w.org_a, "lku-second").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let n = api.name();
        // By login name, any case: the same User GetUserByID returns.
        let r = ok(api
            .call(
                LIST_USERS,
                json!({"queries": [{"loginNameQuery": {"loginName": "LKU-HA@example.com", "method": "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE"}}]}),
                Some(&w.admin),
                None,
            )
            .await);
        assert_eq!(ids(&r), vec![w.human_a.clone()], "[{n}] {r}");
        assert_eq!(r["details"]["totalResult"], "1", "[{n}]");
        assert!(r["details"]["timestamp"].is_string(), "[{n}]");
        let got = ok(api
            .call(
                "zitadel.user.v2.UserService/GetUserByID",
                json!({"userId": w.human_a}),
                Some(&w.admin),
                None,
            )
            .await);
        assert_eq!(r["result"][0], got["user"], "[{n}]");

        // By email, in an organization, nested, paged.
        let r = ok(api
            .call(
                LIST_USERS,
                json!({"query": {"offset": "0", "limit": 1, "asc": true},
                       "queries": [{"organizationIdQuery": {"organizationId": w.org_a}},
                                   {"orQuery": {"queries": [{"emailQuery": {"emailAddress": "lku-ha@example.com"}},
                                                            {"notQuery": {"query": {"typeQuery": {"type": "TYPE_MACHINE"}}}}]}}]}),
                Some(&w.admin),
                None,
            )
            .await);
        assert_eq!(r["details"]["totalResult"], "2", "[{n}] humans of A: {r}");
        let mut both = [w.human_a.clone(), extra.clone()];
        both.sort();
        assert_eq!(ids(&r), [both[0].clone()], "[{n}]");

        // Rows the caller may not read are left out: an org owner of A sees A's user only; a
        // caller without roles sees none (no error).
        let mine = json!({"queries": [{"inUserIdsQuery": {"userIds": [w.human_a, w.human_b]}}]});
        assert_eq!(
            ids(&ok(api.call(LIST_USERS, mine.clone(), Some(&w.org_owner_a), None).await)),
            vec![w.human_a.clone()]
        );
        let none = ok(api.call(LIST_USERS, mine, Some(&w.no_role), None).await);
        assert!(ids(&none).is_empty() && none["details"]["totalResult"].is_null(), "[{n}] {none}");

        // An empty query is invalid; too deep a nesting too; no token is 401.
        failure(
            api.call(LIST_USERS, json!({"queries": [{}]}), Some(&w.admin), None).await,
            3,
            "GRPC-vR9nC",
            n,
        );
        let mut deep = json!({"inUserIdsQuery": {"userIds": ["x"]}});
        for _ in 0..21 {
            deep = json!({"notQuery": {"query": deep}});
        }
        failure(
            api.call(LIST_USERS, json!({"queries": [deep]}), Some(&w.admin), None).await,
            3,
            "USER-zsQ97",
            n,
        );
        let anon = api.call(LIST_USERS, json!({}), None, None).await.unwrap_err();
        assert_eq!(anon.code, 16, "[{n}]");
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn auth_methods_on_every_protocol() {
    let s = harness::start("lookups-auth").await;
    let w = world(&s, "lka").await;
    // Enroll a passkey for human A (REST).
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let (cid, code) = returned_code(&rest, &w.admin, &w.human_a).await;
    let started = ok(start(&rest, REGISTER, &w.human_a, (&cid, &code), None).await);
    let cred = create_credential(
        &mut SoftPasskey::new(true),
        &origin(&s),
        &started["publicKeyCredentialCreationOptions"],
    );
    ok(verify(&rest, VERIFY, &w.human_a, started["passkeyId"].as_str().unwrap(), cred, None).await);
    for api in clients::all(&s.base) {
        let api = &*api;
        let n = api.name();
        let r = ok(api.call(AUTH_METHODS, json!({"userId": w.human_a}), Some(&w.admin), None).await);
        assert_eq!(r["authMethodTypes"], json!(["AUTHENTICATION_METHOD_TYPE_PASSKEY"]), "[{n}] {r}");
        assert_eq!(r["details"]["totalResult"], "1", "[{n}]");
        // The org owner of A may read; no passkey for B's user.
        ok(api.call(AUTH_METHODS, json!({"userId": w.human_a}), Some(&w.org_owner_a), None).await);
        let r = ok(api.call(AUTH_METHODS, json!({"userId": w.human_b}), Some(&w.admin), None).await);
        assert!(r["authMethodTypes"].is_null(), "[{n}] {r}");
        // Outside the caller's org: 404; no user.read anywhere: 403; unknown: 404.
        failure(
            api.call(AUTH_METHODS, json!({"userId": w.human_b}), Some(&w.org_owner_a), None).await,
            5,
            "COMMAND-M9dsd",
            n,
        );
        failure(
            api.call(AUTH_METHODS, json!({"userId": w.human_a}), Some(&w.no_role), None).await,
            7,
            "AUTH-5mWD2",
            n,
        );
        failure(
            api.call(AUTH_METHODS, json!({"userId": "nope"}), Some(&w.admin), None).await,
            5,
            "COMMAND-M9dsd",
            n,
        );
        // The domain filter (REST: a query parameter, `domainQuery.domain=…`).
        let other = json!({"userId": w.human_a, "domainQuery": {"domain": "other.example.com"}});
        let r = ok(api.call(AUTH_METHODS, other, Some(&w.admin), None).await);
        assert!(r["authMethodTypes"].is_null(), "[{n}] {r}");
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn list_organizations_on_every_protocol() {
    let s = harness::start("lookups-orgs").await;
    let w = world(&s, "lko").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let n = api.name();
        let by_name = json!({"sortingColumn": "ORGANIZATION_FIELD_NAME_NAME", "query": {"asc": true},
                             "queries": [{"nameQuery": {"name": "lko-", "method": "TEXT_QUERY_METHOD_STARTS_WITH"}}]});
        let r = ok(api.call(LIST_ORGS, by_name.clone(), Some(&w.admin), None).await);
        assert_eq!(org_ids(&r), [w.org_a.clone(), w.org_b.clone()], "[{n}] {r}");
        assert_eq!(r["details"]["totalResult"], "2", "[{n}]");
        let a = &r["result"][0];
        assert_eq!(a["name"], "lko-a");
        assert_eq!(a["state"], "ORGANIZATION_STATE_ACTIVE");
        assert_eq!(a["details"]["resourceOwner"], w.org_a.as_str());
        assert!(a.get("primaryDomain").is_none(), "[{n}] organizations have no domain");
        // Only what the caller may read (org.read).
        assert_eq!(
            org_ids(&ok(api.call(LIST_ORGS, by_name.clone(), Some(&w.org_owner_a), None).await)),
            vec![w.org_a.clone()]
        );
        assert!(org_ids(&ok(api.call(LIST_ORGS, by_name, Some(&w.no_role), None).await)).is_empty());
        // The default organization; by id.
        let d =
            ok(api.call(LIST_ORGS, json!({"queries": [{"defaultQuery": {}}]}), Some(&w.admin), None).await);
        assert_eq!(d["details"]["totalResult"], "1", "[{n}] {d}");
        let r = ok(api
            .call(LIST_ORGS, json!({"queries": [{"idQuery": {"id": w.org_b}}]}), Some(&w.admin), None)
            .await);
        assert_eq!(org_ids(&r), vec![w.org_b.clone()]);
        failure(
            api.call(LIST_ORGS, json!({"queries": [{}]}), Some(&w.admin), None).await,
            3,
            "GRPC-vR9nC",
            n,
        );
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn settings_on_every_protocol() {
    let s = harness::start("lookups-settings").await;
    let w = world(&s, "lks").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let n = api.name();
        let r = ok(api.call(LOGIN, json!({}), Some(&w.admin), None).await);
        let l = &r["settings"];
        assert_eq!(l["passkeysType"], "PASSKEYS_TYPE_ALLOWED", "[{n}] {r}");
        assert_eq!(l["hidePasswordReset"], true);
        assert_eq!(l["resourceOwnerType"], "RESOURCE_OWNER_TYPE_INSTANCE");
        assert_eq!(l["multiFactorCheckLifetime"], "43200s");
        for absent in
            ["allowUsernamePassword", "allowRegister", "allowExternalIdp", "forceMfa", "secondFactors"]
        {
            assert!(l.get(absent).is_none(), "[{n}] {absent}: {l}");
        }
        assert!(
            r["details"]["resourceOwner"].is_string() && r["details"]["sequence"].is_string(),
            "[{n}] {r}"
        );

        let b = ok(api.call(BRANDING, json!({}), Some(&w.org_owner_a), None).await);
        assert_eq!(b["settings"]["themeMode"], "THEME_MODE_AUTO", "[{n}] {b}");
        assert_eq!(b["settings"]["resourceOwnerType"], "RESOURCE_OWNER_TYPE_INSTANCE");

        let sec = ok(api.call(SECURITY, json!({}), Some(&w.admin), None).await);
        assert_eq!(sec["settings"], json!({"embeddedIframe": {}}), "[{n}] {sec}");

        let idps = ok(api.call(IDPS, json!({}), Some(&w.admin), None).await);
        assert!(
            idps["identityProviders"].is_null() && idps["details"]["totalResult"].is_null(),
            "[{n}] {idps}"
        );

        // policy.read: none without a role, none for IAM_USER_MANAGER (ZITADEL's defaults);
        // iam.policy.read: not for an org owner.
        failure(api.call(LOGIN, json!({}), Some(&w.no_role), None).await, 7, "AUTH-5mWD2", n);
        failure(api.call(IDPS, json!({}), Some(&w.iam_user_manager), None).await, 7, "AUTH-5mWD2", n);
        failure(api.call(SECURITY, json!({}), Some(&w.org_owner_a), None).await, 7, "AUTH-5mWD2", n);
        // ctx (REST: query parameters, `ctx.orgId=…` / `ctx.instance=true`).
        ok(api.call(LOGIN, json!({"ctx": {"orgId": w.org_a}}), Some(&w.org_owner_a), None).await);
        ok(api.call(LOGIN, json!({"ctx": {"instance": true}}), Some(&w.admin), None).await);
        let other = json!({"ctx": {"orgId": w.org_b}});
        failure(api.call(BRANDING, other, Some(&w.org_owner_a), None).await, 5, "ORG-o0Ng9", n);
        // The hosted login's custom texts: none, for the instance and for an organization.
        let t =
            ok(api.call(TRANSLATION, json!({"instance": true, "locale": "en"}), Some(&w.admin), None).await);
        assert_eq!(t["translations"], json!({}), "[{n}] {t}");
        let t = ok(api
            .call(TRANSLATION, json!({"organizationId": w.org_a, "locale": "de"}), Some(&w.org_owner_a), None)
            .await);
        assert_eq!(t["translations"], json!({}), "[{n}] {t}");
        failure(
            api.call(TRANSLATION, json!({"instance": true}), Some(&w.no_role), None).await,
            7,
            "AUTH-5mWD2",
            n,
        );
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rest_paths_and_statuses() {
    let s = harness::start("lookups-rest").await;
    let w = world(&s, "lkr").await;
    let http = reqwest::Client::new();
    let get = async |path: &str| {
        let r = http.get(format!("{}{path}", s.base)).bearer_auth(&w.admin).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(get("/v2/settings/login").await.0, 200);
    assert_eq!(get("/v2/settings/branding").await.0, 200);
    assert_eq!(get("/v2/settings/security").await.0, 200);
    assert_eq!(get("/v2/settings/login/idps").await.0, 200);
    let (status, body) = get(&format!("/v2/users/{}/authentication_methods", w.human_a)).await;
    assert_eq!((status, body["details"]["timestamp"].is_string()), (200, true), "{body}");
    for (path, body) in [("/v2/users", json!({})), ("/v2/organizations/_search", json!({}))] {
        let r =
            http.post(format!("{}{path}", s.base)).bearer_auth(&w.admin).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    // POST /v2/users/human still creates users next to POST /v2/users.
    let r = human(&Rest { base: s.base.clone(), http }, &w.admin, &w.org_a, "lkr-new").await;
    assert!(!r.is_empty());
    s.server.shutdown().await.unwrap();
}
