//! Exactly-once sends and races.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_retried_send_with_the_same_client_id_returns_the_original_and_writes_nothing() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let first = t.post(&uri, &alice, json!({"text": "hello", "client_id": "c-1"})).await;
    assert_eq!(first.status, 201);
    let again = t.post(&uri, &alice, json!({"text": "hello", "client_id": "c-1"})).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(t.get(&format!("{uri}?limit=100"), &alice).await.body["count"], 1);
    assert_eq!(t.unread(&bob).await, (1, 1));

    // Another text under the same client id is refused, and changes nothing.
    let other = t.post(&uri, &alice, json!({"text": "different", "client_id": "c-1"})).await;
    assert_eq!(other.status, 400);
    assert_eq!(
        other.body,
        json!({"client_id": ["This client_id was already used for a different message."]})
    );
    // The same client id from another sender, or in another thread, is another send.
    assert_eq!(t.post(&uri, &bob, json!({"text": "hello", "client_id": "c-1"})).await.status, 201);
    let elsewhere = t.thread(&alice, &[&t.user("carol").await]).await;
    let r = t
        .post(
            &format!("/api/threads/{elsewhere}/messages/"),
            &alice,
            json!({"text": "hello", "client_id": "c-1"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(t.get(&uri, &alice).await.body["count"], 2);

    let long = t.post(&uri, &alice, json!({"text": "x", "client_id": "c".repeat(65)})).await;
    assert_eq!(long.status, 400);
    assert_eq!(long.body, json!({"client_id": ["Ensure this field has no more than 64 characters."]}));
}

#[tokio::test]
async fn racing_retries_with_one_client_id_send_once() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let body = json!({"text": "only once", "client_id": "9f0c1d2e"});
    let replies = futures_util::future::join_all((0..6).map(|_| t.post(&uri, &alice, body.clone()))).await;
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 1, "{replies:?}");
    assert!(replies.iter().all(|r| r.status == 201 || r.status == 200), "{replies:?}");
    assert!(replies.iter().all(|r| r.body["id"] == replies[0].body["id"]));
    assert_eq!(t.get(&uri, &bob).await.body["count"], 1);
    assert_eq!(t.unread(&alice).await, (0, 0));
}
