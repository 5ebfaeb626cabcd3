//! Who is in a thread: setting the participants, handing over ownership, leaving.
//!
//! Every change is one transaction over the thread's metadata, its participant-set
//! reservations, every membership and the counters of those who join or leave. It checks the
//! metadata's `pset`, `owner`, `message_count`, `deleted_count` and `version` as it read them, so it
//! serialises with sends, edits and deletes; those in turn check the metadata's
//! `size(participants)`, and a change that keeps the size either removes someone (whose
//! membership the racing write then finds gone) or only changes the owner (which touches no
//! attribute they write). Either way the racing writer re-reads, and nobody misses a message.

use std::collections::{HashMap, HashSet};

use super::edits::{deleted_count_is, version_is};
use super::items::{MembershipItem, ParticipantSetItem, encode};
use super::threads::{SetReads, participant_set_hash};
use super::{Step, Store, StoreError, Tx, attempts, backoff, key, keys, n, s, tx_put, tx_update, update};
use crate::ids::{Seq, ThreadId, UserId};
use crate::model::{MAX_PARTICIPANTS, Membership, Thread};

/// DynamoDB's limit on the actions of one transaction.
const MAX_ACTIONS: usize = 100;

/// What a change asks for; `None` keeps what is there.
#[derive(Debug, Clone, Default)]
pub struct MemberChange {
    /// The whole new participant set (the owner is kept in it).
    pub participants: Option<Vec<UserId>>,
    /// The new owner, who must be a participant afterwards.
    pub owner: Option<UserId>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    /// No such thread, or the caller is not in it.
    #[error("not found")]
    NotFound,
    /// The caller takes part but does not own it.
    #[error("only the owner may change who is in a thread")]
    NotOwner,
    /// The new owner would not be a participant.
    #[error("the new owner must be a participant")]
    OwnerNotParticipant,
    /// A thread keeps 2 to 32 participants.
    #[error("a thread needs 2 to 32 participants")]
    Size,
    /// Another thread has exactly the resulting participants.
    #[error("thread {0} already has exactly these participants")]
    SetTaken(ThreadId),
    /// The owner asked to leave.
    #[error("the owner cannot leave")]
    OwnerLeaving,
    /// Leaving would leave the thread with fewer than two participants.
    #[error("the last other participant cannot leave")]
    LastOther,
    /// More joins and leaves than one transaction holds.
    #[error("too many participants change at once")]
    TooMany,
    /// Storage failed or stayed contended.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Applies a change by `by` (the owner; `None` for an administrator). Returns the caller's
    /// view afterwards (`None` for an administrator).
    pub async fn change_members(
        &self,
        thread: &ThreadId,
        by: Option<&UserId>,
        change: &MemberChange,
    ) -> Result<Option<Membership>, MembersError> {
        self.apply(thread, by, None, |t| {
            if let Some(user) = by
                && &t.owner != user
            {
                return Err(MembersError::NotOwner);
            }
            let mut participants = change.participants.clone().unwrap_or_else(|| t.participants.clone());
            let owner = change.owner.clone().unwrap_or_else(|| t.owner.clone());
            // The owner stays, as the creator is always in a new thread.
            if !participants.contains(&t.owner) {
                participants.insert(0, t.owner.clone());
            }
            if !participants.contains(&owner) {
                return Err(MembersError::OwnerNotParticipant);
            }
            Ok((participants, owner))
        })
        .await
    }

    /// `user`, who is not the owner, leaves the thread.
    pub async fn leave_thread(&self, thread: &ThreadId, user: &UserId) -> Result<(), MembersError> {
        self.apply(thread, Some(user), Some(user), |t| {
            if &t.owner == user {
                return Err(MembersError::OwnerLeaving);
            }
            if t.participants.len() <= 2 {
                return Err(MembersError::LastOther);
            }
            let rest = t.participants.iter().filter(|p| *p != user).cloned().collect();
            Ok((rest, t.owner.clone()))
        })
        .await
        .map(|_| ())
    }

