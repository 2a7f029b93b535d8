//! [`Write`]: one write statement together with how its failures read, so that every repository
//! reports a refused write the same way — a unique violation as [`StoreError::Duplicate`], a
//! write that changed no row as the reason read from the row as it is now (a stale state, a
//! refused move) or as [`StoreError::NotFound`].

use std::future::Future;
use std::pin::Pin;

use crate::db::Tx;
use crate::error::{Result, StoreError};
use crate::stmt::Stmt;

/// Explains, inside the transaction, why a write changed no row (e.g. reads the current state).
pub(crate) type Explain =
    Box<dyn for<'a> FnOnce(&'a mut Tx) -> Pin<Box<dyn Future<Output = StoreError> + Send + 'a>> + Send>;

/// A future reading a row inside a transaction.
pub(crate) type ReadIn<'a, T> = Pin<Box<dyn Future<Output = Result<Option<T>>> + Send + 'a>>;

/// One write statement with its arguments and how its failures read (run by [`Tx::write`]).
pub struct Write {
    pub(crate) stmt: Stmt,
    /// Maps the statement's own error (e.g. a unique violation to [`StoreError::Duplicate`]).
    pub(crate) on_error: Box<dyn FnOnce(StoreError) -> StoreError + Send>,
    /// Present when the write must change at least one row: the error when it changed none.
    pub(crate) unchanged: Option<Explain>,
}

impl Write {
    /// A write of `stmt`.
    pub(crate) fn new(stmt: Stmt) -> Self {
        Write { stmt, on_error: Box::new(|e| e), unchanged: None }
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
        read: impl for<'a> FnOnce(&'a mut Tx) -> ReadIn<'a, T> + Send + 'static,
        refuse: impl FnOnce(T) -> StoreError + Send + 'static,
    ) -> Self {
        self.unchanged = Some(Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                match read(tx).await {
                    Ok(Some(current)) => refuse(current),
                    Ok(None) => StoreError::NotFound(subject),
                    Err(e) => e,
                }
            })
        }));
        self
    }
}
