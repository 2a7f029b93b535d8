//! The bulk CSV: one person per row, columns found by their header.
//!
//! Columns: `upn` (or `userPrincipalName` or `email`), optional `serial` and `displayName`;
//! header names are case-insensitive, a UTF-8 byte-order mark is ignored, other columns are
//! ignored. Fields may be quoted (RFC 4180, `""` inside quotes), but a field may not span lines.
//!
//! The parser is hand-written rather than the `csv` crate: it reads line by line with a hard cap
//! on line length, row count and field length, so a 10 MB file of garbage (or one endless line)
//! is refused after reading at most one line, and every error names the line — which is what an
//! operator needs to fix a file exported from a spreadsheet.

use std::io::BufRead;

use keyward_proto::jobs::BulkRow;

/// Longest line accepted, in bytes.
pub const MAX_LINE: usize = 4096;
/// Longest field accepted, in characters.
pub const MAX_FIELD: usize = 256;
/// Most rows accepted.
pub const MAX_ROWS: usize = 100_000;

/// Why the CSV cannot be used; each names the line and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    /// Nothing in the file.
    #[error("the CSV file is empty; its first line must be a header such as `upn,serial,displayName`")]
    Empty,
    /// A header without a UPN column.
    #[error(
        "line 1: the header {found:?} has no `upn` column; the first line must name the columns, e.g. `upn,serial,displayName` (`userPrincipalName` or `email` also work)"
    )]
    Header {
        /// What the first line said (shortened).
        found: String,
    },
    /// A column named twice.
    #[error("line 1: the column `{0}` appears twice in the header; keep one")]
    DuplicateColumn(String),
    /// Bytes that are not UTF-8.
    #[error("line {0}: the file is not UTF-8 text; save it as \"CSV UTF-8\" and try again")]
    Encoding(u32),
    /// A line too long to be a row.
    #[error("line {line}: the line is longer than {MAX_LINE} bytes; is this really the bulk CSV?")]
    LineTooLong {
        /// The line.
        line: u32,
    },
    /// A field too long.
    #[error("line {line}: the `{column}` field is longer than {MAX_FIELD} characters")]
    FieldTooLong {
        /// The line.
        line: u32,
        /// The column.
        column: String,
    },
    /// Bad quoting.
    #[error(
        "line {0}: a quoted field is not closed (or text follows its closing quote); fields may not span lines"
    )]
    Quote(u32),
    /// A row without a UPN.
    #[error("line {line}: the `upn` field is empty; every row needs the person's UPN")]
    MissingUpn {
        /// The line.
        line: u32,
    },
    /// Not a UPN.
    #[error("line {line}: {upn:?} is not a UPN (name@domain)")]
    BadUpn {
        /// The line.
        line: u32,
        /// The value.
        upn: String,
    },
    /// More fields than the header.
    #[error("line {line}: {found} fields, but the header names {expected} columns")]
    FieldCount {
        /// The line.
        line: u32,
        /// Fields on the line.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// Too many rows.
    #[error("line {0}: more than {MAX_ROWS} rows; split the file")]
    TooManyRows(u32),
    /// No data rows after the header.
    #[error("the CSV file has a header but no rows")]
    NoRows,
    /// The file could not be read.
    #[error("cannot read the CSV file: {0}")]
    Read(String),
}

/// Reads one line of at most [`MAX_LINE`] bytes (without the line end); `None` at the end.
fn read_line(input: &mut impl BufRead, line: u32, buf: &mut Vec<u8>) -> Result<Option<()>, CsvError> {
    buf.clear();
    let mut limited = std::io::Read::take(&mut *input, MAX_LINE as u64 + 2);
    let n = limited.read_until(b'\n', buf).map_err(|e| CsvError::Read(e.to_string()))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if n > MAX_LINE {
        return Err(CsvError::LineTooLong { line });
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if buf.len() > MAX_LINE {
        return Err(CsvError::LineTooLong { line });
    }
    Ok(Some(()))
}

/// Splits one line into fields (RFC 4180 quoting, no embedded line breaks).
fn split(text: &str, line: u32) -> Result<Vec<String>, CsvError> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(CsvError::Quote(line)),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(CsvError::Quote(line)),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(CsvError::Quote(line)),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_owned());
        }
    }
}

struct Columns {
    upn: usize,
    serial: Option<usize>,
    display_name: Option<usize>,
    count: usize,
}

fn columns(header: &[String]) -> Result<Columns, CsvError> {
    let mut upn = None;
    let mut serial = None;
    let mut display_name = None;
    for (i, name) in header.iter().enumerate() {
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "upn" | "userprincipalname" | "email" => &mut upn,
            "serial" => &mut serial,
            "displayname" => &mut display_name,
            _ => continue,
        };
        if slot.replace(i).is_some() {
            return Err(CsvError::DuplicateColumn(name.clone()));
        }
    }
    let upn = upn.ok_or_else(|| CsvError::Header { found: header.join(",").chars().take(80).collect() })?;
    Ok(Columns { upn, serial, display_name, count: header.len() })
}

fn decode(bytes: &[u8], line: u32) -> Result<&str, CsvError> {
    std::str::from_utf8(bytes).map_err(|_| CsvError::Encoding(line))
}

