//! Live events end to end over real WebSockets: devstack's WebSocket API and stream dispatcher
//! in front of the real realtime and fanout functions under `cargo lambda watch` (`make test`
//! starts them and sets `E2E_WEBSOCKET_URL`).

use std::collections::HashMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::Api;

/// Generous: the first event may wait for `cargo lambda watch` to start the fanout function.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One client connection, with every event it has received, by id.
struct Live {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    events: Vec<Value>,
}

fn ticket_url(api: &Api, token: &str) -> String {
    let r = api.call("POST", "/api/realtime/ticket/", Some(token), None);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let url = r.body["url"].as_str().unwrap().to_owned();
    // The functions name the URL from their environment, which `make test` sets to this.
    assert!(url.starts_with(&std::env::var("E2E_WEBSOCKET_URL").unwrap()), "{url}");
    url
}

/// The handshake's HTTP status when it is refused.
fn refused(url: &str) -> u16 {
    match tungstenite::connect(url) {
        Ok(_) => panic!("{url}: the handshake was accepted"),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

impl Live {
    fn connect(url: &str) -> Self {
        let (socket, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("connect: {e}"));
        if let MaybeTlsStream::Plain(tcp) = socket.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        }
        Self { socket, events: Vec::new() }
    }

    fn send(&mut self, body: Value) {
        self.socket.send(Message::text(body.to_string())).unwrap();
    }

    /// Reads what has arrived, for at most `wait`.
    fn pump(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            match self.socket.read() {
                Ok(Message::Text(text)) => self.events.push(serde_json::from_str(&text).unwrap()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Waits for an event that `matches`, and returns it.
    fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + EVENT_TIMEOUT;
        loop {
            if let Some(e) = self.events.iter().find(|e| matches(e)) {
                return e.clone();
            }
            assert!(Instant::now() < until, "no {what} within {EVENT_TIMEOUT:?}; got {:#?}", self.events);
            self.pump(Duration::from_millis(200));
        }
    }

    fn of_thread(&self, thread: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["thread"] == thread).collect()
    }
}

fn is(kind: &'static str, thread: &str) -> impl Fn(&Value) -> bool {
    let thread = thread.to_owned();
    move |e| e["type"] == kind && e["thread"] == thread.as_str()
}

#[test]
fn events_reach_every_connection_of_every_participant_and_nobody_else() {
    let api = Api::new();
    let (alice, _) = api.login("alice");
    let (other, _) = api.login("test_user");
    let (bob, _) = api.login("bob");
    let other_id =
        api.call("GET", "/api/users/me/", Some(&other), None).body["id"].as_str().unwrap().to_owned();
    let alice_id =
        api.call("GET", "/api/users/me/", Some(&alice), None).body["id"].as_str().unwrap().to_owned();

    // Refused handshakes: no ticket, a made-up one, and a used one.
    let url = std::env::var("E2E_WEBSOCKET_URL").unwrap();
    assert_eq!(refused(&url), 401);
    assert_eq!(refused(&format!("{url}?ticket={alice_id}.{}", "A".repeat(43))), 401);
    assert_eq!(refused(&format!("{url}?ticket={alice}")), 401, "an access token is not a ticket");
    let twice = ticket_url(&api, &alice);
    assert_eq!(refused(&format!("{twice}&ticket=bogus")), 401, "a repeated ticket is no ticket");
    let once = ticket_url(&api, &alice);
    let mut a1 = Live::connect(&once);
    assert_eq!(refused(&once), 401, "a ticket works once");

    // Alice on one device, test_user on two, bob (not in the thread) on one.
    let mut o1 = Live::connect(&ticket_url(&api, &other));
    let mut o2 = Live::connect(&ticket_url(&api, &other));
    let mut b1 = Live::connect(&ticket_url(&api, &bob));

    a1.send(json!({"action": "ping"}));
    a1.expect("pong", |e| e["type"] == "pong");

    let created = api.call("POST", "/api/threads/", Some(&alice), Some(json!({"participants": [other_id]})));
    assert!(created.status == 201 || created.status == 200, "{:?}", created.body);
    let thread = created.body["id"].as_str().unwrap().to_owned();

    let text = format!("live {}", uuid::Uuid::new_v4());
    let sent = api.call(
        "POST",
        &format!("/api/threads/{thread}/messages/"),
        Some(&alice),
        Some(json!({"text": text})),
    );
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let message = sent.body["id"].as_str().unwrap().to_owned();
    for live in [&mut a1, &mut o1, &mut o2] {
        let e = live.expect("message.created", |e| {
            is("message.created", &thread)(e) && e["data"]["message"]["id"] == message.as_str()
        });
        assert_eq!(e["data"]["message"]["text"], text.as_str());
        assert_eq!(e["data"]["message"]["sender"], alice_id.as_str());
    }
    // The receiver's totals moved, on both of their connections.
    for live in [&mut o1, &mut o2] {
        live.expect("unread.changed", |e| {
            e["type"] == "unread.changed" && e["data"]["unread_count"].as_u64() >= Some(1)
        });
    }

    // test_user reads the thread: alice sees the receipt.
    assert_eq!(api.call("GET", &format!("/api/threads/{thread}/messages/"), Some(&other), None).status, 200);
    let receipt =
        a1.expect("thread.read", |e| is("thread.read", &thread)(e) && e["data"]["user"] == other_id.as_str());
    assert_eq!(receipt["data"]["message"], message.as_str());

    // Typing reaches the others, not the typist.
    a1.send(json!({"action": "typing", "thread": thread}));
    for live in [&mut o1, &mut o2] {
        let e = live.expect("typing", is("typing", &thread));
        assert_eq!(e["data"]["user"], alice_id.as_str());
    }

    // Edit, then delete.
    let uri = format!("/api/threads/{thread}/messages/{message}/");
    assert_eq!(api.call("PATCH", &uri, Some(&alice), Some(json!({"text": "edited live"}))).status, 200);
    for live in [&mut a1, &mut o1, &mut o2] {
        let e = live.expect("message.updated", is("message.updated", &thread));
        assert_eq!(e["data"]["message"]["text"], "edited live");
    }
    assert_eq!(api.call("DELETE", &uri, Some(&alice), None).status, 204);
    for live in [&mut a1, &mut o1, &mut o2] {
        let e = live.expect("message.deleted", is("message.deleted", &thread));
        assert_eq!(e["data"]["message"], message.as_str());
    }

    // A dropped connection catches up over HTTP with `?since=`: it holds the newest page's
    // version, misses two messages and an edit of the first, reconnects, and gets exactly those
    // two, each once and as they are now, in the order of their latest change.
    let held = api.call("GET", &format!("/api/threads/{thread}/messages/?limit=10"), Some(&other), None);
    let since = held.body["since"].as_str().expect("the newest page says since when").to_owned();
    drop(o2);
    let missed: Vec<String> = (0..2)
        .map(|i| {
            let r = api.call(
                "POST",
                &format!("/api/threads/{thread}/messages/"),
                Some(&alice),
                Some(json!({"text": format!("missed {i}")})),
            );
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let edit = api.call(
        "PATCH",
        &format!("/api/threads/{thread}/messages/{}/", missed[0]),
        Some(&alice),
        Some(json!({"text": "missed 0, edited"})),
    );
    assert_eq!(edit.status, 200, "{}", edit.body);
    let mut o3 = Live::connect(&ticket_url(&api, &other));
    let changes =
        api.call("GET", &format!("/api/threads/{thread}/messages/?since={since}"), Some(&other), None);
    assert_eq!(changes.status, 200, "{}", changes.body);
    let got: Vec<(String, String)> = changes.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["text"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got,
        [(missed[1].clone(), "missed 1".to_owned()), (missed[0].clone(), "missed 0, edited".to_owned())],
        "exactly what was missed"
    );
    let after: u64 = changes.body["since"].as_str().unwrap().parse().unwrap();
    assert_eq!(after, since.parse::<u64>().unwrap() + 3, "two sends and an edit");
    let next = format!("live again {}", uuid::Uuid::new_v4());
    api.call("POST", &format!("/api/threads/{thread}/messages/"), Some(&alice), Some(json!({"text": next})));
    o3.expect("message.created after reconnecting", |e| {
        is("message.created", &thread)(e) && e["data"]["message"]["text"] == next.as_str()
    });
    o1.expect("the last message", |e| {
        is("message.created", &thread)(e) && e["data"]["message"]["text"] == next.as_str()
    });

    // Nobody outside the thread heard any of it, and nothing came twice.
    b1.pump(Duration::from_secs(1));
    assert!(b1.of_thread(&thread).is_empty(), "bob got {:#?}", b1.of_thread(&thread));
    for live in [&a1, &o1, &o3] {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for e in live.events.iter().filter(|e| e["id"].is_string()) {
            *seen.entry(e["id"].as_str().unwrap()).or_default() += 1;
        }
        assert!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    }
    let created_here = o1.of_thread(&thread).iter().filter(|e| e["type"] == "message.created").count();
    assert!(created_here >= 4, "o1 got {created_here} message.created");
}
