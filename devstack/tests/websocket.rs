//! The local WebSocket API against API Gateway's semantics: a tokio-tungstenite client, an
//! in-process invoker that records events and lets `ticket=good` in, and the real
//! `aws-sdk-apigatewaymanagement` client on the management API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_apigatewaymanagement::config::{Credentials, Region};
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use devstack::websocket::{Faults, FnInvoker, Gateway, InvokeError, Limits, WebSocketApi};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The WebSocket resources template.yaml gets.
const TEMPLATE: &str = r#"
Resources:
  WebSocketApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: !Sub "${AWS::StackName}-realtime"
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action
  WebSocketIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref WebSocketApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${RealtimeFunction.Arn}/invocations
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref WebSocketApi, RouteKey: $connect, AuthorizationType: NONE, Target: !Sub "integrations/${WebSocketIntegration}"}
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref WebSocketApi, RouteKey: $disconnect, Target: !Sub "integrations/${WebSocketIntegration}"}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref WebSocketApi, RouteKey: $default, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${WebSocketIntegration}"}
  DefaultRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {ApiId: !Ref WebSocketApi, RouteId: !Ref DefaultRoute, RouteResponseKey: $default}
  TypingRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref WebSocketApi, RouteKey: typing, Target: !Sub "integrations/${WebSocketIntegration}"}
  WebSocketStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref WebSocketApi, StageName: live, AutoDeploy: true}
  RealtimeFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: realtime
    Properties: {CodeUri: ., Timeout: 10}
"#;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Events = Arc<Mutex<Vec<(String, Value)>>>;

struct Harness {
    gateway: Gateway,
    addr: SocketAddr,
    events: Events,
}

/// `$connect`: `ticket=good` is let in (echoing the first subprotocol asked for),
/// `ticket=crash` fails the function, anything else is 401. `$default` echoes the body;
/// other routes answer a body that must not reach the client.
async fn start(limits: Limits, faults: Faults) -> Harness {
    let events: Events = Arc::default();
    let recorded = events.clone();
    let own_addr: Arc<std::sync::OnceLock<SocketAddr>> = Arc::default();
    let gateway_addr = own_addr.clone();
    let invoker = FnInvoker(move |function: String, event: Value| {
        let recorded = recorded.clone();
        let gateway_addr = gateway_addr.clone();
        async move {
            recorded.lock().unwrap().push((function, event.clone()));
            match event["requestContext"]["routeKey"].as_str().unwrap_or_default() {
                "$connect" => match event["queryStringParameters"]["ticket"].as_str() {
                    // Posts to itself before answering, as a $connect function must not.
                    Some("early") => {
                        let id = event["requestContext"]["connectionId"].as_str().unwrap();
                        let status = raw_post(*gateway_addr.get().unwrap(), id, "early").await;
                        recorded.lock().unwrap().push(("early post".into(), json!({ "status": status })));
                        Ok(json!({ "statusCode": 200 }))
                    }
                    Some("good") => {
                        let mut answer = json!({ "statusCode": 200 });
                        if let Some(p) = event["headers"]["sec-websocket-protocol"].as_str() {
                            let first = p.split(',').next().unwrap_or_default().trim();
                            answer["headers"] = json!({ "Sec-WebSocket-Protocol": first });
                        }
                        Ok(answer)
                    }
                    Some("crash") => {
                        Err(InvokeError::Function(json!({ "errorType": "Panic", "errorMessage": "boom" })))
                    }
                    _ => Ok(json!({ "statusCode": 401, "body": "no ticket" })),
                },
                "$default" => Ok(json!({
                    "statusCode": 200,
                    "body": format!("echo:{}", event["body"].as_str().unwrap_or_default()),
                })),
                _ => Ok(json!({ "statusCode": 200, "body": "never sent: one-way route" })),
            }
        }
    });
    let api = WebSocketApi::from_template(TEMPLATE).unwrap();
    let gateway = Gateway::new(api, limits, faults, Arc::new(invoker));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    own_addr.set(addr).unwrap();
    tokio::spawn(gateway.clone().serve(listener));
    Harness { gateway, addr, events }
}

