//! The request and response bodies the workload uses, as far as it reads them (serde skips the
//! rest of each answer, so new fields on the server do not break the load generator).

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// An access/refresh pair. No `Debug`, so that tokens cannot end up in output by accident.
#[derive(Deserialize)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

#[derive(Serialize)]
pub struct RefreshRequest<'a> {
    pub refresh: &'a str,
}

/// Anything with an id: the current user, a user found by search, a thread.
#[derive(Deserialize)]
pub struct HasId {
    pub id: String,
}

/// DRF's list envelope; only the page itself matters here.
#[derive(Deserialize)]
pub struct Page<T> {
    pub results: Vec<T>,
}

#[derive(Serialize)]
pub struct NewThread<'a> {
    pub participants: Vec<&'a str>,
}

#[derive(Serialize)]
pub struct NewMessage<'a> {
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
}
