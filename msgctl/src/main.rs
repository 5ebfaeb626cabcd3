//! `msgctl`: operate the messaging table from a terminal or a script.
//!
//! The endpoint and credentials come from the usual AWS environment
//! (`AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use msgctl::{Failure, django};
use shared::store::Store;

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
    /// Create a staff user; asks for the username and a hidden password unless given.
    Createsuperuser {
        /// Username (asked for if absent and a terminal is attached).
        #[arg(long, env = "MSGCTL_USERNAME")]
        username: Option<String>,
        /// Password (asked for, hidden, if absent and a terminal is attached).
        #[arg(long, env = "MSGCTL_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Never prompt; fail if something is missing.
        #[arg(long)]
        no_input: bool,
    },
    /// Create a user.
    CreateUser {
        /// Login name.
        username: String,
        /// Password (or MSGCTL_PASSWORD).
        #[arg(long, env = "MSGCTL_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the user staff.
        #[arg(long)]
        staff: bool,
    },
    /// Set a user's password (revokes their refresh tokens).
    SetPassword {
        /// Login name.
        username: String,
        /// New password (asked for, hidden, if absent).
        #[arg(long, env = "MSGCTL_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Stop a user from logging in or refreshing tokens.
    Deactivate {
        /// Login name.
        username: String,
    },
    /// Let a deactivated user log in again.
    Activate {
        /// Login name.
        username: String,
    },
    /// Load the demo users (password `super_pass`) and a few threads; safe to run again.
    SeedDemo,
    /// Import a Django `dumpdata auth.user thread` JSON export (checked whole first; safe to
    /// rerun, and a rerun finishes an interrupted import).
    ImportDjango {
        /// The export file.
        file: PathBuf,
        /// Messages over 10,000 characters: keep the first 10,000, or leave them out. Without
        /// this, such messages are listed and nothing is imported.
        #[arg(long, value_enum)]
        long_text: Option<django::LongText>,
        /// Messages with NUL characters: remove them (before the length check), or leave the
        /// messages out. Without this, such messages are listed and nothing is imported.
        #[arg(long, value_enum)]
        nul: Option<django::NulText>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = shared::app::load_aws_config().await;
    let store = Store::connect(&sdk, cli.table);
    match run(&store, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msgctl: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn ask(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

fn ask_password() -> Result<String, Failure> {
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    if first != again {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

async fn run(store: &Store, command: Command) -> Result<(), Failure> {
    match command {
        Command::CreateTable => {
            store.create_table().await?;
            println!("table {} is ready", store.table());
        }
        Command::Createsuperuser { username, password, no_input } => {
            let interactive = !no_input && std::io::stdin().is_terminal();
            let username = match username {
                Some(u) => u,
                None if interactive => ask("Username: ")?,
                None => return Err("--username (or MSGCTL_USERNAME) is required with --no-input".into()),
            };
            let password = match password {
                Some(p) => p,
                None if interactive => ask_password()?,
                None => return Err("--password (or MSGCTL_PASSWORD) is required with --no-input".into()),
            };
            let user = msgctl::create_user(store, &username, &password, true).await?;
            println!("Superuser {} created ({}).", user.username, user.id);
        }
        Command::CreateUser { username, password, staff } => {
            let user = msgctl::create_user(store, &username, &password, staff).await?;
            println!("created user {} ({})", user.username, user.id);
        }
        Command::SetPassword { username, password } => {
            let password = match password {
                Some(p) => p,
                None => ask_password()?,
            };
            msgctl::set_password(store, &username, &password).await?;
            println!("password changed for {username}; their refresh tokens are revoked");
        }
        Command::Deactivate { username } => {
            msgctl::set_active(store, &username, false).await?;
            println!("{username} is deactivated");
        }
        Command::Activate { username } => {
            msgctl::set_active(store, &username, true).await?;
            println!("{username} is active");
        }
        Command::SeedDemo => {
            msgctl::seed_demo(store).await?;
            println!(
                "demo data ready: users admin, test_user, alice, bob (password {})",
                msgctl::DEMO_PASSWORD
            );
        }
        Command::ImportDjango { file, long_text, nul } => {
            import_django(store, &file, django::TextPolicy { long_text, nul }).await?;
        }
    }
    Ok(())
}

async fn import_django(
    store: &Store,
    file: &std::path::Path,
    policy: django::TextPolicy,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| CannotRead { path: file.to_owned(), source: e })?;
    let export = match django::parse(&text, policy) {
        Ok(export) => export,
        Err(faults) => return Err(report(&faults)),
    };
    let faults = django::check_against(store, &export).await?;
    if !faults.is_empty() {
        return Err(report(&faults));
    }
    let messages: usize = export.threads.iter().map(|t| t.messages.len()).sum();
    eprintln!(
        "importing {} users, {} threads, {messages} messages, {} read statuses",
        export.users.len(),
        export.threads.len(),
        export.read_statuses
    );
    let summary = django::write(store, &export, |what, done, total| {
        if done == total || done % 100 == 0 {
            eprintln!("  {what}: {done}/{total}");
        }
    })
    .await?;
    print!("{summary}");
    Ok(())
}

/// The export file could not be read; the I/O error stays its cause.
#[derive(Debug)]
struct CannotRead {
    path: PathBuf,
    source: std::io::Error,
}

impl std::fmt::Display for CannotRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}", self.path.display())
    }
}

impl std::error::Error for CannotRead {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn report(faults: &[django::Fault]) -> Failure {
    for fault in faults {
        eprintln!("  {fault}");
    }
    format!("the export has {} fault(s); nothing was imported", faults.len()).into()
}
