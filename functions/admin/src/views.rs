//! The panel's pages: plain HTML and CSS that work on a phone, no JavaScript.

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, html};
use shared::domain::ids::UserId;
use shared::domain::model::{Message, Thread, User};
use shared::domain::timestamp::Timestamp;

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;background:#f5f6f8}
header{background:#1f3a5f;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto;display:flex;gap:.6rem;align-items:center}
main{max-width:960px;margin:0 auto;padding:1rem}h1{font-size:1.4rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:1rem;margin-bottom:1rem;overflow-x:auto}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #eceef2;vertical-align:top}
th{font-size:.85rem;color:#566;text-transform:uppercase;letter-spacing:.03em}
label{display:block;font-weight:600;margin:.4rem 0 .2rem}input[type=text],input[type=password],input[type=search]{width:100%;max-width:24rem;padding:.5rem;border:1px solid #b8c0cc;border-radius:6px;font:inherit}
button,.button{display:inline-block;padding:.45rem .9rem;border:0;border-radius:6px;background:#1f6feb;color:#fff;font:inherit;cursor:pointer;text-decoration:none}
button.danger{background:#c62828}button.plain{background:#e8ebf0;color:#1d2433}form.inline{display:inline}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}.notice{background:#e7f5ea;border:1px solid #9fd3ab;padding:.6rem;border-radius:6px}
.error{background:#fdecea;border:1px solid #f5a8a0;padding:.6rem;border-radius:6px}.muted{color:#667}.pager{display:flex;gap:1rem;margin-top:.8rem}
.msg{border-bottom:1px solid #eceef2;padding:.5rem 0}.msg:last-child{border:0}.msg .meta{font-size:.85rem;color:#667}
.check{display:flex;gap:.4rem;align-items:center;font-weight:400}code{font-size:.85rem;word-break:break-all}
@media (max-width:640px){table.list thead{display:none}table.list tr{display:block;border-bottom:1px solid #eceef2;padding:.5rem 0}
table.list td{display:block;border:0;padding:.1rem 0}table.list td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:#566}
header .who{margin-left:0}}
"#;

/// The frame around every page.
pub fn layout(title: &str, staff: Option<&User>, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Messaging admin" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/admin/" { "Messaging admin" }
                    @if let Some(user) = staff {
                        a href="/admin/threads/" { "Threads" }
                        a href="/admin/users/" { "Users" }
                        span.who {
                            span { "Signed in as " strong { (user.username) } }
                            form.inline method="post" action="/admin/logout/" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.plain type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form.
pub fn login(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Log in" }
        div.card {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/admin/login/" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { "Log in" } }
            }
        }
    }
}

/// A timestamp for people: minutes in UTC, with the exact instant as a tooltip.
fn when(t: Timestamp) -> Markup {
    let exact = t.to_string();
    let short = format!("{} {} UTC", &exact[..10], &exact[11..16]);
    html! { time datetime=(exact) title=(exact) { (short) } }
}

fn names(ids: &[UserId], usernames: &HashMap<UserId, String>) -> String {
    ids.iter()
        .map(|id| usernames.get(id).cloned().unwrap_or_else(|| format!("#{id}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pager(previous: Option<&str>, next: Option<&str>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if let Some(p) = previous { a href=(p) { "← Newer" } }
            @if let Some(n) = next { a href=(n) { "Older →" } }
        }
    }
}

/// The thread list, newest activity first, with search by participant username.
pub fn threads(
    rows: &[Thread],
    usernames: &HashMap<UserId, String>,
    query: &str,
    notice: Option<&str>,
    previous: Option<&str>,
    next: Option<&str>,
) -> Markup {
    html! {
        h1 { "Threads" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        form.card.row method="get" action="/admin/threads/" role="search" {
            div {
                label for="q" { "Participant username" }
                input #q type="search" name="q" value=(query) placeholder="e.g. alice";
            }
            button type="submit" { "Search" }
            @if !query.is_empty() { a.button.plain href="/admin/threads/" { "Clear" } }
        }
        div.card {
            @if rows.is_empty() {
                p.muted { "No threads." }
            } @else {
                table.list {
                    thead { tr { th { "Participants" } th { "Updated" } th { "Created" } th { "Messages" } th { "Id" } } }
                    tbody {
                        @for t in rows {
                            tr {
                                td { a href={ "/admin/threads/" (t.id) "/" } { (names(&t.participants, usernames)) } }
                                td data-label="Updated" { (when(t.updated)) }
                                td data-label="Created" { (when(t.created)) }
                                td data-label="Messages" { (t.live_count()) }
                                td data-label="Id" { code { (t.id) } }
                            }
                        }
                    }
                }
            }
            (pager(previous, next))
        }
    }
}

/// One thread: participants (add, remove), messages (read-only, newest first), delete.
pub fn thread(
    t: &Thread,
    usernames: &HashMap<UserId, String>,
    messages: &[Message],
    csrf: &str,
    notice: Option<&str>,
    previous: Option<&str>,
    next: Option<&str>,
) -> Markup {
    let name = |id: &UserId| usernames.get(id).cloned().unwrap_or_else(|| format!("#{id}"));
    html! {
        h1 { "Thread " (t.id) }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div.card {
            p { "Owner: " strong { (name(&t.owner)) } " · created " (when(t.created)) " · updated " (when(t.updated)) " · " (t.live_count()) " messages" }
            h2 { "Participants" }
            table {
                thead { tr { th { "Username" } th { "Id" } th { span.muted { "Action" } } } }
                tbody {
                    @for p in &t.participants {
                        tr {
                            td { a href={ "/admin/users/" (p) "/" } { (name(p)) } }
                            td.muted { code { (p) } }
                            td {
                                @if p == &t.owner {
                                    span.muted { "owner" }
                                } @else {
                                    form.inline method="post" action={ "/admin/threads/" (t.id) "/participants/remove/" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="user" value=(p);
                                        button.plain type="submit" aria-label={ "Remove " (name(p)) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.row method="post" action={ "/admin/threads/" (t.id) "/participants/add/" } {
                input type="hidden" name="csrf" value=(csrf);
                div {
                    label for="add-username" { "Add participant (username)" }
                    input #add-username type="text" name="username" required;
                }
                button type="submit" { "Add" }
            }
        }
        div.card {
            h2 { "Messages" }
            @if messages.is_empty() { p.muted { "No messages." } }
            @for m in messages {
                div.msg {
                    div.meta { strong { (name(&m.sender)) } " · " (when(m.created)) " · " (m.id) }
                    div { (m.text) }
                }
            }
            (pager(previous, next))
        }
        div.card {
            h2 { "Delete" }
            p { "Deleting removes the thread and its messages for every participant." }
            form method="post" action={ "/admin/threads/" (t.id) "/delete/" } {
                input type="hidden" name="csrf" value=(csrf);
                button.danger type="submit" { "Delete thread" }
            }
        }
    }
}

/// The user list with search by username.
pub fn users(
    rows: &[User],
    query: &str,
    notice: Option<&str>,
    previous: Option<&str>,
    next: Option<&str>,
) -> Markup {
    html! {
        h1 { "Users" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div.row { a.button href="/admin/users/new/" { "Create user" } }
        form.card.row method="get" action="/admin/users/" role="search" style="margin-top:1rem" {
            div {
                label for="q" { "Username starts with" }
                input #q type="search" name="q" value=(query);
            }
            button type="submit" { "Search" }
        }
        div.card {
            @if rows.is_empty() { p.muted { "No users." } } @else {
                table.list {
                    thead { tr { th { "Username" } th { "Active" } th { "Staff" } th { "Joined" } } }
                    tbody {
                        @for u in rows {
                            tr {
                                td { a href={ "/admin/users/" (u.id) "/" } { (u.username) } }
                                td data-label="Active" { @if u.is_active { "yes" } @else { "no" } }
                                td data-label="Staff" { @if u.is_staff { "yes" } @else { "no" } }
                                td data-label="Joined" { (when(u.date_joined)) }
                            }
                        }
                    }
                }
            }
            (pager(previous, next))
        }
    }
}

/// One user: flags and password.
pub fn user(u: &User, csrf: &str, notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        h1 { "User " (u.username) }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        div.card {
            p { "Id " (u.id) " · joined " (when(u.date_joined)) }
            form method="post" action={ "/admin/users/" (u.id) "/flags/" } {
                input type="hidden" name="csrf" value=(csrf);
                label.check { input type="checkbox" name="is_active" value="on" checked[u.is_active]; "Active (can log in)" }
                label.check { input type="checkbox" name="is_staff" value="on" checked[u.is_staff]; "Staff (can use this panel)" }
                p { button type="submit" { "Save" } }
            }
        }
        div.card {
            h2 { "Set password" }
            form method="post" action={ "/admin/users/" (u.id) "/password/" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="password" { "New password" }
                input #password type="password" name="password" autocomplete="new-password" required;
                p { button type="submit" { "Set password" } }
            }
        }
    }
}

/// The create-user form.
pub fn new_user(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Create user" }
        div.card {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/admin/users/new/" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username) required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" required;
                label.check { input type="checkbox" name="is_staff" value="on"; "Staff" }
                p { button type="submit" { "Create" } }
            }
        }
    }
}
