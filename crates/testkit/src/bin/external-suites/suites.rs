//! The bodies of the external suites, each as `scripts/test` ran it in bash before: the same
//! programs, environment variables and flags.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Ctx, Failure, Outcome, Registered, pause, run, run_filtered, which};

/// Our compiled protos (a descriptor set written by the wire crate's example) compared field by
/// field with ZITADEL's published descriptors.
pub fn conformance_protos(ctx: &Ctx) -> Outcome {
    let pb = ctx.path("passlink.pb");
    run(Command::new(&ctx.cargo)
        .args(["run", "-q", "-p", "passlink-wire", "--example", "write-descriptors", "--"])
        .arg(&pb))?;
    run(Command::new("node").arg("tests/conformance/compare-protos.mjs").arg(&pb))
}

/// ZITADEL's clients over every protocol against a running passlink whose `sendLink` emails go
/// to the SMTP test server over STARTTLS (a test CA, trusted through `--smtp-ca-file`) with a
/// login (`--smtp-password-file`); then every email must have arrived that way.
pub fn conformance_clients(ctx: &Ctx) -> Outcome {
    const USER: &str = "passlink";
    const PASSWORD: &str = "conformance-pw";
    let certs = ctx.path("smtp-certs");
    let sink = passlink_testkit::SmtpSink::start_with(
        passlink_testkit::free_port(),
        &ctx.path("mail"),
        Some(&certs),
        Some((USER, PASSWORD)),
    );
    let _sink_is_a_child = Registered::new(sink.pid());
    let password_file = ctx.path("smtp.pw");
    std::fs::write(&password_file, format!("{PASSWORD}\n"))
        .map_err(|e| format!("writing {}: {e}", password_file.display()))?;
    let args: Vec<String> = vec![
        "--smtp-host".into(),
        "127.0.0.1".into(),
        "--smtp-port".into(),
        sink.port.to_string(),
        "--smtp-tls".into(),
        "starttls".into(),
        "--smtp-ca-file".into(),
        certs.join("ca.pem").display().to_string(),
        "--smtp-user".into(),
        USER.into(),
        "--smtp-password-file".into(),
        password_file.display().to_string(),
        "--smtp-from".into(),
        "passlink@localhost".into(),
    ];
    let passlink = ctx.start_passlink("passlink", &args)?;
    run_filtered(
        Command::new("node")
            .arg("tests/conformance/conformance.mjs")
            .env("PASSLINK_URL", format!("http://127.0.0.1:{}", passlink.port))
            .env("PASSLINK_TOKEN", passlink.admin_token()?),
    )
    .map_err(|f| f.with_log(&passlink.log))?;

    // The sendLink calls above were delivered through the binary's --smtp-* flags.
    let start = Instant::now();
    let mut messages = sink.messages();
    while messages.is_empty() && start.elapsed() < Duration::from_secs(10) {
        pause(ctx, Duration::from_millis(100));
        messages = sink.messages();
    }
    if messages.is_empty() {
        return Err(Failure::new("no email reached the SMTP server").with_log(&passlink.log));
    }
    let bad: Vec<&Vec<String>> = messages
        .iter()
        .filter(|m| !(m.tls && m.auth_user.as_deref() == Some(USER)))
        .map(|m| &m.rcpt_tos)
        .collect();
    if !bad.is_empty() {
        return Err(Failure::new(format!("sent without STARTTLS or login: {bad:?}")).with_log(&passlink.log));
    }
    println!("PASS sendLink emails delivered by the binary over STARTTLS with a login: {}", messages.len());
    passlink.stop()?;
    sink.stop();
    Ok(())
}

