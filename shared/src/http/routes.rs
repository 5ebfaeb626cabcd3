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

/// What one method of one path does: a route of one function, so that each function matches
/// its own routes exhaustively and the compiler says when one is unhandled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    /// `functions/token`.
    Token(TokenRoute),
    /// `functions/threads`.
    Threads(ThreadsRoute),
    /// `functions/messages`.
    Messages(MessagesRoute),
    /// `functions/unread_count`.
    UnreadCount(UnreadCountRoute),
    /// `functions/users`.
    Users(UsersRoute),
    /// `functions/realtime`.
    Realtime(RealtimeRoute),
    /// `functions/admin`.
    Admin(AdminRoute),
}

impl Handler {
    /// The function that serves it.
    pub fn function(self) -> Function {
        match self {
            Self::Token(_) => Function::Token,
            Self::Threads(_) => Function::Threads,
            Self::Messages(_) => Function::Messages,
            Self::UnreadCount(_) => Function::UnreadCount,
            Self::Users(_) => Function::Users,
            Self::Realtime(_) => Function::Realtime,
            Self::Admin(_) => Function::Admin,
        }
    }
}

/// `functions/token`'s routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenRoute {
    /// Log in: a token pair.
    Obtain,
    /// A new pair for a refresh token.
    Refresh,
}

/// `functions/threads`' routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadsRoute {
    /// The caller's threads.
    List,
    /// A new thread (or the one with the same participants).
    Create,
    /// One thread.
    Read,
    /// Delete a thread (its owner).
    Delete,
    /// Change the participants or the owner (its owner).
    Update,
    /// Leave a thread (a participant other than the owner).
    Leave,
    /// The caller's own view of a thread (mute, archive).
    View,
    /// Change the caller's own view of a thread.
    ChangeView,
}

/// `functions/messages`' routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessagesRoute {
    /// A page of messages, marking them read.
    List,
    /// Send a message.
    Send,
    /// The caller's unread count in one thread.
    UnreadCount,
    /// One message with its readers.
    Read,
    /// Change a message's text (its sender).
    Edit,
    /// Delete a message (its sender or the thread's owner).
    Delete,
    /// Add the caller's reaction to a message.
    React,
    /// Take the caller's reaction away.
    Unreact,
}

/// `functions/unread_count`'s route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnreadCountRoute {
    /// The caller's unread totals.
    Totals,
}

/// `functions/users`' routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsersRoute {
    /// Search users by username prefix.
    Search,
    /// The caller's account.
    Me,
}

/// `functions/realtime`'s HTTP route (its WebSocket routes come from the WebSocket API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RealtimeRoute {
    /// A single-use ticket for the WebSocket handshake.
    Ticket,
}

/// `functions/admin`'s routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminRoute {
    /// The front page.
    Home,
    /// The sign-in form.
    Login,
    /// Sign out.
    Logout,
    /// Every thread.
    Threads,
    /// One thread with its messages.
    Thread,
    /// Add a participant.
    AddParticipant,
    /// Remove a participant.
    RemoveParticipant,
    /// Delete a thread.
    DeleteThread,
    /// Every user.
    Users,
    /// Create a user.
    NewUser,
    /// One user.
    User,
    /// Change a user's active and staff flags.
    UserFlags,
    /// Set a user's password.
    UserPassword,
}

/// A function's own routes, picked out of [`Handler`].
pub trait FunctionRoutes: Sized {
    /// This function's route, if the handler is one.
    fn pick(handler: Handler) -> Option<Self>;
}

macro_rules! function_routes {
    ($($route:ident => $variant:ident),* $(,)?) => {$(
        impl FunctionRoutes for $route {
            fn pick(handler: Handler) -> Option<Self> {
                match handler {
                    Handler::$variant(route) => Some(route),
                    _ => None,
                }
            }
        }
    )*};
}

