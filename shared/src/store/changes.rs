//! What a change to the table means, read from a stream record's key and images. This is the
//! other half of the key design: the fan-out learns here which item kinds make events, without
//! knowing how they are keyed.

use serde::Deserialize;

use super::StoreError;
use super::items::{MessageItem, ThreadItem, UserItem, counters_of};
use super::keys;
use super::views::ViewChangeItem;
use crate::domain::ids::{MessageId, Seq, ThreadId, UserId};
use crate::domain::model::{Counters, Message, Mute, Thread};
use crate::domain::timestamp::Timestamp;

/// What kind of write a stream record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A new item.
    Insert,
    /// A changed item.
    Modify,
    /// A deleted item (by a request or by TTL).
    Remove,
}

impl WriteKind {
    /// From a stream record's `eventName`.
    pub fn parse(event_name: &str) -> Option<Self> {
        match event_name {
            "INSERT" => Some(Self::Insert),
            "MODIFY" => Some(Self::Modify),
            "REMOVE" => Some(Self::Remove),
            _ => None,
        }
    }
}

/// A change clients hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message was sent.
    MessageCreated(Message),
    /// A message's text, reactions or quoted message changed.
    MessageUpdated(Message),
    /// A message was deleted: it stays as a tombstone.
    MessageDeleted {
        /// The message.
        id: MessageId,
        /// Who had sent it.
        sender: UserId,
        /// When it was deleted.
        deleted: Timestamp,
    },
    /// A thread was created.
    ThreadCreated(Thread),
    /// A thread's participants or owner changed.
    ThreadChanged {
        /// As it was.
        before: Box<Thread>,
        /// As it is now.
        after: Box<Thread>,
    },
    /// A thread was deleted.
    ThreadDeleted(Thread),
    /// A member read a thread up to a message.
    ThreadRead {
        /// The thread.
        thread: ThreadId,
        /// The reader.
        user: UserId,
        /// The newest message they have read.
        seq: Seq,
        /// When.
        read_at: Timestamp,
    },
    /// A user's unread totals changed.
    CountersChanged {
        /// The user.
        user: UserId,
        /// The totals now.
        counters: Counters,
    },
    /// A member changed their own view of a thread (mute, archive): their devices hear it.
    ViewChanged {
        /// The member.
        user: UserId,
        /// The thread.
        thread: ThreadId,
        /// Their mute now.
        mute: Mute,
        /// Whether they archived it.
        archived: bool,
    },
    /// A user was deactivated, or their password changed (which revokes their tokens): their
    /// connections must close.
    SignedOut {
        /// The user.
        user: UserId,
    },
}

/// The images a record carries; empty maps where the view type or the write gives none.
pub type Image = serde_dynamo::Item;

#[derive(Deserialize)]
struct Key {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
}

#[derive(Deserialize)]
struct ReadEventImage {
    read_at: Timestamp,
}

fn decode<T: serde::de::DeserializeOwned>(image: &Image) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(image.clone())?)
}

/// What one stream record means to clients, if anything. The table's stream must carry new
/// and old images (`NEW_AND_OLD_IMAGES`).
pub fn change_of(
    kind: WriteKind,
    key: &Image,
    old: &Image,
    new: &Image,
) -> Result<Option<Change>, StoreError> {
    let Key { pk, sk } = decode(key)?;
    if let Some(thread) = keys::parse_thread_pk(&pk) {
        if sk.starts_with(keys::MESSAGE_PREFIX) {
            return message_change(kind, old, new);
        }
        if sk == keys::META {
            return thread_change(kind, old, new);
        }
        if let Some((user, seq)) = keys::parse_read_event_sk(&sk) {
            if kind != WriteKind::Insert {
                return Ok(None);
            }
            let ReadEventImage { read_at } = decode(new)?;
            return Ok(Some(Change::ThreadRead { thread, user, seq, read_at }));
        }
        return Ok(None);
    }
    if sk.starts_with(keys::VIEW_CHANGE_PREFIX) && kind != WriteKind::Remove {
        let record: ViewChangeItem = decode(new)?;
        let (mute, archived) = record.view()?;
        return Ok(Some(Change::ViewChanged { user: record.user, thread: record.thread, mute, archived }));
    }
    if let Some(user) = keys::parse_user_pk(&pk)
        && sk == keys::PROFILE
    {
        return profile_change(kind, user, old, new);
    }
    if let Some(user) = keys::parse_user_pk(&pk)
        && sk == keys::COUNTERS
        && kind != WriteKind::Remove
    {
        let now = counters_of(new.clone())?;
        let before = if old.is_empty() { Counters::default() } else { counters_of(old.clone())? };
        // What the user sees: a change within a muted thread moves no total they see.
        let at = Timestamp::now();
        let changed = now.shown(at) != before.shown(at);
        return Ok(changed.then_some(Change::CountersChanged { user, counters: now }));
    }
    Ok(None)
}

