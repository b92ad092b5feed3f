//! The OAuth2 endpoints for machine callers, as ZITADEL's SDKs use them:
//! `/.well-known/openid-configuration`, `/oauth/v2/keys` (JWKS), `/oauth/v2/token`
//! (client_credentials with client_secret_basic / client_secret_post / private_key_jwt, and the
//! JWT-bearer grant), `/oauth/v2/introspect` (RFC 7662) and `/oauth/v2/revoke` (RFC 7009).
//! Errors follow RFC 6749: `{"error", "error_description"}`; the core's [`OAuthErrorKind`] picks
//! the status here ([`status`]): 400, 401 `invalid_client`, 429 rate limited, 500/503 server errors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use passlink_core::app::{
    App, CLIENT_FAILURE_WINDOW, ClientCredentials, OAuthError, OAuthErrorKind, TokenRequest,
};
use passlink_core::secret::Secret;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The HTTP status of an OAuth2 error kind (RFC 6749 section 5.2).
fn status(kind: OAuthErrorKind) -> StatusCode {
    match kind {
        OAuthErrorKind::InvalidRequest
        | OAuthErrorKind::InvalidGrant
        | OAuthErrorKind::UnsupportedGrantType
        | OAuthErrorKind::UnauthorizedClient
        | OAuthErrorKind::InvalidScope => StatusCode::BAD_REQUEST,
        OAuthErrorKind::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        OAuthErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        OAuthErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: &OAuthError) -> Response {
    tracing::debug!(error = e.error(), description = %e.description, "oauth request refused");
    let body = Json(serde_json::json!({"error": e.error(), "error_description": e.description}));
    let mut r = (status(e.kind), body).into_response();
    match e.kind {
        OAuthErrorKind::InvalidClient => {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"passlink\""));
        }
        OAuthErrorKind::RateLimited => {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(CLIENT_FAILURE_WINDOW.as_secs()));
        }
        _ => {}
    }
    no_store(r)
}

/// `Authorization: Basic` credentials. RFC 6749 form-encodes id and secret before base64;
/// some clients don't: split at the first ':' and decode percent-escapes only if present.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| {
        if s.contains('%') { form_urlencoded_decode(s) } else { s.to_string() }
    };
    Some((decode(id), decode(secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space, `%XX` a byte).
fn form_urlencoded_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The client's credentials from the header or the form (one method only, as RFC 6749 asks).
fn client(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let from_header = basic(headers);
    let from_post =
        get("client_secret").map(|s| (get("client_id").unwrap_or_default().to_string(), s.to_string()));
    let assertion =
        (get("client_assertion_type") == Some(CLIENT_ASSERTION)).then(|| get("client_assertion")).flatten();
    let methods = usize::from(from_header.is_some())
        + usize::from(from_post.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::new(
            OAuthErrorKind::InvalidRequest,
            "use exactly one client authentication method",
        ));
    }
    Ok(match (from_header.or(from_post), assertion) {
        (Some((client_id, secret)), _) => {
            Some(ClientCredentials::Secret { client_id, secret: Secret::new(secret) })
        }
        (None, Some(a)) => Some(ClientCredentials::Assertion(Secret::new(a))),
        (None, None) => None,
    })
}

async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    if grant_type == "authorization_code" || grant_type == "refresh_token" {
        return oidc_grant(&app, &headers, &form, &grant_type).await;
    }
    let client = match client(&headers, &form) {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    let client = if grant_type == JWT_BEARER {
        // The assertion is the grant; a client_id field (some SDKs send "None") is ignored.
        form.get("assertion")
            .filter(|a| !a.is_empty())
            .map(|a| ClientCredentials::Assertion(Secret::new(a.as_str())))
    } else {
        client
    };
    let req = TokenRequest { grant_type, client, scope: form.get("scope").cloned().unwrap_or_default() };
    match app.token(req).await {
        Ok(t) => no_store(
            Json(serde_json::json!({
                "access_token": t.access_token.expose(),
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
            }))
            .into_response(),
        ),
        Err(e) => error(&e),
    }
}

/// The OIDC grants of the token endpoint: `authorization_code` (with PKCE) and
/// `refresh_token` (rotation), for applications.
async fn oidc_grant(
    app: &App,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    grant_type: &str,
) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if basic(headers).is_some() && get("client_secret").is_some() {
        return error(&OAuthError::new(
            OAuthErrorKind::InvalidRequest,
            "use exactly one client authentication method",
        ));
    }
    let client = crate::oidc_endpoints::oidc_client(basic(headers), form);
    let result = if grant_type == "authorization_code" {
        let Some(code) = get("code") else {
            return error(&OAuthError::new(OAuthErrorKind::InvalidRequest, "code is missing"));
        };
        app.exchange_code(&client, code, get("redirect_uri").unwrap_or_default(), get("code_verifier")).await
    } else {
        let Some(refresh) = get("refresh_token") else {
            return error(&OAuthError::new(OAuthErrorKind::InvalidRequest, "refresh_token is missing"));
        };
        app.refresh(&client, refresh).await
    };
    match result {
        Ok(t) => no_store(Json(crate::oidc_endpoints::token_response(&t)).into_response()),
        Err(e) => {
            let mut r = error(&e);
            // RFC 6749 §5.2: the Basic challenge answers a client that authenticated with the
            // Authorization header; a public client (form only) gets the plain 401.
            if basic(headers).is_none() {
                r.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            r
        }
    }
}

async fn with_client(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(ClientCredentials, String), OAuthError> {
    let creds = client(headers, form)?
        .ok_or_else(|| OAuthError::new(OAuthErrorKind::InvalidClient, "client authentication required"))?;
    let token = form
        .get("token")
        .filter(|t| !t.is_empty())
        .cloned()
        .ok_or_else(|| OAuthError::new(OAuthErrorKind::InvalidRequest, "missing token"))?;
    Ok((creds, token))
}

async fn introspect(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match with_client(&headers, &form).await {
        Ok((creds, token)) => match app.introspect(&creds, &token).await {
            Ok(v) => no_store(Json(v).into_response()),
            Err(e) => error(&e),
        },
        Err(e) => error(&e),
    }
}

async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match with_client(&headers, &form).await {
        Ok((creds, token)) => match app.revoke(&creds, &token).await {
            Ok(()) => no_store(StatusCode::OK.into_response()),
            Err(e) => error(&e),
        },
        Err(e) => error(&e),
    }
}

async fn discovery(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let iss = app.issuer().to_string();
    Json(serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/v2/authorize"),
        "token_endpoint": format!("{iss}/oauth/v2/token"),
        "userinfo_endpoint": format!("{iss}/oidc/v1/userinfo"),
        "end_session_endpoint": format!("{iss}/oidc/v1/end_session"),
        "introspection_endpoint": format!("{iss}/oauth/v2/introspect"),
        "revocation_endpoint": format!("{iss}/oauth/v2/revoke"),
        "jwks_uri": format!("{iss}/oauth/v2/keys"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", JWT_BEARER],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "email", "phone", "address", "offline_access", passlink_core::jwt::API_AUDIENCE_SCOPE],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
        "ui_locales_supported": ["en", "de"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "sid", "client_id",
            "name", "given_name", "family_name", "nickname", "gender", "locale", "preferred_username", "updated_at",
            "email", "email_verified", "phone_number", "phone_number_verified",
        ],
    }))
}

