//! `keyward policy show|set` and `keyward policy enrollment set`: the tenant's FIDO2 method policy
//! in Entra, and Keyward's own enrollment policies per group.
//!
//! `set` sends a PATCH with only the properties given on the command line (Graph's names), so a
//! change to one setting never overwrites another someone made in the portal meanwhile. The policy
//! is shown from Graph's JSON rather than a typed struct so that properties this version does not
//! know yet still show up in `--json`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use keyward_proto::admin::PolicyRequest;
use serde_json::{Map, Value, json};

use super::ClientArgs;
use super::output::{Table, or_dash};
use crate::api_client::ApiClient;

/// `keyward policy …`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Show the tenant's FIDO2 method policy and Keyward's enrollment policies.
    Show {
        /// Print the raw JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Change the tenant's FIDO2 method policy (only what is given is changed).
    Set(SetArgs),
    /// Keyward's enrollment policies (per group: mode, PIN rules, allowed models, key limit).
    Enrollment {
        #[command(subcommand)]
        command: EnrollmentCommand,
    },
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

/// Enabled or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MethodState {
    Enabled,
    Disabled,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("restrictions").args(["allow", "block", "no_key_restrictions"])))]
struct SetArgs {
    /// Turn the FIDO2 method on or off for the tenant.
    #[arg(long, value_enum)]
    state: Option<MethodState>,
    /// Self-service registration; must be on for Keyward to provision (Graph known issue).
    #[arg(long, value_enum)]
    self_service: Option<Switch>,
    /// Require attestation (isAttestationEnforced).
    #[arg(long, value_enum)]
    enforce_attestation: Option<Switch>,
    /// Allow only these model AAGUIDs.
    #[arg(long, num_args = 1.., value_name = "AAGUID")]
    allow: Vec<String>,
    /// Block these model AAGUIDs.
    #[arg(long, num_args = 1.., value_name = "AAGUID")]
    block: Vec<String>,
    /// Remove the AAGUID allow/block list.
    #[arg(long)]
    no_key_restrictions: bool,
    /// A JSON file with Graph properties to change; the flags above override it.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum EnrollmentCommand {
    /// Create or replace a group's enrollment policy.
    Set {
        /// The group (as in Entra: display name or object id).
        group: String,
        /// disabled, optional or mandatory.
        #[arg(long)]
        mode: String,
        /// Minimum PIN length set on the key (4–63).
        #[arg(long, value_name = "N")]
        pin_min_length: Option<u8>,
        /// Make the user change the PIN on first use.
        #[arg(long)]
        force_pin_change: bool,
        /// Allow only these model AAGUIDs (default: any).
        #[arg(long, num_args = 1.., value_name = "AAGUID")]
        allow: Vec<String>,
        /// At most N registered passkeys per person.
        #[arg(long, value_name = "N")]
        max: Option<u32>,
    },
}

/// Runs `keyward policy …`.
pub async fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        PolicyCommand::Show { json } => show(&api, json).await,
        PolicyCommand::Set(set) => set_entra_policy(&api, set).await,
        PolicyCommand::Enrollment {
            command: EnrollmentCommand::Set { group, mode, pin_min_length, force_pin_change, allow, max },
        } => {
            let request = PolicyRequest {
                mode,
                pin_min_length,
                pin_force_change: force_pin_change,
                allowed_aaguids: allow,
                max_passkeys_per_person: max,
            };
            set_enrollment_policy(&api, &group, &request).await
        }
    }
}

