//! The realtime function in-process against DynamoDB Local: tickets, the handshake they
//! authorise, connection records, and which stream records make which events.

use lambda_http::http::Method;
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};
use shared::domain::ids::ConnectionId;
use shared::domain::timestamp::Timestamp;

use crate::helpers::{NO_GATEWAY, TestApp, TestUser};

/// A WebSocket API event as API Gateway shapes it (Lambda proxy integration for WebSocket
/// APIs: `requestContext.routeKey`, `eventType`, `connectionId`), for the real function.
pub fn websocket_event(
    route: &str,
    connection: &str,
    query: Option<(&str, &str)>,
    body: Option<&str>,
) -> Value {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut event = json!({
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": "Ex1=",
            "requestTime": "02/Dec/2026:11:00:00 +0000",
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": 1_796_000_000_000_i64,
            "requestTimeEpoch": 1_796_000_000_001_i64,
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "tests"},
            "requestId": "R1=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if let Some((k, v)) = query {
        set_query(&mut event, &[(k, v)]);
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// Sets an event's query string as API Gateway does: every value in
/// `multiValueQueryStringParameters`, the last of each name in `queryStringParameters`.
fn set_query(event: &mut Value, pairs: &[(&str, &str)]) {
    let mut single = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (k, v) in pairs {
        single.insert((*k).to_owned(), json!(v));
        multi.entry(*k).or_insert_with(|| json!([])).as_array_mut().unwrap().push(json!(v));
    }
    event["queryStringParameters"] = Value::Object(single);
    event["multiValueQueryStringParameters"] = Value::Object(multi);
}

/// Hands a WebSocket event to the realtime function in-process; its status code.
async fn on_websocket(t: &TestApp, event: Value) -> (u16, Value) {
    let request: LambdaRequest = serde_json::from_value(event).expect("a WebSocket event");
    let response = realtime::handle(&t.realtime(NO_GATEWAY), request.into()).await;
    let body: &[u8] = response.body().as_ref();
    (response.status().as_u16(), serde_json::from_slice(body).unwrap_or(Value::Null))
}

async fn ticket(t: &TestApp, user: &TestUser) -> String {
    let r = t.post("/api/realtime/ticket/", user, json!({})).await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["ticket"].as_str().unwrap().to_owned()
}

async fn connect(t: &TestApp, connection: &str, ticket: &str) -> u16 {
    on_websocket(t, websocket_event("$connect", connection, Some(("ticket", ticket)), None)).await.0
}

async fn connections(t: &TestApp, user: &TestUser) -> Vec<String> {
    let found = t.app.store.connections_of(std::slice::from_ref(&user.id), Timestamp::now()).await.unwrap();
    let mut ids: Vec<String> = found.into_iter().map(|c| c.id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_ticket_opens_one_connection_once() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let r = t.call(Method::POST, "/api/realtime/ticket/", None, None).await;
    assert_eq!(r.status, 401, "{r:?}");

    let r = t.post("/api/realtime/ticket/", &alice, json!({})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let ticket = r.body["ticket"].as_str().unwrap();
    assert_eq!(r.body["expires_in"], 30);
    assert_eq!(r.body["url"], format!("{NO_GATEWAY}?ticket={ticket}"));
    assert!(ticket.starts_with(&format!("{}.", alice.id)), "{ticket}");

    assert_eq!(connect(&t, "Conn1=", ticket).await, 200);
    assert_eq!(connections(&t, &alice).await, ["Conn1="]);
    // Used up: a second handshake with it, on any connection, is refused.
    assert_eq!(connect(&t, "Conn2=", ticket).await, 401);
    assert_eq!(connections(&t, &alice).await, ["Conn1="]);

    let (status, _) = on_websocket(&t, websocket_event("$disconnect", "Conn1=", None, None)).await;
    assert_eq!(status, 200);
    assert!(connections(&t, &alice).await.is_empty());
    // A repeated `$disconnect` (API Gateway's are best effort, and may come twice) is fine.
    assert_eq!(on_websocket(&t, websocket_event("$disconnect", "Conn1=", None, None)).await.0, 200);
}

#[tokio::test]
async fn bad_tickets_are_refused_at_the_handshake() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let good = ticket(&t, &alice).await;
    let (user, secret) = good.split_once('.').unwrap();
    let mut flipped = secret.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{user}.{}", String::from_utf8(flipped).unwrap());
    let someone_else = format!("{}.{secret}", bob.id);
    let access_token = alice.token.clone();
    for bad in ["", "nonsense", &flipped, &someone_else, &access_token, &format!("{good}x")] {
        assert_eq!(connect(&t, "Bad1=", bad).await, 401, "{bad:?}");
    }
    let (status, _) = on_websocket(&t, websocket_event("$connect", "Bad2=", None, None)).await;
    assert_eq!(status, 401, "no ticket at all");

    // Expired: issued more than 30 seconds ago.
    let old = t.app.store.issue_ticket(&alice.id, 0, Timestamp::now().plus_seconds(-31)).await.unwrap();
    assert_eq!(connect(&t, "Old1=", &old.to_string()).await, 401);

    // Deactivated after the ticket was issued.
    let late = ticket(&t, &bob).await;
    t.app.store.set_flags(&bob.id, false, false).await.unwrap();
    assert_eq!(connect(&t, "Late1=", &late).await, 401);

    // None of that opened anything, and the good ticket still works.
    assert!(connections(&t, &alice).await.is_empty() && connections(&t, &bob).await.is_empty());
    assert_eq!(connect(&t, "Good1=", &good).await, 200);
}

#[tokio::test]
async fn a_repeated_ticket_is_refused_whichever_comes_first() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let good = ticket(&t, &alice).await;
    let other = ticket(&t, &alice).await;
    for pairs in [
        [("ticket", good.as_str()), ("ticket", "bogus")],
        [("ticket", "bogus"), ("ticket", good.as_str())],
        [("ticket", good.as_str()), ("ticket", good.as_str())],
        [("ticket", good.as_str()), ("ticket", other.as_str())],
    ] {
        let mut event = websocket_event("$connect", "Twice1=", None, None);
        set_query(&mut event, &pairs);
        assert_eq!(on_websocket(&t, event).await.0, 401, "{pairs:?}");
    }
    assert!(connections(&t, &alice).await.is_empty());
    // Refused before either was used: each still opens a connection alone.
    assert_eq!(connect(&t, "Once1=", &good).await, 200);
    assert_eq!(connect(&t, "Once2=", &other).await, 200);
}

#[tokio::test]
async fn racing_handshakes_with_one_ticket_open_exactly_one_connection() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    for round in 0..3 {
        let ticket = ticket(&t, &alice).await;
        let attempts = (0..8).map(|i| {
            let (t, ticket) = (&t, ticket.clone());
            async move { connect(t, &format!("R{round}x{i}="), &ticket).await }
        });
        let statuses = futures_util::future::join_all(attempts).await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| [200, 401].contains(s)), "{statuses:?}");
    }
    assert_eq!(connections(&t, &alice).await.len(), 3);
}

