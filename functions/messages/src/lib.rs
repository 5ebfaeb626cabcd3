//! `/api/threads/{id}/messages/...`: list (and mark read), send, detail, edit, delete, and the
//! per-thread unread count.

use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared::domain::ids::{MessageId, Seq, ThreadId, UserId, Version};
use shared::domain::model::{
    MAX_PARTICIPANTS, MAX_TEXT_CHARS, Membership, Message, MessageChange, MessageDetail,
};
use shared::domain::reaction::Emoji;
use shared::domain::rules::{Actor, Refusal};
use shared::http::auth::authenticate;
use shared::http::body;
use shared::http::error::FieldErrors;
use shared::http::pagination::{MAX_LIMIT, Page, envelope, limit_param, page_request};
use shared::http::routes::{self, MessagesRoute};
use shared::http::{HttpResponse, absolute_url, json_response, no_content, ok, query_param, respond};
use shared::store::{Outgoing, SendOutcome};
use shared::{ApiError, App};

/// Longest `client_id` a client may use to make a send idempotent.
const MAX_CLIENT_ID_CHARS: usize = 64;

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (route, matched) = routes::resolve_for(req)?;
    let user = authenticate(app, req)?;
    let thread: ThreadId = matched.param("thread").parse().map_err(|_| ApiError::NotFound)?;
    match route {
        MessagesRoute::Send => send(app, req, &user, &thread).await,
        MessagesRoute::List => list(app, req, &user, &thread).await,
        MessagesRoute::UnreadCount => {
            let m = member(app, &user, &thread).await?;
            Ok(ok(&json!({ "unread_count": m.unread })))
        }
        MessagesRoute::Edit => edit(app, req, &user, &thread, matched.param("message")).await,
        MessagesRoute::Delete => delete(app, &user, &thread, matched.param("message")).await,
        MessagesRoute::Read => detail(app, &user, &thread, matched.param("message")).await,
        MessagesRoute::React | MessagesRoute::Unreact => {
            let on = route == MessagesRoute::React;
            react(app, &user, &thread, matched.param("message"), matched.param("emoji"), on).await
        }
    }
}

/// The message id in the path, which must name a message of the thread in the path.
fn message_seq(thread: &ThreadId, id: &str) -> Result<Seq, ApiError> {
    let id: MessageId = id.parse().map_err(|_| ApiError::NotFound)?;
    if &id.thread != thread {
        return Err(ApiError::NotFound);
    }
    Ok(id.seq)
}

/// `PUT` or `PATCH {"text"}`: the sender changes the text, within a send's bounds.
async fn edit(
    app: &App,
    req: &Request,
    user: &UserId,
    thread: &ThreadId,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let seq = message_seq(thread, id)?;
    let fields = body::parse(req).await?;
    fields.only(
        &["text", "mentions"],
        &["id", "thread", "sender", "created", "edited", "client_id", "reply_to", "reactions"],
    )?;
    let mut errors = FieldErrors::default();
    let text = fields.string("text", MAX_TEXT_CHARS, &mut errors);
    // Absent, the mentions stay as they are: a client that knows nothing of them keeps them.
    let mentions = mentions(&fields, &mut errors);
    errors.into_result()?;
    let actor = Actor::User(user.clone());
    let text = text.unwrap_or_default();
    let message = app.store.edit_message(&actor, thread, seq, &text, mentions.as_deref()).await?;
    Ok(ok(&message.for_viewer(user)))
}

/// `PUT`/`DELETE .../reactions/{emoji}/`: the caller's reaction, added or taken away; both
/// answer the message as it is now.
async fn react(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
    id: &str,
    emoji: &str,
    on: bool,
) -> Result<HttpResponse, ApiError> {
    let seq = message_seq(thread, id)?;
    let emoji: Emoji = percent_encoding::percent_decode_str(emoji)
        .decode_utf8()
        .ok()
        .and_then(|text| text.parse().ok())
        // No such reaction can exist, as no message of another thread can: the path is wrong.
        .ok_or(ApiError::NotFound)?;
    let message = app.store.react(&Actor::User(user.clone()), thread, seq, &emoji, on).await?;
    Ok(ok(&message.for_viewer(user)))
}

