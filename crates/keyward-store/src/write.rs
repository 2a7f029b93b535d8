//! Writes a transaction may send later: [`Write`], and what a batched transaction does with them.
//!
//! **Why.** On SQLite every request to a connection costs two thread wake-ups on each side (sqlx
//! runs each connection on its own thread); on this project's 2-core machine that is more CPU than
//! the statement itself, and an issuance step is a handful of small writes. A transaction opened
//! with [`crate::Store::begin_batched`] therefore keeps its writes and sends them with the next
//! statement that must run at once — normally the audit `INSERT` and `COMMIT` — so a step is one
//! request. On PostgreSQL, and in transactions from [`crate::Store::begin`], a write runs at once.
//!
//! **How errors stay exact.** A write that must change a row is followed in the batch by a guard,
//! a `SELECT` that fails when `changes()` is 0, so SQLite stops the batch before anything after it
//! — in particular before `COMMIT`. The results of a batch arrive in statement order, one summary
//! per finished statement, so the statement that failed is known by counting them; the error is
//! then the write's own (its `on_error` mapping, or its `unchanged` explanation read inside the
//! still-open transaction), exactly as if it had run alone. What changes is only *when* a
//! batched transaction reports it: at the next statement that runs at once, or at commit.
//!
//! No crate does this: sqlx has no pipelining for SQLite (rejected: sqlx's own transaction
//! manager, which sends `BEGIN` and `COMMIT` as requests of their own), and a driver without a
//! connection thread (rusqlite) would have meant a second implementation of every repository.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Execute, Executor};

use crate::db::{Tx, TxQuery};
use crate::error::{Result, StoreError};

/// Binds a write's arguments, in the order of its `$1`, `$2`, … placeholders.
pub(crate) type Binder = Box<dyn for<'q> FnOnce(TxQuery<'q>) -> TxQuery<'q> + Send>;

/// Explains, inside the transaction, why a write changed no row (e.g. reads the current state).
pub(crate) type Explain =
    Box<dyn for<'a> FnOnce(&'a mut Tx) -> Pin<Box<dyn Future<Output = StoreError> + Send + 'a>> + Send>;

/// One write statement with its arguments and how its failures read.
pub struct Write {
    /// The statement, with dense `$1`…`$n` placeholders.
    pub(crate) sql: String,
    pub(crate) bind: Binder,
    /// Maps the statement's own error (e.g. a unique violation to [`StoreError::Duplicate`]).
    pub(crate) on_error: Box<dyn FnOnce(StoreError) -> StoreError + Send>,
    /// Present when the write must change at least one row: the error when it changed none.
    pub(crate) unchanged: Option<Explain>,
}

impl Write {
    /// A write of `sql`, whose `$1`…`$n` placeholders `bind` fills in order.
    pub(crate) fn new(
        sql: impl Into<String>,
        bind: impl for<'q> FnOnce(TxQuery<'q>) -> TxQuery<'q> + Send + 'static,
    ) -> Self {
        Write { sql: sql.into(), bind: Box::new(bind), on_error: Box::new(|e| e), unchanged: None }
    }

    /// Maps the statement's own error.
    pub(crate) fn on_error(mut self, map: impl FnOnce(StoreError) -> StoreError + Send + 'static) -> Self {
        self.on_error = Box::new(map);
        self
    }

    /// Requires the write to change a row; when it changed none, `read` reads the row as it is
    /// now (inside the transaction) and `refuse` names the error from it, or
    /// [`StoreError::NotFound`] names `subject` when there is no row.
    pub(crate) fn or_refuse<T: Send + 'static>(
        mut self,
        subject: String,
        read: impl for<'a> FnOnce(
            &'a mut AnyConnection,
        ) -> Pin<Box<dyn Future<Output = Result<Option<T>>> + Send + 'a>>
        + Send
        + 'static,
        refuse: impl FnOnce(T) -> StoreError + Send + 'static,
    ) -> Self {
        self.unchanged = Some(Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                let found = match tx.conn().await {
                    Ok(conn) => read(conn).await,
                    Err(e) => Err(e),
                };
                match found {
                    Ok(Some(current)) => refuse(current),
                    Ok(None) => StoreError::NotFound(subject),
                    Err(e) => e,
                }
            })
        }));
        self
    }
}

