//! The live API's limits and its closes, through the real `realtime` and `fanout` handlers
//! behind devstack's gateway and stream dispatcher (`live_stack`): connections per user,
//! tickets per user, typing per user, and the connections of a user who is deactivated or whose
//! password changes.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::json;
use shared::domain::timestamp::Timestamp;

use crate::helpers::{TestApp, TestUser};
use crate::live_stack::{Live, LiveStack, settle, wait_until};

/// The connections a user may have open (docs/realtime.md, "Limits").
const MAX_CONNECTIONS: usize = 10;

async fn recorded(t: &TestApp, user: &TestUser) -> HashSet<String> {
    let found = t.app.store.current_connections(&user.id, Timestamp::now()).await.unwrap();
    found.into_iter().map(|c| c.id.to_string()).collect()
}

/// Waits until the user's recorded connections are `want` (a close frame reaches the client
/// before the function that closed it has forgotten it).
async fn wait_for_records(t: &TestApp, user: &TestUser, want: &HashSet<String>) {
    let deadline = Instant::now() + crate::live_stack::DEADLINE;
    loop {
        let now = recorded(t, user).await;
        if now == *want {
            return;
        }
        assert!(Instant::now() < deadline, "{}'s connections: {now:?}, expected {want:?}", user.id);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn closed_because(live: &Live, reason: &str) -> bool {
    live.close_code() == Some(1000)
        && live.of_type("connection.closed").iter().any(|e| e["data"] == json!({"reason": reason}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_keeps_at_most_ten_connections_and_the_oldest_make_way() {
    let s = LiveStack::start(Default::default()).await;
    let t = &s.t;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let b = s.connect(&bob).await;
    let mut lives = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 2 {
        lives.push(s.connect(&alice).await);
    }
    wait_until(
        "the two oldest to be told and closed",
        || lives[..2].iter().all(|l| closed_because(l, "too_many_connections")),
        || format!("{:#?} {:?}", lives[..2].iter().map(Live::events).collect::<Vec<_>>(), s.gateway.stats()),
    )
    .await;
    let newest: HashSet<String> = lives[2..].iter().map(|l| l.connection.clone()).collect();
    wait_for_records(t, &alice, &newest).await;
    assert!(lives[2..].iter().all(|l| l.close_code().is_none()));
    assert_eq!(recorded(t, &bob).await.len(), 1, "nobody else's connections are touched");

    // Eight handshakes at once, on top of the ten (twenty tickets in all: the most a minute
    // allows): exactly ten stay open and recorded, each handshake either opened (and may have
    // been closed since) or was refused with 429.
    let attempts: Vec<_> = (0..8).map(|_| s.try_connect(&alice)).collect();
    let results = futures_util::future::join_all(attempts).await;
    let refused: Vec<u16> = results.iter().filter_map(|r| r.as_ref().err().copied()).collect();
    assert!(refused.iter().all(|s| *s == 429), "{refused:?}");
    let opened: Vec<Live> = results.into_iter().filter_map(Result::ok).collect();
    let all: Vec<&Live> = lives.iter().chain(&opened).collect();
    let open = || all.iter().filter(|l| l.close_code().is_none()).count();
    wait_until(
        "ten of alice's connections open",
        || open() == MAX_CONNECTIONS,
        || format!("{} open", open()),
    )
    .await;
    let still_open: HashSet<String> =
        all.iter().filter(|l| l.close_code().is_none()).map(|l| l.connection.clone()).collect();
    wait_for_records(t, &alice, &still_open).await;
    assert_eq!(s.gateway.stats().open as usize, MAX_CONNECTIONS + 1, "{:?}", s.gateway.stats());

    // Events reach the ten, once each.
    let thread = t.thread(&bob, &[&alice]).await;
    let open_lives: Vec<&&Live> = all.iter().filter(|l| l.close_code().is_none()).collect();
    wait_until(
        "thread.created on alice's ten connections",
        || open_lives.iter().all(|l| l.of_thread(&thread).len() == 1),
        String::new,
    )
    .await;
    settle().await;
    assert_eq!(all.iter().map(|l| l.of_thread(&thread).len()).sum::<usize>(), MAX_CONNECTIONS);
    assert_eq!(b.of_thread(&thread).len(), 1);
    eprintln!(
        "connection cap: 20 handshakes of one user, {} refused with 429, gateway {:?}",
        refused.len(),
        s.gateway.stats()
    );
    s.stop().await;
}

#[tokio::test]
async fn tickets_are_limited_per_user_at_any_concurrency() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let asks: Vec<_> = (0..30).map(|_| t.post("/api/realtime/ticket/", &alice, json!({}))).collect();
    let replies = futures_util::future::join_all(asks).await;
    let issued = replies.iter().filter(|r| r.status == 201).count();
    let throttled: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (issued, throttled.len()),
        (20, 10),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in &throttled {
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(r.body["detail"].as_str().unwrap().contains("throttled"), "{r:?}");
    }
    // Another user is not affected.
    assert_eq!(t.post("/api/realtime/ticket/", &bob, json!({})).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_from_ten_connections_of_one_user_is_relayed_once_per_gap() {
    let s = LiveStack::start(Default::default()).await;
    let t = &s.t;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let b = s.connect(&bob).await;
    let mut lives = s.connect_all(std::slice::from_ref(&alice), MAX_CONNECTIONS).await;
    let thread = t.thread(&alice, &[&bob]).await;
    wait_until("thread.created for bob", || b.of_thread(&thread).len() == 1, String::new).await;

    let started = Instant::now();
    for _ in 0..2 {
        for live in &mut lives {
            live.send(json!({"action": "typing", "thread": thread})).await;
        }
    }
    let sent_in = started.elapsed();
    wait_until("a typing notice for bob", || !b.of_type("typing").is_empty(), String::new).await;
    settle().await;
    let elapsed = started.elapsed();
    let relayed = b.of_type("typing").len();
    // The gate is 1 s per user and thread: however slow this machine, no more than one per
    // started second since the first notice was sent can have gone through.
    let allowed = 1 + elapsed.as_millis() as usize / 1000;
    assert!(relayed <= allowed, "{relayed} typing events relayed in {elapsed:?} (sent in {sent_in:?})");
    assert!(b.of_type("typing").iter().all(|e| e["data"]["user"] == alice.id.as_str()));
    eprintln!("typing: 20 notices from 10 connections sent in {sent_in:?}; {relayed} relayed in {elapsed:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_and_a_password_change_close_the_users_connections_at_once() {
    let s = LiveStack::start(Default::default()).await;
    let t = &s.t;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let alice_lives = s.connect_all(std::slice::from_ref(&alice), 2).await;
    let b = s.connect(&bob).await;
    let c = s.connect(&carol).await;
    let thread = t.thread(&carol, &[&alice, &bob]).await;
    let everyone: Vec<&Live> = alice_lives.iter().chain([&b, &c]).collect();
    wait_until(
        "thread.created everywhere",
        || everyone.iter().all(|l| l.of_thread(&thread).len() == 1),
        String::new,
    )
    .await;

    // Deactivated as `msgctl deactivate` and the admin panel do it.
    msgctl::set_active(&t.app.store, "alice", false).await.unwrap();
    wait_until(
        "alice's connections to be told and closed",
        || alice_lives.iter().all(|l| closed_because(l, "signed_out")),
        || format!("{:#?} {:?}", alice_lives.iter().map(Live::events).collect::<Vec<_>>(), s.gateway.stats()),
    )
    .await;
    wait_for_records(t, &alice, &HashSet::new()).await;
    let heard: Vec<usize> = alice_lives.iter().map(|l| l.events().len()).collect();
    t.say(&thread, &carol, "after alice left").await;
    wait_until("the message on bob's connection", || b.of_type("message.created").len() == 1, String::new)
        .await;
    settle().await;
    assert_eq!(
        alice_lives.iter().map(|l| l.events().len()).collect::<Vec<_>>(),
        heard,
        "nothing more for alice"
    );
    // Her access token still gets a ticket (tokens are not checked against the table), but
    // the handshake is refused.
    let late = s.ticket(&alice).await;
    assert_eq!(s.connect_with(&alice, &format!("ticket={late}")).await.err(), Some(401));

    // A password change, as `msgctl set-password` and the admin panel make it: bob's
    // connection closes; a ticket from his old access token no longer opens one.
    let stale = s.ticket(&bob).await;
    shared::accounts::set_password(&t.app.store, &bob.id, "a brand new password").await.unwrap();
    wait_until(
        "bob's connection to close",
        || closed_because(&b, "signed_out"),
        || format!("{:#?}", b.events()),
    )
    .await;
    wait_for_records(t, &bob, &HashSet::new()).await;
    assert_eq!(s.connect_with(&bob, &format!("ticket={stale}")).await.err(), Some(401));
    // His access token from before still gets a ticket, as it still reads the API until it
    // expires; the handshake is refused.
    let after = s.ticket(&bob).await;
    assert_eq!(s.connect_with(&bob, &format!("ticket={after}")).await.err(), Some(401));

    // Other profile changes (staff, and saving the same flags) close nothing.
    t.app.store.set_flags(&carol.id, true, true).await.unwrap();
    t.say(&thread, &carol, "still here").await;
    wait_until(
        "carol's own message on her connection",
        || c.of_type("message.created").len() == 2,
        String::new,
    )
    .await;
    settle().await;
    assert_eq!(c.close_code(), None);
    assert!(c.of_type("connection.closed").is_empty());
    assert_eq!(recorded(t, &carol).await.len(), 1);
    let stats = s.gateway.stats();
    assert_eq!(stats.deleted, 3, "alice's two and bob's one: {stats:?}");
    s.stop().await;
}

/// The limits' own conditional writes, at fixed times.
mod store {
    use super::*;

    #[tokio::test]
    async fn the_ticket_window_is_exact_across_instances_and_reopens() {
        let t = TestApp::spawn().await;
        let alice = t.user("alice").await;
        let store = &t.app.store;
        let now = Timestamp::now().unix();
        // Two "instances" (stores over the same table) race for the same window.
        let other = shared::store::Store::new(crate::helpers::client(), store.table().to_owned());
        let calls: Vec<_> = (0..30)
            .map(|i| {
                let s = if i % 2 == 0 { store } else { &other };
                s.take_ticket_slot(&alice.id, now)
            })
            .collect();
        let results: Vec<_> =
            futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 20, "{results:?}");
        let waits: Vec<i64> = results.iter().filter_map(|r| r.err()).collect();
        assert!(waits.iter().all(|w| (1..=60).contains(w)), "{waits:?}");
        // The window ends: a new one opens.
        assert!(store.take_ticket_slot(&alice.id, now + 59).await.unwrap().is_err());
        assert!(store.take_ticket_slot(&alice.id, now + 60).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn typing_is_limited_per_user_and_thread_across_connections() {
        let t = TestApp::spawn().await;
        let alice = t.user("alice").await;
        let store = &t.app.store;
        let (one, two): (shared::domain::ids::ThreadId, shared::domain::ids::ThreadId) =
            ("t1".parse().unwrap(), "t2".parse().unwrap());
        let now = 1_796_000_000_000;
        // Ten at once, as from ten connections: one goes through.
        let gates: Vec<_> = (0..10).map(|_| store.typing_slot(&alice.id, &one, now, 1000)).collect();
        let passed =
            futures_util::future::join_all(gates).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(passed, 1);
        assert!(!store.typing_slot(&alice.id, &one, now + 999, 1000).await.unwrap());
        assert!(store.typing_slot(&alice.id, &two, now + 999, 1000).await.unwrap(), "another thread");
        assert!(store.typing_slot(&alice.id, &one, now + 1000, 1000).await.unwrap());
    }
}
