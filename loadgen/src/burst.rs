//! `--burst N`: a group where everyone answers at once. Every account joins one thread, then
//! all of them send N messages each at the same moment (each account its own OS thread and
//! connections, one send after another), and the run reports every status and the latency of
//! the sends. Afterwards it checks what was written: exactly the acknowledged messages, at
//! consecutive places, and each member's unread count exactly the others' messages.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::api::{Credentials, HasId, NewMessage, NewThread, Tokens};
use crate::client::{Client, Notify};
use crate::stats::Endpoint;

/// What a burst did and found.
#[derive(Debug, Serialize, Deserialize)]
pub struct BurstReport {
    /// Accounts sending at once.
    pub senders: usize,
    /// Messages each sent.
    pub messages_each: usize,
    /// Sends answered 201.
    pub created: usize,
    /// Every status the sends got, with how often (`"transport"` for no answer).
    pub statuses: BTreeMap<String, usize>,
    /// Sends answered 5xx.
    pub server_errors: usize,
    /// Latency of the sends, from request to whole answer.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// From the first send to the last answer.
    pub wall_ms: f64,
    /// Messages the thread holds afterwards.
    pub messages_found: usize,
    /// True when the thread holds exactly the acknowledged messages, at places 1..=N, and every
    /// member's unread count in it is the number of the others' messages.
    pub exact: bool,
    /// What was not exact, if anything.
    pub mismatches: Vec<String>,
}

/// One send: its status (none without an answer), latency, and the message's id if created.
struct Sent {
    status: Option<u16>,
    ms: f64,
    id: Option<String>,
}

#[derive(Deserialize)]
struct UnreadAnswer {
    unread_count: u64,
}

#[derive(Deserialize)]
struct MessagePage {
    results: Vec<HasId>,
    next: Option<String>,
}

