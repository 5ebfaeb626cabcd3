//! Editing and deleting messages.
//!
//! Both serialise with sends and with each other on the thread's metadata: every transaction
//! that changes a message checks the thread's `version` (and `message_count`,
//! `deleted_count`) there and moves it on, so a concurrent change makes it re-read and try
//! again, and the change log entry it writes under that version is in commit order. A deleted
//! message stays as a tombstone (no text, `deleted` set, listed under GSI1's
//! `keys::deleted_index_pk`) so that ids and sender counts never move and read markers can
//! count the deletions after them.

use std::collections::HashMap;

use super::changelog::log_entry;
use super::expr::{Change, Cond};
use super::items::{DeletedEntry, MentionItem, MessageItem, attr, decode, encode};
use super::retry::{Next, Why, retrying};
use super::threads::{Totals, WriteError, add_to_member_counters, mute_as_read};
use super::tx::{MAX_ACTIONS, Step, Tx};
use super::{Store, StoreError, key, keys, n, s, table};
use crate::domain::ids::{MessageId, Seq, ThreadId, UserId};
use crate::domain::model::ReplyPreview;
use crate::domain::model::{Membership, Message, Thread};
use crate::domain::rules::{self, Actor, Refusal};
use crate::domain::timestamp::Timestamp;

/// The thread's metadata unchanged since it was read: the same messages, deletions,
/// participants and version.
fn thread_as_read(t: &Thread) -> Cond {
    Cond::new()
        .eq(attr::MESSAGE_COUNT, n(t.message_count))
        .size_is(attr::PARTICIPANTS, t.participants.len())
        .number_is(attr::DELETED_COUNT, t.deleted_count)
        .number_is(attr::VERSION, t.version.0)
}

/// Who an edit mentions anew and no longer, besides the sender (who never has their own
/// message unread), with the views of those in the thread.
#[derive(Debug, Default)]
pub(crate) struct MentionEdit {
    /// Mentioned now, not before.
    pub added: Vec<UserId>,
    /// Mentioned before, not now.
    pub removed: Vec<UserId>,
    /// The members' views (at least those added or removed who are in the thread).
    pub views: HashMap<UserId, Membership>,
}

impl MentionEdit {
    /// The change from `before` to `after` for a message of `sender`.
    pub fn between(
        before: &[UserId],
        after: &[UserId],
        sender: &UserId,
        views: HashMap<UserId, Membership>,
    ) -> Self {
        let others = |a: &[UserId], b: &[UserId]| -> Vec<UserId> {
            a.iter().filter(|u| *u != sender && !b.contains(u)).cloned().collect()
        };
        Self { added: others(after, before), removed: others(before, after), views }
    }
}

/// The transaction of an edit, as read (the editor's view of the thread): the message's new
/// text and mentions; see [`plan_message_change`]. Each member mentioned anew gets a mention
/// item and, if they had not read the message, one unread mention more; each no longer
/// mentioned loses them.
pub(crate) fn plan_edit(
    t: &Thread,
    edited: &Message,
    replies: &[u64],
    mentions: &MentionEdit,
) -> Result<(Tx, Vec<u64>), StoreError> {
    let edited_at = edited.edited.ok_or_else(|| StoreError::Corrupt("an edit without its time".into()))?;
    let mut text = Change::new().set(attr::TEXT, s(&edited.text)).set(attr::EDITED, s(edited_at.to_string()));
    text = match edited.mentions.is_empty() {
        true => text.remove(attr::MENTIONS),
        false => text.set(attr::MENTIONS, serde_dynamo::to_attribute_value(&edited.mentions)?),
    };
    let mut tx = plan_message_change(t, edited, text, replies_as_read(replies), mentions)?;
    let rest = show_in_replies(&mut tx, &t.id, &ReplyPreview::of(edited), replies)?;
    Ok((tx, rest))
}