/// Parses the bulk CSV from `input`; stops at the first error.
pub fn parse(mut input: impl BufRead) -> Result<Vec<BulkRow>, CsvError> {
    let mut buf = Vec::new();
    if read_line(&mut input, 1, &mut buf)?.is_none() {
        return Err(CsvError::Empty);
    }
    let bytes = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf);
    let header_text = decode(bytes, 1)?;
    if header_text.trim().is_empty() {
        return Err(CsvError::Empty);
    }
    let header = split(header_text, 1)
        .map_err(|_| CsvError::Header { found: header_text.chars().take(80).collect() })?;
    let cols = columns(&header)?;
    let mut rows = Vec::new();
    let mut line = 1u32;
    loop {
        // Lines are counted in 32 bits, as the server takes them; a file with more lines than
        // that is refused like one with too many rows.
        line = line.checked_add(1).ok_or(CsvError::TooManyRows(line))?;
        if read_line(&mut input, line, &mut buf)?.is_none() {
            break;
        }
        let text = decode(&buf, line)?;
        if text.trim().is_empty() {
            continue;
        }
        if rows.len() >= MAX_ROWS {
            return Err(CsvError::TooManyRows(line));
        }
        let fields = split(text, line)?;
        if fields.len() > cols.count {
            return Err(CsvError::FieldCount { line, found: fields.len(), expected: cols.count });
        }
        for (i, f) in fields.iter().enumerate() {
            if f.chars().count() > MAX_FIELD {
                let column = header.get(i).cloned().unwrap_or_default();
                return Err(CsvError::FieldTooLong { line, column });
            }
        }
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).filter(|f| !f.is_empty()).cloned();
        let upn = get(Some(cols.upn)).ok_or(CsvError::MissingUpn { line })?;
        if !keyward_core::is_plausible_upn(&upn) {
            return Err(CsvError::BadUpn { line, upn: upn.chars().take(80).collect() });
        }
        rows.push(BulkRow { line, upn, serial: get(cols.serial), display_name: get(cols.display_name) });
    }
    if rows.is_empty() {
        return Err(CsvError::NoRows);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u32, upn: &str, serial: Option<&str>, name: Option<&str>) -> BulkRow {
        BulkRow { line, upn: upn.into(), serial: serial.map(Into::into), display_name: name.map(Into::into) }
    }

    #[test]
    fn good_files_parse_by_header() {
        let cases: &[(&[u8], Vec<BulkRow>)] = &[
            (b"upn\na@x.com\n", vec![row(2, "a@x.com", None, None)]),
            (b"\xEF\xBB\xBFUPN,Serial\r\na@x.com,S1\r\n", vec![row(2, "a@x.com", Some("S1"), None)]),
            (
                b"displayName,userPrincipalName,dept\n\"Vance, Adele\",a@x.com,IT\n\n,b@x.com,\n",
                vec![row(2, "a@x.com", None, Some("Vance, Adele")), row(4, "b@x.com", None, None)],
            ),
            (b"Email,serial\n\"a@x.com\",\"S \"\"2\"\"\"", vec![row(2, "a@x.com", Some("S \"2\""), None)]),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(&input[..]).unwrap(), want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn bad_files_name_the_line() {
        let long_field = format!("upn,serial\na@x.com,{}\n", "S".repeat(MAX_FIELD + 1));
        let cases: Vec<(Vec<u8>, CsvError)> = vec![
            (b"".to_vec(), CsvError::Empty),
            (b"\xEF\xBB\xBF\n".to_vec(), CsvError::Empty),
            (b"name,serial\na@x.com,1\n".to_vec(), CsvError::Header { found: "name,serial".into() }),
            (b"upn,email\na@x.com,b@x.com\n".to_vec(), CsvError::DuplicateColumn("email".into())),
            (b"upn\na@x.com\nb\xFF@x.com\n".to_vec(), CsvError::Encoding(3)),
            (b"upn\n".to_vec(), CsvError::NoRows),
            (b"upn,serial\na@x.com,\"S1\n".to_vec(), CsvError::Quote(2)),
            (b"upn\n,\n".to_vec(), CsvError::FieldCount { line: 2, found: 2, expected: 1 }),
            (b"upn,serial\n,S1\n".to_vec(), CsvError::MissingUpn { line: 2 }),
            (b"upn\nnot-a-upn\n".to_vec(), CsvError::BadUpn { line: 2, upn: "not-a-upn".into() }),
            (long_field.into_bytes(), CsvError::FieldTooLong { line: 2, column: "serial".into() }),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&input[..]).unwrap_err(), want, "{}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn ten_megabytes_of_garbage_are_refused_after_one_line() {
        // Random bytes without line breaks: refused on line 1 having read at most MAX_LINE + 2.
        let mut garbage = vec![0u8; 10 * 1024 * 1024];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut garbage);
        for b in garbage.iter_mut() {
            if *b == b'\n' {
                *b = b'x';
            }
        }
        let mut reader = std::io::BufReader::new(&garbage[..]);
        let err = parse(&mut reader).unwrap_err();
        assert_eq!(err, CsvError::LineTooLong { line: 1 });
        let consumed = garbage.len() - std::io::Read::bytes(reader).count();
        assert!(consumed <= MAX_LINE + 2 + 8192, "read {consumed} bytes of garbage");
        // Garbage with line breaks: the header is not one.
        let text = "\u{1}\u{2}zz;;\n".repeat(100_000);
        assert!(matches!(parse(text.as_bytes()).unwrap_err(), CsvError::Header { .. }));
    }

    #[test]
    fn a_long_line_after_the_header_is_refused_with_its_line() {
        let input = format!("upn\na@x.com\n{}\n", "y".repeat(MAX_LINE + 10));
        assert_eq!(parse(input.as_bytes()).unwrap_err(), CsvError::LineTooLong { line: 3 });
    }
}
