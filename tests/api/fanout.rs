//! Live delivery through the real pieces in one process (`live_stack`): which connections get
//! which events, at 96 connections, after a participant is removed, past a connection that
//! died without `$disconnect`, and while the gateway fails a fifth of the posts.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::websocket::Faults;
use lambda_http::http::Method;
use serde_json::{Value, json};
use shared::domain::ids::ConnectionId;
use shared::domain::timestamp::Timestamp;
use shared::store::keys;

use crate::helpers::{TestApp, TestUser};
use crate::live_stack::{DEADLINE, Live, LiveStack, settle, users, wait_until};

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().expect("every event has an id").to_owned()).collect()
}

fn distinct(events: &[Value]) -> HashSet<String> {
    ids(events).into_iter().collect()
}

fn types(events: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = events.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    t.sort();
    t
}

fn counts(lives: &[Live], thread: &str) -> Vec<usize> {
    lives.iter().map(|l| l.of_thread(thread).len()).collect()
}

/// Each id in `events` once.
fn assert_no_duplicates(live: &Live, events: &[Value]) {
    assert_eq!(distinct(events).len(), events.len(), "{} got an event twice: {events:#?}", live.connection);
}

async fn patch(t: &TestApp, uri: &str, user: &TestUser, body: Value) -> u16 {
    t.call(Method::PATCH, uri, Some(&user.token), Some(body)).await.status
}

/// Whether the connection's record under its user, and its owner record, exist.
async fn connection_records(t: &TestApp, user: &TestUser, connection: &str) -> (bool, bool) {
    let c: ConnectionId = connection.parse().unwrap();
    let exists = |pk: String, sk: String| async move {
        t.app
            .store
            .client()
            .get_item()
            .table_name(t.app.store.table())
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .is_some()
    };
    (
        exists(keys::user_pk(&user.id), keys::connection_sk(&c)).await,
        exists(keys::connection_pk(&c), keys::CONNECTION.to_owned()).await,
    )
}

/// Makes a connection's record under its user say it was opened `secs` ago.
async fn backdate(t: &TestApp, user: &TestUser, connection: &str, secs: i64) {
    let c: ConnectionId = connection.parse().unwrap();
    let then = Timestamp::now().plus_seconds(-secs);
    t.app
        .store
        .client()
        .update_item()
        .table_name(t.app.store.table())
        .key("PK", AttributeValue::S(keys::user_pk(&user.id)))
        .key("SK", AttributeValue::S(keys::connection_sk(&c)))
        .update_expression("SET connected_at = :then")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":then", AttributeValue::S(then.to_string()))
        .send()
        .await
        .unwrap();
}

