use serde_json::json;
use shared::domain::ids::Seq;

use crate::helpers::{TestApp, path_of};

#[tokio::test]
async fn send_validates_text_and_changes_nothing_on_error() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let cases = [
        (json!({}), json!({"text": ["This field is required."]})),
        (json!({"text": null}), json!({"text": ["This field may not be null."]})),
        (json!({"text": "   "}), json!({"text": ["This field may not be blank."]})),
        (json!({"text": ["x"]}), json!({"text": ["Not a valid string."]})),
        (
            json!({"text": "x".repeat(10_001)}),
            json!({"text": ["Ensure this field has no more than 10000 characters."]}),
        ),
    ];
    for (body, expected) in cases {
        let r = t.post(&uri, &alice, body).await;
        assert_eq!((r.status, &r.body), (400, &expected));
    }
    let ok = t.post(&uri, &alice, json!({"text": "é".repeat(10_000), "sender": bob.id.as_str()})).await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.body["sender"], alice.id.as_str(), "read-only fields in input are ignored");
    assert_eq!(t.get(&uri, &alice).await.body["count"], 1);
}

#[tokio::test]
async fn sending_counts_unread_for_others_only() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob, &carol]).await;
    let before = t.get(&format!("/api/threads/{id}/"), &alice).await.body["updated"].clone();
    let m = t.say(&id, &alice, "hello").await;
    assert_eq!(m["thread"], id.as_str());
    assert_eq!(m["sender"], alice.id.as_str());
    assert_eq!(m["text"], "hello");
    assert_eq!(m["id"], format!("{id}.1"));
    t.say(&id, &bob, "hi").await;
    assert_eq!(t.thread_unread(&id, &alice).await, 1);
    assert_eq!(t.thread_unread(&id, &bob).await, 1);
    assert_eq!(t.thread_unread(&id, &carol).await, 2);
    assert_eq!(t.unread(&carol).await, (2, 1));
    let thread = t.get(&format!("/api/threads/{id}/"), &carol).await.body;
    assert_eq!(thread["unread_count"], 2);
    assert_eq!(thread["last_message"]["text"], "hi");
    assert!(thread["updated"].as_str().unwrap() > before.as_str().unwrap());
    // Timestamps are RFC 3339 UTC with microseconds.
    let created = m["created"].as_str().unwrap();
    assert_eq!(created.len(), "2026-11-24T00:25:28.952000Z".len());
    assert!(created.ends_with('Z'));
}

#[tokio::test]
async fn listing_is_newest_first_and_marks_read_up_to_the_newest_returned() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    for i in 1..=5 {
        t.say(&id, &alice, &format!("m{i}")).await;
    }
    assert_eq!(t.thread_unread(&id, &bob).await, 5);

    let page = t.get(&format!("/api/threads/{id}/messages/?limit=2"), &bob).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["count"], 5);
    let texts: Vec<&str> =
        page.body["results"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["m5", "m4"]);
    assert_eq!(t.thread_unread(&id, &bob).await, 0);
    assert_eq!(t.thread_unread(&id, &alice).await, 0);

    // Older pages do not move the marker back.
    let older = t.get(&path_of(&page.body["next"]), &bob).await;
    let texts: Vec<&str> =
        older.body["results"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["m3", "m2"]);
    assert_eq!(t.thread_unread(&id, &bob).await, 0);
    let last = t.get(&path_of(&older.body["next"]), &bob).await;
    assert_eq!(last.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(last.body["next"], json!(null));
    let back = t.get(&path_of(&last.body["previous"]), &bob).await;
    let texts: Vec<&str> =
        back.body["results"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["m3", "m2"]);
}

#[tokio::test]
async fn partial_read_markers_count_only_others_messages_after_them() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    // seq: 1 alice, 2 bob, 3 alice, 4 bob, 5 alice
    for (i, who) in [&alice, &bob, &alice, &bob, &alice].iter().enumerate() {
        t.say(&id, who, &format!("m{}", i + 1)).await;
    }
    assert_eq!(t.thread_unread(&id, &bob).await, 3);
    let thread = id.parse().unwrap();
    let m = t.app.store.membership(&bob.id, &thread).await.unwrap().unwrap();
    t.app.store.mark_read(m, Seq(3)).await.unwrap();
    // Unread for bob: alice's m5 only (his own m4 never counts).
    assert_eq!(t.thread_unread(&id, &bob).await, 1);
    assert_eq!(t.unread(&bob).await, (1, 1));
    // Moving the marker back is a no-op.
    let m = t.app.store.membership(&bob.id, &thread).await.unwrap().unwrap();
    t.app.store.mark_read(m, Seq(1)).await.unwrap();
    assert_eq!(t.thread_unread(&id, &bob).await, 1);
}

