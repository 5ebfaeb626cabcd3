use lambda_http::http::Method;
use serde_json::json;

use crate::helpers::{TestApp, path_of};

#[tokio::test]
async fn create_returns_201_then_200_for_the_same_participant_set() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let r = t.post("/api/threads/", &alice, json!({"participants": [bob.id.as_str()]})).await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["owner"], alice.id.as_str());
    assert_eq!(r.body["participants"], json!([alice.id.as_str(), bob.id.as_str()]));
    assert_eq!(r.body["last_message"], json!(null));
    assert_eq!(r.body["unread_count"], 0);
    assert_eq!(r.body["created"], r.body["updated"]);
    // Same set, from the other side, with the caller listed too: the existing thread.
    let r = t.post("/api/threads", &bob, json!({"participants": [alice.id.as_str(), bob.id.as_str()]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["owner"], alice.id.as_str());
}

#[tokio::test]
async fn invalid_participants_are_400_and_create_nothing() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let mallory = t.user_with("mallory", false, false).await;
    let cases = [
        (
            json!({"participants": ["99"]}),
            json!({"participants": ["Invalid pk \"99\" - object does not exist."]}),
        ),
        (
            json!({"participants": [99]}),
            json!({"participants": ["Invalid pk \"99\" - object does not exist."]}),
        ),
        (
            json!({"participants": [mallory.id.as_str()]}),
            json!({"participants": [format!("Invalid pk \"{}\" - object does not exist.", mallory.id)]}),
        ),
        (
            json!({"participants": "x"}),
            json!({"participants": ["Expected a list of items but got type \"str\"."]}),
        ),
        (
            json!({"participants": [{"id": 1}]}),
            json!({"participants": ["Incorrect type. Expected pk value, received dict."]}),
        ),
        (json!({}), json!({"participants": ["This field is required."]})),
        (
            json!({"participants": []}),
            json!({"participants": ["A thread needs at least one participant besides you."]}),
        ),
        (
            json!({"participants": [alice.id.as_str()]}),
            json!({"participants": ["A thread needs at least one participant besides you."]}),
        ),
    ];
    for (body, expected) in cases {
        let r = t.post("/api/threads/", &alice, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body, expected, "{body}");
    }
    let many: Vec<String> = (0..32).map(|i| format!("u{i}")).collect();
    let r = t.post("/api/threads/", &alice, json!({"participants": many})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"participants": ["Ensure this field has no more than 32 elements."]}));
    let r = t.get("/api/threads/", &alice).await;
    assert_eq!(r.body["count"], 0);
}

#[tokio::test]
async fn concurrent_identical_creates_make_one_thread() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let body = json!({"participants": [bob.id.as_str(), carol.id.as_str()]});
    let replies =
        futures_util::future::join_all((0..6).map(|_| t.post("/api/threads/", &alice, body.clone()))).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "{replies:?}");
    assert!(replies.iter().all(|r| r.status == 201 || r.status == 200));
    let ids: std::collections::HashSet<_> = replies.iter().map(|r| r.body["id"].clone()).collect();
    assert_eq!(ids.len(), 1);
    for user in [&alice, &bob, &carol] {
        assert_eq!(t.get("/api/threads/", user).await.body["count"], 1);
    }
}

