use lambda_http::http::Method;
use serde_json::{Value, json};

use msgctl::django::{LongText, NulText, TextAction, TextPolicy};

use crate::helpers::{TestApp, TestUser};

/// The Django app's real export (a copy of the team's `shared/fixtures/django-dumpdata.json`,
/// kept in the repository so that a fresh clone runs this test).
pub fn fixture() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/django-dumpdata.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// What the Django data says each user's unread count is, per thread pk.
fn django_unread(dump: &Value, user: u64) -> Vec<(u64, u64)> {
    let objects = dump.as_array().unwrap();
    let of = |model: &'static str| objects.iter().filter(move |o| o["model"] == model);
    let mut out = Vec::new();
    for thread in of("thread.thread") {
        if !thread["fields"]["participants"].as_array().unwrap().contains(&json!(user)) {
            continue;
        }
        let unread = of("thread.message")
            .filter(|m| m["fields"]["thread"] == thread["pk"] && m["fields"]["sender"] != json!(user))
            .filter(|m| {
                !of("thread.messagereadstatus").any(|s| {
                    s["fields"]["message"] == m["pk"]
                        && s["fields"]["user"] == json!(user)
                        && s["fields"]["is_read"] == json!(true)
                })
            })
            .count();
        out.push((thread["pk"].as_u64().unwrap(), unread as u64));
    }
    out
}

async fn login(t: &TestApp, username: &str) -> (u16, Option<TestUser>) {
    let r = t
        .call(
            Method::POST,
            "/api/token/",
            None,
            Some(json!({"username": username, "password": "super_pass"})),
        )
        .await;
    let user = (r.status == 200).then(|| {
        let access = r.body["access"].as_str().unwrap().to_owned();
        let claims = t.app.jwt.verify(&access, shared::jwt::TokenType::Access).unwrap();
        TestUser {
            id: claims.user_id,
            token: access,
            refresh: r.body["refresh"].as_str().unwrap().to_owned(),
        }
    });
    (r.status, user)
}

#[tokio::test]
async fn django_export_imports_with_passwords_threads_and_read_state() {
    let t = TestApp::spawn().await;
    let text = fixture();
    let dump: Value = serde_json::from_str(&text).unwrap();
    let export = msgctl::django::parse(&text, TextPolicy::default()).unwrap();
    assert!(msgctl::django::check_against(&t.app.store, &export).await.unwrap().is_empty());
    let summary = msgctl::django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    assert_eq!((summary.users_written, summary.threads_written, summary.messages_written), (5, 2, 7));

    // Unread counts, before anyone reads anything, equal the Django data's.
    for (username, pk) in [("test_user", 2), ("alice", 3), ("bob", 4)] {
        let (status, user) = login(&t, username).await;
        assert_eq!(status, 200, "{username} logs in with the old password");
        let user = user.unwrap();
        assert_eq!(user.id.as_str(), pk.to_string());
        let expected = django_unread(&dump, pk);
        for (thread, unread) in &expected {
            assert_eq!(
                t.thread_unread(&thread.to_string(), &user).await,
                *unread,
                "{username} thread {thread}"
            );
        }
        let total: u64 = expected.iter().map(|(_, n)| n).sum();
        let threads = expected.iter().filter(|(_, n)| *n > 0).count() as u64;
        assert_eq!(t.unread(&user).await, (total, threads), "{username}");
    }
    // Known values from the fixture's description: alice read all of thread 1.
    assert_eq!(django_unread(&dump, 3), vec![(1, 0), (2, 3)]);
    assert_eq!(django_unread(&dump, 2), vec![(1, 2), (2, 3)]);

    // Hashes were upgraded at first login; inactive users stay out.
    let test_user = t.app.store.user(&"2".parse().unwrap()).await.unwrap().unwrap();
    assert!(test_user.password_hash.starts_with("$argon2id$"));
    assert_eq!(login(&t, "mallory").await.0, 401);
    let admin = t.app.store.user(&"1".parse().unwrap()).await.unwrap().unwrap();
    assert!(admin.is_staff && admin.is_active);

    // Threads keep owner, participants and times; messages keep sender, text, time and order.
    let (_, me) = login(&t, "test_user").await;
    let me = me.unwrap();
    let list = t.get("/api/threads/", &me).await.body;
    assert_eq!(list["count"], 2);
    let one = t.get("/api/threads/1/", &me).await.body;
    assert_eq!(one["owner"], "2");
    assert_eq!(one["participants"], json!(["2", "3"]));
    assert_eq!(one["created"], "2026-11-24T00:25:28.952000Z");
    let messages = t.get("/api/threads/1/messages/", &me).await.body;
    let got: Vec<(&str, &str, &str)> = messages["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["sender"].as_str().unwrap(), m["text"].as_str().unwrap(), m["created"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("3", "how are you?", "2026-11-24T00:25:29.011000Z"),
            ("3", "hi!", "2026-11-24T00:25:29.005000Z"),
            ("2", "hi alice", "2026-11-24T00:25:28.965000Z"),
        ]
    );
    let two = t.get("/api/threads/2/messages/?limit=1", &me).await.body;
    assert_eq!(two["results"][0]["text"], "unicode ✓ привет 🙂");
    // alice read test_user's first message at the time Django recorded.
    let detail = t.get("/api/threads/1/messages/1.1/", &me).await.body;
    assert_eq!(
        detail["read_by"],
        json!([
            {"user": "2", "read_at": "2026-11-24T00:25:28.965000Z"},
            {"user": "3", "read_at": "2026-11-24T00:25:29.050000Z"},
        ])
    );
}

