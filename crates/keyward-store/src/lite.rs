//! SQLite, run in the caller's thread: Keyward's connections to the embedded database.
//!
//! **Why not sqlx for SQLite.** sqlx runs every SQLite connection on a thread of its own and
//! passes each statement and each row across a channel; on this project's 2-core machine the two
//! wake-ups per request on each side cost more CPU than the statements (a perf profile of an
//! issuance: 40 % of the server's CPU on the connection threads, of which under three quarters
//! was SQLite's own work). A statement on a local file takes microseconds, so it runs here, in
//! the task that needs it, through rusqlite (same `libsqlite3-sys`, bundled). sqlx keeps
//! PostgreSQL, where a network round trip dwarfs a hand-off, and SQLite's migrations.
//!
//! **Blocking.** Running in the caller's thread means a statement must never wait long:
//! * writers are queued *before* SQLite sees them: a write transaction takes the store's one
//!   writer connection behind an async mutex (held until commit or rollback), so two tasks of this
//!   process never meet in SQLite's busy handler, and a task waiting to write yields its thread;
//! * readers use connections of their own and, in WAL mode, never wait for the writer (a read
//!   borrows the writer's connection only when it is idle, for its warm page cache);
//! * only another *process* writing the same file (`keyward admin` while a server runs) can make
//!   `BEGIN IMMEDIATE` wait, for at most the busy timeout (5 s), in that thread.
//!
//! Settings every connection gets: WAL, a 5 s busy timeout, foreign keys, `synchronous = NORMAL`
//! (durable at checkpoints, safe with WAL), and a cache of 64 prepared statements.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::error::{Result, StoreError};
use crate::stmt::{Row, Stmt, Value};

/// How long a writer waits for the one before it, as long as SQLite's own busy timeout: a
/// transaction held longer (or a task that begins a second one while holding the first) gets
/// [`StoreError::Busy`] instead of waiting for ever.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The settings every SQLite connection gets, Keyward's and sqlx's (for migrations) alike.
pub(crate) const SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// Idle reader connections kept open.
const IDLE_READERS: usize = 8;

/// The SQLite database: one writer connection, reader connections opened as needed.
#[derive(Debug)]
pub(crate) struct Lite {
    path: PathBuf,
    /// `None` until first used, and again after a failed rollback (the connection was closed,
    /// which rolls back).
    writer: Arc<AsyncMutex<Option<rusqlite::Connection>>>,
    readers: Mutex<Vec<rusqlite::Connection>>,
}

/// The writer connection, held by a write transaction (or one autocommit write).
pub(crate) type WriterGuard = OwnedMutexGuard<Option<rusqlite::Connection>>;

impl Lite {
    /// The database at `path` (already created and migrated).
    pub(crate) fn new(path: &Path) -> Self {
        Lite { path: path.to_owned(), writer: Arc::default(), readers: Mutex::new(Vec::new()) }
    }

    fn connect(&self) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.execute_batch(SETTINGS)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// Waits for the writer connection (opening it if needed), at most [`WRITER_WAIT`].
    pub(crate) async fn writer(&self) -> Result<WriterGuard> {
        let mut guard = tokio::time::timeout(WRITER_WAIT, self.writer.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Busy(WRITER_WAIT))?;
        if guard.is_none() {
            *guard = Some(self.connect()?);
        }
        Ok(guard)
    }

