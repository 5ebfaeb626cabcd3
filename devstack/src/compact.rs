//! Keeps `make dev`'s DynamoDB Local database responsive after long use.
//!
//! DynamoDB Local keeps every stream record a table has produced (DynamoDB trims records older
//! than 24 hours; the local emulator never does), and a write to a table with a long stream
//! history takes longer the longer it is (`docs/performance.md`, "DynamoDB Local after long
//! use"). `devstack compact` runs before `make dev` starts the functions: it deletes the
//! database's other tables (left by tools pointed at it) and, when the table's stream holds more
//! records than `max_stream_records`, rebuilds the table from a scan: the same items, keys,
//! indexes, TTL and stream settings, but a stream that starts empty (the items are written back
//! before the stream is turned on, so they are not recorded again). Nothing here runs in AWS.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, LocalSecondaryIndex, PutRequest, StreamSpecification,
    TableDescription, TimeToLiveSpecification, TimeToLiveStatus, WriteRequest,
};
use futures_util::{StreamExt, TryStreamExt, stream};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Item = std::collections::HashMap<String, AttributeValue>;

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Other tables deleted.
    pub dropped: Vec<String>,
    /// Stream records the table held (counted up to the limit and one more).
    pub stream_records: usize,
    /// Items written back, if the table was rebuilt.
    pub rebuilt_items: Option<usize>,
}

/// Counts the stream records of `table`'s latest stream, stopping at `limit + 1`.
pub async fn stream_records(
    dynamodb: &Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
    limit: usize,
) -> Result<usize, Error> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let described = dynamodb.describe_table().table_name(table).send().await?;
    let Some(arn) = described.table.and_then(|t| t.latest_stream_arn) else { return Ok(0) };
    let stream = streams.describe_stream().stream_arn(&arn).send().await?;
    let shards = stream.stream_description.and_then(|d| d.shards).unwrap_or_default();
    let mut count = 0;
    for shard in shards {
        let Some(shard_id) = shard.shard_id else { continue };
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator;
        // An open shard's iterator never ends: an empty page means its end for now.
        while let Some(it) = iterator.take() {
            let page = streams.get_records().shard_iterator(it).limit(1000).send().await?;
            let n = page.records.as_ref().map_or(0, Vec::len);
            count += n;
            if n == 0 || count > limit {
                break;
            }
            iterator = page.next_shard_iterator;
        }
        if count > limit {
            break;
        }
    }
    Ok(count)
}

async fn wait_until(dynamodb: &Client, table: &str, gone: bool) -> Result<(), Error> {
    for _ in 0..600 {
        let described = dynamodb.describe_table().table_name(table).send().await;
        match described {
            Err(e) if gone && e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                return Ok(());
            }
            Ok(d)
                if !gone
                    && d.table
                        .as_ref()
                        .and_then(|t| t.table_status.as_ref())
                        .is_some_and(|s| s.as_str() == "ACTIVE") =>
            {
                return Ok(());
            }
            Err(e) if !gone => return Err(e.into()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err(format!("{table} did not become {}", if gone { "deleted" } else { "active" }).into())
}

async fn scan_all(dynamodb: &Client, table: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb.scan().table_name(table).set_exclusive_start_key(start).send().await?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key.filter(|k| !k.is_empty());
        if start.is_none() {
            return Ok(items);
        }
    }
}

async fn write_all(dynamodb: &Client, table: &str, items: Vec<Item>) -> Result<(), Error> {
    let batches: Vec<Vec<Item>> = items.chunks(25).map(<[Item]>::to_vec).collect();
    stream::iter(batches)
        .map(|batch| async move {
            let mut pending: Vec<WriteRequest> = batch
                .into_iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().expect("an item"))
                        .build()
                })
                .collect();
            while !pending.is_empty() {
                let out = dynamodb.batch_write_item().request_items(table, pending).send().await?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
            }
            Ok::<_, Error>(())
        })
        .buffer_unordered(4)
        .try_collect::<()>()
        .await
}

