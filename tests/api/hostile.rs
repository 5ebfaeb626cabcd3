//! Hostile input: unknown fields, forged tokens, and what a stranger can learn.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::http::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(user: &str, token_type: &str, exp: i64) -> Value {
    json!({"token_type": token_type, "exp": exp, "iat": now() - 10, "jti": "0123456789abcdef", "user_id": user})
}

fn unsigned(header: Value, payload: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", part(&header), part(payload))
}

#[tokio::test]
async fn unknown_fields_are_400_and_change_nothing() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let r =
        t.post(&format!("/api/threads/{id}/messages/"), &alice, json!({"text": "x", "txet": "typo"})).await;
    assert_eq!((r.status, &r.body), (400, &json!({"txet": ["Unknown field."]})));
    let r = t
        .post(
            "/api/threads/",
            &alice,
            json!({"participants": [bob.id.as_str()], "owner": bob.id.as_str(), "admin": true}),
        )
        .await;
    assert_eq!((r.status, &r.body), (400, &json!({"admin": ["Unknown field."]})));
    let r = t
        .call(
            Method::POST,
            "/api/token/",
            None,
            Some(json!({"username": "alice", "password": "pw-alice", "is_staff": true})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(t.get(&format!("/api/threads/{id}/messages/"), &alice).await.body["count"], 0);
    // Read-only fields echoed back from a response are ignored, never applied.
    let r = t
        .post(
            &format!("/api/threads/{id}/messages/"),
            &alice,
            json!({"text": "x", "sender": bob.id.as_str(), "created": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["sender"], alice.id.as_str());
    assert_ne!(r.body["created"], "2000-01-01T00:00:00.000000Z");
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let user = alice.id.as_str();
    let good = claims(user, "access", now() + 600);
    let hs256 = |c: &Value, key: &[u8]| {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &EncodingKey::from_secret(key)).unwrap()
    };
    // Sanity: a correctly signed token works.
    assert_eq!(
        t.call(Method::GET, "/api/unread_count/", Some(&hs256(&good, SECRET)), None).await.status,
        200
    );

    let signature = hs256(&good, SECRET).rsplit('.').next().unwrap().to_owned();
    let mut missing_user = good.clone();
    missing_user.as_object_mut().unwrap().remove("user_id");
    let mut missing_exp = good.clone();
    missing_exp.as_object_mut().unwrap().remove("exp");
    let forged = [
        ("alg none", unsigned(json!({"alg": "none", "typ": "JWT"}), &good, "")),
        ("RS256 header, HS256 signature", unsigned(json!({"alg": "RS256", "typ": "JWT"}), &good, &signature)),
        (
            "HS512",
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &good, &EncodingKey::from_secret(SECRET))
                .unwrap(),
        ),
        ("wrong key", hs256(&good, b"another-secret-another-secret-another")),
        (
            "tampered payload",
            unsigned(
                json!({"alg": "HS256", "typ": "JWT"}),
                &claims("someone-else", "access", now() + 600),
                &signature,
            ),
        ),
        ("expired beyond the leeway", hs256(&claims(user, "access", now() - 6), SECRET)),
        ("refresh as access", hs256(&claims(user, "refresh", now() + 600), SECRET)),
        ("admin session as access", hs256(&claims(user, "admin", now() + 600), SECRET)),
        ("no user_id", hs256(&missing_user, SECRET)),
        ("no exp", hs256(&missing_exp, SECRET)),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, token) in forged {
        let r = t.call(Method::GET, "/api/unread_count/", Some(&token), None).await;
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.body["code"], "token_not_valid", "{what}");
    }
    // Within the documented 5 s leeway, a just-expired token still works.
    let r = t
        .call(
            Method::GET,
            "/api/unread_count/",
            Some(&hs256(&claims(user, "access", now() - 1), SECRET)),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn strangers_see_the_same_404_for_others_deleted_and_missing_threads() {
    let t = TestApp::spawn().await;
    let (alice, bob, eve) = (t.user("alice").await, t.user("bob").await, t.user("eve").await);
    let live = t.thread(&alice, &[&bob]).await;
    t.say(&live, &alice, "hi").await;
    let gone = t.thread(&eve, &[&alice]).await;
    t.say(&gone, &eve, "soon gone").await;
    assert_eq!(t.delete(&format!("/api/threads/{gone}/"), &eve).await.status, 204);
    let routes = |id: &str| {
        [
            (Method::GET, format!("/api/threads/{id}/")),
            (Method::DELETE, format!("/api/threads/{id}/")),
            (Method::GET, format!("/api/threads/{id}/messages/")),
            (Method::POST, format!("/api/threads/{id}/messages/")),
            (Method::GET, format!("/api/threads/{id}/messages/{id}.1/")),
            (Method::GET, format!("/api/threads/{id}/messages/unread_count/")),
        ]
    };
    for id in [live.as_str(), gone.as_str(), "nope", "bad%20id"] {
        for (method, uri) in routes(id) {
            let body = (method == Method::POST).then(|| json!({"text": "hi"}));
            let r = t.call(method.clone(), &uri, Some(&eve.token), body).await;
            assert_eq!((r.status, &r.body), (404, &json!({"detail": "Not found."})), "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn no_response_carries_a_password_hash() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user_with("bob", true, true).await);
    let id = t.thread(&alice, &[&bob]).await;
    let m = t.say(&id, &alice, "hi").await;
    let mid = m["id"].as_str().unwrap();
    let mut seen = String::new();
    for uri in [
        "/api/users/".to_owned(),
        "/api/users/?search=b".to_owned(),
        "/api/users/me/".to_owned(),
        "/api/threads/".to_owned(),
        format!("/api/threads/{id}/"),
        format!("/api/threads/{id}/messages/"),
        format!("/api/threads/{id}/messages/{mid}/"),
    ] {
        seen.push_str(&t.get(&uri, &bob).await.body.to_string());
    }
    assert!(seen.contains("alice"));
    for secret in ["argon2", "pbkdf2", "password", "token_version", "PK", "GSI1"] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn tokens_issued_in_the_future_or_with_critical_headers_are_refused_everywhere() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let root = t.user_with("root", true, true).await;
    let sign = |header: &Header, claims: &Value| {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(SECRET)).unwrap()
    };
    let plain = Header::new(Algorithm::HS256);
    let critical = Header { crit: Some(vec!["exp".into()]), ..Header::new(Algorithm::HS256) };
    let claims_at = |user: &str, kind: &str, iat: i64| {
        let mut c = claims(user, kind, now() + 600);
        c["iat"] = json!(iat);
        c["jti"] = json!(uuid::Uuid::new_v4().simple().to_string());
        if kind == "admin" {
            c["sv"] = json!(0);
        }
        c
    };
    let future = now() + shared::jwt::LEEWAY_SECONDS as i64 + 60;
    let t = &t;
    let access =
        |token: String| async move { t.call(Method::GET, "/api/unread_count/", Some(&token), None).await };
    let refresh =
        |token: String| t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": token})));
    let admin = |token: String| {
        let req = lambda_http::http::Request::builder()
            .uri("/admin/threads/")
            .header("cookie", format!("admin_session={token}"))
            .body(lambda_http::Body::Empty)
            .unwrap();
        t.send(req)
    };
    let (a, r) = (alice.id.as_str(), root.id.as_str());

    // Sanity: the same tokens issued now, without `crit`, are accepted.
    assert_eq!(access(sign(&plain, &claims_at(a, "access", now()))).await.status, 200);
    assert_eq!(refresh(sign(&plain, &claims_at(a, "refresh", now()))).await.status, 200);
    assert_eq!(admin(sign(&plain, &claims_at(r, "admin", now()))).await.status, 200);

    for (what, header, iat) in [("future iat", &plain, future), ("crit header", &critical, now())] {
        let r1 = access(sign(header, &claims_at(a, "access", iat))).await;
        assert_eq!((r1.status, r1.body["code"].as_str()), (401, Some("token_not_valid")), "access, {what}");
        let r2 = refresh(sign(header, &claims_at(a, "refresh", iat))).await;
        assert_eq!((r2.status, r2.body["code"].as_str()), (401, Some("token_not_valid")), "refresh, {what}");
        let r3 = admin(sign(header, &claims_at(r, "admin", iat))).await;
        assert_eq!(
            (r3.status, r3.headers["location"].to_str().unwrap()),
            (303, "/admin/login/"),
            "admin, {what}"
        );
    }
}

#[tokio::test]
async fn nul_characters_are_refused_in_every_string_field() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let uri = format!("/api/threads/{id}/messages/");
    let nul = |field: &str| json!({ field: ["Null characters are not allowed."] });

    let r = t.post(&uri, &alice, json!({"text": "\u{0}"})).await;
    assert_eq!((r.status, &r.body), (400, &nul("text")));
    let r = t.post(&uri, &alice, json!({"text": "hi\u{0}there"})).await;
    assert_eq!((r.status, &r.body), (400, &nul("text")));
    let r = t.post(&uri, &alice, json!({"text": "hi", "client_id": "c\u{0}"})).await;
    assert_eq!((r.status, &r.body), (400, &nul("client_id")));

    let form = |uri: &str, token: Option<&str>, body: &str| {
        let mut b = lambda_http::http::Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(token) = token {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        b.body(lambda_http::Body::Text(body.into())).unwrap()
    };
    let r = t.send(form(&uri, Some(&alice.token), "text=%00")).await;
    assert_eq!((r.status, &r.body), (400, &nul("text")));
    let r = t.send(form("/api/token/", None, "username=alice%00&password=pw-alice")).await;
    assert_eq!((r.status, &r.body), (400, &nul("username")));
    let r = t.send(form("/api/token/", None, "username=alice&password=pw-alice%00")).await;
    assert_eq!((r.status, &r.body), (400, &nul("password")));
    let r = t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": "\u{0}"}))).await;
    assert_eq!((r.status, &r.body), (400, &nul("refresh")));

    assert_eq!(t.get(&uri, &alice).await.body["count"], 0);
    // The same text without the NUL goes through.
    assert_eq!(t.send(form(&uri, Some(&alice.token), "text=hi")).await.status, 201);
}