/// A profile that stops being active, or whose token version moves (a password change through
/// `accounts::set_password`; the hash upgrade at a login keeps it), signs its user out. Other
/// changes (staff, admin sessions, the hash upgrade) do not.
fn profile_change(
    kind: WriteKind,
    user: UserId,
    old: &Image,
    new: &Image,
) -> Result<Option<Change>, StoreError> {
    if kind != WriteKind::Modify {
        return Ok(None);
    }
    let (before, after): (UserItem, UserItem) = (decode(old)?, decode(new)?);
    let signed_out = (before.is_active && !after.is_active) || after.token_version != before.token_version;
    Ok(signed_out.then_some(Change::SignedOut { user }))
}

fn message_change(kind: WriteKind, old: &Image, new: &Image) -> Result<Option<Change>, StoreError> {
    match kind {
        // The purge removes messages of deleted threads; `thread.deleted` said it already.
        WriteKind::Remove => Ok(None),
        WriteKind::Insert => {
            let item: MessageItem = decode(new)?;
            Ok(item.deleted.is_none().then(|| Change::MessageCreated(item.into_message())))
        }
        WriteKind::Modify => {
            let after: MessageItem = decode(new)?;
            let before: MessageItem = decode(old)?;
            if let (Some(deleted), None) = (after.deleted, before.deleted) {
                let id = MessageId { thread: after.thread, seq: Seq(after.seq) };
                return Ok(Some(Change::MessageDeleted { id, sender: after.sender, deleted }));
            }
            // A reply's preview of its original changes when the original is edited or deleted,
            // and reactions change without an edit: each is news to clients showing the message.
            let updated = after.deleted.is_none()
                && (after.edited != before.edited
                    || after.text != before.text
                    || after.reactions != before.reactions
                    || after.reply_to != before.reply_to
                    || after.mentions != before.mentions);
            Ok(updated.then(|| Change::MessageUpdated(after.into_message())))
        }
    }
}

