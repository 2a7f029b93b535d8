//! `keyward bulk provision`: provision many people from a CSV as a resumable server job.
//!
//! The server holds the job (`/api/v1/jobs`): one unit per row, judged at creation (duplicates
//! and people who already hold a registered passkey are skipped). This command claims units
//! under a lease, provisions each with the same flow as `keyward provision`
//! ([`crate::commands::provision::flow`]), and reports each unit's outcome. Killed or
//! interrupted, it is started again with `--resume JOB`: units whose lease expired are claimed
//! again and [`worker`] looks at what the previous attempt left before doing anything.
//!
//! With soft keys (`--key soft:DIR`) `--concurrency N` runs N people at once: each provisioning
//! spends most of its time waiting on the server and Entra, so the run is bounded by the tenant's
//! Graph write quota rather than by round trips. With hardware keys (`--key hid`) the operator is
//! asked for each next key, one at a time.
//!
//! [`csv`] reads the file, [`soft`] keeps the soft-key vaults, [`report`] writes the result CSV.

pub mod csv;
pub mod hid;
pub mod report;
pub mod soft;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use keyward_softkey::ca::AttestationCa;
use secrecy::SecretString;
use tokio::task::JoinSet;

use crate::api_client::ApiClient;
use crate::commands::ClientArgs;

/// `keyward bulk …`.
#[derive(Debug, clap::Args)]
pub struct BulkArgs {
    #[command(subcommand)]
    command: BulkCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BulkCommand {
    /// Provision everyone in a CSV (columns: upn, serial, displayName), resumably.
    Provision(ProvisionArgs),
}

/// Options of `keyward bulk provision`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Soft-key vaults are encrypted with KEYWARD_SOFTKEY_PASSPHRASE. PINs are never printed \
    or sent to the server; with --pin-recipient each soft key's PIN is written to DIR/<upn>.pin.age."
)]
pub struct ProvisionArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The CSV file (header: upn or userPrincipalName or email; optional serial, displayName).
    #[arg(value_name = "FILE", required_unless_present = "resume")]
    csv: Option<PathBuf>,
    /// `soft:DIR` (one soft-key vault per person in DIR) or `hid` (USB keys, one after another).
    #[arg(long, value_name = "KEY")]
    key: String,
    /// People provisioned at once (soft keys only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=512))]
    concurrency: u16,
    /// Continue the job with this id after a crash or Ctrl-C, instead of starting one from a CSV file.
    #[arg(long, value_name = "JOB", conflicts_with = "csv")]
    resume: Option<String>,
    /// Write one line per row (upn, state, outcome, detail; never a PIN) to this CSV file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Seconds a claimed row stays with this run before another run may take it over.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(2..=3600))]
    lease_secs: u64,
    /// Soft keys: the tenant's Graph write quota in writes per second (Entra's documented 3000
    /// per 150 s is 20/s); rows are started no faster than this, one write each, so Entra never
    /// has to throttle. 0: no pacing.
    #[arg(long, default_value_t = 20.0, value_name = "N")]
    write_quota: f64,
    /// Soft keys: the attestation CA certificate (PEM) the tenant trusts.
    #[arg(long, value_name = "PEM", requires = "softkey_ca_key")]
    softkey_ca_cert: Option<PathBuf>,
    /// Soft keys: the CA's private key (PKCS#8 PEM).
    #[arg(long, value_name = "PEM", requires = "softkey_ca_cert")]
    softkey_ca_key: Option<PathBuf>,
    /// Soft keys: their AAGUID (default: the soft key's own).
    #[arg(long, value_name = "UUID")]
    softkey_aaguid: Option<uuid::Uuid>,
    /// Soft keys: age recipient (age1…) to encrypt each PIN to, in DIR/<upn>.pin.age.
    #[arg(long, value_name = "AGE_PUBKEY")]
    pin_recipient: Option<String>,
}

