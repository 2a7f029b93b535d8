//! `/api/v1/doctor`: every reason a registration would fail, as findings with fixes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Registration may work, but something could not be checked or looks wrong.
    Warning,
    /// Registration would fail for this reason.
    Blocking,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// A stable name of the check, e.g. `policy.self-service` or `user.excluded`.
    pub check: String,
    /// Ok, warning or blocking.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// What to do about it (absent for passing checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Everything doctor found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DoctorReport {
    /// The findings, in the order a registration meets the checks.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// Whether any finding blocks registration.
    pub fn blocks(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Blocking)
    }

    /// Adds a passing check.
    pub fn ok(&mut self, check: &str, message: impl Into<String>) {
        self.push(check, Severity::Ok, message, None);
    }

    /// Adds a warning with its fix.
    pub fn warn(&mut self, check: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Severity::Warning, message, Some(fix.into()));
    }

    /// Adds a blocking finding with its fix.
    pub fn block(&mut self, check: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Severity::Blocking, message, Some(fix.into()));
    }

    /// Adds a finding.
    pub fn push(&mut self, check: &str, severity: Severity, message: impl Into<String>, fix: Option<String>) {
        self.findings.push(Finding { check: check.into(), severity, message: message.into(), fix });
    }
}

/// What doctor examines; every part is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct DoctorParams {
    /// The person to provision: Keyward id or UPN.
    pub person: Option<String>,
    /// The key model's AAGUID.
    pub aaguid: Option<String>,
    /// The key's serial.
    pub serial: Option<String>,
}
