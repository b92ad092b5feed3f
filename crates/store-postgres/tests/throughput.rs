//! Group commit measured: the writer task (one pipelined transaction per batch) against one
//! transaction per commit on the pool (PostgreSQL's own WAL-flush sharing). Ignored by default;
//! run with `cargo test --release -p passlink-store-postgres --test throughput -- --ignored --nocapture`.

#![allow(clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

mod pg;

use std::sync::Arc;
use std::time::{Duration, Instant};

use passlink_core::event::{AggregateKind, Event, HumanProfile, Recorded};
use passlink_core::store::{Commit, Store, UniqueClaim};
use passlink_core::time::Timestamp;
use passlink_core::view::{Change, UserView};
use passlink_store_postgres::PostgresStore;
use pg::TempSchema;

const TASKS: usize = 64;
const RUN: Duration = Duration::from_secs(3);

fn commit(task: usize, n: usize) -> Commit {
    let id = format!("tp-{task}-{n}");
    let r = Recorded {
        aggregate_kind: AggregateKind::User,
        aggregate_id: id.clone(),
        sequence: 1,
        created_at: Timestamp(1),
        resource_owner: "org".into(),
        creator: String::new(),
        event: Event::HumanAdded {
            username: id.clone(),
            profile: HumanProfile { given_name: "A".into(), family_name: "B".into(), ..Default::default() },
        },
    };
    let v = UserView::created(&r).expect("view");
    Commit {
        events: vec![r],
        claims: vec![UniqueClaim {
            kind: "username",
            value: id,
            taken: passlink_core::error::Error::conflict(),
        }],
        changes: vec![Change::User(v)],
        ..Commit::default()
    }
}

async fn measure(store: Arc<PostgresStore>, direct: bool) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while start.elapsed() < RUN {
                    let c = commit(t, n);
                    let r = if direct { store.commit_direct(c).await } else { store.commit(c).await };
                    r.expect("commit");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn group_commit_vs_pool() {
    let a = TempSchema::new("tp_writer").await;
    let writer = measure(a.open().await, false).await;
    let b = TempSchema::new("tp_direct").await;
    let direct = measure(b.open().await, true).await;
    println!("{TASKS} concurrent committers, {RUN:?} each:");
    println!("  group-commit writer:        {writer:>8.0} commits/s");
    println!(
        "  transaction per commit:     {direct:>8.0} commits/s (pool of {})",
        passlink_store_postgres::POOL_SIZE
    );
}
