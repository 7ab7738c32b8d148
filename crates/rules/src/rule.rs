//! Recording and alerting rules: one evaluation each, and the alert state
//! machine (inactive -> pending -> firing, `keep_firing_for`, resolved
//! alerts retained 15 minutes) with Prometheus 2.53's exact transitions.
//!
//! Rules only compute: they return the samples to write and update their
//! own state; the group appends, commits and writes stale markers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use std::rc::Rc;
use vigil_model::storage::Queryable;

use vigil_model::{Label, Labels, Matcher, METRIC_NAME};
use vigil_promql::ast::Expr;
use vigil_promql::engine::{Engine, QueryControl, Value};

use crate::rulefmt::{RuleDef, RuleKind};
use crate::template::{label_map, AlertData, ExpandEnv, QuerySample, Template};

/// Name of the series of active alerts.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Name of the series that remembers when alerts became active.
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";
pub const ALERT_NAME_LABEL: &str = "alertname";
pub const ALERT_STATE_LABEL: &str = "alertstate";
/// How long resolved alerts are kept (and re-sent).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// What a rule evaluation can read.
pub struct EvalEnv<'a> {
    pub engine: &'a Engine,
    pub queryable: &'a dyn Queryable,
    /// `--web.external-url`.
    pub external_url: &'a str,
    pub external_labels: &'a Labels,
}

/// One output sample of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct OutSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// Rule health as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Good,
    Bad,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Good => "ok",
            Health::Bad => "err",
        }
    }
}

/// Evaluates `expr` at `t` (ms) as an instant vector; a scalar becomes a
/// one-element vector without labels, as Prometheus's `EngineQueryFunc`.
pub fn query_vector(env: &EvalEnv<'_>, expr: &Expr, t: i64) -> Result<Vec<OutSample>, String> {
    let res = env
        .engine
        .instant_query(env.queryable, expr, t, &QueryControl::new())
        .map_err(|e| e.to_string())?;
    match res.value {
        Value::Vector(v) => Ok(v
            .into_iter()
            .map(|s| OutSample {
                labels: s.labels,
                t: s.t,
                v: s.v,
            })
            .collect()),
        Value::Scalar { t, v } => Ok(vec![OutSample {
            labels: Labels::empty(),
            t,
            v,
        }]),
        _ => Err("rule result is not a vector or scalar".to_string()),
    }
}

/// Shared bookkeeping of both rule kinds.
#[derive(Clone, Debug)]
pub struct RuleInfo {
    pub health: Health,
    pub last_error: Option<String>,
    pub eval_duration: Duration,
    pub eval_timestamp: Option<SystemTime>,
}

impl Default for RuleInfo {
    fn default() -> Self {
        RuleInfo {
            health: Health::Unknown,
            last_error: None,
            eval_duration: Duration::ZERO,
            eval_timestamp: None,
        }
    }
}

/// A recording rule.
#[derive(Clone, Debug)]
pub struct RecordingRule {
    pub name: String,
    pub expr: String,
    pub ast: Expr,
    pub labels: Labels,
    pub info: RuleInfo,
}

impl RecordingRule {
    pub fn eval(
        &self,
        env: &EvalEnv<'_>,
        ts: i64,
        query_offset: i64,
        limit: u64,
    ) -> Result<Vec<OutSample>, String> {
        let mut v = query_vector(env, &self.ast, ts - query_offset)?;
        for s in &mut v {
            let mut b = s.labels.builder();
            b.set(METRIC_NAME, self.name.clone());
            for l in &self.labels {
                b.set(l.name.clone(), l.value.clone());
            }
            s.labels = b.build();
        }
        let mut seen = std::collections::HashSet::with_capacity(v.len());
        if !v.iter().all(|s| seen.insert(&s.labels)) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels"
                    .to_string(),
            );
        }
        if limit > 0 && v.len() as u64 > limit {
            return Err(format!("exceeded limit of {limit} with {} series", v.len()));
        }
        Ok(v)
    }
}