/// The hosted registration page (enroll.mjs), the demo sign-in page (login.mjs) and OpenID Connect
/// sign-in through the hosted login page with openid-client as the app (oidc.mjs) in headless
/// Chromium. The relying party id is the host of `--external-url`: the browser must open the
/// pages on localhost.
pub fn browser(ctx: &Ctx) -> Outcome {
    let chromium =
        which("chromium").ok_or_else(|| Failure::new("chromium is not installed: run scripts/setup"))?;
    // The OIDC suite enrolls through the emailed link: a real SMTP server receives it.
    let mail = ctx.path("browser-mail");
    let sink = passlink_testkit::SmtpSink::start(passlink_testkit::free_port(), &mail);
    let _sink_is_a_child = Registered::new(sink.pid());
    let mut args = external_url_localhost();
    args.extend(
        ["--smtp-host", "127.0.0.1", "--smtp-port", &sink.port.to_string(), "--smtp-tls", "none"]
            .map(String::from),
    );
    args.extend(["--smtp-from", "passlink@localhost"].map(String::from));
    // An AAGUID list that knows Chromium's virtual authenticator: the page names passkeys after it.
    args.extend(["--aaguid-file", "tests/browser/aaguid.json"].map(String::from));
    let passlink = ctx.start_passlink("passlink-browser", &args)?;
    let token = passlink.admin_token()?;
    for script in ["tests/browser/enroll.mjs", "tests/browser/login.mjs", "tests/browser/oidc.mjs"] {
        run_filtered(
            Command::new("node")
                .arg(script)
                .env("PASSLINK_URL", format!("http://localhost:{}", passlink.port))
                .env("PASSLINK_TOKEN", &token)
                .env("CHROMIUM", &chromium)
                .env("MAIL_DIR", &mail)
                .env("ARTIFACTS_DIR", "tests/browser/artifacts"),
        )
        .map_err(|f| f.with_log(&passlink.log))?;
    }
    passlink.stop()?;
    sink.stop();
    Ok(())
}

/// The hosted registration page over native TLS (tests/browser/tls.mjs): passlink serves HTTPS
/// with a certificate of a test CA made here (`--tls-cert-file`, default external URL
/// `https://localhost:<port>`); Chromium trusts the leaf's key through
/// `--ignore-certificate-errors-spki-list`, node's fetch the CA through `NODE_EXTRA_CA_CERTS`.
pub fn browser_tls(ctx: &Ctx) -> Outcome {
    let chromium =
        which("chromium").ok_or_else(|| Failure::new("chromium is not installed: run scripts/setup"))?;
    let ca = passlink_testkit::tls::TestCa::new();
    let cert = ca.issue(1, "localhost");
    let dir = ctx.path("browser-tls-certs");
    let (cert_file, key_file) = cert.write(&dir);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).map_err(|e| format!("writing {}: {e}", ca_file.display()))?;
    let args: Vec<String> = vec![
        "--tls-cert-file".into(),
        cert_file.display().to_string(),
        "--tls-key-file".into(),
        key_file.display().to_string(),
    ];
    let passlink = ctx.start_passlink_tls("passlink-browser-tls", &args, Some(&ca.pem))?;
    run_filtered(
        Command::new("node")
            .arg("tests/browser/tls.mjs")
            .env("PASSLINK_URL", format!("https://localhost:{}", passlink.port))
            .env("PASSLINK_TOKEN", passlink.admin_token()?)
            .env("NODE_EXTRA_CA_CERTS", &ca_file)
            .env("CHROMIUM", &chromium)
            .env("CHROMIUM_SPKI", &cert.spki_sha256)
            .env("ARTIFACTS_DIR", "tests/browser/artifacts"),
    )
    .map_err(|f| f.with_log(&passlink.log))?;
    passlink.stop()
}

