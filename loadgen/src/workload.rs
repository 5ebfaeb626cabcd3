//! The chat workload a virtual user plays.
//!
//! Setup, once per account: `POST /api/token/`, `GET /api/users/me/`, one page (up to 100) of
//! `GET /api/users/?search=<prefix>` for partners, then 1–3 `POST /api/threads/` with 1–2
//! random partners each. Setup requests that fail transiently (no answer, 429, 5xx) are retried
//! every second until the deadline.
//!
//! Then, until the deadline, one action at a time, for a random one of the virtual user's
//! accounts, drawn from this mix (percent of actions):
//!
//! | action | % | request |
//! |---|---|---|
//! | poll the badge | 35 | `GET /api/unread_count/` |
//! | show the inbox | 13 | `GET /api/threads/` (threads others started are picked up from it) |
//! | open a thread | 20 | `GET /api/threads/{id}/messages/` |
//! | send a message | 20 | `POST /api/threads/{id}/messages/`; 10% carry a `client_id`, and a quarter of those are sent twice, as a client that lost the answer would |
//! | a thread's badge | 5 | `GET /api/threads/{id}/messages/unread_count/` |
//! | thread details | 5 | `GET /api/threads/{id}/` |
//! | refresh tokens | 2 | `POST /api/token/refresh/` (both tokens replaced: refresh tokens are single-use) |
//!
//! A thread action for an account without threads shows the inbox instead. Any 401 leads to a
//! new login; a 404 for a thread drops it from the account's list.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use fastrand::Rng;

use crate::api::{Credentials, HasId, NewMessage, NewThread, Page, RefreshRequest, Tokens};
use crate::client::{Client, Reply};
use crate::stats::Endpoint;

/// What every virtual user shares.
pub struct Settings {
    /// Without a trailing slash.
    pub base_url: String,
    /// Also the search prefix that finds the other load users.
    pub user_prefix: String,
    pub password: String,
    /// Pause between one account's actions.
    pub think: Duration,
    pub timeout: Duration,
    /// No action starts after this.
    pub deadline: Instant,
}

impl Settings {
    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    PollUnread,
    ListThreads,
    OpenThread,
    Send,
    ThreadUnread,
    ShowThread,
    Refresh,
}

/// Weights out of [`MIX_TOTAL`]; the table in the module documentation explains them.
const MIX: [(Action, u32); 7] = [
    (Action::PollUnread, 35),
    (Action::ListThreads, 13),
    (Action::OpenThread, 20),
    (Action::Send, 20),
    (Action::ThreadUnread, 5),
    (Action::ShowThread, 5),
    (Action::Refresh, 2),
];

const MIX_TOTAL: u32 = {
    let mut total = 0;
    let mut i = 0;
    while i < MIX.len() {
        total += MIX[i].1;
        i += 1;
    }
    total
};

impl Action {
    fn pick(rng: &mut Rng) -> Action {
        let mut roll = rng.u32(..MIX_TOTAL);
        for (action, weight) in MIX {
            if roll < weight {
                return action;
            }
            roll -= weight;
        }
        unreachable!("the roll is below the sum of the weights")
    }
}

const SENDS_WITH_CLIENT_ID: f32 = 0.10;
const CLIENT_ID_RETRIES: f32 = 0.25;
/// A client keeps its inbox's first page or so at hand, not every thread it ever saw.
const MAX_KNOWN_THREADS: usize = 20;
const PARTNER_PAGE_SIZE: &str = "100";
const SETUP_RETRY_PAUSE: Duration = Duration::from_secs(1);

const PHRASES: [&str; 8] = [
    "Hi there!",
    "Are we still on for tomorrow?",
    "Running a bit late, sorry!",
    "Sounds good to me.",
    "Can you send me the document?",
    "See you at ten, then.",
    "Thanks, that helps a lot.",
    "Let me check and get back to you.",
];

/// Plays the workload for `accounts` (taking turns at random) until the deadline, on the
/// virtual user's own client.
pub fn run(client: &mut Client, settings: &Settings, accounts: &[String], rng: &mut Rng) {
    let mut sessions = Vec::new();
    for username in accounts {
        match Session::start(client, settings, username, rng) {
            Ok(session) => sessions.push(session),
            Err(failure) => client.notify(&format!("{username}: {failure}; this account sits the run out")),
        }
    }
    while !sessions.is_empty() && Instant::now() < settings.deadline {
        let i = rng.usize(..sessions.len());
        sessions[i].act(client, settings, rng);
        if !settings.think.is_zero() {
            thread::sleep(settings.think.min(settings.time_left()));
        }
    }
}

