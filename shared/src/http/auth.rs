//! Authenticating API requests from their `Authorization` header.

use lambda_http::Request;
use lambda_http::http::header::AUTHORIZATION;

use crate::domain::ids::UserId;
use crate::jwt::{Claims, TokenType};
use crate::{ApiError, App};

/// The user an access token in the request speaks for.
///
/// Accepts `Bearer <token>` and `JWT <token>` as the Django app did; any other scheme
/// counts as no credentials. Access tokens are not checked against the table: they are
/// short-lived, and a deactivated user loses the ability to refresh.
pub fn authenticate(app: &App, req: &Request) -> Result<UserId, ApiError> {
    authenticate_claims(app, req).map(|claims| claims.user_id)
}

/// The verified claims of the access token in the request (see [`authenticate`]), for a
/// handler that needs more than the user: the token version, say.
pub fn authenticate_claims(app: &App, req: &Request) -> Result<Claims, ApiError> {
    let header = req.headers().get(AUTHORIZATION).ok_or(ApiError::NotAuthenticated)?;
    let value = header.to_str().map_err(|_| ApiError::BadAuthorizationHeader)?;
    let mut parts = value.split_ascii_whitespace();
    let scheme = parts.next().ok_or(ApiError::NotAuthenticated)?;
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt")) {
        return Err(ApiError::NotAuthenticated);
    }
    let token = parts.next().ok_or(ApiError::BadAuthorizationHeader)?;
    if parts.next().is_some() || token.len() > 4096 {
        return Err(ApiError::BadAuthorizationHeader);
    }
    match app.jwt.verify(token, TokenType::Access) {
        Ok(claims) => Ok(claims),
        Err(e) => {
            tracing::debug!(reason = %e, "access token refused");
            Err(ApiError::InvalidAccessToken)
        }
    }
}