/// State of an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule. Times are milliseconds since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: Labels,
    /// Sorted by name; values may be empty.
    pub annotations: Vec<(String, String)>,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: Option<i64>,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`.
    fn needs_sending(&self, ts: i64, resend_delay: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        // Resolved since the last send: send now.
        if let Some(r) = self.resolved_at {
            if self.last_sent_at.is_none_or(|s| r > s) {
                return true;
            }
        }
        match self.last_sent_at {
            None => true,
            Some(s) => s + resend_delay < ts,
        }
    }
}

/// An alerting rule and its active alerts.
#[derive(Clone, Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr: String,
    pub ast: Expr,
    /// `for`, ms.
    pub hold_ms: i64,
    /// `keep_firing_for`, ms.
    pub keep_firing_for_ms: i64,
    /// Labels as written (templates unexpanded).
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    label_templates: Vec<(String, Template)>,
    annotation_templates: Vec<(String, Template)>,
    /// Active alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
    /// False until the `for` state was restored after a start; while false
    /// no `ALERTS`/`ALERTS_FOR_STATE` samples are produced.
    pub restored: bool,
    pub info: RuleInfo,
}

impl AlertingRule {
    /// The rule's highest alert state.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    fn expand(&self, env: &EvalEnv<'_>, t: &Template, data: &Rc<AlertData>, ts: i64) -> String {
        let qf = |q: &str| -> Result<Vec<QuerySample>, String> {
            let expr = vigil_promql::parser::parse(q).map_err(|e| e.to_string())?;
            let v = query_vector(env, &expr, ts)?;
            Ok(v.into_iter()
                .map(|s| QuerySample {
                    labels: label_map(&s.labels),
                    value: s.v,
                })
                .collect())
        };
        let xenv = ExpandEnv {
            external_url: env.external_url,
            query: Some(&qf),
        };
        match t.expand_alert_rc(data, &xenv) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(alert = %self.name, err = %e, "Expanding alert template failed");
                format!(
                    "<error expanding template: error executing template __alert_{}: {e}>",
                    self.name
                )
            }
        }
    }

    /// One evaluation at `ts` (ms): updates alert states and returns the
    /// `ALERTS`/`ALERTS_FOR_STATE` samples to write.
    pub fn eval(
        &mut self,
        env: &EvalEnv<'_>,
        ts: i64,
        query_offset: i64,
        limit: u64,
    ) -> Result<Vec<OutSample>, String> {
        let res = query_vector(env, &self.ast, ts - query_offset)?;
        let ext_map = Rc::new(label_map(env.external_labels));
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for smpl in res {
            let data = Rc::new(AlertData {
                labels: Rc::new(label_map(&smpl.labels)),
                external_labels: ext_map.clone(),
                external_url: env.external_url.to_string(),
                value: smpl.v,
            });
            let mut b = smpl.labels.builder();
            b.del(METRIC_NAME);
            for (k, t) in &self.label_templates {
                b.set(k.clone(), self.expand(env, t, &data, ts));
            }
            b.set(ALERT_NAME_LABEL, self.name.clone());
            let annotations: Vec<(String, String)> = self
                .annotation_templates
                .iter()
                .map(|(k, t)| (k.clone(), self.expand(env, t, &data, ts)))
                .collect();
            let lbs = b.build();
            if fresh.contains_key(&lbs) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_string(),
                );
            }
            fresh.insert(
                lbs.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels: lbs,
                    annotations,
                    value: smpl.v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }
        for (k, a) in fresh.iter_mut() {
            match self.active.get_mut(k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = std::mem::take(&mut a.annotations);
                }
                _ => {
                    self.active.insert(k.clone(), a.clone());
                }
            }
        }
        let current = fresh;
        let mut out = Vec::new();
        let mut num_active = 0u64;
        let mut remove = Vec::new();
        let out_ts = ts - query_offset;
        for (k, a) in self.active.iter_mut() {
            if !current.contains_key(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    if ts - since < self.keep_firing_for_ms {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    remove.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                let (alerts, for_state) = alert_series_labels(&self.labels, &self.name, a);
                out.push(OutSample {
                    labels: alerts,
                    t: out_ts,
                    v: 1.0,
                });
                out.push(OutSample {
                    labels: for_state,
                    t: out_ts,
                    v: a.active_at.div_euclid(1000) as f64,
                });
            }
        }
        for k in remove {
            self.active.remove(&k);
        }
        if limit > 0 && num_active > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {num_active} alerts"
            ));
        }
        Ok(out)
    }

    /// Alerts due for (re)sending at `ts`; marks them sent. Prometheus's
    /// `sendAlerts`: valid for 4 x max(resend delay, interval).
    pub fn alerts_to_send(&mut self, ts: i64, resend_delay: i64, interval: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay) {
                a.last_sent_at = Some(ts);
                a.valid_until = Some(ts + 4 * resend_delay.max(interval));
                out.push(a.clone());
            }
        }
        out
    }

    /// Matchers selecting this alert's `ALERTS_FOR_STATE` series.
    pub fn for_state_matchers(&self, a: &Alert) -> Vec<Matcher> {
        for_state_sample(&self.labels, &self.name, a, 0, 0.0)
            .labels
            .iter()
            .map(|l| Matcher::equal(l.name.clone(), l.value.clone()))
            .collect()
    }

    /// The `ALERTS_FOR_STATE` labels of an alert.
    pub fn for_state_labels(&self, a: &Alert) -> Labels {
        for_state_sample(&self.labels, &self.name, a, 0, 0.0).labels
    }
}

/// Labels of an alert's `ALERTS` and `ALERTS_FOR_STATE` series: the rule's
/// labels overridden by the alert's, plus name and state.
fn alert_series_labels(rule_labels: &Labels, name: &str, a: &Alert) -> (Labels, Labels) {
    let mut v: Vec<Label> = Vec::with_capacity(rule_labels.len() + a.labels.len() + 3);
    v.extend(
        rule_labels
            .iter()
            .filter(|l| !a.labels.has(&l.name))
            .cloned(),
    );
    v.extend(a.labels.iter().cloned());
    v.retain(|l| {
        l.name != METRIC_NAME && l.name != ALERT_NAME_LABEL && l.name != ALERT_STATE_LABEL
    });
    v.push(Label::new(ALERT_NAME_LABEL, name));
    let mut for_state = v.clone();
    for_state.push(Label::new(METRIC_NAME, ALERTS_FOR_STATE_METRIC));
    v.push(Label::new(METRIC_NAME, ALERTS_METRIC));
    v.push(Label::new(ALERT_STATE_LABEL, a.state.as_str()));
    (Labels::new(v), Labels::new(for_state))
}

fn for_state_sample(rule_labels: &Labels, name: &str, a: &Alert, t: i64, v: f64) -> OutSample {
    OutSample {
        labels: alert_series_labels(rule_labels, name, a).1,
        t,
        v,
    }
}

/// A rule of either kind.
#[derive(Clone, Debug)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    /// Builds a rule from its validated definition. `restored` is false
    /// when the rule's `for` state is to be restored from storage first.
    pub fn from_def(d: &RuleDef, restored: bool) -> Rule {
        let labels = Labels::from_pairs(
            &d.labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        match d.kind {
            RuleKind::Recording => Rule::Recording(RecordingRule {
                name: d.name.clone(),
                expr: d.expr.clone(),
                ast: d.ast.clone(),
                labels,
                info: RuleInfo::default(),
            }),
            RuleKind::Alerting => Rule::Alerting(AlertingRule {
                name: d.name.clone(),
                expr: d.expr.clone(),
                ast: d.ast.clone(),
                hold_ms: d.for_.as_millis() as i64,
                keep_firing_for_ms: d.keep_firing_for.as_millis() as i64,
                labels,
                annotations: d
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                label_templates: d.label_templates.clone(),
                annotation_templates: d.annotation_templates.clone(),
                active: BTreeMap::new(),
                restored,
                info: RuleInfo::default(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn info(&self) -> &RuleInfo {
        match self {
            Rule::Recording(r) => &r.info,
            Rule::Alerting(r) => &r.info,
        }
    }

    pub fn info_mut(&mut self) -> &mut RuleInfo {
        match self {
            Rule::Recording(r) => &mut r.info,
            Rule::Alerting(r) => &mut r.info,
        }
    }

    /// Identity for state copying on reload: kind, name, labels, expr.
    pub fn same_rule(&self, other: &Rule) -> bool {
        match (self, other) {
            (Rule::Recording(a), Rule::Recording(b)) => {
                a.name == b.name && a.expr == b.expr && a.labels == b.labels
            }
            (Rule::Alerting(a), Rule::Alerting(b)) => {
                a.name == b.name && a.expr == b.expr && a.labels == b.labels
            }
            _ => false,
        }
    }
}
