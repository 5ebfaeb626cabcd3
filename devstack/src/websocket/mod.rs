//! `devstack ws`: the template's API Gateway WebSocket API, locally. Neither `cargo lambda watch`
//! nor `sam local` serves WebSocket APIs, so this accepts the connections, hands API Gateway's
//! events to the functions through an [`Invoker`] (`crate::invoke`: the Lambda Invoke API
//! `cargo lambda watch` serves, or an in-process one in tests), and serves the `@connections` management API on the
//! same listener, where `aws-sdk-apigatewaymanagement` posts when its endpoint is
//! `http://HOST:PORT/<stage>`.
//!
//! What it imitates, in API Gateway's words (developer guide, unless said otherwise):
//! - "Until execution of the integration associated with the `$connect` route is completed, the
//!   upgrade request is pending and the actual connection will not be established. If the
//!   `$connect` request fails (e.g., due to AuthN/AuthZ failure or an integration failure), the
//!   connection will not be made." ("Manage connected users and client apps: `$connect` and
//!   `$disconnect` routes", apigateway-websocket-api-route-keys-connect-disconnect.html.) A Lambda
//!   proxy answer's status refuses the handshake with that status: "Because the client
//!   specified the chat1 subprotocol, the Lambda integration returns a 400 error, and the
//!   connection fails. [...] error: Unexpected server response: 400"; and the function's
//!   `Sec-WebSocket-Protocol` header is the one the handshake answers ("Set up a `$connect`
//!   route that requires a WebSocket subprotocol", websocket-connect-route-subprotocol.html).
//!   A failed invocation is answered 502, as API Gateway answers an integration error ("If your
//!   Lambda function's permissions are incorrect or the response to the API request isn't
//!   formatted correctly, then API Gateway returns an HTTP 502 status code", AWS knowledge
//!   center, malformed-502-api-gateway, written for REST APIs); an answer without a
//!   `statusCode` is taken as malformed too.
//! - A post before `$connect` completed, or after the connection closed, is `410 GoneException`:
//!   "A message was posted to the WebSocket API before the connection was established. The
//!   connection has been terminated, or the connection doesn't exist anymore." (AWS knowledge
//!   center, 410-gone-api-gateway.)
//! - Routing: "incoming JSON messages are directed to backend integrations based on routes that
//!   you configure. (Non-JSON messages are directed to a `$default` route that you configure.)"
//!   (apigateway-websocket-api-overview.html). Only a route with a route response (two-way) sends
//!   the integration's answer back to the client.
//! - Quotas ("Quotas for configuring and running a WebSocket in API Gateway",
//!   apigateway-execution-service-websocket-limits-table.html): "WebSocket frame size | 32 KB",
//!   "Message payload size | 128 KB", "Connection duration for WebSocket API | 2 hours", "Idle
//!   Connection Timeout | 10 minutes", "Integration timeout | 50 milliseconds - 29 seconds", and
//!   "Because of the WebSocket frame-size quota of 32 KB, a message larger than 32 KB must be
//!   split into multiple frames, each 32 KB or smaller. This applies to @connections commands. If
//!   a larger message (or larger frame size) is received, the connection is closed with code
//!   1009." Posts over 128 KB are `413 PayloadTooLargeException`, posts over 32 KB go out in
//!   32 KB frames.
//! - "API Gateway WebSocket APIs don't currently support binary frames in incoming message
//!   payloads. If a client app sends a binary frame, API Gateway rejects it and disconnects the
//!   client with code 1003." ("Binary media types for WebSocket APIs in API Gateway",
//!   websocket-api-develop-binary-media-types.html.)
//! - `$disconnect`: "The `$disconnect` route is executed after the connection is closed. The
//!   connection can be closed by the server or by the client. As the connection is already closed
//!   when it is executed, `$disconnect` is a best-effort event." A client's close frame gives its
//!   code and reason; none gives `1005` "Client-side close frame status not set" (the
//!   `aws_lambda_events` fixture example-apigw-websocket-request-disconnect-route.json); a
//!   `DeleteConnection` gives `1000` "Connection Closed Normally" (API Gateway's execution log in
//!   boto/boto3#3789).
//!
//! Not verified against AWS, and chosen here: pings are answered (tungstenite does), but pings
//! and pongs are not activity for the idle timeout; only data messages either way are, as users
//! report it: "API Gateway considers an idle connection to be one where no messages have been
//! sent on the socket for a fixed duration [...] (direction agnostic)", and "AWS API Gateway does
//! not support WebSocket protocol level ping/pong" (andyrichardson/subscriptionless#3); "If no
//! messages are sent between the server and client for a 10-minute period, API Gateway closes
//! the connection" (hotsock.io, "Keep Alive"). The idle and lifetime closes send and report `1001` "Going
//! away"; a socket that drops without a close frame reports `1006`; a binary frame's close
//! reports `1003` "Unsupported data"; posts are sent as text frames (binary when the data is not
//! UTF-8); a failed invocation of a message route sends the client
//! `{"message": "Internal server error", "connectionId": .., "requestId": ..}`, and a message no
//! route takes (no `$default`) `{"message": "Forbidden", ..}`, as API Gateway is seen to; header names reach the function lower-cased (hyper's
//! parser does not keep their case).

