//! What was measured: per endpoint, a latency histogram, a status histogram and a count of
//! transport failures.
//!
//! Every virtual user records into its own [`Stats`] without locks; they are merged once the
//! run is over.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The requests the workload makes, under the labels the report shows. Paths use `{id}` so that
/// every thread lands in the same row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Refresh,
    Me,
    SearchUsers,
    CreateThread,
    ListThreads,
    ShowThread,
    ListMessages,
    SendMessage,
    ThreadUnread,
    UnreadTotals,
    Ticket,
    DeleteThread,
}

impl Endpoint {
    /// Every endpoint, in the order the report lists them (the order of the discriminants, which
    /// [`Stats`] uses as indices).
    pub const ALL: [Endpoint; 13] = [
        Endpoint::Login,
        Endpoint::Refresh,
        Endpoint::Me,
        Endpoint::SearchUsers,
        Endpoint::CreateThread,
        Endpoint::ListThreads,
        Endpoint::ShowThread,
        Endpoint::ListMessages,
        Endpoint::SendMessage,
        Endpoint::ThreadUnread,
        Endpoint::UnreadTotals,
        Endpoint::Ticket,
        Endpoint::DeleteThread,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Login => "POST /api/token/",
            Endpoint::Refresh => "POST /api/token/refresh/",
            Endpoint::Me => "GET /api/users/me/",
            Endpoint::SearchUsers => "GET /api/users/",
            Endpoint::CreateThread => "POST /api/threads/",
            Endpoint::ListThreads => "GET /api/threads/",
            Endpoint::ShowThread => "GET /api/threads/{id}/",
            Endpoint::ListMessages => "GET /api/threads/{id}/messages/",
            Endpoint::SendMessage => "POST /api/threads/{id}/messages/",
            Endpoint::ThreadUnread => "GET /api/threads/{id}/messages/unread_count/",
            Endpoint::UnreadTotals => "GET /api/unread_count/",
            Endpoint::Ticket => "POST /api/realtime/ticket/",
            Endpoint::DeleteThread => "DELETE /api/threads/{id}/",
        }
    }
}

/// Latencies above this are clamped; requests time out well before it anyway.
const MAX_TRACKED_MICROS: u64 = 120_000_000;

/// Measurements for one endpoint.
#[derive(Clone)]
pub struct EndpointStats {
    /// Latency of every request that got an HTTP response, in microseconds.
    latency_us: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl EndpointStats {
    fn new() -> Self {
        EndpointStats {
            // Three significant digits: 0.1% resolution, plenty for p99 in milliseconds.
            latency_us: Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
                .expect("constant histogram bounds are valid"),
            statuses: BTreeMap::new(),
            transport_errors: 0,
        }
    }

    fn record(&mut self, status: u16, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(micros);
        *self.statuses.entry(status).or_default() += 1;
    }

    fn merge(&mut self, other: &EndpointStats) {
        self.latency_us.add(&other.latency_us).expect("histograms share their bounds");
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }

    /// Every attempt, answered or not.
    pub fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors
    }

    /// Answers outside 2xx (transport failures are counted apart, by [`Self::transport_errors`]).
    pub fn errors(&self) -> u64 {
        self.statuses.iter().filter(|(status, _)| !(200..300).contains(*status)).map(|(_, n)| n).sum()
    }

    pub fn transport_errors(&self) -> u64 {
        self.transport_errors
    }

    pub fn statuses(&self) -> &BTreeMap<u16, u64> {
        &self.statuses
    }

    /// The latency at `quantile` (0.0–1.0) in milliseconds, or `None` when nothing was answered.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        (!self.latency_us.is_empty()).then(|| micros_to_ms(self.latency_us.value_at_quantile(quantile)))
    }

    pub fn max_ms(&self) -> Option<f64> {
        (!self.latency_us.is_empty()).then(|| micros_to_ms(self.latency_us.max()))
    }
}

fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// One virtual user's (or, merged, the whole run's) measurements, indexed by [`Endpoint`].
#[derive(Clone)]
pub struct Stats {
    endpoints: Vec<EndpointStats>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { endpoints: Endpoint::ALL.iter().map(|_| EndpointStats::new()).collect() }
    }
}

impl Stats {
    pub fn record(&mut self, endpoint: Endpoint, status: u16, elapsed: Duration) {
        self.endpoints[endpoint as usize].record(status, elapsed);
    }

    pub fn record_transport_error(&mut self, endpoint: Endpoint) {
        self.endpoints[endpoint as usize].transport_errors += 1;
    }

    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.endpoints.iter_mut().zip(&other.endpoints) {
            mine.merge(theirs);
        }
    }

    /// The endpoints that saw at least one request, in [`Endpoint::ALL`] order.
    pub fn used(&self) -> impl Iterator<Item = (Endpoint, &EndpointStats)> {
        Endpoint::ALL.into_iter().zip(&self.endpoints).filter(|(_, stats)| stats.requests() > 0)
    }

    /// All endpoints folded into one.
    pub fn total(&self) -> EndpointStats {
        let mut total = EndpointStats::new();
        for stats in &self.endpoints {
            total.merge(stats);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_endpoints_in_discriminant_order() {
        for (i, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, i, "{endpoint:?}");
        }
    }

    #[test]
    fn counts_errors_transport_failures_and_percentiles() {
        let mut stats = Stats::default();
        for ms in 1..=100 {
            stats.record(Endpoint::UnreadTotals, 200, Duration::from_millis(ms));
        }
        stats.record(Endpoint::UnreadTotals, 503, Duration::from_millis(5));
        stats.record_transport_error(Endpoint::UnreadTotals);
        let mut other = Stats::default();
        other.record(Endpoint::Login, 401, Duration::from_millis(7));
        stats.merge(&other);

        let used: Vec<_> = stats.used().map(|(endpoint, _)| endpoint).collect();
        assert_eq!(used, [Endpoint::Login, Endpoint::UnreadTotals]);

        let unread = &stats.endpoints[Endpoint::UnreadTotals as usize];
        assert_eq!((unread.requests(), unread.errors(), unread.transport_errors()), (102, 1, 1));
        let p50 = unread.quantile_ms(0.5).unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        assert!((100.0..=100.1).contains(&unread.max_ms().unwrap()));

        let total = stats.total();
        assert_eq!((total.requests(), total.errors()), (103, 2));
        assert_eq!(total.statuses()[&200], 100);
        assert!(Stats::default().total().quantile_ms(0.99).is_none());
    }
}
