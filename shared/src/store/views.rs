//! A member's own view of a thread: whether they muted it (until when) and whether they
//! archived it. Nobody else's view changes.
//!
//! A muted thread keeps its own unread counts, but the member's totals leave it out. The
//! counters item keeps the totals over every thread, and beside them what each muted thread
//! holds of them (`attr::muted`): every write that moves a member's unread counts while the
//! thread is muted moves that share too, and the totals shown subtract the shares of mutes
//! still on. A mute that ends needs no write: its share stops being subtracted.
//!
//! An archived view leaves the member's list (its `GSI1PK` moves to their archived list); the
//! next message brings it back unless the thread is muted (see `append`).

use serde::{Deserialize, Serialize};

use super::expr::{Change, Cond};
use super::items::attr::MutedPart;
use super::items::{attr, encode};
use super::retry::{Next, retrying};
use super::threads::{WriteError, archived_as_read, mute_as_read, without_muted_share};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s};
use crate::domain::ids::{ThreadId, UserId};
use crate::domain::model::{Membership, Mute};
use crate::domain::rules::Refusal;
use crate::domain::timestamp::Timestamp;

/// How long a change of a view is kept for the fan-out (which reads it from the stream at once).
const VIEW_CHANGE_TTL_SECS: i64 = 3600;

/// What a member asks to change of their view; `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewChange {
    /// The new mute.
    pub mute: Option<Mute>,
    /// Archived or not.
    pub archived: Option<bool>,
}

/// The record of a member's change of their view, which the fan-out tells their devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ViewChangeItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user: UserId,
    pub thread: ThreadId,
    /// The mute as stored on the view (absent when off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<String>,
    #[serde(default)]
    pub archived: bool,
    pub changed_at: Timestamp,
    pub expires_at: i64,
}

impl ViewChangeItem {
    /// The view as changed.
    pub(crate) fn view(&self) -> Result<(Mute, bool), StoreError> {
        let mute = Mute::from_stored(self.muted_until.as_deref())
            .map_err(|_| StoreError::Corrupt(format!("a mute of {} ends at no time", self.thread)))?;
        Ok((mute, self.archived))
    }
}