#[tokio::test]
async fn importing_twice_changes_nothing() {
    let t = TestApp::spawn().await;
    let export = msgctl::django::parse(&fixture(), TextPolicy::default()).unwrap();
    msgctl::django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    let alice = "3".parse().unwrap();
    let before = t.app.store.counters(&alice).await.unwrap();
    assert!(msgctl::django::check_against(&t.app.store, &export).await.unwrap().is_empty());
    let again = msgctl::django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    assert_eq!((again.users_written, again.threads_written), (0, 0));
    assert_eq!((again.users_present, again.threads_present), (5, 2));
    assert_eq!(t.app.store.counters(&alice).await.unwrap(), before);
}

#[tokio::test]
async fn a_faulty_export_names_every_fault_and_imports_nothing() {
    let t = TestApp::spawn().await;
    let mut dump: Value = serde_json::from_str(&fixture()).unwrap();
    let objects = dump.as_array_mut().unwrap();
    objects.push(json!({"model": "thread.message", "pk": 99, "fields": {"thread": 7, "sender": 2, "text": "x", "created": "2026-11-24T00:25:29Z"}}));
    objects.push(json!({"model": "auth.user", "pk": 9, "fields": {"username": "bad name", "password": "x", "is_active": true, "is_staff": false, "date_joined": "yesterday"}}));
    objects.push(json!({"model": "thread.messagereadstatus", "pk": 50, "fields": {"message": 1, "user": 4, "read_at": null, "is_read": "yes"}}));
    let faults = msgctl::django::parse(&dump.to_string(), TextPolicy::default()).unwrap_err();
    let shown: Vec<String> = faults.iter().map(ToString::to_string).collect();
    assert!(
        shown.contains(&"thread.message pk=99: field `thread`: thread 7 does not exist".to_owned()),
        "{shown:#?}"
    );
    assert!(
        shown.contains(&"auth.user pk=9: field `username`: \"bad name\" is not a valid username".to_owned()),
        "{shown:#?}"
    );
    assert!(
        shown.contains(&"auth.user pk=9: field `date_joined`: expected an ISO 8601 timestamp".to_owned()),
        "{shown:#?}"
    );
    assert!(
        shown.contains(&"thread.messagereadstatus pk=50: field `is_read`: expected true or false".to_owned()),
        "{shown:#?}"
    );
    assert!(msgctl::django::parse("{not json", TextPolicy::default()).is_err());
    // A username already used by someone else in the table is a fault too, found before writing.
    t.user("alice").await;
    let export = msgctl::django::parse(&fixture(), TextPolicy::default()).unwrap();
    let faults = msgctl::django::check_against(&t.app.store, &export).await.unwrap();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].field, "username");
    assert!(t.app.store.user(&"2".parse().unwrap()).await.unwrap().is_none());
}

