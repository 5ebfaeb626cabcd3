//! One isolated app per test: a fresh table in DynamoDB Local, handlers called in-process.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use shared::App;
use shared::config::{Config, Keyring, Secret};
use shared::domain::ids::UserId;
use shared::http::routes::Function;
use shared::store::NewUser;
use shared::store::table::TableStream;

/// Where the tests find DynamoDB Local (`make test` starts it and sets this).
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8001".into())
}

/// A DynamoDB client for DynamoDB Local.
pub fn client() -> aws_sdk_dynamodb::Client {
    client_at(&endpoint())
}

/// A DynamoDB client for an endpoint, with the deployed functions' retries and timeouts.
pub fn client_at(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .retry_config(shared::app::retry_config())
        .timeout_config(shared::app::timeout_config())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Where the in-process realtime function posts when a test gives it no WebSocket gateway:
/// nothing listens there, so a post fails rather than reaching anything.
pub const NO_GATEWAY: &str = "ws://127.0.0.1:9/live";

/// SDK settings for clients other than DynamoDB's: local credentials and region.
pub fn aws_config_for_tests() -> aws_config::SdkConfig {
    devstack::local::sdk_config()
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: lambda_http::http::HeaderMap,
}

/// A user made for a test, with a valid access token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: UserId,
    pub token: String,
    pub refresh: String,
}

pub struct TestApp {
    pub app: Arc<App>,
    /// The realtime function's state for requests that post nowhere, built at the first one
    /// (as a function builds its clients once, not per request).
    realtime: std::sync::OnceLock<realtime::Realtime>,
}

impl TestApp {
    /// A new app over a new, empty table without a stream (nothing in-process reads one; see
    /// [`TableStream`]).
    pub async fn spawn() -> Self {
        Self::spawn_with(client()).await
    }

    /// A new app over a new, empty table with the deployed table's stream, for tests that read it.
    pub async fn spawn_with_stream() -> Self {
        Self::build(client(), TableStream::Enabled).await
    }

    /// A new app over a new, empty table, reached through the given client.
    pub async fn spawn_with(client: aws_sdk_dynamodb::Client) -> Self {
        Self::build(client, TableStream::Disabled).await
    }

    async fn build(client: aws_sdk_dynamodb::Client, stream: TableStream) -> Self {
        let table = format!("test-{}", uuid::Uuid::new_v4().simple());
        let config = Config {
            table_name: table,
            keys: Keyring::single(Secret::new(b"test-secret-test-secret-test-secret!".to_vec()).unwrap()),
            access_ttl_secs: 1800,
            refresh_ttl_secs: 7 * 24 * 3600,
        };
        let app = App::new(config, client);
        app.store.create_table_with(stream).await.unwrap_or_else(|e| {
            panic!("cannot create a table in DynamoDB Local at {} (run `make test`): {e:?}", endpoint())
        });
        Self::over(Arc::new(app))
    }

    /// Another handle on an app, as another instance of the same functions would be.
    pub fn over(app: Arc<App>) -> Self {
        Self { app, realtime: std::sync::OnceLock::new() }
    }

    /// Creates an active user with password `pw-<username>` and tokens for them.
    pub async fn user(&self, username: &str) -> TestUser {
        self.user_with(username, true, false).await
    }

    pub async fn user_with(&self, username: &str, active: bool, staff: bool) -> TestUser {
        self.user_hashed(username, shared::password::hash(&format!("pw-{username}")), active, staff).await
    }

    /// Creates a user with the given password hash (for tests that make many: Argon2 per user
    /// is slow) and tokens for them.
    pub async fn user_hashed(
        &self,
        username: &str,
        password_hash: String,
        active: bool,
        staff: bool,
    ) -> TestUser {
        let user = self
            .app
            .store
            .create_user(NewUser {
                username: username.to_owned(),
                password_hash,
                is_staff: staff,
                is_active: active,
                id: None,
                date_joined: None,
            })
            .await
            .unwrap();
        let pair = self.app.jwt.issue_pair(&user.id, user.token_version);
        TestUser { id: user.id, token: pair.access, refresh: pair.refresh }
    }

    /// The realtime function's state over this app, posting to the WebSocket API at `url`.
    pub fn realtime(&self, url: &str) -> realtime::Realtime {
        let sdk = aws_config_for_tests();
        realtime::Realtime {
            app: self.app.clone(),
            pusher: shared::realtime::Pusher::new(&sdk, url),
            websocket_url: url.to_owned(),
        }
    }

