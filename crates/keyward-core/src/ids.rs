//! Typed identifiers: one UUID newtype per entity, so a `PersonId` can never be passed where a
//! `PasskeyId` is expected. They serialise as the plain UUID string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random (v4) identifier.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// Identifies a person (a user Keyward manages credentials for).
    PersonId
);
id_type!(
    /// Identifies a physical security key in the inventory.
    SecurityKeyId
);
id_type!(
    /// Identifies a passkey Keyward issued or discovered.
    PasskeyId
);
id_type!(
    /// Identifies an issuance request.
    IssuanceId
);
id_type!(
    /// Identifies an enrollment policy.
    PolicyId
);
id_type!(
    /// Identifies an API token (not the token's secret value).
    ApiTokenId
);
id_type!(
    /// Identifies a background or bulk job.
    JobId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_plain_uuids() {
        let id = PersonId::new();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<PersonId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        assert!("not-a-uuid".parse::<PasskeyId>().is_err());
    }
}
