//! `bench measure` runs every in-process and cold-start measurement and writes a results file;
//! `bench report` adds the load run and prints the budget table, and writes it into the docs.
//! `scripts/bench.sh` (`make bench`) runs both around the load generator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bench::coldstart::{RuntimeApi, Start, http_event};
use bench::local::Local;
use bench::meter::Meter;
use bench::process::ProcessWarm;
use bench::replay::{Recorder, Stub};
use bench::report::{Cold, Live, Machine, Package, Results, Rss, splice};
use bench::scenario::{Endpoint, Fixture, Size};
use bench::stats::Summary;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Measures cold start, package size, warm overhead, DynamoDB work and cost")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the measurements against DynamoDB Local and the release binaries.
    Measure {
        /// DynamoDB Local's URL.
        #[arg(long, default_value = "http://127.0.0.1:8002")]
        dynamodb: String,
        /// Where the host release binaries are.
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// Where `cargo lambda build --release --arm64 --output-format zip` put the packages.
        #[arg(long, default_value = "target/lambda")]
        lambda_dir: PathBuf,
        /// Cold starts per function.
        #[arg(long, default_value_t = 21)]
        starts: usize,
        /// Timed requests per endpoint in the warm bench (fewer if its time budget runs out).
        #[arg(long, default_value_t = 3000)]
        warm_iterations: usize,
        /// Timed warm invocations per endpoint of a whole function process (a tenth of that
        /// for the login, whose password hash alone takes tens of milliseconds).
        #[arg(long, default_value_t = 2000)]
        process_invocations: usize,
        /// Messages in the large case's thread.
        #[arg(long, default_value_t = Size::LARGE.messages)]
        large_messages: usize,
        /// Threads of the large case's reader.
        #[arg(long, default_value_t = Size::LARGE.threads)]
        large_threads: usize,
        /// The SAM template, whose stream mapping the fan-out measurement uses.
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
        /// The results file.
        #[arg(long, default_value = "target/bench/results.json")]
        out: PathBuf,
    },
    /// Only the whole-process warm invocations, of the binaries in `bin_dir`: for comparing
    /// builds (one release profile against another) without the rest of the bench.
    Process {
        /// DynamoDB Local's URL.
        #[arg(long, default_value = "http://127.0.0.1:8002")]
        dynamodb: String,
        /// Where the host release binaries are.
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// Timed warm invocations per endpoint (a tenth of that for the login).
        #[arg(long, default_value_t = 2000)]
        invocations: usize,
        /// Only these functions (`hello-world`, `messages`, ...); all when none is named.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// `NAME=VALUE` over the environment the functions get (`RUST_LOG=off`, ...).
        #[arg(long = "env")]
        env: Vec<String>,
        /// Where to write the runs as JSON.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the budget table and write the docs from a results file and a load run.
    Report {
        #[arg(long, default_value = "target/bench/results.json")]
        results: PathBuf,
        /// A load run: `<instances per function>=<the load generator's --json output>`; once
        /// per run.
        #[arg(long)]
        load: Vec<String>,
        /// Peak RSS per function: lines of `<function> <KiB>`.
        #[arg(long)]
        rss: Option<PathBuf>,
        /// `loadgen --live`'s `--json` output.
        #[arg(long)]
        live: Option<PathBuf>,
        /// `devstack streams`' `GET /stats` answer after the live run.
        #[arg(long)]
        streams: Option<PathBuf>,
        /// `loadgen --burst`'s `--json` output.
        #[arg(long)]
        burst: Option<PathBuf>,
        /// Where performance.md and cost.md are.
        #[arg(long, default_value = "docs")]
        docs: PathBuf,
    },
}

/// The functions whose cold start is measured, and the first request each gets.
/// `hello-world` is the budget's baseline; `hello-dynamodb` shows what the SDK alone costs.
const COLD_FUNCTIONS: [&str; 11] = [
    "hello-world",
    "hello-dynamodb",
    "token",
    "threads",
    "messages",
    "unread_count",
    "users",
    "admin",
    "purge",
    "realtime",
    "fanout",
];

/// The functions that are deployed.
const PACKAGED: [&str; 9] =
    ["token", "threads", "messages", "unread_count", "users", "admin", "purge", "realtime", "fanout"];

