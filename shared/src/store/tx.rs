//! Transactions as plans build them: named actions over keys, with conditions and updates that
//! bind their own placeholders (`expr`), turned into a `TransactWriteItems` call only when run.
//! A plan's unit tests read the actions; nothing here needs DynamoDB until [`Store::transact`].

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

use super::error::{SdkCause, StoreError};
use super::expr::{Binder, Change, Cond};
use super::items::attr;
use super::retry::Why;
use super::{Item, Store};

/// The actions of a transaction, named so that a cancellation says which condition failed
/// without counting positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The record that makes a send (or an import) happen once.
    SendKey,
    /// A message waiting to be appended.
    Pending,
    /// A message.
    Message,
    /// A reply's preview of the message it answers.
    Reply,
    /// The message that becomes a thread's last one, checked unchanged.
    NewLast,
    /// An entry of a thread's change log.
    ChangeLog,
    /// The mention of a member by a message.
    Mention,
    /// The record of a member's change of their view of a thread.
    ViewChange,
    /// A thread's metadata item.
    Thread,
    /// A member's view of a thread.
    Membership,
    /// A user's totals.
    Counters,
    /// A read event.
    ReadEvent,
    /// The reservation of a participant set.
    ParticipantSet,
    /// The reservation a change of participants gives up.
    OldParticipantSet,
    /// The marker that drives a deleted thread's purge.
    PurgeMarker,
    /// The reservation of a username.
    Username,
    /// A user's profile.
    Profile,
    /// A used refresh token's id.
    UsedToken,
    /// A WebSocket ticket.
    Ticket,
    /// A WebSocket connection's records.
    Connection,
}

/// What an action does to its item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    /// Writes the whole item.
    Put(Item),
    /// Changes some attributes.
    Update(Change),
    /// Deletes the item.
    Delete,
    /// Only checks the condition.
    Check,
}

/// One action of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Action {
    /// Which part of the plan it is.
    pub step: Step,
    /// The item's key (`PK`, `SK`).
    pub key: Item,
    /// What it does.
    pub write: Write,
    /// What must hold for the transaction to commit.
    pub cond: Cond,
}

impl Action {
    /// The item's partition key.
    #[cfg(test)]
    pub(crate) fn pk(&self) -> &str {
        self.key.get(attr::PK).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
    }

    /// The item's sort key.
    #[cfg(test)]
    pub(crate) fn sk(&self) -> &str {
        self.key.get(attr::SK).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
    }

    /// The update, if the action is one.
    #[cfg(test)]
    pub(crate) fn change(&self) -> Option<&Change> {
        match &self.write {
            Write::Update(change) => Some(change),
            _ => None,
        }
    }

    fn into_sdk(self, table: &str) -> TransactWriteItem {
        let mut b = Binder::default();
        let builder = TransactWriteItem::builder();
        match self.write {
            Write::Put(item) => {
                let condition = b.condition(&self.cond);
                let (names, values) = b.into_maps();
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("table and item are set");
                builder.put(put).build()
            }
            Write::Update(change) => {
                let update = b.update(&change);
                let condition = b.condition(&self.cond);
                let (names, values) = b.into_maps();
                let update = Update::builder()
                    .table_name(table)
                    .set_key(Some(self.key))
                    .update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("table, key and expression are set");
                builder.update(update).build()
            }
            Write::Delete => {
                let condition = b.condition(&self.cond);
                let (names, values) = b.into_maps();
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(self.key))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("table and key are set");
                builder.delete(delete).build()
            }
            Write::Check => {
                let condition = b.condition(&self.cond).unwrap_or_else(|| "attribute_exists(PK)".into());
                let (names, values) = b.into_maps();
                let check = ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(self.key))
                    .condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("table, key and condition are set");
                builder.condition_check(check).build()
            }
        }
    }
}

/// DynamoDB's limit on the actions of one transaction.
pub(crate) const MAX_ACTIONS: usize = 100;

/// A transaction being planned: its actions, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tx {
    actions: Vec<Action>,
}

fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| *k == attr::PK || *k == attr::SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Tx {
    /// Writes a whole item if `cond` holds.
    pub(crate) fn put(&mut self, step: Step, item: Item, cond: Cond) {
        self.actions.push(Action { step, key: key_of(&item), write: Write::Put(item), cond });
    }

    /// Changes an item if `cond` holds.
    pub(crate) fn update(&mut self, step: Step, key: Item, change: Change, cond: Cond) {
        self.actions.push(Action { step, key, write: Write::Update(change), cond });
    }

    /// Deletes an item if `cond` holds.
    pub(crate) fn delete(&mut self, step: Step, key: Item, cond: Cond) {
        self.actions.push(Action { step, key, write: Write::Delete, cond });
    }

    /// Commits only if `cond` holds on an item it does not change.
    pub(crate) fn check(&mut self, step: Step, key: Item, cond: Cond) {
        self.actions.push(Action { step, key, write: Write::Check, cond });
    }

    /// Every action, in order.
    #[cfg(test)]
    pub(crate) fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The actions of one step.
    #[cfg(test)]
    pub(crate) fn of(&self, step: Step) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(move |a| a.step == step)
    }

    /// How many actions it holds.
    pub(crate) fn len(&self) -> usize {
        self.actions.len()
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub(crate) enum TxFailure {
    /// It was cancelled: the reason code of each action that failed, by step.
    Cancelled {
        /// `(step, code)` for every action whose code is not `None`.
        reasons: Vec<(Step, String)>,
        /// The SDK's error.
        source: SdkCause,
    },
    /// Any other failure.
    Other(StoreError),
}

/// Cancellation reasons a fresh attempt may not meet again: someone else's write got in the
/// way, or DynamoDB asked us to slow down.
const RETRYABLE_REASONS: [&str; 4] =
    ["ConditionalCheckFailed", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];

impl TxFailure {
    /// Why a fresh attempt may succeed: another writer committed first (a condition failed:
    /// read again at once), one was in flight on the same items (a conflict: back off), or
    /// DynamoDB throttled; `None` for a failure no retry fixes.
    pub(crate) fn why(&self) -> Option<Why> {
        match self {
            Self::Cancelled { reasons, .. } => {
                if reasons.is_empty() || !reasons.iter().all(|(_, c)| RETRYABLE_REASONS.contains(&c.as_str()))
                {
                    return None;
                }
                let any = |code: &str| reasons.iter().any(|(_, c)| c == code);
                Some(if any("ThrottlingError") || any("ProvisionedThroughputExceeded") {
                    Why::Throttled
                } else if any("TransactionConflict") {
                    Why::Conflict
                } else {
                    Why::Moved
                })
            }
            Self::Other(e) => e.is_transient().then_some(Why::Throttled),
        }
    }

    /// True when a concurrent writer (or throttling) got in the way and a fresh attempt may
    /// succeed; false for a cancellation no retry fixes.
    pub(crate) fn is_race(&self) -> bool {
        self.why().is_some()
    }

    /// True when an action of `step` failed its condition.
    pub(crate) fn failed(&self, step: Step) -> bool {
        matches!(self, Self::Cancelled { reasons, .. }
            if reasons.iter().any(|(s, code)| *s == step && code == "ConditionalCheckFailed"))
    }
}

impl From<TxFailure> for StoreError {
    fn from(f: TxFailure) -> Self {
        let retryable = f.is_race();
        match f {
            TxFailure::Cancelled { reasons, source } => {
                let text = reasons.iter().map(|(s, c)| format!("{s:?}: {c}")).collect::<Vec<_>>().join(", ");
                if retryable {
                    Self::Transient {
                        reason: format!("transaction cancelled ({text})"),
                        source: Some(source),
                    }
                } else {
                    Self::Refused { reasons: text, source }
                }
            }
            TxFailure::Other(e) => e,
        }
    }
}

impl Store {
    /// An `UpdateItem` request for one item, outside any transaction, with its expressions'
    /// placeholders bound.
    pub(crate) fn update_item(
        &self,
        key: Item,
        change: &Change,
        cond: &Cond,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let mut b = Binder::default();
        let update = b.update(change);
        let condition = b.condition(cond);
        let (names, values) = b.into_maps();
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }

    /// A `PutItem` request for one item, outside any transaction, with its condition's
    /// placeholders bound.
    pub(crate) fn put_item(
        &self,
        item: Item,
        cond: &Cond,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        let mut b = Binder::default();
        let condition = b.condition(cond);
        let (names, values) = b.into_maps();
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }

    /// Runs one transaction.
    pub(crate) async fn transact(&self, tx: Tx) -> Result<(), TxFailure> {
        // The token makes the SDK's own retries of this call idempotent (for 10 minutes).
        let token = uuid::Uuid::new_v4().simple().to_string();
        let steps: Vec<Step> = tx.actions.iter().map(|a| a.step).collect();
        let items: Vec<TransactWriteItem> =
            tx.actions.into_iter().map(|a| a.into_sdk(self.table())).collect();
        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() {
                    let reasons = steps
                        .iter()
                        .zip(c.cancellation_reasons())
                        .filter_map(|(step, r)| {
                            r.code().filter(|c| *c != "None").map(|c| (*step, c.to_owned()))
                        })
                        .collect();
                    return Err(TxFailure::Cancelled { reasons, source: Box::new(e) });
                }
                Err(TxFailure::Other(StoreError::from_sdk(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{key, n};
    use super::*;
    use crate::ApiError;

    fn cancelled(reasons: &[(Step, &str)]) -> TxFailure {
        TxFailure::Cancelled {
            reasons: reasons.iter().map(|(s, c)| (*s, (*c).to_owned())).collect(),
            source: "TransactionCanceledException".into(),
        }
    }

    #[test]
    fn lost_races_are_retried_and_then_busy() {
        let f =
            cancelled(&[(Step::Thread, "ConditionalCheckFailed"), (Step::Membership, "TransactionConflict")]);
        assert!(f.is_race());
        assert_eq!(f.why(), Some(Why::Conflict));
        assert_eq!(cancelled(&[(Step::Thread, "ConditionalCheckFailed")]).why(), Some(Why::Moved));
        assert!(f.failed(Step::Thread) && !f.failed(Step::Membership) && !f.failed(Step::SendKey));
        let e = StoreError::from(f);
        assert!(e.is_transient(), "{e}");
        assert_eq!(ApiError::from(e).status(), 503);
    }

    #[test]
    fn cancellations_no_retry_fixes_are_server_errors() {
        for code in ["ValidationError", "ItemCollectionSizeLimitExceeded"] {
            let f = cancelled(&[(Step::Message, code), (Step::Thread, "ConditionalCheckFailed")]);
            assert!(!f.is_race(), "{code}");
            let e = StoreError::from(f);
            assert!(matches!(e, StoreError::Refused { .. }), "{e}");
            assert!(std::error::Error::source(&e).is_some(), "the SDK's error is kept as the cause");
            assert_eq!(ApiError::from(e).status(), 500, "{code}");
        }
        // A cancellation that names no failed action is a bug, not a race.
        assert!(!cancelled(&[]).is_race());
    }

    #[test]
    fn actions_become_requests_with_their_own_placeholders() {
        let mut tx = Tx::default();
        tx.update(
            Step::Thread,
            key("THREAD#t", "META"),
            Change::new().set(attr::VERSION, n(2)),
            Cond::new().number_is(attr::VERSION, 1),
        );
        tx.check(Step::NewLast, key("THREAD#t", "MSG#1"), Cond::new().missing(attr::DELETED));
        assert_eq!(tx.of(Step::Thread).next().unwrap().pk(), "THREAD#t");
        let items: Vec<_> = tx.actions.into_iter().map(|a| a.into_sdk("table")).collect();
        let update = items[0].update().unwrap();
        assert_eq!(update.update_expression(), "SET #n0 = :v0");
        assert_eq!(update.condition_expression(), Some("#n0 = :v1"));
        let check = items[1].condition_check().unwrap();
        assert_eq!(check.condition_expression(), "attribute_not_exists(#n0)");
    }
}
