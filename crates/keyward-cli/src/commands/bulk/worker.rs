//! One unit of a bulk job: look at what a previous run left, provision, report the outcome.
//!
//! Before provisioning a person the worker asks the server what exists already (a unit claimed
//! again after a crash or Ctrl-C may have got anywhere): a registered passkey issued by Keyward
//! means the row is done — never provision twice. Otherwise any issuance left open is marked
//! failed (the server first asks Entra about a passkey left pending, and refuses if the
//! earlier attempt in fact registered it — then the row is done too) and the soft-key vault (which then holds at most an unused credential) is deleted,
//! and the person is provisioned from the start on a fresh vault. The unit's outcome goes to the
//! server under the unit's lease; a result never contains a PIN.

use keyward_proto::jobs::UnitLease;
use keyward_proto::jobs::UnitResult;
use serde_json::json;

use super::soft::SoftKeys;
use crate::api_client::ApiClient;
use crate::commands::provision::flow::{PinMode, ProvisionRequest, provision_one};
use crate::commands::provision::pin::PinGenerator;

/// Length of the PINs made for `--pin-recipient` (digits; above every common policy minimum).
const PIN_FILE_LENGTH: usize = 8;

/// Issuance states that may still become a passkey.
const OPEN_STATES: [&str; 3] = ["requested", "approved", "options-issued"];

/// What happened to a unit, for the summary and the report.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `provisioned`, `already-done`, `retry` (queued again) or `failed`.
    pub status: &'static str,
    /// Detail: passkey id or the error.
    pub detail: String,
}

/// Settles what a previous attempt left; `Some` when the person turns out to be done.
async fn settle_previous(api: &ApiClient, keys: &SoftKeys, upn: &str) -> anyhow::Result<Option<String>> {
    let person = api.person(upn).await?;
    if let Some(p) = person.passkeys.iter().find(|p| p.state == "registered" && p.origin == "managed") {
        return Ok(Some(p.id.clone()));
    }
    for issuance in api.issuances_of(upn).await? {
        if OPEN_STATES.contains(&issuance.state.as_str()) {
            let reason = "bulk provisioning was interrupted before this issuance completed; starting again";
            if let Err(e) = api.fail_issuance(&issuance.id, reason).await {
                let now = api.issuance(&issuance.id).await?;
                if now.state == "registered" {
                    // The server found the earlier attempt's passkey in Entra (its answer had
                    // been lost): the row is done, and the vault holds that passkey.
                    let person = api.person(upn).await?;
                    if let Some(p) =
                        person.passkeys.iter().find(|p| p.state == "registered" && p.origin == "managed")
                    {
                        return Ok(Some(p.id.clone()));
                    }
                    anyhow::bail!(
                        "issuance {} became registered while being cleaned up; run --resume again",
                        issuance.id
                    );
                }
                if OPEN_STATES.contains(&now.state.as_str()) {
                    return Err(e.into());
                }
            }
        }
    }
    keys.discard(upn)?;
    Ok(None)
}

/// Provisions one unit on a soft key and reports the outcome to the server.
pub async fn run_soft_unit(api: &ApiClient, keys: &SoftKeys, job: &str, unit: UnitLease) -> Outcome {
    let outcome = soft_unit(api, keys, &unit).await;
    let (state, result) = match &outcome {
        Ok(o) => ("done", json!({"outcome": o.status, "detail": o.detail})),
        // Entra throttled longer than the server waits: the row goes back to the queue (the
        // flow already undid the attempt) instead of failing for good.
        Err(e) if throttled(e) && unit.attempts < MAX_ATTEMPTS => {
            ("retry", json!({"outcome": "pending", "reason": format!("{e:#}")}))
        }
        Err(e) => ("failed", json!({"outcome": "failed", "reason": format!("{e:#}")})),
    };
    let retried = state == "retry";
    let body = UnitResult {
        unit: unit.unit.clone(),
        lease_token: unit.lease_token.clone(),
        outcome: state.to_owned(),
        result: result.to_string(),
    };
    if let Err(e) = api.finish_unit(job, &body).await {
        // The unit stays leased and is taken up again by `--resume` once the lease expires.
        return Outcome { status: "failed", detail: format!("could not record the outcome: {e}") };
    }
    if retried {
        return Outcome { status: "retry", detail: "throttled by Entra; queued again".into() };
    }
    outcome.unwrap_or_else(|e| Outcome { status: "failed", detail: format!("{e:#}") })
}

/// How many times a row throttled by Entra is tried before it counts as failed.
const MAX_ATTEMPTS: i64 = 5;

/// Whether the error is Entra's throttling (HTTP 429 behind the server's retries).
fn throttled(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("429") || text.contains("TooManyRequests")
}

async fn soft_unit(api: &ApiClient, keys: &SoftKeys, unit: &UnitLease) -> anyhow::Result<Outcome> {
    let upn = &unit.row.upn;
    if (unit.attempts > 1 || keys.exists(upn))
        && let Some(passkey) = settle_previous(api, keys, upn).await?
    {
        return Ok(Outcome { status: "already-done", detail: passkey });
    }
    // Creating a vault stretches the passphrase (Argon2id, tens of ms): keep the other rows'
    // network waits moving meanwhile.
    let mut vault = tokio::task::block_in_place(|| keys.create(upn))?;
    // With a PIN file, the PIN is made here and written before the key gets it, so a crash
    // after registration never leaves a vault whose PIN nobody has.
    let pin = if keys.keeps_pins() {
        let pin = PinGenerator::default().generate(PIN_FILE_LENGTH);
        keys.write_pin(upn, &pin)?;
        PinMode::Given(pin)
    } else {
        PinMode::Random
    };
    let req = ProvisionRequest {
        upn: upn.clone(),
        serial: unit.row.serial.clone(),
        pin,
        force_pin_change: None,
        reset: false,
        channel: "bulk",
        display_name: unit.row.display_name.clone(),
    };
    match provision_one(api, &mut vault.client, &req).await {
        Ok(done) => Ok(Outcome { status: "provisioned", detail: done.passkey.id }),
        Err(e) => {
            // The flow removed any credential it made; the vault holds nothing of value.
            drop(vault);
            let _ = keys.discard(upn);
            Err(e.into())
        }
    }
}
