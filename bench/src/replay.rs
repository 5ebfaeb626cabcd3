//! DynamoDB answered from memory: a recorder that keeps each call's request and response as
//! DynamoDB Local gave them, and an in-memory HTTP client (the SDK's `infallible_client_fn`)
//! that gives the recorded responses back, so the warm bench times our code and the SDK's
//! client-side work, never the network or the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use lambda_http::http;

use crate::sdk_clock::SdkClock;

/// One DynamoDB call: what was sent and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The `X-Amz-Target` header, naming the operation.
    pub target: String,
    /// The JSON request body.
    pub request: Vec<u8>,
    /// The same, parsed: the SDK writes maps in no fixed order, so equal requests can differ
    /// in bytes.
    pub request_json: serde_json::Value,
    /// Response status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The JSON response body.
    pub response: Vec<u8>,
}

impl Exchange {
    fn to_response(&self) -> http::Response<SdkBody> {
        let mut builder = http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder.body(SdkBody::from(self.response.clone())).expect("a recorded response is valid")
    }
}

/// The request body of the call in flight, kept until its response arrives.
#[derive(Debug, Clone)]
struct Sent {
    target: String,
    body: Vec<u8>,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// An interceptor that records every exchange; clones share one log.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Recorder {
    /// Everything recorded since the last call.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.log.lock().expect("recorder lock"))
    }
}

fn header(map: &aws_smithy_runtime_api::http::Headers, name: &str) -> String {
    map.get(name).unwrap_or_default().to_owned()
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "bench::Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let sent = Sent {
            target: header(request.headers(), "x-amz-target"),
            body: request.body().bytes().unwrap_or_default().to_vec(),
        };
        cfg.interceptor_state().store_put(sent);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let sent = cfg.load::<Sent>().cloned().ok_or("no request was recorded")?;
        let response = context.response();
        let exchange = Exchange {
            target: sent.target,
            request_json: serde_json::from_slice(&sent.body).unwrap_or_default(),
            request: sent.body,
            status: response.status().as_u16(),
            headers: response.headers().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            response: response.body().bytes().ok_or("the response body was not buffered")?.to_vec(),
        };
        self.log.lock().expect("recorder lock").push(exchange);
        Ok(())
    }
}

/// What the in-memory client answers with; swapped between endpoints.
#[derive(Debug, Default)]
struct Script {
    exchanges: Vec<Exchange>,
    /// For requests that differ from every recorded one (writes carry fresh ids and times):
    /// the next recorded response of that operation, in turn.
    turn: HashMap<String, usize>,
    /// Requests no recorded exchange could answer.
    misses: usize,
}

/// The stub: a DynamoDB client whose HTTP client answers from a script.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    script: Arc<Mutex<Script>>,
}

impl Replay {
    /// From now on, answer with these exchanges.
    pub fn load(&self, exchanges: Vec<Exchange>) {
        *self.script.lock().expect("replay lock") = Script { exchanges, ..Script::default() };
    }

    /// How many requests had no recorded answer since the last `load`.
    pub fn misses(&self) -> usize {
        self.script.lock().expect("replay lock").misses
    }

    fn answer(&self, request: &http::Request<SdkBody>) -> http::Response<SdkBody> {
        let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        let body = request.body().bytes().unwrap_or_default();
        let mut script = self.script.lock().expect("replay lock");
        if let Some(x) = script.exchanges.iter().find(|x| x.target == target && x.request == body) {
            return x.to_response();
        }
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        if let Some(x) = script.exchanges.iter().find(|x| x.target == target && x.request_json == json) {
            return x.to_response();
        }
        let same_op: Vec<usize> =
            script.exchanges.iter().enumerate().filter(|(_, x)| x.target == target).map(|(i, _)| i).collect();
        if same_op.is_empty() {
            script.misses += 1;
            return http::Response::builder()
                .status(400)
                .body(SdkBody::from(r#"{"__type":"bench#NotRecorded","message":"no recorded answer"}"#))
                .expect("a valid response");
        }
        let turn = script.turn.entry(target.to_owned()).or_default();
        let index = same_op[*turn % same_op.len()];
        *turn += 1;
        script.exchanges[index].to_response()
    }

    /// A DynamoDB client that never leaves the process, clocked by `clock`.
    pub fn client(&self, clock: &SdkClock) -> aws_sdk_dynamodb::Client {
        let replay = self.clone();
        let config = aws_sdk_dynamodb::Config::builder()
            .interceptor(clock.clone())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
            .http_client(infallible_client_fn(move |req| replay.answer(&req)))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

/// An app whose DynamoDB client is the replay, with the clock on its calls.
pub struct Stub {
    /// The app, as the functions build it, over the replay.
    pub app: shared::App,
    /// What the client answers with.
    pub replay: Replay,
    /// Time spent in the SDK.
    pub clock: SdkClock,
}

impl Stub {
    /// A stubbed app with `local`'s settings (so tokens minted for DynamoDB Local verify here).
    pub fn new(local: &crate::local::Local) -> Self {
        let replay = Replay::default();
        let clock = SdkClock::default();
        let app = local.app(replay.client(&clock));
        Self { app, replay, clock }
    }
}
