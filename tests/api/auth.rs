use lambda_http::Body;
use lambda_http::http::Method;
use serde_json::json;
use shared::store::NewUser;

use crate::helpers::TestApp;

fn form(uri: &str, content_type: &str, body: &str) -> lambda_http::Request {
    lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::Text(body.into()))
        .unwrap()
}

#[tokio::test]
async fn login_works_with_json_form_and_multipart() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let json = t
        .call(Method::POST, "/api/token/", None, Some(json!({"username": "alice", "password": "pw-alice"})))
        .await;
    let urlencoded = t
        .send(form("/api/token/", "application/x-www-form-urlencoded", "username=alice&password=pw-alice"))
        .await;
    let multipart = t
        .send(form(
            "/api/token",
            "multipart/form-data; boundary=b0",
            "--b0\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--b0\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw-alice\r\n--b0--\r\n",
        ))
        .await;
    for r in [json, urlencoded, multipart] {
        assert_eq!(r.status, 200, "{r:?}");
        let access = r.body["access"].as_str().unwrap();
        let claims = t.app.jwt.verify(access, shared::jwt::TokenType::Access).unwrap();
        assert_eq!(claims.user_id, alice.id);
        assert_eq!(claims.exp - claims.iat, 1800);
        let refresh =
            t.app.jwt.verify(r.body["refresh"].as_str().unwrap(), shared::jwt::TokenType::Refresh).unwrap();
        assert_eq!(refresh.exp - refresh.iat, 7 * 24 * 3600);
    }
}

#[tokio::test]
async fn bad_credentials_all_look_the_same() {
    let t = TestApp::spawn().await;
    t.user("alice").await;
    t.user_with("mallory", false, false).await;
    let expected = json!({"detail": "No active account found with the given credentials"});
    for (username, password) in [("alice", "wrong"), ("nobody", "pw-nobody"), ("mallory", "pw-mallory")] {
        let r = t
            .call(
                Method::POST,
                "/api/token/",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(r.status, 401, "{username}");
        assert_eq!(r.body, expected);
    }
}

#[tokio::test]
async fn missing_fields_are_400_with_field_errors() {
    let t = TestApp::spawn().await;
    let r = t.call(Method::POST, "/api/token/", None, Some(json!({"password": "x"}))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"username": ["This field is required."]}));
    let r = t.call(Method::POST, "/api/token/refresh/", None, Some(json!({}))).await;
    assert_eq!(r.body, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn django_hashes_log_in_and_are_upgraded() {
    let t = TestApp::spawn().await;
    let django = "pbkdf2_sha256$260000$3ocjA2hwENR0fh76ul2eUb$Fc1WRpjujuYMGHj/2flc6WuwsHQx4r0Cj1e30+BnL50=";
    let user = t
        .app
        .store
        .create_user(NewUser {
            username: "alice".into(),
            password_hash: django.into(),
            is_staff: false,
            is_active: true,
            id: Some("3".parse().unwrap()),
            date_joined: None,
        })
        .await
        .unwrap();
    let r = t
        .call(Method::POST, "/api/token/", None, Some(json!({"username": "alice", "password": "super_pass"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let stored = t.app.store.user(&user.id).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    let r = t
        .call(Method::POST, "/api/token/", None, Some(json!({"username": "alice", "password": "super_pass"})))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_dies() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let r = t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": alice.refresh}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new_refresh = r.body["refresh"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, alice.refresh);
    let again =
        t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": alice.refresh}))).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.body["code"], "token_not_valid");
    let next = t.call(Method::POST, "/api/token/refresh", None, Some(json!({"refresh": new_refresh}))).await;
    assert_eq!(next.status, 200);
}

#[tokio::test]
async fn token_types_cannot_stand_in_for_each_other() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let r = t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": alice.token}))).await;
    assert_eq!(r.status, 401);
    let r = t.call(Method::GET, "/api/unread_count/", Some(&alice.refresh), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["detail"], "Given token not valid for any token type");
    assert_eq!(r.body["code"], "token_not_valid");
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_token_give_one_success() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let body = json!({"refresh": alice.refresh});
    let (a, b) = tokio::join!(
        t.call(Method::POST, "/api/token/refresh/", None, Some(body.clone())),
        t.call(Method::POST, "/api/token/refresh/", None, Some(body.clone()))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
}

#[tokio::test]
async fn deactivated_users_and_changed_passwords_cannot_refresh() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    t.app.store.set_flags(&alice.id, false, false).await.unwrap();
    let r = t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": alice.refresh}))).await;
    assert_eq!(r.status, 401);
    t.app.store.set_password_hash(&bob.id, &shared::password::hash("new"), true).await.unwrap();
    let r = t.call(Method::POST, "/api/token/refresh/", None, Some(json!({"refresh": bob.refresh}))).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn authorization_header_forms() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let with = |value: String| {
        lambda_http::http::Request::builder()
            .uri("/api/unread_count/")
            .header("authorization", value)
            .body(Body::Empty)
            .unwrap()
    };
    assert_eq!(t.send(with(format!("JWT {}", alice.token))).await.status, 200);
    assert_eq!(t.send(with(format!("Bearer {}", alice.token))).await.status, 200);
    let r = t.send(with(format!("Token {}", alice.token))).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (401, Some("Authentication credentials were not provided."))
    );
    let r = t.send(with(format!("Bearer {} extra", alice.token))).await;
    assert_eq!((r.status, r.body["code"].as_str()), (401, Some("bad_authorization_header")));
    let r = t.send(with("Bearer not.a.token".into())).await;
    assert_eq!((r.status, r.body["code"].as_str()), (401, Some("token_not_valid")));
    assert!(r.headers.contains_key("www-authenticate"));
    let r = t.call(Method::GET, "/api/threads/", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"detail": "Authentication credentials were not provided."}));
}