#[tokio::test]
async fn management_commands_manage_users() {
    let t = TestApp::spawn().await;
    let store = &t.app.store;
    msgctl::create_user(store, "root", "s3cret-pass", true).await.unwrap();
    assert!(msgctl::create_user(store, "root", "other", false).await.is_err());
    assert!(msgctl::create_user(store, "bad name", "x", false).await.is_err());
    assert!(msgctl::create_user(store, "ok", "", false).await.is_err());
    let login = |password: &'static str| {
        let t = &t;
        async move {
            t.call(Method::POST, "/api/token/", None, Some(json!({"username": "root", "password": password})))
                .await
                .status
        }
    };
    assert_eq!(login("s3cret-pass").await, 200);
    msgctl::set_password(store, "root", "n3w-pass").await.unwrap();
    assert_eq!(login("s3cret-pass").await, 401);
    assert_eq!(login("n3w-pass").await, 200);
    msgctl::set_active(store, "root", false).await.unwrap();
    assert_eq!(login("n3w-pass").await, 401);
    msgctl::set_active(store, "root", true).await.unwrap();
    assert_eq!(login("n3w-pass").await, 200);
    assert!(msgctl::set_active(store, "nobody", true).await.is_err());

    msgctl::seed_demo(store).await.unwrap();
    msgctl::seed_demo(store).await.unwrap();
    let bob = msgctl::find_user(store, "bob").await.unwrap();
    assert_eq!(store.counters(&bob.id).await.unwrap().thread_count, 1, "seeding twice makes nothing twice");
}

fn user(pk: u64) -> Value {
    json!({"model": "auth.user", "pk": pk, "fields": {
        "password": "pbkdf2_sha256$260000$salt$aGFzaA==", "username": format!("u{pk}"),
        "is_active": true, "is_staff": false, "date_joined": "2026-01-01T00:00:00Z",
    }})
}

fn thread(pk: u64, owner: u64, participants: &[u64], updated: &str) -> Value {
    json!({"model": "thread.thread", "pk": pk, "fields": {
        "owner": owner, "participants": participants, "created": "2026-01-01T00:00:00Z", "updated": updated,
    }})
}

fn message(pk: u64, thread: u64, sender: u64, text: &str, created: &str) -> Value {
    json!({"model": "thread.message", "pk": pk, "fields": {
        "thread": thread, "sender": sender, "text": text, "created": created,
    }})
}

fn status(pk: u64, message: u64, user: u64, is_read: bool) -> Value {
    let read_at = is_read.then_some("2026-03-01T00:00:00Z");
    json!({"model": "thread.messagereadstatus", "pk": pk, "fields": {
        "message": message, "user": user, "read_at": read_at, "is_read": is_read,
    }})
}

fn token(t: &TestApp, user: u64) -> TestUser {
    let id: shared::domain::ids::UserId = user.to_string().parse().unwrap();
    let pair = t.app.jwt.issue_pair(&id, 0);
    TestUser { id, token: pair.access, refresh: pair.refresh }
}

async fn import(t: &TestApp, objects: &[Value], policy: TextPolicy) -> msgctl::django::Summary {
    let export = msgctl::django::parse(&Value::Array(objects.to_vec()).to_string(), policy).unwrap();
    msgctl::django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap()
}

