//! Typed Graph operations Keyward needs: users and group members (with `$select` and
//! paging), groups by name, creationOptions, FIDO2 methods (list, get, delete, batch delete),
//! the FIDO2 method policy, Temporary Access Passes, and Conditional Access policies (read). Registration is in
//! [`crate::register`] because it needs its own failure handling.
//!
//! Ids and UPNs go into URL paths percent-encoded (guest UPNs contain `#EXT#`), and OData
//! string literals double their single quotes, so no user-controlled text changes a URL's
//! meaning.

use keyward_webauthn::conditional_access::ConditionalAccessPolicy;
use keyward_webauthn::graph::{CredentialCreationOptions, Fido2Method};
use keyward_webauthn::policy::{Fido2Policy, TemporaryAccessPass, TemporaryAccessPassRequest};
use reqwest::Method;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batch::{BatchRequest, BatchResult};
use crate::config::ApiVersion;
use crate::error::GraphError;
use crate::graph::{Connector, Retry, parse};

/// The user properties Keyward reads by default (`accountEnabled` and `userType` are only
/// returned when selected).
pub const USER_SELECT: &[&str] =
    &["id", "userPrincipalName", "displayName", "accountEnabled", "userType", "mail"];

/// The path of the FIDO2 method policy.
pub const FIDO2_POLICY_PATH: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";

