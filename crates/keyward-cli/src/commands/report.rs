//! `keyward report coverage|inventory`: how far the passkey rollout has come, and what is where.
//!
//! Both reports are computed here from the API's lists (people, passkeys, keys): three reads, so a
//! tenant of thousands is still one page of people per thousand plus two list calls, and no
//! server endpoint has to keep a second definition of "covered". Coverage counts enabled people
//! (not disabled, not deleted in Entra) with at least one registered passkey; a person counts once
//! in every group they are in and once per model they hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use clap::{Args, Subcommand};
use keyward_proto::inventory::{KeyView, PasskeyView};
use keyward_proto::people::PersonView;
use serde::Serialize;

use super::ClientArgs;
use super::output::{self, Format, Table};

/// `keyward report …`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Share of enabled people with a registered passkey: overall, by group and by model.
    Coverage {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Every key and passkey with person, serial, AAGUID, model and state.
    Inventory {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// One line of the coverage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// `overall`, `group` or `model`.
    pub scope: String,
    /// The group or model; `all` for overall.
    pub name: String,
    /// Enabled people with a registered passkey (of this model, for `model`).
    pub covered: usize,
    /// Enabled people in scope (all enabled people for `model`).
    pub people: usize,
    /// `covered / people` in percent, one decimal.
    pub percent: f64,
}

impl Share {
    fn new(scope: &str, name: &str, covered: usize, people: usize) -> Self {
        let percent =
            if people == 0 { 0.0 } else { (covered as f64 * 1000.0 / people as f64).round() / 10.0 };
        Self { scope: scope.into(), name: name.into(), covered, people, percent }
    }
}

/// The coverage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// All enabled people.
    pub overall: Share,
    /// Per group (people synced into groups with an enrollment policy).
    pub by_group: Vec<Share>,
    /// Per model of registered passkeys.
    pub by_model: Vec<Share>,
}

/// Computes coverage from the people and their passkeys.
pub fn coverage(people: &[PersonView], passkeys: &[PasskeyView]) -> Coverage {
    let enabled: Vec<&PersonView> = people.iter().filter(|p| p.enabled && !p.deleted_in_entra).collect();
    let enabled_ids: BTreeSet<&str> = enabled.iter().map(|p| p.id.as_str()).collect();
    let mut models_of: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for pk in
        passkeys.iter().filter(|pk| pk.state == "registered" && enabled_ids.contains(pk.person_id.as_str()))
    {
        models_of
            .entry(pk.person_id.as_str())
            .or_default()
            .insert(model_name(pk.model.as_deref(), &pk.aaguid));
    }
    let covered = |p: &PersonView| models_of.contains_key(p.id.as_str());
    let overall = Share::new("overall", "all", enabled.iter().filter(|p| covered(p)).count(), enabled.len());
    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for p in &enabled {
        for g in &p.groups {
            let entry = groups.entry(g.as_str()).or_default();
            entry.1 += 1;
            entry.0 += usize::from(covered(p));
        }
    }
    let mut models: BTreeMap<&str, usize> = BTreeMap::new();
    for set in models_of.values() {
        for m in set {
            *models.entry(m.as_str()).or_default() += 1;
        }
    }
    Coverage {
        overall,
        by_group: groups.into_iter().map(|(g, (c, n))| Share::new("group", g, c, n)).collect(),
        by_model: models.into_iter().map(|(m, c)| Share::new("model", m, c, enabled.len())).collect(),
    }
}

fn model_name(model: Option<&str>, aaguid: &str) -> String {
    model.filter(|m| !m.is_empty()).map(str::to_owned).unwrap_or_else(|| format!("unknown ({aaguid})"))
}

/// One line of the inventory: a passkey (with its key, if any) or a key holding no passkey.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryRow {
    /// The person's UPN; empty for a key with no passkey.
    pub person: String,
    /// The key's serial, when the passkey is on a known key.
    pub serial: String,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name.
    pub model: String,
    /// The key's state (`available`, `issued`, …); empty for a passkey not on a known key.
    pub key_state: String,
    /// The passkey's state (`pending`, `registered`, `revoked`); empty for a key alone.
    pub passkey_state: String,
    /// `managed` or `discovered`; empty for a key alone.
    pub origin: String,
    /// Keyward's passkey id.
    pub passkey_id: String,
    /// Keyward's key id.
    pub key_id: String,
}

