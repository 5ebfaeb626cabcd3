//! The events API Gateway hands a WebSocket API's Lambda proxy integration, and the ids and
//! times in them. The shape follows the events AWS sends (the `example-apigw-websocket-request*`
//! fixtures of aws-lambda-rust-runtime's `aws_lambda_events`, which its
//! `ApiGatewayWebsocketProxyRequest` reads) and "Set up data mapping for WebSocket APIs in API
//! Gateway" (websocket-api-data-mapping.html): `requestContext` carries `routeKey`,
//! `eventType` (`CONNECT`, `MESSAGE`, `DISCONNECT`), `connectionId`, `connectedAt`,
//! `requestTimeEpoch`, `messageId` (messages only), `domainName`, `stage`, `apiId`,
//! `identity.sourceIp`...

use base64::Engine;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// A fresh id shaped like API Gateway's connection, request and message ids
/// (`L0SM9cOFvHcCIhw=`: 11 bytes, URL-safe base64 with its padding, as in `JC1dgf9yoAMCK-g=`).
pub fn new_id(rng: &mut fastrand::Rng) -> String {
    let mut bytes = [0u8; 11];
    rng.fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// A random API id (`gy415nuibc`: 10 lower-case letters and digits).
pub fn new_api_id(rng: &mut fastrand::Rng) -> String {
    (0..10).map(|_| rng.alphanumeric().to_ascii_lowercase()).collect()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `requestTime` as API Gateway writes it: `07/Jan/2019:09:20:57 +0000`.
pub fn request_time(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    datetime(ms).format(FORMAT).unwrap_or_default()
}

/// ISO 8601 with milliseconds, as the management API's `GetConnection` returns
/// `ConnectedAt`/`LastActiveAt` (the SDK reads them as `date-time`).
pub fn iso8601(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    datetime(ms).format(FORMAT).unwrap_or_default()
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What every event of one connection shares.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The connection id.
    pub connection_id: String,
    /// When the upgrade request arrived (ms).
    pub connected_at: i64,
    /// The client's address.
    pub source_ip: String,
    /// Its `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    /// The `Host` it connected to (the events' `domainName`).
    pub domain_name: String,
    /// The stage.
    pub stage: String,
    /// The API id.
    pub api_id: String,
}

/// The request's headers: `headers` (one value each, the last) and `multiValueHeaders`.
pub type Headers = Vec<(String, String)>;

fn header_maps(headers: &Headers) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in headers {
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

fn request_context(
    info: &ConnectionInfo,
    route_key: &str,
    event_type: &str,
    request_id: &str,
    now: i64,
) -> Map<String, Value> {
    let mut identity = Map::new();
    identity.insert("sourceIp".into(), json!(info.source_ip));
    if let Some(ua) = &info.user_agent {
        identity.insert("userAgent".into(), json!(ua));
    }
    let Value::Object(map) = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": info.connected_at,
        "requestTimeEpoch": now,
        "identity": identity,
        "requestId": request_id,
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": info.api_id,
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// The `$connect` event: the upgrade request's headers and query string.
pub fn connect_event(
    info: &ConnectionInfo,
    headers: &Headers,
    query: &[(String, String)],
    request_id: &str,
) -> Value {
    let (single, multi) = header_maps(headers);
    let mut event = Map::new();
    event.insert("headers".into(), single);
    event.insert("multiValueHeaders".into(), multi);
    if !query.is_empty() {
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (k, v) in query {
            single.insert(k.clone(), json!(v));
            match multi.get_mut(k) {
                Some(Value::Array(values)) => values.push(json!(v)),
                _ => {
                    multi.insert(k.clone(), json!([v]));
                }
            }
        }
        event.insert("queryStringParameters".into(), Value::Object(single));
        event.insert("multiValueQueryStringParameters".into(), Value::Object(multi));
    }
    event.insert(
        "requestContext".into(),
        Value::Object(request_context(info, "$connect", "CONNECT", request_id, info.connected_at)),
    );
    event.insert("isBase64Encoded".into(), json!(false));
    Value::Object(event)
}

/// A message's event (`eventType` `MESSAGE`, with `messageId` and the body).
pub fn message_event(
    info: &ConnectionInfo,
    route_key: &str,
    body: &str,
    request_id: &str,
    message_id: &str,
) -> Value {
    let mut context = request_context(info, route_key, "MESSAGE", request_id, now_ms());
    context.insert("messageId".into(), json!(message_id));
    json!({
        "requestContext": context,
        "body": body,
        "isBase64Encoded": false,
    })
}

/// The `$disconnect` event, with `disconnectStatusCode` and `disconnectReason`; its headers are
/// the few the fixture example-apigw-websocket-request-disconnect-route.json shows.
pub fn disconnect_event(info: &ConnectionInfo, status_code: u16, reason: &str, request_id: &str) -> Value {
    let mut context = request_context(info, "$disconnect", "DISCONNECT", request_id, now_ms());
    context.insert("disconnectStatusCode".into(), json!(status_code));
    context.insert("disconnectReason".into(), json!(reason));
    let headers: Headers = vec![
        ("Host".into(), info.domain_name.clone()),
        ("x-api-key".into(), String::new()),
        ("X-Forwarded-For".into(), String::new()),
        ("x-restapi".into(), String::new()),
    ];
    let (single, multi) = header_maps(&headers);
    json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": context,
        "isBase64Encoded": false,
    })
}
