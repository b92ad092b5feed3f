//! A schema of its own per test, in the PostgreSQL named by `PASSLINK_TEST_POSTGRES`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use passlink_store_postgres::PostgresStore;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("PASSLINK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

static N: AtomicU32 = AtomicU32::new(0);

/// A schema name unique to this process, test and moment; dropped (with everything in it) when
/// the value is dropped, also when the test panics.
pub struct TempSchema {
    pub url: String,
    pub name: String,
}

impl TempSchema {
    pub async fn new(test: &str) -> TempSchema {
        #[allow(clippy::disallowed_methods)] // a unique name, not domain time
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tag: String = test.chars().filter(|c| c.is_ascii_alphanumeric()).take(24).collect();
        let name = format!(
            "plt_{}_{nanos}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            tag.to_ascii_lowercase()
        );
        TempSchema { url: url(), name }
    }

    pub async fn try_open(&self) -> passlink_core::error::Result<Arc<PostgresStore>> {
        PostgresStore::connect(&self.url, Some(&self.name)).await.map(Arc::new)
    }

    pub async fn open(&self) -> Arc<PostgresStore> {
        match self.try_open().await {
            Ok(s) => s,
            Err(e) => panic!(
                "cannot open the PostgreSQL store at {} (schema {}); set PASSLINK_TEST_POSTGRES to a \
                 reachable PostgreSQL URL: {e}",
                self.url, self.name
            ),
        }
    }

    #[allow(dead_code)]
    async fn client(&self) -> tokio_postgres::Client {
        let mut cfg: tokio_postgres::Config = self.url.parse().expect("url");
        cfg.options(format!("-c search_path={}", self.name));
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
    }

    #[allow(dead_code)]
    pub async fn query_i64(&self, sql: &str) -> i64 {
        self.client().await.query_one(sql, &[]).await.expect("query").get(0)
    }

    /// Run statements in the schema (test setup only).
    #[allow(dead_code)]
    pub async fn execute(&self, sql: &str) {
        self.client().await.batch_execute(sql).await.expect("execute");
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs outside async (and maybe during a panic): a small runtime of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Err(e) = passlink_store_postgres::drop_schema(&url, &name).await {
                        eprintln!("could not drop test schema {name}: {e}");
                    }
                });
            }
        });
        let _ = done.join();
    }
}
