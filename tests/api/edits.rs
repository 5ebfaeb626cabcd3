//! Editing and deleting messages: who may, what every representation shows afterwards, and
//! counts that stay exact.

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

async fn patch(t: &TestApp, uri: &str, user: &TestUser, body: Value) -> crate::helpers::Reply {
    t.call(Method::PATCH, uri, Some(&user.token), Some(body)).await
}

#[tokio::test]
async fn the_sender_edits_and_every_representation_shows_it() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let id = t.thread(&alice, &[&bob]).await;
    let first = t.say(&id, &alice, "first").await;
    assert_eq!(first["edited"], Value::Null, "a new message says it was never edited");
    let last = t.say(&id, &alice, "lsat").await;
    let uri = format!("/api/threads/{id}/messages/{}/", last["id"].as_str().unwrap());

    let r = patch(&t, &uri, &alice, json!({"text": "last", "sender": bob.id.as_str(), "edited": null})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["text"].as_str(), &r.body["id"]), (Some("last"), &last["id"]));
    assert_eq!(r.body["sender"], alice.id.as_str(), "read-only fields are ignored");
    assert!(r.body["edited"].is_string());
    assert_eq!(r.body["created"], last["created"]);

    // Detail, list and the thread's last message (for both members) show the new text.
    let detail = t.get(&uri, &bob).await;
    assert_eq!((detail.body["text"].as_str(), &detail.body["edited"]), (Some("last"), &r.body["edited"]));
    let list = t.get(&format!("/api/threads/{id}/messages/"), &bob).await.body;
    assert_eq!(list["results"][0]["text"], "last");
    assert_eq!(list["results"][1]["edited"], Value::Null);
    for u in [&alice, &bob] {
        let thread = t.get(&format!("/api/threads/{id}/"), u).await.body;
        assert_eq!(thread["last_message"]["text"], "last");
        assert_eq!(thread["last_message"]["edited"], r.body["edited"]);
        let listed = t.get("/api/threads/", u).await.body;
        assert_eq!(listed["results"][0]["last_message"]["text"], "last");
    }
    // An edit of an older message leaves the last message alone; PUT edits like PATCH.
    let first_uri = format!("/api/threads/{id}/messages/{}/", first["id"].as_str().unwrap());
    let r = t.call(Method::PUT, &first_uri, Some(&alice.token), Some(json!({"text": "1st"}))).await;
    assert_eq!((r.status, r.body["text"].as_str()), (200, Some("1st")));
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &bob).await.body["last_message"]["text"], "last");
    // Editing does not count as a new message for anyone.
    assert_eq!(t.unread(&bob).await, (0, 0));
    assert_eq!(t.get(&format!("/api/threads/{id}/messages/"), &alice).await.body["count"], 2);

    // Another participant may not; a stranger sees nothing; bad input changes nothing.
    assert_eq!(patch(&t, &uri, &bob, json!({"text": "mine now"})).await.status, 403);
    assert_eq!(patch(&t, &uri, &eve, json!({"text": "x"})).await.status, 404);
    for (body, field, message) in [
        (json!({}), "text", "This field is required."),
        (json!({"text": "  "}), "text", "This field may not be blank."),
        (json!({"text": "x".repeat(10_001)}), "text", "Ensure this field has no more than 10000 characters."),
        (json!({"text": "a\u{0}b"}), "text", "Null characters are not allowed."),
    ] {
        let r = patch(&t, &uri, &alice, body).await;
        assert_eq!((r.status, &r.body), (400, &json!({ field: [message] })));
    }
    let r = patch(&t, &uri, &alice, json!({"text": "x", "colour": "red"})).await;
    assert_eq!(r.status, 400, "unknown fields are refused");
    assert_eq!(t.get(&uri, &alice).await.body["text"], "last");
    // The id must name a message of the thread in the path.
    let other = t.thread(&alice, &[&eve]).await;
    let elsewhere = format!("/api/threads/{other}/messages/{}/", last["id"].as_str().unwrap());
    assert_eq!(patch(&t, &elsewhere, &alice, json!({"text": "x"})).await.status, 404);
    assert_eq!(
        patch(&t, &format!("/api/threads/{id}/messages/{id}.99/"), &alice, json!({"text": "x"})).await.status,
        404
    );
}

