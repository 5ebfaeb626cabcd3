//! The reference web client (`web/`, served by `devstack web` on an origin of its own, so every
//! call goes through the API's CORS), driven as people use it: alice and bob in two browsers at
//! once, at a laptop's size and at a phone's, each seeing the other's doings live.
//!
//! Every check polls the page for the changed content, so a page that never updates fails. To
//! make a send slow, fail, or lose its answer, and to cut the network, a test puts a switch
//! around the page's `fetch` and `WebSocket` before the page has made any call (`NET`): the
//! requests that go through are real, and the client cannot tell the switch from a network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::actions::{
    InputSource, MOUSE_BUTTON_LEFT, MOUSE_BUTTON_RIGHT, MouseActions, PointerAction, TouchActions,
};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::{SERIAL, Screen, chromium_on, screenshots};

/// How long a live change may take to show.
const PATIENCE: Duration = Duration::from_secs(10);

/// Enter, as WebDriver types it.
const ENTER: &str = "\u{E007}";

/// Escape, as WebDriver types it.
const ESCAPE: &str = "\u{E00C}";

struct Page {
    browser: Client,
    /// The WebDriver session, ended when the page is dropped (see `Drop`).
    session: String,
    who: &'static str,
    /// The screenshots' name: `web-<label>-<moment>.png`.
    label: String,
    shots: PathBuf,
}

/// The page's network, switched by the test: `down` fails every request as a dropped network
/// does (and `cut()` also drops the open sockets); `hold` keeps sends (POST .../messages/) waiting
/// until `release()`; `failNext` fails that many sends before they leave; `loseNext` lets that
/// many sends reach the server and then loses their answers. `sends` lists every send's body, and
/// `frames` every live event the page's sockets received.
const NET: &str = "
    if (window.__net) return;
    const net = window.__net = { down: false, hold: false, waiting: [], failNext: 0, loseNext: 0, sends: [], sockets: [], frames: [] };
    const realFetch = window.fetch.bind(window);
    window.fetch = async (input, init) => {
        init = init || {};
        const method = (init.method || 'GET').toUpperCase();
        const path = new URL(String(input), location.href).pathname;
        if (net.down) throw new TypeError('Failed to fetch');
        if (method === 'POST' && /\\/messages\\/?$/.test(path)) {
            net.sends.push(JSON.parse(init.body));
            if (net.hold) await new Promise((go) => net.waiting.push(go));
            if (net.down) throw new TypeError('Failed to fetch');
            if (net.failNext > 0) { net.failNext--; throw new TypeError('Failed to fetch'); }
            if (net.loseNext > 0) { net.loseNext--; await realFetch(input, init); throw new TypeError('Failed to fetch'); }
        }
        return realFetch(input, init);
    };
    const RealSocket = window.WebSocket;
    window.WebSocket = class extends RealSocket {
        constructor(...args) {
            super(...args);
            net.sockets.push(this);
            this.addEventListener('message', (e) => { try { net.frames.push(JSON.parse(e.data)); } catch (_) {} });
            if (net.down) this.close();
        }
    };
    net.cut = () => { net.down = true; for (const ws of net.sockets) ws.close(); };
    net.release = () => { net.hold = false; for (const go of net.waiting.splice(0)) go(); };";

impl Page {
    /// A new browser on `screen` with the web client loaded and `NET` in place.
    async fn open(who: &'static str, screen: Screen) -> Self {
        let url = std::env::var("WEB_CLIENT_URL").expect("WEB_CLIENT_URL (run `make test`)");
        let label = match screen {
            Screen::Phone => format!("{who}-phone"),
            _ => who.to_owned(),
        };
        let browser = chromium_on(screen).await;
        let session = browser.session_id().await.unwrap().expect("a WebDriver session");
        let page = Self { browser, session, who, label, shots: screenshots() };
        page.browser.goto(&url).await.unwrap();
        // Before logging in, so that the page has made no call and opened no socket yet.
        page.js(NET, vec![]).await;
        page
    }

