//! `devstack api`: the template's HTTP API (see `devstack::http_api`): its routes, CORS and
//! access log, invoking the functions through `cargo lambda watch`'s Invoke API. `Host` reaches
//! the functions unchanged, so the API's links name this address.
//!
//! `devstack streams`: Lambda's event source mapping for the table's DynamoDB stream, invoking
//! the template's stream-triggered functions through `cargo lambda watch` (see
//! `devstack::streams`).
//!
//! `devstack ws`: the template's WebSocket API, handing its events to the functions that
//! `cargo lambda watch` serves (see `devstack::websocket`).
//!
//! `devstack web`: the web client's static files on their own origin, with a generated
//! `/config.js` naming the API (see `devstack::web`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use std::time::Duration;

use devstack::http_api::HttpApi;
use devstack::invoke::HttpInvoker;
use devstack::streams::{Config, Dispatcher, Mapping};
use devstack::web::Site;
use devstack::websocket::{Faults, Gateway, Limits, WebSocketApi};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

#[derive(Parser)]
#[command(
    about = "The local stack's stand-ins for API Gateway (HTTP and WebSocket APIs) and Lambda's stream event source mappings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the template's HTTP API (routes, CORS, access log on stdout), invoking the functions
    /// through `--invoke`.
    Api {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Where `cargo lambda watch` serves the Lambda Invoke API.
        #[arg(long, default_value = "http://127.0.0.1:9100")]
        invoke: String,
        /// How long a function may take before the API answers 503 (API Gateway: 30 s at most).
        #[arg(long, default_value_t = 30)]
        integration_timeout_secs: u64,
        /// The SAM template whose HTTP API is served.
        #[arg(long, default_value = "template.yaml")]
        template: std::path::PathBuf,
        /// The allowed origins, as the `CorsAllowOrigins` parameter takes them (comma-separated);
        /// the parameter's default when absent.
        #[arg(long, env = "CORS_ALLOW_ORIGINS")]
        allow_origins: Option<String>,
    },
    /// Serve the template's WebSocket API (and its `@connections` management API), invoking the
    /// functions through `--invoke`.
    Ws {
        /// Address to listen on; clients connect to `ws://ADDR/<stage>`, the management API is
        /// `http://ADDR/<stage>/@connections/{id}`, the counters `http://ADDR/@stats`.
        #[arg(long, default_value = "127.0.0.1:9002")]
        listen: SocketAddr,
        /// Where `cargo lambda watch` serves the Lambda Invoke API.
        #[arg(long, default_value = "http://127.0.0.1:9101")]
        invoke: String,
        /// The SAM template whose `AWS::ApiGatewayV2` WebSocket API is served.
        #[arg(long, default_value = "template.yaml")]
        template: std::path::PathBuf,
        /// Close connections idle this long (API Gateway: 10 minutes).
        #[arg(long, default_value_t = 600)]
        idle_timeout_secs: u64,
        /// Close connections this long after connecting (API Gateway: 2 hours).
        #[arg(long, default_value_t = 7200)]
        max_lifetime_secs: u64,
        /// Fail this fraction of `@connections` posts without delivering (half 429, half 500).
        #[arg(long, default_value_t = 0.0)]
        post_fault_rate: f64,
        /// Seed of the fault draw.
        #[arg(long, default_value_t = 0)]
        fault_seed: u64,
        /// Append every frame sent to a client on the functions' behalf (posts, and answers on
        /// two-way routes) to this file, one JSON line each, for checking against
        /// `docs/events.schema.json`.
        #[arg(long)]
        record_frames: Option<std::path::PathBuf>,
    },
    /// Deliver the table's DynamoDB stream to the functions the template subscribes to it.
    Streams {
        /// DynamoDB Local, which also serves the DynamoDB Streams API.
        #[arg(long, default_value = "http://127.0.0.1:8001")]
        dynamodb_endpoint: String,
        /// The table whose latest stream is read.
        #[arg(long, default_value = "messaging")]
        table: String,
        /// The SAM template whose `Type: DynamoDB` events say which functions, with which settings.
        #[arg(long, default_value = "template.yaml")]
        template: std::path::PathBuf,
        /// Where `cargo lambda watch` serves the Lambda Invoke API.
        #[arg(long, default_value = "http://127.0.0.1:9100")]
        invoke: String,
        /// Pause between reads of a shard that had nothing new.
        #[arg(long, default_value_t = 200)]
        poll_interval_ms: u64,
        /// Serve the mappings' counts as JSON on `GET /stats` at this address.
        #[arg(long)]
        stats_listen: Option<SocketAddr>,
    },
    /// Keep a long-used DynamoDB Local database responsive: delete every table but `--table`, and
    /// rebuild `--table` from a scan when its stream holds more than `--max-stream-records`.
    Compact {
        /// DynamoDB Local (never a real endpoint: this deletes tables).
        #[arg(long, default_value = "http://127.0.0.1:8000")]
        dynamodb_endpoint: String,
        /// The table to keep.
        #[arg(long, default_value = "messaging")]
        table: String,
        /// Stream records past which the table is rebuilt.
        #[arg(long, default_value_t = 20_000)]
        max_stream_records: usize,
    },
    /// Serve the web client's static files (and a generated `/config.js`) on their own origin.
    Web {
        /// Address to listen on; add `http://ADDR` to the API's allowed origins.
        #[arg(long, default_value = "127.0.0.1:9005")]
        listen: SocketAddr,
        /// The folder to serve.
        #[arg(long, default_value = "web")]
        root: std::path::PathBuf,
        /// The API's base URL, which `/config.js` hands to the page.
        #[arg(long, default_value = "http://localhost:9000")]
        api_base: String,
    },
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

