//! Mentions: a send's or an edit's `mentions`, participants only, shown in every representation;
//! each member's `unread_mentions` and the `mentions` total of `GET /api/unread_count/`.

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, TestUser};

async fn mention(t: &TestApp, thread: &str, from: &TestUser, text: &str, who: &[&TestUser]) -> Reply {
    let ids: Vec<&str> = who.iter().map(|u| u.id.as_str()).collect();
    t.post(&format!("/api/threads/{thread}/messages/"), from, json!({"text": text, "mentions": ids})).await
}

/// The member's unread mentions in the thread, and their total across threads.
async fn mentions(t: &TestApp, thread: &str, user: &TestUser) -> (u64, u64) {
    let view = t.get(&format!("/api/threads/{thread}/"), user).await.body;
    let totals = t.get("/api/unread_count/", user).await.body;
    (view["unread_mentions"].as_u64().unwrap(), totals["mentions"].as_u64().unwrap())
}

fn ids(message: &Value) -> Vec<String> {
    message["mentions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn mentions_are_shown_everywhere_and_counted_until_read() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let thread = t.thread(&alice, &[&bob, &carol]).await;
    let plain = t.say(&thread, &alice, "no one").await;
    assert_eq!(plain["mentions"], json!([]), "every representation carries mentions");

    let r = mention(&t, &thread, &alice, "@bob look", &[&bob, &bob]).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(ids(&r.body), [bob.id.as_str()], "each once");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(mentions(&t, &thread, &bob).await, (1, 1));
    assert_eq!(mentions(&t, &thread, &carol).await, (0, 0));
    assert_eq!(mentions(&t, &thread, &alice).await, (0, 0));

    let both = mention(&t, &thread, &alice, "@bob @carol @alice", &[&bob, &carol, &alice]).await;
    assert_eq!(both.status, 201, "{both:?}");
    assert_eq!(mentions(&t, &thread, &bob).await, (2, 2));
    assert_eq!(mentions(&t, &thread, &carol).await, (1, 1));
    assert_eq!(mentions(&t, &thread, &alice).await, (0, 0), "a sender has read their own");
    // A second thread adds to the total only.
    let other = t.thread(&carol, &[&bob]).await;
    assert_eq!(mention(&t, &other, &carol, "hey @bob", &[&bob]).await.status, 201);
    assert_eq!(mentions(&t, &thread, &bob).await, (2, 3));

    // Every representation shows them.
    let detail = t.get(&format!("/api/threads/{thread}/messages/{id}/"), &carol).await.body;
    assert_eq!(ids(&detail), [bob.id.as_str()]);
    let changes = t.get(&format!("/api/threads/{thread}/messages/?since=0"), &carol).await.body;
    assert!(
        changes["results"].as_array().unwrap().iter().any(|m| m["id"] == id.as_str() && ids(m).len() == 1)
    );
    let listed = t.get("/api/threads/", &carol).await.body;
    let shown = listed["results"].as_array().unwrap().iter().find(|v| v["id"] == thread.as_str()).unwrap();
    assert_eq!(ids(&shown["last_message"]).len(), 3);

    // Reading clears them.
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &bob).await.status, 200);
    assert_eq!(mentions(&t, &thread, &bob).await, (0, 1));
    assert_eq!(t.get(&format!("/api/threads/{other}/messages/"), &bob).await.status, 200);
    assert_eq!(mentions(&t, &thread, &bob).await, (0, 0));
}

#[tokio::test]
async fn only_participants_can_be_mentioned_and_a_refusal_changes_nothing() {
    let t = TestApp::spawn().await;
    let (alice, bob, dave) = (t.user("alice").await, t.user("bob").await, t.user("dave").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{thread}/messages/");
    t.say(&thread, &alice, "first").await;
    let count = t.get(&uri, &alice).await.body["count"].clone();
    let outsider = mention(&t, &thread, &alice, "@dave", &[&bob, &dave]).await;
    assert_eq!(outsider.status, 400, "{outsider:?}");
    assert_eq!(outsider.body, json!({"mentions": ["Only participants of this thread can be mentioned."]}));
    // An id no one has answers the same: nothing tells who exists.
    let nobody = t.post(&uri, &alice, json!({"text": "x", "mentions": ["nobody"]})).await;
    assert_eq!(nobody.body, outsider.body);
    for bad in [json!("bob"), json!([{"id": 1}]), json!([true]), json!(["not an id!"])] {
        let r = t.post(&uri, &alice, json!({"text": "x", "mentions": bad})).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.body["mentions"].is_array(), "{r:?}");
    }
    let many: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    assert_eq!(t.post(&uri, &alice, json!({"text": "x", "mentions": many})).await.status, 400);
    assert_eq!(t.get(&uri, &alice).await.body["count"], count, "nothing was sent");
    assert_eq!(mentions(&t, &thread, &bob).await, (0, 0));
    // `null` is no mentions.
    assert_eq!(t.post(&uri, &alice, json!({"text": "x", "mentions": null})).await.status, 201);
}

