//! Participant-set reservations: which threads have exactly a given set of participants.
//!
//! Creating a thread returns the existing one for an exact set, so each set is reserved by an
//! item naming the threads that have it: a holder and, as a string set, the others. Several
//! threads share a set after an import from Django (whose app never deduplicated) and after
//! membership changes: a change of participants, a leave or a removal never fails because
//! another thread has the resulting set, it joins that set's reservation instead. Only creation
//! dedupes, and it picks the most recently active of the set's threads.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::expr::{Change, Cond};
use super::items::{MembershipItem, ParticipantSetItem, attr, decode, encode};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys};
use crate::domain::ids::{ThreadId, UserId};
use crate::domain::model::Membership;

/// The participant-set hash: the same set in any order gives the same hash.
pub(crate) fn participant_set_hash(participants: &[UserId]) -> String {
    let mut ids: Vec<&str> = participants.iter().map(UserId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let digest = Sha256::digest(ids.join("\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A one-element string set, for `ADD` and `DELETE` on a reservation's other threads.
pub(crate) fn thread_set(thread: &ThreadId) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::Ss(vec![thread.to_string()])
}

/// Adds to `tx` the action that puts `thread` in the reservation of `pset`, as read
/// (`reserved`): a new reservation held by it if there was none, or it among the others. Each
/// is conditional on what was read (no reservation; one that still exists), so a concurrent
/// change of the reservation makes the write read again; adding to a set is idempotent.
pub(crate) fn join(
    tx: &mut Tx,
    step: Step,
    pset: &str,
    reserved: Option<&ParticipantSetItem>,
    thread: &ThreadId,
) -> Result<(), StoreError> {
    match reserved {
        None => tx.put(step, encode(&ParticipantSetItem::new(pset, thread))?, Cond::new().missing(attr::PK)),
        Some(r) => tx.update(
            step,
            key(r.pk.clone(), r.sk.clone()),
            Change::new().add(attr::SET_OTHERS, thread_set(thread)),
            Cond::new().exists(attr::PK),
        ),
    }
    Ok(())
}

/// Adds to `tx` the action that takes `thread` out of its set's reservation, as read; nothing
/// if the reservation does not name it. The set stays reserved while any thread has it: a
/// holder that goes hands the reservation to one of the others (which one does not matter,
/// since [`Store::thread_for_set`] picks among all of them by activity); the last one frees
/// it. Each action's condition is the state it was computed from, so a concurrent change of
/// the reservation makes the write retry instead of dropping a newcomer.
pub(crate) fn release(tx: &mut Tx, step: Step, reserved: &ParticipantSetItem, thread: &ThreadId) {
    let k = key(reserved.pk.clone(), reserved.sk.clone());
    let me = super::s(thread.as_str());
    if &reserved.thread == thread {
        match reserved.others.first() {
            None => tx.delete(step, k, Cond::new().eq(attr::SET_HOLDER, me).missing(attr::SET_OTHERS)),
            Some(heir) => tx.update(
                step,
                k,
                Change::new()
                    .set(attr::SET_HOLDER, super::s(heir.as_str()))
                    .delete(attr::SET_OTHERS, thread_set(heir)),
                Cond::new().eq(attr::SET_HOLDER, me).contains(attr::SET_OTHERS, super::s(heir.as_str())),
            ),
        }
    } else if reserved.others.contains(thread) {
        tx.update(
            step,
            k,
            Change::new().delete(attr::SET_OTHERS, thread_set(thread)),
            Cond::new().contains(attr::SET_OTHERS, me),
        );
    }
}

impl Store {
    /// The reservation of a participant set, if any thread has it.
    pub(crate) async fn participant_set(&self, pset: &str) -> Result<Option<ParticipantSetItem>, StoreError> {
        let item = self.get(key(keys::participant_set_pk(pset), keys::PARTICIPANT_SET), true).await?;
        item.map(decode::<ParticipantSetItem>).transpose()
    }

    /// The caller's view of the thread that has this participant set: when several threads
    /// share it, the most recently active now, ties to the larger id, which is also the one the
    /// caller's thread list shows first. Reading the live memberships, rather than a choice
    /// stored in the reservation, is what lets a send in any of them move it without the send
    /// touching the reservation.
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
                let m = decode::<MembershipItem>(item)?.into_membership()?;
                let activity = |m: &Membership| keys::activity_sk(m.thread.updated, &m.thread.id);
                if newest.as_ref().is_none_or(|n| activity(&m) > activity(n)) {
                    newest = Some(m);
                }
            }
        }
        Ok(newest)
    }

    /// For a write that reads what a thread's participants name (their views, their set's
    /// reservation, the reservation of the set it makes) only after its metadata: those reads
    /// made beside the metadata instead, for the participants the instance remembers (`hints`),
    /// with the views of `views(participants)` and the reservation of `next(participants)`.
    /// `None` without a hint, or when the reads fail: they are then made after the metadata.
    pub(crate) async fn guess_set_reads(
        &self,
        thread: &ThreadId,
        views: impl FnOnce(&[UserId]) -> Vec<UserId>,
        next: impl FnOnce(&[UserId]) -> Option<Vec<UserId>>,
    ) -> Option<SetReads> {
        let participants = self.hints.participants(thread)?;
        let pset = participant_set_hash(&participants);
        let next = next(&participants).map(|set| participant_set_hash(&set));
        let next_read = async {
            match &next {
                Some(hash) => self.participant_set(hash).await,
                None => Ok(None),
            }
        };
        let (members, reserved, next_reserved) = futures_util::future::try_join3(
            self.memberships(thread, &views(&participants)),
            self.participant_set(&pset),
            next_read,
        )
        .await
        .ok()?;
        Some(SetReads { pset, members, reserved, next: next.map(|hash| (hash, next_reserved)) })
    }
}