/// `POST /live/@connections/{id}` by hand (unsigned: the gateway ignores signatures); the status.
async fn raw_post(addr: SocketAddr, id: &str, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /live/%40connections/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text[9..12].parse().unwrap()
}

impl Harness {
    async fn connect(&self, query: &str) -> Result<Client, tungstenite::Error> {
        tokio_tungstenite::connect_async(format!("ws://{}/live?{query}", self.addr)).await.map(|(ws, _)| ws)
    }

    /// Connects with `ticket=good` and returns the client and its connection id.
    async fn connected(&self) -> (Client, String) {
        let before = self.of_route("$connect").len();
        let ws = self.connect("ticket=good").await.unwrap();
        let connects = self.of_route("$connect");
        assert_eq!(connects.len(), before + 1);
        let id = connects[before]["requestContext"]["connectionId"].as_str().unwrap().to_owned();
        (ws, id)
    }

    fn of_route(&self, route: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e["requestContext"]["routeKey"] == route)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Waits (up to 5 s) for the events of `route` to reach `count`.
    async fn wait_for(&self, route: &str, count: usize) -> Vec<Value> {
        for _ in 0..500 {
            let found = self.of_route(route);
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no {count} {route} events: {:?}", self.events.lock().unwrap());
    }

    async fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDLOCAL", "secret", None, None, "test"))
            .endpoint_url(format!("http://{}/live", self.addr))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        aws_sdk_apigatewaymanagement::Client::new(&config)
    }
}

/// The next data or close message (up to 5 s).
async fn next(ws: &mut Client) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a message in time") {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Whether nothing but control frames arrives for `wait`.
async fn silent(ws: &mut Client, wait: Duration) -> bool {
    match tokio::time::timeout(wait, ws.next()).await {
        Err(_) => true,
        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => true,
        Ok(other) => {
            eprintln!("unexpected: {other:?}");
            false
        }
    }
}

fn close_code(m: Option<Message>) -> Option<u16> {
    match m {
        Some(Message::Close(Some(CloseFrame { code, .. }))) => Some(code.into()),
        _ => None,
    }
}

