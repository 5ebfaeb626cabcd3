//! The real-time API: `POST /api/realtime/ticket/` over HTTP, and the WebSocket API's routes.
//!
//! Browsers cannot set headers on a WebSocket, so the handshake carries a ticket in its query
//! string: single use, valid for 30 seconds, issued to a JWT-authenticated caller. Unlike an
//! access token in the URL, a ticket that ends up in a log or a browser's history is worthless.
//! Events themselves come from the `fanout` function; this one only opens and closes
//! connections and relays typing notices. Protocol: `docs/realtime.md`.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use shared::domain::ids::{ConnectionId, ThreadId, UserId};
use shared::domain::timestamp::Timestamp;
use shared::http::auth::authenticate_claims;
use shared::http::routes::{self, RealtimeRoute};
use shared::http::{HttpResponse, json_response, respond};
use shared::realtime::{CloseReason, Event, OnGone, Payload, Pusher};
use shared::store::{ConnectError, StoreError, TICKET_TTL_SECS, Ticket, TypingGate};
use shared::{ApiError, App};

/// A connection may send one typing notice per this many milliseconds; more are dropped.
pub const TYPING_GAP_MS: i64 = 1000;

/// A user has one typing notice relayed per thread per this many milliseconds, whichever of
/// their connections sends it. Clients show "is typing" for a few seconds after a notice and
/// send one every second or two while the user types (`web/app.js`: every 1.5 s, shown 4 s).
pub const TYPING_USER_GAP_MS: i64 = 1000;

/// The connections a user may keep open. An eleventh closes their oldest: phones, tablets,
/// desktops and browser tabs together rarely reach ten, each connection costs a post per event
/// of every thread the user is in, and a connection left behind (a tab asleep, a socket whose
/// `$disconnect` was lost, which stays recorded for up to two hours) must not lock the user
/// out of a new one.
pub const MAX_CONNECTIONS_PER_USER: usize = 10;

/// Longest WebSocket message this function reads; actions are tiny.
const MAX_ACTION_BYTES: usize = 4096;

/// What the function builds once per instance.
pub struct Realtime {
    /// Config, store and keys.
    pub app: Arc<App>,
    /// Posts to connections.
    pub pusher: Pusher,
    /// The WebSocket API's URL (`wss://.../live`), handed out with tickets.
    pub websocket_url: String,
}

impl Realtime {
    /// Builds it from the environment: the HTTP functions' settings plus `WEBSOCKET_URL`.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let sdk = shared::app::load_aws_config().await;
        let app = Arc::new(App::from_sdk(&sdk).await?);
        let websocket_url = std::env::var("WEBSOCKET_URL").map_err(|_| "WEBSOCKET_URL is not set")?;
        let pusher = Pusher::new(&sdk, &websocket_url);
        Ok(Self { app, pusher, websocket_url })
    }
}

/// Handles one event, from the HTTP API or the WebSocket API.
pub async fn handle(rt: &Realtime, req: Request) -> HttpResponse {
    let websocket = match req.request_context_ref() {
        Some(RequestContext::WebSocket(ctx)) => Some((ctx.route_key.clone(), ctx.connection_id.clone())),
        _ => None,
    };
    match websocket {
        Some((route, connection)) => {
            let connection = connection.and_then(|c| c.parse::<ConnectionId>().ok());
            match (route.as_deref(), connection) {
                (Some(route), Some(connection)) => on_websocket(rt, route, &connection, &req).await,
                _ => status(StatusCode::BAD_REQUEST),
            }
        }
        None => respond(route(rt, &req).await),
    }
}

