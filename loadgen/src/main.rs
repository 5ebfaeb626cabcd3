//! `loadgen`: plays a realistic chat workload against a deployed or local messaging API and
//! reports throughput and latency percentiles per endpoint.
//!
//! Each virtual user is an OS thread with its own HTTP agent (so its own connections), playing
//! [`workload`] for its share of the accounts. Measurements stay thread-local until the end;
//! only a request counter is shared, for the progress bar.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use fastrand::Rng;
use indicatif::{ProgressBar, ProgressStyle};

use loadgen::client::Client;
use loadgen::report::{Report, RunInfo};
use loadgen::stats::Stats;
use loadgen::workload::{self, Settings};
use loadgen::{burst, live};

/// Plays a chat workload (log in, start threads, poll, read and send messages) against a
/// messaging API and reports throughput and p50/p90/p99 latency per endpoint.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The API's base URL, e.g. http://127.0.0.1:9000 or https://<id>.execute-api.<region>.amazonaws.com
    #[arg(long, env = "LOADGEN_BASE_URL")]
    base_url: String,

    /// How many accounts to use: <user-prefix>0001 up to <user-prefix><N>; they must exist.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    users: u16,

    /// Prefix of the accounts' usernames, also used to search for partners.
    #[arg(long, default_value = "load-")]
    user_prefix: String,

    /// The password of every load account.
    #[arg(long, env = "LOADGEN_PASSWORD", hide_env_values = true)]
    password: Password,

    /// Virtual users running at once [default: --users]. With fewer than --users each takes
    /// turns between several accounts; with more, some accounts are used by two at once.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: Option<u16>,

    /// Seconds after which no new action starts.
    #[arg(long, default_value_t = 30)]
    duration: u64,

    /// Pause in milliseconds between one account's actions.
    #[arg(long, default_value_t = 0)]
    think_ms: u64,

    /// Seconds before a request without a complete answer counts as a transport error.
    #[arg(long, default_value_t = 15)]
    timeout: u64,

    /// Seed for the action mix [default: random, printed in the report].
    #[arg(long)]
    seed: Option<u64>,

    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Instead of the workload, measure live delivery: account 1 sends this many messages to
    /// account 2, who listens on a WebSocket, and the time from each send's 201 to its
    /// `message.created` event is reported.
    #[arg(long)]
    live: Option<usize>,

    /// Instead of the workload, a burst: every account joins one thread and all send this many
    /// messages each at the same moment; every status and the sends' latency are reported, and
    /// what was written is checked (the run fails on a 5xx or a count that is not exact).
    #[arg(long)]
    burst: Option<usize>,
}

/// Keeps the password out of any `Debug` output.
#[derive(Clone)]
struct Password(String);

impl FromStr for Password {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Password(s.to_owned()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let base_url = args.base_url.trim_end_matches('/').to_owned();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        eprintln!("loadgen: --base-url must start with http:// or https://");
        return ExitCode::FAILURE;
    }
    let users = usize::from(args.users);
    let concurrency = usize::from(args.concurrency.unwrap_or(args.users));
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let duration = Duration::from_secs(args.duration);

    if let Some(each) = args.burst {
        let usernames: Vec<String> = (1..=users).map(|n| format!("{}{n:04}", args.user_prefix)).collect();
        return burst_run(&base_url, &usernames, &args.password.0, each, args.json.as_deref());
    }
    if let Some(sends) = args.live {
        return live_probe(&base_url, &args.user_prefix, &args.password.0, sends, args.json.as_deref());
    }
    let started = Instant::now();
    let settings = Settings {
        base_url: base_url.clone(),
        user_prefix: args.user_prefix.clone(),
        password: args.password.0,
        think: Duration::from_millis(args.think_ms),
        timeout: Duration::from_secs(args.timeout),
        deadline: started + duration,
    };
    let usernames: Vec<String> = (1..=users).map(|n| format!("{}{n:04}", args.user_prefix)).collect();
    let (stats, finished) = run(&settings, &usernames, concurrency, seed, started, duration);
    let wall = finished.duration_since(started);

