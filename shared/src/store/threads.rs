//! Threads: creation (deduplicated by participant set), membership, listing, participants and deletion.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use sha2::{Digest, Sha256};

use super::items::{MembershipItem, ParticipantSetItem, PurgeMarkerItem, ThreadItem, attr, decode, encode};
use super::page::{Direction, PageSpec, Slice};
use super::{
    Item, ListSpec, Step, Store, StoreError, Tx, attempts, backoff, key, keys, n, s, table, tx_delete,
    tx_put, tx_update, update,
};
use crate::ids::{ThreadId, UserId};
use crate::model::{Membership, Thread};
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

/// Why a participant could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum ParticipantError {
    /// No such thread.
    #[error("no such thread")]
    NoThread,
    /// Adding someone already in, or removing someone not in.
    #[error("that user is already a participant")]
    AlreadyIn,
    /// Removing someone who is not a participant.
    #[error("that user is not a participant")]
    NotIn,
    /// The owner stays.
    #[error("the owner cannot be removed")]
    Owner,
    /// A thread keeps between 2 and the maximum participants.
    #[error("a thread needs 2 to 32 participants")]
    Size,
    /// Another thread already has exactly the resulting participants.
    #[error("another thread already has exactly these participants")]
    SetTaken,
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

/// What [`Store::guess_set_reads`] read for a guessed participant set.
pub(crate) struct SetReads {
    /// The guessed set's hash: the write uses these reads only if the thread's is the same.
    pub pset: String,
    /// The views read, by member.
    pub members: HashMap<UserId, Membership>,
    /// The set's reservation, if there is one.
    pub reserved: Option<ParticipantSetItem>,
}

fn reservation(pset: &str, thread: &ThreadId) -> Result<Item, StoreError> {
    encode(&ParticipantSetItem::new(pset, thread))
}

/// A one-element string set, for `ADD` and `DELETE` on a reservation's other threads.
pub(crate) fn thread_set(thread: &ThreadId) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::Ss(vec![thread.to_string()])
}

