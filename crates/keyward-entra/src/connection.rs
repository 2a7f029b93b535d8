//! "Test connection": get a token, make one Graph read, and compare the application
//! permissions granted in the token's `roles` claim with what Keyward needs, naming each one
//! that is missing — so an operator fixes consent once instead of discovering it one 403 at a
//! time during an issuance.
//!
//! The token's payload is decoded without verifying its signature: it was just received from
//! the configured authority, and only its `roles` are read for a report.

use serde::Serialize;

use crate::graph::Connector;
use crate::token::granted_roles;

/// One application permission Keyward needs, and the roles that satisfy it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// The permission to grant (least privileged that covers everything Keyward does).
    pub permission: &'static str,
    /// Why Keyward needs it.
    pub purpose: &'static str,
    /// Other granted roles that also satisfy it.
    pub also_satisfied_by: &'static [&'static str],
}

/// The application permissions Keyward needs (docs/entra-graph-api.md §1.2, §3, §4, §6).
pub const REQUIRED_PERMISSIONS: &[Requirement] = &[
    Requirement {
        permission: "User.Read.All",
        purpose: "read users (link people, accountEnabled for leavers)",
        also_satisfied_by: &["User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"],
    },
    Requirement {
        permission: "GroupMember.Read.All",
        purpose: "read group members (enrollment policies per group)",
        also_satisfied_by: &[
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
    },
    Requirement {
        permission: "RoleManagement.Read.Directory",
        purpose: "read directory role members (protected people: administrators get passkeys and TAPs only from an admin)",
        also_satisfied_by: &[
            "RoleManagement.ReadWrite.Directory",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
    },
    Requirement {
        permission: "UserAuthenticationMethod.ReadWrite.All",
        purpose: "register, list and delete passkeys, issue Temporary Access Passes",
        also_satisfied_by: &[],
    },
    Requirement {
        permission: "Policy.ReadWrite.AuthenticationMethod",
        purpose: "read and update the FIDO2 authentication-method policy",
        also_satisfied_by: &[],
    },
];

/// A permission the token lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingPermission {
    /// The permission to grant.
    pub permission: &'static str,
    /// What does not work without it.
    pub purpose: &'static str,
}

/// The result of "Test connection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionReport {
    /// A token was obtained.
    pub token: Result<(), String>,
    /// A Graph read (`GET /users?$top=1`) succeeded; else the error (with request-id).
    pub graph_read: Result<(), String>,
    /// Roles granted in the token.
    pub granted_roles: Vec<String>,
    /// Permissions Keyward needs that were not granted.
    pub missing: Vec<MissingPermission>,
}

impl ConnectionReport {
    /// Whether everything works.
    pub fn is_ok(&self) -> bool {
        self.token.is_ok() && self.graph_read.is_ok() && self.missing.is_empty()
    }

    /// Human-readable lines, one per finding.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.token {
            Ok(()) => out.push("token: ok".into()),
            Err(e) => out.push(format!("token: FAILED — {e}")),
        }
        match &self.graph_read {
            Ok(()) => out.push("graph read: ok".into()),
            Err(e) => out.push(format!("graph read: FAILED — {e}")),
        }
        for m in &self.missing {
            out.push(format!(
                "missing application permission {} (needed to {}): add it under API permissions > Microsoft Graph > Application permissions and grant admin consent",
                m.permission, m.purpose
            ));
        }
        out
    }
}

/// The requirements not met by `roles`.
pub fn missing_permissions(roles: &[String]) -> Vec<MissingPermission> {
    REQUIRED_PERMISSIONS
        .iter()
        .filter(|r| {
            !roles.iter().any(|g| {
                g.eq_ignore_ascii_case(r.permission)
                    || r.also_satisfied_by.iter().any(|a| g.eq_ignore_ascii_case(a))
            })
        })
        .map(|r| MissingPermission { permission: r.permission, purpose: r.purpose })
        .collect()
}

impl Connector {
    /// A new token (the cached one is dropped first, so the credentials themselves are
    /// proven), one Graph read, and the granted roles against [`REQUIRED_PERMISSIONS`]: the
    /// operator's explicit "test connection".
    pub async fn test_connection(&self) -> ConnectionReport {
        self.tokens.invalidate().await;
        self.connection_report().await
    }

    /// As [`Connector::test_connection`], with the cached token when there is one: for checks
    /// anyone may run often (doctor), which must not cost a token request each time.
    pub async fn connection_report(&self) -> ConnectionReport {
        let token = match self.tokens.token().await {
            Ok(t) => t,
            Err(e) => {
                return ConnectionReport {
                    token: Err(e.to_string()),
                    graph_read: Err("not tried: no token".into()),
                    granted_roles: vec![],
                    missing: vec![],
                };
            }
        };
        let roles = granted_roles(&token);
        let graph_read = self
            .get_json::<serde_json::Value>("/users?$top=1&$select=id")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        ConnectionReport {
            token: Ok(()),
            graph_read,
            missing: missing_permissions(&roles),
            granted_roles: roles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broader_roles_satisfy_narrower_requirements() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], &[&str])] = &[
            (
                &[
                    "User.Read.All",
                    "GroupMember.Read.All",
                    "RoleManagement.Read.Directory",
                    "UserAuthenticationMethod.ReadWrite.All",
                    "Policy.ReadWrite.AuthenticationMethod",
                ],
                &[],
            ),
            (
                &[
                    "Directory.Read.All",
                    "UserAuthenticationMethod.ReadWrite.All",
                    "Policy.ReadWrite.AuthenticationMethod",
                ],
                &[],
            ),
            (
                &["User.Read.All"],
                &[
                    "GroupMember.Read.All",
                    "RoleManagement.Read.Directory",
                    "UserAuthenticationMethod.ReadWrite.All",
                    "Policy.ReadWrite.AuthenticationMethod",
                ],
            ),
            (
                &[],
                &[
                    "User.Read.All",
                    "GroupMember.Read.All",
                    "RoleManagement.Read.Directory",
                    "UserAuthenticationMethod.ReadWrite.All",
                    "Policy.ReadWrite.AuthenticationMethod",
                ],
            ),
        ];
        for (granted, missing) in cases {
            let got: Vec<&str> = missing_permissions(&roles(granted)).iter().map(|m| m.permission).collect();
            assert_eq!(&got, missing, "granted {granted:?}");
        }
    }
}
