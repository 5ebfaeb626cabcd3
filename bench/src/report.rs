//! The results of a run, the budgets they are held to, and the tables `make bench` prints and
//! writes into `docs/performance.md` and `docs/cost.md`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scenario::{Endpoint, Function};
use crate::stats::Summary;
use crate::warm::Warm;
use crate::work::EndpointWork;

/// Cold start budget: at most this many times hello-dynamodb's median (the runtime loop plus
/// the SDK's configuration, client and one call: what any Rust function reading DynamoDB pays).
pub const COLD_RATIO_BUDGET: f64 = 1.5;
/// Whole-process warm CPU budget: at most this many times hello-dynamodb's CPU per invocation,
/// plus hello-dynamodb's cost per call for each DynamoDB call beyond its one.
pub const PROCESS_CPU_RATIO_BUDGET: f64 = 1.5;
/// Package budget: zipped `bootstrap` bytes.
pub const ZIP_BUDGET_BYTES: u64 = 3_000_000;
/// Warm budget: median in-process microseconds per request.
pub const WARM_BUDGET_US: f64 = 100.0;
/// Memory budget: peak RSS under load, KiB (40 MB).
pub const RSS_BUDGET_KIB: u64 = 40 * 1000 * 1000 / 1024;

/// Published on-demand prices, us-east-1, dollars per million.
pub mod price {
    /// DynamoDB read request units.
    pub const READ_UNITS: f64 = 0.125;
    /// DynamoDB write request units.
    pub const WRITE_UNITS: f64 = 0.625;
    /// Lambda requests.
    pub const LAMBDA_REQUESTS: f64 = 0.20;
    /// Lambda arm64 GB-seconds.
    pub const LAMBDA_GB_SECONDS: f64 = 13.3334;
    /// API Gateway HTTP API requests.
    pub const HTTP_API_REQUESTS: f64 = 1.00;
    /// API Gateway WebSocket API messages (each post to a connection, in 32 KB increments).
    pub const WEBSOCKET_MESSAGES: f64 = 1.00;
    /// API Gateway WebSocket API connection minutes.
    pub const WEBSOCKET_CONNECTION_MINUTES: f64 = 0.25;
}

/// Billed Lambda duration assumed per request besides our measured CPU time: DynamoDB round
/// trips from Lambda are a few milliseconds each, so 20 ms covers the endpoints' 1 to 3
/// sequential rounds with margin.
pub const ASSUMED_IO_MS: f64 = 20.0;
pub use crate::memory::FULL_CPU_MB;

/// Where and when a run happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub rustc: String,
}

/// Cold starts of one function.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cold {
    pub function: String,
    /// What the first request was.
    pub request: String,
    /// Process start to first response.
    pub summary: Summary,
    /// Process start to its first poll for an event.
    pub init: Summary,
}

/// One function's package.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    pub function: String,
    pub zip_bytes: u64,
    pub binary_bytes: u64,
}

/// Peak memory of one function process under load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rss {
    pub function: String,
    pub peak_kib: u64,
}

/// Everything one `make bench` measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub machine: Machine,
    pub cold: Vec<Cold>,
    pub packages: Vec<Package>,
    pub warm: Vec<Warm>,
    pub work_small: Vec<EndpointWork>,
    pub work_large: Vec<EndpointWork>,
    /// Messages and threads of the large case.
    pub large: (usize, usize),
    /// The load runs, one per number of instances per function.
    #[serde(default)]
    pub loads: Vec<LoadRun>,
    pub rss: Vec<Rss>,
    /// Live delivery through the local stack, when it was measured.
    #[serde(default)]
    pub live: Option<Live>,
    /// `loadgen --burst`'s report: every participant of one thread sending at once.
    #[serde(default)]
    pub burst: Option<Value>,
    /// The fan-out of one send, per thread size.
    #[serde(default)]
    pub fanout: Vec<crate::fanout::FanoutWork>,
    /// Warm invocations of whole processes: the floors and every endpoint.
    #[serde(default)]
    pub process: Vec<crate::process::ProcessWarm>,
    /// Each function's `MemorySize` in `template.yaml`, MB.
    #[serde(default)]
    pub memory: std::collections::BTreeMap<String, u64>,
}

