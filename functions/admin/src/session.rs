//! Staff sessions and CSRF protection for the admin panel.
//!
//! The session is a short-lived signed token (type `admin`, never accepted by the API) in an
//! HttpOnly, Secure, SameSite=Strict cookie. It carries the user's session version, which
//! logout and password or flag changes bump, so a copied cookie dies with the session it came
//! from. Every form that changes something carries a CSRF token: an HMAC of a random
//! per-browser cookie, so a page on another site can neither read nor forge it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use lambda_http::Request;
use lambda_http::http::header::COOKIE;
use sha2::Sha256;
use shared::App;
use shared::domain::model::User;
use shared::jwt::{ADMIN_SESSION_SECONDS, TokenType};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "admin_session";
/// The random cookie CSRF tokens are derived from.
pub const CSRF_COOKIE: &str = "admin_csrf";

/// A cookie's value from the request.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value scoped to the panel.
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
}

/// A new session cookie for a staff user, at their current session version.
pub fn start(app: &App, user: &User, session_version: u64) -> String {
    set_cookie(
        SESSION_COOKIE,
        &app.jwt.issue_admin_session(&user.id, user.token_version, session_version),
        ADMIN_SESSION_SECONDS,
    )
}

/// A cookie that ends the session.
pub fn end() -> String {
    set_cookie(SESSION_COOKIE, "", 0)
}

/// The signed-in staff user, if the session is valid and they are still active staff.
pub async fn staff(app: &App, req: &Request) -> Result<Option<User>, shared::ApiError> {
    let Some(token) = cookie(req, SESSION_COOKIE).filter(|t| !t.is_empty() && t.len() < 4096) else {
        return Ok(None);
    };
    let Ok(claims) = app.jwt.verify(token, TokenType::Admin) else { return Ok(None) };
    let Some((user, session_version)) = app.store.user_with_session_version(&claims.user_id).await? else {
        return Ok(None);
    };
    // Logout, a password change or losing staff or active ends the session at once.
    let current = claims.sv == Some(session_version) && claims.ver == user.token_version;
    Ok(Some(user).filter(|u| current && u.is_active && u.is_staff))
}

/// The browser's CSRF seed, and a `Set-Cookie` for it when the browser has none yet.
pub fn csrf_seed(req: &Request) -> (String, Option<String>) {
    match cookie(req, CSRF_COOKIE).filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(seed) => (seed.to_owned(), None),
        None => {
            let (seed, header) = new_csrf_seed();
            (seed, Some(header))
        }
    }
}

/// A fresh CSRF seed and its `Set-Cookie`. Logging in sets one, so a seed planted or seen
/// before the login (and every token derived from it) is worthless in the session.
pub fn new_csrf_seed() -> (String, String) {
    let seed = uuid::Uuid::new_v4().simple().to_string();
    let header = set_cookie(CSRF_COOKIE, &seed, 7 * 24 * 3600);
    (seed, header)
}

fn mac(app: &App, seed: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app.config.keys.current().expose()).expect("any key length works");
    mac.update(b"admin-csrf-v1\0");
    mac.update(seed.as_bytes());
    mac
}

/// The CSRF token forms must carry for this seed.
pub fn csrf_token(app: &App, seed: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(app, seed).finalize().into_bytes())
}

/// True when a submitted form carries the right CSRF token for the browser's cookie.
pub fn csrf_ok(app: &App, req: &Request, submitted: Option<&str>) -> bool {
    let (Some(seed), Some(submitted)) = (cookie(req, CSRF_COOKIE), submitted) else { return false };
    csrf_token(app, seed).as_bytes().ct_eq(submitted.as_bytes()).into()
}