impl Store {
    /// One member's view of a thread, or `None` if they are not in it (or it does not exist).
    pub async fn membership(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<Membership>, StoreError> {
        let item = self.get(key(keys::user_pk(user), keys::membership_sk(thread)), true).await?;
        let membership =
            item.map(|i| decode::<MembershipItem>(i).map(MembershipItem::into_membership)).transpose()?;
        if let Some(m) = &membership {
            self.hints.remember(thread, &m.thread.participants);
        }
        Ok(membership)
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

    /// A member's view of a thread and every other member's, read consistently, for a write
    /// that changes them all. With a hint of the participants (`hints`), all in one batch, and
    /// anyone the hint missed after it; without one, the member's first, then the others'.
    /// `None` if `member` is not in the thread.
    pub(crate) async fn member_and_others(
        &self,
        member: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<(Membership, HashMap<UserId, Membership>)>, StoreError> {
        let mut members = match self.hints.participants(thread) {
            Some(mut hinted) => {
                if !hinted.contains(member) {
                    hinted.push(member.clone());
                }
                self.memberships(thread, &hinted).await?
            }
            None => match self.membership(member, thread).await? {
                Some(mine) => HashMap::from([(member.clone(), mine)]),
                None => return Ok(None),
            },
        };
        let Some(mine) = members.remove(member) else { return Ok(None) };
        self.hints.remember(thread, &mine.thread.participants);
        members.retain(|user, _| mine.thread.participants.contains(user));
        let missed: Vec<UserId> = mine
            .thread
            .participants
            .iter()
            .filter(|p| *p != member && !members.contains_key(*p))
            .cloned()
            .collect();
        if !missed.is_empty() {
            members.extend(self.memberships(thread, &missed).await?);
        }
        Ok(Some((mine, members)))
    }

    /// For a write that reads from a thread's participants (their views, their set's
    /// reservation) only after its metadata: those reads made beside the metadata instead, for
    /// the participants the instance remembers (`hints`), with the views of `views(participants)`.
    /// `None` without a hint, or when the reads fail: they are then made after the metadata.
    pub(crate) async fn guess_set_reads(
        &self,
        thread: &ThreadId,
        views: impl FnOnce(&[UserId]) -> Vec<UserId>,
    ) -> Option<SetReads> {
        let participants = self.hints.participants(thread)?;
        let pset = participant_set_hash(&participants);
        let (members, reserved) = futures_util::future::try_join(
            self.memberships(thread, &views(&participants)),
            self.participant_set(&pset),
        )
        .await
        .ok()?;
        Some(SetReads { pset, members, reserved })
    }

    /// A thread's metadata (administration; the API reads memberships instead).
    pub async fn thread(&self, thread: &ThreadId) -> Result<Option<Thread>, StoreError> {
        Ok(self.thread_item(thread).await?.map(|t| t.thread))
    }

    pub(crate) async fn thread_item(&self, thread: &ThreadId) -> Result<Option<ThreadItem>, StoreError> {
        self.get(key(keys::thread_pk(thread), keys::META), true).await?.map(decode::<ThreadItem>).transpose()
    }

    /// Creates a thread owned by `owner` with these participants (owner included), unless one
    /// with exactly this participant set exists, which is returned instead.
    pub async fn create_thread(
        &self,
        owner: &UserId,
        participants: &[UserId],
    ) -> Result<CreateThreadOutcome, CreateThreadError> {
        let pset = participant_set_hash(participants);
        for attempt in attempts() {
            let now = Timestamp::now();
            let thread = Thread {
                id: ThreadId::generate(),
                participants: participants.to_vec(),
                owner: owner.clone(),
                created: now,
                updated: now,
                message_count: 0,
                deleted_count: 0,
                last_message: None,
                version: Default::default(),
            };
            let meta = ThreadItem::new(&thread, pset.clone());
            let exists_not = Some("attribute_not_exists(PK)");
            let mut tx = Tx::default();
            tx.push(Step::Thread, tx_put(self.table(), encode(&meta)?, exists_not));
            tx.push(Step::ParticipantSet, tx_put(self.table(), reservation(&pset, &thread.id)?, exists_not));
            for p in participants {
                let member = MembershipItem::new(&thread, p, 0, 0, 0);
                tx.push(Step::Membership, tx_put(self.table(), encode(&member)?, None));
                tx.push(Step::Counters, self.counters_update(p, 1, 0, 0));
            }
            match self.transact(tx).await {
                Ok(()) => {
                    let mine = MembershipItem::new(&thread, owner, 0, 0, 0).into_membership();
                    return Ok(CreateThreadOutcome::Created(mine));
                }
                Err(f) if f.failed(Step::ParticipantSet) => {
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
        Err(StoreError::busy("thread creation stayed contended").into())
    }

    /// The caller's view of the thread that has this participant set: when several threads
    /// share it (imported ones), the most recently active now, ties to the larger id, which is
    /// also the one the caller's thread list shows first. Reading the live memberships, rather
    /// than a choice stored in the reservation, is what lets a send in any of them move it
    /// without the send touching the reservation.
    pub(crate) async fn thread_for_set(
        &self,
        pset: &str,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let Some(reserved) = self.participant_set(pset).await? else {
            return Ok(None);
        };
        if reserved.others.is_empty() {
            return self.membership(user, &reserved.thread).await;
        }
        let threads: Vec<&ThreadId> = reserved.threads().collect();
        let mut newest: Option<Membership> = None;
        for chunk in threads.chunks(100) {
            let keys = chunk.iter().map(|t| key(keys::user_pk(user), keys::membership_sk(t))).collect();
            for item in self.batch_get(keys).await? {
                let m = decode::<MembershipItem>(item)?.into_membership();
                let activity = |m: &Membership| keys::activity_sk(m.thread.updated, &m.thread.id);
                if newest.as_ref().is_none_or(|n| activity(&m) > activity(n)) {
                    newest = Some(m);
                }
            }
        }
        Ok(newest)
    }

    pub(crate) async fn participant_set(&self, pset: &str) -> Result<Option<ParticipantSetItem>, StoreError> {
        let item = self.get(key(keys::participant_set_pk(pset), keys::PARTICIPANT_SET), true).await?;
        item.map(decode::<ParticipantSetItem>).transpose()
    }

    /// The action that takes `thread` out of its set's reservation, or `None` if the
    /// reservation does not name it. The set stays reserved while any thread has it: a
    /// holder that goes hands the reservation to one of the others (which one does not matter,
    /// since [`Store::thread_for_set`] picks among all of them by activity); the last one frees
    /// it. Each action's condition is the state it was computed from, so a concurrent import
    /// joining the set makes the delete retry instead of dropping the newcomer.
    pub(crate) fn release(
        &self,
        reserved: &ParticipantSetItem,
        thread: &ThreadId,
    ) -> Option<TransactWriteItem> {
        let table = self.table();
        let k = || key(reserved.pk.clone(), reserved.sk.clone());
        let me = s(thread.as_str());
        // `others` is a reserved word in expressions, so both names go through placeholders.
        let named = |u: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
            u.expression_attribute_names("#others", attr::SET_OTHERS)
                .expression_attribute_values(":me", me.clone())
        };
        if &reserved.thread == thread {
            let Some(heir) = reserved.others.first() else {
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(k()))
                    .condition_expression("#holder = :me AND attribute_not_exists(#others)")
                    .expression_attribute_names("#holder", attr::SET_HOLDER)
                    .expression_attribute_names("#others", attr::SET_OTHERS)
                    .expression_attribute_values(":me", me)
                    .build()
                    .expect("complete");
                return Some(TransactWriteItem::builder().delete(delete).build());
            };
            return Some(tx_update(
                named(update(table, k()))
                    .expression_attribute_names("#holder", attr::SET_HOLDER)
                    .update_expression("SET #holder = :heir DELETE #others :heirs")
                    .condition_expression("#holder = :me AND contains(#others, :heir)")
                    .expression_attribute_values(":heir", s(heir.as_str()))
                    .expression_attribute_values(":heirs", thread_set(heir)),
            ));
        }
        reserved.others.contains(thread).then(|| {
            tx_update(
                named(update(table, k()))
                    .update_expression("DELETE #others :mine")
                    .condition_expression("contains(#others, :me)")
                    .expression_attribute_values(":mine", thread_set(thread)),
            )
        })
    }

    /// An update of a user's counters, as a transaction action.
    pub(crate) fn counters_update(
        &self,
        user: &UserId,
        threads: i64,
        unread: i64,
        unread_threads: i64,
    ) -> TransactWriteItem {
        tx_update(
            update(self.table(), key(keys::user_pk(user), keys::COUNTERS))
                .update_expression("ADD thread_count :t, unread_total :u, unread_threads :ut")
                .expression_attribute_values(":t", n(threads))
                .expression_attribute_values(":u", n(unread))
                .expression_attribute_values(":ut", n(unread_threads)),
        )
    }

    /// Adds the actions that take a member out of a thread: their membership goes (if its
    /// unread count is still the one read) and their counters drop by what it held.
    pub(crate) fn leave(&self, tx: &mut Tx, m: &Membership) {
        let condition = ("unread = :u", ":u", n(m.unread));
        let unread = m.unread as i64;
        tx.push(
            Step::Membership,
            tx_delete(
                self.table(),
                key(keys::user_pk(&m.user), keys::membership_sk(&m.thread.id)),
                Some(condition),
            ),
        );
        tx.push(Step::Counters, self.counters_update(&m.user, -1, -unread, -i64::from(unread > 0)));
    }

    /// A page of the user's threads, most recent activity first.
    pub async fn list_threads(
        &self,
        user: &UserId,
        page: &PageSpec,
    ) -> Result<Slice<Membership>, StoreError> {
        let start_key = |sk: &str| {
            let (_, thread) = sk.rsplit_once('#')?;
            let thread: ThreadId = thread.parse().ok()?;
            let mut k = key(keys::user_pk(user), keys::membership_sk(&thread));
            k.insert(attr::GSI1PK.into(), s(keys::user_pk(user)));
            k.insert(attr::GSI1SK.into(), s(sk));
            Some(k)
        };
        let spec = ListSpec {
            index: Some(table::GSI1),
            pk: (attr::GSI1PK, keys::user_pk(user)),
            sk: attr::GSI1SK,
            sk_prefix: None,
            descending: true,
            start_key: &start_key,
            skip: None,
        };
        self.list_page(&spec, page)
            .await?
            .try_map(|i| decode::<MembershipItem>(i).map(MembershipItem::into_membership))
    }

    /// A page of every thread, most recent activity first (administration): one query per
    /// shard of the all-threads index, merged.
    pub async fn list_all_threads(&self, page: &PageSpec) -> Result<Slice<Thread>, StoreError> {
        let reverse = page.backwards();
        let wanted = page.limit + 1;
        let shards = (0..keys::THREAD_SHARDS).map(|shard| self.shard_page(shard, page, wanted));
        let mut items: Vec<ThreadItem> = Vec::new();
        for shard in futures_util::future::join_all(shards).await {
            items.extend(shard?);
        }
        items.sort_by(|a, b| if reverse { a.gsi1sk.cmp(&b.gsi1sk) } else { b.gsi1sk.cmp(&a.gsi1sk) });
        Ok(page.cut(items, |t| Some(t.gsi1sk.clone())).map(|t| t.thread))
    }

    async fn shard_page(
        &self,
        shard: u8,
        page: &PageSpec,
        wanted: usize,
    ) -> Result<Vec<ThreadItem>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(table::GSI1)
                .expression_attribute_values(":pk", s(keys::threads_shard_pk(shard)))
                .limit((wanted - items.len()) as i32)
                .set_exclusive_start_key(start.take());
            q = match &page.after {
                None => q.key_condition_expression("GSI1PK = :pk").scan_index_forward(false),
                Some(after) => {
                    let (op, forward) =
                        if page.direction == Direction::Forward { ("<", false) } else { (">", true) };
                    q.key_condition_expression(format!("GSI1PK = :pk AND GSI1SK {op} :k"))
                        .expression_attribute_values(":k", s(after.clone()))
                        .scan_index_forward(forward)
                }
            };
            let out = q.send().await.map_err(StoreError::from_sdk)?;
            for item in out.items.unwrap_or_default() {
                items.push(decode::<ThreadItem>(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if items.len() < wanted => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes a thread for every participant at once; its messages are purged afterwards by
    /// the purge function, driven by the marker this transaction writes. `by` is the user
    /// asking (who must be its owner), or `None` for an administrator.
    pub async fn delete_thread(
        &self,
        thread: &ThreadId,
        by: Option<&UserId>,
    ) -> Result<(), DeleteThreadError> {
        for attempt in attempts() {
            // The members' views and the set's reservation depend on the participants: read
            // beside the thread when they are known here, and after it otherwise.
            let (meta, guessed) =
                tokio::join!(self.thread_item(thread), self.guess_set_reads(thread, <[UserId]>::to_vec));
            let Some(meta) = meta? else {
                return Err(DeleteThreadError::NotFound);
            };
            let current = &meta.thread;
            if let Some(user) = by {
                if !current.participants.contains(user) {
                    return Err(DeleteThreadError::NotFound);
                }
                if &current.owner != user {
                    return Err(DeleteThreadError::NotOwner);
                }
            }
            self.hints.remember(thread, &current.participants);
            // Every participant's view and a reservation naming the thread, or a change of
            // participants landed between the reads (one that put the set back, too): nothing the
            // transaction's conditions would catch, so whatever is missing is read again.
            let complete = |members: &HashMap<UserId, Membership>, reserved: &Option<ParticipantSetItem>| {
                current.participants.iter().all(|p| members.contains_key(p))
                    && reserved.as_ref().is_some_and(|r| r.names(thread))
            };
            let (members, reserved) = match guessed {
                // The same set: the hash names it, in any order.
                Some(g) if g.pset == meta.pset && complete(&g.members, &g.reserved) => {
                    (g.members, g.reserved)
                }
                _ => {
                    futures_util::future::try_join(
                        self.memberships(thread, &current.participants),
                        self.participant_set(&meta.pset),
                    )
                    .await?
                }
            };
            if !complete(&members, &reserved) {
                backoff(attempt).await;
                continue;
            }
            let table = self.table();
            let mut tx = Tx::default();
            tx.push(
                Step::Thread,
                tx_delete(
                    table,
                    key(keys::thread_pk(thread), keys::META),
                    Some(("pset = :p", ":p", s(&meta.pset))),
                ),
            );
            if let Some(give_up) = reserved.as_ref().and_then(|r| self.release(r, thread)) {
                tx.push(Step::ParticipantSet, give_up);
            }
            tx.push(Step::PurgeMarker, tx_put(table, encode(&PurgeMarkerItem::new(thread))?, None));
            for m in members.values() {
                self.leave(&mut tx, m);
            }
            match self.transact(tx).await {
                Ok(()) => return Ok(()),
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(StoreError::from(f).into()),
            }
        }
        Err(StoreError::busy("thread deletion stayed contended").into())
    }

    /// Adds a participant (administration). They join with everything so far counted as read.
    pub async fn add_participant(&self, thread: &ThreadId, user: &UserId) -> Result<(), ParticipantError> {
        let t = self.thread(thread).await?.ok_or(ParticipantError::NoThread)?;
        if t.participants.contains(user) {
            return Err(ParticipantError::AlreadyIn);
        }
        let participants = t.participants.iter().chain([user]).cloned().collect();
        self.admin_change(thread, participants).await
    }

    /// Removes a participant other than the owner (administration).
    pub async fn remove_participant(&self, thread: &ThreadId, user: &UserId) -> Result<(), ParticipantError> {
        let t = self.thread(thread).await?.ok_or(ParticipantError::NoThread)?;
        if !t.participants.contains(user) {
            return Err(ParticipantError::NotIn);
        }
        if &t.owner == user {
            return Err(ParticipantError::Owner);
        }
        let participants = t.participants.iter().filter(|p| *p != user).cloned().collect();
        self.admin_change(thread, participants).await
    }

    async fn admin_change(
        &self,
        thread: &ThreadId,
        participants: Vec<UserId>,
    ) -> Result<(), ParticipantError> {
        let change = super::MemberChange { participants: Some(participants), owner: None };
        match self.change_members(thread, None, &change).await {
            Ok(_) => Ok(()),
            Err(super::MembersError::NotFound) => Err(ParticipantError::NoThread),
            Err(super::MembersError::Size | super::MembersError::TooMany) => Err(ParticipantError::Size),
            Err(super::MembersError::SetTaken(_)) => Err(ParticipantError::SetTaken),
            Err(super::MembersError::Store(e)) => Err(e.into()),
            Err(e) => Err(StoreError::Corrupt(format!("unexpected refusal of an administrator: {e}")).into()),
        }
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