function_routes!(
    TokenRoute => Token,
    ThreadsRoute => Threads,
    MessagesRoute => Messages,
    UnreadCountRoute => UnreadCount,
    UsersRoute => Users,
    RealtimeRoute => Realtime,
    AdminRoute => Admin,
);

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
    Route { path: "/api/token/", function: F::Token, methods: &[("POST", H::Token(TokenRoute::Obtain))] },
    Route {
        path: "/api/token/refresh/",
        function: F::Token,
        methods: &[("POST", H::Token(TokenRoute::Refresh))],
    },
    Route {
        path: "/api/threads/",
        function: F::Threads,
        methods: &[("GET", H::Threads(ThreadsRoute::List)), ("POST", H::Threads(ThreadsRoute::Create))],
    },
    Route {
        path: "/api/threads/{thread}/",
        function: F::Threads,
        methods: &[
            ("GET", H::Threads(ThreadsRoute::Read)),
            ("PUT", H::Threads(ThreadsRoute::Update)),
            ("PATCH", H::Threads(ThreadsRoute::Update)),
            ("DELETE", H::Threads(ThreadsRoute::Delete)),
        ],
    },
    Route {
        path: "/api/threads/{thread}/leave/",
        function: F::Threads,
        methods: &[("POST", H::Threads(ThreadsRoute::Leave))],
    },
    Route {
        path: "/api/threads/{thread}/me/",
        function: F::Threads,
        methods: &[("GET", H::Threads(ThreadsRoute::View)), ("PATCH", H::Threads(ThreadsRoute::ChangeView))],
    },
    Route {
        path: "/api/threads/{thread}/messages/",
        function: F::Messages,
        methods: &[("GET", H::Messages(MessagesRoute::List)), ("POST", H::Messages(MessagesRoute::Send))],
    },
    Route {
        path: "/api/threads/{thread}/messages/unread_count/",
        function: F::Messages,
        methods: &[("GET", H::Messages(MessagesRoute::UnreadCount))],
    },
    Route {
        path: "/api/threads/{thread}/messages/{message}/",
        function: F::Messages,
        methods: &[
            ("GET", H::Messages(MessagesRoute::Read)),
            ("PUT", H::Messages(MessagesRoute::Edit)),
            ("PATCH", H::Messages(MessagesRoute::Edit)),
            ("DELETE", H::Messages(MessagesRoute::Delete)),
        ],
    },
    Route {
        path: "/api/threads/{thread}/messages/{message}/reactions/{emoji}/",
        function: F::Messages,
        methods: &[
            ("PUT", H::Messages(MessagesRoute::React)),
            ("DELETE", H::Messages(MessagesRoute::Unreact)),
        ],
    },
    Route {
        path: "/api/unread_count/",
        function: F::UnreadCount,
        methods: &[("GET", H::UnreadCount(UnreadCountRoute::Totals))],
    },
    Route { path: "/api/users/", function: F::Users, methods: &[("GET", H::Users(UsersRoute::Search))] },
    Route { path: "/api/users/me/", function: F::Users, methods: &[("GET", H::Users(UsersRoute::Me))] },
    Route {
        path: "/api/realtime/ticket/",
        function: F::Realtime,
        methods: &[("POST", H::Realtime(RealtimeRoute::Ticket))],
    },
    Route {
        path: "/admin/",
        function: F::Admin,
        methods: &[("GET", H::Admin(AdminRoute::Home)), ("POST", H::Admin(AdminRoute::Home))],
    },
    Route {
        path: "/admin/login/",
        function: F::Admin,
        methods: &[("GET", H::Admin(AdminRoute::Login)), ("POST", H::Admin(AdminRoute::Login))],
    },
    Route { path: "/admin/logout/", function: F::Admin, methods: &[("POST", H::Admin(AdminRoute::Logout))] },
    Route { path: "/admin/threads/", function: F::Admin, methods: &[("GET", H::Admin(AdminRoute::Threads))] },
    Route {
        path: "/admin/threads/{thread}/",
        function: F::Admin,
        methods: &[("GET", H::Admin(AdminRoute::Thread))],
    },
    Route {
        path: "/admin/threads/{thread}/participants/add/",
        function: F::Admin,
        methods: &[("POST", H::Admin(AdminRoute::AddParticipant))],
    },
    Route {
        path: "/admin/threads/{thread}/participants/remove/",
        function: F::Admin,
        methods: &[("POST", H::Admin(AdminRoute::RemoveParticipant))],
    },
    Route {
        path: "/admin/threads/{thread}/delete/",
        function: F::Admin,
        methods: &[("POST", H::Admin(AdminRoute::DeleteThread))],
    },
    Route { path: "/admin/users/", function: F::Admin, methods: &[("GET", H::Admin(AdminRoute::Users))] },
    Route {
        path: "/admin/users/new/",
        function: F::Admin,
        methods: &[("GET", H::Admin(AdminRoute::NewUser)), ("POST", H::Admin(AdminRoute::NewUser))],
    },
    Route {
        path: "/admin/users/{user}/",
        function: F::Admin,
        methods: &[("GET", H::Admin(AdminRoute::User))],
    },
    Route {
        path: "/admin/users/{user}/flags/",
        function: F::Admin,
        methods: &[("POST", H::Admin(AdminRoute::UserFlags))],
    },
    Route {
        path: "/admin/users/{user}/password/",
        function: F::Admin,
        methods: &[("POST", H::Admin(AdminRoute::UserPassword))],
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

/// The route of function `R` for a request, with its `{name}` segments: 404 for a path no route
/// has (or another function's: API Gateway never sends it here), 405 (with the route's `Allow`)
/// for a method it does not answer.
pub fn resolve_for<R: FunctionRoutes>(req: &Request) -> Result<(R, Matched<'_>), ApiError> {
    let (handler, matched) = resolve(req)?;
    R::pick(handler).map(|route| (route, matched)).ok_or(ApiError::NotFound)
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
        assert_eq!(m.handler("GET"), Some(Handler::Messages(MessagesRoute::UnreadCount)));
        let m = find(&["api", "threads", "t1", "messages", "t1.4"]).unwrap();
        assert_eq!(m.handler("GET"), Some(Handler::Messages(MessagesRoute::Read)));
        assert_eq!(m.param("message"), "t1.4");
        assert_eq!(m.param("thread"), "t1");
        assert!(
            find(&["admin", "users", "new"]).unwrap().handler("POST")
                == Some(Handler::Admin(AdminRoute::NewUser))
        );
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
    fn every_method_of_a_route_is_its_functions() {
        for route in ROUTES {
            for (method, handler) in route.methods {
                assert_eq!(handler.function(), route.function, "{method} {}", route.path);
            }
        }
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
