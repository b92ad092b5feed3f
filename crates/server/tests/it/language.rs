//! The hosted pages in the user's language, over real HTTP: the registration page in the
//! browser's `Accept-Language` carrying every language's texts for its script, and its `/info`
//! naming the user's `preferredLanguage` (which the script switches to); the sign-in pages
//! (`ui_locales`, then `Accept-Language`); the OAuth/OIDC pages. German pages show German text
//! and none of the English texts.

use passlink_server::ui_text::{Lang, PageTexts, RegisterTexts, Texts};
use serde_json::{Value, json};

use crate::clients::{Api, ConnectJson, Rest};
use crate::harness::{self, TestServer};
use crate::oidc::{authorize_url, register};
use crate::passkey::returned_code;
use crate::setup::{ok, world};

const GERMAN_BROWSER: &str = "de-DE,de;q=0.9,en;q=0.8";

async fn get(url: &str, accept_language: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = client.get(url);
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    req.send().await.unwrap()
}

/// A page: status, Content-Language and body.
async fn page(url: &str, accept_language: Option<&str>) -> (u16, String, String) {
    let r = get(url, accept_language).await;
    let lang =
        r.headers().get("content-language").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), lang, r.text().await.unwrap())
}

/// The HTML without its JSON data block (which carries the texts of every language), and that
/// block parsed.
fn split_data(html: &str, id: &str) -> (String, Value) {
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let start = html.find(&open).map(|i| i + open.len()).expect("a data block");
    let end = html[start..].find("</script>").map(|i| i + start).expect("closed");
    (format!("{}{}", &html[..start], &html[end..]), serde_json::from_str(&html[start..end]).unwrap())
}

/// The English texts (longer than a word, without slots) that a German page shows.
fn english_in(html: &str, english: &[&str]) -> Vec<String> {
    english
        .iter()
        .filter(|t| t.len() > 3 && !t.contains('{'))
        .filter(|t| html.contains(**t) || html.contains(&t.replace('\'', "&#39;")))
        .map(|t| t.to_string())
        .collect()
}

fn register_english() -> Vec<&'static str> {
    let en = RegisterTexts::of(Lang::En);
    let mut all: Vec<&str> = en.entries().iter().map(|(_, v)| *v).collect();
    all.extend(en.errors.iter().flat_map(|(_, e)| [e.title, e.text]));
    all
}

async fn human_speaking(s: &TestServer, admin: &str, org: &str, name: &str, language: &str) -> String {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let r = ok(rest
        .call(
            "zitadel.user.v2.UserService/AddHumanUser",
            json!({"organization": {"orgId": org},
                   "profile": {"givenName": name, "familyName": "Test", "preferredLanguage": language},
                   "email": {"email": format!("{name}@example.com"), "isVerified": true}}),
            Some(admin),
            None,
        )
        .await);
    r["userId"].as_str().unwrap().to_string()
}

/// `/ui/passkey/register/info` for a fresh link of `user`, asked by an English browser.
async fn info(s: &TestServer, admin: &str, user: &str) -> Value {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let (code_id, code) = returned_code(&rest, admin, user).await;
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("userID", user), ("codeID", code_id.as_str()), ("code", code.as_str())])
        .finish();
    let r = get(&format!("{}/ui/passkey/register/info?{q}", s.base), Some("en-US,en;q=0.9")).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_registration_page_speaks_accept_language_and_carries_every_language() {
    let s = harness::start("lang-register").await;
    let url = format!("{}/ui/passkey/register", s.base);

    let r = get(&url, Some(GERMAN_BROWSER)).await;
    assert_eq!(r.headers()["vary"], "Accept-Language");
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let (status, lang, html) = page(&url, Some(GERMAN_BROWSER)).await;
    assert_eq!((status, lang.as_str()), (200, "de"));
    assert!(html.contains("<html lang=\"de\">") && !html.contains("{{"));
    let (visible, data) = split_data(&html, "texts");
    let de = RegisterTexts::of(Lang::De);
    for t in [de.page_title, de.checking, de.explain, de.name_label, de.other_device, de.retry_button] {
        assert!(visible.contains(t), "German page shows {t:?}");
    }
    assert_eq!(english_in(&visible, &register_english()), Vec::<String>::new(), "English on the German page");
    // The script gets both languages, every key in each, none empty.
    for l in ["en", "de"] {
        let texts = data[l]["texts"].as_object().unwrap();
        let keys: Vec<&String> = texts.keys().collect();
        let en_keys: Vec<&String> = data["en"]["texts"].as_object().unwrap().keys().collect();
        assert_eq!(keys, en_keys, "{l}");
        assert!(texts.values().all(|v| v.as_str().is_some_and(|t| !t.is_empty())), "{l}");
        assert_eq!(data[l]["errors"].as_object().unwrap().len(), de.errors.len(), "{l}");
    }
    assert_eq!(data["de"]["errors"]["invalid"]["title"], "Dieser Link ist nicht mehr gültig");

    // No header, an unsupported language first, a refused German: English.
    for accept in [None, Some("fr-FR, en;q=0.5"), Some("de;q=0, en")] {
        let (_, lang, html) = page(&url, accept).await;
        assert_eq!(lang, "en", "{accept:?}");
        assert!(html.contains("<html lang=\"en\">") && html.contains(">Create passkey<"), "{accept:?}");
    }
}

