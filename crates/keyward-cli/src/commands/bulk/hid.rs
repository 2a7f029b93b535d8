//! Bulk provisioning with USB security keys: one row at a time, the operator plugs in the next
//! key when asked. A key the inventory knows as issued or lost is refused (it belongs to someone
//! or must not be handed out); an error on one row is recorded and the run goes on.

use std::io::BufRead;
use std::time::Instant;

use keyward_proto::jobs::UnitResult;
use serde_json::json;

use super::RunSummary;
use crate::api_client::ApiClient;
use crate::commands::provision::flow::{PinMode, ProvisionRequest, provision_one};

/// Asks for the next key and waits for Enter (or end of input: stop).
fn prompt(upn: &str) -> anyhow::Result<bool> {
    eprintln!("insert a new security key for {upn} and press Enter (Ctrl-D to stop)");
    let mut line = String::new();
    Ok(std::io::stdin().lock().read_line(&mut line)? > 0)
}

/// Shows a generated PIN once on the terminal (never in the report or the server).
fn show_pin(upn: &str, pin: &secrecy::SecretString) {
    use secrecy::ExposeSecret;
    eprintln!("PIN for {upn}: {}   (shown only this once: hand it over now)", pin.expose_secret());
}

async fn refuse_known_key(api: &ApiClient, serial: Option<&str>) -> anyhow::Result<()> {
    let Some(serial) = serial else { return Ok(()) };
    for key in api.keys(None).await? {
        if key.serial.as_deref() == Some(serial) && matches!(key.state.as_str(), "issued" | "lost") {
            anyhow::bail!("key {serial} is {} in the inventory; use another key", key.state);
        }
    }
    Ok(())
}

/// Provisions the job's rows on USB keys, one after another.
pub async fn run(api: &ApiClient, job: &str, lease_secs: u64) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    loop {
        let Some(unit) = api.claim_units(job, 1, lease_secs.max(600)).await?.pop() else { break };
        let upn = unit.row.upn.clone();
        if !prompt(&upn)? {
            let body = UnitResult {
                unit: unit.unit.clone(),
                lease_token: unit.lease_token.clone(),
                outcome: "retry".into(),
                result: json!({"outcome": "pending", "reason": "stopped by the operator"}).to_string(),
            };
            api.finish_unit(job, &body).await?;
            break;
        }
        let result = async {
            refuse_known_key(api, unit.row.serial.as_deref()).await?;
            let mut key = crate::desk_key::open("hid", None)?;
            let req = ProvisionRequest {
                upn: upn.clone(),
                serial: unit.row.serial.clone(),
                pin: PinMode::Random,
                force_pin_change: None,
                reset: false,
                channel: "bulk",
                display_name: unit.row.display_name.clone(),
            };
            let done = provision_one(api, &mut key, &req).await?;
            if let Some(pin) = &done.pin {
                show_pin(&upn, pin);
            }
            anyhow::Ok(done.passkey.id)
        }
        .await;
        let (state, result) = match &result {
            Ok(id) => {
                summary.provisioned += 1;
                ("done", json!({"outcome": "provisioned", "detail": id}))
            }
            Err(e) => {
                summary.failed += 1;
                eprintln!("failed: {upn}: {e:#}");
                ("failed", json!({"outcome": "failed", "reason": format!("{e:#}")}))
            }
        };
        let body = UnitResult {
            unit: unit.unit.clone(),
            lease_token: unit.lease_token.clone(),
            outcome: state.into(),
            result: result.to_string(),
        };
        api.finish_unit(job, &body).await?;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
