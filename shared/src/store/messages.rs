//! Messages: sending, listing, read markers and read receipts.

use super::changelog::log_entry;
use super::edits::{deleted_count_is, version_is};
use super::items::{MessageItem, ReadEventItem, SendKeyItem, SenderIndexEntry, attr, decode, encode};
use super::page::{PageSpec, Slice};
use super::{
    ListSpec, Skip, Step, Store, StoreError, Tx, attempts, backoff, key, keys, n, s, table, tx_put,
    tx_update, update,
};
use crate::ids::{Seq, ThreadId, UserId};
use crate::model::{Membership, Message, ReadBy};
use crate::timestamp::Timestamp;

/// The result of a send.
#[derive(Debug)]
pub enum SendOutcome {
    /// The message as stored.
    Sent(Message),
    /// A retry of a send that already happened: the original message; nothing was written.
    Replayed(Message),
    /// The client id was used before by this sender in this thread for a different text.
    ClientIdReused,
    /// A retry of a send whose message has been deleted since.
    ReplayedDeleted,
    /// The sender is not in the thread (or it is gone).
    NotFound,
}

/// How long a client-chosen id keeps a send from happening twice (at least 24 hours; DynamoDB
/// removes expired items some time after `expires_at`).
pub const CLIENT_ID_TTL_SECONDS: i64 = 25 * 3600;
/// How long the server's own per-request key guards against its own retries.
const SERVER_KEY_TTL_SECONDS: i64 = 3600;

