//! Messages: sending, listing, read markers and read receipts.

use std::collections::HashMap;
use std::time::Duration;

use super::append::{AppendRead, PENDING_MAX_AGE_SECS, Queued, Refused, SendRead, plan_append};
use super::expr::{Change, Cond};
use super::items::{
    MessageItem, PendingItem, ReadEventItem, SendKeyItem, SenderIndexEntry, attr, decode, encode,
};
use super::page::{PageSpec, Slice};
use super::query::{ListSpec, Skip};
use super::retry::{Next, Why, retrying, retrying_within};
use super::threads::{Totals, add_to_member_counters, mute_as_read};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s, table};
use crate::domain::ids::{Seq, ThreadId, UserId};
use crate::domain::model::{Membership, Message, ReadBy};
use crate::domain::timestamp::Timestamp;

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
    /// The message it answers is not in the thread, or was deleted.
    NoSuchReplyTo,
    /// It mentions someone not in the thread.
    MentionsOutsider,
}

/// A message to send, as the request gives it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outgoing<'a> {
    /// Its text.
    pub text: &'a str,
    /// The client's key that makes it happen once, if any.
    pub client_id: Option<&'a str>,
    /// The message of the thread it answers.
    pub reply_to: Option<Seq>,
    /// The participants it mentions, each once.
    pub mentions: &'a [UserId],
}

impl<'a> Outgoing<'a> {
    /// Just a text.
    pub fn text(text: &'a str) -> Self {
        Self { text, ..Self::default() }
    }
}

/// What remains unread after a read marker: messages from others, and those of them that
/// mention the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unread {
    pub messages: u64,
    pub mentions: u64,
}

