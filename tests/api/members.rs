//! Membership through the API: the owner sets the participants or hands the thread over, and
//! participants leave; counts stay exact for everyone who joins or leaves, also under races.

use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, unseen};

async fn patch(t: &TestApp, thread: &str, user: &TestUser, body: Value) -> crate::helpers::Reply {
    t.call(Method::PATCH, &format!("/api/threads/{thread}/"), Some(&user.token), Some(body)).await
}

fn ids(users: &[&TestUser]) -> Vec<String> {
    users.iter().map(|u| u.id.as_str().to_owned()).collect()
}

async fn thread_count(t: &TestApp, user: &TestUser) -> u64 {
    t.app.store.counters(&user.id).await.unwrap().thread_count
}

#[tokio::test]
async fn the_owner_sets_the_participants_and_joiners_and_leavers_are_exact() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob]).await;
    for i in 0..3 {
        t.say(&id, &alice, &format!("before {i}")).await;
    }
    assert_eq!(t.unread(&bob).await, (3, 1));

    // Carol joins and bob leaves, in one change.
    let r =
        patch(&t, &id, &alice, json!({"participants": ids(&[&alice, &carol]), "created": "ignored"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut got: Vec<&str> =
        r.body["participants"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    got.sort_unstable();
    let mut want = [alice.id.as_str(), carol.id.as_str()];
    want.sort_unstable();
    assert_eq!(got, want);

    // Carol sees the history, with nothing from before she joined unread.
    let history = t.get(&format!("/api/threads/{id}/messages/"), &carol).await;
    assert_eq!((history.status, history.body["count"].as_u64()), (200, Some(3)));
    assert_eq!(t.unread(&carol).await, (0, 0));
    assert_eq!(thread_count(&t, &carol).await, 1);
    // Bob lost the thread from his list and counts at once.
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &bob).await.status, 404);
    assert_eq!(t.get("/api/threads/", &bob).await.body["count"], 0);
    assert_eq!(t.unread(&bob).await, (0, 0));
    assert_eq!(thread_count(&t, &bob).await, 0);
    // What is sent now counts for carol and not for bob.
    t.say(&id, &alice, "after").await;
    assert_eq!(t.unread(&carol).await, (1, 1));
    assert_eq!(t.unread(&bob).await, (0, 0));
    assert_eq!(t.get(&format!("/api/threads/{id}/messages/"), &bob).await.status, 404);

    // Bob comes back: his earlier messages still count as his own.
    t.say(&id, &carol, "carol speaks").await;
    let r = patch(&t, &id, &alice, json!({"participants": ids(&[&alice, &bob, &carol])})).await;
    assert_eq!(r.status, 200);
    assert_eq!(t.unread(&bob).await, (0, 0));
    t.say(&id, &bob, "bob is back").await;
    t.say(&id, &carol, "welcome").await;
    assert_eq!(t.thread_unread(&id, &bob).await, 1);
    assert_eq!(t.thread_unread(&id, &alice).await, 3, "alice has read none of the last three");
    t.get(&format!("/api/threads/{id}/messages/"), &bob).await;
    assert_eq!(t.unread(&bob).await, (0, 0));
    let listed =
        t.get(&format!("/api/threads/{id}/messages/?limit=100"), &alice).await.body["results"].clone();
    for u in [&alice, &bob, &carol] {
        let m = t.app.store.membership(&u.id, &id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(m.unread, unseen(listed.as_array().unwrap(), &m), "{}", u.id);
    }
}

#[tokio::test]
async fn only_the_owner_changes_members_and_bad_input_changes_nothing() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol, eve) =
        (t.user("alice").await, t.user("bob").await, t.user("carol").await, t.user("eve").await);
    let mallory = t.user_with("mallory", false, false).await;
    let id = t.thread(&alice, &[&bob]).await;
    assert_eq!(patch(&t, &id, &bob, json!({"participants": ids(&[&carol])})).await.status, 403);
    assert_eq!(patch(&t, &id, &eve, json!({"participants": ids(&[&carol])})).await.status, 404);
    for (body, field) in [
        (json!({"participants": ["nobody"]}), "participants"),
        (json!({"participants": ids(&[&mallory])}), "participants"),
        (json!({"participants": []}), "participants"),
        (json!({"participants": "x"}), "participants"),
        (json!({"owner": "nobody"}), "owner"),
        (json!({"owner": carol.id.as_str()}), "owner"),
    ] {
        let r = patch(&t, &id, &alice, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.body[field].is_array(), "{body}: {:?}", r.body);
    }
    let many: Vec<String> = (0..32).map(|i| format!("u{i}")).collect();
    assert_eq!(patch(&t, &id, &alice, json!({"participants": many})).await.status, 400);
    assert_eq!(patch(&t, &id, &alice, json!({"colour": "red"})).await.status, 400, "unknown fields");
    let put = t.call(Method::PUT, &format!("/api/threads/{id}/"), Some(&alice.token), Some(json!({}))).await;
    assert_eq!((put.status, &put.body), (400, &json!({"participants": ["This field is required."]})));
    // Nothing changed.
    let view = t.get(&format!("/api/threads/{id}/"), &bob).await.body;
    assert_eq!(view["participants"].as_array().unwrap().len(), 2);
    assert_eq!(view["owner"], alice.id.as_str());

    // A set another thread has exactly is shared, never refused: the answer names no other
    // thread, and the caller's change is made.
    let other = t.thread(&alice, &[&carol]).await;
    let r = patch(&t, &id, &alice, json!({"participants": ids(&[&alice, &carol])})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!format!("{r:?}").contains(&other), "{r:?}");
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &bob).await.status, 404, "bob left with the change");
    let r = patch(&t, &id, &alice, json!({"participants": ids(&[&alice, &bob])})).await;
    assert_eq!(r.status, 200, "and back: {r:?}");
    // The same set again is no change; PUT works like PATCH.
    let same = t
        .call(
            Method::PUT,
            &format!("/api/threads/{id}/"),
            Some(&alice.token),
            Some(json!({"participants": ids(&[&alice, &bob])})),
        )
        .await;
    assert_eq!(same.status, 200);
    // After the change, creating with the old set makes a new thread, the new set finds this one.
    let r = patch(&t, &id, &alice, json!({"participants": ids(&[&alice, &bob, &eve])})).await;
    assert_eq!(r.status, 200);
    let again = t.post("/api/threads/", &alice, json!({"participants": ids(&[&bob, &eve])})).await;
    assert_eq!((again.status, again.body["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(t.post("/api/threads/", &alice, json!({"participants": ids(&[&bob])})).await.status, 201);
}

#[tokio::test]
async fn ownership_is_handed_over_and_participants_leave() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob, &carol]).await;
    t.say(&id, &alice, "hi").await;

    let leave_uri = format!("/api/threads/{id}/leave/");
    let leave = |u: &TestUser| {
        let token = u.token.clone();
        let (t, uri) = (&t, &leave_uri);
        async move { t.call(Method::POST, uri, Some(&token), None).await }
    };
    let r = leave(&alice).await;
    assert_eq!(r.status, 403);
    assert!(r.body["detail"].as_str().unwrap().contains("hand ownership"), "{r:?}");

    let r = patch(&t, &id, &alice, json!({"owner": bob.id.as_str()})).await;
    assert_eq!((r.status, r.body["owner"].as_str()), (200, Some(bob.id.as_str())));
    for u in [&alice, &bob, &carol] {
        assert_eq!(t.get(&format!("/api/threads/{id}/"), u).await.body["owner"], bob.id.as_str());
    }
    assert_eq!(patch(&t, &id, &alice, json!({"owner": alice.id.as_str()})).await.status, 403);
    assert_eq!(t.delete(&format!("/api/threads/{id}/"), &alice).await.status, 403);

    // Carol (unread 1) leaves: her counts drop at once.
    assert_eq!(t.unread(&carol).await, (1, 1));
    assert_eq!(leave(&carol).await.status, 204);
    assert_eq!(t.unread(&carol).await, (0, 0));
    assert_eq!(thread_count(&t, &carol).await, 0);
    assert_eq!(leave(&carol).await.status, 404, "not in it any more");
    // Two are left: the last other participant cannot leave.
    let r = leave(&alice).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(
        t.get(&format!("/api/threads/{id}/"), &alice).await.body["participants"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_never_mix_sets_and_races_with_sends_stay_exact() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(t.user(&format!("o{i}")).await);
    }
    let id = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let mut changes = 0;
    for round in 0..6 {
        // Two set changes by the owner race each other and three sends.
        let a = ids(&[&alice, &bob, &others[round % 4]]);
        let b = ids(&[&alice, &bob, &others[(round + 1) % 4], &others[(round + 2) % 4]]);
        let (ra, rb, sends) = tokio::join!(
            patch(&t, &id, &alice, json!({"participants": a.clone()})),
            patch(&t, &id, &alice, json!({"participants": b.clone()})),
            futures_util::future::join_all((0..3).map(|i| t.post(
                &uri,
                &bob,
                json!({"text": format!("r{round}-{i}")})
            ))),
        );
        for r in [&ra, &rb] {
            assert!([200, 503].contains(&r.status), "{r:?}");
        }
        changes += [&ra, &rb].iter().filter(|r| r.status == 200).count();
        for s in &sends {
            assert!([201, 503].contains(&s.status), "{s:?}");
        }
        let view = t.get(&format!("/api/threads/{id}/"), &alice).await.body;
        let mut now: Vec<String> =
            view["participants"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        now.sort();
        let sorted = |mut set: Vec<String>| {
            set.sort();
            set
        };
        assert!(now == sorted(a) || now == sorted(b), "a set nobody asked for: {now:?}");
    }
    // Everyone's counts agree with the memberships that exist and the messages they show.
    let listed = t.get(&format!("{uri}?limit=100"), &bob).await.body["results"].clone();
    let thread = id.parse().unwrap();
    for u in [&alice, &bob].into_iter().chain(others.iter()) {
        let m = t.app.store.membership(&u.id, &thread).await.unwrap();
        assert_eq!(thread_count(&t, u).await, u64::from(m.is_some()), "{}", u.id);
        let expected = m.as_ref().map_or(0, |m| unseen(listed.as_array().unwrap(), m));
        assert_eq!(m.as_ref().map_or(0, |m| m.unread), expected, "{}", u.id);
        assert_eq!(t.unread(u).await, (expected, u64::from(expected > 0)), "{}", u.id);
    }
    eprintln!("{changes} of 12 racing membership changes went through");
    assert!(changes >= 6, "the changes happened");
}

#[tokio::test]
async fn leaving_or_removal_into_a_set_another_thread_has_works_and_names_nothing() {
    let t = TestApp::spawn().await;
    let (o, x, p, q) = (t.user("o").await, t.user("x").await, t.user("p").await, t.user("q").await);
    let private = t.thread(&o, &[&x]).await;
    let group = t.thread(&o, &[&x, &p]).await;
    t.say(&group, &o, "hi all").await;

    // P leaves: the set left behind, {O, X}, is the one O and X's own thread has.
    let r = t.post(&format!("/api/threads/{group}/leave/"), &p, json!({})).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert!(!format!("{r:?}").contains(&private), "{r:?}");
    assert_eq!(t.get(&format!("/api/threads/{private}/"), &p).await.status, 404);
    assert_eq!(t.unread(&p).await, (0, 0));
    assert_eq!(thread_count(&t, &p).await, 0);

    // The owner removes a participant into the same set: made, not refused.
    let third = t.thread(&o, &[&x, &q]).await;
    let r = patch(&t, &third, &o, json!({"participants": ids(&[&o, &x])})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!format!("{r:?}").contains(&private) && !format!("{r:?}").contains(&group), "{r:?}");
    assert_eq!(thread_count(&t, &o).await, 3);

    // Three threads share {O, X}, all working; asking for the set finds the most recently
    // active, whichever it is.
    for (i, newest) in [&group, &private, &third].into_iter().enumerate() {
        t.say(newest, &x, &format!("latest {i}")).await;
        let found = t.post("/api/threads/", &o, json!({"participants": ids(&[&x])})).await;
        assert_eq!((found.status, found.body["id"].as_str()), (200, Some(newest.as_str())));
    }
    assert_eq!(t.unread(&o).await, (3, 3), "one unread in each");

    // A stranger probing a pair: a thread with both, handed to one of them, then left. Nothing
    // in any answer names their thread.
    let probe = t.thread(&p, &[&o, &x]).await;
    let handed = patch(&t, &probe, &p, json!({"owner": o.id.as_str()})).await;
    assert_eq!(handed.status, 200, "{handed:?}");
    let left = t.post(&format!("/api/threads/{probe}/leave/"), &p, json!({})).await;
    assert_eq!(left.status, 204, "{left:?}");
    for reply in [&handed, &left] {
        for other in [&private, &group, &third] {
            assert!(!format!("{reply:?}").contains(other.as_str()), "{reply:?} names {other}");
        }
    }

    // Deleting one of the threads keeps the set for the others.
    assert_eq!(t.delete(&format!("/api/threads/{third}/"), &o).await.status, 204);
    let found = t.post("/api/threads/", &o, json!({"participants": ids(&[&x])})).await;
    assert_eq!(found.status, 200, "{found:?}");
    assert_ne!(found.body["id"].as_str(), Some(third.as_str()));
}

#[tokio::test]
async fn an_owner_left_out_of_the_participants_is_refused_not_put_back() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob, &carol]).await;
    let r = patch(&t, &id, &alice, json!({"participants": ids(&[&bob, &carol])})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["participants"][0].as_str().unwrap().contains("hand ownership"), "{r:?}");
    let view = t.get(&format!("/api/threads/{id}/"), &alice).await;
    assert_eq!((view.status, view.body["participants"].as_array().unwrap().len()), (200, 3));

    // Handing over in the same change is leaving it: allowed, and the caller is out.
    let r =
        patch(&t, &id, &alice, json!({"participants": ids(&[&bob, &carol]), "owner": bob.id.as_str()})).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &alice).await.status, 404);
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &bob).await.body["owner"], bob.id.as_str());
}

#[tokio::test]
async fn bounds_the_schema_states_are_enforced() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob]).await;
    let r = patch(&t, &id, &alice, json!({"owner": null})).await;
    assert_eq!((r.status, &r.body), (400, &json!({"owner": ["This field may not be null."]})));
    // 1,002 entries of 3 distinct ids: the schema's maxItems is 32 entries, not 32 people.
    let many: Vec<&str> =
        [alice.id.as_str(), bob.id.as_str(), carol.id.as_str()].into_iter().cycle().take(1002).collect();
    let r = patch(&t, &id, &alice, json!({"participants": many})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["participants"], json!(["Ensure this field has no more than 32 elements."]));
    let r = t.post("/api/threads/", &alice, json!({"participants": many})).await;
    assert_eq!(r.status, 400, "{r:?}");
    // Nothing changed.
    let view = t.get(&format!("/api/threads/{id}/"), &bob).await.body;
    assert_eq!(
        (view["participants"].as_array().unwrap().len(), &view["owner"]),
        (2, &json!(alice.id.as_str()))
    );
    assert_eq!(t.get("/api/threads/", &carol).await.body["count"], 0);
}