/// Adds to `tx` the update of each reply's preview of the message it answers, as many as the
/// transaction holds; the places of those it does not hold are returned, for updates after it.
/// A reply deleted since (a tombstone) takes the update harmlessly.
fn show_in_replies(
    tx: &mut Tx,
    thread: &ThreadId,
    preview: &ReplyPreview,
    replies: &[u64],
) -> Result<Vec<u64>, StoreError> {
    let room = MAX_ACTIONS.saturating_sub(tx.len());
    let value: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(preview)?;
    for reply in replies.iter().take(room) {
        tx.update(
            Step::Reply,
            key(keys::thread_pk(thread), keys::message_sk(Seq(*reply))),
            Change::new().set(attr::REPLY_TO, value.clone()),
            Cond::new().exists(attr::PK),
        );
    }
    Ok(replies.iter().skip(room).copied().collect())
}

/// The condition that a message's replies are those read: a reply appended since would keep
/// a preview that the change does not update, so the change reads again.
fn replies_as_read(replies: &[u64]) -> Cond {
    match replies.is_empty() {
        true => Cond::new().missing(attr::REPLIES),
        false => Cond::new().eq(attr::REPLIES, super::append::number_set(replies)),
    }
}

/// The thread's last message with its preview of `answered` as `preview`, when the last message
/// is a reply to it: the last message as the thread and every view show it must change too.
fn last_answering(t: &Thread, answered: &MessageId, preview: ReplyPreview) -> Option<Message> {
    let last = t.last_message.as_ref()?;
    if last.reply_to.as_ref().is_none_or(|r| &r.id != answered) {
        return None;
    }
    Some(Message { reply_to: Some(preview), ..last.clone() })
}

/// The transaction of a change to a message that is not a delete, as read: the message
/// changed by `change` (if it still exists, is not deleted and `also` holds), the change log
/// entry, and the version moved on the thread and every membership (where the message list
/// reads it), with the message as it is now as `last_message` where it is the last one. The
/// thread's activity and everyone's unread counts stay as they are.
fn plan_message_change(
    t: &Thread,
    after: &Message,
    change: Change,
    also: Cond,
    mentions: &MentionEdit,
) -> Result<Tx, StoreError> {
    let thread = &t.id;
    let seq = after.id.seq;
    // The edit's own time: whether a member has the thread muted is judged then.
    let now = after.edited.unwrap_or(after.created);
    let version = t.version.next();
    let is_last = t.last_message.as_ref().is_some_and(|m| m.id.seq == seq);
    let mut moved = Change::new().set(attr::VERSION, n(version.0));
    if is_last {
        moved = moved.set(attr::LAST_MESSAGE, serde_dynamo::to_attribute_value(after)?);
    } else if let Some(last) = last_answering(t, &after.id, ReplyPreview::of(after)) {
        moved = moved.set(attr::LAST_MESSAGE, serde_dynamo::to_attribute_value(&last)?);
    }
    let mut tx = Tx::default();
    tx.update(
        Step::Message,
        key(keys::thread_pk(thread), keys::message_sk(seq)),
        change,
        Cond::new().exists(attr::PK).missing(attr::DELETED).and(also),
    );
    log_entry(&mut tx, thread, version, seq)?;
    tx.update(Step::Thread, key(keys::thread_pk(thread), keys::META), moved.clone(), thread_as_read(t));
    for u in &mentions.added {
        tx.put(Step::Mention, encode(&MentionItem::new(thread, u, seq))?, Cond::new());
    }
    for u in &mentions.removed {
        tx.delete(Step::Mention, key(keys::thread_pk(thread), keys::mention_sk(u, seq)), Cond::new());
    }
    for p in &t.participants {
        let by: i64 = match (mentions.added.contains(p), mentions.removed.contains(p)) {
            (true, _) => 1,
            (_, true) => -1,
            _ => 0,
        };
        let view = mentions.views.get(p);
        if by != 0 && view.is_none() {
            return Err(StoreError::Corrupt(format!(
                "an edit in {thread} changes mentions of an unread view"
            )));
        }
        match view.filter(|v| by != 0 && v.read_seq < seq) {
            Some(v) => {
                // They have not read it: their unread mentions move, from what was read.
                tx.update(
                    Step::Membership,
                    key(keys::user_pk(p), keys::membership_sk(thread)),
                    moved.clone().add(attr::UNREAD_MENTIONS, n(by)),
                    Cond::new()
                        .eq(attr::READ_SEQ, n(v.read_seq.0))
                        .number_is(attr::UNREAD_MENTIONS, v.unread_mentions)
                        .and(mute_as_read(v)),
                );
                add_to_member_counters(&mut tx, v, Totals { mentions: by, ..Totals::default() }, now);
            }
            None => tx.update(
                Step::Membership,
                key(keys::user_pk(p), keys::membership_sk(thread)),
                moved.clone(),
                Cond::new().exists(attr::PK),
            ),
        }
    }
    Ok(tx)
}

