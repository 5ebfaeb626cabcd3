//! Item shapes as stored, one type per item kind of `docs/data-model.md`, and their
//! conversions to domain records. Attribute names used outside these types are the constants
//! in [`attr`]; the round-trip tests below check that each type writes those names.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Item, StoreError, keys};
use crate::domain::ids::{ConnectionId, MessageId, Seq, ThreadId, UserId, Version};
use crate::domain::model::{Counters, Membership, Message, Mute, MutedTotals, ReplyPreview, Thread, User};
use crate::domain::reaction::{Emoji, Reaction};
use crate::domain::timestamp::Timestamp;

/// Attribute names that code outside the item types reads or writes by name (keys, index keys,
/// and the attributes of conditions and update expressions).
pub mod attr {
    /// Partition key.
    pub const PK: &str = "PK";
    /// Sort key.
    pub const SK: &str = "SK";
    /// GSI1 partition key.
    pub const GSI1PK: &str = "GSI1PK";
    /// GSI1 sort key.
    pub const GSI1SK: &str = "GSI1SK";
    /// GSI2 partition key.
    pub const GSI2PK: &str = "GSI2PK";
    /// GSI2 sort key.
    pub const GSI2SK: &str = "GSI2SK";
    /// When DynamoDB may remove the item (seconds since the epoch): the table's TTL attribute.
    pub const EXPIRES_AT: &str = "expires_at";
    /// Whether a user may log in (users are listed for search only when active).
    pub const IS_ACTIVE: &str = "is_active";
    /// When a message was deleted: present only on tombstones.
    pub const DELETED: &str = "deleted";
    /// The holder of a participant-set reservation.
    pub const SET_HOLDER: &str = "thread";
    /// The other threads with a reserved participant set (a string set).
    pub const SET_OTHERS: &str = "others";
    /// The user a ticket is for.
    pub const TICKET_USER: &str = "user";
    /// When a connection last sent a typing notice, or a user's last notice in a thread was
    /// relayed (milliseconds since the epoch).
    pub const TYPING_AT: &str = "typing_at";
    /// A user's token version, on their profile and on the tickets they are issued.
    pub const TOKEN_VERSION: &str = "token_version";
    /// When a counting window ends (seconds since the epoch).
    pub const WINDOW_END: &str = "window_end";
    /// What a counting window has counted.
    pub const COUNT: &str = "count";
    /// A thread's change version, on its metadata and every membership.
    pub const VERSION: &str = "version";
    /// The message a change log entry points to.
    pub const SEQ: &str = "seq";
    /// A thread's (or membership's) participants.
    pub const PARTICIPANTS: &str = "participants";
    /// The hash of a thread's participant set (`threads::participant_set_hash`).
    pub const PSET: &str = "pset";
    /// A thread's owner.
    pub const OWNER: &str = "owner";
    /// Messages ever sent to a thread: the newest message's `seq`.
    pub const MESSAGE_COUNT: &str = "message_count";
    /// Messages of a thread deleted since.
    pub const DELETED_COUNT: &str = "deleted_count";
    /// A thread's last activity.
    pub const UPDATED: &str = "updated";
    /// A thread's newest message that is not deleted.
    pub const LAST_MESSAGE: &str = "last_message";
    /// A member's unread messages in a thread.
    pub const UNREAD: &str = "unread";
    /// A member's read marker.
    pub const READ_SEQ: &str = "read_seq";
    /// How many messages a member has sent in a thread.
    pub const SENT: &str = "sent";
    /// A message's text.
    pub const TEXT: &str = "text";
    /// When a message's text last changed.
    pub const EDITED: &str = "edited";
    /// A message's reactions.
    pub const REACTIONS: &str = "reactions";
    /// A message's preview of the message it answers.
    pub const REPLY_TO: &str = "reply_to";
    /// The places of the replies to a message.
    pub const REPLIES: &str = "replies";
    /// A user's thread count (counters).
    pub const THREAD_COUNT: &str = "thread_count";
    /// A user's unread messages across threads (counters).
    pub const UNREAD_TOTAL: &str = "unread_total";
    /// A user's threads with unread messages (counters).
    pub const UNREAD_THREADS: &str = "unread_threads";
    /// A user's unread mentions across threads (counters).
    pub const MENTIONS: &str = "mentions";
    /// A member's unread messages that mention them.
    pub const UNREAD_MENTIONS: &str = "unread_mentions";
    /// When a member's mute of a thread ends (a timestamp, or `always`).
    pub const MUTED_UNTIL: &str = "muted_until";
    /// Whether a member archived a thread.
    pub const ARCHIVED: &str = "archived";
    /// A user's archived threads (counters).
    pub const ARCHIVED_THREADS: &str = "archived_threads";