/// Runs the burst with `usernames` (at least two, sharing `password`) against `base_url`.
pub fn run(
    base_url: &str,
    usernames: &[String],
    password: &str,
    messages_each: usize,
) -> Result<BurstReport, String> {
    if usernames.len() < 2 {
        return Err("a burst needs at least two accounts".into());
    }
    let sent = AtomicU64::new(0);
    let notify: &Notify<'_> = &|message: &str| eprintln!("loadgen: {message}");
    let timeout = Duration::from_secs(30);
    let mut client = Client::new(base_url, timeout, &sent, notify);
    let mut tokens = Vec::with_capacity(usernames.len());
    let mut ids = Vec::with_capacity(usernames.len());
    for username in usernames {
        let access = client
            .post(Endpoint::Login, "/api/token/", None, &Credentials { username, password })
            .json::<Tokens>()
            .ok_or_else(|| format!("{username} cannot log in"))?
            .access;
        let id =
            client.get(Endpoint::Me, "/api/users/me/", &[], &access).json::<HasId>().ok_or("me failed")?.id;
        tokens.push(access);
        ids.push(id);
    }
    let others: Vec<&str> = ids[1..].iter().map(String::as_str).collect();
    let create = |client: &mut Client<'_>| {
        let reply = client.post(
            Endpoint::CreateThread,
            "/api/threads/",
            Some(&tokens[0]),
            &NewThread { participants: others.clone() },
        );
        let thread = reply.json::<HasId>().ok_or("creating the burst's thread failed")?.id;
        Ok::<_, String>((reply.status(), thread))
    };
    let (status, mut thread) = create(&mut client)?;
    if status == Some(200) {
        // An earlier burst's thread: it goes, so that this one starts empty.
        client.delete(Endpoint::DeleteThread, &format!("/api/threads/{thread}/"), &tokens[0]);
        thread = create(&mut client)?.1;
    }
    let path = format!("/api/threads/{thread}/messages/");
    let run = format!("{:x}", fastrand::u64(..));

    let start = Barrier::new(usernames.len());
    let began = Instant::now();
    let results: Vec<Vec<Sent>> = std::thread::scope(|s| {
        let senders: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(u, access)| {
                let (path, run, start, sent) = (&path, &run, &start, &sent);
                s.spawn(move || {
                    let notify: &Notify<'_> = &|message: &str| eprintln!("loadgen: {message}");
                    let mut client = Client::new(base_url, timeout, sent, notify);
                    start.wait();
                    (0..messages_each)
                        .map(|i| {
                            let text = format!("burst {run} {u}-{i}");
                            let client_id = format!("{run}-{u}-{i}");
                            let began = Instant::now();
                            let reply = client.post(
                                Endpoint::SendMessage,
                                path,
                                Some(access),
                                &NewMessage { text: &text, client_id: Some(&client_id) },
                            );
                            let ms = began.elapsed().as_secs_f64() * 1000.0;
                            Sent { status: reply.status(), ms, id: reply.json::<HasId>().map(|m| m.id) }
                        })
                        .collect()
                })
            })
            .collect();
        senders.into_iter().map(|h| h.join().expect("a sender panicked")).collect()
    });
    let wall_ms = began.elapsed().as_secs_f64() * 1000.0;

    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut acknowledged: Vec<(usize, String)> = Vec::new();
    for (u, sends) in results.iter().enumerate() {
        for sent in sends {
            *statuses.entry(sent.status.map_or("transport".to_owned(), |s| s.to_string())).or_default() += 1;
            latencies.push(sent.ms);
            if let Some(id) = &sent.id {
                acknowledged.push((u, id.clone()));
            }
        }
    }
    let server_errors = results.iter().flatten().filter(|s| s.status.is_none_or(|s| s >= 500)).count();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];

    // What was written: every message of the thread, through the API's own list.
    let mut found = Vec::new();
    let mut next = Some(format!("{path}?limit=100"));
    while let Some(url) = next {
        let url = url.strip_prefix(base_url).unwrap_or(&url).to_owned();
        let reply = client.get(Endpoint::ListMessages, &url, &[], &tokens[0]);
        let page =
            reply.json::<MessagePage>().ok_or_else(|| format!("listing the thread: {:?}", reply.status()))?;
        found.extend(page.results.into_iter().map(|m| m.id));
        next = page.next;
    }
    let mut mismatches = Vec::new();
    let seq = |id: &str| id.rsplit_once('.').and_then(|(_, s)| s.parse::<usize>().ok()).unwrap_or(0);
    let mut written: Vec<usize> = found.iter().map(|id| seq(id)).collect();
    written.sort_unstable();
    let mut acked: Vec<usize> = acknowledged.iter().map(|(_, id)| seq(id)).collect();
    acked.sort_unstable();
    if written != acked {
        mismatches.push(format!("{} messages written, {} acknowledged", written.len(), acked.len()));
    }
    if written != (1..=written.len()).collect::<Vec<_>>() {
        mismatches.push("the messages' places are not 1..N".into());
    }
    // Reading the list moved the first account's marker; every other member has read nothing.
    for (u, access) in tokens.iter().enumerate().skip(1) {
        let mine = acknowledged.iter().filter(|(sender, _)| *sender == u).count() as u64;
        let expected = acknowledged.len() as u64 - mine;
        let reply = client.get(Endpoint::ThreadUnread, &format!("{path}unread_count/"), &[], access);
        match reply.json::<UnreadAnswer>() {
            Some(a) if a.unread_count == expected => {}
            Some(a) => {
                mismatches.push(format!("{} has {} unread, not {expected}", usernames[u], a.unread_count))
            }
            None => mismatches.push(format!("{}'s unread count: {:?}", usernames[u], reply.status())),
        }
    }
    client.delete(Endpoint::DeleteThread, &format!("/api/threads/{thread}/"), &tokens[0]);
    Ok(BurstReport {
        senders: usernames.len(),
        messages_each,
        created: statuses.get("201").copied().unwrap_or(0),
        statuses,
        server_errors,
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
        max_ms: *latencies.last().expect("at least one send"),
        wall_ms,
        messages_found: found.len(),
        exact: mismatches.is_empty(),
        mismatches,
    })
}
