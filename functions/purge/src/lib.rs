//! Purges deleted threads' messages and read events, driven by the table's stream.
//!
//! Deleting a thread writes a `PURGE` marker in the thread's partition. Each stream event for
//! that marker deletes a bounded batch; if items remain, the batch bumps the marker, whose
//! MODIFY event calls this function again. No invocation loops over a whole thread.

use aws_lambda_events::event::dynamodb::Event;
use shared::domain::ids::ThreadId;
use shared::store::purge::PurgeProgress;
use shared::store::{Store, StoreError, keys};

/// Items deleted per stream event.
pub const BATCH: usize = 500;

/// The threads one event asks to purge: records whose key is a purge marker.
pub fn threads_to_purge(event: &Event) -> Vec<ThreadId> {
    event
        .records
        .iter()
        .filter(|r| r.event_name == "INSERT" || r.event_name == "MODIFY")
        .filter_map(|r| {
            let key: serde_json::Value = serde_json::to_value(&r.change.keys).ok()?;
            if key.pointer("/SK/S")?.as_str()? != keys::PURGE {
                return None;
            }
            keys::parse_thread_pk(key.pointer("/PK/S")?.as_str()?)
        })
        .collect()
}

/// Runs one purge step for every marker in the event; an error makes Lambda retry the batch.
pub async fn handle(store: &Store, event: Event) -> Result<Vec<PurgeProgress>, StoreError> {
    let mut progress = Vec::new();
    for thread in threads_to_purge(&event) {
        let step = store.purge_step(&thread, BATCH).await?;
        tracing::info!(thread = %thread, ?step, "purge step");
        progress.push(step);
    }
    Ok(progress)
}