fn thread_change(kind: WriteKind, old: &Image, new: &Image) -> Result<Option<Change>, StoreError> {
    Ok(match kind {
        WriteKind::Insert => Some(Change::ThreadCreated(decode::<ThreadItem>(new)?.thread)),
        WriteKind::Remove => Some(Change::ThreadDeleted(decode::<ThreadItem>(old)?.thread)),
        WriteKind::Modify => {
            let after = decode::<ThreadItem>(new)?.thread;
            let before = decode::<ThreadItem>(old)?.thread;
            // Sends and deletes also touch the thread's counts; those have their own events.
            let changed = after.participants != before.participants || after.owner != before.owner;
            changed.then(|| Change::ThreadChanged { before: Box::new(before), after: Box::new(after) })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::items::ReadEventItem;

    fn image<T: serde::Serialize>(item: &T) -> Image {
        serde_dynamo::to_item(item).unwrap()
    }

    fn key_of(item: &Image) -> Image {
        let map: std::collections::HashMap<_, _> = item
            .iter()
            .filter(|(k, _)| *k == "PK" || *k == "SK")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        map.into()
    }

    fn thread() -> Thread {
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        Thread {
            id: "t1".parse().unwrap(),
            participants: vec!["a".parse().unwrap(), "b".parse().unwrap()],
            owner: "a".parse().unwrap(),
            created: now,
            updated: now,
            message_count: 0,
            deleted_count: 0,
            last_message: None,
            version: Default::default(),
        }
    }

    fn message(seq: u64) -> Message {
        Message {
            id: MessageId { thread: "t1".parse().unwrap(), seq: Seq(seq) },
            thread: "t1".parse().unwrap(),
            sender: "a".parse().unwrap(),
            text: "hi".into(),
            created: "2026-01-02T03:04:05Z".parse().unwrap(),
            edited: None,
            reactions: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
        }
    }

    #[test]
    fn messages_created_edited_and_deleted() {
        let empty = Image::default();
        let sent = image(&MessageItem::new(&message(1), 1));
        let key = key_of(&sent);
        assert_eq!(
            change_of(WriteKind::Insert, &key, &empty, &sent).unwrap(),
            Some(Change::MessageCreated(message(1)))
        );
        let mut edited_message = message(1);
        edited_message.text = "hello".into();
        edited_message.edited = Some("2026-01-02T03:04:06Z".parse().unwrap());
        let edited = image(&MessageItem::new(&edited_message, 1));
        assert_eq!(
            change_of(WriteKind::Modify, &key, &sent, &edited).unwrap(),
            Some(Change::MessageUpdated(edited_message))
        );
        let mut tombstone = MessageItem::new(&message(1), 1);
        tombstone.text.clear();
        tombstone.deleted = Some("2026-01-02T03:04:07Z".parse().unwrap());
        let deleted = image(&tombstone);
        assert!(matches!(
            change_of(WriteKind::Modify, &key, &edited, &deleted).unwrap(),
            Some(Change::MessageDeleted { id, .. }) if id.seq == Seq(1)
        ));
        // A tombstone changing again (an index attribute, say) is no news; nor is the purge.
        assert_eq!(change_of(WriteKind::Modify, &key, &deleted, &deleted).unwrap(), None);
        assert_eq!(change_of(WriteKind::Remove, &key, &deleted, &empty).unwrap(), None);
    }

    #[test]
    fn reactions_and_a_changed_quote_update_a_message_without_an_edit() {
        use crate::domain::model::ReplyPreview;
        use crate::domain::reaction::Reaction;
        let sent = image(&MessageItem::new(&message(2), 2));
        let key = key_of(&sent);
        let mut reacted = message(2);
        reacted.reactions =
            vec![Reaction { emoji: "👍".parse().unwrap(), users: vec!["b".parse().unwrap()], me: None }];
        let reacted_item = image(&MessageItem::new(&reacted, 2));
        assert_eq!(
            change_of(WriteKind::Modify, &key, &sent, &reacted_item).unwrap(),
            Some(Change::MessageUpdated(reacted.clone()))
        );
        let mut quoting = reacted.clone();
        let mut original = message(1);
        quoting.reply_to = Some(ReplyPreview::of(&original));
        let quoting_item = image(&MessageItem::new(&quoting, 2));
        original.text = "changed".into();
        let mut requoted = quoting.clone();
        requoted.reply_to = Some(ReplyPreview::of(&original));
        let requoted_item = image(&MessageItem::new(&requoted, 2));
        assert_eq!(
            change_of(WriteKind::Modify, &key, &quoting_item, &requoted_item).unwrap(),
            Some(Change::MessageUpdated(requoted))
        );
        // Nothing a client shows changed: no event.
        assert_eq!(change_of(WriteKind::Modify, &key, &reacted_item, &reacted_item).unwrap(), None);
    }

    #[test]
    fn threads_change_only_with_their_people() {
        let empty = Image::default();
        let before = thread();
        let item = image(&ThreadItem::new(&before, "p".into()));
        let key = key_of(&item);
        assert_eq!(
            change_of(WriteKind::Insert, &key, &empty, &item).unwrap(),
            Some(Change::ThreadCreated(before.clone()))
        );
        let mut busier = before.clone();
        busier.message_count = 5;
        let busier_item = image(&ThreadItem::new(&busier, "p".into()));
        assert_eq!(change_of(WriteKind::Modify, &key, &item, &busier_item).unwrap(), None);
        let mut bigger = busier.clone();
        bigger.participants.push("c".parse().unwrap());
        let bigger_item = image(&ThreadItem::new(&bigger, "q".into()));
        assert_eq!(
            change_of(WriteKind::Modify, &key, &busier_item, &bigger_item).unwrap(),
            Some(Change::ThreadChanged { before: Box::new(busier), after: Box::new(bigger.clone()) })
        );
        assert_eq!(
            change_of(WriteKind::Remove, &key, &bigger_item, &empty).unwrap(),
            Some(Change::ThreadDeleted(bigger))
        );
    }

    #[test]
    fn deactivation_and_password_changes_sign_out_and_nothing_else_does() {
        let empty = Image::default();
        let user = crate::domain::model::User {
            id: "u1".parse().unwrap(),
            username: "alice".into(),
            password_hash: "h1".into(),
            is_active: true,
            is_staff: false,
            token_version: 0,
            date_joined: "2026-01-02T03:04:05Z".parse().unwrap(),
        };
        let profile = |f: &dyn Fn(&mut crate::domain::model::User)| {
            let mut u = user.clone();
            f(&mut u);
            image(&UserItem::new(&u))
        };
        let before = profile(&|_| {});
        let key = key_of(&before);
        let signed_out = Some(Change::SignedOut { user: user.id.clone() });
        let inactive = profile(&|u| u.is_active = false);
        assert_eq!(change_of(WriteKind::Modify, &key, &before, &inactive).unwrap(), signed_out);
        let new_password = profile(&|u| {
            u.password_hash = "h2".into();
            u.token_version = 1;
        });
        assert_eq!(change_of(WriteKind::Modify, &key, &before, &new_password).unwrap(), signed_out);
        for other in [
            profile(&|u| u.is_staff = true),
            // A hash upgraded at a login: the same password.
            profile(&|u| u.password_hash = "h2".into()),
        ] {
            assert_eq!(change_of(WriteKind::Modify, &key, &before, &other).unwrap(), None);
        }
        // Reactivation, creation.
        assert_eq!(change_of(WriteKind::Modify, &key, &inactive, &before).unwrap(), None);
        assert_eq!(change_of(WriteKind::Insert, &key, &empty, &before).unwrap(), None);
    }

    #[test]
    fn reads_and_totals() {
        let empty = Image::default();
        let t: ThreadId = "t1".parse().unwrap();
        let b: UserId = "b".parse().unwrap();
        let at: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let read = image(&ReadEventItem::new(&t, &b, Seq(4), at));
        assert_eq!(
            change_of(WriteKind::Insert, &key_of(&read), &empty, &read).unwrap(),
            Some(Change::ThreadRead { thread: t, user: b.clone(), seq: Seq(4), read_at: at })
        );
        let counters = |unread_total, thread_count| crate::store::items::CountersItem {
            pk: keys::user_pk(&b),
            sk: keys::COUNTERS.into(),
            counters: Counters {
                thread_count,
                unread_total,
                unread_threads: unread_total.min(1),
                ..Counters::default()
            },
        };
        let (zero, one, one_more_thread) =
            (image(&counters(0, 1)), image(&counters(1, 1)), image(&counters(1, 2)));
        let key = key_of(&one);
        assert!(matches!(
            change_of(WriteKind::Modify, &key, &zero, &one).unwrap(),
            Some(Change::CountersChanged { counters, .. }) if counters.unread_total == 1
        ));
        assert!(matches!(
            change_of(WriteKind::Insert, &key, &empty, &one).unwrap(),
            Some(Change::CountersChanged { .. })
        ));
        assert_eq!(change_of(WriteKind::Modify, &key, &one, &one_more_thread).unwrap(), None);
        // Items that make no events.
        let ticket = image(&crate::store::items::UsedTokenItem::new("j", 1));
        assert_eq!(change_of(WriteKind::Insert, &key_of(&ticket), &empty, &ticket).unwrap(), None);
    }
}