/// `DELETE`: the sender, or the thread's owner, deletes a message.
async fn delete(app: &App, user: &UserId, thread: &ThreadId, id: &str) -> Result<HttpResponse, ApiError> {
    let seq = message_seq(thread, id)?;
    app.store.delete_message(&Actor::User(user.clone()), thread, seq).await?;
    Ok(no_content())
}

/// The caller's membership; a thread they are not in looks exactly like one that does not exist.
async fn member(app: &App, user: &UserId, thread: &ThreadId) -> Result<Membership, ApiError> {
    app.store.membership(user, thread).await?.ok_or(ApiError::NotFound)
}

/// A page of messages, newest first; the newest page also says from which version to ask
/// for changes (`?since=`), as read before the page, so that nothing falls between the two.
#[derive(Serialize)]
struct MessagePage {
    #[serde(flatten)]
    page: Page<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
}

/// What changed since a version: each message touched, once, as it is now.
#[derive(Serialize)]
struct Changes {
    /// The version to ask from next.
    since: String,
    /// The rest of the changes, if this answer holds only the first `limit` of them.
    next: Option<String>,
    results: Vec<MessageChange>,
}

/// `?since=` as the API writes it: a version from an earlier answer about this thread.
fn since_param(req: &Request) -> Result<Option<Version>, ApiError> {
    let Some(text) = query_param(req, "since")? else { return Ok(None) };
    text.parse().map(Some).map_err(|_| {
        ApiError::Validation(FieldErrors::one("since", "A version from an earlier answer is required."))
    })
}

async fn list(app: &App, req: &Request, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    let scope = format!("messages:{thread}:{user}");
    if let Some(since) = since_param(req)? {
        if query_param(req, "cursor")?.is_some() {
            // A stranger's thread and a forged cursor answer as they do without `since`.
            member(app, user, thread).await?;
            page_request(app, req, scope, vec![])?;
            return Err(ApiError::Validation(FieldErrors::one("since", "Cannot be combined with cursor.")));
        }
        return changes(app, req, user, thread, since).await;
    }
    let requested = page_request(app, req, scope, vec![]);
    let (page, slice, since, count) = match requested {
        Ok(page) if !page.is_first() => {
            // An older page carries no `since`, so nothing orders the two reads: they run together,
            // and a stranger gets the membership's 404 whatever the page held.
            let list = async { Ok::<_, ApiError>(app.store.list_messages(thread, page.spec()).await?) };
            let (membership, slice) = tokio::try_join!(member(app, user, thread), list)?;
            let count = membership.thread.live_count();
            if let Some(newest) = slice.items.iter().map(|m| m.id.seq).max() {
                app.store.mark_read(membership, newest).await?;
            }
            (page, slice, None, count)
        }
        requested => {
            // The newest page's `since` must be read before the page, so that every change up to
            // it is on the page. The marker moves to the newest message of that same view, which
            // needs nothing from the page, so the move runs beside the page's query.
            let membership = member(app, user, thread).await?;
            let page = requested?;
            let since = membership.thread.version.to_string();
            let count = membership.thread.live_count();
            let newest = Seq(membership.thread.message_count);
            let list = async { Ok::<_, ApiError>(app.store.list_messages(thread, page.spec()).await?) };
            let mark = async {
                if newest.0 > 0 {
                    app.store.mark_read(membership, newest).await?;
                }
                Ok::<_, ApiError>(())
            };
            let (slice, ()) = tokio::try_join!(list, mark)?;
            (page, slice, Some(since), count)
        }
    };
    let page = envelope(app, req, &page, count, slice, |m| m.for_viewer(user));
    Ok(ok(&MessagePage { page, since }))
}

