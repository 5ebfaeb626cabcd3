//! Writing data imported from another system (the Django app) with its ids, times and read state.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use super::expr::Cond;
use super::items::{ChangeItem, MembershipItem, MessageItem, ReadEventItem, ThreadItem, attr, encode};
use super::psets::{self, participant_set_hash};
use super::retry::{Next, Why, retrying};
use super::threads::{Totals, add_to_counters};
use super::tx::{Step, Tx};
use super::{Item, Store, StoreError, key, keys, s};
use crate::domain::ids::{MessageId, Seq, ThreadId, UserId, Version};
use crate::domain::model::{Message, Thread};
use crate::domain::timestamp::Timestamp;

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

/// What an import of one thread did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Written now.
    Written {
        /// Another thread had exactly these participants already; this one joined its
        /// reservation instead of taking the set.
        shares_set: bool,
    },
    /// Already there from an earlier run; left as it was.
    AlreadyThere,
    /// Imported by an earlier run and deleted since (its purge is under way); left deleted.
    DeletedSince,
}

/// One member's read state, derived from per-message reads.
struct ReadState {
    unread: u64,
    read_seq: u64,
    sent: u64,
}

fn read_state(thread: &ImportedThread, user: &UserId) -> ReadState {
    let read: HashSet<usize> =
        thread.reads.iter().filter(|(u, _, _)| u == user).map(|(_, m, _)| *m).collect();
    let mut state = ReadState { unread: 0, read_seq: 0, sent: 0 };
    let mut contiguous = true;
    for (i, (sender, _, _)) in thread.messages.iter().enumerate() {
        let seq = i as u64 + 1;
        if sender == user {
            state.sent += 1;
        } else if !read.contains(&i) {
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

fn put(item: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(item)).build().expect("complete"))
        .build()
}

fn delete(key: Item) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().expect("complete"))
        .build()
}

impl Store {
    /// Imports a thread with its messages and read state; does nothing if it exists already.
    ///
    /// Messages and read events go first (idempotent puts), then one transaction writes the
    /// thread, its participant-set reservation (taken, or joined when another thread has the
    /// set), every membership and every counter, so the thread appears whole or not at all
    /// and an interrupted import is finished by running it again.
    pub async fn import_thread(&self, thread: &ImportedThread) -> Result<Imported, StoreError> {
        if self.get(key(keys::thread_pk(&thread.id), keys::META), true).await?.is_some() {
            return Ok(Imported::AlreadyThere);
        }
        let mut puts: Vec<Item> = Vec::new();
        let mut sent_by: HashMap<&UserId, u64> = HashMap::new();
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
                reactions: Vec::new(),
                reply_to: None,
                mentions: Vec::new(),
            };
            puts.push(encode(&MessageItem::new(&message, *sender_seq))?);
            // Each imported message is a change of its own, so the log starts whole.
            puts.push(encode(&ChangeItem::new(&thread.id, Version(message.id.seq.0), message.id.seq))?);
            last = Some(message);
        }
        for (user, index, read_at) in &thread.reads {
            puts.push(encode(&ReadEventItem::new(&thread.id, user, Seq(*index as u64 + 1), *read_at))?);
        }
        // An earlier run that stopped before its transaction may have written items this run
        // does not (it was told to skip other messages): they would otherwise sit at
        // positions the thread's count does not cover, where the next send would collide.
        let mut wanted: HashSet<(String, String)> = HashSet::new();
        for item in &puts {
            wanted.insert(key_of(item)?);
        }
        let mut writes = Vec::new();
        for (pk, sk) in self.partition_keys(&keys::thread_pk(&thread.id)).await? {
            if sk == keys::PURGE {
                return Ok(Imported::DeletedSince);
            }
            if !wanted.contains(&(pk.clone(), sk.clone())) {
                writes.push(delete(key(pk, sk)));
            }
        }
        writes.extend(puts.into_iter().map(put));
        self.batch_write(writes).await?;

        let record = Thread {
            id: thread.id.clone(),
            participants: thread.participants.clone(),
            owner: thread.owner.clone(),
            created: thread.created,
            updated: thread.updated,
            message_count: thread.messages.len() as u64,
            deleted_count: 0,
            last_message: last,
            version: Version(thread.messages.len() as u64),
        };
        let pset = participant_set_hash(&thread.participants);
        let meta = encode(&ThreadItem::new(&record, pset.clone()))?;
        let states: Vec<(&UserId, ReadState)> =
            thread.participants.iter().map(|p| (p, read_state(thread, p))).collect();
        let what = format!("importing thread {}", thread.id);
        let (pset, meta, record, states) = (&pset, &meta, &record, &states);
        retrying(&what, |_| async move {
            let reserved = self.participant_set(pset).await?;
            let shares_set = reserved.is_some();
            let mut tx = Tx::default();
            tx.put(Step::Thread, meta.clone(), Cond::new().missing(attr::PK));
            // Joining a set does not care which thread holds it, and `ADD` to a set is the same
            // however often it runs.
            psets::join(&mut tx, Step::ParticipantSet, pset, reserved.as_ref(), &thread.id)?;
            for (p, state) in states {
                let member = MembershipItem::new(record, p, state.unread, state.read_seq, state.sent);
                tx.put(Step::Membership, encode(&member)?, Cond::new());
                add_to_counters(&mut tx, p, Totals { threads: 1, ..Totals::unread(state.unread as i64, 0) });
            }
            match self.transact(tx).await {
                Ok(()) => Ok(Next::Done(Imported::Written { shares_set })),
                Err(f) if f.failed(Step::Thread) => Ok(Next::Done(Imported::AlreadyThere)),
                // The set was taken or freed between the read and the write: read it again.
                Err(f) if f.is_race() => Ok(Next::Retry(Why::Unsettled)),
                Err(f) => Err(f.into()),
            }
        })
        .await
    }

    /// Every key in one partition (keys only).
    async fn partition_keys(&self, pk: &str) -> Result<Vec<(String, String)>, StoreError> {
        let q = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .projection_expression("#pk, #sk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true);
        self.query_items(q, None).await?.iter().map(key_of).collect()
    }
}

fn key_of(item: &Item) -> Result<(String, String), StoreError> {
    let part = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("an item without a string {name}")))
    };
    Ok((part(attr::PK)?, part(attr::SK)?))
}
