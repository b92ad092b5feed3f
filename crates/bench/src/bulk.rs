//! The `bulk` phase: bulk enrollment (passlink.enrollment.v1 CreateRegistrationLinks) over a
//! large organization. Setup (not measured) creates a fresh organization and `--bulk-users`
//! human users in it (AddHumanUser over REST, on all connections); then the whole organization
//! is walked with the organization selection, `returnCode`, `pageSize` `--bulk-page-size`, one
//! page after another on one connection, as a caller loops over `nextPageToken`. Reported: links
//! created per second over the whole walk, per-page p50 / p99 / max, and the ratio to the
//! `/healthz` rate of the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::header::HeaderValue;
use tokio::time::Instant;

use crate::stats::pct_ms;
use crate::{Api, Conn, Res, host_value, str_field, unique_tag};

/// What the walk measured.
pub struct BulkFigures {
    pub users: u64,
    pub created: u64,
    pub failed: u64,
    pub pages: usize,
    pub secs: f64,
    /// Per-page latencies (µs), sorted.
    pub page_us: Vec<u32>,
}

impl BulkFigures {
    pub fn links_per_sec(&self) -> f64 {
        self.created as f64 / self.secs
    }

    /// The phase's lines, with the ratio to `/healthz` measured in the same run.
    pub fn print(&self, name: &str, healthz_rps: f64) {
        println!(
            "[{name}] bulk: {} users, {} links created ({} failed) in {} pages, {:.2}s: {:.0} links/s; \
             per page p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.users,
            self.created,
            self.failed,
            self.pages,
            self.secs,
            self.links_per_sec(),
            pct_ms(&self.page_us, 50.0),
            pct_ms(&self.page_us, 99.0),
            pct_ms(&self.page_us, 100.0),
        );
        let ratio = if healthz_rps > 0.0 { self.links_per_sec() / healthz_rps } else { f64::NAN };
        println!(
            "bulk links/healthz throughput ratio: {ratio:.3} (a link of a page vs one /healthz request)"
        );
    }

    pub fn ok(&self) -> bool {
        self.failed == 0 && self.created == self.users
    }
}

async fn api(addr: &str, auth: &HeaderValue) -> Res<Api> {
    Ok(Api { conn: Conn::open(addr).await?, spec_host: host_value(addr)?, auth: auth.clone() })
}

/// Create `users` humans in a fresh organization on `conns` connections; the organization's id.
async fn prefill_org(name: &str, addr: &str, auth: &HeaderValue, users: u64, conns: usize) -> Res<String> {
    let tag = unique_tag();
    let mut first = api(addr, auth).await?;
    let org = first.post("/v2/organizations", serde_json::json!({"name": format!("bulk-{tag}")})).await?;
    let org_id = str_field(&org, "organizationId")?;
    let next = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns.max(1) {
        let (next, org_id, tag, auth, addr, name) =
            (next.clone(), org_id.clone(), tag.clone(), auth.clone(), addr.to_string(), name.to_string());
        tasks.push(tokio::spawn(async move {
            let mut a = api(&addr, &auth).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    return Ok::<(), String>(());
                }
                a.post(
                    "/v2/users/human",
                    serde_json::json!({
                        "organization": {"orgId": org_id},
                        "profile": {"givenName": "Bulk", "familyName": format!("{i}")},
                        "email": {"email": format!("bulk{i}.{tag}@example.com"), "isVerified": true},
                    }),
                )
                .await?;
                if (i + 1) % (users / 10).max(1) == 0 {
                    println!(
                        "[{name}] bulk setup: {} users ({:.0}/s)",
                        i + 1,
                        (i + 1) as f64 / t.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| format!("bulk setup task: {e}"))??;
    }
    Ok(org_id)
}

/// Set up the organization, then walk it page by page and time it.
pub async fn run(
    name: &str,
    addr: &str,
    token: &str,
    users: u64,
    page_size: usize,
    conns: usize,
) -> Res<BulkFigures> {
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| "bad token".to_string())?;
    let t = Instant::now();
    let org_id = prefill_org(name, addr, &auth, users, conns).await?;
    println!("[{name}] bulk setup: organization {org_id}, {users} users ({:.1}s)", t.elapsed().as_secs_f64());
    println!(
        "[{name}] bulk: POST /passlink/v1/registration_links {{organization, returnCode, pageSize {page_size}}} \
         until no nextPageToken, one connection"
    );
    let mut a = api(addr, &auth).await?;
    let key = format!("bench-{}", unique_tag());
    let mut token = String::new();
    let mut f = BulkFigures { users, created: 0, failed: 0, pages: 0, secs: 0.0, page_us: Vec::new() };
    let start = Instant::now();
    loop {
        let body = serde_json::json!({"organization": {"orgId": org_id}, "returnCode": {}, "pageSize": page_size,
                                      "pageToken": token, "idempotencyKey": key});
        let t = Instant::now();
        let r = a.post("/passlink/v1/registration_links", body).await?;
        f.page_us.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        f.pages += 1;
        let count =
            |k: &str| r.pointer(&format!("/summary/{k}")).and_then(serde_json::Value::as_u64).unwrap_or(0);
        f.created += count("created");
        f.failed += count("failed");
        match r.get("nextPageToken").and_then(|v| v.as_str()) {
            Some(next) if !next.is_empty() => token = next.to_string(),
            _ => break,
        }
    }
    f.secs = start.elapsed().as_secs_f64();
    f.page_us.sort_unstable();
    Ok(f)
}