/// `policy show`: the tenant's FIDO2 method policy (when the connector works) and Keyward's
/// enrollment policies.
async fn show(api: &ApiClient, json: bool) -> anyhow::Result<()> {
    let enrollment = api.policies().await?;
    // Without a working connector the enrollment policies are still worth showing.
    let entra = match api.entra_policy().await {
        Ok(p) => p,
        Err(e) if e.status() == Some(503) && !json => {
            eprintln!("warning: cannot read the tenant's FIDO2 policy: {e}");
            Value::Null
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let all = json!({"entra_fido2_policy": entra, "enrollment_policies": enrollment});
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if !entra.is_null() {
        print!("{}", describe_entra(&entra));
        println!();
    }
    println!("Keyward enrollment policies");
    if enrollment.is_empty() {
        println!("  none; add one with `keyward policy enrollment set GROUP --mode optional`");
        return Ok(());
    }
    let mut table = Table::new(&["group", "mode", "pin_min", "force_pin_change", "max", "allowed"]);
    for p in &enrollment {
        table.row(vec![
            p.group.clone(),
            p.mode.clone(),
            p.pin_min_length.to_string(),
            p.pin_force_change.to_string(),
            p.max_passkeys_per_person.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            if p.allowed_aaguids.is_empty() { "any".into() } else { p.allowed_aaguids.join(" ") },
        ]);
    }
    print!("{}", table.to_text());
    Ok(())
}

/// `policy set`: patches the tenant's FIDO2 method policy and shows it after the change.
async fn set_entra_policy(api: &ApiClient, set: SetArgs) -> anyhow::Result<()> {
    let changes = changes(set)?;
    let after = api.update_entra_policy(&changes).await?;
    println!(
        "changed: {}",
        changes.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
    );
    print!("{}", describe_entra(&after));
    Ok(())
}

/// `policy enrollment set`: stores a group's enrollment policy and says what it now is.
async fn set_enrollment_policy(api: &ApiClient, group: &str, request: &PolicyRequest) -> anyhow::Result<()> {
    let p = api.set_policy(group, request).await?;
    println!(
        "enrollment policy for {}: {}, PIN at least {}{}, {}{}",
        p.group,
        p.mode,
        p.pin_min_length,
        if p.pin_force_change { " (changed on first use)" } else { "" },
        if p.allowed_aaguids.is_empty() {
            "any model".to_owned()
        } else {
            format!("models {}", p.allowed_aaguids.join(" "))
        },
        p.max_passkeys_per_person.map(|m| format!(", at most {m} passkeys")).unwrap_or_default()
    );
    Ok(())
}

/// The PATCH body: the `--json` file's object, then each given flag in Graph's names.
fn changes(set: SetArgs) -> anyhow::Result<Value> {
    let mut body: Map<String, Value> = match &set.json {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => anyhow::bail!(
                    "{} must hold a JSON object of Graph properties, e.g. {{\"isAttestationEnforced\": true}}",
                    path.display()
                ),
                Err(e) => anyhow::bail!(
                    "{} is not valid JSON ({e}); fix it or use the flags instead",
                    path.display()
                ),
            }
        }
        None => Map::new(),
    };
    if let Some(s) = set.state {
        body.insert("state".into(), json!(if s == MethodState::Enabled { "enabled" } else { "disabled" }));
    }
    if let Some(s) = set.self_service {
        body.insert("isSelfServiceRegistrationAllowed".into(), json!(s == Switch::On));
    }
    if let Some(s) = set.enforce_attestation {
        body.insert("isAttestationEnforced".into(), json!(s == Switch::On));
    }
    let restrictions = if !set.allow.is_empty() {
        Some(json!({"isEnforced": true, "enforcementType": "allow", "aaGuids": checked(&set.allow)?}))
    } else if !set.block.is_empty() {
        Some(json!({"isEnforced": true, "enforcementType": "block", "aaGuids": checked(&set.block)?}))
    } else if set.no_key_restrictions {
        Some(json!({"isEnforced": false, "enforcementType": "block", "aaGuids": []}))
    } else {
        None
    };
    if let Some(r) = restrictions {
        body.insert("keyRestrictions".into(), r);
    }
    if body.is_empty() {
        anyhow::bail!(
            "nothing to change: give at least one of --state, --self-service, --enforce-attestation, --allow, --block, --no-key-restrictions or --json"
        );
    }
    Ok(Value::Object(body))
}

/// AAGUIDs in Graph's dashed lower-case form; a malformed one is refused with its position.
fn checked(aaguids: &[String]) -> anyhow::Result<Vec<String>> {
    aaguids
        .iter()
        .map(|a| {
            uuid::Uuid::parse_str(a.trim()).map(|u| u.hyphenated().to_string()).map_err(|_| {
                anyhow::anyhow!("{a:?} is not an AAGUID; give it as 8-4-4-4-12 hex digits (`keyward device info` shows a key's)")
            })
        })
        .collect()
}

