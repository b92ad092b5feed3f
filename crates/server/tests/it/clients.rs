//! One real client per protocol, behind one interface so every case runs on every protocol:
//! REST (reqwest, grpc-gateway paths), Connect JSON (reqwest), Connect binary, gRPC (h2c) and
//! gRPC-web (connectrpc's generated clients). Every response is normalised to protojson and every
//! error to `Failure { grpc code, message, detail ids, http status }` for field-by-field checks.

use async_trait::async_trait;
use base64::Engine as _;
use buffa::Message as _;
use connectrpc::client::{CallOptions, ClientConfig, HttpClient};
use connectrpc::{ConnectError, Protocol};
use passlink_wire::zitadel;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: u32,
    pub message: String,
    /// (id, message) of each zitadel.v1.ErrorDetail.
    pub details: Vec<(String, String)>,
    /// The HTTP status, where the protocol exposes one meaningfully (REST, Connect).
    pub http: Option<u16>,
}

pub type Outcome = Result<Value, Failure>;

#[async_trait]
pub trait Api: Send + Sync {
    fn name(&self) -> &'static str;
    /// Does the protocol carry JSON (so malformed JSON / double oneofs can be sent)?
    fn is_json(&self) -> bool;
    /// Call `rpc` ("zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink") with a
    /// protojson request and headers (token, org).
    async fn call(&self, rpc: &str, req: Value, token: Option<&str>, org: Option<&str>) -> Outcome;
    /// Send a raw body (JSON protocols only).
    async fn raw(&self, rpc: &str, body: &str, token: &str) -> Outcome;
}

fn grpc_code_of(name: &str) -> u32 {
    match name {
        "canceled" => 1,
        "unknown" => 2,
        "invalid_argument" => 3,
        "deadline_exceeded" => 4,
        "not_found" => 5,
        "already_exists" => 6,
        "permission_denied" => 7,
        "resource_exhausted" => 8,
        "failed_precondition" => 9,
        "aborted" => 10,
        "unimplemented" => 12,
        "internal" => 13,
        "unavailable" => 14,
        "unauthenticated" => 16,
        _ => 99,
    }
}

fn decode_detail(b64: &str) -> (String, String) {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.trim_end_matches('=')).unwrap();
    let d = zitadel::v1::ErrorDetail::decode_from_slice(&bytes).unwrap();
    (d.id, d.message)
}

fn from_connect_error(e: ConnectError, http: Option<u16>) -> Failure {
    Failure {
        code: e.code.grpc_code(),
        message: e.message.unwrap_or_default(),
        details: e
            .details
            .iter()
            .filter(|d| d.type_url.ends_with("zitadel.v1.ErrorDetail"))
            .map(|d| decode_detail(d.value.as_deref().unwrap_or_default()))
            .collect(),
        http,
    }
}

// ------------------------------------------------------------------ REST

pub struct Rest {
    pub base: String,
    pub http: reqwest::Client,
}

fn rest_route(rpc: &str) -> (&'static str, &'static str, u16) {
    passlink_wire::REST_ROUTES
        .iter()
        .find(|r| r.2 == rpc)
        .map(|r| (r.0, r.1, r.3))
        .unwrap_or_else(|| panic!("{rpc} has no REST binding"))
}

pub fn has_rest(rpc: &str) -> bool {
    passlink_wire::REST_ROUTES.iter().any(|r| r.2 == rpc)
}

