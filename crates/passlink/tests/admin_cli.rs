//! The admin commands against a running binary: `passlink user add`, `passlink link USER --qr`
//! (the printed link registers a passkey), `passlink passkeys USER` before and after a sign-in
//! (the last use), `passlink link --send` without a delivery provider, a wrong token and a server
//! that is down; `passlink revoke USER [--code-id ID]` and `--revoke-codes-on-registration`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use passlink_testkit::authenticator::Passkey;
use serde_json::{Value, json};

struct Cli {
    base: String,
    data: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_passlink"));
        cmd.args(args).args(["--url", &self.base, "--data-dir", self.data.to_str().unwrap()]);
        cmd.env_remove("PASSLINK_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Run a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run a command that must fail; its stderr.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
}

/// A Connect JSON call (no token: `""`) that must succeed.
async fn call(base: &str, token: &str, method: &str, body: Value) -> Value {
    let mut req = reqwest::Client::new().post(format!("{base}/{method}")).json(&body);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{method}: {status} {v}");
    v
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(str::trim).unwrap_or_default()
}

fn data_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The server process, killed when dropped: a failing test leaves nothing running.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, port: u16) -> Serving {
    serve_with(data, port, &[])
}

fn serve_with(data: &Path, port: u16, flags: &[&str]) -> Serving {
    Serving(
        Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn user_add_link_qr_and_passkeys_with_the_last_use() {
    let dir = data_dir("enroll");
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = serve(&dir, port);
    passlink_testkit::wait_healthy(&base).await;
    let cli = Cli { base: base.clone(), data: dir.clone() };
    let token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    // The external URL (the default for a loopback listener): the links' origin, the relying party
    let external = format!("http://localhost:{port}");

    // user add: the user exists with its email
    let added =
        cli.ok(&["user", "add", "--email", "ada@example.com", "--given-name", "Ada", "--family-name", "L"]);
    let user = field(&added, "user_id").to_string();
    assert!(!user.is_empty(), "{added}");
    let got = call(&base, &token, "zitadel.user.v2.UserService/GetUserByID", json!({"userId": user})).await;
    assert_eq!(got["user"]["human"]["email"]["email"], "ada@example.com");
    assert_eq!(got["user"]["human"]["email"]["isVerified"], true);
    assert!(cli.ok(&["passkeys", &user]).starts_with("no passkeys"));

    // link --qr: the hosted page's link, then a QR code of it
    let printed = cli.ok(&["link", &user, "--qr"]);
    let link = printed.lines().next().unwrap();
    assert!(link.starts_with(&format!("{external}/ui/passkey/register?userID={user}&orgID=")), "{printed}");
    assert!(printed.lines().count() > 20 && printed.contains('▀'), "no QR code: {printed}");
    let url = url::Url::parse(link).unwrap();
    let param = |n: &str| url.query_pairs().find(|(k, _)| k == n).map(|(_, v)| v.to_string()).unwrap();
    // The link's code registers a passkey (what the hosted page does)
    let started = call(
        &base,
        "",
        "zitadel.user.v2.UserService/RegisterPasskey",
        json!({"userId": user, "code": {"id": param("codeID"), "code": param("code")}}),
    )
    .await;
    let mut key = Passkey::new().unwrap();
    let cred = key.register(&started["publicKeyCredentialCreationOptions"], &external).unwrap();
    call(
        &base,
        "",
        "zitadel.user.v2.UserService/VerifyPasskeyRegistration",
        json!({"userId": user, "passkeyId": started["passkeyId"], "publicKeyCredential": cred,
               "passkeyName": "Laptop"}),
    )
    .await;
    let table = cli.ok(&["passkeys", &user]);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains("Laptop") && row.contains("never"), "{table}");

    // A sign-in: the passkey's last use is the session's check
    let created = call(
        &base,
        &token,
        "zitadel.session.v2.SessionService/CreateSession",
        json!({"checks": {"user": {"userId": user}},
               "challenges": {"webAuthN": {"domain": "localhost",
                   "userVerificationRequirement": "USER_VERIFICATION_REQUIREMENT_REQUIRED"}}}),
    )
    .await;
    let options = &created["challenges"]["webAuthN"]["publicKeyCredentialRequestOptions"];
    let assertion = key.assert(options, &external).unwrap();
    let id = created["sessionId"].as_str().unwrap();
    call(
        &base,
        &token,
        "zitadel.session.v2.SessionService/SetSession",
        json!({"sessionId": id, "checks": {"webAuthN": {"credentialAssertionData": assertion}}}),
    )
    .await;
    let session =
        call(&base, &token, "zitadel.session.v2.SessionService/GetSession", json!({"sessionId": id})).await;
    let verified = session["session"]["factors"]["webAuthN"]["verifiedAt"].as_str().unwrap().to_string();
    let table = cli.ok(&["passkeys", &user]);
    assert!(table.lines().nth(1).unwrap_or_default().contains(&verified), "{table}");
    let listed: Value = serde_json::from_str(&cli.ok(&["passkeys", &user, "--json"])).unwrap();
    assert_eq!(listed["result"][0]["lastUsed"], verified.as_str());
    assert_eq!(listed["result"][0]["name"], "Laptop");

    // --send without a delivery provider: the server's reason; a wrong token; an unknown user
    let err = cli.fails(&["link", &user, "--send"], &[]);
    assert!(err.contains("CreatePasskeyRegistrationLink") && err.contains("HTTP 4"), "{err}");
    let err = cli.fails(&["passkeys", &user], &[("PASSLINK_TOKEN", "nope")]);
    assert!(err.contains("token was refused"), "{err}");
    let err = cli.fails(&["link", "123"], &[]);
    assert!(err.contains("HTTP 404"), "{err}");

    // The server is down
    drop(child);
    let err = cli.fails(&["passkeys", &user], &[]);
    assert!(err.contains("cannot reach passlink"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `passlink status`: health, readiness, version, store, uptime and the outbox (a link whose
/// webhook is down stays pending); the same over REST; a wrong token; a server that is down.
#[tokio::test]
async fn status_reports_health_store_and_outbox() {
    let dir = data_dir("status");
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let secret = dir.join("webhook.secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    // A webhook nobody listens on: every attempt fails, the job waits a minute for its retry.
    let hook = format!("http://127.0.0.1:{}/hook", passlink_testkit::free_port());
    let child = Serving(
        Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", dir.to_str().unwrap()])
            .args(["--webhook-url", &hook, "--webhook-secret-file", secret.to_str().unwrap()])
            .args(["--delivery-retry-min-ms", "60000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    passlink_testkit::wait_healthy(&base).await;
    let cli = Cli { base: base.clone(), data: dir.clone() };

    let out = cli.ok(&["status"]);
    assert_eq!(field(&out, "healthz"), "ok", "{out}");
    assert_eq!(field(&out, "readyz"), "ready", "{out}");
    assert_eq!(field(&out, "version"), env!("CARGO_PKG_VERSION"), "{out}");
    assert_eq!(field(&out, "store"), "sqlite (reachable)", "{out}");
    let uptime = field(&out, "uptime");
    assert!(uptime.contains("s (since ") && uptime.ends_with("Z)"), "{out}");
    assert_eq!(field(&out, "outbox"), "0 pending, 0 in flight, 0 failed", "{out}");

    let added = cli.ok(&[
        "user",
        "add",
        "--email",
        "grace@example.com",
        "--given-name",
        "Grace",
        "--family-name",
        "H",
    ]);
    let user = field(&added, "user_id").to_string();
    cli.ok(&["link", &user, "--send"]);
    let mut outbox = String::new();
    for _ in 0..100 {
        outbox = field(&cli.ok(&["status"]), "outbox").to_string();
        if outbox == "1 pending, 0 in flight, 0 failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(outbox, "1 pending, 0 in flight, 0 failed");

    // The RPC over REST (what the command calls over Connect), and without a token
    let token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/passlink/v1/status")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["store"].as_str(), v["storeReady"].as_bool()), (Some("sqlite"), Some(true)), "{v}");
    assert_eq!(v["outbox"]["pending"], 1, "{v}");
    assert!(v["uptime"].as_str().unwrap().ends_with('s') && v["startTime"].is_string(), "{v}");
    let r = http.get(format!("{base}/passlink/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let err = cli.fails(&["status"], &[("PASSLINK_TOKEN", "nope")]);
    assert!(err.contains("token was refused"), "{err}");
    drop(child);
    let err = cli.fails(&["status"], &[]);
    assert!(err.contains("cannot reach passlink"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The printed link's (user, code id, code).
fn link_parts(printed: &str) -> (String, String, String) {
    let url = url::Url::parse(printed.lines().next().unwrap()).unwrap();
    let param = |n: &str| url.query_pairs().find(|(k, _)| k == n).map(|(_, v)| v.to_string()).unwrap();
    (param("userID"), param("codeID"), param("code"))
}

/// The hosted page's look-up of a link: 200 while it works, 400 once revoked or used.
async fn link_status(base: &str, (user, code_id, code): &(String, String, String)) -> u16 {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("userID", user), ("codeID", code_id), ("code", code)])
        .finish();
    reqwest::get(format!("{base}/ui/passkey/register/info?{q}")).await.unwrap().status().as_u16()
}

/// `passlink revoke`: one link by code id, then all; with `--revoke-codes-on-registration`,
/// registering with one link kills the user's other links.
#[tokio::test]
async fn revoke_one_link_then_all_and_on_registration() {
    let dir = data_dir("revoke");
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = serve_with(&dir, port, &["--revoke-codes-on-registration"]);
    passlink_testkit::wait_healthy(&base).await;
    let cli = Cli { base: base.clone(), data: dir.clone() };
    let added =
        cli.ok(&["user", "add", "--email", "rev@example.com", "--given-name", "R", "--family-name", "V"]);
    let user = field(&added, "user_id").to_string();
    let links: Vec<_> = (0..3).map(|_| link_parts(&cli.ok(&["link", &user]))).collect();
    for l in &links {
        assert_eq!(link_status(&base, l).await, 200);
    }

    let out = cli.ok(&["revoke", &user, "--code-id", &links[0].1]);
    assert_eq!(
        out.trim(),
        format!("revoked 1 registration code(s): {} (0 unsent deliveries cancelled)", links[0].1)
    );
    assert_eq!(link_status(&base, &links[0]).await, 400);
    assert_eq!(link_status(&base, &links[1]).await, 200, "the others still work");

    // Registering with the second link revokes the third (the setting is on).
    let external = format!("http://localhost:{port}");
    let (_, code_id, code) = &links[1];
    let started = call(
        &base,
        "",
        "zitadel.user.v2.UserService/RegisterPasskey",
        json!({"userId": user, "code": {"id": code_id, "code": code}}),
    )
    .await;
    let cred =
        Passkey::new().unwrap().register(&started["publicKeyCredentialCreationOptions"], &external).unwrap();
    call(
        &base,
        "",
        "zitadel.user.v2.UserService/VerifyPasskeyRegistration",
        json!({"userId": user, "passkeyId": started["passkeyId"], "publicKeyCredential": cred, "passkeyName": "Key"}),
    )
    .await;
    assert_eq!(link_status(&base, &links[2]).await, 400, "revoked by the registration");

    let fresh = link_parts(&cli.ok(&["link", &user]));
    let out = cli.ok(&["revoke", &user]);
    assert_eq!(
        out.trim(),
        format!("revoked 1 registration code(s): {} (0 unsent deliveries cancelled)", fresh.1)
    );
    assert_eq!(link_status(&base, &fresh).await, 400);
    assert_eq!(cli.ok(&["revoke", &user]).trim(), "no outstanding registration codes: nothing revoked");
    let err = cli.fails(&["revoke", &user, "--code-id", "404"], &[]);
    assert!(err.contains("RevokeRegistrationCodes") && err.contains("HTTP 404"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
