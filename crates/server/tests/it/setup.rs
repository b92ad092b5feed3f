//! A populated instance: two organizations, users and callers with different roles.

use serde_json::{Value, json};

use crate::clients::{Api, Rest};
use crate::harness::TestServer;

pub const LINK_V2BETA: &str = "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink";
pub const LINK_V2: &str = "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink";
pub const TEMPLATE: &str = "https://example.com/passkey/register?userID={{.UserID}}&orgID={{.OrgID}}&codeID={{.CodeID}}&code={{.Code}}";

pub struct World {
    pub admin: String,
    pub org_a: String,
    pub org_b: String,
    /// Humans in A and B, a machine in A.
    pub human_a: String,
    pub human_b: String,
    pub machine_a: String,
    /// Tokens of callers: ORG_OWNER of A, ORG_USER_MANAGER of A, IAM_USER_MANAGER, no role at all.
    pub org_owner_a: String,
    pub user_manager_a: String,
    pub iam_user_manager: String,
    pub no_role: String,
}

pub fn ok(v: crate::clients::Outcome) -> Value {
    match v {
        Ok(v) => v,
        Err(f) => panic!("unexpected failure: {f:?}"),
    }
}

async fn org(rest: &Rest, admin: &str, name: &str) -> String {
    let r = ok(rest
        .call("zitadel.org.v2.OrganizationService/AddOrganization", json!({"name": name}), Some(admin), None)
        .await);
    r["organizationId"].as_str().unwrap().to_string()
}

pub async fn human(api: &dyn Api, admin: &str, org: &str, name: &str) -> String {
    let r = ok(api
        .call(
            "zitadel.user.v2.UserService/AddHumanUser",
            json!({"organization": {"orgId": org}, "profile": {"givenName": name, "familyName": "Test"},
                   "email": {"email": format!("{name}@example.com"), "isVerified": true}}),
            Some(admin),
            None,
        )
        .await);
    r["userId"].as_str().unwrap().to_string()
}

/// A machine user in `org` with `roles` (on `org`, or instance-wide for IAM_ roles) and a PAT.
pub async fn caller(api: &dyn Api, admin: &str, org: &str, name: &str, roles: &[&str]) -> (String, String) {
    let m = ok(api
        .call(
            "zitadel.user.v2.UserService/CreateUser",
            json!({"organizationId": org, "username": name, "machine": {"name": name}}),
            Some(admin),
            None,
        )
        .await);
    let id = m["id"].as_str().unwrap().to_string();
    if !roles.is_empty() {
        let resource = if roles[0].starts_with("IAM_") {
            json!({"instance": true})
        } else {
            json!({"organizationId": org})
        };
        ok(api
            .call(
                "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
                json!({"userId": id, "resource": resource, "roles": roles}),
                Some(admin),
                None,
            )
            .await);
    }
    let pat = ok(api
        .call(
            "zitadel.user.v2.UserService/AddPersonalAccessToken",
            json!({"userId": id, "expirationDate": "2099-01-01T00:00:00Z"}),
            Some(admin),
            None,
        )
        .await);
    (id, pat["token"].as_str().unwrap().to_string())
}

pub async fn world(s: &TestServer, tag: &str) -> World {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let grpc = crate::clients::Generated::new("grpc", &s.base, connectrpc::Protocol::Grpc);
    let admin = s.admin_token.clone();
    let org_a = org(&rest, &admin, &format!("{tag}-a")).await;
    let org_b = org(&rest, &admin, &format!("{tag}-b")).await;
    let human_a = human(&rest, &admin, &org_a, &format!("{tag}-ha")).await;
    let human_b = human(&rest, &admin, &org_b, &format!("{tag}-hb")).await;
    let (machine_a, org_owner_a) = caller(&grpc, &admin, &org_a, &format!("{tag}-oo"), &["ORG_OWNER"]).await;
    let (_, user_manager_a) =
        caller(&grpc, &admin, &org_a, &format!("{tag}-um"), &["ORG_USER_MANAGER"]).await;
    let (_, iam_user_manager) =
        caller(&grpc, &admin, &org_a, &format!("{tag}-ium"), &["IAM_USER_MANAGER"]).await;
    let (_, no_role) = caller(&grpc, &admin, &org_a, &format!("{tag}-none"), &[]).await;
    World {
        admin,
        org_a,
        org_b,
        human_a,
        human_b,
        machine_a,
        org_owner_a,
        user_manager_a,
        iam_user_manager,
        no_role,
    }
}
