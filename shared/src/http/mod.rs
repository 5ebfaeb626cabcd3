//! Request and response plumbing shared by every HTTP function.

pub mod auth;
pub mod body;
pub mod cursor;
pub mod error;
pub mod pagination;
pub mod routes;

use std::convert::Infallible;
use std::future::Future;

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response, service_fn};
use serde::Serialize;

use crate::ApiError;

/// The response type every handler returns.
pub type HttpResponse = Response<Body>;

/// Longest query string value we read (search prefixes, cursors).
pub const MAX_QUERY_VALUE_LEN: usize = 1024;

/// Headers every response carries, JSON or HTML, success or error.
pub fn common_headers(headers: &mut HeaderMap) {
    // Browsers must not guess a type: an error echoing input, read as HTML, would run as script.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// A JSON response with the given status.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    let text = serde_json::to_string(body).expect("response bodies always serialize");
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    common_headers(response.headers_mut());
    response
}

/// `200 OK` with a JSON body.
pub fn ok<T: Serialize + ?Sized>(body: &T) -> HttpResponse {
    json_response(StatusCode::OK, body)
}

/// `204 No Content`.
pub fn no_content() -> HttpResponse {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    common_headers(response.headers_mut());
    response
}

/// The path split into segments, ignoring a trailing slash, so `/api/threads` and
/// `/api/threads/` route alike. The Django app served its threads under `/api/v1/threads/`
/// (and its tokens at `/api/token/`), so that prefix routes like `/api/threads/` and its clients
/// only change their base URL; the template routes exactly these paths.
pub fn segments(req: &Request) -> Vec<&str> {
    let path = req.uri().path();
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.starts_with(&["api", "v1", "threads"]) {
        segments.remove(1);
    }
    segments
}

/// One query parameter, bounded in length.
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let query = req.uri().query().unwrap_or("");
    let value = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v);
    match value {
        None => Ok(None),
        Some(v) if v.len() > MAX_QUERY_VALUE_LEN => {
            Err(ApiError::BadRequest(format!("Query parameter \"{name}\" is too long.")))
        }
        Some(v) => Ok(Some(v.into_owned())),
    }
}

/// The client's address as API Gateway saw it (not a header a client could forge), or `unknown`.
pub fn client_address(req: &Request) -> String {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .filter(|ip| !ip.is_empty() && ip.len() <= 64)
    .unwrap_or_else(|| "unknown".to_owned())
}

/// The absolute URL of this request's path with the given query, for `next`/`previous` links.
pub fn absolute_url(req: &Request, query: &[(&str, String)]) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    // API Gateway sets X-Forwarded-Proto itself, but a client's own header reaches the function
    // wherever something else fronts it: only the two schemes a link may have are taken from it.
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| if is_local(host) { "http" } else { "https" }.to_owned());
    let mut url = format!("{scheme}://{host}{}", req.uri().path());
    if !query.is_empty() {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query {
            qs.append_pair(k, v);
        }
        url.push('?');
        url.push_str(&qs.finish());
    }
    url
}

fn is_local(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The response for a handler's result: the success, or the error in its one HTTP shape.
pub fn respond(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(ApiError::into_response)
}

/// Runs an HTTP handler on the Lambda runtime; `app` is built once, before the first request.
pub async fn serve<S, F, Fut>(app: S, handler: F) -> Result<(), lambda_http::Error>
where
    S: Sync + 'static,
    F: Fn(&'static S, Request) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let app: &'static S = Box::leak(Box::new(app));
    lambda_http::run(service_fn(move |req: Request| async move {
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        let started = std::time::Instant::now();
        let response = handler(app, req).await;
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request served"
        );
        Ok::<_, Infallible>(response)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Request {
        lambda_http::http::Request::builder().uri(uri).body(Body::Empty).unwrap()
    }

    #[test]
    fn trailing_slash_does_not_matter() {
        assert_eq!(segments(&get("/api/threads/")), ["api", "threads"]);
        assert_eq!(segments(&get("/api/threads")), ["api", "threads"]);
        assert_eq!(segments(&get("/api//threads/x/")), ["api", "threads", "x"]);
        assert_eq!(segments(&get("/api/v1/threads/x/")), ["api", "threads", "x"]);
    }

    #[test]
    fn absolute_urls_use_host_and_scheme() {
        let req = lambda_http::http::Request::builder()
            .uri("/api/threads/")
            .header("host", "localhost:9000")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(
            absolute_url(&req, &[("cursor", "a b".into())]),
            "http://localhost:9000/api/threads/?cursor=a+b"
        );
        let req = lambda_http::http::Request::builder()
            .uri("/api/threads/")
            .header("host", "x.execute-api.eu-west-1.amazonaws.com")
            .body(Body::Empty)
            .unwrap();
        assert!(absolute_url(&req, &[]).starts_with("https://x.execute-api"));
    }

    #[test]
    fn only_http_and_https_are_taken_from_x_forwarded_proto() {
        let with_proto = |host: &str, proto: &str| {
            let req = lambda_http::http::Request::builder()
                .uri("/api/threads/")
                .header("host", host)
                .header("x-forwarded-proto", proto)
                .body(Body::Empty)
                .unwrap();
            absolute_url(&req, &[])
        };
        assert_eq!(with_proto("localhost:9000", "javascript"), "http://localhost:9000/api/threads/");
        assert_eq!(with_proto("api.example.com", "javascript"), "https://api.example.com/api/threads/");
        assert_eq!(with_proto("api.example.com", "data"), "https://api.example.com/api/threads/");
        assert_eq!(with_proto("localhost:9000", "HTTPS"), "https://localhost:9000/api/threads/");
        assert_eq!(with_proto("api.example.com", "http"), "http://api.example.com/api/threads/");
    }
}
