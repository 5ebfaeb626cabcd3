//! The local HTTP API answers as API Gateway does (`devstack api`): paths no route has, bodies
//! that are not UTF-8, a client's `X-Forwarded-Proto`, and one access-log line per request.

use serde_json::Value;

use crate::Api;

fn raw(
    api: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, ureq::http::HeaderMap, String) {
    let url = format!("{}{path}", api.base);
    let mut req = ureq::http::Request::builder().method(method).uri(&url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut response =
        api.agent.run(req.body(body.to_vec()).unwrap()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), headers, text)
}

#[test]
fn paths_no_route_has_get_a_json_404() {
    let api = Api::new();
    // The template's $default route hands them to the threads function, as API Gateway does.
    for path in ["/nothing", "/api/nothing/", "/api/v2/threads/", "/", "/api/threads/x/messages/y/z/"] {
        for method in ["GET", "POST", "DELETE"] {
            let (status, h, body) = raw(&api, method, path, &[], b"");
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert_eq!(
                h.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{method} {path}"
            );
            assert_eq!(h.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
            let parsed: Value =
                serde_json::from_str(&body).unwrap_or_else(|_| panic!("{method} {path}: {body}"));
            assert!(parsed.get("detail").is_some() || parsed.get("message").is_some(), "{body}");
            for function in ["unread_count", "realtime", "admin"] {
                assert!(!body.contains(function), "{method} {path} names the functions: {body}");
            }
        }
    }
}

#[test]
fn a_json_body_that_is_not_utf8_is_a_clear_400() {
    let api = Api::new();
    let (alice, _) = api.login("alice");
    let threads = api.call("GET", "/api/threads/", Some(&alice), None);
    let thread = threads.body["results"][0]["id"].as_str().expect("alice has a thread").to_owned();
    let auth = format!("Bearer {alice}");
    let (status, h, body) = raw(
        &api,
        "POST",
        &format!("/api/threads/{thread}/messages/"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        b"{\"text\": \"caf\xe9\"}",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(h.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed["detail"],
        "JSON parse error - 'utf-8' codec can't decode byte 0xe9 in position 13: invalid continuation byte"
    );
    let messages = api.call("GET", &format!("/api/threads/{thread}/messages/?limit=100"), Some(&alice), None);
    let texts: Vec<&str> =
        messages.body["results"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(!texts.iter().any(|t| t.starts_with("caf")), "nothing was sent: {texts:?}");
}

#[test]
fn links_keep_http_or_https_whatever_x_forwarded_proto_says() {
    let api = Api::new();
    let (alice, _) = api.login("alice");
    let auth = format!("Bearer {alice}");
    for proto in ["javascript", "data", "https"] {
        let (status, _, body) = raw(
            &api,
            "GET",
            "/api/threads/?limit=1",
            &[("Authorization", &auth), ("X-Forwarded-Proto", proto)],
            b"",
        );
        assert_eq!(status, 200, "{body}");
        let parsed: Value = serde_json::from_str(&body).unwrap();
        let next = parsed["next"].as_str().unwrap_or_else(|| panic!("alice has two threads: {body}"));
        assert!(next.starts_with(&format!("{}/api/threads/", api.base)), "X-Forwarded-Proto {proto}: {next}");
    }
}

#[test]
fn every_request_writes_one_access_log_line_without_credentials() {
    let api = Api::new();
    let path = std::env::var("E2E_ACCESS_LOG").expect("E2E_ACCESS_LOG (run `make test`)");
    let (alice, _) = api.login("alice");
    let auth = format!("Bearer {alice}");
    let (status, h, _) = raw(&api, "GET", "/api/unread_count/", &[("Authorization", &auth)], b"");
    assert_eq!(status, 200);
    let id = h.get("apigw-requestid").and_then(|v| v.to_str().ok()).expect("apigw-requestid").to_owned();
    let (status, h404, _) = raw(&api, "GET", "/api/users/me/extra/", &[("Authorization", &auth)], b"");
    assert_eq!(status, 404);
    let id404 = h404["apigw-requestid"].to_str().unwrap().to_owned();
    // The line is written as the answer leaves; give it a moment to reach the file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (line, line404, text) = loop {
        let text = std::fs::read_to_string(&path).unwrap();
        let find = |id: &str| {
            text.lines().find(|l| l.contains(&format!("\"requestId\":\"{id}\""))).map(str::to_owned)
        };
        match (find(&id), find(&id404)) {
            (Some(a), Some(b)) => break (a, b, text),
            _ if std::time::Instant::now() > deadline => {
                panic!("no access-log line for {id} and {id404} in {path}")
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["routeKey"], "ANY /api/unread_count/{proxy+}");
    assert_eq!(entry["status"], "200");
    assert_eq!(entry["httpMethod"], "GET");
    assert!(entry["responseLatency"].as_str().unwrap().parse::<u64>().is_ok(), "{line}");
    let entry: Value = serde_json::from_str(&line404).unwrap();
    assert_eq!(entry["status"], "404");
    assert!(text.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "every line is one JSON object");
    assert!(!text.contains(&alice), "an access token is in the access log");
    assert!(!text.to_ascii_lowercase().contains("bearer"), "an Authorization header is in the access log");
}
