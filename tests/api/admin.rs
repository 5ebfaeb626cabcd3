//! The admin panel's rules and the store operations behind it, in-process.

use lambda_http::Body;
use lambda_http::http::Method;
use serde_json::Value;
use shared::domain::rules::Refusal;
use shared::store::WriteError;

use crate::helpers::{Reply, TestApp};

/// A browser: keeps the panel's cookies between requests.
struct Browser<'a> {
    t: &'a TestApp,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(t: &'a TestApp) -> Self {
        Self { t, cookies: Vec::new() }
    }

    async fn request(&mut self, method: Method, uri: &str, form: Option<&str>) -> Reply {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut builder =
            lambda_http::http::Request::builder().method(method).uri(uri).header("cookie", cookie);
        let body = match form {
            Some(f) => {
                builder = builder.header("content-type", "application/x-www-form-urlencoded");
                Body::Text(f.to_owned())
            }
            None => Body::Empty,
        };
        let reply = self.t.send(builder.body(body).unwrap()).await;
        for set in reply.headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        reply
    }

    async fn get(&mut self, uri: &str) -> Reply {
        self.request(Method::GET, uri, None).await
    }

    /// The CSRF token on the last page this browser loaded.
    fn csrf(page: &Reply) -> String {
        let html = page.body.as_str().unwrap();
        let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    }

    async fn post(&mut self, uri: &str, csrf: &str, form: &str) -> Reply {
        self.request(Method::POST, uri, Some(&format!("csrf={csrf}&{form}"))).await
    }

    async fn log_in(&mut self, username: &str, password: &str) -> Reply {
        let page = self.get("/admin/login/").await;
        let csrf = Self::csrf(&page);
        self.post("/admin/login/", &csrf, &format!("username={username}&password={password}")).await
    }
}

fn html(r: &Reply) -> &str {
    r.body.as_str().unwrap_or("")
}

#[tokio::test]
async fn only_active_staff_get_in_with_a_strict_cookie() {
    let t = TestApp::spawn().await;
    t.user_with("root", true, true).await;
    t.user("alice").await;
    let mut b = Browser::new(&t);
    let r = b.get("/admin/threads/").await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (303, "/admin/login/"));

    let r = b.log_in("alice", "pw-alice").await;
    assert_eq!(r.status, 200);
    assert!(html(&r).contains("correct username and password for a staff account"));
    assert!(!b.cookies.iter().any(|(k, _)| k == "admin_session"));

    let r = b.log_in("root", "pw-root").await;
    assert_eq!(r.status, 303);
    let set =
        r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let session = set.iter().find(|c| c.starts_with("admin_session=")).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin", "Max-Age=1800"] {
        assert!(session.contains(attribute), "{session}");
    }
    let page = b.get("/admin/threads/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["x-frame-options"], "DENY");

    // The session cookie is not an API token.
    let token = b.cookies.iter().find(|(k, _)| k == "admin_session").unwrap().1.clone();
    assert_eq!(t.call(Method::GET, "/api/unread_count/", Some(&token), None).await.status, 401);

    // Losing staff ends the session at once.
    let root = t.app.store.user_by_username("root").await.unwrap().unwrap();
    t.app.store.set_flags(&root.id, true, false).await.unwrap();
    assert_eq!(b.get("/admin/threads/").await.status, 303);
}

#[tokio::test]
async fn posts_without_the_csrf_token_change_nothing() {
    let t = TestApp::spawn().await;
    t.user_with("root", true, true).await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let mut b = Browser::new(&t);
    assert_eq!(b.log_in("root", "pw-root").await.status, 303);
    for form in ["", "csrf=", "csrf=forged"] {
        let r = b.request(Method::POST, &format!("/admin/threads/{id}/delete/"), Some(form)).await;
        assert_eq!(r.status, 403, "{form:?}");
    }
    // A token from another browser's cookie does not fit this browser's.
    let mut other = Browser::new(&t);
    let foreign = Browser::csrf(&other.get("/admin/login/").await);
    let r = b.post(&format!("/admin/threads/{id}/delete/"), &foreign, "").await;
    assert_eq!(r.status, 403);
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &alice).await.status, 200);

    let page = b.get(&format!("/admin/threads/{id}/")).await;
    let r = b.post(&format!("/admin/threads/{id}/delete/"), &Browser::csrf(&page), "").await;
    assert_eq!(r.status, 303);
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &alice).await.status, 404);
    assert_eq!(t.unread(&bob).await, (0, 0));
}