pub mod event;
pub mod template;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

pub use crate::invoke::{FnInvoker, HttpInvoker, InvokeError, Invoker};
pub use event::ConnectionInfo;
pub use template::{Route, WebSocketApi};

type Body = Full<Bytes>;

/// API Gateway's WebSocket quotas, shortenable for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Closed after this long without a data message either way (10 minutes).
    pub idle_timeout: Duration,
    /// Closed this long after connecting (2 hours).
    pub max_lifetime: Duration,
    /// Largest frame accepted, and largest frame sent (32 KB).
    pub frame_bytes: usize,
    /// Largest message accepted or posted (128 KB).
    pub message_bytes: usize,
    /// How long an invocation may take (29 seconds).
    pub integration_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(7200),
            frame_bytes: 32 * 1024,
            message_bytes: 128 * 1024,
            integration_timeout: Duration::from_secs(29),
        }
    }
}

/// Injected failures of `@connections` posts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// The fraction of posts that fail without delivering, half `429 LimitExceededException`,
    /// half `500 InternalServerErrorException`.
    pub post_fault_rate: f64,
    /// Seeds the draw, so a run's faults repeat.
    pub seed: u64,
}

/// Where a frame sent to a client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSource {
    /// A `POST @connections/{id}` from the backend.
    Post,
    /// The integration's answer on a two-way route.
    Reply,
}

/// One message the gateway sent a client on the backend's behalf (see
/// [`Gateway::record_frames`]); the gateway's own error frames are not recorded.
#[derive(Debug, Clone)]
pub struct SentFrame {
    /// The connection it went to.
    pub connection: String,
    /// Who made it.
    pub source: FrameSource,
    /// What was sent.
    pub data: Bytes,
}

/// What the gateway has done so far (also served as JSON on `GET /@stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections whose `$connect` succeeded.
    pub connects: u64,
    /// Upgrade requests refused (non-2xx `$connect` answer, or a failed invocation).
    pub connects_refused: u64,
    /// Connections closed (each gets a `$disconnect`, if the route exists).
    pub disconnects: u64,
    /// Data messages received from clients.
    pub messages: u64,
    /// `@connections` posts accepted and handed to their connection.
    pub posts_delivered: u64,
    /// `@connections` requests answered `410 GoneException`.
    pub gone: u64,
    /// Posts failed on purpose with `429 LimitExceededException`.
    pub faults_throttled: u64,
    /// Posts failed on purpose with `500 InternalServerErrorException`.
    pub faults_internal: u64,
    /// Posts refused with `413 PayloadTooLargeException`.
    pub payload_too_large: u64,
    /// Connections closed by a `DELETE @connections/{id}`.
    pub deleted: u64,
    /// Connections open now.
    pub open: u64,
}

