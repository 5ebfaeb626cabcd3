//! The one retry runner for writes that may lose races: it owns the attempts, the pauses
//! between them and the budget; each write only says, attempt by attempt, whether it is done
//! or why to try again.
//!
//! Losing a race is normal use: in a group where everyone answers at once, every send but one
//! of each round finds the thread moved on. What to do next depends on why it lost. A
//! condition that failed means another write committed since the read, so reading again at
//! once makes progress; a transaction conflict means another one is in flight on the same
//! items, which a short pause lets finish; throttling needs real backoff. A write gives up
//! (503) only when its time budget is spent, never after a fixed number of lost rounds: a
//! round is lost only to someone else's progress.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::error::StoreError;

/// How long a write may keep retrying before it gives up with a 503: no attempt starts after
/// this, which leaves a last attempt room inside the functions' 10-second timeout (the SDK
/// gives one call at most 3 s).
pub(crate) const WRITE_BUDGET: Duration = Duration::from_secs(6);

/// A bound on attempts whatever the budget, against a bug that retries without waiting.
const MAX_ATTEMPTS: u32 = 200;

/// Why an attempt did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// Another write committed since the read (a condition failed): read again at once.
    Moved,
    /// Another transaction was in flight on the same items: pause briefly.
    Conflict,
    /// DynamoDB throttled or failed transiently: back off.
    Throttled,
    /// The reads did not agree (a change landed between them): read again after a pause.
    Unsettled,
}

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Next<T> {
    /// Finished, with this result.
    Done(T),
    /// Try again, for this reason.
    Retry(Why),
}

/// The pause before attempt `attempt` (counted from 1 for the first retry): full jitter under a
/// cap that grows with the attempt and depends on why the last one failed.
pub(crate) fn pause(why: Why, attempt: u32) -> Duration {
    let (base_ms, cap_ms) = match why {
        // A few milliseconds of jitter at first, so that the losers of a round do not meet
        // again in lockstep; a writer that keeps losing is one of many, and spreads out further
        // (with a dozen writers on one thread, rounds a few transactions long).
        Why::Moved => (2, 200),
        Why::Conflict | Why::Unsettled => (5, 200),
        Why::Throttled => (20, 1000),
    };
    let cap = (base_ms << attempt.min(8)).min(cap_ms);
    Duration::from_millis(fastrand::u64(1..=cap))
}

/// Runs `attempt` until it is done, fails, or [`WRITE_BUDGET`] is spent (then a transient
/// [`StoreError`] naming `what`). `attempt` gets the number of the attempt, from 0.
pub(crate) async fn retrying<T, E, F, Fut>(what: &str, attempt: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Next<T>, E>>,
{
    retrying_within(what, WRITE_BUDGET, attempt).await
}

/// [`retrying`] with a budget of its own, for work that may give up sooner.
pub(crate) async fn retrying_within<T, E, F, Fut>(
    what: &str,
    budget: Duration,
    mut attempt: F,
) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Next<T>, E>>,
{
    let started = Instant::now();
    let mut number = 0;
    loop {
        let why = match attempt(number).await? {
            Next::Done(result) => return Ok(result),
            Next::Retry(why) => why,
        };
        number += 1;
        let wait = pause(why, number);
        if number >= MAX_ATTEMPTS || started.elapsed() + wait >= budget {
            return Err(StoreError::busy(format!("{what} stayed contended ({number} attempts)")).into());
        }
        tokio::time::sleep(wait).await;
    }
}

/// Sleeps before retrying a batch call's unprocessed keys or items (attempt from 1).
pub(crate) async fn backoff(attempt: u32) {
    tokio::time::sleep(pause(Why::Throttled, attempt)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_their_caps() {
        for attempt in 1..20 {
            assert!(pause(Why::Moved, attempt) <= Duration::from_millis(200));
            assert!(pause(Why::Conflict, attempt) <= Duration::from_millis(200));
            assert!(pause(Why::Throttled, attempt) <= Duration::from_millis(1000));
        }
        assert!(pause(Why::Throttled, 1) <= Duration::from_millis(40));
        assert!(pause(Why::Moved, 1) <= Duration::from_millis(4), "the first retry is almost at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_retries_until_done_and_counts_from_zero() {
        let mut seen = Vec::new();
        let result: Result<u32, StoreError> = retrying("test", |n| {
            seen.push(n);
            async move { Ok(if n < 5 { Next::Retry(Why::Moved) } else { Next::Done(n) }) }
        })
        .await;
        assert_eq!(result.unwrap(), 5);
        assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_keeps_losing_gives_up_after_the_budget_not_a_count() {
        let started = tokio::time::Instant::now();
        let mut attempts = 0;
        let result: Result<(), StoreError> = retrying("send", |_| {
            attempts += 1;
            async { Ok(Next::Retry(Why::Conflict)) }
        })
        .await;
        let e = result.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("send stayed contended"), "{e}");
        assert!(attempts > 20, "lost rounds alone do not end a write: {attempts}");
        assert!(started.elapsed() <= WRITE_BUDGET);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_ends_at_once() {
        let mut attempts = 0;
        let result: Result<(), StoreError> = retrying("x", |_| {
            attempts += 1;
            async { Err(StoreError::Corrupt("no".into())) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::Corrupt(_))));
        assert_eq!(attempts, 1);
    }
}
