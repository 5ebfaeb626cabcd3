//! How a send's latency grows with the writes a DynamoDB Local table with a stream has taken
//! (`make dev` keeps its database on disk, and DynamoDB Local keeps every stream record).
//!
//!   scripts/dynamodb-local-growth.sh [WRITES...]   # starts a disposable DynamoDB Local on disk
//!
//! or against a DynamoDB Local already running, with its data folder for the file sizes:
//!
//!   cargo run -p bench --example dynamodb_local_growth -- http://127.0.0.1:8010 DIR 0 20000 50000 100000
//!
//! At each checkpoint the table has taken that many writes (items of 200 bytes put 25 to a
//! batch, each a stream record), then 30 sends through the real messages handler are timed. After
//! the last checkpoint a new table in the same database is timed, then again once the full
//! table is deleted: whether a table's history slows only that table, or the whole database.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use bench::local::Local;
use bench::scenario::{Endpoint, Fixture, Size};
use futures_util::{StreamExt, TryStreamExt, stream};
use shared::store::table::TableStream;

const SENDS: usize = 30;

fn db_size(dir: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

struct Timed {
    p50: Duration,
    p90: Duration,
    max: Duration,
}

async fn time_sends(local: &Local) -> Timed {
    let app = local.app(local.client_with(None::<bench::meter::Meter>));
    let fx = Fixture::build(&app, Size::SMALL, |_, _| {}).await;
    let prepared = Endpoint::SendMessage.prepare(&app, &fx).await;
    let mut times = Vec::with_capacity(SENDS);
    for _ in 0..SENDS {
        let started = Instant::now();
        let response = prepared.send(&app).await;
        times.push(started.elapsed());
        assert_eq!(response.status(), 201, "a send that is not sent measures nothing");
    }
    times.sort();
    Timed { p50: times[SENDS / 2], p90: times[SENDS * 9 / 10], max: times[SENDS - 1] }
}

/// Writes items `from..to`; returns the writes per second. Without the deployed 8 s timeout: a
/// batch of 25 outlasts it once the table is long used, which is the slowdown measured here.
async fn fill(local: &Local, from: usize, to: usize) -> f64 {
    let started = Instant::now();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .endpoint_url(&local.endpoint)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let payload = "x".repeat(200);
    stream::iter((from..to).step_by(25))
        .map(|start| {
            let (client, payload) = (&client, &payload);
            async move {
                let requests: Vec<WriteRequest> = (start..(start + 25).min(to))
                    .map(|i| {
                        let put = PutRequest::builder()
                            .item("PK", AttributeValue::S(format!("FILL#{i}")))
                            .item("SK", AttributeValue::S("FILL".into()))
                            .item("payload", AttributeValue::S(payload.clone()))
                            .build()
                            .expect("complete");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect();
                let mut pending = Some(requests);
                while let Some(batch) = pending.take() {
                    let out = client
                        .batch_write_item()
                        .request_items(&local.table, batch)
                        .send()
                        .await
                        .map_err(|e| format!("{e:?}"))?;
                    pending = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&local.table))
                        .filter(|b| !b.is_empty());
                }
                Ok::<_, String>(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<()>()
        .await
        .expect("fill the table");
    (to - from) as f64 / started.elapsed().as_secs_f64().max(1e-3)
}

async fn new_table(endpoint: &str) -> Local {
    let local = Local::new(endpoint);
    let app = local.app(local.client_with(None::<bench::meter::Meter>));
    app.store.create_table_with(TableStream::Enabled).await.expect("create the table");
    local
}

fn row(label: &str, rate: Option<f64>, t: &Timed, dir: &str, elapsed: Duration) {
    println!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
        rate.map_or("-".to_owned(), |r| format!("{r:.0}")),
        t.p50.as_secs_f64() * 1e3,
        t.p90.as_secs_f64() * 1e3,
        t.max.as_secs_f64() * 1e3,
        db_size(dir) as f64 / 1e6,
        elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().expect("usage: ENDPOINT DB_DIR WRITES...");
    let dir = args.next().expect("usage: ENDPOINT DB_DIR WRITES...");
    let mut checkpoints: Vec<usize> = args.map(|a| a.parse().expect("a number of writes")).collect();
    if checkpoints.is_empty() {
        checkpoints = vec![0, 20_000, 50_000, 100_000];
    }
    checkpoints.sort();
    let started = Instant::now();
    let full = new_table(&endpoint).await;
    println!(
        "| table with a stream, after | filled at writes/s | send p50 ms | p90 ms | max ms | database MB | at s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut written = 0;
    for &n in &checkpoints {
        let rate = if n > written { Some(fill(&full, written, n).await) } else { None };
        written = n;
        let t = time_sends(&full).await;
        row(&format!("{n} writes"), rate, &t, &dir, started.elapsed());
    }
    let fresh = new_table(&endpoint).await;
    let t = time_sends(&fresh).await;
    row(&format!("a new table beside it ({written} writes)"), None, &t, &dir, started.elapsed());
    let client = full.client_with(None::<bench::meter::Meter>);
    client.delete_table().table_name(&full.table).send().await.expect("delete the full table");
    let after = new_table(&endpoint).await;
    let t = time_sends(&after).await;
    row("a new table, the full one deleted", None, &t, &dir, started.elapsed());
}
