//! The single-table DynamoDB store. Key design and access patterns: `docs/data-model.md`.

mod changelog;
pub mod changes;
mod connections;
mod edits;
mod hints;
mod import;
mod items;
pub mod keys;
mod logins;
mod members;
mod messages;
pub mod page;
pub mod purge;
pub mod table;
mod threads;
mod tokens;
mod users;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update, WriteRequest,
};

pub use changelog::{ChangeLog, ChangesSince};
pub use connections::{
    CONNECTION_TTL_SECS, ConnectError, InvalidTicket, TICKET_TTL_SECS, Ticket, TypingGate,
};
pub use edits::{DeleteMessageOutcome, EditOutcome};
pub use import::{Imported, ImportedThread};
pub use logins::Failures;
pub use members::{MemberChange, MembersError};
pub use messages::SendOutcome;
pub use threads::{CreateThreadError, CreateThreadOutcome, DeleteThreadError, ParticipantError};
pub use tokens::RefreshRejected;
pub use users::{CreateUserError, NewUser};

use page::{PageSpec, Slice};

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// How often a write that lost a race (transaction conflict or stale condition) is tried in all.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// An error from the SDK, kept whole as the cause of a store error.
pub type SdkCause = Box<dyn std::error::Error + Send + Sync>;

/// Failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, transient service errors or conflicts that outlasted the retries:
    /// a later retry may succeed (503).
    #[error("storage busy: {reason}")]
    Transient {
        /// What stayed busy.
        reason: String,
        /// The SDK's error, when one said so.
        #[source]
        source: Option<SdkCause>,
    },
    /// Anything else the SDK reported: no retry fixes it (500).
    #[error("storage request failed")]
    Sdk(#[source] SdkCause),
    /// A transaction cancelled for a reason no retry fixes (`ValidationError`,
    /// `ItemCollectionSizeLimitExceeded`, ...): a bug or a limit, never a race (500).
    #[error("transaction refused: {reasons}")]
    Refused {
        /// The cancellation reason of each named action that failed.
        reasons: String,
        /// The SDK's error.
        #[source]
        source: SdkCause,
    },
    /// An item that does not have the shape this code wrote.
    #[error("malformed item: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Contention that outlasted every retry.
    pub(crate) fn busy(reason: impl Into<String>) -> Self {
        Self::Transient { reason: reason.into(), source: None }
    }

    /// Classifies an SDK error: transient ones become `Transient`.
    pub fn from_sdk<E, R>(e: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let transient = match &e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ServiceError(s) => is_transient_code(s.err().code()),
            _ => false,
        };
        if transient {
            let reason = e.code().unwrap_or("timeout or connection failure").to_owned();
            Self::Transient { reason, source: Some(Box::new(e)) }
        } else {
            Self::Sdk(Box::new(e))
        }
    }

    /// True for failures a client may retry (answered with 503).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

fn is_transient_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException"
                | "TransactionConflictException"
        )
    )
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// The actions of a transaction, named so that a cancellation says which condition failed
/// without counting positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The record that makes a send (or an import) happen once.
    SendKey,
    /// A message.
    Message,
    /// An entry of a thread's change log.
    ChangeLog,
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

/// Cancellation reasons a fresh attempt may not meet again: someone else's write got in the
/// way, or DynamoDB asked us to slow down.
const RETRYABLE_REASONS: [&str; 4] =
    ["ConditionalCheckFailed", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];

/// A transaction being built: its actions, each with its [`Step`].
#[derive(Default)]
pub(crate) struct Tx {
    steps: Vec<Step>,
    items: Vec<TransactWriteItem>,
}

