//! The endpoints `make bench` measures and the data they run against: a reader, a partner and
//! their thread, small (30 messages, 12 threads) or large (100,000 messages, 5,000 threads).

use futures_util::{StreamExt, TryStreamExt, stream};
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use serde::{Deserialize, Serialize};
use shared::App;
use shared::domain::ids::{MessageId, Seq, ThreadId, UserId};
use shared::domain::timestamp::Timestamp;
use shared::http::HttpResponse;
use shared::store::{ImportedThread, NewUser};

/// The password of every user the bench makes.
pub const PASSWORD: &str = "bench-password-1";

/// A message text of a typical length (120 characters).
const TEXT: &str = "Running ten minutes late, the train is stuck outside the station. Start without me and \
                    I will catch up with you at lunch.";

/// 👍, percent-encoded as a path segment.
const THUMBS_UP: &str = "%F0%9F%91%8D";

/// How much data the reader has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// Messages in the reader's thread with the partner.
    pub messages: usize,
    /// Threads the reader takes part in, that one included.
    pub threads: usize,
}

impl Size {
    /// A typical user.
    // More threads than a page holds, so that both cases list a full first page.
    pub const SMALL: Size = Size { messages: 30, threads: 12 };
    /// The issue's scale case.
    pub const LARGE: Size = Size { messages: 100_000, threads: 5_000 };
}

/// A user the bench acts as.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Their id.
    pub id: UserId,
    /// Their login name.
    pub username: String,
    /// A valid access token.
    pub token: String,
    /// Their token version, for minting refresh tokens.
    pub version: u64,
}

/// The data one measurement runs against.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Whose requests are measured.
    pub reader: Actor,
    /// The other member of `thread`.
    pub partner: Actor,
    /// The thread between them.
    pub thread: ThreadId,
    /// A message from the partner in it.
    pub message: MessageId,
    /// Prefix of every username in this fixture (unique per fixture).
    pub prefix: String,
    /// A password hash of [`PASSWORD`], reused so making users stays cheap.
    hash: String,
}

/// Creates a user with [`PASSWORD`].
async fn make_user(app: &App, username: String, hash: &str) -> Actor {
    let user = app
        .store
        .create_user(NewUser {
            username: username.clone(),
            password_hash: hash.to_owned(),
            is_staff: false,
            is_active: true,
            id: None,
            date_joined: None,
        })
        .await
        .expect("create a bench user");
    let token = app.jwt.issue_pair(&user.id, user.token_version).access;
    Actor { id: user.id, username, token, version: user.token_version }
}

impl Fixture {
    /// Writes the users, the reader's thread with the partner holding `size.messages` messages
    /// (alternating senders, none read yet), and `size.threads - 1` further threads.
    pub async fn build(app: &App, size: Size, progress: impl Fn(usize, usize)) -> Self {
        let prefix = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let hash = shared::password::hash(PASSWORD);
        let reader = make_user(app, format!("{prefix}-reader"), &hash).await;
        let partner = make_user(app, format!("{prefix}-partner"), &hash).await;
        let now = Timestamp::now();
        let thread = ThreadId::generate();
        let senders = [&partner.id, &reader.id];
        let messages = (0..size.messages).map(|i| (senders[i % 2].clone(), TEXT.to_owned(), now)).collect();
        let main = ImportedThread {
            id: thread.clone(),
            owner: reader.id.clone(),
            participants: vec![reader.id.clone(), partner.id.clone()],
            created: now,
            updated: now,
            messages,
            reads: vec![],
        };
        app.store.import_thread(&main).await.expect("write the reader's thread");
        progress(1, size.threads);

        // The other threads are with members who have no account: nothing the measured
        // endpoints read needs one, and it keeps seeding 5,000 threads to a minute.
        let done = std::sync::atomic::AtomicUsize::new(1);
        stream::iter(1..size.threads)
            .map(|_| {
                let other = ImportedThread {
                    id: ThreadId::generate(),
                    owner: reader.id.clone(),
                    participants: vec![reader.id.clone(), UserId::generate()],
                    created: now,
                    updated: now,
                    messages: vec![(partner.id.clone(), TEXT.to_owned(), now)],
                    reads: vec![],
                };
                let (done, progress) = (&done, &progress);
                async move {
                    import_with_retry(app, &other).await?;
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(n, size.threads);
                    Ok::<_, shared::store::StoreError>(())
                }
            })
            .buffer_unordered(4)
            .try_collect::<()>()
            .await
            .expect("write the reader's other threads");
        let message = MessageId { thread: thread.clone(), seq: Seq(1) };
        Self { reader, partner, thread, message, prefix, hash }
    }

