//! The JSON shapes of the Core API, apart from the domain types they show.
//!
//! The domain types in `keyward-core` change with the rules; these change only with the API
//! version. Enum values are the domain's stable text names (`options-issued`, `self-service`), and
//! times are RFC 3339. The CLI's typed client deserialises the same structs.

use keyward_core::{AuditEvent, EnrollmentPolicy, ExternalRefSlot, Issuance, Passkey, Person, SecurityKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A person as the API shows them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    /// Keyward's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// User principal name.
    pub upn: String,
    /// Entra object id, when linked.
    pub entra_object_id: Option<String>,
    /// `object-id` or `upn`, when linked.
    pub link_method: Option<String>,
    /// Whether the Entra account is enabled.
    pub enabled: bool,
    /// Whether the sync found the account deleted in Entra.
    pub deleted_in_entra: bool,
    /// Where the record came from (`entra-sync`, `manual`, `import`).
    pub source: String,
    /// Groups used for enrollment policy.
    pub groups: Vec<String>,
}

impl PersonView {
    /// Shows `p`, reading the Entra object id from `slot`.
    pub fn new(p: &Person, slot: ExternalRefSlot) -> Self {
        Self {
            id: p.id.to_string(),
            display_name: p.display_name.clone(),
            upn: p.upn.clone(),
            entra_object_id: p.entra_object_id(slot).map(str::to_owned),
            link_method: p.link_method.map(|m| m.to_string()),
            enabled: p.enabled,
            deleted_in_entra: p.deleted_in_entra,
            source: p.source.to_string(),
            groups: p.groups.clone(),
        }
    }
}

/// A person with their keys and passkeys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonDetail {
    /// The person.
    pub person: PersonView,
    /// Security keys holding their passkeys.
    pub keys: Vec<KeyView>,
    /// Their passkeys, managed and discovered.
    pub passkeys: Vec<PasskeyView>,
}

/// A security key in the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Keyward's id.
    pub id: String,
    /// Serial number, when the key exposes one.
    pub serial: Option<String>,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name.
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// `available`, `issued`, `suspended`, `lost`, `disposed`.
    pub state: String,
}

impl From<&SecurityKey> for KeyView {
    fn from(k: &SecurityKey) -> Self {
        Self {
            id: k.id.to_string(),
            serial: k.serial.clone(),
            aaguid: k.aaguid.to_string(),
            model: k.model.clone(),
            firmware: k.firmware.clone(),
            state: k.state.to_string(),
        }
    }
}

/// A passkey.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasskeyView {
    /// Keyward's id.
    pub id: String,
    /// The Entra method id, once registered.
    pub entra_method_id: Option<String>,
    /// Credential id (base64url).
    pub credential_id: String,
    /// The person it belongs to.
    pub person_id: String,
    /// The key it lives on (none for software passkeys).
    pub security_key_id: Option<String>,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name.
    pub model: Option<String>,
    /// Display name in Entra.
    pub display_name: String,
    /// `pending`, `registered`, `revoked`.
    pub state: String,
    /// `managed` (issued by Keyward) or `discovered`.
    pub origin: String,
    /// When it was created.
    pub created_at: String,
}

impl From<&Passkey> for PasskeyView {
    fn from(p: &Passkey) -> Self {
        Self {
            id: p.id.to_string(),
            entra_method_id: p.entra_method_id.clone(),
            credential_id: p.credential_id.clone(),
            person_id: p.person_id.to_string(),
            security_key_id: p.security_key_id.map(|k| k.to_string()),
            aaguid: p.aaguid.to_string(),
            model: p.model.clone(),
            display_name: p.display_name.clone(),
            state: p.state.to_string(),
            origin: p.origin.to_string(),
            created_at: rfc3339(p.created_at),
        }
    }
}

/// An issuance request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuanceView {
    /// Keyward's id.
    pub id: String,
    /// Who receives the passkey.
    pub person_id: String,
    /// Who asked for it.
    pub requester: String,
    /// `operator`, `self-service` or `bulk`.
    pub channel: String,
    /// Whether approval is needed before options are issued.
    pub approval_required: bool,
    /// Who approved.
    pub approved_by: Option<String>,
    /// The key, when known.
    pub security_key_id: Option<String>,
    /// When the challenge expires.
    pub challenge_expires_at: Option<String>,
    /// `requested`, `approved`, `options-issued`, `registered`, `failed`, `cancelled`, `expired`.
    pub state: String,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl From<&Issuance> for IssuanceView {
    fn from(i: &Issuance) -> Self {
        Self {
            id: i.id.to_string(),
            person_id: i.person_id.to_string(),
            requester: i.requester.clone(),
            channel: i.channel.to_string(),
            approval_required: i.approval_required,
            approved_by: i.approved_by.clone(),
            security_key_id: i.security_key_id.map(|k| k.to_string()),
            challenge_expires_at: i.challenge_expires_at.map(rfc3339),
            state: i.state.to_string(),
            failure_reason: i.failure_reason.clone(),
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

/// An enrollment policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Keyward's id.
    pub id: String,
    /// The group it applies to.
    pub group: String,
    /// `disabled`, `optional` or `mandatory`.
    pub mode: String,
    /// Minimum PIN length.
    pub pin_min_length: u8,
    /// Force a PIN change on first use.
    pub pin_force_change: bool,
    /// Allowed model AAGUIDs; empty: any.
    pub allowed_aaguids: Vec<String>,
    /// Maximum registered passkeys per person.
    pub max_passkeys_per_person: Option<u32>,
}

impl From<&EnrollmentPolicy> for PolicyView {
    fn from(p: &EnrollmentPolicy) -> Self {
        Self {
            id: p.id.to_string(),
            group: p.group.clone(),
            mode: p.mode.to_string(),
            pin_min_length: p.pin.min_length,
            pin_force_change: p.pin.force_change,
            allowed_aaguids: p.allowed_aaguids.iter().map(|a| a.to_string()).collect(),
            max_passkeys_per_person: p.max_passkeys_per_person,
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    /// Position in the chain.
    pub seq: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Details (JSON text).
    pub detail: String,
    /// When.
    pub at: String,
    /// Hash of the previous event.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl From<&AuditEvent> for AuditView {
    fn from(e: &AuditEvent) -> Self {
        Self {
            seq: e.seq,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            outcome: e.outcome.to_string(),
            detail: e.detail.clone(),
            at: rfc3339(e.at),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// A page of results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
}
