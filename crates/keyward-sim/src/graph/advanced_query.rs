//! Graph's advanced query rules for `GET /users`: `$search`, `$count` and `$orderby` combined
//! with a filter are served only with the `ConsistencyLevel: eventual` header (Graph
//! advanced-query docs, docs/entra-graph-api.md §6), and refused without it as Graph refuses them.
//!
//! The refusal texts are the ones seen in public reports: `$search` in
//! microsoft-graph-toolkit #3028, `$count` in microsoft-graph-docs-contrib #2716. The text
//! for `$orderby` with `$filter` is unknown; the emulator's own wording names the header.
//! `$orderby` alone on `displayName` or `userPrincipalName` needs no header (the docs list
//! those as sortable by default).

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::graph::{GraphFailure, GraphResult};

/// Properties `$search` understands on users (the tokenized ones in the docs).
const SEARCHABLE: &[&str] = &["displayName", "givenName", "surname", "mail", "userPrincipalName"];
/// Properties `$orderby` sorts users by.
const SORTABLE: &[&str] = &["displayName", "userPrincipalName"];

/// The advanced options of one users query, checked against the header.
#[derive(Debug, Default, PartialEq)]
pub struct AdvancedQuery {
    search: Option<Search>,
    order_by: Option<(String, bool)>,
    /// `$count=true`: the answer carries `@odata.count`.
    pub count: bool,
}

/// `"prop:term"` clauses joined by `AND` (all must match) or `OR` (any).
#[derive(Debug, PartialEq)]
struct Search {
    clauses: Vec<(String, String)>,
    all: bool,
}

fn unsupported(code: &str, message: impl Into<String>) -> GraphFailure {
    GraphFailure::new(StatusCode::BAD_REQUEST, code, message)
}

/// Whether the request carries `ConsistencyLevel: eventual`.
fn is_eventual(headers: &HeaderMap) -> bool {
    headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

impl AdvancedQuery {
    /// Reads `$search`, `$count` and `$orderby`, refusing what needs the header it lacks.
    pub fn parse(query: &HashMap<String, String>, headers: &HeaderMap) -> GraphResult<Self> {
        let eventual = is_eventual(headers);
        let search = query.get("$search");
        if search.is_some() && !eventual {
            return Err(unsupported(
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a special request \
                 header: 'ConsistencyLevel: eventual'",
            ));
        }
        let count = match query.get("$count").map(|c| c.trim().to_ascii_lowercase()) {
            None => false,
            Some(_) if !eventual => {
                return Err(unsupported("Request_BadRequest", "$count is not currently supported."));
            }
            Some(c) if c == "true" => true,
            Some(c) if c == "false" => false,
            Some(c) => {
                return Err(unsupported(
                    "Request_BadRequest",
                    format!("$count must be true or false, not '{c}'."),
                ));
            }
        };
        let order_by = query.get("$orderby").map(|o| parse_order_by(o)).transpose()?;
        if order_by.is_some() && !eventual && (query.contains_key("$filter") || search.is_some()) {
            return Err(unsupported(
                "Request_UnsupportedQuery",
                "Sorting not supported for current query: $orderby with $filter needs the header \
                 'ConsistencyLevel: eventual' and $count=true.",
            ));
        }
        Ok(Self { search: search.map(|s| parse_search(s)).transpose()?, order_by, count })
    }

    /// Whether a user (all its properties) passes `$search`.
    pub fn matches(&self, user: &Map<String, Value>) -> bool {
        let Some(search) = &self.search else { return true };
        let hit = |(prop, term): &(String, String)| {
            user.get(prop).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(term))
        };
        if search.all { search.clauses.iter().all(hit) } else { search.clauses.iter().any(hit) }
    }

    /// Sorts items by `$orderby`, if given; `properties` gives an item's user properties.
    pub fn sort<T>(&self, items: &mut [T], properties: impl Fn(&T) -> &Map<String, Value>) {
        let Some((prop, descending)) = &self.order_by else { return };
        let key = |item: &T| properties(item).get(prop).and_then(Value::as_str).unwrap_or("").to_lowercase();
        items.sort_by(|a, b| {
            let order = key(a).cmp(&key(b));
            if *descending { order.reverse() } else { order }
        });
    }
}

