//! Races across instances: `make test` runs `cargo lambda watch --concurrency 4`, so concurrent
//! requests to one function reach several processes, each with its own clients and state, as
//! they do on Lambda. Nothing here can be serialised by a lock inside one process.

use std::collections::HashMap;

use serde_json::json;

use crate::{Api, Reply};

/// How many processes of a function's binary are running on this machine (the stack of
/// `make test` is local).
fn instances(binary: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == binary))
        .count()
}

/// Calls until the answer is not a 503, as a client obeying `Retry-After` would.
fn until_not_503(mut call: impl FnMut() -> Reply) -> Reply {
    for _ in 0..50 {
        let r = call();
        if r.status != 503 {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("stayed 503");
}

fn seq(id: &str) -> u64 {
    id.rsplit_once('.').unwrap().1.parse().unwrap()
}

#[test]
fn sends_racing_through_several_instances_keep_one_gapless_order() {
    let api = Api::new();
    let (admin, _) = api.login("admin");
    let (bob, _) = api.login("bob");
    let bob_id = api.call("GET", "/api/users/me/", Some(&bob), None).body["id"].as_str().unwrap().to_owned();
    let created = api.call("POST", "/api/threads/", Some(&admin), Some(json!({"participants": [bob_id]})));
    assert!([200, 201].contains(&created.status), "{}", created.body);
    let thread = created.body["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/threads/{thread}/messages/");
    let since = api.call("GET", &uri, Some(&bob), None).body["since"].as_str().unwrap().to_owned();

    // Four senders at once, 15 messages each, two as each user; each retries a 503 with the same
    // client_id, so a retry of a send that landed answers the original.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let sent: Vec<Vec<String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (api, uri, run) = (&api, &uri, &run);
                let token = if w % 2 == 0 { admin.clone() } else { bob.clone() };
                s.spawn(move || {
                    (0..15)
                        .map(|i| {
                            let body = json!({"text": format!("{run} {w}-{i}"), "client_id": format!("{run}-{w}-{i}")});
                            let r = until_not_503(|| api.call("POST", uri, Some(&token), Some(body.clone())));
                            assert!([200, 201].contains(&r.status), "{}", r.body);
                            r.body["id"].as_str().unwrap().to_owned()
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(instances("messages") >= 2, "the sends reached more than one messages process");

    // Exactly the 60 acknowledged messages were written, once each, at consecutive places, and
    // each sender's own order holds.
    let mut changes = Vec::new();
    let mut next = Some(format!("{uri}?since={since}"));
    while let Some(url) = next {
        let r = api.call("GET", &url, Some(&bob), None);
        assert_eq!(r.status, 200, "{}", r.body);
        changes.extend(
            r.body["results"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        next = r.body["next"].as_str().map(str::to_owned);
    }
    let mut acknowledged: Vec<&String> = sent.iter().flatten().collect();
    acknowledged.sort_by_key(|id| seq(id));
    changes.sort_by_key(|id| seq(id));
    assert_eq!(changes.iter().collect::<Vec<_>>(), acknowledged, "what was written is what was acknowledged");
    let seqs: Vec<u64> = acknowledged.iter().map(|id| seq(id)).collect();
    assert_eq!(seqs.len(), 60);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gaps, no repeats: {seqs:?}");
    for own in &sent {
        assert!(own.windows(2).all(|w| seq(&w[0]) < seq(&w[1])), "a sender's order holds: {own:?}");
    }
    // Admin has read none of it: bob's 30 are all unread for him.
    let unread = api.call("GET", &format!("{uri}unread_count/"), Some(&admin), None);
    let from_bob = seqs.len() as u64 / 2;
    assert!(unread.body["unread_count"].as_u64().unwrap() >= from_bob, "{}", unread.body);
    assert_eq!(api.call("DELETE", &format!("/api/threads/{thread}/"), Some(&admin), None).status, 204);
}

#[test]
fn a_lockout_holds_across_several_token_instances() {
    let api = Api::new();
    // A username nobody has: the limit counts it all the same, and no demo user is locked out.
    let username = format!("nobody-{}", uuid::Uuid::new_v4().simple());
    let answers: Vec<u16> = std::thread::scope(|s| {
        let guesses: Vec<_> = (0..16)
            .map(|i| {
                let (api, username) = (&api, &username);
                s.spawn(move || {
                    let body = json!({"username": username, "password": format!("guess-{i}")});
                    until_not_503(|| api.call("POST", "/api/token/", None, Some(body.clone()))).status
                })
            })
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for status in &answers {
        *counts.entry(*status).or_default() += 1;
    }
    assert!(instances("token") >= 2, "the guesses reached more than one token process");
    assert_eq!(counts.keys().filter(|s| ![401, 429].contains(s)).count(), 0, "{counts:?}");
    assert!(counts.get(&401).copied().unwrap_or(0) <= 10, "at most the limit was checked: {counts:?}");
    assert!(counts.get(&429).copied().unwrap_or(0) >= 6, "the rest were refused: {counts:?}");
    // And it holds afterwards, whichever instance answers.
    for _ in 0..4 {
        let r = api.call("POST", "/api/token/", None, Some(json!({"username": username, "password": "x"})));
        assert_eq!(r.status, 429, "{}", r.body);
    }
}

/// A group where everyone answers at once: 32 participants each send 10 messages at the same
/// moment, through the functions' 4 instances. No send may fail with a 5xx (or go unanswered),
/// and the thread must end with exactly the 320 acknowledged messages at places 1 to 320 and
/// every member's unread count exact. The latency of such a burst is `make bench`'s to report.
#[test]
fn thirty_two_participants_sending_at_once_get_no_server_error_and_exact_counts() {
    let api = Api::new();
    let password = std::env::var("E2E_BURST_PASSWORD").expect("E2E_BURST_PASSWORD (run `make test`)");
    let usernames: Vec<String> = (1..=32).map(|n| format!("burst-{n:04}")).collect();
    let report = loadgen::burst::run(&api.base, &usernames, &password, 10).expect("the burst runs");
    eprintln!(
        "burst: 32 x 10 sends in {:.0} ms: {:?}; p50 {:.0} ms, p99 {:.0} ms",
        report.wall_ms, report.statuses, report.p50_ms, report.p99_ms
    );
    assert_eq!(report.server_errors, 0, "{report:?}");
    assert_eq!(report.created, 320, "every send answered 201: {report:?}");
    assert!(report.exact, "{:?}", report.mismatches);
    assert_eq!(report.messages_found, 320);
    assert!(instances("messages") >= 2, "the sends reached more than one messages process");
}
