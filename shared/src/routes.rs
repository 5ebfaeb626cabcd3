//! The one route table: every path, the function that serves it and the handler behind each
//! method. Functions dispatch through it, the `Allow` header of a 405 comes from it, and the
//! test dispatcher picks functions with it. `template.yaml` and the `cargo lambda watch` router
//! in `Cargo.toml` are written for their tools; `tests/api/routes.rs` proves they send every
//! path of this table to the same function.

use lambda_http::Request;

use crate::ApiError;
use crate::http::segments;

/// A deployed HTTP function (its crate and binary name is [`Function::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `functions/token`.
    Token,
    /// `functions/threads`.
    Threads,
    /// `functions/messages`.
    Messages,
    /// `functions/unread_count`.
    UnreadCount,
    /// `functions/users`.
    Users,
    /// `functions/admin`.
    Admin,
    /// `functions/realtime` (also the WebSocket API's integration).
    Realtime,
}

impl Function {
    /// Every HTTP function.
    pub const ALL: [Function; 7] = [
        Self::Token,
        Self::Threads,
        Self::Messages,
        Self::UnreadCount,
        Self::Users,
        Self::Admin,
        Self::Realtime,
    ];

    /// The crate and binary name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Threads => "threads",
            Self::Messages => "messages",
            Self::UnreadCount => "unread_count",
            Self::Users => "users",
            Self::Admin => "admin",
            Self::Realtime => "realtime",
        }
    }
}

/// What one method of one path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    /// Log in: a token pair.
    ObtainToken,
    /// A new pair for a refresh token.
    RefreshToken,
    /// The caller's threads.
    ListThreads,
    /// A new thread (or the one with the same participants).
    CreateThread,
    /// One thread.
    ReadThread,
    /// Delete a thread (its owner).
    DeleteThread,
    /// Change the participants or the owner (its owner).
    UpdateThread,
    /// Leave a thread (a participant other than the owner).
    LeaveThread,
    /// A page of messages, marking them read.
    ListMessages,
    /// Send a message.
    SendMessage,
    /// The caller's unread count in one thread.
    ThreadUnreadCount,
    /// One message with its readers.
    ReadMessage,
    /// Change a message's text (its sender).
    EditMessage,
    /// Delete a message (its sender or the thread's owner).
    DeleteMessage,
    /// The caller's unread totals.
    UnreadCount,
    /// Search users by username prefix.
    SearchUsers,
    /// The caller's account.
    Me,
    /// A single-use ticket for the WebSocket handshake.
    RealtimeTicket,
    /// The admin panel's front page.
    AdminHome,
    /// The admin sign-in form.
    AdminLogin,
    /// Sign out of the admin panel.
    AdminLogout,
    /// Every thread.
    AdminThreads,
    /// One thread with its messages.
    AdminThread,
    /// Add a participant.
    AdminAddParticipant,
    /// Remove a participant.
    AdminRemoveParticipant,
    /// Delete a thread.
    AdminDeleteThread,
    /// Every user.
    AdminUsers,
    /// Create a user.
    AdminNewUser,
    /// One user.
    AdminUser,
    /// Change a user's active and staff flags.
    AdminUserFlags,
    /// Set a user's password.
    AdminUserPassword,
}

/// One path: its segments (`{name}` matches any one segment), its function and its methods.
#[derive(Debug)]
pub struct Route {
    /// The path under `/`, as in `/api/threads/{thread}/`; `/api/v1/` paths route like `/api/`.
    pub path: &'static str,
    /// The function API Gateway sends it to.
    pub function: Function,
    /// Each method the path answers and what it does.
    pub methods: &'static [(&'static str, Handler)],
}

use Function as F;
use Handler as H;

/// Every route of the API and the admin panel.
pub static ROUTES: &[Route] = &[
    Route { path: "/api/token/", function: F::Token, methods: &[("POST", H::ObtainToken)] },
    Route { path: "/api/token/refresh/", function: F::Token, methods: &[("POST", H::RefreshToken)] },
    Route {
        path: "/api/threads/",
        function: F::Threads,
        methods: &[("GET", H::ListThreads), ("POST", H::CreateThread)],
    },
    Route {
        path: "/api/threads/{thread}/",
        function: F::Threads,
        methods: &[
            ("GET", H::ReadThread),
            ("PUT", H::UpdateThread),
            ("PATCH", H::UpdateThread),
            ("DELETE", H::DeleteThread),
        ],
    },
    Route {
        path: "/api/threads/{thread}/leave/",
        function: F::Threads,
        methods: &[("POST", H::LeaveThread)],
    },
    Route {
        path: "/api/threads/{thread}/messages/",
        function: F::Messages,
        methods: &[("GET", H::ListMessages), ("POST", H::SendMessage)],
    },
    Route {
        path: "/api/threads/{thread}/messages/unread_count/",
        function: F::Messages,
        methods: &[("GET", H::ThreadUnreadCount)],
    },
    Route {
        path: "/api/threads/{thread}/messages/{message}/",
        function: F::Messages,
        methods: &[
            ("GET", H::ReadMessage),
            ("PUT", H::EditMessage),
            ("PATCH", H::EditMessage),
            ("DELETE", H::DeleteMessage),
        ],
    },
    Route { path: "/api/unread_count/", function: F::UnreadCount, methods: &[("GET", H::UnreadCount)] },
    Route { path: "/api/users/", function: F::Users, methods: &[("GET", H::SearchUsers)] },
    Route { path: "/api/users/me/", function: F::Users, methods: &[("GET", H::Me)] },
    Route { path: "/api/realtime/ticket/", function: F::Realtime, methods: &[("POST", H::RealtimeTicket)] },
    Route { path: "/admin/", function: F::Admin, methods: &[("GET", H::AdminHome), ("POST", H::AdminHome)] },
    Route {
        path: "/admin/login/",
        function: F::Admin,
        methods: &[("GET", H::AdminLogin), ("POST", H::AdminLogin)],
    },
    Route { path: "/admin/logout/", function: F::Admin, methods: &[("POST", H::AdminLogout)] },
    Route { path: "/admin/threads/", function: F::Admin, methods: &[("GET", H::AdminThreads)] },
    Route { path: "/admin/threads/{thread}/", function: F::Admin, methods: &[("GET", H::AdminThread)] },
    Route {
        path: "/admin/threads/{thread}/participants/add/",
        function: F::Admin,
        methods: &[("POST", H::AdminAddParticipant)],
    },
    Route {
        path: "/admin/threads/{thread}/participants/remove/",
        function: F::Admin,
        methods: &[("POST", H::AdminRemoveParticipant)],
    },
    Route {
        path: "/admin/threads/{thread}/delete/",
        function: F::Admin,
        methods: &[("POST", H::AdminDeleteThread)],
    },
    Route { path: "/admin/users/", function: F::Admin, methods: &[("GET", H::AdminUsers)] },
    Route {
        path: "/admin/users/new/",
        function: F::Admin,
        methods: &[("GET", H::AdminNewUser), ("POST", H::AdminNewUser)],
    },
    Route { path: "/admin/users/{user}/", function: F::Admin, methods: &[("GET", H::AdminUser)] },
    Route { path: "/admin/users/{user}/flags/", function: F::Admin, methods: &[("POST", H::AdminUserFlags)] },
    Route {
        path: "/admin/users/{user}/password/",
        function: F::Admin,
        methods: &[("POST", H::AdminUserPassword)],
    },
];