    /// Sends a message as the reader, through the store; returns its id.
    pub async fn send_as_reader(&self, app: &App) -> MessageId {
        match app.store.send_message(&self.reader.id, &self.thread, shared::store::Outgoing::text(TEXT)).await
        {
            Ok(shared::store::SendOutcome::Sent(m)) => m.id,
            other => panic!("a message for the bench to act on: {other:?}"),
        }
    }

    /// A new user, for requests that need someone not yet in a thread with the reader.
    pub async fn stranger(&self, app: &App) -> Actor {
        let name = format!("{}-{}", self.prefix, &uuid::Uuid::new_v4().simple().to_string()[..10]);
        make_user(app, name, &self.hash).await
    }
}

/// The reader's membership counters are in every import's transaction, so concurrent imports
/// can lose races; try again as a client would.
async fn import_with_retry(app: &App, thread: &ImportedThread) -> Result<(), shared::store::StoreError> {
    let mut attempt = 0;
    loop {
        match app.store.import_thread(thread).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && attempt < 20 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The function (Lambda) that serves an endpoint: the route table's.
pub use shared::http::routes::Function;

/// Calls the handler of the function that serves a bench endpoint, in-process.
pub async fn handle(function: Function, app: &App, req: Request) -> HttpResponse {
    match function {
        Function::Token => token::handle(app, req).await,
        Function::Threads => threads::handle(app, req).await,
        Function::Messages => messages::handle(app, req).await,
        Function::UnreadCount => unread_count::handle(app, req).await,
        Function::Users => users::handle(app, req).await,
        Function::Admin | Function::Realtime => unreachable!("no bench endpoint is served by {function:?}"),
    }
}

/// Every API endpoint, in the order the bench measures them (the order matters: listing
/// messages marks them read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    UnreadTotals,
    ThreadUnread,
    ListThreads,
    GetThread,
    ListMessages,
    SendMessage,
    GetMessage,
    EditMessage,
    DeleteMessage,
    SendReply,
    React,
    Unreact,
    MuteThread,
    SearchUsers,
    Me,
    Login,
    Refresh,
    CreateThread,
    DeleteThread,
}

impl Endpoint {
    /// All of them, in measuring order.
    pub const ALL: [Endpoint; 19] = [
        Self::UnreadTotals,
        Self::ThreadUnread,
        Self::ListThreads,
        Self::GetThread,
        Self::ListMessages,
        Self::SendMessage,
        Self::GetMessage,
        Self::EditMessage,
        Self::DeleteMessage,
        Self::SendReply,
        Self::React,
        Self::Unreact,
        Self::MuteThread,
        Self::SearchUsers,
        Self::Me,
        Self::Login,
        Self::Refresh,
        Self::CreateThread,
        Self::DeleteThread,
    ];

    /// Method and route, as the API documents it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Login => "POST /api/token/",
            Self::Refresh => "POST /api/token/refresh/",
            Self::ListThreads => "GET /api/threads/",
            Self::CreateThread => "POST /api/threads/",
            Self::GetThread => "GET /api/threads/{id}/",
            Self::DeleteThread => "DELETE /api/threads/{id}/",
            Self::ListMessages => "GET /api/threads/{id}/messages/",
            Self::SendMessage => "POST /api/threads/{id}/messages/",
            Self::GetMessage => "GET /api/threads/{id}/messages/{mid}/",
            Self::EditMessage => "PATCH /api/threads/{id}/messages/{mid}/",
            Self::DeleteMessage => "DELETE /api/threads/{id}/messages/{mid}/",
            Self::SendReply => "POST /api/threads/{id}/messages/ (reply_to, mentions)",
            Self::React => "PUT /api/threads/{id}/messages/{mid}/reactions/{emoji}/",
            Self::Unreact => "DELETE /api/threads/{id}/messages/{mid}/reactions/{emoji}/",
            Self::MuteThread => "PATCH /api/threads/{id}/me/",
            Self::ThreadUnread => "GET /api/threads/{id}/messages/unread_count/",
            Self::UnreadTotals => "GET /api/unread_count/",
            Self::SearchUsers => "GET /api/users/?search=",
            Self::Me => "GET /api/users/me/",
        }
    }

    /// True when a request can be made only once (it uses up what it acts on, or a refresh
    /// token), so that a run of many needs one [`Endpoint::prepare`] each.
    pub fn once_only(self) -> bool {
        matches!(
            self,
            Self::EditMessage
                | Self::DeleteMessage
                | Self::React
                | Self::Unreact
                | Self::MuteThread
                | Self::Refresh
                | Self::CreateThread
                | Self::DeleteThread
        )
    }

    /// The function that serves it.
    pub fn function(self) -> Function {
        match self {
            Self::Login | Self::Refresh => Function::Token,
            Self::ListThreads
            | Self::CreateThread
            | Self::GetThread
            | Self::DeleteThread
            | Self::MuteThread => Function::Threads,
            Self::ListMessages
            | Self::SendMessage
            | Self::GetMessage
            | Self::EditMessage
            | Self::DeleteMessage
            | Self::SendReply
            | Self::React
            | Self::Unreact
            | Self::ThreadUnread => Function::Messages,
            Self::UnreadTotals => Function::UnreadCount,
            Self::SearchUsers | Self::Me => Function::Users,
        }
    }

    /// Builds one request, first writing what it consumes (a thread to delete, a new partner).
    pub async fn prepare(self, app: &App, fx: &Fixture) -> Prepared {
        let reader = &fx.reader;
        let thread = &fx.thread;
        let (method, uri, body) = match self {
            Self::Login => (
                Method::POST,
                "/api/token/".to_owned(),
                Some(serde_json::json!({ "username": reader.username, "password": PASSWORD })),
            ),
            Self::Refresh => {
                let refresh = app.jwt.issue_pair(&reader.id, reader.version).refresh;
                (
                    Method::POST,
                    "/api/token/refresh/".to_owned(),
                    Some(serde_json::json!({ "refresh": refresh })),
                )
            }
            Self::ListThreads => (Method::GET, "/api/threads/".to_owned(), None),
            Self::CreateThread => {
                let other = fx.stranger(app).await;
                let body = serde_json::json!({ "participants": [other.id] });
                (Method::POST, "/api/threads/".to_owned(), Some(body))
            }
            Self::GetThread => (Method::GET, format!("/api/threads/{thread}/"), None),
            Self::DeleteThread => {
                let other = fx.stranger(app).await;
                let created = app
                    .store
                    .create_thread(&reader.id, &[reader.id.clone(), other.id])
                    .await
                    .expect("create a thread to delete");
                let id = match created {
                    shared::store::CreateThreadOutcome::Created(t)
                    | shared::store::CreateThreadOutcome::Existing(t) => t.thread.id,
                };
                (Method::DELETE, format!("/api/threads/{id}/"), None)
            }
            Self::ListMessages => (Method::GET, format!("/api/threads/{thread}/messages/"), None),
            Self::SendMessage => (
                Method::POST,
                format!("/api/threads/{thread}/messages/"),
                Some(serde_json::json!({ "text": TEXT })),
            ),
            Self::GetMessage => {
                (Method::GET, format!("/api/threads/{thread}/messages/{}/", fx.message), None)
            }
            // Both act on a message the reader has just sent, so each takes its heaviest path:
            // the thread's last message, whose change reaches every membership.
            Self::EditMessage => {
                let id = fx.send_as_reader(app).await;
                let body = serde_json::json!({ "text": format!("{TEXT} (edited)") });
                (Method::PATCH, format!("/api/threads/{thread}/messages/{id}/"), Some(body))
            }
            Self::DeleteMessage => {
                let id = fx.send_as_reader(app).await;
                (Method::DELETE, format!("/api/threads/{thread}/messages/{id}/"), None)
            }
            // A reply to the partner's message that mentions them: the send's path plus the
            // answered message's read and update and a mention item.
            Self::SendReply => (
                Method::POST,
                format!("/api/threads/{thread}/messages/"),
                Some(serde_json::json!({
                    "text": TEXT,
                    "reply_to": fx.message.to_string(),
                    "mentions": [fx.partner.id],
                })),
            ),
            // A 👍 on the thread's last message (which the thread and every view show, so the
            // heaviest path), added and taken away.
            Self::React => {
                let id = fx.send_as_reader(app).await;
                (Method::PUT, format!("/api/threads/{thread}/messages/{id}/reactions/{THUMBS_UP}/"), None)
            }
            // Muting a thread that is not muted: the view, the thread's share of the totals and
            // the record for the reader's other devices.
            Self::MuteThread => {
                let unmute = shared::store::ViewChange {
                    mute: Some(shared::domain::model::Mute::Off),
                    archived: None,
                };
                app.store.change_view(&reader.id, thread, unmute).await.expect("an unmuted thread to mute");
                (
                    Method::PATCH,
                    format!("/api/threads/{thread}/me/"),
                    Some(serde_json::json!({ "muted": true })),
                )
            }
            Self::Unreact => {
                let id = fx.send_as_reader(app).await;
                let actor = shared::domain::rules::Actor::User(reader.id.clone());
                let emoji: shared::domain::reaction::Emoji = "👍".parse().expect("an emoji");
                app.store.react(&actor, thread, id.seq, &emoji, true).await.expect("a reaction to take away");
                (Method::DELETE, format!("/api/threads/{thread}/messages/{id}/reactions/{THUMBS_UP}/"), None)
            }
            Self::ThreadUnread => {
                (Method::GET, format!("/api/threads/{thread}/messages/unread_count/"), None)
            }
            Self::UnreadTotals => (Method::GET, "/api/unread_count/".to_owned(), None),
            Self::SearchUsers => (Method::GET, format!("/api/users/?search={}", fx.prefix), None),
            Self::Me => (Method::GET, "/api/users/me/".to_owned(), None),
        };
        let token = match self {
            Self::Login | Self::Refresh => None,
            _ => Some(reader.token.clone()),
        };
        Prepared { endpoint: self, method, uri, token, body: body.map(|b| b.to_string()) }
    }
}

/// A request that can be built again and again (the warm loop sends the same one many times).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What it calls.
    pub endpoint: Endpoint,
    /// HTTP method.
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// JSON body, if any.
    pub body: Option<String>,
}

impl Prepared {
    /// The request as `lambda_http` hands it to a handler.
    pub fn to_request(&self) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method(self.method.clone())
            .uri(&self.uri)
            .header("host", "bench.local");
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match &self.body {
            Some(b) => {
                builder = builder.header("content-type", "application/json");
                Body::Text(b.clone())
            }
            None => Body::Empty,
        };
        builder.body(body).expect("a valid request")
    }

    /// Calls the endpoint's handler in-process.
    pub async fn send(&self, app: &App) -> HttpResponse {
        handle(self.endpoint.function(), app, self.to_request()).await
    }
}
