//! People: upsert from the Entra sync, look-ups, search, paging, linking, leavers.
//!
//! The Entra object id lives in the external-reference column the deployment configured
//! (`ext_ref_1..3`, see [`keyward_core::ExternalRefSlot`]); the column name is derived from the
//! validated slot number, never from user input.

use keyward_core::{AuditDraft, ExternalRefSlot, ExternalRefs, LinkMethod, Person, PersonId, PersonSource};
use serde_json::json;

use crate::audit;
use crate::db::{Store, Tx, like_pattern, now_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Reader, Row, Stmt, flag, json, opt_parsed, opt_text, parsed, text};

const COLUMNS: &str = "id, display_name, upn, ext_ref_1, ext_ref_2, ext_ref_3, link_method, enabled, \
                       deleted_in_entra, source, groups_json";

fn slot_column(slot: ExternalRefSlot) -> &'static str {
    match slot.number() {
        1 => "ext_ref_1",
        2 => "ext_ref_2",
        _ => "ext_ref_3",
    }
}

fn from_row(r: &Row) -> Result<Person> {
    from_row_as(r, "")
}

/// The person columns as `p_<name>`, for a query that joins `person AS p` to another table.
pub(crate) const JOINED_COLUMNS: &str = "p.id AS p_id, p.display_name AS p_display_name, p.upn AS p_upn, \
    p.ext_ref_1 AS p_ext_ref_1, p.ext_ref_2 AS p_ext_ref_2, p.ext_ref_3 AS p_ext_ref_3, \
    p.link_method AS p_link_method, p.enabled AS p_enabled, p.deleted_in_entra AS p_deleted_in_entra, \
    p.source AS p_source, p.groups_json AS p_groups_json";

/// A person from a row whose person columns are named `<prefix><name>` (see [`JOINED_COLUMNS`]).
pub(crate) fn from_row_as(r: &Row, prefix: &str) -> Result<Person> {
    let col = |name: &'static str| -> std::borrow::Cow<'static, str> {
        if prefix.is_empty() { name.into() } else { format!("{prefix}{name}").into() }
    };
    Ok(Person {
        id: parsed(r, &col("id"))?,
        display_name: text(r, &col("display_name"))?,
        upn: text(r, &col("upn"))?,
        external_refs: ExternalRefs([
            opt_text(r, &col("ext_ref_1"))?,
            opt_text(r, &col("ext_ref_2"))?,
            opt_text(r, &col("ext_ref_3"))?,
        ]),
        link_method: opt_parsed(r, &col("link_method"))?,
        enabled: flag(r, &col("enabled"))?,
        deleted_in_entra: flag(r, &col("deleted_in_entra"))?,
        source: parsed(r, &col("source"))?,
        groups: json(r, &col("groups_json"))?,
    })
}

/// A user as read from Entra by the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraUser {
    /// Entra object id.
    pub object_id: String,
    /// User principal name.
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// `accountEnabled`.
    pub enabled: bool,
    /// Group ids or names (for enrollment policy).
    pub groups: Vec<String>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new person was created.
    Created,
    /// An existing person was updated (or linked by UPN).
    Updated,
    /// Nothing changed.
    Unchanged,
}

/// Inserts a person (e.g. created by an operator or an import).
pub async fn insert(tx: &mut Tx, actor: &str, p: &Person) -> Result<()> {
    let now = now_micros();
    let sql = format!(
        "INSERT INTO person ({COLUMNS}, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12)"
    );
    tx.execute(bind_person(Stmt::new(sql), p, now))
        .await
        .map_err(|e| StoreError::unique(e, || format!("a person with UPN {}", p.upn)))?;
    audit::append(tx, AuditDraft::new(actor, "person.create", subject(p.id)).detail(&json!({"upn": p.upn})));
    Ok(())
}

/// Binds a person's fields as `$1`…`$12` (id first, `now` last), in the order both
/// [`insert`] and `update` write them.
fn bind_person(q: Stmt, p: &Person, now: i64) -> Stmt {
    q.bind(p.id.to_string())
        .bind(&p.display_name)
        .bind(&p.upn)
        .bind(p.external_refs.0[0].clone())
        .bind(p.external_refs.0[1].clone())
        .bind(p.external_refs.0[2].clone())
        .bind(p.link_method.map(|m| m.as_str()))
        .bind(p.enabled as i64)
        .bind(p.deleted_in_entra as i64)
        .bind(p.source.as_str())
        .bind(serde_json::to_string(&p.groups).expect("strings serialise"))
        .bind(now)
}

