//! The keys file end to end on the binary: `passlink keys rotate` between two starts keeps an
//! old registration link and an old access token working while new ones use the new keys; a keys
//! file or admin token that group or others may read stops the start with the fix in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use passlink_testkit::authenticator::Passkey;
use serde_json::{Value, json};

const SCOPE: &str = "openid urn:zitadel:iam:org:project:id:zitadel:aud";

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-keys-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn passlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_passlink")).args(args).output().unwrap()
}

struct Running {
    child: Child,
    base: String,
    /// The WebAuthn origin (the default external URL on loopback).
    origin: String,
}

/// Start on `port` (the issuer, so the tokens' audience, and the WebAuthn origin name it).
async fn start(data: &Path, log: &Path, port: u16) -> Running {
    start_with(data, log, port, &[]).await
}

async fn start_with(data: &Path, log: &Path, port: u16, more: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_passlink"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
        .args(more)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    passlink_testkit::wait_healthy(&base).await;
    Running { child, base, origin: format!("http://localhost:{port}") }
}

async fn stop(mut r: Running) {
    assert!(Command::new("kill").arg("-TERM").arg(r.child.id().to_string()).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || r.child.wait()).await.unwrap().unwrap();
    // A SIGTERM right after the first ready answer may come before the handler is installed.
    use std::os::unix::process::ExitStatusExt as _;
    assert!(status.success() || status.signal() == Some(15), "clean exit: {status:?}");
}

