//! Live events: what clients receive over their WebSocket connections (`docs/realtime.md`), and
//! how they are posted through API Gateway's management API.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use serde::Serialize;

use crate::domain::ids::{ConnectionId, MessageId, ThreadId, UserId};
use crate::domain::model::{Counters, Message, OpenConnection, ThreadSummary, UnreadTotals};
use crate::domain::timestamp::Timestamp;
use crate::store::{Store, StoreError};

/// API Gateway refuses to post more than 128 KB to a connection ("Message payload size:
/// 128 KB", quotas for WebSocket APIs; it splits what it sends into frames of up to 32 KB).
pub const MAX_EVENT_BYTES: usize = 128 * 1024;

/// Posts to different connections run at once, up to this many per invocation.
const CONCURRENT_POSTS: usize = 32;

/// A post (or a close) that API Gateway throttles or fails is tried this many times in all.
const POST_ATTEMPTS: u32 = 6;

/// How long after its `$connect` recorded it a connection may still be connecting.
///
/// API Gateway answers `410 GoneException` to a post "before the connection was established"
/// (AWS knowledge center, 410-gone-api-gateway), and the connection is established only once
/// the `$connect` integration has returned ("Until execution of the integration associated
/// with the `$connect` route is completed, the upgrade request is pending", developer guide,
/// apigateway-websocket-api-route-keys-connect-disconnect.html). Our `$connect` records the
/// connection before it returns, and an integration may run up to 29 seconds ("Integration
/// timeout | 50 milliseconds - 29 seconds", WebSocket API quotas). So a fan-out that reads a
/// connection recorded less than this long ago and is answered 410 may have come in that
/// window: the post is retried, and the connection is never forgotten for it.
pub const HANDSHAKE_GRACE_SECS: i64 = 30;

/// A post answered 410 by a connection that may still be connecting is tried this many times
/// in all (about 60 ms of backoff on average): the handshake completes within milliseconds of
/// `$connect` returning, and every later event of the same partition waits behind these tries
/// when the connection is in fact dead.
const CONNECTING_ATTEMPTS: u32 = 3;

/// What a post does with a 410.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnGone {
    /// The connection is gone: forget it.
    Forget,
    /// It may still be connecting: try again a few times, then keep it.
    Retry,
    /// It may still be connecting: keep it, without trying again.
    Keep,
}

/// One event, as a client receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unique per event; a redelivered event keeps it, so clients drop duplicates by it.
    pub id: String,
    /// The thread it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadId>,
    /// What happened.
    #[serde(flatten)]
    pub payload: Payload,
}

/// The kinds of event and what each carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum Payload {
    /// A new message.
    #[serde(rename = "message.created")]
    MessageCreated(MessageData),
    /// A message's new text.
    #[serde(rename = "message.updated")]
    MessageUpdated(MessageData),
    /// A message was deleted: its tombstone.
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// The message's id.
        message: MessageId,
        /// Who had sent it.
        sender: UserId,
        /// When it was deleted.
        deleted: Timestamp,
    },
    /// Someone read the thread up to a message: a live read receipt.
    #[serde(rename = "thread.read")]
    ThreadRead {
        /// The reader.
        user: UserId,
        /// The newest message they have read.
        message: MessageId,
        /// When.
        read_at: Timestamp,
    },
    /// A thread the receiver is in was created.
    #[serde(rename = "thread.created")]
    ThreadCreated {
        /// The thread.
        thread: ThreadSummary,
    },
    /// A thread's participants or owner changed.
    #[serde(rename = "thread.updated")]
    ThreadUpdated {
        /// The thread now.
        thread: ThreadSummary,
    },
    /// The thread is gone for the receiver: deleted, or they were removed from it.
    #[serde(rename = "thread.deleted")]
    ThreadDeleted {},
    /// The receiver's unread totals, as `GET /api/unread_count/` gives them.
    #[serde(rename = "unread.changed")]
    UnreadChanged(UnreadTotals),
    /// The receiver changed their own view of the thread on one of their devices.
    #[serde(rename = "member.updated")]
    MemberUpdated {
        /// Whether they muted it, as of this event.
        muted: bool,
        /// When the mute ends; null while not muted, or muted until they unmute.
        muted_until: Option<Timestamp>,
        /// Whether they archived it.
        archived: bool,
    },
    /// Someone is typing in the thread.
    #[serde(rename = "typing")]
    Typing {
        /// Who.
        user: UserId,
    },
    /// The server closes this connection right after this event.
    #[serde(rename = "connection.closed")]
    ConnectionClosed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The user was deactivated, or their password changed: they must sign in again.
    SignedOut,
    /// The user opened more connections than they may keep: this one, among their oldest,
    /// makes way. Clients should not reconnect on their own, or their connections would take
    /// turns closing each other.
    TooManyConnections,
}

