//! The results: a table for people, and the same numbers as JSON for scripts.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::stats::{EndpointStats, Stats};

/// The run as a whole. Serialized as is for `--json`.
#[derive(Serialize)]
pub struct Report {
    pub base_url: String,
    /// As asked for with `--duration`.
    pub duration_secs: u64,
    /// As measured, from the start to the last answer (requests in flight at the deadline
    /// still finish).
    pub wall_secs: f64,
    pub concurrency: usize,
    pub users: usize,
    pub seed: u64,
    pub total: Row,
    pub endpoints: Vec<Row>,
}

/// One endpoint's numbers (or all of them together, labelled `total`).
#[derive(Serialize)]
pub struct Row {
    pub endpoint: String,
    pub requests: u64,
    /// Answers outside 2xx.
    pub errors: u64,
    /// Requests that got no answer at all (refused, cut, timed out); not in `statuses`.
    pub transport_errors: u64,
    /// Answers by status code; keys are strings because JSON object keys are.
    pub statuses: BTreeMap<String, u64>,
    pub rps: f64,
    /// Latency percentiles over answered requests; `null` when none was answered.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Row {
    fn new(endpoint: &str, stats: &EndpointStats, wall: Duration) -> Row {
        Row {
            endpoint: endpoint.to_owned(),
            requests: stats.requests(),
            errors: stats.errors(),
            transport_errors: stats.transport_errors(),
            statuses: stats.statuses().iter().map(|(status, n)| (status.to_string(), *n)).collect(),
            rps: stats.requests() as f64 / wall.as_secs_f64().max(f64::EPSILON),
            p50_ms: stats.quantile_ms(0.50),
            p90_ms: stats.quantile_ms(0.90),
            p99_ms: stats.quantile_ms(0.99),
            max_ms: stats.max_ms(),
        }
    }

    /// Statuses outside 2xx, e.g. `401×2 503×1`.
    fn error_statuses(&self) -> String {
        let failed = self.statuses.iter().filter(|(status, _)| !status.starts_with('2'));
        failed.map(|(status, n)| format!("{status}×{n}")).collect::<Vec<_>>().join(" ")
    }
}

/// The parts of a [`Report`] that describe the run rather than its results.
pub struct RunInfo {
    pub base_url: String,
    pub duration_secs: u64,
    pub concurrency: usize,
    pub users: usize,
    pub seed: u64,
}

impl Report {
    pub fn new(run: RunInfo, stats: &Stats, wall: Duration) -> Report {
        Report {
            base_url: run.base_url,
            duration_secs: run.duration_secs,
            wall_secs: wall.as_secs_f64(),
            concurrency: run.concurrency,
            users: run.users,
            seed: run.seed,
            total: Row::new("total", &stats.total(), wall),
            endpoints: stats
                .used()
                .map(|(endpoint, stats)| Row::new(endpoint.label(), stats, wall))
                .collect(),
        }
    }

    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let width = self.endpoints.iter().map(|row| row.endpoint.chars().count()).max().unwrap_or(0).max(8);
        writeln!(
            out,
            "{:<width$}  {:>8}  {:>6}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
            "endpoint", "requests", "errors", "transport", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        )?;
        let rule = "-".repeat(width + 2 + 8 + 2 + 6 + 2 + 9 + 5 * 10);
        writeln!(out, "{rule}")?;
        for row in &self.endpoints {
            write_row(out, row, width)?;
        }
        writeln!(out, "{rule}")?;
        write_row(out, &self.total, width)?;
        writeln!(out)?;
        writeln!(
            out,
            "{} requests in {:.1} s: {:.1} req/s overall ({} virtual users, {} accounts, seed {})",
            self.total.requests, self.wall_secs, self.total.rps, self.concurrency, self.users, self.seed
        )?;
        let failing: Vec<_> = self.endpoints.iter().filter(|row| row.errors > 0).collect();
        if !failing.is_empty() {
            writeln!(out, "error statuses:")?;
            for row in failing {
                writeln!(out, "  {:<width$}  {}", row.endpoint, row.error_statuses())?;
            }
        }
        Ok(())
    }

    pub fn write_json(&self, out: impl Write) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(out, self)
    }
}

fn write_row(out: &mut impl Write, row: &Row, width: usize) -> io::Result<()> {
    writeln!(
        out,
        "{:<width$}  {:>8}  {:>6}  {:>9}  {:>8.1}  {:>8}  {:>8}  {:>8}  {:>8}",
        row.endpoint,
        row.requests,
        row.errors,
        row.transport_errors,
        row.rps,
        millis(row.p50_ms),
        millis(row.p90_ms),
        millis(row.p99_ms),
        millis(row.max_ms),
    )
}

fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Endpoint;

    fn report() -> Report {
        let mut stats = Stats::default();
        stats.record(Endpoint::UnreadTotals, 200, Duration::from_micros(12_000));
        stats.record(Endpoint::UnreadTotals, 503, Duration::from_micros(2_000));
        stats.record_transport_error(Endpoint::Login);
        let run = RunInfo {
            base_url: "http://127.0.0.1:9000".into(),
            duration_secs: 2,
            concurrency: 1,
            users: 1,
            seed: 3,
        };
        Report::new(run, &stats, Duration::from_secs(2))
    }

    #[test]
    fn table_has_a_row_per_used_endpoint_and_a_total() {
        let mut out = Vec::new();
        report().write_table(&mut out).unwrap();
        let table = String::from_utf8(out).unwrap();
        let rows: Vec<_> = table.lines().filter(|line| line.starts_with(['P', 'G', 't'])).collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert!(rows[0].starts_with("POST /api/token/ ") && rows[0].ends_with("-"), "{table}");
        assert!(rows[1].contains("12.0"), "{table}");
        assert!(rows[2].starts_with("total") && rows[2].contains("1.5"), "{table}");
        assert!(table.contains("503×1"), "{table}");
    }

    #[test]
    fn json_has_the_documented_fields() {
        let mut out = Vec::new();
        report().write_json(&mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for key in ["base_url", "duration_secs", "concurrency", "users", "total", "endpoints"] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
        let unread = &json["endpoints"][1];
        assert_eq!(unread["endpoint"], "GET /api/unread_count/");
        assert_eq!(unread["statuses"]["503"], 1);
        assert_eq!((unread["requests"].as_u64(), unread["errors"].as_u64()), (Some(2), Some(1)));
        assert_eq!(unread["rps"], 1.0);
        for key in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            assert!(unread[key].is_f64(), "{key}: {unread}");
        }
        assert!(json["endpoints"][0]["p50_ms"].is_null());
    }
}
