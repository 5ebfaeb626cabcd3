//! A minimal Lambda Runtime API on loopback. Cold starts: it hands one event to a freshly
//! started function process, and the time from spawning the process to its posted response is
//! one start. Warm invocations: it hands one process event after event, as Lambda does to a warm
//! instance, and `/proc` says what the process spent on them (`crate::process`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::scenario::Prepared;

/// What the function posted back for its invocation.
#[derive(Debug)]
enum Outcome {
    Response(Value),
    Error(String),
}

/// The Runtime API's state: the events to hand out, and where outcomes go.
struct Shared {
    queue: Mutex<VecDeque<(String, Vec<u8>)>>,
    /// Wakes a poll for the next event when one is queued.
    ready: tokio::sync::Notify,
    /// When the last event was handed out (for a cold start, the end of the function's init).
    handed_out: Mutex<Option<Instant>>,
    /// Each outcome with when it arrived.
    outcomes: mpsc::UnboundedSender<(Outcome, Instant)>,
}

/// A Runtime API for one function process at a time.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    outcomes: mpsc::UnboundedReceiver<(Outcome, Instant)>,
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
}

/// One cold start's timings.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// Process start to its first request for an event (Lambda's "Init Duration").
    pub init: Duration,
    /// Process start to its first response.
    pub total: Duration,
}

/// Why a start did not count.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not start {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("no response within 10 s")]
    Timeout,
    #[error("the function reported an error: {0}")]
    Failed(String),
    #[error("the function answered HTTP {0}")]
    Status(u64),
    #[error("reading the process's CPU time: {0}")]
    Proc(std::io::Error),
}

/// What a warm run measured: the process's CPU before and after the timed invocations, and
/// each one's time from handing out the event to receiving the response.
#[derive(Debug, Clone)]
pub struct WarmRun {
    pub before: crate::process::CpuTime,
    pub after: crate::process::CpuTime,
    pub walls: Vec<Duration>,
}