#[tokio::test]
async fn participants_change_for_everyone_with_exact_counts() {
    let t = TestApp::spawn().await;
    let (alice, bob, carol) = (t.user("alice").await, t.user("bob").await, t.user("carol").await);
    let id = t.thread(&alice, &[&bob]).await;
    t.say(&id, &alice, "one").await;
    t.say(&id, &alice, "two").await;
    let thread = id.parse().unwrap();
    let store = &t.app.store;

    store.add_participant(&thread, &carol.id).await.unwrap();
    let view = t.get(&format!("/api/threads/{id}/"), &bob).await.body;
    assert_eq!(view["participants"].as_array().unwrap().len(), 3);
    assert_eq!(t.thread_unread(&id, &carol).await, 0, "joiners start with history read");
    assert_eq!(t.unread(&carol).await, (0, 0));
    t.say(&id, &bob, "welcome").await;
    assert_eq!(t.thread_unread(&id, &carol).await, 1);

    assert!(matches!(
        store.add_participant(&thread, &carol.id).await,
        Err(WriteError::Refused(Refusal::AlreadyIn))
    ));
    assert!(matches!(
        store.remove_participant(&thread, &alice.id).await,
        Err(WriteError::Refused(Refusal::OwnerLeftOut))
    ));

    assert_eq!(t.unread(&bob).await, (2, 1));
    store.remove_participant(&thread, &bob.id).await.unwrap();
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &bob).await.status, 404);
    assert_eq!(t.unread(&bob).await, (0, 0));
    assert_eq!(t.get("/api/threads/", &bob).await.body["count"], 0);
    let view = t.get(&format!("/api/threads/{id}/"), &carol).await.body;
    assert_eq!(view["participants"], serde_json::json!([alice.id.as_str(), carol.id.as_str()]));
    assert!(matches!(
        store.remove_participant(&thread, &carol.id).await,
        Err(WriteError::Refused(Refusal::Size))
    ));

    // The participant set moved: {alice, bob} is free again, {alice, carol} is now this thread.
    let again =
        t.post("/api/threads/", &alice, serde_json::json!({"participants": [carol.id.as_str()]})).await;
    assert_eq!((again.status, again.body["id"].as_str()), (200, Some(id.as_str())));
    let fresh = t.post("/api/threads/", &alice, serde_json::json!({"participants": [bob.id.as_str()]})).await;
    assert_eq!(fresh.status, 201);
    let other: shared::domain::ids::ThreadId = fresh.body["id"].as_str().unwrap().parse().unwrap();
    assert!(matches!(store.add_participant(&other, &carol.id).await, Ok(())));
    // Removing bob gives `other` the set {alice, carol} that `id` has: the threads share it,
    // and asking for that set finds the more recently active of them.
    store.remove_participant(&other, &bob.id).await.unwrap();
    let view = t.get(&format!("/api/threads/{other}/"), &carol).await.body;
    assert_eq!(view["participants"], serde_json::json!([alice.id.as_str(), carol.id.as_str()]));
    for (newest, older) in [(&other.to_string(), &id), (&id, &other.to_string())] {
        t.say(newest, &carol, "latest").await;
        let found =
            t.post("/api/threads/", &carol, serde_json::json!({"participants": [alice.id.as_str()]})).await;
        assert_eq!((found.status, found.body["id"].as_str()), (200, Some(newest.as_str())), "not {older}");
    }
}

#[tokio::test]
async fn all_threads_list_newest_activity_first_across_shards() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let other = t.user(&format!("u{i}")).await;
        ids.push(t.thread(&alice, &[&other]).await);
    }
    t.say(&ids[2], &alice, "bump").await;
    let mut expected: Vec<String> = ids.iter().rev().cloned().collect();
    expected.retain(|id| id != &ids[2]);
    expected.insert(0, ids[2].clone());

    t.user_with("root", true, true).await;
    let mut b = Browser::new(&t);
    b.log_in("root", "pw-root").await;
    let mut seen = Vec::new();
    let mut uri = "/admin/threads/?limit=3".to_owned();
    let mut pages = Vec::new();
    loop {
        let page = b.get(&uri).await;
        assert_eq!(page.status, 200);
        let body = html(&page).to_owned();
        for id in &ids {
            if let Some(at) = body.find(&format!("/admin/threads/{id}/")) {
                seen.push((at, id.clone()));
            }
        }
        let mut on_page: Vec<_> = std::mem::take(&mut seen);
        on_page.sort();
        pages.push(on_page.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
        match body.split("href=\"").find_map(|rest| {
            let link = &rest[..rest.find('"').unwrap()];
            (link.contains("cursor=") && rest[rest.find('>').unwrap()..].starts_with(">Older"))
                .then(|| link.to_owned())
        }) {
            Some(next) => uri = crate::helpers::path_of(&Value::String(next.replace("&amp;", "&"))),
            None => break,
        }
    }
    assert_eq!(pages.concat(), expected);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
}