#[tokio::test]
async fn message_detail_lists_readers_with_first_read_time() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob, &carol]).await;
    let first = t.say(&id, &alice, "first").await;
    let mid = first["id"].as_str().unwrap();
    let uri = format!("/api/threads/{id}/messages/{mid}/");

    let r = t.get(&uri, &bob).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["text"], "first");
    assert_eq!(r.body["read_by"], json!([{"user": alice.id.as_str(), "read_at": first["created"]}]));

    t.get(&format!("/api/threads/{id}/messages/"), &bob).await;
    let read = t.get(&uri, &carol).await.body["read_by"].clone();
    assert_eq!(read.as_array().unwrap().len(), 2);
    assert_eq!(read[1]["user"], bob.id.as_str());
    let first_read = read[1]["read_at"].clone();

    // Reading again later does not change when bob first read it.
    t.say(&id, &carol, "second").await;
    t.get(&format!("/api/threads/{id}/messages/"), &bob).await;
    let read = t.get(&uri, &alice).await.body["read_by"].clone();
    assert_eq!(read[1]["read_at"], first_read);
    assert_eq!(read.as_array().unwrap().len(), 2, "sending is not reading: carol never listed");
}

#[tokio::test]
async fn unread_totals_span_threads() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let one = t.thread(&bob, &[&alice]).await;
    let two = t.thread(&carol, &[&alice]).await;
    t.say(&one, &bob, "a").await;
    t.say(&one, &bob, "b").await;
    t.say(&two, &carol, "c").await;
    assert_eq!(t.unread(&alice).await, (3, 2));
    t.get(&format!("/api/threads/{one}/messages/"), &alice).await;
    assert_eq!(t.unread(&alice).await, (1, 1));
    t.get(&format!("/api/threads/{two}/messages/"), &alice).await;
    assert_eq!(t.unread(&alice).await, (0, 0));
}

#[tokio::test]
async fn counts_stay_exact_under_concurrent_sends_and_reads() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob, &carol]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let sender = |user: &crate::helpers::TestUser, n: usize| {
        let (t, id, user) = (&t, id.clone(), user.clone());
        async move {
            // A send that loses too many races answers 503; a client retries it with its
            // client_id, which makes the retry return the original if the first one landed.
            for i in 0..n {
                t.say_retrying(&id, &user, &format!("{} {i}", user.id)).await;
            }
        }
    };
    let reader = |user: &crate::helpers::TestUser| {
        let (t, uri, user) = (&t, uri.clone(), user.clone());
        async move {
            // The page is the answer: a read whose marker could not move (the sends keep
            // moving the thread under it) still answers, and the marker moves on a later read.
            for _ in 0..10 {
                let status = t.get(&uri, &user).await.status;
                assert_eq!(status, 200, "a read never fails because its marker could not move");
                let status = t.get(&format!("{uri}?since=0"), &user).await.status;
                assert_eq!(status, 200, "nor a catch-up");
            }
        }
    };
    tokio::join!(sender(&alice, 8), sender(&bob, 8), reader(&carol), reader(&bob));

    // Every message is there once, in one order, numbered 1..=16.
    let all = t.get(&format!("{uri}?limit=100"), &alice).await.body;
    assert_eq!(all["count"], 16);
    let seqs: Vec<String> =
        all["results"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (1..=16).rev().map(|n| format!("{id}.{n}")).collect();
    assert_eq!(seqs, expected);

    // Alice just read everything; bob and carol's counts equal what they have not yet seen.
    assert_eq!(t.thread_unread(&id, &alice).await, 0);
    for user in [&bob, &carol] {
        let thread = id.parse().unwrap();
        let m = t.app.store.membership(&user.id, &thread).await.unwrap().unwrap();
        let mut unseen = 0;
        for msg in all["results"].as_array().unwrap() {
            let seq: u64 = msg["id"].as_str().unwrap().rsplit_once('.').unwrap().1.parse().unwrap();
            if seq > m.read_seq.0 && msg["sender"] != user.id.as_str() {
                unseen += 1;
            }
        }
        assert_eq!(m.unread, unseen, "{}", user.id);
        assert_eq!(t.unread(user).await, (unseen, u64::from(unseen > 0)));
        t.get(&uri, user).await;
        assert_eq!(t.unread(user).await, (0, 0));
    }
}
