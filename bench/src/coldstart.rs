//! Cold starts: a minimal Lambda Runtime API on loopback hands one event to a freshly started
//! function process; the time from spawning the process to its posted response is one start.

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

/// The Runtime API's state: the next event to hand out, and where outcomes go.
struct Shared {
    next: Mutex<Option<(String, Vec<u8>)>>,
    /// When the event was handed out: the end of the function's init.
    handed_out: Mutex<Option<Instant>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// A Runtime API serving one event per start.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
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
}

async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let ok = |body: Vec<u8>| Response::new(Full::new(Bytes::from(body)));
    if path.ends_with("/invocation/next") {
        let next = shared.next.lock().expect("runtime lock").take();
        if next.is_some() {
            *shared.handed_out.lock().expect("runtime lock") = Some(Instant::now());
        }
        let Some((id, event)) = next else {
            // One event per process: later polls wait until the bench kills it.
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Ok(ok(vec![]));
        };
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
    let _ = shared.outcomes.send(outcome);
    Ok(Response::builder().status(202).body(Full::new(Bytes::new())).expect("a valid response"))
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { next: Mutex::new(None), handed_out: Mutex::new(None), outcomes: tx });
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

    /// Starts `binary` with `env`, hands it `event`, and returns the time until it asked for
    /// its first event (its init) and until it answered.
    pub async fn cold_start(
        &mut self,
        binary: &Path,
        env: &[(&str, String)],
        event: &Value,
    ) -> Result<Start, StartError> {
        while self.outcomes.try_recv().is_ok() {}
        let id = uuid::Uuid::new_v4().to_string();
        *self.shared.next.lock().expect("runtime lock") = Some((id, event.to_string().into_bytes()));
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
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| StartError::Spawn(name, e))?;
        let outcome = tokio::time::timeout(Duration::from_secs(10), self.outcomes.recv()).await;
        let elapsed = started.elapsed();
        let _ = child.kill().await;
        match outcome {
            Err(_) | Ok(None) => Err(StartError::Timeout),
            Ok(Some(Outcome::Error(e))) => Err(StartError::Failed(e)),
            Ok(Some(Outcome::Response(body))) => match body.get("statusCode").and_then(Value::as_u64) {
                Some(status) if !(200..300).contains(&status) => Err(StartError::Status(status)),
                _ => {
                    let handed_out = self.shared.handed_out.lock().expect("runtime lock").take();
                    let init = handed_out.map_or(elapsed, |t| t.duration_since(started));
                    Ok(Start { init, total: elapsed })
                }
            },
        }
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
