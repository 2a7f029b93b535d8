//! Conditional Access at sign-in: the seeded policies (Graph v1.0 shape) decide whether a
//! sign-in with a given method, for a resource or for registering security info, gets a token.
//!
//! The rules themselves are `keyward_webauthn::conditional_access` (shared with `doctor`); this
//! module turns the first policy that refuses into Entra's error, AADSTS53003
//! (BlockedByConditionalAccess in the error-code reference).

use keyward_webauthn::conditional_access::{Target, first_refusal};

use super::LoginError;
use crate::Sim;
use crate::seed::SeedUser;

/// The AADSTS53003 error for a sign-in with `combination` that a policy refuses, if any does.
pub(crate) fn refusal(sim: &Sim, user: &SeedUser, target: Target, combination: &str) -> Option<LoginError> {
    sim.read(|t| {
        first_refusal(&t.conditional_access_policies, &user.id, &user.groups, target, combination).map(|p| {
            let why = if p.blocks() {
                "it blocks access".to_owned()
            } else {
                format!("a sign-in with '{combination}' does not meet its authentication strength")
            };
            LoginError::bad_request(
                "invalid_grant",
                53003,
                format!(
                    "Access has been blocked by Conditional Access policies. The access policy does not allow \
                     token issuance. (Policy '{}' ({}): {why}.)",
                    p.display_name, p.id
                ),
            )
        })
    })
}
