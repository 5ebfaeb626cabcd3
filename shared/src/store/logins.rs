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

use super::{Item, Store, StoreError, attempts, backoff, key, keys, n, s, table};

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

fn is_condition_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
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
        for attempt in attempts() {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let counted = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(k.clone()))
                // The first attempt opens the window in the same call; an expired window that
                // TTL has not removed yet is replaced below.
                .update_expression(
                    "SET window_end = if_not_exists(window_end, :end), #ttl = if_not_exists(#ttl, :end) ADD #attempts :me",
                )
                .condition_expression(
                    "attribute_not_exists(window_end) OR (window_end > :now AND (attribute_not_exists(#attempts) OR contains(#attempts, :id) OR size(#attempts) < :limit))",
                )
                .expression_attribute_names("#attempts", ATTEMPTS)
                .expression_attribute_names("#ttl", table::TTL_ATTRIBUTE)
                .expression_attribute_values(":end", n(now + window))
                .expression_attribute_values(":me", member(attempt_id))
                .expression_attribute_values(":id", s(format!("{attempt_id:032x}")))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":limit", n(limit))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let old = match counted {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return Ok(Failures {
                        attempt: attempt_id,
                        count: attempts_in(&item),
                        window_end: number(&item, "window_end"),
                        counted: true,
                    });
                }
                Err(e) if is_condition_failure(&e) => match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                },
                Err(e) => return Err(StoreError::from_sdk(e)),
            };
            if let Some(old) = old.filter(|i| number(i, "window_end") > now) {
                return Ok(Failures {
                    attempt: attempt_id,
                    count: attempts_in(&old),
                    window_end: number(&old, "window_end"),
                    counted: false,
                });
            }
            // The window has ended: start a new one, unless a concurrent attempt just did (then
            // count in it).
            let mut item = k.clone();
            item.insert(ATTEMPTS.into(), member(attempt_id));
            item.insert("window_end".into(), n(now + window));
            item.insert(table::TTL_ATTRIBUTE.into(), n(now + window));
            let started = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR window_end <= :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match started {
                Ok(_) => {
                    return Ok(Failures {
                        attempt: attempt_id,
                        count: 1,
                        window_end: now + window,
                        counted: true,
                    });
                }
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(StoreError::from_sdk(e)),
            }
        }
        Err(StoreError::busy("login attempt counter kept changing"))
    }

    /// Gives back an attempt counted by [`Store::reserve_login_attempt`] (one that was not a
    /// failure), unless its window has been replaced since.
    pub async fn release_login_attempt(&self, subject: &str, reserved: &Failures) -> Result<(), StoreError> {
        let released = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(keys::login_failures_pk(subject), keys::LOGIN_FAILURES)))
            .update_expression("DELETE #attempts :me")
            .condition_expression("window_end = :end")
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_values(":me", member(reserved.attempt))
            .expression_attribute_values(":end", n(reserved.window_end))
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
