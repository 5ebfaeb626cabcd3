//! A member's own view of a thread: mute (until a time, or until unmuted) and archive, through
//! `PATCH /api/threads/{id}/me/`; only the caller's view and totals change.

use std::time::Duration;

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, TestUser};

async fn change(t: &TestApp, thread: &str, user: &TestUser, body: Value) -> Reply {
    t.call(Method::PATCH, &format!("/api/threads/{thread}/me/"), Some(&user.token), Some(body)).await
}

/// `(unread_count, threads, mentions)` of `GET /api/unread_count/`.
async fn totals(t: &TestApp, user: &TestUser) -> (u64, u64, u64) {
    let b = t.get("/api/unread_count/", user).await.body;
    (b["unread_count"].as_u64().unwrap(), b["threads"].as_u64().unwrap(), b["mentions"].as_u64().unwrap())
}

/// The ids of the threads the user's list shows (`?archived=true`: the archived ones), and its count.
async fn listed(t: &TestApp, user: &TestUser, archived: bool) -> (Vec<String>, u64) {
    let uri = if archived { "/api/threads/?archived=true" } else { "/api/threads/" };
    let body = t.get(uri, user).await.body;
    let ids =
        body["results"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect();
    (ids, body["count"].as_u64().unwrap())
}

#[tokio::test]
async fn a_muted_thread_keeps_its_counts_but_leaves_the_totals_until_unmuted() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let quiet = t.thread(&alice, &[&bob]).await;
    let busy = t.thread(&bob, &[&alice, &t.user("carol").await]).await;
    t.say(&quiet, &alice, "one").await;
    let r = change(&t, &quiet, &bob, json!({"muted": true})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["muted"].clone(), r.body["muted_until"].clone()), (json!(true), Value::Null));
    assert_eq!(r.body["unread_count"], 1, "the thread keeps its own count");
    assert_eq!(totals(&t, &bob).await, (0, 0, 0), "the totals leave it out");
    // More while muted, with a mention: the thread counts them, the totals do not.
    let ids = json!([bob.id.as_str()]);
    t.post(&format!("/api/threads/{quiet}/messages/"), &alice, json!({"text": "@bob", "mentions": ids}))
        .await;
    t.say(&busy, &alice, "elsewhere").await;
    let view = t.get(&format!("/api/threads/{quiet}/"), &bob).await.body;
    assert_eq!((view["unread_count"].clone(), view["unread_mentions"].clone()), (json!(2), json!(1)));
    assert_eq!(totals(&t, &bob).await, (1, 1, 0));
    // Only bob's view is muted.
    assert_eq!(t.get(&format!("/api/threads/{quiet}/"), &alice).await.body["muted"], false);
    // Unmuted: the thread's counts come back into the totals, exactly.
    let r = change(&t, &quiet, &bob, json!({"muted": false})).await;
    assert_eq!(r.body["muted"], false);
    assert_eq!(totals(&t, &bob).await, (3, 2, 1));
    // Reading it while muted, then unmuting, leaves nothing behind.
    change(&t, &quiet, &bob, json!({"muted": true})).await;
    t.get(&format!("/api/threads/{quiet}/messages/"), &bob).await;
    assert_eq!(totals(&t, &bob).await, (1, 1, 0));
    change(&t, &quiet, &bob, json!({"muted": false})).await;
    assert_eq!(totals(&t, &bob).await, (1, 1, 0));
}

#[tokio::test]
async fn a_mute_with_an_end_ends_by_itself() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let thread = t.thread(&alice, &[&bob]).await;
    t.say(&thread, &alice, "one").await;
    let end = shared::domain::timestamp::Timestamp::now().plus_seconds(2);
    let r = change(&t, &thread, &bob, json!({"muted_until": end.to_string()})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["muted"].clone(), r.body["muted_until"].clone()),
        (json!(true), json!(end.to_string()))
    );
    t.say(&thread, &alice, "two").await;
    assert_eq!(totals(&t, &bob).await, (0, 0, 0));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // No write happened at the end: the totals count the thread again, as it is now.
    assert_eq!(totals(&t, &bob).await, (2, 1, 0));
    let view = t.get(&format!("/api/threads/{thread}/"), &bob).await.body;
    assert_eq!((view["muted"].clone(), view["muted_until"].clone()), (json!(false), Value::Null));
    // A read after the end counts as any other.
    t.get(&format!("/api/threads/{thread}/messages/"), &bob).await;
    assert_eq!(totals(&t, &bob).await, (0, 0, 0));
}

