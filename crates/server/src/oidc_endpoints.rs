//! OpenID Connect's browser-facing endpoints (ZITADEL's paths): `/oauth/v2/authorize` (GET and
//! POST), `/oidc/v1/userinfo` (GET and POST), `/oidc/v1/end_session`, and the token endpoint's
//! `authorization_code` / `refresh_token` grants (called from [`crate::oauth_endpoints`]).
//!
//! Errors of `/authorize` go back to the client when its redirect URI is valid (OIDC Core
//! §3.1.2.6); otherwise — unknown client, unregistered redirect URI — they are shown on a page
//! (400), never redirected. Those pages speak the request's `ui_locales`, else the browser's
//! `Accept-Language` ([`crate::ui_text::PageTexts`]); the error's description stays as the
//! protocol names it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use passlink_core::app::{App, AuthorizeParams, Authorized, OAuthError, OidcClient, OidcTokens};

use crate::ui_text::{Lang, PageTexts};

/// The language of a page of these endpoints: `ui_locales` (space-separated), then
/// `Accept-Language`.
fn page_lang(headers: &HeaderMap, q: &HashMap<String, String>) -> Lang {
    let locales: Vec<String> =
        q.get("ui_locales").map(|l| l.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    Lang::choose(&locales, headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

/// An HTML page in `lang` for what cannot go back to the client (escaped text only); `footer`
/// is a last line (what to do next).
pub(crate) fn error_page(lang: Lang, status: StatusCode, title: &str, text: &str, footer: &str) -> Response {
    let esc = crate::ui_text::escape;
    let footer = if footer.is_empty() { String::new() } else { format!("<p>{}</p>", esc(footer)) };
    let body = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow\"><title>{t}</title>\
         <link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/ui/passkey/register.css\"></head>\
         <body><main class=\"card\"><section id=\"error\" class=\"state\" role=\"alert\">\
         <div class=\"badge badge-error\" aria-hidden=\"true\">!</div><h1>{t}</h1><p id=\"error-message\">{m}</p>\
         {footer}</section></main></body></html>\n",
        lang = lang.tag(),
        t = esc(title),
        m = esc(text),
    );
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

fn oauth_page(lang: Lang, e: &OAuthError) -> Response {
    let status = match e.error() {
        "server_error" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let t = PageTexts::of(lang);
    error_page(lang, status, t.request_invalid, &e.description, t.start_again)
}

fn found(lang: Lang, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => {
            let t = PageTexts::of(lang);
            error_page(lang, StatusCode::BAD_REQUEST, t.request_invalid, t.bad_redirect, t.start_again)
        }
    }
}

fn params_of(q: &HashMap<String, String>) -> AuthorizeParams {
    let get = |k: &str| q.get(k).cloned().filter(|v| !v.is_empty());
    let unsupported = ["request", "request_uri", "registration"].into_iter().find(|k| q.contains_key(*k));
    AuthorizeParams {
        client_id: get("client_id").unwrap_or_default(),
        redirect_uri: get("redirect_uri").unwrap_or_default(),
        response_type: get("response_type").unwrap_or_default(),
        scope: get("scope").unwrap_or_default(),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        prompt: get("prompt"),
        login_hint: get("login_hint"),
        max_age: get("max_age"),
        ui_locales: get("ui_locales"),
        response_mode: get("response_mode"),
        unsupported,
    }
}

async fn authorize_with(app: &App, headers: &HeaderMap, q: HashMap<String, String>) -> Response {
    let p = params_of(&q);
    let lang = page_lang(headers, &q);
    // A login UI proxying the request names itself (ZITADEL's `x-zitadel-login-client`); the
    // header counts only with a valid token of that caller.
    let login_client = match headers.get("x-zitadel-login-client") {
        Some(_) => {
            let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            app.authenticate(auth).await.ok().map(|p| p.user_id.clone())
        }
        None => None,
    };
    match app.authorize(&p, login_client.as_deref()).await {
        Ok(Authorized::Login { url, .. }) | Ok(Authorized::Refused { url }) => found(lang, &url),
        Err(e) => oauth_page(lang, &e),
    }
}

async fn authorize_get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    authorize_with(&app, &headers, q).await
}

async fn authorize_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(q): Form<HashMap<String, String>>,
) -> Response {
    authorize_with(&app, &headers, q).await
}

/// The JSON of a token response (OIDC Core §3.1.3.3).
pub(crate) fn token_response(t: &OidcTokens) -> serde_json::Value {
    let mut v = serde_json::json!({
        "access_token": t.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "id_token": t.id_token,
        "scope": t.scope,
    });
    if let Some(r) = &t.refresh_token {
        v["refresh_token"] = serde_json::Value::from(r.expose());
    }
    v
}

/// The client of an OIDC grant: Basic header, or `client_id` (+ `client_secret`) in the form.
pub(crate) fn oidc_client(basic: Option<(String, String)>, form: &HashMap<String, String>) -> OidcClient {
    let get = |k: &str| form.get(k).filter(|v| !v.is_empty()).cloned();
    let assertion = get("client_assertion").map(passlink_core::secret::Secret::new);
    match basic {
        Some((id, secret)) => {
            OidcClient { client_id: id, secret: Some(passlink_core::secret::Secret::new(secret)), assertion }
        }
        None => OidcClient {
            client_id: get("client_id").unwrap_or_default(),
            secret: get("client_secret").map(passlink_core::secret::Secret::new),
            assertion,
        },
    }
}

fn bearer_token(headers: &HeaderMap, form: Option<&HashMap<String, String>>) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    from_header.or_else(|| form.and_then(|f| f.get("access_token").cloned()))
}

