//! The thread's queue and the append that empties it: sends and reactions are queued under the
//! thread, and whoever appends next takes everything queued along, as much as one transaction
//! holds, in the order queued.
//!
//! Every change a client sees through `?since=` moves the thread's version, so changes to one
//! thread are serialised on its metadata. Written one transaction per change, a group where
//! everyone writes at once (32 people sending, a dozen reacting to the same message) loses
//! nearly every round: each transaction re-reads and tries again behind one winner. Queued, a
//! round that one of them wins writes the others' changes too.

use std::collections::HashMap;

use super::changelog::log_entry;
use super::expr::{Change, Cond};
use super::items::{
    MentionItem, MessageItem, PendingItem, QueuedReaction, SendKeyItem, attr, decode, encode,
};
use super::threads::{Totals, add_to_member_counters, archived_as_read, mute_as_read};
use super::tx::{MAX_ACTIONS, Step, Tx};
use super::{Item, Store, StoreError, key, keys, n, s};
use crate::domain::ids::{MessageId, Seq, ThreadId, UserId, Version};
use crate::domain::model::{Membership, Message, ReplyPreview};
use crate::domain::reaction::{self, Reaction};
use crate::domain::timestamp::Timestamp;

/// How long a queued change may wait. A request appends its own change within its retry budget
/// and the functions' timeout, so one still waiting after this has no request left to answer for
/// it: the next append drops it, rather than make a change whose client was told it failed.
pub(crate) const PENDING_MAX_AGE_SECS: i64 = 30;

/// What an append reads of the members: the writer's view and every other member's.
pub(crate) struct SendRead {
    /// The writer's view.
    pub mine: Membership,
    /// The other members' views, by member.
    pub others: HashMap<UserId, Membership>,
}

impl SendRead {
    /// The other participants whose views were not read: a delete or a change of participants
    /// under way.
    pub(crate) fn missing(&self) -> impl Iterator<Item = &UserId> {
        let writer = &self.mine.user;
        self.mine.thread.participants.iter().filter(move |p| *p != writer && !self.others.contains_key(*p))
    }
}

/// One change in a thread's queue.
#[derive(Debug, Clone)]
pub(crate) enum Queued {
    /// A message to append.
    Message(PendingItem),
    /// A reaction to add or take away.
    Reaction(QueuedReaction),
}

impl Queued {
    fn order(&self) -> (Timestamp, &str) {
        match self {
            Queued::Message(m) => (m.queued_at, &m.sk),
            Queued::Reaction(r) => (r.queued_at, &r.sk),
        }
    }

    /// Its sort key under the thread.
    pub(crate) fn sk(&self) -> &str {
        self.order().1
    }

    /// The message a queued reaction is for, or a queued reply answers.
    pub(crate) fn target(&self) -> Option<Seq> {
        match self {
            Queued::Reaction(r) => Some(Seq(r.seq)),
            Queued::Message(m) => m.reply_to.map(Seq),
        }
    }

    fn from_item(item: Item) -> Result<Self, StoreError> {
        let reaction = item
            .get(attr::SK)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|sk| sk.starts_with(keys::QUEUED_REACTION_PREFIX));
        Ok(if reaction { Queued::Reaction(decode(item)?) } else { Queued::Message(decode(item)?) })
    }
}

/// What an append reads.
pub(crate) struct AppendRead {
    /// The members' views.
    pub views: SendRead,
    /// The queue, in any order.
    pub waiting: Vec<Queued>,
    /// The messages queued reactions are for, as they are now; one missing is no more.
    pub targets: HashMap<Seq, MessageItem>,
}

/// One queued message an append writes, and the message it becomes.
#[derive(Debug)]
pub(crate) struct Appended {
    /// The queued message's sort key.
    pub queued: String,
    /// The request that queued it.
    pub request: String,
    /// The message as stored.
    pub message: Message,
}

/// One queued reaction an append applied (or found already so), and its message after it.
#[derive(Debug)]
pub(crate) struct Reacted {
    /// The request that queued it.
    pub request: String,
    /// The message as it is after the append.
    pub message: Message,
}

/// What an append writes, by queued change.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Messages appended, in order.
    pub appended: Vec<Appended>,
    /// Reactions applied.
    pub reacted: Vec<Reacted>,
    /// Changes refused, by the request that queued them.
    pub refused: Vec<(String, Refused)>,
}

/// Why an append refused a queued change (the request that queued it answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A reaction to a message with as many different emoji as it may have.
    TooManyEmojis,
    /// A reply to a message no longer there.
    NoSuchReplyTo,
    /// A message that mentions someone not in the thread.
    MentionsOutsider,
}

impl Batch {
    /// Why the change queued by `request` was refused, if it was.
    pub(crate) fn refusal(&self, request: &str) -> Option<Refused> {
        self.refused.iter().find(|(r, _)| r == request).map(|(_, why)| *why)
    }
}

