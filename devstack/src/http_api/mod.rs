//! `devstack api`: the template's HTTP API. Each request is matched against the template's
//! routes (`routes`); API Gateway's own answers (CORS preflights, 404 for no route, 413, 500 and
//! 503) are made here, and everything else becomes a payload format 2.0 event (`event`) handed to
//! the route's function through the Lambda Invoke API that `cargo lambda watch` serves, whose
//! response is turned back into the HTTP answer, with the template's CORS headers (`crate::cors`).
//! Every request writes one access-log line in the template's format (`access_log`) to stdout.
//!
//! API Gateway's errors are JSON objects with a `message`: "If no routes match a request, API
//! Gateway returns {"message":"Not Found"} to the client" (http-api-develop-routes.html); a
//! function error or a response it cannot read is `500 {"message":"Internal Server Error"}`, an
//! integration that does not answer within the integration timeout (30 seconds at most for
//! HTTP APIs) `503 {"message":"Service Unavailable"}` (http-api-troubleshooting-lambda.html,
//! http-api-quotas.html: "Integration timeout 30 seconds", "Maximum payload size 10 MB").

pub mod access_log;
pub mod event;
pub mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::cors::{Cors, TemplateError};
use crate::invoke::{InvokeError, Invoker};
use access_log::AccessLog;
use event::Context;
use routes::Routes;

/// HTTP APIs refuse larger request bodies.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The HTTP API: its routes, CORS, access log and the functions behind it.
pub struct HttpApi {
    /// The template's routes.
    pub routes: Routes,
    /// The template's CORS configuration.
    pub cors: Cors,
    /// The template's access-log format.
    pub access_log: AccessLog,
    invoker: Arc<dyn Invoker>,
    /// How long a function may take before API Gateway gives up on it.
    pub integration_timeout: Duration,
    /// The port clients reach this API on (`x-forwarded-port`).
    pub port: u16,
}

/// One answered request: the answer and its access-log line.
pub struct Served {
    /// What the client gets.
    pub response: Response<Full<Bytes>>,
    /// The access-log line (no newline).
    pub log_line: String,
}

fn gateway_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// API Gateway's request ids are 16 characters of base64.
fn request_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 10] = std::array::from_fn(|_| fastrand::u8(..));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl HttpApi {
    /// The API of `template`, with `allow_origins` as the `CorsAllowOrigins` parameter (its
    /// default when `None`), invoking functions through `invoker`.
    pub fn from_template(
        template: &str,
        allow_origins: Option<&str>,
        invoker: Arc<dyn Invoker>,
        port: u16,
    ) -> Result<Self, TemplateError> {
        Ok(Self {
            routes: Routes::from_template(template)?,
            cors: Cors::from_template(template, allow_origins)?,
            access_log: AccessLog::from_template(template)?,
            invoker,
            integration_timeout: Duration::from_secs(30),
            port,
        })
    }

    /// Answers one request from `source`.
    pub async fn handle<B>(&self, req: Request<B>, source: SocketAddr) -> Served
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let context = Context {
            request_id: request_id(),
            source,
            port: self.port,
            time: time::OffsetDateTime::now_utc(),
            protocol: format!("{:?}", req.version()),
        };
        let (parts, body) = req.into_parts();
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        values.insert("requestId", context.request_id.clone());
        values.insert("extendedRequestId", context.request_id.clone());
        values.insert("apiId", "local".into());
        values.insert("stage", "$default".into());
        values.insert("httpMethod", parts.method.to_string());
        values.insert("path", parts.uri.path().to_owned());
        values.insert("protocol", context.protocol.clone());
        values.insert("identity.sourceIp", source.ip().to_string());
        let header_text = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        values.insert("identity.userAgent", header_text(header::USER_AGENT).unwrap_or_default().to_owned());
        values.insert("domainName", header_text(header::HOST).unwrap_or_default().to_owned());
        values.insert("requestTime", event::request_time(context.time));
        values.insert("requestTimeEpoch", (context.time.unix_timestamp_nanos() / 1_000_000).to_string());

        let mut response = if Cors::is_preflight(&parts.method, &parts.headers) {
            // API Gateway answers preflights itself, before any route, with its own headers.
            let mut answer = Response::new(Full::new(Bytes::new()));
            *answer.status_mut() = StatusCode::NO_CONTENT;
            *answer.headers_mut() = self.cors.preflight(&parts.headers);
            answer
        } else {
            let mut answer = match Limited::new(body, MAX_PAYLOAD_BYTES).collect().await {
                Err(_) => gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
                Ok(collected) => {
                    let body = collected.to_bytes();
                    self.integrate(&parts, &body, &context, &mut values).await
                }
            };
            self.cors.apply(&parts.headers, answer.headers_mut());
            answer
        };
        if let Ok(id) = HeaderValue::from_str(&context.request_id) {
            response.headers_mut().insert("apigw-requestid", id);
        }
        values.insert("status", response.status().as_u16().to_string());
        values.insert("responseLength", response.body().size_hint().exact().unwrap_or(0).to_string());
        values.insert("responseLatency", started.elapsed().as_millis().to_string());
        Served { response, log_line: self.access_log.line(&values) }
    }

    async fn integrate(
        &self,
        parts: &hyper::http::request::Parts,
        body: &[u8],
        context: &Context,
        values: &mut BTreeMap<&str, String>,
    ) -> Response<Full<Bytes>> {
        let Some(matched) = self.routes.route(parts.method.as_str(), parts.uri.path()) else {
            return gateway_error(StatusCode::NOT_FOUND, "Not Found");
        };
        values.insert("routeKey", matched.route.key());
        let event = event::request_event(&parts.method, &parts.uri, &parts.headers, body, &matched, context);
        let function = matched.route.function.clone();
        let invoked = Instant::now();
        let call = self.invoker.invoke(&function, event);
        let limit = self.integration_timeout;
        let outcome = tokio::time::timeout(limit, call).await.unwrap_or(Err(InvokeError::Timeout(limit)));
        values.insert("integrationLatency", invoked.elapsed().as_millis().to_string());
        let log = |why: &dyn std::fmt::Display| {
            eprintln!("devstack api: {} {} -> {function}: {why}", context.request_id, matched.route.key());
        };
        match outcome {
            Ok(output) => {
                values.insert("integrationStatus", "200".into());
                match event::response(&output) {
                    Ok((status, headers, body)) => {
                        let mut r = Response::new(Full::new(body));
                        *r.status_mut() = status;
                        *r.headers_mut() = headers;
                        r
                    }
                    Err(malformed) => {
                        log(&format!("malformed response: {}", malformed.0));
                        gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    }
                }
            }
            Err(e @ InvokeError::Function(_)) => {
                values.insert("integrationStatus", "200".into());
                log(&e);
                gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Err(e) => {
                log(&e);
                gateway_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
        }
    }

    /// Serves the API on `listener`, writing each request's access-log line to stdout.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, source) = listener.accept().await?;
            let api = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let api = api.clone();
                    async move {
                        let served = api.handle(req, source).await;
                        println!("{}", served.log_line);
                        Ok::<_, std::convert::Infallible>(served.response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}
