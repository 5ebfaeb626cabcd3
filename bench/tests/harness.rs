//! The bench's own machinery against DynamoDB Local, so `make test` catches it breaking before a
//! `make bench` would: the meter sees every call, the replay answers every call, and the
//! fixture's endpoints all succeed.

use std::time::Duration;

use bench::local::Local;
use bench::meter::Meter;
use bench::replay::{Recorder, Stub};
use bench::scenario::{Endpoint, Fixture, Size};
use shared::store::table::TableStream;

fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8001".into())
}

#[tokio::test]
async fn meter_counts_every_call_of_every_endpoint() {
    let local = Local::new(&endpoint());
    let meter = Meter::default();
    let app = local.app(local.client_with(Some(meter.clone())));
    app.store.create_table_with(TableStream::Disabled).await.expect("DynamoDB Local (run `make test`)");
    let fx = Fixture::build(&app, Size { messages: 12, threads: 3 }, |_, _| {}).await;
    let work = bench::work::measure(&app, &meter, &fx).await;
    assert_eq!(work.len(), Endpoint::ALL.len());
    for w in &work {
        assert!((200..300).contains(&w.status), "{:?} answered {}", w.endpoint, w.status);
        assert!(w.work.calls() >= 1, "{:?} made no DynamoDB call", w.endpoint);
        assert!(w.work.read_units + w.work.write_units > 0.0, "{:?} consumed nothing", w.endpoint);
        assert!(!w.work.operations.iter().any(|o| o.contains("failed")), "{:?}: {:?}", w.endpoint, w.work);
    }
    let totals = work.iter().find(|w| w.endpoint == Endpoint::UnreadTotals).unwrap();
    assert_eq!(totals.work.operations, ["GetItem"]);
    // An eventually consistent read of a small item is half a read unit.
    assert_eq!((totals.work.read_units, totals.work.write_units), (0.5, 0.0));
}

#[tokio::test]
async fn replay_answers_every_endpoint_as_dynamodb_local_did() {
    let local = Local::new(&endpoint());
    let recorder = Recorder::default();
    let recording = local.app(local.client_with(Some(recorder.clone())));
    recording.store.create_table().await.expect("DynamoDB Local (run `make test`)");
    let stub = Stub::new(&local);
    let fx = Fixture::build(&recording, Size { messages: 12, threads: 3 }, |_, _| {}).await;
    let warm = bench::warm::run(&recording, &recorder, &stub, &fx, 5, Duration::from_secs(5))
        .await
        .expect("every endpoint replays");
    assert_eq!(warm.len(), Endpoint::ALL.len());
    for w in &warm {
        assert!((200..300).contains(&w.status) && w.total.n == 5, "{w:?}");
        // Every endpoint calls DynamoDB, so the SDK's clock must have run.
        assert!(w.sdk.min_us > 0.0, "{:?}: no time inside the SDK", w.endpoint);
    }
}

#[test]
fn cost_model_uses_the_template_memory_sizes() {
    let template = include_str!("../../template.yaml");
    let r = bench::report::Results {
        memory: bench::memory::template_sizes(template).unwrap(),
        ..Default::default()
    };
    assert_eq!(r.memory_mb("token"), 512.0);
    assert_eq!(r.memory_mb("threads"), 128.0, "from Globals");
}

#[tokio::test]
async fn the_fan_out_of_a_send_is_measured_through_the_stream() {
    let local = Local::new(&endpoint());
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let f = bench::fanout::measure(&local, &template, 3).await.expect("the fan-out measurement");
    eprintln!("fan-out of one send to 3 participants: {f:?}");
    assert_eq!(f.connections, 9);
    // message.created to all 9 connections, unread.changed to the other two members' 6.
    assert!(f.posts >= 15, "{f:?}");
    assert!(f.events >= 3 && f.records >= 3 && f.invocations >= 1, "{f:?}");
    // Per invocation, one read of the thread and one query of each participant's connections,
    // however many of the send's records (the message, the others' counters) it holds.
    assert!(
        f.work.calls() >= 4 && f.work.calls() as u64 <= 4 * f.invocations && f.work.read_units > 0.0,
        "{f:?}"
    );
    assert!(f.invocation_ms > 0.0, "{f:?}");
}
