//! Issuance requests: one attempt to put a passkey for a person into Entra.
//!
//! States: `requested → approved → options-issued → registered | failed | cancelled | expired`.
//! The approval step is optional per request (`approval_required`); without it a request goes
//! straight from requested to options-issued. Every state is recorded before the external call it
//! leads to, so the store can resume or undo after a crash (docs/architecture.md §5).
//!
//! A self-service request carries a collection code that the user types on their workstation; only
//! its SHA-256 is stored ([`hash_collection_code`]).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ids::{IssuanceId, PersonId, SecurityKeyId};

named_enum! {
    /// Lifecycle state of an issuance request.
    pub enum IssuanceState: "issuance state" {
        /// Created; waiting for approval (if required) or for the client to fetch options.
        Requested = "requested",
        /// Approved by a second person.
        Approved = "approved",
        /// Creation options (the Entra challenge) were handed to the client.
        OptionsIssued = "options-issued",
        /// The passkey is registered in Entra.
        Registered = "registered",
        /// Registration failed (see the failure reason).
        Failed = "failed",
        /// Cancelled by an operator or the user.
        Cancelled = "cancelled",
        /// The challenge or the request expired before completion.
        Expired = "expired",
    }
}

named_enum! {
    /// Who started the issuance.
    pub enum Channel: "issuance channel" {
        /// An operator at a station, with the key on their desk.
        Operator = "operator",
        /// The user, with a collection code.
        SelfService = "self-service",
        /// A bulk job.
        Bulk = "bulk",
    }
}

/// Errors of the issuance rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuanceError {
    /// The requested state change is not allowed from the current state.
    #[error("an issuance that is {from} cannot become {to}")]
    IllegalTransition {
        /// Current state.
        from: IssuanceState,
        /// Requested state.
        to: IssuanceState,
    },
    /// Options were requested before the required approval.
    #[error("this issuance needs approval first; ask an operator to approve it")]
    ApprovalRequired,
    /// The requester tried to approve their own request.
    #[error("the requester cannot approve their own issuance; ask another operator")]
    SelfApproval,
    /// The person's Entra link changed after the issuance was created (and approved): the
    /// passkey would land on another account than the one the request named.
    #[error(
        "the person's Entra link changed since this issuance was created (it named Entra account {bound}, the person is now linked to {now}); cancel it and create a new issuance for the new account"
    )]
    LinkChanged {
        /// The object id the issuance was created for.
        bound: String,
        /// The object id the person is linked to now (`none` when unlinked).
        now: String,
    },
    /// An issuance from before issuances were bound to an account.
    #[error(
        "this issuance was created before Keyward bound issuances to an Entra account; cancel it and create a new one"
    )]
    Unbound,
}

impl IssuanceState {
    /// Whether the issuance is finished (no further moves).
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Registered | Self::Failed | Self::Cancelled | Self::Expired)
    }

    /// Checks a move from `self` to `to`, given whether the request needs approval.
    pub fn transition(
        self,
        to: IssuanceState,
        approval_required: bool,
    ) -> Result<IssuanceState, IssuanceError> {
        use IssuanceState::*;
        let ok = match (self, to) {
            (Requested, Approved) => approval_required,
            (Requested, OptionsIssued) if approval_required => return Err(IssuanceError::ApprovalRequired),
            (Requested, OptionsIssued) => true,
            (Approved, OptionsIssued) => true,
            (OptionsIssued, Registered) => true,
            (Requested | Approved | OptionsIssued, Failed | Cancelled | Expired) => true,
            _ => false,
        };
        if ok { Ok(to) } else { Err(IssuanceError::IllegalTransition { from: self, to }) }
    }
}