/// A setup step that did not get the answer it needed.
struct StepFailed {
    endpoint: Endpoint,
    status: Option<u16>,
}

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} answered HTTP {status}", self.endpoint.label()),
            None => write!(f, "{} got no usable answer", self.endpoint.label()),
        }
    }
}

/// The body of a successful `reply` to `endpoint`, or why there is none.
fn expect<T: serde::de::DeserializeOwned>(endpoint: Endpoint, reply: &Reply) -> Result<T, StepFailed> {
    reply.json().ok_or(StepFailed { endpoint, status: reply.status() })
}

/// Sends until the answer is not a transient failure, or the deadline has passed.
fn settled(client: &mut Client, settings: &Settings, mut send: impl FnMut(&mut Client) -> Reply) -> Reply {
    loop {
        let reply = send(client);
        if !reply.is_transient() || settings.time_left().is_zero() {
            return reply;
        }
        thread::sleep(SETUP_RETRY_PAUSE.min(settings.time_left()));
    }
}

fn login(client: &mut Client, settings: &Settings, username: &str) -> Result<Tokens, StepFailed> {
    let credentials = Credentials { username, password: &settings.password };
    let reply =
        settled(client, settings, |client| client.post(Endpoint::Login, "/api/token/", None, &credentials));
    expect(Endpoint::Login, &reply)
}

/// One logged-in account.
struct Session {
    username: String,
    tokens: Tokens,
    threads: Vec<String>,
    messages_sent: u64,
    /// A `client_id` retry that does not answer 200 is worth one notice, not one per send.
    retry_notice_shown: bool,
}

impl Session {
    fn start(
        client: &mut Client,
        settings: &Settings,
        username: &str,
        rng: &mut Rng,
    ) -> Result<Session, StepFailed> {
        let tokens = login(client, settings, username)?;
        let reply = settled(client, settings, |client| {
            client.get(Endpoint::Me, "/api/users/me/", &[], &tokens.access)
        });
        let me: HasId = expect(Endpoint::Me, &reply)?;
        let mut session = Session {
            username: username.to_owned(),
            tokens,
            threads: Vec::new(),
            messages_sent: 0,
            retry_notice_shown: false,
        };
        // Without partners or threads the account still polls and lists, so these failures
        // are recorded but do not end the session.
        let partners = session.find_partners(client, settings, &me.id);
        session.start_threads(client, settings, &partners, rng);
        Ok(session)
    }

    fn find_partners(&self, client: &mut Client, settings: &Settings, my_id: &str) -> Vec<String> {
        let query = [("search", settings.user_prefix.as_str()), ("limit", PARTNER_PAGE_SIZE)];
        let reply = settled(client, settings, |client| {
            client.get(Endpoint::SearchUsers, "/api/users/", &query, &self.tokens.access)
        });
        let page: Page<HasId> = reply.json().unwrap_or(Page { results: Vec::new() });
        page.results.into_iter().map(|user| user.id).filter(|id| id != my_id).collect()
    }

    fn start_threads(
        &mut self,
        client: &mut Client,
        settings: &Settings,
        partners: &[String],
        rng: &mut Rng,
    ) {
        if partners.is_empty() {
            return;
        }
        for _ in 0..rng.usize(1..=3) {
            let mut chosen: Vec<&str> = partners.iter().map(String::as_str).collect();
            rng.shuffle(&mut chosen);
            chosen.truncate(rng.usize(1..=2));
            let body = NewThread { participants: chosen };
            let reply = settled(client, settings, |client| {
                client.post(Endpoint::CreateThread, "/api/threads/", Some(&self.tokens.access), &body)
            });
            // 200 (that participant set had a thread already) is as good as 201.
            if let Some(thread) = reply.json::<HasId>() {
                self.remember_thread(thread.id);
            }
        }
    }

    fn remember_thread(&mut self, id: String) {
        if !self.threads.contains(&id) && self.threads.len() < MAX_KNOWN_THREADS {
            self.threads.push(id);
        }
    }

