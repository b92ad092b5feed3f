//! The storage contract suite (`passlink-store-contract`) run against the in-memory store,
//! including the two-store runs (two handles on one shared state).

use std::sync::Arc;

use passlink_core::store::Store;
use passlink_store_memory::MemoryStore;

/// One shared in-memory state; each `open` is another handle on it (a "reopen").
struct Place(MemoryStore);

impl passlink_store_contract::Harness for Place {
    async fn new(_test: &str) -> Place {
        Place(MemoryStore::new())
    }

    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(self.0.reopen())
    }
}

passlink_store_contract::contract_tests!(Place, two_stores);