/// A message in an event: whole when it fits in one post, otherwise its id for the client to
/// fetch (`GET /api/threads/{thread}/messages/{message}/`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageData {
    /// The message, as the API shows it.
    Whole {
        /// The message.
        message: Box<Message>,
    },
    /// Too large to post: fetch it.
    Fetch {
        /// The message's id.
        message_id: MessageId,
        /// Always true: the client must fetch the message.
        fetch: bool,
    },
}

impl Payload {
    /// Unread totals, shaped like the HTTP endpoint's answer.
    pub fn unread(counters: &Counters) -> Self {
        Self::UnreadChanged(counters.shown(Timestamp::now()))
    }
}

impl Event {
    /// The bytes to post: the event as JSON, with a message too large for one post replaced by
    /// a notice to fetch it.
    pub fn to_frame(&self) -> Vec<u8> {
        let frame = serde_json::to_vec(self).expect("events serialize");
        if frame.len() <= MAX_EVENT_BYTES {
            return frame;
        }
        let notice = |data: &MessageData| match data {
            MessageData::Whole { message } => {
                MessageData::Fetch { message_id: message.id.clone(), fetch: true }
            }
            other => other.clone(),
        };
        let payload = match &self.payload {
            Payload::MessageCreated(d) => Payload::MessageCreated(notice(d)),
            Payload::MessageUpdated(d) => Payload::MessageUpdated(notice(d)),
            other => other.clone(),
        };
        serde_json::to_vec(&Event { payload, ..self.clone() }).expect("events serialize")
    }
}

/// The management API's client for one WebSocket API stage. Its retries are ours (see
/// [`Pusher::post`]), so they are off in the SDK.
#[derive(Clone, Debug)]
pub struct Pusher {
    client: Client,
}

/// The result of one post.
#[derive(Debug)]
pub enum PostOutcome {
    /// API Gateway took it for the connection.
    Delivered,
    /// The connection is gone (410): forget it.
    Gone,
    /// Answered 410, but recorded within [`HANDSHAKE_GRACE_SECS`]: its handshake may still be
    /// under way, so it is kept (the client catches up with `?since=`).
    Connecting,
    /// Every attempt failed with throttling or a server error: a later try may work.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// API Gateway refused the post in a way no retry fixes (a payload too large, say).
    Refused(Box<dyn std::error::Error + Send + Sync>),
}

/// The result of one `DeleteConnection`.
#[derive(Debug)]
pub enum CloseOutcome {
    /// API Gateway closed it.
    Closed,
    /// It was gone already (410).
    Gone,
    /// Every attempt failed with throttling or a server error, or API Gateway refused it.
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// What closing connections did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    /// Connections API Gateway closed, and forgotten.
    pub closed: usize,
    /// Connections already gone, and forgotten.
    pub gone: usize,
    /// Connections that could not be closed: kept, for a retry.
    pub failed: usize,
}