    /// The counters' attribute holding what a muted thread holds of one total (`until`: the
    /// mute's end; `unread`, `threads`, `mentions`): one attribute each, at the item's top
    /// level, so that `ADD` creates it and no write depends on a map being there.
    pub fn muted(part: MutedPart, thread: &crate::domain::ids::ThreadId) -> String {
        let part = match part {
            MutedPart::Until => "until",
            MutedPart::Unread => "unread",
            MutedPart::Threads => "threads",
            MutedPart::Mentions => "mentions",
        };
        format!("{MUTED_PREFIX}{part}#{thread}")
    }

    /// The prefix of [`muted`]'s attributes.
    pub const MUTED_PREFIX: &str = "muted_";

    /// One of the totals a muted thread holds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum MutedPart {
        /// The mute's end.
        Until,
        /// Unread messages.
        Unread,
        /// 1 if it has any.
        Threads,
        /// Unread mentions.
        Mentions,
    }
    /// The SHA-256 of a waiting message's text.
    pub const TEXT_HASH: &str = "text_hash";
    /// The request that queued a waiting message.
    pub const REQUEST: &str = "request";
}

/// A user's profile.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UserItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    pub id: UserId,
    pub username: String,
    pub password: String,
    pub is_active: bool,
    pub is_staff: bool,
    #[serde(default)]
    pub token_version: u64,
    /// Bumped to end every admin panel session of the user (logout, password or flag change).
    #[serde(default)]
    pub session_version: u64,
    pub date_joined: Timestamp,
}

impl UserItem {
    pub fn new(user: &User) -> Self {
        Self {
            pk: keys::user_pk(&user.id),
            sk: keys::PROFILE.to_owned(),
            gsi1pk: keys::USERS_INDEX_PK.to_owned(),
            gsi1sk: keys::users_index_sk(&user.username, &user.id),
            id: user.id.clone(),
            username: user.username.clone(),
            password: user.password_hash.clone(),
            is_active: user.is_active,
            is_staff: user.is_staff,
            token_version: user.token_version,
            // Only new profiles are written whole; later changes are updates that keep it.
            session_version: 0,
            date_joined: user.date_joined,
        }
    }

    pub fn into_user(self) -> User {
        User {
            id: self.id,
            username: self.username,
            password_hash: self.password,
            is_active: self.is_active,
            is_staff: self.is_staff,
            token_version: self.token_version,
            date_joined: self.date_joined,
        }
    }
}

/// A message as stored under its thread. A deleted message stays as a tombstone, without its
/// text, so that ids and the sender counts of GSI2 never move; tombstones are also listed in
/// GSI1 under `keys::deleted_index_pk`, which is how read markers count the deletions after them.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MessageItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI2PK")]
    pub gsi2pk: String,
    #[serde(rename = "GSI2SK")]
    pub gsi2sk: String,
    pub thread: ThreadId,
    pub seq: u64,
    pub sender: UserId,
    #[serde(default)]
    pub text: String,
    pub created: Timestamp,
    /// How many messages the sender had sent in this thread, this one included.
    pub sender_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Timestamp>,
    /// Each emoji's reactions, in the order first used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// The message it answers, as that message was at the last change to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyPreview>,
    /// The places of the replies to it (a number set, absent while none), whose previews of
    /// it its edit and delete update.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_dynamo::number_set")]
    pub replies: Vec<u64>,
    /// The participants it mentions, in the order named (absent while none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
}

