//! Roles and permissions: the whole access matrix is the one table in [`Role::allows`].
//!
//! Four roles: `admin` (everything), `operator` (issue and manage credentials), `helpdesk` (look up
//! people, help them: revoke, temporary access pass, cancel), `auditor` (read-only, including the
//! audit trail and its export). The table is a `match` over every permission, so adding a permission
//! does not compile until its row is written.

named_enum! {
    /// A role held by an API token or a signed-in user.
    pub enum Role: "role" {
        /// Full control, including tokens and connector settings.
        Admin = "admin",
        /// Issues and manages credentials.
        Operator = "operator",
        /// Supports users: look-ups, revocation, temporary access pass.
        Helpdesk = "helpdesk",
        /// Read-only, including the audit trail.
        Auditor = "auditor",
    }
}

named_enum! {
    /// One thing a caller may be allowed to do.
    pub enum Permission: "permission" {
        /// List, search and show people.
        PeopleRead = "people:read",
        /// Set or change a person's Entra link.
        PeopleLink = "people:link",
        /// Link a person to an account whose UPN is not theirs, or relink a person who holds
        /// passkeys (revoking them first).
        PeopleRelink = "people:relink",
        /// Sync people from Entra.
        PeopleSync = "people:sync",
        /// List and show issuances.
        IssuanceRead = "issuance:read",
        /// Create an issuance and run it (fetch options, complete).
        IssuanceCreate = "issuance:create",
        /// Approve someone else's issuance.
        IssuanceApprove = "issuance:approve",
        /// Cancel an issuance.
        IssuanceCancel = "issuance:cancel",
        /// Read the key inventory.
        KeysRead = "keys:read",
        /// Add keys and change their state (suspend, lost, dispose).
        KeysManage = "keys:manage",
        /// List passkeys.
        PasskeysRead = "passkeys:read",
        /// Revoke passkeys.
        PasskeysRevoke = "passkeys:revoke",
        /// Show connector settings (never the secrets).
        ConnectorRead = "connector:read",
        /// Change connector settings, test the connection, validate a certificate.
        ConnectorManage = "connector:manage",
        /// Read enrollment policies and the Entra FIDO2 method policy.
        PolicyRead = "policy:read",
        /// Change enrollment policies and the Entra FIDO2 method policy.
        PolicyManage = "policy:manage",
        /// Issue a Temporary Access Pass.
        TapIssue = "tap:issue",
        /// List audit events and verify the chain.
        AuditRead = "audit:read",
        /// Export the audit trail.
        AuditExport = "audit:export",
        /// Run background jobs (reconcile, bulk).
        JobsRun = "jobs:run",
        /// Create and revoke API tokens.
        TokensManage = "tokens:manage",
    }
}

impl Role {
    /// Whether this role holds `permission`. Columns: admin, operator, helpdesk, auditor.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        const Y: bool = true;
        const N: bool = false;
        #[rustfmt::skip]
        let row: [bool; 4] = match permission {
            //                 admin operator helpdesk auditor
            PeopleRead      => [Y,    Y,       Y,       Y],
            PeopleLink      => [Y,    Y,       Y,       N],
            PeopleRelink    => [Y,    N,       N,       N],
            PeopleSync      => [Y,    Y,       N,       N],
            IssuanceRead    => [Y,    Y,       Y,       Y],
            IssuanceCreate  => [Y,    Y,       N,       N],
            IssuanceApprove => [Y,    Y,       N,       N],
            IssuanceCancel  => [Y,    Y,       Y,       N],
            KeysRead        => [Y,    Y,       Y,       Y],
            KeysManage      => [Y,    Y,       N,       N],
            PasskeysRead    => [Y,    Y,       Y,       Y],
            PasskeysRevoke  => [Y,    Y,       Y,       N],
            ConnectorRead   => [Y,    Y,       N,       Y],
            ConnectorManage => [Y,    N,       N,       N],
            PolicyRead      => [Y,    Y,       Y,       Y],
            PolicyManage    => [Y,    N,       N,       N],
            TapIssue        => [Y,    Y,       Y,       N],
            AuditRead       => [Y,    N,       N,       Y],
            AuditExport     => [Y,    N,       N,       Y],
            JobsRun         => [Y,    Y,       N,       N],
            TokensManage    => [Y,    N,       N,       N],
        };
        row[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_permission() {
        assert!(Permission::ALL.iter().all(|p| Role::Admin.allows(*p)));
    }

    #[test]
    fn auditor_is_read_only() {
        for p in Permission::ALL {
            let read_only = p.as_str().ends_with(":read") || *p == Permission::AuditExport;
            assert_eq!(Role::Auditor.allows(*p), read_only, "auditor and {p}");
        }
    }

    #[test]
    fn only_admin_manages_tokens_connector_policy_and_relinks() {
        for p in [
            Permission::TokensManage,
            Permission::ConnectorManage,
            Permission::PolicyManage,
            Permission::PeopleRelink,
        ] {
            for r in Role::ALL {
                assert_eq!(r.allows(p), *r == Role::Admin, "{r} and {p}");
            }
        }
    }

    #[test]
    fn helpdesk_can_help_but_not_issue() {
        assert!(Role::Helpdesk.allows(Permission::PasskeysRevoke));
        assert!(Role::Helpdesk.allows(Permission::TapIssue));
        assert!(!Role::Helpdesk.allows(Permission::IssuanceCreate));
        assert!(!Role::Helpdesk.allows(Permission::KeysManage));
        assert!(!Role::Operator.allows(Permission::AuditExport));
    }

    #[test]
    fn role_index_matches_column_order() {
        assert_eq!(Role::ALL, &[Role::Admin, Role::Operator, Role::Helpdesk, Role::Auditor]);
        for (i, r) in Role::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
