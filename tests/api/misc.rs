use lambda_http::Body;
use lambda_http::http::Method;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let r = t.get("/api/nothing/", &alice).await;
    assert_eq!((r.status, &r.body), (404, &json!({"detail": "Not found."})));
    let r = t.call(Method::PUT, "/api/threads/", Some(&alice.token), Some(json!({}))).await;
    assert_eq!((r.status, &r.body), (405, &json!({"detail": "Method \"PUT\" not allowed."})));
    assert_eq!(r.headers["allow"], "GET, POST");
    let r = t.call(Method::GET, "/api/token/", None, None).await;
    assert_eq!(r.status, 405);
    let r = t.call(Method::POST, "/api/threads/x/messages/x.1/", Some(&alice.token), None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, PUT, PATCH, DELETE");
}

#[tokio::test]
async fn malformed_bodies_are_4xx_never_5xx() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let raw = |content_type: &str, body: Body| {
        lambda_http::http::Request::builder()
            .method(Method::POST)
            .uri(format!("/api/threads/{id}/messages/"))
            .header("authorization", format!("Bearer {}", alice.token))
            .header("content-type", content_type)
            .body(body)
            .unwrap()
    };
    let r = t.send(raw("application/json", Body::Text("{\"text\": ".into()))).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().starts_with("JSON parse error - "), "{r:?}");
    let r = t.send(raw("application/json", Body::Binary(vec![b'"', 0xff, 0xfe, b'"']))).await;
    assert_eq!(r.status, 400);
    let r = t.send(raw("application/json", Body::Text("[]".into()))).await;
    assert_eq!(r.status, 400);
    let r = t.send(raw("text/plain", Body::Text("hello".into()))).await;
    assert_eq!(r.status, 415);
    let r = t
        .send(raw("application/json", Body::Text(format!("{{\"text\": \"{}\"}}", "x".repeat(200_000)))))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(t.get(&format!("/api/threads/{id}/messages/"), &alice).await.body["count"], 0);
}

#[tokio::test]
async fn bad_query_parameters_are_4xx() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    for q in ["limit=0", "limit=101", "limit=x"] {
        let r = t.get(&format!("/api/threads/?{q}"), &alice).await;
        assert_eq!(r.status, 400, "{q}");
        assert!(r.body["detail"].is_string());
    }
    // A cursor we did not issue for this list is DRF's 404 "Invalid cursor".
    for q in ["cursor=abc", "cursor=eyJkIjoibiIsImsiOiJ4In0.AAAAAAAAAAAAAAAAAAAAAA"] {
        let r = t.get(&format!("/api/threads/?{q}"), &alice).await;
        assert_eq!((r.status, &r.body), (404, &json!({"detail": "Invalid cursor"})), "{q}");
    }
    // A cursor from another user's list is refused.
    let bob = t.user("bob").await;
    for i in 0..3 {
        let other = t.user(&format!("o{i}")).await;
        t.thread(&bob, &[&other]).await;
    }
    let page = t.get("/api/threads/?limit=1", &bob).await;
    let next = crate::helpers::path_of(&page.body["next"]);
    assert_eq!(t.get(&next, &alice).await.status, 404);
}

#[tokio::test]
async fn django_era_clients_work_with_v1_paths_form_bodies_and_jwt_headers() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let form = |uri: String, body: String| {
        lambda_http::http::Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("authorization", format!("JWT {}", alice.token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::Text(body))
            .unwrap()
    };
    let created = t.send(form("/api/v1/threads/".into(), format!("participants={}", bob.id))).await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let sent =
        t.send(form(format!("/api/v1/threads/{id}/messages/"), "text=hello+from+postman".into())).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert_eq!(sent.body["text"], "hello from postman");
    let listed = t.get(&format!("/api/v1/threads/{id}/messages/"), &bob).await;
    assert_eq!(listed.body["count"], 1);
    let unread = t.get(&format!("/api/v1/threads/{id}/messages/unread_count/"), &alice).await;
    assert_eq!(unread.body, json!({"unread_count": 0}));
    assert_eq!(t.get("/api/v1/threads/", &bob).await.body["count"], 1);
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let t = TestApp::spawn().await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    t.user_with("root", true, true).await;
    let id = t.thread(&alice, &[&bob]).await;
    let mut replies = vec![
        ("200", t.get("/api/users/me/", &alice).await),
        ("201", t.post(&format!("/api/threads/{id}/messages/"), &alice, json!({"text": "hi"})).await),
        ("400", t.post(&format!("/api/threads/{id}/messages/"), &alice, json!({})).await),
        ("401", t.call(Method::GET, "/api/threads/", None, None).await),
        ("404", t.get("/api/nothing/", &alice).await),
        ("405", t.call(Method::PUT, "/api/threads/", Some(&alice.token), Some(json!({}))).await),
        ("204", t.delete(&format!("/api/threads/{id}/"), &alice).await),
        ("admin login page", t.call(Method::GET, "/admin/login/", None, None).await),
        ("admin redirect", t.call(Method::GET, "/admin/threads/", None, None).await),
        ("admin 403", t.call(Method::POST, "/admin/login/", None, Some(json!({}))).await),
    ];
    let admin = |cookie: String| {
        lambda_http::http::Request::builder()
            .uri("/admin/threads/")
            .header("cookie", cookie)
            .body(Body::Empty)
            .unwrap()
    };
    let root = t.app.store.user_by_username("root").await.unwrap().unwrap();
    let session = t.app.jwt.issue_admin_session(&root.id, root.token_version, 0);
    replies.push(("admin page", t.send(admin(format!("admin_session={session}"))).await));
    let mut statuses = Vec::new();
    for (what, r) in &replies {
        assert_eq!(
            r.headers.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{what}: {r:?}"
        );
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 201, 400, 401, 404, 405, 204, 200, 303, 403, 200]);
}