/// Runs `keyward bulk`.
pub async fn run(args: BulkArgs) -> anyhow::Result<()> {
    let BulkCommand::Provision(args) = args.command;
    let api = Arc::new(args.client.client()?);
    let job = match (&args.resume, &args.csv) {
        (Some(job), _) => {
            let status = api.job(job).await.map_err(|e| {
                crate::commands::when_not_found(e, "give the job id printed when the run started")
            })?;
            println!(
                "resuming job {job}: {} done, {} failed, {} to do",
                status.done,
                status.failed,
                status.pending + status.running
            );
            job.clone()
        }
        (None, Some(path)) => create_job(&api, path).await?,
        (None, None) => bail!("give the CSV file, or --resume JOB"),
    };
    let work = work(&api, &job, &args);
    let summary = tokio::select! {
        summary = work => summary?,
        _ = tokio::signal::ctrl_c() => bail!(
            "interrupted; continue with `keyward bulk provision --resume {job} --key {}` (rows in flight \
             are taken up again once their lease of {} s expires)",
            args.key,
            args.lease_secs
        ),
    };
    let rows = api.job_report(&job).await?;
    if let Some(path) = &args.report {
        report::write(path, &rows)?;
        println!("report: {}", path.display());
    }
    report::print_summary(&job, &rows, summary);
    let failed = rows.iter().filter(|r| r.state == "failed").count();
    if failed > 0 {
        bail!(
            "{failed} of {} rows failed; see the report, fix the cause and run with --resume {job}",
            rows.len()
        );
    }
    Ok(())
}

/// Provisions the job's rows with the chosen kind of key.
async fn work(api: &Arc<ApiClient>, job: &str, args: &ProvisionArgs) -> anyhow::Result<RunSummary> {
    if let Some(dir) = args.key.strip_prefix("soft:") {
        let ca = load_ca(args)?;
        let aaguid =
            args.softkey_aaguid.map(|u| *u.as_bytes()).unwrap_or(keyward_softkey::Config::default().aaguid);
        let keys =
            Arc::new(soft::SoftKeys::new(PathBuf::from(dir), ca, aaguid, args.pin_recipient.as_deref())?);
        let pace =
            (args.write_quota > 0.0).then(|| Duration::from_secs_f64(WRITES_PER_USER / args.write_quota));
        run_soft(api, job, keys, usize::from(args.concurrency), args.lease_secs, pace).await
    } else if args.key == "hid" {
        if args.concurrency != 1 {
            bail!("--concurrency applies to soft keys only; USB keys are provisioned one after another");
        }
        hid::run(api, job, args.lease_secs).await
    } else {
        bail!("--key {:?} is not a key; use soft:DIR or hid", args.key)
    }
}

async fn create_job(api: &ApiClient, path: &PathBuf) -> anyhow::Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let rows = csv::parse(std::io::BufReader::new(file)).with_context(|| format!("{}", path.display()))?;
    let plan = api.create_bulk_job(rows).await?;
    println!("job {}: {} rows, {} to provision", plan.id, plan.rows, plan.to_provision);
    for u in &plan.settled {
        if let Some(v) = &u.verdict {
            println!("  line {}: {} {}: {}", u.row.line, u.row.upn, v.outcome, v.reason);
        }
    }
    println!("if this run stops, continue it with: keyward bulk provision --resume {} --key …", plan.id);
    Ok(plan.id)
}

fn load_ca(args: &ProvisionArgs) -> anyhow::Result<AttestationCa> {
    match (&args.softkey_ca_cert, &args.softkey_ca_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
            };
            Ok(AttestationCa::from_pem(&read(cert)?, &SecretString::from(read(key)?))?)
        }
        _ => {
            eprintln!(
                "note: no --softkey-ca-cert: the soft keys' attestation chains to a fresh CA the tenant does not trust; \
                 a tenant that enforces attestation will refuse them"
            );
            Ok(AttestationCa::generate()?)
        }
    }
}

/// Graph writes one provisioning costs (the POST of the fido2Method).
const WRITES_PER_USER: f64 = 1.0;