impl Tx {
    /// Sends, as one request, the pending `BEGIN`, the batched writes (each followed by its guard)
    /// and `tail`; returns the tail's change count (its last statement's) and first row, or the
    /// tail's own error inside `Ok`. A failed `BEGIN` or batched write is the outer error.
    ///
    /// SQLite reports each statement's change count as the connection's last one, and the `Any`
    /// driver's `fetch_optional` looks only at the first result, so the results are read from
    /// the stream here, one summary per finished statement, which is also how a failure is placed.
    pub(crate) async fn flush_and_run(
        &mut self,
        tail: Option<TxQuery<'_>>,
    ) -> Result<std::result::Result<(u64, Option<AnyRow>), sqlx::Error>> {
        /// What a statement before the tail is.
        enum Part {
            Begin,
            Write(usize),
            Guard(usize),
        }
        let mut parts = Vec::new();
        let mut sql = String::new();
        if self.begin_pending {
            self.mark_begun();
            sql.push_str("BEGIN IMMEDIATE; ");
            parts.push(Part::Begin);
        }
        let (tail_sql, tail_args) = match tail {
            Some(mut q) => (q.sql().to_owned(), q.take_arguments().map_err(sqlx::Error::Encode)?),
            None => (String::new(), None),
        };
        // The tail keeps its `$1`…`$m`; the writes' placeholders follow.
        let mut bound = tail_args.as_ref().map_or(0, sqlx::Arguments::len);
        let mut binders = Vec::new();
        let mut handlers = Vec::new();
        for (i, w) in std::mem::take(&mut self.deferred).into_iter().enumerate() {
            bound += renumber(&w.sql, bound, &mut sql);
            sql.push_str("; ");
            parts.push(Part::Write(i));
            if w.unchanged.is_some() {
                sql.push_str(GUARD);
                sql.push_str("; ");
                parts.push(Part::Guard(i));
            }
            binders.push(w.bind);
            handlers.push((w.on_error, w.unchanged));
        }
        sql.push_str(&tail_sql);
        let mut batch = match tail_args {
            Some(args) => sqlx::query_with(&sql, args),
            None => sqlx::query(&sql),
        };
        for bind in binders {
            batch = bind(batch);
        }
        let (mut done, mut last, mut first) = (0, 0, None);
        let mut results = self.raw().fetch_many(batch);
        let failed = loop {
            match results.try_next().await {
                Ok(Some(sqlx::Either::Left(summary))) => {
                    done += 1;
                    last = summary.rows_affected();
                }
                Ok(Some(sqlx::Either::Right(row))) if done >= parts.len() && first.is_none() => {
                    first = Some(row)
                }
                Ok(Some(sqlx::Either::Right(_))) => {}
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        drop(results);
        let Some(e) = failed else { return Ok(Ok((last, first))) };
        match parts.get(done) {
            None => Ok(Err(e)),
            Some(Part::Begin) => Err(e.into()),
            Some(&Part::Write(i)) => Err((handlers.swap_remove(i).0)(e.into())),
            Some(&Part::Guard(i)) => {
                let explain = handlers.swap_remove(i).1;
                Err(explain.expect("a guard follows a write that must change a row")(self).await)
            }
        }
    }
}

/// The statement that stops a batch when the write before it changed no row: `json()` of a text
/// that is not JSON fails, and `changes()` is not constant, so SQLite cannot evaluate it early.
pub(crate) const GUARD: &str =
    "SELECT json(CASE WHEN changes() > 0 THEN '0' ELSE 'the write before changed no row' END)";

/// Appends `sql` to `out` with every `$N` placeholder outside quotes moved up by `offset`; returns
/// the highest `N` it had (0 when it has none).
pub(crate) fn renumber(sql: &str, offset: usize, out: &mut String) -> usize {
    let mut max = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                max = max.max(n);
                let _ = write!(out, "${}", n + offset); // writing to a String cannot fail
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_move_up_outside_quotes_only() {
        for (sql, offset, want, max) in [
            ("UPDATE t SET a = $2 WHERE id = $1", 3, "UPDATE t SET a = $5 WHERE id = $4", 2),
            ("INSERT INTO t VALUES ($1,$10,$9)", 10, "INSERT INTO t VALUES ($11,$20,$19)", 10),
            ("SELECT '$7', \"$8\", $3", 1, "SELECT '$7', \"$8\", $4", 3),
            ("SELECT 1", 5, "SELECT 1", 0),
            ("SELECT $ || $1", 1, "SELECT $ || $2", 1),
        ] {
            let mut out = String::new();
            assert_eq!(renumber(sql, offset, &mut out), max, "{sql}");
            assert_eq!(out, want, "{sql}");
        }
    }
}
