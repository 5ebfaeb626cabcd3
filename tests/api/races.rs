//! Edits and deletes racing sends and reads, across concurrent tasks, with and without faults
//! between the store and DynamoDB: whatever interleaving happened, the thread ends exact.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::faults::FaultProxy;
use crate::helpers::{Follower, Reply, TestApp, TestUser, client_at, path_of, unseen, unseen_by};

/// Calls until the answer is not a 503, as a client obeying `Retry-After` would (a bounded
/// number of times). Returns the answer and whether an earlier attempt was a 503, after which
/// a 404 may mean "my earlier attempt did it".
async fn until_not_503<F, Fut>(mut call: F, retried: &mut u64) -> (Reply, bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let mut ambiguous = false;
    for _ in 0..60 {
        let r = call().await;
        if r.status != 503 {
            return (r, ambiguous);
        }
        ambiguous = true;
        *retried += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("stayed 503");
}

/// What one member's task did.
#[derive(Default)]
struct Done {
    /// Acknowledged sends: id -> the text sent.
    sent: HashMap<String, String>,
    /// Who each acknowledged send mentioned.
    mentioned: HashMap<String, Value>,
    /// Acknowledged edits in order: (id, text, mentions).
    edited: Vec<(String, String, Value)>,
    /// Replies refused because the message they answered was deleted meanwhile.
    late_replies: u64,
    /// Acknowledged reactions (the user's 👍 on a message).
    reacted: Vec<String>,
    /// Messages this task deleted (204).
    deleted: HashSet<String>,
    /// Deletes answered 404 after a 503: deleted by this task or by someone else.
    maybe_deleted: HashSet<String>,
    attempted_sends: u64,
    /// Sends whose first attempt answered 503 yet landed, and whose retry found the message
    /// deleted (by the owner) meanwhile: 409, as the API says of such a `client_id`.
    sent_then_deleted: u64,
    retried: u64,
}

/// Three members send (mentioning some of the others, some of them replies), edit (changing
/// whom they mention), react and delete their own messages while the owner also deletes
/// others' and two members keep reading; then everything listed must be exactly what was
/// acknowledged, with exact counts for everyone. Meanwhile two clients follow the thread with
/// `?since=`, one from the start and one from pages it loads midway; once they catch up, each
/// holds exactly what the thread lists.
async fn workload(t: &TestApp, rounds: usize, faults: Option<&FaultProxy>) -> (Vec<Done>, u64) {
    let users = [t.user("own").await, t.user("ari").await, t.user("bo").await, t.user("reader").await];
    let id = t.thread(&users[0], &[&users[1], &users[2], &users[3]]).await;
    let uri = format!("/api/threads/{id}/messages/");
    if let Some(proxy) = faults {
        proxy.set_rate(200);
    }
    let everyone: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let work = users[..3].iter().enumerate().map(|(u, user)| {
        let (t, uri, everyone) = (t, uri.clone(), &everyone);
        async move {
            // Some of the members, the sender perhaps among them.
            let some = |rng: &mut fastrand::Rng| -> Value {
                json!(everyone.iter().filter(|_| rng.bool()).collect::<Vec<_>>())
            };
            let mut done = Done::default();
            let mut rng = fastrand::Rng::with_seed(u as u64 + 1);
            let mut mine: Vec<String> = Vec::new();
            for i in 0..rounds {
                let text = format!("{u}-{i}");
                done.attempted_sends += 1;
                let mut body = json!({"text": text, "client_id": text, "mentions": some(&mut rng)});
                if i % 5 == 4 && !mine.is_empty() {
                    // A reply to one of theirs, which the owner may be deleting.
                    body["reply_to"] = json!(mine[rng.usize(0..mine.len())]);
                }
                let (r, ambiguous) =
                    until_not_503(|| t.post(&uri, user, body.clone()), &mut done.retried).await;
                if r.status == 409 && ambiguous {
                    done.sent_then_deleted += 1;
                    continue;
                }
                if r.status == 400 && r.body["reply_to"].is_array() {
                    done.late_replies += 1;
                    continue;
                }
                assert!([200, 201].contains(&r.status), "send: {r:?}");
                let mid = r.body["id"].as_str().unwrap().to_owned();
                done.sent.insert(mid.clone(), text.clone());
                done.mentioned.insert(mid.clone(), body["mentions"].clone());
                mine.push(mid);
                if i % 5 == 2 {
                    // A 👍 on one of the newest three messages, anyone's.
                    let listed = t.get(&format!("{uri}?limit=3"), user).await;
                    let ids: Vec<&str> = listed.body["results"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|m| m["id"].as_str()).collect())
                        .unwrap_or_default();
                    if !ids.is_empty() {
                        let target = ids[rng.usize(0..ids.len())].to_owned();
                        let path = format!("{uri}{target}/reactions/%F0%9F%91%8D/");
                        let (r, _) = until_not_503(
                            || t.call(Method::PUT, &path, Some(&user.token), None),
                            &mut done.retried,
                        )
                        .await;
                        match r.status {
                            200 => done.reacted.push(target),
                            404 => {} // deleted meanwhile
                            _ => panic!("reaction: {r:?}"),
                        }
                    }
                }
                if i % 3 == 1 && !mine.is_empty() {
                    let target = mine[rng.usize(0..mine.len())].clone();
                    let text = format!("edit {u}-{i}");
                    let mentions = some(&mut rng);
                    let body = json!({"text": text, "mentions": mentions});
                    let path = format!("{uri}{target}/");
                    let (r, _) = until_not_503(
                        || t.call(Method::PATCH, &path, Some(&user.token), Some(body.clone())),
                        &mut done.retried,
                    )
                    .await;
                    match r.status {
                        200 => done.edited.push((target, text, mentions)),
                        404 => {} // deleted meanwhile (by the owner, or by an ambiguous delete)
                        _ => panic!("edit: {r:?}"),
                    }
                }
                if i % 4 == 3 {
                    // Members delete their own; the owner deletes anyone's newest-but-one.
                    let listed = t.get(&format!("{uri}?limit=3"), user).await;
                    let target = if u == 0 {
                        listed.body["results"].get(1).and_then(|m| m["id"].as_str()).map(str::to_owned)
                    } else {
                        Some(mine[rng.usize(0..mine.len())].clone())
                    };
                    if let Some(target) = target {
                        let path = format!("{uri}{target}/");
                        let (r, ambiguous) = until_not_503(|| t.delete(&path, user), &mut done.retried).await;
                        match r.status {
                            204 => {
                                done.deleted.insert(target.clone());
                            }
                            404 if ambiguous => {
                                done.maybe_deleted.insert(target.clone());
                            }
                            404 => {} // someone else deleted it first
                            _ => panic!("delete: {r:?}"),
                        }
                        mine.retain(|m| *m != target);
                        if mine.is_empty() {
                            mine.push(done.sent.keys().next().unwrap().clone());
                        }
                    }
                }
            }
            done
        }
    });
    // Two readers; meanwhile one of them mutes and unmutes the thread (ending muted), the other
    // archives it again and again (which each new message undoes).
    let reading = [&users[3], &users[1]].into_iter().enumerate().map(|(which, user)| {
        let (t, uri, me) = (t, uri.clone(), format!("/api/threads/{id}/me/"));
        async move {
            let mut changed = 0;
            let change = |body: Value| {
                let me = me.clone();
                async move {
                    let (r, _) = until_not_503(
                        || t.call(Method::PATCH, &me, Some(&user.token), Some(body.clone())),
                        &mut 0,
                    )
                    .await;
                    assert_eq!(r.status, 200, "{r:?}");
                }
            };
            for i in 0..rounds / 2 {
                let r = t.get(&uri, user).await;
                assert!([200, 503].contains(&r.status), "{r:?}");
                let r = t.get("/api/unread_count/", user).await;
                assert!([200, 503].contains(&r.status), "{r:?}");
                change(if which == 0 { json!({"muted": i % 2 == 0}) } else { json!({"archived": true}) })
                    .await;
                changed += 1;
            }
            if which == 0 {
                change(json!({"muted": true})).await;
            }
            changed
        }
    });
    let writing = std::sync::atomic::AtomicBool::new(true);
    let work = async {
        let done = futures_util::future::join_all(work).await;
        writing.store(false, std::sync::atomic::Ordering::SeqCst);
        done
    };
    let following = [0, 400].map(|wait_ms| {
        let (t, id, reader, writing) = (t, id.clone(), &users[3], &writing);
        async move {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            let mut follower = None;
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                match &mut follower {
                    None => follower = Follower::load(t, &id, reader).await,
                    // A 503 applied nothing past the last good answer: the next round goes on.
                    Some(f) => drop(f.catch_up(t, &id, reader, 7).await),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            follower
        }
    });
    let (done, views_changed, followers) = tokio::join!(
        work,
        futures_util::future::join_all(reading),
        futures_util::future::join_all(following)
    );
    assert!(
        views_changed.iter().all(|n| *n >= 10),
        "the views changed while the work ran: {views_changed:?}"
    );
    if let Some(proxy) = faults {
        proxy.set_rate(0);
    }
    let listed = check(t, &users, &id, &done).await;
    let sent: usize = done.iter().map(|d| d.sent.len()).sum();
    // Messages written whose send the client never saw acknowledged (see `sent_then_deleted`).
    let unacknowledged = done.iter().map(|d| d.sent_then_deleted).sum::<u64>() as usize;
    for (i, follower) in followers.into_iter().enumerate() {
        let mut f = follower.expect("the follower loaded the thread while the work ran");
        let during = (f.calls, f.changes);
        f.catch_up(t, &id, &users[3], 7).await.expect("no faults now");
        assert_eq!(f.live(), listed, "follower {i} holds exactly what the thread lists");
        eprintln!("follower {i}: {} change answers ({} changes) while the work ran", during.0, during.1);
        assert!(during.0 >= 3 && during.1 >= 10, "follower {i} followed while the work ran: {during:?}");
        if i == 0 {
            // From the empty thread on, it heard of every message: the deleted ones as tombstones.
            assert_eq!(f.held.len(), sent + unacknowledged, "every message written, once");
            let tombstones = f.held.values().filter(|m| m["deleted"].is_string()).count();
            assert_eq!(tombstones, sent + unacknowledged - listed.len());
            assert!(f.held.values().filter(|m| m["deleted"].is_string()).all(|m| m["text"] == ""));
        }
    }
    let retried = done.iter().map(|d| d.retried).sum();
    (done, retried)
}

/// Checks the thread against what was acknowledged; returns what it lists, newest first.
async fn check(t: &TestApp, users: &[TestUser], id: &str, done: &[Done]) -> Vec<Value> {
    let uri = format!("/api/threads/{id}/messages/");
    let mut listed: Vec<Value> = Vec::new();
    let mut page = Some(format!("{uri}?limit=100"));
    let mut count = 0;
    while let Some(p) = page {
        let body = t.get(&p, &users[3]).await.body;
        count = body["count"].as_u64().unwrap();
        listed.extend(body["results"].as_array().unwrap().iter().cloned());
        page = body["next"].as_str().map(|u| path_of(&json!(u)));
    }
    let listed_ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = listed_ids.iter().copied().collect();
    assert_eq!(unique.len(), listed_ids.len(), "no duplicates");
    assert_eq!(count, listed_ids.len() as u64, "count is what is listed");

    let sent: HashMap<&str, &str> =
        done.iter().flat_map(|d| d.sent.iter().map(|(k, v)| (k.as_str(), v.as_str()))).collect();
    let deleted: HashSet<&str> = done.iter().flat_map(|d| d.deleted.iter().map(String::as_str)).collect();
    let maybe: HashSet<&str> = done.iter().flat_map(|d| d.maybe_deleted.iter().map(String::as_str)).collect();
    for listed_id in &listed_ids {
        assert!(sent.contains_key(listed_id), "{listed_id} was never acknowledged");
        assert!(!deleted.contains(listed_id), "{listed_id} was deleted (204) but is listed");
    }
    for sent_id in sent.keys() {
        if !deleted.contains(sent_id) && !maybe.contains(sent_id) {
            assert!(unique.contains(sent_id), "{sent_id} was acknowledged, never deleted, and is missing");
        }
    }
    // Each listed message shows its last acknowledged edit, or the text it was sent with, and
    // the mentions that edit or the send gave it.
    let mut last_edit: HashMap<&str, (&str, &Value)> = HashMap::new();
    for d in done {
        for (m, text, mentions) in &d.edited {
            last_edit.insert(m.as_str(), (text.as_str(), mentions));
        }
    }
    let mentioned: HashMap<&str, &Value> =
        done.iter().flat_map(|d| d.mentioned.iter().map(|(k, v)| (k.as_str(), v))).collect();
    for m in &listed {
        let mid = m["id"].as_str().unwrap();
        let (text, mentions) = last_edit.get(mid).copied().unwrap_or((sent[mid], mentioned[mid]));
        assert_eq!(m["text"], text, "{mid}");
        assert_eq!(&m["mentions"], mentions, "{mid}");
        assert_eq!(m["edited"].is_null(), !last_edit.contains_key(mid), "{mid}");
    }
    // A reply shows the message it answers as it is now: its text, or that it was deleted.
    let by_id: HashMap<&str, &Value> = listed.iter().map(|m| (m["id"].as_str().unwrap(), m)).collect();
    let mut replies = 0;
    for m in listed.iter().filter(|m| !m["reply_to"].is_null()) {
        replies += 1;
        let quoted = &m["reply_to"];
        match by_id.get(quoted["id"].as_str().unwrap()) {
            Some(original) => {
                assert_eq!(quoted["text"], original["text"], "{}", m["id"]);
                assert_eq!(quoted["deleted"], false, "{}", m["id"]);
            }
            None => assert_eq!(quoted["deleted"], true, "{} quotes a deleted message", m["id"]),
        }
    }
    // Every acknowledged 👍 on a message still there is on it.
    for (d, user) in done.iter().zip(users) {
        for target in d.reacted.iter().filter_map(|mid| by_id.get(mid.as_str())) {
            let thumbs = target["reactions"].as_array().unwrap().iter().find(|r| r["emoji"] == "👍");
            let users = thumbs.map(|r| r["users"].clone()).unwrap_or_default();
            assert!(users.as_array().unwrap().iter().any(|u| u == user.id.as_str()), "{}", target["id"]);
        }
    }
    // The last message is the newest listed; every member's counts are exact.
    let thread = id.parse().unwrap();
    for user in users {
        let view = t.get(&format!("/api/threads/{id}/"), user).await.body;
        assert_eq!(view["last_message"]["id"].as_str(), listed_ids.first().copied(), "{}", user.id);
        let m = t.app.store.membership(&user.id, &thread).await.unwrap().unwrap();
        let unseen = unseen(&listed, &m);
        assert_eq!(m.unread, unseen, "{}", user.id);
        // A muted thread keeps its count but leaves the totals: exactly, whatever raced.
        let muted = view["muted"] == true;
        let shown = if muted { 0 } else { unseen };
        assert_eq!(t.unread(user).await, (shown, u64::from(shown > 0)), "{} (muted: {muted})", user.id);
        // The archived count is the archived list.
        let archived = t.get("/api/threads/?archived=true", user).await.body;
        let count = archived["count"].as_u64().unwrap();
        assert_eq!(count, u64::from(view["archived"] == true), "{}", user.id);
        assert_eq!(archived["results"].as_array().unwrap().len() as u64, count, "{}", user.id);
        // Unread mentions: messages from others after the marker that mention them.
        let mentions = listed
            .iter()
            .filter(|msg| {
                unseen_by(msg, &m)
                    && msg["mentions"].as_array().unwrap().iter().any(|u| u == user.id.as_str())
            })
            .count() as u64;
        assert_eq!(
            (m.unread_mentions, view["unread_mentions"].as_u64().unwrap()),
            (mentions, mentions),
            "{}",
            user.id
        );
        let shown = if muted { 0 } else { mentions };
        assert_eq!(t.get("/api/unread_count/", user).await.body["mentions"], shown, "{}", user.id);
    }
    let deletes = deleted.len() + maybe.len();
    let edits: usize = done.iter().map(|d| d.edited.len()).sum();
    let reactions: usize = done.iter().map(|d| d.reacted.len()).sum();
    let late: u64 = done.iter().map(|d| d.late_replies).sum();
    eprintln!(
        "{} sends ({replies} replies listed, {late} refused as their message was deleted), {edits} edits, {reactions} reactions and {deletes} deletes acknowledged; {} messages listed",
        sent.len(),
        listed_ids.len()
    );
    assert!(
        sent.len() >= 80 && edits >= 20 && deletes >= 15 && reactions >= 10 && replies >= 5,
        "the mix happened"
    );
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_and_deletes_race_sends_and_reads_and_every_count_stays_exact() {
    let t = TestApp::spawn().await;
    let (done, retried) = workload(&t, 40, None).await;
    eprintln!("{retried} answers were 503 and retried");
    assert_eq!(done.iter().map(|d| d.attempted_sends).sum::<u64>(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_twenty_percent_faults_edits_and_deletes_still_end_exact() {
    let proxy = FaultProxy::start().await;
    let t = TestApp::spawn_with(client_at(&proxy.url)).await;
    let (done, retried) = workload(&t, 40, Some(&proxy)).await;
    let injected = proxy.injected();
    eprintln!(
        "faults injected (failed, throttled, delayed, cut): {injected:?}; {retried} answers were 503 and retried"
    );
    assert!(injected.iter().all(|n| *n > 0), "every kind of fault happened: {injected:?}");
    assert_eq!(done.iter().map(|d| d.attempted_sends).sum::<u64>(), 120);
}
