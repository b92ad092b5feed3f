//! The cross-organization matrix: every RPC passlink serves × every caller that must not reach
//! organization A's data — no token, a bad token, the owner of another organization, a caller
//! without the permission, a user's own access token (a human signed in through OpenID
//! Connect holds no role), another user's session token used as a bearer token — on every
//! protocol (REST where the RPC has a binding). Each request targets organization A's objects
//! (its users, project, application, key, session, authorization request). Every answer must
//! be the documented refusal (README "Differences from ZITADEL": 401 without a valid token, 403
//! for a permission held nowhere, 404 for one held only in other organizations), and no answer
//! may carry an id of organization A's objects. A new RPC without a row here fails the test.

use std::collections::BTreeMap;

use passlink_server::limits::Rate;
use serde_json::{Value, json};

use crate::clients::{self, Api, ConnectJson, Outcome, has_rest};
use crate::harness;
use crate::oidc::{REDIRECT, VERIFIER, authorize_url, location, query_of, register, token};
use crate::session::{assertion, enroll};
use crate::setup::{caller, ok, world};

/// Organization A's objects the requests name.
struct Targets {
    org_a: String,
    /// A human of A with a passkey, and a machine of A.
    user: String,
    machine: String,
    passkey: String,
    project: String,
    app: String,
    key: String,
    session: String,
    session_token: String,
    auth_request: String,
}

/// How an RPC answers a caller that may not act in organization A.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    /// Names an object of organization A: another organization's owner gets 404 (the object
    /// is not there for it), a caller holding the permission nowhere gets 403.
    Org,
    /// Acts on the instance (or creates in an organization it names): 403 for both.
    Instance,
    /// Lists what the caller may read: another organization's owner gets its own (none of A's),
    /// a caller holding the permission nowhere gets 403.
    List,
    /// Lists filtered to what the caller may read, for any authenticated caller (as ZITADEL's
    /// ListUsers, ListOrganizations, ListSessions): success, none of A's objects.
    Filtered,
    /// Needs a permission only instance roles grant (sessions and authorization requests:
    /// IAM_LOGIN_CLIENT): 403 for an organization's owner as for a caller without roles.
    LoginClient,
}

