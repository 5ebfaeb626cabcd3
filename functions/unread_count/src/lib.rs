//! `GET /api/unread_count/`: the caller's unread totals, one GetItem.

use lambda_http::Request;
use shared::domain::timestamp::Timestamp;
use shared::http::auth::authenticate;
use shared::http::routes::{self, UnreadCountRoute};
use shared::http::{HttpResponse, ok, respond};
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    match routes::resolve_for(req)?.0 {
        UnreadCountRoute::Totals => {
            let user = authenticate(app, req)?;
            let counters = app.store.counters(&user).await?;
            Ok(ok(&counters.shown(Timestamp::now())))
        }
    }
}
