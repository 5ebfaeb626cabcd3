//! `devstack api` in-process: the template's HTTP API in front of a stand-in function, as API
//! Gateway answers (its own 404, base64 for bodies that are not UTF-8, function errors and
//! timeouts), with one access-log line per request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use devstack::http_api::HttpApi;
use devstack::invoke::{FnInvoker, InvokeError};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap()
}

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// An API whose functions echo the event they got back as the body, unless the path says
/// otherwise.
fn stack(template: &str) -> (HttpApi, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let invoker = FnInvoker(move |function: String, event: Value| {
        log.lock().unwrap().push((function, event.clone()));
        async move {
            match event["rawPath"].as_str().unwrap_or("") {
                "/api/users/fail" => {
                    Err(InvokeError::Function(json!({"errorType": "panic", "errorMessage": "x"})))
                }
                "/api/users/slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(json!({"statusCode": 200}))
                }
                _ => Ok(json!({
                    "statusCode": 200,
                    "headers": {"content-type": "application/json"},
                    "cookies": ["a=1"],
                    "body": event.to_string(),
                })),
            }
        }
    });
    let mut api =
        HttpApi::from_template(template, Some("https://app.example.com"), Arc::new(invoker), 9000).unwrap();
    api.integration_timeout = Duration::from_millis(200);
    (api, seen)
}

async fn call(api: &HttpApi, req: hyper::Request<Full<Bytes>>) -> (u16, hyper::HeaderMap, Value, Value) {
    let served = api.handle(req, "127.0.0.1:40000".parse().unwrap()).await;
    let status = served.response.status().as_u16();
    let headers = served.response.headers().clone();
    let body = served.response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, body, serde_json::from_str(&served.log_line).expect("the access-log line is JSON"))
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> hyper::Request<Full<Bytes>> {
    let mut b = hyper::Request::builder().method(method).uri(path).header("host", "localhost:9000");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
}

#[tokio::test]
async fn requests_reach_the_routes_function_as_payload_2_0_events() {
    let (api, seen) = stack(&template());
    let (status, h, event, log) = call(
        &api,
        request(
            "POST",
            "/api/threads/t1/messages/?x=1",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer secret-token"),
                ("origin", "https://app.example.com"),
            ],
            b"{\"text\": \"caf\xe9\"}",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen.lock().unwrap()[0].0, "messages");
    assert_eq!(event["routeKey"], "ANY /api/threads/{id}/messages/{proxy+}");
    assert_eq!(event["pathParameters"], json!({"id": "t1", "proxy": ""}));
    assert_eq!(event["isBase64Encoded"], true, "a body that is not UTF-8 is base64");
    let body = base64::engine::general_purpose::STANDARD.decode(event["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, b"{\"text\": \"caf\xe9\"}");
    assert_eq!(h["set-cookie"], "a=1");
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let id = h["apigw-requestid"].to_str().unwrap();
    assert_eq!(event["requestContext"]["requestId"], id);
    assert_eq!(log["requestId"], id);
    assert_eq!(log["routeKey"], "ANY /api/threads/{id}/messages/{proxy+}");
    assert_eq!(log["status"], "200");
    assert_eq!(log["httpMethod"], "POST");
    assert!(!log.to_string().contains("secret-token"), "{log}");
}

#[tokio::test]
async fn api_gateways_own_answers() {
    let (api, seen) = stack(&template());
    let (status, _, body, log) = call(&api, request("GET", "/api/users/fail", &[], b"")).await;
    assert_eq!((status, body), (500, json!({"message": "Internal Server Error"})));
    assert_eq!(log["status"], "500");
    let (status, _, body, _) = call(&api, request("GET", "/api/users/slow", &[], b"")).await;
    assert_eq!((status, body), (503, json!({"message": "Service Unavailable"})));
    let preflight = request(
        "OPTIONS",
        "/api/threads/",
        &[("origin", "https://app.example.com"), ("access-control-request-method", "POST")],
        b"",
    );
    let (status, h, _, log) = call(&api, preflight).await;
    assert_eq!(status, 204);
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"), "{h:?}");
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(log["routeKey"], "-", "answered before any route");
    let invocations = seen.lock().unwrap().len();
    assert_eq!(invocations, 2, "the preflight reached no function");

    // A template without a $default route: API Gateway answers paths no route has itself.
    let without_default =
        template().replace("            Path: $default\n", "            Path: /api/threads/{id}/x\n");
    let (api, seen) = stack(&without_default);
    let (status, h, body, log) = call(&api, request("GET", "/nothing/here", &[], b"")).await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(log["status"], "404");
    assert!(seen.lock().unwrap().is_empty());
}