impl Tx {
    /// Adds an action.
    pub(crate) fn push(&mut self, step: Step, item: TransactWriteItem) {
        self.steps.push(step);
        self.items.push(item);
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

impl TxFailure {
    /// True when a concurrent writer (or throttling) got in the way and a fresh attempt may
    /// succeed; false for a cancellation no retry fixes.
    pub(crate) fn is_race(&self) -> bool {
        match self {
            Self::Cancelled { reasons, .. } => {
                !reasons.is_empty()
                    && reasons.iter().all(|(_, code)| RETRYABLE_REASONS.contains(&code.as_str()))
            }
            Self::Other(e) => e.is_transient(),
        }
    }

    /// True when an action of `step` failed its condition.
    pub(crate) fn failed(&self, step: Step) -> bool {
        matches!(self, Self::Cancelled { reasons, .. }
            if reasons.iter().any(|(s, code)| *s == step && code == "ConditionalCheckFailed"))
    }
}

impl From<TxFailure> for StoreError {
    fn from(f: TxFailure) -> Self {
        match f {
            TxFailure::Cancelled { reasons, source } => {
                let text = reasons.iter().map(|(s, c)| format!("{s:?}: {c}")).collect::<Vec<_>>().join(", ");
                let retryable = !reasons.is_empty()
                    && reasons.iter().all(|(_, code)| RETRYABLE_REASONS.contains(&code.as_str()));
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

/// How long a write may keep retrying lost races before it gives up with a 503: well inside
/// the functions' 10-second timeout, with room for the SDK's own timeouts.
const WRITE_BUDGET: Duration = Duration::from_secs(4);

/// The attempts of a write that may lose races: at most [`MAX_WRITE_ATTEMPTS`], and none
/// started once [`WRITE_BUDGET`] has passed.
pub(crate) fn attempts() -> impl Iterator<Item = u32> {
    let started = std::time::Instant::now();
    (0..MAX_WRITE_ATTEMPTS).take_while(move |a| *a == 0 || started.elapsed() < WRITE_BUDGET)
}

/// Sleeps before attempt `attempt + 1`: exponential backoff with full jitter, capped at 400 ms.
pub(crate) async fn backoff(attempt: u32) {
    let cap_ms = (10u64 << attempt.min(6)).min(400);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=cap_ms))).await;
}

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A put, as a transaction action.
pub(crate) fn tx_put(table: &str, item: Item, condition: Option<&str>) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .expect("complete");
    TransactWriteItem::builder().put(put).build()
}

/// A delete, as a transaction action.
pub(crate) fn tx_delete(
    table: &str,
    key: Item,
    condition: Option<(&str, &str, AttributeValue)>,
) -> TransactWriteItem {
    let mut delete = Delete::builder().table_name(table).set_key(Some(key));
    if let Some((expression, name, value)) = condition {
        delete = delete.condition_expression(expression).expression_attribute_values(name, value);
    }
    TransactWriteItem::builder().delete(delete.build().expect("complete")).build()
}

/// An update of one item, to finish with expressions and pass to [`tx_update`].
pub(crate) fn update(table: &str, key: Item) -> UpdateBuilder {
    Update::builder().table_name(table).set_key(Some(key))
}

/// An update, as a transaction action.
pub(crate) fn tx_update(update: UpdateBuilder) -> TransactWriteItem {
    TransactWriteItem::builder().update(update.build().expect("complete")).build()
}

/// A primary key.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(items::attr::PK.to_owned(), s(pk)), (items::attr::SK.to_owned(), s(sk))])
}

/// The store: a client, the table name and what the instance remembers, built once at init.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    /// Per instance: what earlier requests read, to read less now (see `hints`).
    hints: std::sync::Arc<hints::Hints>,
}

/// What to list and in which order, for keyset pagination over one partition.
pub(crate) struct ListSpec<'a> {
    /// Index to query, or the table.
    pub index: Option<&'static str>,
    /// Partition key attribute and value.
    pub pk: (&'static str, String),
    /// Sort key attribute.
    pub sk: &'static str,
    /// Only sort keys with this prefix.
    pub sk_prefix: Option<String>,
    /// Display order is descending sort key (newest first).
    pub descending: bool,
    /// Builds the exclusive start key from a sort key value.
    pub start_key: &'a (dyn Fn(&str) -> Option<Item> + Sync),
    /// Items to skip (DynamoDB filters after `Limit`, so short pages are filled up).
    pub skip: Option<Skip>,
}

/// Items a list leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Users whose `is_active` is not true.
    Inactive,
    /// Deleted messages (tombstones).
    Deleted,
}

