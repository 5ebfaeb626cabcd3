//! Headless Chromium through ChromeDriver, against the local stack with the demo data
//! (`make test` starts it all and sets `E2E_BASE_URL`, `WEBDRIVER_URL` and `WEB_CLIENT_URL`):
//! the admin panel (`admin`) and the reference web client in `web/` (`web_client`).
//! Screenshots of the main pages land in `target/screenshots/`.

use std::path::PathBuf;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

mod admin;
mod web_client;

/// The tests share the demo users and threads (the admin test deletes a thread the web client
/// test talks in), so they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A new headless Chromium session with a profile of its own (no shared cookies or storage).
async fn chromium() -> Client {
    let webdriver = std::env::var("WEBDRIVER_URL").expect("WEBDRIVER_URL (run `make test`)");
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}", uuid::Uuid::new_v4().simple()));
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,900",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
    // With every workspace member's features unified (as `make test` builds), rustls has both
    // of its crypto backends and cannot pick one by itself; ChromeDriver is plain HTTP anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("ChromeDriver session")
}

/// `target/screenshots/`, created if need be.
fn screenshots() -> PathBuf {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}