/// One load run: the load generator's JSON report, against `cargo lambda watch` running up to
/// `instances` processes of each function.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadRun {
    pub instances: usize,
    pub report: Value,
}

/// `loadgen --live` and what the stream dispatcher says about its own share of the delay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Live {
    /// `loadgen --live`'s report: sends, received, missing, p50_ms, p90_ms, p99_ms, max_ms.
    pub probe: Value,
    /// The `fanout` mapping's counts from `devstack streams`' `GET /stats`.
    pub dispatcher: Option<Value>,
}

impl Live {
    /// Reads both files; `None` when the live run was not made.
    pub fn read(
        probe: Option<&std::path::Path>,
        stats: Option<&std::path::Path>,
    ) -> std::io::Result<Option<Live>> {
        let Some(probe) = probe else { return Ok(None) };
        let probe: Value = serde_json::from_str(&std::fs::read_to_string(probe)?)?;
        let dispatcher = match stats {
            Some(path) => {
                let all: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
                all.as_array().and_then(|a| a.iter().find(|m| m["function"] == "fanout").cloned())
            }
            None => None,
        };
        Ok(Some(Live { probe, dispatcher }))
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**NOT MET**" }
}

fn ms(us: f64) -> String {
    format!("{:.1} ms", us / 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// One function's memory size, as its measured CPU implies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    pub function: Function,
    /// The request that needs the most memory.
    pub endpoint: Endpoint,
    pub cpu_us: f64,
    pub bound_ms: f64,
    pub implied_mb: u64,
    pub template_mb: u64,
}

/// Dollars per million requests of an endpoint, by part.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub dynamodb: f64,
    pub lambda: f64,
    pub api: f64,
}

impl Cost {
    /// From a request's capacity and its CPU time on a whole core, which Lambda stretches
    /// below 1,769 MB in proportion to memory.
    pub fn of(w: &EndpointWork, cpu_us: f64, memory: f64) -> Self {
        let dynamodb = w.work.read_units * price::READ_UNITS + w.work.write_units * price::WRITE_UNITS;
        let cpu_ms = crate::memory::stretched_ms(cpu_us, memory);
        let billed_s = (ASSUMED_IO_MS + cpu_ms).ceil() / 1000.0;
        let lambda = price::LAMBDA_REQUESTS + memory / 1024.0 * billed_s * price::LAMBDA_GB_SECONDS;
        Self { dynamodb, lambda, api: price::HTTP_API_REQUESTS }
    }

    /// All parts.
    pub fn total(self) -> f64 {
        self.dynamodb + self.lambda + self.api
    }
}

impl Results {
    fn cold_p50(&self, function: &str) -> Option<f64> {
        self.cold.iter().find(|c| c.function == function).map(|c| c.summary.p50_us)
    }

    fn process_of(&self, function: &str) -> Option<&crate::process::ProcessWarm> {
        self.process.iter().find(|p| p.function == function && p.endpoint.is_none())
    }

    /// An endpoint's whole-process CPU budget per invocation, µs: 1.5x hello-dynamodb's, plus
    /// hello-dynamodb's cost of one call (its CPU less hello-world's) per extra DynamoDB call.
    fn process_budget_us(&self, endpoint: Endpoint) -> Option<(f64, usize)> {
        let floor = self.process_of("hello-dynamodb")?.cpu_us;
        let bare = self.process_of("hello-world")?.cpu_us;
        let calls = self.work_small.iter().find(|w| w.endpoint == endpoint)?.work.calls();
        let extra = calls.saturating_sub(1);
        Some((PROCESS_CPU_RATIO_BUDGET * floor + extra as f64 * (floor - bare).max(0.0), extra))
    }

    /// The memory size the template gives a function, MB (128, Lambda's default, for results
    /// recorded before sizes were).
    pub fn memory_mb(&self, function: &str) -> f64 {
        self.memory.get(function).map_or(128.0, |&mb| mb as f64)
    }

