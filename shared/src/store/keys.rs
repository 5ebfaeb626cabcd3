//! Key builders: the single place that knows how items are addressed.

use crate::domain::ids::{ConnectionId, Seq, ThreadId, UserId, Version};
use crate::domain::timestamp::Timestamp;

/// Partition of a user's profile, memberships and counters.
pub fn user_pk(user: &UserId) -> String {
    format!("{USER_PREFIX}{user}")
}
const USER_PREFIX: &str = "USER#";
/// Sort key of a user's profile.
pub const PROFILE: &str = "PROFILE";
/// Sort key of a user's counters.
pub const COUNTERS: &str = "COUNTERS";

/// Partition of the item that reserves a username.
pub fn username_pk(username: &str) -> String {
    format!("USERNAME#{username}")
}
/// Sort key of a username reservation.
pub const USERNAME: &str = "USERNAME";

/// GSI1 partition holding every active user, for username search.
pub const USERS_INDEX_PK: &str = "USERS";
/// GSI1 sort key of a user: lower-cased username, then id to keep it unique.
pub fn users_index_sk(username: &str, user: &UserId) -> String {
    format!("{}#{user}", username.to_lowercase())
}

/// How many GSI1 partitions hold the all-threads list, to spread the index writes of busy sends.
pub const THREAD_SHARDS: u8 = 8;
/// GSI1 partition of a thread's metadata in the all-threads list (one of [`THREAD_SHARDS`]).
pub fn threads_index_pk(thread: &ThreadId) -> String {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash =
        thread.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    threads_shard_pk((hash % u32::from(THREAD_SHARDS)) as u8)
}
/// One shard of the all-threads list.
pub fn threads_shard_pk(shard: u8) -> String {
    format!("THREADS#{shard}")
}

/// Sort key of a membership under the member's partition.
pub fn membership_sk(thread: &ThreadId) -> String {
    format!("THREAD#{thread}")
}
/// GSI1 sort key of a membership: last activity, then thread id, so newest activity sorts last.
pub fn activity_sk(updated: Timestamp, thread: &ThreadId) -> String {
    format!("{updated}#{thread}")
}

/// Partition of a thread's metadata, messages, read events and purge marker.
pub fn thread_pk(thread: &ThreadId) -> String {
    format!("{THREAD_PREFIX}{thread}")
}
/// The thread whose partition key this is, if it is one.
pub fn parse_thread_pk(pk: &str) -> Option<ThreadId> {
    pk.strip_prefix(THREAD_PREFIX)?.parse().ok()
}
const THREAD_PREFIX: &str = "THREAD#";
/// Sort key of a thread's metadata.
pub const META: &str = "META";
/// Sort key of the marker that drives the asynchronous purge of a deleted thread.
pub const PURGE: &str = "PURGE";
/// Prefix of message sort keys.
pub const MESSAGE_PREFIX: &str = "MSG#";
/// Sort key of a message.
pub fn message_sk(seq: Seq) -> String {
    format!("{MESSAGE_PREFIX}{}", seq.padded())
}
/// `GSI1PK` of a member's view of a thread they archived: their archived threads by activity,
/// apart from their list (`user_pk`).
pub fn archived_index_pk(user: &UserId) -> String {
    format!("USER#{user}#ARCHIVED")
}
/// Prefix of the sort key of a member's change of their view of a thread (mute, archive), kept
/// for the fan-out to tell their other devices.
pub const VIEW_CHANGE_PREFIX: &str = "VIEW#";
/// Sort key of a member's change of their view of `thread`.
pub fn view_change_sk(thread: &ThreadId) -> String {
    format!("{VIEW_CHANGE_PREFIX}{thread}")
}
/// Prefix of the sort keys of a thread's mentions.
pub const MENTION_PREFIX: &str = "MENTION#";
/// Sort key of the mention of `user` by the message at `seq`: a member's mentions sort by
/// place, so those after a read marker are one key range.
pub fn mention_sk(user: &UserId, seq: Seq) -> String {
    format!("{MENTION_PREFIX}{user}#{}", seq.padded())
}
/// Prefix of the sort keys of a thread's change log.
pub const CHANGE_PREFIX: &str = "CHG#";
/// Sort key of the change log entry of the change that made `version`.
pub fn change_sk(version: Version) -> String {
    format!("{CHANGE_PREFIX}{}", version.padded())
}
/// Sort key of a read event: the member's read marker moved to `seq`.
pub fn read_event_sk(user: &UserId, seq: Seq) -> String {
    format!("READ#{user}#{}", seq.padded())
}
/// Upper bound of a member's read events, for range queries.
pub fn read_events_end(user: &UserId) -> String {
    format!("READ#{user}#~")
}
/// GSI1 partition listing a thread's deleted messages by `seq` (sort key [`Seq::padded`]).
pub fn deleted_index_pk(thread: &ThreadId) -> String {
    format!("{THREAD_PREFIX}{thread}#DELETED")
}
/// GSI2 partition of one sender's messages in one thread.
pub fn sender_index_pk(thread: &ThreadId, user: &UserId) -> String {
    format!("THREAD#{thread}#USER#{user}")
}

/// Partition of the record that makes one send happen once: the thread, the sender, whose key
/// (`C` client, `S` server) and the key.
pub fn send_key_pk(thread: &ThreadId, sender: &UserId, kind: &str, key: &str) -> String {
    format!("SEND#{thread}#{sender}#{kind}#{key}")
}
/// Sort key of a send record.
pub const SEND_KEY: &str = "SEND";

