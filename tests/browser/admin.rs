//! The admin panel: staff log in, manage threads and users; others are refused.

use std::path::PathBuf;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::{SERIAL, chromium, screenshots};

struct Panel {
    browser: Client,
    base: String,
    shots: PathBuf,
}

impl Panel {
    async fn open() -> Self {
        let base = std::env::var("E2E_BASE_URL").expect("E2E_BASE_URL (run `make test`)");
        Self { browser: chromium().await, base, shots: screenshots() }
    }

    async fn go(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        self.browser.current_url().await.unwrap().path().to_owned()
    }

    async fn text(&self) -> String {
        self.browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.browser.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks something that loads a new page, and waits until the old page is gone.
    async fn click(&self, css: &str) {
        let old = self.browser.find(Locator::Css("html")).await.unwrap();
        self.browser.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                self.browser.wait().for_element(Locator::Css("main")).await.unwrap();
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no new page");
    }

    async fn shot(&self, name: &str) {
        let png = self.browser.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("admin-{name}.png")), png).unwrap();
    }

    async fn log_in(&self, username: &str, password: &str) {
        self.go("/admin/").await;
        assert_eq!(self.path().await, "/admin/login/");
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("main form button[type=submit]").await;
    }
}

fn api(method: &str, url: &str, body: Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = match method {
        "POST" => agent.post(url).send_json(body).unwrap(),
        _ => agent.get(url).call().unwrap(),
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn staff_manage_threads_and_users_in_the_browser() {
    // It deletes a demo thread, which the web client test uses.
    let _one_at_a_time = SERIAL.lock().await;
    let panel = Panel::open().await;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

    // Only staff get in.
    panel.log_in("alice", "super_pass").await;
    assert_eq!(panel.path().await, "/admin/login/");
    assert!(
        panel.text().await.contains("Please enter the correct username and password for a staff account.")
    );
    panel.shot("login-refused").await;
    panel.log_in("admin", "super_pass").await;
    assert_eq!(panel.path().await, "/admin/threads/");
    let session = panel.browser.get_named_cookie("admin_session").await.unwrap();
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    panel.shot("threads").await;
    panel.browser.set_window_size(390, 844).await.unwrap();
    panel.shot("threads-phone").await;
    panel.browser.set_window_size(1200, 900).await.unwrap();

    // Search threads by participant username, open one, see its messages.
    panel.fill("#q", "bob").await;
    panel.click("form[role=search] button[type=submit]").await;
    let listed = panel.text().await;
    assert!(listed.contains("alice") && listed.contains("bob") && listed.contains("test_user"), "{listed}");
    panel.click("tbody tr td a").await;
    let thread_path = panel.path().await;
    assert!(thread_path.starts_with("/admin/threads/"), "{thread_path}");
    let page = panel.text().await;
    assert!(page.contains("hello both") && page.contains("hey"), "{page}");
    panel.shot("thread").await;

    // Add a participant, then remove them again; the owner has no remove button.
    panel.fill("#add-username", "admin").await;
    panel.click("form[action$='/participants/add/'] button").await;
    assert!(panel.text().await.contains("The participant was added."));
    let rows = panel.browser.find_all(Locator::Css("form[action$='/participants/remove/']")).await.unwrap();
    assert_eq!(rows.len(), 3, "bob, test_user and admin can be removed; alice owns it");
    panel.click("button[aria-label='Remove admin']").await;
    assert!(panel.text().await.contains("The participant was removed."));
    assert!(panel.browser.find(Locator::Css("button[aria-label='Remove admin']")).await.is_err());

    // A forged post without the CSRF token is refused, even with the session cookie.
    let forged = format!("{}{thread_path}delete/", panel.base);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let refused = agent
        .post(&forged)
        .header("Cookie", format!("admin_session={}", session.value()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("confirm=yes")
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    panel.go(&thread_path).await;
    assert!(panel.text().await.contains("hello both"), "the thread survived the forged post");

    // Delete the thread from its page.
    panel.click("form[action$='/delete/'] button").await;
    assert_eq!(panel.path().await, "/admin/threads/");
    assert!(panel.text().await.contains("The thread was deleted."));
    panel.go(&thread_path).await;
    assert!(panel.text().await.contains("Not found."));

    // Create a user, who can then get a token from the API.
    panel.go("/admin/users/").await;
    panel.shot("users").await;
    panel.click("a[href='/admin/users/new/']").await;
    let username = format!("carol_{run}");
    panel.fill("#username", &username).await;
    panel.fill("#password", "carol-pass-1").await;
    panel.click("main form button[type=submit]").await;
    assert!(panel.text().await.contains("The user was created."));
    panel.shot("user").await;
    let (status, body) = api(
        "POST",
        &format!("{}/api/token/", panel.base),
        json!({"username": username, "password": "carol-pass-1"}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["access"].is_string());

    // Search users, and log out.
    panel.go(&format!("/admin/users/?q=carol_{run}")).await;
    assert!(panel.text().await.contains(&username));
    panel.click("header form button").await;
    assert_eq!(panel.path().await, "/admin/login/");
    panel.go("/admin/threads/").await;
    assert_eq!(panel.path().await, "/admin/login/");
    panel.browser.close().await.unwrap();
}
