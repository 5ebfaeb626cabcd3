//! Login throttling: limits that hold under concurrency, and strangers who cannot lock others out.
//!
//! The concurrent tests run each login as its own task on a multi-threaded runtime, as
//! separate Lambda instances would: their DynamoDB requests interleave for real in DynamoDB
//! Local, which is where the counting has to be atomic, and one login's password hashing does
//! not hold up the others' requests (in one thread it would, which no deployment does).

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

/// What concurrent logins were answered.
struct Answers {
    /// 401: the password was checked and was wrong.
    checked: u64,
    /// 429: refused unchecked.
    throttled: u64,
    /// 503s sent again.
    retried: u64,
}

impl Answers {
    /// Exactly `limit` checked, the rest throttled. A retried 503 may have kept its slot (giving
    /// it back failed too): then fewer are checked, never more.
    fn assert_limit(&self, limit: u64, sent: u64) {
        eprintln!("{} checked, {} throttled, {} 503s retried", self.checked, self.throttled, self.retried);
        assert!(self.checked <= limit, "{} checked against a limit of {limit}", self.checked);
        assert!(self.checked + self.retried >= limit, "only {} checked", self.checked);
        assert_eq!(self.checked + self.throttled, sent);
    }
}

/// Sends all the logins at once, each on its own task. A 503 (DynamoDB Local, which
/// serialises writes, fell behind the SDK's timeouts) is sent again, as its `Retry-After`
/// asks; anything but 401, 429 and 503 fails the test.
async fn all_at_once(t: &TestApp, logins: Vec<(String, String, String)>) -> Answers {
    let retried = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = logins.into_iter().map(|(address, username, password)| {
        let app = TestApp::over(t.app.clone());
        let retried = retried.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let r = app.send(login_from(&address, &username, &password)).await;
                if r.status != 503 {
                    return r;
                }
                retried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            panic!("a login stayed 503");
        })
    });
    let replies = join_all(tasks).await;
    let (mut refused, mut throttled) = (0, 0);
    for r in replies.into_iter().map(|r| r.expect("a login task")) {
        match r.status {
            401 => refused += 1,
            429 => throttled += 1,
            _ => panic!("{r:?}"),
        }
    }
    Answers { checked: refused, throttled, retried: retried.load(std::sync::atomic::Ordering::Relaxed) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_wrong_passwords_check_at_most_the_limit() {
    let t = TestApp::spawn().await;
    t.user("alice").await;
    let n = PAIR_FAILURE_LIMIT * 2 + 5;
    let logins = (0..n).map(|i| ("198.51.100.1".into(), "alice".into(), format!("wrong{i}"))).collect();
    all_at_once(&t, logins).await.assert_limit(PAIR_FAILURE_LIMIT, n);
    assert_eq!(t.send(login_from("198.51.100.1", "alice", "pw-alice")).await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_guesses_from_one_address_check_at_most_its_limit() {
    let t = TestApp::spawn().await;
    t.user("carol").await;
    let n = ADDRESS_FAILURE_LIMIT + 15;
    let logins = (0..n).map(|i| ("203.0.113.7".into(), format!("guess{i}"), "x".into())).collect();
    all_at_once(&t, logins).await.assert_limit(ADDRESS_FAILURE_LIMIT, n);
    assert_eq!(t.send(login_from("203.0.113.7", "carol", "pw-carol")).await.status, 429);
    assert_eq!(t.send(login_from("203.0.113.8", "carol", "pw-carol")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_guesses_from_many_addresses_check_at_most_the_username_ceiling() {
    let t = TestApp::spawn().await;
    t.user("dave").await;
    let n = USERNAME_FAILURE_LIMIT + 15;
    let logins = (0..n).map(|i| (format!("192.0.2.{}", i % 250), "dave".into(), "x".into())).collect();
    all_at_once(&t, logins).await.assert_limit(USERNAME_FAILURE_LIMIT, n);
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
