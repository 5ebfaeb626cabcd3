//! Item shapes as stored, and their conversions to domain records.

use serde::{Deserialize, Serialize};

use super::{Item, StoreError, keys};
use crate::ids::{MessageId, Seq, ThreadId, UserId};
use crate::model::{Membership, Message, Thread, User};
use crate::timestamp::Timestamp;

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

/// A message as stored under its thread.
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
    pub text: String,
    pub created: Timestamp,
    /// How many messages the sender had sent in this thread, this one included.
    pub sender_seq: u64,
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
        }
    }

    pub fn into_message(self) -> Message {
        Message {
            id: MessageId { thread: self.thread.clone(), seq: Seq(self.seq) },
            thread: self.thread,
            sender: self.sender,
            text: self.text,
            created: self.created,
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
}

impl MembershipItem {
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
        }
    }

    pub fn into_membership(self) -> Membership {
        Membership {
            thread: self.thread,
            user: self.user,
            unread: self.unread,
            read_seq: Seq(self.read_seq),
            sent: self.sent,
        }
    }
}

/// Decodes an item into a record type.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

/// Encodes a record into an item.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    Ok(serde_dynamo::to_item(value)?)
}
