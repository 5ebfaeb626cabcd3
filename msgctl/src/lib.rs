//! The management commands behind `msgctl`, callable from tests.

pub mod django;

use shared::ids::UserId;
use shared::model::{User, is_valid_username};
use shared::password;
use shared::store::{CreateThreadOutcome, CreateUserError, NewUser, SendOutcome, Store};

/// A command's failure, printed by `main` with its causes.
pub type Failure = Box<dyn std::error::Error>;

/// The demo users: name and staff flag; all share [`DEMO_PASSWORD`].
pub const DEMO_USERS: [(&str, bool); 4] =
    [("admin", true), ("test_user", false), ("alice", false), ("bob", false)];
/// The demo users' password.
pub const DEMO_PASSWORD: &str = "super_pass";

/// Refuses usernames Django would refuse.
pub fn check_username(username: &str) -> Result<(), Failure> {
    if !is_valid_username(username) {
        return Err(format!("{username:?} is not a valid username: 1-150 letters, digits or @.+-_").into());
    }
    Ok(())
}

/// Refuses empty passwords.
pub fn check_password(password: &str) -> Result<(), Failure> {
    if password.is_empty() || password.len() > password::MAX_PASSWORD_LEN {
        return Err("the password must be 1 to 1024 bytes".into());
    }
    Ok(())
}

/// Creates an active user with an Argon2id hash of `password`.
pub async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    staff: bool,
) -> Result<User, Failure> {
    check_username(username)?;
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
        Err(CreateUserError::Taken) => Err(format!("username {username:?} is taken").into()),
        Err(e) => Err(e.into()),
    }
}

/// A user by username, or an error naming it.
pub async fn find_user(store: &Store, username: &str) -> Result<User, Failure> {
    store.user_by_username(username).await?.ok_or_else(|| format!("no user named {username:?}").into())
}

/// Sets a new password; refresh tokens issued before stop working.
pub async fn set_password(store: &Store, username: &str, password: &str) -> Result<(), Failure> {
    check_password(password)?;
    let user = find_user(store, username).await?;
    store.set_password_hash(&user.id, &password::hash(password), true).await?;
    Ok(())
}

/// Activates or deactivates a user (inactive users cannot log in or refresh).
pub async fn set_active(store: &Store, username: &str, active: bool) -> Result<(), Failure> {
    let user = find_user(store, username).await?;
    store.set_flags(&user.id, active, user.is_staff).await?;
    Ok(())
}

/// Creates the demo users and two threads with a few messages; safe to run again.
pub async fn seed_demo(store: &Store) -> Result<(), Failure> {
    store.create_table().await?;
    let mut ids: Vec<UserId> = Vec::new();
    for (username, staff) in DEMO_USERS {
        let user = match store.user_by_username(username).await? {
            Some(user) => user,
            None => create_user(store, username, DEMO_PASSWORD, staff).await?,
        };
        ids.push(user.id);
    }
    let [_, test_user, alice, bob] = &ids[..] else { unreachable!("four demo users") };
    let threads = [
        (vec![test_user.clone(), alice.clone()], ["hi alice", "hi!"]),
        (vec![alice.clone(), test_user.clone(), bob.clone()], ["hello both", "hey"]),
    ];
    for (participants, texts) in threads {
        if let CreateThreadOutcome::Created(thread) =
            store.create_thread(&participants[0], &participants).await?
        {
            for (sender, text) in participants.iter().zip(texts) {
                if let SendOutcome::NotFound = store.send_message(sender, &thread.thread, text).await? {
                    return Err("a demo thread vanished while seeding".into());
                }
            }
        }
    }
    Ok(())
}
