//! The DRF list envelope, the page-size parameter and cursors: the HTTP side of the store's
//! keyset pages (`store::page`).

use lambda_http::Request;
use serde::Serialize;

use crate::http::cursor::{Cursor, Direction as CursorDirection};
use crate::http::{absolute_url, query_param};
pub use crate::store::page::{PageSpec, Slice};
use crate::{ApiError, App, store};

/// Page size when `?limit=` is absent.
pub const DEFAULT_LIMIT: usize = 10;
/// Largest `?limit=` accepted.
pub const MAX_LIMIT: usize = 100;

/// `{"count", "next", "previous", "results"}`, as DRF lists are.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// Total items in the list (not just this page).
    pub count: u64,
    /// URL of the following page, if any.
    pub next: Option<String>,
    /// URL of the preceding page, if any.
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
}

/// What a list request asks for: the store's page, in which list.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Where to start, which way and how many, as the store reads it.
    pub spec: PageSpec,
    /// Names the list (route, caller, filters) so a cursor only works where it was issued.
    scope: String,
    /// Query parameters that `next`/`previous` links carry over (filters such as `search`).
    keep: Vec<(&'static str, String)>,
}

impl PageRequest {
    /// The page the store reads.
    pub fn spec(&self) -> &PageSpec {
        &self.spec
    }

    /// True for the first page (no cursor): the newest items of a newest-first list.
    pub fn is_first(&self) -> bool {
        self.spec.after.is_none()
    }
}

/// Reads `?limit=`: 1 to [`MAX_LIMIT`], `default` when absent.
pub fn limit_param(req: &Request, default: usize) -> Result<usize, ApiError> {
    match query_param(req, "limit")? {
        None => Ok(default),
        Some(s) => {
            s.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}."))
            })
        }
    }
}

/// Reads `?limit=` and `?cursor=` for the list named by `scope`.
pub fn page_request(
    app: &App,
    req: &Request,
    scope: String,
    keep: Vec<(&'static str, String)>,
) -> Result<PageRequest, ApiError> {
    let limit = limit_param(req, DEFAULT_LIMIT)?;
    let cursor = match query_param(req, "cursor")? {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(app.cursors.decode(&scope, &s)?),
    };
    let spec = match cursor {
        None => PageSpec::first(limit),
        Some(Cursor { direction, key }) => {
            let direction = match direction {
                CursorDirection::Next => store::page::Direction::Forward,
                CursorDirection::Previous => store::page::Direction::Backward,
            };
            PageSpec { after: Some(key), direction, limit }
        }
    };
    Ok(PageRequest { spec, scope, keep })
}

/// Wraps a slice in the envelope, with `next`/`previous` links that keep the other query parameters.
pub fn envelope<T, U>(
    app: &App,
    req: &Request,
    page: &PageRequest,
    count: u64,
    slice: Slice<T>,
    map: impl FnMut(T) -> U,
) -> Page<U> {
    let link = |direction: CursorDirection, key: &Option<String>, wanted: bool| {
        let key = key.as_ref().filter(|_| wanted)?;
        let cursor = Cursor { direction, key: key.clone() };
        let mut query: Vec<(&str, String)> = page.keep.clone();
        if page.spec.limit != DEFAULT_LIMIT {
            query.push(("limit", page.spec.limit.to_string()));
        }
        query.push(("cursor", app.cursors.encode(&page.scope, &cursor)));
        Some(absolute_url(req, &query))
    };
    Page {
        count,
        next: link(CursorDirection::Next, &slice.last_key, slice.has_next),
        previous: link(CursorDirection::Previous, &slice.first_key, slice.has_previous),
        results: slice.items.into_iter().map(map).collect(),
    }
}