    fn act(&mut self, client: &mut Client, settings: &Settings, rng: &mut Rng) {
        let action = Action::pick(rng);
        let reply = match (action, self.pick_thread(rng)) {
            (Action::PollUnread, _) => {
                client.get(Endpoint::UnreadTotals, "/api/unread_count/", &[], &self.tokens.access)
            }
            (Action::Refresh, _) => self.refresh(client),
            (Action::ListThreads, _) | (_, None) => self.list_threads(client),
            (Action::OpenThread, Some(thread)) => {
                let path = format!("/api/threads/{thread}/messages/");
                self.in_thread(thread, client.get(Endpoint::ListMessages, &path, &[], &self.tokens.access))
            }
            (Action::Send, Some(thread)) => {
                let reply = self.send(client, &thread, rng);
                self.in_thread(thread, reply)
            }
            (Action::ThreadUnread, Some(thread)) => {
                let path = format!("/api/threads/{thread}/messages/unread_count/");
                self.in_thread(thread, client.get(Endpoint::ThreadUnread, &path, &[], &self.tokens.access))
            }
            (Action::ShowThread, Some(thread)) => {
                let path = format!("/api/threads/{thread}/");
                self.in_thread(thread, client.get(Endpoint::ShowThread, &path, &[], &self.tokens.access))
            }
        };
        if reply.status() == Some(401) {
            match login(client, settings, &self.username) {
                Ok(tokens) => self.tokens = tokens,
                Err(failure) => client.notify(&format!("{}: logging in again: {failure}", self.username)),
            }
        }
    }

    fn pick_thread(&self, rng: &mut Rng) -> Option<String> {
        (!self.threads.is_empty()).then(|| self.threads[rng.usize(..self.threads.len())].clone())
    }

    /// Forgets `thread` if the answer says it is gone (or never was the account's).
    fn in_thread(&mut self, thread: String, reply: Reply) -> Reply {
        if reply.status() == Some(404) {
            self.threads.retain(|known| *known != thread);
        }
        reply
    }

    fn list_threads(&mut self, client: &mut Client) -> Reply {
        let reply = client.get(Endpoint::ListThreads, "/api/threads/", &[], &self.tokens.access);
        if let Some(page) = reply.json::<Page<HasId>>() {
            for thread in page.results {
                self.remember_thread(thread.id);
            }
        }
        reply
    }

    fn refresh(&mut self, client: &mut Client) -> Reply {
        let body = RefreshRequest { refresh: &self.tokens.refresh };
        let reply = client.post(Endpoint::Refresh, "/api/token/refresh/", None, &body);
        if let Some(tokens) = reply.json() {
            self.tokens = tokens;
        }
        reply
    }

    fn send(&mut self, client: &mut Client, thread: &str, rng: &mut Rng) -> Reply {
        self.messages_sent += 1;
        let phrase = PHRASES[rng.usize(..PHRASES.len())];
        let text = format!("{phrase} ({} #{})", self.username, self.messages_sent);
        let client_id =
            (rng.f32() < SENDS_WITH_CLIENT_ID).then(|| format!("{:016x}{:016x}", rng.u64(..), rng.u64(..)));
        let body = NewMessage { text: &text, client_id: client_id.as_deref() };
        let path = format!("/api/threads/{thread}/messages/");
        let reply = client.post(Endpoint::SendMessage, &path, Some(&self.tokens.access), &body);
        if client_id.is_none() || !reply.is_success() || rng.f32() >= CLIENT_ID_RETRIES {
            return reply;
        }
        let retry = client.post(Endpoint::SendMessage, &path, Some(&self.tokens.access), &body);
        if retry.status() != Some(200) && !self.retry_notice_shown {
            self.retry_notice_shown = true;
            let status =
                retry.status().map_or_else(|| "no answer".to_owned(), |status| format!("HTTP {status}"));
            client.notify(&format!(
                "{}: resending with the same client_id got {status}, not 200",
                self.username
            ));
        }
        retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_in_percent() {
        assert_eq!(MIX_TOTAL, 100);
    }

    #[test]
    fn pick_follows_the_weights() {
        let mut rng = Rng::with_seed(7);
        let draws = 100_000;
        let mut counts = [0u32; MIX.len()];
        for _ in 0..draws {
            let action = Action::pick(&mut rng);
            counts[MIX.iter().position(|(a, _)| *a == action).unwrap()] += 1;
        }
        for ((action, weight), count) in MIX.into_iter().zip(counts) {
            let share = f64::from(count) * 100.0 / f64::from(draws);
            assert!((share - f64::from(weight)).abs() < 1.0, "{action:?}: {share:.2}% for weight {weight}");
        }
    }
}
