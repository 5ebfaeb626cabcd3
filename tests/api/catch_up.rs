//! Catching up with `?since=`: the messages sent, edited or deleted after a version, each once
//! as it is now, in the order of their latest change. The race tests (`races.rs`) follow a
//! thread this way while sends, edits and deletes race, with and without faults.

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Follower, TestApp, TestUser};

fn messages_uri(thread: &str) -> String {
    format!("/api/threads/{thread}/messages/")
}

async fn since(t: &TestApp, thread: &str, user: &TestUser, version: &str) -> Value {
    let r = t.get(&format!("{}?since={version}", messages_uri(thread)), user).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

/// Edits message `mid` of `thread` as `user`; the answer's status.
async fn edit(t: &TestApp, thread: &str, mid: &str, user: &TestUser, text: &str) -> u16 {
    let uri = format!("{}{mid}/", messages_uri(thread));
    t.call(Method::PATCH, &uri, Some(&user.token), Some(json!({ "text": text }))).await.status
}

fn ids(changes: &Value) -> Vec<&str> {
    changes["results"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn sends_edits_and_deletes_since_a_version_come_once_each_as_they_are_now() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let first = t.say(&id, &alice, "one").await;
    let page = t.get(&messages_uri(&id), &bob).await.body;
    let held = page["since"].as_str().expect("the newest page says since when").to_owned();
    assert_eq!(held, "1");

    // While bob is away: a send, an edit of an older message, a send that is then deleted.
    let second = t.say(&id, &alice, "two").await;
    let mid = first["id"].as_str().unwrap();
    assert_eq!(edit(&t, &id, mid, &alice, "uno").await, 200);
    let third = t.say(&id, &bob, "three").await;
    let r = t.delete(&format!("{}{}/", messages_uri(&id), third["id"].as_str().unwrap()), &bob).await;
    assert_eq!(r.status, 204);
    assert_eq!(t.thread_unread(&id, &bob).await, 1, "two is unread");

    let changes = since(&t, &id, &bob, &held).await;
    assert_eq!(changes["since"], "5", "four changes after version 1");
    assert_eq!(changes["next"], Value::Null);
    assert_eq!(ids(&changes), [second["id"].as_str().unwrap(), mid, third["id"].as_str().unwrap()]);
    let results = changes["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({
            "id": second["id"], "thread": id, "sender": alice.id.as_str(), "text": "two",
            "created": second["created"], "edited": null, "deleted": null, "reactions": [], "reply_to": null,
            "mentions": [],
        })
    );
    assert_eq!((results[1]["text"].as_str(), results[1]["edited"].is_string()), (Some("uno"), true));
    // A tombstone: no text, when it went; the client drops the message it held.
    assert_eq!((results[2]["text"].as_str(), results[2]["deleted"].is_string()), (Some(""), true));
    assert_eq!(results[2]["sender"], bob.id.as_str());
    // Like the list, catching up marks what it shows as read.
    assert_eq!(t.thread_unread(&id, &bob).await, 0);

    // Nothing new: the same version back, no results. Later changes start from there.
    let none = since(&t, &id, &bob, "5").await;
    assert_eq!((ids(&none).len(), &none["since"]), (0, &json!("5")));
    assert_eq!(edit(&t, &id, mid, &alice, "one again").await, 200);
    let latest = since(&t, &id, &bob, "5").await;
    assert_eq!((ids(&latest), &latest["since"]), (vec![mid], &json!("6")));
    // From the start, every message is there once, at its latest change.
    let all = since(&t, &id, &bob, "0").await;
    assert_eq!(ids(&all), [second["id"].as_str().unwrap(), third["id"].as_str().unwrap(), mid]);
    // An edit that changes nothing is no change.
    assert_eq!(edit(&t, &id, mid, &alice, "one again").await, 200);
    assert_eq!(since(&t, &id, &bob, "6").await["results"], json!([]));
}

#[tokio::test]
async fn many_changes_come_in_pages_that_link_on() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    for i in 0..7 {
        t.say(&id, &alice, &format!("m{i}")).await;
    }
    let r = t.get(&format!("{}?since=0&limit=3", messages_uri(&id)), &bob).await.body;
    assert_eq!((ids(&r).len(), &r["since"]), (3, &json!("3")));
    let next = crate::helpers::path_of(&r["next"]);
    assert!(next.contains("since=3") && next.contains("limit=3"), "{next}");
    let mut follower = Follower { since: "0".into(), ..Default::default() };
    follower.catch_up(&t, &id, &bob, 3).await.unwrap();
    assert_eq!((follower.calls, follower.changes, follower.since.as_str()), (3, 7, "7"));
    let texts: Vec<String> = follower.live().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, ["m6", "m5", "m4", "m3", "m2", "m1", "m0"]);
    // The full limit is the default: 100 changes a call.
    let r = t.get(&format!("{}?since=0", messages_uri(&id)), &bob).await.body;
    assert_eq!((ids(&r).len(), &r["next"]), (7, &Value::Null));
}