impl Stats {
    /// The stats as `GET /@stats` serves them.
    pub fn to_json(&self) -> Value {
        json!({
            "connects": self.connects,
            "connectsRefused": self.connects_refused,
            "disconnects": self.disconnects,
            "messages": self.messages,
            "postsDelivered": self.posts_delivered,
            "gone": self.gone,
            "faultsThrottled": self.faults_throttled,
            "faultsInternal": self.faults_internal,
            "payloadTooLarge": self.payload_too_large,
            "deleted": self.deleted,
            "open": self.open,
        })
    }
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    connects_refused: AtomicU64,
    disconnects: AtomicU64,
    messages: AtomicU64,
    posts_delivered: AtomicU64,
    gone: AtomicU64,
    faults_throttled: AtomicU64,
    faults_internal: AtomicU64,
    payload_too_large: AtomicU64,
    deleted: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

enum Command {
    Send(Bytes),
    Close,
}

struct Connection {
    info: ConnectionInfo,
    last_active: AtomicI64,
    tx: mpsc::UnboundedSender<Command>,
}

impl Connection {
    fn touch(&self) {
        self.last_active.store(event::now_ms(), Ordering::Relaxed);
    }
}

struct Shared {
    api: WebSocketApi,
    limits: Limits,
    fault_rate: f64,
    invoker: Arc<dyn Invoker>,
    api_id: String,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    ids: Mutex<fastrand::Rng>,
    faults: Mutex<fastrand::Rng>,
    throttled: Mutex<HashSet<String>>,
    counters: Counters,
    /// Every frame sent on the backend's behalf, once [`Gateway::record_frames`] asked for them.
    frames: Mutex<Option<Vec<SentFrame>>>,
    /// The same, as JSON lines, once [`Gateway::record_frames_to`] named a file.
    frame_file: Mutex<Option<std::fs::File>>,
}

/// The local WebSocket API. Cheap to clone; clones share connections and stats.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut r = respond(status, value.to_string());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A management API error as the SDK's REST-JSON protocol parses it: the error code in
/// `x-amzn-ErrorType`, the message in the body.
fn aws_error(status: StatusCode, code: &'static str, message: &str) -> Response<Body> {
    let mut r = json_response(status, &json!({ "message": message }));
    r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(code));
    r
}

fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) }))
}

impl Gateway {
    /// A gateway for `api` that hands its events to `invoker`.
    pub fn new(api: WebSocketApi, limits: Limits, faults: Faults, invoker: Arc<dyn Invoker>) -> Self {
        let mut ids = fastrand::Rng::new();
        let api_id = event::new_api_id(&mut ids);
        Self {
            shared: Arc::new(Shared {
                api,
                limits,
                fault_rate: faults.post_fault_rate,
                invoker,
                api_id,
                connections: Mutex::new(HashMap::new()),
                ids: Mutex::new(ids),
                faults: Mutex::new(fastrand::Rng::with_seed(faults.seed)),
                throttled: Mutex::new(HashSet::new()),
                counters: Counters::default(),
                frames: Mutex::new(None),
                frame_file: Mutex::new(None),
            }),
        }
    }

    /// The stage clients connect to (`ws://HOST:PORT/<stage>`).
    pub fn stage(&self) -> &str {
        &self.shared.api.stage
    }