    /// Routes a request to the function the route table names (API Gateway's `$default`, the
    /// threads function, for paths it lacks), in-process.
    pub async fn send(&self, req: Request) -> Reply {
        let function = shared::http::routes::find(&shared::http::segments(&req))
            .map_or(Function::Threads, |m| m.route.function);
        self.send_to(function, req).await
    }

    /// Hands a request to one function's handler, in-process.
    pub async fn send_to(&self, function: Function, req: Request) -> Reply {
        let app = &*self.app;
        // Boxed, so that a test's own future does not hold the largest handler's inline: debug
        // builds overflowed the test thread's 2 MiB stack.
        let response = match function {
            Function::Token => Box::pin(token::handle(app, req)).await,
            Function::Threads => Box::pin(threads::handle(app, req)).await,
            Function::Messages => Box::pin(messages::handle(app, req)).await,
            Function::UnreadCount => Box::pin(unread_count::handle(app, req)).await,
            Function::Users => Box::pin(users::handle(app, req)).await,
            Function::Admin => Box::pin(admin::handle(app, req)).await,
            Function::Realtime => {
                let state = self.realtime.get_or_init(|| self.realtime(NO_GATEWAY));
                Box::pin(realtime::handle(state, req)).await
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes: &[u8] = response.body().as_ref();
        // JSON for the API; the admin panel's HTML comes back as a string.
        let body = match serde_json::from_slice(bytes) {
            _ if bytes.is_empty() => Value::Null,
            Ok(json) => json,
            Err(_) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        };
        Reply { status, body, headers }
    }

    /// A request with an optional bearer token and JSON body.
    pub async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut builder =
            lambda_http::http::Request::builder().method(method).uri(uri).header("host", "localhost:9000");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Body::Text(v.to_string())
            }
            None => Body::Empty,
        };
        self.send(builder.body(body).unwrap()).await
    }

    pub async fn get(&self, uri: &str, user: &TestUser) -> Reply {
        self.call(Method::GET, uri, Some(&user.token), None).await
    }

    pub async fn post(&self, uri: &str, user: &TestUser, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(&user.token), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, user: &TestUser) -> Reply {
        self.call(Method::DELETE, uri, Some(&user.token), None).await
    }

    /// Creates a thread as `owner` with the others; returns its id.
    pub async fn thread(&self, owner: &TestUser, others: &[&TestUser]) -> String {
        let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
        let r = self.post("/api/threads/", owner, serde_json::json!({ "participants": ids })).await;
        assert!(r.status == 201 || r.status == 200, "{r:?}");
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Sends a message; returns its body.
    pub async fn say(&self, thread: &str, sender: &TestUser, text: &str) -> Value {
        let r = self
            .post(&format!("/api/threads/{thread}/messages/"), sender, serde_json::json!({ "text": text }))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }

    /// Sends a message as a client that retries a 503 with the same `client_id` (so a retry of
    /// a send that landed returns the original); for sends that race others into one thread.
    pub async fn say_retrying(&self, thread: &str, sender: &TestUser, text: &str) -> Value {
        let body = serde_json::json!({ "text": text, "client_id": uuid::Uuid::new_v4().to_string() });
        for _ in 0..60 {
            let r = self.post(&format!("/api/threads/{thread}/messages/"), sender, body.clone()).await;
            if r.status != 503 {
                assert!(r.status == 201 || r.status == 200, "{r:?}");
                return r.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("a send stayed 503");
    }

    pub async fn unread(&self, user: &TestUser) -> (u64, u64) {
        let r = self.get("/api/unread_count/", user).await;
        assert_eq!(r.status, 200);
        (r.body["unread_count"].as_u64().unwrap(), r.body["threads"].as_u64().unwrap())
    }

    pub async fn thread_unread(&self, thread: &str, user: &TestUser) -> u64 {
        let r = self.get(&format!("/api/threads/{thread}/messages/unread_count/"), user).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["unread_count"].as_u64().unwrap()
    }
}

/// The path and query of an absolute `next`/`previous` link.
pub fn path_of(url: &Value) -> String {
    let url = url.as_str().expect("a link");
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

/// How many of `listed` messages a member has not read: from others, after their read marker.
pub fn unseen(listed: &[Value], member: &shared::domain::model::Membership) -> u64 {
    listed.iter().filter(|msg| unseen_by(msg, member)).count() as u64
}

/// Whether a member has not read a listed message: from someone else, after their read marker.
pub fn unseen_by(msg: &Value, member: &shared::domain::model::Membership) -> bool {
    seq_of(msg) > member.read_seq.0 && msg["sender"] != member.user.as_str()
}

/// The items left in a thread's partition (messages, tombstones, read events, purge marker).
pub async fn partition(t: &TestApp, thread: &str) -> Vec<shared::store::Item> {
    let out = t
        .app
        .store
        .client()
        .query()
        .table_name(t.app.store.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("THREAD#{thread}")),
        )
        .send()
        .await
        .unwrap();
    out.items.unwrap_or_default()
}

/// A client holding one thread's messages and keeping them current with `?since=`, as
/// `docs/realtime.md`'s reconnect recipe says: load the pages once, then only the changes.
#[derive(Debug, Default)]
pub struct Follower {
    /// Every message it knows, by seq, as last heard: tombstones have `deleted` set.
    pub held: std::collections::BTreeMap<u64, Value>,
    /// The version to ask from next.
    pub since: String,
    /// How many change answers it read, and how many changes they held.
    pub calls: u64,
    pub changes: u64,
}

/// A listed message's place in its thread, from its id `<thread>.<seq>`.
fn seq_of(message: &Value) -> u64 {
    message["id"].as_str().unwrap().rsplit_once('.').unwrap().1.parse().unwrap()
}

impl Follower {
    /// Loads every page, newest first, taking `since` from the newest. `None` on a 503.
    pub async fn load(t: &TestApp, thread: &str, user: &TestUser) -> Option<Self> {
        let mut me = Self::default();
        let mut page = Some(format!("/api/threads/{thread}/messages/?limit=100"));
        while let Some(p) = page {
            let r = t.get(&p, user).await;
            if r.status == 503 {
                return None;
            }
            assert_eq!(r.status, 200, "{r:?}");
            if me.since.is_empty() {
                me.since = r.body["since"].as_str().expect("the newest page says since when").to_owned();
            } else {
                assert!(r.body.get("since").is_none(), "only the newest page has since: {r:?}");
            }
            for m in r.body["results"].as_array().unwrap() {
                me.held.insert(seq_of(m), m.clone());
            }
            page = r.body["next"].as_str().map(|u| path_of(&json!(u)));
        }
        Some(me)
    }

    /// Applies every change after `since`, following `next`. `Err` with the answer on a 503
    /// (call again: nothing was applied past what the last good answer said).
    pub async fn catch_up(
        &mut self,
        t: &TestApp,
        thread: &str,
        user: &TestUser,
        limit: usize,
    ) -> Result<(), Reply> {
        loop {
            let r = t
                .get(&format!("/api/threads/{thread}/messages/?since={}&limit={limit}", self.since), user)
                .await;
            if r.status == 503 {
                return Err(r);
            }
            assert_eq!(r.status, 200, "{r:?}");
            self.calls += 1;
            for m in r.body["results"].as_array().unwrap() {
                self.changes += 1;
                self.held.insert(seq_of(m), m.clone());
                self.requote(m);
            }
            let since = r.body["since"].as_str().unwrap().to_owned();
            assert!(
                since.parse::<u64>().unwrap() >= self.since.parse::<u64>().unwrap(),
                "since never goes back"
            );
            self.since = since;
            if r.body["next"].is_null() {
                return Ok(());
            }
        }
    }

    /// What it shows: the messages not deleted, newest first, as the list gives them.
    /// The replies held that quote `original` show it as it is now, as `docs/realtime.md` tells
    /// clients to do: a reply's preview changes with its original's own change, not a change of
    /// the reply.
    fn requote(&mut self, original: &Value) {
        let deleted = original["deleted"].is_string();
        let preview = json!({
            "id": original["id"],
            "sender": original["sender"],
            "text": original["text"].as_str().unwrap().chars().take(200).collect::<String>(),
            "edited": if deleted { Value::Null } else { original["edited"].clone() },
            "deleted": deleted,
        });
        for reply in self.held.values_mut() {
            if reply["reply_to"]["id"] == original["id"] {
                reply["reply_to"] = preview.clone();
            }
        }
    }

    pub fn live(&self) -> Vec<Value> {
        self.held
            .values()
            .rev()
            .filter(|m| m.get("deleted").is_none_or(Value::is_null))
            .map(|m| {
                let mut m = m.clone();
                m.as_object_mut().unwrap().remove("deleted");
                m
            })
            .collect()
    }
}
