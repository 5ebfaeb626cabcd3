//! A thread's change log: what changed since a version, for clients catching up.
//!
//! Every send, edit and delete writes one entry, `CHG#<version>` under the thread, in the same
//! transaction that moves the thread's `version` from the one it read. So versions commit one
//! at a time and in order, and a strongly consistent query of the log after version `v` sees
//! every change committed before it, with nothing skipped. An eventually consistent index
//! could not promise that: an entry could show up after a later one was read.

use super::expr::Cond;
use super::items::{ChangeItem, MessageItem, attr, decode, encode};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, s};
use crate::domain::ids::{Seq, ThreadId, Version};
use crate::domain::model::MessageChange;

/// Adds the log entry of the change that makes `version` by touching message `seq` to the
/// transaction of that change (which also moves the thread to `version`, conditionally).
pub(crate) fn log_entry(
    tx: &mut Tx,
    thread: &ThreadId,
    version: Version,
    seq: Seq,
) -> Result<(), StoreError> {
    tx.put(Step::ChangeLog, encode(&ChangeItem::new(thread, version, seq))?, Cond::new().missing(attr::PK));
    Ok(())
}

/// The entries of a thread's change log after a version: which messages changed, not yet how.
#[derive(Debug)]
pub struct ChangeLog {
    /// Each message touched, once, in the order of the latest change to it.
    pub touched: Vec<Seq>,
    /// The version to ask from next time: the last change read, or the version asked from.
    pub upto: Version,
    /// True when there are more changes after `upto` than this call read.
    pub more: bool,
}

/// The changes of a thread after a version, oldest first.
#[derive(Debug)]
pub struct ChangesSince {
    /// Each message touched, once, as it is now (tombstones included), in the order of the
    /// latest change to it.
    pub messages: Vec<MessageChange>,
    /// The version to ask from next time: the last change read, or the version asked from.
    pub upto: Version,
    /// True when there are more changes after `upto` than this call read.
    pub more: bool,
}

impl Store {
    /// The log of `thread` after `since`, at most `limit` entries (at most 100, so that the
    /// messages are one batch read): one strongly consistent query.
    pub async fn change_log(
        &self,
        thread: &ThreadId,
        since: Version,
        limit: usize,
    ) -> Result<ChangeLog, StoreError> {
        let limit = limit.clamp(1, 100);
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(keys::thread_pk(thread)))
            .expression_attribute_values(":from", s(keys::change_sk(since.next())))
            .expression_attribute_values(":to", s(keys::change_sk(Version(u64::MAX))))
            .projection_expression("PK, SK, #seq")
            .expression_attribute_names("#seq", attr::SEQ)
            .consistent_read(true)
            .limit(limit as i32)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let mut upto = since;
        // The latest change of each message decides its place.
        let mut touched: Vec<Seq> = Vec::new();
        for item in out.items.unwrap_or_default() {
            let entry: ChangeItem = decode(item)?;
            upto = keys::parse_change_sk(&entry.sk)
                .ok_or_else(|| StoreError::Corrupt(format!("change log key {:?}", entry.sk)))?;
            let seq = Seq(entry.seq);
            touched.retain(|s| *s != seq);
            touched.push(seq);
        }
        Ok(ChangeLog { touched, upto, more: out.last_evaluated_key.is_some() })
    }

    /// The messages a log names, as they are now: one batch read.
    pub async fn changed_messages(
        &self,
        thread: &ThreadId,
        log: ChangeLog,
    ) -> Result<ChangesSince, StoreError> {
        let keys_wanted =
            log.touched.iter().map(|seq| key(keys::thread_pk(thread), keys::message_sk(*seq))).collect();
        let mut found = std::collections::HashMap::new();
        for item in self.batch_get(keys_wanted).await? {
            let item: MessageItem = decode(item)?;
            found.insert(Seq(item.seq), item);
        }
        let mut messages = Vec::with_capacity(log.touched.len());
        for seq in log.touched {
            // A purge under way takes messages away: a thread being deleted changes no more.
            if let Some(item) = found.remove(&seq) {
                let deleted = item.deleted;
                messages.push(MessageChange { message: item.into_message(), deleted });
            }
        }
        Ok(ChangesSince { messages, upto: log.upto, more: log.more })
    }
}