#[test]
fn template_gives_routes_functions_two_way_and_stage() {
    let api = WebSocketApi::from_template(TEMPLATE).unwrap();
    assert_eq!(api.stage, "live");
    assert_eq!(api.route_selection_field, "action");
    let mut keys: Vec<_> = api.routes.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect", "typing"]);
    assert!(api.routes.values().all(|r| r.function == "realtime"));
    let two_way: Vec<_> = api.routes.iter().filter(|(_, r)| r.two_way).map(|(k, _)| k.as_str()).collect();
    assert_eq!(two_way, ["$default"]);

    assert_eq!(api.select_route(r#"{"action":"typing","threadId":"t"}"#), "typing");
    assert_eq!(api.select_route(r#"{"action":"unknown"}"#), "$default");
    assert_eq!(api.select_route(r#"{"action":"$connect"}"#), "$default");
    assert_eq!(api.select_route(r#"{"action":7}"#), "$default");
    assert_eq!(api.select_route("typing"), "$default");
    assert_eq!(api.select_route(r#"["typing"]"#), "$default");

    assert!(WebSocketApi::from_template("Resources: {}").is_err());
}

#[tokio::test]
async fn handshake_is_accepted_or_refused_with_the_functions_status() {
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, _) = h.connected().await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("echo:hello")));

    match h.connect("ticket=bad").await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            assert_eq!(response.body().as_deref(), Some(&b"no ticket"[..]));
        }
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    match h.connect("").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    match h.connect("ticket=crash").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 502),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    let stats = h.gateway.stats();
    assert_eq!((stats.connects, stats.connects_refused, stats.open), (1, 3, 1));
    // A refused connection never existed: no $disconnect for it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.of_route("$disconnect").is_empty());
    // The stage-less path is accepted too.
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/?ticket=good", h.addr)).await.unwrap();
    drop(ws);
}

#[tokio::test]
async fn connect_event_has_api_gateways_shape() {
    let h = start(Limits::default(), Faults::default()).await;
    let mut request = format!("ws://{}/live?ticket=good&tag=a&tag=b", h.addr).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "chat.v1, bearer.xyz".parse().unwrap());
    request.headers_mut().insert("user-agent", "devstack-test/1".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");

    let (function, raw) = h.events.lock().unwrap()[0].clone();
    assert_eq!(function, "realtime");
    let event: ApiGatewayWebsocketProxyRequest = serde_json::from_value(raw.clone()).unwrap();
    let ctx = &event.request_context;
    assert_eq!(ctx.route_key.as_deref(), Some("$connect"));
    assert_eq!(ctx.event_type.as_deref(), Some("CONNECT"));
    assert_eq!(ctx.message_direction.as_deref(), Some("IN"));
    assert_eq!(ctx.stage.as_deref(), Some("live"));
    assert_eq!(ctx.domain_name.as_deref(), Some(h.addr.to_string().as_str()));
    assert_eq!(ctx.identity.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ctx.identity.user_agent.as_deref(), Some("devstack-test/1"));
    let id = ctx.connection_id.clone().unwrap();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.ends_with('='));
    assert_eq!(ctx.request_id.as_deref().map(str::len), Some(16));
    assert_eq!(ctx.extended_request_id, ctx.request_id);
    assert_eq!(ctx.apiid.as_deref().map(str::len), Some(10));
    assert!(ctx.message_id.is_none());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now - ctx.connected_at).abs() < 10_000);
    assert_eq!(ctx.request_time_epoch, ctx.connected_at);
    let time = ctx.request_time.clone().unwrap();
    assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");
    assert_eq!(event.headers["sec-websocket-protocol"], "chat.v1, bearer.xyz");
    assert_eq!(event.headers["sec-websocket-version"], "13");
    assert!(event.headers.contains_key("sec-websocket-key"));
    assert_eq!(event.headers["x-forwarded-for"], "127.0.0.1");
    assert!(event.multi_value_headers.contains_key("host"));
    assert_eq!(event.query_string_parameters.first("ticket"), Some("good"));
    assert_eq!(event.multi_value_query_string_parameters.all("tag"), Some(vec!["a", "b"]));
    assert!(!event.is_base64_encoded);
    assert!(event.body.is_none());
    assert_eq!(raw["multiValueHeaders"]["sec-websocket-protocol"], json!(["chat.v1, bearer.xyz"]));

    ws.send(Message::text(r#"{"action":"typing"}"#)).await.unwrap();
    let message = h.wait_for("typing", 1).await.remove(0);
    let message: ApiGatewayWebsocketProxyRequest = serde_json::from_value(message).unwrap();
    assert_eq!(message.request_context.event_type.as_deref(), Some("MESSAGE"));
    assert_eq!(message.request_context.connection_id.as_deref(), Some(id.as_str()));
    assert_eq!(message.request_context.message_id.as_deref().map(str::len), Some(16));
    assert_eq!(message.request_context.connected_at, ctx.connected_at);
    assert_eq!(message.body.as_deref(), Some(r#"{"action":"typing"}"#));

    ws.close(Some(CloseFrame { code: 4000.into(), reason: "bye".into() })).await.unwrap();
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    let gone: ApiGatewayWebsocketProxyRequest = serde_json::from_value(gone).unwrap();
    assert_eq!(gone.request_context.event_type.as_deref(), Some("DISCONNECT"));
    assert_eq!(gone.request_context.connection_id.as_deref(), Some(id.as_str()));
    assert_eq!(gone.request_context.disconnect_status_code, Some(4000));
    assert_eq!(gone.request_context.disconnect_reason.as_deref(), Some("bye"));
}

/// The functions read events through `lambda_http`, which tries the HTTP API's shape before the
/// WebSocket API's: every event must come out as a WebSocket request, as AWS's do.
#[tokio::test]
async fn lambda_http_reads_every_event_as_a_websocket_request() {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, id) = h.connected().await;
    ws.send(Message::text(r#"{"action":"typing","thread":"t"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"action":"ping"}"#)).await.unwrap();
    h.wait_for("typing", 1).await;
    h.wait_for("$default", 1).await;
    ws.close(None).await.unwrap();
    h.wait_for("$disconnect", 1).await;
    let events: Vec<Value> = h.events.lock().unwrap().iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(events.len(), 4);
    for event in events {
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        match request.request_context_ref() {
            Some(RequestContext::WebSocket(ctx)) => {
                assert_eq!(ctx.route_key, event["requestContext"]["routeKey"].as_str().map(str::to_owned));
                assert_eq!(ctx.connection_id.as_deref(), Some(id.as_str()));
            }
            other => panic!("{other:?} for {event}"),
        }
        if let Some(q) = event["queryStringParameters"]["ticket"].as_str() {
            assert_eq!(request.query_string_parameters_ref().and_then(|p| p.first("ticket")), Some(q));
        }
    }
}

#[tokio::test]
async fn messages_route_by_action_and_only_the_two_way_route_answers() {
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, _) = h.connected().await;

    ws.send(Message::text(r#"{"action":"typing","threadId":"t1"}"#)).await.unwrap();
    h.wait_for("typing", 1).await;
    assert!(silent(&mut ws, Duration::from_millis(300)).await, "a one-way route sends nothing back");

    ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text("echo:not json")));
    ws.send(Message::text(r#"{"action":"nosuchroute"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text(r#"echo:{"action":"nosuchroute"}"#)));
    let defaults = h.wait_for("$default", 2).await;
    assert!(defaults.iter().all(|e| e["requestContext"]["eventType"] == "MESSAGE"));
    assert_eq!(h.gateway.stats().messages, 3);

    ws.close(None).await.unwrap();
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["disconnectStatusCode"], 1005);
    assert_eq!(gone["requestContext"]["disconnectReason"], "Client-side close frame status not set");
}

#[tokio::test]
async fn management_api_through_the_real_sdk() {
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, id) = h.connected().await;
    let sdk = h.management().await;

    sdk.post_to_connection().connection_id(&id).data(Blob::new(r#"{"type":"hello"}"#)).send().await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text(r#"{"type":"hello"}"#)));

    // Over 32 KB goes out in 32 KB frames, and arrives as one message.
    let big = "x".repeat(100 * 1024);
    sdk.post_to_connection().connection_id(&id).data(Blob::new(big.clone())).send().await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Message::text(big)));

    let too_big = "y".repeat(128 * 1024 + 1);
    let err = sdk.post_to_connection().connection_id(&id).data(Blob::new(too_big)).send().await.unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(PostToConnectionError::PayloadTooLargeException(_))),
        "{err:?}"
    );

    let described = sdk.get_connection().connection_id(&id).send().await.unwrap();
    assert_eq!(described.identity().and_then(|i| i.source_ip()), Some("127.0.0.1"));
    assert!(described.connected_at().is_some() && described.last_active_at().is_some());
    assert!(described.last_active_at().unwrap().secs() >= described.connected_at().unwrap().secs());

    sdk.delete_connection().connection_id(&id).send().await.unwrap();
    assert_eq!(close_code(next(&mut ws).await), Some(1000));
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["disconnectStatusCode"], 1000);
    assert_eq!(gone["requestContext"]["disconnectReason"], "Connection Closed Normally");

    let err = sdk.post_to_connection().connection_id(&id).data(Blob::new("late")).send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(PostToConnectionError::GoneException(_))), "{err:?}");
    let err = sdk.get_connection().connection_id(&id).send().await.unwrap_err();
    assert_eq!(err.as_service_error().and_then(|e| e.code()), Some("GoneException"));
    let err = sdk.delete_connection().connection_id("Nevr0pened1234=").send().await.unwrap_err();
    assert_eq!(err.as_service_error().and_then(|e| e.code()), Some("GoneException"));

    let stats = h.gateway.stats();
    assert_eq!((stats.posts_delivered, stats.gone, stats.payload_too_large, stats.open), (2, 3, 1, 0));
    assert_eq!(stats.deleted, 1);
}

#[tokio::test]
async fn delete_connection_closes_at_once_and_only_that_one() {
    let h = start(Limits::default(), Faults::default()).await;
    h.gateway.record_frames();
    let (mut first, first_id) = h.connected().await;
    let (mut second, second_id) = h.connected().await;
    let sdk = h.management().await;
    // A post and then a close: the client gets the post, then the close frame.
    sdk.post_to_connection().connection_id(&first_id).data(Blob::new("bye")).send().await.unwrap();
    sdk.delete_connection().connection_id(&first_id).send().await.unwrap();
    assert_eq!(next(&mut first).await, Some(Message::text("bye")));
    assert_eq!(close_code(next(&mut first).await), Some(1000));
    // Closing it again, or posting to it, finds it gone at once, before its `$disconnect`.
    let err = sdk.delete_connection().connection_id(&first_id).send().await.unwrap_err();
    assert_eq!(err.as_service_error().and_then(|e| e.code()), Some("GoneException"));
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["connectionId"], first_id.as_str());
    // The other connection is untouched.
    sdk.post_to_connection().connection_id(&second_id).data(Blob::new("still here")).send().await.unwrap();
    assert_eq!(next(&mut second).await, Some(Message::text("still here")));
    let stats = h.gateway.stats();
    assert_eq!((stats.deleted, stats.open), (1, 1));
    // Only what the backend sent is recorded, posts as posts.
    let frames = h.gateway.recorded_frames();
    let sent: Vec<(&str, &[u8])> = frames.iter().map(|f| (f.connection.as_str(), &f.data[..])).collect();
    assert_eq!(sent, [(first_id.as_str(), &b"bye"[..]), (second_id.as_str(), &b"still here"[..])]);
    assert!(frames.iter().all(|f| f.source == devstack::websocket::FrameSource::Post));
}