async fn rest(c: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut rb = c.post(url).json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// One Connect unary call with JSON.
async fn connect(c: &reqwest::Client, base: &str, method: &str, token: &str, body: Value) -> Value {
    let r = c
        .post(format!("{base}/{method}"))
        .bearer_auth(token)
        .header("connect-protocol-version", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{method}: {v}");
    v
}

/// A registration link with the code returned: (code id, code).
async fn link(c: &reqwest::Client, base: &str, admin: &str, user: &str) -> (String, String) {
    let (s, l) = rest(
        c,
        format!("{base}/v2beta/users/{user}/passkeys/registration_link"),
        Some(admin),
        json!({"returnCode": {}}),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    (l["code"]["id"].as_str().unwrap().to_string(), l["code"]["code"].as_str().unwrap().to_string())
}

/// Redeem a code: start the registration with it (no token) and verify a new passkey.
async fn register(r: &Running, user: &str, code: &(String, String)) -> (u16, Value) {
    let c = reqwest::Client::new();
    let (s, started) = rest(
        &c,
        format!("{}/v2beta/users/{user}/passkeys", r.base),
        None,
        json!({"code": {"id": code.0, "code": code.1}, "authenticator": "PASSKEY_AUTHENTICATOR_PLATFORM"}),
    )
    .await;
    if s != 200 {
        return (s, started);
    }
    let passkey_id = started["passkeyId"].as_str().unwrap();
    let cred =
        Passkey::new().unwrap().register(&started["publicKeyCredentialCreationOptions"], &r.origin).unwrap();
    rest(
        &c,
        format!("{}/v2/users/{user}/passkeys/{passkey_id}", r.base),
        None,
        json!({"publicKeyCredential": cred, "passkeyName": "rotated"}),
    )
    .await
}

/// A client_credentials access token of the machine user.
async fn access_token(c: &reqwest::Client, base: &str, client: (&str, &str)) -> String {
    let r = c
        .post(format!("{base}/oauth/v2/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

fn kid(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap();
    let h: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap())
            .unwrap();
    h["kid"].as_str().unwrap().to_string()
}

async fn get_user(c: &reqwest::Client, base: &str, token: &str, user: &str) -> u16 {
    c.get(format!("{base}/v2/users/{user}")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_keep_old_links_and_tokens_and_use_new_keys_for_new_ones() {
    let dir = temp_dir("rotate");
    let data = dir.join("data");
    let keys = data.join("keys.json");
    let c = reqwest::Client::new();

    // 1. Before: a user with an unused link, a machine user with an access token.
    let port = passlink_testkit::free_port();
    let r = start(&data, &dir.join("first.log"), port).await;
    let admin = std::fs::read_to_string(data.join("admin.pat")).unwrap().trim().to_string();
    let (s, org) =
        rest(&c, format!("{}/v2/organizations", r.base), Some(&admin), json!({"name": "rot"})).await;
    assert_eq!(s, 201, "{org}");
    let org = org["organizationId"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..3 {
        let (s, u) = rest(
            &c,
            format!("{}/v2/users/human", r.base),
            Some(&admin),
            json!({"organization": {"orgId": org}, "profile": {"givenName": "R", "familyName": format!("{i}")},
                   "email": {"email": format!("r{i}@example.com"), "isVerified": true}}),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        users.push(u["userId"].as_str().unwrap().to_string());
    }
    let old_link = link(&c, &r.base, &admin, &users[0]).await;
    let machine = connect(
        &c,
        &r.base,
        "zitadel.user.v2.UserService/CreateUser",
        &admin,
        json!({"organizationId": org, "username": "rot-svc", "machine": {"name": "rot-svc"}}),
    )
    .await;
    let machine_id = machine["id"].as_str().unwrap().to_string();
    connect(
        &c,
        &r.base,
        "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
        &admin,
        json!({"userId": machine_id, "resource": {"organizationId": org}, "roles": ["ORG_OWNER"]}),
    )
    .await;
    let secret =
        connect(&c, &r.base, "zitadel.user.v2.UserService/AddSecret", &admin, json!({"userId": machine_id}))
            .await;
    let secret = secret["clientSecret"].as_str().unwrap().to_string();
    let old_token = access_token(&c, &r.base, ("rot-svc", &secret)).await;
    assert_eq!(get_user(&c, &r.base, &old_token, &users[1]).await, 200);
    stop(r).await;
    let before = std::fs::read_to_string(&keys).unwrap();

    // 2. Rotate, offline.
    let out = passlink(&["keys", "rotate", "--data-dir", data.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("key generation: 2") && text.contains("restart passlink"), "{text}");
    assert_eq!(mode(&keys), 0o600);
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    let old: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(after["code_hmac"], old["code_hmac"], "the first generation stays");
    assert_eq!(after["rotated"][0]["id"], "2");
    assert_eq!(after["signing"].as_array().unwrap().len(), 2);
    assert!(!text.contains(after["rotated"][0]["seal"].as_str().unwrap()), "no key on stdout");

    // 3. After the restart: the old link registers a passkey, the old token still authorizes.
    let r = start(&data, &dir.join("second.log"), port).await;
    let jwks: Value = c.get(format!("{}/oauth/v2/keys", r.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "both signing keys verify: {jwks}");
    assert_eq!(get_user(&c, &r.base, &old_token, &users[1]).await, 200, "the old access token works");
    let (s, v) = register(&r, &users[0], &old_link).await;
    assert_eq!(s, 200, "the link made before the rotation registers a passkey: {v}");
    let (s, _) = register(&r, &users[0], &old_link).await;
    assert_eq!(s, 400, "and is used up by it");

    // 4. New links and tokens use the new keys, and work.
    let new_token = access_token(&c, &r.base, ("rot-svc", &secret)).await;
    assert_ne!(kid(&new_token), kid(&old_token), "a new token is signed with the new key");
    assert_eq!(kid(&new_token), after["signing"][1]["kid"].as_str().unwrap());
    assert_eq!(get_user(&c, &r.base, &new_token, &users[1]).await, 200);
    let new_link = link(&c, &r.base, &admin, &users[1]).await;
    let (s, v) = register(&r, &users[1], &new_link).await;
    assert_eq!(s, 200, "a new link works: {v}");
    let other = link(&c, &r.base, &admin, &users[2]).await;
    let (s, _) = register(&r, &users[2], &(other.0.clone(), "wrongWRONG12".to_string())).await;
    assert_eq!(s, 400, "a wrong code is still refused");
    stop(r).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A link queued for delivery before a rotation (its code sealed under generation 1) is sent
/// after it, and its code registers a passkey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_queued_before_a_rotation_is_sent_after_it() {
    let dir = temp_dir("queued");
    let data = dir.join("data");
    let secret = dir.join("hook.secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let c = reqwest::Client::new();
    let port = passlink_testkit::free_port();
    let hook_args = |url: &str| -> Vec<String> {
        [
            "--webhook-url",
            url,
            "--webhook-secret-file",
            secret.to_str().unwrap(),
            "--delivery-retry-min-ms",
            "50",
            "--delivery-retry-max-secs",
            "1",
        ]
        .map(String::from)
        .to_vec()
    };

    // 1. The receiver refuses everything: the link stays queued, sealed.
    let refusing = passlink_testkit::WebhookReceiver::start(vec![503; 10_000]).await;
    let args = hook_args(&refusing.url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = start_with(&data, &dir.join("first.log"), port, &args).await;
    let admin = std::fs::read_to_string(data.join("admin.pat")).unwrap().trim().to_string();
    let (s, org) = rest(&c, format!("{}/v2/organizations", r.base), Some(&admin), json!({"name": "q"})).await;
    assert_eq!(s, 201, "{org}");
    let (s, u) = rest(
        &c,
        format!("{}/v2/users/human", r.base),
        Some(&admin),
        json!({"organization": {"orgId": org["organizationId"]}, "profile": {"givenName": "Q", "familyName": "Q"},
               "email": {"email": "q@example.com", "isVerified": true}}),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let user = u["userId"].as_str().unwrap().to_string();
    let (s, l) = rest(
        &c,
        format!("{}/v2beta/users/{user}/passkeys/registration_link", r.base),
        Some(&admin),
        json!({"sendLink": {}}),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    let t = std::time::Instant::now();
    while refusing.hooks().is_empty() {
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "no delivery attempt");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop(r).await;

    // 2. Rotate, restart with a receiver that accepts: the queued link is opened with the old
    // generation and sent.
    let out = passlink(&["keys", "rotate", "--data-dir", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let accepting = passlink_testkit::WebhookReceiver::start(vec![]).await;
    let args = hook_args(&accepting.url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = start_with(&data, &dir.join("second.log"), port, &args).await;
    let hooks = accepting.wait_for_successes(1, std::time::Duration::from_secs(30)).await;
    let body: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    let link = url::Url::parse(body["link"].as_str().unwrap()).unwrap();
    let q = |k: &str| link.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.to_string()).unwrap();
    assert_eq!(q("codeID"), body["codeId"].as_str().unwrap());
    let (s, v) = register(&r, &user, &(q("codeID"), q("code"))).await;
    assert_eq!(s, 200, "the code sealed before the rotation registers a passkey: {v}");
    stop(r).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_keys_file_or_admin_token_others_may_read_stops_the_start() {
    let dir = temp_dir("modes");
    let data = dir.join("data");
    let r = start(&data, &dir.join("first.log"), passlink_testkit::free_port()).await;
    stop(r).await;
    let keys = data.join("keys.json");
    let pat = data.join("admin.pat");
    assert_eq!((mode(&keys), mode(&pat)), (0o600, 0o600));
    let serve = |tag: &str| {
        let port = passlink_testkit::free_port();
        let out = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{tag}: started anyway");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    for (file, what) in [(&keys, "server keys"), (&pat, "admin token")] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = serve(what);
        assert!(err.contains(&format!("{} ({what}) has mode 0644", file.display())), "{err}");
        assert!(err.contains(&format!("chmod 600 {}", file.display())), "{err}");
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // `keys rotate` refuses such a file too, and leaves it as it was.
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read(&keys).unwrap();
    let out = passlink(&["keys", "rotate", "--keys-file", keys.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    assert_eq!(std::fs::read(&keys).unwrap(), before);
    // Fixed, it starts again.
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = start(&data, &dir.join("second.log"), passlink_testkit::free_port()).await;
    stop(r).await;
    let _ = std::fs::remove_dir_all(&dir);
}