/// Threads 1, 2 and 3 have users 1 and 2; thread 2 has the latest activity, then 3, then 1.
fn three_threads_one_set() -> Vec<Value> {
    vec![
        user(1),
        user(2),
        user(3),
        thread(1, 1, &[1, 2], "2026-02-01T00:00:00Z"),
        thread(2, 2, &[2, 1], "2026-02-03T00:00:00Z"),
        thread(3, 1, &[1, 2], "2026-02-02T00:00:00Z"),
        thread(4, 1, &[1, 2, 3], "2026-02-04T00:00:00Z"),
        message(1, 1, 1, "in one", "2026-01-02T00:00:00Z"),
        message(2, 2, 2, "in two", "2026-01-02T00:00:00Z"),
        message(3, 3, 1, "in three", "2026-01-02T00:00:00Z"),
    ]
}

async fn create(t: &TestApp, by: u64, with: &[u64]) -> (u16, String) {
    let others: Vec<String> = with.iter().map(u64::to_string).collect();
    let r = t.post("/api/threads/", &token(t, by), json!({ "participants": others })).await;
    assert!(r.status == 200 || r.status == 201, "{r:?}");
    (r.status, r.body["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn threads_with_one_participant_set_all_import_and_a_create_returns_the_most_recently_active() {
    let t = TestApp::spawn().await;
    let summary = import(&t, &three_threads_one_set(), TextPolicy::default()).await;
    println!("{summary}");
    assert_eq!((summary.threads_written, summary.threads_joined_a_set), (4, 2));
    assert_eq!(summary.shared_sets.len(), 1);
    let set = &summary.shared_sets[0];
    let threads: Vec<&str> = set.threads.iter().map(|t| t.as_str()).collect();
    assert_eq!(threads, ["1", "3", "2"], "oldest activity first");
    assert!(summary.to_string().contains("users 1,2: threads 1, 3, 2 (a new thread with them returns 2)"));
    for (pk, text) in [(1, "in one"), (2, "in two"), (3, "in three")] {
        let r = t.get(&format!("/api/threads/{pk}/messages/"), &token(&t, 2)).await;
        assert_eq!(r.body["results"][0]["text"], text, "each thread keeps its own messages");
    }
    assert_eq!(t.get("/api/threads/", &token(&t, 1)).await.body["count"], 4);

    assert_eq!(create(&t, 1, &[2]).await, (200, "2".to_owned()));
    assert_eq!(create(&t, 2, &[1]).await, (200, "2".to_owned()));
    // Activity moves it: a send in thread 1 makes thread 1 the most recently active.
    t.say("1", &token(&t, 2), "bump").await;
    assert_eq!(create(&t, 1, &[2]).await, (200, "1".to_owned()));
    // A superset is another set.
    assert_eq!(create(&t, 3, &[1, 2]).await, (200, "4".to_owned()));
}

#[tokio::test]
async fn deleting_threads_of_a_shared_set_keeps_it_reserved_until_the_last_one_goes() {
    let t = TestApp::spawn().await;
    import(&t, &three_threads_one_set(), TextPolicy::default()).await;
    // Thread 1 imported first, so it holds the reservation; 2 and 3 are listed with it.
    assert_eq!(t.delete("/api/threads/1/", &token(&t, 1)).await.status, 204);
    assert_eq!(create(&t, 1, &[2]).await, (200, "2".to_owned()));
    assert_eq!(t.delete("/api/threads/2/", &token(&t, 2)).await.status, 204);
    assert_eq!(create(&t, 1, &[2]).await, (200, "3".to_owned()));
    assert_eq!(t.app.store.counters(&"1".parse().unwrap()).await.unwrap().thread_count, 2);
    assert_eq!(t.delete("/api/threads/3/", &token(&t, 1)).await.status, 204);
    let (status, fresh) = create(&t, 1, &[2]).await;
    assert_eq!(status, 201, "the last one freed the set");
    assert_eq!(create(&t, 2, &[1]).await, (200, fresh));
}

#[tokio::test]
async fn concurrent_deletes_of_threads_sharing_a_set_free_it_exactly_once() {
    let t = TestApp::spawn().await;
    import(&t, &three_threads_one_set(), TextPolicy::default()).await;
    let store = &t.app.store;
    let deletes = ["1", "2", "3"].map(|id| async move {
        store.delete_thread(&id.parse().unwrap(), &shared::domain::rules::Actor::Staff).await
    });
    for result in futures_util::future::join_all(deletes).await {
        result.unwrap();
    }
    let replies = futures_util::future::join_all((0..4).map(|_| create(&t, 1, &[2]))).await;
    assert_eq!(replies.iter().filter(|(status, _)| *status == 201).count(), 1, "{replies:?}");
    let ids: std::collections::HashSet<&String> = replies.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    assert_eq!(t.get("/api/threads/", &token(&t, 2)).await.body["count"], 2);
}

#[tokio::test]
async fn an_import_joins_the_set_of_a_thread_made_through_the_api() {
    let t = TestApp::spawn().await;
    let objects = three_threads_one_set();
    let users: Vec<Value> = objects.iter().filter(|o| o["model"] == "auth.user").cloned().collect();
    import(&t, &users, TextPolicy::default()).await;
    let (status, made) = create(&t, 1, &[2]).await;
    assert_eq!(status, 201);
    let summary = import(&t, &objects, TextPolicy::default()).await;
    assert_eq!((summary.threads_written, summary.threads_joined_a_set), (4, 3));
    // The API's thread is the newest (made now); after it is gone, the newest import.
    assert_eq!(create(&t, 2, &[1]).await, (200, made.clone()));
    assert_eq!(t.delete(&format!("/api/threads/{made}/"), &token(&t, 1)).await.status, 204);
    assert_eq!(create(&t, 2, &[1]).await, (200, "2".to_owned()));
}

fn texts_the_api_refuses() -> Vec<Value> {
    let long = "x".repeat(10_001);
    vec![
        user(1),
        user(2),
        thread(1, 1, &[1, 2], "2026-02-01T00:00:00Z"),
        message(10, 1, 1, "first", "2026-01-02T00:00:01Z"),
        message(11, 1, 1, &long, "2026-01-02T00:00:02Z"),
        message(12, 1, 1, "nul\u{0}inside", "2026-01-02T00:00:03Z"),
        message(13, 1, 1, "last", "2026-01-02T00:00:04Z"),
        status(1, 10, 2, true),
        status(2, 11, 2, true),
        status(3, 12, 2, false),
        status(4, 13, 2, false),
    ]
}

#[tokio::test]
async fn text_the_api_refuses_is_named_per_message_and_imports_only_with_a_choice() {
    let t = TestApp::spawn().await;
    let objects = texts_the_api_refuses();
    let text = Value::Array(objects.clone()).to_string();
    let faults = msgctl::django::parse(&text, TextPolicy::default()).unwrap_err();
    let shown: Vec<String> = faults.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "thread.message pk=11: field `text`: in thread 1: 10001 characters, over the limit of 10000; \
             choose --long-text truncate or --long-text skip",
            "thread.message pk=12: field `text`: in thread 1: 1 NUL character(s), which the API refuses; \
             choose --nul strip or --nul skip",
        ]
    );
    // One choice is not enough for both.
    let only_long = TextPolicy { long_text: Some(LongText::Truncate), nul: None };
    assert_eq!(msgctl::django::parse(&text, only_long).unwrap_err().len(), 1);

    let keep = TextPolicy { long_text: Some(LongText::Truncate), nul: Some(NulText::Strip) };
    let summary = import(&t, &objects, keep).await;
    println!("{summary}");
    let changes: Vec<String> = summary.text_changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        [
            "thread.message pk=11 (thread 1): 10001 characters, over the limit of 10000: truncated",
            "thread.message pk=12 (thread 1): 1 NUL character(s): NUL characters removed",
        ]
    );
    let me = token(&t, 2);
    assert_eq!(t.thread_unread("1", &me).await, 2);
    let got = t.get("/api/threads/1/messages/", &me).await.body;
    let texts: Vec<&str> =
        got["results"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["last", "nulinside", &"x".repeat(10_000), "first"]);
}

