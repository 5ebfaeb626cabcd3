//! Editing and deleting messages.
//!
//! Both serialise with sends and with each other on the thread's metadata: every transaction
//! that changes a message checks the thread's `version` (and `message_count`,
//! `deleted_count`) there and moves it on, so a concurrent change makes it re-read and try
//! again, and the change log entry it writes under that version is in commit order. A deleted
//! message stays as a tombstone (no text, `deleted` set, listed under GSI1's
//! `keys::deleted_index_pk`) so that ids and sender counts never move and read markers can
//! count the deletions after them.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};

use super::changelog::log_entry;
use super::items::{DeletedEntry, MessageItem, attr, decode};
use super::{Step, Store, StoreError, Tx, attempts, backoff, key, keys, n, s, table, tx_update, update};
use crate::ids::{Seq, ThreadId, UserId, Version};
use crate::model::{Membership, Message};
use crate::timestamp::Timestamp;

/// The result of an edit.
#[derive(Debug)]
pub enum EditOutcome {
    /// The message as it is now.
    Edited(Message),
    /// No such message in a thread the editor is in (or it was deleted).
    NotFound,
    /// The editor did not send it.
    NotSender,
}

/// The result of a delete.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteMessageOutcome {
    /// It is gone.
    Deleted,
    /// No such message in a thread the caller is in (or it was deleted already).
    NotFound,
    /// The caller neither sent it nor owns the thread.
    Forbidden,
}

/// The condition that a thread (or membership) item still has `deleted_count` = `:d`; items
/// written before deletes existed have no such attribute, which counts as 0.
pub(crate) fn deleted_count_is(deleted: u64) -> &'static str {
    if deleted == 0 {
        "(attribute_not_exists(deleted_count) OR deleted_count = :d)"
    } else {
        "deleted_count = :d"
    }
}

/// The condition that a thread (or membership) item is still at `version` = `:ver`; items
/// written before versions existed have none, which counts as 0.
pub(crate) fn version_is(version: Version) -> String {
    let v = attr::VERSION;
    if version == Version(0) {
        format!("(attribute_not_exists({v}) OR {v} = :ver)")
    } else {
        format!("{v} = :ver")
    }
}

/// What the caller saw of a thread and one of its messages.
struct Seen {
    mine: Membership,
    item: MessageItem,
}

impl Store {
    async fn seen(&self, user: &UserId, thread: &ThreadId, seq: Seq) -> Result<Option<Seen>, StoreError> {
        let (mine, item) =
            tokio::try_join!(self.membership(user, thread), self.message_item(thread, seq, true))?;
        Ok(match (mine, item) {
            (Some(mine), Some(item)) if item.deleted.is_none() => Some(Seen { mine, item }),
            _ => None,
        })
    }

