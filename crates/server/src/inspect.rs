//! Read-only inspection for operators (`passlink events`): a user's event log, e.g. to see
//! whether a link was delivered (`…code.sent`) or given up (`…code.send.failed` with the
//! reason). It reads the store next to a running server and never writes.

use std::sync::Arc;

use passlink_core::event::{AggregateKind, Recorded};
use passlink_core::store::Store;
use passlink_store_postgres::PostgresStore;
use passlink_store_sqlite::SqliteStore;

use crate::config::{Backend, Config};

/// The events of user `user_id`, oldest first.
pub async fn user_events(cfg: &Config, user_id: &str) -> Result<Vec<Recorded>, String> {
    let store: Arc<dyn Store> = match cfg.backend()? {
        Backend::Sqlite(db) => Arc::new(SqliteStore::open_read_only(&db).map_err(|e| e.to_string())?),
        Backend::Postgres(url) => Arc::new(
            tokio::time::timeout(cfg.store_start_timeout, PostgresStore::connect(&url, None))
                .await
                .map_err(|_| "PostgreSQL did not answer".to_string())?
                .map_err(|e| format!("PostgreSQL: {e}"))?,
        ),
    };
    store.events_of(AggregateKind::User, user_id).await.map_err(|e| e.to_string())
}

/// One event as a JSON line: sequence, type, time (RFC 3339), creator and payload.
pub fn event_json(r: &Recorded) -> serde_json::Value {
    let payload = serde_json::to_value(&r.event).ok().and_then(|v| v.get("payload").cloned());
    serde_json::json!({
        "sequence": r.sequence,
        "type": r.event.type_name(),
        "createdAt": r.created_at.to_rfc3339(),
        "resourceOwner": r.resource_owner,
        "creator": r.creator,
        "payload": payload.unwrap_or(serde_json::Value::Null),
    })
}