/// A message a batch changes the reactions of: as read, and after.
struct Target {
    before: Vec<Reaction>,
    message: Message,
}

/// The transaction of an append: the queue in `read.waiting`, oldest first, as much as one
/// transaction holds. Each queued message goes at the next place with its send key and change
/// log entry; each queued reaction changes its message's reactions (a message changed by
/// several gets one change log entry); every queue entry taken goes, on condition that it is
/// still the one read. The thread moves on by all of it (if still as read), and every member's
/// view and counters by what the batch holds for them: their own messages sent, the others'
/// unread; reactions change no one's unread count and not the thread's activity. Queued
/// changes too old, from someone no longer in the thread, or for a message no longer there,
/// are dropped.
pub(crate) fn plan_append(read: &AppendRead, now: Timestamp) -> Result<(Tx, Batch), StoreError> {
    let t = &read.views.mine.thread;
    let thread = &t.id;
    let views: HashMap<&UserId, &Membership> =
        read.views.others.values().chain([&read.views.mine]).map(|m| (&m.user, m)).collect();
    let mut queue: Vec<&Queued> = read.waiting.iter().collect();
    queue.sort_by(|a, b| a.order().cmp(&b.order()));

    let mut tx = Tx::default();
    let mut batch = Batch::default();
    // Per member: own messages and others' in the batch.
    let mut sent: HashMap<&UserId, u64> = HashMap::new();
    let mut unread: HashMap<&UserId, u64> = HashMap::new();
    let mut messages: Vec<(&PendingItem, Message)> = Vec::new();
    // Messages whose reactions change, in the order first changed, and the queue entries taken.
    let mut targets: Vec<(Seq, Target)> = Vec::new();
    let mut reactions_taken: Vec<&QueuedReaction> = Vec::new();
    // Messages answered by replies in the batch (and still there): the replies' places.
    let mut answered: Vec<(Seq, Vec<u64>)> = Vec::new();
    let mut dropped: Vec<(&str, &str, Cond)> = Vec::new();
    // Mention items of the batch's messages, and each member's new unread mentions.
    let mut mentioned = 0usize;
    let mut mentions_of: HashMap<&UserId, u64> = HashMap::new();
    // A reply to a message no longer there answers nothing; a mention of someone not in the
    // thread (now: the views are read under the size condition) reaches no one.
    let refusal = |m: &PendingItem| {
        if m.reply_to.is_some_and(|s| read.targets.get(&Seq(s)).is_none_or(|o| o.deleted.is_some())) {
            return Some(Refused::NoSuchReplyTo);
        }
        (!m.mentions.iter().all(|u| views.contains_key(u))).then_some(Refused::MentionsOutsider)
    };
    // The thread and every view (when anything moves them), the counters of everyone who gets
    // an unread message, 4 actions per message, 2 per changed message, 1 per queue entry.
    // A new message brings an archived thread back to its member's list, unless they muted it:
    // their counters move too (counted here for each, whether their unread moves as well or not).
    let returning: Vec<&UserId> =
        views.values().filter(|v| v.archived && !v.mute.active_at(now)).map(|v| &v.user).collect();
    let size = |unread: &HashMap<&UserId, u64>, messages: usize, targets: usize, entries: usize| {
        let moves = messages + targets > 0;
        usize::from(moves) * (1 + views.len())
            + unread.len()
            + usize::from(messages > 0) * returning.len()
            + 4 * messages
            + 2 * targets
            + entries
    };
    let entries =
        |reactions: &[&QueuedReaction], dropped: &[(&str, &str, Cond)]| reactions.len() + dropped.len();
    let mut created = now.max(t.updated);
    for w in queue {
        let (queued_at, who) = match w {
            Queued::Message(m) => (m.queued_at, &m.sender),
            Queued::Reaction(r) => (r.queued_at, &r.user),
        };
        let stale = queued_at.plus_seconds(PENDING_MAX_AGE_SECS) < now;
        let target_gone = matches!(w, Queued::Reaction(_))
            && w.target().is_some_and(|seq| {
                !targets.iter().any(|(s, _)| *s == seq)
                    && read.targets.get(&seq).is_none_or(|item| item.deleted.is_some())
            });
        if stale || !views.contains_key(who) || target_gone {
            if size(&unread, messages.len(), targets.len(), entries(&reactions_taken, &dropped) + 1)
                + outside(&answered, &targets)
                + mentioned
                > MAX_ACTIONS
            {
                break;
            }
            let (pk, sk, as_read) = match w {
                Queued::Message(m) => (m.pk.as_str(), m.sk.as_str(), message_as_read(m)),
                Queued::Reaction(r) => (r.pk.as_str(), r.sk.as_str(), reaction_as_read(r)),
            };
            dropped.push((pk, sk, as_read));
            continue;
        }
        match w {
            Queued::Message(m) if refusal(m).is_some() => {
                if size(&unread, messages.len(), targets.len(), entries(&reactions_taken, &dropped) + 1)
                    + outside(&answered, &targets)
                    + mentioned
                    > MAX_ACTIONS
                {
                    break;
                }
                batch.refused.push((m.request.clone(), refusal(m).unwrap_or(Refused::NoSuchReplyTo)));
                dropped.push((&m.pk, &m.sk, message_as_read(m)));
            }
            Queued::Message(m) => {
                let mut would = unread.clone();
                for member in views.keys().filter(|v| **v != &m.sender) {
                    *would.entry(member).or_default() += 1;
                }
                // A reply to a message still there adds itself to that message's replies: one
                // more update, unless another reply or a reaction of the batch changes it too.
                let original =
                    m.reply_to.map(Seq).and_then(|s| read.targets.get(&s)).filter(|o| o.deleted.is_none());
                let more = original.map_or(0, |o| {
                    let seq = Seq(o.seq);
                    usize::from(
                        !answered.iter().any(|(s, _)| *s == seq) && !targets.iter().any(|(s, _)| *s == seq),
                    )
                });
                // One mention item per member it mentions besides its sender.
                let its_mentions: Vec<&UserId> = m.mentions.iter().filter(|u| **u != m.sender).collect();
                if size(&would, messages.len() + 1, targets.len(), entries(&reactions_taken, &dropped))
                    + outside(&answered, &targets)
                    + mentioned
                    + its_mentions.len()
                    + more
                    > MAX_ACTIONS
                {
                    break;
                }
                unread = would;
                mentioned += its_mentions.len();
                for u in its_mentions {
                    *mentions_of.entry(u).or_default() += 1;
                }
                *sent.entry(&m.sender).or_default() += 1;
                let seq = Seq(t.message_count + messages.len() as u64 + 1);
                created = created.max(now);
                // The answered message as it is now (the arm above refused one no longer there).
                let reply_to = original.map(|o| ReplyPreview::of(&clone_message(o)));
                if let Some(o) = original {
                    match answered.iter_mut().find(|(s, _)| s.0 == o.seq) {
                        Some((_, replies)) => replies.push(seq.0),
                        None => answered.push((Seq(o.seq), vec![seq.0])),
                    }
                }
                let message = Message {
                    id: MessageId { thread: thread.clone(), seq },
                    thread: thread.clone(),
                    sender: m.sender.clone(),
                    text: m.text.clone(),
                    created,
                    edited: None,
                    reactions: Vec::new(),
                    reply_to,
                    mentions: m.mentions.clone(),
                };
                messages.push((m, message));
            }
            Queued::Reaction(r) => {
                let seq = Seq(r.seq);
                let known = targets.iter().position(|(s, _)| *s == seq);
                let current = match known {
                    Some(i) => targets[i].1.message.reactions.clone(),
                    None => read.targets.get(&seq).map(|item| item.reactions.clone()).unwrap_or_default(),
                };
                let changed = match reaction::react(&current, &r.user, &r.emoji, r.on) {
                    Ok(changed) => changed,
                    Err(reaction::TooMany::Emojis) => {
                        if size(
                            &unread,
                            messages.len(),
                            targets.len(),
                            entries(&reactions_taken, &dropped) + 1,
                        ) + outside(&answered, &targets)
                            + mentioned
                            > MAX_ACTIONS
                        {
                            break;
                        }
                        batch.refused.push((r.request.clone(), Refused::TooManyEmojis));
                        dropped.push((&r.pk, &r.sk, reaction_as_read(r)));
                        continue;
                    }
                };
                let new_target = changed.is_some() && known.is_none();
                let more = usize::from(new_target);
                if size(
                    &unread,
                    messages.len(),
                    targets.len() + more,
                    entries(&reactions_taken, &dropped) + 1,
                ) + outside(&answered, &targets)
                    + mentioned
                    > MAX_ACTIONS
                {
                    break;
                }
                if let Some(after) = changed {
                    match known {
                        Some(i) => targets[i].1.message.reactions = after,
                        None => {
                            let item = &read.targets[&seq];
                            let mut message = clone_message(item);
                            message.reactions = after;
                            targets.push((seq, Target { before: item.reactions.clone(), message }));
                        }
                    }
                }
                reactions_taken.push(r);
            }
        }
    }

    // A message whose reactions came back to what they were (added and taken away within the
    // batch) is no change.
    targets.retain(|(_, target)| target.message.reactions != target.before);
    let k = messages.len() as u64;
    let changed = targets.len() as u64;
    let version = Version(t.version.0 + k + changed);
    if k + changed > 0 {
        // The last message after the batch: the last one appended, or the thread's last as its
        // reactions now are.
        let last = match messages.last() {
            Some((_, m)) => Some(m.clone()),
            None => t.last_message.as_ref().map(|last| {
                targets
                    .iter()
                    .find(|(s, _)| *s == last.id.seq)
                    .map_or_else(|| last.clone(), |(_, tg)| tg.message.clone())
            }),
        };
        let mut moved = Change::new().set(attr::VERSION, n(version.0));
        if let Some(last) = &last {
            moved = moved.set(attr::LAST_MESSAGE, serde_dynamo::to_attribute_value(last)?);
        }
        if let Some((_, newest)) = messages.last() {
            let activity = keys::activity_sk(newest.created, thread);
            moved = moved
                .set(attr::MESSAGE_COUNT, n(t.message_count + k))
                .set(attr::UPDATED, s(newest.created.to_string()))
                .set(attr::GSI1SK, s(&activity));
        }
        // The size catches a join committed since the memberships were read (see `members`):
        // the joiner would miss these changes. The version puts the append in order with edits
        // and deletes.
        tx.update(
            Step::Thread,
            key(keys::thread_pk(thread), keys::META),
            moved.clone(),
            Cond::new()
                .eq(attr::MESSAGE_COUNT, n(t.message_count))
                .size_is(attr::PARTICIPANTS, t.participants.len())
                .number_is(attr::VERSION, t.version.0),
        );
        let mut members: Vec<&&Membership> = views.values().collect();
        members.sort_by(|a, b| a.user.cmp(&b.user));
        for m in members {
            let mut change = moved.clone();
            let mut cond = Cond::new().eq(attr::MESSAGE_COUNT, n(t.message_count));
            let mut totals = Totals::default();
            if let Some(own) = sent.get(&m.user) {
                change = change.add(attr::SENT, n(own));
            }
            if let Some(more) = unread.get(&m.user) {
                change = change.add(attr::UNREAD, n(more));
                // Whether they had anything unread decides their count of threads with unread
                // messages, and their mute whether the thread's share of their totals moves:
                // both must still be so.
                cond = if m.unread == 0 { cond.eq(attr::UNREAD, n(0)) } else { cond.gt(attr::UNREAD, n(0)) };
                cond = cond.and(mute_as_read(m));
                let mentions = mentions_of.get(&m.user).copied().unwrap_or(0);
                if mentions > 0 {
                    change = change.add(attr::UNREAD_MENTIONS, n(mentions));
                }
                totals = Totals { mentions: mentions as i64, ..Totals::unread(*more as i64, m.unread) };
            }
            if k > 0 && returning.contains(&&m.user) {
                change = change.remove(attr::ARCHIVED).set(attr::GSI1PK, s(keys::user_pk(&m.user)));
                cond = cond.and(archived_as_read(m));
                if !unread.contains_key(&m.user) {
                    cond = cond.and(mute_as_read(m));
                }
                totals.archived = -1;
            }
            if totals != Totals::default() {
                add_to_member_counters(&mut tx, m, totals, now);
            }
            tx.update(
                Step::Membership,
                key(keys::user_pk(&m.user), keys::membership_sk(thread)),
                change,
                cond,
            );
        }
    }
    let mut own_so_far: HashMap<&UserId, u64> = HashMap::new();
    for (i, (m, message)) in messages.into_iter().enumerate() {
        let seq = message.id.seq;
        let nth = own_so_far.entry(&m.sender).or_default();
        *nth += 1;
        let sender_seq = views[&m.sender].sent + *nth;
        let guard = SendKeyItem {
            pk: m.send_key.clone(),
            sk: keys::SEND_KEY.to_owned(),
            seq: seq.0,
            text_hash: m.text_hash.clone(),
            expires_at: message.created.unix() + m.send_key_ttl,
            request: m.request.clone(),
        };
        tx.put(Step::SendKey, encode(&guard)?, Cond::new().missing(attr::PK));
        tx.put(
            Step::Message,
            encode(&MessageItem::new(&message, sender_seq))?,
            Cond::new().missing(attr::PK),
        );
        log_entry(&mut tx, thread, Version(t.version.0 + i as u64 + 1), seq)?;
        for u in message.mentions.iter().filter(|u| **u != message.sender) {
            tx.put(Step::Mention, encode(&MentionItem::new(thread, u, seq))?, Cond::new());
        }
        tx.delete(Step::Pending, key(&m.pk, &m.sk), message_as_read(m));
        batch.appended.push(Appended { queued: m.sk.clone(), request: m.request.clone(), message });
    }
    // One update per message the batch changes (DynamoDB takes one action per item): its new
    // reactions, and the replies it gets.
    let replies_of = |seq: Seq| answered.iter().find(|(s, _)| *s == seq).map(|(_, r)| r.clone());
    for (j, (seq, target)) in targets.iter().enumerate() {
        let mut change = match target.message.reactions.is_empty() {
            true => Change::new().remove(attr::REACTIONS),
            false => Change::new()
                .set(attr::REACTIONS, serde_dynamo::to_attribute_value(&target.message.reactions)?),
        };
        let mut also = Cond::new();
        if let Some(replies) = replies_of(*seq) {
            change = change.add(attr::REPLIES, number_set(&replies));
            also = text_as_read(&read.targets[seq]);
        }
        let as_read = match target.before.is_empty() {
            true => Cond::new().missing(attr::REACTIONS),
            false => Cond::new().eq(attr::REACTIONS, serde_dynamo::to_attribute_value(&target.before)?),
        };
        tx.update(
            Step::Message,
            key(keys::thread_pk(thread), keys::message_sk(*seq)),
            change,
            Cond::new().exists(attr::PK).missing(attr::DELETED).and(as_read).and(also),
        );
        log_entry(&mut tx, thread, Version(t.version.0 + k + j as u64 + 1), *seq)?;
    }
    for (seq, replies) in answered.iter().filter(|(s, _)| !targets.iter().any(|(t, _)| t == s)) {
        // Still there and as read (an edit since would not know this reply, whose preview
        // would keep the old text), or the append reads again.
        tx.update(
            Step::Message,
            key(keys::thread_pk(thread), keys::message_sk(*seq)),
            Change::new().add(attr::REPLIES, number_set(replies)),
            Cond::new().exists(attr::PK).missing(attr::DELETED).and(text_as_read(&read.targets[seq])),
        );
    }
    for r in &reactions_taken {
        tx.delete(Step::Pending, key(&r.pk, &r.sk), reaction_as_read(r));
        let seq = Seq(r.seq);
        let message = match targets.iter().find(|(s, _)| *s == seq) {
            Some((_, target)) => target.message.clone(),
            None => clone_message(&read.targets[&seq]),
        };
        batch.reacted.push(Reacted { request: r.request.clone(), message });
    }
    for (pk, sk, as_read) in dropped {
        tx.delete(Step::Pending, key(pk, sk), as_read);
    }
    Ok((tx, batch))
}

