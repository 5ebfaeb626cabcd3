//! Faults between the store and DynamoDB: a proxy in front of DynamoDB Local fails, throttles,
//! delays or cuts a chosen share of requests, and the workload must still end exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use crate::helpers::{TestApp, TestUser, client_at, endpoint};

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// 500 InternalServerError, never forwarded.
    Fail,
    /// 400 ThrottlingException, never forwarded.
    Throttle,
    /// Forwarded after 200 ms.
    Delay,
    /// Forwarded, then the connection is dropped before the answer: the write may have landed.
    Cut,
}

const FAULTS: [Fault; 4] = [Fault::Fail, Fault::Throttle, Fault::Delay, Fault::Cut];

#[derive(Default)]
struct Counters {
    /// Share of requests to disturb, in thousandths.
    rate: AtomicU32,
    requests: AtomicU64,
    injected: [AtomicU64; 4],
}

pub(crate) struct FaultProxy {
    pub(crate) url: String,
    counters: Arc<Counters>,
}

fn error(status: u16, kind: &str) -> Response<Full<Bytes>> {
    let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": "injected by the test proxy"});
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn relay(
    req: Request<Incoming>,
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    counters: Arc<Counters>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let fault = (fastrand::u32(0..1000) < counters.rate.load(Ordering::Relaxed))
        .then(|| FAULTS[fastrand::usize(..4)]);
    if let Some(f) = fault {
        counters.injected[FAULTS.iter().position(|x| *x == f).unwrap()].fetch_add(1, Ordering::Relaxed);
    }
    match fault {
        Some(Fault::Fail) => return Ok(error(500, "InternalServerError")),
        Some(Fault::Throttle) => return Ok(error(400, "ThrottlingException")),
        Some(Fault::Delay) => tokio::time::sleep(Duration::from_millis(200)).await,
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let mut forward = Request::builder().method(parts.method).uri(format!("{upstream}{}", parts.uri.path()));
    for (name, value) in &parts.headers {
        forward = forward.header(name, value);
    }
    let answer =
        client.request(forward.body(Full::new(bytes)).unwrap()).await.map_err(std::io::Error::other)?;
    let (parts, body) = answer.into_parts();
    let bytes = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    if fault == Some(Fault::Cut) {
        // The request was applied; the caller never hears so.
        return Err(std::io::Error::other("connection cut by the test proxy"));
    }
    Ok(Response::from_parts(parts, Full::new(bytes)))
}

impl FaultProxy {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counters = Arc::new(Counters::default());
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let (upstream, shared) = (endpoint(), counters.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (upstream, client, counters) = (upstream.clone(), client.clone(), shared.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        relay(req, upstream.clone(), client.clone(), counters.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, counters }
    }

    /// How many of each fault were injected so far.
    pub(crate) fn injected(&self) -> Vec<u64> {
        self.counters.injected.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    pub(crate) fn set_rate(&self, per_mille: u32) {
        self.counters.rate.store(per_mille, Ordering::Relaxed);
    }
}

/// Sends until acknowledged: 503s are retried with the same client id; anything else fails the test.
async fn send(t: &TestApp, uri: &str, user: &TestUser, text: &str) -> Option<String> {
    for _ in 0..40 {
        let r = t.post(uri, user, json!({"text": text, "client_id": text})).await;
        match r.status {
            200 | 201 => return Some(r.body["id"].as_str().unwrap().to_owned()),
            503 => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!("{other}: {:?}", r.body),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_twenty_percent_faults_every_acknowledged_message_lands_once() {
    let proxy = FaultProxy::start().await;
    let t = TestApp::spawn_with(client_at(&proxy.url)).await;
    let users = [t.user("ann").await, t.user("ben").await, t.user("cat").await];
    let id = t.thread(&users[0], &[&users[1], &users[2]]).await;
    let uri = format!("/api/threads/{id}/messages/");

    proxy.set_rate(200);
    let work = users.iter().enumerate().map(|(u, user)| {
        let (t, uri) = (&t, uri.clone());
        async move {
            let mut acked = Vec::new();
            for i in 0..40 {
                if let Some(id) = send(t, &uri, user, &format!("{u}-{i}")).await {
                    acked.push(id);
                }
                if i % 5 == 0 {
                    let r = t.get(&uri, user).await;
                    assert!([200, 503].contains(&r.status), "{r:?}");
                    let r = t.get("/api/unread_count/", user).await;
                    assert!([200, 503].contains(&r.status), "{r:?}");
                }
            }
            acked
        }
    });
    let acked: Vec<String> = futures_util::future::join_all(work).await.concat();
    proxy.set_rate(0);
    let injected: Vec<u64> = proxy.counters.injected.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let requests = proxy.counters.requests.load(Ordering::Relaxed);
    eprintln!(
        "{requests} DynamoDB requests, faults injected: {} failed, {} throttled, {} delayed, {} cut; {} sends acknowledged",
        injected[0],
        injected[1],
        injected[2],
        injected[3],
        acked.len()
    );
    assert!(injected.iter().all(|n| *n > 0), "every kind of fault happened: {injected:?}");
    // Faults must cost retries, not sends: at least 90% of sends are acknowledged within the
    // retry budget, so the test cannot pass by acknowledging nothing.
    let attempted = users.len() * 40;
    let share = acked.len() as f64 / attempted as f64;
    eprintln!("{} of {attempted} sends acknowledged ({:.1}%)", acked.len(), share * 100.0);
    assert!(share >= 0.9, "only {} of {attempted} sends acknowledged", acked.len());

    // Every acknowledged message exactly once, numbered without gaps; nothing else.
    let mut listed: Vec<serde_json::Value> = Vec::new();
    let mut page = Some(format!("{uri}?limit=100"));
    let mut count = 0;
    while let Some(uri) = page {
        let body = t.get(&uri, &users[0]).await.body;
        count = body["count"].as_u64().unwrap();
        listed.extend(body["results"].as_array().unwrap().iter().cloned());
        page = body["next"].as_str().map(|u| crate::helpers::path_of(&json!(u)));
    }
    let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    let mut acked_sorted = acked.clone();
    acked_sorted.sort();
    assert_eq!(
        acked_sorted,
        unique.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "each acknowledged message, once"
    );
    assert_eq!(count, ids.len() as u64);
    let expected: Vec<String> = (1..=ids.len()).rev().map(|n| format!("{id}.{n}")).collect();
    assert_eq!(ids, expected);

    // Counts are exact: everyone but users[0] (who just listed everything) has unread messages
    // exactly equal to the messages from others after their read marker.
    let thread = id.parse().unwrap();
    for user in &users {
        let m = t.app.store.membership(&user.id, &thread).await.unwrap().unwrap();
        let unseen = crate::helpers::unseen(&listed, &m);
        assert_eq!(m.unread, unseen, "{}", user.id);
        assert_eq!(t.unread(user).await, (unseen, u64::from(unseen > 0)));
    }
}
