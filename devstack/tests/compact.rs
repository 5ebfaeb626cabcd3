//! `devstack compact` against DynamoDB Local (`DYNAMODB_ENDPOINT`, which `make test` sets): a
//! table whose stream grew past the limit is rebuilt with the same items, indexes, TTL and
//! stream settings and an empty stream; one under the limit is left alone. (Deleting the other
//! tables is not run here: the suites share this DynamoDB Local.)

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::compact::{compact_table, stream_records};
use shared::store::table::TableStream;

fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").expect(
        "DYNAMODB_ENDPOINT must name DynamoDB Local, e.g. http://127.0.0.1:8001 (`make test` sets it)",
    )
}

#[tokio::test]
async fn a_long_stream_history_is_dropped_and_the_items_kept() {
    let endpoint = endpoint();
    let (dynamodb, streams) = (devstack::local::dynamodb(&endpoint), devstack::local::streams(&endpoint));
    let table = format!("compact-{}", fastrand::u64(..));
    shared::store::table::create_table(&dynamodb, &table, TableStream::Enabled).await.unwrap();
    for i in 0..60 {
        dynamodb
            .put_item()
            .table_name(&table)
            .item("PK", AttributeValue::S(format!("ITEM#{}", i % 40)))
            .item("SK", AttributeValue::S("X".into()))
            .item("GSI1PK", AttributeValue::S("ALL".into()))
            .item("GSI1SK", AttributeValue::S(format!("{i:03}")))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(stream_records(&dynamodb, &streams, &table, 1000).await.unwrap(), 60, "one record per write");
    let before = dynamodb.describe_table().table_name(&table).send().await.unwrap().table.unwrap();

    let kept = compact_table(&dynamodb, &streams, &table, 100).await.unwrap();
    assert_eq!((kept.stream_records, kept.rebuilt_items), (60, None), "under the limit: untouched");

    let rebuilt = compact_table(&dynamodb, &streams, &table, 50).await.unwrap();
    assert_eq!(rebuilt.rebuilt_items, Some(40), "every item written back once");
    let after = dynamodb.describe_table().table_name(&table).send().await.unwrap().table.unwrap();
    assert_eq!(after.key_schema, before.key_schema);
    let names = |t: &aws_sdk_dynamodb::types::TableDescription| {
        let mut v: Vec<_> = t
            .global_secondary_indexes()
            .iter()
            .map(|g| (g.index_name.clone(), g.key_schema.clone(), g.projection.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(names(&after), names(&before));
    assert_eq!(after.stream_specification, before.stream_specification);
    assert_ne!(after.latest_stream_arn, before.latest_stream_arn, "a new stream");
    assert_eq!(
        stream_records(&dynamodb, &streams, &table, 1000).await.unwrap(),
        0,
        "written back unrecorded"
    );
    let ttl = dynamodb.describe_time_to_live().table_name(&table).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description.and_then(|t| t.attribute_name).as_deref(), Some("expires_at"));
    let scanned = dynamodb.scan().table_name(&table).send().await.unwrap();
    assert_eq!(scanned.count, 40);
    let indexed = dynamodb
        .query()
        .table_name(&table)
        .index_name("GSI1")
        .key_condition_expression("GSI1PK = :p")
        .expression_attribute_values(":p", AttributeValue::S("ALL".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(indexed.count, 40, "the index holds the items again");
    // New writes are recorded as before.
    dynamodb
        .put_item()
        .table_name(&table)
        .item("PK", AttributeValue::S("NEW".into()))
        .item("SK", AttributeValue::S("X".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(stream_records(&dynamodb, &streams, &table, 1000).await.unwrap(), 1);
    dynamodb.delete_table().table_name(&table).send().await.unwrap();
}