impl MessageItem {
    pub fn new(message: &Message, sender_seq: u64) -> Self {
        let seq = message.id.seq;
        Self {
            pk: keys::thread_pk(&message.thread),
            sk: keys::message_sk(seq),
            gsi2pk: keys::sender_index_pk(&message.thread, &message.sender),
            gsi2sk: seq.padded(),
            thread: message.thread.clone(),
            seq: seq.0,
            sender: message.sender.clone(),
            text: message.text.clone(),
            created: message.created,
            sender_seq,
            edited: message.edited,
            deleted: None,
            reactions: message.reactions.clone(),
            reply_to: message.reply_to.clone(),
            replies: Vec::new(),
            mentions: message.mentions.clone(),
        }
    }

    pub fn into_message(self) -> Message {
        Message {
            id: MessageId { thread: self.thread.clone(), seq: Seq(self.seq) },
            thread: self.thread,
            sender: self.sender,
            text: self.text,
            created: self.created,
            edited: self.edited,
            reactions: self.reactions,
            reply_to: self.reply_to,
            mentions: self.mentions,
        }
    }
}

/// A thread's metadata item, also listed (by last activity) in one shard of the all-threads index.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ThreadItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    #[serde(flatten)]
    pub thread: Thread,
    /// Hash of the sorted participant ids, the key of the participant-set reservation.
    pub pset: String,
}

impl ThreadItem {
    pub fn new(thread: &Thread, pset: String) -> Self {
        Self {
            pk: keys::thread_pk(&thread.id),
            sk: keys::META.to_owned(),
            gsi1pk: keys::threads_index_pk(&thread.id),
            gsi1sk: keys::activity_sk(thread.updated, &thread.id),
            thread: thread.clone(),
            pset,
        }
    }
}

/// One member's view of a thread, under the member's partition.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MembershipItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    #[serde(flatten)]
    pub thread: Thread,
    pub user: UserId,
    pub unread: u64,
    pub read_seq: u64,
    pub sent: u64,
    /// Absent until the first mention of the member here.
    #[serde(default)]
    pub unread_mentions: u64,
    /// The mute's end as stored (a timestamp, or `always`); absent when not muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

impl MembershipItem {
    /// A new member's view: nothing they have not read mentions them yet.
    pub fn new(thread: &Thread, user: &UserId, unread: u64, read_seq: u64, sent: u64) -> Self {
        Self {
            pk: keys::user_pk(user),
            sk: keys::membership_sk(&thread.id),
            gsi1pk: keys::user_pk(user),
            gsi1sk: keys::activity_sk(thread.updated, &thread.id),
            thread: thread.clone(),
            user: user.clone(),
            unread,
            read_seq,
            sent,
            unread_mentions: 0,
            muted_until: None,
            archived: false,
        }
    }

    pub fn into_membership(self) -> Result<Membership, StoreError> {
        let mute = Mute::from_stored(self.muted_until.as_deref())
            .map_err(|_| StoreError::Corrupt(format!("a mute of {} ends at no time", self.thread.id)))?;
        Ok(Membership {
            thread: self.thread,
            user: self.user,
            unread: self.unread,
            read_seq: Seq(self.read_seq),
            sent: self.sent,
            unread_mentions: self.unread_mentions,
            mute,
            archived: self.archived,
        })
    }
}

/// The record that makes one send happen once (see `messages::send_key`), and that an import
/// leaves behind for each message it wrote.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SendKeyItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    /// The message the send wrote.
    pub seq: u64,
    /// SHA-256 of the text, so a reused key with another text is told apart.
    pub text_hash: String,
    pub expires_at: i64,
    /// The request whose queued message became this one: of several requests with one
    /// `client_id` waiting at once, it alone answers 201, the others 200.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
}

/// A message waiting to be appended to its thread (see `messages`): whoever appends next takes
/// it along, in the order queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub sender: UserId,
    pub text: String,
    /// SHA-256 of the text: the append checks it, so that it writes the text it read.
    pub text_hash: String,
    /// The place of the message it answers, if it is a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// The participants it mentions (the append checks they are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// The send key the append writes, and how long that lives.
    pub send_key: String,
    pub send_key_ttl: i64,
    /// The request that queued it (a random id), which the send key records.
    pub request: String,
    pub queued_at: Timestamp,
    pub expires_at: i64,
}

/// A reaction waiting to be applied to its message by the next append (see `append`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueuedReaction {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user: UserId,
    /// The message's place in its thread.
    pub seq: u64,
    pub emoji: Emoji,
    /// Added (true) or taken away.
    pub on: bool,
    /// The request that queued it (a random id).
    pub request: String,
    pub queued_at: Timestamp,
    pub expires_at: i64,
}

