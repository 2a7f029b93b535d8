//! The audit trail as callers see it: pages of events, the JSON Lines export, the chain check.

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
        match audit::verify(&self.store).await {
            Ok(n) => Ok(ChainReport { ok: true, events: n, problem: None }),
            Err(StoreError::Chain(b)) => {
                Ok(ChainReport { ok: false, events: b.index as u64, problem: Some(b.to_string()) })
            }
            Err(e) => Err(e.into()),
        }
    }
}
