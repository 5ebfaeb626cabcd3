//! Every frame a live test's gateway sent a client, checked against `docs/events.schema.json`:
//! `LiveStack::stop` checks its own, and the test here makes every kind of event at least once
//! and proves the check saw them all (a check that saw nothing would pass anything).

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::event_schema::VALIDATOR;
use crate::event_schema::check_frames;
use crate::live_stack::{LiveStack, wait_until};

#[test]
fn the_schema_refuses_what_it_should() {
    let thread = json!({
        "id": "t1", "participants": ["a", "b"], "owner": "a",
        "created": "2026-01-02T03:04:05.000000Z", "updated": "2026-01-02T03:04:05.000000Z",
        "last_message": null,
    });
    let event = |data: Value| json!({"id": "e1", "type": "thread.updated", "thread": "t1", "data": data});
    assert!(VALIDATOR.is_valid(&event(json!({"thread": thread}))));
    let mut stored = thread.clone();
    stored["message_count"] = json!(2);
    stored["version"] = json!(3);
    assert!(!VALIDATOR.is_valid(&event(json!({"thread": stored}))), "the stored item is not the thread");
    let mut per_recipient = thread.clone();
    per_recipient["unread_count"] = json!(2);
    assert!(!VALIDATOR.is_valid(&event(json!({"thread": per_recipient}))), "no unread_count");
    assert!(
        !VALIDATOR.is_valid(&json!({"id": "e1", "type": "thread.updated", "data": {"thread": thread}})),
        "a thread event names its thread"
    );
    assert!(
        !VALIDATOR.is_valid(
            &json!({"id": "e", "type": "unread.changed", "data": {"unread_count": -1, "threads": 0}})
        )
    );
    assert!(!VALIDATOR.is_valid(&json!({"id": "e", "type": "nonsense", "data": {}})));
    assert!(VALIDATOR.is_valid(&json!({"type": "pong"})));
}

/// Every kind of event, through the real handlers: the schema check sees each at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_matches_the_schema() {
    let s = LiveStack::start(Default::default()).await;
    let t = &s.t;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let mut a = s.connect(&alice).await;
    let b = s.connect(&bob).await;
    let c = s.connect(&carol).await;

    let thread = t.thread(&alice, &[&bob, &carol]).await;
    let m1 = t.say(&thread, &alice, "first").await["id"].as_str().unwrap().to_owned();
    let m2 = t.say(&thread, &bob, "second").await["id"].as_str().unwrap().to_owned();
    let uri = |m: &str| format!("/api/threads/{thread}/messages/{m}/");
    let r = t.call(Method::PATCH, &uri(&m1), Some(&alice.token), Some(json!({"text": "edited"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(t.delete(&uri(&m2), &bob).await.status, 204);
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &carol).await.status, 200);
    // An ownership hand-over, then carol's removal.
    let thread_uri = format!("/api/threads/{thread}/");
    let r =
        t.call(Method::PATCH, &thread_uri, Some(&alice.token), Some(json!({"owner": bob.id.as_str()}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let everyone_but_carol = json!({"participants": [alice.id.as_str(), bob.id.as_str()]});
    let r = t.call(Method::PATCH, &thread_uri, Some(&bob.token), Some(everyone_but_carol)).await;
    assert_eq!(r.status, 200, "{r:?}");
    // alice mutes the thread until a time, on one device: her other devices hear it.
    let end = shared::domain::timestamp::Timestamp::now().plus_seconds(600).to_string();
    let me = format!("/api/threads/{thread}/me/");
    let r = t
        .call(Method::PATCH, &me, Some(&alice.token), Some(json!({"muted_until": end, "archived": true})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    a.send(json!({"action": "typing", "thread": thread})).await;
    a.send(json!({"action": "ping"})).await;
    a.send(json!({"action": "dance"})).await;
    let other = t.thread(&bob, &[&carol]).await;
    assert_eq!(t.delete(&format!("/api/threads/{other}/"), &bob).await.status, 204);
    shared::accounts::set_password(&t.app.store, &carol.id, "a new password").await.unwrap();

    let want = [
        "message.created",
        "message.updated",
        "message.deleted",
        "thread.read",
        "thread.created",
        "thread.updated",
        "thread.deleted",
        "unread.changed",
        "member.updated",
        "typing",
        "connection.closed",
        "pong",
        "error",
    ];
    let seen = || check_frames(&s.gateway.recorded_frames());
    wait_until(
        "every kind of frame",
        || {
            let kinds = seen();
            want.iter().all(|k| kinds.contains_key(*k))
        },
        || format!("{:?}; alice {:#?} bob {:#?} carol {:#?}", seen(), a.events(), b.events(), c.events()),
    )
    .await;
    let kinds = seen();
    // Each participant's connection got the thread's events: at least one per connection.
    for kind in ["thread.created", "message.created", "message.updated", "message.deleted", "thread.read"] {
        assert!(kinds[kind] >= 3, "{kind}: {kinds:?}");
    }
    assert!(kinds["thread.updated"] >= 2 && kinds["thread.deleted"] >= 2, "{kinds:?}");
    let updated = b.of_type("thread.updated");
    assert!(
        updated.iter().any(|e| e["data"]["thread"]["owner"] == bob.id.as_str()),
        "the hand-over reached bob: {updated:#?}"
    );
    assert!(updated.iter().all(|e| e["data"]["thread"].get("unread_count").is_none()));
    let mine = a.of_type("member.updated");
    assert!(
        mine.iter().any(|e| e["data"]["muted"] == true
            && e["data"]["archived"] == true
            && e["thread"] == thread.as_str()),
        "alice's change reached her: {mine:#?}"
    );
    assert!(b.of_type("member.updated").is_empty(), "nobody else hears of it");
    eprintln!("frames checked against docs/events.schema.json, by type: {kinds:?}");
    s.stop().await;
}
