//! The binary end to end: flags and PASSLINK_* variables, first-start bootstrap (admin.pat 0600),
//! health, SIGTERM draining in-flight requests, a second start reusing everything, and no secret
//! in the logs even at debug level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-bin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passlink"));
    cmd.args(args).stdout(Stdio::null()).stderr(log).env("PASSLINK_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn terminate(child: &Child) {
    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill -TERM failed");
}

async fn post(c: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn serve_bootstrap_drain_restart_and_no_secrets_in_logs() {
    let dir = temp_dir("e2e");
    let data = dir.join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");

    // First start, configured through PASSLINK_* variables.
    let log1 = dir.join("first.log");
    let mut child =
        spawn(&[], &[("PASSLINK_LISTEN", &listen), ("PASSLINK_DATA_DIR", data.to_str().unwrap())], &log1);
    passlink_testkit::wait_healthy(&base).await;
    let pat_path = data.join("admin.pat");
    let mode = std::fs::metadata(&pat_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin.pat must be private");
    assert_eq!(std::fs::metadata(data.join("keys.json")).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&pat_path).unwrap().trim().to_string();
    let c = reqwest::Client::new();
    assert_eq!(c.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);

    let (s, org) = post(&c, format!("{base}/v2/organizations"), &token, json!({"name": "e2e"})).await;
    assert_eq!(s, 201, "{org}");
    let org_id = org["organizationId"].as_str().unwrap().to_string();
    let (s, user) = post(
        &c,
        format!("{base}/v2beta/users/human"),
        &token,
        json!({"organization": {"orgId": org_id}, "profile": {"givenName": "E", "familyName": "E"}, "email": {"email": "e@example.com"}}),
    )
    .await;
    assert_eq!(s, 201, "{user}");
    let user_id = user["userId"].as_str().unwrap().to_string();
    let link = format!("{base}/v2beta/users/{user_id}/passkeys/registration_link");

    // Continuous load from 16 connections, SIGTERM in the middle of it: every request that
    // reached the server is answered (checked through the sequence below), the process exits 0.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (link, token, done) = (link.clone(), token.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut codes = Vec::new();
            loop {
                match c.post(&link).bearer_auth(&token).json(&json!({"returnCode": {}})).send().await {
                    Ok(r) => {
                        assert_eq!(r.status(), 200, "a request was answered with an error during shutdown");
                        let body: Value = r.json().await.unwrap();
                        codes.push(body["code"]["code"].as_str().unwrap().to_string());
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    // Refused or closed before the server read it: the server is going away.
                    Err(_) => return codes,
                }
            }
        }));
    }
    while done.load(std::sync::atomic::Ordering::SeqCst) < 100 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    terminate(&child);
    let mut codes = Vec::new();
    for w in workers {
        codes.extend(tokio::time::timeout(Duration::from_secs(20), w).await.unwrap().unwrap());
    }
    let answered = codes.len();
    assert!(answered >= 100);
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    // Second start on the same data dir, configured through flags: everything is reused.
    let log2 = dir.join("second.log");
    let mut child = spawn(&["serve", "--listen", &listen, "--data-dir", data.to_str().unwrap()], &[], &log2);
    passlink_testkit::wait_healthy(&base).await;
    assert_eq!(std::fs::read_to_string(&pat_path).unwrap().trim(), token);
    let (s, again) = post(&c, link.clone(), &token, json!({"returnCode": {}})).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        again["details"]["sequence"],
        (answered + 2).to_string(),
        "sequences continue across restarts"
    );
    codes.push(again["code"]["code"].as_str().unwrap().to_string());
    terminate(&child);
    assert!(tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap().success());

    // No token or code in any log line, at debug level.
    let logs = std::fs::read_to_string(&log1).unwrap() + &std::fs::read_to_string(&log2).unwrap();
    assert!(logs.contains("admin.pat"), "the token file path is logged");
    assert!(!logs.contains(&token), "the admin token leaked into the log");
    for code in &codes {
        assert!(!logs.contains(code.as_str()), "a code leaked into the log");
    }
    assert_eq!(logs.matches("created the instance").count(), 1, "bootstrap runs once");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_configuration_fails_with_a_clear_message() {
    let dir = temp_dir("badcfg");
    let out = Command::new(env!("CARGO_BIN_EXE_passlink"))
        .args(["--listen", "127.0.0.1:0", "--data-dir", dir.to_str().unwrap(), "--database", "mysql://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported --database URL"), "{err}");

    // Delivery settings that cannot work are refused at start, each with its reason.
    let secret = dir.join("hook.secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let empty = dir.join("empty.secret");
    std::fs::write(&empty, "\n").unwrap();
    let d = dir.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--smtp-host", "127.0.0.1", "--smtp-from", "not an address"], "is not an email address"),
        (vec!["--webhook-url", "http://127.0.0.1:9/hook"], "--webhook-url needs --webhook-secret-file"),
        (
            vec!["--webhook-url", "ftp://x/hook", "--webhook-secret-file", secret.to_str().unwrap()],
            "must be http or https",
        ),
        (
            vec![
                "--webhook-url",
                "http://127.0.0.1:9/hook",
                "--webhook-secret-file",
                empty.to_str().unwrap(),
            ],
            "is empty",
        ),
        (
            vec![
                "--smtp-host",
                "h",
                "--smtp-from",
                "a@b.c",
                "--webhook-url",
                "http://h/",
                "--webhook-secret-file",
                secret.to_str().unwrap(),
            ],
            "either --smtp-host or --webhook-url",
        ),
        (vec!["--smtp-host", "h", "--smtp-from", "a@b.c", "--smtp-tls", "maybe"], "invalid value 'maybe'"),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["--listen", "127.0.0.1:0", "--data-dir", d])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `passlink app add` against a running server: the application exists with its redirect URI,
/// a confidential one prints its secret once, a public one none; a wrong token and a server that
/// is down fail with a message that says so.
#[tokio::test]
async fn app_add_registers_an_oidc_application() {
    let dir = temp_dir("app-add");
    let data = dir.join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(
        &["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()],
        &[],
        &dir.join("serve.log"),
    );
    passlink_testkit::wait_healthy(&base).await;
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_passlink"));
        cmd.arg("app").arg("add").args(args).args(["--url", &base, "--data-dir", data.to_str().unwrap()]);
        cmd.env_remove("PASSLINK_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&["--name", "Shop", "--redirect-uri", "https://shop.example/cb"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    assert!(!field("client_id").is_empty() && field("client_secret").len() >= 43, "{text}");
    let public =
        run(&["--name", "Spa", "--redirect-uri", "http://localhost:3000/cb", "--public", "--dev-mode"], &[]);
    let public_text = String::from_utf8(public.stdout).unwrap();
    assert!(public.status.success() && !public_text.contains("client_secret"), "{public_text}");
    // The application is there, with its redirect URI (GetApplication over Connect JSON).
    let token = std::fs::read_to_string(data.join("admin.pat")).unwrap().trim().to_string();
    let c = reqwest::Client::new();
    let (s, app) = post(
        &c,
        format!("{base}/zitadel.application.v2.ApplicationService/GetApplication"),
        &token,
        json!({"applicationId": field("application_id")}),
    )
    .await;
    assert_eq!(s, 200, "{app}");
    assert_eq!(app["application"]["oidcConfiguration"]["redirectUris"], json!(["https://shop.example/cb"]));
    assert_eq!(app["application"]["oidcConfiguration"]["clientId"], field("client_id").as_str());
    // A wrong token; then the server is gone.
    let bad = run(&["--name", "X", "--redirect-uri", "https://x.example/cb"], &[("PASSLINK_TOKEN", "nope")]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("token was refused"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    terminate(&child);
    child.wait().unwrap();
    let down = run(&["--name", "X", "--redirect-uri", "https://x.example/cb"], &[]);
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("cannot reach passlink"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

/// `--log-format json` with the per-request line on: every stderr line is one JSON object; each
/// request has its line (request id, RPC, protocol, status, latency, caller ids) matching the
/// `x-request-id` it got back; the admin token and the returned code appear in no line.
#[tokio::test]
async fn json_logs_one_line_per_request_with_its_request_id_and_no_secrets() {
    let dir = temp_dir("json-logs");
    let data = dir.join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.join("json.log");
    let mut child = spawn(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[("PASSLINK_LOG", "info,passlink::request=debug")],
        &log,
    );
    passlink_testkit::wait_healthy(&base).await;
    let token = std::fs::read_to_string(data.join("admin.pat")).unwrap().trim().to_string();
    let c = reqwest::Client::new();

    // A user, a returned code, and the code redeemed (RegisterPasskey without a token).
    let r = c
        .post(format!("{base}/v2beta/users/human"))
        .bearer_auth(&token)
        .header("x-request-id", "client-chosen-id-1")
        .json(&json!({"profile": {"givenName": "J", "familyName": "L"}, "email": {"email": "j@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-request-id"], "client-chosen-id-1", "a well-formed id is kept");
    let user: Value = r.json().await.unwrap();
    let user_id = user["userId"].as_str().unwrap().to_string();

    let r = c
        .post(format!("{base}/v2beta/users/{user_id}/passkeys/registration_link"))
        .bearer_auth(&token)
        .header("x-request-id", "bad id with spaces")
        .json(&json!({"returnCode": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link_request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(link_request_id, "bad id with spaces", "a malformed id is replaced");
    assert_eq!(link_request_id.len(), 32);
    let link: Value = r.json().await.unwrap();
    let code_id = link["code"]["id"].as_str().unwrap().to_string();
    let code = link["code"]["code"].as_str().unwrap().to_string();

    let r = c
        .post(format!("{base}/v2beta/users/{user_id}/passkeys"))
        .json(&json!({"code": {"id": code_id, "code": code}, "authenticator": "PASSKEY_AUTHENTICATOR_PLATFORM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let redeem_request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    // A failed call and a hosted page (its query holds the code: never logged).
    let r = c.get(format!("{base}/v2/users/1234")).bearer_auth("wrong-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{base}/ui/passkey/register?userID={user_id}&codeID={code_id}&code={code}"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-request-id"));

    terminate(&child);
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&token), "the admin token leaked into the log");
    assert!(!text.contains(&code), "the code leaked into the log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()));
    let requests: Vec<&Value> = lines.iter().filter(|l| l["target"] == "passlink::request").collect();
    let by_id = |id: &str| {
        requests
            .iter()
            .find(|l| l["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line with id {id}: {requests:#?}"))
    };
    let add = by_id("client-chosen-id-1");
    assert_eq!(add["rpc"], "zitadel.user.v2beta.UserService/AddHumanUser");
    assert_eq!((add["protocol"].as_str(), add["status"].as_str()), (Some("rest"), Some("OK")));
    assert_eq!(add["http_status"], 201);
    assert!(add["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(add["user_id"].is_string() && add["org_id"].is_string(), "the admin caller's ids: {add}");
    let link = by_id(&link_request_id);
    assert_eq!(link["rpc"], "zitadel.user.v2beta.UserService/CreatePasskeyRegistrationLink");
    assert_eq!(link["user_id"], add["user_id"]);
    let redeem = by_id(&redeem_request_id);
    assert_eq!(redeem["rpc"], "zitadel.user.v2beta.UserService/RegisterPasskey");
    assert_eq!(redeem["status"], "OK");
    assert!(redeem.get("user_id").is_none(), "an anonymous call has no caller: {redeem}");
    let denied = requests.iter().find(|l| l["status"] == "UNAUTHENTICATED").expect("the 401 has its line");
    assert_eq!(denied["rpc"], "zitadel.user.v2.UserService/GetUserByID");
    assert_eq!(denied["http_status"], 401);
    let page = requests.iter().find(|l| l["protocol"] == "http" && l["rpc"] == "/ui/passkey/register");
    assert!(page.is_some(), "the hosted page is logged by its route: {requests:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The events webhook's flags: both or neither, a secret file private to passlink's user and not
/// empty, an http(s) URL; each refused at start with its reason.
#[test]
fn events_webhook_flags_are_checked_at_start() {
    let dir = temp_dir("events-flags");
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("events.secret");
    std::fs::write(&private, "s3cret\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let open = dir.join("open.secret");
    std::fs::write(&open, "s3cret\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let empty = dir.join("empty.secret");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (p, o, e) = (private.to_str().unwrap(), open.to_str().unwrap(), empty.to_str().unwrap());
    let url = "http://127.0.0.1:9/events";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--events-webhook-url", url], "--events-webhook-url needs --events-webhook-secret-file"),
        (vec!["--events-webhook-secret-file", p], "--events-webhook-secret-file needs --events-webhook-url"),
        (vec!["--events-webhook-url", url, "--events-webhook-secret-file", o], "has mode 0644"),
        (vec!["--events-webhook-url", url, "--events-webhook-secret-file", e], "is empty"),
        (
            vec!["--events-webhook-url", "ftp://x/events", "--events-webhook-secret-file", p],
            "must be http or https",
        ),
    ];
    let data = dir.join("data");
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