#[tokio::test]
async fn a_connection_is_gone_for_posts_until_connect_has_answered() {
    let h = start(Limits::default(), Faults::default()).await;
    let mut ws = h.connect("ticket=early").await.unwrap();
    let early = h.events.lock().unwrap().iter().find(|(f, _)| f == "early post").cloned().unwrap();
    assert_eq!(early.1["status"], 410);
    assert!(silent(&mut ws, Duration::from_millis(200)).await, "the early post is not delivered later");
    let id = h.of_route("$connect")[0]["requestContext"]["connectionId"].as_str().unwrap().to_owned();
    assert_eq!(raw_post(h.addr, &id, "now").await, 200);
    assert_eq!(next(&mut ws).await, Some(Message::text("now")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_takes_posts_as_soon_as_its_handshake_is_done() {
    let h = start(Limits::default(), Faults::default()).await;
    for i in 0..30 {
        let (mut ws, id) = h.connected().await;
        assert_eq!(raw_post(h.addr, &id, "first").await, 200, "post {i} right after the handshake");
        assert_eq!(next(&mut ws).await, Some(Message::text("first")));
    }
}

#[tokio::test]
async fn a_client_that_closes_is_gone_for_posts() {
    let h = start(Limits::default(), Faults::default()).await;
    let (ws, id) = h.connected().await;
    drop(ws);
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["connectionId"], id.as_str());
    assert_eq!(gone["requestContext"]["disconnectStatusCode"], 1006);
    let sdk = h.management().await;
    let err = sdk.post_to_connection().connection_id(&id).data(Blob::new("x")).send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(PostToConnectionError::GoneException(_))), "{err:?}");
}