/// Joins keys, passkeys and people into inventory rows: passkeys first (by person), then keys
/// that hold none.
pub fn inventory(people: &[PersonView], passkeys: &[PasskeyView], keys: &[KeyView]) -> Vec<InventoryRow> {
    let upn: HashMap<&str, &str> = people.iter().map(|p| (p.id.as_str(), p.upn.as_str())).collect();
    let key_of: HashMap<&str, &KeyView> = keys.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut rows: Vec<InventoryRow> = passkeys
        .iter()
        .map(|pk| {
            let key = pk.security_key_id.as_deref().and_then(|id| key_of.get(id));
            InventoryRow {
                person: upn
                    .get(pk.person_id.as_str())
                    .map(|u| (*u).to_owned())
                    .unwrap_or_else(|| pk.person_id.clone()),
                serial: key.and_then(|k| k.serial.clone()).unwrap_or_default(),
                aaguid: pk.aaguid.clone(),
                model: model_name(pk.model.as_deref().or(key.and_then(|k| k.model.as_deref())), &pk.aaguid),
                key_state: key.map(|k| k.state.clone()).unwrap_or_default(),
                passkey_state: pk.state.clone(),
                origin: pk.origin.clone(),
                passkey_id: pk.id.clone(),
                key_id: key.map(|k| k.id.clone()).unwrap_or_default(),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.person, &a.passkey_id).cmp(&(&b.person, &b.passkey_id)));
    let used: BTreeSet<&str> = passkeys.iter().filter_map(|p| p.security_key_id.as_deref()).collect();
    for k in keys.iter().filter(|k| !used.contains(k.id.as_str())) {
        rows.push(InventoryRow {
            person: String::new(),
            serial: k.serial.clone().unwrap_or_default(),
            aaguid: k.aaguid.clone(),
            model: model_name(k.model.as_deref(), &k.aaguid),
            key_state: k.state.clone(),
            passkey_state: String::new(),
            origin: String::new(),
            passkey_id: String::new(),
            key_id: k.id.clone(),
        });
    }
    rows
}

/// Prints the coverage report (also the demo's closing report).
pub async fn print_coverage(api: &crate::api_client::ApiClient, format: Format) -> anyhow::Result<()> {
    let people = super::people::all_people(api, None).await?;
    let passkeys = api.passkeys(None, None, Some("registered")).await?;
    let report = coverage(&people, &passkeys);
    let mut table = Table::new(&["scope", "name", "covered", "people", "percent"]);
    for s in std::iter::once(&report.overall).chain(&report.by_group).chain(&report.by_model) {
        table.row(vec![
            s.scope.clone(),
            s.name.clone(),
            s.covered.to_string(),
            s.people.to_string(),
            format!("{:.1}", s.percent),
        ]);
    }
    if format == Format::Table {
        println!(
            "passkey coverage: {} of {} enabled people ({:.1}%)\n",
            report.overall.covered, report.overall.people, report.overall.percent
        );
    }
    output::print(format, &table, &report)?;
    Ok(())
}

/// Runs `keyward report`.
pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        ReportCommand::Coverage { format } => print_coverage(&api, format).await?,
        ReportCommand::Inventory { format } => {
            let people = super::people::all_people(&api, None).await?;
            let passkeys = api.passkeys(None, None, None).await?;
            let keys = api.keys(None).await?;
            let rows = inventory(&people, &passkeys, &keys);
            let mut table = Table::new(&[
                "person",
                "serial",
                "aaguid",
                "model",
                "key_state",
                "passkey_state",
                "origin",
                "passkey_id",
                "key_id",
            ]);
            for r in &rows {
                table.row(vec![
                    r.person.clone(),
                    r.serial.clone(),
                    r.aaguid.clone(),
                    r.model.clone(),
                    r.key_state.clone(),
                    r.passkey_state.clone(),
                    r.origin.clone(),
                    r.passkey_id.clone(),
                    r.key_id.clone(),
                ]);
            }
            output::print(format, &table, &rows)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, enabled: bool, groups: &[&str]) -> PersonView {
        PersonView {
            id: id.into(),
            display_name: id.into(),
            upn: format!("{id}@x"),
            entra_object_id: None,
            link_method: None,
            enabled,
            deleted_in_entra: false,
            source: "entra-sync".into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn passkey(id: &str, person: &str, model: &str, state: &str) -> PasskeyView {
        PasskeyView {
            id: id.into(),
            entra_method_id: None,
            credential_id: id.into(),
            person_id: person.into(),
            security_key_id: None,
            aaguid: "00000000-0000-0000-0000-000000000001".into(),
            model: Some(model.into()),
            display_name: String::new(),
            state: state.into(),
            origin: "managed".into(),
            created_at: String::new(),
        }
    }

    #[test]
    fn coverage_counts_enabled_people_with_a_registered_passkey_once() {
        let people = [
            person("a", true, &["Finance"]),
            person("b", true, &["Finance", "Engineering"]),
            person("c", true, &[]),
            person("off", false, &["Finance"]),
        ];
        let passkeys = [
            passkey("1", "a", "YubiKey 5", "registered"),
            passkey("2", "a", "YubiKey 5", "registered"),
            passkey("3", "b", "Soft", "revoked"),
            passkey("4", "off", "YubiKey 5", "registered"),
            passkey("5", "c", "Soft", "registered"),
        ];
        let r = coverage(&people, &passkeys);
        assert_eq!(r.overall, Share::new("overall", "all", 2, 3));
        assert_eq!(r.overall.percent, 66.7);
        assert_eq!(
            r.by_group,
            vec![Share::new("group", "Engineering", 0, 1), Share::new("group", "Finance", 1, 2)]
        );
        assert_eq!(
            r.by_model,
            vec![Share::new("model", "Soft", 1, 3), Share::new("model", "YubiKey 5", 1, 3)]
        );
    }

    #[test]
    fn empty_tenant_is_zero_percent_not_a_division_by_zero() {
        let r = coverage(&[], &[]);
        assert_eq!((r.overall.covered, r.overall.people, r.overall.percent), (0, 0, 0.0));
    }
}
