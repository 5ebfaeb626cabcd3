//! The management commands behind `msgctl`, callable from tests.

pub mod django;

use shared::accounts::{self, AccountError};
use shared::domain::ids::UserId;
use shared::domain::model::User;
use shared::store::{CreateThreadOutcome, Outgoing, SendOutcome, Store};

/// A command's failure, printed by `main` with its causes.
pub type Failure = Box<dyn std::error::Error>;

/// The demo users: name and staff flag; all share [`DEMO_PASSWORD`].
pub const DEMO_USERS: [(&str, bool); 4] =
    [("admin", true), ("test_user", false), ("alice", false), ("bob", false)];
/// The demo users' password.
pub const DEMO_PASSWORD: &str = "super_pass";

/// Creates an active user with an Argon2id hash of `password`.
pub async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    staff: bool,
) -> Result<User, Failure> {
    accounts::create_user(store, username, password, staff).await.map_err(|e| match e {
        AccountError::Taken => format!("username {username:?} is taken").into(),
        other => other.into(),
    })
}

/// A user by username, or an error naming it.
pub async fn find_user(store: &Store, username: &str) -> Result<User, Failure> {
    store.user_by_username(username).await?.ok_or_else(|| format!("no user named {username:?}").into())
}

/// Sets a new password; refresh tokens issued before stop working.
pub async fn set_password(store: &Store, username: &str, password: &str) -> Result<(), Failure> {
    let user = find_user(store, username).await?;
    Ok(accounts::set_password(store, &user.id, password).await?)
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
                if let SendOutcome::NotFound =
                    store.send_message(sender, &thread.thread.id, Outgoing::text(text)).await?
                {
                    return Err("a demo thread vanished while seeding".into());
                }
            }
        }
    }
    Ok(())
}