    let run_info = RunInfo { base_url, duration_secs: args.duration, concurrency, users, seed };
    let report = Report::new(run_info, &stats, wall);
    if let Err(error) = report.write_table(&mut io::stdout().lock()) {
        eprintln!("loadgen: writing the report: {error}");
        return ExitCode::FAILURE;
    }
    if let Some(path) = &args.json
        && let Err(error) = write_json(&report, path)
    {
        eprintln!("loadgen: writing {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    // Nothing answered 2xx: the URL, the accounts or the password are wrong, not the API slow.
    if report.total.requests == report.total.errors + report.total.transport_errors {
        eprintln!("loadgen: no request succeeded");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn live_probe(base_url: &str, prefix: &str, password: &str, sends: usize, json: Option<&Path>) -> ExitCode {
    let sent = AtomicU64::new(0);
    let notify = |message: &str| eprintln!("loadgen: {message}");
    let mut client = Client::new(base_url, Duration::from_secs(15), &sent, &notify);
    let (sender, listener) = (format!("{prefix}0001"), format!("{prefix}0002"));
    let report = match live::run(&mut client, &sender, &listener, password, sends, Duration::from_secs(10)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("loadgen: live probe: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "live delivery, send acknowledged to event received, {} of {} events: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.received, report.sends, report.p50_ms, report.p90_ms, report.p99_ms, report.max_ms
    );
    if let Some(path) = json
        && !write_pretty(&report, path)
    {
        return ExitCode::FAILURE;
    }
    // Every send must reach the listener: a lost event is a failure, not a statistic.
    if report.missing > 0 {
        eprintln!("loadgen: {} of {} events never arrived", report.missing, report.sends);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn burst_run(
    base_url: &str,
    usernames: &[String],
    password: &str,
    each: usize,
    json: Option<&Path>,
) -> ExitCode {
    let report = match burst::run(base_url, usernames, password, each) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("loadgen: burst: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "burst: {} senders x {} messages at once into one thread in {:.0} ms: {:?}; sends p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} written{}",
        report.senders,
        report.messages_each,
        report.wall_ms,
        report.statuses,
        report.p50_ms,
        report.p90_ms,
        report.p99_ms,
        report.max_ms,
        report.messages_found,
        if report.exact {
            ", every count exact".to_owned()
        } else {
            format!("; NOT EXACT: {:?}", report.mismatches)
        }
    );
    if let Some(path) = json
        && !write_pretty(&report, path)
    {
        return ExitCode::FAILURE;
    }
    if report.server_errors > 0 || !report.exact {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Writes a probe's report as JSON; false (and says why) if it could not.
fn write_pretty(report: &impl serde::Serialize, path: &Path) -> bool {
    let written = File::create(path)
        .map_err(|e| e.to_string())
        .and_then(|f| serde_json::to_writer_pretty(f, report).map_err(|e| e.to_string()));
    if let Err(error) = &written {
        eprintln!("loadgen: writing {}: {error}", path.display());
    }
    written.is_ok()
}

fn write_json(report: &Report, path: &Path) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    report.write_json(&mut out)?;
    writeln!(out)?;
    out.flush()
}

/// Runs `concurrency` virtual users until the deadline, drawing progress meanwhile, and
/// returns their merged measurements and when the last of them finished.
fn run(
    settings: &Settings,
    usernames: &[String],
    concurrency: usize,
    seed: u64,
    started: Instant,
    duration: Duration,
) -> (Stats, Instant) {
    let progress = progress_bar(duration);
    // Printing through the bar keeps notices from tearing it; `suspend` (unlike the bar's
    // `println`) also prints when the bar is hidden because stderr is not a terminal.
    let notify = |message: &str| progress.suspend(|| eprintln!("loadgen: {message}"));
    let sent = AtomicU64::new(0);
    let mut seeds = Rng::with_seed(seed);

    thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|worker| {
                let accounts = accounts_for(worker, concurrency, usernames);
                let mut rng = Rng::with_seed(seeds.u64(..));
                let (sent, notify) = (&sent, &notify);
                thread::Builder::new()
                    .name(format!("vu-{worker}"))
                    .spawn_scoped(scope, move || {
                        let mut client = Client::new(&settings.base_url, settings.timeout, sent, notify);
                        workload::run(&mut client, settings, &accounts, &mut rng);
                        (client.into_stats(), Instant::now())
                    })
                    .expect("spawning a virtual user thread")
            })
            .collect();

        let mut rate = RateMeter::new(started);
        while !workers.iter().all(|worker| worker.is_finished()) {
            let elapsed = started.elapsed();
            let requests = sent.load(Ordering::Relaxed);
            progress.set_position(elapsed.as_secs().min(duration.as_secs()));
            let phase = if elapsed < duration { "" } else { ", finishing requests in flight" };
            progress.set_message(format!("{requests} requests, {:.0} req/s{phase}", rate.update(requests)));
            thread::sleep(Duration::from_millis(200));
        }
        progress.finish_and_clear();

        let mut total = Stats::default();
        let mut last_finish = started;
        for worker in workers {
            let (stats, finished) = worker.join().expect("a virtual user thread panicked");
            total.merge(&stats);
            last_finish = last_finish.max(finished);
        }
        (total, last_finish)
    })
}

/// Virtual user `worker` takes every `concurrency`-th account; when there are more virtual
/// users than accounts, the extra ones share an account with another.
fn accounts_for(worker: usize, concurrency: usize, usernames: &[String]) -> Vec<String> {
    let mine: Vec<String> = usernames.iter().skip(worker).step_by(concurrency).cloned().collect();
    if mine.is_empty() { vec![usernames[worker % usernames.len()].clone()] } else { mine }
}

fn progress_bar(duration: Duration) -> ProgressBar {
    let progress = ProgressBar::new(duration.as_secs());
    let style = ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
        .expect("the progress template is valid")
        .progress_chars("=> ");
    progress.set_style(style);
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

/// Requests per second over roughly the last second, so the bar shows the current rate rather
/// than the average since the start.
struct RateMeter {
    since: Instant,
    count_then: u64,
    rate: f64,
}

impl RateMeter {
    const WINDOW: Duration = Duration::from_secs(1);

    fn new(start: Instant) -> Self {
        RateMeter { since: start, count_then: 0, rate: 0.0 }
    }

    fn update(&mut self, count: u64) -> f64 {
        let window = self.since.elapsed();
        if window >= Self::WINDOW {
            self.rate = (count - self.count_then) as f64 / window.as_secs_f64();
            self.since = Instant::now();
            self.count_then = count;
        }
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("load-{i:04}")).collect()
    }

    #[test]
    fn accounts_are_dealt_round_robin() {
        assert_eq!(accounts_for(1, 2, &names(5)), ["load-0002", "load-0004"]);
        assert_eq!(accounts_for(0, 3, &names(3)), ["load-0001"]);
    }

    #[test]
    fn extra_virtual_users_share_accounts() {
        assert_eq!(accounts_for(4, 6, &names(3)), ["load-0002"]);
    }

    #[test]
    fn password_stays_out_of_debug_output() {
        let args =
            Args::parse_from(["loadgen", "--base-url", "http://x", "--users", "2", "--password", "hunter2"]);
        assert_eq!(format!("{:?}", args.password), "Password(..)");
        assert_eq!(args.password.0, "hunter2");
    }
}
