//! One virtual user's HTTP client: sends a request, times it until the whole body is in, and
//! records the outcome under its [`Endpoint`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::Agent;
use ureq::http::Response;

use crate::stats::{Endpoint, Stats};

/// What came back: an HTTP answer of any status, or nothing usable (connection refused or cut,
/// timeout, TLS failure).
pub enum Reply {
    Http { status: u16, body: Vec<u8> },
    Transport,
}

impl Reply {
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Http { status, .. } => Some(*status),
            Reply::Transport => None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.status().is_some_and(|status| (200..300).contains(&status))
    }

    /// Worth retrying unchanged: the server was busy or failed, or never answered.
    pub fn is_transient(&self) -> bool {
        self.status().is_none_or(|status| status == 429 || status >= 500)
    }

    /// The body of a 2xx answer as `T`; `None` for any other answer or a body that does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        match self {
            Reply::Http { body, .. } if self.is_success() => serde_json::from_slice(body).ok(),
            _ => None,
        }
    }
}

pub struct Client<'a> {
    agent: Agent,
    base_url: &'a str,
    stats: Stats,
    /// Shared with the progress bar, which shows the run's request count while it goes.
    sent: &'a AtomicU64,
    notify: &'a Notify<'a>,
    /// Only the first transport failure is shown: the rest are usually the same, and counted.
    transport_error_shown: bool,
}

/// Shows a line to the person running the load (without breaking the progress bar).
pub type Notify<'a> = dyn Fn(&str) + Sync + 'a;

impl<'a> Client<'a> {
    /// `base_url` has no trailing slash; paths are appended to it as they are.
    pub fn new(base_url: &'a str, timeout: Duration, sent: &'a AtomicU64, notify: &'a Notify<'a>) -> Self {
        let agent = Agent::config_builder()
            // Statuses are data here: a 4xx/5xx must come back as a response to be recorded.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("loadgen/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent, base_url, stats: Stats::default(), sent, notify, transport_error_shown: false }
    }

    pub fn get(&mut self, endpoint: Endpoint, path: &str, query: &[(&str, &str)], access: &str) -> Reply {
        let mut request =
            self.agent.get(format!("{}{path}", self.base_url)).header("Authorization", bearer(access));
        for (key, value) in query {
            request = request.query(key, value);
        }
        let started = Instant::now();
        let result = request.call();
        self.finish(endpoint, started, result)
    }

    pub fn delete(&mut self, endpoint: Endpoint, path: &str, access: &str) -> Reply {
        let request =
            self.agent.delete(format!("{}{path}", self.base_url)).header("Authorization", bearer(access));
        let started = Instant::now();
        let result = request.call();
        self.finish(endpoint, started, result)
    }

    /// A JSON `POST`, with the access token when `access` is given.
    pub fn post(
        &mut self,
        endpoint: Endpoint,
        path: &str,
        access: Option<&str>,
        body: &impl Serialize,
    ) -> Reply {
        let mut request = self.agent.post(format!("{}{path}", self.base_url));
        if let Some(access) = access {
            request = request.header("Authorization", bearer(access));
        }
        let started = Instant::now();
        let result = request.send_json(body);
        self.finish(endpoint, started, result)
    }

    pub fn notify(&self, message: &str) {
        (self.notify)(message);
    }

    pub fn into_stats(self) -> Stats {
        self.stats
    }

    fn finish(
        &mut self,
        endpoint: Endpoint,
        started: Instant,
        result: Result<Response<ureq::Body>, ureq::Error>,
    ) -> Reply {
        // The clock stops once the body is read: a slow body is part of the latency a client sees.
        let reply = result.and_then(|mut response| {
            let status = response.status().as_u16();
            response.body_mut().read_to_vec().map(|body| (status, body))
        });
        let elapsed = started.elapsed();
        self.sent.fetch_add(1, Ordering::Relaxed);
        match reply {
            Ok((status, body)) => {
                self.stats.record(endpoint, status, elapsed);
                Reply::Http { status, body }
            }
            Err(error) => {
                if !self.transport_error_shown {
                    self.transport_error_shown = true;
                    (self.notify)(&format!("{}: {error}", endpoint.label()));
                }
                self.stats.record_transport_error(endpoint);
                Reply::Transport
            }
        }
    }
}

fn bearer(access: &str) -> String {
    format!("Bearer {access}")
}
