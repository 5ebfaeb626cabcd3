//! What a warm instance remembers between requests (each thread's participants, so that a send,
//! a message's delete or a thread's delete reads every member's view in the first round trip)
//! saves round trips and never changes an answer: other instances change the participants under
//! it, and its sends and deletes still count exactly the right people.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::{batch_get_item, get_item, query, transact_write_items};
use serde_json::json;
use shared::App;

use crate::helpers::{TestApp, TestUser, client_at, endpoint};

/// The DynamoDB operations a client made, and in how many sequential round trips: a call that
/// starts while none is in flight starts a round trip; calls run together share one.
#[derive(Debug, Clone, Default)]
struct Calls(Arc<Mutex<Made>>);

#[derive(Debug, Default)]
struct Made {
    names: Vec<&'static str>,
    in_flight: usize,
    rounds: usize,
}

impl Calls {
    /// The operations since the last call, sorted (concurrent calls start in any order), and
    /// their round trips.
    fn take(&self) -> (Vec<&'static str>, usize) {
        let mut made = self.0.lock().unwrap();
        assert_eq!(made.in_flight, 0, "a call is still in flight");
        let mut names = std::mem::take(&mut made.names);
        names.sort_unstable();
        (names, std::mem::take(&mut made.rounds))
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "tests::Calls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let name = if input.downcast_ref::<get_item::GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<batch_get_item::BatchGetItemInput>().is_some() {
            "BatchGetItem"
        } else if input.downcast_ref::<transact_write_items::TransactWriteItemsInput>().is_some() {
            "TransactWriteItems"
        } else if input.downcast_ref::<query::QueryInput>().is_some() {
            "Query"
        } else {
            "other"
        };
        let mut made = self.0.lock().unwrap();
        made.names.push(name);
        if made.in_flight == 0 {
            made.rounds += 1;
        }
        made.in_flight += 1;
        Ok(())
    }

    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.lock().unwrap().in_flight -= 1;
        Ok(())
    }
}

/// Another instance of the functions over the same table: its own store, so its own memory,
/// with its DynamoDB calls counted.
fn another_instance(t: &TestApp) -> (TestApp, Calls) {
    let calls = Calls::default();
    let config = client_at(&endpoint()).config().to_builder().interceptor(calls.clone()).build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let app = App::new(t.app.config.clone(), client);
    (TestApp::over(Arc::new(app)), calls)
}

async fn participants(t: &TestApp, thread: &str, owner: &TestUser, who: &[&TestUser]) {
    let ids: Vec<&str> = who.iter().map(|u| u.id.as_str()).collect();
    let r = t
        .call(
            lambda_http::http::Method::PATCH,
            &format!("/api/threads/{thread}/"),
            Some(&owner.token),
            Some(json!({ "participants": ids })),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_warm_instance_sends_in_two_round_trips_and_counts_the_participants_as_they_are_now() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol, dave) =
        (t.user("alice").await, t.user("bob").await, t.user("carol").await, t.user("dave").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let (a, calls) = another_instance(&t);

    // The first send on an instance reads the sender's view, then the others' beside queueing
    // the message and reading who else waits; after it, the instance knows the participants and
    // does all three at once. The append is the last round trip.
    let cold = vec!["BatchGetItem", "GetItem", "Query", "TransactWriteItems", "TransactWriteItems"];
    let warm = vec!["BatchGetItem", "Query", "TransactWriteItems", "TransactWriteItems"];
    a.say(&thread, &alice, "one").await;
    assert_eq!(calls.take(), (cold, 3));
    a.say(&thread, &alice, "two").await;
    assert_eq!(calls.take(), (warm.clone(), 2));
    assert_eq!(t.thread_unread(&thread, &bob).await, 2);

    // Elsewhere, bob leaves the thread and carol joins: this instance's memory is stale.
    participants(&t, &thread, &alice, &[&alice, &carol]).await;
    a.say(&thread, &alice, "three").await;
    // Carol is read after the batch, while the queueing and the queue's read may still be
    // under way: 2 or 3 round trips, as the timings fall.
    let (made, rounds) = calls.take();
    assert_eq!(made, ["BatchGetItem", "BatchGetItem", "Query", "TransactWriteItems", "TransactWriteItems"]);
    assert!((2..=3).contains(&rounds), "carol was read after: {rounds} round trips");
    assert_eq!(t.thread_unread(&thread, &carol).await, 1, "joiners count what is sent after they join");
    assert_eq!(t.unread(&carol).await, (1, 1));
    assert_eq!(t.unread(&bob).await, (0, 0), "bob is out, and nothing of it counts for him");
    assert_eq!(t.get(&format!("/api/threads/{thread}/"), &bob).await.status, 404);
    a.say(&thread, &alice, "four").await;
    assert_eq!(calls.take(), (warm, 2), "and now it knows");

    // Someone outside the thread gets a 404 from a warm instance too, and nothing is written.
    let r = a.post(&format!("/api/threads/{thread}/messages/"), &dave, json!({"text": "hi"})).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"detail": "Not found."})),
        "as for a thread that does not exist"
    );
    assert!(!calls.take().0.contains(&"TransactWriteItems"));
    assert_eq!(t.unread(&carol).await, (2, 1));
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &alice).await.body["count"], 4);
}