/// Recreates `table` as `described` says, without its items' stream history.
async fn rebuild(dynamodb: &Client, described: &TableDescription, table: &str) -> Result<usize, Error> {
    let ttl = dynamodb.describe_time_to_live().table_name(table).send().await?.time_to_live_description;
    let items = scan_all(dynamodb, table).await?;
    dynamodb.delete_table().table_name(table).send().await?;
    wait_until(dynamodb, table, true).await?;
    let gsis = described.global_secondary_indexes().iter().map(|g| {
        GlobalSecondaryIndex::builder()
            .set_index_name(g.index_name.clone())
            .set_key_schema(g.key_schema.clone())
            .set_projection(g.projection.clone())
            .build()
            .expect("a described index is complete")
    });
    let lsis = described.local_secondary_indexes().iter().map(|l| {
        LocalSecondaryIndex::builder()
            .set_index_name(l.index_name.clone())
            .set_key_schema(l.key_schema.clone())
            .set_projection(l.projection.clone())
            .build()
            .expect("a described index is complete")
    });
    dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(described.key_schema.clone())
        .set_attribute_definitions(described.attribute_definitions.clone())
        .set_global_secondary_indexes(Some(gsis.collect()).filter(|v: &Vec<_>| !v.is_empty()))
        .set_local_secondary_indexes(Some(lsis.collect()).filter(|v: &Vec<_>| !v.is_empty()))
        .send()
        .await?;
    wait_until(dynamodb, table, false).await?;
    let count = items.len();
    write_all(dynamodb, table, items).await?;
    if let Some(spec) = described.stream_specification.as_ref().filter(|s| s.stream_enabled) {
        let spec = StreamSpecification::builder()
            .stream_enabled(true)
            .set_stream_view_type(spec.stream_view_type.clone())
            .build()?;
        dynamodb.update_table().table_name(table).stream_specification(spec).send().await?;
        wait_until(dynamodb, table, false).await?;
    }
    if let Some(ttl) = ttl.filter(|t| t.time_to_live_status == Some(TimeToLiveStatus::Enabled)) {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .set_attribute_name(ttl.attribute_name)
            .build()?;
        dynamodb.update_time_to_live().table_name(table).time_to_live_specification(spec).send().await?;
    }
    Ok(count)
}

/// Deletes every table of the database but `keep`; returns their names.
pub async fn drop_other_tables(dynamodb: &Client, keep: &str) -> Result<Vec<String>, Error> {
    let mut dropped = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb.list_tables().set_exclusive_start_table_name(start).send().await?;
        for other in page.table_names.unwrap_or_default() {
            if other != keep {
                dynamodb.delete_table().table_name(&other).send().await?;
                dropped.push(other);
            }
        }
        start = page.last_evaluated_table_name;
        if start.is_none() {
            return Ok(dropped);
        }
    }
}

/// Rebuilds `table` when its stream holds more than `max_stream_records` records. A missing
/// table is left for `msgctl create-table`.
pub async fn compact_table(
    dynamodb: &Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
    max_stream_records: usize,
) -> Result<Compacted, Error> {
    let mut out = Compacted::default();
    let described = match dynamodb.describe_table().table_name(table).send().await {
        Ok(d) => d.table.ok_or("DescribeTable answered no table")?,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            return Ok(out);
        }
        Err(e) => return Err(e.into()),
    };
    out.stream_records = stream_records(dynamodb, streams, table, max_stream_records).await?;
    if out.stream_records > max_stream_records {
        out.rebuilt_items = Some(rebuild(dynamodb, &described, table).await?);
    }
    Ok(out)
}

/// Deletes every table but `table` ([`drop_other_tables`]), then [`compact_table`].
pub async fn compact(
    dynamodb: &Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
    max_stream_records: usize,
) -> Result<Compacted, Error> {
    let dropped = drop_other_tables(dynamodb, table).await?;
    let mut out = compact_table(dynamodb, streams, table, max_stream_records).await?;
    out.dropped = dropped;
    Ok(out)
}