    /// Changes the text of a message its sender wrote. If it is the thread's last message, the
    /// thread and every membership show the new text too, in the same transaction.
    pub async fn edit_message(
        &self,
        editor: &UserId,
        thread: &ThreadId,
        seq: Seq,
        text: &str,
    ) -> Result<EditOutcome, StoreError> {
        for attempt in attempts() {
            let Some(Seen { mine, item }) = self.seen(editor, thread, seq).await? else {
                return Ok(EditOutcome::NotFound);
            };
            if &item.sender != editor {
                return Ok(EditOutcome::NotSender);
            }
            if item.text == text {
                // A retry of an edit that landed, or no change: nothing to write.
                return Ok(EditOutcome::Edited(item.into_message()));
            }
            let now = Timestamp::now().max(item.created);
            let mut message = item.into_message();
            message.text = text.to_owned();
            message.edited = Some(now);
            let is_last = mine.thread.last_message.as_ref().is_some_and(|m| m.id.seq == seq);
            let t = &mine.thread;
            let version = t.version.next();
            let table = self.table();
            // Every edit moves the version on the thread and on every membership (where the
            // message list reads it); the last message's text moves with it.
            let last: Option<AttributeValue> =
                if is_last { Some(serde_dynamo::to_attribute_value(&message)?) } else { None };
            let set = if is_last { "SET version = :ver1, last_message = :m" } else { "SET version = :ver1" };
            let with_values = |mut b: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
                b = b.update_expression(set).expression_attribute_values(":ver1", n(version.0));
                if let Some(m) = &last {
                    b = b.expression_attribute_values(":m", m.clone());
                }
                b
            };

            let mut tx = Tx::default();
            tx.push(
                Step::Message,
                tx_update(
                    update(table, key(keys::thread_pk(thread), keys::message_sk(seq)))
                        .update_expression("SET #text = :t, #edited = :e")
                        .condition_expression("attribute_exists(PK) AND attribute_not_exists(#deleted)")
                        .expression_attribute_names("#text", "text")
                        .expression_attribute_names("#edited", "edited")
                        .expression_attribute_names("#deleted", attr::DELETED)
                        .expression_attribute_values(":t", s(text))
                        .expression_attribute_values(":e", s(now.to_string())),
                ),
            );
            tx.push(Step::ChangeLog, log_entry(table, thread, version, seq)?);
            tx.push(
                Step::Thread,
                tx_update(
                    with_values(update(table, key(keys::thread_pk(thread), keys::META)))
                        .condition_expression(format!(
                            "message_count = :n AND size(participants) = :k AND {} AND {}",
                            deleted_count_is(t.deleted_count),
                            version_is(t.version)
                        ))
                        .expression_attribute_values(":k", n(t.participants.len()))
                        .expression_attribute_values(":n", n(t.message_count))
                        .expression_attribute_values(":d", n(t.deleted_count))
                        .expression_attribute_values(":ver", n(t.version.0)),
                ),
            );
            for p in &t.participants {
                tx.push(
                    Step::Membership,
                    tx_update(
                        with_values(update(table, key(keys::user_pk(p), keys::membership_sk(thread))))
                            .condition_expression("attribute_exists(PK)"),
                    ),
                );
            }
            match self.transact(tx).await {
                Ok(()) => return Ok(EditOutcome::Edited(message)),
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(f.into()),
            }
        }
        Err(StoreError::busy("edit stayed contended"))
    }

    /// Deletes a message (its sender, or the thread's owner). One transaction leaves a
    /// tombstone, counts it on the thread and every membership, takes it off the unread counts
    /// of the members who had not read it, and falls `last_message` back to the newest message
    /// still there.
    pub async fn delete_message(
        &self,
        by: &UserId,
        thread: &ThreadId,
        seq: Seq,
    ) -> Result<DeleteMessageOutcome, StoreError> {
        for attempt in attempts() {
            // Every member's view is needed (who had not read the message loses an unread):
            // read beside the message, in one batch when the participants are known here.
            let (found, item) =
                tokio::try_join!(self.member_and_others(by, thread), self.message_item(thread, seq, true))?;
            let (Some((mine, mut members)), Some(item)) = (found, item) else {
                return Ok(DeleteMessageOutcome::NotFound);
            };
            if item.deleted.is_some() {
                return Ok(DeleteMessageOutcome::NotFound);
            }
            if &item.sender != by && &mine.thread.owner != by {
                return Ok(DeleteMessageOutcome::Forbidden);
            }
            members.insert(by.clone(), mine.clone());
            let t = &mine.thread;
            if members.len() != t.participants.len() {
                if self.participants_changed(t).await? {
                    // A delete of the thread or a change of participants is under way.
                    backoff(attempt).await;
                    continue;
                }
                return Err(StoreError::Corrupt(format!("thread {thread} lacks a membership")));
            }
            let is_last = t.last_message.as_ref().is_some_and(|m| m.id.seq == seq);
            let fallback = match is_last {
                true => self.newest_before(thread, seq).await?.map(MessageItem::into_message),
                false => None,
            };
            let now = Timestamp::now();
            let table = self.table();
            let last = match &fallback {
                Some(previous) => Some(serde_dynamo::to_attribute_value::<_, AttributeValue>(previous)?),
                None => None,
            };
            // Tombstone, thread, memberships: each counts the deletion and, if it was the last
            // message, shows the one before it.
            let version = t.version.next();
            let set_last = match (is_last, &last) {
                (false, _) => " SET version = :ver1",
                (true, Some(_)) => " SET version = :ver1, last_message = :m",
                (true, None) => " SET version = :ver1 REMOVE last_message",
            };
            let counted = |builder: aws_sdk_dynamodb::types::builders::UpdateBuilder, extra: &str| {
                let mut b = builder.update_expression(format!("ADD deleted_count :one{extra}{set_last}"));
                b = b
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":ver1", n(version.0));
                if let (true, Some(m)) = (is_last, &last) {
                    b = b.expression_attribute_values(":m", m.clone());
                }
                b
            };

            let mut tx = Tx::default();
            tx.push(
                Step::Message,
                tx_update(
                    update(table, key(keys::thread_pk(thread), keys::message_sk(seq)))
                        .update_expression(
                            "SET #deleted = :now, GSI1PK = :gpk, GSI1SK = :gsk REMOVE #text, #edited",
                        )
                        .condition_expression("attribute_exists(PK) AND attribute_not_exists(#deleted)")
                        .expression_attribute_names("#deleted", attr::DELETED)
                        .expression_attribute_names("#text", "text")
                        .expression_attribute_names("#edited", "edited")
                        .expression_attribute_values(":now", s(now.to_string()))
                        .expression_attribute_values(":gpk", s(keys::deleted_index_pk(thread)))
                        .expression_attribute_values(":gsk", s(seq.padded())),
                ),
            );
            tx.push(Step::ChangeLog, log_entry(table, thread, version, seq)?);
            tx.push(
                Step::Thread,
                tx_update(
                    counted(update(table, key(keys::thread_pk(thread), keys::META)), "")
                        .condition_expression(format!(
                            "message_count = :n AND size(participants) = :k AND {} AND {}",
                            deleted_count_is(t.deleted_count),
                            version_is(t.version)
                        ))
                        .expression_attribute_values(":ver", n(t.version.0))
                        .expression_attribute_values(":k", n(t.participants.len()))
                        .expression_attribute_values(":n", n(t.message_count))
                        .expression_attribute_values(":d", n(t.deleted_count)),
                ),
            );
            if let Some(previous) = &fallback {
                // The message that becomes last must still say what it says now.
                let condition = if previous.edited.is_some() {
                    "attribute_not_exists(#deleted) AND #edited = :e"
                } else {
                    "attribute_not_exists(#deleted) AND attribute_not_exists(#edited)"
                };
                let mut check = ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key(keys::thread_pk(thread), keys::message_sk(previous.id.seq))))
                    .condition_expression(condition)
                    .expression_attribute_names("#deleted", attr::DELETED)
                    .expression_attribute_names("#edited", "edited");
                if let Some(e) = previous.edited {
                    check = check.expression_attribute_values(":e", s(e.to_string()));
                }
                tx.push(
                    Step::Message,
                    TransactWriteItem::builder().condition_check(check.build().expect("complete")).build(),
                );
            }
            for m in members.values() {
                let membership = update(table, key(keys::user_pk(&m.user), keys::membership_sk(thread)));
                let had_unread = m.user != item.sender && m.read_seq < seq;
                if had_unread {
                    tx.push(
                        Step::Membership,
                        tx_update(
                            counted(membership, " , unread :minus")
                                .condition_expression("read_seq = :rs AND unread = :u")
                                .expression_attribute_values(":minus", n(-1))
                                .expression_attribute_values(":rs", n(m.read_seq.0))
                                .expression_attribute_values(":u", n(m.unread)),
                        ),
                    );
                    tx.push(Step::Counters, self.counters_update(&m.user, 0, -1, -i64::from(m.unread == 1)));
                } else {
                    tx.push(
                        Step::Membership,
                        tx_update(counted(membership, "").condition_expression("attribute_exists(PK)")),
                    );
                }
            }
            match self.transact(tx).await {
                Ok(()) => return Ok(DeleteMessageOutcome::Deleted),
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(f.into()),
            }
        }
        Err(StoreError::busy("delete stayed contended"))
    }

    /// The newest message before `seq` that is not deleted.
    async fn newest_before(&self, thread: &ThreadId, seq: Seq) -> Result<Option<MessageItem>, StoreError> {
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .filter_expression("attribute_not_exists(#deleted)")
                .expression_attribute_names("#deleted", attr::DELETED)
                .expression_attribute_values(":pk", s(keys::thread_pk(thread)))
                .expression_attribute_values(":from", s(keys::message_sk(Seq(0))))
                .expression_attribute_values(":to", s(keys::message_sk(Seq(seq.0.saturating_sub(1)))))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(10)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            if let Some(item) = out.items.unwrap_or_default().into_iter().next() {
                return Ok(Some(decode(item)?));
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(None),
            }
        }
    }

    /// The deleted messages of a thread after `seq`, with their senders (GSI1).
    pub(crate) async fn deleted_after(
        &self,
        thread: &ThreadId,
        seq: Seq,
    ) -> Result<Vec<DeletedEntry>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(table::GSI1)
                .key_condition_expression("GSI1PK = :pk AND GSI1SK > :s")
                .expression_attribute_values(":pk", s(keys::deleted_index_pk(thread)))
                .expression_attribute_values(":s", s(seq.padded()))
                .projection_expression("#seq, #sender")
                .expression_attribute_names("#seq", "seq")
                .expression_attribute_names("#sender", "sender")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            for item in out.items.unwrap_or_default() {
                found.push(decode(item)?);
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(found),
            }
        }
    }
}
