//! The rule manager's state as plain data, shaped exactly as the HTTP API
//! (`/api/v1/rules`, `/api/v1/alerts`) needs it: field for field the same
//! as `vigil_web::sources`' types, so the binary's adapter is a move.

use std::time::SystemTime;

use vigil_model::Labels;

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStatus {
    pub labels: Labels,
    pub annotations: Labels,
    /// "pending" or "firing".
    pub state: String,
    pub active_at: Option<SystemTime>,
    pub keep_firing_since: Option<SystemTime>,
    pub value: f64,
}

/// An alerting rule and its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRuleStatus {
    /// "inactive", "pending" or "firing".
    pub state: String,
    pub name: String,
    pub query: String,
    /// `for`, seconds.
    pub duration: f64,
    /// `keep_firing_for`, seconds.
    pub keep_firing_for: f64,
    pub labels: Labels,
    pub annotations: Labels,
    pub alerts: Vec<AlertStatus>,
    /// "ok", "err" or "unknown".
    pub health: String,
    pub last_error: String,
    /// Seconds.
    pub evaluation_time: f64,
    pub last_evaluation: Option<SystemTime>,
}

/// A recording rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRuleStatus {
    pub name: String,
    pub query: String,
    pub labels: Labels,
    pub health: String,
    pub last_error: String,
    pub evaluation_time: f64,
    pub last_evaluation: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleStatus {
    Alerting(AlertingRuleStatus),
    Recording(RecordingRuleStatus),
}

/// A rule group in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroupStatus {
    pub name: String,
    pub file: String,
    pub rules: Vec<RuleStatus>,
    /// Seconds.
    pub interval: f64,
    pub limit: i64,
    pub evaluation_time: f64,
    pub last_evaluation: Option<SystemTime>,
}
