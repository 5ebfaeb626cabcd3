//! The admin panel at `/admin/`: staff log in and manage threads and users.

mod session;
mod views;

use std::collections::HashMap;

use lambda_http::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use maud::Markup;
use shared::accounts::{self, AccountError, Login};
use shared::domain::ids::{ThreadId, UserId};
use shared::domain::model::{Thread, User, is_username_char};
use shared::domain::rules::{Actor, Refusal};
use shared::http::body::{self, Fields};
use shared::http::pagination::{envelope, page_request};
use shared::http::routes::{self, AdminRoute};
use shared::http::{HttpResponse, client_address, common_headers, query_param};
use shared::store::WriteError;
use shared::{ApiError, App};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    let (seed, new_seed_cookie) = session::csrf_seed(&req);
    let ctx = Ctx { csrf: session::csrf_token(app, &seed), cookies: new_seed_cookie.into_iter().collect() };
    match route(app, &req, ctx).await {
        Ok(response) => response,
        Err(e) => error_page(&e),
    }
}

/// Per-request page state: the CSRF token for forms and cookies to set.
struct Ctx {
    csrf: String,
    cookies: Vec<String>,
}

impl Ctx {
    fn page(self, status: StatusCode, title: &str, staff: Option<&User>, body: Markup) -> HttpResponse {
        let html = views::layout(title, staff, &self.csrf, body).into_string();
        let mut response = Response::new(Body::Text(html));
        *response.status_mut() = status;
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        self.finish(response)
    }

    fn redirect(self, location: &str) -> HttpResponse {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(value) = HeaderValue::from_str(location) {
            response.headers_mut().insert(LOCATION, value);
        }
        self.finish(response)
    }

    fn finish(self, mut response: HttpResponse) -> HttpResponse {
        let headers = response.headers_mut();
        common_headers(headers);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
        for cookie in self.cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.append(SET_COOKIE, value);
            }
        }
        response
    }
}

fn error_page(e: &ApiError) -> HttpResponse {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = ?e, "admin request failed");
    }
    let text = match e {
        ApiError::NotFound => "Not found.",
        ApiError::PermissionDenied => "Forbidden: CSRF verification failed. Request aborted.",
        ApiError::MethodNotAllowed { .. } => "Method not allowed.",
        ApiError::Unavailable(_) => "The service is busy; please retry shortly.",
        _ if status.is_server_error() => "A server error occurred.",
        _ => "Bad request.",
    };
    let ctx = Ctx { csrf: String::new(), cookies: Vec::new() };
    let mut page = ctx.page(
        status,
        text,
        None,
        maud::html! { h1 { (text) } p { a href="/admin/" { "Back to the panel" } } },
    );
    if let ApiError::MethodNotAllowed { allow, .. } = e
        && let Ok(value) = HeaderValue::from_str(allow)
    {
        page.headers_mut().insert(ALLOW, value);
    }
    page
}

async fn route(app: &App, req: &Request, ctx: Ctx) -> Result<HttpResponse, ApiError> {
    let (handler, matched) = routes::resolve_for::<AdminRoute>(req)?;
    let post = req.method() == Method::POST;
    let form = if post {
        let form = body::parse(req).await?;
        if !session::csrf_ok(app, req, form.text("csrf").as_deref()) {
            return Err(ApiError::PermissionDenied);
        }
        Some(form)
    } else {
        None
    };
    if handler == AdminRoute::Login {
        return login(app, req, ctx, form).await;
    }
    let Some(staff) = session::staff(app, req).await? else {
        return Ok(ctx.redirect("/admin/login/"));
    };
    let form = form.unwrap_or_default();
    let thread_id = || matched.param("thread").parse::<ThreadId>().map_err(|_| ApiError::NotFound);
    match handler {
        AdminRoute::Home => Ok(ctx.redirect("/admin/threads/")),
        AdminRoute::Logout => {
            // Clearing the cookie only ends it in this browser; a copy would live on.
            app.store.end_sessions(&staff.id).await?;
            let mut ctx = ctx;
            ctx.cookies.push(session::end());
            Ok(ctx.redirect("/admin/login/"))
        }
        AdminRoute::Threads => threads(app, req, ctx, &staff).await,
        AdminRoute::Thread => thread(app, req, ctx, &staff, &thread_id()?).await,
        AdminRoute::AddParticipant | AdminRoute::RemoveParticipant => {
            let add = handler == AdminRoute::AddParticipant;
            participants(app, ctx, &thread_id()?, add, &form).await
        }
        AdminRoute::DeleteThread => {
            app.store.delete_thread(&thread_id()?, &Actor::Staff).await?;
            Ok(ctx.redirect("/admin/threads/?done=deleted"))
        }
        AdminRoute::Users => users(app, req, ctx, &staff).await,
        AdminRoute::NewUser => new_user(app, ctx, &staff, post.then_some(&form)).await,
        AdminRoute::User | AdminRoute::UserFlags | AdminRoute::UserPassword => {
            let id: UserId = matched.param("user").parse().map_err(|_| ApiError::NotFound)?;
            let user = app.store.user(&id).await?.ok_or(ApiError::NotFound)?;
            match handler {
                AdminRoute::User => {
                    let notice = notice(req)?;
                    let error = query_param(req, "error")?.map(|_| "The password must be 1 to 1024 bytes.");
                    let body = views::user(&user, &ctx.csrf, notice, error);
                    Ok(ctx.page(StatusCode::OK, &user.username, Some(&staff), body))
                }
                AdminRoute::UserFlags => {
                    let on = |name: &str| form.text(name).is_some_and(|v| v == "on");
                    app.store.set_flags(&id, on("is_active"), on("is_staff")).await?;
                    Ok(ctx.redirect(&format!("/admin/users/{id}/?done=saved")))
                }
                _ => {
                    let password = form.text("password").unwrap_or_default();
                    match accounts::set_password(&app.store, &id, &password).await {
                        Ok(()) => Ok(ctx.redirect(&format!("/admin/users/{id}/?done=password"))),
                        Err(AccountError::Store(e)) => Err(e.into()),
                        Err(_) => Ok(ctx.redirect(&format!("/admin/users/{id}/?error=password"))),
                    }
                }
            }
        }
        // Answered before the session check above, which it does not need.
        AdminRoute::Login => login(app, req, ctx, post.then_some(form)).await,
    }
}

