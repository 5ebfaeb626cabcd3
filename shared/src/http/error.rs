//! The one place where failures become HTTP responses, in the shapes DRF clients parse.

use std::collections::BTreeMap;

use lambda_http::http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::domain::model::MAX_PARTICIPANTS;
use crate::domain::rules::Refusal;
use crate::http::{HttpResponse, json_response};
use crate::store::{StoreError, WriteError};
use crate::telemetry::ErrorChain;

/// Field name -> messages, as DRF's 400 bodies carry them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// One error on one field.
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    /// Adds a message to a field.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }

    /// True when no field has an error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err(ApiError::Validation)` when any field has an error.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() { Ok(()) } else { Err(ApiError::Validation(self)) }
    }
}

/// Every way a request can fail, each with one status and body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field messages.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 400: the body is not valid JSON (or form data).
    #[error("parse error: {0}")]
    Parse(String),
    /// 400 with a single detail message (bad query parameters, cursors).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no usable Authorization header.
    #[error("no credentials")]
    NotAuthenticated,
    /// 401: an Authorization header with the wrong number of parts.
    #[error("bad authorization header")]
    BadAuthorizationHeader,
    /// 401: an access token that does not verify.
    #[error("invalid access token")]
    InvalidAccessToken,
    /// 401: a refresh token that does not verify, is of the wrong type or was used already.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// 401: wrong username or password, or an inactive account.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403.
    #[error("permission denied")]
    PermissionDenied,
    /// 403 that says why (an action the caller's role can never take as asked).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404, also for things that exist but are not the caller's.
    #[error("not found")]
    NotFound,
    /// 404 for a pagination cursor we did not issue for this list, as DRF answers it.
    #[error("invalid cursor")]
    InvalidCursor,
    /// 409: the request conflicts with what was done before (an idempotency key reused).
    #[error("conflict: {0}")]
    Conflict(std::borrow::Cow<'static, str>),
    /// 405 with the methods the path does allow.
    #[error("method {method} not allowed")]
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// The methods the path answers, for the `Allow` header (from `crate::http::routes`).
        allow: String,
    },
    /// 413: the body is larger than we read.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: a body in a format the route does not read.
    #[error("unsupported media type {0}")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`: too many failed logins.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// 503 with `Retry-After`: storage stayed busy through every retry.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] StoreError),
    /// 500: a bug or an unexpected storage failure; details go to the log, not the client.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