#[tokio::test]
async fn edits_deletes_and_leaving_move_unread_mentions() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let thread = t.thread(&alice, &[&bob, &carol]).await;
    let r = mention(&t, &thread, &alice, "@bob", &[&bob]).await;
    let path = format!("/api/threads/{thread}/messages/{}/", r.body["id"].as_str().unwrap());
    let edit = |body: Value| {
        let (t, path, token) = (&t, path.clone(), alice.token.clone());
        async move { t.call(Method::PATCH, &path, Some(&token), Some(body)).await }
    };
    assert_eq!(mentions(&t, &thread, &bob).await, (1, 1));

    // Taking bob out and putting carol in moves both.
    let e = edit(json!({"text": "@carol", "mentions": [carol.id.as_str()]})).await;
    assert_eq!(e.status, 200, "{e:?}");
    assert_eq!(ids(&e.body), [carol.id.as_str()]);
    assert_eq!(mentions(&t, &thread, &bob).await, (0, 0));
    assert_eq!(mentions(&t, &thread, &carol).await, (1, 1));
    // An edit without `mentions` keeps them; only the mentions changing is an edit too.
    let e = edit(json!({"text": "@carol again"})).await;
    assert_eq!(ids(&e.body), [carol.id.as_str()]);
    let e = edit(json!({"text": "@carol again", "mentions": [carol.id.as_str(), bob.id.as_str()]})).await;
    assert_eq!(e.status, 200);
    assert_eq!(mentions(&t, &thread, &bob).await, (1, 1));
    // An outsider is refused and nothing changes.
    let dave = t.user("dave").await;
    let refused = edit(json!({"text": "x", "mentions": [dave.id.as_str()]})).await;
    assert_eq!(refused.status, 400);
    assert_eq!(mentions(&t, &thread, &bob).await, (1, 1));
    assert_eq!(t.get(&path, &bob).await.body["text"], "@carol again");

    // Someone who has read it gets no unread mention from an edit.
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &bob).await.status, 200);
    assert_eq!(mentions(&t, &thread, &bob).await, (0, 0));
    edit(json!({"text": "@bob only", "mentions": [bob.id.as_str()]})).await;
    assert_eq!(mentions(&t, &thread, &bob).await, (0, 0));
    assert_eq!(mentions(&t, &thread, &carol).await, (0, 0), "carol is no longer mentioned");

    // A delete takes the unread mention away; leaving takes the thread's out of the total.
    let again = mention(&t, &thread, &alice, "@carol", &[&carol]).await;
    let second = mention(&t, &thread, &alice, "@carol @bob", &[&carol, &bob]).await;
    assert_eq!(mentions(&t, &thread, &carol).await, (2, 2));
    let gone = format!("/api/threads/{thread}/messages/{}/", again.body["id"].as_str().unwrap());
    assert_eq!(t.delete(&gone, &alice).await.status, 204);
    assert_eq!(mentions(&t, &thread, &carol).await, (1, 1));
    assert_eq!(mentions(&t, &thread, &bob).await, (1, 1));
    let left = t.post(&format!("/api/threads/{thread}/leave/"), &carol, json!({})).await;
    assert!([200, 204].contains(&left.status), "{left:?}");
    assert_eq!(t.get("/api/unread_count/", &carol).await.body["mentions"], 0);
    // A mention of someone who has left stays on the message, and edits may keep it.
    let path2 = format!("/api/threads/{thread}/messages/{}/", second.body["id"].as_str().unwrap());
    let kept = t
        .call(
            Method::PATCH,
            &path2,
            Some(&alice.token),
            Some(json!({"text": "kept", "mentions": [carol.id.as_str(), bob.id.as_str()]})),
        )
        .await;
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(mentions(&t, &thread, &bob).await, (1, 1));
}
