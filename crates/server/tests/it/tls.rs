//! Native TLS on the main port, with a test CA made here (rcgen): REST, Connect JSON, Connect
//! binary, gRPC and gRPC-web over TLS with the CA as the only root; ALPN picks h2 or http/1.1;
//! HSTS on the hosted pages over TLS only; the certificate reloaded while a connection stays open;
//! configuration errors at start.

use std::path::PathBuf;
use std::sync::Arc;

use connectrpc::Protocol;
use connectrpc::client::{ClientConfig, HttpClient};
use passlink_server::Server;
use passlink_server::tls::TlsFiles;
use passlink_testkit::tls::{ServerCert, TestCa};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

use crate::clients::{Api, ConnectJson, Generated, Rest};
use crate::harness::{self, TestServer};
use crate::setup::{LINK_V2, human, ok};

struct TlsServer {
    s: TestServer,
    ca: TestCa,
    cert: ServerCert,
    files: TlsFiles,
}

async fn start_tls(tag: &str) -> TlsServer {
    let ca = TestCa::new();
    let cert = ca.issue(1, "passlink one");
    let dir = harness::temp_dir(tag);
    let (cert_file, key_file) = cert.write(&dir.join("tls"));
    let files = TlsFiles { cert_file, key_file };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.tls = Some(files.clone());
    let server = Server::start(cfg, listener).await.unwrap();
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    let s = TestServer { base: format!("https://127.0.0.1:{}", addr.port()), server, admin_token, dir };
    TlsServer { s, ca, cert, files }
}

/// A rustls client trusting only the test CA, offering `alpn`.
fn rustls_client(ca: &TestCa, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap()).unwrap();
    let mut c =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    c
}

/// reqwest trusting only the test CA, reporting each response's peer certificate.
fn https(ca: &TestCa) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
        .tls_info(true)
}

fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions().get::<reqwest::tls::TlsInfo>().unwrap().peer_certificate().unwrap().to_vec()
}