async fn rest_response(resp: reqwest::Response, success: u16) -> Outcome {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    if status == success {
        return Ok(body);
    }
    assert!(status >= 400, "unexpected status {status}: {body}");
    let details = body["details"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    assert_eq!(d["@type"], "type.googleapis.com/zitadel.v1.ErrorDetail");
                    (d["id"].as_str().unwrap().to_string(), d["message"].as_str().unwrap().to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    Err(Failure {
        code: body["code"].as_u64().unwrap() as u32,
        message: body["message"].as_str().unwrap_or_default().to_string(),
        details,
        http: Some(status),
    })
}

impl Rest {
    fn request(&self, rpc: &str, req: &Value, body: Option<String>) -> (reqwest::RequestBuilder, u16) {
        let (method, template, success) = rest_route(rpc);
        let mut path = template.to_string();
        let mut in_path = Vec::new();
        for (snake, camel) in [
            ("user_id", "userId"),
            ("passkey_id", "passkeyId"),
            ("session_id", "sessionId"),
            ("auth_request_id", "authRequestId"),
        ] {
            if let Some(v) = req.get(camel).and_then(Value::as_str)
                && path.contains(&format!("{{{snake}}}"))
            {
                path = path.replace(&format!("{{{snake}}}"), v);
                in_path.push(camel);
            }
        }
        let url = format!("{}{path}", self.base);
        let rb = match method {
            // grpc-gateway: the other fields of a GET travel in the query string
            "GET" => {
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in req.as_object().into_iter().flatten() {
                    if !in_path.contains(&k.as_str()) {
                        query_pairs(k, v, &mut query);
                    }
                }
                let query = query.finish();
                if query.is_empty() { self.http.get(url) } else { self.http.get(format!("{url}?{query}")) }
            }
            "DELETE" => self
                .http
                .delete(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| req.to_string())),
            "PATCH" => self
                .http
                .patch(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| req.to_string())),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| req.to_string())),
        };
        (rb, success)
    }
}

#[async_trait]
impl Api for Rest {
    fn name(&self) -> &'static str {
        "rest"
    }
    fn is_json(&self) -> bool {
        true
    }
    async fn call(&self, rpc: &str, req: Value, token: Option<&str>, org: Option<&str>) -> Outcome {
        let (mut rb, success) = self.request(rpc, &req, None);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(o) = org {
            rb = rb.header("x-zitadel-orgid", o);
        }
        rest_response(rb.send().await.unwrap(), success).await
    }
    async fn raw(&self, rpc: &str, body: &str, token: &str) -> Outcome {
        let req: Value = serde_json::from_str(body).unwrap_or(json!({}));
        let (rb, success) = self.request(rpc, &req, Some(body.to_string()));
        rest_response(rb.bearer_auth(token).send().await.unwrap(), success).await
    }
}

// ------------------------------------------------------------------ Connect JSON (plain HTTP)

pub struct ConnectJson {
    pub base: String,
    pub http: reqwest::Client,
}