fn cookie<'b>(b: &'b Browser<'_>, name: &str) -> Option<&'b str> {
    b.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Another browser holding a copy of this one's cookies, as a thief of them would.
fn copy<'a>(b: &Browser<'a>) -> Browser<'a> {
    Browser { t: b.t, cookies: b.cookies.clone() }
}

#[tokio::test]
async fn logout_ends_every_session_of_the_user_copies_included() {
    let t = TestApp::spawn().await;
    t.user_with("root", true, true).await;
    t.user_with("ops", true, true).await;
    let mut b = Browser::new(&t);
    assert_eq!(b.log_in("root", "pw-root").await.status, 303);
    let mut stolen = copy(&b);
    let mut laptop = Browser::new(&t);
    assert_eq!(laptop.log_in("root", "pw-root").await.status, 303);
    let mut other_staff = Browser::new(&t);
    assert_eq!(other_staff.log_in("ops", "pw-ops").await.status, 303);
    assert_eq!(stolen.get("/admin/threads/").await.status, 200);

    let page = b.get("/admin/threads/").await;
    let r = b.post("/admin/logout/", &Browser::csrf(&page), "").await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (303, "/admin/login/"));
    assert_eq!(cookie(&b, "admin_session"), None);
    for (what, browser) in [("copied cookie", &mut stolen), ("other device", &mut laptop)] {
        let r = browser.get("/admin/threads/").await;
        assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (303, "/admin/login/"), "{what}");
    }
    // Other users' sessions go on, and logging in again works.
    assert_eq!(other_staff.get("/admin/threads/").await.status, 200);
    assert_eq!(b.log_in("root", "pw-root").await.status, 303);
    assert_eq!(b.get("/admin/threads/").await.status, 200);
}

#[tokio::test]
async fn password_and_flag_changes_end_copied_sessions() {
    let t = TestApp::spawn().await;
    t.user_with("root", true, true).await;
    let root = t.app.store.user_by_username("root").await.unwrap().unwrap();
    let mut b = Browser::new(&t);
    assert_eq!(b.log_in("root", "pw-root").await.status, 303);
    let mut stolen = copy(&b);
    shared::accounts::set_password(&t.app.store, &root.id, "new-pass").await.unwrap();
    assert_eq!(stolen.get("/admin/threads/").await.status, 303);
    assert_eq!(b.get("/admin/threads/").await.status, 303);

    // Losing staff and getting it back does not revive a session from before.
    assert_eq!(b.log_in("root", "new-pass").await.status, 303);
    let mut stolen = copy(&b);
    t.app.store.set_flags(&root.id, true, false).await.unwrap();
    t.app.store.set_flags(&root.id, true, true).await.unwrap();
    assert_eq!(stolen.get("/admin/threads/").await.status, 303);

    // Saving unchanged flags is not a change.
    assert_eq!(b.log_in("root", "new-pass").await.status, 303);
    t.app.store.set_flags(&root.id, true, true).await.unwrap();
    assert_eq!(b.get("/admin/threads/").await.status, 200);
}

#[tokio::test]
async fn logging_in_rotates_the_csrf_cookie() {
    let t = TestApp::spawn().await;
    t.user_with("root", true, true).await;
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let id = t.thread(&alice, &[&bob]).await;
    let mut b = Browser::new(&t);
    let login_page = b.get("/admin/login/").await;
    let before = cookie(&b, "admin_csrf").unwrap().to_owned();
    let old_token = Browser::csrf(&login_page);
    let r = b.post("/admin/login/", &old_token, "username=root&password=pw-root").await;
    assert_eq!(r.status, 303);
    let after = cookie(&b, "admin_csrf").unwrap().to_owned();
    assert_ne!(before, after);
    // A token derived from the pre-login seed is worthless in the session.
    let r = b.post(&format!("/admin/threads/{id}/delete/"), &old_token, "").await;
    assert_eq!(r.status, 403);
    assert_eq!(t.get(&format!("/api/threads/{id}/"), &alice).await.status, 200);
    let page = b.get(&format!("/admin/threads/{id}/")).await;
    assert_eq!(b.post(&format!("/admin/threads/{id}/delete/"), &Browser::csrf(&page), "").await.status, 303);
}