#[tokio::test]
async fn skipped_messages_leave_with_their_read_statuses_and_the_rest_are_renumbered() {
    let t = TestApp::spawn().await;
    let skip = TextPolicy { long_text: Some(LongText::Skip), nul: Some(NulText::Skip) };
    let summary = import(&t, &texts_the_api_refuses(), skip).await;
    println!("{summary}");
    assert_eq!(summary.messages_written, 2);
    assert_eq!(summary.read_statuses_dropped, 2);
    assert!(summary.text_changes.iter().all(|c| c.action == TextAction::Skipped));
    let me = token(&t, 2);
    // Django counted one unread message from the skipped ones (pk 12); it is gone with it.
    assert_eq!(t.thread_unread("1", &me).await, 1);
    assert_eq!(t.unread(&me).await, (1, 1));
    let list = t.get("/api/threads/", &me).await.body;
    assert_eq!(list["results"][0]["last_message"]["id"], "1.2");
    let got = t.get("/api/threads/1/messages/", &me).await.body;
    let ids: Vec<(&str, &str)> = got["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(ids, [("1.2", "last"), ("1.1", "first")]);
    // The thread goes on from there.
    assert_eq!(t.say("1", &token(&t, 1), "next").await["id"], "1.3");
}

#[tokio::test]
async fn a_rerun_with_another_choice_removes_what_an_interrupted_run_left_behind() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let t = TestApp::spawn().await;
    // As if a run with `--long-text truncate` had written thread 1's four messages and then
    // stopped before the thread's transaction.
    let store = &t.app.store;
    for seq in 1..=4 {
        store
            .client()
            .put_item()
            .table_name(store.table())
            .item("PK", AttributeValue::S("THREAD#1".into()))
            .item("SK", AttributeValue::S(format!("MSG#{seq:020}")))
            .item("text", AttributeValue::S("left behind".into()))
            .send()
            .await
            .unwrap();
    }
    let skip = TextPolicy { long_text: Some(LongText::Skip), nul: Some(NulText::Skip) };
    import(&t, &texts_the_api_refuses(), skip).await;
    let me = token(&t, 1);
    let got = t.get("/api/threads/1/messages/", &me).await.body;
    assert_eq!(got["count"], 2, "{got}");
    assert_eq!(t.say("1", &me, "next").await["id"], "1.3", "no stray message in the way");
}

