//! The Lambda proxy integration's payload format 2.0: the event API Gateway builds from a request
//! and the HTTP answer it makes of the function's response.
//!
//! From the API Gateway developer guide, "Create AWS Lambda proxy integrations for HTTP APIs"
//! (http-api-develop-integrations-lambda.html): "Format 2.0 doesn't have multiValueHeaders or
//! multiValueQueryStringParameters fields. Duplicate headers are combined with commas and
//! included in the headers field. Duplicate query strings are combined with commas and included
//! in the queryStringParameters field." "All cookie headers in the request are combined with
//! commas and added to the cookies field. In the response to the client, each cookie becomes a
//! set-cookie header." "All header names are lowercase." `body`: "If the content type of the
//! request is binary, the body is base64-encoded", with `isBase64Encoded` true. The guide does not
//! list which types are text; deployed HTTP APIs have been seen to pass a UTF-8 string only for
//! `text/*`, `application/json`, `application/xml` and `application/javascript`, and to encode
//! everything else (a missing `Content-Type` and form data included), and a body that is not
//! UTF-8 cannot be a JSON string at all: it is encoded whatever its type says.
//!
//! The response: "If your Lambda function returns valid JSON and doesn't return a statusCode,
//! API Gateway assumes the following: isBase64Encoded is false. statusCode is 200. content-type
//! is application/json. body is the function's response." Otherwise `statusCode`, `headers`,
//! `cookies`, `body` and `isBase64Encoded` make the answer; a response API Gateway cannot read is
//! a 500 `{"message":"Internal Server Error"}`, as is a function error.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use serde_json::{Map, Value, json};

use super::routes::Matched;

/// What API Gateway knows of a request besides the request itself.
#[derive(Debug, Clone)]
pub struct Context {
    /// `$context.requestId`, also the `apigw-requestid` response header.
    pub request_id: String,
    /// The client's address.
    pub source: SocketAddr,
    /// The port this API listens on (`x-forwarded-port`).
    pub port: u16,
    /// When the request arrived.
    pub time: time::OffsetDateTime,
    /// `HTTP/1.1`.
    pub protocol: String,
}

/// Content types whose bodies reach the function as text (when they are UTF-8).
fn is_text(content_type: Option<&HeaderValue>) -> bool {
    let Some(mime) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let mime = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime.starts_with("text/")
        || matches!(mime.as_str(), "application/json" | "application/xml" | "application/javascript")
}

/// The body as the event carries it: `(body, isBase64Encoded)`.
pub fn encode_body(headers: &HeaderMap, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) if is_text(headers.get(header::CONTENT_TYPE)) => (Some(text.to_owned()), false),
        _ => (Some(B64.encode(body)), true),
    }
}

fn decode_component(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `$context.requestTime`: `dd/MMM/yyyy:HH:mm:ss +0000`.
pub fn request_time(t: time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_else(|_| "-".into())
}

/// The payload format 2.0 event for a request that matched `matched`.
pub fn request_event(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    matched: &Matched<'_>,
    context: &Context,
) -> Value {
    let mut combined: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            continue;
        }
        combined.entry(name.as_str().to_owned()).and_modify(|v| *v = format!("{v},{value}")).or_insert(value);
    }
    // API Gateway's own: the client's address appended to any X-Forwarded-For it sent, the
    // scheme and port it was reached on (a client's X-Forwarded-Proto and -Port are replaced).
    let source_ip = context.source.ip().to_string();
    combined
        .entry("x-forwarded-for".into())
        .and_modify(|v| *v = format!("{v}, {source_ip}"))
        .or_insert_with(|| source_ip.clone());
    combined.insert("x-forwarded-proto".into(), "http".into());
    combined.insert("x-forwarded-port".into(), context.port.to_string());
    let raw_query = uri.query().unwrap_or("");
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode_component(&k.replace('+', " ")), decode_component(&v.replace('+', " ")));
        query.entry(k).and_modify(|e| *e = format!("{e},{v}")).or_insert(v);
    }
    let (body, is_base64_encoded) = encode_body(headers, body);
    let route_key = matched.route.key();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": combined,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": context.protocol,
                "sourceIp": source_ip,
                "userAgent": headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": context.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": request_time(context.time),
            "timeEpoch": (context.time.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "isBase64Encoded": is_base64_encoded,
    });
    let fields = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        fields.insert("queryStringParameters".into(), json!(query));
    }
    if !matched.path_parameters.is_empty() {
        fields.insert("pathParameters".into(), json!(matched.path_parameters));
    }
    if let Some(body) = body {
        fields.insert("body".into(), Value::String(body));
    }
    event
}

