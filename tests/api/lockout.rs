//! Login throttling: limits that hold under concurrency, and strangers who cannot lock others out.
//!
//! The concurrent tests run the handlers as concurrent futures: their DynamoDB requests
//! interleave for real in DynamoDB Local, which is where the counting has to be atomic.

use futures_util::future::join_all;
use lambda_http::http::Method;
use serde_json::json;
use shared::accounts::{ADDRESS_FAILURE_LIMIT, PAIR_FAILURE_LIMIT, USERNAME_FAILURE_LIMIT};

use crate::helpers::TestApp;

fn login_from(address: &str, username: &str, password: &str) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let mut ctx = aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(address.to_owned());
    lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri("/api/token/")
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(json!({"username": username, "password": password}).to_string()))
        .unwrap()
        .with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(ctx))
}

/// Sends all the logins at once; returns how many were answered 401 (their password was
/// checked and was wrong) and how many 429 (refused unchecked). Anything else fails the test.
async fn all_at_once(t: &TestApp, logins: Vec<lambda_http::Request>) -> (u64, u64) {
    let replies = join_all(logins.into_iter().map(|req| t.send(req))).await;
    let (mut refused, mut throttled) = (0, 0);
    for r in replies {
        match r.status {
            401 => refused += 1,
            429 => throttled += 1,
            _ => panic!("{r:?}"),
        }
    }
    (refused, throttled)
}

#[tokio::test]
async fn concurrent_wrong_passwords_check_at_most_the_limit() {
    let t = TestApp::spawn().await;
    t.user("alice").await;
    let n = PAIR_FAILURE_LIMIT * 2 + 5;
    let logins = (0..n).map(|i| login_from("198.51.100.1", "alice", &format!("wrong{i}"))).collect();
    let (checked, throttled) = all_at_once(&t, logins).await;
    assert_eq!((checked, throttled), (PAIR_FAILURE_LIMIT, n - PAIR_FAILURE_LIMIT));
    assert_eq!(t.send(login_from("198.51.100.1", "alice", "pw-alice")).await.status, 429);
}

#[tokio::test]
async fn concurrent_guesses_from_one_address_check_at_most_its_limit() {
    let t = TestApp::spawn().await;
    t.user("carol").await;
    let n = ADDRESS_FAILURE_LIMIT + 15;
    let logins = (0..n).map(|i| login_from("203.0.113.7", &format!("guess{i}"), "x")).collect();
    let (checked, throttled) = all_at_once(&t, logins).await;
    assert_eq!((checked, throttled), (ADDRESS_FAILURE_LIMIT, n - ADDRESS_FAILURE_LIMIT));
    assert_eq!(t.send(login_from("203.0.113.7", "carol", "pw-carol")).await.status, 429);
    assert_eq!(t.send(login_from("203.0.113.8", "carol", "pw-carol")).await.status, 200);
}

#[tokio::test]
async fn concurrent_guesses_from_many_addresses_check_at_most_the_username_ceiling() {
    let t = TestApp::spawn().await;
    t.user("dave").await;
    let n = USERNAME_FAILURE_LIMIT + 15;
    let logins = (0..n).map(|i| login_from(&format!("10.0.{}.{}", i / 200, i % 200), "dave", "x")).collect();
    let (checked, throttled) = all_at_once(&t, logins).await;
    assert_eq!((checked, throttled), (USERNAME_FAILURE_LIMIT, n - USERNAME_FAILURE_LIMIT));
    assert_eq!(t.send(login_from("192.0.2.200", "dave", "pw-dave")).await.status, 429);
}

#[tokio::test]
async fn a_stranger_cannot_lock_anyone_out_of_their_own_address() {
    let t = TestApp::spawn().await;
    t.user_with("root", true, true).await;
    t.user("bob").await;
    let stranger = "198.51.100.66";
    for _ in 0..PAIR_FAILURE_LIMIT {
        assert_eq!(t.send(login_from(stranger, "root", "guess")).await.status, 401);
    }
    // The stranger's address is locked for that user, even with the right password...
    let r = t.send(login_from(stranger, "root", "pw-root")).await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 900, "{wait}");
    assert!(r.body["detail"].as_str().unwrap().starts_with("Request was throttled."));
    // ...and keeping at it spends none of the user's ceiling...
    for _ in 0..USERNAME_FAILURE_LIMIT {
        assert_eq!(t.send(login_from(stranger, "root", "guess")).await.status, 429);
    }
    // ...while the owner, from their own address, gets in; other users from the stranger's do.
    assert_eq!(t.send(login_from("192.0.2.1", "root", "pw-root")).await.status, 200);
    assert_eq!(t.send(login_from(stranger, "bob", "pw-bob")).await.status, 200);
}

#[tokio::test]
async fn a_success_clears_the_pair_and_successes_never_count() {
    let t = TestApp::spawn().await;
    t.user("bob").await;
    for _ in 0..PAIR_FAILURE_LIMIT - 1 {
        assert_eq!(t.send(login_from("198.51.100.3", "bob", "wrong")).await.status, 401);
    }
    assert_eq!(t.send(login_from("198.51.100.3", "bob", "pw-bob")).await.status, 200);
    for _ in 0..PAIR_FAILURE_LIMIT - 1 {
        assert_eq!(t.send(login_from("198.51.100.3", "bob", "wrong")).await.status, 401);
    }
    assert_eq!(t.send(login_from("198.51.100.3", "bob", "pw-bob")).await.status, 200);
    // More successes from one address than any limit allows failures.
    for _ in 0..=ADDRESS_FAILURE_LIMIT {
        assert_eq!(t.send(login_from("198.51.100.4", "bob", "pw-bob")).await.status, 200);
    }
}
