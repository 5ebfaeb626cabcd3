//! Invoking a function synchronously, as an event source mapping or API Gateway's Lambda proxy
//! integration does.
//!
//! Over HTTP this is the Lambda Invoke API (`POST /2015-03-31/functions/<name>/invocations`,
//! the event as the body), which `cargo lambda watch` serves. Lambda answers a function error
//! with 200 and an `X-Amz-Function-Error` header (Lambda API reference, "Invoke"); `cargo lambda
//! watch` 1.9 instead relays an error the runtime posts to `/invocation/<id>/error` as status
//! 500 with the error object as the body, an unknown function as 404, and an initialization
//! error (`/runtime/init/error`) as status 200 with the error object as the body
//! (cargo-lambda, crates/cargo-lambda-watch/src/runtime/functions_router.rs and
//! trigger_router.rs). All three error forms count as function errors here.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Why an invocation did not return a response.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeError {
    /// The function ran and failed; the runtime's error object (`errorType`, `errorMessage`).
    Function(Value),
    /// The function ran past its `Timeout` (Lambda reports "Task timed out", a function error).
    Timeout(Duration),
    /// The function could not be invoked at all (nothing listening, unknown function...).
    Invoke(String),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function(body) => {
                let ty = body["errorType"].as_str().unwrap_or("error");
                let message: String =
                    body["errorMessage"].as_str().unwrap_or_default().chars().take(200).collect();
                write!(f, "function error {ty}: {message}")
            }
            InvokeError::Timeout(t) => write!(f, "timed out after {} s", t.as_secs_f64()),
            InvokeError::Invoke(why) => write!(f, "invoke failed: {why}"),
        }
    }
}

/// Something that runs a function with an event and returns its response.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes `function` (the binary's name) with `event`; `Ok` holds the function's response.
    fn invoke(&self, function: &str, event: Value) -> BoxFuture<'static, Result<Value, InvokeError>>;
}

/// An in-process invoker from a closure `(function, event) -> future`, for tests.
pub struct FnInvoker<F>(pub F);

impl<F, Fut> Invoker for FnInvoker<F>
where
    F: Fn(String, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, InvokeError>> + Send + 'static,
{
    fn invoke(&self, function: &str, event: Value) -> BoxFuture<'static, Result<Value, InvokeError>> {
        Box::pin((self.0)(function.to_owned(), event))
    }
}

/// The Lambda Invoke API over HTTP, e.g. `cargo lambda watch` at `http://127.0.0.1:9100`.
#[derive(Clone)]
pub struct HttpInvoker {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpInvoker {
    /// An invoker for the Invoke API at `base` (scheme, host and port).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

fn is_error_object(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.contains_key("errorType")
            && o.contains_key("errorMessage")
            && o.keys().all(|k| matches!(k.as_str(), "errorType" | "errorMessage" | "stackTrace"))
    })
}

impl Invoker for HttpInvoker {
    fn invoke(&self, function: &str, event: Value) -> BoxFuture<'static, Result<Value, InvokeError>> {
        let uri = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let client = self.client.clone();
        Box::pin(async move {
            let request = hyper::Request::post(&uri)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(event.to_string())))
                .map_err(|e| InvokeError::Invoke(e.to_string()))?;
            let response =
                client.request(request).await.map_err(|e| InvokeError::Invoke(format!("{uri}: {e}")))?;
            let status = response.status();
            let function_error = response.headers().contains_key("x-amz-function-error");
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| InvokeError::Invoke(format!("the answer was cut off: {e}")))?
                .to_bytes();
            let value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
            };
            match status.as_u16() {
                200 if function_error || is_error_object(&value) => Err(InvokeError::Function(value)),
                200..=299 => Ok(value),
                500 => Err(InvokeError::Function(value)),
                code => Err(InvokeError::Invoke(format!("{uri} answered {code}: {value}"))),
            }
        })
    }
}