/// A directory user, with the properties that were selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id.
    pub id: String,
    /// UPN.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether sign-in is allowed (only with `$select`).
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest` (only with `$select`).
    #[serde(default)]
    pub user_type: Option<String>,
    /// Mail address.
    #[serde(default)]
    pub mail: Option<String>,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// An activated directory role (Global Administrator and the like).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRole {
    /// The role's object id in this tenant.
    pub id: String,
    /// Display name, e.g. `Global Administrator`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The id of the role's template, the same in every tenant.
    #[serde(default)]
    pub role_template_id: Option<String>,
}

/// A Temporary Access Pass just created: the pass value is a secret, shown once.
#[derive(Debug, Clone)]
pub struct IssuedTap {
    /// The method, with `temporaryAccessPass` removed.
    pub method: TemporaryAccessPass,
    /// The pass itself.
    pub pass: SecretString,
}

/// Percent-encodes one URL path segment or query value (`%20` for spaces).
pub(crate) fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

/// An OData string literal: single quotes doubled.
fn odata_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn user_path(user: &str) -> String {
    format!("/users/{}", enc(user))
}

pub(crate) fn fido2_path(user: &str) -> String {
    format!("{}/authentication/fido2Methods", user_path(user))
}

impl Connector {
    /// A user by object id or UPN, with `select` (or [`USER_SELECT`] when empty).
    pub async fn get_user(&self, id_or_upn: &str, select: &[&str]) -> Result<User, GraphError> {
        let select = if select.is_empty() { USER_SELECT } else { select };
        self.get_json(&format!("{}?$select={}", user_path(id_or_upn), enc(&select.join(",")))).await
    }

    /// Every user of the tenant, `page_size` per page (1–999), with `select`.
    pub async fn list_users(&self, select: &[&str], page_size: u16) -> Result<Vec<User>, GraphError> {
        let select = if select.is_empty() { USER_SELECT } else { select };
        self.get_all(&format!("/users?$select={}&$top={}", enc(&select.join(",")), page_size.clamp(1, 999)))
            .await
    }

    /// Every member of a group, with `select`; members that are not users are skipped.
    pub async fn list_group_members(&self, group_id: &str, select: &[&str]) -> Result<Vec<User>, GraphError> {
        let select = if select.is_empty() { USER_SELECT } else { select };
        let members: Vec<Value> = self
            .get_all(&format!(
                "/groups/{}/members?$select={}&$top=999",
                enc(group_id),
                enc(&select.join(","))
            ))
            .await?;
        Ok(members
            .into_iter()
            .filter(|m| {
                m.get("@odata.type").and_then(Value::as_str).is_none_or(|t| t == "#microsoft.graph.user")
            })
            .filter_map(|m| serde_json::from_value(m).ok())
            .collect())
    }

    /// The directory roles activated in the tenant (a role appears once someone holds it).
    pub async fn list_directory_roles(&self) -> Result<Vec<DirectoryRole>, GraphError> {
        self.get_all("/directoryRoles?$select=id,displayName,roleTemplateId").await
    }

    /// The object ids of a directory role's members (users, groups and service principals
    /// alike: whoever holds the role).
    pub async fn list_directory_role_members(&self, role_id: &str) -> Result<Vec<String>, GraphError> {
        let members: Vec<Value> =
            self.get_all(&format!("/directoryRoles/{}/members?$select=id", enc(role_id))).await?;
        Ok(members
            .into_iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The group with exactly this display name; `None` if none, an error if several.
    pub async fn find_group_by_name(&self, name: &str) -> Result<Option<Group>, GraphError> {
        let filter = format!("displayName eq {}", odata_string(name));
        let mut groups: Vec<Group> =
            self.get_all(&format!("/groups?$filter={}&$select=id,displayName", enc(&filter))).await?;
        match groups.len() {
            0 => Ok(None),
            1 => Ok(groups.pop()),
            n => Err(GraphError::Unexpected {
                method: "GET".into(),
                path: "/groups".into(),
                detail: format!("{n} groups are named `{name}`: use the group's object id instead"),
                request_id: "-".into(),
            }),
        }
    }

    /// WebAuthn creation options for `user` (beta: with the configured challenge timeout).
    pub async fn creation_options(&self, user: &str) -> Result<CredentialCreationOptions, GraphError> {
        let base = format!("{}/creationOptions", fido2_path(user));
        let path = match (self.config.api_version, self.config.challenge_timeout_minutes) {
            (ApiVersion::Beta, Some(minutes)) => format!("{base}(challengeTimeoutInMinutes={minutes})"),
            _ => base,
        };
        self.get_json(&path).await
    }

    /// The tenant's Conditional Access policies (needs `Policy.Read.All`).
    pub async fn list_conditional_access_policies(&self) -> Result<Vec<ConditionalAccessPolicy>, GraphError> {
        self.get_all("/identity/conditionalAccess/policies").await
    }

    /// The user's registered FIDO2 methods.
    pub async fn list_fido2_methods(&self, user: &str) -> Result<Vec<Fido2Method>, GraphError> {
        self.get_all(&fido2_path(user)).await
    }

    /// One FIDO2 method.
    pub async fn get_fido2_method(&self, user: &str, method_id: &str) -> Result<Fido2Method, GraphError> {
        self.get_json(&format!("{}/{}", fido2_path(user), enc(method_id))).await
    }

    /// Deletes one FIDO2 method; `Ok(false)` if it was not there (already deleted, e.g. by an
    /// earlier attempt whose answer was lost).
    pub async fn delete_fido2_method(&self, user: &str, method_id: &str) -> Result<bool, GraphError> {
        let path = format!("{}/{}", fido2_path(user), enc(method_id));
        match self.request(Method::DELETE, &path, None, Retry::Safe).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes many `(user, method id)` pairs with `$batch`; one result per pair, in order.
    pub async fn delete_fido2_methods(
        &self,
        methods: &[(String, String)],
    ) -> Result<Vec<BatchResult>, GraphError> {
        let requests: Vec<BatchRequest> = methods
            .iter()
            .map(|(user, id)| BatchRequest::delete(format!("{}/{}", fido2_path(user), enc(id))))
            .collect();
        self.batch(&requests).await
    }

    /// The FIDO2 methods of many users with `$batch`; one result per user, in order.
    pub async fn list_fido2_methods_of(
        &self,
        users: &[String],
    ) -> Result<Vec<Result<Vec<Fido2Method>, BatchResult>>, GraphError> {
        let requests: Vec<BatchRequest> = users.iter().map(|u| BatchRequest::get(fido2_path(u))).collect();
        let results = self.batch(&requests).await?;
        Ok(results
            .into_iter()
            .map(|r| {
                if !r.is_success() {
                    return Err(r);
                }
                match serde_json::from_value::<keyward_webauthn::graph::Collection<Fido2Method>>(
                    r.body.clone(),
                ) {
                    Ok(page) => Ok(page.value),
                    Err(_) => Err(r),
                }
            })
            .collect())
    }

    /// The FIDO2 authentication-method policy.
    pub async fn get_fido2_policy(&self) -> Result<Fido2Policy, GraphError> {
        self.get_json(FIDO2_POLICY_PATH).await
    }

    /// Changes the FIDO2 policy: `changes` holds only the properties to change.
    pub async fn update_fido2_policy(
        &self,
        changes: serde_json::Map<String, Value>,
    ) -> Result<(), GraphError> {
        let mut body = changes;
        body.insert("@odata.type".into(), "#microsoft.graph.fido2AuthenticationMethodConfiguration".into());
        self.request(Method::PATCH, FIDO2_POLICY_PATH, Some(&Value::Object(body)), Retry::Safe).await?;
        Ok(())
    }

    /// Creates a Temporary Access Pass (replacing the user's existing one).
    pub async fn create_tap(
        &self,
        user: &str,
        request: &TemporaryAccessPassRequest,
    ) -> Result<IssuedTap, GraphError> {
        let path = format!("{}/authentication/temporaryAccessPassMethods", user_path(user));
        let body = serde_json::to_value(request).unwrap_or(Value::Null);
        let response = self.request(Method::POST, &path, Some(&body), Retry::ThrottleOnly).await?;
        let mut method: TemporaryAccessPass = parse(&Method::POST, &path, response)?;
        let pass = SecretString::from(method.temporary_access_pass.take().unwrap_or_default());
        Ok(IssuedTap { method, pass })
    }
}
