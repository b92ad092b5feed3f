//! Security headers of every hosted page (the registration page, the sign-in pages, the OAuth
//! error pages): a Content-Security-Policy without `unsafe-inline` or `unsafe-eval` and with
//! `frame-ancestors 'none'`, a referrer policy, `no-store` (the pages carry codes, authorization
//! requests or errors about them in their URLs), and no cookie at all (passlink's pages keep no
//! browser session).

use crate::harness;

fn directives(csp: &str) -> Vec<String> {
    csp.split(';').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect()
}

#[tokio::test]
async fn every_hosted_page_sends_the_security_headers_and_no_cookie() {
    let s = harness::start("headers").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let pages = [
        "/ui/passkey/register?userID=1&orgID=2&codeID=3&code=abcdefABCDEF",
        "/ui/passkey/login",
        "/ui/login?authRequest=V2_1",
        "/oauth/v2/authorize?client_id=unknown&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid",
        "/oauth/v2/authorize",
        "/oidc/v1/end_session?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
    ];
    let mut html = 0;
    for path in pages {
        let r = http.get(format!("{}{path}", s.base)).send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        assert!(h.get("set-cookie").is_none(), "{path}: sets a cookie");
        assert!(status < 500, "{path}: {status}");
        let is_html = h.get("content-type").is_some_and(|c| c.to_str().unwrap().starts_with("text/html"));
        if !is_html {
            // A redirect (end_session to a registered URI) carries no page; it still must not
            // be cached.
            assert_eq!(h["cache-control"], "no-store", "{path}");
            continue;
        }
        html += 1;
        let csp = h["content-security-policy"].to_str().unwrap();
        let d = directives(csp);
        assert!(d.iter().any(|d| d == "frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert!(d.iter().any(|d| d.starts_with("default-src")), "{path}: {csp}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
    }
    assert!(html >= 4, "only {html} pages answered with HTML");
}
