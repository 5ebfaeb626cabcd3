//! `devstack::streams` against DynamoDB Local (`DYNAMODB_ENDPOINT`, which `make test` sets), with
//! an in-process invoker that records every event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use devstack::streams::{Config, Dispatcher, FnInvoker, InvokeError, Invoker, Mapping, StartingPosition};
use serde_json::{Value, json};

fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").expect(
        "DYNAMODB_ENDPOINT must name DynamoDB Local, e.g. http://127.0.0.1:8001 (`make test` sets it)",
    )
}

fn clients() -> (aws_sdk_dynamodb::Client, aws_sdk_dynamodbstreams::Client) {
    let endpoint = endpoint();
    let credentials = Credentials::new("local", "local", None, None, "tests");
    let ddb = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials.clone())
        .endpoint_url(&endpoint)
        .build();
    let streams = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(&endpoint)
        .build();
    (aws_sdk_dynamodb::Client::from_conf(ddb), aws_sdk_dynamodbstreams::Client::from_conf(streams))
}

fn table_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("streams-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .attribute_definitions(attr("PK"))
        .attribute_definitions(attr("SK"))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table in DynamoDB Local");
}

async fn put(ddb: &aws_sdk_dynamodb::Client, table: &str, sk: &str, text: &str) {
    ddb.put_item()
        .table_name(table)
        .item("PK", AttributeValue::S("THREAD#1".into()))
        .item("SK", AttributeValue::S(sk.into()))
        .item("text", AttributeValue::S(text.into()))
        .item("n", AttributeValue::N("7".into()))
        .item("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
        .send()
        .await
        .expect("put");
}

type Calls = Arc<Mutex<Vec<(String, Value, Instant)>>>;

/// A function that records its events and answers with `respond(call number, event)`.
fn recorder(
    respond: impl Fn(usize, &Value) -> Result<Value, InvokeError> + Send + Sync + 'static,
) -> (Arc<dyn Invoker>, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let invoker = FnInvoker(move |function: String, event: Value| {
        let mut calls = seen.lock().unwrap();
        let n = calls.len();
        let answer = respond(n, &event);
        calls.push((function, event, Instant::now()));
        futures_util::future::ready(answer)
    });
    (Arc::new(invoker), calls)
}

fn config(table: &str) -> Config {
    Config {
        table: table.to_owned(),
        poll_interval: Duration::from_millis(50),
        retry_backoff: Duration::from_millis(10),
        quiet: std::env::var_os("STREAMS_TEST_LOG").is_none(),
    }
}

/// Each call's records' sort keys.
fn batches(calls: &Calls) -> Vec<Vec<String>> {
    calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, event, _)| {
            event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["dynamodb"]["Keys"]["SK"]["S"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seq(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn writes_arrive_in_order_as_lambda_events() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    let (invoker, calls) = recorder(|_, _| Ok(Value::Null));
    let mut mapping = Mapping::new("all");
    mapping.starting_position = StartingPosition::Latest;
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    dispatcher.ready().await;

    let mut written = Vec::new();
    for i in 0..5 {
        put(&ddb, &table, &format!("MSG#{i}"), "hello").await;
        written.push(Instant::now());
    }
    put(&ddb, &table, "MSG#1", "edited").await;
    ddb.delete_item()
        .table_name(&table)
        .key("PK", AttributeValue::S("THREAD#1".into()))
        .key("SK", AttributeValue::S("MSG#2".into()))
        .send()
        .await
        .unwrap();
    wait_for("7 records", || batches(&calls).concat().len() == 7).await;

    let records: Vec<Value> = calls
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(f, e, _)| {
            assert_eq!(f, "all");
            // The Lambda event type reads every event as it is.
            let parsed: aws_lambda_events::event::dynamodb::Event =
                serde_json::from_value(e.clone()).expect("an aws_lambda_events DynamoDB event");
            assert!(!parsed.records.is_empty());
            e["Records"].as_array().unwrap().clone()
        })
        .collect();
    let names: Vec<&str> = records.iter().map(|r| r["eventName"].as_str().unwrap()).collect();
    assert_eq!(names, ["INSERT", "INSERT", "INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(batches(&calls).concat(), ["MSG#0", "MSG#1", "MSG#2", "MSG#3", "MSG#4", "MSG#1", "MSG#2"]);
    let seqs: Vec<u128> = records.iter().map(|r| seq(r).parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in sequence order: {seqs:?}");
    let first = &records[0];
    assert_eq!(first["eventSource"], "aws:dynamodb");
    assert_eq!(first["eventVersion"], "1.1");
    assert!(first["eventSourceARN"].as_str().unwrap().contains(&table));
    assert_eq!(first["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert_eq!(first["dynamodb"]["Keys"], json!({"PK": {"S": "THREAD#1"}, "SK": {"S": "MSG#0"}}));
    assert_eq!(first["dynamodb"]["NewImage"]["n"], json!({"N": "7"}));
    assert_eq!(first["dynamodb"]["NewImage"]["tags"], json!({"SS": ["a", "b"]}));
    assert!(first["dynamodb"]["ApproximateCreationDateTime"].is_number());
    assert!(first["dynamodb"]["SizeBytes"].as_u64().unwrap() > 0);
    assert!(first.get("awsRegion").is_some() && first.get("eventID").is_some());
    assert!(first["dynamodb"].get("OldImage").is_none());
    let modify = &records[5];
    assert_eq!(modify["dynamodb"]["OldImage"]["text"], json!({"S": "hello"}));
    assert_eq!(modify["dynamodb"]["NewImage"]["text"], json!({"S": "edited"}));
    let remove = &records[6];
    assert!(remove["dynamodb"].get("NewImage").is_none());
    assert_eq!(remove["dynamodb"]["OldImage"]["SK"], json!({"S": "MSG#2"}));

    // How long after a write returned its record reached the function.
    let invoked: Vec<Instant> = calls.lock().unwrap().iter().map(|c| c.2).collect();
    let first_delay = invoked[0].duration_since(written[0]);
    let stats = &dispatcher.stats()[0];
    eprintln!(
        "write-to-invoke for the first record: {first_delay:?}; dispatcher delay mean {:?}, max {:?}, plus polling every {:?}",
        stats.delay_mean, stats.delay_max, stats.poll_interval
    );
    assert_eq!((stats.records_seen, stats.records_matched, stats.records_skipped), (7, 7, 0));
    assert_eq!(stats.invocations as usize, calls.lock().unwrap().len());
    assert!(first_delay < Duration::from_secs(2), "{first_delay:?}");
    dispatcher.stop().await;
}

#[tokio::test]
async fn filtered_records_never_invoke_and_each_mapping_sees_every_record() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let purge =
        Mapping::from_template(&template).unwrap().into_iter().find(|m| m.function == "purge").unwrap();
    let mut messages = Mapping::new("messages");
    messages.filters = vec![
        devstack::streams::filter::Pattern::parse(
            r#"{"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "MSG#"}, "META"]}}}}"#,
        )
        .unwrap(),
    ];
    let (invoker, calls) = recorder(|_, _| Ok(Value::Null));
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![purge, messages], config(&table));
    dispatcher.ready().await;
    for sk in ["MSG#1", "META", "MEMBER#u1", "PURGE"] {
        put(&ddb, &table, sk, "x").await;
    }
    wait_for("both mappings to read all four records", || {
        dispatcher.stats().iter().all(|s| s.records_seen == 4)
    })
    .await;
    wait_for("purge and messages deliveries", || batches(&calls).concat().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let by = |f: &str| -> Vec<String> {
        let calls = calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.0 == f)
            .flat_map(|c| {
                c.1["Records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["dynamodb"]["Keys"]["SK"]["S"].to_string())
            })
            .collect()
    };
    assert_eq!(by("purge"), ["\"PURGE\""]);
    assert_eq!(by("messages"), ["\"MSG#1\"", "\"META\""]);
    let stats = dispatcher.stats();
    assert_eq!((stats[0].records_seen, stats[0].records_matched, stats[0].invocations), (4, 1, 1));
    assert_eq!((stats[1].records_seen, stats[1].records_matched), (4, 2));
    dispatcher.stop().await;
}

#[tokio::test]
async fn batch_size_is_honoured_from_trim_horizon() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    for i in 0..5 {
        put(&ddb, &table, &format!("MSG#{i}"), "x").await;
    }
    let mut mapping = Mapping::new("f");
    mapping.batch_size = 2;
    mapping.starting_position = StartingPosition::TrimHorizon;
    let (invoker, calls) = recorder(|_, _| Ok(Value::Null));
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    wait_for("5 records", || batches(&calls).concat().len() == 5).await;
    assert_eq!(batches(&calls), [vec!["MSG#0", "MSG#1"], vec!["MSG#2", "MSG#3"], vec!["MSG#4"]]);
    dispatcher.stop().await;
}

#[tokio::test]
async fn a_batching_window_gathers_records() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    let mut mapping = Mapping::new("f");
    mapping.batch_size = 10;
    mapping.batching_window = Duration::from_secs(1);
    let (invoker, calls) = recorder(|_, _| Ok(Value::Null));
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    dispatcher.ready().await;
    for i in 0..3 {
        put(&ddb, &table, &format!("MSG#{i}"), "x").await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    wait_for("3 records", || batches(&calls).concat().len() == 3).await;
    assert_eq!(batches(&calls), [vec!["MSG#0", "MSG#1", "MSG#2"]], "one invocation within the window");
    dispatcher.stop().await;
}

fn has(event: &Value, sk: &str) -> bool {
    event["Records"].as_array().unwrap().iter().any(|r| r["dynamodb"]["Keys"]["SK"]["S"] == sk)
}

fn failure() -> InvokeError {
    InvokeError::Function(json!({"errorType": "Boom", "errorMessage": "bad record"}))
}

#[tokio::test]
async fn a_function_error_is_retried_then_skipped_after_maximum_retry_attempts() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    let mut mapping = Mapping::new("f");
    mapping.maximum_retry_attempts = Some(2);
    let (invoker, calls) =
        recorder(|_, event| if has(event, "BAD") { Err(failure()) } else { Ok(Value::Null) });
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    dispatcher.ready().await;
    put(&ddb, &table, "BAD", "x").await;
    wait_for("the bad record to be skipped", || dispatcher.stats()[0].records_skipped == 1).await;
    put(&ddb, &table, "GOOD", "x").await;
    wait_for("the next record", || batches(&calls).iter().any(|b| b == &["GOOD"])).await;
    assert_eq!(batches(&calls), [vec!["BAD"], vec!["BAD"], vec!["BAD"], vec!["GOOD"]], "1 try + 2 retries");
    let stats = &dispatcher.stats()[0];
    assert_eq!((stats.invocations, stats.retries, stats.records_skipped), (4, 2, 1));
    dispatcher.stop().await;
}

#[tokio::test]
async fn a_timeout_is_a_function_error() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    let mut mapping = Mapping::new("slow");
    mapping.maximum_retry_attempts = Some(0);
    mapping.timeout = Duration::from_millis(100);
    let invoker = Arc::new(FnInvoker(|_: String, _: Value| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, InvokeError>(Value::Null)
    }));
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    dispatcher.ready().await;
    put(&ddb, &table, "MSG#1", "x").await;
    wait_for("the record to be skipped", || dispatcher.stats()[0].records_skipped == 1).await;
    dispatcher.stop().await;
}

#[tokio::test]
async fn bisecting_isolates_the_bad_record() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    for sk in ["A", "BAD", "C", "D"] {
        put(&ddb, &table, sk, "x").await;
    }
    let mut mapping = Mapping::new("f");
    mapping.starting_position = StartingPosition::TrimHorizon;
    mapping.maximum_retry_attempts = Some(1);
    mapping.bisect_batch_on_function_error = true;
    let (invoker, calls) =
        recorder(|_, event| if has(event, "BAD") { Err(failure()) } else { Ok(Value::Null) });
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    wait_for("C and D", || batches(&calls).iter().any(|b| b == &["C", "D"])).await;
    assert_eq!(
        batches(&calls),
        [vec!["A", "BAD", "C", "D"], vec!["A", "BAD"], vec!["A"], vec!["BAD"], vec!["BAD"], vec!["C", "D"]],
        "halves do not count as retries; the lone bad record gets its one retry"
    );
    assert_eq!(dispatcher.stats()[0].records_skipped, 1);
    dispatcher.stop().await;
}

#[tokio::test]
async fn a_partial_batch_failure_retries_from_the_failed_record_only() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    for sk in ["A", "B", "C", "D"] {
        put(&ddb, &table, sk, "x").await;
    }
    let mut mapping = Mapping::new("f");
    mapping.starting_position = StartingPosition::TrimHorizon;
    mapping.report_batch_item_failures = true;
    mapping.maximum_retry_attempts = Some(3);
    let (invoker, calls) = recorder(|n, event| {
        let records = event["Records"].as_array().unwrap();
        // The first call fails C and D (listed out of order); later calls succeed.
        if n == 0 {
            let d = seq(&records[3]);
            let c = seq(&records[2]);
            Ok(json!({"batchItemFailures": [{"itemIdentifier": d}, {"itemIdentifier": c}]}))
        } else {
            Ok(json!({"batchItemFailures": []}))
        }
    });
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    wait_for("the retry", || calls.lock().unwrap().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(batches(&calls), [vec!["A", "B", "C", "D"], vec!["C", "D"]]);
    let stats = &dispatcher.stats()[0];
    assert_eq!((stats.invocations, stats.retries, stats.records_skipped), (2, 1, 0));
    dispatcher.stop().await;
}

#[tokio::test]
async fn an_invalid_item_identifier_fails_the_whole_batch() {
    let (ddb, streams) = clients();
    let table = table_name();
    create_table(&ddb, &table).await;
    for sk in ["A", "B"] {
        put(&ddb, &table, sk, "x").await;
    }
    let mut mapping = Mapping::new("f");
    mapping.starting_position = StartingPosition::TrimHorizon;
    mapping.report_batch_item_failures = true;
    mapping.maximum_retry_attempts = Some(1);
    let (invoker, calls) = recorder(|n, _| {
        if n == 0 { Ok(json!({"batchItemFailures": [{"itemIdentifier": ""}]})) } else { Ok(json!({})) }
    });
    let dispatcher = Dispatcher::spawn(ddb.clone(), streams, invoker, vec![mapping], config(&table));
    wait_for("the retry", || calls.lock().unwrap().len() == 2).await;
    assert_eq!(batches(&calls), [vec!["A", "B"], vec!["A", "B"]]);
    dispatcher.stop().await;
}

#[tokio::test]
async fn waits_for_the_table_and_follows_it_when_recreated() {
    let (ddb, streams) = clients();
    let table = table_name();
    let (invoker, calls) = recorder(|_, _| Ok(Value::Null));
    let dispatcher =
        Dispatcher::spawn(ddb.clone(), streams, invoker, vec![Mapping::new("f")], config(&table));
    dispatcher.ready().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    create_table(&ddb, &table).await;
    put(&ddb, &table, "FIRST", "x").await;
    wait_for("the first table's record", || batches(&calls).concat() == ["FIRST"]).await;
    ddb.delete_table().table_name(&table).send().await.unwrap();
    create_table(&ddb, &table).await;
    put(&ddb, &table, "SECOND", "x").await;
    wait_for("the second table's record", || batches(&calls).concat() == ["FIRST", "SECOND"]).await;
    dispatcher.stop().await;
}