/// The key that makes one send happen once: the client's `client_id`, or one the server makes
/// per request so that its own retries after an ambiguous failure cannot write twice.
fn send_key(thread: &ThreadId, sender: &UserId, client_id: Option<&str>) -> (String, i64) {
    let (kind, id, ttl) = match client_id {
        Some(id) => ("C", sha256_hex(id), CLIENT_ID_TTL_SECONDS),
        None => ("S", uuid::Uuid::new_v4().simple().to_string(), SERVER_KEY_TTL_SECONDS),
    };
    (keys::send_key_pk(thread, sender, kind, &id), ttl)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Appends a message: one transaction writes it, moves the thread's activity for every
    /// member, and raises every other member's unread counts.
    pub async fn send_message(
        &self,
        sender: &UserId,
        thread: &ThreadId,
        text: &str,
        client_id: Option<&str>,
    ) -> Result<SendOutcome, StoreError> {
        let (guard_pk, ttl) = send_key(thread, sender, client_id);
        let text_hash = sha256_hex(text);
        for attempt in attempts() {
            let Some((mine, members)) = self.member_and_others(sender, thread).await? else {
                return Ok(SendOutcome::NotFound);
            };
            let others: Vec<UserId> =
                mine.thread.participants.iter().filter(|p| *p != sender).cloned().collect();
            let seq = Seq(mine.thread.message_count + 1);
            let version = mine.thread.version.next();
            let now = Timestamp::now().max(mine.thread.updated);
            let message = Message {
                id: crate::ids::MessageId { thread: thread.clone(), seq },
                thread: thread.clone(),
                sender: sender.clone(),
                text: text.to_owned(),
                created: now,
                edited: None,
            };
            let last: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(&message)?;
            let activity = keys::activity_sk(now, thread);
            let table = self.table();

            let guard = SendKeyItem {
                pk: guard_pk.clone(),
                sk: keys::SEND_KEY.to_owned(),
                seq: seq.0,
                text_hash: text_hash.clone(),
                expires_at: now.unix() + ttl,
            };
            let mut tx = Tx::default();
            tx.push(Step::SendKey, tx_put(table, encode(&guard)?, Some("attribute_not_exists(PK)")));
            tx.push(
                Step::Message,
                tx_put(
                    table,
                    encode(&MessageItem::new(&message, mine.sent + 1))?,
                    Some("attribute_not_exists(PK)"),
                ),
            );
            tx.push(Step::ChangeLog, log_entry(table, thread, version, seq)?);
            tx.push(
                Step::Thread,
                tx_update(
                    update(table, key(keys::thread_pk(thread), keys::META))
                        .update_expression(
                            "SET message_count = :n1, updated = :now, last_message = :m, GSI1SK = :g, version = :ver1",
                        )
                        // The size catches a join committed since the memberships were read
                        // (see `members`): the joiner would miss this message. The version
                        // puts this send in order with edits and deletes.
                        .condition_expression(format!(
                            "message_count = :n AND size(participants) = :k AND {}",
                            version_is(mine.thread.version)
                        ))
                        .expression_attribute_values(":ver", n(mine.thread.version.0))
                        .expression_attribute_values(":ver1", n(version.0))
                        .expression_attribute_values(":k", n(mine.thread.participants.len()))
                        .expression_attribute_values(":n", n(mine.thread.message_count))
                        .expression_attribute_values(":n1", n(seq.0))
                        .expression_attribute_values(":now", s(now.to_string()))
                        .expression_attribute_values(":m", last.clone())
                        .expression_attribute_values(":g", s(activity.clone())),
                ),
            );
            let activity_update = |user: &UserId| {
                update(table, key(keys::user_pk(user), keys::membership_sk(thread)))
                    .expression_attribute_values(":n", n(mine.thread.message_count))
                    .expression_attribute_values(":n1", n(seq.0))
                    .expression_attribute_values(":now", s(now.to_string()))
                    .expression_attribute_values(":g", s(activity.clone()))
                    .expression_attribute_values(":m", last.clone())
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":ver1", n(version.0))
            };
            tx.push(Step::Membership, tx_update(
                activity_update(sender)
                    .update_expression("SET message_count = :n1, updated = :now, GSI1SK = :g, last_message = :m, version = :ver1 ADD sent :one")
                    .condition_expression("message_count = :n"),
            ));
            let mut changing = false;
            for other in &others {
                let Some(m) = members.get(other) else {
                    // A delete or a change of participants is under way: the next attempt sees
                    // its outcome (and answers 404 if the sender is no longer in the thread).
                    if self.participants_changed(&mine.thread).await? {
                        changing = true;
                        break;
                    }
                    return Err(StoreError::Corrupt(format!(
                        "thread {thread} lacks a membership for {other}"
                    )));
                };
                let (condition, zero) =
                    if m.unread == 0 { ("unread = :zero", 0) } else { ("unread > :zero", 0) };
                tx.push(Step::Membership, tx_update(
                    activity_update(other)
                        .update_expression("SET message_count = :n1, updated = :now, GSI1SK = :g, last_message = :m, version = :ver1 ADD unread :one")
                        .condition_expression(format!("message_count = :n AND {condition}"))
                        .expression_attribute_values(":zero", n(zero)),
                ));
                tx.push(Step::Counters, self.counters_update(other, 0, 1, i64::from(m.unread == 0)));
            }
            if changing {
                backoff(attempt).await;
                continue;
            }
            match self.transact(tx).await {
                Ok(()) => return Ok(SendOutcome::Sent(message)),
                Err(f) if f.failed(Step::SendKey) => {
                    if let Some(outcome) = self.replay(thread, &guard_pk, &text_hash).await? {
                        return Ok(outcome);
                    }
                    backoff(attempt).await;
                }
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(f.into()),
            }
        }
        Err(StoreError::busy("send stayed contended"))
    }

    /// True when a thread's participants are no longer those of `seen` (or it is gone).
    pub(crate) async fn participants_changed(&self, seen: &crate::model::Thread) -> Result<bool, StoreError> {
        Ok(self.thread(&seen.id).await?.is_none_or(|now| now.participants != seen.participants))
    }

    /// The outcome of a send whose key was used already: the original message, or a refusal
    /// if that key sent a different text. `None` if the key's record vanished meanwhile.
    async fn replay(
        &self,
        thread: &ThreadId,
        guard_pk: &str,
        text_hash: &str,
    ) -> Result<Option<SendOutcome>, StoreError> {
        let Some(record) = self.get(key(guard_pk, keys::SEND_KEY), true).await? else { return Ok(None) };
        let record: SendKeyItem = decode(record)?;
        if record.text_hash != text_hash {
            return Ok(Some(SendOutcome::ClientIdReused));
        }
        Ok(match self.message_item(thread, Seq(record.seq), true).await? {
            None => None,
            Some(item) if item.deleted.is_some() => Some(SendOutcome::ReplayedDeleted),
            Some(item) => Some(SendOutcome::Replayed(item.into_message())),
        })
    }

    /// A page of a thread's messages, newest first.
    pub async fn list_messages(
        &self,
        thread: &ThreadId,
        page: &PageSpec,
    ) -> Result<Slice<Message>, StoreError> {
        let pk = keys::thread_pk(thread);
        let start_key = |sk: &str| {
            let seq = sk.strip_prefix(keys::MESSAGE_PREFIX)?;
            if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(key(pk.clone(), sk))
        };
        let spec = ListSpec {
            index: None,
            pk: (attr::PK, keys::thread_pk(thread)),
            sk: attr::SK,
            sk_prefix: Some(keys::MESSAGE_PREFIX.to_owned()),
            descending: true,
            start_key: &start_key,
            skip: Some(Skip::Deleted),
        };
        self.list_page(&spec, page)
            .await?
            .try_map(|i| decode::<MessageItem>(i).map(MessageItem::into_message))
    }

    /// One message; `None` if it does not exist or was deleted.
    pub async fn message(&self, thread: &ThreadId, seq: Seq) -> Result<Option<Message>, StoreError> {
        let item = self.message_item(thread, seq, false).await?;
        Ok(item.filter(|i| i.deleted.is_none()).map(MessageItem::into_message))
    }

    /// A message's item, tombstones included.
    pub(crate) async fn message_item(
        &self,
        thread: &ThreadId,
        seq: Seq,
        consistent: bool,
    ) -> Result<Option<MessageItem>, StoreError> {
        let item = self.get(key(keys::thread_pk(thread), keys::message_sk(seq)), consistent).await?;
        item.map(decode::<MessageItem>).transpose()
    }

    /// Moves a member's read marker forward to `upto` (never back), fixing their unread counts
    /// in the same transaction and recording when the marker moved. `current` is the member's
    /// view as the caller last read it; it is re-read only if a concurrent change intervenes.
    pub async fn mark_read(&self, current: Membership, upto: Seq) -> Result<(), StoreError> {
        let (user, thread) = (current.user.clone(), current.thread.id.clone());
        let mut snapshot = Some(current);
        for attempt in attempts() {
            let m = match snapshot.take() {
                Some(m) => m,
                None => match self.membership(&user, &thread).await? {
                    Some(m) => m,
                    None => return Ok(()),
                },
            };
            if upto <= m.read_seq {
                return Ok(());
            }
            if upto.0 > m.thread.message_count {
                // The page saw a message newer than this view: read the view again.
                backoff(attempt).await;
                continue;
            }
            let unread = self.unread_after(&m, upto).await?;
            let table = self.table();
            let event = ReadEventItem::new(&thread, &user, upto, Timestamp::now());
            let mut tx = Tx::default();
            tx.push(
                Step::Membership,
                tx_update(
                    update(table, key(keys::user_pk(&user), keys::membership_sk(&thread)))
                        .update_expression("SET read_seq = :s, unread = :u")
                        .condition_expression(format!(
                            "read_seq = :old AND message_count = :n AND {}",
                            deleted_count_is(m.thread.deleted_count)
                        ))
                        .expression_attribute_values(":s", n(upto.0))
                        .expression_attribute_values(":u", n(unread))
                        .expression_attribute_values(":old", n(m.read_seq.0))
                        .expression_attribute_values(":n", n(m.thread.message_count))
                        .expression_attribute_values(":d", n(m.thread.deleted_count)),
                ),
            );
            tx.push(Step::ReadEvent, tx_put(table, encode(&event)?, None));
            if unread != m.unread {
                let delta = unread as i64 - m.unread as i64;
                let threads_delta = i64::from(unread > 0) - i64::from(m.unread > 0);
                tx.push(Step::Counters, self.counters_update(&user, 0, delta, threads_delta));
            }
            match self.transact(tx).await {
                Ok(()) => return Ok(()),
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(f.into()),
            }
        }
        Err(StoreError::busy("read marker stayed contended"))
    }

    /// Messages from others after `upto`: all messages after it, less the member's own (GSI2),
    /// less the deleted ones from others (GSI1's list of tombstones, read beside it and only in
    /// threads that have any).
    async fn unread_after(&self, m: &Membership, upto: Seq) -> Result<u64, StoreError> {
        if upto.0 >= m.thread.message_count {
            return Ok(0);
        }
        let deleted = async {
            if m.thread.deleted_count == 0 {
                return Ok(0);
            }
            let gone = self.deleted_after(&m.thread.id, upto).await?;
            Ok::<_, StoreError>(gone.iter().filter(|d| d.sender != m.user).count() as u64)
        };
        let (own_upto, deleted) = tokio::try_join!(self.sent_up_to(&m.thread.id, &m.user, upto), deleted)?;
        let own_after = m.sent.saturating_sub(own_upto);
        Ok((m.thread.message_count - upto.0).saturating_sub(own_after).saturating_sub(deleted))
    }

    /// How many messages `user` had sent in `thread` up to and including `upto` (one GSI2 read).
    pub(crate) async fn sent_up_to(
        &self,
        thread: &ThreadId,
        user: &UserId,
        upto: Seq,
    ) -> Result<u64, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(table::GSI2)
            .key_condition_expression("GSI2PK = :pk AND GSI2SK <= :s")
            .expression_attribute_values(":pk", s(keys::sender_index_pk(thread, user)))
            .expression_attribute_values(":s", s(upto.padded()))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        match out.items.unwrap_or_default().into_iter().next() {
            Some(item) => Ok(decode::<SenderIndexEntry>(item)?.sender_seq),
            None => Ok(0),
        }
    }

    /// Who has read a message and when they first did: the sender at sending time, each other
    /// participant at their first read event that reached it (one query per participant).
    pub async fn read_by(
        &self,
        message: &Message,
        participants: &[UserId],
    ) -> Result<Vec<ReadBy>, StoreError> {
        let others = participants.iter().filter(|p| **p != message.sender);
        let lookups = others.map(|p| async move {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::thread_pk(&message.thread)))
                .expression_attribute_values(":from", s(keys::read_event_sk(p, message.id.seq)))
                .expression_attribute_values(":to", s(keys::read_events_end(p)))
                .limit(1)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            let first = out.items.unwrap_or_default().into_iter().next();
            let event = first.map(decode::<ReadEventItem>).transpose()?;
            Ok::<_, StoreError>(event.map(|e| ReadBy { user: p.clone(), read_at: e.read_at }))
        });
        let mut readers = vec![ReadBy { user: message.sender.clone(), read_at: message.created }];
        for found in futures_util::future::join_all(lookups).await {
            readers.extend(found?);
        }
        Ok(readers)
    }
}