async fn first_request(function: &str, app: &shared::App, fx: &Fixture) -> (String, Value) {
    let endpoint = match function {
        "hello-world" => return ("GET /".into(), http_event("GET", "/", None, None)),
        "hello-dynamodb" => return ("GET / (one GetItem)".into(), http_event("GET", "/", None, None)),
        "admin" => return ("GET /admin/login/".into(), http_event("GET", "/admin/login/", None, None)),
        "purge" => return ("empty stream batch".into(), json!({ "Records": [] })),
        "fanout" => return ("empty stream batch".into(), json!({ "Records": [] })),
        "realtime" => return ("WebSocket ping".into(), websocket_ping_event()),
        "token" => Endpoint::Refresh,
        "threads" => Endpoint::ListThreads,
        "messages" => Endpoint::ListMessages,
        "unread_count" => Endpoint::UnreadTotals,
        "users" => Endpoint::Me,
        other => unreachable!("no first request for {other}"),
    };
    (endpoint.label().to_owned(), endpoint.prepare(app, fx).await.event())
}

/// A `{"action": "ping"}` message on the WebSocket API, as API Gateway hands it over.
fn websocket_ping_event() -> Value {
    json!({
        "headers": {},
        "requestContext": {
            "routeKey": "$default",
            "eventType": "MESSAGE",
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": 1_796_000_000_000_i64,
            "requestTimeEpoch": 1_796_000_000_001_i64,
            "identity": {"sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "domainName": "localhost",
            "connectionId": "BenchConn=",
            "apiId": "local"
        },
        "body": "{\"action\":\"ping\"}",
        "isBase64Encoded": false
    })
}

fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
    let kib: f64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    Machine {
        date: run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: kib / 1024.0 / 1024.0,
        os: format!("{} {}", run("uname", &["-s", "-r"]), std::env::consts::ARCH),
        rustc: run("rustc", &["-V"]),
    }
}

fn packages(lambda_dir: &Path, bin_dir: &Path) -> Vec<Package> {
    PACKAGED
        .iter()
        .filter_map(|f| {
            let zip = std::fs::metadata(lambda_dir.join(f).join("bootstrap.zip")).ok()?;
            let binary = std::fs::metadata(bin_dir.join(f)).map_or(0, |m| m.len());
            Some(Package { function: (*f).to_owned(), zip_bytes: zip.len(), binary_bytes: binary })
        })
        .collect()
}

async fn measure(
    dynamodb: &str,
    bin_dir: &Path,
    lambda_dir: &Path,
    starts: usize,
    warm_iterations: usize,
    process_invocations: usize,
    large: Size,
) -> Result<Results, Box<dyn std::error::Error>> {
    let local = Local::new(dynamodb);
    let meter = Meter::default();
    let app = local.app(local.client_with(Some(meter.clone())));
    // No stream: what this table measures (calls, capacity, our CPU) does not depend on one, and
    // DynamoDB Local spends longer on every write that it records in a stream.
    app.store.create_table_with(shared::store::table::TableStream::Disabled).await?;
    let mut results =
        Results { machine: machine(), large: (large.messages, large.threads), ..Default::default() };
    results.packages = packages(lambda_dir, bin_dir);

    eprintln!("bench: DynamoDB work, small case");
    let small = Fixture::build(&app, Size::SMALL, |_, _| {}).await;
    results.work_small = bench::work::measure(&app, &meter, &small).await;

    eprintln!("bench: warm, in-process with DynamoDB answered from memory");
    let recorder = Recorder::default();
    let recording = local.app(local.client_with(Some(recorder.clone())));
    let stub = Stub::new(&local);
    let warm_fx = Fixture::build(&recording, Size::SMALL, |_, _| {}).await;
    results.warm =
        bench::warm::run(&recording, &recorder, &stub, &warm_fx, warm_iterations, Duration::from_secs(3))
            .await?;

    eprintln!("bench: cold starts ({starts} per function)");
    let mut runtime = RuntimeApi::start().await?;
    let env = local.env();
    let mut samples: Vec<Vec<Start>> = vec![Vec::new(); COLD_FUNCTIONS.len()];
    let mut requests = vec![String::new(); COLD_FUNCTIONS.len()];
    // Rounds over every function, so that the machine's noise spreads over all of them alike.
    for round in 0..starts {
        for (i, function) in COLD_FUNCTIONS.iter().enumerate() {
            let (request, event) = first_request(function, &app, &small).await;
            let binary = bin_dir.join(function);
            let took = runtime
                .cold_start(&binary, &env, &event)
                .await
                .map_err(|e| format!("{function}: {e} (is {} built?)", binary.display()))?;
            samples[i].push(took);
            requests[i] = request;
        }
        eprint!("\rbench: cold start round {}/{starts}", round + 1);
    }
    eprintln!();
    results.cold = COLD_FUNCTIONS
        .iter()
        .zip(samples)
        .zip(requests)
        .map(|((f, s), request)| Cold {
            function: (*f).to_owned(),
            request,
            summary: Summary::of(s.iter().map(|s| s.total).collect()),
            init: Summary::of(s.iter().map(|s| s.init).collect()),
        })
        .collect();

    eprintln!("bench: warm invocations of whole processes ({process_invocations} per endpoint)");
    results.process =
        process_runs(&mut runtime, bin_dir, &env, &app, &small, process_invocations, &[]).await?;

    eprintln!("bench: DynamoDB work, {} messages and {} threads", large.messages, large.threads);
    let big = Fixture::build(&app, large, |done, all| {
        if done % 250 == 0 || done == all {
            eprint!("\rbench: seeded {done}/{all} threads");
        }
    })
    .await;
    eprintln!();
    results.work_large = bench::work::measure(&app, &meter, &big).await;
    Ok(results)
}

