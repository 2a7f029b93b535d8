//! Users and group members (docs/entra-graph-api.md §6): get, list with `$select`, `$filter`, `$top` and
//! `@odata.nextLink` paging (plus `$search`, `$count` and `$orderby` as
//! [`super::advanced_query`] allows them), and the members of a group.
//!
//! Only the query options Keyward and the peer tools use are understood; anything else is
//! refused as Graph refuses an unsupported query, rather than silently ignored, so a
//! client that relies on an option the emulator does not honour finds out at once.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use crate::Sim;
use crate::auth::Caller;
use crate::graph::advanced_query::AdvancedQuery;
use crate::graph::{ApiVersion, GraphFailure, GraphResult, with_context};
use crate::seed::SeedUser;

/// Roles that allow reading users.
pub const READ_USERS: &[&str] =
    &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
/// Roles that allow reading group membership.
pub const READ_MEMBERS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
/// Properties [`full_user`] renders that Graph returns only when `$select` names them.
const SELECT_ONLY_PROPERTIES: &[&str] = &["accountEnabled", "userType", "onPremisesImmutableId"];
const DEFAULT_PAGE: usize = 100;

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/{user}", get(get_user))
        .route("/groups", get(list_groups))
        .route("/groups/{group}/members", get(group_members))
}

/// Every property the emulator knows of a user.
fn full_user(user: &SeedUser) -> Map<String, Value> {
    let (given, surname) = match user.display_name.split_once(' ') {
        Some((g, s)) => (Value::from(g), Value::from(s)),
        None => (Value::Null, Value::Null),
    };
    let mut map = Map::new();
    map.insert("businessPhones".into(), json!([]));
    map.insert("displayName".into(), user.display_name.clone().into());
    map.insert("givenName".into(), given);
    map.insert("id".into(), user.id.clone().into());
    map.insert("jobTitle".into(), Value::Null);
    map.insert("mail".into(), user.mail.clone().map(Value::from).unwrap_or(Value::Null));
    map.insert("mobilePhone".into(), Value::Null);
    map.insert("officeLocation".into(), Value::Null);
    map.insert("preferredLanguage".into(), Value::Null);
    map.insert("surname".into(), surname);
    map.insert("userPrincipalName".into(), user.user_principal_name.clone().into());
    map.insert("accountEnabled".into(), user.account_enabled.into());
    map.insert("userType".into(), user.user_type.clone().into());
    map.insert("onPremisesImmutableId".into(), Value::Null);
    map
}

fn is_known_property(name: &str) -> bool {
    DEFAULT_PROPERTIES.contains(&name) || SELECT_ONLY_PROPERTIES.contains(&name)
}

/// Parsed `$select`: `None` means the default property set.
pub(super) fn select_list(query: &HashMap<String, String>) -> GraphResult<Option<Vec<String>>> {
    let Some(select) = query.get("$select") else { return Ok(None) };
    let fields: Vec<String> =
        select.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    for field in &fields {
        if !is_known_property(field) {
            return Err(GraphFailure::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("Could not find a property named '{field}' on type 'microsoft.graph.user'."),
            ));
        }
    }
    Ok(Some(fields))
}

fn project(user: &SeedUser, select: Option<&[String]>) -> Value {
    let full = full_user(user);
    let keep: Vec<&str> = match select {
        Some(fields) => fields.iter().map(String::as_str).collect(),
        None => DEFAULT_PROPERTIES.to_vec(),
    };
    Value::Object(full.into_iter().filter(|(k, _)| keep.contains(&k.as_str())).collect())
}

fn users_context(select: Option<&[String]>, entity: bool) -> String {
    let suffix = if entity { "/$entity" } else { "" };
    match select {
        Some(fields) => format!("users({}){suffix}", fields.join(",")),
        None => format!("users{suffix}"),
    }
}

/// One `$filter` clause the emulator understands.
#[derive(Debug, PartialEq)]
enum Filter {
    Eq(String, String),
    StartsWith(String, String),
    Bool(String, bool),
}

fn parse_filter(text: &str) -> GraphResult<Filter> {
    let unsupported = || {
        GraphFailure::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            format!(
                "Unsupported query: the emulator understands `PROPERTY eq 'value'`, `PROPERTY eq true|false` and `startswith(PROPERTY,'value')`, not `{text}`."
            ),
        )
    };
    let text = text.trim();
    if let Some(inner) = text.strip_prefix("startswith(").and_then(|t| t.strip_suffix(')')) {
        let (prop, value) = inner.split_once(',').ok_or_else(unsupported)?;
        let value = unquote(value.trim()).ok_or_else(unsupported)?;
        return Ok(Filter::StartsWith(prop.trim().to_owned(), value));
    }
    let parts: Vec<&str> = text.splitn(3, ' ').collect();
    match parts.as_slice() {
        [prop, "eq", value] => match *value {
            "true" => Ok(Filter::Bool((*prop).to_owned(), true)),
            "false" => Ok(Filter::Bool((*prop).to_owned(), false)),
            v => Ok(Filter::Eq((*prop).to_owned(), unquote(v).ok_or_else(unsupported)?)),
        },
        _ => Err(unsupported()),
    }
}

