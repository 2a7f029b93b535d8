//! People and their link to an Entra account.
//!
//! Like MyID, Keyward keeps the Entra object id in one of three external-reference slots; which
//! slot is a deployment setting (another system may already use slot 1), so the slot is a value
//! passed in, never a hard-coded field. A person is linked either by object id (the id was set by an
//! operator or sync) or by UPN match (found by the UPN, then the object id recorded).

use serde::{Deserialize, Serialize};

use crate::ids::PersonId;

/// Errors in person data given by an operator or a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    /// The configured external-reference slot is outside 1–3.
    #[error("external reference slot {0} does not exist; configure slot 1, 2 or 3")]
    BadSlot(u8),
    /// An Entra object id that is not a GUID.
    #[error(
        "\"{0}\" is not an Entra object id; give the user's object id as a GUID (Entra admin centre → Users → Object ID)"
    )]
    BadObjectId(String),
    /// The person has no Entra link, so nothing can be issued into Entra for them.
    #[error("{0} is not linked to an Entra account; link them by object id or UPN first")]
    NotLinked(String),
    /// The person is disabled or deleted in Entra.
    #[error("{0} is disabled or deleted in Entra; re-enable the account before issuing a passkey")]
    Inactive(String),
}

/// The longest user principal name Entra accepts: 64 characters before the `@`, 48 after.
pub const MAX_UPN_CHARS: usize = 113;

/// Whether `upn` can be a user principal name (`name@domain.tld`, at most [`MAX_UPN_CHARS`]
/// characters, no white space, control characters or `/`): checked before a UPN from a person
/// or a file is looked up in Entra, where it becomes part of a URL.
pub fn is_plausible_upn(upn: &str) -> bool {
    upn.split_once('@').is_some_and(|(name, domain)| !name.is_empty() && domain.contains('.'))
        && upn.chars().count() <= MAX_UPN_CHARS
        && !upn.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/')
}

/// One of the three external-reference slots (1, 2 or 3) that may hold the Entra object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct ExternalRefSlot(u8);

impl ExternalRefSlot {
    /// Slot 1, the default.
    pub const FIRST: Self = Self(1);

    /// A slot from its number, refusing anything but 1, 2 or 3.
    pub fn new(n: u8) -> Result<Self, PersonError> {
        if (1..=3).contains(&n) { Ok(Self(n)) } else { Err(PersonError::BadSlot(n)) }
    }

    /// The slot number (1–3).
    pub const fn number(self) -> u8 {
        self.0
    }

    const fn index(self) -> usize {
        (self.0 - 1) as usize
    }
}

impl Default for ExternalRefSlot {
    fn default() -> Self {
        Self::FIRST
    }
}

impl TryFrom<u8> for ExternalRefSlot {
    type Error = PersonError;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<ExternalRefSlot> for u8 {
    fn from(s: ExternalRefSlot) -> u8 {
        s.0
    }
}

/// The three external-reference values of a person (any may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalRefs(pub [Option<String>; 3]);

impl ExternalRefs {
    /// The value in `slot`, if any.
    pub fn get(&self, slot: ExternalRefSlot) -> Option<&str> {
        self.0[slot.index()].as_deref()
    }

    /// Sets (or clears, with `None`) the value in `slot`.
    pub fn set(&mut self, slot: ExternalRefSlot, value: Option<String>) {
        self.0[slot.index()] = value;
    }
}

named_enum! {
    /// How a person was linked to their Entra account.
    pub enum LinkMethod: "link method" {
        /// An operator or the sync set the Entra object id directly.
        ObjectId = "object-id",
        /// The person was matched to an Entra user by UPN, and the object id recorded.
        Upn = "upn",
    }
}

named_enum! {
    /// Where a person record came from.
    pub enum PersonSource: "person source" {
        /// Created or updated by the Entra sync.
        Entra = "entra",
        /// Created by an operator.
        Manual = "manual",
        /// Created by a bulk import (CSV).
        Import = "import",
    }
}

/// A person Keyward manages credentials for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Keyward's id.
    pub id: PersonId,
    /// Display name.
    pub display_name: String,
    /// User principal name (sign-in name).
    pub upn: String,
    /// External references; the configured slot holds the Entra object id.
    pub external_refs: ExternalRefs,
    /// How the Entra link was made, `None` while unlinked.
    pub link_method: Option<LinkMethod>,
    /// Whether the Entra account is enabled.
    pub enabled: bool,
    /// Whether the account was deleted in Entra (seen missing by the sync).
    pub deleted_in_entra: bool,
    /// Where this record came from.
    pub source: PersonSource,
    /// Names or ids of the groups the person belongs to (for enrollment policy).
    pub groups: Vec<String>,
}