/// A function's response API Gateway cannot turn into an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// The answer API Gateway makes of the function's response.
pub fn response(output: &Value) -> Result<(StatusCode, HeaderMap, Bytes), Malformed> {
    let bad = |why: &str| Malformed(why.to_owned());
    let Some(fields) = output.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok((StatusCode::OK, headers, Bytes::from(output.to_string())));
    };
    let status = fields["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| bad("statusCode is not an HTTP status"))?;
    let mut headers = HeaderMap::new();
    let empty = Map::new();
    let single = fields.get("headers").and_then(Value::as_object).unwrap_or(&empty);
    for (name, value) in single {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("a header name is invalid"))?;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        headers.insert(name, HeaderValue::from_str(&text).map_err(|_| bad("a header value is invalid"))?);
    }
    // Payload 2.0 has no multiValueHeaders; lambda_http writes none for it, and API Gateway
    // ignores the field, so it is ignored here too.
    for cookie in fields.get("cookies").and_then(Value::as_array).into_iter().flatten() {
        let cookie = cookie.as_str().ok_or_else(|| bad("a cookie is not a string"))?;
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(cookie).map_err(|_| bad("a cookie is not a header value"))?,
        );
    }
    let body = match fields.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if fields.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            Bytes::from(B64.decode(s).map_err(|_| bad("isBase64Encoded but the body is not base64"))?)
        }
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(_) => return Err(bad("body is not a string")),
    };
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_api::routes::Route;

    fn context() -> Context {
        Context {
            request_id: "AbCdEfGhIjKlMnO=".into(),
            source: "127.0.0.1:50000".parse().unwrap(),
            port: 9000,
            time: time::macros::datetime!(2026-01-02 03:04:05.678 UTC),
            protocol: "HTTP/1.1".into(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn text_bodies_stay_text_and_others_are_base64() {
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(encode_body(&json, br#"{"a":1}"#), (Some(r#"{"a":1}"#.into()), false));
        assert_eq!(encode_body(&json, b"{\"a\":\"\xff\"}"), (Some(B64.encode(b"{\"a\":\"\xff\"}")), true));
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(encode_body(&form, b"a=1"), (Some("YT0x".into()), true));
        assert_eq!(encode_body(&HeaderMap::new(), b"a"), (Some("YQ==".into()), true), "no type is binary");
        assert_eq!(
            encode_body(&headers(&[("content-type", "text/plain")]), b"hi"),
            (Some("hi".into()), false)
        );
        assert_eq!(encode_body(&json, b""), (None, false));
    }

    #[test]
    fn the_event_has_payload_2_0s_shape() {
        let route =
            Route { method: "ANY".into(), path: "/api/threads/{id}".into(), function: "threads".into() };
        let matched = Matched {
            route: &route,
            path_parameters: [("id".to_owned(), "t1".to_owned())].into_iter().collect(),
        };
        let h = headers(&[
            ("host", "localhost:9000"),
            ("content-type", "application/json"),
            ("x-custom", "a"),
            ("x-custom", "b"),
            ("cookie", "a=1; b=2"),
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-for", "10.0.0.1"),
            ("user-agent", "curl/8"),
        ]);
        let uri: Uri = "/api/threads/t1?limit=5&x=a%20b&x=c".parse().unwrap();
        let e = request_event(&Method::PATCH, &uri, &h, b"{\"x\":1}", &matched, &context());
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "ANY /api/threads/{id}");
        assert_eq!(e["rawPath"], "/api/threads/t1");
        assert_eq!(e["rawQueryString"], "limit=5&x=a%20b&x=c");
        assert_eq!(e["queryStringParameters"], json!({"limit": "5", "x": "a b,c"}));
        assert_eq!(e["pathParameters"], json!({"id": "t1"}));
        assert_eq!(e["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(e["headers"]["x-custom"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["headers"]["x-forwarded-proto"], "http", "API Gateway's, not the client's");
        assert_eq!(e["headers"]["x-forwarded-port"], "9000");
        assert_eq!(e["headers"]["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(e["body"], "{\"x\":1}");
        assert_eq!(e["isBase64Encoded"], false);
        let c = &e["requestContext"];
        assert_eq!(c["http"]["method"], "PATCH");
        assert_eq!(c["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(c["http"]["userAgent"], "curl/8");
        assert_eq!(c["requestId"], "AbCdEfGhIjKlMnO=");
        assert_eq!(c["stage"], "$default");
        assert_eq!(c["time"], "02/Jan/2026:03:04:05 +0000");
        assert_eq!(c["timeEpoch"], 1767323045678_i64);
        // What lambda_http reads back is the request the function gets.
        let parsed: aws_lambda_events::apigw::ApiGatewayV2httpRequest = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.raw_path.as_deref(), Some("/api/threads/t1"));
    }

    #[test]
    fn responses_become_answers() {
        let (status, h, body) = response(&json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-content-type-options": "nosniff"},
            "cookies": ["a=1; HttpOnly", "b=2"],
            "body": "{}",
            "isBase64Encoded": false,
        }))
        .unwrap();
        assert_eq!(status, 201);
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
        assert_eq!(body, "{}");
        let (_, _, body) =
            response(&json!({"statusCode": 200, "body": B64.encode(b"\x00\xff"), "isBase64Encoded": true}))
                .unwrap();
        assert_eq!(&body[..], b"\x00\xff");
        let (status, h, body) = response(&json!({"hello": "world"})).unwrap();
        assert_eq!(
            (status, &h["content-type"], &body[..]),
            (StatusCode::OK, &HeaderValue::from_static("application/json"), &br#"{"hello":"world"}"#[..])
        );
        assert!(response(&json!({"statusCode": "teapot"})).is_err());
        assert!(response(&json!({"statusCode": 200, "body": 5})).is_err());
    }
}
