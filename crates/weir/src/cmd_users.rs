//! `weir users`: who may log in to the web UI and the REST API, and with which role.

use crate::config::Settings;
use crate::engine::open_store;
use crate::output::{Format, Listing, time};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use weir_api::Role;
use weir_api::auth::users;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (the password comes from --password-stdin, or a prompt).
    Create {
        #[arg(long)]
        username: String,
        /// admin (everything), op (also triggers, clears, pauses, marks) or viewer (reads).
        #[arg(long, value_parser = ["admin", "op", "viewer"])]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles and last login.
    List,
    /// Delete a user; their tokens stop working at once.
    Delete { username: String },
    /// Set a new password for a user.
    ResetPassword {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// A password from stdin's first line, or asked for twice at the terminal without echo.
fn read_password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = prompt("Password: ")?;
        let again = prompt("Repeat password: ")?;
        if first != again {
            bail!("the passwords differ\nhint: type the same password twice");
        }
        first
    };
    if password.chars().count() < 8 {
        bail!("the password is shorter than 8 characters\nhint: choose a longer one");
    }
    Ok(password)
}

fn prompt(text: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{text}");
    std::io::stderr().flush()?;
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn off echo")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn run(settings: &Settings, cmd: UsersCommand, format: Format) -> Result<()> {
    let store = open_store(settings).await?;
    let actor = weir_service::Actor::cli().user;
    let result = async {
        match cmd {
            UsersCommand::Create {
                username,
                role,
                password_stdin,
            } => {
                let role = Role::parse(&role).expect("clap checked the role");
                let password = read_password(password_stdin)?;
                if !users::create(&store, &actor, &username, &password, role).await? {
                    bail!("user '{username}' exists\nhint: weir users reset-password {username}");
                }
                println!("created user {username} ({})", role.as_str());
            }
            UsersCommand::List => {
                let mut listing = Listing::new(&["username", "role", "created", "last_login"]);
                for u in store.list_users().await? {
                    listing.row(vec![
                        json!(u.username),
                        json!(u.role),
                        time(Some(u.created_at)),
                        time(u.last_login),
                    ]);
                }
                print!("{}", listing.render(format));
            }
            UsersCommand::Delete { username } => {
                if !users::delete(&store, &actor, &username).await? {
                    bail!("user '{username}' does not exist\nhint: weir users list");
                }
                println!("deleted user {username}");
            }
            UsersCommand::ResetPassword {
                username,
                password_stdin,
            } => {
                if store.get_user(&username).await?.is_none() {
                    bail!("user '{username}' does not exist\nhint: weir users list");
                }
                let password = read_password(password_stdin)?;
                users::reset_password(&store, &actor, &username, &password).await?;
                println!("new password set for {username}");
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}
