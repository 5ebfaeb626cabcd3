//! Threads: creation (deduplicated by participant set), membership, listing and deletion.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use sha2::{Digest, Sha256};

use super::items::{MembershipItem, ThreadFacts, ThreadItem, decode, encode};
use super::{Item, ListSpec, MAX_WRITE_ATTEMPTS, Store, StoreError, backoff, key, keys, n, s, table};
use crate::ids::{ThreadId, UserId};
use crate::model::Membership;
use crate::pagination::{PageRequest, Slice};
use crate::timestamp::Timestamp;

/// Whether a create made a new thread or found the one with the same participants.
#[derive(Debug)]
pub enum CreateThreadOutcome {
    /// A new thread; the caller's view of it.
    Created(Membership),
    /// A thread with exactly these participants existed already.
    Existing(Membership),
}

/// Why a thread could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateThreadError {
    /// Storage failed or stayed contended.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a thread could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteThreadError {
    /// No such thread among the caller's.
    #[error("not found")]
    NotFound,
    /// The caller takes part but does not own it.
    #[error("only the owner may delete a thread")]
    NotOwner,
    /// Storage failed or stayed contended.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The participant-set hash: the same set in any order gives the same hash.
pub(crate) fn participant_set_hash(participants: &[UserId]) -> String {
    let mut ids: Vec<&str> = participants.iter().map(UserId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let digest = Sha256::digest(ids.join("\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn put(table: &str, item: Item, condition: Option<&str>) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .expect("complete"),
        )
        .build()
}

impl Store {
    /// One member's view of a thread, or `None` if they are not in it (or it does not exist).
    pub async fn membership(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<Membership>, StoreError> {
        let item = self.get(key(keys::user_pk(user), keys::membership_sk(thread)), true).await?;
        item.map(|i| decode::<MembershipItem>(i).map(MembershipItem::into_membership)).transpose()
    }

    /// Several members' views of one thread, in one batch read.
    pub(crate) async fn memberships(
        &self,
        thread: &ThreadId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Membership>, StoreError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = users.iter().map(|u| key(keys::user_pk(u), keys::membership_sk(thread))).collect();
        let mut found = HashMap::new();
        for item in self.batch_get(keys).await? {
            let m = decode::<MembershipItem>(item)?.into_membership();
            found.insert(m.user.clone(), m);
        }
        Ok(found)
    }

    /// Creates a thread owned by `owner` with these participants (owner included), unless one
    /// with exactly this participant set exists, which is returned instead.
    pub async fn create_thread(
        &self,
        owner: &UserId,
        participants: &[UserId],
    ) -> Result<CreateThreadOutcome, CreateThreadError> {
        let pset = participant_set_hash(participants);
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let now = Timestamp::now();
            let facts = ThreadFacts {
                thread: ThreadId::generate(),
                participants: participants.to_vec(),
                owner: owner.clone(),
                created: now,
                updated: now,
                message_count: 0,
                last_message: None,
            };
            let meta = ThreadItem {
                pk: keys::thread_pk(&facts.thread),
                sk: keys::META.to_owned(),
                facts: facts.clone(),
                pset: pset.clone(),
            };
            let mut reservation = key(keys::participant_set_pk(&pset), keys::PARTICIPANT_SET);
            reservation.insert("thread".into(), s(facts.thread.as_str()));
            let mut actions = vec![
                put(self.table(), encode(&meta)?, Some("attribute_not_exists(PK)")),
                put(self.table(), reservation, Some("attribute_not_exists(PK)")),
            ];
            for p in participants {
                actions.push(put(self.table(), encode(&MembershipItem::new(&facts, p, 0, 0, 0))?, None));
                actions.push(self.counters_update(p, 1, 0, 0));
            }
            match self.transact(actions).await {
                Ok(()) => {
                    let mine = MembershipItem::new(&facts, owner, 0, 0, 0).into_membership();
                    return Ok(CreateThreadOutcome::Created(mine));
                }
                Err(f) if f.failed_condition(1) => {
                    if let Some(existing) = self.thread_for_set(&pset, owner).await? {
                        return Ok(CreateThreadOutcome::Existing(existing));
                    }
                    // The other thread is being deleted right now: try again.
                }
                Err(f) if f.is_race() => {}
                Err(f) => return Err(StoreError::from(f).into()),
            }
            backoff(attempt).await;
        }
        Err(StoreError::Transient("thread creation stayed contended".into()).into())
    }

    async fn thread_for_set(&self, pset: &str, user: &UserId) -> Result<Option<Membership>, StoreError> {
        let Some(item) = self.get(key(keys::participant_set_pk(pset), keys::PARTICIPANT_SET), true).await?
        else {
            return Ok(None);
        };
        let thread: ThreadId = item
            .get("thread")
            .and_then(|v| v.as_s().ok())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("participant set without thread".into()))?;
        self.membership(user, &thread).await
    }

    /// An update of a user's counters, as a transaction action.
    pub(crate) fn counters_update(
        &self,
        user: &UserId,
        threads: i64,
        unread: i64,
        unread_threads: i64,
    ) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key(keys::user_pk(user), keys::COUNTERS)))
                    .update_expression("ADD thread_count :t, unread_total :u, unread_threads :ut")
                    .expression_attribute_values(":t", n(threads))
                    .expression_attribute_values(":u", n(unread))
                    .expression_attribute_values(":ut", n(unread_threads))
                    .build()
                    .expect("complete"),
            )
            .build()
    }

    /// A page of the user's threads, most recent activity first.
    pub async fn list_threads(
        &self,
        user: &UserId,
        page: &PageRequest,
    ) -> Result<Slice<Membership>, StoreError> {
        let start_key = |sk: &str| {
            let (_, thread) = sk.rsplit_once('#')?;
            let thread: ThreadId = thread.parse().ok()?;
            let mut k = key(keys::user_pk(user), keys::membership_sk(&thread));
            k.insert("GSI1PK".into(), s(keys::user_pk(user)));
            k.insert("GSI1SK".into(), s(sk));
            Some(k)
        };
        let spec = ListSpec {
            index: Some(table::GSI1),
            pk: ("GSI1PK", keys::user_pk(user)),
            sk: "GSI1SK",
            sk_prefix: None,
            descending: true,
            start_key: &start_key,
        };
        self.list_page(&spec, page)
            .await?
            .try_map(|i| decode::<MembershipItem>(i).map(MembershipItem::into_membership))
    }

    /// Deletes a thread for every participant at once; its messages are purged afterwards
    /// by the purge function, driven by the marker this transaction writes.
    pub async fn delete_thread(&self, user: &UserId, thread: &ThreadId) -> Result<(), DeleteThreadError> {
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let Some(mine) = self.membership(user, thread).await? else {
                return Err(DeleteThreadError::NotFound);
            };
            if &mine.owner != user {
                return Err(DeleteThreadError::NotOwner);
            }
            let members = self.memberships(thread, &mine.participants).await?;
            let pset = participant_set_hash(&mine.participants);
            let delete = |k: Item, condition: &str| {
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(self.table())
                            .set_key(Some(k))
                            .condition_expression(condition)
                            .build()
                            .expect("complete"),
                    )
                    .build()
            };
            let mut actions = vec![
                delete(key(keys::thread_pk(thread), keys::META), "attribute_exists(PK)"),
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(self.table())
                            .set_key(Some(key(keys::participant_set_pk(&pset), keys::PARTICIPANT_SET)))
                            .build()
                            .expect("complete"),
                    )
                    .build(),
                put(self.table(), key(keys::thread_pk(thread), keys::PURGE), None),
            ];
            for p in &mine.participants {
                let Some(m) = members.get(p) else { continue };
                let d = Delete::builder()
                    .table_name(self.table())
                    .set_key(Some(key(keys::user_pk(p), keys::membership_sk(thread))))
                    .condition_expression("unread = :u")
                    .expression_attribute_values(":u", n(m.unread))
                    .build()
                    .expect("complete");
                actions.push(TransactWriteItem::builder().delete(d).build());
                let unread = m.unread as i64;
                actions.push(self.counters_update(p, -1, -unread, -i64::from(unread > 0)));
            }
            match self.transact(actions).await {
                Ok(()) => return Ok(()),
                Err(f) if f.failed_condition(0) => return Err(DeleteThreadError::NotFound),
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(StoreError::from(f).into()),
            }
        }
        Err(StoreError::Transient("thread deletion stayed contended".into()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_set_hash_ignores_order_and_duplicates() {
        let a: UserId = "a".parse().unwrap();
        let b: UserId = "b".parse().unwrap();
        assert_eq!(
            participant_set_hash(&[a.clone(), b.clone()]),
            participant_set_hash(&[b.clone(), a.clone(), b.clone()])
        );
        assert_ne!(participant_set_hash(&[a.clone(), b]), participant_set_hash(&[a]));
    }
}
