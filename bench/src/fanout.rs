//! What one send costs the `fanout` function: its DynamoDB calls and capacity, and its posts to
//! API Gateway, for a thread of N participants with 3 connections each.
//!
//! The real pipeline runs in-process: the send goes through the store as the `messages`
//! function makes it, devstack's stream dispatcher reads DynamoDB Local's stream with the
//! template's mapping (filters, batch size) and hands each batch to `fanout::handle`, whose store
//! is metered and whose posts go to a stub of the `@connections` API that takes every post and
//! counts it. Only the fan-out's own DynamoDB calls are counted, not the dispatcher's reads of
//! the stream (Lambda's poller does those, unbilled).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use devstack::streams::{Config, Dispatcher, FnInvoker, InvokeError, Mapping};
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use shared::domain::ids::{ConnectionId, UserId};
use shared::domain::timestamp::Timestamp;
use shared::realtime::Pusher;
use shared::store::table::TableStream;
use shared::store::{CreateThreadOutcome, NewUser};

use crate::local::Local;
use crate::meter::{Meter, Work};

/// Connections per participant: a phone, a laptop and a tablet.
pub const CONNECTIONS_EACH: usize = 3;

/// What the fan-out of one send cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutWork {
    /// Participants in the thread, the sender included.
    pub participants: usize,
    /// Open connections in all.
    pub connections: usize,
    /// Stream records the send made that matched the mapping's filters.
    pub records: u64,
    /// Invocations of `fanout` they took.
    pub invocations: u64,
    /// Events `fanout` built (one `message.created`, one `unread.changed` per other member...).
    pub events: usize,
    /// Posts the `@connections` API took.
    pub posts: usize,
    /// The invocations' wall time, summed: what Lambda would bill, in ms.
    pub invocation_ms: f64,
    /// The fan-out's DynamoDB calls and capacity.
    pub work: Work,
}

/// Measures one send into a thread of `participants`.
pub async fn measure(local: &Local, template: &str, participants: usize) -> Result<FanoutWork, String> {
    // A table of its own, with the stream the deployed table has.
    let local = Local { table: format!("{}-fanout-{participants}", local.table), ..local.clone() };
    let app = local.app(local.client_with(None::<Meter>));
    app.store.create_table_with(TableStream::Enabled).await.map_err(|e| format!("create table: {e}"))?;

    let mut users = Vec::new();
    for n in 0..participants {
        let user = app
            .store
            .create_user(NewUser {
                username: format!("fan-{participants}-{n}"),
                // Nobody logs in: any string stands for the hash.
                password_hash: "unused".into(),
                is_staff: false,
                is_active: true,
                id: None,
                date_joined: None,
            })
            .await
            .map_err(|e| format!("create user: {e:?}"))?;
        users.push(user.id);
    }
    let thread = match app.store.create_thread(&users[0], &users).await {
        Ok(CreateThreadOutcome::Created(m) | CreateThreadOutcome::Existing(m)) => m.thread.id,
        Err(e) => return Err(format!("create thread: {e:?}")),
    };
    let now = Timestamp::now();
    for user in &users {
        for _ in 0..CONNECTIONS_EACH {
            connect(&app.store, user, now).await?;
        }
    }

    let (stub, posts) = stub().await.map_err(|e| format!("the @connections stub: {e}"))?;
    let meter = Meter::default();
    let metered = local.app(local.client_with(Some(meter.clone())));
    let fanout = Arc::new(fanout::Fanout {
        store: metered.store.clone(),
        pusher: Pusher::new(&devstack::local::sdk_config(), &format!("ws://{stub}/live")),
    });
    // (events built, milliseconds spent in the handler)
    let handled = Arc::new(Mutex::new((0usize, 0.0f64)));
    let invoker = {
        let (fanout, handled) = (fanout.clone(), handled.clone());
        Arc::new(FnInvoker(move |_function: String, event: serde_json::Value| {
            let (fanout, handled) = (fanout.clone(), handled.clone());
            async move {
                let event = serde_json::from_value(event).map_err(|e| InvokeError::Invoke(e.to_string()))?;
                let started = Instant::now();
                let (response, totals) = fanout::handle(&fanout, event).await;
                let mut h = handled.lock().expect("not poisoned");
                h.0 += totals.events;
                h.1 += started.elapsed().as_secs_f64() * 1000.0;
                serde_json::to_value(response).map_err(|e| InvokeError::Invoke(e.to_string()))
            }
        }))
    };
    let mapping = Mapping::from_template(template)
        .map_err(|e| format!("template: {e:?}"))?
        .into_iter()
        .find(|m| m.function == "fanout")
        .ok_or("no fanout mapping in the template")?;
    let mut config = Config::new(&local.table);
    config.poll_interval = Duration::from_millis(20);
    config.quiet = true;
    let dispatcher = Dispatcher::spawn(
        app.store.client().clone(),
        devstack::local::streams(&local.endpoint),
        invoker,
        vec![mapping],
        config,
    );
    dispatcher.ready().await;

    meter.reset();
    app.store
        .send_message(&users[0], &thread, shared::store::Outgoing::text("a message for everyone"))
        .await
        .map_err(|e| format!("send: {e:?}"))?;
    // Done once every connection has its message and nothing has moved for a second.
    let least = participants * CONNECTIONS_EACH;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still_since) = (0, Instant::now());
    loop {
        let now = posts.load(Ordering::Relaxed);
        if now != last {
            (last, still_since) = (now, Instant::now());
        }
        if now >= least && still_since.elapsed() > Duration::from_secs(1) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {now} of at least {least} posts within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = dispatcher.stats().into_iter().next().ok_or("no mapping stats")?;
    dispatcher.stop().await;
    let work = Work::of(&meter.take());
    let (events, invocation_ms) = *handled.lock().expect("not poisoned");
    Ok(FanoutWork {
        participants,
        connections: participants * CONNECTIONS_EACH,
        records: stats.records_matched,
        invocations: stats.invocations,
        events,
        posts: posts.load(Ordering::Relaxed),
        invocation_ms,
        work,
    })
}

/// Opens one connection as `$connect` does: a ticket, spent.
async fn connect(store: &shared::store::Store, user: &UserId, now: Timestamp) -> Result<(), String> {
    let ticket = store.issue_ticket(user, 0, now).await.map_err(|e| format!("ticket: {e:?}"))?;
    let id: ConnectionId =
        format!("{}=", uuid::Uuid::new_v4().simple()).parse().map_err(|e| format!("{e:?}"))?;
    store.open_connection(&ticket, &id, now).await.map_err(|e| format!("connect: {e:?}"))
}

/// An `@connections` API that takes every post: `(address, posts so far)`.
async fn stub() -> std::io::Result<(std::net::SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        if req.method() == hyper::Method::POST {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, posts))
}
