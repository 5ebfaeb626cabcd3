//! The DRF list envelope and the page-size parameter.

use lambda_http::Request;
use serde::Serialize;

use crate::cursor::{Cursor, Direction};
use crate::http::{absolute_url, query_param};
use crate::{ApiError, App};

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

/// What a list request asks for: where to start and how many, in which list.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The cursor, absent for the first page.
    pub cursor: Option<Cursor>,
    /// How many items.
    pub limit: usize,
    /// Names the list (route, caller, filters) so a cursor only works where it was issued.
    scope: String,
    /// Query parameters that `next`/`previous` links carry over (filters such as `search`).
    keep: Vec<(&'static str, String)>,
}

impl PageRequest {
    /// True when the cursor asks for the items before it (a `previous` link): the list is
    /// read backwards from the cursor.
    pub fn backwards(&self) -> bool {
        self.cursor.as_ref().is_some_and(|c| c.direction == Direction::Previous)
    }

    /// Makes this page from up to `limit + 1` items fetched in reading order: the extra one only
    /// shows that more exist. Items come back in display order, with the sort keys of the ends.
    pub fn cut<T>(&self, mut items: Vec<T>, sort_key: impl Fn(&T) -> Option<String>) -> Slice<T> {
        let backwards = self.backwards();
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        if backwards {
            items.reverse();
        }
        let (has_next, has_previous) = match (&self.cursor, backwards) {
            (None, _) => (more, false),
            (Some(_), false) => (more, true),
            (Some(_), true) => (true, more),
        };
        Slice {
            first_key: items.first().and_then(&sort_key),
            last_key: items.last().and_then(&sort_key),
            has_next: has_next && !items.is_empty(),
            has_previous: has_previous && !items.is_empty(),
            items,
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
    let limit = match query_param(req, "limit")? {
        None => DEFAULT_LIMIT,
        Some(s) => s.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}."))
        })?,
    };
    let cursor = match query_param(req, "cursor")? {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(app.cursors.decode(&scope, &s)?),
    };
    Ok(PageRequest { cursor, limit, scope, keep })
}

/// One page as the store returns it: items in display order, with the sort keys at its ends
/// and whether more exist beyond each end.
#[derive(Debug)]
pub struct Slice<T> {
    /// Items, in display order.
    pub items: Vec<T>,
    /// Sort key of the first item.
    pub first_key: Option<String>,
    /// Sort key of the last item.
    pub last_key: Option<String>,
    /// More items exist after the last one.
    pub has_next: bool,
    /// More items exist before the first one.
    pub has_previous: bool,
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
    let link = |direction: Direction, key: &Option<String>, wanted: bool| {
        let key = key.as_ref().filter(|_| wanted)?;
        let cursor = Cursor { direction, key: key.clone() };
        let mut query: Vec<(&str, String)> = page.keep.clone();
        if page.limit != DEFAULT_LIMIT {
            query.push(("limit", page.limit.to_string()));
        }
        query.push(("cursor", app.cursors.encode(&page.scope, &cursor)));
        Some(absolute_url(req, &query))
    };
    Page {
        count,
        next: link(Direction::Next, &slice.last_key, slice.has_next),
        previous: link(Direction::Previous, &slice.first_key, slice.has_previous),
        results: slice.items.into_iter().map(map).collect(),
    }
}

impl<T> Slice<T> {
    /// A page with nothing on it.
    pub fn empty() -> Self {
        Slice { items: Vec::new(), first_key: None, last_key: None, has_next: false, has_previous: false }
    }

    /// Converts every item, keeping the page's ends and flags.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Slice<U> {
        match self.try_map(|t| Ok::<_, std::convert::Infallible>(f(t))) {
            Ok(slice) => slice,
        }
    }

    /// Converts every item fallibly, keeping the page's ends and flags.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Slice<U>, E> {
        Ok(Slice {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            first_key: self.first_key,
            last_key: self.last_key,
            has_next: self.has_next,
            has_previous: self.has_previous,
        })
    }
}