/// An issuance request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuance {
    /// Keyward's id.
    pub id: IssuanceId,
    /// Who receives the passkey.
    pub person_id: PersonId,
    /// Who asked for it (token name, operator or "self").
    pub requester: String,
    /// Operator, self-service or bulk.
    pub channel: Channel,
    /// Whether a second person must approve before options are issued.
    pub approval_required: bool,
    /// Who approved, once approved.
    pub approved_by: Option<String>,
    /// The key the passkey goes on, when known.
    pub security_key_id: Option<SecurityKeyId>,
    /// The Entra object id the passkey is for, recorded when the issuance is created; approval
    /// covers it, and every later step refuses if the person's link no longer names it.
    pub entra_object_id: Option<String>,
    /// The person's UPN when the issuance was created (what the approver saw).
    pub entra_upn: Option<String>,
    /// SHA-256 (hex) of the self-service collection code.
    pub collection_code_hash: Option<String>,
    /// The Entra challenge handed to the client with the creation options (base64url); the
    /// completion must carry it back.
    pub challenge: Option<String>,
    /// When the Entra challenge handed to the client expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub challenge_expires_at: Option<OffsetDateTime>,
    /// Lifecycle state.
    pub state: IssuanceState,
    /// Why it failed, for the operator.
    pub failure_reason: Option<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed state.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Issuance {
    /// A new request in state `requested`.
    pub fn new(
        person_id: PersonId,
        requester: impl Into<String>,
        channel: Channel,
        approval_required: bool,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            id: IssuanceId::new(),
            person_id,
            requester: requester.into(),
            channel,
            approval_required,
            approved_by: None,
            security_key_id: None,
            entra_object_id: None,
            entra_upn: None,
            collection_code_hash: None,
            challenge: None,
            challenge_expires_at: None,
            state: IssuanceState::Requested,
            failure_reason: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Moves to `to` if allowed, stamping `updated_at`.
    pub fn transition(&mut self, to: IssuanceState) -> Result<(), IssuanceError> {
        self.state = self.state.transition(to, self.approval_required)?;
        self.updated_at = OffsetDateTime::now_utc();
        Ok(())
    }

    /// Records approval by `approver`, who must not be the requester.
    pub fn approve(&mut self, approver: &str) -> Result<(), IssuanceError> {
        if approver == self.requester {
            return Err(IssuanceError::SelfApproval);
        }
        self.transition(IssuanceState::Approved)?;
        self.approved_by = Some(approver.to_owned());
        Ok(())
    }

    /// Marks the issuance failed with a reason the operator can act on.
    pub fn fail(&mut self, reason: impl Into<String>) -> Result<(), IssuanceError> {
        self.transition(IssuanceState::Failed)?;
        self.failure_reason = Some(reason.into());
        Ok(())
    }

    /// Binds the issuance to the Entra account it is for (at creation).
    pub fn bind_to(mut self, object_id: &str, upn: &str) -> Self {
        self.entra_object_id = Some(object_id.to_owned());
        self.entra_upn = Some(upn.to_owned());
        self
    }

    /// Refuses unless the person's current link (`now`, their object id or `None` when
    /// unlinked) is still the account the issuance was created for.
    pub fn check_bound(&self, now: Option<&str>) -> Result<(), IssuanceError> {
        let bound = self.entra_object_id.as_deref().ok_or(IssuanceError::Unbound)?;
        match now {
            Some(now) if now.eq_ignore_ascii_case(bound) => Ok(()),
            _ => Err(IssuanceError::LinkChanged {
                bound: bound.to_owned(),
                now: now.unwrap_or("none").to_owned(),
            }),
        }
    }

    /// Whether the challenge handed out has expired at `now`.
    pub fn challenge_expired(&self, now: OffsetDateTime) -> bool {
        self.challenge_expires_at.is_some_and(|t| now >= t)
    }
}

/// SHA-256 (lower-case hex) of a collection code, the only form in which it is stored.
pub fn hash_collection_code(code: &SecretString) -> String {
    hex::encode(Sha256::digest(code.expose_secret().trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use IssuanceState::*;

    /// Every (from, to) pair, with and without an approval step.
    #[test]
    fn transition_table() {
        // (from, to, allowed without approval step, allowed with approval step)
        let table: &[(IssuanceState, IssuanceState, bool, bool)] = &[
            (Requested, Approved, false, true),
            (Requested, OptionsIssued, true, false),
            (Requested, Failed, true, true),
            (Requested, Cancelled, true, true),
            (Requested, Expired, true, true),
            (Approved, OptionsIssued, true, true),
            (Approved, Failed, true, true),
            (Approved, Cancelled, true, true),
            (Approved, Expired, true, true),
            (OptionsIssued, Registered, true, true),
            (OptionsIssued, Failed, true, true),
            (OptionsIssued, Cancelled, true, true),
            (OptionsIssued, Expired, true, true),
        ];
        for &from in IssuanceState::ALL {
            for &to in IssuanceState::ALL {
                let row = table.iter().find(|r| r.0 == from && r.1 == to);
                let (without, with) = row.map_or((false, false), |r| (r.2, r.3));
                assert_eq!(from.transition(to, false).is_ok(), without, "{from} -> {to} without approval");
                assert_eq!(from.transition(to, true).is_ok(), with, "{from} -> {to} with approval");
            }
        }
    }

    #[test]
    fn final_states_admit_no_move() {
        for &from in IssuanceState::ALL.iter().filter(|s| s.is_final()) {
            for &to in IssuanceState::ALL {
                assert!(from.transition(to, false).is_err());
            }
        }
    }

    #[test]
    fn options_before_required_approval_says_so() {
        let mut i = Issuance::new(PersonId::new(), "op1", Channel::Operator, true);
        assert_eq!(i.transition(OptionsIssued), Err(IssuanceError::ApprovalRequired));
        assert_eq!(i.approve("op1"), Err(IssuanceError::SelfApproval));
        i.approve("op2").unwrap();
        assert_eq!(i.approved_by.as_deref(), Some("op2"));
        i.transition(OptionsIssued).unwrap();
        i.fail("Entra refused the AAGUID").unwrap();
        assert_eq!(i.state, Failed);
        assert_eq!(i.failure_reason.as_deref(), Some("Entra refused the AAGUID"));
    }

    #[test]
    fn collection_code_hash_is_stable_and_hides_the_code() {
        let h = hash_collection_code(&SecretString::from("ABCD-1234"));
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_collection_code(&SecretString::from(" ABCD-1234\n")));
        assert!(!h.contains("ABCD"));
        assert_ne!(h, hash_collection_code(&SecretString::from("ABCD-1235")));
    }

    #[test]
    fn an_issuance_holds_to_the_account_it_was_created_for() {
        let oid = "1d7c5b1a-8b1e-4f4e-9f43-2a5b6c7d8e9f";
        let other = "2e8d6c2b-9c2f-4a5f-8a54-3b6c7d8e9f0a";
        let unbound = Issuance::new(PersonId::new(), "op1", Channel::Operator, false);
        assert_eq!(unbound.check_bound(Some(oid)), Err(IssuanceError::Unbound));
        let i = unbound.bind_to(oid, "ada@contoso.example");
        assert_eq!(i.check_bound(Some(oid)), Ok(()));
        assert_eq!(i.check_bound(Some(&oid.to_uppercase())), Ok(()));
        let e = i.check_bound(Some(other)).unwrap_err();
        assert_eq!(e, IssuanceError::LinkChanged { bound: oid.into(), now: other.into() });
        assert!(e.to_string().contains("cancel it and create a new issuance"), "{e}");
        assert!(matches!(i.check_bound(None), Err(IssuanceError::LinkChanged { now, .. }) if now == "none"));
    }

    #[test]
    fn challenge_expiry() {
        let mut i = Issuance::new(PersonId::new(), "op1", Channel::Bulk, false);
        let now = OffsetDateTime::now_utc();
        assert!(!i.challenge_expired(now));
        i.challenge_expires_at = Some(now);
        assert!(i.challenge_expired(now));
        assert!(!i.challenge_expired(now - time::Duration::seconds(1)));
    }
}