    async fn shot(&self, moment: &str) {
        let png = self.browser.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("web-{}-{moment}.png", self.label)), png).unwrap();
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.browser.execute(script, args).await.unwrap_or_else(|e| panic!("{}: {script}: {e}", self.who))
    }

    /// Polls `script` until `done` holds for its result, which it returns; else a screenshot
    /// and a failure that shows the last result.
    async fn until(
        &self,
        what: &str,
        script: &str,
        args: Vec<Value>,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        self.until_within(PATIENCE, what, script, args, done).await
    }

    async fn until_within(
        &self,
        patience: Duration,
        what: &str,
        script: &str,
        args: Vec<Value>,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let seen = self.js(script, args.clone()).await;
            if done(&seen) {
                return seen;
            }
            if Instant::now() > deadline {
                self.shot(&format!("failed-{}", what.replace(' ', "-"))).await;
                panic!("{}'s page: {what} did not happen within {patience:?}; last seen: {seen}", self.who);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `css`, finding it again if the page redrew it between finding and clicking (live
    /// events redraw the thread list).
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let error = match self.browser.find(Locator::Css(css)).await {
                Ok(element) => match element.click().await {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                self.shot(&format!("failed-click-{}", css.replace([' ', '"', '[', ']', '='], "_"))).await;
                panic!("{}'s page: cannot click {css}: {error}", self.who);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks a message's `button` (edit, delete) after tapping the message, which shows its
    /// buttons (a mouse's hover shows them too, but headless Chromium has no hover: it reports
    /// `(hover: none)`, as a touch screen does).
    async fn message_button(&self, message: &str, button: &str) {
        self.click(&format!("#messages [data-message-id=\"{message}\"] .bubble")).await;
        self.click(&format!("#messages [data-message-id=\"{message}\"] button.{button}")).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.browser.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Keys typed into `css` without clearing it first.
    async fn keys(&self, css: &str, keys: &str) {
        self.browser.find(Locator::Css(css)).await.unwrap().send_keys(keys).await.unwrap();
    }

    async fn value(&self, css: &str) -> String {
        let v = self.js("return document.querySelector(arguments[0]).value", vec![json!(css)]).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Logs in with the right password (the demo users' logins are rate limited: no failures
    /// here) and waits until the live connection is open.
    async fn log_in(&self, username: &str) {
        self.type_into("#username", username).await;
        self.type_into("#password", "super_pass").await;
        self.click("#login-form button[type=submit]").await;
        self.until(
            "logged in and live",
            "return [document.getElementById('me').textContent, document.getElementById('live').dataset.state]",
            vec![],
            |v| v == &json!([username, "open"]),
        )
        .await;
    }

    /// The access token the page keeps, to call the API as that user without another login.
    async fn token(&self) -> String {
        let token = self.js("return sessionStorage.getItem('access')", vec![]).await;
        token.as_str().expect("the page keeps its access token in sessionStorage").to_owned()
    }

    /// Opens a thread from the list and waits for its newest page.
    async fn open_thread(&self, thread: &str) {
        self.click(&format!("#threads [data-thread-id=\"{thread}\"] button.open")).await;
        self.until(
            "the thread opened",
            "return !document.getElementById('thread-view').hidden && state.openId === arguments[0] && state.since !== null",
            vec![json!(thread)],
            |v| v == &json!(true),
        )
        .await;
    }

    /// Sends `text` from the composer with the Send button.
    async fn send(&self, text: &str) {
        self.type_into("#text", text).await;
        self.click("#send").await;
    }

    /// Clicks a confirmation dialog's button once the dialog is open.
    async fn confirm(&self) {
        self.until(
            "the confirmation dialog",
            "return document.getElementById('confirm').open",
            vec![],
            |v| v == &json!(true),
        )
        .await;
        self.click("#confirm-ok").await;
        self.until(
            "the confirmation dialog closed",
            "return document.getElementById('confirm').open",
            vec![],
            |v| v == &json!(false),
        )
        .await;
    }
}

/// A test that fails leaves its browsers logged in, and a page with a thread open marks what
/// arrives read: it would change what the next tests see. So a page's session ends however the
/// test ends, through ChromeDriver's HTTP API (a panic unwinds inside the test's runtime, where
/// nothing async can be awaited).
impl Drop for Page {
    fn drop(&mut self) {
        let Ok(webdriver) = std::env::var("WEBDRIVER_URL") else { return };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let _ = agent.delete(&format!("{webdriver}/session/{}", self.session)).call();
    }
}

/// A thread's entry in the list: its unread count, badge, last message and owner.
const THREAD_ENTRY: &str = "
    const li = document.querySelector(`#threads [data-thread-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    const badge = li.querySelector('.badge');
    return { unread: Number(li.dataset.unread), badge: badge.textContent, shown: !badge.hidden,
             preview: li.querySelector('.preview').textContent, owner: li.dataset.owner,
             title: li.querySelector('.title').textContent };";

/// A message of the open thread: its text, whether it is marked edited, its read receipt, and
/// the names its buttons give screen readers.
const MESSAGE: &str = "
    const li = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    const receipt = li.querySelector('.receipt');
    const name = (css) => { const b = li.querySelector(css); return b ? b.getAttribute('aria-label') : null; };
    return { text: li.querySelector('.text') ? li.querySelector('.text').textContent : null,
             edited: !!li.querySelector('.edited'),
             receipt: receipt.hidden ? null : receipt.textContent,
             edit: name('button.edit'), delete: name('button.delete') };";

/// The id of the open thread's sent message with this text.
const FIND_TEXT: &str = "
    const m = [...document.querySelectorAll('#messages .message[data-message-id]')]
        .find(li => li.querySelector('.text') && li.querySelector('.text').textContent === arguments[0]);
    return m ? m.dataset.messageId : null";

/// Every row of the open thread showing this text: its state (sent, pending, failed) and, for
/// one that failed, the error and retry shown beside it.
const ROWS_WITH_TEXT: &str = "
    return [...document.querySelectorAll('#messages li.message')]
        .filter(li => li.querySelector('.text') && li.querySelector('.text').textContent === arguments[0])
        .map(li => ({ state: li.dataset.state, id: li.dataset.messageId || null,
                      error: li.querySelector('.send-error') ? li.querySelector('.send-error').textContent : null,
                      retry: li.querySelector('button.retry') ? li.querySelector('button.retry').getAttribute('aria-label') : null }));";

const LIVE: &str = "return document.getElementById('live').dataset.state";

const TOTAL: &str = "return Number(document.getElementById('total-unread').dataset.unread)";

const TYPING: &str = "const t = document.getElementById('typing'); return t.hidden ? null : t.textContent";

const ANNOUNCED: &str = "return [...document.getElementById('announcer').children].map(p => p.textContent)";

/// Where things are on the screen: whether the page itself scrolls, the message pane's scroll,
/// and the boxes of the parts a person needs in view.
const LAYOUT: &str = "
    const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
        const style = getComputedStyle(el);
        return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height,
                 shown: r.width > 0 && r.height > 0 && style.visibility !== 'hidden' }; };
    const pane = document.getElementById('pane');
    const rows = [...document.querySelectorAll('#messages li.message')];
    return {
        viewport: { width: innerWidth, height: innerHeight },
        page: { scrollHeight: document.scrollingElement.scrollHeight, scrollY: scrollY },
        pane: { scrollHeight: pane.scrollHeight, clientHeight: pane.clientHeight, scrollTop: pane.scrollTop, box: box(pane) },
        header: box(document.querySelector('.thread-head')),
        composer: box(document.getElementById('composer')),
        sidebar: box(document.getElementById('sidebar')),
        conversation: box(document.getElementById('conversation')),
        back: box(document.getElementById('back')),
        newest: box(rows[rows.length - 1]),
        messages: rows.length,
        screen: document.getElementById('app-view').dataset.screen,
    };";

/// The API with a token from a page's session (no extra login).
fn api(method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let base = std::env::var("E2E_BASE_URL").expect("E2E_BASE_URL (run `make test`)");
    let url = format!("{base}{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let auth = format!("Bearer {token}");
    let mut response = match method {
        "POST" => agent.post(&url).header("Authorization", &auth).send_json(body.unwrap_or(json!({}))),
        "PATCH" => agent.patch(&url).header("Authorization", &auth).send_json(body.unwrap_or(json!({}))),
        "PUT" => agent.put(&url).header("Authorization", &auth).send_empty(),
        "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
        _ => agent.get(&url).header("Authorization", &auth).call(),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn user_id(token: &str, username: &str) -> String {
    let (status, page) = api("GET", &format!("/api/users/?search={username}&limit=100"), token, None);
    assert_eq!(status, 200, "{page}");
    let found = page["results"].as_array().unwrap().iter().find(|u| u["username"] == username);
    found.unwrap_or_else(|| panic!("no user {username}: {page}"))["id"].as_str().unwrap().to_owned()
}

/// The thread of the caller and `others` (found, or made again if the admin test or an earlier
/// run has deleted it).
fn thread_with(token: &str, others: &[&str]) -> String {
    let participants: Vec<String> = others.iter().map(|u| user_id(token, u)).collect();
    let (status, thread) = api("POST", "/api/threads/", token, Some(json!({ "participants": participants })));
    assert!(status == 200 || status == 201, "{status} {thread}");
    thread["id"].as_str().unwrap().to_owned()
}

/// How many of a thread's newest 100 messages have this text, as the API lists them.
fn stored_with_text(token: &str, thread: &str, text: &str) -> usize {
    let (status, page) = api("GET", &format!("/api/threads/{thread}/messages/?limit=100"), token, None);
    assert_eq!(status, 200, "{page}");
    page["results"].as_array().unwrap().iter().filter(|m| m["text"] == text).count()
}

/// Deletes the messages of this run from a thread that other tests share (the admin panel's
/// test reads the demo thread's first messages among its newest 10), each with the token of
/// whoever may: its sender or the thread's owner.
fn delete_run_messages(tokens: &[&str], thread: &str, run: &str) {
    let (status, page) = api("GET", &format!("/api/threads/{thread}/messages/?limit=100"), tokens[0], None);
    assert_eq!(status, 200, "{page}");
    for m in page["results"].as_array().unwrap() {
        if !m["text"].as_str().unwrap_or("").contains(run) {
            continue;
        }
        let path = format!("/api/threads/{thread}/messages/{}/", m["id"].as_str().unwrap());
        let deleted = tokens.iter().any(|token| matches!(api("DELETE", &path, token, None).0, 204 | 404));
        assert!(deleted, "nobody could delete {m}");
    }
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

#[tokio::test]
async fn two_users_talk_live_in_the_web_client() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();

    let alice = Page::open("alice", Screen::Desktop).await;
    alice.shot("login").await;
    alice.log_in("alice").await;
    alice.shot("threads").await;

    // The demo thread of alice, test_user and bob, through the API with alice's session.
    let token = alice.token().await;
    let thread = thread_with(&token, &["test_user", "bob"]);

    let bob = Page::open("bob", Screen::Desktop).await;
    bob.log_in("bob").await;
    let before =
        bob.until("the shared thread listed", THREAD_ENTRY, vec![json!(thread)], |v| !v.is_null()).await;
    let unread_before = before["unread"].as_u64().unwrap();
    assert_eq!(before["badge"], unread_before.to_string());
    assert_eq!(before["shown"], unread_before > 0, "the badge shows only when something is unread");
    let total_before = bob.js(TOTAL, vec![]).await.as_u64().unwrap();

    // Alice opens the thread and sends.
    alice.open_thread(&thread).await;
    let text = format!("hello from the web client <b>{run}</b> & co");
    alice.send(&text).await;
    let sent = alice.until("the sent message listed", FIND_TEXT, vec![json!(text)], Value::is_string).await;
    let message = sent.as_str().unwrap().to_owned();
    assert_eq!(alice.value("#text").await, "", "the box is cleared");
    // Markup in a message is text, never markup.
    assert_eq!(alice.js("return document.querySelectorAll('#messages b').length", vec![]).await, 0);
    alice.shot("sent").await;

    // Bob's list shows one more unread in that thread, and the new total, without a reload.
    let want = unread_before + 1;
    let badge = want.to_string();
    let after = bob
        .until("the unread badge going up by one", THREAD_ENTRY, vec![json!(thread)], |v| {
            v["unread"] == want && v["badge"] == badge && v["shown"] == true
        })
        .await;
    assert!(after["preview"].as_str().unwrap().ends_with(&text), "{after}");
    bob.until("the unread total going up by one", TOTAL, vec![], |v| v == &json!(total_before + 1)).await;
    // A screen reader hears of it, though the thread is not open.
    bob.until("the new message announced", ANNOUNCED, vec![], |v| {
        v.as_array().unwrap().iter().any(|a| a == "New message from alice in alice, test_user.")
    })
    .await;
    bob.shot("badge").await;

    // Bob opens the thread and sees the message; that reads it, so his badge goes.
    bob.open_thread(&thread).await;
    bob.until("the new message shown", MESSAGE, vec![json!(message)], |v| v["text"] == text).await;
    bob.until("the badge cleared", THREAD_ENTRY, vec![json!(thread)], |v| {
        v["unread"] == 0 && v["shown"] == false
    })
    .await;
    bob.until("the unread total back", TOTAL, vec![], |v| v == &json!(total_before - unread_before)).await;
    bob.shot("thread").await;

    // Alice sees bob's read receipt under her message.
    alice.until("bob's read receipt", MESSAGE, vec![json!(message)], |v| v["receipt"] == "Seen by bob").await;
    alice.shot("receipt").await;

    // With the thread open, a screen reader hears who said what, from the aria-live region.
    let spoken = format!("can you hear this {run}");
    alice.send(&spoken).await;
    let announcement = format!("alice: {spoken}");
    bob.until("the incoming message announced", ANNOUNCED, vec![json!(spoken)], |v| {
        v.as_array().unwrap().iter().any(|a| a == &json!(announcement))
    })
    .await;
    assert_eq!(
        bob.js("return document.getElementById('announcer').getAttribute('aria-live')", vec![]).await,
        "polite"
    );
    let spoken_id =
        alice.until("the spoken message listed", FIND_TEXT, vec![json!(spoken)], Value::is_string).await;
    assert!(
        !alice
            .js(ANNOUNCED, vec![])
            .await
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains(&spoken)),
        "nobody is told of their own messages"
    );

    // Each Edit and Delete button names the message it acts on, for screen readers.
    let names = alice.js(MESSAGE, vec![json!(message)]).await;
    assert_eq!(names["edit"], format!("Edit your message “{}…”", &text[..39]), "{names}");
    assert_eq!(names["delete"], format!("Delete your message “{}…”", &text[..39]), "{names}");
    let spoken_names = alice.js(MESSAGE, vec![spoken_id.clone()]).await;
    assert_eq!(spoken_names["edit"], format!("Edit your message “{spoken}”"));
    assert_eq!(
        bob.js(MESSAGE, vec![json!(message)]).await["edit"],
        Value::Null,
        "others' messages have no Edit"
    );

    // Alice types (after the client's typing throttle has passed): bob sees it, then it fades.
    assert_eq!(bob.js(TYPING, vec![]).await, Value::Null, "nobody is typing yet");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    alice.type_into("#text", "still typ").await;
    bob.until("alice typing", TYPING, vec![], |v| v == "alice is typing…").await;
    bob.shot("typing").await;
    bob.until("the typing notice fading", TYPING, vec![], Value::is_null).await;
    alice.browser.find(Locator::Css("#text")).await.unwrap().clear().await.unwrap();

    // Alice edits her message: bob sees the new text, marked edited.
    let edited = format!("edited by alice {run}");
    alice.message_button(&message, "edit").await;
    alice.type_into(&format!("[data-message-id=\"{message}\"] .edit-text"), &edited).await;
    alice.shot("editing").await;
    alice.click(&format!("[data-message-id=\"{message}\"] button.save")).await;
    alice.until("her edit shown", MESSAGE, vec![json!(message)], |v| v["text"] == edited).await;
    bob.until("alice's edit", MESSAGE, vec![json!(message)], |v| v["text"] == edited && v["edited"] == true)
        .await;
    bob.shot("edited").await;

    // Deleting asks first: cancelling keeps the message.
    alice.message_button(&message, "delete").await;
    let asked = alice
        .until(
            "the delete confirmation",
            "const d = document.getElementById('confirm'); return d.open ? d.textContent : null",
            vec![],
            Value::is_string,
        )
        .await;
    assert!(asked.as_str().unwrap().contains(&edited), "the dialog quotes the message: {asked}");
    alice.shot("confirm-delete").await;
    alice.click("#confirm-cancel").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alice.js(MESSAGE, vec![json!(message)]).await["text"], edited, "cancelled: still there");
    assert_eq!(stored_with_text(&token, &thread, &edited), 1);
    // Confirmed, it goes: from bob's page, and from his thread list's preview.
    alice.message_button(&message, "delete").await;
    alice.confirm().await;
    alice.until("her message gone", MESSAGE, vec![json!(message)], Value::is_null).await;
    bob.until("alice's message gone", MESSAGE, vec![json!(message)], Value::is_null).await;
    alice.message_button(spoken_id.as_str().unwrap(), "delete").await;
    alice.confirm().await;
    bob.until("the preview no longer a deleted message", THREAD_ENTRY, vec![json!(thread)], |v| {
        !v["preview"].as_str().unwrap_or("").contains(&run)
    })
    .await;
    bob.shot("deleted").await;
    alice.shot("deleted").await;

    // Bob's connection drops and stays down (his reconnect is held back) while alice sends a
    // message and edits it: once bob reconnects, his page catches up through `?since=`, with
    // no event having reached him.
    // (Letting go of the socket first makes its close schedule no reconnect.)
    bob.js(
        "const ws = state.socket; state.socket = null; clearInterval(state.pingTimer); ws.close(); setLive('offline')",
        vec![],
    )
    .await;
    bob.until("the connection lost", LIVE, vec![], |v| v != "open").await;
    let missed = format!("sent while bob was away {run}");
    alice.send(&missed).await;
    let missed_id =
        alice.until("the second message listed", FIND_TEXT, vec![json!(missed)], Value::is_string).await;
    let missed_id = missed_id.as_str().unwrap().to_owned();
    let fixed = format!("edited while bob was away {run}");
    alice.message_button(&missed_id, "edit").await;
    alice.type_into(&format!("[data-message-id=\"{missed_id}\"] .edit-text"), &fixed).await;
    alice.click(&format!("[data-message-id=\"{missed_id}\"] button.save")).await;
    alice.until("her edit shown", MESSAGE, vec![json!(missed_id)], |v| v["text"] == fixed).await;
    let away = bob.js("return state.since", vec![]).await;
    assert!(away.is_string(), "bob's page holds a version: {away}");
    bob.until("still away", LIVE, vec![], |v| v != "open").await;
    bob.js("connect()", vec![]).await;
    bob.until("live again", LIVE, vec![], |v| v == "open").await;
    bob.until("the missed message caught up, edited", MESSAGE, vec![json!(missed_id)], |v| {
        v["text"] == fixed && v["edited"] == true
    })
    .await;
    // The message can be shown before the catch-up has answered: an event posted to the new
    // connection while its handshake completes is retried and delivered live. So the version
    // is waited for, not read once.
    let away_version = away.as_str().unwrap().parse::<u64>().unwrap();
    let version = |v: &Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
    let caught_up = bob
        .until("bob's version to move past the send and the edit", "return state.since", vec![], |v| {
            version(v).is_some_and(|n| n >= away_version + 2)
        })
        .await;
    assert!(
        version(&caught_up).unwrap() >= away_version + 2,
        "bob's version moved past the send and the edit: {away} -> {caught_up}"
    );
    bob.shot("caught-up").await;
    alice.message_button(&missed_id, "delete").await;
    alice.confirm().await;
    bob.until("the second message gone", FIND_TEXT, vec![json!(missed)], Value::is_null).await;
}

/// The message box is cleared at once and the message shows as being sent: what is typed while
/// a send is slow stays in the box, Enter twice sends once, a send that fails says so beside the
/// message with a retry that sends it once, and a send whose answer was lost ends as one message.
#[tokio::test]
async fn sending_is_immediate_exactly_once_and_retryable() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Desktop).await;
    alice.log_in("alice").await;
    let token = alice.token().await;
    let thread = thread_with(&token, &["test_user", "bob"]);
    alice.open_thread(&thread).await;

    // A slow send: the box empties at once and the message shows as being sent; a second
    // Enter on the emptied box sends nothing; what is typed meanwhile stays.
    alice.js("__net.hold = true", vec![]).await;
    let slow = format!("a slow send {run}");
    alice.type_into("#text", &slow).await;
    alice.keys("#text", &format!("{ENTER}{ENTER}")).await;
    assert_eq!(alice.value("#text").await, "", "the box is cleared before the server answers");
    let rows = alice.js(ROWS_WITH_TEXT, vec![json!(slow)]).await;
    assert_eq!(
        rows,
        json!([{ "state": "pending", "id": null, "error": null, "retry": null }]),
        "shown as being sent"
    );
    let draft = format!("typed while it was sending {run}");
    alice.keys("#text", &draft).await;
    alice.shot("sending").await;
    alice.js("__net.release()", vec![]).await;
    alice
        .until("the slow send answered", ROWS_WITH_TEXT, vec![json!(slow)], |v| {
            v.as_array().unwrap().len() == 1 && v[0]["state"] == "sent"
        })
        .await;
    assert_eq!(alice.value("#text").await, draft, "what was typed during the send is kept");
    let sends = alice.js("return __net.sends.filter(b => b.text === arguments[0])", vec![json!(slow)]).await;
    assert_eq!(sends.as_array().unwrap().len(), 1, "Enter twice sent once: {sends}");
    assert!(sends[0]["client_id"].as_str().is_some_and(|c| !c.is_empty()), "sent with a client_id: {sends}");
    assert_eq!(stored_with_text(&token, &thread, &slow), 1);
    // The draft goes as a message of its own, not glued to the first.
    alice.keys("#text", ENTER).await;
    alice.until("the draft sent", FIND_TEXT, vec![json!(draft)], Value::is_string).await;
    assert_eq!(stored_with_text(&token, &thread, &draft), 1);

    // A send that fails before reaching the server: marked beside the message, with a retry.
    alice.js("__net.failNext = 1", vec![]).await;
    let failing = format!("this one fails once {run}");
    alice.type_into("#text", &failing).await;
    alice.keys("#text", ENTER).await;
    let failed = alice
        .until("the failed send marked", ROWS_WITH_TEXT, vec![json!(failing)], |v| {
            v.as_array().unwrap().len() == 1 && v[0]["state"] == "failed"
        })
        .await;
    assert!(failed[0]["error"].as_str().unwrap().starts_with("Not sent: No connection."), "{failed}");
    assert_eq!(failed[0]["retry"], format!("Retry sending “{failing}”"));
    assert_eq!(alice.value("#text").await, "", "the text is in the failed message, not back in the box");
    assert_eq!(stored_with_text(&token, &thread, &failing), 0, "nothing reached the server");
    alice.shot("failed").await;
    alice.click("#messages li.message[data-state=failed] button.retry").await;
    alice
        .until("the retried send sent", ROWS_WITH_TEXT, vec![json!(failing)], |v| {
            v.as_array().unwrap().len() == 1 && v[0]["state"] == "sent"
        })
        .await;
    assert_eq!(stored_with_text(&token, &thread, &failing), 1, "the retry sent it once");
    let tries =
        alice.js("return __net.sends.filter(b => b.text === arguments[0])", vec![json!(failing)]).await;
    assert_eq!(tries.as_array().unwrap().len(), 2);
    assert_eq!(tries[0]["client_id"], tries[1]["client_id"], "a retry is the same send: {tries}");

    // A send that reached the server but whose answer was lost: the page ends with the message
    // once, and so does the server (the same client_id is the same message).
    alice.js("__net.loseNext = 1", vec![]).await;
    let lost = format!("the answer to this one is lost {run}");
    alice.type_into("#text", &lost).await;
    alice.keys("#text", ENTER).await;
    alice
        .until("the lost answer settled", ROWS_WITH_TEXT, vec![json!(lost)], |v| {
            v.as_array().unwrap().len() == 1 && v[0]["state"] == "sent"
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alice.js(ROWS_WITH_TEXT, vec![json!(lost)]).await.as_array().unwrap().len(), 1, "shown once");
    assert_eq!(stored_with_text(&token, &thread, &lost), 1, "stored once");
    alice.shot("sent-after-retries").await;
    delete_run_messages(&[&token], &thread, &run);
}

/// A long thread scrolls inside its pane, newest at the bottom: the page itself never scrolls,
/// so the conversation's header and the message box stay on screen, at a laptop's size and a
/// phone's. Days are separated, with dates, and older messages load as one scrolls up.
#[tokio::test]
async fn a_long_thread_scrolls_in_its_pane_with_the_box_in_view() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Desktop).await;
    alice.log_in("alice").await;
    let token = alice.token().await;
    // The demo thread of test_user and alice, made long through the API.
    let thread = thread_with(&token, &["test_user"]);
    for n in 1..=45 {
        let text = if n % 7 == 0 {
            format!("message {n} of a long thread {run}\nwith a second line\nand a third")
        } else {
            format!("message {n} of a long thread {run}")
        };
        let (status, body) =
            api("POST", &format!("/api/threads/{thread}/messages/"), &token, Some(json!({ "text": text })));
        assert_eq!(status, 201, "{body}");
    }
    let newest = format!("message 45 of a long thread {run}");

    let phone = Page::open("alice", Screen::Phone).await;
    phone.log_in("alice").await;
    for page in [&alice, &phone] {
        page.open_thread(&thread).await;
        let newest_id =
            page.until("the newest message", FIND_TEXT, vec![json!(newest)], Value::is_string).await;
        let at = page.js(LAYOUT, vec![]).await;
        let who = &page.label;
        let vh = at["viewport"]["height"].as_f64().unwrap();
        assert!(
            at["page"]["scrollHeight"].as_f64().unwrap() <= vh + 1.0,
            "{who}: the page itself does not scroll: {at}"
        );
        assert!(
            at["pane"]["scrollHeight"].as_f64().unwrap()
                > at["pane"]["clientHeight"].as_f64().unwrap() + 200.0,
            "{who}: the message pane scrolls: {at}"
        );
        let pane = &at["pane"];
        let gap = pane["scrollHeight"].as_f64().unwrap()
            - pane["scrollTop"].as_f64().unwrap()
            - pane["clientHeight"].as_f64().unwrap();
        assert!(gap < 2.0, "{who}: opened at the newest message: {at}");
        assert!(
            at["header"]["top"].as_f64().unwrap() >= 0.0 && at["header"]["shown"] == true,
            "{who}: header in view: {at}"
        );
        assert!(at["composer"]["bottom"].as_f64().unwrap() <= vh + 0.5, "{who}: the box in view: {at}");
        let newest_box = &at["newest"];
        assert!(
            newest_box["bottom"].as_f64().unwrap() <= at["composer"]["top"].as_f64().unwrap() + 0.5
                && newest_box["top"].as_f64().unwrap() >= at["pane"]["box"]["top"].as_f64().unwrap(),
            "{who}: the newest message is above the box and in view: {at}"
        );
        assert_eq!(at["messages"], 30, "{who}: one page first");
        // Dates: a separator before today's first message, and each message's time.
        let days = page
            .js("return [...document.querySelectorAll('#messages li.day')].map(d => d.textContent)", vec![])
            .await;
        assert_eq!(days, json!(["Today"]), "{who}");
        let time = page
            .js("return document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"] time`).textContent", vec![newest_id])
            .await;
        assert!(time.as_str().unwrap().contains(':'), "{who}: a time shown: {time}");
        page.shot("long-thread").await;

        // Scrolled up, the header and the box stay put; reaching the top loads older messages.
        page.js("document.getElementById('pane').scrollTop = 0", vec![]).await;
        let loaded = page
            .until("older messages loaded on scrolling up", LAYOUT, vec![], |v| {
                v["messages"].as_u64().unwrap() > 30
            })
            .await;
        assert_eq!(loaded["page"]["scrollY"], 0, "{who}: the page did not scroll: {loaded}");
        assert_eq!(loaded["header"]["top"], at["header"]["top"], "{who}: the header did not move: {loaded}");
        assert_eq!(
            loaded["composer"]["bottom"], at["composer"]["bottom"],
            "{who}: the box did not move: {loaded}"
        );
        assert!(
            loaded["pane"]["scrollTop"].as_f64().unwrap() > 0.0,
            "{who}: kept the place reading: {loaded}"
        );
        page.shot("long-thread-scrolled-up").await;

        // Messages from other days get separators of their own, with their dates, in order. The
        // API has no way to backdate a message, so the page is handed two older ones the way
        // the API lists them, and draws them with the same code.
        let labels = page
            .js(
                "const day = 86400000, now = Date.now();
                 const old = (n, ago) => ({ id: `${state.openId}.-${n}`, thread: state.openId, sender: state.me.id,
                     text: `from ${ago} days ago`, created: new Date(now - ago * day).toISOString(), edited: null });
                 holdMessage(old(2, 9)); holdMessage(old(1, 1)); renderMessages();
                 return [...document.querySelectorAll('#messages li.day')].map(d => d.textContent);",
                vec![],
            )
            .await;
        let nine = page
            .js(
                "return new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long',
                     ...(new Date(Date.now() - 9 * 86400000).getFullYear() === new Date().getFullYear() ? {} : { year: 'numeric' }) })
                     .format(new Date(Date.now() - 9 * 86400000))",
                vec![],
            )
            .await;
        assert_eq!(labels, json!([nine, "Yesterday", "Today"]), "{who}");
        page.js(
            "forgetMessage(`${state.openId}.-2`); forgetMessage(`${state.openId}.-1`); renderMessages()",
            vec![],
        )
        .await;
    }
}

/// On a phone the conversation list and a conversation are separate screens: opening one shows
/// it alone, with a back button (and the browser's Back) to the list.
#[tokio::test]
async fn a_phone_shows_the_list_and_the_conversation_as_separate_screens() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let bob = Page::open("bob", Screen::Phone).await;
    bob.shot("login").await;
    bob.log_in("bob").await;
    let token = bob.token().await;
    let thread = thread_with(&token, &["alice", "test_user"]);
    let (status, body) = api(
        "POST",
        &format!("/api/threads/{thread}/messages/"),
        &token,
        Some(json!({ "text": format!("from bob's phone {run}") })),
    );
    assert_eq!(status, 201, "{body}");
    let list = bob.until("the thread listed", LAYOUT, vec![], |v| v["sidebar"]["shown"] == true).await;
    assert_eq!(list["viewport"], json!({ "width": 390, "height": 844 }), "a phone's screen");
    assert_eq!(list["conversation"]["shown"], false, "the list alone: {list}");
    assert_eq!(list["sidebar"]["width"], 390.0, "the list fills the screen: {list}");
    bob.until("the thread listed", THREAD_ENTRY, vec![json!(thread)], |v| !v.is_null()).await;
    bob.shot("list").await;

    bob.open_thread(&thread).await;
    let open = bob.js(LAYOUT, vec![]).await;
    assert_eq!(
        (open["screen"].as_str(), open["sidebar"]["shown"].as_bool()),
        (Some("thread"), Some(false)),
        "{open}"
    );
    assert_eq!(open["conversation"]["width"], 390.0, "the conversation fills the screen: {open}");
    assert_eq!(open["back"]["shown"], true, "a back button: {open}");
    assert!(open["composer"]["bottom"].as_f64().unwrap() <= 844.5, "the box in view: {open}");
    bob.until(
        "his message shown",
        FIND_TEXT,
        vec![json!(format!("from bob's phone {run}"))],
        Value::is_string,
    )
    .await;
    bob.shot("thread").await;

    // The back button goes back to the list.
    bob.click("#back").await;
    let back = bob.until("the list again", LAYOUT, vec![], |v| v["sidebar"]["shown"] == true).await;
    assert_eq!(back["conversation"]["shown"], false, "{back}");
    assert_eq!(bob.js("return state.openId", vec![]).await, Value::Null);

    // So does the browser's (or the phone's) Back.
    bob.open_thread(&thread).await;
    bob.until("the conversation alone", LAYOUT, vec![], |v| v["sidebar"]["shown"] == false).await;
    bob.browser.back().await.unwrap();
    let back = bob.until("the list after Back", LAYOUT, vec![], |v| v["sidebar"]["shown"] == true).await;
    assert_eq!(back["conversation"]["shown"], false, "{back}");

    // The new-conversation dialog fits the phone.
    bob.click("#new-conversation").await;
    bob.until(
        "people listed",
        "return document.querySelectorAll('#people-results li.person').length",
        vec![],
        |v| v.as_u64().unwrap_or(0) > 0,
    )
    .await;
    bob.shot("new-conversation").await;
    bob.click("#new-cancel").await;
    delete_run_messages(&[&token], &thread, &run);
}

/// An outage shows: the connection pill and a banner say live updates are down and when the next
/// try is, a send during it is marked beside the message with a retry, and once the network is
/// back the banner goes by itself and the retry sends the message once.
#[tokio::test]
async fn an_outage_shows_offline_and_recovery_clears_it() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Desktop).await;
    alice.log_in("alice").await;
    let bob = Page::open("bob", Screen::Phone).await;
    bob.log_in("bob").await;
    let token = alice.token().await;
    let thread = thread_with(&token, &["test_user", "bob"]);
    alice.open_thread(&thread).await;
    bob.open_thread(&thread).await;
    const BANNER: &str = "
        const c = document.getElementById('connection');
        return { live: document.getElementById('live').dataset.state, banner: c.hidden ? null : c.textContent.trim(),
                 shown: !c.hidden && c.getBoundingClientRect().height > 0 && c.getBoundingClientRect().top >= 0 };";
    assert_eq!(alice.js(BANNER, vec![]).await, json!({ "live": "open", "banner": null, "shown": false }));

    for page in [&alice, &bob] {
        page.js("__net.cut()", vec![]).await;
    }
    for page in [&alice, &bob] {
        let down = page
            .until("the outage shown", BANNER, vec![], |v| {
                (v["live"] == "offline" || v["live"] == "reconnecting") && v["shown"] == true
            })
            .await;
        let text = down["banner"].as_str().unwrap();
        assert!(
            text.contains("Can’t reach the server") || text.contains("Connection lost"),
            "{}: says what is wrong: {down}",
            page.label
        );
        assert!(text.contains("Try now"), "{}: offers to try now: {down}", page.label);
    }
    // Once a try has failed, it says the server cannot be reached, and when it tries next.
    let offline = alice
        .until("the outage known", BANNER, vec![], |v| {
            v["live"] == "offline" && v["banner"].as_str().is_some_and(|b| b.contains("Trying again in"))
        })
        .await;
    assert_eq!(
        alice.js("return document.getElementById('live').textContent", vec![]).await,
        "Offline",
        "{offline}"
    );

    // A send during the outage: marked beside the message, with a retry.
    let during = format!("sent during the outage {run}");
    bob.send(&during).await;
    let failed = bob
        .until("the failed send marked", ROWS_WITH_TEXT, vec![json!(during)], |v| {
            v.as_array().unwrap().len() == 1 && v[0]["state"] == "failed"
        })
        .await;
    assert!(failed[0]["error"].as_str().unwrap().contains("Not sent"), "{failed}");
    alice.shot("outage").await;
    bob.shot("outage").await;

    // The network comes back: each page reconnects by itself (backing off: the first tries
    // are at most 1, 2, 4 and 8 s apart) and the banner goes.
    for page in [&alice, &bob] {
        page.js("__net.down = false", vec![]).await;
    }
    for page in [&alice, &bob] {
        page.until_within(Duration::from_secs(20), "recovered", BANNER, vec![], |v| {
            v == &json!({ "live": "open", "banner": null, "shown": false })
        })
        .await;
    }
    // The failed message is still marked (it was never sent) until retried, and then sent once.
    assert_eq!(bob.js(ROWS_WITH_TEXT, vec![json!(during)]).await[0]["state"], "failed");
    assert_eq!(stored_with_text(&token, &thread, &during), 0);
    bob.shot("recovered").await;
    bob.click("#messages li.message[data-state=failed] button.retry").await;
    bob.until("the retried send sent", ROWS_WITH_TEXT, vec![json!(during)], |v| {
        v.as_array().unwrap().len() == 1 && v[0]["state"] == "sent"
    })
    .await;
    alice.until("bob's message reaching alice", FIND_TEXT, vec![json!(during)], Value::is_string).await;
    assert_eq!(stored_with_text(&token, &thread, &during), 1, "sent once");
    alice.shot("recovered").await;
    delete_run_messages(&[&token, &bob.token().await], &thread, &run);
}