/// What [`Store::guess_set_reads`] read for a guessed participant set.
pub(crate) struct SetReads {
    /// The guessed set's hash: the write uses these reads only if the thread's is the same.
    pub pset: String,
    /// The views read, by member.
    pub members: HashMap<UserId, Membership>,
    /// The set's reservation, if there is one.
    pub reserved: Option<ParticipantSetItem>,
    /// The hash of the set the write would make, and its reservation, if that was guessed.
    pub next: Option<(String, Option<ParticipantSetItem>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> ThreadId {
        s.parse().unwrap()
    }

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

    #[test]
    fn joining_a_taken_set_adds_to_it_and_a_free_one_is_reserved() {
        let mut tx = Tx::default();
        join(&mut tx, Step::ParticipantSet, "h", None, &t("t1")).unwrap();
        let taken = ParticipantSetItem::new("h", &t("t0"));
        join(&mut tx, Step::ParticipantSet, "h", Some(&taken), &t("t1")).unwrap();
        let [fresh, shared] = tx.actions() else { panic!("two actions") };
        assert_eq!(fresh.cond.to_string(), "attribute_not_exists(PK)");
        assert!(matches!(fresh.write, super::super::tx::Write::Put(_)));
        assert_eq!(shared.change().unwrap().to_string(), "ADD others {t1}");
        assert_eq!(shared.cond.to_string(), "attribute_exists(PK)");
    }

    #[test]
    fn a_holder_that_goes_hands_over_and_the_last_frees_the_set() {
        let mut alone = ParticipantSetItem::new("h", &t("t1"));
        let mut tx = Tx::default();
        release(&mut tx, Step::ParticipantSet, &alone, &t("t1"));
        assert_eq!(tx.actions()[0].cond.to_string(), "thread = \"t1\" AND attribute_not_exists(others)");
        alone.others = vec![t("t2"), t("t3")];
        let mut tx = Tx::default();
        release(&mut tx, Step::ParticipantSet, &alone, &t("t1"));
        assert_eq!(tx.actions()[0].change().unwrap().to_string(), "SET thread = \"t2\" DELETE others {t2}");
        let mut tx = Tx::default();
        release(&mut tx, Step::ParticipantSet, &alone, &t("t3"));
        assert_eq!(tx.actions()[0].change().unwrap().to_string(), "DELETE others {t3}");
        let mut tx = Tx::default();
        release(&mut tx, Step::ParticipantSet, &alone, &t("t9"));
        assert_eq!(tx.len(), 0, "a reservation that does not name the thread is left alone");
    }
}