/// Fixed messages for `?done=`, so a link cannot put arbitrary text on the page.
fn notice(req: &Request) -> Result<Option<&'static str>, ApiError> {
    Ok(match query_param(req, "done")?.as_deref() {
        Some("deleted") => Some("The thread was deleted."),
        Some("added") => Some("The participant was added."),
        Some("removed") => Some("The participant was removed."),
        Some("saved") => Some("Saved."),
        Some("password") => Some("The password was changed; the user's refresh tokens are revoked."),
        Some("created") => Some("The user was created."),
        Some("no-user") => Some("No active user has that username."),
        Some("already-in") => Some("That user is already a participant."),
        Some("size") => Some("A thread needs 2 to 32 participants."),
        Some("owner") => Some("The owner cannot be removed."),
        _ => None,
    })
}

async fn login(app: &App, req: &Request, ctx: Ctx, form: Option<Fields>) -> Result<HttpResponse, ApiError> {
    let Some(form) = form else {
        let body = views::login(&ctx.csrf, "", None);
        return Ok(ctx.page(StatusCode::OK, "Log in", None, body));
    };
    let username = form.text("username").unwrap_or_default();
    let password = form.text("password").unwrap_or_default();
    let outcome =
        if username.is_empty() || password.is_empty() || password.len() > 1024 || username.len() > 600 {
            Login::Refused
        } else {
            accounts::log_in(&app.store, &username, &password, &client_address(req)).await?
        };
    match outcome {
        Login::Accepted(user) if user.is_staff => {
            // Users are never deleted; were one, its session would be refused on the first page.
            let session_version =
                app.store.user_with_session_version(&user.id).await?.map_or(0, |(_, version)| version);
            let mut ctx = ctx;
            ctx.cookies.retain(|c| !c.starts_with(&format!("{}=", session::CSRF_COOKIE)));
            ctx.cookies.push(session::new_csrf_seed().1);
            ctx.cookies.push(session::start(app, &user, session_version));
            tracing::info!(user = %user.id, "admin login");
            Ok(ctx.redirect("/admin/threads/"))
        }
        Login::Throttled(wait) => {
            let error = format!("Too many failed logins; try again in {wait} seconds.");
            let body = views::login(&ctx.csrf, &username, Some(&error));
            Ok(ctx.page(StatusCode::TOO_MANY_REQUESTS, "Log in", None, body))
        }
        _ => {
            let error = "Please enter the correct username and password for a staff account.";
            let body = views::login(&ctx.csrf, &username, Some(error));
            Ok(ctx.page(StatusCode::OK, "Log in", None, body))
        }
    }
}