#[tokio::test]
async fn a_frame_over_32_kb_closes_with_1009() {
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, _) = h.connected().await;
    ws.send(Message::text("z".repeat(32 * 1024))).await.unwrap();
    assert_eq!(next(&mut ws).await.map(|m| m.len()), Some(5 + 32 * 1024), "32 KB is allowed");
    ws.send(Message::text("z".repeat(32 * 1024 + 1))).await.unwrap();
    assert_eq!(close_code(next(&mut ws).await), Some(1009));
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["disconnectStatusCode"], 1009);
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, _) = h.connected().await;
    ws.send(Message::binary(&b"\x00\x01"[..])).await.unwrap();
    assert_eq!(close_code(next(&mut ws).await), Some(1003));
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["disconnectStatusCode"], 1003);
    assert!(h.of_route("$default").is_empty(), "a binary frame is not a message");
}

#[tokio::test]
async fn a_message_over_128_kb_in_small_frames_closes_with_1009() {
    let h = start(Limits::default(), Faults::default()).await;
    let (mut ws, _) = h.connected().await;
    let chunk = "w".repeat(32 * 1024);
    // 128 KB in four frames is one message the function gets whole...
    for i in 0..4 {
        let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        ws.send(Message::Frame(Frame::message(chunk.clone(), opcode, i == 3))).await.unwrap();
    }
    assert_eq!(next(&mut ws).await.map(|m| m.len()), Some(5 + 128 * 1024));
    // ...one byte more is not.
    for i in 0..5 {
        let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        let data = if i == 4 { "w".to_owned() } else { chunk.clone() };
        ws.send(Message::Frame(Frame::message(data, opcode, i == 4))).await.unwrap();
    }
    assert_eq!(close_code(next(&mut ws).await), Some(1009));
    h.wait_for("$disconnect", 1).await;
}