/// `displayName`, `displayName asc` or `userPrincipalName desc`.
fn parse_order_by(text: &str) -> GraphResult<(String, bool)> {
    let mut parts = text.split_whitespace();
    let prop = parts.next().unwrap_or("");
    let descending = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(unsupported("Request_BadRequest", format!("Invalid $orderby '{text}'."))),
    };
    if !SORTABLE.contains(&prop) || parts.next().is_some() {
        return Err(unsupported(
            "Request_UnsupportedQuery",
            format!("Sorting by '{text}' is not supported; sort users by displayName or userPrincipalName."),
        ));
    }
    Ok((prop.to_owned(), descending))
}

/// `"displayName:adele" OR "mail:adele"`: quoted clauses, one operator throughout.
fn parse_search(text: &str) -> GraphResult<Search> {
    let invalid = || {
        unsupported(
            "Request_UnsupportedQuery",
            format!(
                "Invalid $search '{text}': write \"property:term\" clauses joined by AND or OR, with \
                 property one of {}.",
                SEARCHABLE.join(", ")
            ),
        )
    };
    let all = text.contains(" AND ");
    if all && text.contains(" OR ") {
        return Err(invalid());
    }
    let separator = if all { " AND " } else { " OR " };
    let mut clauses = Vec::new();
    for clause in text.split(separator) {
        let inner = clause.trim().strip_prefix('"').and_then(|c| c.strip_suffix('"')).ok_or_else(invalid)?;
        let (prop, term) = inner.split_once(':').ok_or_else(invalid)?;
        if !SEARCHABLE.contains(&prop) || term.is_empty() {
            return Err(invalid());
        }
        clauses.push((prop.to_owned(), term.to_lowercase()));
    }
    Ok(Search { clauses, all })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// A row: name, query options, whether `ConsistencyLevel: eventual` is sent, and the text
    /// of the refusal (`None`: accepted).
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, Option<&'a str>);

    #[test]
    fn advanced_options_need_the_header_and_plain_sorting_does_not() {
        let eventual: HeaderMap =
            [(axum::http::HeaderName::from_static("consistencylevel"), "eventual".parse().unwrap())]
                .into_iter()
                .collect();
        let plain = HeaderMap::new();
        #[rustfmt::skip]
        let cases: Vec<Row<'_>> = vec![
            ("$search without header", vec![("$search", "\"displayName:a\"")], false, Some("only works through MSGraph")),
            ("$count without header", vec![("$count", "true")], false, Some("$count is not currently supported.")),
            ("$orderby with $filter without header", vec![("$orderby", "displayName"), ("$filter", "accountEnabled eq true")], false, Some("Sorting not supported")),
            ("$orderby alone", vec![("$orderby", "displayName desc")], false, None),
            ("$search with header", vec![("$search", "\"displayName:a\" OR \"mail:b\"")], true, None),
            ("$count with header", vec![("$count", "true")], true, None),
            ("$orderby with $filter and header", vec![("$orderby", "userPrincipalName"), ("$filter", "accountEnabled eq true")], true, None),
            ("unsortable property", vec![("$orderby", "mail")], true, Some("Sorting by 'mail'")),
            ("mixed operators", vec![("$search", "\"displayName:a\" OR \"mail:b\" AND \"mail:c\"")], true, Some("Invalid $search")),
        ];
        for (name, pairs, with_header, refusal) in cases {
            let headers = if with_header { &eventual } else { &plain };
            let result = AdvancedQuery::parse(&query(&pairs), headers);
            match refusal {
                None => assert!(result.is_ok(), "{name}: {result:?}"),
                Some(text) => {
                    let failure = result.expect_err(name);
                    assert!(format!("{failure:?}").contains(text), "{name}: {failure:?}");
                }
            }
        }
    }
}