#[tokio::test]
async fn a_warm_instance_deletes_a_message_for_exactly_the_members_who_had_not_read_it() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let (a, calls) = another_instance(&t);
    let first = a.say(&thread, &alice, "first").await["id"].as_str().unwrap().to_owned();
    let second = a.say(&thread, &alice, "second").await["id"].as_str().unwrap().to_owned();
    calls.take();

    // Bob reads both; carol joins after (she has nothing unread); then alice deletes the first,
    // which is not the last message: the members' views come in the batch beside the message.
    assert_eq!(t.get(&format!("/api/threads/{thread}/messages/"), &bob).await.status, 200);
    participants(&t, &thread, &alice, &[&alice, &bob, &carol]).await;
    let third = a.say(&thread, &alice, "third").await["id"].as_str().unwrap().to_owned();
    // Carol is read after the batch, while the queueing and the queue's read may still be
    // under way: 2 or 3 round trips, as the timings fall.
    let (made, rounds) = calls.take();
    assert_eq!(made, ["BatchGetItem", "BatchGetItem", "Query", "TransactWriteItems", "TransactWriteItems"]);
    assert!((2..=3).contains(&rounds), "carol was read after: {rounds} round trips");
    assert_eq!((t.unread(&bob).await, t.unread(&carol).await), ((1, 1), (1, 1)));

    assert_eq!(a.delete(&format!("/api/threads/{thread}/messages/{first}/"), &alice).await.status, 204);
    assert_eq!(calls.take(), (vec!["BatchGetItem", "GetItem", "TransactWriteItems"], 2));
    assert_eq!(
        (t.unread(&bob).await, t.unread(&carol).await),
        ((1, 1), (1, 1)),
        "both had read it or never had it"
    );

    // The third is unread by both: deleting it takes one from each.
    assert_eq!(a.delete(&format!("/api/threads/{thread}/messages/{third}/"), &alice).await.status, 204);
    assert_eq!((t.unread(&bob).await, t.unread(&carol).await), ((0, 0), (0, 0)));
    let listed = t.get(&format!("/api/threads/{thread}/messages/"), &alice).await.body;
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["results"][0]["id"], second.as_str());
}

