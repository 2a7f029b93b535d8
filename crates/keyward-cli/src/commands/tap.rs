//! `keyward tap issue`: a Temporary Access Pass for onboarding.
//!
//! The pass is printed once, on this terminal, and is kept nowhere: the server returns it once and
//! neither stores nor logs it, and the CLI holds it in a `SecretString` until it is shown.

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use super::{ClientArgs, when_not_found};

/// `keyward tap …`.
#[derive(Debug, Args)]
pub struct TapArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TapCommand,
}

#[derive(Debug, Subcommand)]
enum TapCommand {
    /// Issue a Temporary Access Pass to a person; it is shown once.
    Issue {
        /// The person's UPN (or Keyward id).
        #[arg(long, value_name = "UPN")]
        user: String,
        /// Lifetime in minutes (the tenant's TAP policy sets the bounds and the default).
        #[arg(long, value_name = "M")]
        lifetime: Option<u32>,
        /// The pass works for one sign-in only.
        #[arg(long)]
        once: bool,
    },
}

/// Runs `keyward tap …`.
pub async fn run(args: TapArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        TapCommand::Issue { user, lifetime, once } => {
            let view = api
                .tap(&user, lifetime, once.then_some(true))
                .await
                .map_err(|e| when_not_found(e, super::people::PERSON_HINT))?;
            let pass = SecretString::from(view.pass);
            println!("Temporary Access Pass for {user}: {}", pass.expose_secret());
            println!(
                "valid for {} minutes from {}, {}; it is not stored and cannot be shown again",
                view.lifetime_minutes,
                view.start,
                if view.once { "for one sign-in" } else { "for several sign-ins" }
            );
        }
    }
    Ok(())
}