#[tokio::test]
async fn archived_threads_leave_the_list_and_come_back_on_a_new_message_unless_muted() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let first = t.thread(&alice, &[&bob]).await;
    let second = t.thread(&alice, &[&carol]).await;
    let r = change(&t, &first, &alice, json!({"archived": true})).await;
    assert_eq!((r.status, r.body["archived"].clone()), (200, json!(true)));
    assert_eq!(listed(&t, &alice, false).await, (vec![second.clone()], 1));
    assert_eq!(listed(&t, &alice, true).await, (vec![first.clone()], 1));
    assert_eq!(listed(&t, &bob, false).await.1, 1, "bob's view is his own");
    // A new message brings it back, for the sender too.
    t.say(&first, &bob, "back?").await;
    assert_eq!(listed(&t, &alice, true).await, (vec![], 0));
    assert_eq!(listed(&t, &alice, false).await, (vec![first.clone(), second.clone()], 2));
    assert_eq!(t.get(&format!("/api/threads/{first}/"), &alice).await.body["archived"], false);
    // Archived and muted, it stays archived.
    change(&t, &first, &alice, json!({"archived": true, "muted": true})).await;
    t.say(&first, &bob, "still there").await;
    assert_eq!(listed(&t, &alice, true).await, (vec![first.clone()], 1));
    // Reactions are no new message.
    change(&t, &second, &alice, json!({"archived": true})).await;
    let m = t.say(&second, &alice, "x").await;
    change(&t, &second, &alice, json!({"archived": true})).await;
    let thumbs =
        format!("/api/threads/{second}/messages/{}/reactions/%F0%9F%91%8D/", m["id"].as_str().unwrap());
    assert_eq!(t.call(Method::PUT, &thumbs, Some(&carol.token), None).await.status, 200);
    assert_eq!(listed(&t, &alice, true).await.1, 2);
    // Leaving an archived thread takes it out of the count.
    assert_eq!(t.delete(&format!("/api/threads/{second}/"), &alice).await.status, 204);
    assert_eq!(listed(&t, &alice, true).await, (vec![first.clone()], 1));
}

#[tokio::test]
async fn bad_changes_are_refused_and_strangers_find_nothing() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let past = shared::domain::timestamp::Timestamp::now().plus_seconds(-60).to_string();
    let far = shared::domain::timestamp::Timestamp::now().plus_seconds(400 * 24 * 3600).to_string();
    for body in [
        json!({"muted_until": past}),
        json!({"muted_until": far}),
        json!({"muted_until": "tomorrow"}),
        json!({"muted": "maybe"}),
        json!({"muted": null}),
        json!({"archived": 2}),
        json!({"muted": false, "muted_until": shared::domain::timestamp::Timestamp::now().plus_seconds(60).to_string()}),
        json!({"pinned": true}),
    ] {
        let r = change(&t, &thread, &bob, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }
    let view = t.get(&format!("/api/threads/{thread}/me/"), &bob).await;
    assert_eq!(
        (view.status, view.body["muted"].clone(), view.body["archived"].clone()),
        (200, json!(false), json!(false))
    );
    // A stranger gets the 404 of a thread that does not exist, for reading and changing alike.
    let missing = change(&t, "no-such-thread", &eve, json!({"muted": true})).await;
    let stranger = change(&t, &thread, &eve, json!({"muted": true})).await;
    assert_eq!((stranger.status, &stranger.body), (404, &missing.body));
    assert_eq!(t.get(&format!("/api/threads/{thread}/me/"), &eve).await.status, 404);
    // The representation echoed back is accepted and changes nothing else.
    let echoed = t.get(&format!("/api/threads/{thread}/"), &bob).await.body;
    let mut body = echoed.clone();
    body["archived"] = json!(true);
    let r = change(&t, &thread, &bob, body).await;
    assert_eq!(
        (r.status, r.body["archived"].clone(), r.body["participants"].clone()),
        (200, json!(true), echoed["participants"].clone())
    );
    assert_eq!(t.get("/api/threads/?archived=maybe", &bob).await.status, 400);
}
