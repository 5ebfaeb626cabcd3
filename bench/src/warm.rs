//! In-process time per request with DynamoDB answered from memory, without the network: the
//! whole handler, the SDK's client-side share (building, signing and parsing its calls), and
//! the difference, our code (JWT check, routing, body parsing, store logic, serialization).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shared::App;

use crate::replay::{Recorder, Stub};
use crate::scenario::{Endpoint, Fixture};
use crate::stats::Summary;

/// Timings of one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Warm {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Status every timed request answered (the one DynamoDB Local gave when recorded).
    pub status: u16,
    /// Our code: each request's time less the time its DynamoDB calls spent in the SDK.
    pub ours: Summary,
    /// Each request's whole time in the handler.
    pub total: Summary,
    /// The SDK's share of each request.
    pub sdk: Summary,
}

/// Why an endpoint could not be timed.
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// The replayed run answered differently from the recorded one.
    #[error("{endpoint:?}: answered {got} from the stub, {expected} from DynamoDB Local")]
    Diverged { endpoint: Endpoint, expected: u16, got: u16 },
    /// A DynamoDB call had no recorded answer.
    #[error("{endpoint:?}: {misses} DynamoDB calls had no recorded answer")]
    Unanswered { endpoint: Endpoint, misses: usize },
}

/// Runs each endpoint against DynamoDB Local once (recording its calls), then `iterations`
/// times (or for `budget`, whichever ends first) against the recording.
pub async fn run(
    local: &App,
    recorder: &Recorder,
    stub: &Stub,
    fx: &Fixture,
    iterations: usize,
    budget: Duration,
) -> Result<Vec<Warm>, WarmError> {
    let mut out = Vec::new();
    for endpoint in Endpoint::ALL {
        let prepared = endpoint.prepare(local, fx).await;
        recorder.take();
        let expected = prepared.send(local).await.status().as_u16();
        stub.replay.load(recorder.take());
        let (stubbed, replay, clock) = (&stub.app, &stub.replay, &stub.clock);
        let mut totals = Vec::with_capacity(iterations);
        let mut sdk = Vec::with_capacity(iterations);
        let started = Instant::now();
        // The first tenth warms caches and is not kept.
        let warmup = iterations / 10;
        for i in 0..iterations + warmup {
            let request = prepared.to_request();
            clock.take();
            let t = Instant::now();
            let response = crate::scenario::handle(endpoint.function(), stubbed, request).await;
            let elapsed = t.elapsed();
            let in_sdk = clock.take();
            let got = response.status().as_u16();
            if got != expected {
                return Err(WarmError::Diverged { endpoint, expected, got });
            }
            if i >= warmup {
                totals.push(elapsed);
                sdk.push(in_sdk);
            }
            if totals.len() >= 20 && started.elapsed() > budget {
                break;
            }
        }
        let misses = replay.misses();
        if misses > 0 {
            return Err(WarmError::Unanswered { endpoint, misses });
        }
        let ours = totals.iter().zip(&sdk).map(|(t, s)| t.saturating_sub(*s)).collect();
        out.push(Warm {
            endpoint,
            status: expected,
            ours: Summary::of(ours),
            total: Summary::of(totals),
            sdk: Summary::of(sdk),
        });
    }
    Ok(out)
}
