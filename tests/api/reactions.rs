//! Reactions: `PUT` and `DELETE .../messages/{id}/reactions/{emoji}/`, idempotent, shown in every
//! representation of the message, changing no unread count and no thread's place.

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

fn uri(thread: &str, message: &str, emoji: &str) -> String {
    let encoded: String =
        percent_encoding::utf8_percent_encode(emoji, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!("/api/threads/{thread}/messages/{message}/reactions/{encoded}/")
}

async fn react(
    t: &TestApp,
    user: &TestUser,
    thread: &str,
    message: &str,
    emoji: &str,
) -> crate::helpers::Reply {
    t.call(Method::PUT, &uri(thread, message, emoji), Some(&user.token), None).await
}

async fn unreact(
    t: &TestApp,
    user: &TestUser,
    thread: &str,
    message: &str,
    emoji: &str,
) -> crate::helpers::Reply {
    t.call(Method::DELETE, &uri(thread, message, emoji), Some(&user.token), None).await
}

/// `(emoji, count, me)` of each reaction, in order.
fn shown(message: &Value) -> Vec<(String, u64, bool)> {
    message["reactions"]
        .as_array()
        .expect("every representation carries reactions")
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
                r["me"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn r(emoji: &str, count: u64, me: bool) -> (String, u64, bool) {
    (emoji.to_owned(), count, me)
}

#[tokio::test]
async fn reactions_are_idempotent_ordered_and_shown_everywhere() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let thread = t.thread(&alice, &[&bob, &carol]).await;
    let first = t.say(&thread, &alice, "first").await["id"].as_str().unwrap().to_owned();
    let last = t.say(&thread, &alice, "last").await["id"].as_str().unwrap().to_owned();
    assert_eq!(shown(&t.get(&format!("/api/threads/{thread}/messages/{last}/"), &bob).await.body), vec![]);

    let a = react(&t, &bob, &thread, &last, "👍").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(shown(&a.body), [r("👍", 1, true)]);
    assert_eq!(a.body["reactions"][0]["users"], json!([bob.id.as_str()]));
    // The same again changes nothing; another emoji goes after the first used.
    assert_eq!(shown(&react(&t, &bob, &thread, &last, "👍").await.body), [r("👍", 1, true)]);
    react(&t, &carol, &thread, &last, "🎉").await;
    let both = react(&t, &carol, &thread, &last, "👍").await;
    assert_eq!(shown(&both.body), [r("👍", 2, true), r("🎉", 1, true)]);
    assert_eq!(both.body["reactions"][0]["users"], json!([bob.id.as_str(), carol.id.as_str()]));
    // "❤" and "❤️" are one reaction.
    react(&t, &alice, &thread, &first, "❤").await;
    let heart = react(&t, &bob, &thread, &first, "❤️").await;
    assert_eq!(heart.body["reactions"][0]["count"], 2, "{heart:?}");

    // Each reader sees whether the reaction is theirs, in lists, details, the thread's last
    // message and catch-up.
    let listed = t.get(&format!("/api/threads/{thread}/messages/"), &alice).await.body;
    assert_eq!(shown(&listed["results"][0]), [r("👍", 2, false), r("🎉", 1, false)]);
    let detail = t.get(&format!("/api/threads/{thread}/messages/{last}/"), &bob).await.body;
    assert_eq!(shown(&detail), [r("👍", 2, true), r("🎉", 1, false)]);
    let view = t.get(&format!("/api/threads/{thread}/"), &carol).await.body;
    assert_eq!(shown(&view["last_message"]), [r("👍", 2, true), r("🎉", 1, true)]);
    let changes = t.get(&format!("/api/threads/{thread}/messages/?since=2"), &bob).await.body;
    let ids: Vec<&str> =
        changes["results"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [last.as_str(), first.as_str()], "each message once, in the order of its latest change");

    // Taking one away is idempotent too, and an emoji nobody uses any more goes.
    assert_eq!(shown(&unreact(&t, &carol, &thread, &last, "🎉").await.body), [r("👍", 2, true)]);
    assert_eq!(shown(&unreact(&t, &carol, &thread, &last, "🎉").await.body), [r("👍", 2, true)]);
    assert_eq!(unreact(&t, &carol, &thread, &last, "😀").await.status, 200);
}

#[tokio::test]
async fn reactions_change_no_unread_count_and_no_threads_place() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let older = t.thread(&alice, &[&bob]).await;
    let msg = t.say(&older, &alice, "react to me").await["id"].as_str().unwrap().to_owned();
    let newer = t.thread(&alice, &[&carol]).await;
    t.say(&newer, &carol, "newer").await;
    let before = (t.unread(&alice).await, t.unread(&bob).await);
    let order = |body: Value| -> Vec<String> {
        body["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect()
    };
    let listed_before = order(t.get("/api/threads/", &alice).await.body);
    assert_eq!(react(&t, &bob, &older, &msg, "🔥").await.status, 200);
    assert_eq!((t.unread(&alice).await, t.unread(&bob).await), before);
    assert_eq!(order(t.get("/api/threads/", &alice).await.body), listed_before, "no thread moves up");
}

#[tokio::test]
async fn bad_reactions_are_refused_and_change_nothing() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let msg = t.say(&thread, &alice, "hi").await["id"].as_str().unwrap().to_owned();
    // What is not one emoji names no reaction: the path is wrong.
    for bad in ["a", "👍👍", "<b>", ":+1:"] {
        let reply = react(&t, &bob, &thread, &msg, bad).await;
        assert_eq!(reply.status, 404, "{bad}: {reply:?}");
    }
    assert_eq!(react(&t, &eve, &thread, &msg, "👍").await.status, 404, "a stranger");
    let other = t.thread(&alice, &[&eve]).await;
    let elsewhere = t.say(&other, &alice, "x").await["id"].as_str().unwrap().to_owned();
    assert_eq!(react(&t, &bob, &thread, &elsewhere, "👍").await.status, 404, "a message of another thread");
    assert_eq!(react(&t, &bob, &thread, &format!("{thread}.99"), "👍").await.status, 404);

    // Twenty different emoji at most.
    let all: Vec<&str> = [
        "😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃", "🫠", "😉", "😊", "😇", "🥰", "😍", "🤩",
        "😘", "😗", "😚",
    ]
    .to_vec();
    for e in &all {
        assert_eq!(react(&t, &bob, &thread, &msg, e).await.status, 200);
    }
    let over = react(&t, &alice, &thread, &msg, "🤔").await;
    assert_eq!(over.status, 400, "{over:?}");
    assert!(over.body["emoji"].is_array(), "{over:?}");
    assert_eq!(react(&t, &alice, &thread, &msg, "😀").await.status, 200, "joining one there is fine");

    // A deleted message takes no reactions, and loses those it had.
    assert_eq!(t.delete(&format!("/api/threads/{thread}/messages/{msg}/"), &alice).await.status, 204);
    assert_eq!(react(&t, &bob, &thread, &msg, "👍").await.status, 404);
    let changes = t.get(&format!("/api/threads/{thread}/messages/?since=0"), &bob).await.body;
    assert_eq!(changes["results"][0]["reactions"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everyone_reacting_at_once_is_counted_exactly() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let mut others = Vec::new();
    for i in 0..12 {
        others.push(t.user(&format!("u{i}")).await);
    }
    let refs: Vec<&TestUser> = others.iter().collect();
    let thread = t.thread(&alice, &refs).await;
    let msg = t.say(&thread, &alice, "react!").await["id"].as_str().unwrap().to_owned();
    // Each reacts with two emoji and takes one of them away again, all at once, while alice
    // sends. Both calls are idempotent, so a client retries a 503 as it is; the end is exact.
    let retried = std::sync::atomic::AtomicUsize::new(0);
    let work = others.iter().map(|u| {
        let (t, thread, msg, retried) = (&t, thread.clone(), msg.clone(), &retried);
        async move {
            for (emoji, on) in [("👍", true), ("🎉", true), ("🎉", false)] {
                loop {
                    let reply = match on {
                        true => react(t, u, &thread, &msg, emoji).await,
                        false => unreact(t, u, &thread, &msg, emoji).await,
                    };
                    if reply.status == 503 {
                        retried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    assert_eq!(reply.status, 200, "{emoji}: {reply:?}");
                    break;
                }
            }
        }
    });
    let sends = async {
        for i in 0..5 {
            t.say(&thread, &alice, &format!("meanwhile {i}")).await;
        }
    };
    tokio::join!(futures_util::future::join_all(work), sends);
    eprintln!("36 reactions racing 5 sends: {} answers were 503 and retried", retried.into_inner());
    let detail = t.get(&format!("/api/threads/{thread}/messages/{msg}/"), &alice).await.body;
    assert_eq!(shown(&detail), [r("👍", 12, false)], "{detail}");
    let users: std::collections::HashSet<&str> =
        detail["reactions"][0]["users"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    assert_eq!(users.len(), 12);
    for u in &others {
        assert_eq!(t.thread_unread(&thread, u).await, 6, "{}: reactions count as nothing unread", u.id);
    }
}
