//! `passlink backup` against a running binary under write load: every user and link
//! acknowledged before the backup started is in the copy, the copy passes integrity_check, and a
//! second server started on the restored copy (with the keys and admin token written beside it)
//! accepts the old admin token and serves a new link. An existing file is refused without
//! `--force`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passlink"))
}

fn serve(data: &Path, port: u16) -> Child {
    bin()
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill -TERM failed");
    assert!(child.wait().unwrap().success());
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-backup-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn call(http: &reqwest::Client, base: &str, token: &str, method: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}/{method}"))
        .bearer_auth(token)
        .header("connect-protocol-version", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{method}: {status} {v}");
    v
}

/// A new user with a link (returned code): (user id, code id).
async fn user_with_link(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    org: &str,
    n: usize,
) -> (String, String) {
    let u = call(
        http,
        base,
        token,
        "zitadel.user.v2.UserService/AddHumanUser",
        json!({"organization": {"orgId": org}, "profile": {"givenName": format!("U{n}"), "familyName": "B"},
               "email": {"email": format!("u{n}@example.com"), "isVerified": true}}),
    )
    .await;
    let user = u["userId"].as_str().unwrap().to_string();
    let link = call(
        http,
        base,
        token,
        "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink",
        json!({"userId": user, "returnCode": {}}),
    )
    .await;
    (user, link["code"]["id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_into_a_working_server() {
    let (a, b, out) = (dir("a"), dir("b"), dir("out"));
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = serve(&a, port);
    passlink_testkit::wait_healthy(&base).await;
    let token = std::fs::read_to_string(a.join("admin.pat")).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let orgs =
        call(&http, &base, &token, "zitadel.org.v2.OrganizationService/ListOrganizations", json!({})).await;
    let org = orgs["result"][0]["id"].as_str().unwrap().to_string();

    // Four clients creating users and links until told to stop; every acknowledged pair is kept.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stopping = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for client in 0..4 {
        let (acked, stopping, http, base, token, org) =
            (acked.clone(), stopping.clone(), http.clone(), base.clone(), token.clone(), org.clone());
        load.push(tokio::spawn(async move {
            let mut n = client * 100_000;
            while !stopping.load(Ordering::Relaxed) {
                let pair = user_with_link(&http, &base, &token, &org, n).await;
                acked.lock().unwrap().push(pair);
                n += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before: Vec<(String, String)> = acked.lock().unwrap().clone();
    let file = out.join("passlink.backup");
    let run = {
        let (a, file) = (a.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            bin()
                .args(["backup", file.to_str().unwrap(), "--data-dir", a.to_str().unwrap()])
                .output()
                .unwrap()
        })
    };
    let done = run.await.unwrap();
    let after_backup = acked.lock().unwrap().len();
    stopping.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert!(done.status.success(), "backup: {}", String::from_utf8_lossy(&done.stderr));
    let printed = String::from_utf8(done.stdout).unwrap();
    assert!(printed.contains("pages of 2048 bytes") && printed.contains("integrity_check ok"), "{printed}");
    assert!(after_backup > before.len(), "the load ran during the backup ({after_backup} links)");

    // Beside it, mode 0600: the keys and the admin token.
    use std::os::unix::fs::PermissionsExt as _;
    for f in ["passlink.backup", "passlink.backup.keys.json", "passlink.backup.admin.pat"] {
        let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    // The copy passes integrity_check (checked again here, independently of the command).
    {
        let c =
            rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    // An existing file is refused without --force.
    let again =
        bin().args(["backup", file.to_str().unwrap(), "--data-dir", a.to_str().unwrap()]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"), "{again:?}");
    stop(server);

    // Restore into a fresh data dir and start a second server on it.
    std::fs::copy(&file, b.join("passlink.db")).unwrap();
    std::fs::copy(out.join("passlink.backup.keys.json"), b.join("keys.json")).unwrap();
    std::fs::copy(out.join("passlink.backup.admin.pat"), b.join("admin.pat")).unwrap();
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let restored = serve(&b, port);
    passlink_testkit::wait_healthy(&base).await;
    for (user, _) in &before {
        let got =
            call(&http, &base, &token, "zitadel.user.v2.UserService/GetUserByID", json!({"userId": user}))
                .await;
        assert_eq!(got["user"]["userId"], user.as_str());
    }
    // The link events (a sample: the first and the last acknowledged before the backup).
    for (user, code) in [before.first().unwrap(), before.last().unwrap()] {
        let ev = bin().args(["events", "--user", user, "--data-dir", b.to_str().unwrap()]).output().unwrap();
        let text = String::from_utf8(ev.stdout).unwrap();
        assert!(ev.status.success(), "{}", String::from_utf8_lossy(&ev.stderr));
        assert!(text.contains("passwordless.initialization.code") && text.contains(code.as_str()), "{text}");
    }
    // The old admin token works and a new link is served.
    let (user, code) = user_with_link(&http, &base, &token, &org, 999_999).await;
    assert!(!user.is_empty() && !code.is_empty());
    stop(restored);
    for d in [a, b, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}
