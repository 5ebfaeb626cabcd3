//! Domain records and their JSON representations on the API.

use serde::{Deserialize, Serialize};

use crate::domain::ids::{ConnectionId, MessageId, Seq, ThreadId, UserId, Version};
use crate::domain::reaction::Reaction;
use crate::domain::timestamp::Timestamp;

/// Most participants a thread may have (caller included); keeps every thread-wide
/// change within one DynamoDB transaction (100 actions).
pub const MAX_PARTICIPANTS: usize = 32;
/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest username, as Django allows.
pub const MAX_USERNAME_CHARS: usize = 150;

/// True for the characters Django allows in usernames: letters, digits and `@.+-_`.
pub fn is_username_char(c: char) -> bool {
    c.is_alphanumeric() || "@.+-_".contains(c)
}

/// True for a username Django would accept: 1 to 150 such characters.
pub fn is_valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.chars().count() <= MAX_USERNAME_CHARS
        && username.chars().all(is_username_char)
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Unique, case-sensitive login name.
    pub username: String,
    /// Argon2id PHC string (or an imported Django hash until the first login).
    pub password_hash: String,
    /// Inactive users cannot log in, refresh, or be added to threads.
    pub is_active: bool,
    /// Staff may use the admin panel.
    pub is_staff: bool,
    /// Bumped when the password changes, revoking refresh tokens issued before.
    pub token_version: u64,
    /// When the account was created.
    pub date_joined: Timestamp,
}

/// The public face of a user, for search results.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    /// The user's id.
    pub id: UserId,
    /// The username.
    pub username: String,
}

/// The caller's own account, for `/api/users/me/`.
#[derive(Debug, Clone, Serialize)]
pub struct Me {
    /// The user's id.
    pub id: UserId,
    /// The username.
    pub username: String,
    /// Whether the user is staff.
    pub is_staff: bool,
}

/// A message as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `<thread>.<seq>`.
    #[serde(with = "message_id_text")]
    pub id: MessageId,
    /// The thread it belongs to.
    pub thread: ThreadId,
    /// Who sent it.
    pub sender: UserId,
    /// The text.
    pub text: String,
    /// When it was sent.
    pub created: Timestamp,
    /// When its text was last changed, if ever.
    #[serde(default)]
    pub edited: Option<Timestamp>,
    /// Its reactions, each emoji once, in the order first used.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The message it answers, as that message is now.
    #[serde(default)]
    pub reply_to: Option<ReplyPreview>,
    /// The participants it mentions, in the order named (each once).
    #[serde(default)]
    pub mentions: Vec<UserId>,
}

/// Longest preview of a replied-to message's text, in characters.
pub const REPLY_PREVIEW_CHARS: usize = 200;

/// The message a reply answers, as it is now: who sent it and the start of its text, or that
/// it was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyPreview {
    /// The message's id.
    #[serde(with = "message_id_text")]
    pub id: MessageId,
    /// Who sent it.
    pub sender: UserId,
    /// The first [`REPLY_PREVIEW_CHARS`] characters of its text; empty once deleted.
    pub text: String,
    /// When its text last changed, if ever.
    #[serde(default)]
    pub edited: Option<Timestamp>,
    /// Whether it has been deleted since.
    #[serde(default)]
    pub deleted: bool,
}

impl ReplyPreview {
    /// The preview of `message` as it is now.
    pub fn of(message: &Message) -> Self {
        Self {
            id: message.id.clone(),
            sender: message.sender.clone(),
            text: preview(&message.text),
            edited: message.edited,
            deleted: false,
        }
    }

    /// The preview of a message deleted since.
    pub fn deleted(id: MessageId, sender: UserId) -> Self {
        Self { id, sender, text: String::new(), edited: None, deleted: true }
    }
}

/// The start of a text, for a preview.
pub fn preview(text: &str) -> String {
    text.chars().take(REPLY_PREVIEW_CHARS).collect()
}

impl Message {
    /// The message as `viewer` sees it: each reaction says whether it is theirs.
    pub fn for_viewer(mut self, viewer: &UserId) -> Self {
        for r in &mut self.reactions {
            r.me = Some(r.users.contains(viewer));
        }
        self
    }
}

