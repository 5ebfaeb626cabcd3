//! `GET /api/unread_count/`: the caller's unread totals, one GetItem.

use lambda_http::Request;
use lambda_http::http::Method;
use serde_json::json;
use shared::auth::authenticate;
use shared::http::{HttpResponse, allow, ok, respond, segments};
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    match segments(req).as_slice() {
        ["api", "unread_count"] => {
            allow(req, &[Method::GET], "GET")?;
            let user = authenticate(app, req)?;
            let counters = app.store.counters(&user).await?;
            Ok(ok(&json!({
                "unread_count": counters.unread_total,
                "threads": counters.unread_threads,
            })))
        }
        _ => Err(ApiError::NotFound),
    }
}