async fn route(rt: &Realtime, req: &Request) -> Result<HttpResponse, ApiError> {
    match routes::resolve_for(req)?.0 {
        RealtimeRoute::Ticket => {
            let claims = authenticate_claims(&rt.app, req)?;
            let now = Timestamp::now();
            if let Err(wait) = rt.app.store.take_ticket_slot(&claims.user_id, now.unix()).await? {
                return Err(ApiError::Throttled(wait.max(1) as u64));
            }
            let ticket = rt.app.store.issue_ticket(&claims.user_id, claims.ver, now).await?;
            let url = format!("{}?ticket={ticket}", rt.websocket_url);
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"ticket": ticket.to_string(), "expires_in": TICKET_TTL_SECS, "url": url}),
            ))
        }
    }
}

fn status(code: StatusCode) -> HttpResponse {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = code;
    response
}

/// A reply on a two-way route (`$default`): API Gateway sends the body back to the client.
fn reply(body: serde_json::Value) -> HttpResponse {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    response
}

async fn on_websocket(rt: &Realtime, route: &str, connection: &ConnectionId, req: &Request) -> HttpResponse {
    match route {
        "$connect" => on_connect(rt, connection, req).await,
        "$disconnect" => match rt.app.store.disconnect(connection).await {
            Ok(_) => status(StatusCode::OK),
            Err(e) => {
                tracing::error!(error = ?shared::telemetry::ErrorChain(&e), "disconnect not recorded");
                status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        },
        "typing" => on_typing(rt, connection, req).await,
        _ => on_default(req),
    }
}

/// The handshake's one ticket. A name given twice (`?ticket=a&ticket=b`) is no ticket: which
/// of them counts would depend on who reads the query string (API Gateway's
/// `queryStringParameters` keeps the last, a URL parser the first).
fn the_ticket(req: &Request) -> Option<Ticket> {
    match req.query_string_parameters_ref()?.all("ticket")?.as_slice() {
        [one] => one.parse().ok(),
        _ => None,
    }
}

/// `$connect`: a non-2xx answer makes API Gateway refuse the handshake with that status.
async fn on_connect(rt: &Realtime, connection: &ConnectionId, req: &Request) -> HttpResponse {
    let Some(ticket) = the_ticket(req) else { return status(StatusCode::UNAUTHORIZED) };
    let now = Timestamp::now();
    match rt.app.store.open_connection(&ticket, connection, now).await {
        Ok(()) => {
            tracing::info!(user = %ticket.user(), %connection, "connected");
            match keep_within_cap(rt, ticket.user(), connection, now).await {
                Ok(true) => status(StatusCode::OK),
                Ok(false) => {
                    tracing::info!(user = %ticket.user(), %connection, "refused: newer connections fill the cap");
                    status(StatusCode::TOO_MANY_REQUESTS)
                }
                // The connection is recorded and may open; the next handshake enforces the cap.
                Err(e) => {
                    tracing::warn!(error = ?shared::telemetry::ErrorChain(&e), "connection cap not enforced");
                    status(StatusCode::OK)
                }
            }
        }
        Err(ConnectError::BadTicket) => status(StatusCode::UNAUTHORIZED),
        Err(ConnectError::Store(e)) => {
            tracing::error!(error = ?shared::telemetry::ErrorChain(&e), "connect failed");
            status(if e.is_transient() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            })
        }
    }
}

/// Closes the user's oldest connections beyond [`MAX_CONNECTIONS_PER_USER`], each told why
/// first. Every handshake reads the user's connections after recording its own, strongly
/// consistently, and keeps the newest by (`connected_at`, id): concurrent handshakes on any
/// number of instances agree on which to close, and what one closes no later one would have
/// kept. False if `connection` itself is among the oldest (more than the cap opened at once):
/// it is forgotten and its handshake refused.
async fn keep_within_cap(
    rt: &Realtime,
    user: &UserId,
    connection: &ConnectionId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let store = &rt.app.store;
    let mut open = store.current_connections(user, now).await?;
    if open.len() <= MAX_CONNECTIONS_PER_USER {
        return Ok(true);
    }
    open.sort_by(|a, b| (b.connected_at, &b.id).cmp(&(a.connected_at, &a.id)));
    let mut oldest = open.split_off(MAX_CONNECTIONS_PER_USER);
    let mine = oldest.iter().position(|c| c.id == *connection).map(|i| oldest.remove(i));
    if let Some(mine) = &mine {
        store.drop_connection(user, &mine.id).await?;
    }
    let notice = Event {
        id: uuid::Uuid::now_v7().simple().to_string(),
        thread: None,
        payload: Payload::ConnectionClosed { reason: CloseReason::TooManyConnections },
    };
    let closing = rt.pusher.close_all(store, &oldest, &notice, now).await?;
    tracing::info!(%user, ?closing, "closed the oldest connections beyond the cap");
    Ok(mine.is_none())
}

