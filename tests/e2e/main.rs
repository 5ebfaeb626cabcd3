//! Drives every route over HTTP through `cargo lambda watch`, against the demo data
//! (`make test` starts the stack and sets `E2E_BASE_URL`).

use serde_json::{Value, json};
use ureq::Agent;

#[path = "../support/event_schema.rs"]
mod event_schema;
mod frames;
mod gateway;
mod live;
mod races;

struct Api {
    base: String,
    agent: Agent,
}

struct Reply {
    status: u16,
    body: Value,
}

impl Api {
    fn new() -> Self {
        let base = std::env::var("E2E_BASE_URL").expect("E2E_BASE_URL (run `make test`)");
        let agent: Agent = Agent::config_builder().http_status_as_error(false).build().into();
        Self { base, agent }
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET" | "DELETE", _) => {
                let mut req = if method == "GET" { self.agent.get(&url) } else { self.agent.delete(&url) };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            (_, body) => {
                let mut req = if method == "PATCH" { self.agent.patch(&url) } else { self.agent.post(&url) };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send_json(body.unwrap_or(json!({})))
            }
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, body }
    }

    fn login(&self, username: &str) -> (String, String) {
        let r = self.call(
            "POST",
            "/api/token/",
            None,
            Some(json!({"username": username, "password": "super_pass"})),
        );
        assert_eq!(r.status, 200, "login {username}: {:?}", r.body);
        (r.body["access"].as_str().unwrap().to_owned(), r.body["refresh"].as_str().unwrap().to_owned())
    }
}

#[test]
fn every_route_over_http() {
    let api = Api::new();
    let (alice, alice_refresh) = api.login("alice");
    let (bob, _) = api.login("bob");
    let bad = api.call("POST", "/api/token", None, Some(json!({"username": "alice", "password": "nope"})));
    assert_eq!(bad.status, 401);

    let refreshed = api.call("POST", "/api/token/refresh/", None, Some(json!({"refresh": alice_refresh})));
    assert_eq!(refreshed.status, 200);
    let reused = api.call("POST", "/api/token/refresh", None, Some(json!({"refresh": alice_refresh})));
    assert_eq!(reused.status, 401);

    let me = api.call("GET", "/api/users/me/", Some(&bob), None);
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "bob");
    let bob_id = me.body["id"].as_str().unwrap().to_owned();
    let found = api.call("GET", "/api/users/?search=bo", Some(&alice), None);
    assert_eq!(found.status, 200);
    assert!(found.body["results"].as_array().unwrap().iter().any(|u| u["id"] == bob_id.as_str()));
    assert_eq!(api.call("GET", "/api/users/me", Some(&bob), None).status, 200);

    let demo = api.call("GET", "/api/threads/", Some(&alice), None);
    assert_eq!(demo.status, 200);
    assert!(demo.body["count"].as_u64().unwrap() >= 2, "demo threads: {:?}", demo.body);

    // A thread of alice and bob, which the demo data does not have (this test deletes it at the end).
    let created = api.call("POST", "/api/threads", Some(&alice), Some(json!({"participants": [bob_id]})));
    assert!(created.status == 201 || created.status == 200, "{:?}", created.body);
    let thread = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(api.call("GET", &format!("/api/threads/{thread}/"), Some(&bob), None).status, 200);
    assert_eq!(api.call("GET", &format!("/api/threads/{thread}"), Some(&bob), None).status, 200);

    let before = api.call("GET", &format!("/api/threads/{thread}/messages/unread_count/"), Some(&bob), None);
    assert_eq!(before.status, 200);
    let sent = api.call(
        "POST",
        &format!("/api/threads/{thread}/messages/"),
        Some(&alice),
        Some(json!({"text": "over http"})),
    );
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let message = sent.body["id"].as_str().unwrap().to_owned();
    let after = api.call("GET", &format!("/api/threads/{thread}/messages/unread_count"), Some(&bob), None);
    assert_eq!(
        after.body["unread_count"].as_u64().unwrap(),
        before.body["unread_count"].as_u64().unwrap() + 1
    );
    let total = api.call("GET", "/api/unread_count/", Some(&bob), None);
    assert_eq!(total.status, 200);
    assert!(total.body["unread_count"].as_u64().unwrap() >= 1);
    assert_eq!(api.call("GET", "/api/unread_count", Some(&bob), None).status, 200);

    let list = api.call("GET", &format!("/api/threads/{thread}/messages/?limit=5"), Some(&bob), None);
    assert_eq!(list.status, 200);
    assert_eq!(list.body["results"][0]["text"], "over http");
    let detail = api.call("GET", &format!("/api/threads/{thread}/messages/{message}/"), Some(&alice), None);
    assert_eq!(detail.status, 200);
    assert_eq!(detail.body["read_by"].as_array().unwrap().len(), 2, "{:?}", detail.body);
    assert_eq!(api.call("GET", &format!("/api/threads/{thread}/messages"), Some(&bob), None).status, 200);

    // Edit and delete, through the Django-era prefix too.
    let uri = format!("/api/v1/threads/{thread}/messages/{message}/");
    let edited = api.call("PATCH", &uri, Some(&alice), Some(json!({"text": "over http, edited"})));
    assert_eq!(
        (edited.status, edited.body["text"].as_str()),
        (200, Some("over http, edited")),
        "{:?}",
        edited.body
    );
    assert!(edited.body["edited"].is_string());
    assert_eq!(api.call("PATCH", &uri, Some(&bob), Some(json!({"text": "not mine"}))).status, 403);
    let second = api.call(
        "POST",
        &format!("/api/threads/{thread}/messages/"),
        Some(&bob),
        Some(json!({"text": "bye"})),
    );
    assert_eq!(second.status, 201);
    let second_uri = format!("/api/threads/{thread}/messages/{}/", second.body["id"].as_str().unwrap());
    assert_eq!(api.call("DELETE", &second_uri, Some(&bob), None).status, 204);
    assert_eq!(api.call("GET", &second_uri, Some(&bob), None).status, 404);
    let shown = api.call("GET", &format!("/api/threads/{thread}/"), Some(&bob), None);
    assert_eq!(shown.body["last_message"]["text"], "over http, edited");

    assert_eq!(api.call("DELETE", &format!("/api/threads/{thread}/"), Some(&bob), None).status, 403);
    assert_eq!(api.call("DELETE", &format!("/api/threads/{thread}/"), Some(&alice), None).status, 204);
    assert_eq!(api.call("GET", &format!("/api/threads/{thread}/"), Some(&bob), None).status, 404);

    let nobody = api.call("GET", "/api/threads/", None, None);
    assert_eq!(nobody.status, 401);
    assert_eq!(nobody.body["detail"], "Authentication credentials were not provided.");
}