/// Starting a conversation from the user directory's search, leaving one and deleting one, with
/// the other person's page following live; and an ownership hand-over (a `thread.updated`
/// event) keeps the unread count the page holds.
#[tokio::test]
async fn conversations_start_from_a_search_and_are_left_and_deleted() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Desktop).await;
    alice.log_in("alice").await;
    let bob = Page::open("bob", Screen::Desktop).await;
    bob.log_in("bob").await;
    let alice_token = alice.token().await;
    let bob_token = bob.token().await;
    let bob_id = user_id(&alice_token, "bob");
    let admin_id = user_id(&alice_token, "admin");
    // Earlier runs may have left these conversations: gone, so that they start anew here.
    for others in [vec![bob_id.clone()], vec![bob_id.clone(), admin_id.clone()]] {
        let (status, t) = api("POST", "/api/threads/", &alice_token, Some(json!({ "participants": others })));
        let owner = if t["owner"] == bob_id { &bob_token } else { &alice_token };
        let (deleted, _) =
            api("DELETE", &format!("/api/threads/{}/", t["id"].as_str().unwrap()), owner, None);
        assert!(matches!((status, deleted), (200 | 201, 204)), "{status} {deleted} {t}");
    }
    alice
        .until(
            "the list settled",
            "return document.querySelectorAll('#threads li.thread').length",
            vec![],
            |v| v.as_u64().unwrap() >= 1,
        )
        .await;

    // Alice starts a conversation with bob: search, pick, start; it opens.
    alice.click("#new-conversation").await;
    alice.type_into("#people-search", "bo").await;
    let person = format!("#people-results li.person[data-user-id=\"{bob_id}\"] button");
    alice
        .until("bob found", "return [...document.querySelectorAll('#people-results li.person .name')].map(n => n.textContent)", vec![], |v| {
            v == &json!(["bob"])
        })
        .await;
    alice.shot("new-conversation-search").await;
    alice.click(&person).await;
    assert_eq!(
        alice
            .js("return [...document.querySelectorAll('#chosen .chip')].map(c => c.dataset.userId)", vec![])
            .await,
        json!([bob_id])
    );
    assert_eq!(
        alice.js("return document.getElementById('start-conversation').textContent", vec![]).await,
        "Chat with bob"
    );
    alice.click("#start-conversation").await;
    let direct = alice
        .until("the new conversation open", "return [state.openId, document.getElementById('thread-title').textContent, document.getElementById('new-dialog').open]", vec![], |v| {
            v[0].is_string() && v[1] == "bob" && v[2] == false
        })
        .await[0]
        .as_str()
        .unwrap()
        .to_owned();
    alice.until("it is listed", THREAD_ENTRY, vec![json!(direct)], |v| v["title"] == "bob").await;
    let empty = "const p = document.getElementById('pane-empty'); return p.hidden ? null : p.textContent";
    alice
        .until("the empty conversation said so", empty, vec![], |v| v == "No messages yet. Say hello to bob!")
        .await;
    alice.shot("new-conversation-empty").await;
    let hello = format!("hi bob, just us {run}");
    alice.send(&hello).await;
    alice.until("the first message sent", FIND_TEXT, vec![json!(hello)], Value::is_string).await;
    bob.until("the new conversation reaching bob", THREAD_ENTRY, vec![json!(direct)], |v| {
        v["title"] == "alice" && v["unread"] == 1 && v["preview"] == json!(hello)
    })
    .await;
    alice.shot("new-conversation").await;

    // Picking the same person again opens the same conversation (the API answers 200 with it).
    alice.click("#new-conversation").await;
    alice.type_into("#people-search", "bob").await;
    alice.click(&person).await;
    alice.click("#start-conversation").await;
    alice
        .until(
            "the existing conversation open",
            "return [state.openId, document.getElementById('new-dialog').open]",
            vec![],
            |v| v == &json!([direct, false]),
        )
        .await;
    assert_eq!(
        alice
            .js(
                "return document.querySelectorAll(`#threads [data-thread-id=\"${arguments[0]}\"]`).length",
                vec![json!(direct)]
            )
            .await,
        1
    );

    // A group: alice, bob and admin, picked one after the other.
    alice.click("#new-conversation").await;
    alice.type_into("#people-search", "bo").await;
    alice.click(&person).await;
    alice.type_into("#people-search", "adm").await;
    alice.click(&format!("#people-results li.person[data-user-id=\"{admin_id}\"] button")).await;
    assert_eq!(
        alice.js("return document.getElementById('start-conversation').textContent", vec![]).await,
        "Start group of 3"
    );
    alice.shot("new-group").await;
    alice.click("#start-conversation").await;
    let group = alice
        .until(
            "the group open",
            "return [state.openId, document.getElementById('thread-title').textContent]",
            vec![],
            |v| v[0].is_string() && v[0] != json!(direct) && v[1] == "admin, bob",
        )
        .await[0]
        .as_str()
        .unwrap()
        .to_owned();
    let in_group = format!("welcome to the group {run}");
    alice.send(&in_group).await;

    // Bob leaves the group, after confirming: it is gone from his list; alice's title follows.
    bob.until("the group reaching bob", THREAD_ENTRY, vec![json!(group)], |v| !v.is_null()).await;
    bob.open_thread(&group).await;
    bob.click("#thread-menu-button").await;
    let menu = bob
        .js("return [document.getElementById('leave-thread').hidden, document.getElementById('delete-thread').hidden]", vec![])
        .await;
    assert_eq!(menu, json!([false, true]), "bob may leave, not delete, alice's group");
    bob.shot("thread-menu").await;
    bob.click("#leave-thread").await;
    bob.shot("confirm-leave").await;
    bob.confirm().await;
    // At once, not when the live event comes: the dialog closes once the leave is done.
    assert_eq!(bob.js(THREAD_ENTRY, vec![json!(group)]).await, Value::Null, "the group gone from bob's list");
    assert_eq!(bob.js("return state.openId", vec![]).await, Value::Null);
    let (status, _) = api("GET", &format!("/api/threads/{group}/"), &bob_token, None);
    assert_eq!(status, 404, "bob is out of it");
    alice
        .until("alice's group without bob", THREAD_ENTRY, vec![json!(group)], |v| v["title"] == "admin")
        .await;

    // Alice deletes the group, after confirming.
    alice.open_thread(&group).await;
    alice.click("#thread-menu-button").await;
    let menu = alice
        .js("return [document.getElementById('leave-thread').hidden, document.getElementById('delete-thread').hidden]", vec![])
        .await;
    assert_eq!(menu, json!([true, false]), "the owner deletes; she cannot leave");
    alice.click("#delete-thread").await;
    alice.shot("confirm-delete-conversation").await;
    alice.confirm().await;
    assert_eq!(alice.js(THREAD_ENTRY, vec![json!(group)]).await, Value::Null, "the group gone at once");
    let (status, _) = api("GET", &format!("/api/threads/{group}/"), &alice_token, None);
    assert_eq!(status, 404, "deleted");

    // Two unread for bob in the direct chat, then alice hands it to him: the `thread.updated`
    // event carries no unread count, and bob's badge keeps its 2, as the API says.
    let second = format!("are you there? {run}");
    alice.open_thread(&direct).await;
    alice.send(&second).await;
    bob.until("two unread", THREAD_ENTRY, vec![json!(direct)], |v| v["unread"] == 2 && v["shown"] == true)
        .await;
    let (status, body) =
        api("PATCH", &format!("/api/threads/{direct}/"), &alice_token, Some(json!({ "owner": bob_id })));
    assert_eq!(status, 200, "{body}");
    let handed = bob
        .until("the hand-over reaching bob", THREAD_ENTRY, vec![json!(direct)], |v| {
            v["owner"] == json!(bob_id)
        })
        .await;
    assert_eq!(
        (handed["unread"].as_u64(), handed["badge"].as_str(), handed["shown"].as_bool()),
        (Some(2), Some("2"), Some(true)),
        "{handed}"
    );
    let (_, listed) = api("GET", &format!("/api/threads/{direct}/"), &bob_token, None);
    assert_eq!(listed["unread_count"], 2, "as the API says");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bob.js(THREAD_ENTRY, vec![json!(direct)]).await["unread"], 2, "and it stays");

    // Bob, the owner now, deletes the direct chat: it goes from alice's open page too.
    bob.open_thread(&direct).await;
    bob.click("#thread-menu-button").await;
    bob.click("#delete-thread").await;
    bob.confirm().await;
    bob.until("the chat gone for bob", THREAD_ENTRY, vec![json!(direct)], Value::is_null).await;
    alice
        .until("the chat gone for alice", "return [state.openId, !!document.querySelector(`#threads [data-thread-id=\"${arguments[0]}\"]`)]", vec![json!(direct)], |v| {
            v == &json!([null, false])
        })
        .await;
    let told = alice
        .until(
            "alice told",
            "const t = document.getElementById('toast'); return t.hidden ? null : t.textContent",
            vec![],
            Value::is_string,
        )
        .await;
    assert!(told.as_str().unwrap().contains("was deleted"), "{told}");
    alice.shot("conversation-deleted").await;
}