/// What a message's delete reads before it writes.
pub(crate) struct DeleteMessageRead {
    /// Every member's view, the deleter's included.
    pub members: HashMap<UserId, Membership>,
    /// The thread, as the deleter's view shows it.
    pub thread: Thread,
    /// The message.
    pub item: MessageItem,
    /// The newest message before it still there, when it is the thread's last.
    pub fallback: Option<Message>,
}

/// The transaction of a message's delete, as read: the tombstone, the change log entry, the
/// deletion counted on the thread and every membership, one unread less for each member who
/// had not read it, and `last_message` falling back to the message before it (checked still as
/// read) when it was the last.
pub(crate) fn plan_delete_message(
    read: &DeleteMessageRead,
    now: Timestamp,
) -> Result<(Tx, Vec<u64>), StoreError> {
    let t = &read.thread;
    let thread = &t.id;
    let seq = Seq(read.item.seq);
    let version = t.version.next();
    let is_last = t.last_message.as_ref().is_some_and(|m| m.id.seq == seq);
    let gone = ReplyPreview::deleted(MessageId { thread: thread.clone(), seq }, read.item.sender.clone());
    // Tombstone, thread, memberships: each counts the deletion and, if it was the last
    // message, shows the one before it.
    let counted = || {
        let change = Change::new().add(attr::DELETED_COUNT, n(1)).set(attr::VERSION, n(version.0));
        match (is_last, &read.fallback) {
            (false, _) => match last_answering(t, &MessageId { thread: thread.clone(), seq }, gone.clone()) {
                Some(last) => Ok(change.set(attr::LAST_MESSAGE, serde_dynamo::to_attribute_value(&last)?)),
                None => Ok(change),
            },
            (true, Some(previous)) => {
                Ok(change.set(attr::LAST_MESSAGE, serde_dynamo::to_attribute_value(previous)?))
            }
            (true, None) => Ok::<_, StoreError>(change.remove(attr::LAST_MESSAGE)),
        }
    };
    let mut tx = Tx::default();
    tx.update(
        Step::Message,
        key(keys::thread_pk(thread), keys::message_sk(seq)),
        Change::new()
            .set(attr::DELETED, s(now.to_string()))
            .set(attr::GSI1PK, s(keys::deleted_index_pk(thread)))
            .set(attr::GSI1SK, s(seq.padded()))
            .remove(attr::TEXT)
            .remove(attr::EDITED)
            .remove(attr::REACTIONS)
            .remove(attr::REPLY_TO)
            .remove(attr::MENTIONS),
        Cond::new().exists(attr::PK).missing(attr::DELETED).and(replies_as_read(&read.item.replies)),
    );
    log_entry(&mut tx, thread, version, seq)?;
    tx.update(Step::Thread, key(keys::thread_pk(thread), keys::META), counted()?, thread_as_read(t));
    if let Some(previous) = &read.fallback {
        // The message that becomes last must still say what it says now.
        let unchanged = match previous.edited {
            Some(e) => Cond::new().missing(attr::DELETED).eq(attr::EDITED, s(e.to_string())),
            None => Cond::new().missing(attr::DELETED).missing(attr::EDITED),
        };
        tx.check(Step::NewLast, key(keys::thread_pk(thread), keys::message_sk(previous.id.seq)), unchanged);
    }
    let mut members: Vec<&Membership> = read.members.values().collect();
    members.sort_by(|a, b| a.user.cmp(&b.user));
    for m in members {
        let membership = key(keys::user_pk(&m.user), keys::membership_sk(thread));
        let had_unread = m.user != read.item.sender && m.read_seq < seq;
        if had_unread {
            // A mention of them they had not read goes with it.
            let mentioned = read.item.mentions.contains(&m.user);
            let mut change = counted()?.add(attr::UNREAD, n(-1));
            if mentioned {
                change = change.add(attr::UNREAD_MENTIONS, n(-1));
            }
            tx.update(
                Step::Membership,
                membership,
                change,
                Cond::new()
                    .eq(attr::READ_SEQ, n(m.read_seq.0))
                    .eq(attr::UNREAD, n(m.unread))
                    .number_is(attr::UNREAD_MENTIONS, m.unread_mentions)
                    .and(mute_as_read(m)),
            );
            let totals = Totals { mentions: -i64::from(mentioned), ..Totals::unread(-1, m.unread) };
            add_to_member_counters(&mut tx, m, totals, now);
        } else {
            tx.update(Step::Membership, membership, counted()?, Cond::new().exists(attr::PK));
        }
    }
    // A deleted message mentions no one: read markers count only the mentions still there.
    for u in read.item.mentions.iter().filter(|u| **u != read.item.sender) {
        tx.delete(Step::Mention, key(keys::thread_pk(thread), keys::mention_sk(u, seq)), Cond::new());
    }
    let rest = show_in_replies(&mut tx, thread, &gone, &read.item.replies)?;
    Ok((tx, rest))
}

