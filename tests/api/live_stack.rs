//! Live delivery in one process: a test's table in DynamoDB Local, devstack's WebSocket API on
//! an ephemeral port handing its routes to the real `realtime` handler, devstack's stream
//! dispatcher with the template's mapping handing the table's stream to the real `fanout`
//! handler, whose `Pusher` posts to the gateway's `@connections` API, and real WebSocket
//! clients connecting with tickets issued through the API.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devstack::invoke::{FnInvoker, InvokeError};
use devstack::streams::{Config, Dispatcher, Mapping, MappingStats};
use devstack::websocket::{Faults, Gateway, Limits, WebSocketApi};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, TestUser, aws_config_for_tests};

const TEMPLATE: &str = include_str!("../../template.yaml");

/// How long a test waits for what it expects before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// What the in-process fanout function did, summed over its invocations.
#[derive(Debug, Default, Clone, Copy)]
pub struct FanoutTotals {
    /// Invocations (the dispatcher's retries included).
    pub invocations: u64,
    /// Events built.
    pub events: u64,
    /// Posts the gateway took.
    pub delivered: u64,
    /// Connections found gone (410) and forgotten.
    pub gone: u64,
    /// Connections answered 410 while they may still have been connecting, kept.
    pub connecting: u64,
    /// Posts that failed after every attempt.
    pub failed: u64,
    /// Records reported in `batchItemFailures`.
    pub failed_records: u64,
}

#[derive(Default)]
struct Recorder {
    /// Connection ids by the ticket their `$connect` used.
    connections: Mutex<HashMap<String, String>>,
    /// Connections whose `$disconnect` never reaches the function.
    lost_disconnects: Mutex<HashSet<String>>,
    /// Holds the next successful `$connect` answer back from the gateway.
    hold: Mutex<Option<ConnectHold>>,
    fanout: Mutex<FanoutTotals>,
}

/// The whole live path, for one test.
pub struct LiveStack {
    pub t: TestApp,
    pub gateway: Gateway,
    pub addr: SocketAddr,
    dispatcher: Dispatcher,
    recorder: Arc<Recorder>,
}

fn function_error(kind: &str, e: impl std::fmt::Display) -> InvokeError {
    InvokeError::Function(json!({ "errorType": kind, "errorMessage": e.to_string() }))
}