/// The authenticator policy on the hosted registration page (tests/browser/policy.mjs): passlink
/// with `--authenticator-policy` denying the AAGUID of Chromium's virtual authenticator.
pub fn browser_policy(ctx: &Ctx) -> Outcome {
    let chromium =
        which("chromium").ok_or_else(|| Failure::new("chromium is not installed: run scripts/setup"))?;
    let policy = ctx.path("browser-policy.json");
    std::fs::write(&policy, r#"{"deny": ["01020304-0506-0708-0102-030405060708"]}"#)
        .map_err(|e| format!("writing {}: {e}", policy.display()))?;
    let mut args = external_url_localhost();
    args.extend(["--authenticator-policy".to_string(), policy.display().to_string()]);
    let passlink = ctx.start_passlink("passlink-browser-policy", &args)?;
    run_filtered(
        Command::new("node")
            .arg("tests/browser/policy.mjs")
            .env("PASSLINK_URL", format!("http://localhost:{}", passlink.port))
            .env("PASSLINK_TOKEN", passlink.admin_token()?)
            .env("CHROMIUM", &chromium)
            .env("ARTIFACTS_DIR", "tests/browser/artifacts"),
    )
    .map_err(|f| f.with_log(&passlink.log))?;
    passlink.stop()
}

/// ZITADEL's Python and Node SDKs against one passlink. The JWT assertion's audience is the host
/// the SDK is given: the SDKs use the external URL.
pub fn sdk(ctx: &Ctx) -> Outcome {
    let passlink = ctx.start_passlink("passlink-sdk", &external_url_localhost())?;
    let url = format!("http://localhost:{}", passlink.port);
    let token = passlink.admin_token()?;
    run_filtered(
        Command::new("tests/sdk/.venv/bin/python")
            .arg("tests/sdk/sdk_test.py")
            .env("PASSLINK_URL", &url)
            .env("PASSLINK_TOKEN", &token),
    )
    .map_err(|f| f.with_log(&passlink.log))?;
    run_filtered(
        Command::new("node")
            .arg("tests/sdk/sdk_test.mjs")
            .env("PASSLINK_URL", &url)
            .env("PASSLINK_TOKEN", &token),
    )
    .map_err(|f| f.with_log(&passlink.log))?;
    passlink.stop()
}

/// gRPC's own Python clients (grpcio, grpcio-health-checking, grpcio-reflection) against one
/// passlink: reflection lists the services and resolves a method, whose request is built from the
/// reflected descriptors and sent with the admin token; health Check and Watch.
pub fn ops(ctx: &Ctx) -> Outcome {
    let passlink = ctx.start_passlink("passlink-ops", &[])?;
    let token = passlink.admin_token()?;
    run_filtered(
        Command::new("tests/ops/.venv/bin/python")
            .arg("tests/ops/ops_test.py")
            .env("PASSLINK_ADDR", format!("127.0.0.1:{}", passlink.port))
            .env("PASSLINK_TOKEN", &token),
    )
    .map_err(|f| f.with_log(&passlink.log))?;
    passlink.stop()
}

/// The served OpenAPI document (`GET /openapi.json`) checked with schemathesis against a running
/// passlink (tests/openapi/run.py): every operation with the admin token (no 5xx, responses
/// conform to the document), then with a token of a machine user without roles (no 5xx, no 2xx
/// with data).
pub fn openapi(ctx: &Ctx) -> Outcome {
    let python = "tests/openapi/.venv/bin/python";
    if !std::path::Path::new(python).exists() {
        return Err(Failure::new("tests/openapi/.venv is missing: run scripts/setup"));
    }
    let passlink = ctx.start_passlink("passlink-openapi", &[])?;
    run_filtered(
        Command::new(python)
            .arg("tests/openapi/run.py")
            .env("PASSLINK_URL", format!("http://127.0.0.1:{}", passlink.port))
            .env("PASSLINK_TOKEN", passlink.admin_token()?),
    )
    .map_err(|f| f.with_log(&passlink.log))?;
    passlink.stop()
}

/// `--external-url http://localhost:<port>` needs the port before passlink starts: the flag is
/// filled in by [`Ctx::start_passlink`] from this placeholder.
fn external_url_localhost() -> Vec<String> {
    vec!["--external-url".into(), "http://localhost:{port}".into()]
}
