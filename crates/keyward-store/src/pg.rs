//! PostgreSQL, through sqlx's `Any` driver: runs a [`Stmt`] on a pooled connection and turns
//! sqlx's rows into [`Row`]s (the counterpart of [`crate::lite`] for SQLite).

use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{AnyConnection, Column, Executor, Row as _};

use crate::error::Result;
use crate::stmt::{Row, Stmt, Value};

/// Runs `stmt` on a PostgreSQL connection: the number of rows it changed and its rows.
pub(crate) async fn run(conn: &mut AnyConnection, stmt: &Stmt, first_only: bool) -> Result<(u64, Vec<Row>)> {
    let mut q = sqlx::query(&stmt.sql);
    for arg in &stmt.args {
        q = match arg {
            Value::Null { text: true } => q.bind(None::<String>),
            Value::Null { text: false } => q.bind(None::<i64>),
            Value::Int(n) => q.bind(*n),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Real(f) => q.bind(*f),
            Value::Blob(b) => q.bind(b.as_slice()),
        };
    }
    let (mut changed, mut rows, mut names) = (0, Vec::new(), None);
    let mut results = conn.fetch_many(q);
    while let Some(item) = results.try_next().await? {
        match item {
            sqlx::Either::Left(done) => changed += done.rows_affected(),
            sqlx::Either::Right(_) if first_only && !rows.is_empty() => {}
            sqlx::Either::Right(r) => rows.push(row(&r, &mut names)?),
        }
    }
    Ok((changed, rows))
}

/// A PostgreSQL row as a [`Row`] (column names shared by the statement's rows).
fn row(r: &AnyRow, names: &mut Option<Arc<[String]>>) -> Result<Row> {
    let names =
        names.get_or_insert_with(|| r.columns().iter().map(|c| c.name().to_owned()).collect()).clone();
    let mut values = Vec::with_capacity(names.len());
    for (i, c) in r.columns().iter().enumerate() {
        let kind = c.type_info().kind();
        let v = match kind {
            AnyTypeInfoKind::Null => None,
            AnyTypeInfoKind::Bool => r.try_get::<Option<bool>, _>(i)?.map(|b| Value::Int(b as i64)),
            AnyTypeInfoKind::SmallInt => r.try_get::<Option<i16>, _>(i)?.map(|n| Value::Int(n.into())),
            AnyTypeInfoKind::Integer => r.try_get::<Option<i32>, _>(i)?.map(|n| Value::Int(n.into())),
            AnyTypeInfoKind::BigInt => r.try_get::<Option<i64>, _>(i)?.map(Value::Int),
            AnyTypeInfoKind::Real => r.try_get::<Option<f32>, _>(i)?.map(|f| Value::Real(f.into())),
            AnyTypeInfoKind::Double => r.try_get::<Option<f64>, _>(i)?.map(Value::Real),
            AnyTypeInfoKind::Text => r.try_get::<Option<String>, _>(i)?.map(Value::Text),
            AnyTypeInfoKind::Blob => r.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Blob),
        };
        values.push(v.unwrap_or(Value::Null { text: kind == AnyTypeInfoKind::Text }));
    }
    Ok(Row { names, values })
}
