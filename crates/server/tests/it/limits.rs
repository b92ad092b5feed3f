//! Request limits and rate limits, over real sockets: bodies over the limit are refused before
//! they are read (by Content-Length) or while they are read (chunked), deep JSON is a clear 400,
//! and failed attempts on what needs no account are throttled per target and per client
//! address (429 / ResourceExhausted with Retry-After) while legitimate users are not.

use std::time::Duration;

use passlink_server::Server;
use passlink_server::limits::{DEFAULT_PER_TARGET, IpNet, Limits, ProxyConfig, Rate};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{self, Rest};
use crate::harness::{self, TestServer};
use crate::passkey::{REGISTER, returned_code, start};
use crate::setup::{human, ok, world};

async fn start_with(tag: &str, limits: Limits) -> TestServer {
    let dir = harness::temp_dir(tag);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.limits = limits;
    let server = Server::start(cfg, listener).await.unwrap();
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    TestServer { base: format!("http://{addr}"), server, admin_token, dir }
}

/// The REST path of RegisterPasskey (v2) for `user`.
fn register_path(user: &str) -> String {
    let (_, path, _, _) = passlink_wire::REST_ROUTES.iter().find(|r| r.2 == REGISTER).unwrap();
    path.replace("{user_id}", user)
}

/// A raw HTTP/1.1 exchange: send `head` (and `body` chunks), read the response head and body
/// until the server closes or 5 s pass. The server must answer without the rest of the body.
async fn raw_http(base: &str, head: &str, body: &[&[u8]]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    for chunk in body {
        // A refused request may be answered (and the socket closed) before all chunks are sent.
        if sock.write_all(chunk).await.is_err() {
            break;
        }
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        loop {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = find(&buf, b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok());
                        if len.is_some_and(|n| buf.len() >= end + 4 + n) {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The JSON object of a response (plain or in one chunk).
fn json_body(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => &body[a..=b],
        _ => body,
    };
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_they_are_read_on_every_protocol() {
    let limit = 64 * 1024;
    let s = start_with("lim-body", Limits { max_body_bytes: limit, ..Limits::default() }).await;
    let huge = 100 * 1024 * 1024;
    // A declared length of 100 MiB and no body at all: the answer comes at once.
    let rest_head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {huge}\r\n\r\n",
        register_path("1")
    );
    let (status, raw) = raw_http(&s.base, &rest_head, &[]).await;
    assert_eq!(status, 413, "{raw}");
    assert_eq!(json_body(&raw)["code"], 8, "{raw}");
    let connect_head = format!(
        "POST /{REGISTER} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnect-protocol-version: 1\r\ncontent-length: {huge}\r\n\r\n"
    );
    let (status, raw) = raw_http(&s.base, &connect_head, &[]).await;
    assert_eq!(status, 429, "{raw}");
    assert_eq!(json_body(&raw)["code"], "resource_exhausted", "{raw}");
    let web_head = format!(
        "POST /{REGISTER} HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc-web+proto\r\ncontent-length: {huge}\r\n\r\n"
    );
    let (status, raw) = raw_http(&s.base, &web_head, &[]).await;
    assert_eq!(status, 200, "{raw}");
    assert!(raw.to_lowercase().contains("grpc-status: 8"), "{raw}");
    // The same for an OAuth form.
    let token_head = format!(
        "POST /oauth/v2/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {huge}\r\n\r\n"
    );
    assert_eq!(raw_http(&s.base, &token_head, &[]).await.0, 413);

    // Without a length (chunked), the body is counted while it is read.
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "a".repeat(16 * 1024));
    let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_bytes(), 8).collect();
    let chunked = |path: &str, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra}transfer-encoding: chunked\r\n\r\n"
        )
    };
    let (status, raw) = raw_http(&s.base, &chunked(&register_path("1"), ""), &chunks).await;
    assert_eq!(status, 413, "{raw}");
    assert_eq!(json_body(&raw)["code"], 8, "{raw}");
    let (status, raw) =
        raw_http(&s.base, &chunked(&format!("/{REGISTER}"), "connect-protocol-version: 1\r\n"), &chunks)
            .await;
    assert_eq!(status, 429, "{raw}");
    assert_eq!(json_body(&raw)["code"], "resource_exhausted", "{raw}");

    // The real clients of every protocol: a field of twice the limit is ResourceExhausted; a
    // field just under the limit reaches validation (a clear InvalidArgument, never a 5xx).
    for api in clients::all(&s.base) {
        let too_big =
            api.call(REGISTER, json!({"userId": "1", "domain": "d".repeat(2 * limit)}), None, None).await;
        let f = too_big.unwrap_err();
        assert_eq!(f.code, 8, "{}: {f:?}", api.name());
        if let Some(http) = f.http {
            assert!(http == 413 || http == 429, "{}: {http}", api.name());
        }
        let big =
            api.call(REGISTER, json!({"userId": "1", "domain": "d".repeat(limit - 1024)}), None, None).await;
        let f = big.unwrap_err();
        assert!(![2, 8, 13, 14].contains(&f.code), "{}: {f:?}", api.name());
    }
    // The server is still serving.
    let r = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    s.server.shutdown().await.unwrap();
}