#[tokio::test]
async fn a_change_into_a_set_imported_threads_share_joins_them() {
    let t = TestApp::spawn().await;
    import(&t, &three_threads_one_set(), TextPolicy::default()).await;
    let owner = token(&t, 1);
    // Thread 4 has users 1, 2 and 3; without 3 it has the set threads 1, 2 and 3 share.
    let r = t
        .call(
            lambda_http::http::Method::PATCH,
            "/api/threads/4/",
            Some(&owner.token),
            Some(serde_json::json!({"participants": ["1", "2"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Thread 4 is the most recently active of the four now sharing the set.
    assert_eq!(create(&t, 2, &[1]).await, (200, "4".to_owned()));
    assert_eq!(t.get("/api/threads/", &owner).await.body["count"], 4);

    // Adding someone makes a set another thread has too: thread 1 with user 3 is {1, 2, 3},
    // which thread 4 had. Made, and the answer names no other thread.
    let r = t
        .call(
            lambda_http::http::Method::PATCH,
            "/api/threads/1/",
            Some(&owner.token),
            Some(serde_json::json!({"participants": ["1", "2", "3"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!format!("{:?}", r.body).contains("\"4\""), "{r:?}");
    assert_eq!(t.get("/api/threads/1/", &token(&t, 3)).await.status, 200, "user 3 is in it now");
}
