//! Opaque page cursors: the sort key of the last row a page showed.
//!
//! A cursor is the base64url of the key's parts joined by a NUL byte (which no key part holds),
//! so callers cannot mistake it for an id they could edit, and the service can change what a
//! list sorts by without changing the API. A cursor that does not decode, or has the wrong number
//! of parts for its list, is refused as invalid input rather than silently restarting the list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_proto::page::{DEFAULT_LIMIT, MAX_LIMIT};

use super::ServiceError;

/// The cursor naming a row with these sort-key parts.
pub fn encode(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\0"))
}

/// The `n` sort-key parts of a cursor made by [`encode`].
pub fn decode(cursor: &str, n: usize) -> Result<Vec<String>, ServiceError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let parts: Vec<String> = text.split('\0').map(str::to_owned).collect();
    if parts.len() != n {
        return Err(invalid());
    }
    Ok(parts)
}

/// The refusal of a cursor this list did not hand out.
pub fn invalid() -> ServiceError {
    ServiceError::Invalid(
        "the page cursor `after` is not one this list handed out; start again without it".into(),
    )
}

/// The page size a request asks for, checked: 1–1000, 100 when absent.
pub fn limit(asked: Option<u32>) -> Result<i64, ServiceError> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(i64::from(n)),
        _ => Err(ServiceError::Invalid(format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

/// One page of a list, with the cursor of the page after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The cursor to pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Listed<T> {
    /// The page made of `rows` fetched with `limit + 1`: the first `limit` rows, and the cursor
    /// (`key`) of the last one shown when another row follows.
    pub fn page(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if rows.len() <= limit {
            return Self { items: rows, next: None };
        }
        rows.truncate(limit);
        let next = rows.last().map(key);
        Self { items: rows, next }
    }

    /// The same page with each row turned into `f(row)`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed { items: self.items.into_iter().map(f).collect(), next: self.next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_its_parts() {
        let c = encode(&["ada@contoso.com", "42"]);
        assert_eq!(decode(&c, 2).unwrap(), vec!["ada@contoso.com", "42"]);
    }

    #[test]
    fn foreign_or_mangled_cursors_are_refused() {
        for bad in ["not base64 !", "", &encode(&["one"])] {
            let e = decode(bad, 2).unwrap_err();
            assert!(matches!(e, ServiceError::Invalid(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_follow() {
        let more = Listed::page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(more, Listed { items: vec![1, 2], next: Some("2".to_owned()) });
        let last = Listed::page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last, Listed { items: vec![1, 2], next: None });
    }
}
