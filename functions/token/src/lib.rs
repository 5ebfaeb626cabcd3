//! `POST /api/token/` and `POST /api/token/refresh/`.

use lambda_http::Request;
use shared::accounts::{self, Login};
use shared::domain::model::MAX_USERNAME_CHARS;
use shared::http::body;
use shared::http::error::FieldErrors;
use shared::http::routes::{self, TokenRoute};
use shared::http::{HttpResponse, client_address, ok, respond};
use shared::jwt::TokenType;
use shared::password::MAX_PASSWORD_LEN;
use shared::store::RefreshRejected;
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    match routes::resolve_for(req)?.0 {
        TokenRoute::Obtain => obtain(app, req).await,
        TokenRoute::Refresh => refresh(app, req).await,
    }
}

async fn obtain(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let fields = body::parse(req).await?;
    fields.only(&["username", "password"], &[])?;
    let mut errors = FieldErrors::default();
    let username = fields.string("username", MAX_USERNAME_CHARS, &mut errors);
    let password = fields.string("password", MAX_PASSWORD_LEN, &mut errors);
    errors.into_result()?;
    let (Some(username), Some(password)) = (username, password) else {
        unreachable!("no errors means both fields are present")
    };

    match accounts::log_in(&app.store, &username, &password, &client_address(req)).await? {
        Login::Accepted(user) => Ok(ok(&app.jwt.issue_pair(&user.id, user.token_version))),
        Login::Refused => Err(ApiError::InvalidCredentials),
        Login::Throttled(wait) => Err(ApiError::Throttled(wait)),
    }
}

async fn refresh(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let fields = body::parse(req).await?;
    fields.only(&["refresh"], &["access"])?;
    let mut errors = FieldErrors::default();
    let token = fields.string("refresh", 4096, &mut errors);
    errors.into_result()?;
    let token = token.unwrap_or_default();
    let claims = app.jwt.verify(&token, TokenType::Refresh).map_err(|e| {
        tracing::debug!(reason = %e, "refresh token refused");
        ApiError::InvalidRefreshToken
    })?;
    match app.store.use_refresh_token(&claims).await {
        Ok(()) => Ok(ok(&app.jwt.issue_pair(&claims.user_id, claims.ver))),
        Err(RefreshRejected::Revoked) => Err(ApiError::InvalidRefreshToken),
        Err(RefreshRejected::Store(e)) => Err(e.into()),
    }
}