    /// What one warm request of an endpoint costs in CPU, µs: the whole process's figure when it
    /// was measured, else the in-process handler's.
    pub fn cpu_us(&self, e: Endpoint) -> f64 {
        self.process
            .iter()
            .find(|p| p.endpoint == Some(e))
            .map(|p| p.cpu_us)
            .or_else(|| self.warm_of(e).map(|w| w.total.p50_us))
            .unwrap_or(0.0)
    }

    /// Per API function: its heaviest endpoint's whole-process CPU, the size that implies, and
    /// the template's size. Empty without whole-process runs.
    pub fn memory_sizing(&self) -> Vec<Sizing> {
        let mut out: Vec<Sizing> = Vec::new();
        for p in self.process.iter().filter(|p| p.endpoint.is_some()) {
            let endpoint = p.endpoint.expect("filtered");
            let function = endpoint.function();
            let bound = if endpoint == Endpoint::Login {
                crate::memory::LOGIN_CPU_BOUND_MS
            } else {
                crate::memory::REQUEST_CPU_BOUND_MS
            };
            let implied = crate::memory::size_for(p.cpu_us, bound);
            let row = Sizing {
                function,
                endpoint,
                cpu_us: p.cpu_us,
                bound_ms: bound,
                implied_mb: implied,
                template_mb: self.memory_mb(function.name()) as u64,
            };
            match out.iter_mut().find(|s| s.function == function) {
                Some(s) if s.implied_mb < implied || (s.implied_mb == implied && s.cpu_us < p.cpu_us) => {
                    *s = row
                }
                Some(_) => {}
                None => out.push(row),
            }
        }
        out
    }

    /// The memory sizes: what each function's measured CPU implies, against the template.
    pub fn memory_table(&self) -> String {
        let rows = self.memory_sizing();
        if rows.is_empty() {
            return "No whole-process measurement in this result.\n".into();
        }
        let mut t = format!(
            "Lambda gives CPU in proportion to memory, one whole vCPU at {FULL_CPU_MB:.0} MB, so a warm \
             invocation's CPU on a whole core here takes {FULL_CPU_MB:.0} / memory times as long there. \
             Below {FULL_CPU_MB:.0} MB that CPU costs the same GB-seconds at any size, and only the wait on \
             DynamoDB costs more at a larger one: each function gets the smallest size at which its \
             heaviest request's CPU takes at most {:.0} ms ({:.0} ms for the login, which hashes a password \
             on purpose, once per session).\n\n\
             | Function | Heaviest request | CPU per invocation | at 128 MB | at its size | Bound | Implied | `template.yaml` |\n\
             |---|---|---|---|---|---|---|---|\n",
            crate::memory::REQUEST_CPU_BOUND_MS,
            crate::memory::LOGIN_CPU_BOUND_MS
        );
        for s in rows {
            let _ = writeln!(
                t,
                "| {} | {} | {:.0} µs | {:.1} ms | {:.1} ms | {:.0} ms | {} MB | {} MB |",
                s.function.name(),
                s.endpoint.label(),
                s.cpu_us,
                crate::memory::stretched_ms(s.cpu_us, 128.0),
                crate::memory::stretched_ms(s.cpu_us, s.template_mb as f64),
                s.bound_ms,
                s.implied_mb,
                s.template_mb
            );
        }
        t
    }

    fn warm_of(&self, e: Endpoint) -> Option<&Warm> {
        self.warm.iter().find(|w| w.endpoint == e)
    }

    /// Names of budgets not met.
    pub fn misses(&self) -> Vec<String> {
        let table = self.budget_table();
        table.lines().filter(|l| l.contains("NOT MET")).map(|l| l.to_owned()).collect()
    }