/// Every served RPC: its request (naming organization A's objects) and its scope.
fn rows(t: &Targets) -> Vec<(&'static str, Value, Scope)> {
    use Scope::*;
    let user = || json!({"userId": t.user});
    let app = || json!({"projectId": t.project, "applicationId": t.app});
    let human = json!({"organization": {"orgId": t.org_a}, "profile": {"givenName": "M", "familyName": "X"},
                       "email": {"email": "mx@example.com"}});
    let code = json!({"id": "1", "code": "AAAAAAAAAAAA"});
    let verify = json!({"userId": t.user, "passkeyId": t.passkey, "passkeyName": "k",
                        "publicKeyCredential": {"id": "x", "type": "public-key"}});
    let oidc = json!({"redirectUris": [REDIRECT], "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                      "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"]});
    let mut v = vec![
        ("zitadel.user.v2beta.UserService/AddHumanUser", human.clone(), Org),
        ("zitadel.user.v2beta.UserService/GetUserByID", user(), Org),
        ("zitadel.user.v2beta.UserService/DeactivateUser", user(), Org),
        ("zitadel.user.v2beta.UserService/DeleteUser", user(), Org),
        (
            "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink",
            json!({"userId": t.user, "returnCode": {}}),
            Org,
        ),
        (
            "zitadel.user.v2beta.UserService/RegisterPasskey",
            json!({"userId": t.user, "code": code.clone()}),
            Org,
        ),
        ("zitadel.user.v2beta.UserService/VerifyPasskeyRegistration", verify.clone(), Org),
        ("zitadel.user.v2.UserService/AddHumanUser", human, Org),
        (
            "zitadel.user.v2.UserService/CreateUser",
            json!({"organizationId": t.org_a, "username": "mx-m", "machine": {"name": "m"}}),
            Org,
        ),
        ("zitadel.user.v2.UserService/GetUserByID", user(), Org),
        ("zitadel.user.v2.UserService/DeactivateUser", user(), Org),
        ("zitadel.user.v2.UserService/DeleteUser", user(), Org),
        (
            "zitadel.user.v2.UserService/AddPersonalAccessToken",
            json!({"userId": t.machine, "expirationDate": "2099-01-01T00:00:00Z"}),
            Org,
        ),
        (
            "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
            json!({"userId": t.user, "returnCode": {}}),
            Org,
        ),
        ("zitadel.user.v2.UserService/RegisterPasskey", json!({"userId": t.user, "code": code}), Org),
        ("zitadel.user.v2.UserService/VerifyPasskeyRegistration", verify, Org),
        ("zitadel.user.v2.UserService/ListPasskeys", user(), Org),
        ("zitadel.user.v2.UserService/RemovePasskey", json!({"userId": t.user, "passkeyId": t.passkey}), Org),
        ("passlink.enrollment.v1.EnrollmentService/ListPasskeys", user(), Org),
        ("passlink.enrollment.v1.EnrollmentService/RevokeRegistrationCodes", user(), Org),
        // Bulk enrollment: an organization selection names organization A.
        (
            "passlink.enrollment.v1.EnrollmentService/CreateRegistrationLinks",
            json!({"organization": {"orgId": t.org_a}, "returnCode": {}}),
            Org,
        ),
        ("passlink.admin.v1.AdminService/GetStatus", json!({}), Instance),
        ("zitadel.user.v2.UserService/AddSecret", json!({"userId": t.machine}), Org),
        (
            "zitadel.user.v2.UserService/AddKey",
            json!({"userId": t.machine, "expirationDate": "2099-01-01T00:00:00Z"}),
            Org,
        ),
        ("zitadel.org.v2.OrganizationService/AddOrganization", json!({"name": "mx-new"}), Instance),
        (
            "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
            json!({"userId": t.machine, "resource": {"organizationId": t.org_a}, "roles": ["ORG_OWNER"]}),
            Org,
        ),
        (
            "zitadel.session.v2.SessionService/CreateSession",
            json!({"checks": {"user": {"userId": t.user}}}),
            LoginClient,
        ),
        (
            "zitadel.session.v2.SessionService/SetSession",
            json!({"sessionId": t.session, "checks": {"user": {"userId": t.user}}}),
            LoginClient,
        ),
        ("zitadel.session.v2.SessionService/GetSession", json!({"sessionId": t.session}), LoginClient),
        (
            "zitadel.session.v2.SessionService/ListSessions",
            json!({"queries": [{"userIdQuery": {"id": t.user}}]}),
            Filtered,
        ),
        ("zitadel.session.v2.SessionService/DeleteSession", json!({"sessionId": t.session}), LoginClient),
        ("zitadel.user.v2.UserService/ListUsers", json!({}), Filtered),
        ("zitadel.user.v2.UserService/ListAuthenticationMethodTypes", user(), Org),
        ("zitadel.org.v2.OrganizationService/ListOrganizations", json!({}), Filtered),
        ("zitadel.settings.v2.SettingsService/GetLoginSettings", json!({"ctx": {"orgId": t.org_a}}), Org),
        ("zitadel.settings.v2.SettingsService/GetBrandingSettings", json!({"ctx": {"orgId": t.org_a}}), Org),
        ("zitadel.settings.v2.SettingsService/GetSecuritySettings", json!({}), Instance),
        (
            "zitadel.settings.v2.SettingsService/GetActiveIdentityProviders",
            json!({"ctx": {"orgId": t.org_a}}),
            Org,
        ),
        (
            "zitadel.settings.v2.SettingsService/GetHostedLoginTranslation",
            json!({"organizationId": t.org_a, "locale": "en"}),
            Org,
        ),
        (
            "zitadel.project.v2.ProjectService/CreateProject",
            json!({"organizationId": t.org_a, "name": "mx-p"}),
            Org,
        ),
        (
            "zitadel.project.v2.ProjectService/UpdateProject",
            json!({"projectId": t.project, "name": "mx-renamed"}),
            Org,
        ),
        ("zitadel.project.v2.ProjectService/DeleteProject", json!({"projectId": t.project}), Org),
        ("zitadel.project.v2.ProjectService/GetProject", json!({"projectId": t.project}), Org),
        ("zitadel.project.v2.ProjectService/ListProjects", json!({}), List),
        ("zitadel.project.v2.ProjectService/DeactivateProject", json!({"projectId": t.project}), Org),
        ("zitadel.project.v2.ProjectService/ActivateProject", json!({"projectId": t.project}), Org),
        (
            "zitadel.application.v2.ApplicationService/CreateApplication",
            json!({"projectId": t.project, "name": "mx-app", "oidcConfiguration": oidc}),
            Org,
        ),
        (
            "zitadel.application.v2.ApplicationService/UpdateApplication",
            json!({"projectId": t.project, "applicationId": t.app, "name": "mx-renamed"}),
            Org,
        ),
        ("zitadel.application.v2.ApplicationService/GetApplication", json!({"applicationId": t.app}), Org),
        ("zitadel.application.v2.ApplicationService/DeleteApplication", app(), Org),
        ("zitadel.application.v2.ApplicationService/DeactivateApplication", app(), Org),
        ("zitadel.application.v2.ApplicationService/ReactivateApplication", app(), Org),
        ("zitadel.application.v2.ApplicationService/GenerateClientSecret", app(), Org),
        ("zitadel.application.v2.ApplicationService/ListApplications", json!({}), List),
        (
            "zitadel.application.v2.ApplicationService/CreateApplicationKey",
            json!({"projectId": t.project, "applicationId": t.app, "expirationDate": "2099-01-01T00:00:00Z"}),
            Org,
        ),
        (
            "zitadel.application.v2.ApplicationService/DeleteApplicationKey",
            json!({"keyId": t.key, "projectId": t.project, "applicationId": t.app}),
            Org,
        ),
        ("zitadel.application.v2.ApplicationService/GetApplicationKey", json!({"keyId": t.key}), Org),
        ("zitadel.application.v2.ApplicationService/ListApplicationKeys", json!({}), List),
        ("zitadel.oidc.v2.OIDCService/GetAuthRequest", json!({"authRequestId": t.auth_request}), LoginClient),
        (
            "zitadel.oidc.v2.OIDCService/CreateCallback",
            json!({"authRequestId": t.auth_request,
                   "session": {"sessionId": t.session, "sessionToken": t.session_token}}),
            LoginClient,
        ),
    ];
    v.sort_by_key(|(rpc, _, _)| *rpc);
    v
}

/// The callers that may not reach organization A's objects.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Who {
    NoToken,
    BadToken,
    OtherOrgOwner,
    NoPermission,
    OwnToken,
    OtherUsersSessionToken,
}

/// The documented answer: a gRPC code, or `None` for "succeeds, showing nothing of A".
fn expected(rpc: &str, scope: Scope, who: Who) -> Option<u32> {
    match who {
        // An application's access token is for the application (userinfo, introspection), not
        // for passlink's API; a session token is no bearer token either.
        Who::BadToken | Who::OwnToken | Who::OtherUsersSessionToken => Some(16),
        // A registration code authorizes instead of a token: a wrong one is "Code is invalid"
        // whoever sends it; VerifyPasskeyRegistration of a passkey that is not being registered
        // is "Passkey does not exist".
        _ if rpc.ends_with("/RegisterPasskey") => Some(3),
        _ if rpc.ends_with("/VerifyPasskeyRegistration") => Some(5),
        Who::NoToken => Some(16),
        Who::NoPermission => match scope {
            Scope::Filtered => None,
            _ => Some(7),
        },
        Who::OtherOrgOwner => match scope {
            Scope::Org => Some(5),
            Scope::Instance | Scope::LoginClient => Some(7),
            Scope::List | Scope::Filtered => None,
        },
    }
}

/// A user's own access token: `user` signs in with its passkey through the hosted flow's RPCs
/// (a login UI's session, CreateCallback) and the application exchanges the code.
async fn own_access_token(
    s: &harness::TestServer,
    api: &dyn Api,
    ui: &str,
    client_id: &str,
    e: &mut crate::session::Enrolled,
) -> String {
    let (session, session_token) = signed_in_session(s, api, ui, e).await;
    let (_, to) = location(&authorize_url(s, client_id, &[])).await;
    let id = query_of(&to)["authRequest"].clone();
    let cb = ok(api
        .call(
            "zitadel.oidc.v2.OIDCService/CreateCallback",
            json!({"authRequestId": id, "session": {"sessionId": session, "sessionToken": session_token}}),
            Some(ui),
            None,
        )
        .await);
    let code = query_of(cb["callbackUrl"].as_str().unwrap())["code"].clone();
    let (status, t) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    t["access_token"].as_str().unwrap().to_string()
}

/// A session of `e`'s user with a user-verified passkey check: (id, token).
async fn signed_in_session(
    s: &harness::TestServer,
    api: &dyn Api,
    ui: &str,
    e: &mut crate::session::Enrolled,
) -> (String, String) {
    let origin = s.server.external_url.clone();
    let rp = url::Url::parse(&origin).unwrap().host_str().unwrap().to_string();
    let created = ok(api
        .call(
            "zitadel.session.v2.SessionService/CreateSession",
            json!({"checks": {"user": {"userId": e.user}}, "challenges": {"webAuthN": {"domain": rp,
                   "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}}}),
            Some(ui),
            None,
        )
        .await);
    let id = created["sessionId"].as_str().unwrap().to_string();
    let data = assertion(
        &mut e.key,
        &origin,
        &created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"],
    );
    let set = ok(api
        .call(
            "zitadel.session.v2.SessionService/SetSession",
            json!({"sessionId": id, "checks": {"webAuthN": {"credentialAssertionData": data}}}),
            Some(ui),
            None,
        )
        .await);
    (id, set["sessionToken"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn no_caller_reaches_another_organizations_objects_on_any_rpc_or_protocol() {
    // Rate limits off: the matrix makes hundreds of failed attempts on one user from one address
    // on purpose (the limits have their own tests in `limits.rs`).
    let s = harness::start_configured(harness::temp_dir("matrix"), |cfg| {
        cfg.limits.per_ip = Rate::OFF;
        cfg.limits.per_target = Rate::OFF;
    })
    .await;
    let w = world(&s, "mx").await;
    let connect = ConnectJson { base: s.base.clone(), http: reqwest::Client::new() };
    let admin = w.admin.as_str();
    let (_, ui) = caller(&connect, admin, &w.org_a, "mx-login-ui", &["IAM_LOGIN_CLIENT"]).await;
    let (_, other_owner) = caller(&connect, admin, &w.org_b, "mx-owner-b", &["ORG_OWNER"]).await;

    // Organization A's objects: a user with a passkey and a signed-in session, a project with a
    // public client (its authorization request waiting for a login UI) and a key-authenticated
    // client with a key.
    let (client_id, public) = register(&connect, admin, &w.org_a, "OIDC_AUTH_METHOD_TYPE_NONE").await;
    let (_, keyed) = register(&connect, admin, &w.org_a, "OIDC_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT").await;
    let project = public["projectId"].as_str().unwrap_or_default().to_string();
    let project = if project.is_empty() {
        let got = ok(connect
            .call(
                "zitadel.application.v2.ApplicationService/GetApplication",
                json!({"applicationId": keyed["applicationId"]}),
                Some(admin),
                None,
            )
            .await);
        got["application"]["projectId"].as_str().unwrap().to_string()
    } else {
        project
    };
    let app = keyed["applicationId"].as_str().unwrap().to_string();
    let key = ok(connect
        .call(
            "zitadel.application.v2.ApplicationService/CreateApplicationKey",
            json!({"projectId": project, "applicationId": app, "expirationDate": "2099-01-01T00:00:00Z"}),
            Some(admin),
            None,
        )
        .await);
    let mut a = enroll(&s, admin, &w.org_a, "mx-ada").await;
    let passkeys = ok(connect
        .call("zitadel.user.v2.UserService/ListPasskeys", json!({"userId": a.user}), Some(admin), None)
        .await);
    let (session, session_token) = signed_in_session(&s, &connect, &ui, &mut a).await;
    let (_, to) = location(&authorize_url(&s, &client_id, &[])).await;
    let t = Targets {
        org_a: w.org_a.clone(),
        user: a.user.clone(),
        machine: w.machine_a.clone(),
        passkey: passkeys["result"][0]["id"].as_str().unwrap().to_string(),
        project,
        app,
        key: key["keyId"].as_str().unwrap().to_string(),
        session,
        session_token,
        auth_request: query_of(&to)["authRequest"].clone(),
    };
    // The callers: another user's session token (a human of B, its user checked) and a human's
    // own access token (a second human of A, signed in through OpenID Connect).
    let b = ok(connect
        .call(
            "zitadel.session.v2.SessionService/CreateSession",
            json!({"checks": {"user": {"userId": w.human_b}}}),
            Some(&ui),
            None,
        )
        .await);
    let mut own = enroll(&s, admin, &w.org_a, "mx-own").await;
    let own_token = own_access_token(&s, &connect, &ui, &client_id, &mut own).await;
    let callers: Vec<(Who, Option<String>)> = vec![
        (Who::NoToken, None),
        (Who::BadToken, Some("not-a-token".into())),
        (Who::OtherOrgOwner, Some(other_owner)),
        (Who::NoPermission, Some(w.no_role.clone())),
        (Who::OwnToken, Some(own_token)),
        (Who::OtherUsersSessionToken, Some(b["sessionToken"].as_str().unwrap().to_string())),
    ];
    // What no refused caller may see.
    let guarded = [
        &t.user,
        &t.machine,
        &t.passkey,
        &t.project,
        &t.app,
        &t.key,
        &t.session,
        &t.auth_request,
        &w.human_a,
    ];

    let rows = rows(&t);
    let served: Vec<&str> = passlink_server::rpc::table().iter().map(|(p, _)| *p).collect();
    let listed: Vec<&str> = rows.iter().map(|(r, _, _)| *r).collect();
    for rpc in &served {
        assert!(listed.contains(rpc), "{rpc} is served but has no row in the matrix");
    }

    let mut wrong = Vec::new();
    let mut cells = 0;
    let mut summary: BTreeMap<(Who, String), usize> = BTreeMap::new();
    for api in clients::all(&s.base) {
        let api = &*api;
        for (rpc, req, scope) in &rows {
            if api.name() == "rest" && !has_rest(rpc) {
                continue;
            }
            for (who, token) in &callers {
                let got: Outcome = api.call(rpc, req.clone(), token.as_deref(), None).await;
                cells += 1;
                let want = expected(rpc, *scope, *who);
                let (code, body) = match &got {
                    Ok(v) => (None, v.to_string()),
                    Err(f) => (Some(f.code), format!("{f:?}")),
                };
                *summary.entry((*who, code.map_or("OK".into(), |c| c.to_string()))).or_default() += 1;
                let leaked = code.is_none() && guarded.iter().any(|id| body.contains(id.as_str()));
                let http_ok = match &got {
                    Err(f) => f.http.is_none_or(|h| h == http_status(f.code)),
                    Ok(_) => true,
                };
                if code != want || leaked || !http_ok {
                    wrong.push(format!("{} {rpc} {who:?}: want {want:?}, got {body}", api.name()));
                }
            }
        }
    }
    println!("matrix: {cells} calls; answers by caller: {summary:?}");
    assert!(wrong.is_empty(), "{} of {cells} answers off the matrix:\n{}", wrong.len(), wrong.join("\n"));
    // Organization A's objects are untouched by every refused call.
    let still = ok(connect
        .call("zitadel.user.v2.UserService/ListPasskeys", json!({"userId": t.user}), Some(admin), None)
        .await);
    assert_eq!(still["result"].as_array().unwrap().len(), 1);
}

/// The HTTP status REST and Connect give a gRPC code (grpc-gateway's and Connect's tables agree
/// on the codes the matrix expects).
fn http_status(code: u32) -> u16 {
    match code {
        3 => 400,
        5 => 404,
        7 => 403,
        9 => 400,
        16 => 401,
        _ => 500,
    }
}