impl Store {
    /// A store over `table`.
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table, hints: std::sync::Arc::default() }
    }

    /// A store over `table` with a client from the given SDK configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, table: String) -> Self {
        Self::new(Client::new(sdk), table)
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// One cheap read, to open the connection at init.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.get(key("PING", "PING"), false).await.map(|_| ())
    }

    /// Opens the connection to DynamoDB during a function's init, so that the first request
    /// does not pay the TLS handshake; a failure only costs that, so it is logged, not fatal.
    pub async fn warm_up(&self) {
        if let Err(e) = self.ping().await {
            tracing::warn!(error = ?crate::error::ErrorChain(&e), "warm-up read failed");
        }
    }

    /// Creates the table, as deployed, if missing.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        table::create_table(&self.client, &self.table, table::TableStream::Enabled).await
    }

    /// Creates the table if missing, with or without its stream (see [`table::TableStream`]).
    pub async fn create_table_with(&self, stream: table::TableStream) -> Result<(), StoreError> {
        table::create_table(&self.client, &self.table, stream).await
    }

    pub(crate) async fn get(&self, key: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.item)
    }

    /// Reads up to 100 items by key, in one call plus retries of unprocessed keys.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        let mut pending = keys;
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .expect("keys are set");
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt >= MAX_WRITE_ATTEMPTS {
                    return Err(StoreError::busy("unprocessed keys"));
                }
                backoff(attempt).await;
            }
        }
        Ok(found)
    }

    /// Runs puts and deletes with `BatchWriteItem`, 25 at a time, retrying unprocessed ones.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt >= MAX_WRITE_ATTEMPTS {
                        return Err(StoreError::busy("batch writes stayed unprocessed"));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }

    /// Runs one transaction.
    pub(crate) async fn transact(&self, tx: Tx) -> Result<(), TxFailure> {
        // The token makes the SDK's own retries of this call idempotent (for 10 minutes).
        let token = uuid::Uuid::new_v4().simple().to_string();
        let Tx { steps, items } = tx;
        match self
            .client
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

    /// One page of a keyset-paginated list, filling short pages left by DynamoDB's 1 MB limit.
    pub(crate) async fn list_page(
        &self,
        spec: &ListSpec<'_>,
        page: &PageSpec,
    ) -> Result<Slice<Item>, StoreError> {
        let invalid = || StoreError::Corrupt("cursor key does not fit this list".into());
        let start = match &page.after {
            None => None,
            Some(k) => Some((spec.start_key)(k).ok_or_else(invalid)?),
        };
        // Reading "previous" walks the list backwards from the cursor.
        let forward = spec.descending == page.backwards();
        let wanted = page.limit + 1;
        let mut items: Vec<Item> = Vec::with_capacity(wanted);
        let mut start = start;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(spec.index.map(str::to_owned))
                .scan_index_forward(forward)
                .limit((wanted - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .expression_attribute_names("#pk", spec.pk.0)
                .expression_attribute_values(":pk", s(spec.pk.1.clone()));
            q = match &spec.sk_prefix {
                Some(prefix) => q
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", spec.sk)
                    .expression_attribute_values(":prefix", s(prefix.clone())),
                None => q.key_condition_expression("#pk = :pk"),
            };
            q = match spec.skip {
                None => q,
                Some(Skip::Inactive) => q
                    .filter_expression("#active = :yes")
                    .expression_attribute_names("#active", items::attr::IS_ACTIVE)
                    .expression_attribute_values(":yes", AttributeValue::Bool(true)),
                Some(Skip::Deleted) => q
                    .filter_expression("attribute_not_exists(#deleted)")
                    .expression_attribute_names("#deleted", items::attr::DELETED),
            };
            let out = q.send().await.map_err(StoreError::from_sdk)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if items.len() < wanted => start = Some(k),
                _ => break,
            }
        }
        Ok(page.cut(items, |i| i.get(spec.sk).and_then(|v| v.as_s().ok()).cloned()))
    }
}

#[cfg(test)]
mod tests {
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
}
