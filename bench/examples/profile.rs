//! One endpoint's warm loop over the replayed DynamoDB client, for a profiler. With DynamoDB Local
//! on port 8003 (or `DYNAMODB_ENDPOINT`), and a build that keeps symbols:
//!
//! `valgrind --tool=callgrind --toggle-collect='*Function::handle*' \
//!     target/release/examples/profile ListThreads 500`
//!
//! That counts every handler call, including the ones that record DynamoDB Local's answers
//! (one per endpoint up to the one profiled); a second run with a count of 0 counts only those.

use bench::local::Local;
use bench::replay::{Recorder, Stub};
use bench::scenario::{Endpoint, Fixture, Size};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("an endpoint name, such as ListThreads");
    let n: usize = args.next().map_or(500, |s| s.parse().expect("a request count"));
    let endpoint = Endpoint::ALL.into_iter().find(|e| format!("{e:?}") == name).expect("no such endpoint");
    let dynamodb = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8003".into());
    let local = Local::new(&dynamodb);
    let recorder = Recorder::default();
    let recording = local.app(local.client_with(Some(recorder.clone())));
    recording.store.create_table().await.expect("table");
    let fx = Fixture::build(&recording, Size::SMALL, |_, _| {}).await;
    let stub = Stub::new(&local);
    // Earlier endpoints run first, as in the bench: listing messages marks them read.
    for e in Endpoint::ALL {
        let prepared = e.prepare(&recording, &fx).await;
        recorder.take();
        prepared.send(&recording).await;
        if e == endpoint {
            stub.replay.load(recorder.take());
            let t = std::time::Instant::now();
            for _ in 0..n {
                let response = bench::scenario::handle(e.function(), &stub.app, prepared.to_request()).await;
                assert!(response.status().is_success(), "{e:?} answered {}", response.status());
            }
            eprintln!("{name}: {:?} per request (whole handler)", t.elapsed() / n.max(1) as u32);
            return;
        }
    }
}