/// One mention of a member by a message of the thread, under the thread so that a read marker
/// counts the member's mentions after it with one query (`keys::mention_sk`). Written and
/// taken away with the message's mentions: a deleted message has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MentionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user: UserId,
    pub seq: u64,
}

impl MentionItem {
    pub fn new(thread: &ThreadId, user: &UserId, seq: Seq) -> Self {
        Self { pk: keys::thread_pk(thread), sk: keys::mention_sk(user, seq), user: user.clone(), seq: seq.0 }
    }
}

/// One entry of a thread's change log: the change that made the version in the sort key
/// touched this message (sent, edited or deleted it). Written in the transaction of that
/// change, which also moves the thread's version, so versions commit in order and a strongly
/// consistent query of the log misses nothing committed before it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChangeItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub seq: u64,
}

impl ChangeItem {
    pub fn new(thread: &ThreadId, version: Version, seq: Seq) -> Self {
        Self { pk: keys::thread_pk(thread), sk: keys::change_sk(version), seq: seq.0 }
    }
}

/// A member's read marker moved to `seq` (in the sort key) at `read_at`.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReadEventItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user: UserId,
    pub read_at: Timestamp,
}

impl ReadEventItem {
    pub fn new(thread: &ThreadId, user: &UserId, seq: Seq, read_at: Timestamp) -> Self {
        Self { pk: keys::thread_pk(thread), sk: keys::read_event_sk(user, seq), user: user.clone(), read_at }
    }
}

/// What GSI1 holds of a deleted message, under `keys::deleted_index_pk`.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeletedEntry {
    pub seq: u64,
    pub sender: UserId,
}

/// What GSI2 projects of a message: how many messages its sender had sent by then.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SenderIndexEntry {
    pub sender_seq: u64,
}

/// The reservation of a participant set: the thread that holds it and, when an import brought
/// several threads with exactly this set, the others.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ParticipantSetItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub thread: ThreadId,
    /// A string set, so that an import can `ADD` to it and a delete `DELETE` from it without
    /// reading it first; DynamoDB has no empty sets, so none is stored while there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_dynamo::string_set")]
    pub others: Vec<ThreadId>,
}

impl ParticipantSetItem {
    /// True when the reservation is held by `thread` or lists it among the others.
    pub(crate) fn names(&self, thread: &ThreadId) -> bool {
        &self.thread == thread || self.others.contains(thread)
    }

    pub fn new(pset: &str, thread: &ThreadId) -> Self {
        Self {
            pk: keys::participant_set_pk(pset),
            sk: keys::PARTICIPANT_SET.to_owned(),
            thread: thread.clone(),
            others: Vec::new(),
        }
    }

    /// Every thread with this set, the holder first.
    pub fn threads(&self) -> impl Iterator<Item = &ThreadId> {
        std::iter::once(&self.thread).chain(&self.others)
    }
}

/// The reservation of a username by the user that has it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UsernameItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user_id: UserId,
}

impl UsernameItem {
    pub fn new(username: &str, user: &UserId) -> Self {
        Self { pk: keys::username_pk(username), sk: keys::USERNAME.to_owned(), user_id: user.clone() }
    }
}

/// A user's counters item as read: the totals, and what each muted thread holds of them (the
/// `attr::muted` attributes, one set per thread).
pub(crate) fn counters_of(item: impl Into<serde_dynamo::Item> + Clone) -> Result<Counters, StoreError> {
    let mut counters = serde_dynamo::from_item::<_, CountersItem>(item.clone())?.counters;
    let raw: HashMap<String, serde_json::Value> = serde_dynamo::from_item(item)?;
    let number =
        |part, thread: &ThreadId| raw.get(&attr::muted(part, thread)).and_then(serde_json::Value::as_u64);
    for (name, value) in &raw {
        let Some(thread) = name.strip_prefix(attr::MUTED_PREFIX).and_then(|rest| rest.strip_prefix("until#"))
        else {
            continue;
        };
        let Ok(thread) = thread.parse::<ThreadId>() else { continue };
        let mute = Mute::from_stored(value.as_str())
            .map_err(|_| StoreError::Corrupt(format!("a mute of {thread} ends at no time")))?;
        counters.muted.push(MutedTotals {
            mute,
            unread: number(attr::MutedPart::Unread, &thread).unwrap_or(0),
            threads: number(attr::MutedPart::Threads, &thread).unwrap_or(0),
            mentions: number(attr::MutedPart::Mentions, &thread).unwrap_or(0),
        });
    }
    Ok(counters)
}