/// `GET /stats`: every mapping's counts.
async fn serve_stats(listen: SocketAddr, dispatcher: Arc<Dispatcher>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("devstack streams: stats on http://{listen}/stats");
    loop {
        let (stream, _) = listener.accept().await?;
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let dispatcher = dispatcher.clone();
                async move {
                    if req.uri().path() != "/stats" {
                        return Ok::<_, hyper::Error>(plain(StatusCode::NOT_FOUND, "only GET /stats"));
                    }
                    let stats: Vec<_> = dispatcher.stats().iter().map(|s| s.to_json()).collect();
                    let mut r =
                        Response::new(Full::new(Bytes::from(serde_json::Value::from(stats).to_string())));
                    r.headers_mut()
                        .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("valid"));
                    Ok(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Compact { dynamodb_endpoint, table, max_stream_records } => {
            let host =
                dynamodb_endpoint.split("://").nth(1).unwrap_or("").split(['/', ':']).next().unwrap_or("");
            if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
                return Err(format!(
                    "{dynamodb_endpoint}: compact only deletes tables of a DynamoDB Local on this machine"
                )
                .into());
            }
            let (dynamodb, streams) =
                (devstack::local::dynamodb(&dynamodb_endpoint), devstack::local::streams(&dynamodb_endpoint));
            let done = devstack::compact::compact(&dynamodb, &streams, &table, max_stream_records)
                .await
                .map_err(|e| {
                    // The SDK's errors say what failed only in their sources.
                    let mut text = e.to_string();
                    let mut source = e.source();
                    while let Some(cause) = source {
                        text = format!("{text}: {cause}");
                        source = cause.source();
                    }
                    text
                })?;
            for other in &done.dropped {
                eprintln!("devstack compact: deleted the table {other}");
            }
            match done.rebuilt_items {
                Some(n) => eprintln!(
                    "devstack compact: {table}'s stream held over {max_stream_records} records: rebuilt it with its {n} items and an empty stream"
                ),
                None => eprintln!(
                    "devstack compact: {table}'s stream holds {} records; kept as it is",
                    done.stream_records
                ),
            }
            Ok(())
        }
        Command::Web { listen, root, api_base } => {
            if !root.join("index.html").is_file() {
                return Err(format!("{}: no index.html to serve", root.display()).into());
            }
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!("devstack: web client on http://{listen} from {}, API {api_base}", root.display());
            Site::new(root, &api_base).serve(listener).await?;
            Ok(())
        }
        Command::Streams { dynamodb_endpoint, table, template, invoke, poll_interval_ms, stats_listen } => {
            let text = std::fs::read_to_string(&template)?;
            let mappings = Mapping::from_template(&text)?;
            if mappings.is_empty() {
                return Err(format!("{}: no function has a DynamoDB event", template.display()).into());
            }
            for m in &mappings {
                eprintln!(
                    "devstack streams: {}.{} -> {} (batch {}, window {} s, {:?}, retries {}, bisect {}, \
                     partial batch responses {}, {} filters, timeout {:?})",
                    m.resource,
                    m.event,
                    m.function,
                    m.batch_size,
                    m.batching_window.as_secs(),
                    m.starting_position,
                    m.maximum_retry_attempts.map_or("until expiry".to_owned(), |n| n.to_string()),
                    m.bisect_batch_on_function_error,
                    m.report_batch_item_failures,
                    m.filters.len(),
                    m.timeout
                );
            }
            let (dynamodb, streams) =
                (devstack::local::dynamodb(&dynamodb_endpoint), devstack::local::streams(&dynamodb_endpoint));
            let mut config = Config::new(&table);
            config.poll_interval = Duration::from_millis(poll_interval_ms);
            let invoker = Arc::new(HttpInvoker::new(&invoke));
            eprintln!("devstack streams: table {table} at {dynamodb_endpoint}, invoking through {invoke}");
            let dispatcher = Arc::new(Dispatcher::spawn(dynamodb, streams, invoker, mappings, config));
            if let Some(listen) = stats_listen {
                tokio::spawn(serve_stats(listen, dispatcher.clone()));
            }
            tokio::signal::ctrl_c().await?;
            if let Ok(dispatcher) = Arc::try_unwrap(dispatcher) {
                dispatcher.stop().await;
            }
            Ok(())
        }
        Command::Ws {
            listen,
            invoke,
            template,
            idle_timeout_secs,
            max_lifetime_secs,
            post_fault_rate,
            fault_seed,
            record_frames,
        } => {
            if !(0.0..=1.0).contains(&post_fault_rate) {
                return Err(format!("--post-fault-rate {post_fault_rate} is not between 0 and 1").into());
            }
            let text = std::fs::read_to_string(&template)?;
            let api = WebSocketApi::from_template(&text)?;
            let limits = Limits {
                idle_timeout: Duration::from_secs(idle_timeout_secs),
                max_lifetime: Duration::from_secs(max_lifetime_secs),
                ..Limits::default()
            };
            let faults = Faults { post_fault_rate, seed: fault_seed };
            let gateway = Gateway::new(api, limits, faults, Arc::new(HttpInvoker::new(&invoke)));
            if let Some(path) = &record_frames {
                gateway.record_frames_to(path)?;
            }
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!(
                "devstack: WebSocket API on ws://{listen}/{stage} -> {invoke}, management API on http://{listen}/{stage}/@connections",
                stage = gateway.stage()
            );
            gateway.serve(listener).await?;
            Ok(())
        }
        Command::Api { listen, invoke, integration_timeout_secs, template, allow_origins } => {
            let text = std::fs::read_to_string(&template)?;
            let invoker = Arc::new(HttpInvoker::new(&invoke));
            let mut api = HttpApi::from_template(&text, allow_origins.as_deref(), invoker, listen.port())?;
            api.integration_timeout = Duration::from_secs(integration_timeout_secs);
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!(
                "devstack: HTTP API on http://{listen} ({} routes) -> {invoke}, CORS for {:?}; access log on stdout",
                api.routes.routes.len(),
                api.cors.allow_origins
            );
            Arc::new(api).serve(listener).await?;
            Ok(())
        }
    }
}
