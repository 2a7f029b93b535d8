//! The one table of the Core API's operations and the permission each requires.
//!
//! The authorisation middleware refuses from this table before a request's body is read, and
//! the OpenAPI document's security scopes are written from it ([`ScopesFromTable`]), so the
//! document cannot claim a permission the server does not ask for. Building the router checks
//! that every documented operation has a row and every row an operation: a route added without
//! its permission fails every test that starts a server.

use std::collections::HashMap;

use keyward_core::Permission;
use keyward_core::Permission::*;
use utoipa::Modify;
use utoipa::openapi::security::SecurityRequirement;

/// Every operation under `/api/v1`: method, path template, permission.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("GET", "/api/v1/people", PeopleRead),
    ("GET", "/api/v1/people/{id}", PeopleRead),
    ("PUT", "/api/v1/people/{id}/link", PeopleLink),
    ("POST", "/api/v1/people/sync", PeopleSync),
    ("POST", "/api/v1/people/{id}/revoke-passkeys", PasskeysRevoke),
    ("POST", "/api/v1/people/{id}/tap", TapIssue),
    ("GET", "/api/v1/issuances", IssuanceRead),
    ("POST", "/api/v1/issuances", IssuanceCreate),
    ("GET", "/api/v1/issuances/{id}", IssuanceRead),
    ("POST", "/api/v1/issuances/{id}/approve", IssuanceApprove),
    ("POST", "/api/v1/issuances/{id}/options", IssuanceCreate),
    ("POST", "/api/v1/issuances/{id}/complete", IssuanceCreate),
    ("POST", "/api/v1/issuances/{id}/cancel", IssuanceCancel),
    ("POST", "/api/v1/issuances/{id}/fail", IssuanceCreate),
    ("POST", "/api/v1/issuances/{id}/pin-handover", IssuanceCreate),
    ("POST", "/api/v1/issuances/{id}/sign-in/options", IssuanceCreate),
    ("POST", "/api/v1/issuances/{id}/sign-in", IssuanceCreate),
    ("GET", "/api/v1/keys", KeysRead),
    ("POST", "/api/v1/keys", KeysManage),
    ("GET", "/api/v1/keys/{id}", KeysRead),
    ("POST", "/api/v1/keys/{id}/state", KeysManage),
    ("POST", "/api/v1/keys/{id}/revoke-passkeys", PasskeysRevoke),
    ("GET", "/api/v1/passkeys", PasskeysRead),
    ("POST", "/api/v1/passkeys/{id}/revoke", PasskeysRevoke),
    ("GET", "/api/v1/connector", ConnectorRead),
    ("PUT", "/api/v1/connector", ConnectorManage),
    ("POST", "/api/v1/connector/test", ConnectorManage),
    ("POST", "/api/v1/connector/validate-certificate", ConnectorManage),
    ("GET", "/api/v1/enrollment-policies", PolicyRead),
    ("PUT", "/api/v1/enrollment-policies/{group}", PolicyManage),
    ("DELETE", "/api/v1/enrollment-policies/{group}", PolicyManage),
    ("GET", "/api/v1/entra/fido2-policy", PolicyRead),
    ("PATCH", "/api/v1/entra/fido2-policy", PolicyManage),
    ("GET", "/api/v1/tokens", TokensManage),
    ("POST", "/api/v1/tokens", TokensManage),
    ("DELETE", "/api/v1/tokens/{name}", TokensManage),
    ("GET", "/api/v1/audit", AuditRead),
    ("GET", "/api/v1/audit/export", AuditExport),
    ("GET", "/api/v1/audit/verify", AuditRead),
    ("POST", "/api/v1/audit/verify", AuditRead),
    ("GET", "/api/v1/audit/anchor", AuditRead),
    ("GET", "/api/v1/doctor", PeopleRead),
    ("POST", "/api/v1/jobs/reconcile", JobsRun),
    ("POST", "/api/v1/jobs/bulk", JobsRun),
    ("GET", "/api/v1/jobs/{id}", JobsRun),
    ("POST", "/api/v1/jobs/{id}/claim", JobsRun),
    ("POST", "/api/v1/jobs/{id}/units", JobsRun),
    ("GET", "/api/v1/jobs/{id}/report", JobsRun),
];

/// [`ROUTES`] as a lookup by method and path template.
#[derive(Debug)]
pub struct RoutePermissions(HashMap<(&'static str, &'static str), Permission>);

impl Default for RoutePermissions {
    fn default() -> Self {
        Self(ROUTES.iter().map(|(m, p, perm)| ((*m, *p), *perm)).collect())
    }
}

impl RoutePermissions {
    /// The permission of `method` on the route template `path`.
    pub fn get(&self, method: &str, path: &str) -> Option<Permission> {
        self.0.get(&(method, path)).copied()
    }
}

/// Writes each operation's `bearer` scope from [`ROUTES`] into the OpenAPI document; panics
/// when an operation has no row or a row no operation (a programming error every test catches).
pub struct ScopesFromTable;

impl Modify for ScopesFromTable {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let table = RoutePermissions::default();
        let mut documented = 0;
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                ("GET", &mut item.get),
                ("PUT", &mut item.put),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
                ("PATCH", &mut item.patch),
            ];
            for (method, op) in operations {
                let Some(op) = op.as_mut() else { continue };
                let permission = table
                    .get(method, path)
                    .unwrap_or_else(|| panic!("{method} {path} has no row in api::routes::ROUTES"));
                op.security = Some(vec![SecurityRequirement::new("bearer", [permission.as_str()])]);
                documented += 1;
            }
        }
        assert_eq!(documented, ROUTES.len(), "api::routes::ROUTES has rows for operations that do not exist");
    }
}

/// Permissions that guard no route of their own: they refine a route's permission for some of
/// its requests, and the service checks them (relinking a person who holds passkeys, or to an
/// account whose UPN is not theirs, is `PUT /people/{id}/link` with `people:relink` on top).
pub const REFINEMENTS: &[Permission] = &[PeopleRelink];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_guards_a_route_and_rows_are_unique() {
        for p in Permission::ALL.iter().filter(|p| !REFINEMENTS.contains(p)) {
            assert!(ROUTES.iter().any(|(_, _, q)| q == p), "no route requires {p}");
        }
        assert_eq!(RoutePermissions::default().0.len(), ROUTES.len(), "a (method, path) appears twice");
    }
}
