//! Who is asking: every service operation takes a [`Caller`] and checks its permission itself.
//!
//! The HTTP layer authenticates a token and refuses early from its route table (so an
//! unauthorised caller learns nothing from validation errors), but the decision is the
//! service's: the web views, the CLI's server calls and the background jobs all come through
//! here, and none of them can forget the check. Background work runs as a named system caller
//! with an explicit list of what it may do, so the audit trail says `system:scheduler` rather
//! than borrowing an operator's name.

use keyward_core::{ApiTokenId, Permission, Role};

use super::ServiceError;

/// The caller of a service operation.
#[derive(Debug, Clone)]
pub struct Caller {
    who: Who,
}

#[derive(Debug, Clone)]
enum Who {
    /// An API token (the CLI, automation).
    Token { id: ApiTokenId, name: String, role: Role },
    /// The server acting on its own: the scheduler, jobs.
    System { name: &'static str, may: &'static [Permission] },
    /// Whoever holds the server's configuration on its host.
    Host { name: String },
}

/// What the scheduler may do: sync people (and revoke leavers' passkeys), reconcile.
pub const SCHEDULER: &[Permission] =
    &[Permission::PeopleRead, Permission::PeopleSync, Permission::JobsRun, Permission::PasskeysRevoke];

impl Caller {
    /// A caller authenticated by an API token.
    pub fn token(id: ApiTokenId, name: String, role: Role) -> Self {
        Self { who: Who::Token { id, name, role } }
    }

    /// Whoever runs Keyward on the server's host with its configuration (the database and the
    /// secret key are theirs already): `keyward admin`, the demo, a test's bootstrap. Holds
    /// every permission; audit events name it `host:NAME`.
    pub fn host(name: impl Into<String>) -> Self {
        Self { who: Who::Host { name: name.into() } }
    }

    /// The server acting on its own, allowed exactly `may`.
    pub fn system(name: &'static str, may: &'static [Permission]) -> Self {
        Self { who: Who::System { name, may } }
    }

    /// Refuses unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        let allowed = match &self.who {
            Who::Token { role, .. } => role.allows(permission),
            Who::System { may, .. } => may.contains(&permission),
            Who::Host { .. } => true,
        };
        if allowed { Ok(()) } else { Err(ServiceError::Forbidden { caller: self.kind(), permission }) }
    }

    /// How audit events name this caller (`token:alice`, `system:scheduler`).
    pub fn actor(&self) -> String {
        match &self.who {
            Who::Token { name, .. } => format!("token:{name}"),
            Who::System { name, .. } => format!("system:{name}"),
            Who::Host { name } => format!("host:{name}"),
        }
    }

    /// The token's role; `None` for the system.
    pub fn role(&self) -> Option<Role> {
        match &self.who {
            Who::Token { role, .. } => Some(*role),
            Who::System { .. } | Who::Host { .. } => None,
        }
    }

    /// Whether the caller may act for a protected person: an admin token, or the host.
    pub fn is_admin(&self) -> bool {
        match &self.who {
            Who::Token { role, .. } => *role == Role::Admin,
            Who::Host { .. } => true,
            Who::System { .. } => false,
        }
    }

    /// The token's id; `None` for the system.
    pub fn token_id(&self) -> Option<ApiTokenId> {
        match &self.who {
            Who::Token { id, .. } => Some(*id),
            Who::System { .. } | Who::Host { .. } => None,
        }
    }

    /// What kind of caller this is, for a refusal's message (`role auditor`, `system:scheduler`).
    fn kind(&self) -> String {
        match &self.who {
            Who::Token { role, .. } => format!("your role `{role}`"),
            Who::System { name, .. } => format!("system:{name}"),
            Who::Host { name } => format!("host:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_what_its_role_allows() {
        let auditor = Caller::token(ApiTokenId::new(), "t".into(), Role::Auditor);
        assert!(auditor.require(Permission::AuditRead).is_ok());
        let e = auditor.require(Permission::PasskeysRevoke).unwrap_err().to_string();
        assert!(e.contains("auditor") && e.contains("passkeys:revoke"), "{e}");
        assert_eq!(auditor.actor(), "token:t");
    }

    #[test]
    fn the_system_holds_only_what_it_is_given() {
        let scheduler = Caller::system("scheduler", SCHEDULER);
        assert!(scheduler.require(Permission::PeopleSync).is_ok());
        assert!(scheduler.require(Permission::JobsRun).is_ok());
        let e = scheduler.require(Permission::TokensManage).unwrap_err().to_string();
        assert!(e.contains("system:scheduler") && e.contains("tokens:manage"), "{e}");
        assert_eq!(scheduler.actor(), "system:scheduler");
        assert_eq!(scheduler.role(), None);
    }

    #[test]
    fn the_host_holds_everything_and_is_named_as_such() {
        let host = Caller::host("alice");
        assert!(Permission::ALL.iter().all(|p| host.require(*p).is_ok()));
        assert_eq!(host.actor(), "host:alice");
    }
}
