//! Account operations shared by the token endpoint, the admin panel and `msgctl`.

use crate::domain::ids::UserId;
use crate::domain::model::{User, is_valid_username};
use crate::password::{self, MAX_PASSWORD_LEN, Verdict};
use crate::store::{CreateUserError, Failures, NewUser, Store, StoreError};

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

/// Failed logins allowed for one username from one client address within
/// [`FAILURE_WINDOW_SECONDS`]: the low limit, which a stranger's guesses trip only for the
/// stranger's own address, never for the owner's.
pub const PAIR_FAILURE_LIMIT: u64 = 10;
/// Failed logins allowed per username from all addresses together within
/// [`FAILURE_WINDOW_SECONDS`]: a ceiling on guessing from many addresses, high enough that
/// locking someone out takes more addresses than a casual attacker has.
pub const USERNAME_FAILURE_LIMIT: u64 = 100;
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

/// The counters one attempt is counted in, with their limits.
fn counters(username: &str, address: &str) -> [(String, u64); 3] {
    [
        // The address's length goes first so that no username and address pair can spell another.
        (format!("pair:{}:{address}:{username}", address.len()), PAIR_FAILURE_LIMIT),
        (format!("user:{username}"), USERNAME_FAILURE_LIMIT),
        (format!("ip:{address}"), ADDRESS_FAILURE_LIMIT),
    ]
}

/// Gives back the attempts that were counted but did not end in a wrong password. Failing to
/// give one back only leaves it counted, the safe side, so it is logged rather than returned.
async fn release(store: &Store, counted: &[(&str, Failures)]) {
    let results =
        futures_util::future::join_all(counted.iter().map(|(s, f)| store.release_login_attempt(s, f))).await;
    for e in results.into_iter().filter_map(Result::err) {
        tracing::warn!(error = %e, "a login attempt stays counted");
    }
}

/// Checks credentials with brute-force protection. Every attempt is counted, before its
/// password is checked, per (username, address) pair, per username and per address, in
/// expiring windows; once any of them is full the attempt is refused with a wait, the right
/// password included, so no more than the limit of passwords are ever checked, however many
/// requests run at once. A success clears the pair and gives back its own count elsewhere.
pub async fn log_in(
    store: &Store,
    username: &str,
    password: &str,
    address: &str,
) -> Result<Login, StoreError> {
    let now = crate::domain::timestamp::Timestamp::now().unix();
    let attempt = uuid::Uuid::new_v4().as_u128();
    let counters = counters(username, address);
    let [pair, user, ip] = counters.each_ref().map(|(subject, limit)| {
        store.reserve_login_attempt(subject, attempt, *limit, now, FAILURE_WINDOW_SECONDS)
    });
    let (pair, user, ip) = tokio::join!(pair, user, ip);
    let mut error = None;
    let mut reservations = Vec::with_capacity(3);
    for ((subject, _), reserved) in counters.iter().zip([pair, user, ip]) {
        match reserved {
            Ok(f) => reservations.push((subject.as_str(), f)),
            Err(e) => error = error.or(Some(e)),
        }
    }
    let counted: Vec<(&str, Failures)> = reservations.iter().filter(|(_, f)| f.counted).copied().collect();
    if let Some(e) = error {
        release(store, &counted).await;
        return Err(e);
    }
    let full = reservations.iter().filter(|(_, f)| !f.counted).map(|(_, f)| f.window_end - now).max();
    if let Some(wait) = full {
        release(store, &counted).await;
        return Ok(Login::Throttled(wait.max(1) as u64));
    }
    match check_credentials(store, username, password).await {
        Ok(Some(user)) => {
            let pair = counters[0].0.as_str();
            let others: Vec<_> = counted.iter().filter(|(s, _)| *s != pair).copied().collect();
            let (cleared, ()) = tokio::join!(store.clear_login_failures(pair), release(store, &others));
            if let Err(e) = cleared {
                tracing::warn!(error = %e, "failed logins stay counted after a success");
            }
            Ok(Login::Accepted(user))
        }
        // The attempt stays counted: that is the failure's record.
        Ok(None) => Ok(Login::Refused),
        Err(e) => {
            release(store, &counted).await;
            Err(e)
        }
    }
}