/// The messages a batch answers that no reaction of it changes: one update each.
fn outside(answered: &[(Seq, Vec<u64>)], targets: &[(Seq, Target)]) -> usize {
    answered.iter().filter(|(s, _)| !targets.iter().any(|(t, _)| t == s)).count()
}

/// The condition that a message's text is as read: not edited since.
fn text_as_read(item: &MessageItem) -> Cond {
    match item.edited {
        Some(at) => Cond::new().eq(attr::EDITED, s(at.to_string())),
        None => Cond::new().missing(attr::EDITED),
    }
}

/// The condition that a queued message is still the one read: a request with the same
/// `client_id` may have queued it again meanwhile.
fn message_as_read(m: &PendingItem) -> Cond {
    Cond::new().exists(attr::PK).eq(attr::TEXT_HASH, s(&m.text_hash)).eq(attr::REQUEST, s(&m.request))
}

/// The condition that a queued reaction is still the one read: the same user may have queued
/// the other way meanwhile.
fn reaction_as_read(r: &QueuedReaction) -> Cond {
    Cond::new().exists(attr::PK).eq(attr::REQUEST, s(&r.request))
}

fn clone_message(item: &MessageItem) -> Message {
    Message {
        id: MessageId { thread: item.thread.clone(), seq: Seq(item.seq) },
        thread: item.thread.clone(),
        sender: item.sender.clone(),
        text: item.text.clone(),
        created: item.created,
        edited: item.edited,
        reactions: item.reactions.clone(),
        reply_to: item.reply_to.clone(),
        mentions: item.mentions.clone(),
    }
}