const INVALID_TOKEN: &str = "Given token not valid for any token type";

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::Parse(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated
            | Self::BadAuthorizationHeader
            | Self::InvalidAccessToken
            | Self::InvalidRefreshToken
            | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::InvalidCursor => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Value {
        match self {
            Self::Validation(fields) => json!(fields.0),
            Self::Parse(msg) => json!({ "detail": format!("JSON parse error - {msg}") }),
            Self::BadRequest(msg) => json!({ "detail": msg }),
            Self::NotAuthenticated => {
                json!({ "detail": "Authentication credentials were not provided." })
            }
            Self::BadAuthorizationHeader => json!({
                "detail": "Authorization header must contain two space-delimited values",
                "code": "bad_authorization_header",
            }),
            Self::InvalidAccessToken => json!({
                "detail": INVALID_TOKEN,
                "code": "token_not_valid",
                "messages": [{
                    "token_class": "AccessToken",
                    "token_type": "access",
                    "message": "Token is invalid or expired",
                }],
            }),
            Self::InvalidRefreshToken => json!({
                "detail": "Token is invalid or expired",
                "code": "token_not_valid",
            }),
            Self::InvalidCredentials => {
                json!({ "detail": "No active account found with the given credentials" })
            }
            Self::PermissionDenied => {
                json!({ "detail": "You do not have permission to perform this action." })
            }
            Self::Forbidden(msg) => json!({ "detail": msg }),
            Self::NotFound => json!({ "detail": "Not found." }),
            Self::InvalidCursor => json!({ "detail": "Invalid cursor" }),
            Self::Conflict(msg) => json!({ "detail": msg }),
            Self::MethodNotAllowed { method, .. } => {
                json!({ "detail": format!("Method \"{method}\" not allowed.") })
            }
            Self::PayloadTooLarge => json!({ "detail": "Request body is too large." }),
            Self::UnsupportedMediaType(ct) => {
                json!({ "detail": format!("Unsupported media type \"{ct}\" in request.") })
            }
            Self::Throttled(secs) => {
                json!({ "detail": format!("Request was throttled. Expected available in {secs} seconds.") })
            }
            Self::Unavailable(_) => {
                json!({ "detail": "The service is busy; please retry shortly." })
            }
            Self::Internal(_) => json!({ "detail": "A server error occurred." }),
        }
    }

    /// The response a client sees; server-side failures are logged here, once.
    pub fn into_response(self) -> HttpResponse {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?ErrorChain(&self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut response = json_response(status, &self.body());
        let headers = response.headers_mut();
        match &self {
            Self::NotAuthenticated
            | Self::BadAuthorizationHeader
            | Self::InvalidAccessToken
            | Self::InvalidRefreshToken
            | Self::InvalidCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\""));
            }
            Self::MethodNotAllowed { allow, .. } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Self::Throttled(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let field = |name: &str, message: String| Self::Validation(FieldErrors::one(name, message));
        match r {
            Refusal::NotFound => Self::NotFound,
            Refusal::NotOwner | Refusal::NotSender | Refusal::NotSenderOrOwner => Self::PermissionDenied,
            Refusal::OwnerLeaving => Self::Forbidden(
                "The owner cannot leave: hand ownership to another participant or delete the thread.",
            ),
            Refusal::LastOther => Self::Conflict(
                "A thread keeps at least two participants: the last other one cannot leave.".into(),
            ),
            Refusal::OwnerLeftOut => field(
                "participants",
                "The owner must stay a participant: hand ownership to another participant first.".into(),
            ),
            Refusal::OwnerNotParticipant => {
                field("owner", "The owner must be one of the participants.".into())
            }
            Refusal::Size => field(
                "participants",
                format!(
                    "A thread has 2 to {MAX_PARTICIPANTS} participants, and at most {MAX_PARTICIPANTS} may join or leave at once."
                ),
            ),
            Refusal::AlreadyIn => field("participants", "That user is already a participant.".into()),
            Refusal::NotIn => field("participants", "That user is not a participant.".into()),
            Refusal::TooManyReactions => field(
                "emoji",
                format!(
                    "A message has at most {} different reactions: react with one it has.",
                    crate::domain::reaction::MAX_EMOJIS
                ),
            ),
            // Says nothing of who is who: an outsider's id may or may not name a user.
            Refusal::MentionsOutsider => {
                field("mentions", "Only participants of this thread can be mentioned.".into())
            }
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Refused(r) => r.into(),
            WriteError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() { Self::Unavailable(e) } else { Self::Internal(Box::new(e)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(e: ApiError) -> (u16, Value) {
        let r = e.into_response();
        let status = r.status().as_u16();
        let body: Value = serde_json::from_slice(r.body().as_ref()).unwrap();
        (status, body)
    }

    #[test]
    fn validation_errors_use_drf_field_shape() {
        let (status, body) =
            body_of(ApiError::Validation(FieldErrors::one("text", "This field is required.")));
        assert_eq!(status, 400);
        assert_eq!(body, json!({"text": ["This field is required."]}));
    }

    #[test]
    fn other_errors_carry_detail() {
        for e in [ApiError::NotFound, ApiError::NotAuthenticated, ApiError::PermissionDenied] {
            let (_, body) = body_of(e);
            assert!(body["detail"].is_string());
        }
        let (status, body) = body_of(ApiError::InvalidAccessToken);
        assert_eq!(status, 401);
        assert_eq!(body["code"], "token_not_valid");
    }

    #[test]
    fn internal_errors_do_not_leak_details() {
        let (status, body) = body_of(ApiError::Internal("secret table name".into()));
        assert_eq!(status, 500);
        assert_eq!(body, json!({"detail": "A server error occurred."}));
    }
}
