//! `/api/threads/` (list, create) and `/api/threads/{id}/` (read, delete).

use lambda_http::Request;
use lambda_http::http::StatusCode;
use shared::domain::ids::{ThreadId, UserId};
use shared::domain::model::{MAX_PARTICIPANTS, Mute, ThreadView};
use shared::domain::rules::{Actor, MemberChange};
use shared::domain::timestamp::Timestamp;
use shared::http::auth::authenticate;
use shared::http::body;
use shared::http::error::FieldErrors;
use shared::http::pagination::{envelope, page_request};
use shared::http::routes::{self, ThreadsRoute};
use shared::http::{HttpResponse, json_response, no_content, ok, query_param, respond};
use shared::store::{CreateThreadOutcome, ViewChange};
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
        ThreadsRoute::View => {
            let (user, thread) = thread()?;
            read(app, &user, &thread).await
        }
        ThreadsRoute::ChangeView => {
            let (user, thread) = thread()?;
            change_view(app, req, &user, &thread).await
        }
    }
}

/// The fields of a thread's representation that clients echo back: ignored, never applied.
const THREAD_READ_ONLY: &[&str] = &[
    "id",
    "created",
    "updated",
    "last_message",
    "unread_count",
    "unread_mentions",
    "muted",
    "muted_until",
    "archived",
];

/// The longest mute with an end: a year (longer is "until I unmute").
const MAX_MUTE_SECS: i64 = 366 * 24 * 3600;

/// `PATCH .../me/ {"muted", "muted_until", "archived"}`: the caller mutes (until a time, or
/// until they unmute), unmutes, archives or brings back the thread, for themselves only.
async fn change_view(
    app: &App,
    req: &Request,
    user: &UserId,
    thread: &ThreadId,
) -> Result<HttpResponse, ApiError> {
    let fields = body::parse(req).await?;
    let echoed: Vec<&str> = THREAD_READ_ONLY
        .iter()
        .copied()
        .chain(["participants", "owner"])
        .filter(|f| !["muted", "muted_until", "archived"].contains(f))
        .collect();
    fields.only(&["muted", "muted_until", "archived"], &echoed)?;
    let mut errors = FieldErrors::default();
    let muted = fields.optional_bool("muted", &mut errors);
    let archived = fields.optional_bool("archived", &mut errors);
    let until = match fields.optional_string("muted_until", 40, &mut errors) {
        Some(text) => match text.parse::<Timestamp>() {
            Ok(end) if end <= Timestamp::now() => {
                errors.add("muted_until", "Must be in the future.");
                None
            }
            Ok(end) if end > Timestamp::now().plus_seconds(MAX_MUTE_SECS) => {
                errors.add("muted_until", "Must be within a year; leave it out to mute until you unmute.");
                None
            }
            Ok(end) => Some(end),
            Err(_) => {
                errors.add("muted_until", "Must be an RFC 3339 time, like 2026-01-02T03:04:05Z.");
                None
            }
        },
        None => None,
    };
    if muted == Some(false) && until.is_some() {
        errors.add("muted_until", "Cannot end a mute that is being turned off.");
    }
    errors.into_result()?;
    let mute = match (muted, until) {
        (_, Some(end)) => Some(Mute::Until(end)),
        (Some(true), None) => Some(Mute::Always),
        (Some(false), None) => Some(Mute::Off),
        (None, None) => None,
    };
    let m = app.store.change_view(user, thread, ViewChange { mute, archived }).await?;
    Ok(ok(&ThreadView::from(m)))
}

async fn list(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = authenticate(app, req)?;
    let archived = match query_param(req, "archived")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest("archived must be true or false.".into()));
        }
    };
    // Each list has its own cursors: one of the archived list is no cursor of the other.
    let scope = if archived { format!("threads:{user}:archived") } else { format!("threads:{user}") };
    let extra = if archived { vec![("archived", "true".to_owned())] } else { vec![] };
    let page = page_request(app, req, scope, extra)?;
    let (slice, counters) =
        tokio::try_join!(app.store.list_threads(&user, page.spec(), archived), app.store.counters(&user))?;
    let count = match archived {
        true => counters.archived_threads,
        false => counters.thread_count.saturating_sub(counters.archived_threads),
    };
    let body = envelope(app, req, &page, count, slice, ThreadView::from);
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
    let echoed: Vec<&str> = THREAD_READ_ONLY.iter().copied().chain(["owner"]).collect();
    fields.only(&["participants"], &echoed)?;
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
    fields.only(&["participants", "owner"], THREAD_READ_ONLY)?;
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