/// Every post the gateway took, the fanout function counted as delivered (once its last
/// invocation has returned).
async fn fanout_made_every_post(s: &LiveStack) {
    wait_until(
        "fanout's delivered posts to match the gateway's",
        || s.fanout_totals().delivered == s.gateway.stats().posts_delivered,
        || format!("{:?} {:?}", s.fanout_totals(), s.gateway.stats()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_exactly_the_participants_connections_once_each() {
    let s = LiveStack::start(Faults::default()).await;
    let t = &s.t;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let lives = s.connect_all(&[alice.clone(), bob.clone()], 3).await;
    let outsider = s.connect(&eve).await;

    let thread = t.thread(&alice, &[&bob]).await;
    let m1 = t.say(&thread, &alice, "first").await["id"].as_str().unwrap().to_owned();
    let m2 = t.say(&thread, &bob, "second").await["id"].as_str().unwrap().to_owned();
    let uri = |m: &str| format!("/api/threads/{thread}/messages/{m}/");
    assert_eq!(patch(t, &uri(&m1), &alice, json!({"text": "first, edited"})).await, 200);
    assert_eq!(t.delete(&uri(&m2), &bob).await.status, 204);
    // Listing the messages reads them: bob's read receipt.
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &bob).await.status, 200);
    assert_eq!(t.unread(&alice).await, (0, 0));
    assert_eq!(t.unread(&bob).await, (0, 0));

    let want = [
        "message.created",
        "message.created",
        "message.deleted",
        "message.updated",
        "thread.created",
        "thread.read",
    ];
    let zeroed = |l: &Live| {
        l.of_type("unread.changed")
            .last()
            .is_some_and(|e| e["data"] == json!({"unread_count": 0, "threads": 0, "mentions": 0}))
    };
    wait_until(
        "six thread events and unread totals back to zero on every participant connection",
        || lives.iter().all(|l| l.of_thread(&thread).len() >= want.len() && zeroed(l)),
        || format!("{:?}", counts(&lives, &thread)),
    )
    .await;
    settle().await;

    let first = lives[0].of_thread(&thread);
    for live in &lives {
        let events = live.of_thread(&thread);
        assert_eq!(types(&events), want, "{}: {events:#?}", live.user.id);
        assert_no_duplicates(live, &events);
        assert_eq!(distinct(&events), distinct(&first), "the same events, by id, on every connection");
        for e in &events {
            assert_eq!(e["thread"], thread.as_str());
        }
    }
    let of = |kind: &str| first.iter().find(|e| e["type"] == kind).unwrap().clone();
    assert_eq!(of("thread.created")["data"]["thread"]["id"], thread.as_str());
    let created: Vec<&Value> = first.iter().filter(|e| e["type"] == "message.created").collect();
    let created_ids: HashSet<&str> =
        created.iter().map(|e| e["data"]["message"]["id"].as_str().unwrap()).collect();
    assert_eq!(created_ids, HashSet::from([m1.as_str(), m2.as_str()]));
    let updated = of("message.updated");
    assert_eq!(updated["data"]["message"]["id"], m1.as_str());
    assert_eq!(updated["data"]["message"]["text"], "first, edited");
    assert!(updated["data"]["message"]["edited"].is_string(), "{updated}");
    let deleted = of("message.deleted");
    assert_eq!(deleted["data"]["message"], m2.as_str());
    assert_eq!(deleted["data"]["sender"], bob.id.as_str());
    assert!(deleted["data"]["deleted"].is_string(), "{deleted}");
    let read = of("thread.read");
    assert_eq!(read["data"]["user"], bob.id.as_str());
    assert!([m1.as_str(), m2.as_str()].contains(&read["data"]["message"].as_str().unwrap()), "{read}");

    // Unread totals: each user's own, on each of their connections, once.
    let unread_ids = |user: &TestUser| -> Vec<Vec<String>> {
        lives.iter().filter(|l| l.user.id == user.id).map(|l| ids(&l.of_type("unread.changed"))).collect()
    };
    let (of_alice, of_bob) = (unread_ids(&alice), unread_ids(&bob));
    for per_user in [&of_alice, &of_bob] {
        assert_eq!(per_user.len(), 3);
        assert!(per_user[0].len() >= 2, "a message made them unread, and reading or a delete undid it");
        assert!(per_user.iter().all(|l| *l == per_user[0]), "{per_user:?}");
        assert_eq!(per_user[0].iter().collect::<HashSet<_>>().len(), per_user[0].len());
    }
    assert!(of_alice[0].iter().all(|id| !of_bob[0].contains(id)), "totals go to their user only");
    for live in &lives {
        assert!(live.of_type("unread.changed").iter().all(|e| e.get("thread").is_none()));
        let total = 6 + live.of_type("unread.changed").len();
        assert_eq!(live.events().len(), total, "nothing else: {:#?}", live.events());
    }

    assert!(outsider.events().is_empty(), "the outsider got {:#?}", outsider.events());
    let stats = s.gateway.stats();
    assert!(stats.posts_delivered >= 6 * 6 + 6 * 2, "{stats:?}");
    fanout_made_every_post(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_send_reaches_96_connections_of_32_participants_once_each() {
    let s = LiveStack::start(Faults::default()).await;
    let t = &s.t;
    let people = users(t, "p", 32).await;
    let started = Instant::now();
    let lives = s.connect_all(&people, 3).await;
    let connected = started.elapsed();
    assert_eq!(lives.len(), 96);
    assert_eq!(s.gateway.stats().open, 96);

    let others: Vec<&TestUser> = people[1..].iter().collect();
    let thread = t.thread(&people[0], &others).await;
    wait_until(
        "thread.created on all 96",
        || lives.iter().all(|l| !l.of_type("thread.created").is_empty()),
        || format!("{:?}", counts(&lives, &thread)),
    )
    .await;
    let sent_at = Instant::now();
    let message = t.say(&thread, &people[5], "to all of you").await["id"].as_str().unwrap().to_owned();
    let created = |l: &Live| l.of_type("message.created");
    wait_until(
        "message.created on all 96",
        || lives.iter().all(|l| !created(l).is_empty()),
        || format!("{} of 96", lives.iter().filter(|l| !created(l).is_empty()).count()),
    )
    .await;
    let delivered_in = sent_at.elapsed();
    settle().await;

    let mut event_ids = HashSet::new();
    for live in &lives {
        let got = created(live);
        assert_eq!(got.len(), 1, "{}: {got:#?}", live.connection);
        assert_eq!(got[0]["data"]["message"]["id"], message.as_str());
        assert_eq!(got[0]["thread"], thread.as_str());
        event_ids.insert(got[0]["id"].as_str().unwrap().to_owned());
        assert_eq!(live.of_type("thread.created").len(), 1);
    }
    assert_eq!(event_ids.len(), 1, "one event, the same id everywhere");
    let connections: HashSet<&str> = lives.iter().map(|l| l.connection.as_str()).collect();
    assert_eq!(connections.len(), 96);
    let stats = s.gateway.stats();
    assert!(stats.posts_delivered >= 2 * 96, "{stats:?}");
    eprintln!(
        "96 connections: opened in {connected:?}; one send reached all 96 in {delivered_in:?}; \
         gateway {stats:?}; fanout {:?}",
        s.fanout_totals()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participant_hears_the_thread_is_gone_and_nothing_more() {
    let s = LiveStack::start(Faults::default()).await;
    let t = &s.t;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let (a, mut b, c) = (s.connect(&alice).await, s.connect(&bob).await, s.connect(&carol).await);
    let thread = t.thread(&alice, &[&bob, &carol]).await;
    t.say(&thread, &alice, "before").await;
    wait_until(
        "carol hears of the thread and its first message",
        || c.of_type("message.created").len() == 1,
        || format!("{:#?}", c.events()),
    )
    .await;

    let uri = format!("/api/threads/{thread}/");
    assert_eq!(
        patch(t, &uri, &alice, json!({"participants": [alice.id.as_str(), bob.id.as_str()]})).await,
        200
    );
    wait_until(
        "thread.deleted for carol, thread.updated for the others",
        || {
            !c.of_type("thread.deleted").is_empty()
                && [&a, &b].iter().all(|l| !l.of_type("thread.updated").is_empty())
        },
        || format!("{:#?} {:#?}", c.events(), b.events()),
    )
    .await;
    let updated = &b.of_type("thread.updated")[0];
    let participants: HashSet<&str> = updated["data"]["thread"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(participants, HashSet::from([alice.id.as_str(), bob.id.as_str()]));
    let gone = &c.of_type("thread.deleted")[0];
    assert_eq!((&gone["thread"], &gone["data"]), (&json!(thread), &json!({})));
    assert_ne!(gone["id"], updated["id"]);
    assert_eq!(t.get(&uri, &carol).await.status, 404);

    for i in 0..3 {
        t.say(&thread, if i % 2 == 0 { &alice } else { &bob }, &format!("after {i}")).await;
    }
    b.send(json!({"action": "typing", "thread": thread})).await;
    wait_until(
        "the three later messages and the typing notice reach alice",
        || a.of_type("message.created").len() == 4 && !a.of_type("typing").is_empty(),
        || format!("{:#?}", a.events()),
    )
    .await;
    wait_until(
        "the later messages reach bob",
        || b.of_type("message.created").len() == 4,
        || format!("{:#?}", b.events()),
    )
    .await;
    settle().await;

    let about: Vec<String> =
        c.of_thread(&thread).iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(about, ["thread.created", "message.created", "thread.deleted"], "{:#?}", c.events());
    assert!(c.of_type("typing").is_empty() && c.of_type("message.created").len() == 1);
    // After the removal carol hears, at most, of her own totals.
    let after = c.events().into_iter().skip_while(|e| e["type"] != "thread.deleted").skip(1);
    assert!(after.clone().all(|e| e["type"] == "unread.changed"), "{:#?}", after.collect::<Vec<_>>());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_died_without_disconnect_is_forgotten_at_the_next_post() {
    let s = LiveStack::start(Faults::default()).await;
    let t = &s.t;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let a = s.connect(&alice).await;
    let mut dead = s.connect(&bob).await;
    let alive = s.connect(&bob).await;
    let thread = t.thread(&alice, &[&bob]).await;
    wait_until(
        "thread.created on all three",
        || [&a, &dead, &alive].iter().all(|l| l.of_thread(&thread).len() == 1),
        String::new,
    )
    .await;

    // The socket dies and its `$disconnect` is lost: the gateway forgets it, the table does not.
    s.lose_disconnect_of(&dead.connection);
    let before = s.gateway.stats();
    dead.kill();
    wait_until(
        "the gateway to close it",
        || s.gateway.stats().disconnects > before.disconnects,
        || format!("{:?}", s.gateway.stats()),
    )
    .await;
    assert_eq!(connection_records(t, &bob, &dead.connection).await, (true, true), "records left behind");
    assert_eq!(s.gateway.stats().gone, 0);
    // A minute old: past the grace in which a 410 may mean the handshake is still under way.
    backdate(t, &bob, &dead.connection, 60).await;

    let message = t.say(&thread, &alice, "still there?").await["id"].as_str().unwrap().to_owned();
    wait_until(
        "the message on the live connections",
        || [&a, &alive].iter().all(|l| l.of_type("message.created").len() == 1),
        || format!("{:#?}", alive.events()),
    )
    .await;
    assert_eq!(alive.of_type("message.created")[0]["data"]["message"]["id"], message.as_str());
    let deadline = Instant::now() + DEADLINE;
    while connection_records(t, &bob, &dead.connection).await != (false, false) {
        assert!(Instant::now() < deadline, "the dead connection's records were not deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = s.gateway.stats();
    assert!(stats.gone >= 1, "the post to it was answered 410: {stats:?}");
    assert!(s.fanout_totals().gone >= 1, "{:?}", s.fanout_totals());
    assert!(s.fanout_totals().failed_records == 0, "a gone connection fails nothing");
    wait_until(
        "bob's totals on his live connection",
        || alive.of_type("unread.changed").len() == 1,
        || format!("{:#?}", alive.events()),
    )
    .await;

    // Forgotten: the next event is not posted to it at all.
    let gone_before = s.gateway.stats().gone;
    t.say(&thread, &alice, "and again").await;
    wait_until("the second message", || alive.of_type("message.created").len() == 2, String::new).await;
    settle().await;
    assert_eq!(s.gateway.stats().gone, gone_before, "no more posts to the dead connection");
    let live_ids = t.app.store.connections_of(std::slice::from_ref(&bob.id), Timestamp::now()).await.unwrap();
    assert_eq!(live_ids.len(), 1);
    assert_eq!(live_ids[0].id.to_string(), alive.connection);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_still_connecting_is_kept_and_hears_what_follows() {
    let s = LiveStack::start(Faults::default()).await;
    let t = &s.t;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let a = s.connect(&alice).await;

    // Bob's `$connect` has recorded his connection, but the gateway has not finished the
    // handshake: the fan-out reads the connection and its posts are answered 410.
    let hold = s.hold_next_connect();
    let while_connecting = async {
        hold.recorded.notified().await;
        let thread = t.thread(&alice, &[&bob]).await;
        wait_until(
            "the fan-out to meet bob's connection while it connects",
            || s.fanout_totals().connecting >= 1 && !a.of_type("thread.created").is_empty(),
            || format!("{:?} {:?}", s.fanout_totals(), s.gateway.stats()),
        )
        .await;
        assert!(s.gateway.stats().gone >= 1, "posts were answered 410: {:?}", s.gateway.stats());
        hold.release.notify_one();
        thread
    };
    let (b, thread) = tokio::join!(s.connect(&bob), while_connecting);
    assert_eq!(s.fanout_totals().gone, 0, "nothing was forgotten: {:?}", s.fanout_totals());
    assert_eq!(connection_records(t, &bob, &b.connection).await, (true, true), "kept");

    let message = t.say(&thread, &alice, "are you there?").await["id"].as_str().unwrap().to_owned();
    wait_until(
        "the message on bob's connection",
        || b.of_type("message.created").len() == 1,
        || format!("{:#?} {:?}", b.events(), s.fanout_totals()),
    )
    .await;
    assert_eq!(b.of_type("message.created")[0]["data"]["message"]["id"], message.as_str());
    assert_eq!(s.fanout_totals().failed_records, 0, "a connecting connection fails no record");
    s.stop().await;
}

/// Per connection: (events received, distinct ids); panics if two copies of one id differ, or
/// one message came under two ids.
fn check_redeliveries(live: &Live) -> (usize, usize) {
    let events = live.events();
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for e in &events {
        let id = e["id"].as_str().unwrap();
        if let Some(earlier) = by_id.insert(id, e) {
            assert_eq!(earlier, e, "{}: a redelivery must be the same event", live.connection);
        }
    }
    let mut ids_of_message: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "message.created") {
        ids_of_message
            .entry(e["data"]["message"]["id"].as_str().unwrap())
            .or_default()
            .insert(e["id"].as_str().unwrap());
    }
    assert!(ids_of_message.values().all(|ids| ids.len() == 1), "{}: {ids_of_message:?}", live.connection);
    (events.len(), by_id.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_posts_failing_still_delivers_everything_and_duplicates_only_by_id() {
    let s = LiveStack::start(Faults { post_fault_rate: 0.2, seed: 10 }).await;
    let t = &s.t;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let people = [alice.clone(), bob.clone(), carol.clone()];
    let lives = s.connect_all(&people, 2).await;
    let thread = t.thread(&alice, &[&bob, &carol]).await;

    let started = Instant::now();
    let send = |sender: &TestUser, n: usize| {
        let (t, thread, sender) = (t, thread.clone(), sender.clone());
        async move {
            let mut sent = Vec::new();
            for i in 0..n {
                let text = format!("{} says {i}", sender.id);
                // Two senders race into one thread: a send that loses every transaction attempt
                // answers 503, and the client retries it.
                sent.push(t.say_retrying(&thread, &sender, &text).await["id"].as_str().unwrap().to_owned());
            }
            sent
        }
    };
    let (from_alice, from_bob) = tokio::join!(send(&alice, 15), send(&bob, 15));
    let sent: HashSet<String> = from_alice.into_iter().chain(from_bob).collect();
    assert_eq!(sent.len(), 30);
    let unread_of = [(alice.id.clone(), 15), (bob.id.clone(), 15), (carol.id.clone(), 30)];
    let finished = |l: &Live| {
        let got: HashSet<String> = l
            .of_type("message.created")
            .iter()
            .map(|e| e["data"]["message"]["id"].as_str().unwrap().to_owned())
            .collect();
        let want = unread_of.iter().find(|(u, _)| *u == l.user.id).unwrap().1;
        got == sent
            && !l.of_type("thread.created").is_empty()
            && l.of_type("unread.changed").iter().any(|e| e["data"]["unread_count"] == want)
    };
    wait_until(
        "all 30 messages and the final totals on all six connections",
        || lives.iter().all(finished),
        || {
            let per: Vec<usize> = lives.iter().map(|l| l.of_type("message.created").len()).collect();
            format!("message.created per connection {per:?}; gateway {:?}", s.gateway.stats())
        },
    )
    .await;
    let delivered_in = started.elapsed();
    settle().await;

    let mut received = 0;
    let mut duplicates = 0;
    for live in &lives {
        let created = live.of_type("message.created");
        assert_eq!(distinct(&created).len(), 30, "{}", live.connection);
        let (all, unique) = check_redeliveries(live);
        received += all;
        duplicates += all - unique;
    }
    // A user's two connections heard the same events.
    for user in &people {
        let mine: Vec<HashSet<String>> =
            lives.iter().filter(|l| l.user.id == user.id).map(|l| distinct(&l.events())).collect();
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[0], mine[1], "{}'s connections", user.id);
    }

    let gateway = s.gateway.stats();
    let fanout = s.fanout_totals();
    let stream = s.stream_stats();
    let faults = gateway.faults_throttled + gateway.faults_internal;
    eprintln!(
        "fault test (rate 0.2, seed 10): 30 messages from 2 senders, 3 participants x 2 connections; \
         all delivered in {delivered_in:?}; posts attempted {} = delivered {} + faults injected {} \
         ({} x 429, {} x 500); events received {received}, redelivered duplicates {duplicates}; \
         fanout: {} invocations, {} posts retried, {} posts failed after every attempt, \
         {} records reported failed; \
         stream: {} records matched, {} invocations, {} retries, {} records skipped",
        gateway.posts_delivered + faults,
        gateway.posts_delivered,
        faults,
        gateway.faults_throttled,
        gateway.faults_internal,
        fanout.invocations,
        faults - fanout.failed,
        fanout.failed,
        fanout.failed_records,
        stream.records_matched,
        stream.invocations,
        stream.retries,
        stream.records_skipped,
    );
    // 6 thread.created + 30 x 6 message.created + the final totals on 4 connections, at the
    // least: an append may take several messages along, so totals move once for several.
    assert!(gateway.posts_delivered >= 190, "{gateway:?}");
    assert!(faults >= 30, "faults were injected: {gateway:?}");
    assert!(gateway.faults_throttled >= 10 && gateway.faults_internal >= 10, "{gateway:?}");
    fanout_made_every_post(&s).await;
    assert_eq!(stream.records_skipped, 0, "no record ran out of retries");
    assert_eq!(gateway.gone, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_keeps_failing_does_not_keep_the_others_from_their_events() {
    let s = LiveStack::start(Faults::default()).await;
    let t = &s.t;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let a = s.connect(&alice).await;
    let stuck = s.connect(&bob).await;
    let b = s.connect(&bob).await;
    let thread = t.thread(&alice, &[&bob]).await;
    wait_until(
        "thread.created on all three",
        || [&a, &stuck, &b].iter().all(|l| l.of_thread(&thread).len() == 1),
        String::new,
    )
    .await;

    s.gateway.throttle_connection(&stuck.connection);
    let started = Instant::now();
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(t.say(&thread, &alice, &format!("message {i}")).await["id"].as_str().unwrap().to_owned());
    }
    let got = |l: &Live| -> HashSet<String> {
        l.of_type("message.created")
            .iter()
            .map(|e| e["data"]["message"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let want: HashSet<String> = sent.iter().cloned().collect();
    wait_until(
        "the first message on the others",
        || [&a, &b].iter().all(|l| got(l).contains(&sent[0])),
        || format!("{:?}", s.gateway.stats()),
    )
    .await;
    let first_in = started.elapsed();
    wait_until(
        "all three messages on the others",
        || [&a, &b].iter().all(|l| got(l) == want),
        || format!("{:?} {:?}", s.gateway.stats(), s.stream_stats()),
    )
    .await;
    let all_in = started.elapsed();
    // The stuck connection's records are retried until Lambda's retries run out, then dropped.
    wait_until(
        "the failing records' retries to run out",
        || s.stream_stats().records_skipped >= 1,
        || format!("{:?}", s.stream_stats()),
    )
    .await;
    let skipped_in = started.elapsed();
    settle().await;

    assert!(stuck.of_type("message.created").is_empty(), "{:#?}", stuck.events());
    for live in [&a, &b] {
        check_redeliveries(live);
        assert_eq!(distinct(&live.of_type("message.created")).len(), 3);
    }
    let gateway = s.gateway.stats();
    let stream = s.stream_stats();
    let fanout = s.fanout_totals();
    assert!(gateway.faults_throttled >= 6, "every attempt to the stuck connection failed: {gateway:?}");
    assert!(fanout.failed >= 1 && fanout.failed_records >= 1, "{fanout:?}");
    assert!(stream.retries >= 1, "the stream retried from the failed record: {stream:?}");
    let duplicates: usize = [&a, &b].iter().map(|l| l.events().len() - distinct(&l.events()).len()).sum();
    eprintln!(
        "stuck connection: first message on the others after {first_in:?}, all three after {all_in:?}, \
         retries ran out after {skipped_in:?}; {} posts throttled, {} delivered, {duplicates} redelivered \
         duplicates on the others; stream: {} invocations, {} retries, {} records skipped",
        gateway.faults_throttled,
        gateway.posts_delivered,
        stream.invocations,
        stream.retries,
        stream.records_skipped
    );
    s.stop().await;
}
