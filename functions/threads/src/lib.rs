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
use shared::store::{CreateThreadError, CreateThreadOutcome, DeleteThreadError, MemberChange, MembersError};
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
        Handler::ReadThread | Handler::DeleteThread | Handler::UpdateThread | Handler::LeaveThread => {
            let user = authenticate(app, req)?;
            let thread: ThreadId = matched.param("thread").parse().map_err(|_| ApiError::NotFound)?;
            match handler {
                Handler::ReadThread => read(app, &user, &thread).await,
                Handler::DeleteThread => delete(app, &user, &thread).await,
                Handler::UpdateThread => update(app, req, &user, &thread).await,
                _ => leave(app, &user, &thread).await,
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
    invalid_pk_in("participants", id)
}

fn invalid_pk_in(field: &str, id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::Validation(FieldErrors::one(field, format!("Invalid pk \"{shown}\" - object does not exist.")))
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

/// Ids of users who exist and are active, else the usual 400 naming the first that is not.
async fn active(app: &App, field: &'static str, ids: &[UserId]) -> Result<(), ApiError> {
    let found = app.store.active_users(ids).await?;
    match ids.iter().find(|id| !found.iter().any(|u| &u.id == *id)) {
        Some(missing) => Err(invalid_pk_in(field, missing.as_str())),
        None => Ok(()),
    }
}

/// `PUT`/`PATCH {"participants": [...], "owner": id}`: the owner changes who is in the thread
/// (the whole set; the owner stays in it) or hands ownership to another participant.
async fn update(
    app: &App,
    req: &Request,
    user: &UserId,
    thread: &ThreadId,
) -> Result<HttpResponse, ApiError> {
    let fields = body::parse(req).await?;
    fields.only(&["participants", "owner"], &["id", "created", "updated", "last_message", "unread_count"])?;
    let mut errors = FieldErrors::default();
    // PUT replaces the participant set, so it needs one; PATCH changes what it names.
    let raw = if req.method() == lambda_http::http::Method::PUT || fields.has("participants") {
        fields.list("participants", &mut errors)
    } else {
        None
    };
    let owner = fields.optional_string("owner", 64, &mut errors);
    errors.into_result()?;
    let participants = match raw {
        Some(raw) => {
            let ids = participants(user, raw)?;
            active(app, "participants", &ids).await?;
            Some(ids)
        }
        None => None,
    };
    let owner = match owner {
        Some(text) => {
            let id: UserId = text.parse().map_err(|_| invalid_pk_in("owner", &text))?;
            active(app, "owner", std::slice::from_ref(&id)).await?;
            Some(id)
        }
        None => None,
    };
    let change = MemberChange { participants, owner };
    match app.store.change_members(thread, Some(user), &change).await {
        Ok(Some(m)) => Ok(ok(&ThreadView::from(m))),
        // The caller is not in it any more: they handed it over and left the set.
        Ok(None) => Ok(no_content()),
        Err(e) => Err(members_error(e)),
    }
}

/// `POST .../leave/`: a participant other than the owner leaves.
async fn leave(app: &App, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    app.store.leave_thread(thread, user).await.map_err(members_error)?;
    Ok(no_content())
}

fn members_error(e: MembersError) -> ApiError {
    match e {
        MembersError::NotFound => ApiError::NotFound,
        MembersError::NotOwner => ApiError::PermissionDenied,
        MembersError::OwnerLeaving => ApiError::Forbidden(
            "The owner cannot leave: hand ownership to another participant or delete the thread.",
        ),
        MembersError::LastOther => ApiError::Conflict(
            "A thread keeps at least two participants: the last other one cannot leave.".into(),
        ),
        MembersError::SetTaken(other) => {
            ApiError::Conflict(format!("Thread {other} already has exactly these participants.").into())
        }
        MembersError::OwnerNotParticipant => {
            ApiError::Validation(FieldErrors::one("owner", "The owner must be one of the participants."))
        }
        MembersError::Size | MembersError::TooMany => ApiError::Validation(FieldErrors::one(
            "participants",
            format!(
                "A thread has 2 to {MAX_PARTICIPANTS} participants, and at most 32 may join or leave at once."
            ),
        )),
        MembersError::Store(e) => e.into(),
    }
}