/// A message's reaction chips, in order: the emoji, the count shown, whether it is marked as
/// mine (`aria-pressed`), whether it is still being sent, and its title (who reacted).
const REACTIONS: &str = "
    const li = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    return [...li.querySelectorAll('.reactions button.reaction')].map(b => ({
        emoji: b.dataset.emoji, count: b.querySelector('.count').textContent,
        mine: b.getAttribute('aria-pressed') === 'true', pending: b.classList.contains('pending'), title: b.title }));";

/// The reaction picker: whether it is open, as a sheet (a phone's), its common emoji and those
/// the search shows, where it is, and what has the focus.
const PICKER: &str = "
    const p = document.getElementById('reaction-picker');
    const r = p.getBoundingClientRect();
    const emoji = (css) => [...p.querySelectorAll(css)].map(b => b.dataset.emoji);
    return { open: p.open, sheet: p.classList.contains('sheet'), quick: emoji('#picker-quick button.pick[data-emoji]'),
             grid: document.getElementById('picker-more').hidden ? null : emoji('#picker-grid button.pick'),
             box: { top: r.top, bottom: r.bottom, left: r.left, right: r.right },
             viewport: { width: innerWidth, height: innerHeight },
             focused: p.contains(document.activeElement) ? (document.activeElement.dataset.emoji || document.activeElement.id) : null };";

/// A message's quote of the message it answers.
const QUOTE: &str = "
    const li = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);
    const q = li && li.querySelector('.quote');
    if (!q) return null;
    return { id: q.dataset.replyTo, sender: q.querySelector('.quote-sender').textContent,
             text: q.querySelector('.quote-text').textContent, deleted: q.classList.contains('deleted'),
             label: q.getAttribute('aria-label'), button: q.tagName === 'BUTTON' };";

