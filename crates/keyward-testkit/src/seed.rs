//! The emulator's tenant as the tests build it: the example seed's well-known ids, numbered extra
//! users, and the test CA trusted for a soft key's AAGUID. Tests that need a different tenant
//! start from [`keyward_sim::seed::Seed::example`] and change what they test.

use keyward_sim::seed::{Seed, SeedUser};

use crate::attestation_ca::TestCa;

/// The example tenant's id.
pub const TENANT: &str = "8f5d2c1e-4b7a-4e3f-9a61-2d0c5b7e9f13";
/// The example tenant's domain.
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// Keyward's app registration in the example tenant (every Graph permission Keyward uses).
pub const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// [`APP`]'s client secret.
pub const APP_SECRET: &str = "sim-secret-change-me";
/// A read-only reporting app registration (no write permissions).
pub const READER: &str = "2b0a9bde-77f3-4c0e-8f0a-5d1e2c3b4a59";
/// [`READER`]'s client secret.
pub const READER_SECRET: &str = "sim-reader-secret";

/// Adele Vance's object id (a member in Finance).
pub const ADELE: &str = "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34";
/// Adele Vance's UPN.
pub const ADELE_UPN: &str = "adele.vance@contoso.onmicrosoft.com";
/// Alex Wilber's object id.
pub const ALEX: &str = "4f1b7e96-d051-4c23-a6fa-5b7a9c1d3e45";
/// Alex Wilber's UPN.
pub const ALEX_UPN: &str = "alex.wilber@contoso.onmicrosoft.com";
/// Megan Bowen's UPN.
pub const MEGAN_UPN: &str = "megan.bowen@contoso.onmicrosoft.com";
/// Pradeep Gupta's object id.
pub const PRADEEP: &str = "6b3d90b8-f273-4e45-881c-7d9cbe3f5a67";
/// The guest user's object id.
pub const GUEST: &str = "7c4ea1c9-0384-4f56-992d-8eadcf406b78";
/// The Finance group.
pub const FINANCE: &str = "0b7f3a52-9c1d-4e8f-a2b6-1d3c5e7f9a01";
/// The Engineering group.
pub const ENGINEERING: &str = "1c8e4b63-ad2e-4f90-b3c7-2e4d6f8a0b12";
/// The "Passkey exclusions" group.
pub const EXCLUDED: &str = "2d9f5c74-be3f-4a01-84d8-3f5e7a9b1c23";

/// Extra user number `i`: `user{i:04}@contoso.onmicrosoft.com`, "User {i:04}", an enabled member
/// in no group, with an object id made from `i` (so a test can name it again).
pub fn numbered_user(i: usize) -> SeedUser {
    SeedUser {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        user_principal_name: format!("user{i:04}@contoso.onmicrosoft.com"),
        display_name: format!("User {i:04}"),
        account_enabled: true,
        user_type: "Member".into(),
        mail: None,
        groups: vec![],
        directory_roles: vec![],
    }
}

/// The example tenant plus `extra` [`numbered_user`]s, each changed by `adjust`.
pub fn with_users(extra: usize, adjust: impl Fn(usize, &mut SeedUser)) -> Seed {
    let mut seed = Seed::example();
    seed.users.extend((0..extra).map(|i| {
        let mut user = numbered_user(i);
        adjust(i, &mut user);
        user
    }));
    seed
}

/// Makes `seed` trust `ca` for attestation and name the model `aaguid` as `model`.
pub fn trust_ca(seed: &mut Seed, ca: &TestCa, aaguid: [u8; 16], model: &str) {
    seed.attestation_roots_pem = vec![ca.ca_pem.clone()];
    seed.aaguid_models.insert(aaguid_text(aaguid), model.into());
}

/// An AAGUID as Entra writes it (lower-case, hyphenated).
pub fn aaguid_text(aaguid: [u8; 16]) -> String {
    uuid::Uuid::from_bytes(aaguid).to_string()
}
