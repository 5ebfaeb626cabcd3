//! Drives every route over HTTP through `cargo lambda watch`, against the demo data
//! (`make test` starts the stack and sets `E2E_BASE_URL`).

use serde_json::{Value, json};
use ureq::Agent;

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
                let mut req = self.agent.post(&url);
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

    assert_eq!(api.call("DELETE", &format!("/api/threads/{thread}/"), Some(&bob), None).status, 403);
    assert_eq!(api.call("DELETE", &format!("/api/threads/{thread}/"), Some(&alice), None).status, 204);
    assert_eq!(api.call("GET", &format!("/api/threads/{thread}/"), Some(&bob), None).status, 404);

    let nobody = api.call("GET", "/api/threads/", None, None);
    assert_eq!(nobody.status, 401);
    assert_eq!(nobody.body["detail"], "Authentication credentials were not provided.");
}
