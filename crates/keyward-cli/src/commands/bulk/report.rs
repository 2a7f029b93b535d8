//! The per-row result CSV (`--report FILE`) and the summary printed at the end. The report is
//! built from the server's job report, so it covers every row of the job — also the ones an
//! earlier, interrupted run did — and it never holds a PIN (the server never sees one).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use keyward_proto::jobs::UnitOutcome;
use serde_json::Value;

use super::RunSummary;
use crate::commands::output::csv_field as field;

/// `(outcome, detail)` of a row from the unit's result JSON.
pub fn outcome_of(row: &UnitOutcome) -> (String, String) {
    let parsed: Value =
        row.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    let outcome = parsed["outcome"].as_str().map(str::to_owned).unwrap_or_else(|| row.state.clone());
    let detail = parsed["detail"]
        .as_str()
        .or_else(|| parsed["reason"].as_str())
        .map(str::to_owned)
        .or_else(|| row.result.clone().filter(|_| parsed.is_null()))
        .unwrap_or_default();
    (outcome, detail)
}

/// Writes the report CSV: `line,upn,serial,state,outcome,detail,attempts`.
pub fn write(path: &Path, rows: &[UnitOutcome]) -> anyhow::Result<()> {
    let mut out = String::from("line,upn,serial,state,outcome,detail,attempts\n");
    for r in rows {
        let (outcome, detail) = outcome_of(r);
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.row.line,
            field(&r.row.upn),
            field(r.row.serial.as_deref().unwrap_or("")),
            r.state,
            field(&outcome),
            field(&detail),
            r.attempts
        ));
    }
    let mut f = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(out.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Prints the end-of-run summary.
pub fn print_summary(job: &str, rows: &[UnitOutcome], run: RunSummary) {
    let count = |o: &str| rows.iter().filter(|r| outcome_of(r).0 == o).count();
    let secs = run.elapsed.as_secs_f64().max(0.001);
    println!(
        "job {job}: {} rows — {} provisioned, {} skipped, {} refused, {} failed, {} not finished",
        rows.len(),
        count("provisioned") + count("already-done"),
        count("skipped"),
        count("refused"),
        count("failed"),
        rows.iter().filter(|r| r.state == "pending" || r.state == "running").count()
    );
    println!(
        "this run: {} provisioned, {} found done from an earlier run, {} failed in {:.1} s ({:.2} users/s)",
        run.provisioned,
        run.already_done,
        run.failed,
        secs,
        run.provisioned as f64 / secs
    );
}

#[cfg(test)]
mod tests {
    use keyward_proto::jobs::{BulkRow, UnitOutcome};

    #[test]
    fn fields_with_separators_are_quoted() {
        for (input, want) in [
            ("a@x.com", "a@x.com"),
            ("Vance, Adele", "\"Vance, Adele\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ] {
            assert_eq!(super::field(input), want);
        }
    }

    #[test]
    fn the_report_defuses_formulas_from_the_csv_and_the_server() {
        // A serial from the operator's CSV and a failure detail echoed from elsewhere, both
        // written so a spreadsheet would run them.
        let row = UnitOutcome {
            seq: 1,
            row: BulkRow {
                line: 2,
                upn: "adele@contoso.com".into(),
                serial: Some("=HYPERLINK(\"http://x\")".into()),
                display_name: None,
            },
            state: "failed".into(),
            result: Some(r#"{"outcome":"failed","detail":"@SUM(1+1)"}"#.into()),
            attempts: 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        super::write(&path, &[row]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().nth(1).unwrap();
        assert_eq!(line, "2,adele@contoso.com,\"'=HYPERLINK(\"\"http://x\"\")\",failed,failed,'@SUM(1+1),1");
    }
}
