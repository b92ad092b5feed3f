//! The hosted registration page the default link opens:
//! `<external-url>/ui/passkey/register?userID=…&orgID=…&codeID=…&code=…`.
//!
//! Static, dependency-free HTML/CSS/JS (in `crates/server/ui/`) that calls the public API; the
//! code in the link is its only authorization. `/ui/passkey/register/info` tells the page who is
//! enrolling (and counts a wrong code like any other check); `/ui/passkey/register/qr.svg` draws
//! the page's own link as a QR code, to enroll on another device (a phone);
//! `/ui/passkey/register/authenticator` names the authenticator of an AAGUID ([`crate::aaguid`]),
//! which the page uses as the passkey's default name.
//!
//! The page speaks the user's `preferredLanguage` once `/info` has checked the code (it answers
//! the page's `language` for it), until then the browser's `Accept-Language`, else English
//! ([`crate::ui_text`]: the HTML is rendered in the `Accept-Language` choice and carries the
//! texts of every language for the script).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passlink_core::app::App;
use passlink_core::secret::Secret;

use crate::error::to_rest;
use crate::ui_text::{Lang, render_register};

const HTML: &str = include_str!("../ui/register.html");
const JS: &str = include_str!("../ui/register.js");
/// base64url helpers shared by the registration and the sign-in page.
const BASE64URL_JS: &str = include_str!("../ui/base64url.js");
const CSS: &str = include_str!("../ui/register.css");

pub(crate) fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The page carries a secret in its URL: keep it out of caches and referrers, and frame-free.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

/// The page in the `Accept-Language` choice (the script may switch to the user's language).
async fn page(headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = Lang::choose(&[], accept);
    let mut r = asset("", "text/html; charset=utf-8");
    *r.body_mut() = axum::body::Body::from(render_register(HTML, lang));
    r.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    r
}

async fn info(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let code = Secret::new(get("code"));
    match app.registration_info(get("userID"), get("codeID"), &code).await {
        Ok(i) => {
            let mut body = serde_json::json!({"displayName": i.display_name, "loginName": i.login_name});
            // The page's language for the user's preferredLanguage, when the pages speak it.
            if let Some(lang) = Lang::from_tag(&i.preferred_language) {
                body["language"] = lang.tag().into();
            }
            let mut r = (StatusCode::OK, body.to_string()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            let (status, body) = to_rest(&e);
            let mut r = (status, body.to_string()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
    }
}

/// The link of this page as a QR code (SVG), to continue on another device (a phone): the
/// same URL the browser has, rebuilt from the external URL and the query, so it encodes
/// nothing but passlink's own page. The code is not checked here (the page checks it).
async fn qr(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let link = match app.hosted_link(get("userID"), get("orgID"), get("codeID"), &Secret::new(get("code"))) {
        Ok(l) => Secret::new(l),
        Err(_) => return (StatusCode::BAD_REQUEST, "not a registration link").into_response(),
    };
    let svg = match qrcode::QrCode::with_error_correction_level(link.expose(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
        Err(_) => return (StatusCode::BAD_REQUEST, "link too long for a QR code").into_response(),
    };
    let mut r = svg.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/ui/passkey/register", get(page))
        .route("/ui/passkey/register.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .route(
            "/ui/passkey/base64url.js",
            get(|| async { asset(BASE64URL_JS, "text/javascript; charset=utf-8") }),
        )
        .route("/ui/passkey/register.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .route("/ui/passkey/register/info", get(info))
        .route("/ui/passkey/register/qr.svg", get(qr))
        .route("/ui/passkey/register/authenticator", get(crate::aaguid::lookup))
        .with_state(app)
}