    /// Runs a read: on the writer connection when it is open and idle, else on a reader connection.
    ///
    /// In WAL mode a connection throws its whole page cache away when it begins a read after
    /// *another* connection wrote, so a reader connection reads every page of its lookup again
    /// after each commit. The writer's cache survives its own commits: a read there finds its
    /// pages in memory. The writer is only borrowed when nobody holds it (a transaction keeps it
    /// from its first statement to its end), for the few microseconds the read takes in this
    /// thread; a writer queued for it is served first.
    pub(crate) fn read(&self, stmt: &Stmt, first_only: bool) -> Result<Vec<Row>> {
        if let Ok(writer) = self.writer.try_lock()
            && let Some(conn) = writer.as_ref()
        {
            return run(conn, stmt, first_only).map(|(_, rows)| rows);
        }
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = run(&conn, stmt, first_only).map(|(_, rows)| rows);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Closes the idle connections (a writer in use closes when its transaction ends).
    pub(crate) fn close(&self) {
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Ok(mut w) = self.writer.try_lock() {
            w.take();
        }
    }
}

/// The connection a writer guard holds.
pub(crate) fn held(guard: &WriterGuard) -> &rusqlite::Connection {
    guard.as_ref().expect("Lite::writer opens the connection before handing it out")
}

/// Runs `stmt` on `conn`: returns the number of rows it changed and its rows (only the first when
/// `first_only`).
///
/// `$N` placeholders are SQLite *named* parameters, numbered by first appearance, not by `N`; each
/// is bound by its name's number, as sqlx does, so `$2 … $1` binds the second argument first.
pub(crate) fn run(conn: &rusqlite::Connection, stmt: &Stmt, first_only: bool) -> Result<(u64, Vec<Row>)> {
    let mut st = conn.prepare_cached(&stmt.sql)?;
    for i in 1..=st.parameter_count() {
        let arg = st
            .parameter_name(i)
            .and_then(|n| n.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| stmt.args.get(n.wrapping_sub(1)))
            .ok_or_else(|| StoreError::Corrupt(format!("parameter {i} of {} has no argument", stmt.sql)))?;
        match arg {
            Value::Null { .. } => st.raw_bind_parameter(i, rusqlite::types::Null)?,
            Value::Int(n) => st.raw_bind_parameter(i, n)?,
            Value::Text(s) => st.raw_bind_parameter(i, s.as_str())?,
            Value::Real(f) => st.raw_bind_parameter(i, f)?,
            Value::Blob(b) => st.raw_bind_parameter(i, b.as_slice())?,
        }
    }
    if st.column_count() == 0 {
        let changed = st.raw_execute()?;
        return Ok((changed as u64, Vec::new()));
    }
    // A statement with rows changed some only if it writes (`… RETURNING`); the connection's
    // count would otherwise be an earlier statement's.
    let writes = !st.readonly();
    let names: Arc<[String]> = st.column_names().into_iter().map(str::to_owned).collect();
    let width = names.len();
    let mut rows = Vec::new();
    let mut cursor = st.raw_query();
    while let Some(r) = cursor.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null { text: false },
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(
                    String::from_utf8(t.to_vec())
                        .map_err(|_| StoreError::Corrupt(format!("column {} is not UTF-8", names[i])))?,
                ),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        rows.push(Row { names: names.clone(), values });
        if first_only {
            break;
        }
    }
    drop(cursor);
    Ok((if writes { conn.changes() } else { 0 }, rows))
}

/// Runs a statement without arguments or rows (`BEGIN`, `COMMIT`, `ROLLBACK`).
pub(crate) fn command(conn: &rusqlite::Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_gets_the_settings() {
        let dir = std::env::temp_dir().join(format!("keyward-lite-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = Lite::new(&dir.join("k.db")).connect().unwrap();
        let get = |name: &str| conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0));
        use rusqlite::types::Value as V;
        assert_eq!(get("journal_mode").unwrap(), V::Text("wal".into()));
        assert_eq!(get("busy_timeout").unwrap(), V::Integer(5000));
        assert_eq!(get("foreign_keys").unwrap(), V::Integer(1));
        assert_eq!(get("synchronous").unwrap(), V::Integer(1), "NORMAL");
        drop(conn);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn placeholders_bind_by_their_number_not_their_position() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let stmt = Stmt::new("SELECT $2 AS second, $1 AS first, $2 || $3 AS again")
            .bind(1_i64)
            .bind("two")
            .bind(None::<i64>);
        let (_, rows) = run(&conn, &stmt, false).unwrap();
        assert_eq!(
            rows[0].values,
            [Value::Text("two".into()), Value::Int(1), Value::Null { text: false }],
            "{:?}",
            rows[0].names
        );
        let missing = Stmt::new("SELECT $1, $2").bind(1_i64);
        assert!(
            matches!(run(&conn, &missing, false), Err(StoreError::Corrupt(m)) if m.contains("parameter 2"))
        );
    }
}
