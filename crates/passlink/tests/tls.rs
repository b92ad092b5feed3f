//! `passlink serve --tls-cert-file --tls-key-file` with the real binary and a test CA: HTTPS on
//! the port, SIGHUP reloads the certificate (a connection opened before keeps working with the
//! old one, new connections get the new one), a failed reload keeps the certificate in use and
//! logs why, the flags' errors stop the start with a message, and the admin CLI reaches the server
//! with `--ca-file`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use passlink_testkit::tls::TestCa;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The passlink process, killed on drop (a failed assertion leaves nothing running).
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn passlink(args: &[&str], log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passlink"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap());
    cmd
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").arg(sig).arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill {sig} failed");
}

fn client(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
        .tls_info(true)
        .build()
        .unwrap()
}

/// GET `url`; the status and the peer certificate.
async fn get(c: &reqwest::Client, url: &str) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let r = c.get(url).send().await?;
    let cert = r.extensions().get::<reqwest::tls::TlsInfo>().unwrap().peer_certificate().unwrap().to_vec();
    Ok((r.status().as_u16(), cert))
}

/// Poll until `f` holds (every 50 ms, at most `within`).
async fn eventually<F: AsyncFnMut() -> bool>(within: Duration, what: &str, mut f: F) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = temp_dir("sighup");
    let ca = TestCa::new();
    let one = ca.issue(1, "passlink one");
    let (cert, key) = one.write(&dir.join("tls"));
    let port = passlink_testkit::free_port();
    let log = dir.join("passlink.log");
    let child = passlink(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.join("data").to_str().unwrap(),
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ],
        &log,
    )
    .spawn()
    .unwrap();
    let child = Serving(child);
    let url = format!("https://127.0.0.1:{port}/healthz");

    // A connection opened before the reload.
    let before = client(&ca);
    eventually(Duration::from_secs(20), "passlink answers over HTTPS", async || {
        get(&before, &url).await.is_ok()
    })
    .await;
    assert_eq!(get(&before, &url).await.unwrap(), (200, one.der.clone()));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!("https://localhost:{port}")),
        "the default external URL is https: {logged}"
    );

    // New files, SIGHUP: new connections get the new certificate.
    let two = ca.issue(2, "passlink two");
    two.write(&dir.join("tls"));
    signal(&child.0, "-HUP");
    eventually(Duration::from_secs(10), "a new connection sees the new certificate", async || {
        get(&client(&ca), &url).await.is_ok_and(|(_, c)| c == two.der)
    })
    .await;
    // The connection from before is still open and still on the old certificate.
    assert_eq!(get(&before, &url).await.unwrap(), (200, one.der.clone()));
    assert!(std::fs::read_to_string(&log).unwrap().contains("reloaded the TLS certificate"));

    // A broken key file: the reload fails with a log line, the server keeps the second
    // certificate and keeps serving.
    std::fs::write(&key, "not a key\n").unwrap();
    signal(&child.0, "-HUP");
    eventually(Duration::from_secs(10), "the failed reload is logged", async || {
        std::fs::read_to_string(&log).unwrap().contains("the TLS certificate was not reloaded")
    })
    .await;
    assert_eq!(get(&client(&ca), &url).await.unwrap(), (200, two.der.clone()));
    assert_eq!(get(&before, &url).await.unwrap(), (200, one.der.clone()));

    // The admin CLI over https: trusting the test CA with --ca-file, and refusing the server
    // without it (the system's roots do not know the test CA).
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let status = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["status", "--url", &format!("https://localhost:{port}"), "--data-dir"])
            .arg(dir.join("data"))
            .args(extra)
            .output()
            .unwrap()
    };
    let trusted = status(&["--ca-file", ca_file.to_str().unwrap()]);
    assert!(trusted.status.success(), "status with --ca-file: {}", String::from_utf8_lossy(&trusted.stderr));
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("ready"), "{trusted:?}");
    let untrusted = status(&[]);
    assert!(!untrusted.status.success(), "the test CA is not a system root");
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("cannot reach passlink"), "{untrusted:?}");
    let not_pem = status(&["--ca-file", key.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&not_pem.stderr).contains("--ca-file"), "{not_pem:?}");

    // SIGTERM: a clean exit.
    let mut child = child;
    signal(&child.0, "-TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[test]
fn tls_flag_errors_stop_the_start() {
    let dir = temp_dir("flags");
    let ca = TestCa::new();
    let (cert, key) = ca.issue(1, "one").write(&dir.join("tls"));
    let data = dir.join("data");
    let (cert, key, data) = (cert.to_str().unwrap(), key.to_str().unwrap(), data.to_str().unwrap());
    let missing = dir.join("tls/missing.pem");
    let missing = missing.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--tls-cert-file", cert], "--tls-cert-file needs --tls-key-file"),
        (&["--tls-key-file", key], "--tls-key-file needs --tls-cert-file"),
        (&["--tls-cert-file", missing, "--tls-key-file", key], "missing.pem"),
    ];
    for (flags, expected) in cases {
        let log = dir.join("start.log");
        let port = passlink_testkit::free_port().to_string();
        let out = passlink(&["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data], &log)
            .args(flags)
            .status()
            .unwrap();
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert!(!out.success(), "{flags:?} started");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}