/// `'it''s'` → `it's`.
fn unquote(value: &str) -> Option<String> {
    let inner = value.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn matches(filter: &Filter, user: &SeedUser) -> GraphResult<bool> {
    let full = full_user(user);
    let prop = match filter {
        Filter::Eq(p, _) | Filter::StartsWith(p, _) | Filter::Bool(p, _) => p,
    };
    let Some(value) = full.get(prop.as_str()) else {
        return Err(GraphFailure::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Could not find a property named '{prop}' on type 'microsoft.graph.user'."),
        ));
    };
    Ok(match filter {
        Filter::Eq(_, v) => value.as_str().is_some_and(|s| s.eq_ignore_ascii_case(v)),
        Filter::StartsWith(_, v) => {
            value.as_str().is_some_and(|s| s.to_lowercase().starts_with(&v.to_lowercase()))
        }
        Filter::Bool(_, b) => value.as_bool() == Some(*b),
    })
}

fn page_size(query: &HashMap<String, String>) -> GraphResult<usize> {
    if query.contains_key("$skip") {
        return Err(GraphFailure::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "'$skip' is not supported by the service. Follow @odata.nextLink to page.",
        ));
    }
    match query.get("$top") {
        None => Ok(DEFAULT_PAGE),
        Some(top) => match top.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => Ok(n),
            _ => Err(GraphFailure::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."),
            )),
        },
    }
}

fn skip_token(query: &HashMap<String, String>) -> GraphResult<usize> {
    match query.get("$skiptoken") {
        None => Ok(0),
        Some(token) => keyward_webauthn::b64::decode_lenient(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("X'offset:").and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                GraphFailure::bad_request("The $skiptoken is not valid: follow @odata.nextLink verbatim.")
            }),
    }
}

/// Builds a page of `items` with a `nextLink` carrying every other query option.
pub(super) fn page(
    sim: &Sim,
    version: ApiVersion,
    path: &str,
    query: &HashMap<String, String>,
    context: &str,
    items: Vec<Value>,
) -> GraphResult<Value> {
    let size = page_size(query)?;
    let offset = skip_token(query)?;
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let mut body = json!({
        "@odata.context": format!("https://graph.microsoft.com/{}/$metadata#{context}", version.segment()),
        "value": value,
    });
    if offset + size < total {
        let mut url = url::Url::parse(&format!("{}/{}{path}", sim.base_url(), version.segment()))
            .map_err(|e| GraphFailure::bad_request(e.to_string()))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query.iter().filter(|(k, _)| k.as_str() != "$skiptoken") {
                pairs.append_pair(k, v);
            }
            let token = keyward_webauthn::b64::encode(format!("X'offset:{}", offset + size).as_bytes());
            pairs.append_pair("$skiptoken", &token);
        }
        body["@odata.nextLink"] = url.to_string().into();
    }
    Ok(body)
}

async fn list_users(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ_USERS)?;
    let advanced = AdvancedQuery::parse(&query, &headers)?;
    let select = select_list(&query)?;
    let filter = query.get("$filter").map(|f| parse_filter(f)).transpose()?;
    let users = sim.read(|t| t.users.clone());
    let mut found = Vec::new();
    for user in &users {
        if let Some(filter) = &filter
            && !matches(filter, user)?
        {
            continue;
        }
        let full = full_user(user);
        if advanced.matches(&full) {
            found.push((full, user));
        }
    }
    advanced.sort(&mut found, |(full, _)| full);
    let items: Vec<Value> = found.iter().map(|(_, user)| project(user, select.as_deref())).collect();
    let total = items.len();
    let context = users_context(select.as_deref(), false);
    let mut body = page(&sim, version, "/users", &query, &context, items)?;
    if advanced.count {
        body["@odata.count"] = total.into();
    }
    Ok(Json(body))
}

async fn get_user(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ_USERS)?;
    let select = select_list(&query)?;
    let key = user_key(&user);
    let found =
        sim.read(|t| t.find_user(&key).cloned()).ok_or_else(|| GraphFailure::resource_not_found(&key))?;
    let context = users_context(select.as_deref(), true);
    Ok(Json(with_context(version, &context, project(&found, select.as_deref()))))
}