async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let ok = |body: Vec<u8>| Response::new(Full::new(Bytes::from(body)));
    if path.ends_with("/invocation/next") {
        let next = loop {
            // Registered before looking, so an event queued in between still wakes this poll.
            let queued = shared.ready.notified();
            if let Some(next) = shared.queue.lock().expect("runtime lock").pop_front() {
                break Some(next);
            }
            // A poll with nothing to do waits, as on Lambda, until the bench kills the process.
            if tokio::time::timeout(Duration::from_secs(60), queued).await.is_err() {
                break None;
            }
        };
        let Some((id, event)) = next else { return Ok(ok(vec![])) };
        *shared.handed_out.lock().expect("runtime lock") = Some(Instant::now());
        let deadline = (std::time::SystemTime::now() + Duration::from_secs(10))
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        let mut response = ok(event);
        let headers = response.headers_mut();
        headers.insert("lambda-runtime-aws-request-id", id.parse().expect("ascii"));
        headers.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().expect("digits"));
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".parse().expect("ascii"),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".parse().expect("ascii"),
        );
        headers.insert("content-type", "application/json".parse().expect("ascii"));
        return Ok(response);
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let outcome = if path.ends_with("/response") {
        Outcome::Response(serde_json::from_slice(&body).unwrap_or(Value::Null))
    } else {
        Outcome::Error(String::from_utf8_lossy(&body).into_owned())
    };
    let _ = shared.outcomes.send((outcome, Instant::now()));
    Ok(Response::builder().status(202).body(Full::new(Bytes::new())).expect("a valid response"))
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: tokio::sync::Notify::new(),
            handed_out: Mutex::new(None),
            outcomes: tx,
        });
        let accept_shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| serve(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { shared, outcomes: rx, address })
    }

    /// The function's process, with Lambda's environment and nothing on stdin or stdout.
    fn command(&self, binary: &Path, env: &[(&str, String)]) -> tokio::process::Command {
        let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut command = tokio::process::Command::new(binary);
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Forgets what an earlier process left: unclaimed events and outcomes.
    fn reset(&mut self) {
        while self.outcomes.try_recv().is_ok() {}
        self.shared.queue.lock().expect("runtime lock").clear();
        self.shared.handed_out.lock().expect("runtime lock").take();
    }

    fn spawn(&self, binary: &Path, env: &[(&str, String)]) -> Result<tokio::process::Child, StartError> {
        let name = binary.display().to_string();
        self.command(binary, env).spawn().map_err(|e| StartError::Spawn(name, e))
    }

    fn queue(&self, event: &Value) {
        let id = uuid::Uuid::new_v4().to_string();
        self.shared.queue.lock().expect("runtime lock").push_back((id, event.to_string().into_bytes()));
        self.shared.ready.notify_one();
    }

    /// The next outcome, within 10 s; an error or a status outside 2xx fails it.
    async fn outcome(&mut self) -> Result<Instant, StartError> {
        let outcome = tokio::time::timeout(Duration::from_secs(10), self.outcomes.recv()).await;
        match outcome {
            Err(_) | Ok(None) => Err(StartError::Timeout),
            Ok(Some((Outcome::Error(e), _))) => Err(StartError::Failed(e)),
            Ok(Some((Outcome::Response(body), at))) => match body.get("statusCode").and_then(Value::as_u64) {
                Some(status) if !(200..300).contains(&status) => Err(StartError::Status(status)),
                _ => Ok(at),
            },
        }
    }

    /// Starts `binary` with `env`, hands it `event`, and returns the time until it asked for
    /// its first event (its init) and until it answered.
    pub async fn cold_start(
        &mut self,
        binary: &Path,
        env: &[(&str, String)],
        event: &Value,
    ) -> Result<Start, StartError> {
        self.reset();
        self.queue(event);
        let started = Instant::now();
        let mut child = self.spawn(binary, env)?;
        let outcome = self.outcome().await;
        let _ = child.kill().await;
        let answered = outcome?;
        let total = answered.duration_since(started);
        let handed_out = self.shared.handed_out.lock().expect("runtime lock").take();
        let init = handed_out.map_or(total, |t| t.duration_since(started));
        Ok(Start { init, total })
    }

    /// Starts `binary` and hands it `warmup` and then `invocations` events, one after another
    /// (cycling through `events`; give one per invocation for requests that can be made only
    /// once). Returns the process's CPU around the timed invocations and each one's time.
    pub async fn warm_run(
        &mut self,
        binary: &Path,
        env: &[(&str, String)],
        events: &[Value],
        warmup: usize,
        invocations: usize,
    ) -> Result<WarmRun, StartError> {
        assert!(!events.is_empty(), "no events");
        self.reset();
        let mut child = self.spawn(binary, env)?;
        let pid = child.id().ok_or_else(|| StartError::Proc(std::io::Error::other("no pid")))?;
        let mut walls = Vec::with_capacity(invocations);
        let mut before = None;
        for i in 0..warmup + invocations {
            if i == warmup {
                before = Some(crate::process::cpu_of(pid).map_err(StartError::Proc)?);
            }
            self.queue(&events[i % events.len()]);
            let answered = self.outcome().await?;
            let handed_out = self.shared.handed_out.lock().expect("runtime lock").take().unwrap_or(answered);
            if i >= warmup {
                walls.push(answered.duration_since(handed_out));
            }
        }
        let after = crate::process::cpu_of(pid).map_err(StartError::Proc)?;
        let _ = child.kill().await;
        let before = before.unwrap_or(after);
        Ok(WarmRun { before, after, walls })
    }
}

/// An API Gateway HTTP API (payload 2.0) event for a request.
pub fn http_event(method: &str, uri: &str, token: Option<&str>, body: Option<&str>) -> Value {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut headers = json!({ "host": "bench.local", "user-agent": "bench", "accept": "application/json" });
    if let Some(token) = token {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_795_622_400_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

impl Prepared {
    /// This request as the event API Gateway would send.
    pub fn event(&self) -> Value {
        http_event(self.method.as_str(), &self.uri, self.token.as_deref(), self.body.as_deref())
    }
}
