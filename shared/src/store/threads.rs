//! Threads: creation (deduplicated by participant set), members' views, listing and deletion.

use std::collections::HashMap;

use super::expr::{Change, Cond};
use super::items::attr::MutedPart;
use super::items::{MembershipItem, ParticipantSetItem, PurgeMarkerItem, ThreadItem, attr, decode, encode};
use super::page::{Direction, PageSpec, Slice};
use super::psets::{self, participant_set_hash};
use super::query::ListSpec;
use super::retry::{Next, Why, retrying};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s, table};
use crate::domain::ids::{ThreadId, UserId};
use crate::domain::model::{Membership, Mute, Thread};
use crate::domain::rules::{self, Actor, Refusal};
use crate::domain::timestamp::Timestamp;

/// Whether a create made a new thread or found the one with the same participants.
#[derive(Debug)]
pub enum CreateThreadOutcome {
    /// A new thread; the caller's view of it.
    Created(Membership),
    /// A thread with exactly these participants existed already.
    Existing(Membership),
}

/// Why a write that the rules may refuse did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The rules refused it, for what was read.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Storage failed or stayed contended.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds to `tx` the change of a user's totals.
pub(crate) fn add_to_counters(tx: &mut Tx, user: &UserId, by: Totals) {
    tx.update(Step::Counters, key(keys::user_pk(user), keys::COUNTERS), totals_change(by), Cond::new());
}

/// Adds `by` to a member's totals, and, while they have the thread muted, to what the thread
/// holds of them, so that the totals they see leave it out. The member's view must be written
/// in the same transaction on condition that its mute is as read ([`mute_as_read`]).
pub(crate) fn add_to_member_counters(tx: &mut Tx, m: &Membership, by: Totals, now: Timestamp) {
    let mut change = totals_change(by);
    if m.mute.active_at(now) {
        for (part, value) in [
            (MutedPart::Unread, by.unread),
            (MutedPart::Threads, by.unread_threads),
            (MutedPart::Mentions, by.mentions),
        ] {
            if value != 0 {
                change = change.add(attr::muted(part, &m.thread.id), n(value));
            }
        }
    }
    tx.update(Step::Counters, key(keys::user_pk(&m.user), keys::COUNTERS), change, Cond::new());
}

fn totals_change(by: Totals) -> Change {
    let mut change = Change::new()
        .add(attr::THREAD_COUNT, n(by.threads))
        .add(attr::UNREAD_TOTAL, n(by.unread))
        .add(attr::UNREAD_THREADS, n(by.unread_threads));
    if by.mentions != 0 {
        change = change.add(attr::MENTIONS, n(by.mentions));
    }
    if by.archived != 0 {
        change = change.add(attr::ARCHIVED_THREADS, n(by.archived));
    }
    change
}

/// `change` also taking away what a muted thread holds of its member's totals (see `views`).
pub(crate) fn without_muted_share(mut change: Change, thread: &ThreadId) -> Change {
    for part in [MutedPart::Until, MutedPart::Unread, MutedPart::Threads, MutedPart::Mentions] {
        change = change.remove(attr::muted(part, thread));
    }
    change
}

/// The condition that a member's mute of the thread is as read: a write that moves their
/// unread counts knows whether the thread's share of their totals moves too.
pub(crate) fn mute_as_read(m: &Membership) -> Cond {
    match m.mute.stored() {
        Some(end) => Cond::new().eq(attr::MUTED_UNTIL, s(end)),
        None => Cond::new().missing(attr::MUTED_UNTIL),
    }
}

/// The condition that a member's view is archived as read.
pub(crate) fn archived_as_read(m: &Membership) -> Cond {
    match m.archived {
        true => Cond::new().eq(attr::ARCHIVED, aws_sdk_dynamodb::types::AttributeValue::Bool(true)),
        false => Cond::new().missing(attr::ARCHIVED),
    }
}

/// How a transaction moves one user's totals (the `COUNTERS` item).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Threads they take part in.
    pub threads: i64,
    /// Unread messages.
    pub unread: i64,
    /// Threads with unread messages.
    pub unread_threads: i64,
    /// Unread mentions.
    pub mentions: i64,
    /// Archived threads.
    pub archived: i64,
}