/// A path that matched a route, with its `{name}` segments.
#[derive(Debug)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'static Route,
    params: Vec<(&'static str, &'a str)>,
}

impl<'a> Matched<'a> {
    /// The segment that stood for `{name}`; routes name their segments, so a missing one is a
    /// bug in the caller.
    pub fn param(&self, name: &str) -> &'a str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("route {} has no {{{name}}}", self.route.path))
    }

    /// The handler for `method`, if the route answers it.
    pub fn handler(&self, method: &str) -> Option<Handler> {
        self.route.methods.iter().find(|(m, _)| *m == method).map(|(_, h)| *h)
    }
}

impl Route {
    /// The `Allow` header value: every method the path answers.
    pub fn allow(&self) -> String {
        let mut methods: Vec<&str> = self.methods.iter().map(|(m, _)| *m).collect();
        methods.dedup();
        methods.join(", ")
    }

    fn pattern(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    fn matches<'a>(&'static self, path: &[&'a str]) -> Option<Matched<'a>> {
        let pattern: Vec<&'static str> = self.pattern().collect();
        if pattern.len() != path.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, s) in pattern.iter().zip(path) {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => params.push((name, *s)),
                None if p == s => {}
                None => return None,
            }
        }
        Some(Matched { route: self, params })
    }

    /// How many segments are literal: a literal segment beats `{name}` where both match.
    fn literals(&self) -> usize {
        self.pattern().filter(|p| !p.starts_with('{')).count()
    }
}

/// The route for a path given as segments (see [`crate::http::segments`]).
pub fn find<'a>(segments: &[&'a str]) -> Option<Matched<'a>> {
    ROUTES.iter().filter_map(|r| r.matches(segments)).max_by_key(|m| m.route.literals())
}

/// The route and handler for a request: 404 for a path no route has, 405 (with the route's
/// `Allow`) for a method it does not answer.
pub fn resolve(req: &Request) -> Result<(Handler, Matched<'_>), ApiError> {
    let matched = find(&segments(req)).ok_or(ApiError::NotFound)?;
    match matched.handler(req.method().as_str()) {
        Some(handler) => Ok((handler, matched)),
        None => {
            Err(ApiError::MethodNotAllowed { method: req.method().to_string(), allow: matched.route.allow() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_names() {
        let m = find(&["api", "threads", "t1", "messages", "unread_count"]).unwrap();
        assert_eq!(m.handler("GET"), Some(Handler::ThreadUnreadCount));
        let m = find(&["api", "threads", "t1", "messages", "t1.4"]).unwrap();
        assert_eq!(m.handler("GET"), Some(Handler::ReadMessage));
        assert_eq!(m.param("message"), "t1.4");
        assert_eq!(m.param("thread"), "t1");
        assert!(find(&["admin", "users", "new"]).unwrap().handler("POST") == Some(Handler::AdminNewUser));
    }

    #[test]
    fn unknown_paths_find_nothing() {
        assert!(find(&["api", "threads", "t1", "nothing"]).is_none());
        assert!(find(&["api"]).is_none());
        assert!(find(&[]).is_none());
    }

    #[test]
    fn allow_lists_each_method_once() {
        let m = find(&["admin"]).unwrap();
        assert_eq!(m.route.allow(), "GET, POST");
        assert_eq!(find(&["api", "threads", "x"]).unwrap().route.allow(), "GET, PUT, PATCH, DELETE");
    }

    #[test]
    fn no_two_routes_are_the_same_path() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                let shape = |r: &Route| {
                    r.pattern().map(|p| if p.starts_with('{') { "{}" } else { p }).collect::<Vec<_>>()
                };
                assert_ne!(shape(a), shape(b), "{} and {}", a.path, b.path);
            }
        }
    }
}
