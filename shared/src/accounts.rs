//! Account operations shared by the token endpoint, the admin panel and `msgctl`.

use crate::ids::UserId;
use crate::model::{User, is_valid_username};
use crate::password::{self, MAX_PASSWORD_LEN, Verdict};
use crate::store::{CreateUserError, NewUser, Store, StoreError};

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Not 1-150 letters, digits or `@.+-_`.
    #[error("a username is 1 to 150 letters, digits or @.+-_")]
    InvalidUsername,
    /// Empty or longer than we hash.
    #[error("a password is 1 to 1024 bytes")]
    InvalidPassword,
    /// Someone has that username.
    #[error("that username is taken")]
    Taken,
    /// No such user.
    #[error("no such user")]
    NoUser,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_password(password: &str) -> Result<(), AccountError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(AccountError::InvalidPassword);
    }
    Ok(())
}

/// Creates an active user with an Argon2id hash of `password`.
pub async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    staff: bool,
) -> Result<User, AccountError> {
    if !is_valid_username(username) {
        return Err(AccountError::InvalidUsername);
    }
    check_password(password)?;
    let new = NewUser {
        username: username.to_owned(),
        password_hash: password::hash(password),
        is_staff: staff,
        is_active: true,
        id: None,
        date_joined: None,
    };
    match store.create_user(new).await {
        Ok(user) => Ok(user),
        Err(CreateUserError::Taken) => Err(AccountError::Taken),
        Err(CreateUserError::Store(e)) => Err(e.into()),
    }
}

/// Sets a new password; refresh tokens and admin sessions issued before stop working.
pub async fn set_password(store: &Store, id: &UserId, password: &str) -> Result<(), AccountError> {
    check_password(password)?;
    if store.user(id).await?.is_none() {
        return Err(AccountError::NoUser);
    }
    store.set_password_hash(id, &password::hash(password), true).await?;
    Ok(())
}

/// The active user these credentials belong to, or `None`. Unknown usernames cost the same
/// hash work as known ones, so timing does not reveal which exist; an imported Django hash is
/// replaced by Argon2id on its first successful use.
pub async fn check_credentials(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<Option<User>, StoreError> {
    let user = store.user_by_username(username).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // Argon2id runs on the request's own thread. A Lambda instance serves one request at a
    // time, so there is nothing to keep responsive, while a blocking pool gives each of its
    // threads a malloc arena that keeps Argon2's 19 MiB: 126 MB of RSS after 8 logins, measured.
    let verdict = match stored {
        Some(hash) => password::verify(password, &hash),
        None => {
            password::verify_dummy(password);
            Verdict::Mismatch
        }
    };
    let user = match (user, verdict) {
        (Some(user), Verdict::Match | Verdict::MatchNeedsRehash) if user.is_active => user,
        _ => return Ok(None),
    };
    if verdict == Verdict::MatchNeedsRehash {
        store.set_password_hash(&user.id, &password::hash(password), false).await?;
        tracing::info!(user = %user.id, "password hash upgraded to argon2id");
    }
    Ok(Some(user))
}

/// Failed logins allowed per username within [`FAILURE_WINDOW_SECONDS`].
pub const USERNAME_FAILURE_LIMIT: u64 = 10;
/// Failed logins allowed per client address within [`FAILURE_WINDOW_SECONDS`].
pub const ADDRESS_FAILURE_LIMIT: u64 = 50;
/// The window failed logins are counted in.
pub const FAILURE_WINDOW_SECONDS: i64 = 15 * 60;

/// The result of a login attempt.
#[derive(Debug)]
pub enum Login {
    /// The credentials belong to this active user.
    Accepted(User),
    /// Wrong username or password, or an inactive user.
    Refused,
    /// Too many failures for this username or address; try again after this many seconds.
    Throttled(u64),
}

/// Checks credentials with brute-force protection: failures are counted per username and per
/// client address in expiring windows, and past a limit every attempt is refused with a wait,
/// the right password included; a success clears the username's count.
pub async fn log_in(
    store: &Store,
    username: &str,
    password: &str,
    address: &str,
) -> Result<Login, StoreError> {
    let now = crate::timestamp::Timestamp::now().unix();
    let subjects = [format!("user:{username}"), format!("ip:{address}")];
    let failures = store.login_failures(&subjects, now).await?;
    let blocked = [USERNAME_FAILURE_LIMIT, ADDRESS_FAILURE_LIMIT]
        .iter()
        .zip(&failures)
        .filter(|(limit, f)| f.count >= **limit)
        .map(|(_, f)| f.window_end - now)
        .max();
    if let Some(wait) = blocked {
        return Ok(Login::Throttled(wait.max(1) as u64));
    }
    match check_credentials(store, username, password).await? {
        Some(user) => {
            if failures[0].count > 0 {
                store.clear_login_failures(&subjects[0]).await?;
            }
            Ok(Login::Accepted(user))
        }
        None => {
            let (a, b) = tokio::join!(
                store.record_login_failure(&subjects[0], now, FAILURE_WINDOW_SECONDS),
                store.record_login_failure(&subjects[1], now, FAILURE_WINDOW_SECONDS)
            );
            a?;
            b?;
            Ok(Login::Refused)
        }
    }
}