#[tokio::test]
async fn deleting_takes_a_message_out_of_lists_counts_and_unread() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol, eve) =
        (t.user("alice").await, t.user("bob").await, t.user("carol").await, t.user("eve").await);
    let id = t.thread(&alice, &[&bob, &carol]).await;
    let m1 = t.say(&id, &bob, "one").await;
    let m2 = t.say(&id, &carol, "two").await;
    let m3 = t.say(&id, &bob, "three").await;
    let uri = |m: &Value| format!("/api/threads/{id}/messages/{}/", m["id"].as_str().unwrap());
    assert_eq!(t.unread(&alice).await, (3, 1));

    // Only the sender or the thread's owner; strangers see nothing.
    assert_eq!(t.delete(&uri(&m3), &carol).await.status, 403);
    assert_eq!(t.delete(&uri(&m3), &eve).await.status, 404);
    // The sender deletes the last message: the thread falls back to the one before it.
    assert_eq!(t.delete(&uri(&m3), &bob).await.status, 204);
    assert_eq!(t.get(&uri(&m3), &alice).await.status, 404);
    assert_eq!(t.delete(&uri(&m3), &bob).await.status, 404, "a second delete finds nothing");
    assert_eq!(t.unread(&alice).await, (2, 1), "alice loses the unread she had not seen");
    assert_eq!(t.thread_unread(&id, &carol).await, 1);
    for u in [&alice, &bob, &carol] {
        let thread = t.get(&format!("/api/threads/{id}/"), u).await.body;
        assert_eq!(thread["last_message"]["id"], m2["id"], "{}", u.id);
    }
    // The owner moderates: deletes carol's message.
    assert_eq!(t.delete(&uri(&m2), &alice).await.status, 204);
    assert_eq!(t.unread(&alice).await, (1, 1));
    assert_eq!(t.unread(&carol).await, (1, 1), "carol's own message never counted for her");
    assert_eq!(t.unread(&bob).await, (0, 0));
    let list = t.get(&format!("/api/threads/{id}/messages/"), &alice).await.body;
    assert_eq!(list["count"], 1);
    let ids: Vec<&Value> = list["results"].as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, [&m1["id"]]);
    assert_eq!(t.unread(&alice).await, (0, 0), "reading the page read the rest");

    // Later messages keep counting from where the ids were; deleting everything leaves no last.
    let m4 = t.say(&id, &carol, "four").await;
    assert_eq!(m4["id"], format!("{id}.4"));
    assert_eq!(t.unread(&alice).await, (1, 1));
    assert_eq!(t.delete(&uri(&m4), &carol).await.status, 204);
    assert_eq!(t.delete(&uri(&m1), &bob).await.status, 204);
    assert_eq!(t.unread(&alice).await, (0, 0));
    let thread = t.get(&format!("/api/threads/{id}/"), &alice).await.body;
    assert_eq!(thread["last_message"], Value::Null);
    assert_eq!(t.get(&format!("/api/threads/{id}/messages/"), &bob).await.body["count"], 0);
    // A deleted message cannot be edited.
    assert_eq!(patch(&t, &uri(&m4), &carol, json!({"text": "back"})).await.status, 404);
}

#[tokio::test]
async fn a_retried_send_of_a_deleted_message_is_a_conflict_not_a_second_message() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let sent = t.post(&uri, &alice, json!({"text": "oops", "client_id": "k1"})).await;
    assert_eq!(sent.status, 201);
    assert_eq!(t.delete(&format!("{uri}{}/", sent.body["id"].as_str().unwrap()), &alice).await.status, 204);
    let again = t.post(&uri, &alice, json!({"text": "oops", "client_id": "k1"})).await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(t.get(&uri, &bob).await.body["count"], 0);
}

/// A model of one thread: who sent each message, which are deleted, each member's marker.
struct Model {
    senders: Vec<usize>,
    deleted: Vec<bool>,
    read: Vec<usize>,
}

impl Model {
    fn unread(&self, member: usize) -> u64 {
        (self.read[member]..self.senders.len())
            .filter(|&i| !self.deleted[i] && self.senders[i] != member)
            .count() as u64
    }
}

#[tokio::test]
async fn random_sends_reads_edits_and_deletes_keep_every_count_exact() {
    let t = TestApp::spawn().await;
    let users = [t.user("ann").await, t.user("ben").await, t.user("cy").await];
    let others: Vec<&TestUser> = users[1..].iter().collect();
    let id = t.thread(&users[0], &others).await;
    let uri = format!("/api/threads/{id}/messages/");
    let mut model = Model { senders: vec![], deleted: vec![], read: vec![0; 3] };
    let mut rng = fastrand::Rng::with_seed(9);
    let (mut edits, mut deletes) = (0, 0);
    for step in 0..90 {
        let who = rng.usize(0..3);
        let live: Vec<usize> = (0..model.senders.len()).filter(|&i| !model.deleted[i]).collect();
        match rng.u8(0..10) {
            0..=4 => {
                t.say(&id, &users[who], &format!("s{step}")).await;
                model.senders.push(who);
                model.deleted.push(false);
            }
            5 | 6 => {
                let r = t.get(&uri, &users[who]).await;
                assert_eq!(r.status, 200);
                // The first page marks read up to its newest message: everything live so far.
                if let Some(&newest) = live.last() {
                    model.read[who] = model.read[who].max(newest + 1);
                }
                assert_eq!(r.body["count"], live.len());
            }
            7 if !live.is_empty() => {
                let i = live[rng.usize(0..live.len())];
                let r = patch(
                    &t,
                    &format!("{uri}{id}.{}/", i + 1),
                    &users[model.senders[i]],
                    json!({"text": format!("e{step}")}),
                )
                .await;
                assert_eq!(r.status, 200, "{r:?}");
                edits += 1;
            }
            _ if !live.is_empty() => {
                let i = live[rng.usize(0..live.len())];
                // Half by the sender, half by the owner (users[0]).
                let by = if rng.bool() { model.senders[i] } else { 0 };
                let r = t.delete(&format!("{uri}{id}.{}/", i + 1), &users[by]).await;
                assert_eq!(r.status, 204, "{r:?}");
                model.deleted[i] = true;
                deletes += 1;
            }
            _ => {}
        }
        for (u, user) in users.iter().enumerate() {
            let expected = model.unread(u);
            assert_eq!(t.thread_unread(&id, user).await, expected, "step {step}, member {u}");
            assert_eq!(t.unread(user).await, (expected, u64::from(expected > 0)), "step {step}, member {u}");
        }
        let last =
            (0..model.senders.len()).rev().find(|&i| !model.deleted[i]).map(|i| format!("{id}.{}", i + 1));
        let thread = t.get(&format!("/api/threads/{id}/"), &users[1]).await.body;
        assert_eq!(thread["last_message"]["id"].as_str(), last.as_deref(), "step {step}");
    }
    eprintln!("{} sends, {edits} edits, {deletes} deletes checked step by step", model.senders.len());
    assert!(edits >= 5 && deletes >= 5 && model.senders.len() >= 30, "the mix happened");
}
