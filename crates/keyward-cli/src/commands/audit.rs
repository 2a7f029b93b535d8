//! `keyward audit list|verify|export|anchor`: the server's hash-chained audit trail.
//!
//! `verify` asks the server to recompute the chain and exits non-zero when it is broken, so it can
//! run from cron; with `--anchor FILE` it also checks the chain against an anchor made earlier
//! (events deleted at or before it, or the chain recomputed up to it). `anchor` prints the
//! server-signed head of the chain as JSON, to hand to a notary or a write-once store. `export`
//! writes every event as JSON Lines (one event per line) for a SIEM or an auditor, following the
//! pages until the end.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::ClientArgs;
use super::output::{self, Format, Table};

/// `keyward audit …`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List audit events, oldest first.
    List {
        /// Only events after this sequence number.
        #[arg(long, value_name = "SEQ")]
        after: Option<i64>,
        /// At most N events (1–1000).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Check that the audit chain is intact (exit status 1 when it is not).
    Verify {
        /// Also check the chain against this anchor (from `keyward audit anchor`).
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
    },
    /// Print the server-signed head of the chain (JSON) to keep outside the database.
    Anchor {
        /// The file to write (default: standard output); never overwritten.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write every audit event as JSON Lines.
    Export {
        /// The file to write (default: standard output).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Runs `keyward audit …`.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        AuditCommand::List { after, limit, format } => {
            if !(1..=1000).contains(&limit) {
                anyhow::bail!(
                    "--limit must be between 1 and 1000; use `keyward audit export` for everything"
                );
            }
            let events = api.audit(after, None, limit).await?.items;
            let mut table = Table::new(&["seq", "at", "actor", "action", "subject", "outcome", "detail"]);
            for e in &events {
                table.row(vec![
                    e.seq.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.subject.clone(),
                    e.outcome.clone(),
                    e.detail.clone(),
                ]);
            }
            output::print(format, &table, &events)?;
        }
        AuditCommand::Anchor { output } => {
            let anchor = api.audit_anchor().await?;
            let text = serde_json::to_string_pretty(&anchor)? + "\n";
            match output {
                Some(path) => {
                    let mut file =
                        std::fs::OpenOptions::new().write(true).create_new(true).open(&path).with_context(
                            || format!("cannot create {} (an anchor is never overwritten)", path.display()),
                        )?;
                    file.write_all(text.as_bytes())?;
                    eprintln!(
                        "anchored event #{} in {}; hand it to your notary or write-once store",
                        anchor.seq,
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
        }
        AuditCommand::Verify { anchor } => {
            let report = match anchor {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read the anchor {}", path.display()))?;
                    let anchor: keyward_proto::audit::AuditAnchor = serde_json::from_str(&text)
                        .with_context(|| {
                            format!("{} is not an anchor written by `keyward audit anchor`", path.display())
                        })?;
                    api.verify_audit_against(&anchor).await?
                }
                None => api.verify_audit().await?,
            };
            if report.ok {
                println!("audit chain intact: {} events verified", report.events);
            } else {
                anyhow::bail!(
                    "the audit chain is broken after {} events: {}; keep the database as it is and compare it with a backup or an earlier `keyward audit export`",
                    report.events,
                    report.problem.as_deref().unwrap_or("no detail")
                );
            }
        }
        AuditCommand::Export { output } => {
            let mut sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut after: Option<String> = None;
            let mut count = 0usize;
            loop {
                let page = api.audit(None, after.as_deref(), 1000).await?;
                for e in &page.items {
                    serde_json::to_writer(&mut sink, e)?;
                    sink.write_all(b"\n")?;
                }
                count += page.items.len();
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            sink.flush()?;
            if let Some(path) = output {
                eprintln!("wrote {count} audit events to {}", path.display());
            }
        }
    }
    Ok(())
}