#[tokio::test]
async fn every_protocol_over_tls() {
    let t = start_tls("tls-protocols").await;
    let base = t.s.base.clone();
    assert!(t.s.server.external_url.starts_with("https://localhost:"), "{}", t.s.server.external_url);
    let http = https(&t.ca).build().unwrap();
    let transport = HttpClient::with_tls(Arc::new(rustls_client(&t.ca, &[])));
    let generated = |name, protocol| Generated {
        name,
        config: ClientConfig::new(base.parse().unwrap()).with_protocol(protocol),
        transport: transport.clone(),
    };
    let apis: Vec<Box<dyn Api>> = vec![
        Box::new(Rest { base: base.clone(), http: http.clone() }),
        Box::new(ConnectJson { base: base.clone(), http: http.clone() }),
        Box::new(generated("connect-proto", Protocol::Connect)),
        Box::new(generated("grpc", Protocol::Grpc)),
        Box::new(generated("grpc-web", Protocol::GrpcWeb)),
    ];
    let admin = &t.s.admin_token;
    let org = ok(apis[0]
        .call("zitadel.org.v2.OrganizationService/AddOrganization", json!({"name": "tls"}), Some(admin), None)
        .await)["organizationId"]
        .as_str()
        .unwrap()
        .to_string();
    for api in &apis {
        let user = human(api.as_ref(), admin, &org, &format!("tls-{}", api.name())).await;
        let link = ok(api.call(LINK_V2, json!({"userId": user, "returnCode": {}}), Some(admin), None).await);
        assert!(link["code"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{}: {link}", api.name());
        // The default link points at the https external URL.
        let sent = ok(api.call(LINK_V2, json!({"userId": user, "sendLink": {}}), Some(admin), None).await);
        assert!(sent.get("details").is_some(), "{}: {sent}", api.name());
    }

    // The hosted page over TLS: HSTS; the API does not need it.
    let page = http.get(format!("{base}/ui/passkey/register")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let login = http.get(format!("{base}/ui/login")).send().await.unwrap();
    assert_eq!(login.headers()["strict-transport-security"], "max-age=31536000");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("strict-transport-security").is_none());

    // Plain HTTP on the TLS port: no answer in clear text.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", t.s.server.addr.port())).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    t.s.server.shutdown().await.unwrap();

    // Without TLS: no HSTS, and the default external URL is http.
    let p = harness::start("tls-plain").await;
    assert!(p.server.external_url.starts_with("http://localhost:"));
    let page = reqwest::get(format!("{}/ui/passkey/register", p.base)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("strict-transport-security").is_none());
    p.server.shutdown().await.unwrap();
}

/// The protocol the server picks when the client offers `alpn`.
async fn negotiated(t: &TlsServer, alpn: &[&[u8]]) -> Option<Vec<u8>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(rustls_client(&t.ca, alpn)));
    let tcp = tokio::net::TcpStream::connect(t.s.server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

#[tokio::test]
async fn alpn_negotiates_h2_and_http11() {
    let t = start_tls("tls-alpn").await;
    assert_eq!(negotiated(&t, &[b"h2"]).await.as_deref(), Some(&b"h2"[..]));
    assert_eq!(negotiated(&t, &[b"http/1.1"]).await.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        negotiated(&t, &[b"http/1.1", b"h2"]).await.as_deref(),
        Some(&b"h2"[..]),
        "the server prefers h2"
    );
    assert_eq!(negotiated(&t, &[]).await, None);

    // reqwest offers both and gets HTTP/2; limited to HTTP/1.1 it gets that.
    let h2 = https(&t.ca).build().unwrap().get(format!("{}/healthz", t.s.base)).send().await.unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(h2.text().await.unwrap(), "ok");
    let h1 =
        https(&t.ca).http1_only().build().unwrap().get(format!("{}/healthz", t.s.base)).send().await.unwrap();
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    assert_eq!(h1.text().await.unwrap(), "ok");
    t.s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reload_serves_the_new_certificate_and_keeps_open_connections() {
    let t = start_tls("tls-reload").await;
    let url = format!("{}/healthz", t.s.base);
    // One connection, opened before the reload (HTTP/2: every request of this client uses it).
    let before = https(&t.ca).build().unwrap();
    let r = before.get(&url).send().await.unwrap();
    assert_eq!(peer_cert(&r), t.cert.der);

    let second = t.ca.issue(2, "passlink two");
    second.write(t.files.cert_file.parent().unwrap());
    assert_eq!(t.s.server.reload_tls(), Ok(true));

    // The open connection keeps working, with the certificate it started with.
    let r = before.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_cert(&r), t.cert.der, "the connection opened before the reload is the same one");
    // A new connection gets the new certificate.
    let r = https(&t.ca).build().unwrap().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_cert(&r), second.der);

    // A failed reload keeps the certificate in use: a key that is not PEM, then a key that is
    // not the certificate's.
    std::fs::write(&t.files.key_file, "not a key").unwrap();
    let e = t.s.server.reload_tls().unwrap_err();
    assert!(e.contains("--tls-key-file"), "{e}");
    let third = t.ca.issue(3, "passlink three");
    std::fs::write(&t.files.cert_file, &third.cert_pem).unwrap();
    std::fs::write(&t.files.key_file, &second.key_pem).unwrap();
    let e = t.s.server.reload_tls().unwrap_err();
    assert!(e.contains("--tls-cert-file"), "{e}");
    let r = https(&t.ca).build().unwrap().get(&url).send().await.unwrap();
    assert_eq!(peer_cert(&r), second.der, "still the certificate of the last good reload");
    let r = before.get(&url).send().await.unwrap();
    assert_eq!(peer_cert(&r), t.cert.der);
    t.s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_configuration_errors_fail_the_start() {
    let cert = PathBuf::from("cert.pem");
    let key = PathBuf::from("key.pem");
    assert!(TlsFiles::from_flags(Some(cert.clone()), None).unwrap_err().contains("--tls-key-file"));
    assert!(TlsFiles::from_flags(None, Some(key.clone())).unwrap_err().contains("--tls-cert-file"));
    assert_eq!(TlsFiles::from_flags(None, None), Ok(None));

    let ca = TestCa::new();
    let dir = harness::temp_dir("tls-errors");
    let (cert_file, key_file) = ca.issue(1, "one").write(&dir.join("tls"));
    let other = ca.issue(2, "two");
    let missing = dir.join("tls/missing.pem");
    let garbage = dir.join("tls/garbage.pem");
    std::fs::write(&garbage, "-----BEGIN NOTHING-----\n").unwrap();
    let other_key = dir.join("tls/other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();
    let cases = [
        (missing.clone(), key_file.clone(), "missing.pem"),
        (garbage.clone(), key_file.clone(), "--tls-cert-file"),
        (cert_file.clone(), missing.clone(), "missing.pem"),
        (cert_file.clone(), garbage.clone(), "--tls-key-file"),
        (cert_file.clone(), other_key.clone(), "--tls-cert-file"),
    ];
    for (cert_file, key_file, expected) in cases {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = harness::config(listener.local_addr().unwrap(), &dir);
        cfg.tls = Some(TlsFiles { cert_file: cert_file.clone(), key_file: key_file.clone() });
        let e = match Server::start(cfg, listener).await {
            Ok(_) => panic!("started with {cert_file:?} / {key_file:?}"),
            Err(e) => e,
        };
        assert!(e.contains(expected), "{cert_file:?} / {key_file:?}: {e}");
    }
}