/// A number set of message places, for `ADD`/`DELETE` on a message's replies.
pub(crate) fn number_set(seqs: &[u64]) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::Ns(seqs.iter().map(u64::to_string).collect())
}

impl Store {
    /// Queues a message to be appended, unless its send key was used: `false` then.
    pub(crate) async fn queue_message(&self, pending: &PendingItem) -> Result<bool, StoreError> {
        let mut tx = Tx::default();
        tx.check(Step::SendKey, key(&pending.send_key, keys::SEND_KEY), Cond::new().missing(attr::PK));
        // Unconditional: two requests with one `client_id` wait as one message.
        tx.put(Step::Pending, encode(pending)?, Cond::new());
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(f) if f.failed(Step::SendKey) => Ok(false),
            Err(f) => Err(f.into()),
        }
    }

    /// Queues a reaction; the same user's change of the same emoji on the same message queued
    /// earlier and not yet applied is replaced (the last word counts).
    pub(crate) async fn queue_reaction(&self, queued: &QueuedReaction) -> Result<(), StoreError> {
        self.put_item(encode(queued)?, &Cond::new()).send().await.map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Takes a change out of the queue (its writer is no longer in the thread, or its message
    /// is gone).
    pub(crate) async fn unqueue(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The changes waiting in a thread's queue (one strongly consistent query).
    pub(crate) async fn waiting(&self, thread: &ThreadId) -> Result<Vec<Queued>, StoreError> {
        let q = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::thread_pk(thread)))
            .expression_attribute_values(":prefix", s(keys::PENDING_PREFIX))
            .consistent_read(true);
        self.query_items(q, None).await?.into_iter().map(Queued::from_item).collect()
    }

    /// The messages the queue's reactions are for, those in `known` aside: one batch read
    /// (none when no reaction waits for another message).
    pub(crate) async fn targets(
        &self,
        thread: &ThreadId,
        waiting: &[Queued],
        mut known: HashMap<Seq, MessageItem>,
    ) -> Result<HashMap<Seq, MessageItem>, StoreError> {
        let mut wanted: Vec<Seq> =
            waiting.iter().filter_map(Queued::target).filter(|s| !known.contains_key(s)).collect();
        wanted.sort_unstable_by_key(|s| s.0);
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(known);
        }
        for chunk in wanted.chunks(100) {
            let keys = chunk.iter().map(|seq| key(keys::thread_pk(thread), keys::message_sk(*seq))).collect();
            for item in self.batch_get(keys).await? {
                let item: MessageItem = decode(item)?;
                known.insert(Seq(item.seq), item);
            }
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Thread;
    use crate::domain::testing::id;

    fn msg(seq: u64) -> Message {
        crate::domain::testing::message(seq, "a")
    }

    fn view(user: &str, unread: u64) -> Membership {
        let thread = Thread {
            message_count: 7,
            deleted_count: 2,
            version: Version(11),
            last_message: Some(msg(7)),
            ..crate::domain::testing::thread(&["a", "b", "c"])
        };
        crate::domain::testing::member(thread, user, unread, 5, 3)
    }

    fn append_read(messages: &[PendingItem], reactions: &[QueuedReaction]) -> AppendRead {
        let mut waiting: Vec<Queued> = messages.iter().cloned().map(Queued::Message).collect();
        waiting.extend(reactions.iter().cloned().map(Queued::Reaction));
        let target = |seq: u64| (Seq(seq), MessageItem::new(&msg(seq), 1));
        AppendRead { views: read(), waiting, targets: HashMap::from([target(6), target(7)]) }
    }

    fn reaction(user: &str, seq: u64, emoji: &str, on: bool, at: &str) -> QueuedReaction {
        let emoji: crate::domain::reaction::Emoji = emoji.parse().unwrap();
        QueuedReaction {
            pk: "THREAD#t1".into(),
            sk: keys::queued_reaction_sk(Seq(seq), emoji.as_str(), &id(user)),
            user: id(user),
            seq,
            emoji,
            on,
            request: format!("r{user}{seq}{on}"),
            queued_at: at.parse().unwrap(),
            expires_at: 0,
        }
    }

    fn queued(sender: &str, n: u64, at: &str) -> PendingItem {
        PendingItem {
            pk: "THREAD#t1".into(),
            sk: format!("PEND#{sender}-{n}"),
            sender: id(sender),
            text: format!("{sender} {n}"),
            text_hash: format!("h{sender}{n}"),
            reply_to: None,
            mentions: Vec::new(),
            send_key: format!("SEND#{sender}-{n}"),
            send_key_ttl: 3600,
            request: format!("r{sender}{n}"),
            queued_at: at.parse().unwrap(),
            expires_at: 0,
        }
    }

    fn read() -> SendRead {
        SendRead {
            mine: view("a", 0),
            others: HashMap::from([(id("b"), view("b", 0)), (id("c"), view("c", 4))]),
        }
    }

    const NOW: &str = "2026-01-02T03:04:10Z";

    #[test]
    fn an_append_takes_the_queue_in_order_after_the_thread_as_read() {
        let waiting = [queued("b", 1, "2026-01-02T03:04:09Z"), queued("a", 1, "2026-01-02T03:04:08Z")];
        let (tx, batch) = plan_append(&append_read(&waiting, &[]), NOW.parse().unwrap()).unwrap();
        let appended = batch.appended;
        let placed: Vec<(&str, u64)> =
            appended.iter().map(|a| (a.message.text.as_str(), a.message.id.seq.0)).collect();
        assert_eq!(placed, [("a 1", 8), ("b 1", 9)], "oldest first, after the 7 there were");
        let thread = tx.of(Step::Thread).next().unwrap();
        assert_eq!(thread.cond.to_string(), "message_count = 7 AND size(participants) = 3 AND version = 11");
        let moved = thread.change().unwrap().to_string();
        assert!(moved.contains("message_count = 9") && moved.contains("version = 13"), "{moved}");
        let views: Vec<(String, String, String)> = tx
            .of(Step::Membership)
            .map(|a| (a.pk().to_owned(), a.cond.to_string(), a.change().unwrap().to_string()))
            .collect();
        assert_eq!(views[0].1, "message_count = 7 AND unread = 0 AND attribute_not_exists(muted_until)");
        assert!(
            views[0].2.ends_with("ADD sent 1, unread 1"),
            "a sent one and has b's unread: {}",
            views[0].2
        );
        assert_eq!(views[2].1, "message_count = 7 AND unread > 0 AND attribute_not_exists(muted_until)");
        assert!(views[2].2.ends_with("ADD unread 2"), "{}", views[2].2);
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(counters.len(), 3);
        assert!(counters.contains(&"ADD thread_count 0, unread_total 2, unread_threads 0".to_owned()));
        assert_eq!(tx.of(Step::SendKey).count(), 2);
        assert_eq!(tx.of(Step::ChangeLog).count(), 2);
        let queue: Vec<String> = tx.of(Step::Pending).map(|a| a.cond.to_string()).collect();
        assert_eq!(
            queue,
            [
                "attribute_exists(PK) AND text_hash = \"ha1\" AND request = \"ra1\"",
                "attribute_exists(PK) AND text_hash = \"hb1\" AND request = \"rb1\""
            ]
        );
    }

    #[test]
    fn an_append_drops_what_is_too_old_or_from_outside_and_stops_when_full() {
        let mut waiting =
            vec![queued("x", 1, "2026-01-02T03:04:05Z"), queued("b", 1, "2026-01-02T03:03:30Z")];
        for i in 0..40 {
            waiting.push(queued("c", i, "2026-01-02T03:04:09Z"));
        }
        let (tx, batch) = plan_append(&append_read(&waiting, &[]), NOW.parse().unwrap()).unwrap();
        let appended = batch.appended;
        assert!(tx.len() <= super::super::tx::MAX_ACTIONS, "{}", tx.len());
        assert_eq!(
            appended.len(),
            (100 - 1 - 3 - 2 - 2) / 4,
            "as many as fit beside the thread, views and drops"
        );
        assert!(appended.iter().all(|a| a.message.sender == id("c")));
        let dropped = tx.of(Step::Pending).count() - appended.len();
        assert_eq!(dropped, 2, "x is not in the thread, b's waited too long");
        assert_eq!(tx.of(Step::Counters).count(), 2, "only a and b get unread messages");
        let own: Vec<u64> = tx
            .of(Step::Message)
            .map(|a| match &a.write {
                super::super::tx::Write::Put(item) => decode::<MessageItem>(item.clone()).unwrap().sender_seq,
                _ => 0,
            })
            .collect();
        assert_eq!(own[..3], [4, 5, 6], "each sender's count goes on from their own");
    }

    #[test]
    fn reactions_in_a_batch_change_their_message_once_and_move_no_count() {
        let at = "2026-01-02T03:04:09Z";
        let reactions = [
            reaction("b", 7, "👍", true, at),
            reaction("c", 7, "👍", true, at),
            reaction("c", 6, "🎉", true, at),
            reaction("c", 6, "🎉", false, "2026-01-02T03:04:09.5Z"),
            reaction("a", 99, "👍", true, at),
        ];
        let (tx, batch) = plan_append(&append_read(&[], &reactions), NOW.parse().unwrap()).unwrap();
        assert_eq!(batch.reacted.len(), 4, "the one for a message that is not there is dropped");
        let seven = &batch.reacted.iter().find(|r| r.request == "rc7true").unwrap().message;
        assert_eq!(seven.reactions[0].users, [id("b"), id("c")]);
        // Message 6 got 🎉 and lost it again: its reactions are as they were, so it is no change.
        let changed: Vec<&str> = tx.of(Step::Message).map(|a| a.pk()).collect();
        assert_eq!(changed.len(), 1, "one update, of message 7");
        assert_eq!(tx.of(Step::ChangeLog).count(), 1);
        let meta = tx.of(Step::Thread).next().unwrap().change().unwrap().to_string();
        assert!(meta.contains("version = 12") && !meta.contains("message_count"), "{meta}");
        assert!(meta.contains("last_message"), "7 is the thread's last: it shows its reactions");
        assert_eq!(tx.of(Step::Counters).count(), 0, "reactions change no unread count");
        assert_eq!(tx.of(Step::Pending).count(), 5, "every queue entry read goes");
    }

    #[test]
    fn a_reaction_over_the_emoji_limit_is_refused_in_the_batch() {
        let mut read = append_read(&[], &[reaction("b", 6, "🤔", true, "2026-01-02T03:04:09Z")]);
        let full: Vec<crate::domain::reaction::Reaction> = crate::domain::testing::EMOJI
            .iter()
            .take(crate::domain::reaction::MAX_EMOJIS)
            .map(|e| crate::domain::reaction::Reaction {
                emoji: e.parse().unwrap(),
                users: vec![id("a")],
                me: None,
            })
            .collect();
        read.targets.get_mut(&Seq(6)).unwrap().reactions = full;
        let (tx, batch) = plan_append(&read, NOW.parse().unwrap()).unwrap();
        assert_eq!(batch.refused.len(), 1);
        assert!(batch.reacted.is_empty());
        assert_eq!(tx.len(), 1, "only the queue entry goes");
    }

    #[test]
    fn mentions_count_for_the_mentioned_and_an_outsider_is_refused() {
        let at = "2026-01-02T03:04:09Z";
        let mut to_b_and_c = queued("a", 1, at);
        to_b_and_c.mentions = vec![id("b"), id("c"), id("a")];
        let mut to_x = queued("b", 1, at);
        to_x.mentions = vec![id("x")];
        let (tx, batch) = plan_append(&append_read(&[to_b_and_c, to_x], &[]), NOW.parse().unwrap()).unwrap();
        assert_eq!(batch.appended.len(), 1);
        assert_eq!(batch.appended[0].message.mentions, [id("b"), id("c"), id("a")]);
        assert_eq!(batch.refusal("rb1"), Some(Refused::MentionsOutsider), "x is not in the thread");
        let items: Vec<&str> = tx.of(Step::Mention).map(|a| a.sk()).collect();
        assert_eq!(
            items,
            ["MENTION#b#00000000000000000008", "MENTION#c#00000000000000000008"],
            "one item per member mentioned, none for the sender"
        );
        let views: Vec<(String, String)> =
            tx.of(Step::Membership).map(|a| (a.pk().to_owned(), a.change().unwrap().to_string())).collect();
        assert!(!views[0].1.contains("unread_mentions"), "a mentioned themself: {}", views[0].1);
        assert!(views[1].1.ends_with("ADD unread 1, unread_mentions 1"), "{}", views[1].1);
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert!(
            counters.contains(&"ADD thread_count 0, unread_total 1, unread_threads 0, mentions 1".to_owned())
        );
        assert!(
            counters.contains(&"ADD thread_count 0, unread_total 1, unread_threads 1, mentions 1".to_owned())
        );
    }

    #[test]
    fn a_batch_with_mentions_stays_within_one_transaction() {
        // 32 members: the thread, 32 views and 31 counters leave room for one message that
        // mentions all 31 others (4 actions and 31 mention items), not two.
        let people: Vec<String> = (0..32).map(|i| format!("u{i}")).collect();
        let names: Vec<&str> = people.iter().map(String::as_str).collect();
        let thread =
            Thread { message_count: 7, version: Version(11), ..crate::domain::testing::thread(&names) };
        let view = |u: &str| Membership {
            thread: thread.clone(),
            user: id(u),
            unread: 0,
            read_seq: Seq(7),
            sent: 0,
            unread_mentions: 0,
            mute: Default::default(),
            archived: false,
        };
        let others: HashMap<UserId, Membership> = names[1..].iter().map(|u| (id(u), view(u))).collect();
        let everyone: Vec<UserId> = names[1..].iter().map(|u| id(u)).collect();
        let waiting: Vec<Queued> = (0..3)
            .map(|i| {
                let mut m = queued("u0", i, "2026-01-02T03:04:09Z");
                m.mentions = everyone.clone();
                Queued::Message(m)
            })
            .collect();
        let read =
            AppendRead { views: SendRead { mine: view("u0"), others }, waiting, targets: HashMap::new() };
        let (tx, batch) = plan_append(&read, NOW.parse().unwrap()).unwrap();
        assert_eq!(batch.appended.len(), 1);
        assert_eq!(tx.len(), 1 + 32 + 31 + 4 + 31);
    }

    #[test]
    fn a_muted_members_share_moves_and_an_archived_view_comes_back_unless_muted() {
        let until: Timestamp = "2026-01-02T05:00:00Z".parse().unwrap();
        let mut read = append_read(&[queued("a", 1, "2026-01-02T03:04:09Z")], &[]);
        // b muted the thread for a while and archived it; c archived it without muting.
        let b = read.views.others.get_mut(&id("b")).unwrap();
        b.mute = crate::domain::model::Mute::Until(until);
        b.archived = true;
        read.views.others.get_mut(&id("c")).unwrap().archived = true;
        let (tx, _) = plan_append(&read, NOW.parse().unwrap()).unwrap();
        let views: HashMap<String, (String, String)> = tx
            .of(Step::Membership)
            .map(|a| (a.pk().to_owned(), (a.change().unwrap().to_string(), a.cond.to_string())))
            .collect();
        assert!(!views["USER#b"].0.contains("GSI1PK"), "muted, b's view stays archived");
        assert!(
            views["USER#b"].1.contains("muted_until = \"2026-01-02T05:00:00.000000Z\""),
            "{}",
            views["USER#b"].1
        );
        assert!(views["USER#c"].0.contains("GSI1PK = \"USER#c\""), "{}", views["USER#c"].0);
        assert!(views["USER#c"].0.contains("REMOVE archived"), "{}", views["USER#c"].0);
        assert!(views["USER#c"].1.contains("archived = true"), "{}", views["USER#c"].1);
        let counters: HashMap<String, String> =
            tx.of(Step::Counters).map(|a| (a.pk().to_owned(), a.change().unwrap().to_string())).collect();
        assert_eq!(
            counters["USER#b"],
            "ADD thread_count 0, unread_total 1, unread_threads 1, muted_unread#t1 1, muted_threads#t1 1"
        );
        assert_eq!(
            counters["USER#c"],
            "ADD thread_count 0, unread_total 1, unread_threads 0, archived_threads -1"
        );
    }
}