#[tokio::test]
async fn a_warm_instance_deletes_a_thread_for_the_participants_as_they_are_now() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let thread = t.thread(&alice, &[&bob]).await;
    let (a, calls) = another_instance(&t);
    a.say(&thread, &alice, "hi").await;

    // Carol joins elsewhere and hears something: the instance's memory of the thread is stale,
    // so what it read beside the thread is read again for the participants as they are.
    participants(&t, &thread, &alice, &[&alice, &bob, &carol]).await;
    t.say(&thread, &alice, "hello carol").await;
    assert_eq!((t.unread(&bob).await, t.unread(&carol).await), ((2, 1), (1, 1)));
    calls.take();
    assert_eq!(a.delete(&format!("/api/threads/{thread}/"), &alice).await.status, 204);
    let stale = vec!["BatchGetItem", "BatchGetItem", "GetItem", "GetItem", "GetItem", "TransactWriteItems"];
    assert_eq!(calls.take(), (stale, 3));
    assert_eq!((t.unread(&bob).await, t.unread(&carol).await), ((0, 0), (0, 0)), "nothing of it counts");
    for user in [&alice, &bob, &carol] {
        assert_eq!(t.get(&format!("/api/threads/{thread}/"), user).await.status, 404);
    }

    // Known and unchanged: the views and the set come beside the thread, once. (The deleted
    // thread gave its set up: the same set makes a new thread.)
    let r = t
        .post("/api/threads/", &alice, json!({ "participants": [bob.id.as_str(), carol.id.as_str()] }))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let other = r.body["id"].as_str().unwrap().to_owned();
    a.say(&other, &bob, "new").await;
    calls.take();
    assert_eq!(a.delete(&format!("/api/threads/{other}/"), &alice).await.status, 204);
    assert_eq!(calls.take(), (vec!["BatchGetItem", "GetItem", "GetItem", "TransactWriteItems"], 2));
    assert_eq!((t.unread(&alice).await, t.unread(&carol).await), ((0, 0), (0, 0)));
}

#[tokio::test]
async fn a_warm_instance_lets_a_participant_leave_in_two_round_trips() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol, dave) =
        (t.user("alice").await, t.user("bob").await, t.user("carol").await, t.user("dave").await);
    let thread = t.thread(&alice, &[&bob, &carol]).await;
    t.say(&thread, &alice, "hi").await;
    let (a, calls) = another_instance(&t);
    let leave = |who: &TestUser| {
        let (a, uri) = (&a, format!("/api/threads/{thread}/leave/"));
        let who = who.clone();
        async move { a.post(&uri, &who, json!({})).await.status }
    };

    // Never seen here: the thread, then the leaver's view and the reservations of the set and of
    // the set the leave makes, then the write.
    assert_eq!(leave(&carol).await, 204);
    assert_eq!(
        calls.take(),
        (vec!["BatchGetItem", "GetItem", "GetItem", "GetItem", "TransactWriteItems"], 3)
    );
    assert_eq!(t.unread(&carol).await, (0, 0), "her unread message went with her");
    assert_eq!(t.get(&format!("/api/threads/{thread}/"), &carol).await.status, 404);

    // Dave joins elsewhere: the instance remembers the set without him, so its guess of the
    // reservation is wrong and the set is read again.
    participants(&t, &thread, &alice, &[&alice, &bob, &dave]).await;
    t.say(&thread, &alice, "hello dave").await;
    assert_eq!(leave(&dave).await, 204);
    let stale = ["BatchGetItem", "BatchGetItem", "GetItem", "GetItem", "GetItem", "GetItem", "GetItem"];
    assert_eq!(calls.take(), ([&stale[..], &["TransactWriteItems"]].concat(), 3));
    assert_eq!(t.unread(&dave).await, (0, 0));

    // Known and unchanged: everything beside the thread.
    participants(&t, &thread, &alice, &[&alice, &bob, &carol]).await;
    assert_eq!(a.get(&format!("/api/threads/{thread}/"), &bob).await.status, 200);
    calls.take();
    assert_eq!(leave(&carol).await, 204);
    assert_eq!(
        calls.take(),
        (vec!["BatchGetItem", "GetItem", "GetItem", "GetItem", "TransactWriteItems"], 2)
    );
    assert_eq!(t.unread(&bob).await, (2, 1));
    assert_eq!(t.get(&format!("/api/threads/{thread}/"), &carol).await.status, 404);
    assert_eq!(
        t.get(&format!("/api/threads/{thread}/"), &alice).await.body["participants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The last other participant cannot leave; the set the leaves gave up makes a new thread.
    assert_eq!(leave(&bob).await, 409);
    let create = |who: Vec<&str>| t.post("/api/threads/", &alice, json!({ "participants": who }));
    assert_eq!(create(vec![bob.id.as_str(), carol.id.as_str()]).await.status, 201);
    assert_eq!(create(vec![bob.id.as_str()]).await.body["id"], thread.as_str(), "the thread left behind");
}