/// The transaction that sets a member's view to `mute` and `archived`, as read: the view
/// (if its counts, mute and archive are still as read), the thread's share of their totals
/// (set from the view while muted, gone otherwise), their count of archived threads, and the
/// record their other devices hear of.
pub(crate) fn plan_view_change(
    m: &Membership,
    mute: Mute,
    archived: bool,
    now: Timestamp,
) -> Result<Tx, StoreError> {
    let (user, thread) = (&m.user, &m.thread.id);
    let mut view = Change::new();
    view = match mute.stored() {
        Some(end) => view.set(attr::MUTED_UNTIL, s(end)),
        None => view.remove(attr::MUTED_UNTIL),
    };
    view = match archived {
        true => view
            .set(attr::ARCHIVED, aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .set(attr::GSI1PK, s(keys::archived_index_pk(user))),
        false => view.remove(attr::ARCHIVED).set(attr::GSI1PK, s(keys::user_pk(user))),
    };
    let mut tx = Tx::default();
    tx.update(
        Step::Membership,
        key(keys::user_pk(user), keys::membership_sk(thread)),
        view,
        Cond::new()
            .exists(attr::PK)
            .eq(attr::UNREAD, n(m.unread))
            .number_is(attr::UNREAD_MENTIONS, m.unread_mentions)
            .and(mute_as_read(m))
            .and(archived_as_read(m)),
    );
    let mut counters = Change::new();
    match mute.stored() {
        Some(end) => {
            counters = counters
                .set(attr::muted(MutedPart::Until, thread), s(end))
                .set(attr::muted(MutedPart::Unread, thread), n(m.unread))
                .set(attr::muted(MutedPart::Threads, thread), n(u64::from(m.unread > 0)))
                .set(attr::muted(MutedPart::Mentions, thread), n(m.unread_mentions));
        }
        None if m.mute != Mute::Off => counters = without_muted_share(counters, thread),
        None => {}
    }
    if archived != m.archived {
        counters = counters.add(attr::ARCHIVED_THREADS, n(if archived { 1 } else { -1 }));
    }
    if counters != Change::new() {
        tx.update(Step::Counters, key(keys::user_pk(user), keys::COUNTERS), counters, Cond::new());
    }
    let record = ViewChangeItem {
        pk: keys::user_pk(user),
        sk: keys::view_change_sk(thread),
        user: user.clone(),
        thread: thread.clone(),
        muted_until: mute.stored(),
        archived,
        changed_at: now,
        expires_at: now.unix() + VIEW_CHANGE_TTL_SECS,
    };
    tx.put(Step::ViewChange, encode(&record)?, Cond::new());
    Ok(tx)
}

impl Store {
    /// Changes the caller's own view of a thread; answers it as it is after. A thread they are
    /// not in is not found.
    pub async fn change_view(
        &self,
        user: &UserId,
        thread: &ThreadId,
        change: ViewChange,
    ) -> Result<Membership, WriteError> {
        retrying("view change", |_| async move {
            let Some(m) = self.membership(user, thread).await? else {
                return Err(Refusal::NotFound.into());
            };
            let mute = change.mute.unwrap_or(m.mute);
            let archived = change.archived.unwrap_or(m.archived);
            if mute == m.mute && archived == m.archived {
                return Ok(Next::Done(m));
            }
            let tx = plan_view_change(&m, mute, archived, Timestamp::now())?;
            match self.transact(tx).await {
                Ok(()) => Ok(Next::Done(Membership { mute, archived, ..m })),
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| StoreError::from(f).into()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Seq;
    use crate::domain::testing::{id, thread};

    fn view(unread: u64, mentions: u64) -> Membership {
        Membership {
            thread: thread(&["a", "b"]),
            user: id("b"),
            unread,
            read_seq: Seq(0),
            sent: 0,
            unread_mentions: mentions,
            mute: Mute::Off,
            archived: false,
        }
    }

    #[test]
    fn muting_parks_the_threads_share_and_unmuting_takes_it_back() {
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let tx = plan_view_change(&view(3, 1), Mute::Always, false, now).unwrap();
        let counters = tx.of(Step::Counters).next().unwrap().change().unwrap().to_string();
        assert_eq!(
            counters,
            "SET muted_until#t1 = \"always\", muted_unread#t1 = 3, muted_threads#t1 = 1, muted_mentions#t1 = 1"
        );
        let membership = tx.of(Step::Membership).next().unwrap();
        assert_eq!(
            membership.cond.to_string(),
            "attribute_exists(PK) AND unread = 3 AND unread_mentions = 1 AND attribute_not_exists(muted_until) AND attribute_not_exists(archived)"
        );
        assert_eq!(tx.of(Step::ViewChange).count(), 1);

        let muted = Membership { mute: Mute::Always, ..view(3, 1) };
        let tx = plan_view_change(&muted, Mute::Off, true, now).unwrap();
        let counters = tx.of(Step::Counters).next().unwrap().change().unwrap().to_string();
        assert_eq!(
            counters,
            "ADD archived_threads 1 REMOVE muted_until#t1, muted_unread#t1, muted_threads#t1, muted_mentions#t1"
        );
        let change = tx.of(Step::Membership).next().unwrap().change().unwrap().to_string();
        assert_eq!(change, "SET archived = true, GSI1PK = \"USER#b#ARCHIVED\" REMOVE muted_until");
    }

    #[test]
    fn the_totals_shown_leave_out_the_mutes_still_on() {
        use crate::domain::model::{Counters, MutedTotals};
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let share = |mute, unread, mentions| MutedTotals { mute, unread, threads: 1, mentions };
        let counters = Counters {
            unread_total: 10,
            unread_threads: 3,
            mentions: 2,
            muted: vec![
                share(Mute::Always, 4, 1),
                share(Mute::Until(now.plus_seconds(60)), 3, 0),
                // Ended a second ago: counted again, stale share and all.
                share(Mute::Until(now.plus_seconds(-1)), 99, 99),
            ],
            ..Counters::default()
        };
        let shown = counters.shown(now);
        assert_eq!((shown.unread_count, shown.threads, shown.mentions), (3, 1, 1));
        assert_eq!(counters.shown(now.plus_seconds(120)).unread_count, 6, "the timed mute ended");
    }
}
