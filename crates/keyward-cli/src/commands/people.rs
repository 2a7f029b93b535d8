//! `keyward people sync|list|show|link|revoke`: the people Keyward issues passkeys to.
//!
//! People come from Entra by sync (the server reads the users and the members of every group with
//! an enrollment policy); `link` fixes a person whose Entra account could not be matched.

use clap::{Args, Subcommand};
use keyward_proto::issuances::IssuanceView;
use keyward_proto::people::{LinkRequest, PersonDetail, PersonView};

use super::{ClientArgs, when_not_found};
use crate::api_client::ApiClient;

/// What to do when a person is not found.
pub const PERSON_HINT: &str =
    "`keyward people list --search NAME` finds people; run `keyward people sync` if they are new in Entra";
use super::output::{self, Format, Table, or_dash};

/// `keyward people …`.
#[derive(Debug, Args)]
pub struct PeopleArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: PeopleCommand,
}

#[derive(Debug, Subcommand)]
enum PeopleCommand {
    /// Read users from Entra ID (all, or one group's members) and update Keyward's people.
    Sync {
        /// Only this group's members (display name or object id).
        #[arg(long, value_name = "NAME")]
        group: Option<String>,
    },
    /// List people, or those whose UPN or name contains --search.
    List {
        /// Substring of the UPN or display name.
        #[arg(long, value_name = "S")]
        search: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show a person with their keys and passkeys.
    Show {
        /// UPN or Keyward id.
        upn: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Revoke all of a person's passkeys (in Entra and in Keyward), e.g. when they leave.
    Revoke {
        /// UPN or Keyward id.
        upn: String,
        /// Why (kept in the audit trail).
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Link a person to their Entra account by object id, or by looking a UPN up in Entra.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["object_id", "entra_upn"])))]
    Link {
        /// UPN or Keyward id of the person in Keyward.
        upn: String,
        /// The Entra object id of the account.
        #[arg(long, value_name = "ID")]
        object_id: Option<String>,
        /// The account's UPN in Entra (normally the person's own).
        #[arg(long = "upn", value_name = "UPN")]
        entra_upn: Option<String>,
        /// Link to an account whose UPN is not the person's own (admin only; audited).
        #[arg(long)]
        allow_other_upn: bool,
        /// Relink a person who holds passkeys or open issuances under another account,
        /// revoking and cancelling them first (admin only).
        #[arg(long)]
        revoke_existing: bool,
    },
}

/// Runs `keyward people …`.
pub async fn run(args: PeopleArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        PeopleCommand::Sync { group } => sync(&api, group).await,
        PeopleCommand::List { search, format } => list(&api, search.as_deref(), format).await,
        PeopleCommand::Show { upn, format } => show(&api, &upn, format).await,
        PeopleCommand::Revoke { upn, reason } => revoke(&api, &upn, reason).await,
        PeopleCommand::Link { upn, object_id, entra_upn, allow_other_upn, revoke_existing } => {
            let body = LinkRequest { object_id, upn: entra_upn, allow_other_upn, revoke_existing };
            link(&api, &upn, &body).await
        }
    }
}

/// `people sync`: reads users from Entra and prints what changed.
async fn sync(api: &ApiClient, group: Option<String>) -> anyhow::Result<()> {
    let r = api.sync_people(group).await?;
    println!(
        "synced: {} read from Entra, {} created, {} updated, {} deleted in Entra, {} disabled, {} passkeys revoked (leavers)",
        r.seen, r.created, r.updated, r.deleted, r.disabled, r.revoked
    );
    Ok(())
}

/// `people list`: everyone, or the matches of `search`.
async fn list(api: &ApiClient, search: Option<&str>, format: Format) -> anyhow::Result<()> {
    let people = all_people(api, search).await?;
    let mut table = Table::new(&["upn", "display_name", "enabled", "linked", "groups", "id"]);
    for p in &people {
        table.row(person_row(p));
    }
    if people.is_empty() && format == Format::Table {
        eprintln!("no people found; run `keyward people sync` to read them from Entra ID");
    }
    output::print(format, &table, &people)
}