impl Totals {
    /// `unread` more unread messages, in a thread that had `had` before.
    pub fn unread(unread: i64, had: u64) -> Self {
        let now = had as i64 + unread;
        Self { unread, unread_threads: i64::from(now > 0) - i64::from(had > 0), ..Self::default() }
    }
}

/// Adds to `tx` the actions that take a member out of a thread: their membership goes (if its
/// unread count is still the one read) and their counters drop by what it held.
pub(crate) fn take_out(tx: &mut Tx, m: &Membership) {
    tx.delete(
        Step::Membership,
        key(keys::user_pk(&m.user), keys::membership_sk(&m.thread.id)),
        Cond::new()
            .eq(attr::UNREAD, n(m.unread))
            .number_is(attr::UNREAD_MENTIONS, m.unread_mentions)
            .and(mute_as_read(m))
            .and(archived_as_read(m)),
    );
    let totals = Totals {
        threads: -1,
        mentions: -(m.unread_mentions as i64),
        archived: -i64::from(m.archived),
        ..Totals::unread(-(m.unread as i64), m.unread)
    };
    let mut change = totals_change(totals);
    if m.mute != Mute::Off {
        // The thread's share of the totals goes with it (an expired mute's too).
        change = without_muted_share(change, &m.thread.id);
    }
    tx.update(Step::Counters, key(keys::user_pk(&m.user), keys::COUNTERS), change, Cond::new());
}

/// The transaction that creates `thread` with its participant set `pset`: its metadata, the
/// set's reservation (which must be free), and each participant's view and thread count.
pub(crate) fn plan_create(thread: &Thread, pset: &str) -> Result<Tx, StoreError> {
    let mut tx = Tx::default();
    let absent = || Cond::new().missing(attr::PK);
    tx.put(Step::Thread, encode(&ThreadItem::new(thread, pset.to_owned()))?, absent());
    tx.put(Step::ParticipantSet, encode(&ParticipantSetItem::new(pset, &thread.id))?, absent());
    for p in &thread.participants {
        tx.put(Step::Membership, encode(&MembershipItem::new(thread, p, 0, 0, 0))?, Cond::new());
        add_to_counters(&mut tx, p, Totals { threads: 1, ..Totals::default() });
    }
    Ok(tx)
}

/// What a thread's delete reads before it writes.
pub(crate) struct DeleteRead {
    /// The thread's metadata.
    pub meta: ThreadItem,
    /// Every participant's view.
    pub members: HashMap<UserId, Membership>,
    /// The reservation of its participant set.
    pub reserved: Option<ParticipantSetItem>,
}

impl DeleteRead {
    /// True when the reads agree: every participant's view, and a reservation naming the
    /// thread. Otherwise a change of participants landed between them (one that put the set
    /// back, too), which the transaction's conditions could not notice: an item missing from
    /// what was read is not in the transaction to be checked.
    pub(crate) fn complete(&self) -> bool {
        let t = &self.meta.thread;
        t.participants.iter().all(|p| self.members.contains_key(p))
            && self.reserved.as_ref().is_some_and(|r| r.names(&t.id))
    }
}

/// The transaction that deletes a thread as read: its metadata (if its set is still the one
/// read), its place in the set's reservation, every view and what it counted; the purge marker
/// drives the removal of its messages afterwards.
pub(crate) fn plan_delete(read: &DeleteRead) -> Result<Tx, StoreError> {
    let thread = &read.meta.thread.id;
    let mut tx = Tx::default();
    tx.delete(
        Step::Thread,
        key(keys::thread_pk(thread), keys::META),
        Cond::new().eq(attr::PSET, s(&read.meta.pset)),
    );
    if let Some(reserved) = &read.reserved {
        psets::release(&mut tx, Step::ParticipantSet, reserved, thread);
    }
    tx.put(Step::PurgeMarker, encode(&PurgeMarkerItem::new(thread))?, Cond::new());
    let mut members: Vec<&Membership> = read.members.values().collect();
    members.sort_by(|a, b| a.user.cmp(&b.user));
    for m in members {
        take_out(&mut tx, m);
    }
    Ok(tx)
}

