//! `keyward admin token …`: run on the server's host against its database (the first API token
//! cannot come from the API), acting as `host:$USER` in the audit trail.

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
        AdminCommand::Token(TokenCommand::Create { name, role }) => {
            let (_, token) = service.create_token(&host, &name, role).await?;
            eprintln!("Created token {name:?} with role {role}. Store it now: it cannot be shown again.");
            println!("{}", token.expose_secret());
        }
        AdminCommand::Token(TokenCommand::List) => {
            let mut after = None;
            loop {
                let page = service.tokens(&host, after.as_deref(), Some(1000)).await?;
                for t in &page.items {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                    println!("{:<24} {:<9} {state}", t.name, t.role.as_str());
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
    }
    Ok(())
}

fn whoami() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
}
