//! Login attempt counters (per username and address pair, per username, per address) that
//! expire by themselves.
//!
//! An attempt is counted before its password is checked, with one conditional update, so
//! concurrent guesses (on any number of Lambda instances) cannot all read "under the limit"
//! and all be checked: at most the limit is ever checked per window.
//!
//! A window holds the ids of the attempts counted in it (a string set), not a number: adding
//! or removing one id is idempotent, so the SDK's own retry of an update whose first try did
//! land (a timeout, a dropped connection) neither counts an attempt twice nor gives one back
//! twice. With `ADD count -1`, a retried give-back let more than the limit be checked.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::error::is_condition_failure;
use super::expr::{Change, Cond};
use super::items::attr;
use super::retry::{Next, Why, retrying};
use super::{Item, Store, StoreError, key, keys, n, s, table};

/// A subject's window after an attempt asked to be counted in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// The attempt's id in the window.
    pub attempt: u128,
    /// Attempts counted in the window (this one included when `counted`).
    pub count: u64,
    /// When the window ends (seconds since the epoch).
    pub window_end: i64,
    /// False when the window was full and the attempt was not counted (nor may it go ahead).
    pub counted: bool,
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// How many attempts a window holds.
fn attempts_in(item: &Item) -> u64 {
    item.get(ATTEMPTS).and_then(|v| v.as_ss().ok()).map_or(0, |ids| ids.len() as u64)
}

/// The attribute holding a window's attempt ids.
const ATTEMPTS: &str = "attempts";

/// One attempt's id, as the set member that stands for it.
fn member(attempt: u128) -> AttributeValue {
    AttributeValue::Ss(vec![format!("{attempt:032x}")])
}

impl Store {
    /// Counts one attempt for a subject if its open window has fewer than `limit`, or in a new
    /// window of `window` seconds if none is open; otherwise counts nothing and says so.
    pub async fn reserve_login_attempt(
        &self,
        subject: &str,
        attempt_id: u128,
        limit: u64,
        now: i64,
        window: i64,
    ) -> Result<Failures, StoreError> {
        let k = key(keys::login_failures_pk(subject), keys::LOGIN_FAILURES);
        let me = format!("{attempt_id:032x}");
        let counted =
            |count, window_end, counted| Failures { attempt: attempt_id, count, window_end, counted };
        let (k, me, counted) = (&k, &me, &counted);
        retrying("login attempt counter", |_| async move {
            // The first attempt opens the window in the same call; an expired window that TTL has
            // not removed yet is replaced below.
            let open = Cond::new().gt(attr::WINDOW_END, n(now)).and(
                Cond::new()
                    .missing(ATTEMPTS)
                    .or(Cond::new().contains(ATTEMPTS, s(me.as_str())))
                    .or(Cond::new().size_below(ATTEMPTS, limit)),
            );
            let add = Change::new()
                .set_if_missing(attr::WINDOW_END, n(now + window))
                .set_if_missing(table::TTL_ATTRIBUTE, n(now + window))
                .add(ATTEMPTS, member(attempt_id));
            let result = self
                .update_item(k.clone(), &add, &Cond::new().missing(attr::WINDOW_END).or(open))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let old = match result {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return Ok(Next::Done(counted(
                        attempts_in(&item),
                        number(&item, attr::WINDOW_END),
                        true,
                    )));
                }
                Err(e) if is_condition_failure(&e) => match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                },
                Err(e) => return Err(StoreError::from_sdk(e)),
            };
            if let Some(old) = old.filter(|i| number(i, attr::WINDOW_END) > now) {
                return Ok(Next::Done(counted(attempts_in(&old), number(&old, attr::WINDOW_END), false)));
            }
            // The window has ended: start a new one, unless a concurrent attempt just did (then
            // count in it).
            let mut item = k.clone();
            item.insert(ATTEMPTS.into(), member(attempt_id));
            item.insert(attr::WINDOW_END.into(), n(now + window));
            item.insert(table::TTL_ATTRIBUTE.into(), n(now + window));
            let ended = Cond::new().missing(attr::PK).or(Cond::new().le(attr::WINDOW_END, n(now)));
            let started = self.put_item(item, &ended).send().await;
            match started {
                Ok(_) => Ok(Next::Done(counted(1, now + window, true))),
                Err(e) if is_condition_failure(&e) => Ok(Next::Retry(Why::Moved)),
                Err(e) => Err(StoreError::from_sdk(e)),
            }
        })
        .await
    }

    /// Gives back an attempt counted by [`Store::reserve_login_attempt`] (one that was not a
    /// failure), unless its window has been replaced since.
    pub async fn release_login_attempt(&self, subject: &str, reserved: &Failures) -> Result<(), StoreError> {
        let released = self
            .update_item(
                key(keys::login_failures_pk(subject), keys::LOGIN_FAILURES),
                &Change::new().delete(ATTEMPTS, member(reserved.attempt)),
                &Cond::new().eq(attr::WINDOW_END, n(reserved.window_end)),
            )
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            // The window ended (or was cleared) meanwhile: there is nothing left to give back.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }

    /// Forgets a subject's attempts (after a successful login).
    pub async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key(keys::login_failures_pk(subject), keys::LOGIN_FAILURES)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }
}