mod message_id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::ids::MessageId;

    pub fn serialize<S: Serializer>(id: &MessageId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MessageId, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A message as it is now, in the list of what changed since a version: a deleted one is a
/// tombstone (no text, `deleted` set) so that a client that held it can drop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageChange {
    /// The message (with empty text once deleted).
    #[serde(flatten)]
    pub message: Message,
    /// When it was deleted, if it was.
    pub deleted: Option<Timestamp>,
}

/// One reader of a message and when they first read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadBy {
    /// The reader.
    pub user: UserId,
    /// The first time they read it.
    pub read_at: Timestamp,
}

/// A message with its readers, for the message detail route.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDetail {
    /// The message.
    #[serde(flatten)]
    pub message: Message,
    /// Who has read it, sender first.
    pub read_by: Vec<ReadBy>,
}

/// A thread: its participants, owner, times and newest message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// The thread's id.
    pub id: ThreadId,
    /// Everyone in it.
    pub participants: Vec<UserId>,
    /// Who created it (and may delete it).
    pub owner: UserId,
    /// When it was created.
    pub created: Timestamp,
    /// Last activity: creation or the newest message.
    pub updated: Timestamp,
    /// How many messages were ever sent here: the newest message's `seq`. Deleted messages
    /// keep their place, so ids never move.
    pub message_count: u64,
    /// How many of those were deleted since.
    #[serde(default)]
    pub deleted_count: u64,
    /// The newest message that is not deleted.
    #[serde(default)]
    pub last_message: Option<Message>,
    /// How many sends, edits and deletes the thread has seen: the key of its change log.
    #[serde(default)]
    pub version: Version,
}

impl Thread {
    /// How many messages it has now (deleted ones not counted).
    pub fn live_count(&self) -> u64 {
        self.message_count.saturating_sub(self.deleted_count)
    }
}

/// A thread as one participant sees it: the thread plus that participant's read state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The thread.
    pub thread: Thread,
    /// The member.
    pub user: UserId,
    /// Messages from others this member has not read.
    pub unread: u64,
    /// Every message up to this one counts as read by this member.
    pub read_seq: Seq,
    /// How many messages this member has sent here.
    pub sent: u64,
    /// Messages from others after the read marker, not deleted, that mention this member.
    pub unread_mentions: u64,
    /// Whether, and until when, this member muted the thread.
    pub mute: Mute,
    /// Whether this member archived the thread (it leaves their list until a new message).
    pub archived: bool,
}

/// How a member muted a thread for themselves: a muted thread keeps its own unread counts but
/// leaves their totals (and will not push).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mute {
    /// Not muted.
    #[default]
    Off,
    /// Muted until this time.
    Until(Timestamp),
    /// Muted until they unmute it.
    Always,
}

/// The stored form of [`Mute::Always`].
const MUTED_ALWAYS: &str = "always";

impl Mute {
    /// Whether it silences the thread at `now`.
    pub fn active_at(self, now: Timestamp) -> bool {
        match self {
            Mute::Off => false,
            Mute::Until(end) => end > now,
            Mute::Always => true,
        }
    }

    /// As clients see it at `now`: whether it is on, and its end if it has one (an ended mute
    /// is off).
    pub fn shown(self, now: Timestamp) -> (bool, Option<Timestamp>) {
        match self {
            Mute::Until(end) if end > now => (true, Some(end)),
            Mute::Always => (true, None),
            _ => (false, None),
        }
    }

    /// How it is stored: the end's text, or `always`; `None` when off.
    pub fn stored(self) -> Option<String> {
        match self {
            Mute::Off => None,
            Mute::Until(end) => Some(end.to_string()),
            Mute::Always => Some(MUTED_ALWAYS.to_owned()),
        }
    }

    /// From its stored form.
    pub fn from_stored(text: Option<&str>) -> Result<Self, crate::domain::timestamp::InvalidTimestamp> {
        Ok(match text {
            None => Mute::Off,
            Some(MUTED_ALWAYS) => Mute::Always,
            Some(end) => Mute::Until(end.parse()?),
        })
    }
}