impl Person {
    /// A new, enabled, unlinked person.
    pub fn new(display_name: impl Into<String>, upn: impl Into<String>, source: PersonSource) -> Self {
        Self {
            id: PersonId::new(),
            display_name: display_name.into(),
            upn: upn.into(),
            external_refs: ExternalRefs::default(),
            link_method: None,
            enabled: true,
            deleted_in_entra: false,
            source,
            groups: Vec::new(),
        }
    }

    /// The Entra object id, read from the configured slot, when the person is linked.
    pub fn entra_object_id(&self, slot: ExternalRefSlot) -> Option<&str> {
        self.link_method.and(self.external_refs.get(slot))
    }

    /// Links the person to an Entra account by storing `object_id` in `slot`.
    pub fn link(
        &mut self,
        slot: ExternalRefSlot,
        object_id: &str,
        method: LinkMethod,
    ) -> Result<(), PersonError> {
        let parsed =
            uuid::Uuid::parse_str(object_id).map_err(|_| PersonError::BadObjectId(object_id.to_owned()))?;
        self.external_refs.set(slot, Some(parsed.hyphenated().to_string()));
        self.link_method = Some(method);
        Ok(())
    }

    /// Removes the Entra link (clears the slot).
    pub fn unlink(&mut self, slot: ExternalRefSlot) {
        self.external_refs.set(slot, None);
        self.link_method = None;
    }

    /// The object id to issue into, or why this person cannot receive a passkey now.
    pub fn issuable_object_id(&self, slot: ExternalRefSlot) -> Result<&str, PersonError> {
        if !self.enabled || self.deleted_in_entra {
            return Err(PersonError::Inactive(self.upn.clone()));
        }
        self.entra_object_id(slot).ok_or_else(|| PersonError::NotLinked(self.upn.clone()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plausible_upns() {
        let long = format!("{}@contoso.com", "a".repeat(MAX_UPN_CHARS));
        let cases = [
            ("ada@contoso.com", true),
            ("john_fabrikam.com#EXT#@contoso.onmicrosoft.com", true),
            ("o'brien@contoso.com", true),
            ("", false),
            ("ada", false),
            ("@contoso.com", false),
            ("ada@contoso", false),
            ("ada lovelace@contoso.com", false),
            ("ada@contoso.com/authentication", false),
            ("ada\u{7}@contoso.com", false),
            (long.as_str(), false),
        ];
        for (upn, plausible) in cases {
            assert_eq!(is_plausible_upn(upn), plausible, "{upn:?}");
        }
    }

    use super::*;

    const OID: &str = "1d7c5b1a-8b1e-4f4e-9f43-2a5b6c7d8e9f";

    #[test]
    fn only_slots_one_to_three_exist() {
        for n in 1..=3 {
            assert_eq!(ExternalRefSlot::new(n).unwrap().number(), n);
        }
        for n in [0, 4, 255] {
            assert_eq!(ExternalRefSlot::new(n), Err(PersonError::BadSlot(n)));
        }
        assert!(serde_json::from_str::<ExternalRefSlot>("4").is_err());
    }

    #[test]
    fn link_stores_the_object_id_in_the_configured_slot_only() {
        let slot = ExternalRefSlot::new(2).unwrap();
        let mut p = Person::new("Ada", "ada@contoso.example", PersonSource::Manual);
        assert_eq!(p.issuable_object_id(slot), Err(PersonError::NotLinked("ada@contoso.example".into())));
        p.link(slot, &OID.to_uppercase(), LinkMethod::Upn).unwrap();
        assert_eq!(p.entra_object_id(slot), Some(OID));
        assert_eq!(p.entra_object_id(ExternalRefSlot::FIRST), None);
        assert_eq!(p.external_refs.0[1].as_deref(), Some(OID));
        assert_eq!(p.issuable_object_id(slot), Ok(OID));
        p.unlink(slot);
        assert_eq!(p.entra_object_id(slot), None);
    }

    #[test]
    fn link_refuses_a_non_guid_object_id() {
        let mut p = Person::new("Ada", "ada@contoso.example", PersonSource::Manual);
        let err = p.link(ExternalRefSlot::FIRST, "ada@contoso.example", LinkMethod::ObjectId).unwrap_err();
        assert!(err.to_string().contains("Object ID"));
        assert_eq!(p.link_method, None);
    }

    #[test]
    fn disabled_or_deleted_people_cannot_receive_passkeys() {
        let mut p = Person::new("Ada", "ada@contoso.example", PersonSource::Entra);
        p.link(ExternalRefSlot::FIRST, OID, LinkMethod::ObjectId).unwrap();
        p.enabled = false;
        assert!(matches!(p.issuable_object_id(ExternalRefSlot::FIRST), Err(PersonError::Inactive(_))));
        p.enabled = true;
        p.deleted_in_entra = true;
        assert!(matches!(p.issuable_object_id(ExternalRefSlot::FIRST), Err(PersonError::Inactive(_))));
    }
}