/// The FIDO2 method policy as a few readable lines.
fn describe_entra(p: &Value) -> String {
    let yes = |v: &Value| if v.as_bool().unwrap_or(false) { "yes" } else { "no" };
    let mut out = String::from("Entra ID FIDO2 (passkey) method policy\n");
    out.push_str(&format!("  state:                         {}\n", p["state"].as_str().unwrap_or("?")));
    let self_service = p["isSelfServiceRegistrationAllowed"].as_bool().unwrap_or(false);
    out.push_str(&format!(
        "  self-service registration:     {}{}\n",
        yes(&p["isSelfServiceRegistrationAllowed"]),
        if self_service {
            ""
        } else {
            "  (Keyward cannot provision: turn on with `keyward policy set --self-service on`)"
        }
    ));
    out.push_str(&format!("  attestation enforced:          {}\n", yes(&p["isAttestationEnforced"])));
    out.push_str(&format!("  key restrictions:              {}\n", restrictions(&p["keyRestrictions"])));
    let targets = |v: &Value| -> String {
        let list: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        format!(
                            "{} ({})",
                            t["id"].as_str().unwrap_or("?"),
                            t["targetType"].as_str().unwrap_or("group")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if list.is_empty() { "none".into() } else { list.join(", ") }
    };
    out.push_str(&format!("  included:                      {}\n", targets(&p["includeTargets"])));
    out.push_str(&format!("  excluded:                      {}\n", targets(&p["excludeTargets"])));
    match p["passkeyProfiles"].as_array().filter(|a| !a.is_empty()) {
        None => out.push_str("  passkey profiles:              none (legacy settings above apply)\n"),
        Some(profiles) => {
            out.push_str("  passkey profiles:\n");
            let default = p["defaultPasskeyProfile"].as_str();
            for pr in profiles {
                let id = pr["id"].as_str().unwrap_or("?");
                out.push_str(&format!(
                    "    - {}{} ({id}): types {}, attestation {}, restrictions {}\n",
                    or_dash(pr["name"].as_str()),
                    if Some(id) == default { " [default]" } else { "" },
                    pr["passkeyTypes"].as_str().unwrap_or("?"),
                    pr["attestationEnforcement"].as_str().unwrap_or("?"),
                    restrictions(&pr["keyRestrictions"])
                ));
            }
        }
    }
    out
}

fn restrictions(r: &Value) -> String {
    if !r["isEnforced"].as_bool().unwrap_or(false) {
        return "none".into();
    }
    let list: Vec<&str> =
        r["aaGuids"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    format!(
        "{} {}",
        r["enforcementType"].as_str().unwrap_or("?"),
        if list.is_empty() { "(empty list)".into() } else { list.join(", ") }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(f: impl FnOnce(&mut SetArgs)) -> anyhow::Result<Value> {
        let mut s = SetArgs {
            state: None,
            self_service: None,
            enforce_attestation: None,
            allow: vec![],
            block: vec![],
            no_key_restrictions: false,
            json: None,
        };
        f(&mut s);
        changes(s)
    }

    #[test]
    fn only_given_settings_are_patched() {
        let aaguid = "CB69481E-8FF7-4039-93EC-0A2729A154A8";
        for (body, want) in [
            (
                set(|s| s.self_service = Some(Switch::On)).unwrap(),
                json!({"isSelfServiceRegistrationAllowed": true}),
            ),
            (set(|s| s.state = Some(MethodState::Disabled)).unwrap(), json!({"state": "disabled"})),
            (
                set(|s| s.enforce_attestation = Some(Switch::Off)).unwrap(),
                json!({"isAttestationEnforced": false}),
            ),
            (
                set(|s| s.allow = vec![aaguid.into()]).unwrap(),
                json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [aaguid.to_lowercase()]}}),
            ),
            (
                set(|s| s.no_key_restrictions = true).unwrap(),
                json!({"keyRestrictions": {"isEnforced": false, "enforcementType": "block", "aaGuids": []}}),
            ),
        ] {
            assert_eq!(body, want);
        }
    }

    #[test]
    fn a_json_file_is_the_base_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(&file, r#"{"state": "disabled", "isAttestationEnforced": true}"#).unwrap();
        let body = set(|s| {
            s.json = Some(file.clone());
            s.state = Some(MethodState::Enabled);
        })
        .unwrap();
        assert_eq!(body, json!({"state": "enabled", "isAttestationEnforced": true}));
        for (text, says) in [("[1, 2]", "must hold a JSON object"), ("{not json", "is not valid JSON")] {
            std::fs::write(&file, text).unwrap();
            let err = set(|s| s.json = Some(file.clone())).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("policy.json"), "{err}");
        }
    }

    #[test]
    fn nothing_to_change_and_bad_aaguids_are_refused_with_the_fix() {
        let none = set(|_| {}).unwrap_err().to_string();
        assert!(none.contains("--self-service"), "{none}");
        let bad = set(|s| s.block = vec!["not-a-guid".into()]).unwrap_err().to_string();
        assert!(bad.contains("8-4-4-4-12"), "{bad}");
    }
}
