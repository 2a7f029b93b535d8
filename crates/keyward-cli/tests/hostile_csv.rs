//! Hostile bulk CSV files: whatever bytes an operator (or a spreadsheet) hands `keyward bulk`,
//! the reader returns the rows or a typed error naming the line, and never panics; a file
//! written by the RFC 4180 rules reads back as the rows it was written from.
//!
//! `bench/fuzz.sh` runs these at 100 000 cases each (`PROPTEST_CASES`); `cargo test` at 256.

use keyward_cli::commands::bulk::csv::{CsvError, parse};
use keyward_proto::jobs::BulkRow;
use keyward_testkit::hostile::{self, check};
use proptest::prelude::*;

/// A line of a CSV: header-like, row-like, or anything.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"upn,serial,displayName".to_vec()),
        Just("\u{feff}UserPrincipalName,Serial".as_bytes().to_vec()),
        proptest::collection::vec(hostile::text(), 0..5).prop_map(|f| f.join(",").into_bytes()),
        proptest::collection::vec(hostile::text(), 0..4).prop_map(|f| f
            .iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes()),
        hostile::bytes(60),
    ]
}

#[test]
fn hostile_bulk_csv() {
    let file =
        proptest::collection::vec((line(), prop::sample::select(vec![&b"\n"[..], b"\r\n", b""])), 0..8);
    check("bulk-csv", file, |lines| {
        let bytes: Vec<u8> =
            lines.into_iter().flat_map(|(l, end)| l.into_iter().chain(end.iter().copied())).collect();
        match parse(bytes.as_slice()) {
            Ok(rows) => prop_assert!(rows.iter().all(|r| keyward_core::is_plausible_upn(&r.upn))),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}

/// A field's text: anything on one line, quotes and commas included, never empty.
fn field() -> impl Strategy<Value = String> {
    "[^\n]{1,40}"
}

#[test]
fn hostile_bulk_csv_round_trip() {
    let upn = "[a-z0-9._%+-]{1,20}@[a-z0-9-]{1,12}\\.[a-z]{2,6}";
    let rows = proptest::collection::vec((upn, prop::option::of(field()), prop::option::of(field())), 1..20);
    check("bulk-csv-round-trip", rows, |rows| {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut text = String::from("upn,serial,displayName\r\n");
        for (upn, serial, name) in &rows {
            let cell = |v: &Option<String>| v.as_deref().map(quote).unwrap_or_default();
            text.push_str(&format!("{},{},{}\r\n", quote(upn), cell(serial), cell(name)));
        }
        let expected: Vec<BulkRow> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (upn, serial, display_name))| BulkRow { line: i as u32 + 2, upn, serial, display_name })
            .collect();
        prop_assert_eq!(parse(text.as_bytes()), Ok::<_, CsvError>(expected));
        Ok(())
    });
}