/// Warm invocations of `hello-world`, `hello-dynamodb` and every endpoint's function, each in a
/// process of its own that serves `invocations` requests after a tenth as many untimed; only
/// the functions in `only`, unless it is empty.
async fn process_runs(
    runtime: &mut RuntimeApi,
    bin_dir: &Path,
    env: &[(&str, String)],
    app: &shared::App,
    fx: &Fixture,
    invocations: usize,
    only: &[String],
) -> Result<Vec<ProcessWarm>, Box<dyn std::error::Error>> {
    let hello = vec![http_event("GET", "/", None, None)];
    let floors = [("hello-world", "GET /"), ("hello-dynamodb", "GET / (one GetItem)")];
    let runs = floors
        .into_iter()
        .map(|(f, r)| (f, r, None))
        .chain(Endpoint::ALL.into_iter().map(|e| (e.function().name(), e.label(), Some(e))));
    let mut out = Vec::new();
    for (function, request, endpoint) in runs {
        if !only.is_empty() && !only.iter().any(|f| f == function) {
            continue;
        }
        // Each run's events are made just before it, so that what one run writes (the users
        // and threads of the create and delete runs) is not there for the runs before it.
        let (events, n) = match endpoint {
            None => (hello.clone(), invocations),
            Some(endpoint) => {
                let n = if endpoint == Endpoint::Login { (invocations / 10).max(10) } else { invocations };
                let mut events = Vec::new();
                for _ in 0..if endpoint.once_only() { n + n / 10 } else { 1 } {
                    events.push(endpoint.prepare(app, fx).await.event());
                }
                (events, n)
            }
        };
        let run = runtime
            .warm_run(&bin_dir.join(function), env, &events, n / 10, n)
            .await
            .map_err(|e| format!("{function} warm ({request}): {e}"))?;
        let warm = ProcessWarm::of(function, request, endpoint, &run);
        eprintln!("bench: {function} {request}: {:.0} µs CPU per invocation", warm.cpu_us);
        out.push(warm);
    }
    Ok(out)
}