/// `?since=<version>`: the messages sent, edited or deleted after it, oldest change first,
/// deleted ones as tombstones. Like the list, it marks what it shows as read.
async fn changes(
    app: &App,
    req: &Request,
    user: &UserId,
    thread: &ThreadId,
    since: Version,
) -> Result<HttpResponse, ApiError> {
    let limit = limit_param(req, MAX_LIMIT)?;
    let (membership, log) =
        tokio::try_join!(app.store.membership(user, thread), app.store.change_log(thread, since, limit))?;
    let membership = membership.ok_or(ApiError::NotFound)?;
    // The log already says which messages the answer shows, so the marker moves to the newest of
    // them while they are read (a deleted one among them is as good: it counts as unread for
    // no one).
    let newest = log.touched.iter().max().copied();
    let read = async { Ok::<_, ApiError>(app.store.changed_messages(thread, log).await?) };
    let mark = async {
        if let Some(newest) = newest {
            app.store.mark_read(membership, newest).await?;
        }
        Ok::<_, ApiError>(())
    };
    let (found, ()) = tokio::try_join!(read, mark)?;
    let next = found.more.then(|| {
        let mut query = vec![("since", found.upto.to_string())];
        if limit != MAX_LIMIT {
            query.push(("limit", limit.to_string()));
        }
        absolute_url(req, &query)
    });
    let results = found
        .messages
        .into_iter()
        .map(|c| MessageChange { message: c.message.for_viewer(user), ..c })
        .collect();
    Ok(ok(&Changes { since: found.upto.to_string(), next, results }))
}

async fn send(app: &App, req: &Request, user: &UserId, thread: &ThreadId) -> Result<HttpResponse, ApiError> {
    let fields = body::parse(req).await?;
    fields.only(&["text", "client_id", "reply_to", "mentions"], &["id", "thread", "sender", "created"])?;
    let mut errors = FieldErrors::default();
    let text = fields.string("text", MAX_TEXT_CHARS, &mut errors);
    let client_id = fields.optional_string("client_id", MAX_CLIENT_ID_CHARS, &mut errors);
    let reply_to = fields.optional_string("reply_to", 200, &mut errors);
    // A message of this thread, as its id says; whether it is there is the store's to find.
    let reply_to = match reply_to {
        Some(id) => match message_seq(thread, &id) {
            Ok(seq) => Some(seq),
            Err(_) => {
                errors.add("reply_to", NO_SUCH_REPLY_TO);
                None
            }
        },
        None => None,
    };
    let mentions = mentions(&fields, &mut errors).unwrap_or_default();
    errors.into_result()?;
    let text = text.unwrap_or_default();
    let outgoing = Outgoing { text: &text, client_id: client_id.as_deref(), reply_to, mentions: &mentions };
    match app.store.send_message(user, thread, outgoing).await? {
        SendOutcome::Sent(message) => Ok(json_response(StatusCode::CREATED, &message.for_viewer(user))),
        SendOutcome::Replayed(message) => Ok(ok(&message.for_viewer(user))),
        SendOutcome::ClientIdReused => {
            Err(ApiError::Conflict("This client_id was already used for a different message.".into()))
        }
        SendOutcome::ReplayedDeleted => {
            Err(ApiError::Conflict("The message sent with this client_id has been deleted.".into()))
        }
        SendOutcome::NotFound => Err(ApiError::NotFound),
        SendOutcome::NoSuchReplyTo => {
            Err(ApiError::Validation(FieldErrors::one("reply_to", NO_SUCH_REPLY_TO)))
        }
        SendOutcome::MentionsOutsider => Err(Refusal::MentionsOutsider.into()),
    }
}

/// `mentions`, if the body has it (null is none): the ids of participants, each once.
fn mentions(fields: &body::Fields, errors: &mut FieldErrors) -> Option<Vec<UserId>> {
    if !fields.has("mentions") {
        return None;
    }
    if fields.is_null("mentions") {
        return Some(Vec::new());
    }
    fields.user_ids("mentions", MAX_PARTICIPANTS, errors)
}

/// Why a reply's `reply_to` is refused.
const NO_SUCH_REPLY_TO: &str = "Must be the id of a message of this thread that is not deleted.";

async fn detail(app: &App, user: &UserId, thread: &ThreadId, id: &str) -> Result<HttpResponse, ApiError> {
    let seq = message_seq(thread, id)?;
    // The message does not depend on the membership, so both are read at once; a stranger gets
    // the membership's 404 whatever the message read found.
    let message = async { Ok::<_, ApiError>(app.store.message(thread, seq).await?) };
    let (membership, message) = tokio::try_join!(member(app, user, thread), message)?;
    let message = message.ok_or(ApiError::NotFound)?;
    let read_by = app.store.read_by(&message, &membership.thread.participants).await?;
    Ok(ok(&MessageDetail { message: message.for_viewer(user), read_by }))
}