#[derive(Deserialize)]
struct TypingAction {
    thread: String,
}

fn body_text(req: &Request) -> Option<&str> {
    match req.body() {
        Body::Text(t) if t.len() <= MAX_ACTION_BYTES => Some(t),
        Body::Binary(b) if b.len() <= MAX_ACTION_BYTES => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// `typing`: relayed to the other participants' connections, never stored. A notice for a
/// thread the sender is not in, or too soon after the last of the connection (in any thread)
/// or of the user (in this thread, from any connection), is dropped: typing is a hint.
async fn on_typing(rt: &Realtime, connection: &ConnectionId, req: &Request) -> HttpResponse {
    let thread = body_text(req)
        .and_then(|t| serde_json::from_str::<TypingAction>(t).ok())
        .and_then(|a| a.thread.parse::<ThreadId>().ok());
    let Some(thread) = thread else { return status(StatusCode::OK) };
    let store = &rt.app.store;
    let now = Timestamp::now();
    let result = async {
        // The thread's participants do not depend on the gate, so both are read at once: a notice
        // dropped as too soon costs one read more, and every relayed one a round trip less.
        let (gate, t) = tokio::try_join!(
            store.typing_gate(connection, now.unix_micros() / 1000, TYPING_GAP_MS),
            store.thread(&thread)
        )?;
        let user = match gate {
            TypingGate::Allowed(user) => user,
            TypingGate::TooSoon | TypingGate::Unknown => return Ok(0),
        };
        let Some(t) = t else { return Ok(0) };
        if !t.participants.contains(&user) {
            return Ok(0);
        }
        let others: Vec<_> = t.participants.iter().filter(|p| **p != user).cloned().collect();
        // The user's gate and the recipients' connections at once: a notice dropped here costs
        // a query more, a relayed one no round trip.
        let (go, targets) = tokio::try_join!(
            store.typing_slot(&user, &thread, now.unix_micros() / 1000, TYPING_USER_GAP_MS),
            store.connections_of(&others, now)
        )?;
        if !go {
            return Ok(0);
        }
        let event = Event {
            id: uuid::Uuid::now_v7().simple().to_string(),
            thread: Some(thread.clone()),
            payload: Payload::Typing { user },
        };
        Ok::<_, shared::store::StoreError>(
            rt.pusher.deliver(store, &targets, &event.to_frame(), now, OnGone::Keep).await?.delivered,
        )
    }
    .await;
    match result {
        Ok(delivered) => tracing::info!(%thread, delivered, "typing relayed"),
        Err(e) => tracing::warn!(error = ?shared::telemetry::ErrorChain(&e), "typing not relayed"),
    }
    status(StatusCode::OK)
}

/// `$default`: `{"action": "ping"}` answers `{"type": "pong"}` (browsers cannot send ping
/// frames, and API Gateway closes a connection idle for 10 minutes); anything else is an error.
fn on_default(req: &Request) -> HttpResponse {
    let action = body_text(req)
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
    match action.as_deref() {
        Some("ping") => reply(json!({"type": "pong"})),
        _ => reply(
            json!({"type": "error", "detail": "Unknown action: send {\"action\": \"typing\", \"thread\": id} or {\"action\": \"ping\"}."}),
        ),
    }
}