/// The transaction that moves a member's read marker to `upto`, after which `unread` remains,
/// if their view is still as read.
pub(crate) fn plan_mark_read(
    m: &Membership,
    upto: Seq,
    unread: Unread,
    now: Timestamp,
) -> Result<Tx, StoreError> {
    let thread = &m.thread.id;
    let mut tx = Tx::default();
    let mut change = Change::new().set(attr::READ_SEQ, n(upto.0)).set(attr::UNREAD, n(unread.messages));
    if unread.mentions != m.unread_mentions {
        change = change.set(attr::UNREAD_MENTIONS, n(unread.mentions));
    }
    // An edit or delete that changes who a message mentions changes `unread_mentions` without
    // moving the message count: the mentions counted must still be the ones read.
    tx.update(
        Step::Membership,
        key(keys::user_pk(&m.user), keys::membership_sk(thread)),
        change,
        Cond::new()
            .eq(attr::READ_SEQ, n(m.read_seq.0))
            .eq(attr::MESSAGE_COUNT, n(m.thread.message_count))
            .number_is(attr::DELETED_COUNT, m.thread.deleted_count)
            .number_is(attr::UNREAD_MENTIONS, m.unread_mentions)
            .and(mute_as_read(m)),
    );
    tx.put(Step::ReadEvent, encode(&ReadEventItem::new(thread, &m.user, upto, now))?, Cond::new());
    if unread.messages != m.unread || unread.mentions != m.unread_mentions {
        let totals = Totals {
            mentions: unread.mentions as i64 - m.unread_mentions as i64,
            ..Totals::unread(unread.messages as i64 - m.unread as i64, m.unread)
        };
        add_to_member_counters(&mut tx, m, totals, now);
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
    /// Sends a message: it is queued under the thread, then appended, by this request or by
    /// another's that takes it along (see `append`). An append is one transaction
    /// that writes the messages, moves the thread's activity for every member and raises every
    /// other member's unread counts.
    pub async fn send_message(
        &self,
        sender: &UserId,
        thread: &ThreadId,
        outgoing: Outgoing<'_>,
    ) -> Result<SendOutcome, StoreError> {
        let Outgoing { text, client_id, reply_to, mentions } = outgoing;
        let (send_key, send_key_ttl) = send_key(thread, sender, client_id);
        let now = Timestamp::now();
        let mine = PendingItem {
            pk: keys::thread_pk(thread),
            sk: keys::pending_sk(&send_key),
            sender: sender.clone(),
            text: text.to_owned(),
            text_hash: sha256_hex(text),
            reply_to: reply_to.map(|s| s.0),
            mentions: mentions.to_vec(),
            send_key,
            send_key_ttl,
            request: uuid::Uuid::new_v4().simple().to_string(),
            queued_at: now,
            expires_at: now.unix() + PENDING_MAX_AGE_SECS * 2,
        };
        // On an instance that knows the sender takes part, queueing, the views and who else
        // waits are read at once: a send that meets no one appends in the next round trip.
        // Otherwise the sender's own view comes first, so that nothing is written for someone
        // outside the thread.
        // The message a reply answers is read beside them, for the append.
        let original = || async {
            match reply_to {
                Some(seq) => self.message_item(thread, seq, true).await,
                None => Ok(None),
            }
        };
        let known = self.hints.participants(thread).is_some_and(|p| p.contains(sender));
        let (queued, views, waiting, answered) = if known {
            tokio::join!(
                self.queue_message(&mine),
                self.member_and_others(sender, thread),
                self.waiting(thread),
                original(),
            )
        } else {
            let Some(me) = self.membership(sender, thread).await? else {
                return Ok(SendOutcome::NotFound);
            };
            let others: Vec<UserId> =
                me.thread.participants.iter().filter(|p| *p != sender).cloned().collect();
            let (queued, others, waiting, answered) = tokio::join!(
                self.queue_message(&mine),
                self.memberships(thread, &others),
                self.waiting(thread),
                original(),
            );
            (queued, others.map(|others| Some((me, others))), waiting, answered)
        };
        if !queued? {
            // Its key was used: a retry of a send that happened.
            return match self.replay(thread, &mine.send_key, &mine.text_hash).await? {
                Some(outcome) => Ok(outcome),
                // Its record expired between the two reads: the client may try again.
                None => Err(StoreError::busy("a send key expired while it was read")),
            };
        }
        let mut first = Some((views?, waiting?, answered?));
        let (mine, original) = (&mine, &original);
        retrying("send", |_| {
            let first = first.take();
            async move {
                let (views, waiting, answered) = match first {
                    Some(reads) => reads,
                    None => {
                        let (views, waiting, key, answered) = tokio::try_join!(
                            self.member_and_others(sender, thread),
                            self.waiting(thread),
                            self.get(key(&mine.send_key, keys::SEND_KEY), true),
                            original(),
                        )?;
                        if let Some(key) = key {
                            // Another sender's append took this message along.
                            return self
                                .appended_by_another(thread, mine, decode(key)?)
                                .await
                                .map(Next::Done);
                        }
                        if !waiting.iter().any(|w| w.sk() == mine.sk) {
                            // Dropped, or appended between the reads (then its key stops this).
                            if !self.queue_message(mine).await? {
                                return Ok(Next::Retry(Why::Moved));
                            }
                        }
                        (views, waiting, answered)
                    }
                };
                let Some((me, others)) = views else {
                    self.unqueue(&mine.pk, &mine.sk).await?;
                    return Ok(Next::Done(SendOutcome::NotFound));
                };
                let read = SendRead { mine: me, others };
                if read.missing().next().is_some() {
                    // A delete or a change of participants is under way: the next attempt sees its
                    // outcome (and answers 404 if the sender is no longer in the thread).
                    if self.participants_changed(&read.mine.thread).await? {
                        return Ok(Next::Retry(Why::Unsettled));
                    }
                    return Err(StoreError::Corrupt(format!("thread {thread} lacks a membership")));
                }
                let mut waiting = waiting;
                if !waiting.iter().any(|w| w.sk() == mine.sk) {
                    waiting.push(Queued::Message(mine.clone()));
                }
                let known: HashMap<Seq, MessageItem> =
                    answered.into_iter().map(|o| (Seq(o.seq), o)).collect();
                let targets = self.targets(thread, &waiting, known).await?;
                let read = AppendRead { views: read, waiting, targets };
                let (tx, batch) = plan_append(&read, Timestamp::now())?;
                let refused = batch.refusal(&mine.request);
                match self.transact(tx).await {
                    Ok(()) if refused == Some(Refused::MentionsOutsider) => {
                        Ok(Next::Done(SendOutcome::MentionsOutsider))
                    }
                    Ok(()) if refused.is_some() => Ok(Next::Done(SendOutcome::NoSuchReplyTo)),
                    Ok(()) => match batch.appended.into_iter().find(|a| a.queued == mine.sk) {
                        Some(a) if a.request == mine.request => Ok(Next::Done(SendOutcome::Sent(a.message))),
                        // A request with the same `client_id` queued it again: that one sent it.
                        Some(a) => Ok(Next::Done(SendOutcome::Replayed(a.message))),
                        // The batch was full before this one: the next append takes it.
                        None => Ok(Next::Retry(Why::Moved)),
                    },
                    Err(f) => f.why().map(Next::Retry).ok_or_else(|| f.into()),
                }
            }
        })
        .await
    }

    /// The outcome of a send whose queued message another request's append wrote: the message
    /// as it was sent (201), deleted since or not; or, if a request with the same `client_id`
    /// queued it again and that one was written, the answer to a retry (200).
    async fn appended_by_another(
        &self,
        thread: &ThreadId,
        mine: &PendingItem,
        key: SendKeyItem,
    ) -> Result<SendOutcome, StoreError> {
        if key.request != mine.request {
            let replayed = self.replay(thread, &mine.send_key, &mine.text_hash).await?;
            return replayed.ok_or_else(|| StoreError::busy("a send key expired while it was read"));
        }
        let item = self.message_item(thread, Seq(key.seq), true).await?;
        let item =
            item.ok_or_else(|| StoreError::Corrupt(format!("send key of {thread} without its message")))?;
        let mut message = item.into_message();
        // A delete since takes the text from the tombstone; the request sent this one.
        message.text.clone_from(&mine.text);
        Ok(SendOutcome::Sent(message))
    }

    /// True when a thread's participants are no longer those of `seen` (or it is gone).
    pub(crate) async fn participants_changed(
        &self,
        seen: &crate::domain::model::Thread,
    ) -> Result<bool, StoreError> {
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
    /// threads that have any); and the member's mentions after it, counted beside them and
    /// only while they have any unread.
    async fn unread_after(&self, m: &Membership, upto: Seq) -> Result<Unread, StoreError> {
        if upto.0 >= m.thread.message_count {
            return Ok(Unread { messages: 0, mentions: 0 });
        }
        let deleted = async {
            if m.thread.deleted_count == 0 {
                return Ok(0);
            }
            let gone = self.deleted_after(&m.thread.id, upto).await?;
            Ok::<_, StoreError>(gone.iter().filter(|d| d.sender != m.user).count() as u64)
        };
        let mentions = async {
            if m.unread_mentions == 0 {
                // None after the old marker, so none after a later one.
                return Ok(0);
            }
            self.mentions_after(&m.thread.id, &m.user, upto).await
        };
        let (own_upto, deleted, mentions) =
            tokio::try_join!(self.sent_up_to(&m.thread.id, &m.user, upto), deleted, mentions)?;
        let own_after = m.sent.saturating_sub(own_upto);
        let messages = (m.thread.message_count - upto.0).saturating_sub(own_after).saturating_sub(deleted);
        Ok(Unread { messages, mentions })
    }

    /// How many messages after `upto` mention `user` (one strongly consistent count of their
    /// mention items: deleted messages have none).
    async fn mentions_after(&self, thread: &ThreadId, user: &UserId, upto: Seq) -> Result<u64, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::thread_pk(thread)))
                .expression_attribute_values(":from", s(keys::mention_sk(user, Seq(upto.0 + 1))))
                .expression_attribute_values(":to", s(keys::mention_sk(user, Seq(u64::MAX))))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            count += out.count as u64;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(count),
            }
        }
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
    use crate::domain::ids::Version;
    use crate::domain::model::Thread;

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
        crate::domain::testing::member(thread, user, unread, 5, 3)
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
        let tx = plan_mark_read(&m, Seq(7), Unread { messages: 0, mentions: 0 }, now).unwrap();
        let marker = tx.of(Step::Membership).next().unwrap();
        assert_eq!(marker.change().unwrap().to_string(), "SET read_seq = 7, unread = 0");
        assert_eq!(
            marker.cond.to_string(),
            "read_seq = 5 AND message_count = 7 AND deleted_count = 2 AND (attribute_not_exists(unread_mentions) OR unread_mentions = 0) AND attribute_not_exists(muted_until)"
        );
        assert_eq!(tx.of(Step::ReadEvent).count(), 1);
        let counters = tx.of(Step::Counters).next().unwrap().change().unwrap().to_string();
        assert_eq!(counters, "ADD thread_count 0, unread_total -4, unread_threads -1");
        let unchanged = plan_mark_read(&m, Seq(6), Unread { messages: 4, mentions: 0 }, now).unwrap();
        assert_eq!(unchanged.of(Step::Counters).count(), 0, "no count moves when none changes");
    }

    #[test]
    fn a_read_marker_counts_the_mentions_left_after_it() {
        let m = Membership { unread_mentions: 2, ..view("b", 4) };
        let now = "2026-01-02T03:04:05Z".parse().unwrap();
        let tx = plan_mark_read(&m, Seq(6), Unread { messages: 1, mentions: 1 }, now).unwrap();
        let marker = tx.of(Step::Membership).next().unwrap();
        assert_eq!(marker.change().unwrap().to_string(), "SET read_seq = 6, unread = 1, unread_mentions = 1");
        assert!(marker.cond.to_string().contains("AND unread_mentions = 2"), "{}", marker.cond);
        let counters = tx.of(Step::Counters).next().unwrap().change().unwrap().to_string();
        assert_eq!(counters, "ADD thread_count 0, unread_total -3, unread_threads 0, mentions -1");
    }
}