    /// The one table: every budget, the measurement and whether it is met.
    pub fn budget_table(&self) -> String {
        let mut t = String::from("| Measure | Subject | Result | Budget | |\n|---|---|---|---|---|\n");
        let floor = self.cold_p50("hello-dynamodb");
        for c in &self.cold {
            let ratio = floor.map(|h| c.summary.p50_us / h).unwrap_or(f64::NAN);
            let (budget, verdict) = match c.function.as_str() {
                "hello-world" => ("reference: the runtime loop alone".to_owned(), "—"),
                "hello-dynamodb" => ("baseline".to_owned(), "—"),
                _ => (format!("≤ {COLD_RATIO_BUDGET}x hello-dynamodb"), met(ratio <= COLD_RATIO_BUDGET)),
            };
            let _ = writeln!(
                t,
                "| Cold start (median of {}) | {} | {} ({ratio:.2}x) | {budget} | {verdict} |",
                c.summary.n,
                c.function,
                ms(c.summary.p50_us),
            );
        }
        for p in &self.packages {
            let _ = writeln!(
                t,
                "| Zipped package, arm64 | {} | {} | ≤ {} | {} |",
                p.function,
                mb(p.zip_bytes),
                mb(ZIP_BUDGET_BYTES),
                met(p.zip_bytes <= ZIP_BUDGET_BYTES)
            );
        }
        for p in &self.process {
            let in_process = p.endpoint.and_then(|e| self.warm_of(e)).map(|w| w.total.p50_us);
            let (budget, verdict) = match (p.endpoint, p.endpoint.and_then(|e| self.process_budget_us(e))) {
                (None, _) if p.function == "hello-dynamodb" => ("baseline".to_owned(), "—"),
                (None, _) => ("reference: the runtime loop alone".to_owned(), "—"),
                (Some(_), None) => ("no floor measured".to_owned(), "—"),
                (Some(_), Some((b, extra))) => (
                    format!("≤ {b:.0} µs ({PROCESS_CPU_RATIO_BUDGET}x hello-dynamodb + {extra} calls)"),
                    met(p.cpu_us <= b),
                ),
            };
            let _ = writeln!(
                t,
                "| Warm CPU per invocation, whole process ({}) | {} {} | {:.0} µs (user {:.0}, system {:.0}; in-process handler {}) | {budget} | {verdict} |",
                p.invocations,
                p.function,
                p.request,
                p.cpu_us,
                p.user_us,
                p.system_us,
                in_process.map_or("—".to_owned(), |us| format!("{us:.0} µs")),
            );
        }
        for s in self.memory_sizing() {
            let _ = writeln!(
                t,
                "| `MemorySize` from warm CPU | {} | {} MB ({} at {:.0} µs: {:.1} ms at {} MB) | the template's {} MB | {} |",
                s.function.name(),
                s.implied_mb,
                s.endpoint.label(),
                s.cpu_us,
                crate::memory::stretched_ms(s.cpu_us, s.implied_mb as f64),
                s.implied_mb,
                s.template_mb,
                met(s.implied_mb == s.template_mb)
            );
        }
        for w in &self.warm {
            let _ = writeln!(
                t,
                "| Warm, our code (median of {}) | {} | {:.1} µs (whole handler {:.1} µs, SDK {:.1} µs) | < {WARM_BUDGET_US} µs | {} |",
                w.ours.n,
                w.endpoint.label(),
                w.ours.p50_us,
                w.total.p50_us,
                w.sdk.p50_us,
                met(w.ours.p50_us < WARM_BUDGET_US)
            );
        }
        let (messages, threads) = self.large;
        for (small, large) in self.work_small.iter().zip(&self.work_large) {
            let same = small.work.calls() == large.work.calls()
                && (small.work.read_units - large.work.read_units).abs() < 1e-9
                && (small.work.write_units - large.work.write_units).abs() < 1e-9
                && small.status == large.status;
            let _ = writeln!(
                t,
                "| DynamoDB work at scale | {} | {} calls, {} RRU, {} WRU (small: {}, {}, {}) | same as small | {} |",
                small.endpoint.label(),
                large.work.calls(),
                large.work.read_units,
                large.work.write_units,
                small.work.calls(),
                small.work.read_units,
                small.work.write_units,
                met(same)
            );
        }
        if !self.work_large.is_empty() {
            let _ = writeln!(
                t,
                "\n(Scale: the large case is a thread of {messages} messages and a reader in {threads} threads.)\n"
            );
        }
        for r in &self.rss {
            let _ = writeln!(
                t,
                "| Peak RSS under load | {} | {:.1} MB | ≤ 40 MB | {} |",
                r.function,
                r.peak_kib as f64 * 1024.0 / 1e6,
                met(r.peak_kib <= RSS_BUDGET_KIB)
            );
        }
        t
    }