async fn update(tx: &mut Tx, p: &Person) -> Result<()> {
    let sql =
        "UPDATE person SET display_name=$2, upn=$3, ext_ref_1=$4, ext_ref_2=$5, ext_ref_3=$6, link_method=$7,
               enabled=$8, deleted_in_entra=$9, source=$10, groups_json=$11, updated_at=$12 WHERE id=$1";
    let changed = tx
        .execute(bind_person(Stmt::new(sql), p, now_micros()))
        .await
        .map_err(|e| StoreError::unique(e, || format!("a person with UPN {}", p.upn)))?;
    if changed == 0 {
        return Err(StoreError::NotFound(subject(p.id)));
    }
    Ok(())
}

/// The audit subject naming a person.
pub fn subject(id: PersonId) -> String {
    format!("person:{id}")
}

async fn one(on: impl Reader, sql: &str, arg: String) -> Result<Option<Person>> {
    let row = Stmt::new(sql).bind(arg).fetch_optional(on).await?;
    row.as_ref().map(from_row).transpose()
}

/// Creates or updates the person for an Entra user: matched first by object id in `slot`, then
/// by UPN (case-insensitive; the match is recorded as a UPN link), else created and linked by
/// object id. A person who was marked deleted and reappears is undeleted.
pub async fn upsert_from_entra(
    tx: &mut Tx,
    actor: &str,
    slot: ExternalRefSlot,
    user: &EntraUser,
) -> Result<(Person, Upserted)> {
    let col = slot_column(slot);
    let by_oid = one(
        &mut *tx,
        &format!("SELECT {COLUMNS} FROM person WHERE {col} = lower($1)"),
        user.object_id.clone(),
    )
    .await?;
    let found = match by_oid {
        Some(p) => Some(p),
        None => {
            one(
                &mut *tx,
                &format!("SELECT {COLUMNS} FROM person WHERE lower(upn) = lower($1)"),
                user.upn.clone(),
            )
            .await?
        }
    };
    let Some(mut p) = found else {
        let mut p = Person::new(&user.display_name, &user.upn, PersonSource::Entra);
        p.link(slot, &user.object_id, LinkMethod::ObjectId)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        p.enabled = user.enabled;
        p.groups = user.groups.clone();
        insert(tx, actor, &p).await?;
        return Ok((p, Upserted::Created));
    };
    let before = p.clone();
    if p.entra_object_id(slot).is_none() {
        p.link(slot, &user.object_id, LinkMethod::Upn).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    p.display_name = user.display_name.clone();
    p.upn = user.upn.clone();
    p.enabled = user.enabled;
    p.deleted_in_entra = false;
    p.groups = user.groups.clone();
    if p == before {
        return Ok((p, Upserted::Unchanged));
    }
    update(tx, &p).await?;
    let detail = json!({"upn": p.upn, "enabled": p.enabled, "linked": before.link_method.is_none() && p.link_method.is_some()});
    audit::append(tx, AuditDraft::new(actor, "person.sync", subject(p.id)).detail(&detail));
    Ok((p, Upserted::Updated))
}

/// A link being made, with what the audit trail should say about it.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// The Entra object id.
    pub object_id: &'a str,
    /// How it was found.
    pub method: LinkMethod,
    /// The object id it replaces, if any.
    pub previous: Option<&'a str>,
    /// The account's UPN in Entra.
    pub entra_upn: &'a str,
    /// Whether the account's UPN differs from the person's (an admin's override).
    pub upn_override: bool,
}

