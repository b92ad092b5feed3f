//! The WAL stays bounded under constant load: readers always holding a snapshot would otherwise
//! keep SQLite from ever starting the WAL over (it grew to 5 GB in one benchmark minute). The
//! writer copies it back between batches, so it starts over without being reset while writes wait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use passlink_core::event::{AggregateKind, Event, HumanProfile, Recorded};
use passlink_core::store::{Commit, Store};
use passlink_core::time::Timestamp;
use passlink_core::view::{Change, UserView};
use passlink_store_sqlite::{CHECKPOINT_FRAMES, SqliteStore};

fn user_commit(i: usize, pad: &str) -> Commit {
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: format!("wal-{i}"),
        sequence: 1,
        created_at: Timestamp::from_unix_secs(1),
        resource_owner: "org".into(),
        creator: String::new(),
        event: Event::HumanAdded {
            username: format!("wal-{i}"),
            profile: HumanProfile { display_name: pad.to_string(), ..HumanProfile::default() },
        },
    };
    let v = UserView::created(&r).unwrap();
    Commit { events: vec![r], changes: vec![Change::User(v)], ..Commit::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_constant_reads() {
    let path = std::env::temp_dir().join(format!("passlink-wal-{}.db", std::process::id()));
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    for p in [&path, &wal] {
        let _ = std::fs::remove_file(p);
    }
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    // Readers that never pause.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                store.user("wal-1").await.unwrap();
                tokio::task::yield_now().await; // reads complete inline: let the writer side run
            }
        }));
    }
    // Frames (pages and their 24-byte headers): below twice the threshold, plus one batch (64
    // users of 16 KiB), with room for one more batch.
    let page: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let batch = 64 * 17 * 1024;
    let bound = 2 * CHECKPOINT_FRAMES as u64 * (page as u64 + 24) + 2 * batch;
    // About 3 × that bound of writes, while the readers read.
    let pad = "x".repeat(16 * 1024);
    let n = (3 * bound as usize) / pad.len();
    let mut largest = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let commits = chunk.iter().map(|i| store.commit(user_commit(*i, &pad)));
        for r in passlink_store_contract::join_all(commits).await {
            r.unwrap();
        }
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert!(largest > bound / 8, "the test wrote too little to matter ({largest} bytes of WAL)");
    assert!(
        largest <= bound,
        "the WAL grew to {largest} bytes (bound {bound}) though the writer checkpoints"
    );
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(
        store.user(&format!("wal-{}", n - 1)).await.unwrap().map(|u| u.id),
        Some(format!("wal-{}", n - 1))
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