#[tokio::test]
async fn pings_are_answered_and_unknown_actions_told_so() {
    let t = TestApp::spawn().await;
    let (status, body) =
        on_websocket(&t, websocket_event("$default", "C1=", None, Some(r#"{"action":"ping"}"#))).await;
    assert_eq!((status, body), (200, json!({"type": "pong"})));
    for junk in [r#"{"action":"dance"}"#, "not json", "", &"x".repeat(10_000)] {
        let (status, body) = on_websocket(&t, websocket_event("$default", "C1=", None, Some(junk))).await;
        assert_eq!((status, body["type"].as_str()), (200, Some("error")), "{junk:?}");
    }
}

#[tokio::test]
async fn typing_is_limited_per_connection_and_needs_a_thread_one_is_in() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let thread = t.thread(&alice, &[&bob]).await;
    assert_eq!(connect(&t, "A1=", &ticket(&t, &alice).await).await, 200);
    assert_eq!(connect(&t, "E1=", &ticket(&t, &eve).await).await, 200);
    let store = &t.app.store;
    let conn: ConnectionId = "A1=".parse().unwrap();
    let now = 1_796_000_000_000;
    assert!(
        matches!(store.typing_gate(&conn, now, 300).await.unwrap(), shared::store::TypingGate::Allowed(u) if u == alice.id)
    );
    assert_eq!(store.typing_gate(&conn, now + 100, 300).await.unwrap(), shared::store::TypingGate::TooSoon);
    assert!(matches!(
        store.typing_gate(&conn, now + 300, 300).await.unwrap(),
        shared::store::TypingGate::Allowed(_)
    ));
    let unknown: ConnectionId = "Nope=".parse().unwrap();
    assert_eq!(store.typing_gate(&unknown, now, 300).await.unwrap(), shared::store::TypingGate::Unknown);

    // Through the function: answered 200 whatever the notice (typing is a hint, never an
    // error), for a thread one is in, one is not in, and nonsense.
    let body = json!({"action": "typing", "thread": thread}).to_string();
    for (connection, body) in
        [("A1=", body.as_str()), ("E1=", body.as_str()), ("A1=", r#"{"action":"typing"}"#)]
    {
        let (status, _) = on_websocket(&t, websocket_event("typing", connection, None, Some(body))).await;
        assert_eq!(status, 200);
    }
}