async fn keys(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.jwks())
}

/// The routes; `metrics` counts the token responses by grant type.
pub fn routes(app: Arc<App>, metrics: Arc<crate::metrics::Metrics>) -> Router {
    let counted_token =
        move |app: State<Arc<App>>, headers: HeaderMap, form: Form<HashMap<String, String>>| {
            let metrics = metrics.clone();
            async move {
                let grant_type = form.get("grant_type").cloned().unwrap_or_default();
                let response = token(app, headers, form).await;
                if response.status().is_success() {
                    metrics.token_issued(&grant_type);
                }
                response
            }
        };
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth/v2/keys", get(keys))
        .route("/oauth/v2/token", post(counted_token))
        .route("/oauth/v2/introspect", post(introspect))
        .route("/oauth/v2/revoke", post(revoke))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_raw_and_encoded() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("svc:s3cr:et/+");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {enc}")).unwrap());
        assert_eq!(basic(&h), Some(("svc".into(), "s3cr:et/+".into())));
        let enc = base64::engine::general_purpose::STANDARD.encode("my%20svc:a%2Bb");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {enc}")).unwrap());
        assert_eq!(basic(&h), Some(("my svc".into(), "a+b".into())));
    }

    #[test]
    fn one_client_authentication_method_only() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("a:b");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {enc}")).unwrap());
        let form = HashMap::from([
            ("client_id".to_string(), "a".to_string()),
            ("client_secret".to_string(), "b".to_string()),
        ]);
        assert_eq!(client(&h, &form).err().map(|e| e.error()), Some("invalid_request"));
        assert!(matches!(client(&HeaderMap::new(), &form), Ok(Some(ClientCredentials::Secret { .. }))));
    }

    #[test]
    fn kinds_map_to_the_statuses_of_rfc_6749() {
        assert_eq!(status(OAuthErrorKind::InvalidClient), StatusCode::UNAUTHORIZED);
        assert_eq!(status(OAuthErrorKind::InvalidGrant), StatusCode::BAD_REQUEST);
        assert_eq!(status(OAuthErrorKind::RateLimited), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status(OAuthErrorKind::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(OAuthErrorKind::ServerError), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
