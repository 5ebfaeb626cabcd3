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

/// The screen a browser session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    /// The size the admin panel's screenshots have always had.
    Default,
    /// A laptop's browser window: 1280×800 CSS pixels.
    Desktop,
    /// A phone: 390×844 CSS pixels (an iPhone 12 to 15), at twice the density, with touch
    /// instead of a mouse, as Chromium's device emulation gives it.
    Phone,
}

/// A new headless Chromium session with a profile of its own (no shared cookies or storage).
async fn chromium() -> Client {
    chromium_on(Screen::Default).await
}

/// A new headless Chromium session on `screen`.
async fn chromium_on(screen: Screen) -> Client {
    let webdriver = std::env::var("WEBDRIVER_URL").expect("WEBDRIVER_URL (run `make test`)");
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}", uuid::Uuid::new_v4().simple()));
    let size = match screen {
        Screen::Default => "--window-size=1200,900",
        Screen::Desktop => "--window-size=1280,800",
        Screen::Phone => "--window-size=390,844",
    };
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        size,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
    if screen == Screen::Phone {
        options["mobileEmulation"] =
            json!({ "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true } });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    // With every workspace member's features unified (as `make test` builds), rustls has both
    // of its crypto backends and cannot pick one by itself; ChromeDriver is plain HTTP anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("ChromeDriver session");
    if screen == Screen::Desktop {
        // Headless Chromium's window size includes room for a toolbar it does not draw: grow the
        // window by that much, so the page gets the whole 1280×800.
        let extra =
            client.execute("return [outerWidth - innerWidth, outerHeight - innerHeight]", vec![]).await;
        let extra = extra.expect("window size");
        let (dx, dy) = (extra[0].as_u64().unwrap_or(0) as u32, extra[1].as_u64().unwrap_or(0) as u32);
        client.set_window_size(1280 + dx, 800 + dy).await.expect("window size");
    }
    client
}

/// `target/screenshots/`, created if need be.
fn screenshots() -> PathBuf {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}