async fn usernames_of(app: &App, threads: &[Thread]) -> Result<HashMap<UserId, String>, ApiError> {
    let mut ids: Vec<UserId> = threads.iter().flat_map(|t| t.participants.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    Ok(app.store.usernames(&ids).await?)
}

async fn threads(app: &App, req: &Request, ctx: Ctx, staff: &User) -> Result<HttpResponse, ApiError> {
    let query = query_param(req, "q")?.unwrap_or_default().trim().to_owned();
    let mut notice = notice(req)?;
    let keep = if query.is_empty() { vec![] } else { vec![("q", query.clone())] };
    let page = page_request(app, req, format!("admin-threads:{query}"), keep)?;
    let slice = if query.is_empty() {
        app.store.list_all_threads(page.spec()).await?
    } else {
        match app.store.user_by_username(&query).await? {
            Some(user) => app.store.list_threads(&user.id, page.spec(), false).await?.map(|m| m.thread),
            None => {
                notice = Some("No user has exactly that username.");
                shared::http::pagination::Slice::empty()
            }
        }
    };
    let list = envelope(app, req, &page, 0, slice, |t| t);
    let names = usernames_of(app, &list.results).await?;
    let body =
        views::threads(&list.results, &names, &query, notice, list.previous.as_deref(), list.next.as_deref());
    Ok(ctx.page(StatusCode::OK, "Threads", Some(staff), body))
}

async fn thread(
    app: &App,
    req: &Request,
    ctx: Ctx,
    staff: &User,
    id: &ThreadId,
) -> Result<HttpResponse, ApiError> {
    let t = app.store.thread(id).await?.ok_or(ApiError::NotFound)?;
    let page = page_request(app, req, format!("admin-messages:{id}"), vec![])?;
    let messages = envelope(app, req, &page, 0, app.store.list_messages(id, page.spec()).await?, |m| m);
    let names = usernames_of(app, std::slice::from_ref(&t)).await?;
    let body = views::thread(
        &t,
        &names,
        &messages.results,
        &ctx.csrf,
        notice(req)?,
        messages.previous.as_deref(),
        messages.next.as_deref(),
    );
    Ok(ctx.page(StatusCode::OK, &format!("Thread {id}"), Some(staff), body))
}

async fn participants(
    app: &App,
    ctx: Ctx,
    id: &ThreadId,
    add: bool,
    form: &Fields,
) -> Result<HttpResponse, ApiError> {
    let back = |code: &str| format!("/admin/threads/{id}/?done={code}");
    let user = if add {
        let username = form.text("username").unwrap_or_default();
        match app.store.user_by_username(username.trim()).await? {
            Some(u) if u.is_active => u.id,
            _ => return Ok(ctx.redirect(&back("no-user"))),
        }
    } else {
        form.text("user").and_then(|u| u.parse().ok()).ok_or(ApiError::NotFound)?
    };
    let result = if add {
        app.store.add_participant(id, &user).await
    } else {
        app.store.remove_participant(id, &user).await
    };
    let code = match result {
        Ok(()) if add => "added",
        Ok(()) => "removed",
        Err(WriteError::Refused(Refusal::AlreadyIn | Refusal::NotIn)) => "already-in",
        Err(WriteError::Refused(Refusal::OwnerLeftOut)) => "owner",
        Err(WriteError::Refused(Refusal::Size)) => "size",
        Err(e) => return Err(e.into()),
    };
    Ok(ctx.redirect(&back(code)))
}

async fn users(app: &App, req: &Request, ctx: Ctx, staff: &User) -> Result<HttpResponse, ApiError> {
    let query = query_param(req, "q")?.unwrap_or_default().trim().to_owned();
    let valid = query.chars().count() <= 150 && query.chars().all(is_username_char);
    let keep = if query.is_empty() { vec![] } else { vec![("q", query.clone())] };
    let page = page_request(app, req, format!("admin-users:{}", query.to_lowercase()), keep)?;
    let slice = if valid {
        app.store.search_users(&query, true, page.spec()).await?
    } else {
        shared::http::pagination::Slice::empty()
    };
    let list = envelope(app, req, &page, 0, slice, |u| u);
    let body =
        views::users(&list.results, &query, notice(req)?, list.previous.as_deref(), list.next.as_deref());
    Ok(ctx.page(StatusCode::OK, "Users", Some(staff), body))
}

async fn new_user(
    app: &App,
    ctx: Ctx,
    staff: &User,
    form: Option<&Fields>,
) -> Result<HttpResponse, ApiError> {
    let Some(form) = form else {
        let body = views::new_user(&ctx.csrf, "", None);
        return Ok(ctx.page(StatusCode::OK, "Create user", Some(staff), body));
    };
    let username = form.text("username").unwrap_or_default().trim().to_owned();
    let password = form.text("password").unwrap_or_default();
    let is_staff = form.text("is_staff").is_some_and(|v| v == "on");
    let error = match accounts::create_user(&app.store, &username, &password, is_staff).await {
        Ok(user) => return Ok(ctx.redirect(&format!("/admin/users/{}/?done=created", user.id))),
        Err(AccountError::Store(e)) => return Err(e.into()),
        Err(e) => e.to_string(),
    };
    let body = views::new_user(&ctx.csrf, &username, Some(&error));
    Ok(ctx.page(StatusCode::BAD_REQUEST, "Create user", Some(staff), body))
}