/// A function's HTTP response as API Gateway's Lambda proxy integration receives it.
fn proxy_answer(response: &shared::http::HttpResponse) -> Value {
    let headers: serde_json::Map<String, Value> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
        .collect();
    let body: &[u8] = response.body().as_ref();
    json!({
        "statusCode": response.status().as_u16(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false,
    })
}

impl LiveStack {
    /// A fresh table, gateway (with `faults` on its posts) and dispatcher, all running.
    pub async fn start(faults: Faults) -> Self {
        let t = TestApp::spawn_with_stream().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = WebSocketApi::from_template(TEMPLATE).expect("the template's WebSocket API");
        let websocket_url = format!("ws://{addr}/{}", api.stage);
        let recorder = Arc::new(Recorder::default());
        let sdk = aws_config_for_tests();

        let realtime = Arc::new(t.realtime(&websocket_url));
        let fanout = Arc::new(::fanout::Fanout {
            store: t.app.store.clone(),
            pusher: shared::realtime::Pusher::new(&sdk, &websocket_url),
        });
        let seen = recorder.clone();
        let invoker = FnInvoker(move |function: String, event: Value| {
            let (realtime, fanout, seen) = (realtime.clone(), fanout.clone(), seen.clone());
            async move {
                match function.as_str() {
                    "realtime" => Box::pin(on_realtime(&realtime, &seen, event)).await,
                    "fanout" => Box::pin(on_fanout(&fanout, &seen, event)).await,
                    other => Err(InvokeError::Invoke(format!("no function {other}"))),
                }
            }
        });
        let invoker = Arc::new(invoker);
        let gateway = Gateway::new(api, Limits::default(), faults, invoker.clone());
        gateway.record_frames();
        tokio::spawn(gateway.clone().serve(listener));

        let mapping = Mapping::from_template(TEMPLATE)
            .expect("the template's stream mappings")
            .into_iter()
            .find(|m| m.function == "fanout")
            .expect("the fanout function's mapping");
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::Config::builder()
                .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
                    "local", "local", None, None, "tests",
                ))
                .endpoint_url(crate::helpers::endpoint())
                .build(),
        );
        let config = Config {
            table: t.app.store.table().to_owned(),
            poll_interval: Duration::from_millis(20),
            retry_backoff: Duration::from_millis(20),
            quiet: std::env::var_os("LIVE_STACK_LOG").is_none(),
        };
        let dispatcher =
            Dispatcher::spawn(t.app.store.client().clone(), streams, invoker, vec![mapping], config);
        dispatcher.ready().await;
        Self { t, gateway, addr, dispatcher, recorder }
    }

    /// Opens a WebSocket for `user` with a ticket from `POST /api/realtime/ticket/`.
    pub async fn connect(&self, user: &TestUser) -> Live {
        self.try_connect(user)
            .await
            .unwrap_or_else(|status| panic!("handshake for {} refused: {status}", user.id))
    }

    /// A ticket from `POST /api/realtime/ticket/`.
    pub async fn ticket(&self, user: &TestUser) -> String {
        let r = self.t.post("/api/realtime/ticket/", user, json!({})).await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body["ticket"].as_str().unwrap().to_owned()
    }

    /// Opens a WebSocket for `user` with a new ticket; the handshake's status if refused.
    pub async fn try_connect(&self, user: &TestUser) -> Result<Live, u16> {
        let ticket = self.ticket(user).await;
        self.connect_with(user, &format!("ticket={ticket}")).await.map(|mut live| {
            live.connection = self.recorder.connections.lock().unwrap()[&ticket].clone();
            live
        })
    }

    /// Opens a WebSocket for `user` with this query string; the handshake's status if refused.
    /// The returned connection's id is left empty.
    pub async fn connect_with(&self, user: &TestUser, query: &str) -> Result<Live, u16> {
        let url = format!("ws://{}/{}?{query}", self.addr, self.gateway.stage());
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let ws = match tokio_tungstenite::client_async(url.as_str(), tcp).await {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                return Err(response.status().as_u16());
            }
            Err(e) => panic!("handshake for {}: {e}", user.id),
        };
        let (sink, mut stream) = ws.split();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let closed: Arc<Mutex<Option<u16>>> = Arc::default();
        let (received, close_code) = (events.clone(), closed.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Text(text) => {
                        let event = serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()));
                        received.lock().unwrap().push(event);
                    }
                    Message::Close(frame) => {
                        *close_code.lock().unwrap() = Some(frame.map_or(1005, |f| u16::from(f.code)));
                    }
                    _ => {}
                }
            }
        });
        Ok(Live { user: user.clone(), connection: String::new(), events, closed, sink: Some(sink), reader })
    }

    /// `n` connections for each of `users`, opened a few at a time.
    pub async fn connect_all(&self, users: &[TestUser], n: usize) -> Vec<Live> {
        let wanted: Vec<&TestUser> = users.iter().flat_map(|u| std::iter::repeat_n(u, n)).collect();
        futures_util::stream::iter(wanted.into_iter().map(|u| self.connect(u))).buffered(8).collect().await
    }

    /// The next successful `$connect` records its connection and then holds its answer back
    /// from the gateway until `release` is notified: the handshake stays pending, as it does on
    /// AWS until the `$connect` integration returns.
    pub fn hold_next_connect(&self) -> ConnectHold {
        let hold = ConnectHold::default();
        *self.recorder.hold.lock().unwrap() = Some(hold.clone());
        hold
    }

    /// From now on, the `$disconnect` of `connection` never reaches the function (the gateway
    /// still closes it): its records stay, as after a lost `$disconnect`.
    pub fn lose_disconnect_of(&self, connection: &str) {
        self.recorder.lost_disconnects.lock().unwrap().insert(connection.to_owned());
    }

    pub fn fanout_totals(&self) -> FanoutTotals {
        *self.recorder.fanout.lock().unwrap()
    }

    pub fn stream_stats(&self) -> MappingStats {
        self.dispatcher.stats().remove(0)
    }

    /// Stops the dispatcher, and checks every frame sent to a client against the events'
    /// schema.
    pub async fn stop(self) {
        self.dispatcher.stop().await;
        crate::event_schema::check_frames(&self.gateway.recorded_frames());
    }
}