impl ConnectJson {
    async fn send(&self, rpc: &str, body: String, token: Option<&str>, org: Option<&str>) -> Outcome {
        let mut rb = self
            .http
            .post(format!("{}/{rpc}", self.base))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(o) = org {
            rb = rb.header("x-zitadel-orgid", o);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        if status == 200 {
            return Ok(body);
        }
        Err(Failure {
            code: grpc_code_of(body["code"].as_str().unwrap()),
            message: body["message"].as_str().unwrap_or_default().to_string(),
            details: body["details"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            assert_eq!(d["type"], "zitadel.v1.ErrorDetail");
                            decode_detail(d["value"].as_str().unwrap())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            http: Some(status),
        })
    }
}

#[async_trait]
impl Api for ConnectJson {
    fn name(&self) -> &'static str {
        "connect-json"
    }
    fn is_json(&self) -> bool {
        true
    }
    async fn call(&self, rpc: &str, req: Value, token: Option<&str>, org: Option<&str>) -> Outcome {
        self.send(rpc, req.to_string(), token, org).await
    }
    async fn raw(&self, rpc: &str, body: &str, token: &str) -> Outcome {
        self.send(rpc, body.to_string(), Some(token), None).await
    }
}

// ------------------------------------------------------------------ generated clients (binary)

pub struct Generated {
    pub name: &'static str,
    pub config: ClientConfig,
    pub transport: HttpClient,
}

impl Generated {
    pub fn new(name: &'static str, base: &str, protocol: Protocol) -> Generated {
        let transport = match protocol {
            Protocol::Grpc => HttpClient::plaintext_http2_only(),
            _ => HttpClient::plaintext(),
        };
        let config = ClientConfig::new(base.parse().unwrap()).with_protocol(protocol);
        Generated { name, config, transport }
    }
}

/// Decode the protojson request into the typed message, call, and encode the response as JSON.
macro_rules! typed {
    ($client:expr, $opts:expr, $json:expr, $method:ident, $Req:ty) => {{
        let req: $Req = serde_json::from_value($json).expect("request JSON");
        match $client.$method(req, $opts).await {
            Ok(r) => Ok(serde_json::to_value(&r.into_owned_parts().1).unwrap()),
            Err(e) => Err(from_connect_error(e, None)),
        }
    }};
}

#[async_trait]
impl Api for Generated {
    fn name(&self) -> &'static str {
        self.name
    }
    fn is_json(&self) -> bool {
        false
    }
    async fn call(&self, rpc: &str, req: Value, token: Option<&str>, org: Option<&str>) -> Outcome {
        use zitadel::internal_permission::v2beta as perm;
        use zitadel::org::v2 as org_pb;
        use zitadel::settings::v2 as settings;
        use zitadel::user::{v2, v2beta};
        let mut o = CallOptions::default();
        if let Some(t) = token {
            o = o.with_header("authorization", format!("Bearer {t}"));
        }
        if let Some(g) = org {
            o = o.with_header("x-zitadel-orgid", g.to_string());
        }
        let (t, c) = (self.transport.clone(), self.config.clone());
        let b = v2beta::UserServiceClient::new(t.clone(), c.clone());
        let u = v2::UserServiceClient::new(t.clone(), c.clone());
        let og = org_pb::OrganizationServiceClient::new(t.clone(), c.clone());
        let p = perm::InternalPermissionServiceClient::new(t.clone(), c.clone());
        let sess = zitadel::session::v2::SessionServiceClient::new(t.clone(), c.clone());
        let oi = zitadel::oidc::v2::OidcServiceClient::new(t.clone(), c.clone());
        let pr = zitadel::project::v2::ProjectServiceClient::new(t.clone(), c.clone());
        let ap = zitadel::application::v2::ApplicationServiceClient::new(t.clone(), c.clone());
        let en = passlink_wire::passlink::enrollment::v1::EnrollmentServiceClient::new(t.clone(), c.clone());
        let ad = passlink_wire::passlink::admin::v1::AdminServiceClient::new(t.clone(), c.clone());
        let st = settings::SettingsServiceClient::new(t, c);
        let m = rpc.rsplit('/').next().unwrap();
        match (rpc.split('/').next().unwrap(), m) {
            ("zitadel.user.v2beta.UserService", "AddHumanUser") => {
                typed!(b, o, req, add_human_user_with_options, v2beta::AddHumanUserRequest)
            }
            ("zitadel.user.v2beta.UserService", "GetUserByID") => {
                typed!(b, o, req, get_user_by_id_with_options, v2beta::GetUserByIDRequest)
            }
            ("zitadel.user.v2beta.UserService", "DeactivateUser") => {
                typed!(b, o, req, deactivate_user_with_options, v2beta::DeactivateUserRequest)
            }
            ("zitadel.user.v2beta.UserService", "DeleteUser") => {
                typed!(b, o, req, delete_user_with_options, v2beta::DeleteUserRequest)
            }
            ("zitadel.user.v2beta.UserService", "CreatePasskeyRegistrationLink") => typed!(
                b,
                o,
                req,
                create_passkey_registration_link_with_options,
                v2beta::CreatePasskeyRegistrationLinkRequest
            ),
            ("zitadel.user.v2.UserService", "AddHumanUser") => {
                typed!(u, o, req, add_human_user_with_options, v2::AddHumanUserRequest)
            }
            ("zitadel.user.v2.UserService", "CreateUser") => {
                typed!(u, o, req, create_user_with_options, v2::CreateUserRequest)
            }
            ("zitadel.user.v2.UserService", "GetUserByID") => {
                typed!(u, o, req, get_user_by_id_with_options, v2::GetUserByIDRequest)
            }
            ("zitadel.user.v2.UserService", "DeactivateUser") => {
                typed!(u, o, req, deactivate_user_with_options, v2::DeactivateUserRequest)
            }
            ("zitadel.user.v2.UserService", "DeleteUser") => {
                typed!(u, o, req, delete_user_with_options, v2::DeleteUserRequest)
            }
            ("zitadel.user.v2.UserService", "AddPersonalAccessToken") => {
                typed!(u, o, req, add_personal_access_token_with_options, v2::AddPersonalAccessTokenRequest)
            }
            ("zitadel.user.v2beta.UserService", "RegisterPasskey") => {
                typed!(b, o, req, register_passkey_with_options, v2beta::RegisterPasskeyRequest)
            }
            ("zitadel.user.v2beta.UserService", "VerifyPasskeyRegistration") => typed!(
                b,
                o,
                req,
                verify_passkey_registration_with_options,
                v2beta::VerifyPasskeyRegistrationRequest
            ),
            ("zitadel.user.v2.UserService", "RegisterPasskey") => {
                typed!(u, o, req, register_passkey_with_options, v2::RegisterPasskeyRequest)
            }
            ("zitadel.user.v2.UserService", "VerifyPasskeyRegistration") => typed!(
                u,
                o,
                req,
                verify_passkey_registration_with_options,
                v2::VerifyPasskeyRegistrationRequest
            ),
            ("zitadel.user.v2.UserService", "AddSecret") => {
                typed!(u, o, req, add_secret_with_options, v2::AddSecretRequest)
            }
            ("zitadel.user.v2.UserService", "AddKey") => {
                typed!(u, o, req, add_key_with_options, v2::AddKeyRequest)
            }
            ("zitadel.user.v2.UserService", "ListPasskeys") => {
                typed!(u, o, req, list_passkeys_with_options, v2::ListPasskeysRequest)
            }
            ("zitadel.user.v2.UserService", "RemovePasskey") => {
                typed!(u, o, req, remove_passkey_with_options, v2::RemovePasskeyRequest)
            }
            ("zitadel.user.v2.UserService", "CreatePasskeyRegistrationLink") => typed!(
                u,
                o,
                req,
                create_passkey_registration_link_with_options,
                v2::CreatePasskeyRegistrationLinkRequest
            ),
            ("zitadel.org.v2.OrganizationService", "AddOrganization") => {
                typed!(og, o, req, add_organization_with_options, org_pb::AddOrganizationRequest)
            }
            ("zitadel.internal_permission.v2beta.InternalPermissionService", "CreateAdministrator") => {
                typed!(p, o, req, create_administrator_with_options, perm::CreateAdministratorRequest)
            }
            ("zitadel.session.v2.SessionService", "CreateSession") => {
                typed!(sess, o, req, create_session_with_options, zitadel::session::v2::CreateSessionRequest)
            }
            ("zitadel.session.v2.SessionService", "SetSession") => {
                typed!(sess, o, req, set_session_with_options, zitadel::session::v2::SetSessionRequest)
            }
            ("zitadel.session.v2.SessionService", "GetSession") => {
                typed!(sess, o, req, get_session_with_options, zitadel::session::v2::GetSessionRequest)
            }
            ("zitadel.session.v2.SessionService", "ListSessions") => {
                typed!(sess, o, req, list_sessions_with_options, zitadel::session::v2::ListSessionsRequest)
            }
            ("zitadel.session.v2.SessionService", "DeleteSession") => {
                typed!(sess, o, req, delete_session_with_options, zitadel::session::v2::DeleteSessionRequest)
            }
            ("zitadel.user.v2.UserService", "ListUsers") => {
                typed!(u, o, req, list_users_with_options, v2::ListUsersRequest)
            }
            ("zitadel.user.v2.UserService", "ListAuthenticationMethodTypes") => typed!(
                u,
                o,
                req,
                list_authentication_method_types_with_options,
                v2::ListAuthenticationMethodTypesRequest
            ),
            ("zitadel.org.v2.OrganizationService", "ListOrganizations") => {
                typed!(og, o, req, list_organizations_with_options, org_pb::ListOrganizationsRequest)
            }
            ("zitadel.settings.v2.SettingsService", "GetLoginSettings") => {
                typed!(st, o, req, get_login_settings_with_options, settings::GetLoginSettingsRequest)
            }
            ("zitadel.settings.v2.SettingsService", "GetBrandingSettings") => {
                typed!(st, o, req, get_branding_settings_with_options, settings::GetBrandingSettingsRequest)
            }
            ("zitadel.settings.v2.SettingsService", "GetSecuritySettings") => {
                typed!(st, o, req, get_security_settings_with_options, settings::GetSecuritySettingsRequest)
            }
            ("zitadel.settings.v2.SettingsService", "GetActiveIdentityProviders") => typed!(
                st,
                o,
                req,
                get_active_identity_providers_with_options,
                settings::GetActiveIdentityProvidersRequest
            ),
            ("zitadel.settings.v2.SettingsService", "GetHostedLoginTranslation") => typed!(
                st,
                o,
                req,
                get_hosted_login_translation_with_options,
                settings::GetHostedLoginTranslationRequest
            ),
            ("zitadel.oidc.v2.OIDCService", "GetAuthRequest") => {
                typed!(oi, o, req, get_auth_request_with_options, zitadel::oidc::v2::GetAuthRequestRequest)
            }
            ("zitadel.oidc.v2.OIDCService", "CreateCallback") => {
                typed!(oi, o, req, create_callback_with_options, zitadel::oidc::v2::CreateCallbackRequest)
            }
            ("zitadel.project.v2.ProjectService", "CreateProject") => {
                typed!(pr, o, req, create_project_with_options, zitadel::project::v2::CreateProjectRequest)
            }
            ("zitadel.application.v2.ApplicationService", "CreateApplication") => typed!(
                ap,
                o,
                req,
                create_application_with_options,
                zitadel::application::v2::CreateApplicationRequest
            ),
            ("zitadel.application.v2.ApplicationService", "GetApplication") => {
                typed!(
                    ap,
                    o,
                    req,
                    get_application_with_options,
                    zitadel::application::v2::GetApplicationRequest
                )
            }
            ("zitadel.project.v2.ProjectService", "UpdateProject") => {
                typed!(pr, o, req, update_project_with_options, zitadel::project::v2::UpdateProjectRequest)
            }
            ("zitadel.project.v2.ProjectService", "DeleteProject") => {
                typed!(pr, o, req, delete_project_with_options, zitadel::project::v2::DeleteProjectRequest)
            }
            ("zitadel.project.v2.ProjectService", "GetProject") => {
                typed!(pr, o, req, get_project_with_options, zitadel::project::v2::GetProjectRequest)
            }
            ("zitadel.project.v2.ProjectService", "ListProjects") => {
                typed!(pr, o, req, list_projects_with_options, zitadel::project::v2::ListProjectsRequest)
            }
            ("zitadel.project.v2.ProjectService", "DeactivateProject") => {
                typed!(
                    pr,
                    o,
                    req,
                    deactivate_project_with_options,
                    zitadel::project::v2::DeactivateProjectRequest
                )
            }
            ("zitadel.project.v2.ProjectService", "ActivateProject") => {
                typed!(
                    pr,
                    o,
                    req,
                    activate_project_with_options,
                    zitadel::project::v2::ActivateProjectRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "UpdateApplication") => {
                typed!(
                    ap,
                    o,
                    req,
                    update_application_with_options,
                    zitadel::application::v2::UpdateApplicationRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "DeleteApplication") => {
                typed!(
                    ap,
                    o,
                    req,
                    delete_application_with_options,
                    zitadel::application::v2::DeleteApplicationRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "DeactivateApplication") => {
                typed!(
                    ap,
                    o,
                    req,
                    deactivate_application_with_options,
                    zitadel::application::v2::DeactivateApplicationRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "ReactivateApplication") => {
                typed!(
                    ap,
                    o,
                    req,
                    reactivate_application_with_options,
                    zitadel::application::v2::ReactivateApplicationRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "GenerateClientSecret") => {
                typed!(
                    ap,
                    o,
                    req,
                    generate_client_secret_with_options,
                    zitadel::application::v2::GenerateClientSecretRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "ListApplications") => {
                typed!(
                    ap,
                    o,
                    req,
                    list_applications_with_options,
                    zitadel::application::v2::ListApplicationsRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "CreateApplicationKey") => {
                typed!(
                    ap,
                    o,
                    req,
                    create_application_key_with_options,
                    zitadel::application::v2::CreateApplicationKeyRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "DeleteApplicationKey") => {
                typed!(
                    ap,
                    o,
                    req,
                    delete_application_key_with_options,
                    zitadel::application::v2::DeleteApplicationKeyRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "GetApplicationKey") => {
                typed!(
                    ap,
                    o,
                    req,
                    get_application_key_with_options,
                    zitadel::application::v2::GetApplicationKeyRequest
                )
            }
            ("zitadel.application.v2.ApplicationService", "ListApplicationKeys") => {
                typed!(
                    ap,
                    o,
                    req,
                    list_application_keys_with_options,
                    zitadel::application::v2::ListApplicationKeysRequest
                )
            }
            ("passlink.enrollment.v1.EnrollmentService", "ListPasskeys") => typed!(
                en,
                o,
                req,
                list_passkeys_with_options,
                passlink_wire::passlink::enrollment::v1::ListPasskeysRequest
            ),
            ("passlink.enrollment.v1.EnrollmentService", "RevokeRegistrationCodes") => typed!(
                en,
                o,
                req,
                revoke_registration_codes_with_options,
                passlink_wire::passlink::enrollment::v1::RevokeRegistrationCodesRequest
            ),
            // Bulk enrollment.
            ("passlink.enrollment.v1.EnrollmentService", "CreateRegistrationLinks") => typed!(
                en,
                o,
                req,
                create_registration_links_with_options,
                passlink_wire::passlink::enrollment::v1::CreateRegistrationLinksRequest
            ),
            ("passlink.admin.v1.AdminService", "GetStatus") => {
                typed!(
                    ad,
                    o,
                    req,
                    get_status_with_options,
                    passlink_wire::passlink::admin::v1::GetStatusRequest
                )
            }
            _ => panic!("no typed client for {rpc}"),
        }
    }
    async fn raw(&self, _: &str, _: &str, _: &str) -> Outcome {
        panic!("binary protocols take no raw JSON")
    }
}

/// Every protocol against one server.
pub fn all(base: &str) -> Vec<Box<dyn Api>> {
    let http = reqwest::Client::new();
    vec![
        Box::new(Rest { base: base.to_string(), http: http.clone() }),
        Box::new(ConnectJson { base: base.to_string(), http }),
        Box::new(Generated::new("connect-proto", base, Protocol::Connect)),
        Box::new(Generated::new("grpc", base, Protocol::Grpc)),
        Box::new(Generated::new("grpc-web", base, Protocol::GrpcWeb)),
    ]
}

/// A request field as grpc-gateway query parameters: nested messages as dotted paths
/// (`ctx.orgId=…`), scalars as text, repeated fields as repeated keys.
fn query_pairs(key: &str, value: &Value, out: &mut url::form_urlencoded::Serializer<'_, String>) {
    match value {
        Value::Object(m) => m.iter().for_each(|(k, v)| query_pairs(&format!("{key}.{k}"), v, out)),
        Value::Array(a) => a.iter().for_each(|v| query_pairs(key, v, out)),
        Value::String(s) => {
            out.append_pair(key, s);
        }
        Value::Null => {}
        other => {
            out.append_pair(key, &other.to_string());
        }
    }
}
