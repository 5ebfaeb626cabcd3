use lambda_http::http::Method;
use serde_json::{Value, json};

use msgctl::django::TextPolicy;

use crate::helpers::{TestApp, TestUser};

/// The Django app's real export (a copy of the team's `shared/fixtures/django-dumpdata.json`,
/// kept in the repository so that a fresh clone runs this test).
fn fixture() -> String {
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