#[tokio::test]
async fn the_registration_info_names_the_users_preferred_language() {
    let s = harness::start("lang-info").await;
    let w = world(&s, "li").await;
    let de = human_speaking(&s, &w.admin, &w.org_a, "li-de", "de").await;
    let de_at = human_speaking(&s, &w.admin, &w.org_a, "li-deat", "de-AT").await;
    let fr = human_speaking(&s, &w.admin, &w.org_a, "li-fr", "fr").await;
    let none = human_speaking(&s, &w.admin, &w.org_a, "li-none", "").await;
    // An English browser, a German user: the page is told to switch to German.
    assert_eq!(info(&s, &w.admin, &de).await["language"], "de");
    assert_eq!(info(&s, &w.admin, &de_at).await["language"], "de");
    // A language the pages don't speak, or none: the browser's choice stays.
    for user in [&fr, &none] {
        let i = info(&s, &w.admin, user).await;
        assert!(i.get("language").is_none(), "{i}");
        assert!(i["displayName"].as_str().is_some_and(|n| n.ends_with("Test")), "{i}");
    }
}

#[tokio::test]
async fn the_sign_in_and_oauth_pages_speak_ui_locales_then_accept_language() {
    let s = harness::start("lang-oidc").await;
    let w = world(&s, "lo").await;
    let connect = ConnectJson { base: s.base.clone(), http: reqwest::Client::new() };
    let (client_id, _) = register(&connect, &w.admin, &w.org_a, "OIDC_AUTH_METHOD_TYPE_NONE").await;
    let login_en = Texts::of(Lang::En);
    let mut login_english: Vec<&str> = login_en.entries().iter().map(|(_, v)| *v).collect();
    login_english.extend(login_en.errors.iter().flat_map(|(_, e)| [e.title, e.text]));

    // The demo sign-in page: Accept-Language.
    let (status, lang, html) = page(&format!("{}/ui/passkey/login", s.base), Some(GERMAN_BROWSER)).await;
    assert_eq!((status, lang.as_str()), (200, "de"));
    assert!(html.contains("<html lang=\"de\">") && html.contains("Mit Passkey anmelden"));
    let (visible, messages) = split_data(&html, "messages");
    assert_eq!(english_in(&html, &login_english), Vec::<String>::new(), "English on the German sign-in page");
    assert_eq!(messages["titleSuffix"], " · Passkey");
    assert!(visible.contains(Texts::of(Lang::De).demo_lead));

    // An unregistered redirect URI: the page, in ui_locales before Accept-Language.
    let bad = authorize_url(&s, &client_id, &[("ui_locales", "fr de")])
        .replace("app.example%2Fcb", "evil.example%2Fcb");
    let pd = PageTexts::of(Lang::De);
    let pe = PageTexts::of(Lang::En);
    let (status, lang, html) = page(&bad, Some("en")).await;
    assert_eq!((status, lang.as_str()), (400, "de"));
    assert!(
        html.contains("<html lang=\"de\">")
            && html.contains(pd.request_invalid)
            && html.contains(pd.start_again)
    );
    assert!(!html.contains(pe.request_invalid) && !html.contains(pe.start_again));
    // Without ui_locales: Accept-Language, else English.
    let bad = authorize_url(&s, &client_id, &[]).replace("app.example%2Fcb", "evil.example%2Fcb");
    let (_, lang, html) = page(&bad, Some(GERMAN_BROWSER)).await;
    assert_eq!(lang, "de");
    assert!(html.contains(pd.request_invalid));
    let (_, lang, html) = page(&bad, None).await;
    assert_eq!(lang, "en");
    assert!(html.contains("<html lang=\"en\">") && html.contains(pe.request_invalid));

    // The signed-out page.
    let (status, lang, html) = page(&format!("{}/oidc/v1/end_session", s.base), Some(GERMAN_BROWSER)).await;
    assert_eq!((status, lang.as_str()), (200, "de"));
    assert!(html.contains(pd.signed_out_title) && html.contains(pd.signed_out_text), "{html}");
    assert!(!html.contains(pe.signed_out_title) && !html.contains(pe.start_again));
    let (_, lang, html) = page(&format!("{}/oidc/v1/end_session?ui_locales=de", s.base), Some("en")).await;
    assert_eq!(lang, "de");
    assert!(html.contains(pd.signed_out_title));
}