    /// Warm invocations of whole processes beside the floors and the in-process figures.
    pub fn process_table(&self) -> String {
        if self.process.is_empty() {
            return "Not measured in this result.\n".into();
        }
        let floor = self.process_of("hello-dynamodb").map(|p| p.cpu_us);
        let mut t = String::from(
            "| Function | Request | Invocations | CPU per invocation | user | system | vs hello-dynamodb | wall p50 | in-process handler p50 |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for p in &self.process {
            let in_process = p.endpoint.and_then(|e| self.warm_of(e)).map(|w| w.total.p50_us);
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.2}x | {:.2} ms | {} |",
                p.function,
                p.request,
                p.invocations,
                p.cpu_us,
                p.user_us,
                p.system_us,
                floor.map_or(f64::NAN, |f| p.cpu_us / f),
                p.wall.p50_us / 1000.0,
                in_process.map_or("—".to_owned(), |us| format!("{us:.0} µs")),
            );
        }
        t
    }

    /// Machine line.
    pub fn machine_line(&self) -> String {
        let m = &self.machine;
        format!(
            "Run on {}: {}, {} cores, {:.0} GiB, {}, {}.",
            m.date, m.cpu, m.cores, m.memory_gib, m.os, m.rustc
        )
    }

    /// The load runs: throughput at each number of instances, then the endpoints of the run
    /// with the most.
    pub fn load_table(&self) -> String {
        let Some(widest) = self.loads.iter().max_by_key(|l| l.instances) else {
            return "No load run in this result.\n".into();
        };
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Against `{}`: {} virtual users for {} s each run, `cargo lambda watch --release` starting \
             up to N processes of each function, as Lambda scales out one instance per concurrent request.\n",
            widest.report["base_url"].as_str().unwrap_or("?"),
            widest.report["concurrency"],
            widest.report["duration_secs"]
        );
        t.push_str("| Instances per function | Requests | Errors | req/s | vs 1 | p50 | p90 | p99 |\n|---|---|---|---|---|---|---|---|\n");
        let single =
            self.loads.iter().find(|l| l.instances == 1).and_then(|l| l.report["total"]["rps"].as_f64());
        for run in &self.loads {
            let r = &run.report["total"];
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.1} | {:.2}x | {:.1} ms | {:.1} ms | {:.1} ms |",
                run.instances,
                r["requests"],
                r["errors"],
                f("rps"),
                single.map_or(f64::NAN, |s| f("rps") / s),
                f("p50_ms"),
                f("p90_ms"),
                f("p99_ms")
            );
        }
        let _ = writeln!(t, "\nPer endpoint, at {} instances per function:\n", widest.instances);
        t.push_str("| Endpoint | Requests | Errors | req/s | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|---|\n");
        let load = &widest.report;
        let rows = load["endpoints"].as_array().cloned().unwrap_or_default();
        for r in rows.iter().chain(std::iter::once(&load["total"])) {
            let name = r["endpoint"].as_str().unwrap_or("total");
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                t,
                "| {name} | {} | {} | {:.1} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
                r["requests"],
                r["errors"],
                f("rps"),
                f("p50_ms"),
                f("p90_ms"),
                f("p99_ms"),
                f("max_ms")
            );
        }
        t
    }

    /// Live delivery: send acknowledged to event received, and the dispatcher's share of it.
    pub fn live_table(&self) -> String {
        let Some(live) = &self.live else { return "No live run in this result.\n".into() };
        let p = &live.probe;
        let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        let mut t = format!(
            "From a send's 201 to its `message.created` event on the other participant's connection, \
             through `cargo lambda watch --release`, `devstack ws` and `devstack streams`; {} of {} events \
             arrived.\n\n| p50 | p90 | p99 | max |\n|---|---|---|---|\n| {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            p["received"],
            p["sends"],
            f("p50_ms"),
            f("p90_ms"),
            f("p99_ms"),
            f("max_ms")
        );
        if let Some(d) = &live.dispatcher {
            let g = |k: &str| d[k].as_f64().unwrap_or(f64::NAN);
            let _ = write!(
                t,
                "\nNot ours: the dispatcher reads the stream every {:.0} ms, as Lambda polls a shard four times a \
                 second, so a record waits {:.0} ms on average (up to {:.0} ms) before it is read; from `GetRecords` \
                 to the invocation it then took {:.2} ms on average ({:.2} ms at most, {} records). The rest is \
                 the `fanout` function, its DynamoDB queries and the post.\n",
                g("poll_interval_ms"),
                g("poll_interval_ms") / 2.0,
                g("poll_interval_ms"),
                g("delay_mean_ms"),
                g("delay_max_ms"),
                d["delay_samples"]
            );
        }
        t
    }

    /// A group where everyone writes at once: statuses and the latency of the sends.
    pub fn burst_table(&self) -> String {
        let Some(b) = &self.burst else { return "No burst run in this result.\n".into() };
        let f = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
        let statuses = b["statuses"]
            .as_object()
            .map(|s| s.iter().map(|(k, v)| format!("{v} × {k}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        format!(
            "{} participants of one thread each send {} messages at the same moment, through `cargo lambda watch` \
             with up to 4 instances per function and the stream's fan-out running (`loadgen --burst`). \
             Answers: {statuses}; {} answered 5xx or not at all; {} messages written, counts {}.\n\n\
             | sends p50 | p90 | p99 | max | all sent in |\n|---|---|---|---|---|\n\
             | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} s |\n",
            b["senders"],
            b["messages_each"],
            b["server_errors"],
            b["messages_found"],
            if b["exact"].as_bool() == Some(true) { "exact" } else { "**NOT EXACT**" },
            f("p50_ms"),
            f("p90_ms"),
            f("p99_ms"),
            f("max_ms"),
            f("wall_ms") / 1000.0
        )
    }

    /// The fan-out of one send: records, invocations, DynamoDB work and posts.
    pub fn fanout_table(&self) -> String {
        if self.fanout.is_empty() {
            return "No fan-out measurement in this result.\n".into();
        }
        let mut t = String::from(
            "One send into a thread whose participants each have 3 open connections, through the \
             template's stream mapping and the real `fanout` handler (in-process, against DynamoDB Local).\n\n\
             | Participants | Connections | Stream records | Invocations | Events | Posts | DynamoDB calls | RRU | WRU | Handler time |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for f in &self.fanout {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} ms |",
                f.participants,
                f.connections,
                f.records,
                f.invocations,
                f.events,
                f.posts,
                f.work.calls(),
                f.work.read_units,
                f.work.write_units,
                f.invocation_ms
            );
        }
        t
    }

    /// Dollars per million delivered events (posts), from the fan-out measurements.
    pub fn live_cost_table(&self) -> String {
        if self.fanout.is_empty() {
            return "No fan-out measurement in this result.\n".into();
        }
        let memory = self.memory_mb("fanout");
        let mut t = format!(
            "Per million events delivered to a connection, from the fan-out of one send (above, in \
             performance.md). A post is one WebSocket API message (${:.2} per million); `fanout` runs at \
             {memory:.0} MB and is billed for its handler time; Lambda's reads of the stream are free. \
             Connections cost ${:.2} per million connection-minutes besides: a device connected 8 hours a day \
             costs ${:.4} a month.\n\n\
             | Participants | Posts per send | WebSocket $ | Lambda $ | DynamoDB $ | Total $ per million events |\n\
             |---|---|---|---|---|---|\n",
            price::WEBSOCKET_MESSAGES,
            price::WEBSOCKET_CONNECTION_MINUTES,
            8.0 * 60.0 * 30.0 * price::WEBSOCKET_CONNECTION_MINUTES / 1e6
        );
        for f in &self.fanout {
            if f.posts == 0 {
                continue;
            }
            let per = 1.0 / f.posts as f64;
            let websocket = price::WEBSOCKET_MESSAGES;
            let billed_s = f.invocation_ms.ceil() / 1000.0;
            let lambda = (f.invocations as f64 * price::LAMBDA_REQUESTS
                + memory / 1024.0 * billed_s * price::LAMBDA_GB_SECONDS)
                * per;
            let dynamodb =
                (f.work.read_units * price::READ_UNITS + f.work.write_units * price::WRITE_UNITS) * per;
            let _ = writeln!(
                t,
                "| {} | {} | {websocket:.2} | {lambda:.3} | {dynamodb:.3} | **{:.2}** |",
                f.participants,
                f.posts,
                websocket + lambda + dynamodb
            );
        }
        t
    }

    /// The cost table: DynamoDB calls and units per endpoint, and dollars per million requests.
    pub fn cost_table(&self) -> String {
        let mut t = String::from(
            "| Endpoint | DynamoDB calls | Operations | RRU | WRU | DynamoDB $ | Lambda $ | API Gateway $ | Total $ per million |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for w in &self.work_small {
            let c = Cost::of(w, self.cpu_us(w.endpoint), self.memory_mb(w.endpoint.function().name()));
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | **{:.2}** |",
                w.endpoint.label(),
                w.work.calls(),
                w.work.operations.join(", "),
                w.work.read_units,
                w.work.write_units,
                c.dynamodb,
                c.lambda,
                c.api,
                c.total()
            );
        }
        t
    }
}

