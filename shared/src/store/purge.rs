//! Purging a deleted thread's messages and read events, a bounded batch at a time.

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::{Store, StoreError, key, keys, n};
use crate::domain::ids::ThreadId;

/// What one purge step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeProgress {
    /// Items remain; the marker was touched so that the stream calls the purge again.
    More {
        /// Items deleted in this step.
        deleted: usize,
    },
    /// Nothing remains; the marker is gone.
    Done {
        /// Items deleted in this step.
        deleted: usize,
    },
}

impl Store {
    /// Deletes up to `max_items` of a deleted thread's items. If more remain, bumps the purge
    /// marker (a stream MODIFY event triggers the next step); otherwise deletes the marker.
    pub async fn purge_step(&self, thread: &ThreadId, max_items: usize) -> Result<PurgeProgress, StoreError> {
        let pk = keys::thread_pk(thread);
        if self.get(key(pk.clone(), keys::META), true).await?.is_some() {
            // The thread exists again under this id: never purge a live thread.
            return Ok(PurgeProgress::Done { deleted: 0 });
        }
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", super::s(pk.clone()))
            .projection_expression("PK, SK")
            .limit(max_items as i32 + 1)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let mut doomed: Vec<_> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|sk| sk != keys::PURGE))
            .collect();
        let more = doomed.len() > max_items || out.last_evaluated_key.is_some();
        doomed.truncate(max_items);
        let deleted = doomed.len();
        let deletes = doomed
            .into_iter()
            .map(|k| {
                WriteRequest::builder()
                    .delete_request(DeleteRequest::builder().set_key(Some(k)).build().expect("complete"))
                    .build()
            })
            .collect();
        self.batch_write(deletes).await?;
        let marker = key(pk, keys::PURGE);
        if more {
            self.client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(marker))
                .update_expression("ADD rounds :one")
                .expression_attribute_values(":one", n(1))
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            Ok(PurgeProgress::More { deleted })
        } else {
            self.client()
                .delete_item()
                .table_name(self.table())
                .set_key(Some(marker))
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            Ok(PurgeProgress::Done { deleted })
        }
    }
}
