//! Read-only inspection for operators (`passlink events`): a user's event log, e.g. to see
//! whether a link was delivered (`…code.sent`) or given up (`…code.send.failed` with the
//! reason), and the events of the user's sign-in sessions (`session.*`, marked with their
//! aggregate). It reads the store next to a running server and never writes.

use std::sync::Arc;

use passlink_core::event::{AggregateKind, Event, Recorded};
use passlink_core::session::SessionFilter;
use passlink_core::store::Store;
use passlink_store_postgres::PostgresStore;
use passlink_store_sqlite::SqliteStore;

use crate::config::{Backend, Config};

/// The events of user `user_id` and of the sessions that checked the user, oldest first.
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
    let mut events = store.events_of(AggregateKind::User, user_id).await.map_err(|e| e.to_string())?;
    let filter = SessionFilter { user_id: Some(user_id.to_string()), ..SessionFilter::default() };
    for s in store.sessions(&filter).await.map_err(|e| e.to_string())? {
        events.extend(store.events_of(AggregateKind::Session, &s.id).await.map_err(|e| e.to_string())?);
    }
    events.sort_by_key(|r| r.created_at);
    Ok(events)
}

/// One event as a JSON line: sequence, type, time (RFC 3339), creator and payload.
pub fn event_json(r: &Recorded) -> serde_json::Value {
    let mut payload = serde_json::to_value(&r.event).ok().and_then(|v| v.get("payload").cloned());
    // The WebAuthN authentication state holds the pending challenge: never printed.
    if let (Event::SessionWebAuthNChallenged { .. }, Some(p)) = (&r.event, payload.as_mut()) {
        p["state"] = serde_json::json!("<redacted>");
    }
    if r.aggregate_kind != AggregateKind::User {
        return serde_json::json!({
            "aggregate": format!("{}/{}", r.aggregate_kind.as_str(), r.aggregate_id),
            "sequence": r.sequence,
            "type": r.event.type_name(),
            "createdAt": r.created_at.to_rfc3339(),
            "resourceOwner": r.resource_owner,
            "creator": r.creator,
            "payload": payload.unwrap_or(serde_json::Value::Null),
        });
    }
    serde_json::json!({
        "sequence": r.sequence,
        "type": r.event.type_name(),
        "createdAt": r.created_at.to_rfc3339(),
        "resourceOwner": r.resource_owner,
        "creator": r.creator,
        "payload": payload.unwrap_or(serde_json::Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use passlink_core::session::ChallengeState;
    use passlink_core::time::Timestamp;

    use super::*;

    #[test]
    fn session_events_name_their_aggregate_and_hide_the_challenge() {
        let r = Recorded {
            aggregate_kind: AggregateKind::Session,
            aggregate_id: "s1".into(),
            sequence: 3,
            created_at: Timestamp::from_unix_secs(1_800_000_000),
            resource_owner: "inst".into(),
            creator: "ui".into(),
            event: Event::SessionWebAuthNChallenged {
                rp_id: "localhost".into(),
                state: ChallengeState("the-challenge".into()),
            },
        };
        let j = event_json(&r);
        assert_eq!(j["aggregate"], "session/s1");
        assert_eq!(j["type"], "session.webAuthN.challenged");
        assert_eq!(j["payload"]["rp_id"], "localhost");
        assert!(!j.to_string().contains("the-challenge"));
    }
}