/// The headers of a request with an `Origin`, as `make dev` answers it.
fn cors_headers(
    method: &str,
    path: &str,
    origin: &str,
    preflight_method: Option<&str>,
) -> (u16, ureq::http::HeaderMap) {
    let api = Api::new();
    let url = format!("{}{path}", api.base);
    let mut req = ureq::http::Request::builder().method(method).uri(&url).header("Origin", origin);
    if let Some(m) = preflight_method {
        req = req
            .header("Access-Control-Request-Method", m)
            .header("Access-Control-Request-Headers", "authorization,content-type");
    }
    let response = api.agent.run(req.body(()).unwrap()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    (response.status().as_u16(), response.headers().clone())
}

#[test]
fn local_cors_is_the_deployed_allow_list() {
    // template.yaml's CorsAllowOrigins default, which `make dev` and `make test` use.
    let allowed = "https://app.example.com";
    let (status, h) = cors_headers("OPTIONS", "/api/threads/x/messages/x.1/", allowed, Some("PATCH"));
    assert_eq!(status, 204);
    assert_eq!(h["access-control-allow-origin"], allowed);
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("PATCH"));
    assert!(!h.contains_key("access-control-allow-credentials"), "no credentials: {h:?}");
    let (status, h) = cors_headers("GET", "/api/unread_count/", allowed, None);
    assert_eq!(status, 401);
    assert_eq!(h["access-control-allow-origin"], allowed);
    assert_eq!(h["access-control-expose-headers"], "Retry-After");
    assert!(!h.contains_key("access-control-allow-credentials"));
    for other in ["https://evil.example", "http://localhost:1234", "null"] {
        let (_, h) = cors_headers("GET", "/api/unread_count/", other, None);
        assert!(!h.keys().any(|k| k.as_str().starts_with("access-control-")), "{other}: {h:?}");
        let (_, h) = cors_headers("OPTIONS", "/api/unread_count/", other, Some("GET"));
        assert!(!h.keys().any(|k| k.as_str().starts_with("access-control-")), "{other}: {h:?}");
    }
}