/// Replaces the text between `<!-- bench:begin -->` and `<!-- bench:end -->` in `doc`.
pub fn splice(doc: &str, generated: &str) -> String {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{BEGIN}\n{generated}\n{}", &doc[..b], &doc[e..])
        }
        _ => format!("{doc}\n{BEGIN}\n{generated}\n{END}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_table_shows_the_probe_and_what_the_dispatcher_adds() {
        let dir = std::env::temp_dir().join(format!("bench-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (probe, stats) = (dir.join("live.json"), dir.join("streams.json"));
        std::fs::write(&probe, r#"{"sends":30,"received":30,"missing":0,"p50_ms":179.7,"p90_ms":275.0,"p99_ms":318.6,"max_ms":318.6}"#)
            .unwrap();
        std::fs::write(
            &stats,
            r#"[{"function":"purge","poll_interval_ms":250.0},{"function":"fanout","delay_mean_ms":1.141,"delay_max_ms":7.1,"delay_samples":93,"poll_interval_ms":250.0}]"#,
        )
        .unwrap();
        let r = Results { live: Live::read(Some(&probe), Some(&stats)).unwrap(), ..Default::default() };
        let table = r.live_table();
        assert!(table.contains("30 of 30 events"), "{table}");
        assert!(table.contains("| 179.7 ms | 275.0 ms | 318.6 ms | 318.6 ms |"), "{table}");
        assert!(table.contains("every 250 ms") && table.contains("125 ms on average"), "{table}");
        assert!(table.contains("1.14 ms on average"), "{table}");
        assert_eq!(Results::default().live_table(), "No live run in this result.\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn whole_process_cpu_is_held_to_hello_dynamodb_plus_its_cost_per_extra_call() {
        use crate::process::ProcessWarm;
        let summary = Summary { n: 1, p50_us: 1000.0, p90_us: 1000.0, min_us: 1000.0 };
        let run = |function: &str, endpoint: Option<Endpoint>, cpu_us: f64| ProcessWarm {
            function: function.into(),
            request: "r".into(),
            endpoint,
            invocations: 100,
            cpu_us,
            user_us: cpu_us * 0.7,
            system_us: cpu_us * 0.3,
            wall: summary,
        };
        let work = |endpoint, calls: usize| EndpointWork {
            endpoint,
            status: 200,
            work: crate::meter::Work {
                operations: vec!["GetItem".into(); calls],
                read_units: 0.5,
                write_units: 0.0,
            },
        };
        let r = Results {
            process: vec![
                run("hello-world", None, 100.0),
                run("hello-dynamodb", None, 300.0),
                run("unread_count", Some(Endpoint::UnreadTotals), 440.0),
                run("messages", Some(Endpoint::ListMessages), 1500.0),
            ],
            work_small: vec![work(Endpoint::UnreadTotals, 1), work(Endpoint::ListMessages, 3)],
            ..Default::default()
        };
        // 1.5 x 300 = 450 for one call; each extra call adds 300 - 100 = 200.
        assert_eq!(r.process_budget_us(Endpoint::UnreadTotals), Some((450.0, 0)));
        assert_eq!(r.process_budget_us(Endpoint::ListMessages), Some((850.0, 2)));
        let table = r.budget_table();
        let row = |subject: &str| table.lines().find(|l| l.contains(subject)).unwrap().to_owned();
        assert!(row("unread_count r").ends_with("| met |"), "{table}");
        assert!(row("messages r").contains("**NOT MET**"), "{table}");
        assert!(row("hello-dynamodb r").contains("baseline"), "{table}");
        assert!(
            r.process_table().contains("| messages | r | 100 | 1500 µs | 1050 µs | 450 µs | 5.00x |"),
            "{}",
            r.process_table()
        );

        // Memory: each function's heaviest request sets its size; the login has its own bound.
        let r = Results {
            process: vec![
                run("messages", Some(Endpoint::ListMessages), 1500.0),
                run("messages", Some(Endpoint::SendMessage), 4000.0),
                run("token", Some(Endpoint::Refresh), 800.0),
                run("token", Some(Endpoint::Login), 50_000.0),
            ],
            memory: [("messages".to_owned(), 128), ("token".to_owned(), 512)].into(),
            ..Default::default()
        };
        let sizing = r.memory_sizing();
        let of = |f: Function| sizing.iter().find(|s| s.function == f).copied().unwrap();
        // 4 ms is 55 ms at 128 MB, over 50; 28 ms at 256.
        assert_eq!(
            (of(Function::Messages).endpoint, of(Function::Messages).implied_mb),
            (Endpoint::SendMessage, 256)
        );
        assert_eq!((of(Function::Token).endpoint, of(Function::Token).implied_mb), (Endpoint::Login, 512));
        let table = r.budget_table();
        let row = |subject: &str| table.lines().find(|l| l.contains(subject)).unwrap().to_owned();
        assert!(row("from warm CPU | messages").contains("**NOT MET**"), "{table}");
        assert!(row("from warm CPU | token").ends_with("| met |"), "{table}");
    }

    #[test]
    fn the_load_table_compares_each_run_with_one_instance() {
        let report = |rps: f64| {
            serde_json::json!({
                "base_url": "http://x", "concurrency": 8, "duration_secs": 60,
                "endpoints": [{"endpoint": "GET /api/unread_count/", "requests": 10, "errors": 0, "rps": rps}],
                "total": {"requests": 10, "errors": 0, "rps": rps, "p50_ms": 5.0, "p90_ms": 9.0, "p99_ms": 20.0},
            })
        };
        let r = Results {
            loads: vec![
                LoadRun { instances: 1, report: report(100.0) },
                LoadRun { instances: 4, report: report(150.0) },
            ],
            ..Default::default()
        };
        let t = r.load_table();
        assert!(t.contains("| 1 | 10 | 0 | 100.0 | 1.00x |"), "{t}");
        assert!(t.contains("| 4 | 10 | 0 | 150.0 | 1.50x |"), "{t}");
        assert!(t.contains("at 4 instances per function"), "{t}");
        assert_eq!(Results::default().load_table(), "No load run in this result.\n");
    }

    #[test]
    fn splice_replaces_only_the_generated_part() {
        let doc = "intro\n<!-- bench:begin -->\nold\n<!-- bench:end -->\noutro\n";
        assert_eq!(splice(doc, "new"), "intro\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\noutro\n");
        assert!(splice("intro\n", "new").ends_with("<!-- bench:begin -->\nnew\n<!-- bench:end -->\n"));
    }
}
