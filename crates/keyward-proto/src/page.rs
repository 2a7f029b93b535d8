//! Keyset pagination: every list answers one page and an opaque cursor to the next.
//!
//! Offsets get slower with every page and skip or repeat rows when the list changes between
//! requests; a cursor names the last row seen, so each page is one index range scan and a page
//! boundary stays put while rows are added elsewhere.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Largest page a list answers.
pub const MAX_LIMIT: u32 = 1000;
/// Page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 100;

/// A page of results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
}

/// Where a page starts and how long it is; part of every list's query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct PageQuery {
    /// The `next` of the previous page (opaque); the first page when absent.
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
}