#[tokio::test]
async fn idle_connections_close_and_data_not_pings_keeps_them_open() {
    let limits = Limits { idle_timeout: Duration::from_millis(600), ..Limits::default() };
    let h = start(limits, Faults::default()).await;

    let (mut busy, busy_id) = h.connected().await;
    let (mut pinging, pinging_id) = h.connected().await;
    for _ in 0..8 {
        busy.send(Message::text(r#"{"action":"typing"}"#)).await.unwrap();
        pinging.send(Message::Ping(Default::default())).await.ok();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Pings are answered but are not activity: closed 600 ms after connecting, not 600 ms after
    // the last of its pings.
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    let ctx = &gone["requestContext"];
    assert_eq!(ctx["connectionId"], pinging_id.as_str());
    assert_eq!(ctx["disconnectStatusCode"], 1001);
    assert_eq!(ctx["disconnectReason"], "Going away");
    let lived = ctx["requestTimeEpoch"].as_i64().unwrap() - ctx["connectedAt"].as_i64().unwrap();
    assert!((600..900).contains(&lived), "closed after {lived} ms");
    // The busy one was kept open by its messages, then idles out too, with a close frame.
    assert!(
        h.of_route("$disconnect").iter().all(|e| e["requestContext"]["connectionId"] != busy_id.as_str())
    );
    assert_eq!(close_code(next(&mut busy).await), Some(1001));
    h.wait_for("$disconnect", 2).await;
    drop(pinging);
}

#[tokio::test]
async fn connections_close_at_their_max_lifetime_however_busy() {
    let limits = Limits { max_lifetime: Duration::from_millis(500), ..Limits::default() };
    let h = start(limits, Faults::default()).await;
    let (mut ws, id) = h.connected().await;
    let started = std::time::Instant::now();
    let code = loop {
        ws.send(Message::text(r#"{"action":"typing"}"#)).await.ok();
        match tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => break u16::from(f.code),
            Ok(None | Some(Err(_))) => panic!("closed without a close frame"),
            _ => assert!(started.elapsed() < Duration::from_secs(5), "never closed"),
        }
    };
    assert_eq!(code, 1001);
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
    let gone = h.wait_for("$disconnect", 1).await.remove(0);
    assert_eq!(gone["requestContext"]["connectionId"], id.as_str());
    assert_eq!(gone["requestContext"]["disconnectStatusCode"], 1001);
}

async fn stats_over_http(addr: SocketAddr) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /@stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn post_faults_are_roughly_the_rate_and_never_delivered() {
    let h = start(Limits::default(), Faults { post_fault_rate: 0.3, seed: 42 }).await;
    let (mut ws, id) = h.connected().await;
    let sdk = h.management().await;
    let (mut ok, mut throttled, mut internal) = (Vec::new(), 0, 0);
    for i in 0..200 {
        match sdk.post_to_connection().connection_id(&id).data(Blob::new(i.to_string())).send().await {
            Ok(_) => ok.push(i.to_string()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                PostToConnectionError::LimitExceededException(_) => {
                    assert_eq!(e.raw().status().as_u16(), 429);
                    throttled += 1;
                }
                other if other.code() == Some("InternalServerErrorException") => {
                    assert_eq!(e.raw().status().as_u16(), 500);
                    internal += 1;
                }
                other => panic!("{other:?}"),
            },
            Err(other) => panic!("{other:?}"),
        }
    }
    let faults = throttled + internal;
    assert!((40..=80).contains(&faults), "{faults} of 200 faulted at rate 0.3");
    assert!(throttled > 10 && internal > 10, "{throttled} throttled, {internal} internal");

    let mut received = Vec::new();
    while received.len() < ok.len() {
        match next(&mut ws).await {
            Some(Message::Text(t)) => received.push(t.to_string()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(received, ok, "exactly the accepted posts arrive, in order");
    assert!(silent(&mut ws, Duration::from_millis(200)).await, "no faulted post is delivered");

    let stats = stats_over_http(h.addr).await;
    assert_eq!(stats["postsDelivered"], ok.len());
    assert_eq!(stats["faultsThrottled"], throttled);
    assert_eq!(stats["faultsInternal"], internal);
    assert_eq!(stats["connects"], 1);
    assert_eq!(stats["open"], 1);
}

#[tokio::test]
async fn the_same_seed_faults_the_same_posts() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let h = start(Limits::default(), Faults { post_fault_rate: 0.5, seed: 7 }).await;
        let (_ws, id) = h.connected().await;
        let sdk = h.management().await;
        let mut outcomes = Vec::new();
        for _ in 0..30 {
            let r = sdk.post_to_connection().connection_id(&id).data(Blob::new("x")).send().await;
            outcomes
                .push(r.err().and_then(|e| e.as_service_error().and_then(|s| s.code().map(str::to_owned))));
        }
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn a_throttled_connection_fails_every_post_and_the_others_do_not() {
    let h = start(Limits::default(), Faults::default()).await;
    let (_stuck, stuck_id) = h.connected().await;
    let (mut ws, id) = h.connected().await;
    h.gateway.throttle_connection(&stuck_id);
    let sdk = h.management().await;
    for i in 0..5 {
        let r = sdk.post_to_connection().connection_id(&stuck_id).data(Blob::new("x")).send().await;
        match r {
            Err(SdkError::ServiceError(e)) => {
                assert!(matches!(e.err(), PostToConnectionError::LimitExceededException(_)), "{i}");
                assert_eq!(e.raw().status().as_u16(), 429);
            }
            other => panic!("{other:?}"),
        }
        sdk.post_to_connection().connection_id(&id).data(Blob::new(i.to_string())).send().await.unwrap();
        assert_eq!(next(&mut ws).await, Some(Message::text(i.to_string())));
    }
    let stats = h.gateway.stats();
    assert_eq!((stats.faults_throttled, stats.posts_delivered), (5, 5));
}

/// A stand-in for `cargo lambda watch`'s invoke endpoint: 200 with the response, 500 with the
/// runtime's error document when the function fails, 404 for an unknown function.
async fn fake_invoke_endpoint() -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_owned();
                        let event: Value =
                            serde_json::from_slice(&req.into_body().collect().await?.to_bytes()).unwrap();
                        let (status, body) = match (path.as_str(), event["fail"].as_bool()) {
                            ("/2015-03-31/functions/realtime/invocations", Some(true)) => {
                                (500, json!({ "errorType": "Panic", "errorMessage": "boom" }))
                            }
                            ("/2015-03-31/functions/realtime/invocations", _) => {
                                (200, json!({ "statusCode": 200, "body": event["body"] }))
                            }
                            _ => (404, json!({ "title": "no such function" })),
                        };
                        let mut r = hyper::Response::new(Full::new(bytes::Bytes::from(body.to_string())));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_invoker_speaks_the_lambda_invoke_api() {
    use devstack::websocket::{HttpInvoker, Invoker};
    let addr = fake_invoke_endpoint().await;
    let invoker = HttpInvoker::new(&format!("http://{addr}/"));
    let answer = invoker.invoke("realtime", json!({ "body": "hi" })).await.unwrap();
    assert_eq!(answer, json!({ "statusCode": 200, "body": "hi" }));
    match invoker.invoke("realtime", json!({ "fail": true })).await {
        Err(InvokeError::Function(error)) => assert_eq!(error["errorMessage"], "boom"),
        other => panic!("{other:?}"),
    }
    match invoker.invoke("nosuch", json!({})).await {
        Err(InvokeError::Invoke(why)) => assert!(why.contains("404"), "{why}"),
        other => panic!("{other:?}"),
    }
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    match HttpInvoker::new(&format!("http://{closed}")).invoke("realtime", json!({})).await {
        Err(InvokeError::Invoke(_)) => {}
        other => panic!("{other:?}"),
    }
}