    /// What the gateway has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            connects: get(&c.connects),
            connects_refused: get(&c.connects_refused),
            disconnects: get(&c.disconnects),
            messages: get(&c.messages),
            posts_delivered: get(&c.posts_delivered),
            gone: get(&c.gone),
            faults_throttled: get(&c.faults_throttled),
            faults_internal: get(&c.faults_internal),
            payload_too_large: get(&c.payload_too_large),
            deleted: get(&c.deleted),
            open: self.shared.connections.lock().expect("connections lock").len() as u64,
        }
    }

    /// From now on, every post to connection `id` fails with `429 LimitExceededException`
    /// (counted in [`Stats::faults_throttled`]), as API Gateway answers while a client's buffer
    /// stays full: a post that keeps failing, for tests.
    pub fn throttle_connection(&self, id: &str) {
        self.shared.throttled.lock().expect("throttled lock").insert(id.to_owned());
    }

    /// From now on, keeps every frame sent to a client on the backend's behalf (posts, and the
    /// answers of two-way routes), for [`Gateway::recorded_frames`]: tests check each against
    /// the events' schema.
    pub fn record_frames(&self) {
        self.shared.frames.lock().expect("frames lock").get_or_insert_with(Vec::new);
    }

    /// The frames kept since [`Gateway::record_frames`], in the order they were sent.
    pub fn recorded_frames(&self) -> Vec<SentFrame> {
        self.shared.frames.lock().expect("frames lock").clone().unwrap_or_default()
    }

    /// From now on, appends every frame sent to a client on the backend's behalf to `path`, one
    /// JSON line each: `{"connection", "source": "post"|"reply", "data": <the frame as text>}`
    /// (`make test` checks a whole run's against the events' schema).
    pub fn record_frames_to(&self, path: &std::path::Path) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        *self.shared.frame_file.lock().expect("frame file lock") = Some(file);
        Ok(())
    }

    fn record(&self, connection: &str, source: FrameSource, data: &Bytes) {
        if let Some(frames) = self.shared.frames.lock().expect("frames lock").as_mut() {
            frames.push(SentFrame { connection: connection.to_owned(), source, data: data.clone() });
        }
        if let Some(file) = self.shared.frame_file.lock().expect("frame file lock").as_mut() {
            let source = match source {
                FrameSource::Post => "post",
                FrameSource::Reply => "reply",
            };
            let line = json!({
                "connection": connection,
                "source": source,
                "data": String::from_utf8_lossy(data),
            });
            use std::io::Write as _;
            if let Err(e) = writeln!(file, "{line}") {
                eprintln!("devstack ws: recording a frame failed: {e}");
            }
        }
    }

    /// Serves WebSocket clients and the management API on `listener` until accepting fails.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, peer) = listener.accept().await?;
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    fn new_id(&self) -> String {
        event::new_id(&mut self.shared.ids.lock().expect("ids lock"))
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path();
        let stage = format!("/{}", self.shared.api.stage);
        let rest = match path.strip_prefix(&stage) {
            Some(r) if r.is_empty() || r.starts_with('/') => r,
            _ => path,
        };
        let rest = percent_encoding::percent_decode_str(rest).decode_utf8_lossy().into_owned();
        match rest.as_str() {
            "" | "/" => self.upgrade(req, peer).await,
            "/@stats" if req.method() == Method::GET => {
                json_response(StatusCode::OK, &self.stats().to_json())
            }
            other => match other.strip_prefix("/@connections/") {
                Some(id) if !id.is_empty() && !id.contains('/') => {
                    let id = id.to_owned();
                    self.manage(req, &id).await
                }
                // API Gateway's answer for a path it has no resource for.
                _ => json_response(StatusCode::FORBIDDEN, &json!({ "message": "Forbidden" })),
            },
        }
    }

    /// The `@connections/{id}` management API: `POST` sends, `GET` describes, `DELETE` closes.
    async fn manage(&self, req: Request<Incoming>, id: &str) -> Response<Body> {
        let shared = &self.shared;
        let method = req.method().clone();
        let found = shared.connections.lock().expect("connections lock").get(id).cloned();
        let gone = || {
            bump(&shared.counters.gone);
            aws_error(StatusCode::GONE, "GoneException", "")
        };
        match method {
            Method::POST => {
                let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
                    return respond(StatusCode::BAD_REQUEST, "the body was cut off");
                };
                if body.len() > shared.limits.message_bytes {
                    bump(&shared.counters.payload_too_large);
                    return aws_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PayloadTooLargeException",
                        &format!(
                            "Payload of {} bytes exceeds the {} byte limit",
                            body.len(),
                            shared.limits.message_bytes
                        ),
                    );
                }
                if shared.throttled.lock().expect("throttled lock").contains(id) {
                    bump(&shared.counters.faults_throttled);
                    return aws_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "LimitExceededException",
                        "Rate exceeded",
                    );
                }
                if shared.fault_rate > 0.0 {
                    let (fault, throttle) = {
                        let mut rng = shared.faults.lock().expect("faults lock");
                        (rng.f64() < shared.fault_rate, rng.bool())
                    };
                    if fault && throttle {
                        bump(&shared.counters.faults_throttled);
                        return aws_error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "LimitExceededException",
                            "Rate exceeded",
                        );
                    }
                    if fault {
                        bump(&shared.counters.faults_internal);
                        return aws_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerErrorException",
                            "Internal server error",
                        );
                    }
                }
                match found {
                    Some(c) if c.tx.send(Command::Send(body.clone())).is_ok() => {
                        self.record(id, FrameSource::Post, &body);
                        c.touch();
                        bump(&shared.counters.posts_delivered);
                        respond(StatusCode::OK, "")
                    }
                    _ => gone(),
                }
            }
            Method::GET => match found {
                Some(c) => {
                    // The wire names are the model's `jsonName`s (`connectedAt`, `identity`,
                    // `sourceIp`...), which the SDK reads into `ConnectedAt`, `Identity`...
                    let mut identity = json!({ "sourceIp": c.info.source_ip });
                    if let Some(ua) = &c.info.user_agent {
                        identity["userAgent"] = json!(ua);
                    }
                    json_response(
                        StatusCode::OK,
                        &json!({
                            "connectedAt": event::iso8601(c.info.connected_at),
                            "identity": identity,
                            "lastActiveAt": event::iso8601(c.last_active.load(Ordering::Relaxed)),
                        }),
                    )
                }
                None => gone(),
            },
            // `DeleteConnection`: "DELETE /@connections/{connectionId}", answered 204, or
            // `GoneException` ("The connection with the provided id no longer exists"), in the
            // API's model (apigatewaymanagementapi-2018-11-29.normal.json); "To disconnect the
            // client, use: DELETE https://{api-id}.execute-api.us-east-1.amazonaws.com/{stage}/@connections/{connection_id}"
            // ("Use @connections commands in your backend service",
            // apigateway-how-to-call-websocket-api-connections.html). Like a post, it finds no
            // connection until `$connect` has answered. The client gets a close frame and the
            // function a `$disconnect` (see the module's notes).
            Method::DELETE => match found {
                Some(c) => {
                    shared.connections.lock().expect("connections lock").remove(id);
                    bump(&shared.counters.deleted);
                    let _ = c.tx.send(Command::Close);
                    respond(StatusCode::NO_CONTENT, "")
                }
                None => gone(),
            },
            _ => respond(StatusCode::METHOD_NOT_ALLOWED, ""),
        }
    }

    async fn invoke(&self, route: &Route, event: Value) -> Result<Value, InvokeError> {
        let limit = self.shared.limits.integration_timeout;
        let call = self.shared.invoker.invoke(&route.function, event);
        tokio::time::timeout(limit, call).await.unwrap_or(Err(InvokeError::Timeout(limit)))
    }

    /// The upgrade request: `$connect` decides, then the handshake completes or is refused.
    async fn upgrade(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let h = req.headers();
        let token = |name: header::HeaderName, want: &str| {
            h.get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(want))
        };
        let key = h.get("sec-websocket-key").and_then(|k| k.to_str().ok()).map(str::to_owned);
        let is_upgrade = req.method() == Method::GET
            && token(header::CONNECTION, "upgrade")
            && token(header::UPGRADE, "websocket")
            && h.get("sec-websocket-version").is_some_and(|v| v == "13");
        let Some(key) = key.filter(|_| is_upgrade) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "message": "a WebSocket upgrade request is expected here" }),
            );
        };
        let shared = &self.shared;
        let connection_id = self.new_id();
        let request_id = self.new_id();
        let mut headers: event::Headers = h
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let trace = {
            let mut rng = shared.ids.lock().expect("ids lock");
            let hex = |n: usize, rng: &mut fastrand::Rng| -> String {
                (0..n).map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0')).collect()
            };
            format!("Root=1-{}-{}", hex(8, &mut rng), hex(24, &mut rng))
        };
        headers.push(("x-amzn-trace-id".into(), trace));
        headers.push(("x-forwarded-for".into(), peer.ip().to_string()));
        headers.push(("x-forwarded-proto".into(), "http".into()));
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let info = ConnectionInfo {
            connection_id: connection_id.clone(),
            connected_at: event::now_ms(),
            source_ip: peer.ip().to_string(),
            user_agent: h.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
            domain_name: h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost").to_owned(),
            stage: shared.api.stage.clone(),
            api_id: shared.api_id.clone(),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);

        let answer = match shared.api.routes.get("$connect") {
            Some(route) => {
                let event = event::connect_event(&info, &headers, &query, &request_id);
                self.invoke(route, event).await
            }
            None => Ok(json!({ "statusCode": 200 })),
        };
        let status = match &answer {
            Ok(a) => a["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok()),
            Err(_) => None,
        };
        let refuse = |status: StatusCode, why: &str, body: &str| {
            bump(&shared.counters.connects_refused);
            eprintln!(
                "devstack ws: $connect {connection_id} from {} refused with {status}: {why}",
                info.source_ip
            );
            respond(status, body.to_owned())
        };
        let answer = match (answer, status) {
            (Ok(a), Some(s)) if s.is_success() => a,
            (Ok(a), Some(s)) => return refuse(s, "the function's answer", a["body"].as_str().unwrap_or("")),
            (Ok(_), None) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    "the function's answer has no statusCode",
                    r#"{"message": "Internal server error"}"#,
                );
            }
            (Err(e), _) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    &e.to_string(),
                    r#"{"message": "Internal server error"}"#,
                );
            }
        };

        let mut response = respond(StatusCode::SWITCHING_PROTOCOLS, "");
        let rh = response.headers_mut();
        rh.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        rh.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            rh.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = response_header(&answer, "sec-websocket-protocol")
            && let Ok(v) = HeaderValue::from_str(&protocol)
        {
            rh.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
        // Open before the 101 goes out: a post made as soon as the client has its handshake
        // is queued for the socket, not answered 410.
        let (tx, rx) = mpsc::unbounded_channel();
        let connection =
            Arc::new(Connection { info: info.clone(), last_active: AtomicI64::new(event::now_ms()), tx });
        shared
            .connections
            .lock()
            .expect("connections lock")
            .insert(connection_id.clone(), connection.clone());
        bump(&shared.counters.connects);
        eprintln!("devstack ws: connect {connection_id} from {}", info.source_ip);
        let gateway = self.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let config = WebSocketConfig::default()
                        .max_frame_size(Some(gateway.shared.limits.frame_bytes))
                        .max_message_size(Some(gateway.shared.limits.message_bytes));
                    let ws =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                            .await;
                    gateway.run(ws, connection, rx).await;
                }
                Err(e) => {
                    gateway.shared.connections.lock().expect("connections lock").remove(&info.connection_id);
                    eprintln!("devstack ws: upgrade of {} failed: {e}", info.connection_id);
                }
            }
        });
        response
    }

    /// One open connection, until it closes; then `$disconnect`.
    async fn run(
        self,
        ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        connection: Arc<Connection>,
        mut rx: mpsc::UnboundedReceiver<Command>,
    ) {
        let shared = self.shared.clone();
        let info = connection.info.clone();
        let id = info.connection_id.clone();

        let (mut sink, mut stream) = ws.split();
        let limits = shared.limits;
        let lifetime = tokio::time::sleep(limits.max_lifetime);
        let idle = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(lifetime, idle);
        let (code, reason): (u16, String) = loop {
            tokio::select! {
                () = &mut lifetime => {
                    let _ = sink.send(close_message(1001, "Going away")).await;
                    break (1001, "Going away".into());
                }
                () = &mut idle => {
                    let _ = sink.send(close_message(1001, "Going away")).await;
                    break (1001, "Going away".into());
                }
                command = rx.recv() => match command {
                    Some(Command::Send(payload)) => {
                        idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                        if send_in_frames(&mut sink, payload, limits.frame_bytes).await.is_err() {
                            break (1006, "Connection closed abnormally".into());
                        }
                    }
                    Some(Command::Close) | None => {
                        let _ = sink.send(close_message(1000, "")).await;
                        break (1000, "Connection Closed Normally".into());
                    }
                },
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                        self.message(&connection, text.to_string());
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let _ = sink.send(close_message(1003, "Unsupported data")).await;
                        break (1003, "Unsupported data".into());
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => break match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (1005, "Client-side close frame status not set".into()),
                    },
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        eprintln!("devstack ws: {id} exceeded a quota: {e}");
                        let _ = sink.send(close_message(1009, "Message too big")).await;
                        break (1009, "Message too big".into());
                    }
                    Some(Err(_)) | None => break (1006, "Connection closed abnormally".into()),
                },
            }
        };
        // Sends the close reply tungstenite queued, or finishes our close.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        shared.connections.lock().expect("connections lock").remove(&id);
        bump(&shared.counters.disconnects);
        eprintln!("devstack ws: disconnect {id} ({code} {reason})");
        if let Some(route) = shared.api.routes.get("$disconnect") {
            let request_id = self.new_id();
            let event = event::disconnect_event(&info, code, &reason, &request_id);
            match self.invoke(route, event).await {
                Ok(_) => eprintln!("devstack ws: route $disconnect {id} -> {}: ok", route.function),
                Err(e) => eprintln!("devstack ws: route $disconnect {id} -> {}: {e}", route.function),
            }
        }
    }

    /// A data message: route it, invoke, and for a two-way route send the answer's body back.
    fn message(&self, connection: &Arc<Connection>, body: String) {
        connection.touch();
        bump(&self.shared.counters.messages);
        let gateway = self.clone();
        let connection = connection.clone();
        tokio::spawn(async move {
            let shared = &gateway.shared;
            let id = &connection.info.connection_id;
            let route_key = shared.api.select_route(&body).to_owned();
            let request_id = gateway.new_id();
            let error_frame = |message: &str| {
                json!({ "message": message, "connectionId": id, "requestId": request_id }).to_string()
            };
            let Some(route) = shared.api.routes.get(&route_key) else {
                eprintln!("devstack ws: route {route_key} {id}: no such route");
                let _ = connection.tx.send(Command::Send(error_frame("Forbidden").into()));
                return;
            };
            let message_id = gateway.new_id();
            let event = event::message_event(&connection.info, &route_key, &body, &request_id, &message_id);
            match gateway.invoke(route, event).await {
                Ok(answer) => {
                    eprintln!("devstack ws: route {route_key} {id} -> {}: ok", route.function);
                    if route.two_way
                        && let Some(body) = answer["body"].as_str()
                    {
                        let body = Bytes::from(body.to_owned());
                        if connection.tx.send(Command::Send(body.clone())).is_ok() {
                            gateway.record(id, FrameSource::Reply, &body);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("devstack ws: route {route_key} {id} -> {}: {e}", route.function);
                    let _ = connection.tx.send(Command::Send(error_frame("Internal server error").into()));
                }
            }
        });
    }
}

/// A header of a Lambda proxy answer, by name in any case (`headers`, then `multiValueHeaders`).
fn response_header(answer: &Value, name: &str) -> Option<String> {
    let find = |map: &Value| {
        map.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    match find(&answer["headers"]) {
        Some(Value::String(s)) => Some(s),
        _ => match find(&answer["multiValueHeaders"]) {
            Some(Value::Array(values)) => values.first().and_then(|v| v.as_str()).map(str::to_owned),
            _ => None,
        },
    }
}

/// Sends a posted payload as one message, in frames of at most `frame_bytes` ("a message larger
/// than 32 KB must be split into multiple frames [...] This applies to @connections commands").
async fn send_in_frames<S>(sink: &mut S, payload: Bytes, frame_bytes: usize) -> Result<(), tungstenite::Error>
where
    S: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let data = if std::str::from_utf8(&payload).is_ok() { Data::Text } else { Data::Binary };
    if payload.len() <= frame_bytes {
        let message = match data {
            Data::Text => Message::Text(Utf8Bytes::try_from(payload).unwrap_or_default()),
            _ => Message::Binary(payload),
        };
        return sink.send(message).await;
    }
    let chunks = payload.len().div_ceil(frame_bytes);
    for i in 0..chunks {
        let chunk = payload.slice(i * frame_bytes..((i + 1) * frame_bytes).min(payload.len()));
        let opcode = if i == 0 { OpCode::Data(data) } else { OpCode::Data(Data::Continue) };
        sink.feed(Message::Frame(Frame::message(chunk, opcode, i + 1 == chunks))).await?;
    }
    sink.flush().await
}
