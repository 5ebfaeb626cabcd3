//! Who is in a thread: setting the participants, handing over ownership, leaving, and staff
//! adding and removing participants.
//!
//! Every change is one transaction over the thread's metadata, the reservations of its old and
//! new participant sets, every membership and the counters of those who join or leave. It
//! checks the metadata's `pset`, `owner`, `message_count`, `deleted_count` and `version` as it
//! read them, so it serialises with sends, edits and deletes; those in turn check the
//! metadata's `size(participants)`, and a change that keeps the size either removes someone
//! (whose membership the racing write then finds gone) or only changes the owner (which
//! touches no attribute they write). Either way the racing writer re-reads, and nobody misses
//! a message. A set another thread has already is shared (`psets`), never refused: no answer
//! may name or reveal a thread the caller is not in.

use std::collections::HashMap;

use super::expr::{Change, Cond};
use super::items::{MembershipItem, ParticipantSetItem, ThreadItem, attr, encode};
use super::psets::{self, participant_set_hash};
use super::retry::{Next, Why, retrying};
use super::threads::{Totals, WriteError, add_to_counters, take_out};
use super::tx::{MAX_ACTIONS, Step, Tx};
use super::{Store, StoreError, key, keys, n, s};
use crate::domain::ids::{Seq, ThreadId, UserId};
use crate::domain::model::{Membership, Thread};
use crate::domain::rules::{self, Actor, MemberChange, Members, Refusal};

/// What a change of members reads before it writes.
pub(crate) struct MembersRead {
    /// The thread's metadata.
    pub meta: ThreadItem,
    /// What the thread is to have.
    pub after: Members,
    /// The views of those who leave.
    pub gone: HashMap<UserId, Membership>,
    /// The reservation of the set it has now, when the set changes.
    pub reserved: Option<ParticipantSetItem>,
    /// The reservation of the set it is to have, when the set changes.
    pub next_reserved: Option<ParticipantSetItem>,
    /// How many messages each joiner had sent here before, in the order of `joining()`.
    pub joiners_sent: Vec<u64>,
}

impl MembersRead {
    fn before(&self) -> &Thread {
        &self.meta.thread
    }

    /// Those who join, in the order of the new participants.
    pub(crate) fn joining(&self) -> Vec<&UserId> {
        self.after.participants.iter().filter(|p| !self.before().participants.contains(p)).collect()
    }

    /// Those who leave.
    pub(crate) fn leaving(&self) -> Vec<&UserId> {
        self.before().participants.iter().filter(|p| !self.after.participants.contains(p)).collect()
    }

    /// The hash of the set the thread is to have.
    pub(crate) fn next_pset(&self) -> String {
        participant_set_hash(&self.after.participants)
    }

    fn set_changes(&self) -> bool {
        self.next_pset() != self.meta.pset
    }

    /// True when the reads agree: the view of everyone who leaves, and, when the set changes,
    /// a reservation of the old set naming the thread. Otherwise a change of participants landed
    /// between the reads (one that put the set back, too): nothing the transaction's conditions
    /// would catch, since an item missing from what was read is not in the transaction.
    pub(crate) fn complete(&self) -> bool {
        self.gone.len() == self.leaving().len()
            && (!self.set_changes() || self.reserved.as_ref().is_some_and(|r| r.names(&self.before().id)))
    }
}

/// The transaction of a change of members, as read.
pub(crate) fn plan_members(read: &MembersRead) -> Result<Tx, StoreError> {
    let t = read.before();
    let thread = &t.id;
    let after = Thread {
        participants: read.after.participants.clone(),
        owner: read.after.owner.clone(),
        ..t.clone()
    };
    let list: aws_sdk_dynamodb::types::AttributeValue =
        serde_dynamo::to_attribute_value(&after.participants)?;
    let next_pset = read.next_pset();
    let mut tx = Tx::default();
    // The version too: a joiner's membership copies it, and must not miss an edit committed
    // since the read.
    tx.update(
        Step::Thread,
        key(keys::thread_pk(thread), keys::META),
        Change::new()
            .set(attr::PARTICIPANTS, list.clone())
            .set(attr::PSET, s(&next_pset))
            .set(attr::OWNER, s(after.owner.as_str())),
        Cond::new()
            .eq(attr::PSET, s(&read.meta.pset))
            .eq(attr::OWNER, s(t.owner.as_str()))
            .eq(attr::MESSAGE_COUNT, n(t.message_count))
            .number_is(attr::DELETED_COUNT, t.deleted_count)
            .number_is(attr::VERSION, t.version.0),
    );
    if read.set_changes() {
        psets::join(&mut tx, Step::ParticipantSet, &next_pset, read.next_reserved.as_ref(), thread)?;
        if let Some(reserved) = &read.reserved {
            psets::release(&mut tx, Step::OldParticipantSet, reserved, thread);
        }
    }
    for p in after.participants.iter().filter(|p| t.participants.contains(p)) {
        tx.update(
            Step::Membership,
            key(keys::user_pk(p), keys::membership_sk(thread)),
            Change::new().set(attr::PARTICIPANTS, list.clone()).set(attr::OWNER, s(after.owner.as_str())),
            Cond::new().exists(attr::PK),
        );
    }
    for (p, sent) in read.joining().into_iter().zip(&read.joiners_sent) {
        // Joiners see the history, with nothing from before they joined unread.
        let joined = MembershipItem::new(&after, p, 0, t.message_count, *sent);
        tx.put(Step::Membership, encode(&joined)?, Cond::new().missing(attr::PK));
        add_to_counters(&mut tx, p, Totals { threads: 1, ..Totals::default() });
    }
    let mut gone: Vec<&Membership> = read.gone.values().collect();
    gone.sort_by(|a, b| a.user.cmp(&b.user));
    for m in gone {
        take_out(&mut tx, m);
    }
    if tx.len() > MAX_ACTIONS {
        // The rules allow at most 32 joins and leaves at once, which fits: a bug if not.
        return Err(StoreError::Corrupt(format!("a change of members needs {} actions", tx.len())));
    }
    Ok(tx)
}

