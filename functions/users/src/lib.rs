//! `GET /api/users/?search=` and `GET /api/users/me/`.

use lambda_http::Request;
use shared::domain::model::{MAX_USERNAME_CHARS, Me, UserSummary, is_username_char};
use shared::http::auth::authenticate;
use shared::http::pagination::{envelope, page_request};
use shared::http::routes::{self, UsersRoute};
use shared::http::{HttpResponse, ok, query_param, respond};
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    match routes::resolve_for(req)?.0 {
        UsersRoute::Search => search(app, req).await,
        UsersRoute::Me => me(app, req).await,
    }
}

async fn search(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    authenticate(app, req)?;
    let prefix = query_param(req, "search")?.unwrap_or_default();
    if prefix.chars().count() > MAX_USERNAME_CHARS || !prefix.chars().all(is_username_char) {
        let msg = "search must be a username prefix: at most 150 letters, digits or @.+-_";
        return Err(ApiError::BadRequest(msg.into()));
    }
    let keep = if prefix.is_empty() { vec![] } else { vec![("search", prefix.clone())] };
    let page = page_request(app, req, format!("users:{}", prefix.to_lowercase()), keep)?;
    let (slice, count) = tokio::try_join!(
        app.store.search_users(&prefix, false, page.spec()),
        app.store.count_users(&prefix, false)
    )?;
    let body = envelope(app, req, &page, count, slice, |u| UserSummary { id: u.id, username: u.username });
    Ok(ok(&body))
}

async fn me(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let id = authenticate(app, req)?;
    let user = app.store.user(&id).await?.ok_or(ApiError::InvalidAccessToken)?;
    Ok(ok(&Me { id: user.id, username: user.username, is_staff: user.is_staff }))
}
