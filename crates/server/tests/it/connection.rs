//! Connection-level limits of the main port, with raw sockets (tokio TcpStream) against a server
//! started with small limits: a slowloris sending one header byte at a time is cut off after the
//! header read timeout while another client is served; a connection that sends nothing, or an
//! HTTP/2 preface that never finishes, is closed; oversized and too many headers answer 431; a
//! body that never ends is cut off after the body read timeout; HTTP/2 advertises its stream and
//! header-list limits, and a rapid-reset flood ends with GOAWAY (ENHANCE_YOUR_CALM).

use std::time::{Duration, Instant};

use passlink_server::Server;
use passlink_server::listen::ConnLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{self, TestServer};

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);

async fn start(tag: &str) -> TestServer {
    let dir = harness::temp_dir(tag);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.connection = ConnLimits {
        header_read_timeout: HEADER_TIMEOUT,
        body_read_timeout: BODY_TIMEOUT,
        max_header_bytes: 16 * 1024,
        max_headers: 40,
        h2_max_concurrent_streams: 16,
        h2_max_pending_accept_reset_streams: 5,
        ..ConnLimits::default()
    };
    let server = Server::start(cfg, listener).await.unwrap();
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    TestServer { base: format!("http://{addr}"), server, admin_token, dir }
}

/// Read until the server closes the connection (or `limit` passes); what was read and whether
/// it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Meanwhile, another client is served: `/healthz` answers within a second, `n` times.
async fn others_are_served(base: &str, n: usize) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for _ in 0..n {
        let r = tokio::time::timeout(Duration::from_secs(5), http.get(format!("{base}/healthz")).send())
            .await
            .expect("another client waited")
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn slowloris_headers_are_cut_off_while_others_are_served() {
    let s = start("limits-slowloris").await;
    let addr = s.server.addr;
    // One header byte every 100 ms: the whole head would take ~30 s.
    let slow = tokio::spawn(async move {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n", "a".repeat(250));
        let start = Instant::now();
        for b in head.bytes() {
            if c.write_all(&[b]).await.is_err() {
                return start.elapsed();
            }
            let mut probe = [0u8; 1024];
            // Closed (0 or an error) or answered: cut off either way.
            if tokio::time::timeout(Duration::from_millis(100), c.read(&mut probe)).await.is_ok() {
                return start.elapsed();
            }
        }
        panic!("the whole slow head was accepted after {:?}", start.elapsed());
    });
    others_are_served(&s.base, 5).await;
    let cut = slow.await.unwrap();
    assert!(cut >= HEADER_TIMEOUT - Duration::from_millis(200), "cut off too early: {cut:?}");
    assert!(cut < HEADER_TIMEOUT * 4, "cut off late: {cut:?}");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn silent_connections_and_slow_http2_prefaces_are_closed() {
    let s = start("limits-silent").await;
    // Nothing sent at all.
    let mut silent = TcpStream::connect(s.server.addr).await.unwrap();
    // The start of the HTTP/2 preface, then nothing.
    let mut preface = TcpStream::connect(s.server.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let start = Instant::now();
    let (silent_read, silent_closed) = read_until_closed(&mut silent, HEADER_TIMEOUT * 4).await;
    let (_, preface_closed) = read_until_closed(&mut preface, HEADER_TIMEOUT * 4).await;
    assert!(silent_closed, "a silent connection stays open");
    assert!(preface_closed, "an unfinished HTTP/2 preface stays open");
    assert!(start.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(200));
    let text = String::from_utf8_lossy(&silent_read);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    others_are_served(&s.base, 1).await;
    s.server.shutdown().await.unwrap();
}

/// Send `head` on a new connection; the status line of the answer.
async fn status_of(addr: std::net::SocketAddr, head: &str) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(head.as_bytes()).await;
    let (out, _) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    String::from_utf8_lossy(&out).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn header_size_and_count_are_bounded() {
    let s = start("limits-headers").await;
    let addr = s.server.addr;
    let ok = status_of(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: b\r\n\r\n").await;
    assert_eq!(ok, "HTTP/1.1 200 OK");
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(32 * 1024));
    assert_eq!(status_of(addr, &big).await, "HTTP/1.1 431 Request Header Fields Too Large");
    let many: String = (0..60).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(status_of(addr, &many).await, "HTTP/1.1 431 Request Header Fields Too Large");
    others_are_served(&s.base, 1).await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_off() {
    let s = start("limits-body").await;
    let addr = s.server.addr;
    let token = s.admin_token.clone();
    let slow = tokio::spawn(async move {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /zitadel.org.v2.OrganizationService/ListOrganizations HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\n\
             Content-Length: 1000\r\n\r\n{{"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let start = Instant::now();
        // One more body byte per 100 ms, for much longer than the timeout.
        for _ in 0..300 {
            if c.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
                Ok(Ok(n)) => return (start.elapsed(), String::from_utf8_lossy(&buf[..n]).to_string()),
                Ok(Err(_)) => return (start.elapsed(), String::new()),
                Err(_) => {}
            }
        }
        (start.elapsed(), "never cut off".to_string())
    });
    others_are_served(&s.base, 5).await;
    let (after, answer) = slow.await.unwrap();
    assert!(after >= BODY_TIMEOUT - Duration::from_millis(200), "cut off too early: {after:?}");
    assert!(after < BODY_TIMEOUT * 4, "cut off late: {after:?} ({answer})");
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout"), "{answer}");
    s.server.shutdown().await.unwrap();
}

// ---- HTTP/2 frames by hand -------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Read one frame: (type, flags, stream, payload).
async fn read_frame(c: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut head)).await.ok()?.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    c.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Some((head[3], head[4], stream, payload))
}

const SETTINGS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;

#[tokio::test]
async fn http2_advertises_its_limits_and_ends_a_rapid_reset_flood() {
    let s = start("limits-h2").await;
    let mut c = TcpStream::connect(s.server.addr).await.unwrap();
    c.write_all(PREFACE).await.unwrap();
    c.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let (kind, _, _, payload) = read_frame(&mut c).await.unwrap();
    assert_eq!(kind, SETTINGS, "the server's first frame");
    let settings: Vec<(u16, u32)> = payload
        .chunks(6)
        .map(|p| (u16::from_be_bytes([p[0], p[1]]), u32::from_be_bytes([p[2], p[3], p[4], p[5]])))
        .collect();
    assert!(settings.contains(&(0x3, 16)), "SETTINGS_MAX_CONCURRENT_STREAMS 16 in {settings:?}");
    assert!(settings.contains(&(0x6, 16 * 1024)), "SETTINGS_MAX_HEADER_LIST_SIZE in {settings:?}");

    // HEADERS (GET / http, from the static table) and RST_STREAM(CANCEL) for stream after stream.
    let mut flood = Vec::new();
    for i in 0..200u32 {
        let id = 1 + 2 * i;
        flood.extend(frame(HEADERS, 0x4 | 0x1, id, &[0x82, 0x86, 0x84, 0x41, 0x01, b'x']));
        flood.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = c.write_all(&flood).await;
    let mut goaway = None;
    while let Some((kind, _, _, payload)) = read_frame(&mut c).await {
        if kind == GOAWAY {
            goaway = Some(u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]));
            break;
        }
    }
    assert_eq!(goaway, Some(0xb), "GOAWAY with ENHANCE_YOUR_CALM after the flood");
    others_are_served(&s.base, 1).await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_accept_loop_gives_handlers_the_client_address() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/peer",
        axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served =
        tokio::spawn(passlink_server::listen::serve(listener, router, None, ConnLimits::default(), async {
            let _ = stopped.await;
        }));
    let mut c = TcpStream::connect(addr).await.unwrap();
    let me = c.local_addr().unwrap();
    c.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (out, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(closed && text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with(&me.to_string()), "{text} does not end with {me}");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}
