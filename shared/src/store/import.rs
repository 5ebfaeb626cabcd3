//! Writing data imported from another system (the Django app) with its ids, times and read state.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::items::{MembershipItem, MessageItem, ParticipantSetItem, ReadEventItem, ThreadItem, encode};
use super::threads::participant_set_hash;
use super::{Item, Step, Store, StoreError, Tx, key, keys, tx_put};
use crate::ids::{MessageId, Seq, ThreadId, UserId};
use crate::model::{Message, Thread};
use crate::timestamp::Timestamp;

/// A thread to import, its messages in order and each participant's read state.
#[derive(Debug, Clone)]
pub struct ImportedThread {
    /// The id to keep.
    pub id: ThreadId,
    /// The owner (a participant).
    pub owner: UserId,
    /// Participants, owner included.
    pub participants: Vec<UserId>,
    /// Creation time.
    pub created: Timestamp,
    /// Last activity.
    pub updated: Timestamp,
    /// Messages, oldest first: sender, text, time.
    pub messages: Vec<(UserId, String, Timestamp)>,
    /// Reads: who read which message (index into `messages`) and when.
    pub reads: Vec<(UserId, usize, Timestamp)>,
}

/// Whether an import wrote something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Written now.
    Written,
    /// Already there from an earlier run; left as it was.
    AlreadyThere,
}

/// One member's read state, derived from per-message reads.
struct ReadState {
    unread: u64,
    read_seq: u64,
    sent: u64,
}

fn read_state(thread: &ImportedThread, user: &UserId) -> ReadState {
    let read = |i: usize| thread.reads.iter().any(|(u, m, _)| u == user && *m == i);
    let mut state = ReadState { unread: 0, read_seq: 0, sent: 0 };
    let mut contiguous = true;
    for (i, (sender, _, _)) in thread.messages.iter().enumerate() {
        let seq = i as u64 + 1;
        if sender == user {
            state.sent += 1;
        } else if !read(i) {
            state.unread += 1;
            contiguous = false;
        }
        // The marker covers the longest prefix in which every message from others is read.
        if contiguous {
            state.read_seq = seq;
        }
    }
    state
}

impl Store {
    /// Imports a thread with its messages and read state; does nothing if it exists already.
    ///
    /// Messages and read events go first (idempotent puts), then one transaction writes the
    /// thread, its participant-set reservation, every membership and every counter, so the
    /// thread appears whole or not at all.
    pub async fn import_thread(&self, thread: &ImportedThread) -> Result<Imported, StoreError> {
        if self.get(key(keys::thread_pk(&thread.id), keys::META), true).await?.is_some() {
            return Ok(Imported::AlreadyThere);
        }
        let mut puts: Vec<Item> = Vec::new();
        let mut sent_by: std::collections::HashMap<&UserId, u64> = Default::default();
        let mut last = None;
        for (i, (sender, text, created)) in thread.messages.iter().enumerate() {
            let sender_seq = sent_by.entry(sender).or_default();
            *sender_seq += 1;
            let message = Message {
                id: MessageId { thread: thread.id.clone(), seq: Seq(i as u64 + 1) },
                thread: thread.id.clone(),
                sender: sender.clone(),
                text: text.clone(),
                created: *created,
                edited: None,
            };
            puts.push(encode(&MessageItem::new(&message, *sender_seq))?);
            last = Some(message);
        }
        for (user, index, read_at) in &thread.reads {
            puts.push(encode(&ReadEventItem::new(&thread.id, user, Seq(*index as u64 + 1), *read_at))?);
        }
        let puts = puts
            .into_iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().expect("complete"))
                    .build()
            })
            .collect();
        self.batch_write(puts).await?;

        let record = Thread {
            id: thread.id.clone(),
            participants: thread.participants.clone(),
            owner: thread.owner.clone(),
            created: thread.created,
            updated: thread.updated,
            message_count: thread.messages.len() as u64,
            deleted_count: 0,
            last_message: last,
        };
        let pset = participant_set_hash(&thread.participants);
        let meta = ThreadItem::new(&record, pset.clone());
        let reservation = encode(&ParticipantSetItem::new(&pset, &thread.id))?;
        let mut tx = Tx::default();
        tx.push(Step::Thread, tx_put(self.table(), encode(&meta)?, Some("attribute_not_exists(PK)")));
        tx.push(Step::ParticipantSet, tx_put(self.table(), reservation, Some("attribute_not_exists(PK)")));
        for p in &thread.participants {
            let state = read_state(thread, p);
            let member = MembershipItem::new(&record, p, state.unread, state.read_seq, state.sent);
            tx.push(Step::Membership, tx_put(self.table(), encode(&member)?, None));
            tx.push(
                Step::Counters,
                self.counters_update(p, 1, state.unread as i64, i64::from(state.unread > 0)),
            );
        }
        match self.transact(tx).await {
            Ok(()) => Ok(Imported::Written),
            Err(f) if f.failed(Step::Thread) => Ok(Imported::AlreadyThere),
            Err(f) if f.failed(Step::ParticipantSet) => Err(StoreError::Corrupt(format!(
                "thread {}: another thread already has exactly these participants",
                thread.id
            ))),
            Err(f) => Err(f.into()),
        }
    }
}
