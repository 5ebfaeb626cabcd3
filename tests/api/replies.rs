//! Replies: a send's `reply_to`, shown in every representation as the answered message is now.

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

async fn reply(t: &TestApp, thread: &str, user: &TestUser, text: &str, to: &str) -> crate::helpers::Reply {
    t.post(&format!("/api/threads/{thread}/messages/"), user, json!({"text": text, "reply_to": to})).await
}

fn preview(message: &Value) -> (String, String, bool, bool) {
    let r = &message["reply_to"];
    (
        r["id"].as_str().unwrap().to_owned(),
        r["text"].as_str().unwrap().to_owned(),
        r["edited"].is_string(),
        r["deleted"].as_bool().unwrap(),
    )
}

#[tokio::test]
async fn a_reply_shows_the_message_it_answers_as_it_is_now() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let original =
        t.say(&thread, &alice, &"long question ".repeat(30)).await["id"].as_str().unwrap().to_owned();
    let plain = t.say(&thread, &alice, "plain").await;
    assert_eq!(plain["reply_to"], Value::Null, "every representation carries reply_to");

    let r = reply(&t, &thread, &bob, "the answer", &original).await;
    assert_eq!(r.status, 201, "{r:?}");
    let answer = r.body["id"].as_str().unwrap().to_owned();
    let (id, text, edited, deleted) = preview(&r.body);
    assert_eq!((id.as_str(), text.chars().count(), edited, deleted), (original.as_str(), 200, false, false));
    assert_eq!(r.body["reply_to"]["sender"], alice.id.as_str());

    // Edited: every representation of the reply shows the new text.
    let edit = t
        .call(
            Method::PATCH,
            &format!("/api/threads/{thread}/messages/{original}/"),
            Some(&alice.token),
            Some(json!({"text": "short question"})),
        )
        .await;
    assert_eq!(edit.status, 200);
    let listed = t.get(&format!("/api/threads/{thread}/messages/"), &bob).await.body;
    let shown =
        listed["results"].as_array().unwrap().iter().find(|m| m["id"] == answer.as_str()).unwrap().clone();
    assert_eq!(preview(&shown), (original.clone(), "short question".into(), true, false));
    let detail = t.get(&format!("/api/threads/{thread}/messages/{answer}/"), &alice).await.body;
    assert_eq!(preview(&detail).1, "short question");
    let view = t.get(&format!("/api/threads/{thread}/"), &alice).await.body;
    assert_eq!(preview(&view["last_message"]).1, "short question", "the thread's last message is the reply");

    // Deleted: the reply stays and says so, without the text.
    assert_eq!(t.delete(&format!("/api/threads/{thread}/messages/{original}/"), &alice).await.status, 204);
    let detail = t.get(&format!("/api/threads/{thread}/messages/{answer}/"), &bob).await.body;
    assert_eq!(preview(&detail), (original.clone(), String::new(), false, true));
    let changes = t.get(&format!("/api/threads/{thread}/messages/?since=0"), &bob).await.body;
    let shown =
        changes["results"].as_array().unwrap().iter().find(|m| m["id"] == answer.as_str()).unwrap().clone();
    assert!(preview(&shown).3, "catch-up shows it as it is now");

    // A reply to a deleted message, or one of another thread, is refused and writes nothing.
    let count = t.get(&format!("/api/threads/{thread}/messages/"), &alice).await.body["count"].clone();
    let refused = reply(&t, &thread, &bob, "too late", &original).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body["reply_to"].is_array());
    let other = t.thread(&alice, &[&t.user("carol").await]).await;
    let elsewhere = t.say(&other, &alice, "elsewhere").await["id"].as_str().unwrap().to_owned();
    assert_eq!(reply(&t, &thread, &bob, "no", &elsewhere).await.status, 400, "of another thread");
    assert_eq!(reply(&t, &thread, &bob, "no", &format!("{thread}.999")).await.status, 400, "not there");
    assert_eq!(reply(&t, &thread, &bob, "no", "nonsense").await.status, 400);
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &alice).await.body["count"], count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_racing_the_delete_of_what_they_answer_end_consistent() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let thread = t.thread(&alice, &[&bob, &carol]).await;
    for round in 0..10 {
        let original =
            t.say(&thread, &alice, &format!("question {round}")).await["id"].as_str().unwrap().to_owned();
        let uri = format!("/api/threads/{thread}/messages/{original}/");
        let (a, b, deleted) = tokio::join!(
            reply(&t, &thread, &bob, "bob answers", &original),
            reply(&t, &thread, &carol, "carol answers", &original),
            t.delete(&uri, &alice),
        );
        assert_eq!(deleted.status, 204);
        // Each reply either landed before the delete (and shows it deleted now) or was refused.
        for r in [&a, &b] {
            match r.status {
                201 => {
                    let id = r.body["id"].as_str().unwrap();
                    let now = t.get(&format!("/api/threads/{thread}/messages/{id}/"), &alice).await.body;
                    assert!(preview(&now).3, "a reply that landed shows the answered message deleted: {now}");
                }
                400 => {}
                other => panic!("{other}: {r:?}"),
            }
        }
    }
    // Every count is exact: the messages listed and each member's unread.
    let listed = t.get(&format!("/api/threads/{thread}/messages/?limit=100"), &alice).await.body;
    let from_others = listed["results"].as_array().unwrap().len() as u64;
    assert_eq!(t.thread_unread(&thread, &alice).await, 0, "alice just read everything");
    assert!(from_others <= 30);
}
