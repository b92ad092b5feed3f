//! A PostgreSQL that accepts connections but never answers fails the start with a clear message
//! instead of hanging it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

#[tokio::test]
async fn a_silent_database_fails_the_start_in_bounded_time() {
    // A "database" that accepts TCP connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = silent.accept().await {
            keep.lock().await.push(sock);
        }
    });
    let dir = std::env::temp_dir().join(format!("passlink-pgstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = passlink_server::Config::new(listener.local_addr().unwrap(), &dir);
    cfg.database = Some(format!("postgres://postgres@{silent_addr}/test?connect_timeout=30"));
    cfg.store_start_timeout = Duration::from_secs(2);
    let t = Instant::now();
    let err = match passlink_server::Server::start(cfg, listener).await {
        Ok(_) => panic!("started against a silent database"),
        Err(e) => e,
    };
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert!(err.contains("PostgreSQL"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
