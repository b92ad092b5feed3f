//! The embedded SQLite store survives `kill -9` under write load: 16 clients create registration
//! links (several of them on one user at once) until the binary is killed with SIGKILL. The
//! database as the crash left it (a copy, recovered by SQLite on open) and the database after a
//! restart of the binary hold every link acknowledged with 200, at the sequence it was
//! acknowledged with, and nothing half-written: each user's events run 1..=max without a gap, and
//! a code row exists exactly for each code event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod crash;
use crash::{Ack, Run, ack_of, inspect, one_more_link_each, org_with_users};

const USERS: usize = 8;
const CLIENTS: usize = 16;
/// Clients on the first user: its requests always race each other.
const CLIENTS_ON_HOT_USER: usize = 6;
/// Load before the kill, at least.
const LOAD: Duration = Duration::from_millis(1500);
/// The load goes on until the server has started its WAL over (a RESTART checkpoint: the next
/// write rewrites the file from its beginning, the older frames stay behind it) within this.
const WAL_RESTART_WITHIN: Duration = Duration::from_secs(120);

/// One client: links for `user` until the server goes away (a transport error, or a response
/// cut off by the kill: not an acknowledgement) or `stop`. Returns the acknowledged links and
/// the answers that were not 200 (there must be none).
async fn client(
    base: String,
    token: String,
    user: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> (Vec<Ack>, Vec<String>) {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let link = format!("{base}/v2beta/users/{user}/passkeys/registration_link");
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let Ok(r) = c.post(&link).bearer_auth(&token).json(&json!({"returnCode": {}})).send().await else {
            break;
        };
        let status = r.status().as_u16();
        let Ok(body) = r.json::<Value>().await else { break };
        if status == 200 {
            acked.push(ack_of(&user, &body));
            done.fetch_add(1, Ordering::SeqCst);
        } else {
            refused.push(format!("{status}: {body}"));
        }
    }
    (acked, refused)
}

/// The WAL header's checkpoint sequence number and salts (bytes 12..24): they change each time
/// SQLite starts the WAL over. None while there is no WAL.
fn wal_generation(wal: &Path) -> Option<[u8; 12]> {
    use std::io::Read as _;
    let mut header = [0u8; 24];
    std::fs::File::open(wal).ok()?.read_exact(&mut header).ok()?;
    Some(header[12..24].try_into().unwrap())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_link_load_loses_no_acknowledged_link() {
    let started = Instant::now();
    let mut run = Run::in_temp("kill-sqlite");
    let db = run.data().join("passlink.db");
    let wal = run.data().join("passlink.db-wal");

    // 1. A fresh SQLite data directory, an org and the users.
    let base = run.start("first.log").await;
    let token = run.admin_token();
    let (_org, users) = org_with_users(&base, &token, "kill-sqlite", "k", USERS).await;
    let db_before = file_len(&db);

    // 2. Load: CLIENTS_ON_HOT_USER clients on the first user, the others spread over the rest.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let user = if i < CLIENTS_ON_HOT_USER {
                users[0].clone()
            } else {
                users[1 + (i - CLIENTS_ON_HOT_USER) % (USERS - 1)].clone()
            };
            tokio::spawn(client(base.clone(), token.clone(), user, stop.clone(), done.clone()))
        })
        .collect();
    let t = Instant::now();
    while done.load(Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // At least LOAD, and until the WAL has started over: then the kill lands in a reused WAL,
    // with frames of its previous generation behind the live ones, which recovery must ignore.
    let wal_start = wal_generation(&wal);
    tokio::time::sleep(LOAD).await;
    while wal_generation(&wal) == wal_start {
        assert!(
            t.elapsed() < WAL_RESTART_WITHIN,
            "the WAL was not started over within {WAL_RESTART_WITHIN:?} ({} links, WAL {} bytes)",
            done.load(Ordering::SeqCst),
            file_len(&wal)
        );
        assert!(clients.iter().all(|c| !c.is_finished()), "a client stopped under load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let restarted_after = t.elapsed();
    // Somewhere in the new generation's first few thousand frames (varies from run to run).
    let extra =
        Duration::from_millis(50 + u64::from(std::process::id() ^ started.elapsed().subsec_nanos()) % 700);
    tokio::time::sleep(extra).await;
    assert!(clients.iter().all(|c| !c.is_finished()), "every client is still sending at the kill");
    let (db_at_kill, wal_at_kill) = (file_len(&db), file_len(&wal));
    run.kill_9();
    let at_kill = done.load(Ordering::SeqCst);
    let load_time = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut acked: Vec<Ack> = Vec::new();
    let mut refused = Vec::new();
    for w in clients {
        let (a, r) = tokio::time::timeout(Duration::from_secs(30), w).await.expect("clients end").unwrap();
        acked.extend(a);
        refused.extend(r);
    }
    assert!(refused.is_empty(), "answers other than 200 under load: {:?}", &refused[..refused.len().min(5)]);
    let hot = acked.iter().filter(|a| a.user == users[0]).count();
    eprintln!(
        "acknowledged {} links in {load_time:?} ({at_kill} counted at the kill; {hot} on the hot user); \
         db file {db_before} -> {db_at_kill} bytes, WAL {wal_at_kill} bytes at the kill; the WAL \
         started over after {restarted_after:?}, killed {extra:?} later",
        acked.len()
    );
    // 4. The load was real.
    assert!(acked.len() >= 300, "only {} links acknowledged before the kill", acked.len());
    assert!(hot > 0, "the hot user got no link");
    let mut ids: Vec<&str> = acked.iter().map(|a| a.code_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), acked.len(), "a code id was acknowledged twice");
    let mut seqs: Vec<(&str, i64)> = acked.iter().map(|a| (a.user.as_str(), a.sequence)).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "a (user, sequence) was acknowledged twice");

    // 3a. The database as the crash left it: a copy of the file and its WAL, opened (and so
    // recovered) by SQLite alone.
    let crashed = run.dir.join("crashed");
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::copy(&db, crashed.join("passlink.db")).unwrap();
    if wal.exists() {
        std::fs::copy(&wal, crashed.join("passlink.db-wal")).unwrap();
    }
    let (u, a) = (users.clone(), acked.clone());
    let at_crash =
        tokio::task::spawn_blocking(move || inspect(&crashed.join("passlink.db"), &u, &a)).await.unwrap();
    eprintln!(
        "after the crash: {} code events stored for {} acknowledged ({} committed, not acknowledged)",
        at_crash.codes,
        acked.len(),
        at_crash.codes - acked.len()
    );

    // 3b. The binary starts again on the crashed directory and goes on where the crash left off.
    let base = run.start("second.log").await;
    acked.extend(one_more_link_each(&base, &token, &users, &at_crash.max_sequence).await);
    run.terminate().await;

    // 3c. And after the restart and a clean stop, the database itself.
    let (u, a) = (users.clone(), acked.clone());
    let db2 = db.clone();
    let after = tokio::task::spawn_blocking(move || inspect(&db2, &u, &a)).await.unwrap();
    assert_eq!(after.codes, at_crash.codes + USERS, "the restart lost or added a code");
    eprintln!("kill_sqlite took {:?}", started.elapsed());
}