impl Store {
    /// Applies a change by `actor` (the owner, or staff). Returns the caller's view afterwards
    /// (`None` for staff, and for an owner who handed the thread over and left it).
    pub async fn change_members(
        &self,
        thread: &ThreadId,
        actor: &Actor,
        change: &MemberChange,
    ) -> Result<Option<Membership>, WriteError> {
        self.apply(thread, actor, None, |t| rules::change_members(actor, t, change)).await
    }

    /// `user`, who is not the owner, leaves the thread.
    pub async fn leave_thread(&self, thread: &ThreadId, user: &UserId) -> Result<(), WriteError> {
        let actor = Actor::User(user.clone());
        self.apply(thread, &actor, Some(user), |t| rules::leave(user, t)).await.map(|_| ())
    }

    /// Staff add a participant; they join with everything so far counted as read.
    pub async fn add_participant(&self, thread: &ThreadId, user: &UserId) -> Result<(), WriteError> {
        self.apply(thread, &Actor::Staff, None, |t| rules::add_participant(t, user)).await.map(|_| ())
    }

    /// Staff remove a participant other than the owner.
    pub async fn remove_participant(&self, thread: &ThreadId, user: &UserId) -> Result<(), WriteError> {
        self.apply(thread, &Actor::Staff, None, |t| rules::remove_participant(t, user)).await.map(|_| ())
    }

