//! Builders of domain records for unit tests.

use super::ids::{MessageId, Seq, UserId};
use super::model::{Membership, Message, Thread};

/// A user id.
pub(crate) fn id(text: &str) -> UserId {
    text.parse().expect("a valid id")
}

/// User ids.
pub(crate) fn ids(texts: &[&str]) -> Vec<UserId> {
    texts.iter().map(|t| id(t)).collect()
}

/// Thread `t1` of these participants, owned by the first, with nothing sent yet.
pub(crate) fn thread(participants: &[&str]) -> Thread {
    let now = "2026-01-02T03:04:05Z".parse().expect("a valid time");
    Thread {
        id: "t1".parse().expect("a valid id"),
        participants: ids(participants),
        owner: id(participants[0]),
        created: now,
        updated: now,
        message_count: 0,
        deleted_count: 0,
        last_message: None,
        version: Default::default(),
    }
}

/// More different emoji than a message may carry.
pub(crate) const EMOJI: [&str; 21] = [
    "😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃", "🫠", "😉", "😊", "😇", "🥰", "😍", "🤩",
    "😘", "😗", "☺️", "😚",
];

/// Message `seq` of thread `t1` from `sender`, with text `m<seq>`, never changed.
pub(crate) fn message(seq: u64, sender: &str) -> Message {
    Message {
        id: MessageId { thread: "t1".parse().expect("a valid id"), seq: Seq(seq) },
        thread: "t1".parse().expect("a valid id"),
        sender: id(sender),
        text: format!("m{seq}"),
        created: "2026-01-02T03:04:05Z".parse().expect("a valid time"),
        edited: None,
        reactions: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
    }
}

/// `user`'s view of `thread`: these counts, no mentions, not muted or archived.
pub(crate) fn member(thread: Thread, user: &str, unread: u64, read_seq: u64, sent: u64) -> Membership {
    Membership {
        thread,
        user: id(user),
        unread,
        read_seq: Seq(read_seq),
        sent,
        unread_mentions: 0,
        mute: Default::default(),
        archived: false,
    }
}