impl Store {
    /// Changes the text of a message (its sender only), and who it mentions when `mentions` is
    /// given. If it is the thread's last message, the thread and every membership show the new
    /// text too, in the same transaction.
    pub async fn edit_message(
        &self,
        actor: &Actor,
        thread: &ThreadId,
        seq: Seq,
        text: &str,
        mentions: Option<&[UserId]>,
    ) -> Result<Message, WriteError> {
        let editor = actor.user().ok_or(Refusal::NotSender)?;
        retrying("edit", |_| async move {
            // A change of mentions moves the unread mentions of those who had not read the
            // message: every view is read beside the message, as a delete reads them.
            let (views, item) = match mentions {
                Some(_) => {
                    let (found, item) = tokio::try_join!(
                        self.member_and_others(editor, thread),
                        self.message_item(thread, seq, true)
                    )?;
                    (
                        found.map(|(mine, mut others)| {
                            others.insert(editor.clone(), mine);
                            others
                        }),
                        item,
                    )
                }
                None => {
                    let (mine, item) = tokio::try_join!(
                        self.membership(editor, thread),
                        self.message_item(thread, seq, true)
                    )?;
                    (mine.map(|m| HashMap::from([(editor.clone(), m)])), item)
                }
            };
            let (Some(mut views), Some(item)) = (views, item) else { return Err(Refusal::NotFound.into()) };
            let mine = views.get(editor).cloned().ok_or(Refusal::NotFound)?;
            if item.deleted.is_some() {
                return Err(Refusal::NotFound.into());
            }
            rules::may_edit_message(actor, &mine.thread, &item.sender)?;
            let mentions: Vec<UserId> = mentions.map_or_else(|| item.mentions.clone(), <[UserId]>::to_vec);
            rules::may_mention(&mine.thread, &mentions, &item.mentions)?;
            if item.text == text && item.mentions == mentions {
                // A retry of an edit that landed, or no change: nothing to write.
                return Ok(Next::Done(item.into_message()));
            }
            let change =
                MentionEdit::between(&item.mentions, &mentions, &item.sender, std::mem::take(&mut views));
            if change
                .added
                .iter()
                .chain(&change.removed)
                .any(|u| mine.thread.participants.contains(u) && !change.views.contains_key(u))
            {
                // A view missing: a change of participants is under way.
                return Ok(Next::Retry(Why::Unsettled));
            }
            let now = Timestamp::now().max(item.created);
            let replies = item.replies.clone();
            let mut edited = item.into_message();
            edited.text = text.to_owned();
            edited.edited = Some(now);
            edited.mentions = mentions;
            let (tx, rest) = plan_edit(&mine.thread, &edited, &replies, &change)?;
            match self.transact(tx).await {
                Ok(()) => {
                    self.show_in_replies_after(thread, &ReplyPreview::of(&edited), &rest).await;
                    Ok(Next::Done(edited))
                }
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| StoreError::from(f).into()),
            }
        })
        .await
    }

    /// Deletes a message (its sender, or the thread's owner). One transaction leaves a
    /// tombstone, counts it on the thread and every membership, takes it off the unread counts
    /// of the members who had not read it, and falls `last_message` back to the newest message
    /// still there.
    pub async fn delete_message(&self, actor: &Actor, thread: &ThreadId, seq: Seq) -> Result<(), WriteError> {
        let by = actor.user().ok_or(Refusal::NotFound)?;
        retrying("message delete", |_| async move {
            // Every member's view is needed (who had not read the message loses an unread):
            // read beside the message, in one batch when the participants are known here.
            let (found, item) =
                tokio::try_join!(self.member_and_others(by, thread), self.message_item(thread, seq, true))?;
            let (Some((mine, mut members)), Some(item)) = (found, item) else {
                return Err(Refusal::NotFound.into());
            };
            if item.deleted.is_some() {
                return Err(Refusal::NotFound.into());
            }
            rules::may_delete_message(actor, &mine.thread, &item.sender)?;
            let t = mine.thread.clone();
            members.insert(by.clone(), mine);
            if members.len() != t.participants.len() {
                if self.participants_changed(&t).await? {
                    // A delete of the thread or a change of participants is under way.
                    return Ok(Next::Retry(Why::Unsettled));
                }
                return Err(StoreError::Corrupt(format!("thread {thread} lacks a membership")).into());
            }
            let is_last = t.last_message.as_ref().is_some_and(|m| m.id.seq == seq);
            let fallback = match is_last {
                true => self.newest_before(thread, seq).await?.map(MessageItem::into_message),
                false => None,
            };
            let read = DeleteMessageRead { members, thread: t, item, fallback };
            let (tx, rest) = plan_delete_message(&read, Timestamp::now())?;
            match self.transact(tx).await {
                Ok(()) => {
                    let gone = ReplyPreview::deleted(
                        MessageId { thread: thread.clone(), seq },
                        read.item.sender.clone(),
                    );
                    self.show_in_replies_after(thread, &gone, &rest).await;
                    Ok(Next::Done(()))
                }
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| StoreError::from(f).into()),
            }
        })
        .await
    }

    /// Shows `preview` in the replies one transaction did not hold, one update each. Best
    /// effort: a failure is logged, and that reply shows the message as it was until the next
    /// change to it.
    async fn show_in_replies_after(&self, thread: &ThreadId, preview: &ReplyPreview, replies: &[u64]) {
        let Ok(value) =
            serde_dynamo::to_attribute_value::<_, aws_sdk_dynamodb::types::AttributeValue>(preview)
        else {
            return;
        };
        let updates = replies.iter().map(|reply| {
            self.update_item(
                key(keys::thread_pk(thread), keys::message_sk(Seq(*reply))),
                &Change::new().set(attr::REPLY_TO, value.clone()),
                &Cond::new().exists(attr::PK),
            )
            .send()
        });
        for result in futures_util::future::join_all(updates).await {
            if let Err(e) = result {
                tracing::warn!(%thread, error = ?crate::telemetry::ErrorChain(&StoreError::from_sdk(e)), "a reply's preview was not updated");
            }
        }
    }

    /// The newest message before `seq` that is not deleted.
    async fn newest_before(&self, thread: &ThreadId, seq: Seq) -> Result<Option<MessageItem>, StoreError> {
        let q = self
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
            .limit(10);
        self.query_items(q, Some(1)).await?.into_iter().next().map(decode).transpose()
    }

    /// The deleted messages of a thread after `seq`, with their senders (GSI1).
    pub(crate) async fn deleted_after(
        &self,
        thread: &ThreadId,
        seq: Seq,
    ) -> Result<Vec<DeletedEntry>, StoreError> {
        let q = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(table::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK > :s")
            .expression_attribute_values(":pk", s(keys::deleted_index_pk(thread)))
            .expression_attribute_values(":s", s(seq.padded()))
            .projection_expression("#seq, #sender")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_names("#sender", "sender");
        self.query_items(q, None).await?.into_iter().map(decode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Version;

    fn id(s: &str) -> UserId {
        s.parse().unwrap()
    }

    use crate::domain::testing::message;

    fn thread(last: Option<Message>) -> Thread {
        let now = "2026-01-02T03:04:05Z".parse().unwrap();
        Thread {
            id: "t1".parse().unwrap(),
            participants: vec![id("a"), id("b")],
            owner: id("a"),
            created: now,
            updated: now,
            message_count: 3,
            deleted_count: 0,
            last_message: last,
            version: Version(4),
        }
    }

    fn view(t: &Thread, user: &str, unread: u64, read: u64) -> Membership {
        Membership {
            thread: t.clone(),
            user: id(user),
            unread,
            read_seq: Seq(read),
            sent: 1,
            unread_mentions: 0,
            mute: Default::default(),
            archived: false,
        }
    }

    #[test]
    fn an_edit_of_the_last_message_moves_it_everywhere_in_one_version() {
        let mut edited = message(3, "a");
        edited.text = "new".into();
        edited.edited = Some("2026-01-02T03:04:06Z".parse().unwrap());
        let t = thread(Some(message(3, "a")));
        let (tx, _) = plan_edit(&t, &edited, &[], &MentionEdit::default()).unwrap();
        let meta = tx.of(Step::Thread).next().unwrap();
        assert_eq!(
            meta.cond.to_string(),
            "message_count = 3 AND size(participants) = 2 AND (attribute_not_exists(deleted_count) OR deleted_count = 0) AND version = 4"
        );
        assert!(meta.change().unwrap().to_string().starts_with("SET version = 5, last_message = {map}"));
        assert_eq!(tx.of(Step::Membership).count(), 2);
        let mut older = message(2, "a");
        older.edited = edited.edited;
        // Three replies answer it: each shows the new text.
        let (older, rest) =
            plan_edit(&thread(Some(message(3, "a"))), &older, &[4, 5, 6], &MentionEdit::default()).unwrap();
        assert_eq!(older.of(Step::Thread).next().unwrap().change().unwrap().to_string(), "SET version = 5");
        assert_eq!(older.of(Step::Reply).count(), 3);
        assert!(rest.is_empty());
        let (full, rest) = plan_edit(
            &thread(Some(message(3, "a"))),
            &edited,
            &(1..=200).collect::<Vec<_>>(),
            &MentionEdit::default(),
        )
        .unwrap();
        assert_eq!(full.len(), 100, "as many replies as the transaction holds");
        assert_eq!(rest.len(), 200 - (100 - 5), "the rest are shown after it");
    }

    #[test]
    fn a_delete_takes_an_unread_only_from_who_had_not_read_it_and_falls_back() {
        let t = thread(Some(message(3, "a")));
        let item = MessageItem::new(&message(3, "a"), 1);
        let read = DeleteMessageRead {
            members: HashMap::from([(id("a"), view(&t, "a", 0, 3)), (id("b"), view(&t, "b", 2, 1))]),
            thread: t,
            item,
            fallback: Some(message(2, "b")),
        };
        let (tx, _) = plan_delete_message(&read, "2026-01-02T03:04:07Z".parse().unwrap()).unwrap();
        let views: Vec<(String, String)> =
            tx.of(Step::Membership).map(|a| (a.pk().to_owned(), a.cond.to_string())).collect();
        assert_eq!(
            views,
            [
                ("USER#a".into(), "attribute_exists(PK)".into()),
                ("USER#b".into(), "read_seq = 1 AND unread = 2 AND (attribute_not_exists(unread_mentions) OR unread_mentions = 0) AND attribute_not_exists(muted_until)".into())
            ]
        );
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(counters, ["ADD thread_count 0, unread_total -1, unread_threads 0"]);
        let check = tx.of(Step::NewLast).next().unwrap();
        assert_eq!(check.cond.to_string(), "attribute_not_exists(deleted) AND attribute_not_exists(edited)");
        assert!(
            tx.of(Step::Thread)
                .next()
                .unwrap()
                .change()
                .unwrap()
                .to_string()
                .contains("last_message = {map}")
        );
    }

    #[test]
    fn an_edit_moves_the_unread_mentions_of_who_had_not_read_it() {
        // a, b, c; b has read up to 1, c up to 3: message 2 is unread for b only.
        let t = Thread { participants: vec![id("a"), id("b"), id("c")], ..thread(Some(message(3, "a"))) };
        let mut b = view(&t, "b", 2, 1);
        b.unread_mentions = 1;
        let views = HashMap::from([(id("b"), b), (id("c"), view(&t, "c", 0, 3))]);
        // It mentioned b and x (who left since); now it mentions c and a (its sender).
        let mentions = MentionEdit::between(&[id("b"), id("x")], &[id("c"), id("a")], &id("a"), views);
        assert_eq!(
            (mentions.added.clone(), mentions.removed.clone()),
            (vec![id("c")], vec![id("b"), id("x")])
        );
        let mut edited = message(2, "a");
        edited.edited = Some("2026-01-02T03:04:06Z".parse().unwrap());
        edited.mentions = vec![id("c"), id("a")];
        let (tx, _) = plan_edit(&t, &edited, &[], &mentions).unwrap();
        let items: Vec<(&str, bool)> = tx
            .of(Step::Mention)
            .map(|a| (a.sk(), matches!(a.write, super::super::tx::Write::Put(_))))
            .collect();
        assert_eq!(
            items,
            [
                ("MENTION#c#00000000000000000002", true),
                ("MENTION#b#00000000000000000002", false),
                ("MENTION#x#00000000000000000002", false)
            ]
        );
        let views: Vec<(String, String, String)> = tx
            .of(Step::Membership)
            .map(|a| (a.pk().to_owned(), a.change().unwrap().to_string(), a.cond.to_string()))
            .collect();
        assert_eq!(views[1].0, "USER#b");
        assert!(views[1].1.ends_with("ADD unread_mentions -1"), "{}", views[1].1);
        assert_eq!(views[1].2, "read_seq = 1 AND unread_mentions = 1 AND attribute_not_exists(muted_until)");
        assert_eq!(views[2].2, "attribute_exists(PK)", "c had read it: no unread mention");
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(counters, ["ADD thread_count 0, unread_total 0, unread_threads 0, mentions -1"]);
        let message = tx.of(Step::Message).next().unwrap().change().unwrap().to_string();
        assert!(message.contains("mentions = [2 items]"), "{message}");
    }

    #[test]
    fn a_delete_takes_its_mentions_away() {
        let t = thread(Some(message(3, "a")));
        let mut m = message(2, "a");
        m.mentions = vec![id("b"), id("a")];
        let mut b = view(&t, "b", 2, 1);
        b.unread_mentions = 1;
        let read = DeleteMessageRead {
            members: HashMap::from([(id("a"), view(&t, "a", 0, 3)), (id("b"), b)]),
            thread: t,
            item: MessageItem::new(&m, 1),
            fallback: None,
        };
        let (tx, _) = plan_delete_message(&read, "2026-01-02T03:04:07Z".parse().unwrap()).unwrap();
        let items: Vec<&str> = tx.of(Step::Mention).map(|a| a.sk()).collect();
        assert_eq!(items, ["MENTION#b#00000000000000000002"]);
        let b = tx.of(Step::Membership).find(|a| a.pk() == "USER#b").unwrap();
        assert!(
            b.change().unwrap().to_string().ends_with("ADD deleted_count 1, unread -1, unread_mentions -1")
        );
        assert_eq!(
            b.cond.to_string(),
            "read_seq = 1 AND unread = 2 AND unread_mentions = 1 AND attribute_not_exists(muted_until)"
        );
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(counters, ["ADD thread_count 0, unread_total -1, unread_threads 0, mentions -1"]);
    }
}
