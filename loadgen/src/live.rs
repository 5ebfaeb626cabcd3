//! `--live N`: how long a message takes to reach another participant's WebSocket. The first
//! account sends N messages into a thread with the second, who listens on a connection opened
//! with a ticket; each sample runs from the moment the send is acknowledged (201) to the moment
//! its `message.created` event arrives. Nothing is waited on between the two, so the figure is
//! what a user sees: the stream, the fan-out and the post.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use fastrand::Rng;
use serde::{Deserialize, Serialize};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::api::{Credentials, HasId, NewMessage, NewThread, Tokens};
use crate::client::Client;
use crate::stats::Endpoint;

/// What the probe found; `missing` counts sends whose event never came within the timeout.
#[derive(Debug, Serialize)]
pub struct LiveReport {
    pub sends: usize,
    pub received: usize,
    pub missing: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Deserialize)]
struct TicketAnswer {
    url: String,
}

/// The parts of an event the probe reads.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

impl Event {
    /// The id of the message a `message.created` event is about, whole or as a fetch notice.
    fn created(&self) -> Option<&str> {
        if self.kind != "message.created" {
            return None;
        }
        self.data["message"]["id"].as_str().or_else(|| self.data["message_id"].as_str())
    }
}

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Runs the probe: `sender` and `listener` are usernames sharing `password`.
pub fn run(
    client: &mut Client<'_>,
    sender: &str,
    listener: &str,
    password: &str,
    sends: usize,
    timeout: Duration,
) -> Result<LiveReport, String> {
    let login = |client: &mut Client<'_>, username: &str| {
        client
            .post(Endpoint::Login, "/api/token/", None, &Credentials { username, password })
            .json::<Tokens>()
            .map(|t| t.access)
            .ok_or_else(|| format!("{username} cannot log in"))
    };
    let (from, to) = (login(client, sender)?, login(client, listener)?);
    let listener_id = client
        .get(Endpoint::Me, "/api/users/me/", &[], &to)
        .json::<HasId>()
        .ok_or("GET /api/users/me/ failed")?
        .id;
    // Connected before the thread exists: an event posted to a connection whose `$connect` has
    // not returned yet is refused as gone, and the fan-out then forgets the connection.
    let ticket = client
        .post(Endpoint::Ticket, "/api/realtime/ticket/", Some(&to), &serde_json::json!({}))
        .json::<TicketAnswer>()
        .ok_or("POST /api/realtime/ticket/ failed")?;
    let (mut socket, _) =
        tungstenite::connect(&ticket.url).map_err(|e| format!("connecting to the WebSocket: {e}"))?;
    set_read_timeout(&socket, Some(Duration::from_millis(200)));
    let thread = client
        .post(
            Endpoint::CreateThread,
            "/api/threads/",
            Some(&from),
            &NewThread { participants: vec![&listener_id] },
        )
        .json::<HasId>()
        .ok_or("creating the probe's thread failed")?
        .id;

    let path = format!("/api/threads/{thread}/messages/");
    let mut rng = Rng::with_seed(sends as u64);
    let mut samples = Vec::with_capacity(sends);
    let mut missing = 0;
    for n in 0..sends {
        // A random pause, so that sends fall at every phase of the stream's polling rather than
        // in step with it.
        std::thread::sleep(Duration::from_millis(rng.u64(20..120)));
        let text = format!("live probe {n}");
        let reply = client.post(
            Endpoint::SendMessage,
            &path,
            Some(&from),
            &NewMessage { text: &text, client_id: None },
        );
        let accepted = Instant::now();
        let Some(sent) = reply.json::<HasId>() else {
            return Err(format!("send {n} failed: {:?}", reply.status()));
        };
        match wait_for(&mut socket, &sent.id, accepted + timeout) {
            Some(arrived) => samples.push(arrived.duration_since(accepted).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    let _ = socket.close(None);
    if samples.is_empty() {
        return Err(format!("none of {sends} events arrived"));
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(LiveReport {
        sends,
        received: samples.len(),
        missing,
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
        max_ms: *samples.last().expect("not empty"),
    })
}

/// Reads frames until the `message.created` event for `id`, or the deadline.
fn wait_for(socket: &mut Socket, id: &str, deadline: Instant) -> Option<Instant> {
    while Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Text(text)) => {
                let event: Event = match serde_json::from_str(text.as_str()) {
                    Ok(event) => event,
                    Err(_) => continue,
                };
                if event.created() == Some(id) {
                    return Some(Instant::now());
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    None
}

fn set_read_timeout(socket: &Socket, timeout: Option<Duration>) {
    let tcp = match socket.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp,
        MaybeTlsStream::Rustls(tls) => tls.get_ref(),
        _ => return,
    };
    let _ = tcp.set_read_timeout(timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_message_created_name_their_message() {
        let whole: Event = serde_json::from_str(
            r#"{"id":"e","type":"message.created","thread":"t","data":{"message":{"id":"m1"}}}"#,
        )
        .unwrap();
        let notice: Event = serde_json::from_str(
            r#"{"id":"e","type":"message.created","thread":"t","data":{"message_id":"m2","fetch":true}}"#,
        )
        .unwrap();
        let other: Event =
            serde_json::from_str(r#"{"id":"e","type":"unread.changed","data":{"message":{"id":"m3"}}}"#)
                .unwrap();
        assert_eq!(whole.created(), Some("m1"));
        assert_eq!(notice.created(), Some("m2"));
        assert_eq!(other.created(), None);
    }
}
