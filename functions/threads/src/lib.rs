//! `/api/threads/` (list, create) and `/api/threads/{id}/` (read, delete).

use lambda_http::Request;
use lambda_http::http::StatusCode;
use shared::domain::ids::{ThreadId, UserId};
use shared::domain::model::{MAX_PARTICIPANTS, ThreadView};
use shared::domain::rules::{Actor, MemberChange};
use shared::http::auth::authenticate;
use shared::http::body;
use shared::http::error::FieldErrors;
use shared::http::pagination::{envelope, page_request};
use shared::http::routes::{self, ThreadsRoute};
use shared::http::{HttpResponse, json_response, no_content, ok, respond};
use shared::store::CreateThreadOutcome;
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (route, matched) = routes::resolve_for(req)?;
    let thread = || -> Result<(UserId, ThreadId), ApiError> {
        let user = authenticate(app, req)?;
        let thread: ThreadId = matched.param("thread").parse().map_err(|_| ApiError::NotFound)?;
        Ok((user, thread))
    };
    match route {
        ThreadsRoute::List => list(app, req).await,
        ThreadsRoute::Create => create(app, req).await,
        ThreadsRoute::Read => {
            let (user, thread) = thread()?;
            read(app, &user, &thread).await
        }
        ThreadsRoute::Delete => {
            let (user, thread) = thread()?;
            delete(app, &user, &thread).await
        }
        ThreadsRoute::Update => {
            let (user, thread) = thread()?;
            update(app, req, &user, &thread).await
        }
        ThreadsRoute::Leave => {
            let (user, thread) = thread()?;
            leave(app, &user, &thread).await
        }
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

/// The requested participants, each id parsed once, duplicates dropped, in the order given;
/// `with` first when given (a thread's creator is always in it).
fn participants(with: Option<&UserId>, given: Vec<UserId>) -> Result<Vec<UserId>, ApiError> {
    let field = "participants";
    let mut ids: Vec<UserId> = with.into_iter().cloned().collect();
    ids.extend(given.into_iter().filter(|id| Some(id) != with));
    if ids.len() > MAX_PARTICIPANTS {
        let msg = format!("Ensure this field has no more than {MAX_PARTICIPANTS} elements.");
        return Err(ApiError::Validation(FieldErrors::one(field, msg)));
    }
    // A new thread needs someone besides its creator; a change is checked for size by the
    // rules, after the caller's right to make it (403 and 404 come before 400, as in DRF).
    if with.is_some() && ids.len() < 2 {
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
    fields.only(
        &["participants"],
        &["id", "owner", "created", "updated", "last_message", "unread_count", "unread_mentions"],
    )?;
    let mut errors = FieldErrors::default();
    let raw = fields.user_ids("participants", MAX_PARTICIPANTS, &mut errors);
    errors.into_result()?;
    let ids = participants(Some(&user), raw.unwrap_or_default())?;

    let active = app.store.active_users(&ids).await?;
    if let Some(missing) = ids.iter().find(|id| !active.iter().any(|u| &u.id == *id)) {
        return Err(if missing == &user {
            ApiError::InvalidAccessToken
        } else {
            invalid_pk(missing.as_str())
        });
    }
    match app.store.create_thread(&user, &ids).await? {
        CreateThreadOutcome::Created(m) => Ok(json_response(StatusCode::CREATED, &ThreadView::from(m))),
        CreateThreadOutcome::Existing(m) => Ok(ok(&ThreadView::from(m))),
    }
}

async fn read(app: &App, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    let membership = app.store.membership(user, thread).await?.ok_or(ApiError::NotFound)?;
    Ok(ok(&ThreadView::from(membership)))
}

async fn delete(app: &App, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    app.store.delete_thread(thread, &Actor::User(user.clone())).await?;
    Ok(no_content())
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
/// (the whole set, which names the owner unless ownership moves in the same change) or hands
/// ownership to another participant.
async fn update(
    app: &App,
    req: &Request,
    user: &UserId,
    thread: &ThreadId,
) -> Result<HttpResponse, ApiError> {
    let fields = body::parse(req).await?;
    fields.only(
        &["participants", "owner"],
        &["id", "created", "updated", "last_message", "unread_count", "unread_mentions"],
    )?;
    let mut errors = FieldErrors::default();
    // PUT replaces the participant set, so it needs one; PATCH changes what it names.
    let raw = if req.method() == lambda_http::http::Method::PUT || fields.has("participants") {
        fields.user_ids("participants", MAX_PARTICIPANTS, &mut errors)
    } else {
        None
    };
    if fields.is_null("owner") {
        errors.add("owner", "This field may not be null.");
    }
    let owner = fields.optional_string("owner", 64, &mut errors);
    errors.into_result()?;
    let participants = match raw {
        Some(raw) => {
            // The whole set, as given: an owner left out is refused, not put back.
            let ids = participants(None, raw)?;
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
    match app.store.change_members(thread, &Actor::User(user.clone()), &change).await? {
        Some(m) => Ok(ok(&ThreadView::from(m))),
        // The caller is not in it any more: they handed it over and left the set.
        None => Ok(no_content()),
    }
}

/// `POST .../leave/`: a participant other than the owner leaves.
async fn leave(app: &App, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    app.store.leave_thread(thread, user).await?;
    Ok(no_content())
}