/// Counts of this run.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunSummary {
    /// People provisioned by this run.
    pub provisioned: usize,
    /// Found done from an earlier run.
    pub already_done: usize,
    /// Failed in this run.
    pub failed: usize,
    /// Put back in the queue after Entra throttled them.
    pub retried: usize,
    /// Wall time.
    pub elapsed: Duration,
}

fn progress_bar(api_total: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::new(api_total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} rows, {per_sec}, ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done);
    bar
}

/// Provisions the job's rows on soft keys, `concurrency` at a time (paced to the write quota
/// when `pace` is set), until no row is pending or leased.
async fn run_soft(
    api: &Arc<ApiClient>,
    job: &str,
    keys: Arc<soft::SoftKeys>,
    concurrency: usize,
    lease_secs: u64,
    pace: Option<Duration>,
) -> anyhow::Result<RunSummary> {
    let mut next_start = tokio::time::Instant::now();
    let status = api.job(job).await?;
    let total = (status.pending + status.running + status.done + status.failed) as u64;
    let bar = progress_bar(total, (status.done + status.failed) as u64);
    let started = Instant::now();
    let mut summary = RunSummary::default();
    let mut tasks = JoinSet::new();
    let mut waiting_since: Option<Instant> = None;
    loop {
        let free = concurrency - tasks.len();
        if free > 0 {
            let units = api.claim_units(job, free as i64, lease_secs).await?;
            if !units.is_empty() {
                waiting_since = None;
            }
            for unit in units {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next_start).await;
                    next_start = next_start.max(tokio::time::Instant::now() - pace) + pace;
                }
                let (api, keys, job) = (api.clone(), keys.clone(), job.to_owned());
                tasks.spawn(async move {
                    let upn = unit.row.upn.clone();
                    (upn, worker::run_soft_unit(&api, &keys, &job, unit).await)
                });
            }
        }
        if tasks.is_empty() {
            if wait_for_leased_rows(api, job, &bar, lease_secs, &mut waiting_since).await? {
                break;
            }
            continue;
        }
        if let Some(joined) = tasks.join_next().await {
            let (upn, outcome) = joined.context("a provisioning task panicked")?;
            if !record(&mut summary, &bar, &upn, &outcome) {
                continue;
            }
            bar.inc(1);
            bar.set_message(upn);
        }
        // Skipped rows are settled by the server during claims; keep the bar honest.
        if bar.position().is_multiple_of(50) {
            let status = api.job(job).await?;
            bar.set_position((status.done + status.failed) as u64);
        }
    }
    bar.finish_with_message("done");
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// With nothing in flight: whether the job is finished; if not, shows the rows still leased by
/// an earlier run (they come back when the lease expires) and waits a moment.
async fn wait_for_leased_rows(
    api: &ApiClient,
    job: &str,
    bar: &ProgressBar,
    lease_secs: u64,
    waiting_since: &mut Option<Instant>,
) -> anyhow::Result<bool> {
    let status = api.job(job).await?;
    bar.set_position((status.done + status.failed) as u64);
    if status.running == 0 && status.pending == 0 {
        return Ok(true);
    }
    let since = *waiting_since.get_or_insert_with(Instant::now);
    bar.set_message(format!(
        "waiting for {} rows leased by an earlier run (up to {lease_secs} s, {} s so far)",
        status.running,
        since.elapsed().as_secs()
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(false)
}

/// Counts a row's outcome and prints a failure; false for a row put back in the queue, which
/// is not settled yet.
fn record(summary: &mut RunSummary, bar: &ProgressBar, upn: &str, outcome: &worker::Outcome) -> bool {
    match outcome.status {
        "provisioned" => summary.provisioned += 1,
        "already-done" => summary.already_done += 1,
        "retry" => {
            summary.retried += 1;
            return false;
        }
        _ => {
            summary.failed += 1;
            let line = format!("failed: {upn}: {}", outcome.detail);
            if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) }
        }
    }
    true
}