#[tokio::test]
async fn a_bad_version_is_refused_and_a_thread_you_are_not_in_is_not_there() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let id = t.thread(&alice, &[&bob]).await;
    t.say(&id, &alice, "secret").await;
    for bad in ["-1", "1.5", "x", " 1", "+1", "", "10000000000000000000", "18446744073709551616"] {
        let uri = format!("{}?since={}", messages_uri(&id), urlencode(bad));
        let r = t.get(&uri, &alice).await;
        assert_eq!(
            (r.status, &r.body),
            (400, &json!({"since": ["A version from an earlier answer is required."]})),
            "{bad:?}"
        );
    }
    // With a cursor: a forged one is the list's 404, a real one a 400.
    let r = t.get(&format!("{}?since=0&cursor=abc", messages_uri(&id)), &alice).await;
    assert_eq!((r.status, &r.body), (404, &json!({"detail": "Invalid cursor"})));
    t.say(&id, &alice, "more").await;
    let paged = t.get(&format!("{}?limit=1", messages_uri(&id)), &alice).await.body;
    let cursor = crate::helpers::path_of(&paged["next"]);
    let r = t.get(&format!("{cursor}&since=0"), &alice).await;
    assert_eq!((r.status, &r.body), (400, &json!({"since": ["Cannot be combined with cursor."]})));
    assert_eq!(
        t.get(&format!("{}?since=9999999999999999999", messages_uri(&id)), &alice).await.body["results"],
        json!([])
    );
    let r = t.get(&format!("{}?since=0&limit=101", messages_uri(&id)), &alice).await;
    assert_eq!(r.status, 400);
    // A stranger gets exactly what a thread that does not exist gives.
    let stranger = t.get(&format!("{}?since=0", messages_uri(&id)), &eve).await;
    let nowhere = t.get(&format!("{}?since=0", messages_uri("0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4")), &eve).await;
    assert_eq!((stranger.status, &stranger.body), (404, &nowhere.body));
    assert_eq!(t.get(&format!("{}?since=0", messages_uri(&id)), &bob).await.status, 200);
    // Only the newest page says since when; older pages do not.
    assert!(paged["since"].is_string());
    let older = t.get(&cursor, &alice).await.body;
    assert!(older.get("since").is_none() && older["results"].as_array().unwrap().len() == 1, "{older}");
}

fn urlencode(s: &str) -> String {
    s.replace(' ', "%20").replace('+', "%2B")
}

#[tokio::test]
async fn joiners_catch_up_and_send_after_edits_they_did_not_see() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob]).await;
    let first = t.say(&id, &alice, "hello").await;
    let mid = first["id"].as_str().unwrap();
    assert_eq!(edit(&t, &id, mid, &alice, "hello all").await, 200);
    let r = t
        .call(
            Method::PATCH,
            &format!("/api/threads/{id}/"),
            Some(&alice.token),
            Some(json!({"participants": [alice.id.as_str(), bob.id.as_str(), carol.id.as_str()]})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Carol's view carries the version of the edit, so her send is in order after it.
    let follower = Follower::load(&t, &id, &carol).await.unwrap();
    assert_eq!(follower.since, "2");
    let sent = t.say(&id, &carol, "hi").await;
    assert_eq!(edit(&t, &id, mid, &alice, "hello everyone").await, 200);
    let mut follower = follower;
    follower.catch_up(&t, &id, &carol, 100).await.unwrap();
    let texts: Vec<String> = follower.live().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, ["hi", "hello everyone"]);
    assert_eq!(follower.live()[0]["id"], sent["id"]);
    assert_eq!(follower.since, "4");
}

#[tokio::test]
async fn an_imported_thread_has_its_whole_history_in_the_log() {
    let t = TestApp::spawn().await;
    let text = crate::import::fixture();
    let export = msgctl::django::parse(&text, msgctl::django::TextPolicy::default()).unwrap();
    msgctl::django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    let me = t.app.store.user_by_username("test_user").await.unwrap().unwrap();
    let pair = t.app.jwt.issue_pair(&me.id, me.token_version);
    let me = TestUser { id: me.id, token: pair.access, refresh: pair.refresh };
    let page = t.get("/api/threads/1/messages/", &me).await.body;
    assert_eq!(page["since"], "3", "one version per imported message");
    let all = since(&t, "1", &me, "0").await;
    assert_eq!(ids(&all), ["1.1", "1.2", "1.3"]);
    let texts: Vec<&str> =
        all["results"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["hi alice", "hi!", "how are you?"]);
    // The next send follows on.
    let sent = t.say("1", &me, "back").await;
    let after = since(&t, "1", &me, "3").await;
    assert_eq!((ids(&after), &after["since"]), (vec![sent["id"].as_str().unwrap()], &json!("4")));
}
