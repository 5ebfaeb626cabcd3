//! The single-table DynamoDB store. Key design and access patterns: `docs/data-model.md`.
//!
//! Reads and writes of each kind of item live in their own module; every write that may lose a
//! race is a plan (what was read in, a transaction out, `tx`) run by the one retry runner
//! (`retry`), and the rules of who may do what come from `crate::domain::rules`.

mod append;
mod changelog;
pub mod changes;
mod connections;
mod edits;
pub mod error;
mod expr;
mod hints;
mod import;
mod items;
pub mod keys;
mod logins;
mod members;
mod messages;
pub mod page;
mod psets;
pub mod purge;
mod query;
mod reactions;
mod retry;
pub mod table;
mod threads;
mod tokens;
mod tx;
mod users;
mod views;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};

pub use changelog::{ChangeLog, ChangesSince};
pub use connections::{
    CONNECTION_TTL_SECS, ConnectError, InvalidTicket, TICKET_TTL_SECS, Ticket, TypingGate,
};
pub use error::{SdkCause, StoreError};
pub use import::{Imported, ImportedThread};
pub use logins::Failures;
pub use messages::{Outgoing, SendOutcome};
pub use threads::{CreateThreadOutcome, WriteError};
pub use tokens::RefreshRejected;
pub use users::{CreateUserError, NewUser};
pub use views::ViewChange;

use retry::backoff;

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// How often a batch call's unprocessed keys or items are tried again.
const MAX_BATCH_ATTEMPTS: u32 = 8;

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
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
            tracing::warn!(error = ?crate::telemetry::ErrorChain(&e), "warm-up read failed");
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
                if attempt >= MAX_BATCH_ATTEMPTS {
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
                    if attempt >= MAX_BATCH_ATTEMPTS {
                        return Err(StoreError::busy("batch writes stayed unprocessed"));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }
}