async fn on_realtime(rt: &realtime::Realtime, seen: &Recorder, event: Value) -> Result<Value, InvokeError> {
    let route = event["requestContext"]["routeKey"].as_str().unwrap_or_default().to_owned();
    let connection = event["requestContext"]["connectionId"].as_str().unwrap_or_default().to_owned();
    if route == "$disconnect" && seen.lost_disconnects.lock().unwrap().contains(&connection) {
        return Ok(json!({ "statusCode": 200 }));
    }
    let ticket = event["queryStringParameters"]["ticket"].as_str().map(str::to_owned);
    let request: LambdaRequest =
        serde_json::from_value(event).map_err(|e| function_error("Deserialize", e))?;
    let response = realtime::handle(rt, request.into()).await;
    if route == "$connect"
        && response.status().is_success()
        && let Some(ticket) = ticket
    {
        seen.connections.lock().unwrap().insert(ticket, connection);
        let hold = seen.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            hold.recorded.notify_one();
            hold.release.notified().await;
        }
    }
    Ok(proxy_answer(&response))
}

async fn on_fanout(f: &::fanout::Fanout, seen: &Recorder, event: Value) -> Result<Value, InvokeError> {
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(event).map_err(|e| function_error("Deserialize", e))?;
    let (response, totals) = ::fanout::handle(f, event).await;
    {
        let mut sum = seen.fanout.lock().unwrap();
        sum.invocations += 1;
        sum.events += totals.events as u64;
        sum.delivered += totals.delivered as u64;
        sum.gone += totals.gone as u64;
        sum.connecting += totals.connecting as u64;
        sum.failed += totals.failed as u64;
        sum.failed_records += response.batch_item_failures.len() as u64;
    }
    serde_json::to_value(&response).map_err(|e| function_error("Serialize", e))
}

/// A `$connect` held between its function's return and the gateway's handshake.
#[derive(Clone, Default)]
pub struct ConnectHold {
    /// Notified once the connection is recorded and its answer held.
    pub recorded: Arc<tokio::sync::Notify>,
    /// Notify to let the answer through.
    pub release: Arc<tokio::sync::Notify>,
}

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// One client connection and everything it has received, in order.
pub struct Live {
    pub user: TestUser,
    /// The gateway's id for it.
    pub connection: String,
    events: Arc<Mutex<Vec<Value>>>,
    /// The code of the close frame the gateway sent, once it has.
    closed: Arc<Mutex<Option<u16>>>,
    sink: Option<Sink>,
    reader: tokio::task::JoinHandle<()>,
}

impl Live {
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The events about `thread`.
    pub fn of_thread(&self, thread: &str) -> Vec<Value> {
        self.events().into_iter().filter(|e| e["thread"] == thread).collect()
    }

    /// The code of the close frame the gateway sent, if it has closed the connection.
    pub fn close_code(&self) -> Option<u16> {
        *self.closed.lock().unwrap()
    }

    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.events().into_iter().filter(|e| e["type"] == kind).collect()
    }

    pub async fn send(&mut self, body: Value) {
        self.sink.as_mut().expect("open").send(Message::text(body.to_string())).await.unwrap();
    }

    /// The socket dies: the TCP connection drops without a close frame.
    pub fn kill(&mut self) {
        self.reader.abort();
        self.sink = None;
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Waits until `done` holds, up to [`DEADLINE`]; panics with `what` and `state()` otherwise.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting for {what}: {}", state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Long enough for anything still in flight (a post, a poll) to arrive, so that "nothing
/// more" means something; never part of a timing assertion.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// `n` active users named `<prefix><i>`, sharing one password hash (Argon2 per user is slow).
pub async fn users(t: &TestApp, prefix: &str, n: usize) -> Vec<TestUser> {
    let hash = shared::password::hash("pw");
    let mut made = Vec::new();
    for i in 0..n {
        made.push(t.user_hashed(&format!("{prefix}{i}"), hash.clone(), true, false).await);
    }
    made
}