/// A user's totals (written only by `ADD` in the transactions that change them).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CountersItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(flatten)]
    pub counters: Counters,
}

/// A refresh token's id, once the token has been used; it expires with the token.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UsedTokenItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub expires_at: i64,
}

impl UsedTokenItem {
    pub fn new(jti: &str, expires_at: i64) -> Self {
        Self { pk: keys::jti_pk(jti), sk: keys::JTI.to_owned(), expires_at }
    }
}

/// The marker of a deleted thread whose items are still being purged; each purge step that
/// leaves items behind bumps `rounds`, and the stream calls the purge again.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PurgeMarkerItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(default)]
    pub rounds: u64,
}

impl PurgeMarkerItem {
    pub fn new(thread: &ThreadId) -> Self {
        Self { pk: keys::thread_pk(thread), sk: keys::PURGE.to_owned(), rounds: 0 }
    }
}

/// A ticket for one WebSocket handshake: single use, short-lived, stored by its hash so that a
/// reader of the table cannot connect with it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TicketItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user: UserId,
    pub expires_at: i64,
    /// The token version of the access token it was issued to: the handshake needs the user's
    /// to be the same still.
    #[serde(default)]
    pub token_version: u64,
}

/// One open WebSocket connection, under its user's partition, so a fan-out finds a user's
/// connections with one query. It expires with API Gateway's two-hour limit, since
/// `$disconnect` is best effort.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub connection: ConnectionId,
    pub connected_at: Timestamp,
    pub expires_at: i64,
}

/// The same connection under its own id, for `$disconnect` and typing, which know only the id.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionOwnerItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user: UserId,
    pub expires_at: i64,
    /// When the connection last sent a typing notice, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing_at: Option<i64>,
}

/// Decodes an item into a record type.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