    /// Reads the thread, asks `decide` for the new participants and owner, and writes them.
    /// `leaver` names the one participant a leave takes out, known before the thread is read.
    async fn apply(
        &self,
        thread: &ThreadId,
        by: Option<&UserId>,
        leaver: Option<&UserId>,
        decide: impl Fn(&Thread) -> Result<(Vec<UserId>, UserId), MembersError>,
    ) -> Result<Option<Membership>, MembersError> {
        for attempt in attempts() {
            // A leave knows whose view it needs, and an instance that has read the thread knows
            // which set's reservation: both are read beside the thread, and used if the
            // thread's set is the one guessed.
            let guessed = async {
                let leaver = leaver?;
                self.guess_set_reads(thread, |_| vec![leaver.clone()]).await
            };
            let (meta, guessed) = tokio::join!(self.thread_item(thread), guessed);
            let meta = meta?.ok_or(MembersError::NotFound)?;
            let t = &meta.thread;
            if by.is_some_and(|u| !t.participants.contains(u)) {
                return Err(MembersError::NotFound);
            }
            self.hints.remember(thread, &t.participants);
            let (mut participants, owner) = decide(t)?;
            let mut seen = HashSet::new();
            participants.retain(|p| seen.insert(p.clone()));
            if participants.len() < 2 || participants.len() > MAX_PARTICIPANTS {
                return Err(MembersError::Size);
            }
            let old: HashSet<&UserId> = t.participants.iter().collect();
            let new: HashSet<&UserId> = participants.iter().collect();
            let joining: Vec<&UserId> = participants.iter().filter(|p| !old.contains(p)).collect();
            let leaving: Vec<&UserId> = t.participants.iter().filter(|p| !new.contains(p)).collect();
            let staying: Vec<&UserId> = participants.iter().filter(|p| old.contains(p)).collect();
            let pset = participant_set_hash(&participants);
            let set_changes = pset != meta.pset;
            if joining.is_empty() && leaving.is_empty() && owner == t.owner {
                return Ok(match by {
                    Some(u) => self.membership(u, thread).await?,
                    None => None,
                });
            }
            if 4 + staying.len() + 2 * (joining.len() + leaving.len()) > MAX_ACTIONS {
                return Err(MembersError::TooMany);
            }

            let leavers: Vec<UserId> = leaving.iter().map(|u| (*u).clone()).collect();
            // The leaver's view and the old set's reservation naming the thread, or a change of
            // participants landed between the reads (one that put the set back, too): nothing
            // the transaction's conditions would catch, so they are read again.
            let complete = |gone: &HashMap<UserId, Membership>, reserved: &Option<ParticipantSetItem>| {
                gone.len() == leaving.len()
                    && (!set_changes || reserved.as_ref().is_some_and(|r| r.names(thread)))
            };
            let guess_holds = |g: &SetReads| {
                g.pset == meta.pset
                    && joining.is_empty()
                    && leaver.is_some_and(|l| leavers.len() == 1 && &leavers[0] == l)
                    && complete(&g.members, &g.reserved)
            };
            let (gone, reserved, own_counts) = match guessed {
                Some(g) if guess_holds(&g) => (g.members, g.reserved, Vec::new()),
                _ => tokio::try_join!(
                    self.memberships(thread, &leavers),
                    async {
                        match set_changes {
                            true => self.participant_set(&meta.pset).await,
                            false => Ok(None),
                        }
                    },
                    // A member who comes back keeps counting their own messages where they left off.
                    futures_util::future::try_join_all(joining.iter().map(|u| self.sent_up_to(
                        thread,
                        u,
                        Seq(t.message_count)
                    )),),
                )?,
            };
            if !complete(&gone, &reserved) {
                backoff(attempt).await;
                continue;
            }

            let table = self.table();
            let list: aws_sdk_dynamodb::types::AttributeValue =
                serde_dynamo::to_attribute_value(&participants).map_err(StoreError::from)?;
            let after = Thread { participants: participants.clone(), owner: owner.clone(), ..t.clone() };
            let mut tx = Tx::default();
            tx.push(
                Step::Thread,
                tx_update(
                    update(table, key(keys::thread_pk(thread), keys::META))
                        .update_expression("SET participants = :list, pset = :new, #owner = :owner")
                        // The version too: a joiner's membership copies it, and must not miss an
                        // edit committed since the read.
                        .condition_expression(format!(
                            "pset = :old AND #owner = :was AND message_count = :n AND {} AND {}",
                            deleted_count_is(t.deleted_count),
                            version_is(t.version)
                        ))
                        .expression_attribute_values(":ver", n(t.version.0))
                        .expression_attribute_names("#owner", "owner")
                        .expression_attribute_values(":list", list.clone())
                        .expression_attribute_values(":new", s(&pset))
                        .expression_attribute_values(":old", s(&meta.pset))
                        .expression_attribute_values(":owner", s(owner.as_str()))
                        .expression_attribute_values(":was", s(t.owner.as_str()))
                        .expression_attribute_values(":n", n(t.message_count))
                        .expression_attribute_values(":d", n(t.deleted_count)),
                ),
            );
            if set_changes {
                tx.push(
                    Step::ParticipantSet,
                    tx_put(
                        table,
                        encode(&ParticipantSetItem::new(&pset, thread)).map_err(MembersError::Store)?,
                        Some("attribute_not_exists(PK)"),
                    ),
                );
                if let Some(give_up) = reserved.as_ref().and_then(|r| self.release(r, thread)) {
                    tx.push(Step::OldParticipantSet, give_up);
                }
            }
            for p in &staying {
                tx.push(
                    Step::Membership,
                    tx_update(
                        update(table, key(keys::user_pk(p), keys::membership_sk(thread)))
                            .update_expression("SET participants = :list, #owner = :owner")
                            .condition_expression("attribute_exists(PK)")
                            .expression_attribute_names("#owner", "owner")
                            .expression_attribute_values(":list", list.clone())
                            .expression_attribute_values(":owner", s(owner.as_str())),
                    ),
                );
            }
            for (p, sent) in joining.iter().zip(&own_counts) {
                // Joiners see the history, with nothing from before they joined unread.
                let joined = MembershipItem::new(&after, p, 0, t.message_count, *sent);
                tx.push(
                    Step::Membership,
                    tx_put(
                        table,
                        encode(&joined).map_err(MembersError::Store)?,
                        Some("attribute_not_exists(PK)"),
                    ),
                );
                tx.push(Step::Counters, self.counters_update(p, 1, 0, 0));
            }
            for m in gone.values() {
                self.leave(&mut tx, m);
            }
            match self.transact(tx).await {
                Ok(()) => {
                    self.hints.remember(thread, &participants);
                    return Ok(match by.filter(|u| new.contains(u)) {
                        Some(u) => self.membership(u, thread).await?,
                        None => None,
                    });
                }
                Err(f) if f.failed(Step::ParticipantSet) => {
                    let holder = self.participant_set(&pset).await?.map(|r| r.thread);
                    match holder {
                        Some(other) if &other != thread => return Err(MembersError::SetTaken(other)),
                        // The other thread went meanwhile: try again.
                        _ => backoff(attempt).await,
                    }
                }
                Err(f) if f.is_race() => backoff(attempt).await,
                Err(f) => return Err(StoreError::from(f).into()),
            }
        }
        Err(StoreError::busy("membership change stayed contended").into())
    }
}
