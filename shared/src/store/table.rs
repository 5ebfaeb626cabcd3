//! The table's definition, shared by `create-table`, the tests and (checked by a test) `template.yaml`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

use super::StoreError;
use super::items::attr;

/// Index over memberships (by last activity) and active users (by username).
pub const GSI1: &str = "GSI1";
/// Index over messages by sender within a thread.
pub const GSI2: &str = "GSI2";
/// The TTL attribute: items carrying it (used refresh token ids) expire by themselves.
pub const TTL_ATTRIBUTE: &str = attr::EXPIRES_AT;
/// What the table's stream carries: `fanout` builds events from both images, `purge` reads the
/// keys of removed thread items.
pub const STREAM_VIEW: StreamViewType = StreamViewType::NewAndOldImages;

/// Whether a new table keeps a stream. Deployed tables and `msgctl create-table` always do.
/// Tests whose code never reads the stream create theirs without one: DynamoDB Local keeps every
/// table's stream records and consults them on every write, so with the api suite's hundred
/// tables the same 1,000-message test went from 2 minutes to over 15 (measured; README, "Tests").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStream {
    /// The stream as deployed: `STREAM_VIEW`.
    Enabled,
    /// No stream; for tests only.
    Disabled,
}

/// One index: name, hash key, range key, projection type and extra projected attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// Index name.
    pub name: &'static str,
    /// Hash key attribute.
    pub hash: &'static str,
    /// Range key attribute.
    pub range: &'static str,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: &'static str,
    /// Non-key attributes for `INCLUDE`.
    pub include: &'static [&'static str],
}

/// The table's key schema and indexes, in one place.
pub const TABLE_KEYS: (&str, &str) = (attr::PK, attr::SK);
/// The global secondary indexes.
pub const INDEXES: [IndexSpec; 2] = [
    IndexSpec { name: GSI1, hash: attr::GSI1PK, range: attr::GSI1SK, projection: "ALL", include: &[] },
    IndexSpec {
        name: GSI2,
        hash: attr::GSI2PK,
        range: attr::GSI2SK,
        projection: "INCLUDE",
        include: &["sender_seq"],
    },
];

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("complete")
}

fn string_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("complete")
}

/// Creates the table (on-demand, with TTL, and with a stream unless `stream` says otherwise) if
/// it does not exist yet.
pub async fn create_table(client: &Client, table: &str, stream: TableStream) -> Result<(), StoreError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(TABLE_KEYS.0, KeyType::Hash))
        .key_schema(key(TABLE_KEYS.1, KeyType::Range))
        .attribute_definitions(string_attr(TABLE_KEYS.0))
        .attribute_definitions(string_attr(TABLE_KEYS.1))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(stream == TableStream::Enabled)
                .set_stream_view_type((stream == TableStream::Enabled).then_some(STREAM_VIEW))
                .build()
                .expect("complete"),
        );
    for index in &INDEXES {
        let mut projection = Projection::builder().projection_type(ProjectionType::from(index.projection));
        for attr in index.include {
            projection = projection.non_key_attributes(*attr);
        }
        request = request
            .attribute_definitions(string_attr(index.hash))
            .attribute_definitions(string_attr(index.range))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.hash, KeyType::Hash))
                    .key_schema(key(index.range, KeyType::Range))
                    .projection(projection.build())
                    .build()
                    .expect("complete"),
            );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {
            return Ok(());
        }
        Err(e) => return Err(StoreError::from_sdk(e)),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("complete"),
        )
        .send()
        .await
        .map_err(StoreError::from_sdk)?;
    Ok(())
}