/// The quote above the message box while replying, and whether the box has the focus.
const REPLYING: &str = "
    const r = document.getElementById('replying');
    return { shown: !r.hidden, to: document.getElementById('replying-to').textContent,
             text: document.getElementById('replying-text').textContent,
             focused: document.activeElement === document.getElementById('text'),
             placeholder: document.getElementById('text').placeholder };";

/// Whether a message is inside the pane's view, and highlighted.
const IN_VIEW: &str = "
    const li = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    const p = document.getElementById('pane').getBoundingClientRect();
    const r = li.querySelector('.bubble').getBoundingClientRect();
    return { inView: r.top >= p.top - 1 && r.bottom <= p.bottom + 1, flash: li.classList.contains('flash') };";

/// `.../reactions/<emoji>/`, the emoji percent-encoded.
fn reaction_path(thread: &str, message: &str, emoji: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(emoji, percent_encoding::NON_ALPHANUMERIC);
    format!("/api/threads/{thread}/messages/{message}/reactions/{encoded}/")
}

/// A chip as `REACTIONS` shows it once the server has answered.
fn chip(emoji: &str, count: u32, mine: bool, title: &str) -> Value {
    json!({ "emoji": emoji, "count": count.to_string(), "mine": mine, "pending": false, "title": title })
}

/// Reactions as people make them: alice (at a laptop's size) picks one from the picker beside a
/// message and bob (on a phone) sees the chip live, taps it to add his, and picks another from
/// the picker's sheet, searching; chips count, say who reacted and are marked when they are
/// mine; a click takes one back; a reaction made elsewhere arrives live; any emoji can be typed;
/// Escape closes the picker; and the server's refusal of a 21st emoji shows beside the message.
#[tokio::test]
async fn reactions_come_from_the_picker_and_chips_count_toggle_and_arrive_live() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Desktop).await;
    alice.log_in("alice").await;
    let bob = Page::open("bob", Screen::Phone).await;
    bob.log_in("bob").await;
    let alice_token = alice.token().await;
    let bob_token = bob.token().await;
    let thread = thread_with(&alice_token, &["test_user", "bob"]);
    let (alice_id, bob_id) = (user_id(&alice_token, "alice"), user_id(&alice_token, "bob"));
    let text = format!("who is coming on Friday? {run}");
    let (status, sent) =
        api("POST", &format!("/api/threads/{thread}/messages/"), &bob_token, Some(json!({ "text": text })));
    assert_eq!(status, 201, "{sent}");
    let message = sent["id"].as_str().unwrap().to_owned();
    let detail = format!("/api/threads/{thread}/messages/{message}/");
    for page in [&alice, &bob] {
        page.open_thread(&thread).await;
        page.until("the message shown", MESSAGE, vec![json!(message)], |v| v["text"] == text).await;
    }
    assert_eq!(alice.js(REACTIONS, vec![json!(message)]).await, json!([]), "no chips yet");
    let react_name = alice
        .js(
            "return document.querySelector(`[data-message-id=\"${arguments[0]}\"] button.react`).getAttribute('aria-label')",
            vec![json!(message)],
        )
        .await;
    assert_eq!(react_name, format!("React to bob's message “{text}”"), "named for its message");

    // Alice opens the picker from the message's React button: the common emoji, beside the
    // message, on screen, the first one focused.
    alice.message_button(&message, "react").await;
    let open = alice.until("the picker open", PICKER, vec![], |v| v["open"] == true).await;
    assert_eq!(open["quick"], json!(["👍", "❤️", "😂", "😮", "😢", "🎉"]), "{open}");
    assert_eq!((open["sheet"].as_bool(), open["focused"].as_str()), (Some(false), Some("👍")), "{open}");
    let inside = |b: &Value| {
        b["box"]["top"].as_f64().unwrap() >= 0.0
            && b["box"]["left"].as_f64().unwrap() >= 0.0
            && b["box"]["right"].as_f64().unwrap() <= b["viewport"]["width"].as_f64().unwrap()
            && b["box"]["bottom"].as_f64().unwrap() <= b["viewport"]["height"].as_f64().unwrap()
    };
    assert!(inside(&open), "the picker is on screen: {open}");
    alice.shot("reaction-picker").await;
    alice.click("#reaction-picker button.pick[data-emoji=\"👍\"]").await;
    alice
        .until("her reaction shown", REACTIONS, vec![json!(message)], |v| {
            v == &json!([chip("👍", 1, true, "You reacted with 👍")])
        })
        .await;
    assert_eq!(alice.js(PICKER, vec![]).await["open"], false, "picking closes the picker");
    let (_, stored) = api("GET", &detail, &alice_token, None);
    assert_eq!(stored["reactions"], json!([{ "emoji": "👍", "count": 1, "me": true, "users": [alice_id] }]));

    // Bob sees it live (the event says who reacted, not whether he did), and taps it: his too.
    bob.until("alice's reaction reaching bob", REACTIONS, vec![json!(message)], |v| {
        v == &json!([chip("👍", 1, false, "alice reacted with 👍")])
    })
    .await;
    bob.shot("reaction-arrived").await;
    bob.click(&format!("[data-message-id=\"{message}\"] .reactions button.reaction[data-emoji=\"👍\"]"))
        .await;
    bob.until("his reaction added", REACTIONS, vec![json!(message)], |v| {
        v == &json!([chip("👍", 2, true, "You and alice reacted with 👍")])
    })
    .await;
    alice
        .until("bob's reaction reaching alice", REACTIONS, vec![json!(message)], |v| {
            v == &json!([chip("👍", 2, true, "You and bob reacted with 👍")])
        })
        .await;

    // On the phone a long press on the message opens the picker too (its release leaves it
    // open), and a tap on the backdrop closes it.
    let text_box =
        bob.browser.find(Locator::Css(&format!("[data-message-id=\"{message}\"] .text"))).await.unwrap();
    let long_press = TouchActions::new("finger".into())
        .then(PointerAction::MoveToElement { element: text_box, duration: None, x: 0.0, y: 0.0 })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::Pause { duration: Duration::from_millis(800) })
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    bob.browser.perform_actions(long_press).await.unwrap();
    bob.until("the picker opened by a long press", PICKER, vec![], |v| {
        v["open"] == true && v["sheet"] == true
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bob.js(PICKER, vec![]).await["open"], true, "still open after the finger is lifted");
    let tap = TouchActions::new("finger".into())
        .then(PointerAction::MoveTo { duration: None, x: 195.0, y: 150.0 })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    bob.browser.perform_actions(tap).await.unwrap();
    bob.until("the picker closed by a tap beside it", PICKER, vec![], |v| v["open"] == false).await;

    // On the phone the picker is a sheet from the bottom; More finds emoji by name.
    bob.message_button(&message, "react").await;
    let sheet = bob.until("the picker sheet", PICKER, vec![], |v| v["open"] == true).await;
    assert_eq!(sheet["sheet"], true, "{sheet}");
    assert!(inside(&sheet), "{sheet}");
    assert_eq!(
        sheet["box"]["bottom"].as_f64(),
        sheet["viewport"]["height"].as_f64(),
        "at the bottom: {sheet}"
    );
    assert_eq!(sheet["box"]["left"], 0.0, "the screen's width: {sheet}");
    bob.shot("reaction-picker").await;
    bob.click("#picker-more-button").await;
    bob.type_into("#picker-search", "party").await;
    let found = bob.until("the search's emoji", PICKER, vec![], |v| v["grid"] == json!(["🥳", "🎉"])).await;
    assert!(inside(&found), "still on screen with more emoji: {found}");
    bob.shot("reaction-picker-search").await;
    bob.click("#picker-grid button.pick[data-emoji=\"🥳\"]").await;
    let both = json!([
        chip("👍", 2, true, "You and alice reacted with 👍"),
        chip("🥳", 1, true, "You reacted with 🥳")
    ]);
    bob.until("his second reaction", REACTIONS, vec![json!(message)], |v| v == &both).await;
    alice
        .until("bob's second reaction reaching alice", REACTIONS, vec![json!(message)], |v| {
            v == &json!([
                chip("👍", 2, true, "You and bob reacted with 👍"),
                chip("🥳", 1, false, "bob reacted with 🥳")
            ])
        })
        .await;

    // Alice takes hers back with a click on the chip.
    alice
        .click(&format!("[data-message-id=\"{message}\"] .reactions button.reaction[data-emoji=\"👍\"]"))
        .await;
    let after =
        json!([chip("👍", 1, false, "bob reacted with 👍"), chip("🥳", 1, false, "bob reacted with 🥳")]);
    alice.until("her reaction taken back", REACTIONS, vec![json!(message)], |v| v == &after).await;
    bob.until("alice's reaction gone for bob", REACTIONS, vec![json!(message)], |v| {
        v[0] == chip("👍", 1, true, "You reacted with 👍")
    })
    .await;
    let (_, stored) = api("GET", &detail, &alice_token, None);
    assert_eq!(stored["reactions"][0]["users"], json!([bob_id]), "{stored}");

    // A reaction from elsewhere (bob's other device, through the API) arrives live.
    let (status, body) = api("PUT", &reaction_path(&thread, &message, "❤️"), &bob_token, None);
    assert_eq!(status, 200, "{body}");
    alice
        .until("the heart arriving", REACTIONS, vec![json!(message)], |v| {
            v.as_array().is_some_and(|a| a.len() == 3 && a[2] == chip("❤️", 1, false, "bob reacted with ❤️"))
        })
        .await;

    // Any emoji can be typed (or pasted) into the search; Enter picks it.
    alice.message_button(&message, "react").await;
    alice.until("the picker open", PICKER, vec![], |v| v["open"] == true).await;
    alice.click("#picker-more-button").await;
    // ChromeDriver types only the Basic Multilingual Plane: the emoji is pasted, as it were.
    alice
        .js(
            "const i = document.getElementById('picker-search'); i.value = arguments[0]; i.dispatchEvent(new Event('input'));",
            vec![json!("🦄")],
        )
        .await;
    alice.until("the typed emoji offered", PICKER, vec![], |v| v["grid"] == json!(["🦄"])).await;
    alice.keys("#picker-search", ENTER).await;
    alice
        .until("the typed emoji added", REACTIONS, vec![json!(message)], |v| {
            v.as_array().is_some_and(|a| a.len() == 4 && a[3] == chip("🦄", 1, true, "You reacted with 🦄"))
        })
        .await;

    // Escape closes the picker, and the focus goes back to the button that opened it.
    alice.message_button(&message, "react").await;
    alice.until("the picker open", PICKER, vec![], |v| v["focused"] == "👍").await;
    alice.keys("#reaction-picker button.pick[data-emoji=\"👍\"]", ESCAPE).await;
    alice.until("the picker closed", PICKER, vec![], |v| v["open"] == false).await;
    let focused = alice.js("return document.activeElement.className", vec![]).await;
    assert_eq!(focused, "react", "focus back on the React button");

    // Twenty different emoji at most: the server refuses a 21st, and alice is told beside the
    // message; the chips stay as they are.
    let more =
        ["😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃", "😉", "😊", "😇", "🥰", "😍", "🤩"];
    for emoji in more {
        let (status, body) = api("PUT", &reaction_path(&thread, &message, emoji), &bob_token, None);
        assert_eq!(status, 200, "{emoji}: {body}");
    }
    let full = alice
        .until("twenty emoji", REACTIONS, vec![json!(message)], |v| {
            v.as_array().is_some_and(|a| a.len() == 20)
        })
        .await;
    alice.message_button(&message, "react").await;
    alice.until("the picker open", PICKER, vec![], |v| v["open"] == true).await;
    alice.click("#picker-more-button").await;
    alice.type_into("#picker-search", "thinking").await;
    alice.until("the thinking face found", PICKER, vec![], |v| v["grid"] == json!(["🤔"])).await;
    alice.click("#picker-grid button.pick[data-emoji=\"🤔\"]").await;
    let refused = alice
        .until(
            "the refusal shown beside the message",
            "return document.querySelector(`[data-message-id=\"${arguments[0]}\"] .reaction-error`).textContent",
            vec![json!(message)],
            |v| v.as_str().is_some_and(|t| !t.is_empty()),
        )
        .await;
    assert_eq!(
        refused,
        "Couldn't react with 🤔: A message has at most 20 different reactions: react with one it has."
    );
    assert_eq!(alice.js(REACTIONS, vec![json!(message)]).await, full, "the chips as they were");
    alice.shot("reaction-refused").await;
    bob.shot("reactions").await;
    let (_, stored) = api("GET", &detail, &alice_token, None);
    assert_eq!(stored["reactions"].as_array().unwrap().len(), 20);
    delete_run_messages(&[&bob_token], &thread, &run);
}

