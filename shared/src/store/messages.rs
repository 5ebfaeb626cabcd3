//! Messages: sending, listing, read markers and read receipts.

use std::collections::HashMap;
use std::time::Duration;

use super::changelog::log_entry;
use super::expr::{Change, Cond};
use super::items::{MessageItem, ReadEventItem, SendKeyItem, SenderIndexEntry, attr, decode, encode};
use super::page::{PageSpec, Slice};
use super::query::{ListSpec, Skip};
use super::retry::{Next, Why, retrying, retrying_within};
use super::threads::add_to_counters;
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s, table};
use crate::ids::{MessageId, Seq, ThreadId, UserId};
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

/// What a send reads before it writes: the sender's view and every other member's.
pub(crate) struct SendRead {
    /// The sender's view.
    pub mine: Membership,
    /// The other members' views, by member.
    pub others: HashMap<UserId, Membership>,
}

impl SendRead {
    /// The other participants whose views were not read: a delete or a change of participants
    /// under way.
    fn missing(&self) -> impl Iterator<Item = &UserId> {
        let sender = &self.mine.user;
        self.mine.thread.participants.iter().filter(move |p| *p != sender && !self.others.contains_key(*p))
    }
}

/// The message a send appends, as read: the next `seq`, at a time no earlier than the thread's
/// last activity.
pub(crate) fn next_message(read: &SendRead, text: &str, now: Timestamp) -> Message {
    let t = &read.mine.thread;
    Message {
        id: MessageId { thread: t.id.clone(), seq: Seq(t.message_count + 1) },
        thread: t.id.clone(),
        sender: read.mine.user.clone(),
        text: text.to_owned(),
        created: now.max(t.updated),
        edited: None,
    }
}

/// The transaction of a send: the key that makes it happen once, the message, its change log
/// entry, the thread moved on (if still as read), the sender's view, and each other member's
/// view and counters with one more unread.
pub(crate) fn plan_send(read: &SendRead, message: &Message, guard: &SendKeyItem) -> Result<Tx, StoreError> {
    let t = &read.mine.thread;
    let thread = &t.id;
    let seq = message.id.seq;
    let version = t.version.next();
    let last: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(message)?;
    let activity = keys::activity_sk(message.created, thread);
    let now = s(message.created.to_string());
    let moved = || {
        Change::new()
            .set(attr::MESSAGE_COUNT, n(seq.0))
            .set(attr::UPDATED, now.clone())
            .set(attr::GSI1SK, s(&activity))
            .set(attr::LAST_MESSAGE, last.clone())
            .set(attr::VERSION, n(version.0))
    };
    let mut tx = Tx::default();
    tx.put(Step::SendKey, encode(guard)?, Cond::new().missing(attr::PK));
    tx.put(
        Step::Message,
        encode(&MessageItem::new(message, read.mine.sent + 1))?,
        Cond::new().missing(attr::PK),
    );
    log_entry(&mut tx, thread, version, seq)?;
    // The size catches a join committed since the memberships were read (see `members`): the
    // joiner would miss this message. The version puts this send in order with edits and
    // deletes.
    tx.update(
        Step::Thread,
        key(keys::thread_pk(thread), keys::META),
        moved(),
        Cond::new()
            .eq(attr::MESSAGE_COUNT, n(t.message_count))
            .size_is(attr::PARTICIPANTS, t.participants.len())
            .number_is(attr::VERSION, t.version.0),
    );
    let was = || Cond::new().eq(attr::MESSAGE_COUNT, n(t.message_count));
    tx.update(
        Step::Membership,
        key(keys::user_pk(&read.mine.user), keys::membership_sk(thread)),
        moved().add(attr::SENT, n(1)),
        was(),
    );
    let mut others: Vec<&Membership> = read.others.values().collect();
    others.sort_by(|a, b| a.user.cmp(&b.user));
    for m in others {
        // Whether they had anything unread decides their count of threads with unread
        // messages: it must still be so.
        let unread_as_read =
            if m.unread == 0 { was().eq(attr::UNREAD, n(0)) } else { was().gt(attr::UNREAD, n(0)) };
        tx.update(
            Step::Membership,
            key(keys::user_pk(&m.user), keys::membership_sk(thread)),
            moved().add(attr::UNREAD, n(1)),
            unread_as_read,
        );
        add_to_counters(&mut tx, &m.user, 0, 1, i64::from(m.unread == 0));
    }
    Ok(tx)
}