impl Store {
    /// One member's view of a thread, or `None` if they are not in it (or it does not exist).
    pub async fn membership(
        &self,
        user: &UserId,
        thread: &ThreadId,
    ) -> Result<Option<Membership>, StoreError> {
        let item = self.get(key(keys::user_pk(user), keys::membership_sk(thread)), true).await?;
        let membership = item.map(|i| decode::<MembershipItem>(i)?.into_membership()).transpose()?;
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
            let m = decode::<MembershipItem>(item)?.into_membership()?;
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

    /// A thread's metadata (administration; the API reads memberships instead).
    pub async fn thread(&self, thread: &ThreadId) -> Result<Option<Thread>, StoreError> {
        Ok(self.thread_item(thread).await?.map(|t| t.thread))
    }

    pub(crate) async fn thread_item(&self, thread: &ThreadId) -> Result<Option<ThreadItem>, StoreError> {
        self.get(key(keys::thread_pk(thread), keys::META), true).await?.map(decode::<ThreadItem>).transpose()
    }

    /// A page of the user's threads, most recent activity first: those they archived, or the
    /// others.
    pub async fn list_threads(
        &self,
        user: &UserId,
        page: &PageSpec,
        archived: bool,
    ) -> Result<Slice<Membership>, StoreError> {
        let index_pk = match archived {
            true => keys::archived_index_pk(user),
            false => keys::user_pk(user),
        };
        let start_key = |sk: &str| {
            let (_, thread) = sk.rsplit_once('#')?;
            let thread: ThreadId = thread.parse().ok()?;
            let mut k = key(keys::user_pk(user), keys::membership_sk(&thread));
            k.insert(attr::GSI1PK.into(), s(&index_pk));
            k.insert(attr::GSI1SK.into(), s(sk));
            Some(k)
        };
        let spec = ListSpec {
            index: Some(table::GSI1),
            pk: (attr::GSI1PK, index_pk.clone()),
            sk: attr::GSI1SK,
            sk_prefix: None,
            descending: true,
            start_key: &start_key,
            skip: None,
        };
        self.list_page(&spec, page).await?.try_map(|i| decode::<MembershipItem>(i)?.into_membership())
    }

    /// Creates a thread owned by `owner` with these participants (owner included), unless one
    /// with exactly this participant set exists, which is returned instead.
    pub async fn create_thread(
        &self,
        owner: &UserId,
        participants: &[UserId],
    ) -> Result<CreateThreadOutcome, StoreError> {
        let pset = participant_set_hash(participants);
        let pset = &pset;
        retrying("thread creation", |_| async move {
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
            match self.transact(plan_create(&thread, pset)?).await {
                Ok(()) => {
                    let mine = MembershipItem::new(&thread, owner, 0, 0, 0).into_membership()?;
                    Ok(Next::Done(CreateThreadOutcome::Created(mine)))
                }
                Err(f) if f.failed(Step::ParticipantSet) => match self.thread_for_set(pset, owner).await? {
                    Some(existing) => Ok(Next::Done(CreateThreadOutcome::Existing(existing))),
                    // The set's last thread went meanwhile: try again.
                    None => Ok(Next::Retry(Why::Unsettled)),
                },
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| f.into()),
            }
        })
        .await
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
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(table::GSI1)
            .expression_attribute_values(":pk", s(keys::threads_shard_pk(shard)))
            .limit(wanted as i32);
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
        self.query_items(q, Some(wanted)).await?.into_iter().map(decode::<ThreadItem>).collect()
    }

