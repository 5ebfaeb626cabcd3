//! The reference web client (`web/`, served by `devstack web` on an origin of its own, so every
//! call goes through the API's CORS) in two browsers at once: alice talks, bob watches his
//! thread list and then the thread, and each sees the other's doings live, without a reload.
//! Every check polls the page for the changed content, so a page that never updates fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::{SERIAL, chromium, screenshots};

/// How long a live change may take to show.
const PATIENCE: Duration = Duration::from_secs(10);

struct Page {
    browser: Client,
    who: &'static str,
    shots: PathBuf,
}

impl Page {
    async fn open(who: &'static str) -> Self {
        let url = std::env::var("WEB_CLIENT_URL").expect("WEB_CLIENT_URL (run `make test`)");
        let page = Self { browser: chromium().await, who, shots: screenshots() };
        page.browser.goto(&url).await.unwrap();
        page
    }

    async fn shot(&self, moment: &str) {
        let png = self.browser.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("web-{}-{moment}.png", self.who)), png).unwrap();
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
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.js(script, args.clone()).await;
            if done(&seen) {
                return seen;
            }
            if Instant::now() > deadline {
                self.shot(&format!("failed-{}", what.replace(' ', "-"))).await;
                panic!("{}'s page: {what} did not happen within {PATIENCE:?}; last seen: {seen}", self.who);
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
                panic!("{}'s page: cannot click {css}: {error}", self.who);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.browser.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
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
}

/// A thread's entry in the list: its unread count, badge and last message.
const THREAD_ENTRY: &str = "
    const li = document.querySelector(`[data-thread-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    const badge = li.querySelector('.badge');
    return { unread: Number(li.dataset.unread), badge: badge.textContent, shown: !badge.hidden,
             preview: li.querySelector('.preview').textContent };";

/// A message of the open thread: its text, whether it is marked edited, its read receipt.
const MESSAGE: &str = "
    const li = document.querySelector(`#messages [data-message-id=\"${arguments[0]}\"]`);
    if (!li) return null;
    const receipt = li.querySelector('.receipt');
    return { text: li.querySelector('.text') ? li.querySelector('.text').textContent : null,
             edited: !!li.querySelector('.edited'),
             receipt: receipt.hidden ? null : receipt.textContent };";

/// The id of the open thread's message with this text.
const FIND_TEXT: &str = "
    const m = [...document.querySelectorAll('#messages .message')]
        .find(li => li.querySelector('.text') && li.querySelector('.text').textContent === arguments[0]);
    return m ? m.dataset.messageId : null";

const LIVE: &str = "return document.getElementById('live').dataset.state";

const TOTAL: &str = "return Number(document.getElementById('total-unread').dataset.unread)";

const TYPING: &str = "const t = document.getElementById('typing'); return t.hidden ? null : t.textContent";

/// The API with a token from a page's session (no extra login).
fn api(method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let base = std::env::var("E2E_BASE_URL").expect("E2E_BASE_URL (run `make test`)");
    let url = format!("{base}{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let auth = format!("Bearer {token}");
    let mut response = match (method, body) {
        ("POST", b) => agent.post(&url).header("Authorization", &auth).send_json(b.unwrap_or(json!({}))),
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

#[tokio::test]
async fn two_users_talk_live_in_the_web_client() {
    let _one_at_a_time = SERIAL.lock().await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

    let alice = Page::open("alice").await;
    alice.log_in("alice").await;
    alice.shot("threads").await;

    // The demo thread of alice, test_user and bob (found, or made again if the admin test has
    // deleted it), through the API with alice's session from the page.
    let token = alice.js("return sessionStorage.getItem('access')", vec![]).await;
    let token = token.as_str().expect("the page keeps its access token in sessionStorage");
    let participants = json!([user_id(token, "test_user"), user_id(token, "bob")]);
    let (status, shared) = api("POST", "/api/threads/", token, Some(json!({ "participants": participants })));
    assert!(status == 200 || status == 201, "{status} {shared}");
    let thread = shared["id"].as_str().unwrap().to_owned();

    let bob = Page::open("bob").await;
    bob.log_in("bob").await;
    let before =
        bob.until("the shared thread listed", THREAD_ENTRY, vec![json!(thread)], |v| !v.is_null()).await;
    let unread_before = before["unread"].as_u64().unwrap();
    assert_eq!(before["badge"], unread_before.to_string());
    assert_eq!(before["shown"], unread_before > 0, "the badge shows only when something is unread");
    let total_before = bob.js(TOTAL, vec![]).await.as_u64().unwrap();

    // Alice opens the thread and sends.
    alice.click(&format!("[data-thread-id=\"{thread}\"] button.open")).await;
    alice
        .until("the thread opened", "return document.getElementById('thread-view').hidden", vec![], |v| {
            v == &json!(false)
        })
        .await;
    let text = format!("hello from the web client <b>{run}</b> & co");
    alice.type_into("#text", &text).await;
    alice.click("#composer button[type=submit]").await;
    let sent = alice.until("the sent message listed", FIND_TEXT, vec![json!(text)], Value::is_string).await;
    let message = sent.as_str().unwrap().to_owned();
    assert_eq!(
        alice.js("return document.getElementById('text').value", vec![]).await,
        "",
        "the box is cleared"
    );
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
    bob.shot("badge").await;

    // Bob opens the thread and sees the message; that reads it, so his badge goes.
    bob.click(&format!("[data-thread-id=\"{thread}\"] button.open")).await;
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
    alice.click(&format!("[data-message-id=\"{message}\"] button.edit")).await;
    alice.type_into(&format!("[data-message-id=\"{message}\"] .edit-text"), &edited).await;
    alice.click(&format!("[data-message-id=\"{message}\"] button.save")).await;
    alice.until("her edit shown", MESSAGE, vec![json!(message)], |v| v["text"] == edited).await;
    bob.until("alice's edit", MESSAGE, vec![json!(message)], |v| v["text"] == edited && v["edited"] == true)
        .await;
    bob.shot("edited").await;

    // Alice deletes it: gone from bob's page, and from his thread list's preview.
    alice.click(&format!("[data-message-id=\"{message}\"] button.delete")).await;
    alice.until("her message gone", MESSAGE, vec![json!(message)], Value::is_null).await;
    bob.until("alice's message gone", MESSAGE, vec![json!(message)], Value::is_null).await;
    bob.until("the preview no longer the deleted message", THREAD_ENTRY, vec![json!(thread)], |v| {
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
    alice.type_into("#text", &missed).await;
    alice.click("#composer button[type=submit]").await;
    let missed_id =
        alice.until("the second message listed", FIND_TEXT, vec![json!(missed)], Value::is_string).await;
    let missed_id = missed_id.as_str().unwrap().to_owned();
    let fixed = format!("edited while bob was away {run}");
    alice.click(&format!("[data-message-id=\"{missed_id}\"] button.edit")).await;
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
    alice.click(&format!("[data-message-id=\"{missed_id}\"] button.delete")).await;
    bob.until("the second message gone", FIND_TEXT, vec![json!(missed)], Value::is_null).await;

    alice.browser.close().await.unwrap();
    bob.browser.close().await.unwrap();
}
