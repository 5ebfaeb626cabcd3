//! How the gateway hands an event to a function: the `Invoker` trait, and its implementation
//! over the Lambda Invoke API that `cargo lambda watch` serves
//! (`POST /2015-03-31/functions/{name}/invocations`, body the event, answer the function's
//! response).
//!
//! `cargo lambda watch` answers a function error with HTTP 500 and the runtime's error document
//! as the body (crates/cargo-lambda-watch/src/trigger_router.rs, `invoke_handler`: the status is
//! the one the runtime API recorded, `next_invocation_error` records 500); Lambda itself answers
//! 200 with an `X-Amz-Function-Error` header. Both are a [`InvokeError::Function`] here.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an invocation produced no response to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The invoke endpoint could not be reached or its answer was cut off.
    Unreachable(String),
    /// The function failed (its error document, as the invoke endpoint returned it).
    Function {
        /// The invoke endpoint's HTTP status.
        status: u16,
        /// Its body (Lambda's `{"errorType":..,"errorMessage":..}`).
        body: String,
    },
    /// The function's response was not JSON.
    BadResponse(String),
    /// The function did not answer within the integration timeout.
    Timeout,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "invoke endpoint unreachable: {e}"),
            Self::Function { status, body } => write!(f, "function error (HTTP {status}): {body}"),
            Self::BadResponse(e) => write!(f, "function response is not JSON: {e}"),
            Self::Timeout => write!(f, "integration timed out"),
        }
    }
}

impl std::error::Error for InvokeError {}

/// Hands an event to a function and returns its response.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes `function` (the binary's name) with `event`.
    fn invoke<'a>(&'a self, function: &'a str, event: Value) -> BoxFuture<'a, Result<Value, InvokeError>>;
}

/// Any `Fn(function, event) -> future` is an invoker (for tests running the gateway in-process).
impl<F, Fut> Invoker for F
where
    F: Fn(String, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, InvokeError>> + Send + 'static,
{
    fn invoke<'a>(&'a self, function: &'a str, event: Value) -> BoxFuture<'a, Result<Value, InvokeError>> {
        Box::pin(self(function.to_owned(), event))
    }
}

/// The Lambda Invoke API over HTTP (what `cargo lambda watch` serves).
pub struct HttpInvoker {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpInvoker {
    /// `base` is the invoke endpoint's origin, e.g. `http://127.0.0.1:9101`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(&self, function: &str, event: Value) -> Result<Value, InvokeError> {
        let uri = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let request = hyper::Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(event.to_string())))
            .map_err(|e| InvokeError::Unreachable(e.to_string()))?;
        let response =
            self.client.request(request).await.map_err(|e| InvokeError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| InvokeError::Unreachable(e.to_string()))?
            .to_bytes();
        if status != 200 || function_error {
            return Err(InvokeError::Function { status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        serde_json::from_slice(&body).map_err(|e| InvokeError::BadResponse(e.to_string()))
    }
}

impl Invoker for HttpInvoker {
    fn invoke<'a>(&'a self, function: &'a str, event: Value) -> BoxFuture<'a, Result<Value, InvokeError>> {
        Box::pin(self.call(function, event))
    }
}
