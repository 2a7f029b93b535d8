//! A statement with its arguments ([`Stmt`]) and a result row ([`Row`]), owned by Keyward rather
//! than by a driver, so one repository function runs on either backend: PostgreSQL through sqlx
//! (see [`crate::db`]), SQLite through rusqlite in the caller's thread (see [`crate::lite`]).
//!
//! The schema keeps to types both backends read alike — `TEXT`, `BIGINT`, flags as 0/1 `BIGINT`,
//! times as Unix microseconds — so a [`Value`] is an integer, a text or a `NULL`; a `NULL` keeps
//! the type it stands for, because PostgreSQL needs a type for every parameter.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Result, StoreError};

/// One argument or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL`, standing for an integer (`false`) or a text (`true`).
    Null {
        /// Whether the `NULL` stands for a text.
        text: bool,
    },
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
    /// A floating-point number (read only: an aggregate may return one).
    Real(f64),
    /// Bytes (read only: Keyward stores none, but a hand-edited row may hold some).
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null { text: false }, Value::Int)
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null { text: true }, Value::Text)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::Null { text: true }, |s| Value::Text(s.to_owned()))
    }
}

/// A statement with `$1`…`$n` placeholders and its arguments, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub(crate) sql: String,
    pub(crate) args: Vec<Value>,
}

impl Stmt {
    /// A statement of `sql`, no arguments yet.
    pub fn new(sql: impl Into<String>) -> Self {
        Stmt { sql: sql.into(), args: Vec::new() }
    }

    /// Adds the next argument (`$1` first).
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Runs the statement and returns its rows.
    pub async fn fetch_all(self, on: impl Reader) -> Result<Vec<Row>> {
        on.rows(self, false).await
    }

    /// Runs the statement and returns its first row, if any.
    pub async fn fetch_optional(self, on: impl Reader) -> Result<Option<Row>> {
        Ok(on.rows(self, true).await?.into_iter().next())
    }

    /// Runs the statement and returns its first row; no row is an error.
    pub async fn fetch_one(self, on: impl Reader) -> Result<Row> {
        let sql = self.sql.clone();
        self.fetch_optional(on).await?.ok_or_else(|| StoreError::Corrupt(format!("no row from {sql}")))
    }
}

/// Where a statement can run: the store (a connection of its own) or a transaction.
pub trait Reader: Send {
    /// Runs `stmt`; returns its rows (only the first when `first_only`).
    fn rows(self, stmt: Stmt, first_only: bool) -> impl Future<Output = Result<Vec<Row>>> + Send;
}

/// A result row: the statement's column names and this row's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub(crate) names: Arc<[String]>,
    pub(crate) values: Vec<Value>,
}

impl Row {
    /// The value of column `col`.
    pub fn get(&self, col: &str) -> Result<&Value> {
        self.names
            .iter()
            .position(|n| n == col)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("the result has no column {col}")))
    }
}

fn mismatch(col: &str, want: &str, got: &Value) -> StoreError {
    StoreError::Corrupt(format!("column {col} holds {got:?} where {want} was expected"))
}

/// Reads a text column.
pub(crate) fn text(r: &Row, col: &str) -> Result<String> {
    opt_text(r, col)?.ok_or_else(|| mismatch(col, "a text", &Value::Null { text: true }))
}

/// Reads a nullable text column.
pub(crate) fn opt_text(r: &Row, col: &str) -> Result<Option<String>> {
    match r.get(col)? {
        Value::Text(s) => Ok(Some(s.clone())),
        Value::Null { .. } => Ok(None),
        other => Err(mismatch(col, "a text", other)),
    }
}

/// Reads an integer column.
pub(crate) fn int(r: &Row, col: &str) -> Result<i64> {
    opt_int(r, col)?.ok_or_else(|| mismatch(col, "an integer", &Value::Null { text: false }))
}

/// Reads a nullable integer column.
pub(crate) fn opt_int(r: &Row, col: &str) -> Result<Option<i64>> {
    match r.get(col)? {
        Value::Int(n) => Ok(Some(*n)),
        Value::Null { .. } => Ok(None),
        other => Err(mismatch(col, "an integer", other)),
    }
}

/// Reads a 0/1 flag column.
pub(crate) fn flag(r: &Row, col: &str) -> Result<bool> {
    Ok(int(r, col)? != 0)
}

/// Parses a text column into `T` (ids, enum names, UUIDs).
pub(crate) fn parsed<T: FromStr>(r: &Row, col: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let s = text(r, col)?;
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("column {col} = {s:?}: {e}")))
}

/// Parses a nullable text column into `T`.
pub(crate) fn opt_parsed<T: FromStr>(r: &Row, col: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match opt_text(r, col)? {
        None => Ok(None),
        Some(s) => {
            s.parse().map(Some).map_err(|e: T::Err| StoreError::Corrupt(format!("column {col} = {s:?}: {e}")))
        }
    }
}

/// Reads a JSON text column.
pub(crate) fn json<T: serde::de::DeserializeOwned>(r: &Row, col: &str) -> Result<T> {
    let s = text(r, col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: Vec<Value>) -> Row {
        Row { names: vec!["a".to_owned(), "b".to_owned()].into(), values }
    }

    #[test]
    fn columns_read_by_name_and_type() {
        let r = row(vec![Value::Int(7), Value::Text("x".into())]);
        assert_eq!(int(&r, "a").unwrap(), 7);
        assert_eq!(text(&r, "b").unwrap(), "x");
        // A text read as an integer, a missing column, and a NULL where a value must be: each is
        // a `Corrupt` error naming the column, never a panic or a default.
        for (col, err) in [
            ("b", int(&r, "b").unwrap_err()),
            ("c", text(&r, "c").unwrap_err()),
            ("a", text(&row(vec![Value::Null { text: true }, Value::Int(1)]), "a").unwrap_err()),
        ] {
            assert!(matches!(&err, StoreError::Corrupt(m) if m.contains(col)), "{col}: {err}");
        }
        assert_eq!(opt_int(&row(vec![Value::Null { text: false }, Value::Int(1)]), "a").unwrap(), None);
    }

    #[test]
    fn nulls_keep_the_type_they_stand_for() {
        assert_eq!(Value::from(None::<i64>), Value::Null { text: false });
        assert_eq!(Value::from(None::<String>), Value::Null { text: true });
        assert_eq!(Value::from(Some("a")), Value::Text("a".into()));
    }
}