fn invalid_token() -> Response {
    let mut r =
        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_token"}))).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer error=\"invalid_token\", error_description=\"the access token is invalid or expired\"",
        ),
    );
    r
}

async fn userinfo_with(app: &App, token: Option<String>) -> Response {
    let Some(token) = token.filter(|t| !t.is_empty()) else { return invalid_token() };
    match app.userinfo(&token).await {
        Ok(Some(claims)) => {
            let mut r = Json(claims).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => invalid_token(),
        Err(e) => {
            let (status, body) = crate::error::to_rest(&e);
            (status, Json(body)).into_response()
        }
    }
}

async fn userinfo(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: Option<HashMap<String, String>> =
        (method == Method::POST).then(|| url::form_urlencoded::parse(&body).into_owned().collect());
    userinfo_with(&app, bearer_token(&headers, form.as_ref())).await
}

async fn end_session_with(app: &App, headers: &HeaderMap, q: HashMap<String, String>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let lang = page_lang(headers, &q);
    let t = PageTexts::of(lang);
    match app
        .end_session(get("id_token_hint"), get("client_id"), get("post_logout_redirect_uri"), get("state"))
        .await
    {
        Ok(Some(url)) => found(lang, &url),
        Ok(None) => error_page(lang, StatusCode::OK, t.signed_out_title, t.signed_out_text, ""),
        Err(e) => error_page(lang, StatusCode::BAD_REQUEST, t.signout_invalid, &e.description, ""),
    }
}

async fn end_session_get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    end_session_with(&app, &headers, q).await
}

async fn end_session_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(q): Form<HashMap<String, String>>,
) -> Response {
    end_session_with(&app, &headers, q).await
}

pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/oauth/v2/authorize", get(authorize_get).post(authorize_post))
        .route("/oidc/v1/userinfo", get(userinfo).post(userinfo))
        .route("/oidc/v1/end_session", get(end_session_get).post(end_session_post))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_escape_what_they_show() {
        let r = error_page(Lang::De, StatusCode::BAD_REQUEST, "t<", "<script>alert(1)</script>", "");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(r.headers()[header::CONTENT_LANGUAGE], "de");
    }

    #[test]
    fn unsupported_request_objects_are_named() {
        let q = HashMap::from([("request_uri".to_string(), "urn:x".to_string())]);
        assert_eq!(params_of(&q).unsupported, Some("request_uri"));
        assert_eq!(params_of(&HashMap::new()).unsupported, None);
    }
}