    /// Deletes a thread for every participant at once (its owner, or staff); its messages are
    /// purged afterwards by the purge function, driven by the marker this transaction writes.
    pub async fn delete_thread(&self, thread: &ThreadId, actor: &Actor) -> Result<(), WriteError> {
        retrying("thread deletion", |_| async move {
            // The members' views and the set's reservation depend on the participants: read
            // beside the thread when they are known here, and after it otherwise.
            let (meta, guessed) = tokio::join!(
                self.thread_item(thread),
                self.guess_set_reads(thread, <[UserId]>::to_vec, |_| None)
            );
            let meta = meta?.ok_or(Refusal::NotFound)?;
            rules::may_delete_thread(actor, &meta.thread)?;
            self.hints.remember(thread, &meta.thread.participants);
            let read = match guessed {
                // The same set: the hash names it, in any order.
                Some(g) if g.pset == meta.pset => {
                    DeleteRead { meta, members: g.members, reserved: g.reserved }
                }
                _ => DeleteRead { meta, members: HashMap::new(), reserved: None },
            };
            let read = if read.complete() {
                read
            } else {
                let participants = &read.meta.thread.participants;
                let (members, reserved) = futures_util::future::try_join(
                    self.memberships(thread, participants),
                    self.participant_set(&read.meta.pset),
                )
                .await?;
                DeleteRead { members, reserved, ..read }
            };
            if !read.complete() {
                return Ok(Next::Retry(Why::Unsettled));
            }
            match self.transact(plan_delete(&read)?).await {
                Ok(()) => Ok(Next::Done(())),
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| StoreError::from(f).into()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Version;

    use crate::domain::testing::id;

    fn thread(participants: &[&str]) -> Thread {
        Thread {
            message_count: 4,
            deleted_count: 1,
            version: Version(5),
            ..crate::domain::testing::thread(participants)
        }
    }

    #[test]
    fn a_new_thread_reserves_its_set_and_counts_once_per_participant() {
        let t = thread(&["a", "b", "c"]);
        let tx = plan_create(&t, "h").unwrap();
        assert_eq!(tx.of(Step::Membership).count(), 3);
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(counters, vec!["ADD thread_count 1, unread_total 0, unread_threads 0"; 3]);
        assert_eq!(tx.of(Step::ParticipantSet).next().unwrap().cond.to_string(), "attribute_not_exists(PK)");
        assert_eq!(tx.of(Step::Thread).next().unwrap().cond.to_string(), "attribute_not_exists(PK)");
    }

    #[test]
    fn a_delete_takes_every_view_and_its_unread_out_and_leaves_a_purge_marker() {
        let t = thread(&["a", "b"]);
        let view = |u: &str, unread| Membership {
            thread: t.clone(),
            user: id(u),
            unread,
            read_seq: crate::domain::ids::Seq(0),
            sent: 0,
            unread_mentions: unread.min(2),
            mute: Default::default(),
            archived: false,
        };
        let meta = ThreadItem::new(&t, "h".into());
        let mut reserved = ParticipantSetItem::new("h", &t.id);
        reserved.others = vec!["t0".parse().unwrap()];
        let read = DeleteRead {
            meta,
            members: HashMap::from([(id("a"), view("a", 0)), (id("b"), view("b", 3))]),
            reserved: Some(reserved),
        };
        assert!(read.complete());
        let tx = plan_delete(&read).unwrap();
        assert_eq!(tx.of(Step::Thread).next().unwrap().cond.to_string(), "pset = \"h\"");
        let views: Vec<String> = tx.of(Step::Membership).map(|a| a.cond.to_string()).collect();
        assert_eq!(
            views,
            [
                "unread = 0 AND (attribute_not_exists(unread_mentions) OR unread_mentions = 0) AND attribute_not_exists(muted_until) AND attribute_not_exists(archived)",
                "unread = 3 AND unread_mentions = 2 AND attribute_not_exists(muted_until) AND attribute_not_exists(archived)"
            ]
        );
        let counters: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(
            counters,
            [
                "ADD thread_count -1, unread_total 0, unread_threads 0",
                "ADD thread_count -1, unread_total -3, unread_threads -1, mentions -2"
            ]
        );
        assert_eq!(tx.of(Step::PurgeMarker).count(), 1);
        assert_eq!(
            tx.of(Step::ParticipantSet).next().unwrap().change().unwrap().to_string(),
            "SET thread = \"t0\" DELETE others {t0}"
        );

        let missing_one = DeleteRead { members: HashMap::from([(id("a"), view("a", 0))]), ..read };
        assert!(!missing_one.complete(), "a view missing from the reads is read again");
    }
}
