//! `keyward doctor [--user UPN] [--key …] [--aaguid …] [--serial …]`: every reason a registration
//! would fail, each with its fix, before any key is touched.
//!
//! The checks run on the server (`GET /api/v1/doctor`), which holds the Entra connector and
//! Keyward's records; this command only adds what the workstation knows: the model of the key on
//! the desk, read with a CTAP getInfo (a read: no PIN, no touch, nothing written). The exit code
//! is 0 when nothing blocks and 1 otherwise, so scripts can gate a bulk run on it.

use anyhow::Context;
use clap::{Args, ValueEnum};
use keyward_ctap::Info;
use keyward_proto::doctor::{DoctorReport, Finding, Severity};

use crate::commands::ClientArgs;
use crate::desk_key;

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

/// What getInfo says about the key on the desk: its AAGUID (dashed) and whether it can hold an
/// Entra passkey at all.
fn read_key(key: String, serial: Option<String>) -> anyhow::Result<(String, Vec<Finding>)> {
    let mut client = desk_key::open(&key, serial.as_deref())?;
    let info = client.get_info().context("the key did not answer getInfo")?;
    Ok((uuid::Uuid::from_bytes(info.aaguid).to_string(), key_findings(&info)))
}

fn key_finding(check: &str, ok: bool, good: &str, bad: &str, fix: &str) -> Finding {
    Finding {
        check: check.into(),
        severity: if ok { Severity::Ok } else { Severity::Blocking },
        message: if ok { good.into() } else { bad.into() },
        fix: (!ok).then(|| fix.into()),
    }
}

/// The key's capabilities Entra needs: CTAP2, discoverable credentials, user verification, room.
fn key_findings(info: &Info) -> Vec<Finding> {
    let fido2 = info.versions.iter().any(|v| v.starts_with("FIDO_2"));
    let rk = info.options.get("rk") == Some(&true);
    let uv = info.options.contains_key("clientPin") || info.options.contains_key("uv");
    let room = info.remaining_discoverable_credentials != Some(0);
    vec![
        key_finding(
            "key.fido2",
            fido2,
            "the key speaks CTAP2 (FIDO2)",
            "the key is U2F-only (no FIDO2)",
            "use a FIDO2 security key",
        ),
        key_finding(
            "key.resident",
            rk,
            "the key stores discoverable credentials",
            "the key cannot store discoverable credentials, which Entra passkeys are",
            "use a key that supports resident keys (rk)",
        ),
        key_finding(
            "key.uv",
            uv,
            "the key can verify the user (PIN or built-in UV)",
            "the key cannot verify the user; Entra requires user verification",
            "use a key with a PIN (clientPin) or built-in user verification",
        ),
        key_finding(
            "key.capacity",
            room,
            "the key has room for another passkey",
            "the key has no room left for discoverable credentials",
            "delete an unused credential (`keyward device credentials --delete ID`) or reset the key",
        ),
    ]
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
    let (aaguid, local) = match args.key.clone() {
        Some(key) => {
            let (aaguid, found) = tokio::task::spawn_blocking(move || read_key(key, hid_serial)).await??;
            (Some(aaguid), found)
        }
        None => (args.aaguid.clone(), Vec::new()),
    };
    let mut report = api.doctor(args.user.as_deref(), aaguid.as_deref(), args.serial.as_deref()).await?;
    report.findings.splice(0..0, local);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_capabilities_entra_needs() {
        let good = Info {
            versions: vec!["FIDO_2_0".into(), "FIDO_2_1".into()],
            options: [("rk".to_owned(), true), ("clientPin".to_owned(), false)].into(),
            remaining_discoverable_credentials: Some(20),
            ..Info::default()
        };
        let u2f = Info { versions: vec!["U2F_V2".into()], ..good.clone() };
        let no_rk = Info { options: [("clientPin".to_owned(), true)].into(), ..good.clone() };
        let no_uv = Info { options: [("rk".to_owned(), true)].into(), ..good.clone() };
        let bio = Info { options: [("rk".to_owned(), true), ("uv".to_owned(), true)].into(), ..good.clone() };
        let full = Info { remaining_discoverable_credentials: Some(0), ..good.clone() };
        let cases = [
            ("good", &good, vec![]),
            ("U2F only", &u2f, vec!["key.fido2"]),
            ("no resident keys", &no_rk, vec!["key.resident"]),
            ("no user verification", &no_uv, vec!["key.uv"]),
            ("built-in UV only", &bio, vec![]),
            ("full", &full, vec!["key.capacity"]),
        ];
        for (name, info, want) in cases {
            let got: Vec<String> = key_findings(info)
                .into_iter()
                .filter(|f| f.severity == Severity::Blocking)
                .map(|f| f.check)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