/// Encodes a record into an item.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    Ok(serde_dynamo::to_item(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(value: &T) -> Item
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let item = encode(value).unwrap();
        let back: T = decode(item.clone()).unwrap();
        assert_eq!(&back, value);
        assert!(item.contains_key(attr::PK) && item.contains_key(attr::SK), "{item:?}");
        item
    }

    fn thread() -> Thread {
        let t: ThreadId = "0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4".parse().unwrap();
        let (a, b): (UserId, UserId) = ("ua".parse().unwrap(), "ub".parse().unwrap());
        let now: Timestamp = "2026-01-02T03:04:05.678901Z".parse().unwrap();
        let message = Message {
            id: MessageId { thread: t.clone(), seq: Seq(3) },
            thread: t.clone(),
            sender: a.clone(),
            text: "hi".into(),
            created: now,
            edited: Some(now),
            reactions: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
        };
        Thread {
            id: t,
            participants: vec![a.clone(), b],
            owner: a,
            created: now,
            updated: now,
            message_count: 3,
            deleted_count: 1,
            last_message: Some(message),
            version: Version(4),
        }
    }

    #[test]
    fn user_items_round_trip() {
        let user = User {
            id: "u1".parse().unwrap(),
            username: "Ålice".into(),
            password_hash: "$argon2id$...".into(),
            is_active: true,
            is_staff: false,
            token_version: 2,
            date_joined: Timestamp::now(),
        };
        let item = encode(&UserItem::new(&user)).unwrap();
        assert!(item.contains_key(attr::GSI1PK) && item.contains_key(attr::IS_ACTIVE));
        assert_eq!(decode::<UserItem>(item).unwrap().into_user(), user);
        round_trip(&UsernameItem::new("Ålice", &user.id));
    }

    #[test]
    fn thread_items_round_trip() {
        use attr::SET_OTHERS as OTHERS;
        let t = thread();
        let message = t.last_message.clone().unwrap();
        let item = encode(&MessageItem::new(&message, 2)).unwrap();
        assert!(item.contains_key(attr::GSI2PK) && item.contains_key(attr::GSI2SK));
        let entry: SenderIndexEntry = decode(item.clone()).unwrap();
        assert_eq!(entry.sender_seq, 2);
        assert_eq!(decode::<MessageItem>(item).unwrap().into_message(), message);

        let item = encode(&ThreadItem::new(&t, "abc".into())).unwrap();
        let back: ThreadItem = decode(item).unwrap();
        assert_eq!((back.thread, back.pset), (t.clone(), "abc".to_owned()));

        let m = MembershipItem::new(&t, &t.participants[1], 2, 1, 0);
        let item = encode(&m).unwrap();
        assert!(item.contains_key(attr::GSI1SK));
        let back = decode::<MembershipItem>(item).unwrap().into_membership().unwrap();
        assert_eq!(
            (back.thread, back.unread, back.read_seq, back.user),
            (t.clone(), 2, Seq(1), t.participants[1].clone())
        );

        round_trip(&ReadEventItem::new(&t.id, &t.participants[1], Seq(3), t.updated));
        round_trip(&ParticipantSetItem::new("abc", &t.id));
        let mut shared = ParticipantSetItem::new("abc", &t.id);
        shared.others = vec!["1".parse().unwrap(), "2".parse().unwrap()];
        let item = round_trip(&shared);
        assert!(item[OTHERS].as_ss().is_ok(), "a string set, for ADD and DELETE: {item:?}");
        assert!(!round_trip(&ParticipantSetItem::new("abc", &t.id)).contains_key(OTHERS));
        round_trip(&PurgeMarkerItem::new(&t.id));
        let change = round_trip(&ChangeItem::new(&t.id, t.version, Seq(3)));
        assert!(change.contains_key(attr::SEQ));
        assert!(encode(&ThreadItem::new(&t, "abc".into())).unwrap().contains_key(attr::VERSION));
        assert!(encode(&m).unwrap().contains_key(attr::VERSION));
    }

    #[test]
    fn expiring_items_use_the_tables_ttl_attribute() {
        assert_eq!(attr::EXPIRES_AT, super::super::table::TTL_ATTRIBUTE);
        let item = round_trip(&UsedTokenItem::new("jti", 1_900_000_000));
        assert!(item.contains_key(attr::EXPIRES_AT));
        let key = SendKeyItem {
            pk: "SEND#x".into(),
            sk: keys::SEND_KEY.into(),
            seq: 4,
            text_hash: "h".into(),
            expires_at: 9,
            request: String::new(),
        };
        assert!(round_trip(&key).contains_key(attr::EXPIRES_AT));
        let user: UserId = "u1".parse().unwrap();
        let ticket = TicketItem {
            pk: "TICKET#h".into(),
            sk: keys::TICKET.into(),
            user: user.clone(),
            expires_at: 5,
            token_version: 2,
        };
        let item = round_trip(&ticket);
        assert!(item.contains_key(attr::EXPIRES_AT) && item.contains_key(attr::TICKET_USER));
        let connection: ConnectionId = "L0SM9cOFvHcCIhw=".parse().unwrap();
        let mine = ConnectionItem {
            pk: keys::user_pk(&user),
            sk: keys::connection_sk(&connection),
            connection: connection.clone(),
            connected_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            expires_at: 7,
        };
        assert!(round_trip(&mine).contains_key(attr::EXPIRES_AT));
        let owner = ConnectionOwnerItem {
            pk: keys::connection_pk(&connection),
            sk: keys::CONNECTION.into(),
            user,
            expires_at: 7,
            typing_at: Some(9),
        };
        let item = round_trip(&owner);
        assert!(item.contains_key(attr::EXPIRES_AT) && item.contains_key(attr::TYPING_AT));
    }

    #[test]
    fn counters_round_trip_and_default_to_zero() {
        let c = CountersItem {
            pk: "USER#u".into(),
            sk: keys::COUNTERS.into(),
            counters: Counters {
                thread_count: 3,
                unread_total: 7,
                unread_threads: 2,
                mentions: 1,
                archived_threads: 1,
                muted: Vec::new(),
            },
        };
        round_trip(&c);
        let bare = super::super::key("USER#u", keys::COUNTERS);
        assert_eq!(decode::<CountersItem>(bare).unwrap().counters, Counters::default());
    }
}