/// What a fan-out did.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Posts API Gateway took.
    pub delivered: usize,
    /// Connections found gone and forgotten.
    pub gone: usize,
    /// Connections that answered 410 while they may still have been connecting: kept.
    pub connecting: usize,
    /// Posts still throttled or failing after every attempt: trying the event again later
    /// may deliver them.
    pub failed: usize,
    /// Posts API Gateway refused for good.
    pub refused: usize,
}

/// The management API endpoint of a WebSocket URL: `wss://x/stage` is posted to at
/// `https://x/stage` ("Use @connections commands in your backend service", API Gateway
/// developer guide).
pub fn management_endpoint(websocket_url: &str) -> String {
    let url = websocket_url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

impl Pusher {
    /// A client posting to the stage at `websocket_url`.
    pub fn new(sdk: &aws_config::SdkConfig, websocket_url: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(management_endpoint(websocket_url))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        Self { client: Client::from_conf(config) }
    }

    /// Posts one frame. Throttling (`LimitExceededException`, also sent when the client's
    /// buffer is full), server errors and timeouts are retried with backoff; a payload API
    /// Gateway refuses is not; a 410 is handled as `on_gone` says.
    pub async fn post(&self, connection: &ConnectionId, frame: &[u8], on_gone: OnGone) -> PostOutcome {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .post_to_connection()
                .connection_id(connection.as_str())
                .data(Blob::new(frame))
                .send()
                .await;
            let error = match result {
                Ok(_) => return PostOutcome::Delivered,
                Err(e) => e,
            };
            if error.code() == Some("GoneException") {
                match on_gone {
                    OnGone::Forget => return PostOutcome::Gone,
                    OnGone::Keep => return PostOutcome::Connecting,
                    OnGone::Retry if attempt >= CONNECTING_ATTEMPTS => return PostOutcome::Connecting,
                    OnGone::Retry => {}
                }
            } else {
                if !retryable(&error) {
                    return PostOutcome::Refused(Box::new(error));
                }
                if attempt >= POST_ATTEMPTS {
                    return PostOutcome::Failed(Box::new(error));
                }
            }
            backoff(attempt).await;
        }
    }

    /// Closes one connection (`DeleteConnection`): API Gateway sends the client a close frame
    /// and runs `$disconnect`. Throttling, server errors and timeouts are retried with backoff.
    /// A 410 from a connection that may still be connecting (`connecting`) is retried as long:
    /// its handshake may complete after the first try, and then it must still close.
    pub async fn close(&self, connection: &ConnectionId, connecting: bool) -> CloseOutcome {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.client.delete_connection().connection_id(connection.as_str()).send().await
            {
                Ok(_) => return CloseOutcome::Closed,
                Err(e) => e,
            };
            let gone = error.code() == Some("GoneException");
            if gone && !connecting {
                return CloseOutcome::Gone;
            }
            if !gone && !retryable(&error) {
                return CloseOutcome::Failed(Box::new(error));
            }
            if attempt >= POST_ATTEMPTS {
                return if gone { CloseOutcome::Gone } else { CloseOutcome::Failed(Box::new(error)) };
            }
            backoff(attempt).await;
        }
    }

    /// Tells each connection why with `notice` (a [`Payload::ConnectionClosed`] event), closes
    /// it, and forgets it, all at once. A connection that could not be closed is kept, so that
    /// a retry finds it.
    pub async fn close_all(
        &self,
        store: &Store,
        targets: &[OpenConnection],
        notice: &Event,
        now: Timestamp,
    ) -> Result<Closing, StoreError> {
        let frame = notice.to_frame();
        let grace_start = now.plus_seconds(-HANDSHAKE_GRACE_SECS);
        let closes: Vec<_> = targets
            .iter()
            .map(|c| {
                let frame = &frame;
                async move {
                    // The notice is a courtesy: whatever its fate, the connection closes.
                    let _ = self.post(&c.id, frame, OnGone::Keep).await;
                    (c, self.close(&c.id, c.connected_at > grace_start).await)
                }
            })
            .collect();
        let outcomes: Vec<_> =
            futures_util::stream::iter(closes).buffer_unordered(CONCURRENT_POSTS).collect().await;
        let mut closing = Closing::default();
        for (c, outcome) in outcomes {
            match outcome {
                CloseOutcome::Closed => closing.closed += 1,
                CloseOutcome::Gone => closing.gone += 1,
                CloseOutcome::Failed(error) => {
                    tracing::warn!(connection = %c.id, error = ?crate::telemetry::ErrorChain(&*error), "close failed");
                    closing.failed += 1;
                    continue;
                }
            }
            store.drop_connection(&c.user, &c.id).await?;
        }
        Ok(closing)
    }

    /// Posts one frame to each connection, at most [`CONCURRENT_POSTS`] at once, and forgets
    /// the connections that are gone. One connection's failure never holds up the others. A
    /// 410 from a connection recorded within [`HANDSHAKE_GRACE_SECS`] of `now`, which may still
    /// be connecting, is handled as `if_connecting` says: [`OnGone::Retry`] for an event the
    /// client should get, [`OnGone::Keep`] for a typing notice, stale by the time a retry lands.
    pub async fn deliver(
        &self,
        store: &Store,
        targets: &[OpenConnection],
        frame: &[u8],
        now: Timestamp,
        if_connecting: OnGone,
    ) -> Result<Delivery, StoreError> {
        let grace_start = now.plus_seconds(-HANDSHAKE_GRACE_SECS);
        // Built eagerly: a lazy `map` closure in the stream's type trips up `Send` inference.
        let posts: Vec<_> = targets
            .iter()
            .map(|c| async move {
                let on_gone = if c.connected_at > grace_start { if_connecting } else { OnGone::Forget };
                (&c.user, &c.id, self.post(&c.id, frame, on_gone).await)
            })
            .collect();
        let outcomes: Vec<_> =
            futures_util::stream::iter(posts).buffer_unordered(CONCURRENT_POSTS).collect().await;
        let mut delivery = Delivery::default();
        for (user, connection, outcome) in outcomes {
            match outcome {
                PostOutcome::Delivered => delivery.delivered += 1,
                PostOutcome::Gone => {
                    store.drop_connection(user, connection).await?;
                    delivery.gone += 1;
                }
                PostOutcome::Connecting => {
                    tracing::info!(%connection, "post answered 410 while the connection may be connecting: kept");
                    delivery.connecting += 1;
                }
                PostOutcome::Failed(error) => {
                    tracing::warn!(%connection, error = ?crate::telemetry::ErrorChain(&*error), "post failed");
                    delivery.failed += 1;
                }
                PostOutcome::Refused(error) => {
                    tracing::warn!(%connection, error = ?crate::telemetry::ErrorChain(&*error), "post refused");
                    delivery.refused += 1;
                }
            }
        }
        Ok(delivery)
    }
}