/// Replies as people make them: alice (on a phone) replies to bob's message, which shows it
/// quoted above the box (Escape cancels), and her reply quotes it; bob (at a laptop's size)
/// sees the quote live and clicks it to bring the original, scrolled away, into view,
/// highlighted; the quote follows the original's edit and delete live; and bob replies with the
/// keyboard alone.
#[tokio::test]
async fn replies_quote_the_original_and_follow_it_live() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Phone).await;
    alice.log_in("alice").await;
    let bob = Page::open("bob", Screen::Desktop).await;
    bob.log_in("bob").await;
    let alice_token = alice.token().await;
    let bob_token = bob.token().await;
    let thread = thread_with(&alice_token, &["test_user", "bob"]);
    let question = format!("what time is the meeting tomorrow? {run}");
    let say = |text: &str| {
        let (status, sent) = api(
            "POST",
            &format!("/api/threads/{thread}/messages/"),
            &bob_token,
            Some(json!({ "text": text })),
        );
        assert_eq!(status, 201, "{sent}");
        sent["id"].as_str().unwrap().to_owned()
    };
    let original = say(&question);
    // Enough after it that it is scrolled away on both screens.
    for n in 1..=24 {
        say(&format!("and another thing, number {n} {run}"));
    }
    for page in [&alice, &bob] {
        page.open_thread(&thread).await;
        page.until("the question shown", MESSAGE, vec![json!(original)], |v| v["text"] == question).await;
    }

    // Reply quotes the message above the box and puts the focus in it; Escape cancels.
    assert_eq!(alice.js(REPLYING, vec![]).await["shown"], false);
    alice.message_button(&original, "reply").await;
    let replying = alice.until("the quote above the box", REPLYING, vec![], |v| v["shown"] == true).await;
    assert_eq!(
        replying,
        json!({ "shown": true, "to": "Replying to bob", "text": question, "focused": true, "placeholder": "Write a reply" })
    );
    alice.shot("replying").await;
    alice.keys("#text", ESCAPE).await;
    alice.until("the reply cancelled", REPLYING, vec![], |v| v["shown"] == false).await;
    alice.message_button(&original, "reply").await;
    alice.until("the quote above the box again", REPLYING, vec![], |v| v["shown"] == true).await;
    let answer = format!("at ten, in the big room {run}");
    alice.send(&answer).await;
    let reply = alice.until("the reply sent", FIND_TEXT, vec![json!(answer)], Value::is_string).await;
    let reply = reply.as_str().unwrap().to_owned();
    assert_eq!(
        alice.js(REPLYING, vec![]).await["shown"],
        false,
        "the quote above the box goes with the send"
    );
    let quoted = json!({ "id": original, "sender": "bob", "text": question, "deleted": false,
                         "label": format!("In reply to bob: “{question}”. Show the original message"), "button": true });
    alice.until("the quote in her reply", QUOTE, vec![json!(reply)], |v| v == &quoted).await;
    let (status, stored) = api("GET", &format!("/api/threads/{thread}/messages/{reply}/"), &bob_token, None);
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["reply_to"]["id"], json!(original), "sent as a reply: {stored}");
    alice.shot("reply-sent").await;

    // Bob sees the reply with its quote live, and clicks the quote: the original, scrolled away,
    // comes into view, highlighted.
    bob.until("the reply with its quote", QUOTE, vec![json!(reply)], |v| {
        v["sender"] == "You" && v["text"] == json!(question)
    })
    .await;
    let away = bob.js(IN_VIEW, vec![json!(original)]).await;
    assert_eq!(away["inView"], false, "the original is scrolled away: {away}");
    bob.click(&format!("[data-message-id=\"{reply}\"] .quote")).await;
    bob.until("the original shown", IN_VIEW, vec![json!(original)], |v| {
        v == &json!({ "inView": true, "flash": true })
    })
    .await;
    bob.shot("quote-clicked").await;

    // Bob edits the question: the quote follows, live.
    let edited = format!("what time is the meeting on Friday? {run}");
    let (status, body) = api(
        "PATCH",
        &format!("/api/threads/{thread}/messages/{original}/"),
        &bob_token,
        Some(json!({ "text": edited })),
    );
    assert_eq!(status, 200, "{body}");
    alice.until("the quote edited", QUOTE, vec![json!(reply)], |v| v["text"] == json!(edited)).await;

    // Bob deletes it: the reply stays, its quote says the original was deleted, on both pages;
    // the server sent the reply again with its quote marked deleted.
    let (status, _) = api("DELETE", &format!("/api/threads/{thread}/messages/{original}/"), &bob_token, None);
    assert_eq!(status, 204);
    let gone = json!({ "id": original, "sender": "bob", "text": "Deleted message", "deleted": true,
                       "label": "In reply to a deleted message from bob", "button": false });
    alice.until("the quote deleted", QUOTE, vec![json!(reply)], |v| v == &gone).await;
    bob.until("the quote deleted for bob", QUOTE, vec![json!(reply)], |v| v["deleted"] == true).await;
    alice
        .until(
            "the reply's message.updated event",
            "return __net.frames.some(f => f.type === 'message.updated' && f.data.message && f.data.message.id === arguments[0]
                 && f.data.message.reply_to && f.data.message.reply_to.deleted === true)",
            vec![json!(reply)],
            |v| v == &json!(true),
        )
        .await;
    assert_eq!(alice.js(MESSAGE, vec![json!(reply)]).await["text"], json!(answer), "the reply stays");
    alice.shot("quote-deleted").await;

    // Bob replies with the keyboard alone: from the message to its Reply button, Enter, type,
    // Enter.
    bob.js(
        "document.querySelector(`[data-message-id=\"${arguments[0]}\"] .bubble`).focus()",
        vec![json!(reply)],
    )
    .await;
    bob.js(
        "document.querySelector(`[data-message-id=\"${arguments[0]}\"] button.reply`).focus()",
        vec![json!(reply)],
    )
    .await;
    bob.keys(&format!("[data-message-id=\"{reply}\"] button.reply"), ENTER).await;
    let replying = bob.until("bob replying", REPLYING, vec![], |v| v["shown"] == true).await;
    assert_eq!(
        (replying["to"].as_str(), replying["focused"].as_bool()),
        (Some("Replying to alice"), Some(true))
    );
    bob.shot("replying").await;
    let thanks = format!("great, thanks {run}");
    bob.keys("#text", &format!("{thanks}{ENTER}")).await;
    let second = bob.until("bob's reply sent", FIND_TEXT, vec![json!(thanks)], Value::is_string).await;
    bob.until("bob's reply quoting alice's", QUOTE, vec![second.clone()], |v| {
        v["id"] == json!(reply) && v["sender"] == "alice" && v["text"] == json!(answer)
    })
    .await;
    alice
        .until("bob's reply reaching alice", QUOTE, vec![second], |v| {
            v["sender"] == "You" && v["deleted"] == false
        })
        .await;
    bob.shot("replies").await;
    alice.shot("replies").await;
    delete_run_messages(&[&bob_token, &alice_token], &thread, &run);
}

/// ↓, ↑, Tab, Home, Delete and Backspace, as WebDriver types them.
const ARROW_DOWN: &str = "\u{E015}";
const ARROW_UP: &str = "\u{E013}";
const TAB: &str = "\u{E004}";
const HOME: &str = "\u{E011}";
const DELETE: &str = "\u{E017}";
const BACKSPACE: &str = "\u{E003}";

/// A fresh access token for a demo user, through the API (a login that succeeds trips no limit).
fn log_in_api(username: &str) -> String {
    let base = std::env::var("E2E_BASE_URL").expect("E2E_BASE_URL (run `make test`)");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent
        .post(&format!("{base}/api/token/"))
        .send_json(json!({ "username": username, "password": "super_pass" }))
        .unwrap();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    body["access"].as_str().unwrap_or_else(|| panic!("no token for {username}: {body}")).to_owned()
}

/// `PATCH /api/threads/{id}/me/`: the caller's mute and archive.
fn set_view(token: &str, thread: &str, body: Value) -> Value {
    let (status, view) = api("PATCH", &format!("/api/threads/{thread}/me/"), token, Some(body));
    assert_eq!(status, 200, "{view}");
    view
}

/// `GET /api/threads/{id}/me/`: the caller's view of a thread, as the API keeps it.
fn view_of(token: &str, thread: &str) -> Value {
    let (status, view) = api("GET", &format!("/api/threads/{thread}/me/"), token, None);
    assert_eq!(status, 200, "{view}");
    view
}

/// A message sent through the API (as from the sender's other device).
fn say_as(token: &str, thread: &str, body: Value) -> String {
    let (status, sent) = api("POST", &format!("/api/threads/{thread}/messages/"), token, Some(body));
    assert_eq!(status, 201, "{sent}");
    sent["id"].as_str().unwrap().to_owned()
}

/// A thread's entry in the list the sidebar shows now (the chats, or the archived ones), with
/// what mute, archive and mentions add to it; and the "Archived" entry above the chats.
const ENTRY: &str = "
    const li = document.querySelector(`#threads [data-thread-id=\"${arguments[0]}\"]`);
    const entry = document.getElementById('show-archived');
    const base = { view: document.getElementById('sidebar').dataset.view,
                   archivedEntry: entry.hidden ? null : Number(document.getElementById('archived-count').textContent) };
    if (!li) return { ...base, listed: false };
    const badge = li.querySelector('.badge'), at = li.querySelector('.mention-badge');
    return { ...base, listed: true, unread: Number(li.dataset.unread), badge: badge.hidden ? null : badge.textContent,
             grey: badge.classList.contains('muted'), mention: !at.hidden, mentionGrey: at.classList.contains('muted'),
             mutedIcon: !!li.querySelector('.title-line .muted-icon'), muted: li.dataset.muted === 'true',
             archived: li.dataset.archived === 'true' };";

/// The totals the sidebar and the page's title show.
const TOTALS: &str = "
    const t = document.getElementById('total-unread'), m = document.getElementById('total-mentions');
    return { unread: Number(t.dataset.unread), mentions: Number(m.dataset.mentions), mentionsShown: !m.hidden, title: document.title };";

/// The @-completion list: whether it is open, the names it offers, the one chosen, and where it
/// is beside the box being typed in.
const COMPLETION: &str = "
    const l = document.getElementById('mention-list');
    const r = l.getBoundingClientRect();
    const input = document.activeElement;
    const b = input.getBoundingClientRect();
    const active = l.querySelector('li.active');
    return { open: !l.hidden, names: [...l.querySelectorAll('li')].map(li => li.dataset.username),
             active: active ? active.dataset.username : null,
             expanded: input.getAttribute('aria-expanded'),
             box: { top: r.top, bottom: r.bottom, left: r.left, right: r.right },
             input: { top: b.top, bottom: b.bottom }, viewport: { width: innerWidth, height: innerHeight } };";

/// The mentions a message shows highlighted, and whether it is marked as mentioning me.
const MENTIONED: &str = "
    const li = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    return { mentionsMe: li.classList.contains('mentions-me'),
             spans: [...li.querySelectorAll('.text .mention')].map(s => [s.textContent, s.classList.contains('me')]) };";

/// The open conversation's header: its muted icon, "Muted until …" and the Archived label.
const HEADER: &str = "
    const muted = document.getElementById('thread-muted');
    return { icon: !document.getElementById('thread-muted-icon').hidden, muted: muted.hidden ? null : muted.textContent,
             archived: !document.getElementById('thread-archived').hidden };";

/// The conversation menu: what it offers now, where it is, and what has the focus.
const MENU: &str = "
    const m = document.getElementById('thread-menu');
    const shown = (id) => document.getElementById(id).offsetParent !== null;
    const r = m.getBoundingClientRect();
    return { open: !m.hidden, mute: shown('mute-thread'), unmute: shown('unmute-thread'),
             archive: shown('archive-thread'), unarchive: shown('unarchive-thread'),
             durations: [...m.querySelectorAll('.mute-for')].filter(b => b.offsetParent !== null).map(b => b.textContent),
             until: document.getElementById('unmute-until').textContent,
             box: { top: r.top, bottom: r.bottom, left: r.left, right: r.right }, viewport: { width: innerWidth, height: innerHeight },
             focused: document.activeElement.id || document.activeElement.dataset.for || null };";

const TOAST: &str = "const t = document.getElementById('toast'); return t.hidden ? null : document.getElementById('toast-text').textContent";

/// Whether a box (of `MENU` or `COMPLETION`) is inside the window.
fn on_screen(v: &Value) -> bool {
    let n = |k: &str| v["box"][k].as_f64().unwrap();
    n("top") >= 0.0
        && n("left") >= 0.0
        && n("right") <= v["viewport"]["width"].as_f64().unwrap()
        && n("bottom") <= v["viewport"]["height"].as_f64().unwrap()
}