/// `people show`: the person, their passkeys and their issuances (as JSON: the person only).
async fn show(api: &ApiClient, upn: &str, format: Format) -> anyhow::Result<()> {
    let detail = api.person(upn).await.map_err(|e| when_not_found(e, PERSON_HINT))?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    let person = person_table(&detail.person);
    let passkeys = passkey_table(&detail);
    let history = issuance_table(&api.issuances_of(upn).await?);
    match format {
        Format::Csv => print!("{}", passkeys.to_csv()),
        _ => {
            print!("{}", person.to_text());
            println!();
            print_or(&passkeys, "no passkeys");
            println!();
            print_or(&history, "no issuances");
        }
    }
    Ok(())
}

/// Prints the table, or `empty` when it has no rows.
fn print_or(table: &Table, empty: &str) {
    if table.is_empty() {
        println!("{empty}");
    } else {
        print!("{}", table.to_text());
    }
}

/// One row per field of the person.
fn person_table(p: &PersonView) -> Table {
    let mut table = Table::new(&["field", "value"]);
    for (k, v) in [
        ("upn", p.upn.clone()),
        ("display name", p.display_name.clone()),
        ("id", p.id.clone()),
        ("entra object id", or_dash(p.entra_object_id.as_deref())),
        ("linked by", or_dash(p.link_method.as_deref())),
        ("enabled", p.enabled.to_string()),
        ("deleted in entra", p.deleted_in_entra.to_string()),
        ("source", p.source.clone()),
        ("groups", or_dash(Some(&p.groups.join(", ")))),
    ] {
        table.row(vec![k.into(), v]);
    }
    table
}

/// One row per passkey of the person, with the serial of the key holding it.
fn passkey_table(detail: &PersonDetail) -> Table {
    let mut passkeys = Table::new(&["passkey", "state", "origin", "model", "aaguid", "key serial"]);
    for pk in &detail.passkeys {
        let serial = pk
            .security_key_id
            .as_ref()
            .and_then(|id| detail.keys.iter().find(|k| &k.id == id))
            .and_then(|k| k.serial.as_deref());
        passkeys.row(vec![
            pk.id.clone(),
            pk.state.clone(),
            pk.origin.clone(),
            or_dash(pk.model.as_deref()),
            pk.aaguid.clone(),
            or_dash(serial),
        ]);
    }
    passkeys
}

/// One row per issuance.
fn issuance_table(issuances: &[IssuanceView]) -> Table {
    let mut history = Table::new(&["issuance", "state", "channel", "requested by", "updated", "failure"]);
    for i in issuances {
        history.row(vec![
            i.id.clone(),
            i.state.clone(),
            i.channel.clone(),
            i.requester.clone(),
            i.updated_at.clone(),
            or_dash(i.failure_reason.as_deref()),
        ]);
    }
    history
}

/// `people revoke`: every passkey of the person.
async fn revoke(api: &ApiClient, upn: &str, reason: Option<String>) -> anyhow::Result<()> {
    let n = api.revoke_person(upn, reason).await.map_err(|e| when_not_found(e, PERSON_HINT))?;
    println!("revoked {} passkey(s) of {upn}", n.revoked);
    Ok(())
}

/// `people link`: the person's Entra account, by object id or UPN.
async fn link(api: &ApiClient, upn: &str, body: &LinkRequest) -> anyhow::Result<()> {
    let p = api.link_person(upn, body).await.map_err(|e| when_not_found(e, PERSON_HINT))?;
    println!(
        "{} is linked to Entra object {} (by {})",
        p.upn,
        or_dash(p.entra_object_id.as_deref()),
        or_dash(p.link_method.as_deref())
    );
    Ok(())
}

/// One table row for a person.
fn person_row(p: &PersonView) -> Vec<String> {
    vec![
        p.upn.clone(),
        p.display_name.clone(),
        if p.enabled && !p.deleted_in_entra { "yes" } else { "no" }.into(),
        if p.entra_object_id.is_some() { "yes" } else { "no" }.into(),
        p.groups.join(" "),
        p.id.clone(),
    ]
}

/// Every person (following the pages), or the matches of `search`.
pub async fn all_people(api: &ApiClient, search: Option<&str>) -> anyhow::Result<Vec<PersonView>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = api.people(search, after.as_deref(), 1000).await?;
        out.extend(page.items);
        match page.next {
            Some(next) if search.is_none() => after = Some(next),
            _ => return Ok(out),
        }
    }
}
