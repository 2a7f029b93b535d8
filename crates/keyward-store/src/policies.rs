//! Enrollment policies, one per group (see [`keyward_core::EnrollmentPolicy`] for how a person's
//! several policies combine).

use keyward_core::{AuditDraft, EnrollmentPolicy, PinRules, PolicyId};

use crate::audit;
use crate::db::{Store, Tx, now_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Row, Stmt, flag, int, json, opt_int, parsed, text};

const COLUMNS: &str = "id, group_name, mode, pin_min_length, pin_force_change, allowed_aaguids, max_passkeys";

fn from_row(r: &Row) -> Result<EnrollmentPolicy> {
    let min = int(r, "pin_min_length")?;
    Ok(EnrollmentPolicy {
        id: parsed(r, "id")?,
        group: text(r, "group_name")?,
        mode: parsed(r, "mode")?,
        pin: PinRules {
            min_length: u8::try_from(min)
                .map_err(|_| StoreError::Corrupt(format!("pin_min_length {min}")))?,
            force_change: flag(r, "pin_force_change")?,
        },
        allowed_aaguids: json(r, "allowed_aaguids")?,
        max_passkeys_per_person: opt_int(r, "max_passkeys")?.map(|n| n.clamp(0, u32::MAX as i64) as u32),
    })
}

/// Creates or replaces the policy of `p.group`.
pub async fn upsert(tx: &mut Tx, actor: &str, p: &EnrollmentPolicy) -> Result<()> {
    tx.execute(Stmt::new(format!(
        "INSERT INTO enrollment_policy ({COLUMNS}, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
         ON CONFLICT (group_name) DO UPDATE SET mode = excluded.mode, pin_min_length = excluded.pin_min_length,
         pin_force_change = excluded.pin_force_change, allowed_aaguids = excluded.allowed_aaguids,
         max_passkeys = excluded.max_passkeys, updated_at = excluded.updated_at"
    ))
    .bind(p.id.to_string())
    .bind(p.group.clone())
    .bind(p.mode.as_str())
    .bind(p.pin.min_length as i64)
    .bind(p.pin.force_change as i64)
    .bind(serde_json::to_string(&p.allowed_aaguids).expect("uuids serialise"))
    .bind(p.max_passkeys_per_person.map(i64::from))
    .bind(now_micros())
    )
    .await?;
    audit::append(tx, AuditDraft::new(actor, "policy.set", format!("group:{}", p.group)).detail(p));
    Ok(())
}

/// Deletes the policy of `group`; returns whether there was one.
pub async fn delete(tx: &mut Tx, actor: &str, group: &str) -> Result<bool> {
    let changed = tx
        .execute(Stmt::new("DELETE FROM enrollment_policy WHERE group_name = $1").bind(group.to_owned()))
        .await?;
    if changed > 0 {
        audit::append(tx, AuditDraft::new(actor, "policy.delete", format!("group:{group}")));
    }
    Ok(changed > 0)
}

/// Policies by group name: those after `after_group` (exclusive), at most `limit`.
pub async fn list(store: &Store, after_group: Option<&str>, limit: i64) -> Result<Vec<EnrollmentPolicy>> {
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM enrollment_policy WHERE group_name > $1 ORDER BY group_name LIMIT $2"
    ))
    .bind(after_group.unwrap_or("").to_owned())
    .bind(limit)
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The policy of one group.
pub async fn get(store: &Store, group: &str) -> Result<Option<EnrollmentPolicy>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM enrollment_policy WHERE group_name = $1"))
        .bind(group.to_owned())
        .fetch_optional(store)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The policy with id `id`.
pub async fn get_by_id(store: &Store, id: PolicyId) -> Result<Option<EnrollmentPolicy>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM enrollment_policy WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(store)
        .await?;
    row.as_ref().map(from_row).transpose()
}