/// A thread as the API shows it to everyone in it: what every participant sees alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadSummary {
    /// The thread's id.
    pub id: ThreadId,
    /// Participant ids.
    pub participants: Vec<UserId>,
    /// The owner's id.
    pub owner: UserId,
    /// Creation time.
    pub created: Timestamp,
    /// Last activity.
    pub updated: Timestamp,
    /// The newest message, if any.
    pub last_message: Option<Message>,
}

impl From<Thread> for ThreadSummary {
    fn from(t: Thread) -> Self {
        Self {
            id: t.id,
            participants: t.participants,
            owner: t.owner,
            created: t.created,
            updated: t.updated,
            last_message: t.last_message,
        }
    }
}

/// A thread as one participant sees it: the summary and their own unread count.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadView {
    /// What everyone sees.
    #[serde(flatten)]
    pub thread: ThreadSummary,
    /// The caller's unread messages here.
    pub unread_count: u64,
    /// How many of those mention the caller.
    pub unread_mentions: u64,
    /// Whether the caller has muted the thread now.
    pub muted: bool,
    /// When the caller's mute ends; null while not muted, or muted until they unmute.
    pub muted_until: Option<Timestamp>,
    /// Whether the caller archived it.
    pub archived: bool,
}

impl From<Membership> for ThreadView {
    fn from(m: Membership) -> Self {
        let mut thread: ThreadSummary = m.thread.into();
        thread.last_message = thread.last_message.map(|last| last.for_viewer(&m.user));
        let (muted, muted_until) = m.mute.shown(Timestamp::now());
        Self {
            thread,
            unread_count: m.unread,
            unread_mentions: m.unread_mentions,
            muted,
            muted_until,
            archived: m.archived,
        }
    }
}

/// A user's totals, kept exact by the same transactions that change them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Threads the user takes part in.
    #[serde(default)]
    pub thread_count: u64,
    /// Unread messages across all threads.
    #[serde(default)]
    pub unread_total: u64,
    /// Threads with at least one unread message.
    #[serde(default)]
    pub unread_threads: u64,
    /// Unread messages that mention the user, across all threads.
    #[serde(default)]
    pub mentions: u64,
    /// Threads the user archived.
    #[serde(default)]
    pub archived_threads: u64,
    /// What the user's muted threads hold of the totals above, each thread's as it was when
    /// last changed while muted: the totals shown leave out those whose mute is on.
    #[serde(skip)]
    pub muted: Vec<MutedTotals>,
}

/// What one muted thread holds of its member's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutedTotals {
    /// Until when it is muted (never [`Mute::Off`]).
    pub mute: Mute,
    /// Its unread messages.
    pub unread: u64,
    /// 1 if it has any.
    pub threads: u64,
    /// Its unread mentions.
    pub mentions: u64,
}

impl Counters {
    /// The totals as the user sees them at `now`: their muted threads left out.
    pub fn shown(&self, now: Timestamp) -> UnreadTotals {
        let active = || self.muted.iter().filter(|m| m.mute.active_at(now));
        UnreadTotals {
            unread_count: self.unread_total.saturating_sub(active().map(|m| m.unread).sum()),
            threads: self.unread_threads.saturating_sub(active().map(|m| m.threads).sum()),
            mentions: self.mentions.saturating_sub(active().map(|m| m.mentions).sum()),
        }
    }
}

/// A user's unread totals as clients see them (`GET /api/unread_count/` and `unread.changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UnreadTotals {
    /// Unread messages across all threads.
    pub unread_count: u64,
    /// Threads with unread messages.
    pub threads: u64,
    /// Unread messages that mention the user.
    pub mentions: u64,
}

/// One of a user's open WebSocket connections, as the fan-out reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenConnection {
    /// Whose it is.
    pub user: UserId,
    /// API Gateway's id for it.
    pub id: ConnectionId,
    /// When its `$connect` recorded it: a post that finds it gone soon after may have come
    /// before API Gateway finished the handshake, not after it closed.
    pub connected_at: Timestamp,
}