/// `{"a":{"a":…}}` `depth` deep.
fn nested_object(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

#[tokio::test]
async fn deeply_nested_json_and_protobuf_are_a_clear_invalid_argument() {
    let s = harness::start("lim-json").await;
    let http = reqwest::Client::new();
    let verify = "zitadel.user.v2.UserService/VerifyPasskeyRegistration";
    let (_, template, _, _) = passlink_wire::REST_ROUTES.iter().find(|r| r.2 == verify).unwrap();
    let rest_url = format!("{}{}", s.base, template.replace("{user_id}", "1").replace("{passkey_id}", "2"));
    // The credential is a google.protobuf.Struct: any JSON nests in it.
    for (what, deep) in [
        ("object", format!("{{\"publicKeyCredential\":{}}}", nested_object(50_000))),
        (
            "array",
            format!("{{\"publicKeyCredential\":{{\"a\":{}1{}}}}}", "[".repeat(200_000), "]".repeat(200_000)),
        ),
    ] {
        let r = http
            .post(&rest_url)
            .header("content-type", "application/json")
            .body(deep.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "REST {what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], 3, "REST {what}: {body}");
        let r = http
            .post(format!("{}/{verify}", s.base))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .body(deep)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "Connect {what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "invalid_argument", "Connect {what}: {body}");
    }
    // The same credential 5 000 deep in binary protobuf (gRPC-web): buffa's recursion limit.
    let r = http
        .post(format!("{}/{verify}", s.base))
        .header("content-type", "application/grpc-web+proto")
        .body(grpc_web_frame(&deep_verify_request(5_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let in_headers = r.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_string());
    let body = r.bytes().await.unwrap();
    let status = in_headers.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body).to_lowercase();
        text.split("grpc-status:")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    });
    assert_eq!(status, "3", "gRPC-web: {}", String::from_utf8_lossy(&body));
    // Nesting within serde_json's bound (128) is read and reaches the RPC (an unknown user here).
    let fine = format!("{{\"publicKeyCredential\":{},\"passkeyName\":\"k\"}}", nested_object(100));
    let r = http.post(&rest_url).header("content-type", "application/json").body(fine).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_ne!(r.status(), 429);
    let r = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    s.server.shutdown().await.unwrap();
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `tag` + length + `payload` (a length-delimited field).
fn field(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    varint(payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

/// VerifyPasskeyRegistrationRequest{user_id: "1", passkey_id: "2", public_key_credential: a
/// Struct `depth` levels deep ({"a": {"a": … 1.0}})}, in binary protobuf.
fn deep_verify_request(depth: usize) -> Vec<u8> {
    let mut value = vec![0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]; // Value.number_value = 1.0
    let mut strukt = Vec::new();
    for _ in 0..depth {
        let entry = [field(0x0a, b"a"), field(0x12, &value)].concat(); // map entry: key, value
        strukt = field(0x0a, &entry); // Struct.fields
        value = field(0x2a, &strukt); // Value.struct_value
    }
    [field(0x0a, b"1"), field(0x12, b"2"), field(0x1a, &strukt)].concat()
}

fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_attacker_guessing_codes_of_one_user_is_throttled_while_another_user_enrolls() {
    let s = harness::start("lim-codes").await;
    let w = world(&s, "limc").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let victim = human(&rest, &w.admin, &w.org_a, "limc-victim").await;
    let (code_id, code) = returned_code(&rest, &w.admin, &victim).await;
    let http = reqwest::Client::new();
    let url = format!("{}{}", s.base, register_path(&victim));
    // Wrong codes for the victim, no token: each a 400 until the target's burst is spent.
    let burst = DEFAULT_PER_TARGET.burst;
    let mut refused = None;
    for i in 0..burst + 5 {
        let r = http
            .post(&url)
            .json(&json!({"code": {"id": code_id, "code": format!("guess-{i}")}}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some((i, retry_after(&r), r.json::<Value>().await.unwrap()));
            break;
        }
        assert_eq!(r.status(), 400, "attempt {i}");
    }
    let (after, wait, body) = refused.expect("the attacker was never throttled");
    assert_eq!(after, burst, "throttled after exactly the burst of failures");
    let interval = 60 / u64::from(DEFAULT_PER_TARGET.per_minute);
    assert!((1..=interval).contains(&wait), "Retry-After {wait}");
    assert_eq!(body["code"], 8);
    assert_eq!(body["details"][0]["id"], "LIMIT-Rate1");
    // The target is throttled on every protocol (ResourceExhausted), with its Retry-After on
    // Connect too.
    for api in clients::all(&s.base) {
        let f = start(&*api, REGISTER, &victim, (&code_id, "guess"), None).await.unwrap_err();
        assert_eq!(f.code, 8, "{}: {f:?}", api.name());
    }
    let r = http
        .post(format!("{}/{REGISTER}", s.base))
        .header("connect-protocol-version", "1")
        .json(&json!({"userId": victim, "code": {"id": code_id, "code": "guess"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);
    // The registration page's info check on the same code is throttled too.
    let r = http
        .get(format!("{}/ui/passkey/register/info?userID={victim}&codeID={code_id}&code=guess", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);

    // Meanwhile another user enrolls from the same address, start to finish, on every call.
    let other = crate::session::enroll(&s, &w.admin, &w.org_a, "limc-other").await;
    assert!(!other.cred_id.is_empty());
    // Many successful starts never count: a legitimate user is never throttled.
    let user = human(&rest, &w.admin, &w.org_a, "limc-busy").await;
    for _ in 0..3 * burst {
        let (id, c) = returned_code(&rest, &w.admin, &user).await;
        ok(start(&rest, REGISTER, &user, (&id, &c), None).await);
    }
    // The victim's own code works again once the wait is over (not waited for here); the code
    // itself is untouched by the guesses.
    assert!(!code.is_empty());
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_budget() {
    let limits = Limits {
        per_ip: Rate { per_minute: 1, burst: 3 },
        per_target: Rate::OFF,
        proxy: ProxyConfig {
            header: Some("x-forwarded-for".into()),
            trusted: vec!["127.0.0.0/8".parse::<IpNet>().unwrap()],
        },
        ..Limits::default()
    };
    let s = start_with("lim-ip", limits).await;
    let w = world(&s, "limip").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let http = reqwest::Client::new();
    let attacker = "198.51.100.1";
    // The client forged a left-hand hop; the proxy's hop (the rightmost untrusted) counts.
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(human(&rest, &w.admin, &w.org_a, &format!("limip-{i}")).await);
    }
    let from = |ip: &str| format!("6.6.6.6, {ip}");
    let guess = |user: &str, ip: &str| {
        http.post(format!("{}{}", s.base, register_path(user)))
            .header("x-forwarded-for", from(ip))
            .json(&json!({"code": {"id": "1", "code": "guess"}}))
            .send()
    };
    for u in &users[..3] {
        assert_eq!(guess(u, attacker).await.unwrap().status(), 400);
    }
    // The attacker's address is spent, whatever user it tries next, and on the HTTP routes.
    let r = guess(&users[3], attacker).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);
    for (method, path) in [
        ("GET", format!("/ui/passkey/register/info?userID={}&codeID=1&code=x", users[0])),
        ("POST", "/oauth/v2/token".to_string()),
        ("GET", "/oauth/v2/authorize?client_id=nope&response_type=code".to_string()),
    ] {
        let rb = if method == "GET" {
            http.get(format!("{}{path}", s.base))
        } else {
            http.post(format!("{}{path}", s.base)).form(&[("grant_type", "client_credentials")])
        };
        let r = rb.header("x-forwarded-for", from(attacker)).send().await.unwrap();
        assert_eq!(r.status(), 429, "{path}");
    }
    // Another client behind the same proxy is not affected.
    assert_eq!(guess(&users[3], "198.51.100.2").await.unwrap().status(), 400);
    // A request with a token is not limited by address (an authenticated login UI serves many).
    let (id, code) = returned_code(&rest, &w.admin, &users[3]).await;
    let r = http
        .post(format!("{}{}", s.base, register_path(&users[3])))
        .header("x-forwarded-for", from(attacker))
        .bearer_auth(&w.admin)
        .json(&json!({"code": {"id": id, "code": code}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_proxy_header_the_socket_peer_is_the_client() {
    let limits =
        Limits { per_ip: Rate { per_minute: 1, burst: 2 }, per_target: Rate::OFF, ..Limits::default() };
    let s = start_with("lim-peer", limits).await;
    let http = reqwest::Client::new();
    let guess = |user: &str| {
        http.post(format!("{}{}", s.base, register_path(user)))
            // Not configured: a header naming another client changes nothing.
            .header("x-forwarded-for", format!("198.51.100.{}", user.len()))
            .json(&json!({"code": {"id": "1", "code": "guess"}}))
            .send()
    };
    assert_ne!(guess("1").await.unwrap().status(), 429);
    assert_ne!(guess("22").await.unwrap().status(), 429);
    let r = guess("333").await.unwrap();
    assert_eq!(r.status(), 429, "the peer 127.0.0.1 spent its budget");
    assert!(retry_after(&r) >= 1);
    s.server.shutdown().await.unwrap();
}
