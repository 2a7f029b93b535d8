//! Domain records rendered as the API's views (`keyward-proto`): the only place the API's
//! shapes meet the domain's types.
//!
//! Enum values become the domain's stable text names and times RFC 3339, so a change to a
//! domain type shows up here as a compile error instead of as a silent change of the API.

use crate::service::tokens::ApiToken;
use keyward_core::{AuditEvent, EnrollmentPolicy, ExternalRefSlot, Issuance, Passkey, Person, SecurityKey};
use keyward_proto::Page;
use keyward_proto::admin::{PolicyView, TokenView};
use keyward_proto::audit::AuditView;
use keyward_proto::inventory::{KeyView, PasskeyView};
use keyward_proto::issuances::IssuanceView;
use keyward_proto::people::{PersonDetail, PersonView};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::service::cursor::Listed;
use crate::service::people::PersonRecord;

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A page of records as a page of views.
pub fn page<T, V>(listed: Listed<T>, view: impl Fn(&T) -> V) -> Page<V> {
    Page { items: listed.items.iter().map(view).collect(), next: listed.next }
}

/// A person, reading the Entra object id from `slot`.
pub fn person(p: &Person, slot: ExternalRefSlot) -> PersonView {
    PersonView {
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

/// A person with their keys and passkeys.
pub fn person_detail(r: &PersonRecord, slot: ExternalRefSlot) -> PersonDetail {
    PersonDetail {
        person: person(&r.person, slot),
        keys: r.keys.iter().map(key).collect(),
        passkeys: r.passkeys.iter().map(passkey).collect(),
    }
}

/// A security key.
pub fn key(k: &SecurityKey) -> KeyView {
    KeyView {
        id: k.id.to_string(),
        serial: k.serial.clone(),
        aaguid: k.aaguid.to_string(),
        model: k.model.clone(),
        firmware: k.firmware.clone(),
        state: k.state.to_string(),
    }
}

/// A passkey.
pub fn passkey(p: &Passkey) -> PasskeyView {
    PasskeyView {
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

/// An issuance.
pub fn issuance(i: &Issuance) -> IssuanceView {
    IssuanceView {
        id: i.id.to_string(),
        person_id: i.person_id.to_string(),
        requester: i.requester.clone(),
        channel: i.channel.to_string(),
        approval_required: i.approval_required,
        approved_by: i.approved_by.clone(),
        security_key_id: i.security_key_id.map(|k| k.to_string()),
        entra_object_id: i.entra_object_id.clone(),
        entra_upn: i.entra_upn.clone(),
        challenge_expires_at: i.challenge_expires_at.map(rfc3339),
        state: i.state.to_string(),
        failure_reason: i.failure_reason.clone(),
        created_at: rfc3339(i.created_at),
        updated_at: rfc3339(i.updated_at),
    }
}

/// An enrollment policy.
pub fn policy(p: &EnrollmentPolicy) -> PolicyView {
    PolicyView {
        id: p.id.to_string(),
        group: p.group.clone(),
        mode: p.mode.to_string(),
        pin_min_length: p.pin.min_length,
        pin_force_change: p.pin.force_change,
        allowed_aaguids: p.allowed_aaguids.iter().map(|a| a.to_string()).collect(),
        max_passkeys_per_person: p.max_passkeys_per_person,
    }
}

/// An audit event.
pub fn audit_event(e: &AuditEvent) -> AuditView {
    AuditView {
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

/// An API token's record (never the token).
pub fn token(t: &ApiToken) -> TokenView {
    TokenView {
        name: t.name.clone(),
        role: t.role.to_string(),
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
        revoked: t.revoked_at.is_some(),
        expires_at: t.expires_at.map(rfc3339),
    }
}