impl Page {
    /// A right-click on a chat in the list (a laptop's way to its options).
    async fn right_click_chat(&self, thread: &str) {
        let row = self
            .browser
            .find(Locator::Css(&format!("#threads [data-thread-id=\"{thread}\"] button.open")))
            .await
            .unwrap();
        let click = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement { element: row, duration: None, x: 0.0, y: 0.0 })
            .then(PointerAction::Down { button: MOUSE_BUTTON_RIGHT })
            .then(PointerAction::Up { button: MOUSE_BUTTON_RIGHT });
        self.browser.perform_actions(click).await.unwrap();
        self.browser.release_actions().await.unwrap();
    }

    /// A long press on a chat in the list (a phone's way to its options).
    async fn long_press_chat(&self, thread: &str) {
        let row = self
            .browser
            .find(Locator::Css(&format!("#threads [data-thread-id=\"{thread}\"] button.open")))
            .await
            .unwrap();
        let press = TouchActions::new("finger".into())
            .then(PointerAction::MoveToElement { element: row, duration: None, x: 0.0, y: 0.0 })
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::Pause { duration: Duration::from_millis(800) })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        self.browser.perform_actions(press).await.unwrap();
        self.browser.release_actions().await.unwrap();
    }

    async fn menu_open(&self) -> Value {
        self.until("the conversation menu open", MENU, vec![], |v| v["open"] == true).await
    }
}

/// Mentions as people make them: alice (at a laptop's size) types "@" in the box and gets the
/// conversation's people, narrowed as she types; she picks one with a click and one with the
/// keyboard (↓, ↑, Tab), Escape closes the list, and a mention she deletes before sending is no
/// mention: the send mentions bob alone, as the API shows. Bob (on a phone) gets the "@" badge
/// and the mentions total, sees "@bob" highlighted as his own in the message, and reading it
/// clears both; he answers with a tap on the list, which sits above his box; and alice's edit
/// box completes too, its save mentioning whoever the text now names.
#[tokio::test]
async fn mentions_are_completed_shown_and_counted() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let alice = Page::open("alice", Screen::Desktop).await;
    alice.log_in("alice").await;
    let bob = Page::open("bob", Screen::Phone).await;
    bob.log_in("bob").await;
    let alice_token = alice.token().await;
    let bob_token = bob.token().await;
    let thread = thread_with(&alice_token, &["test_user", "bob"]);
    let (alice_id, bob_id) = (user_id(&alice_token, "alice"), user_id(&alice_token, "bob"));
    let test_user_id = user_id(&alice_token, "test_user");
    for token in [&alice_token, &bob_token] {
        set_view(token, &thread, json!({ "muted": false, "archived": false }));
    }
    // Bob has read the thread (listing it reads it).
    api("GET", &format!("/api/threads/{thread}/messages/?limit=1"), &bob_token, None);
    bob.until("the thread read, without @", ENTRY, vec![json!(thread)], |v| {
        v["listed"] == true && v["unread"] == 0 && v["mention"] == false
    })
    .await;
    let before = bob.js(TOTALS, vec![]).await;
    let mentions_before = before["mentions"].as_u64().unwrap();

    // "@" lists the others of the conversation, the first chosen; Escape closes it, and it
    // stays closed while she goes on typing that word.
    alice.open_thread(&thread).await;
    alice.type_into("#text", "@").await;
    let listed = alice.until("the people listed", COMPLETION, vec![], |v| v["open"] == true).await;
    assert_eq!(
        (listed["names"].clone(), listed["active"].clone(), listed["expanded"].clone()),
        (json!(["bob", "test_user"]), json!("bob"), json!("true")),
        "{listed}"
    );
    assert!(listed["box"]["bottom"].as_f64() <= listed["input"]["top"].as_f64(), "above the box: {listed}");
    alice.shot("mention-completion").await;
    alice.keys("#text", ESCAPE).await;
    alice.until("the list closed", COMPLETION, vec![], |v| v["open"] == false).await;
    alice.keys("#text", "b").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(alice.js(COMPLETION, vec![]).await["open"], false, "closed for this word");
    assert_eq!(alice.value("#text").await, "@b", "Escape changed nothing in the text");
    alice.keys("#text", &format!("{BACKSPACE}{BACKSPACE}")).await;

    // Narrowed as she types; a click puts "@test_user " in the box.
    alice.keys("#text", "@t").await;
    alice.until("narrowed to test_user", COMPLETION, vec![], |v| v["names"] == json!(["test_user"])).await;
    alice.click("#mention-list li[data-username=\"test_user\"]").await;
    alice.until("the list closed", COMPLETION, vec![], |v| v["open"] == false).await;
    assert_eq!(alice.value("#text").await, "@test_user ");
    // The keyboard: ↓ and ↑ move, Tab picks.
    alice.keys("#text", "and @").await;
    alice.until("both listed", COMPLETION, vec![], |v| v["names"] == json!(["bob", "test_user"])).await;
    alice.keys("#text", ARROW_DOWN).await;
    alice.until("test_user chosen", COMPLETION, vec![], |v| v["active"] == "test_user").await;
    alice.keys("#text", ARROW_UP).await;
    alice.until("bob chosen", COMPLETION, vec![], |v| v["active"] == "bob").await;
    alice.keys("#text", TAB).await;
    assert_eq!(alice.value("#text").await, "@test_user and @bob ");
    assert_eq!(alice.js(COMPLETION, vec![]).await["open"], false);
    let text = format!("@bob dinner at six? {run}");
    alice.keys("#text", &format!("dinner at six? {run}")).await;
    // She takes test_user's mention out again before sending: "@test_user and " goes.
    alice.keys("#text", &format!("{HOME}{}", DELETE.repeat(15))).await;
    assert_eq!(alice.value("#text").await, text);
    alice.keys("#text", ENTER).await;
    let message = alice.until("the message sent", FIND_TEXT, vec![json!(text)], Value::is_string).await;
    let message = message.as_str().unwrap().to_owned();
    let sent = alice.js("return __net.sends.filter(b => b.text === arguments[0])", vec![json!(text)]).await;
    assert_eq!(sent[0]["mentions"], json!([bob_id]), "only bob, still in the text: {sent}");
    let detail = format!("/api/threads/{thread}/messages/{message}/");
    let (_, stored) = api("GET", &detail, &alice_token, None);
    assert_eq!(stored["mentions"], json!([bob_id]), "{stored}");
    alice
        .until("bob's name highlighted", MENTIONED, vec![json!(message)], |v| {
            v == &json!({ "mentionsMe": false, "spans": [["@bob", false]] })
        })
        .await;

    // Bob's list: the "@" badge beside the count, the mentions total, and the page's title.
    bob.until("the @ badge", ENTRY, vec![json!(thread)], |v| {
        v["unread"] == 1 && v["mention"] == true && v["grey"] == false
    })
    .await;
    let totals = bob
        .until("the mentions total", TOTALS, vec![], |v| v["mentions"] == json!(mentions_before + 1))
        .await;
    assert_eq!(totals["mentionsShown"], true, "{totals}");
    assert!(
        totals["title"].as_str().unwrap().starts_with(&format!("(@{} · ", mentions_before + 1)),
        "{totals}"
    );
    bob.until("the mention announced", ANNOUNCED, vec![], |v| {
        v.as_array().unwrap().iter().any(|a| a == "alice mentioned you in alice, test_user.")
    })
    .await;
    bob.shot("mention-badge").await;
    // He opens it: "@bob" is his, highlighted more, and the message is marked; reading it clears
    // the badge and the total, as the API says.
    bob.open_thread(&thread).await;
    bob.until("his mention highlighted", MENTIONED, vec![json!(message)], |v| {
        v == &json!({ "mentionsMe": true, "spans": [["@bob", true]] })
    })
    .await;
    bob.shot("mention-highlight").await;
    bob.until("the mentions total back", TOTALS, vec![], |v| v["mentions"] == json!(mentions_before)).await;
    let (_, listed) = api("GET", &format!("/api/threads/{thread}/"), &bob_token, None);
    assert_eq!(listed["unread_mentions"], 0, "{listed}");

    // On the phone the list sits above the box (and so above the keyboard), across the screen;
    // a tap picks.
    bob.type_into("#text", "thanks @al").await;
    let list = bob.until("alice offered", COMPLETION, vec![], |v| v["names"] == json!(["alice"])).await;
    assert!(on_screen(&list), "{list}");
    assert!(list["box"]["bottom"].as_f64() <= list["input"]["top"].as_f64(), "above the box: {list}");
    assert!(list["box"]["right"].as_f64().unwrap() - list["box"]["left"].as_f64().unwrap() > 300.0, "{list}");
    bob.shot("mention-completion").await;
    bob.click("#mention-list li[data-username=\"alice\"]").await;
    assert_eq!(bob.value("#text").await, "thanks @alice ");
    let answer = format!("thanks @alice see you there {run}");
    bob.keys("#text", &format!("see you there {run}")).await;
    bob.click("#send").await;
    let answered = bob.until("his answer sent", FIND_TEXT, vec![json!(answer)], Value::is_string).await;
    let (_, stored) = api(
        "GET",
        &format!("/api/threads/{thread}/messages/{}/", answered.as_str().unwrap()),
        &bob_token,
        None,
    );
    assert_eq!(stored["mentions"], json!([alice_id]), "{stored}");
    alice
        .until("alice's mention highlighted for her", MENTIONED, vec![answered], |v| {
            v == &json!({ "mentionsMe": true, "spans": [["@alice", true]] })
        })
        .await;
    back_to_list(&bob).await;
    bob.until("no @ badge", ENTRY, vec![json!(thread)], |v| v["mention"] == false && v["unread"] == 0).await;

    // Alice's edit box completes too, and the save mentions whom the text now names.
    alice.message_button(&message, "edit").await;
    let edit_box = format!("[data-message-id=\"{message}\"] .edit-text");
    alice.keys(&edit_box, " @te").await;
    let in_edit =
        alice.until("test_user offered", COMPLETION, vec![], |v| v["names"] == json!(["test_user"])).await;
    assert!(on_screen(&in_edit), "{in_edit}");
    alice.shot("mention-completion-edit").await;
    alice.keys(&edit_box, ENTER).await;
    assert_eq!(alice.value(&edit_box).await, format!("{text} @test_user "));
    alice.keys(&edit_box, ENTER).await;
    alice
        .until("both highlighted", MENTIONED, vec![json!(message)], |v| {
            v["spans"] == json!([["@bob", false], ["@test_user", false]])
        })
        .await;
    let (_, stored) = api("GET", &detail, &alice_token, None);
    assert_eq!(stored["mentions"], json!([bob_id, test_user_id]), "{stored}");
    // Her open chat read bob's answer, mention and all.
    alice
        .until("alice's @ badge gone", ENTRY, vec![json!(thread)], |v| {
            v["unread"] == 0 && v["mention"] == false
        })
        .await;
    alice.shot("mentions").await;
    delete_run_messages(&[&alice_token, &bob_token], &thread, &run);
}

/// Back to the list from an open conversation (the phone's back button).
async fn back_to_list(page: &Page) {
    page.click("#back").await;
    page.until("the list", "return document.getElementById('app-view').dataset.screen", vec![], |v| {
        v == "list"
    })
    .await;
}

