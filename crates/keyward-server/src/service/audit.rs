//! The audit trail as callers see it: pages of events, the JSON Lines export, the chain check,
//! and anchors (a signed head to keep outside the database, and the check against one).

use keyward_core::audit::anchor::Anchor;
use keyward_core::{AuditEvent, Permission};
use keyward_proto::audit::ChainReport;
use keyward_store::StoreError;
use keyward_store::audit::{self, AuditFilter};

use super::cursor::{self, Listed};
use super::{Caller, Service, ServiceError};

impl Service {
    /// One page of audit events in chain order, optionally about one subject and after a
    /// sequence number.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        subject: Option<String>,
        after_seq: Option<i64>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<AuditEvent>, ServiceError> {
        caller.require(Permission::AuditRead)?;
        let limit = cursor::limit(limit)?;
        let cursor_seq = match after {
            Some(c) => Some(cursor::decode(c, 1)?[0].parse::<i64>().map_err(|_| cursor::invalid())?),
            None => None,
        };
        let after_seq = after_seq.max(cursor_seq);
        let filter = AuditFilter { subject, after_seq, limit: Some(limit + 1) };
        let rows = audit::list(&self.store, &filter).await?;
        Ok(Listed::page(rows, limit, |e| cursor::encode(&[&e.seq.to_string()])))
    }

    /// The whole audit trail as JSON Lines.
    pub async fn export_audit(&self, caller: &Caller) -> Result<String, ServiceError> {
        caller.require(Permission::AuditExport)?;
        Ok(audit::export_jsonl(&self.store).await?)
    }

    /// Verifies the hash chain from its start.
    pub async fn verify_audit(&self, caller: &Caller) -> Result<ChainReport, ServiceError> {
        caller.require(Permission::AuditRead)?;
        chain_report(audit::verify(&self.store).await)
    }

    /// Verifies the chain and signs its head (see `keyward_core::audit::anchor`).
    pub async fn audit_anchor(&self, caller: &Caller) -> Result<Anchor, ServiceError> {
        caller.require(Permission::AuditRead)?;
        match audit::anchor(&self.store).await {
            Err(StoreError::Chain(b)) => {
                Err(ServiceError::Conflict(format!("no anchor for a broken chain: {b}")))
            }
            other => Ok(other?),
        }
    }

    /// Verifies the chain and that it still holds the event `anchor` names with the same hash
    /// (truncation, recomputation); a forged or foreign anchor is refused.
    pub async fn verify_audit_against(
        &self,
        caller: &Caller,
        anchor: &Anchor,
    ) -> Result<ChainReport, ServiceError> {
        caller.require(Permission::AuditRead)?;
        anchor
            .check_signature(&self.store.audit_keys().anchor)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        chain_report(audit::verify_against(&self.store, anchor).await)
    }
}

/// A verification's result as the report callers get; a broken chain is a result, not an error.
fn chain_report(result: Result<u64, StoreError>) -> Result<ChainReport, ServiceError> {
    match result {
        Ok(n) => Ok(ChainReport { ok: true, events: n, problem: None }),
        Err(StoreError::Chain(b)) => {
            Ok(ChainReport { ok: false, events: b.index as u64, problem: Some(b.to_string()) })
        }
        Err(e) => Err(e.into()),
    }
}
