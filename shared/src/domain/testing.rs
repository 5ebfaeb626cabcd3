//! Builders of domain records for unit tests.

use super::ids::UserId;
use super::model::Thread;

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