/// Muting as people do it: alice (at a laptop's size) mutes a group from its options in the
/// list (a right-click: opening it would read it) for 8 hours; her phone, a second page of
/// hers, follows live (`member.updated`); bob's messages then show as grey badges, left out of
/// the totals; she unmutes on the phone (a long press on the chat) and the laptop's badges turn
/// blue and count again. The open chat's "⋮" mutes until she unmutes, said in its header; and a
/// mute with an end (set elsewhere) ends by itself, with no event.
#[tokio::test]
async fn muting_greys_the_badge_leaves_the_totals_and_reaches_every_page() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let laptop = Page::open("alice", Screen::Desktop).await;
    laptop.log_in("alice").await;
    let phone = Page::open("alice", Screen::Phone).await;
    phone.log_in("alice").await;
    let alice_token = laptop.token().await;
    let bob_token = log_in_api("bob");
    let alice_id = user_id(&alice_token, "alice");
    let thread = thread_with(&alice_token, &["bob", "test_user", "admin"]);
    set_view(&alice_token, &thread, json!({ "muted": false, "archived": false }));
    api("GET", &format!("/api/threads/{thread}/messages/?limit=1"), &alice_token, None);
    for page in [&laptop, &phone] {
        page.until("the group listed, not muted", ENTRY, vec![json!(thread)], |v| {
            v["listed"] == true && v["muted"] == false && v["unread"] == 0
        })
        .await;
    }

    // A right-click on the chat: its options, with Mute's durations in place of the items.
    laptop.right_click_chat(&thread).await;
    let menu = laptop.menu_open().await;
    assert_eq!(
        (
            menu["mute"].as_bool(),
            menu["unmute"].as_bool(),
            menu["archive"].as_bool(),
            menu["focused"].as_str()
        ),
        (Some(true), Some(false), Some(true), Some("mute-thread")),
        "{menu}"
    );
    assert!(on_screen(&menu), "{menu}");
    laptop.shot("chat-menu").await;
    laptop.click("#mute-thread").await;
    let durations = laptop.until("the durations", MENU, vec![], |v| v["durations"] != json!([])).await;
    assert_eq!(
        durations["durations"],
        json!(["For 1 hour", "For 8 hours", "For 1 day", "Until I unmute"]),
        "{durations}"
    );
    assert_eq!(durations["focused"], "1h", "{durations}");
    laptop.shot("mute-durations").await;
    laptop.click("#thread-menu .mute-for[data-for=\"8h\"]").await;
    laptop
        .until("muted, with its icon", ENTRY, vec![json!(thread)], |v| {
            v["muted"] == true && v["mutedIcon"] == true
        })
        .await;
    let view = view_of(&alice_token, &thread);
    assert_eq!(view["muted"], true, "{view}");
    let hours = laptop
        .js("return (Date.parse(arguments[0]) - Date.now()) / 3600e3", vec![view["muted_until"].clone()])
        .await;
    assert!((7.9..=8.0).contains(&hours.as_f64().unwrap()), "muted for 8 hours: {view}");
    let toast = laptop.until("the toast", TOAST, vec![], Value::is_string).await;
    assert!(toast.as_str().unwrap().starts_with("Muted until "), "{toast}");
    // Her phone follows at once, from the member.updated event.
    phone
        .until("the mute reaching the phone", ENTRY, vec![json!(thread)], |v| {
            v["muted"] == true && v["mutedIcon"] == true
        })
        .await;
    let events = phone
        .js(
            "return __net.frames.filter(f => f.type === 'member.updated' && f.thread === arguments[0]).map(f => f.data.muted)",
            vec![json!(thread)],
        )
        .await;
    assert_eq!(events.as_array().unwrap().last(), Some(&json!(true)), "{events}");

    // Bob writes, mentioning her: grey badges, and the totals leave them out, as the API's do.
    let totals = laptop.js(TOTALS, vec![]).await;
    say_as(&bob_token, &thread, json!({ "text": format!("anyone there? {run}") }));
    say_as(&bob_token, &thread, json!({ "text": format!("@alice? {run}"), "mentions": [alice_id] }));
    for page in [&laptop, &phone] {
        page.until("two unread, grey", ENTRY, vec![json!(thread)], |v| {
            v["unread"] == 2
                && v["badge"] == "2"
                && v["grey"] == true
                && v["mention"] == true
                && v["mentionGrey"] == true
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, server) = api("GET", "/api/unread_count/", &alice_token, None);
    for page in [&laptop, &phone] {
        let now = page.js(TOTALS, vec![]).await;
        assert_eq!((&now["unread"], &now["mentions"]), (&totals["unread"], &totals["mentions"]), "unchanged");
        assert_eq!(
            (&now["unread"], &now["mentions"]),
            (&server["unread_count"], &server["mentions"]),
            "as the API"
        );
    }
    laptop.shot("muted-badge").await;
    phone.shot("muted-badge").await;

    // On the phone a long press on the chat opens its options: Unmute says until when.
    phone.long_press_chat(&thread).await;
    let menu = phone.menu_open().await;
    assert_eq!((menu["mute"].as_bool(), menu["unmute"].as_bool()), (Some(false), Some(true)), "{menu}");
    assert!(menu["until"].as_str().unwrap().starts_with("Muted until "), "{menu}");
    assert!(on_screen(&menu), "{menu}");
    assert_eq!(
        phone.js("return [state.openId, document.getElementById('app-view').dataset.screen]", vec![]).await,
        json!([null, "list"]),
        "the long press opened no chat"
    );
    phone.shot("chat-menu").await;
    phone.click("#unmute-thread").await;
    // The laptop follows: blue badges, counted again.
    laptop
        .until("unmuted on the laptop", ENTRY, vec![json!(thread)], |v| {
            v["muted"] == false && v["mutedIcon"] == false && v["grey"] == false && v["unread"] == 2
        })
        .await;
    let want_unread = totals["unread"].as_u64().unwrap() + 2;
    let want_mentions = totals["mentions"].as_u64().unwrap() + 1;
    laptop
        .until("counted again", TOTALS, vec![], |v| {
            v["unread"] == want_unread && v["mentions"] == want_mentions
        })
        .await;
    assert_eq!(view_of(&alice_token, &thread)["muted"], false);

    // The open chat's "⋮": until she unmutes, said in the header and in the menu.
    laptop.open_thread(&thread).await;
    laptop.click("#thread-menu-button").await;
    laptop.menu_open().await;
    laptop.click("#mute-thread").await;
    laptop.click("#thread-menu .mute-for[data-for=\"always\"]").await;
    laptop
        .until("the header says muted", HEADER, vec![], |v| v["icon"] == true && v["muted"] == "Muted")
        .await;
    let view = view_of(&alice_token, &thread);
    assert_eq!((view["muted"].clone(), view["muted_until"].clone()), (json!(true), Value::Null), "{view}");
    laptop.click("#thread-menu-button").await;
    let menu = laptop.menu_open().await;
    assert_eq!(
        (menu["unmute"].as_bool(), menu["until"].as_str()),
        (Some(true), Some("Muted until you unmute"))
    );
    laptop.shot("muted-header").await;
    laptop.keys("#thread-menu #unmute-thread", ESCAPE).await;
    laptop.until("the menu closed", MENU, vec![], |v| v["open"] == false).await;
    phone.until("the phone follows", ENTRY, vec![json!(thread)], |v| v["muted"] == true).await;

    // Muted for a few seconds from elsewhere: the header says until when, and then it ends by
    // itself (the server sends nothing then).
    let soon = laptop.js("return new Date(Date.now() + 4000).toISOString()", vec![]).await;
    set_view(&alice_token, &thread, json!({ "muted_until": soon }));
    laptop
        .until("muted until a time", HEADER, vec![], |v| {
            v["muted"].as_str().is_some_and(|m| m.starts_with("Muted until "))
        })
        .await;
    laptop
        .until("the mute over by itself", HEADER, vec![], |v| v["icon"] == false && v["muted"].is_null())
        .await;
    laptop.until("unmuted in the list", ENTRY, vec![json!(thread)], |v| v["muted"] == false).await;
    phone.until("and on the phone", ENTRY, vec![json!(thread)], |v| v["muted"] == false).await;
    // A group of this test's own: gone again, so that the admin panel's test finds the demo
    // thread first among bob's.
    let (status, _) = api("DELETE", &format!("/api/threads/{thread}/"), &alice_token, None);
    assert_eq!(status, 204);
}

/// Archiving as people do it: alice (at a laptop's size) archives a chat from its "⋮": it leaves
/// her list at once, with an Undo, and leaves her phone's live; "Archived" lists it, on both;
/// a new message brings it back to both lists, unless the chat is muted, when it stays
/// archived; and Unarchive from a long press in the phone's archived list brings it back.
#[tokio::test]
async fn archived_chats_leave_the_list_and_come_back() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = run_id();
    let laptop = Page::open("alice", Screen::Desktop).await;
    laptop.log_in("alice").await;
    let phone = Page::open("alice", Screen::Phone).await;
    phone.log_in("alice").await;
    let alice_token = laptop.token().await;
    let bob_token = log_in_api("bob");
    let thread = thread_with(&alice_token, &["bob", "admin"]);
    set_view(&alice_token, &thread, json!({ "muted": false, "archived": false }));
    for page in [&laptop, &phone] {
        page.until("the chat listed", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;
    }
    let archived_before = laptop.js(ENTRY, vec![json!(thread)]).await["archivedEntry"].as_u64().unwrap_or(0);

    laptop.open_thread(&thread).await;
    laptop.click("#thread-menu-button").await;
    laptop.menu_open().await;
    laptop.click("#archive-thread").await;
    let gone = laptop
        .until("the chat gone from the list", ENTRY, vec![json!(thread)], |v| v["listed"] == false)
        .await;
    assert_eq!(gone["archivedEntry"], json!(archived_before + 1), "Archived counts it: {gone}");
    assert_eq!(view_of(&alice_token, &thread)["archived"], true);
    assert_eq!(laptop.until("the toast", TOAST, vec![], Value::is_string).await, "Chat archived.");
    assert_eq!(laptop.js(HEADER, vec![]).await["archived"], true, "still open, labelled Archived");
    laptop.shot("archived").await;
    // Undo brings it back.
    laptop.click("#toast-action").await;
    laptop.until("back after Undo", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;
    assert_eq!(view_of(&alice_token, &thread)["archived"], false);
    laptop.click("#thread-menu-button").await;
    laptop.menu_open().await;
    laptop.click("#archive-thread").await;
    laptop.until("archived again", ENTRY, vec![json!(thread)], |v| v["listed"] == false).await;

    // The phone follows live, and lists it under Archived.
    phone
        .until("gone from the phone's list", ENTRY, vec![json!(thread)], |v| {
            v["listed"] == false && v["archivedEntry"] == json!(archived_before + 1)
        })
        .await;
    phone.shot("archived-entry").await;
    phone.click("#show-archived").await;
    let shown = phone.until("the archived list", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;
    assert_eq!(
        (shown["view"].as_str(), shown["archived"].as_bool()),
        (Some("archived"), Some(true)),
        "{shown}"
    );
    phone.shot("archived-list").await;
    laptop.click("#show-archived").await;
    laptop.until("the laptop's archived list", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;
    laptop.shot("archived-list").await;
    laptop.click("#archived-back").await;
    laptop.until("the chats again", ENTRY, vec![json!(thread)], |v| v["view"] == "main").await;

    // A new message brings it back, on both.
    let back = format!("are we still on for Friday? {run}");
    say_as(&bob_token, &thread, json!({ "text": back }));
    laptop
        .until("back in the laptop's list", ENTRY, vec![json!(thread)], |v| {
            v["listed"] == true && v["archived"] == false
        })
        .await;
    phone
        .until("gone from the phone's archived list", ENTRY, vec![json!(thread)], |v| {
            v["view"] == "archived" && v["listed"] == false
        })
        .await;
    assert_eq!(view_of(&alice_token, &thread)["archived"], false);
    phone.click("#archived-back").await;
    phone.until("back in the phone's list", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;

    // Archived and muted, a new message leaves it archived.
    laptop.click("#thread-menu-button").await;
    laptop.menu_open().await;
    laptop.click("#archive-thread").await;
    laptop.until("archived", ENTRY, vec![json!(thread)], |v| v["listed"] == false).await;
    laptop.click("#thread-menu-button").await;
    laptop.menu_open().await;
    laptop.click("#mute-thread").await;
    laptop.click("#thread-menu .mute-for[data-for=\"always\"]").await;
    laptop.until("muted", HEADER, vec![], |v| v["icon"] == true && v["archived"] == true).await;
    // Another chat open, so the next message stays unread.
    let other = thread_with(&alice_token, &["test_user"]);
    laptop.open_thread(&other).await;
    let quiet = format!("still archived {run}");
    say_as(&bob_token, &thread, json!({ "text": quiet }));
    phone.click("#show-archived").await;
    phone
        .until("still archived, one unread, grey", ENTRY, vec![json!(thread)], |v| {
            v["listed"] == true && v["unread"] == 1 && v["grey"] == true && v["mutedIcon"] == true
        })
        .await;
    let held = laptop.js(ENTRY, vec![json!(thread)]).await;
    assert_eq!(held["listed"], false, "not back in the laptop's list: {held}");
    let view = view_of(&alice_token, &thread);
    assert_eq!((view["archived"].clone(), view["muted"].clone()), (json!(true), json!(true)), "{view}");
    phone.shot("archived-muted").await;

    // Unarchive from a long press in the phone's archived list.
    phone.long_press_chat(&thread).await;
    let menu = phone.menu_open().await;
    assert_eq!((menu["archive"].as_bool(), menu["unarchive"].as_bool()), (Some(false), Some(true)), "{menu}");
    phone.click("#unarchive-thread").await;
    phone.until("out of the archive", ENTRY, vec![json!(thread)], |v| v["listed"] == false).await;
    phone.click("#archived-back").await;
    phone.until("in the phone's list", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;
    laptop.until("in the laptop's list", ENTRY, vec![json!(thread)], |v| v["listed"] == true).await;
    assert_eq!(view_of(&alice_token, &thread)["archived"], false);

    // On the phone the open chat's "⋮" unmutes it; its header said muted.
    phone.open_thread(&thread).await;
    assert_eq!(phone.js(HEADER, vec![]).await, json!({ "icon": true, "muted": "Muted", "archived": false }));
    phone.click("#thread-menu-button").await;
    let menu = phone.menu_open().await;
    assert!(on_screen(&menu), "{menu}");
    assert_eq!((menu["unmute"].as_bool(), menu["archive"].as_bool()), (Some(true), Some(true)), "{menu}");
    phone.shot("thread-menu").await;
    phone.click("#unmute-thread").await;
    phone.until("unmuted", HEADER, vec![], |v| v["icon"] == false && v["muted"].is_null()).await;
    laptop
        .until("the laptop follows", ENTRY, vec![json!(thread)], |v| {
            v["muted"] == false && v["mutedIcon"] == false
        })
        .await;
    assert_eq!(view_of(&alice_token, &thread)["muted"], false);
    // A group of this test's own: gone again, so that the admin panel's test finds the demo
    // thread first among bob's.
    let (status, _) = api("DELETE", &format!("/api/threads/{thread}/"), &alice_token, None);
    assert_eq!(status, 204);
}