#[tokio::test]
async fn list_is_most_recent_activity_first_with_stable_cursor_pages() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let mut others = Vec::new();
    for i in 0..5 {
        others.push(t.user(&format!("friend{i}")).await);
    }
    let mut ids = Vec::new();
    for other in &others {
        ids.push(t.thread(&alice, &[other]).await);
    }
    // Activity in the oldest thread moves it to the top.
    t.say(&ids[0], &others[0], "bump").await;
    let expected: Vec<&String> = [&ids[0], &ids[4], &ids[3], &ids[2], &ids[1]].to_vec();

    let first = t.get("/api/threads/?limit=2", &alice).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["count"], 5);
    assert_eq!(first.body["previous"], json!(null));
    assert_eq!(first.body["results"][0]["id"], expected[0].as_str());
    assert_eq!(first.body["results"][0]["unread_count"], 1);
    assert_eq!(first.body["results"][0]["last_message"]["text"], "bump");
    assert_eq!(first.body["results"][1]["id"], expected[1].as_str());
    assert!(
        first.body["next"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:9000/api/threads/?limit=2&cursor=")
    );

    // A new thread arriving between pages does not shift the next page.
    let newcomer = t.user("newcomer").await;
    t.thread(&newcomer, &[&alice]).await;
    let second = t.get(&path_of(&first.body["next"]), &alice).await;
    assert_eq!(second.status, 200, "{second:?}");
    let got: Vec<&str> =
        second.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(got, [expected[2].as_str(), expected[3].as_str()]);
    let third = t.get(&path_of(&second.body["next"]), &alice).await;
    assert_eq!(third.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(third.body["next"], json!(null));
    // And back again.
    let back = t.get(&path_of(&third.body["previous"]), &alice).await;
    let got: Vec<&str> =
        back.body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(got, [expected[2].as_str(), expected[3].as_str()]);
}

#[tokio::test]
async fn outsiders_get_404_exactly_like_missing_threads() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let id = t.thread(&alice, &[&bob]).await;
    let msg = t.say(&id, &alice, "secret").await;
    let mid = msg["id"].as_str().unwrap().to_owned();
    let routes = [
        (Method::GET, format!("/api/threads/{id}/")),
        (Method::DELETE, format!("/api/threads/{id}/")),
        (Method::GET, format!("/api/threads/{id}/messages/")),
        (Method::POST, format!("/api/threads/{id}/messages/")),
        (Method::GET, format!("/api/threads/{id}/messages/{mid}/")),
        (Method::GET, format!("/api/threads/{id}/messages/unread_count/")),
    ];
    for (method, uri) in routes {
        let body = (method == Method::POST).then(|| json!({"text": "hi"}));
        let outsider = t.call(method.clone(), &uri, Some(&eve.token), body.clone()).await;
        let missing_uri = uri.replace(&id, "doesnotexist");
        let missing = t.call(method.clone(), &missing_uri, Some(&alice.token), body).await;
        assert_eq!(outsider.status, 404, "{method} {uri}");
        assert_eq!(missing.status, 404, "{method} {missing_uri}");
        assert_eq!(outsider.body, missing.body);
        assert_eq!(outsider.body, json!({"detail": "Not found."}));
    }
    // A message id from another thread is 404 too.
    let other = t.thread(&alice, &[&eve]).await;
    let r = t.get(&format!("/api/threads/{other}/messages/{mid}/"), &alice).await;
    assert_eq!(r.status, 404);
    assert_eq!(t.unread(&bob).await, (1, 1), "nothing changed for bob");
}

#[tokio::test]
async fn owner_deletes_for_everyone_and_others_get_403() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    t.say(&id, &alice, "one").await;
    t.say(&id, &alice, "two").await;
    assert_eq!(t.unread(&bob).await, (2, 1));

    let r = t.delete(&format!("/api/threads/{id}/"), &bob).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, json!({"detail": "You do not have permission to perform this action."}));

    let r = t.delete(&format!("/api/threads/{id}"), &alice).await;
    assert_eq!(r.status, 204);
    for user in [&alice, &bob] {
        assert_eq!(t.get(&format!("/api/threads/{id}/"), user).await.status, 404);
        assert_eq!(t.get(&format!("/api/threads/{id}/messages/"), user).await.status, 404);
        let list = t.get("/api/threads/", user).await;
        assert_eq!(list.body["count"], 0);
        assert_eq!(list.body["results"], json!([]));
    }
    assert_eq!(t.unread(&bob).await, (0, 0));
    // The same pair can start over with a fresh thread.
    let again = t.post("/api/threads/", &bob, json!({"participants": [alice.id.as_str()]})).await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["id"], id.as_str());
}

#[tokio::test]
async fn purge_removes_a_deleted_threads_messages_in_bounded_steps() {
    use aws_lambda_events::event::dynamodb::{Event, EventRecord};

    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    for i in 0..7 {
        t.say(&id, &alice, &format!("m{i}")).await;
    }
    t.get(&format!("/api/threads/{id}/messages/"), &bob).await;
    assert_eq!(t.delete(&format!("/api/threads/{id}/"), &alice).await.status, 204);

    let thread_items = || crate::helpers::partition(&t, &id);
    // 7 messages, their 7 change log entries, 1 read event, and the purge marker remain.
    assert_eq!(thread_items().await.len(), 16);

    let mut record = EventRecord::default();
    record.event_name = "INSERT".into();
    record.change.keys = serde_dynamo::Item::from(std::collections::HashMap::from([
        ("PK".to_owned(), serde_dynamo::AttributeValue::S(format!("THREAD#{id}"))),
        ("SK".to_owned(), serde_dynamo::AttributeValue::S("PURGE".into())),
    ]));
    let mut event = Event::default();
    event.records = vec![record];
    assert_eq!(purge::threads_to_purge(&event).len(), 1);

    let mut steps = 0;
    loop {
        steps += 1;
        match t.app.store.purge_step(&id.parse().unwrap(), 4).await.unwrap() {
            shared::store::purge::PurgeProgress::More { deleted } => assert_eq!(deleted, 4),
            shared::store::purge::PurgeProgress::Done { .. } => break,
        }
        assert!(steps < 10);
    }
    assert_eq!(steps, 4, "15 items, 4 a step");
    assert!(thread_items().await.is_empty());
    // Through the handler, a second event for the same marker is harmless.
    purge::handle(&t.app.store, event).await.unwrap();
}
