//! `keyward doctor [--user UPN] [--key …] [--aaguid …] [--serial …]`: every reason a registration
//! would fail, each with its fix, before any key is touched.
//!
//! The checks run on the server (`GET /api/v1/doctor`), which holds the Entra connector and
//! Keyward's records; this command only adds what the workstation knows: the model of the key on
//! the desk, read with a CTAP getInfo (a read: no PIN, no touch, nothing written). The exit code
//! is 0 when nothing blocks and 1 otherwise, so scripts can gate a bulk run on it.

use anyhow::Context;
use clap::{Args, ValueEnum};
use keyward_server::service::doctor::{DoctorReport, Finding, Severity};

use crate::commands::ClientArgs;
use crate::device_command;

/// `keyward doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person to provision (UPN or Keyward id).
    #[arg(long, value_name = "UPN")]
    user: Option<String>,
    /// The key on the desk (`hid` or `soft:unix:PATH`); only its model is read (getInfo).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The key model's AAGUID, when the key is not at hand.
    #[arg(long, value_name = "UUID", conflicts_with = "key")]
    aaguid: Option<String>,
    /// The key's serial (checks that it is not lost, disposed or issued to someone else).
    #[arg(long)]
    serial: Option<String>,
    /// Output: a readable list, or the report as JSON.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
}

/// How the findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DoctorFormat {
    /// One line per finding, with the fix under it.
    Text,
    /// The report as JSON.
    Json,
}

/// Why doctor ends with a non-zero exit code.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// At least one finding blocks registration.
    #[error("{0} finding(s) would make the registration fail; apply the fixes above and run doctor again")]
    Blocking(usize),
}

/// The AAGUID the key on the desk reports in getInfo, dashed.
fn key_aaguid(key: String, serial: Option<String>) -> anyhow::Result<String> {
    let mut client = device_command::open(&key, serial.as_deref())?;
    let info = client.get_info().context("the key did not answer getInfo")?;
    Ok(uuid::Uuid::from_bytes(info.aaguid).to_string())
}

fn print_text(report: &DoctorReport) {
    for Finding { check, severity, message, fix } in &report.findings {
        let label = match severity {
            Severity::Ok => "ok",
            Severity::Warning => "WARNING",
            Severity::Blocking => "BLOCKING",
        };
        println!("{label:<9}{check:<22}{message}");
        if let Some(fix) = fix {
            println!("{:<31}fix: {fix}", "");
        }
    }
    let count = |s| report.findings.iter().filter(|f| f.severity == s).count();
    println!(
        "\n{} ok, {} warning(s), {} blocking",
        count(Severity::Ok),
        count(Severity::Warning),
        count(Severity::Blocking)
    );
}

/// Runs `keyward doctor`.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    let hid_serial = args.key.as_deref().filter(|k| *k == "hid").and(args.serial.clone());
    let aaguid = match args.key.clone() {
        Some(key) => Some(tokio::task::spawn_blocking(move || key_aaguid(key, hid_serial)).await??),
        None => args.aaguid.clone(),
    };
    let report = api.doctor(args.user.as_deref(), aaguid.as_deref(), args.serial.as_deref()).await?;
    match args.format {
        DoctorFormat::Text => print_text(&report),
        DoctorFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    let blocking = report.findings.iter().filter(|f| f.severity == Severity::Blocking).count();
    if blocking > 0 {
        return Err(DoctorError::Blocking(blocking).into());
    }
    Ok(())
}
