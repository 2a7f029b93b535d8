//! Connections for the repositories: Keyward's own SQLite pool, and [`Conn`], which is either one
//! of its connections or one of sqlx's pool (PostgreSQL).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use sqlx::any::AnyConnectOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, ConnectOptions, Connection, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Result;

/// SQLite connections Keyward keeps open: one writer at a time holds the lock, the others read.
pub(crate) const SQLITE_CONNECTIONS: usize = 8;

/// Settings every SQLite connection gets: WAL (readers never block the writer), a 5 s busy
/// timeout, foreign keys, and `synchronous = NORMAL` (durable at checkpoints, safe with WAL).
pub(crate) async fn sqlite_pragmas(conn: &mut AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    Ok(())
}

/// Keyward's own pool of SQLite connections.
///
/// **Why not sqlx's pool for SQLite.** sqlx runs each SQLite connection on a worker thread, and its
/// pool pings a connection when it is returned (and, by default, before handing it out), so one
/// statement through the pool costs two or three thread hand-offs instead of one; on this
/// project's 2-core machine that was about 50 µs of CPU per statement against 19 µs on a held
/// connection — most of an issuance's budget. A local file needs no liveness check, so this pool
/// just hands connections out and takes them back. PostgreSQL keeps sqlx's pool, whose checks
/// are worth their cost over a network.
#[derive(Debug)]
pub(crate) struct LocalPool {
    idle: Mutex<Vec<AnyConnection>>,
    permits: Arc<Semaphore>,
    options: AnyConnectOptions,
}

impl LocalPool {
    /// A pool of at most `size` connections, opened as they are first needed.
    pub(crate) fn new(options: AnyConnectOptions, size: usize) -> Self {
        Self { idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(size)), options }
    }

    /// Refuses new borrowers and closes the idle connections.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for conn in idle {
            let _ = conn.close().await;
        }
    }

    /// Borrows a connection, opening one if none is idle.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<LocalConn> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let mut conn = self.options.connect().await?;
                sqlite_pragmas(&mut conn).await?;
                conn
            }
        };
        Ok(LocalConn { conn: Some(conn), pool: self.clone(), _permit: permit, reusable: true })
    }
}

/// A connection borrowed from Keyward's SQLite pool; returned when dropped, unless it is dropped
/// inside a transaction.
#[derive(Debug)]
pub struct LocalConn {
    conn: Option<AnyConnection>,
    pool: Arc<LocalPool>,
    _permit: OwnedSemaphorePermit,
    /// False from `BEGIN` until `COMMIT` or `ROLLBACK` succeeded: a connection dropped in between
    /// (a cancelled request, a failed rollback) is closed instead, which makes SQLite roll the
    /// transaction back and release the write lock, rather than handed to the next borrower with
    /// a transaction open.
    reusable: bool,
}

impl Drop for LocalConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
        {
            self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
    }
}

/// A connection from either pool (see [`crate::Store::conn`]).
#[derive(Debug)]
pub enum Conn {
    /// From sqlx's pool (PostgreSQL).
    Pooled(PoolConnection<Any>),
    /// From Keyward's SQLite pool.
    Local(LocalConn),
}

impl Conn {
    /// Marks whether the connection may go back to the pool when dropped (see
    /// [`LocalConn::reusable`]); sqlx's pool tracks this itself.
    pub(crate) fn set_reusable(&mut self, reusable: bool) {
        if let Conn::Local(c) = self {
            c.reusable = reusable;
        }
    }
}

impl Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Local(c) => c.conn.as_ref().expect("a borrowed connection is present until dropped"),
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Local(c) => c.conn.as_mut().expect("a borrowed connection is present until dropped"),
        }
    }
}
