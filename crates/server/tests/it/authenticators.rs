//! Which authenticator made a passkey: the AAGUID a registration reports is stored and named
//! from the AAGUID list (shipped, or `--aaguid-file`) in passlink's own ListPasskeys on every
//! protocol, while ZITADEL's ListPasskeys stays unchanged; the hosted page's look-up.

use std::path::PathBuf;

use passlink_server::Server;
use passlink_testkit::authenticator::Passkey;
use serde_json::{Value, json};

use crate::clients::{self, Api, Rest};
use crate::harness::{self, TestServer};
use crate::setup::{human, ok};

const OURS: &str = "passlink.enrollment.v1.EnrollmentService/ListPasskeys";
const ZITADELS: &str = "zitadel.user.v2.UserService/ListPasskeys";
const YUBIKEY: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
const GOOGLE: &str = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4";
const UNKNOWN: &str = "11223344-5566-7788-99aa-bbccddeeff00";

fn bytes(aaguid: &str) -> [u8; 16] {
    let hex: String = aaguid.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Register a passkey named `name` for `user` with the admin token, by an authenticator that
/// reports `aaguid` (zeros for `None`).
async fn register(s: &TestServer, api: &dyn Api, user: &str, name: &str, aaguid: Option<&str>) {
    let started = ok(api
        .call(
            "zitadel.user.v2.UserService/RegisterPasskey",
            json!({"userId": user}),
            Some(&s.admin_token),
            None,
        )
        .await);
    let mut key = Passkey::new().unwrap();
    key.aaguid = aaguid.map(bytes).unwrap_or_default();
    let cred = key.register(&started["publicKeyCredentialCreationOptions"], &s.server.external_url).unwrap();
    ok(api
        .call(
            "zitadel.user.v2.UserService/VerifyPasskeyRegistration",
            json!({"userId": user, "passkeyId": started["passkeyId"], "publicKeyCredential": cred,
                   "passkeyName": name}),
            Some(&s.admin_token),
            None,
        )
        .await);
}

/// A user with four passkeys: a YubiKey, Google Password Manager, an authenticator the list does
/// not know, and one that reported no AAGUID.
async fn user_with_four_passkeys(s: &TestServer, tag: &str) -> String {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let org = ok(rest
        .call(
            "zitadel.org.v2.OrganizationService/AddOrganization",
            json!({"name": format!("{tag}-org")}),
            Some(&s.admin_token),
            None,
        )
        .await)["organizationId"]
        .as_str()
        .unwrap()
        .to_string();
    let user = human(&rest, &s.admin_token, &org, tag).await;
    for (name, aaguid) in
        [("yubi", Some(YUBIKEY)), ("google", Some(GOOGLE)), ("odd", Some(UNKNOWN)), ("none", None)]
    {
        register(s, &rest, &user, name, aaguid).await;
    }
    user
}

/// passlink's ListPasskeys as name → passkey.
async fn ours(api: &dyn Api, s: &TestServer, user: &str) -> std::collections::HashMap<String, Value> {
    let r = ok(api.call(OURS, json!({"userId": user}), Some(&s.admin_token), None).await);
    r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

#[tokio::test]
async fn list_passkeys_names_each_authenticator_on_every_protocol() {
    let s = harness::start("aaguid").await;
    let user = user_with_four_passkeys(&s, "aaguid").await;
    for api in clients::all(&s.base) {
        let api = &*api;
        let by_name = ours(api, &s, &user).await;
        let yubi = &by_name["yubi"];
        assert_eq!(
            (yubi["aaguid"].as_str(), yubi["providerName"].as_str()),
            (Some(YUBIKEY), Some("YubiKey 5 Series"))
        );
        assert!(yubi.get("providerIconLight").is_none(), "[{}] no icon in the list: {yubi}", api.name());
        let google = &by_name["google"];
        assert_eq!(google["providerName"], "Google Password Manager", "[{}]", api.name());
        for icon in ["providerIconLight", "providerIconDark"] {
            assert!(
                google[icon].as_str().unwrap().starts_with("data:image/svg+xml;base64,"),
                "[{}] {icon}",
                api.name()
            );
        }
        let odd = &by_name["odd"];
        assert_eq!(odd["aaguid"], UNKNOWN);
        assert!(odd.get("providerName").is_none(), "[{}] unknown: {odd}", api.name());
        let none = &by_name["none"];
        assert!(
            none.get("aaguid").is_none() && none.get("providerName").is_none(),
            "[{}] {none}",
            api.name()
        );

        // ZITADEL's ListPasskeys: its own fields only (strict clients refuse unknown ones).
        let z = ok(api.call(ZITADELS, json!({"userId": user}), Some(&s.admin_token), None).await);
        let result = z["result"].as_array().unwrap();
        assert_eq!(result.len(), 4);
        for p in result {
            let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["id", "name", "state"], "[{}] {p}", api.name());
        }
    }
    s.server.shutdown().await.unwrap();
}

async fn lookup(s: &TestServer, aaguid: &str) -> (u16, Value) {
    let r =
        reqwest::get(format!("{}/ui/passkey/register/authenticator?aaguid={aaguid}", s.base)).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn the_hosted_page_looks_an_aaguid_up() {
    let s = harness::start("aaguid-ui").await;
    let (status, google) = lookup(&s, &GOOGLE.to_uppercase()).await;
    assert_eq!((status, google["name"].as_str()), (200, Some("Google Password Manager")), "{google}");
    assert!(google["iconDark"].as_str().unwrap().starts_with("data:image/svg+xml;base64,"));
    let (status, yubi) = lookup(&s, YUBIKEY).await;
    assert_eq!((status, &yubi["name"], &yubi["iconLight"]), (200, &json!("YubiKey 5 Series"), &Value::Null));
    for unknown in [UNKNOWN, "00000000-0000-0000-0000-000000000000", "nonsense", ""] {
        assert_eq!(lookup(&s, unknown).await, (404, json!({})), "{unknown:?}");
    }
    s.server.shutdown().await.unwrap();
}

async fn start_with_list(dir: PathBuf, list: &str) -> Result<TestServer, String> {
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("aaguids.json");
    std::fs::write(&file, list).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.aaguid_file = Some(file);
    let server = Server::start(cfg, listener).await?;
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    Ok(TestServer { base: format!("http://{addr}"), server, admin_token, dir })
}

#[tokio::test]
async fn an_aaguid_file_replaces_the_shipped_list() {
    let list = format!(
        r#"{{"{UNKNOWN}": {{"name": "Our Corporate Key", "icon_light": "data:image/svg+xml;base64,PHN2Zy8+"}}}}"#
    );
    let s = start_with_list(harness::temp_dir("aaguid-file"), &list).await.unwrap();
    let user = user_with_four_passkeys(&s, "aaguidf").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let by_name = ours(&rest, &s, &user).await;
    assert_eq!(by_name["odd"]["providerName"], "Our Corporate Key");
    assert_eq!(by_name["odd"]["providerIconLight"], "data:image/svg+xml;base64,PHN2Zy8+");
    assert_eq!(by_name["yubi"]["aaguid"], YUBIKEY);
    assert!(by_name["yubi"].get("providerName").is_none(), "not in this list: {}", by_name["yubi"]);
    s.server.shutdown().await.unwrap();

    // A file that is not an AAGUID list stops the start with the reason.
    let err =
        start_with_list(harness::temp_dir("aaguid-bad"), r#"{"not-a-uuid": {"name": "x"}}"#).await.err();
    let err = err.expect("a bad list is refused");
    assert!(err.contains("--aaguid-file") && err.contains("not an AAGUID"), "{err}");
}
