//! `keyward admin token …` and `keyward admin rotate-key`: run on the server's host against its
//! database and key file (the first API token cannot come from the API; the key never goes over
//! it), acting as `host:$USER` in the audit trail.

use anyhow::Context;
use clap::{Args, Subcommand};
use keyward_core::Role;
use keyward_server::{Caller, Service};
use secrecy::ExposeSecret;

use super::serve::ConfigArgs;

/// `keyward admin …`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Replace the secret key: re-encrypt stored secrets under a new key, keep the old key file
    /// as FILE.old-ID (audit events sealed under it still verify). Restart the server(s) after.
    RotateKey,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once on standard output and stored only as a hash.
    Create {
        /// A unique name; audit events show it as `token:NAME`.
        #[arg(long)]
        name: String,
        /// admin, operator, helpdesk or auditor.
        #[arg(long)]
        role: Role,
        /// Days until the token stops working (default: the server's token_lifetime_days).
        #[arg(long, value_name = "N")]
        days: Option<u32>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// Runs an admin command against the server's database.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let service = Service::open(args.config.load()?).await.context("cannot open the server's database")?;
    let host = Caller::host(whoami());
    match args.command {
        AdminCommand::Token(TokenCommand::Create { name, role, days }) => {
            let (rec, token) = service.create_token_for(&host, &name, role, days).await?;
            let until = rec.expires_at.map(|t| t.date().to_string()).unwrap_or_default();
            eprintln!(
                "Created token {name:?} with role {role}, working until {until}. Store it now: it cannot be shown again."
            );
            println!("{}", token.expose_secret());
        }
        AdminCommand::Token(TokenCommand::List) => {
            let mut after = None;
            loop {
                let page = service.tokens(&host, after.as_deref(), Some(1000)).await?;
                let now = time::OffsetDateTime::now_utc();
                for t in &page.items {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(_), _) => "revoked",
                        (None, Some(until)) if until <= now => "expired",
                        _ => "live",
                    };
                    let date =
                        |t: Option<time::OffsetDateTime>| t.map_or("-".to_owned(), |t| t.date().to_string());
                    println!(
                        "{:<24} {:<9} {state:<8} last used {:<10} expires {}",
                        t.name,
                        t.role.as_str(),
                        date(t.last_used_at),
                        date(t.expires_at)
                    );
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { name }) => {
            service.revoke_token(&host, &name, false).await?;
            println!("Revoked token {name:?}.");
        }
        AdminCommand::RotateKey => {
            let r = service.rotate_secret_key(&host).await?;
            println!(
                "Rotated the secret key {} -> {}: {} stored secret(s) re-encrypted; the old key is kept in {}.",
                r.old_id,
                r.new_id,
                r.values,
                r.kept.display()
            );
            eprintln!("Restart every server using this database so it reads the new key file.");
        }
    }
    Ok(())
}

fn whoami() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
}