fn report(
    results: &Path,
    loads: &[String],
    rss: Option<&Path>,
    live: Option<Live>,
    burst: Option<&Path>,
    docs: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut r: Results = serde_json::from_str(&std::fs::read_to_string(results)?)?;
    r.live = live;
    r.burst = match burst {
        Some(path) if path.exists() => Some(serde_json::from_str(&std::fs::read_to_string(path)?)?),
        _ => None,
    };
    for load in loads {
        let (instances, path) =
            load.split_once('=').ok_or_else(|| format!("--load {load}: expected <instances>=<file>"))?;
        let report = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        r.loads.push(bench::report::LoadRun { instances: instances.parse()?, report });
    }
    if let Some(rss) = rss {
        r.rss = std::fs::read_to_string(rss)?
            .lines()
            .filter_map(|l| {
                let (f, kib) = l.split_once(' ')?;
                Some(Rss { function: f.to_owned(), peak_kib: kib.trim().parse().ok()? })
            })
            .collect();
    }
    let budgets = r.budget_table();
    println!("{}\n\n{budgets}", r.machine_line());
    println!("{}", r.load_table());
    println!("{}", r.live_table());
    println!("{}", r.burst_table());
    println!("{}", r.fanout_table());
    println!("{}", r.process_table());
    println!("{}", r.memory_table());
    let performance = format!(
        "{}\n\n### Budgets\n\n{budgets}\n### Warm invocations, whole process\n\n{}\n### Load\n\n{}\n### Live delivery\n\n{}\n### A group where everyone writes at once\n\n{}\n### Fan-out per send\n\n{}\n### Cold starts\n\n{}",
        r.machine_line(),
        r.process_table(),
        r.load_table(),
        r.live_table(),
        r.burst_table(),
        r.fanout_table(),
        cold_detail(&r)
    );
    let cost = format!(
        "{}\n\n{}\n### Memory size\n\n{}\n### Live events\n\n{}",
        r.machine_line(),
        r.cost_table(),
        r.memory_table(),
        r.live_cost_table()
    );
    for (file, generated) in [("performance.md", performance), ("cost.md", cost)] {
        let path = docs.join(file);
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, splice(&doc, &generated))?;
    }
    let misses = r.misses();
    if !misses.is_empty() {
        eprintln!("bench: {} budgets not met (see the table)", misses.len());
    }
    Ok(())
}

fn cold_detail(r: &Results) -> String {
    let hello = r.cold.iter().find(|c| c.function == "hello-dynamodb").map_or(f64::NAN, |c| c.init.p50_us);
    let mut t = String::from(
        "| Function | First request | init p50 | init vs hello-dynamodb | total min | total p50 | total p90 |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in &r.cold {
        t.push_str(&format!(
            "| {} | {} | {:.1} ms | {:.2}x | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            c.function,
            c.request,
            c.init.p50_us / 1000.0,
            c.init.p50_us / hello,
            c.summary.min_us / 1000.0,
            c.summary.p50_us / 1000.0,
            c.summary.p90_us / 1000.0
        ));
    }
    t
}

/// Thread sizes the fan-out is measured at (each participant with 3 connections).
const FANOUT_PARTICIPANTS: [usize; 2] = [2, 32];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Measure {
            dynamodb,
            bin_dir,
            lambda_dir,
            starts,
            warm_iterations,
            process_invocations,
            large_messages,
            large_threads,
            template,
            out,
        } => {
            let large = Size { messages: large_messages, threads: large_threads };
            let mut results = measure(
                &dynamodb,
                &bin_dir,
                &lambda_dir,
                starts,
                warm_iterations,
                process_invocations,
                large,
            )
            .await?;
            let template = std::fs::read_to_string(&template)?;
            results.memory = bench::memory::template_sizes(&template)?;
            for participants in FANOUT_PARTICIPANTS {
                eprintln!("bench: fan-out of one send to {participants} participants");
                let local = Local::new(&dynamodb);
                results.fanout.push(bench::fanout::measure(&local, &template, participants).await?);
            }
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
            eprintln!("bench: wrote {}", out.display());
        }
        Command::Process { dynamodb, bin_dir, invocations, only, env, out } => {
            let local = Local::new(&dynamodb);
            let mut vars: Vec<(&str, String)> = local.env();
            for setting in &env {
                let (name, value) =
                    setting.split_once('=').ok_or_else(|| format!("--env {setting}: expected NAME=VALUE"))?;
                vars.retain(|(n, _)| *n != name);
                vars.push((name, value.to_owned()));
            }
            let app = local.app(local.client_with(Some(Meter::default())));
            app.store.create_table_with(shared::store::table::TableStream::Disabled).await?;
            let fx = Fixture::build(&app, Size::SMALL, |_, _| {}).await;
            let mut runtime = RuntimeApi::start().await?;
            let runs = process_runs(&mut runtime, &bin_dir, &vars, &app, &fx, invocations, &only).await?;
            let results = Results { machine: machine(), process: runs, ..Default::default() };
            println!("{}", results.process_table());
            if let Some(out) = out {
                std::fs::write(&out, serde_json::to_string_pretty(&results.process)?)?;
            }
        }
        Command::Report { results, load, rss, live, streams, burst, docs } => {
            let live = Live::read(live.as_deref(), streams.as_deref())?;
            report(&results, &load, rss.as_deref(), live, burst.as_deref(), &docs)?
        }
    }
    Ok(())
}