/// Sets (or replaces) a person's Entra link; another person already holding the object id in
/// `slot` is refused by the unique index.
pub async fn set_link(
    tx: &mut Tx,
    actor: &str,
    id: PersonId,
    slot: ExternalRefSlot,
    link: &Link<'_>,
) -> Result<Person> {
    let mut p = one(&mut *tx, &format!("SELECT {COLUMNS} FROM person WHERE id = $1"), id.to_string())
        .await?
        .ok_or_else(|| StoreError::NotFound(subject(id)))?;
    p.link(slot, link.object_id, link.method).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    update(tx, &p).await.map_err(|e| match e {
        StoreError::Duplicate(_) => {
            StoreError::Duplicate(format!("a person linked to Entra account {}", link.object_id))
        }
        e => e,
    })?;
    let detail = json!({
        "object_id": link.object_id, "method": link.method.as_str(), "slot": slot.number(),
        "previous_object_id": link.previous, "entra_upn": link.entra_upn, "upn_override": link.upn_override,
    });
    let action = if link.previous.is_some() { "person.relink" } else { "person.link" };
    audit::append(tx, AuditDraft::new(actor, action, subject(id)).detail(&detail));
    Ok(p)
}

/// Marks a person disabled (or enabled again) as seen in Entra.
pub async fn set_enabled(tx: &mut Tx, actor: &str, id: PersonId, enabled: bool) -> Result<()> {
    let changed = tx
        .execute(
            Stmt::new("UPDATE person SET enabled = $2, updated_at = $3 WHERE id = $1")
                .bind(id.to_string())
                .bind(enabled as i64)
                .bind(now_micros()),
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound(subject(id)));
    }
    let action = if enabled { "person.enable" } else { "person.disable" };
    audit::append(tx, AuditDraft::new(actor, action, subject(id)));
    Ok(())
}

/// Marks a person as deleted in Entra (a leaver); the record is kept for the audit trail.
pub async fn mark_deleted(tx: &mut Tx, actor: &str, id: PersonId) -> Result<()> {
    let changed = tx
        .execute(
            Stmt::new("UPDATE person SET deleted_in_entra = 1, enabled = 0, updated_at = $2 WHERE id = $1")
                .bind(id.to_string())
                .bind(now_micros()),
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound(subject(id)));
    }
    audit::append(tx, AuditDraft::new(actor, "person.deleted-in-entra", subject(id)));
    Ok(())
}

/// A person by id.
pub async fn get(store: &Store, id: PersonId) -> Result<Option<Person>> {
    one(store, &format!("SELECT {COLUMNS} FROM person WHERE id = $1"), id.to_string()).await
}

/// A person by UPN (case-insensitive).
pub async fn get_by_upn(store: &Store, upn: &str) -> Result<Option<Person>> {
    one(store, &format!("SELECT {COLUMNS} FROM person WHERE lower(upn) = lower($1)"), upn.to_owned()).await
}

/// A person by Entra object id, held in the configured slot.
pub async fn get_by_object_id(
    store: &Store,
    slot: ExternalRefSlot,
    object_id: &str,
) -> Result<Option<Person>> {
    let sql = format!("SELECT {COLUMNS} FROM person WHERE {} = lower($1)", slot_column(slot));
    one(store, &sql, object_id.to_owned()).await
}

/// One page of people ordered by UPN (case-insensitive): those after `after_upn` (exclusive)
/// whose UPN or display name contains `search` (case-insensitive; everyone when `None`), at most
/// `limit`. The order is the `person_upn` index's, so a page is one range scan.
pub async fn list(
    store: &Store,
    search: Option<&str>,
    after_upn: Option<&str>,
    limit: i64,
) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM person WHERE lower(upn) > lower($1)
           AND ($2 IS NULL OR lower(upn) LIKE $2 ESCAPE '\\' OR lower(display_name) LIKE $2 ESCAPE '\\')
         ORDER BY lower(upn) LIMIT $3"
    );
    let rows = Stmt::new(sql)
        .bind(after_upn.unwrap_or("").to_owned())
        .bind(search.map(like_pattern))
        .bind(limit)
        .fetch_all(store)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Every person linked to Entra (object id present in `slot`), by UPN — the sync's and reconcile's
/// working set.
pub async fn list_linked(store: &Store, slot: ExternalRefSlot) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM person WHERE {} IS NOT NULL AND link_method IS NOT NULL ORDER BY lower(upn)",
        slot_column(slot)
    );
    let rows = Stmt::new(sql).fetch_all(store).await?;
    rows.iter().map(from_row).collect()
}

/// Number of people.
pub async fn count(store: &Store) -> Result<i64> {
    let row = Stmt::new("SELECT COUNT(*) AS n FROM person").fetch_one(store).await?;
    crate::stmt::int(&row, "n")
}