/// The user a `/users/{segment}` URL names (object id, UPN, or `('$upn')`), or Graph's 404.
pub fn resolve_user(sim: &Sim, segment: &str) -> GraphResult<SeedUser> {
    let key = user_key(segment);
    sim.read(|t| t.find_user(&key).cloned()).ok_or_else(|| GraphFailure::resource_not_found(&key))
}

/// `/users('$x@y.com')` → `$x@y.com`; otherwise the segment as given.
pub fn user_key(segment: &str) -> String {
    segment
        .strip_prefix("('")
        .and_then(|s| s.strip_suffix("')"))
        .map(str::to_owned)
        .unwrap_or_else(|| segment.to_owned())
}

async fn list_groups(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ_MEMBERS)?;
    let filter = query.get("$filter").map(|f| parse_filter(f)).transpose()?;
    let groups = sim.read(|t| t.groups.clone());
    let mut items = Vec::new();
    for group in groups {
        let keep = match &filter {
            None => true,
            Some(Filter::Eq(p, v)) if p == "displayName" => group.display_name.eq_ignore_ascii_case(v),
            Some(Filter::Eq(p, v)) if p == "id" => group.id.eq_ignore_ascii_case(v),
            Some(Filter::StartsWith(p, v)) if p == "displayName" => {
                group.display_name.to_lowercase().starts_with(&v.to_lowercase())
            }
            Some(_) => {
                return Err(GraphFailure::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Unsupported query: groups can be filtered on displayName or id.",
                ));
            }
        };
        if keep {
            items.push(json!({"id": group.id, "displayName": group.display_name, "securityEnabled": true}));
        }
    }
    Ok(Json(page(&sim, version, "/groups", &query, "groups", items)?))
}

/// Users as the members of a group or a role: projected, each typed `#microsoft.graph.user`.
pub(super) fn member_items(members: &[SeedUser], select: Option<&[String]>) -> Vec<Value> {
    members
        .iter()
        .map(|u| {
            let mut v = project(u, select);
            if let Some(map) = v.as_object_mut() {
                map.insert("@odata.type".into(), "#microsoft.graph.user".into());
            }
            v
        })
        .collect()
}

async fn group_members(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ_MEMBERS)?;
    let select = select_list(&query)?;
    let (exists, members) = sim.read(|t| {
        let exists = t.groups.iter().any(|g| g.id.eq_ignore_ascii_case(&group));
        let members: Vec<SeedUser> = t
            .users
            .iter()
            .filter(|u| u.groups.iter().any(|g| g.eq_ignore_ascii_case(&group)))
            .cloned()
            .collect();
        (exists, members)
    });
    if !exists {
        return Err(GraphFailure::resource_not_found(&group));
    }
    let items = member_items(&members, select.as_deref());
    let path = format!("/groups/{group}/members");
    Ok(Json(page(&sim, version, &path, &query, "directoryObjects", items)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_graph_writes_them() {
        let cases = [
            ("userPrincipalName eq 'a@b.com'", Filter::Eq("userPrincipalName".into(), "a@b.com".into())),
            ("displayName eq 'O''Brien'", Filter::Eq("displayName".into(), "O'Brien".into())),
            ("startswith(displayName,'a')", Filter::StartsWith("displayName".into(), "a".into())),
            ("accountEnabled eq false", Filter::Bool("accountEnabled".into(), false)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_filter(text).unwrap(), expected, "{text}");
        }
        for bad in ["userPrincipalName ne 'x'", "endswith(mail,'x')", "x eq y"] {
            assert_eq!(parse_filter(bad).unwrap_err().code, "Request_UnsupportedQuery", "{bad}");
        }
    }

    #[test]
    fn the_selectable_properties_are_exactly_those_rendered() {
        let user = SeedUser {
            id: "i".into(),
            user_principal_name: "u".into(),
            display_name: "D N".into(),
            account_enabled: true,
            user_type: "Member".into(),
            mail: None,
            groups: vec![],
            directory_roles: vec![],
        };
        let full = full_user(&user);
        let mut rendered: Vec<&str> = full.keys().map(String::as_str).collect();
        rendered.sort_unstable();
        let mut expected = [DEFAULT_PROPERTIES, SELECT_ONLY_PROPERTIES].concat();
        expected.sort_unstable();
        assert_eq!(rendered, expected);
    }

    #[test]
    fn dollar_prefixed_upns_use_the_quoted_form() {
        assert_eq!(user_key("('$adm@contoso.com')"), "$adm@contoso.com");
        assert_eq!(user_key("adele@contoso.com"), "adele@contoso.com");
    }
}
