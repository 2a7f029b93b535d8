//! `keyward passkeys list|revoke|reconcile`: passkeys Keyward issued, and those it found in Entra.
//!
//! `--unmanaged` lists the passkeys reconcile discovered in Entra that Keyward did not issue
//! (origin `discovered`): the ones an operator most often wants to look at.

use clap::{Args, Subcommand};

use super::output::{self, Format, Table, or_dash};
use super::{ClientArgs, when_not_found};

/// `keyward passkeys …`.
#[derive(Debug, Args)]
pub struct PasskeysArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: PasskeysCommand,
}

#[derive(Debug, Subcommand)]
enum PasskeysCommand {
    /// List passkeys.
    List {
        /// Only this person's (UPN or Keyward id).
        #[arg(long, value_name = "UPN")]
        user: Option<String>,
        /// Only passkeys found in Entra that Keyward did not issue.
        #[arg(long)]
        unmanaged: bool,
        /// Only passkeys in this state: pending, registered, revoked.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Revoke one passkey: deleted from Entra, kept as revoked in Keyward.
    Revoke {
        /// The passkey's Keyward id (`keyward passkeys list` shows it).
        id: String,
        /// Why (kept in the audit trail).
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Compare Keyward's passkeys with Entra's and settle the differences.
    Reconcile {
        /// Only this person (UPN or Keyward id); everyone linked when absent.
        #[arg(long, value_name = "UPN")]
        user: Option<String>,
    },
}

/// Runs `keyward passkeys …`.
pub async fn run(args: PasskeysArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        PasskeysCommand::List { user, unmanaged, state, format } => {
            let origin = unmanaged.then_some("discovered");
            let list = api
                .passkeys(user.as_deref(), origin, state.as_deref())
                .await
                .map_err(|e| when_not_found(e, super::people::PERSON_HINT))?;
            let people = super::people::all_people(&api, None).await.unwrap_or_default();
            let mut table = Table::new(&[
                "person",
                "state",
                "origin",
                "model",
                "aaguid",
                "created",
                "display_name",
                "id",
            ]);
            for p in &list {
                let upn = people.iter().find(|x| x.id == p.person_id).map(|x| x.upn.clone());
                table.row(vec![
                    upn.unwrap_or_else(|| p.person_id.clone()),
                    p.state.clone(),
                    p.origin.clone(),
                    or_dash(p.model.as_deref()),
                    p.aaguid.clone(),
                    p.created_at.clone(),
                    p.display_name.clone(),
                    p.id.clone(),
                ]);
            }
            if list.is_empty() && format == Format::Table {
                eprintln!("no passkeys match");
            }
            output::print(format, &table, &list)?;
        }
        PasskeysCommand::Revoke { id, reason } => {
            let p = api
                .revoke_passkey(&id, reason)
                .await
                .map_err(|e| when_not_found(e, "`keyward passkeys list` shows the passkey ids"))?;
            println!("passkey {} is {}", p.id, p.state);
        }
        PasskeysCommand::Reconcile { user } => {
            let r = api.reconcile(user).await.map_err(|e| when_not_found(e, super::people::PERSON_HINT))?;
            println!(
                "reconciled {} people: {} pending finished, {} abandoned, {} revoked (deleted in Entra), {} discovered",
                r.people, r.finished, r.abandoned, r.revoked, r.discovered
            );
            for e in &r.errors {
                eprintln!("warning: {e}");
            }
            if !r.errors.is_empty() {
                anyhow::bail!(
                    "{} people could not be reconciled; fix the causes above and run `keyward passkeys reconcile` again",
                    r.errors.len()
                );
            }
        }
    }
    Ok(())
}
