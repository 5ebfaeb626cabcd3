//! `msgctl`: operate the messaging table from a terminal or a script.
//!
//! The endpoint and credentials come from the usual AWS environment
//! (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local).

use clap::{Parser, Subcommand};
use shared::ids::UserId;
use shared::password;
use shared::store::{CreateThreadOutcome, CreateUserError, NewUser, Store};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The DynamoDB table.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table (same definition as template.yaml) if it does not exist.
    CreateTable,
    /// Load the demo users (password `super_pass`) and a few threads; safe to run again.
    SeedDemo,
    /// Create a user.
    CreateUser {
        /// Login name.
        username: String,
        /// Password (read from MSGCTL_PASSWORD if not given).
        #[arg(long, env = "MSGCTL_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the user staff.
        #[arg(long)]
        staff: bool,
    },
}

const DEMO_USERS: [(&str, bool); 4] =
    [("admin", true), ("test_user", false), ("alice", false), ("bob", false)];
const DEMO_PASSWORD: &str = "super_pass";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let sdk = shared::app::load_aws_config().await;
    let store = Store::connect(&sdk, cli.table);
    match run(&store, cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msgctl: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

async fn run(store: &Store, command: Command) -> Result<(), Failure> {
    match command {
        Command::CreateTable => {
            store.create_table().await?;
            println!("table {} is ready", store.table());
        }
        Command::SeedDemo => seed_demo(store).await?,
        Command::CreateUser { username, password, staff } => {
            let user = create_user(store, &username, &password, staff).await?;
            println!("created user {} ({})", user.username, user.id);
        }
    }
    Ok(())
}

async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    staff: bool,
) -> Result<shared::model::User, Failure> {
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

async fn seed_demo(store: &Store) -> Result<(), Failure> {
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
        (test_user, vec![test_user.clone(), alice.clone()], ["hi alice", "hi!"]),
        (alice, vec![alice.clone(), test_user.clone(), bob.clone()], ["hello both", "hey"]),
    ];
    for (owner, participants, texts) in threads {
        if let CreateThreadOutcome::Created(thread) = store.create_thread(owner, &participants).await? {
            store.send_message(owner, &thread.thread, texts[0]).await?;
            store.send_message(&participants[1], &thread.thread, texts[1]).await?;
        }
    }
    println!("demo data ready: users admin, test_user, alice, bob (password {DEMO_PASSWORD})");
    Ok(())
}