/// Prefix of the sort keys of messages waiting to be appended to a thread (under [`thread_pk`]).
pub const PENDING_PREFIX: &str = "PEND#";
/// Prefix of the sort keys of queued reactions, among [`PENDING_PREFIX`]'s.
pub const QUEUED_REACTION_PREFIX: &str = "PEND#R#";
/// Sort key of a queued reaction: one per message, emoji and user, so that a user's later
/// change of the same reaction replaces one not yet applied.
pub fn queued_reaction_sk(seq: Seq, emoji: &str, user: &UserId) -> String {
    let emoji: String = emoji.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{QUEUED_REACTION_PREFIX}{}#{emoji}#{user}", seq.padded())
}
/// Sort key of a message waiting to be appended: one per send key, so that two requests with
/// one `client_id` wait as one message.
pub fn pending_sk(send_key_pk: &str) -> String {
    format!("{PENDING_PREFIX}{send_key_pk}")
}

/// Partition of the item that reserves a participant set.
pub fn participant_set_pk(hash: &str) -> String {
    format!("PSET#{hash}")
}
/// Sort key of a participant set reservation.
pub const PARTICIPANT_SET: &str = "PSET";

/// Partition of a failed-login counter: `user:<username>` or `ip:<address>`.
pub fn login_failures_pk(subject: &str) -> String {
    format!("LOGINFAIL#{subject}")
}
/// Sort key of a failed-login counter.
pub const LOGIN_FAILURES: &str = "LOGINFAIL";

/// Partition of a used refresh token's id.
pub fn jti_pk(jti: &str) -> String {
    format!("JTI#{jti}")
}
/// Sort key of a used refresh token's id.
pub const JTI: &str = "JTI";

/// Partition of a WebSocket ticket: the SHA-256 of the ticket, never the ticket itself.
pub fn ticket_pk(hash: &str) -> String {
    format!("TICKET#{hash}")
}
/// Sort key of a WebSocket ticket.
pub const TICKET: &str = "TICKET";

/// Sort key of a user's ticket window (under [`user_pk`]): how many WebSocket tickets they
/// were issued in the current minute.
pub const TICKET_WINDOW: &str = "TICKETS";

/// Sort key of when a user last had a typing notice relayed in a thread (under [`user_pk`]).
pub fn typing_sk(thread: &ThreadId) -> String {
    format!("TYPING#{thread}")
}

/// Prefix of the sort keys of a user's WebSocket connections (under [`user_pk`]).
pub const CONNECTION_PREFIX: &str = "CONN#";
/// Sort key of one of a user's connections.
pub fn connection_sk(connection: &ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{connection}")
}
/// Partition of a connection's owner record.
pub fn connection_pk(connection: &ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{connection}")
}
/// Sort key of a connection's owner record.
pub const CONNECTION: &str = "CONN";

/// The user whose partition key this is, if it is one.
pub fn parse_user_pk(pk: &str) -> Option<UserId> {
    pk.strip_prefix(USER_PREFIX)?.parse().ok()
}
/// The reader and the message of a read event's sort key, if it is one.
pub fn parse_read_event_sk(sk: &str) -> Option<(UserId, Seq)> {
    let (user, seq) = sk.strip_prefix("READ#")?.rsplit_once('#')?;
    Some((user.parse().ok()?, Seq(seq.parse().ok()?)))
}
/// The version of a change log sort key, if it is one.
pub fn parse_change_sk(sk: &str) -> Option<Version> {
    Some(Version(sk.strip_prefix(CHANGE_PREFIX)?.parse().ok()?))
}
/// The message of a message sort key, if it is one.
pub fn parse_message_sk(sk: &str) -> Option<Seq> {
    Some(Seq(sk.strip_prefix(MESSAGE_PREFIX)?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_by_sequence() {
        assert!(message_sk(Seq(9)) < message_sk(Seq(10)));
        let u: UserId = "u1".parse().unwrap();
        assert!(read_event_sk(&u, Seq(99_999)) < read_events_end(&u));
    }

    #[test]
    fn sort_keys_parse_back() {
        let u: UserId = "u_1".parse().unwrap();
        assert_eq!(parse_read_event_sk(&read_event_sk(&u, Seq(42))), Some((u.clone(), Seq(42))));
        assert_eq!(parse_message_sk(&message_sk(Seq(7))), Some(Seq(7)));
        assert_eq!(parse_user_pk(&user_pk(&u)), Some(u));
        assert_eq!(parse_message_sk("META"), None);
        assert_eq!(parse_read_event_sk("READ#u1"), None);
    }

    #[test]
    fn change_keys_sort_by_version_and_stay_apart_from_messages() {
        assert!(change_sk(Version(9)) < change_sk(Version(10)));
        assert!(change_sk(Version(u64::MAX)).starts_with(CHANGE_PREFIX));
        assert!(!change_sk(Version(1)).starts_with(MESSAGE_PREFIX));
        assert!(!change_sk(Version(1)).starts_with("READ#"));
        assert_eq!(parse_change_sk(&change_sk(Version(u64::MAX))), Some(Version(u64::MAX)));
        assert_eq!(parse_change_sk(&message_sk(Seq(1))), None);
    }

    #[test]
    fn activity_keys_sort_by_time() {
        let t: ThreadId = "zzz".parse().unwrap();
        let a = activity_sk("2026-01-01T00:00:09.5Z".parse().unwrap(), &t);
        let b = activity_sk("2026-01-01T00:00:10Z".parse().unwrap(), &"aaa".parse().unwrap());
        assert!(a < b);
    }
}