/// Whether a failed management API call may work if tried again: throttling
/// (`LimitExceededException`, also sent when the client's buffer is full), a server error, a
/// timeout, or a connection that failed.
fn retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            s.raw().status().is_server_error() || s.err().code() == Some("LimitExceededException")
        }
        _ => false,
    }
}

/// Full jitter, doubling from 40 ms up to 500 ms.
async fn backoff(attempt: u32) {
    let cap_ms = (20u64 << attempt.min(5)).min(500);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=cap_ms))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Seq;

    fn message(text: &str) -> Message {
        Message {
            id: MessageId { thread: "t1".parse().unwrap(), seq: Seq(2) },
            thread: "t1".parse().unwrap(),
            sender: "a".parse().unwrap(),
            text: text.into(),
            created: "2026-01-02T03:04:05Z".parse().unwrap(),
            edited: None,
            reactions: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
        }
    }

    #[test]
    fn events_are_flat_json_with_type_and_data() {
        let event = Event {
            id: "e1".into(),
            thread: Some("t1".parse().unwrap()),
            payload: Payload::MessageCreated(MessageData::Whole { message: Box::new(message("hi")) }),
        };
        let json: serde_json::Value = serde_json::from_slice(&event.to_frame()).unwrap();
        assert_eq!(json["type"], "message.created");
        assert_eq!(json["id"], "e1");
        assert_eq!(json["thread"], "t1");
        assert_eq!(json["data"]["message"]["id"], "t1.2");
        assert_eq!(json["data"]["message"]["text"], "hi");
        let typing =
            Event { id: "e2".into(), thread: None, payload: Payload::Typing { user: "a".parse().unwrap() } };
        let json: serde_json::Value = serde_json::from_slice(&typing.to_frame()).unwrap();
        assert_eq!(json, serde_json::json!({"id": "e2", "type": "typing", "data": {"user": "a"}}));
        let gone = Event {
            id: "e3".into(),
            thread: Some("t1".parse().unwrap()),
            payload: Payload::ThreadDeleted {},
        };
        let json: serde_json::Value = serde_json::from_slice(&gone.to_frame()).unwrap();
        assert_eq!(json["type"], "thread.deleted");
        let closed = Event {
            id: "e4".into(),
            thread: None,
            payload: Payload::ConnectionClosed { reason: CloseReason::TooManyConnections },
        };
        let json: serde_json::Value = serde_json::from_slice(&closed.to_frame()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "e4", "type": "connection.closed", "data": {"reason": "too_many_connections"}})
        );
    }

    #[test]
    fn thread_events_carry_the_thread_as_the_api_shows_it_without_unread_count() {
        let thread = crate::domain::model::Thread {
            owner: "b".parse().unwrap(),
            message_count: 7,
            deleted_count: 1,
            last_message: Some(message("hi")),
            ..crate::domain::testing::thread(&["a", "b"])
        };
        let event = Event {
            id: "e".into(),
            thread: Some(thread.id.clone()),
            payload: Payload::ThreadUpdated { thread: thread.into() },
        };
        let json: serde_json::Value = serde_json::from_slice(&event.to_frame()).unwrap();
        let mut keys: Vec<&str> =
            json["data"]["thread"].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["created", "id", "last_message", "owner", "participants", "updated"]);
        assert_eq!(json["data"]["thread"]["owner"], "b");
        assert_eq!(json["data"]["thread"]["last_message"]["text"], "hi");
    }

    #[test]
    fn the_longest_message_goes_whole_and_a_larger_one_as_a_notice() {
        // 10,000 characters of four bytes each, and quotes that JSON escapes.
        let longest = "😀".repeat(9_000) + &"\"".repeat(1_000);
        let event = |text: &str| Event {
            id: "e".into(),
            thread: Some("t1".parse().unwrap()),
            payload: Payload::MessageCreated(MessageData::Whole { message: Box::new(message(text)) }),
        };
        let frame = event(&longest).to_frame();
        assert!(frame.len() <= MAX_EVENT_BYTES);
        let json: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(json["data"]["message"]["text"].as_str().unwrap().chars().count(), 10_000);

        let frame = event(&"x".repeat(MAX_EVENT_BYTES)).to_frame();
        assert!(frame.len() <= MAX_EVENT_BYTES);
        let json: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(json["data"], serde_json::json!({"message_id": "t1.2", "fetch": true}));
    }

    #[test]
    fn management_endpoints_follow_the_websocket_url() {
        assert_eq!(
            management_endpoint("wss://abc.execute-api.eu-west-1.amazonaws.com/live"),
            "https://abc.execute-api.eu-west-1.amazonaws.com/live"
        );
        assert_eq!(management_endpoint("ws://127.0.0.1:9002/live/"), "http://127.0.0.1:9002/live");
    }
}