    /// Reads the thread, asks the rule `decide` what it is to have, and writes that. `leaver`
    /// names the one participant a leave takes out, known before the thread is read.
    async fn apply(
        &self,
        thread: &ThreadId,
        actor: &Actor,
        leaver: Option<&UserId>,
        decide: impl Fn(&Thread) -> Result<Members, Refusal>,
    ) -> Result<Option<Membership>, WriteError> {
        let decide = &decide;
        retrying("membership change", |_| async move {
            // A leave knows whose view it needs and which set it makes, and an instance that has
            // read the thread knows its set: those are read beside the thread, and used if the
            // thread's set is the one guessed.
            let guessed = async {
                let leaver = leaver?;
                let without = |all: &[UserId]| Some(all.iter().filter(|p| *p != leaver).cloned().collect());
                self.guess_set_reads(thread, |_| vec![leaver.clone()], without).await
            };
            let (meta, guessed) = tokio::join!(self.thread_item(thread), guessed);
            let meta = meta?.ok_or(Refusal::NotFound)?;
            rules::may_take_part(actor, &meta.thread)?;
            self.hints.remember(thread, &meta.thread.participants);
            let after = decide(&meta.thread)?;
            if after.unchanged(&meta.thread) {
                return Ok(Next::Done(match actor.user() {
                    Some(u) => self.membership(u, thread).await?,
                    None => None,
                }));
            }
            let mut read = MembersRead {
                meta,
                after,
                gone: HashMap::new(),
                reserved: None,
                next_reserved: None,
                joiners_sent: Vec::new(),
            };
            let guess_holds = guessed.as_ref().is_some_and(|g| {
                g.pset == read.meta.pset
                    && read.joining().is_empty()
                    && g.next.as_ref().is_some_and(|(hash, _)| *hash == read.next_pset())
            });
            match guessed {
                Some(g) if guess_holds => {
                    read.gone = g.members;
                    read.reserved = g.reserved;
                    read.next_reserved = g.next.and_then(|(_, r)| r);
                }
                _ => {
                    let leavers: Vec<UserId> = read.leaving().into_iter().cloned().collect();
                    let joiners: Vec<UserId> = read.joining().into_iter().cloned().collect();
                    let (old_set, new_set) = match read.set_changes() {
                        true => (Some(read.meta.pset.clone()), Some(read.next_pset())),
                        false => (None, None),
                    };
                    let reservation = async |pset: Option<String>| match pset {
                        Some(p) => self.participant_set(&p).await,
                        None => Ok(None),
                    };
                    let count = Seq(read.meta.thread.message_count);
                    let (gone, reserved, next_reserved, sent) = tokio::try_join!(
                        self.memberships(thread, &leavers),
                        reservation(old_set),
                        reservation(new_set),
                        // A member who comes back counts their own messages where they left off.
                        futures_util::future::try_join_all(
                            joiners.iter().map(|u| self.sent_up_to(thread, u, count))
                        ),
                    )?;
                    read.gone = gone;
                    read.reserved = reserved;
                    read.next_reserved = next_reserved;
                    read.joiners_sent = sent;
                }
            }
            if !read.complete() {
                return Ok(Next::Retry(Why::Unsettled));
            }
            match self.transact(plan_members(&read)?).await {
                Ok(()) => {
                    self.hints.remember(thread, &read.after.participants);
                    Ok(Next::Done(match actor.user().filter(|u| read.after.participants.contains(u)) {
                        Some(u) => self.membership(u, thread).await?,
                        None => None,
                    }))
                }
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

    use crate::domain::testing::{id, ids};

    fn meta(participants: &[&str]) -> ThreadItem {
        let t =
            Thread { message_count: 6, version: Version(9), ..crate::domain::testing::thread(participants) };
        let pset = participant_set_hash(&t.participants);
        ThreadItem::new(&t, pset)
    }

    fn view(meta: &ThreadItem, user: &str, unread: u64) -> Membership {
        Membership {
            thread: meta.thread.clone(),
            user: id(user),
            unread,
            read_seq: Seq(1),
            sent: 0,
            unread_mentions: 0,
            mute: Default::default(),
            archived: false,
        }
    }

    #[test]
    fn a_leave_into_a_set_another_thread_has_joins_its_reservation() {
        let meta = meta(&["o", "x", "p"]);
        let thread = meta.thread.id.clone();
        let after = Members { participants: ids(&["o", "x"]), owner: id("o") };
        let read = MembersRead {
            gone: HashMap::from([(id("p"), view(&meta, "p", 2))]),
            reserved: Some(ParticipantSetItem::new(&meta.pset, &thread)),
            // O and X have a thread of their own.
            next_reserved: Some(ParticipantSetItem::new(
                &participant_set_hash(&after.participants),
                &"t0".parse().unwrap(),
            )),
            joiners_sent: Vec::new(),
            after,
            meta,
        };
        assert!(read.complete());
        let tx = plan_members(&read).unwrap();
        let joined = tx.of(Step::ParticipantSet).next().unwrap();
        assert_eq!(joined.change().unwrap().to_string(), "ADD others {t1}");
        assert_eq!(joined.cond.to_string(), "attribute_exists(PK)");
        let released = tx.of(Step::OldParticipantSet).next().unwrap();
        assert!(matches!(released.write, super::super::tx::Write::Delete), "the old set is freed");
        let cond = tx.of(Step::Thread).next().unwrap().cond.to_string();
        assert!(
            cond.contains("message_count = 6")
                && cond.contains("version = 9")
                && cond.contains("owner = \"o\""),
            "{cond}"
        );
        let gone: Vec<String> = tx.of(Step::Counters).map(|a| a.change().unwrap().to_string()).collect();
        assert_eq!(gone, ["ADD thread_count -1, unread_total -2, unread_threads -1"]);
        assert_eq!(tx.of(Step::Membership).count(), 3, "two views change, one goes");
    }

    #[test]
    fn joiners_start_with_nothing_unread_and_their_own_count() {
        let meta = meta(&["o", "x"]);
        let read = MembersRead {
            gone: HashMap::new(),
            reserved: Some(ParticipantSetItem::new(&meta.pset, &meta.thread.id)),
            next_reserved: None,
            joiners_sent: vec![4],
            after: Members { participants: ids(&["o", "x", "j"]), owner: id("o") },
            meta,
        };
        assert_eq!(read.joining(), [&id("j")]);
        let tx = plan_members(&read).unwrap();
        let joined = tx.of(Step::Membership).find(|a| a.pk() == "USER#j").unwrap();
        let super::super::tx::Write::Put(item) = &joined.write else { panic!("a new view") };
        let m =
            super::super::items::decode::<MembershipItem>(item.clone()).unwrap().into_membership().unwrap();
        assert_eq!((m.unread, m.read_seq, m.sent), (0, Seq(6), 4));
        assert_eq!(tx.of(Step::ParticipantSet).next().unwrap().cond.to_string(), "attribute_not_exists(PK)");
    }

    #[test]
    fn reads_missing_a_leaver_or_the_reservation_are_read_again() {
        let meta = meta(&["o", "x", "p"]);
        let read = MembersRead {
            gone: HashMap::new(),
            reserved: Some(ParticipantSetItem::new(&meta.pset, &meta.thread.id)),
            next_reserved: None,
            joiners_sent: Vec::new(),
            after: Members { participants: ids(&["o", "x"]), owner: id("o") },
            meta,
        };
        assert!(!read.complete());
        let other = ParticipantSetItem::new(&read.meta.pset, &"t9".parse().unwrap());
        let read = MembersRead {
            gone: HashMap::from([(id("p"), view(&read.meta, "p", 0))]),
            reserved: Some(other),
            ..read
        };
        assert!(!read.complete(), "a reservation that no longer names the thread");
    }
}