/// The transaction that moves a member's read marker to `upto`, where `unread` messages from
/// others remain after it, if their view is still as read.
pub(crate) fn plan_mark_read(
    m: &Membership,
    upto: Seq,
    unread: u64,
    now: Timestamp,
) -> Result<Tx, StoreError> {
    let thread = &m.thread.id;
    let mut tx = Tx::default();
    tx.update(
        Step::Membership,
        key(keys::user_pk(&m.user), keys::membership_sk(thread)),
        Change::new().set(attr::READ_SEQ, n(upto.0)).set(attr::UNREAD, n(unread)),
        Cond::new()
            .eq(attr::READ_SEQ, n(m.read_seq.0))
            .eq(attr::MESSAGE_COUNT, n(m.thread.message_count))
            .number_is(attr::DELETED_COUNT, m.thread.deleted_count),
    );
    tx.put(Step::ReadEvent, encode(&ReadEventItem::new(thread, &m.user, upto, now))?, Cond::new());
    if unread != m.unread {
        let delta = unread as i64 - m.unread as i64;
        let threads_delta = i64::from(unread > 0) - i64::from(m.unread > 0);
        add_to_counters(&mut tx, &m.user, 0, delta, threads_delta);
    }
    Ok(tx)
}

/// How long a read may spend moving its reader's marker: a read answers with its page whether
/// the marker moved or not, and a later read moves it.
const MARK_READ_BUDGET: Duration = Duration::from_millis(500);

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
        let (guard_pk, text_hash) = (&guard_pk, &text_hash);
        retrying("send", |_| async move {
            let Some((mine, others)) = self.member_and_others(sender, thread).await? else {
                return Ok(Next::Done(SendOutcome::NotFound));
            };
            let read = SendRead { mine, others };
            if read.missing().next().is_some() {
                // A delete or a change of participants is under way: the next attempt sees its
                // outcome (and answers 404 if the sender is no longer in the thread).
                if self.participants_changed(&read.mine.thread).await? {
                    return Ok(Next::Retry(Why::Unsettled));
                }
                return Err(StoreError::Corrupt(format!("thread {thread} lacks a membership")));
            }
            let message = next_message(&read, text, Timestamp::now());
            let guard = SendKeyItem {
                pk: guard_pk.clone(),
                sk: keys::SEND_KEY.to_owned(),
                seq: message.id.seq.0,
                text_hash: text_hash.clone(),
                expires_at: message.created.unix() + ttl,
            };
            match self.transact(plan_send(&read, &message, &guard)?).await {
                Ok(()) => Ok(Next::Done(SendOutcome::Sent(message))),
                Err(f) if f.failed(Step::SendKey) => match self.replay(thread, guard_pk, text_hash).await? {
                    Some(outcome) => Ok(Next::Done(outcome)),
                    None => Ok(Next::Retry(Why::Unsettled)),
                },
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| f.into()),
            }
        })
        .await
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
    /// Contention or a transient failure leaves the marker for a later read (`Ok(false)`):
    /// the reader has their page either way.
    pub async fn mark_read(&self, current: Membership, upto: Seq) -> Result<bool, StoreError> {
        let (user, thread) = (current.user.clone(), current.thread.id.clone());
        let mut snapshot = Some(current);
        let (user, thread) = (&user, &thread);
        let moved: Result<bool, StoreError> = retrying_within("read marker", MARK_READ_BUDGET, |_| {
            let snapshot = snapshot.take();
            async move {
                let m = match snapshot {
                    Some(m) => m,
                    None => match self.membership(user, thread).await? {
                        Some(m) => m,
                        None => return Ok(Next::Done(false)),
                    },
                };
                if upto <= m.read_seq {
                    return Ok(Next::Done(false));
                }
                if upto.0 > m.thread.message_count {
                    // The page saw a message newer than this view: read the view again.
                    return Ok(Next::Retry(Why::Unsettled));
                }
                let unread = self.unread_after(&m, upto).await?;
                match self.transact(plan_mark_read(&m, upto, unread, Timestamp::now())?).await {
                    Ok(()) => Ok(Next::Done(true)),
                    Err(f) => f.why().map(Next::Retry).ok_or_else(|| f.into()),
                }
            }
        })
        .await;
        match moved {
            Err(e) if e.is_transient() => {
                tracing::info!(%thread, error = %e, "read marker left for a later read");
                Ok(false)
            }
            other => other,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Version;
    use crate::model::Thread;

    fn id(s: &str) -> UserId {
        s.parse().unwrap()
    }

    fn view(user: &str, unread: u64) -> Membership {
        let now = "2026-01-02T03:04:05Z".parse().unwrap();
        let thread = Thread {
            id: "t1".parse().unwrap(),
            participants: vec![id("a"), id("b"), id("c")],
            owner: id("a"),
            created: now,
            updated: now,
            message_count: 7,
            deleted_count: 2,
            last_message: None,
            version: Version(11),
        };
        Membership { thread, user: id(user), unread, read_seq: Seq(5), sent: 3 }
    }

    fn guard(seq: u64) -> SendKeyItem {
        SendKeyItem {
            pk: "SEND#k".into(),
            sk: keys::SEND_KEY.into(),
            seq,
            text_hash: "h".into(),
            expires_at: 0,
        }
    }

    #[test]
    fn a_send_appends_after_the_thread_as_read_and_raises_the_others_unread() {
        let read = SendRead {
            mine: view("a", 0),
            others: HashMap::from([(id("b"), view("b", 0)), (id("c"), view("c", 4))]),
        };
        assert_eq!(read.missing().count(), 0);
        let message = next_message(&read, "hi", "2026-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(message.id.seq, Seq(8));
        assert_eq!(message.created, read.mine.thread.updated, "never before the thread's last activity");
        let tx = plan_send(&read, &message, &guard(8)).unwrap();
        let thread = tx.of(Step::Thread).next().unwrap();
        assert_eq!(thread.cond.to_string(), "message_count = 7 AND size(participants) = 3 AND version = 11");
        assert!(thread.change().unwrap().to_string().contains("version = 12"));
        assert_eq!(tx.of(Step::SendKey).next().unwrap().cond.to_string(), "attribute_not_exists(PK)");
        assert_eq!(tx.of(Step::ChangeLog).next().unwrap().pk(), "THREAD#t1");
        let views: Vec<(String, String)> =
            tx.of(Step::Membership).map(|a| (a.pk().to_owned(), a.cond.to_string())).collect();
        assert_eq!(
            views,
            [
                ("USER#a".into(), "message_count = 7".into()),
                ("USER#b".into(), "message_count = 7 AND unread = 0".into()),
                ("USER#c".into(), "message_count = 7 AND unread > 0".into()),
            ]
        );
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(
            counters,
            [
                "ADD thread_count 0, unread_total 1, unread_threads 1",
                "ADD thread_count 0, unread_total 1, unread_threads 0"
            ]
        );
        assert_eq!(tx.len(), 4 + 3 + 2, "key, message, log, thread; three views; two counters");
    }

    #[test]
    fn a_view_missing_from_the_reads_is_noticed() {
        let read = SendRead { mine: view("a", 0), others: HashMap::from([(id("b"), view("b", 0))]) };
        assert_eq!(read.missing().collect::<Vec<_>>(), [&id("c")]);
    }

    #[test]
    fn a_read_marker_moves_only_from_where_it_was_read() {
        let m = view("b", 4);
        let now = "2026-01-02T03:04:05Z".parse().unwrap();
        let tx = plan_mark_read(&m, Seq(7), 0, now).unwrap();
        let marker = tx.of(Step::Membership).next().unwrap();
        assert_eq!(marker.change().unwrap().to_string(), "SET read_seq = 7, unread = 0");
        assert_eq!(marker.cond.to_string(), "read_seq = 5 AND message_count = 7 AND deleted_count = 2");
        assert_eq!(tx.of(Step::ReadEvent).count(), 1);
        let counters = tx.of(Step::Counters).next().unwrap().change().unwrap().to_string();
        assert_eq!(counters, "ADD thread_count 0, unread_total -4, unread_threads -1");
        let unchanged = plan_mark_read(&m, Seq(6), 4, now).unwrap();
        assert_eq!(unchanged.of(Step::Counters).count(), 0, "no count moves when none changes");
    }
}
