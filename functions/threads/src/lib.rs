//! `/api/threads/` (list, create) and `/api/threads/{id}/` (read, delete).

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde_json::Value;
use shared::auth::authenticate;
use shared::body::{self, type_name};
use shared::error::FieldErrors;
use shared::http::{HttpResponse, json_response, no_content, ok, respond};
use shared::ids::{ThreadId, UserId};
use shared::model::{MAX_PARTICIPANTS, ThreadView};
use shared::pagination::{envelope, page_request};
use shared::routes::{self, Handler};
use shared::store::{CreateThreadError, CreateThreadOutcome, DeleteThreadError};
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (handler, matched) = routes::resolve(req)?;
    match handler {
        Handler::ListThreads => list(app, req).await,
        Handler::CreateThread => create(app, req).await,
        Handler::ReadThread | Handler::DeleteThread => {
            let user = authenticate(app, req)?;
            let thread: ThreadId = matched.param("thread").parse().map_err(|_| ApiError::NotFound)?;
            if handler == Handler::ReadThread {
                read(app, &user, &thread).await
            } else {
                delete(app, &user, &thread).await
            }
        }
        _ => Err(ApiError::NotFound),
    }
}

async fn list(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = authenticate(app, req)?;
    let page = page_request(app, req, format!("threads:{user}"), vec![])?;
    let (slice, counters) =
        tokio::try_join!(app.store.list_threads(&user, page.spec()), app.store.counters(&user))?;
    let body = envelope(app, req, &page, counters.thread_count, slice, ThreadView::from);
    Ok(ok(&body))
}

/// The requested participants plus the caller, each id parsed once, duplicates dropped.
fn participants(caller: &UserId, raw: Vec<Value>) -> Result<Vec<UserId>, ApiError> {
    let field = "participants";
    let mut ids = vec![caller.clone()];
    for value in raw {
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            other => {
                let msg = format!("Incorrect type. Expected pk value, received {}.", type_name(other));
                return Err(ApiError::Validation(FieldErrors::one(field, msg)));
            }
        };
        let id: UserId = text.parse().map_err(|_| invalid_pk(&text))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > MAX_PARTICIPANTS {
            let msg = format!("Ensure this field has no more than {MAX_PARTICIPANTS} elements.");
            return Err(ApiError::Validation(FieldErrors::one(field, msg)));
        }
    }
    if ids.len() < 2 {
        let msg = "A thread needs at least one participant besides you.";
        return Err(ApiError::Validation(FieldErrors::one(field, msg)));
    }
    Ok(ids)
}

fn invalid_pk(id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::Validation(FieldErrors::one(
        "participants",
        format!("Invalid pk \"{shown}\" - object does not exist."),
    ))
}

async fn create(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = authenticate(app, req)?;
    let fields = body::parse(req).await?;
    fields.only(&["participants"], &["id", "owner", "created", "updated", "last_message", "unread_count"])?;
    let mut errors = FieldErrors::default();
    let raw = fields.list("participants", &mut errors);
    errors.into_result()?;
    let ids = participants(&user, raw.unwrap_or_default())?;

    let active = app.store.active_users(&ids).await?;
    if let Some(missing) = ids.iter().find(|id| !active.iter().any(|u| &u.id == *id)) {
        return Err(if missing == &user {
            ApiError::InvalidAccessToken
        } else {
            invalid_pk(missing.as_str())
        });
    }
    match app.store.create_thread(&user, &ids).await {
        Ok(CreateThreadOutcome::Created(m)) => Ok(json_response(StatusCode::CREATED, &ThreadView::from(m))),
        Ok(CreateThreadOutcome::Existing(m)) => Ok(ok(&ThreadView::from(m))),
        Err(CreateThreadError::Store(e)) => Err(e.into()),
    }
}

async fn read(app: &App, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    let membership = app.store.membership(user, thread).await?.ok_or(ApiError::NotFound)?;
    Ok(ok(&ThreadView::from(membership)))
}

async fn delete(app: &App, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    match app.store.delete_thread(thread, Some(user)).await {
        Ok(()) => Ok(no_content()),
        Err(DeleteThreadError::NotFound) => Err(ApiError::NotFound),
        Err(DeleteThreadError::NotOwner) => Err(ApiError::PermissionDenied),
        Err(DeleteThreadError::Store(e)) => Err(e.into()),
    }
}
