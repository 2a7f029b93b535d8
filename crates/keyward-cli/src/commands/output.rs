//! How list and report commands print: an aligned table for people, CSV for spreadsheets, JSON for
//! scripts.
//!
//! The CSV writer is hand-written (RFC 4180 quoting is a dozen lines): the `csv` crate would add a
//! dependency for writing a few short rows, and we never parse CSV here.

use serde::Serialize;

/// An output format chosen with `--format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading on a terminal.
    #[default]
    Table,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
    /// JSON, the API's own field names.
    Json,
}

/// Rows with named columns, printed as a table or as CSV.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub fn new(headers: &[&str]) -> Self {
        Self { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    /// Appends a row; missing cells are blank.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Aligned columns separated by two spaces, header first.
    pub fn to_text(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == widths.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(w - cell.chars().count() + 2));
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = line(&self.headers.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>());
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV with a header row and CRLF-free `\n` line ends.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = (0..self.headers.len())
                .map(|i| csv_field(row.get(i).map(String::as_str).unwrap_or("")))
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// One CSV cell, as every CSV Keyward writes spells it (tables here, the bulk report): quoted
/// when it holds a comma, quote or line break (RFC 4180), and defused when a spreadsheet would
/// run it as a formula — a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
/// gets a leading `'` (OWASP's CSV-injection advice). A lone `-` (the tables' "none") stays as
/// it is: no spreadsheet reads it as a formula.
pub fn csv_field(text: &str) -> String {
    let formula = text != "-" && text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = if formula { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// Prints `value` as JSON, or `table` as text or CSV, to stdout.
pub fn print(format: Format, table: &Table, value: &impl Serialize) -> anyhow::Result<()> {
    match format {
        Format::Table => print!("{}", table.to_text()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}

/// An optional value, or `-` when absent.
pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        for (input, want) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=SUM(A1)", "'=SUM(A1)"),
            ("@cmd", "'@cmd"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("\tcmd", "'\tcmd"),
            ("\r=cmd", "\"'\r=cmd\""),
            ("a=b", "a=b"),
            ("-", "-"),
            ("", ""),
        ] {
            assert_eq!(csv_field(input), want, "{input:?}");
        }
    }

    #[test]
    fn table_columns_line_up() {
        let mut t = Table::new(&["upn", "state"]);
        t.row(vec!["a@x".into(), "registered".into()]);
        t.row(vec!["longer@x".into(), "-".into()]);
        assert_eq!(t.to_text(), "UPN       STATE\na@x       registered\nlonger@x  -\n");
        assert_eq!(t.to_csv(), "upn,state\na@x,registered\nlonger@x,-\n");
    }
}
