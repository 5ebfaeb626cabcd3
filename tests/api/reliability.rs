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
    assert_eq!(other.status, 409);
    assert_eq!(other.body, json!({"detail": "This client_id was already used for a different message."}));
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

/// Retries that a 503 made necessary, across the test binary (reported, never asserted on).
static RETRIED_503: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sends until acknowledged, retrying 503s with the same client id as a careful client would.
async fn send_acknowledged(
    t: &TestApp,
    uri: &str,
    user: &crate::helpers::TestUser,
    text: &str,
    client_id: &str,
) -> serde_json::Value {
    for _ in 0..60 {
        let r = t.post(uri, user, json!({"text": text, "client_id": client_id})).await;
        match r.status {
            200 | 201 => return r.body,
            503 => {
                RETRIED_503.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert!(r.headers.contains_key("retry-after"));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => panic!("send answered {other}: {:?}", r.body),
        }
    }
    panic!("a send was never acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_senders_two_hundred_messages_each_while_others_read() {
    const SENDERS: usize = 5;
    const EACH: usize = 200;
    let t = TestApp::spawn().await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(t.user(&format!("sender{i}")).await);
    }
    let readers = [t.user("reader0").await, t.user("reader1").await];
    let others: Vec<&crate::helpers::TestUser> = senders[1..].iter().chain(readers.iter()).collect();
    let id = t.thread(&senders[0], &others).await;
    let uri = format!("/api/threads/{id}/messages/");

    let sending = futures_util::future::join_all(senders.iter().enumerate().map(|(s, user)| {
        let (t, uri) = (&t, uri.clone());
        async move {
            let mut acked = Vec::new();
            for i in 0..EACH {
                let body = send_acknowledged(t, &uri, user, &format!("{s}:{i}"), &format!("c{s}-{i}")).await;
                acked.push(body["id"].as_str().unwrap().to_owned());
            }
            acked
        }
    }));
    let reading = futures_util::future::join_all(readers.iter().chain(senders.iter().take(2)).map(|user| {
        let (t, uri) = (&t, uri.clone());
        async move {
            for _ in 0..25 {
                let r = t.get(&format!("{uri}?limit=20"), user).await;
                assert!(r.status == 200 || r.status == 503, "{r:?}");
                t.get("/api/unread_count/", user).await;
            }
        }
    }));
    let (acked, ()) = tokio::join!(sending, async {
        reading.await;
    });
    let acked: Vec<String> = acked.concat();
    assert_eq!(acked.len(), SENDERS * EACH);
    eprintln!(
        "{} sends acknowledged; {} answers were 503 and retried with the same client_id",
        acked.len(),
        RETRIED_503.load(std::sync::atomic::Ordering::Relaxed)
    );

    // Every acknowledged message is there exactly once, numbered 1..=1000 with no gap.
    let total = (SENDERS * EACH) as u64;
    let mut listed = Vec::new();
    let mut next = Some(format!("{uri}?limit=100"));
    let observer = t.user("observer").await;
    t.app.store.add_participant(&id.parse().unwrap(), &observer.id).await.unwrap();
    while let Some(page) = next {
        let r = t.get(&page, &observer).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["count"], total);
        listed.extend(r.body["results"].as_array().unwrap().iter().cloned());
        next = r.body["next"].as_str().map(|u| crate::helpers::path_of(&json!(u)));
    }
    let ids: Vec<String> = listed.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (1..=total).rev().map(|n| format!("{id}.{n}")).collect();
    assert_eq!(ids, expected, "one order, no gaps, no duplicates");
    let mut acked_sorted = acked.clone();
    acked_sorted.sort();
    let mut ids_sorted = ids.clone();
    ids_sorted.sort();
    assert_eq!(acked_sorted, ids_sorted, "every acknowledged message, once");
    let mut texts: Vec<&str> = listed.iter().map(|m| m["text"].as_str().unwrap()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), SENDERS * EACH);
    // Each sender's own messages keep their order.
    for s in 0..SENDERS {
        let mine: Vec<usize> = listed
            .iter()
            .rev()
            .filter_map(|m| {
                m["text"].as_str().unwrap().strip_prefix(&format!("{s}:")).map(|i| i.parse().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>());
    }

    // Every member's unread counts equal what they have not seen, and totals agree.
    let thread = id.parse().unwrap();
    for user in senders.iter().chain(readers.iter()) {
        let m = t.app.store.membership(&user.id, &thread).await.unwrap().unwrap();
        let unseen = crate::helpers::unseen(&listed, &m);
        assert_eq!(t.thread_unread(&id, user).await, unseen);
        assert_eq!(t.unread(user).await, (unseen, u64::from(unseen > 0)));
        // read_by of the newest message this member has read lists them.
        if m.read_seq.0 > 0 {
            let detail = t.get(&format!("{uri}{id}.{}/", m.read_seq.0), user).await.body;
            assert!(detail["read_by"].as_array().unwrap().iter().any(|r| r["user"] == user.id.as_str()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_racing_a_thread_delete_is_201_or_404_and_leaves_no_orphan() {
    let t = &TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let (mut sent, mut refused) = (0, 0);
    for round in 0..12 {
        let id = t.thread(&alice, &[&bob, &carol]).await;
        t.say(&id, &bob, "before").await;
        let uri = format!("/api/threads/{id}/messages/");
        let sends =
            futures_util::future::join_all([&bob, &carol, &bob].into_iter().enumerate().map(|(i, u)| {
                let (uri, body) =
                    (&uri, json!({"text": format!("r{round}"), "client_id": format!("r{round}-{i}")}));
                async move {
                    // A 503 is retried with the same client_id, as a careful client would.
                    loop {
                        let r = t.post(uri, u, body.clone()).await;
                        if r.status != 503 {
                            return r;
                        }
                        RETRIED_503.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
            }));
        let thread_uri = format!("/api/threads/{id}/");
        let delete = async {
            // A 503 (the delete kept losing to sends) is retried, as its Retry-After asks.
            for _ in 0..20 {
                let r = t.delete(&thread_uri, &alice).await;
                if r.status != 503 {
                    return r;
                }
                RETRIED_503.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("the delete never got through");
        };
        let (replies, deleted) = tokio::join!(sends, delete);
        assert_eq!(deleted.status, 204, "{deleted:?}");
        for r in &replies {
            assert!([201, 404].contains(&r.status), "a send racing a delete: {r:?}");
        }
        sent += replies.iter().filter(|r| r.status == 201).count();
        refused += replies.iter().filter(|r| r.status == 404).count();

        // Whatever won, the thread is gone for everyone and its partition purges to nothing.
        for u in [&alice, &bob, &carol] {
            assert_eq!(t.get(&format!("/api/threads/{id}/"), u).await.status, 404);
            assert_eq!(t.unread(u).await, (0, 0), "{}", u.id);
        }
        let thread: shared::domain::ids::ThreadId = id.parse().unwrap();
        while let shared::store::purge::PurgeProgress::More { .. } =
            t.app.store.purge_step(&thread, 100).await.unwrap()
        {}
        assert!(crate::helpers::partition(t, &id).await.is_empty(), "orphans left in {id}");
    }
    eprintln!("racing a delete: {sent} sends won, {refused} answered 404");
    assert!(sent + refused == 36);
}
