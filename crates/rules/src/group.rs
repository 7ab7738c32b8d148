//! A rule group: its rules evaluated in order at one timestamp, results
//! appended and committed rule by rule (so a later rule sees an earlier
//! rule's output), stale markers for series that went away, the group's
//! evaluation offset and timestamps, `for`-state restore and the state
//! carried across reloads. Scheduling lives in the manager.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_model::storage::{Appendable, StorageError};
use vigil_model::{is_stale_nan, Labels, STALE_NAN};

use crate::rule::{Alert, AlertState, EvalEnv, Health, Rule};
use crate::rulefmt::GroupDef;
use crate::status::{
    AlertStatus, AlertingRuleStatus, RecordingRuleStatus, RuleGroupStatus, RuleStatus,
};
use crate::xxhash::xxhash64;

/// Per-group counters and gauges, Prometheus's `prometheus_rule_*`
/// families with label `rule_group="<file>;<name>"`.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    /// `prometheus_rule_group_iterations_total`
    pub iterations_total: AtomicU64,
    /// `prometheus_rule_group_iterations_missed_total`
    pub iterations_missed_total: AtomicU64,
    /// `prometheus_rule_evaluations_total`
    pub evaluations_total: AtomicU64,
    /// `prometheus_rule_evaluation_failures_total`
    pub evaluation_failures_total: AtomicU64,
    /// `prometheus_rule_group_last_duration_seconds` (f64 bits)
    pub last_duration_seconds: AtomicU64,
    /// `prometheus_rule_group_last_evaluation_timestamp_seconds` (f64 bits)
    pub last_evaluation_timestamp_seconds: AtomicU64,
    /// `prometheus_rule_group_last_evaluation_samples`
    pub last_evaluation_samples: AtomicU64,
    /// `prometheus_rule_group_interval_seconds` (f64 bits)
    pub interval_seconds: AtomicU64,
    /// `prometheus_rule_group_rules`
    pub rules: AtomicU64,
    /// `prometheus_rule_group_duration_seconds` sum (f64 bits) and count.
    pub group_duration_seconds_sum: AtomicU64,
    pub group_duration_seconds_count: AtomicU64,
    /// `prometheus_rule_evaluation_duration_seconds` sum (f64 bits) and
    /// count, over this group's rules.
    pub rule_duration_seconds_sum: AtomicU64,
    pub rule_duration_seconds_count: AtomicU64,
}

impl GroupMetrics {
    pub fn f64(v: &AtomicU64) -> f64 {
        f64::from_bits(v.load(Ordering::Relaxed))
    }

    /// Adds `x` to an f64 stored as bits.
    pub fn add_f64(v: &AtomicU64, x: f64) {
        let _ = v.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            Some((f64::from_bits(b) + x).to_bits())
        });
    }
}

/// Called with the rule's expression and the alerts to send.
pub type NotifyFn = Arc<dyn Fn(&str, &[Alert]) + Send + Sync>;

/// A loaded rule group and its evaluation state.
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: u64,
    pub rules: Vec<Rule>,
    series_in_previous_eval: Vec<HashSet<Labels>>,
    stale_series: Vec<Labels>,
    pub last_duration: Duration,
    pub last_evaluation: Option<SystemTime>,
    /// Timestamp (ms) of the last evaluation.
    pub last_eval_ts: Option<i64>,
    /// Restore `for` state after the first evaluation.
    pub should_restore: bool,
    pub metrics: Arc<GroupMetrics>,
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms_to_system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

impl Group {
    /// A group from its definition; `interval_ms`/`query_offset_ms` are the
    /// defaults used when the group sets none.
    pub fn new(
        def: &GroupDef,
        interval_ms: i64,
        query_offset_ms: i64,
        should_restore: bool,
    ) -> Group {
        let interval_ms = def
            .interval
            .map(|d| d.as_millis() as i64)
            .unwrap_or(interval_ms);
        let rules: Vec<Rule> = def
            .rules
            .iter()
            .map(|r| Rule::from_def(r, !should_restore))
            .collect();
        let metrics = Arc::new(GroupMetrics::default());
        metrics
            .interval_seconds
            .store((interval_ms as f64 / 1000.0).to_bits(), Ordering::Relaxed);
        metrics.rules.store(rules.len() as u64, Ordering::Relaxed);
        Group {
            name: def.name.clone(),
            file: def.file.clone(),
            interval_ms,
            query_offset_ms: def
                .query_offset
                .map(|d| d.as_millis() as i64)
                .unwrap_or(query_offset_ms),
            limit: def.limit,
            series_in_previous_eval: vec![HashSet::new(); rules.len()],
            rules,
            stale_series: Vec::new(),
            last_duration: Duration::ZERO,
            last_evaluation: None,
            last_eval_ts: None,
            should_restore,
            metrics,
        }
    }

    /// `<file>;<name>`, the group's key and its `rule_group` label.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }

    /// Prometheus's group hash: `labels.Hash` of {file, name}.
    fn hash(&self) -> u64 {
        let mut b = Vec::new();
        for (k, v) in [("file", &self.file), ("name", &self.name)] {
            b.extend_from_slice(k.as_bytes());
            b.push(0xff);
            b.extend_from_slice(v.as_bytes());
            b.push(0xff);
        }
        xxhash64(&b)
    }

    /// The evaluation timestamp (ms) of the interval containing `now_ns`:
    /// interval-aligned plus the group's stable offset, as Prometheus's
    /// `EvalTimestamp`.
    pub fn eval_timestamp(&self, now_ns: i128) -> i64 {
        let interval = self.interval_ms.max(1) as i128 * 1_000_000;
        let offset = (self.hash() as u128 % interval as u128) as i128;
        let start = now_ns - offset;
        let base = start - start.rem_euclid(interval);
        ((base + offset).div_euclid(1_000_000)) as i64
    }

    /// Evaluates every rule at `ts` (ms) in order.
    pub fn eval(
        &mut self,
        env: &EvalEnv<'_>,
        appendable: &dyn Appendable,
        ts: i64,
        resend_delay_ms: i64,
        notify: Option<&NotifyFn>,
    ) {
        let mut samples_total = 0u64;
        let offset = self.query_offset_ms;
        for i in 0..self.rules.len() {
            let started = Instant::now();
            let wall = SystemTime::now();
            self.metrics
                .evaluations_total
                .fetch_add(1, Ordering::Relaxed);
            let rule = &mut self.rules[i];
            let res = match rule {
                Rule::Recording(r) => r.eval(env, ts, offset, self.limit),
                Rule::Alerting(r) => r.eval(env, ts, offset, self.limit),
            };
            let vector = match res {
                Ok(v) => v,
                Err(e) => {
                    let info = rule.info_mut();
                    info.health = Health::Bad;
                    info.last_error = Some(e.clone());
                    info.eval_duration = started.elapsed();
                    info.eval_timestamp = Some(wall);
                    self.metrics
                        .evaluation_failures_total
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(group = %self.name, rule = %rule.name(), err = %e, "Evaluating rule failed");
                    continue;
                }
            };
            {
                let info = rule.info_mut();
                info.health = Health::Good;
                info.last_error = None;
            }
            if let (Rule::Alerting(ar), Some(notify)) = (&mut *rule, notify) {
                let alerts = ar.alerts_to_send(ts, resend_delay_ms, self.interval_ms);
                if !alerts.is_empty() {
                    notify(&ar.expr, &alerts);
                }
            }
            samples_total += vector.len() as u64;
            let mut app = appendable.appender();
            let mut returned = HashSet::with_capacity(vector.len());
            let mut append_err: Option<StorageError> = None;
            let (mut ooo, mut dup, mut old) = (0, 0, 0);
            for s in &vector {
                match app.append(0, &s.labels, s.t, s.v) {
                    Ok(_) => {
                        returned.insert(s.labels.clone());
                    }
                    Err(e) => {
                        match e {
                            StorageError::OutOfOrderSample => ooo += 1,
                            StorageError::DuplicateSampleForTimestamp => dup += 1,
                            StorageError::TooOldSample | StorageError::OutOfBounds => old += 1,
                            ref other => {
                                tracing::warn!(sample = %s.labels, err = %other, "Rule evaluation result discarded")
                            }
                        }
                        append_err = Some(e);
                    }
                }
            }
            if ooo + dup + old > 0 {
                tracing::warn!(group = %self.name, rule = %rule.name(), out_of_order = ooo, duplicate = dup, too_old = old, "Error on ingesting results from rule evaluation");
            }
            for lset in &self.series_in_previous_eval[i] {
                if !returned.contains(lset) {
                    // Gone since the last evaluation: mark it stale.
                    match app.append(0, lset, ts - offset, STALE_NAN) {
                        Ok(_)
                        | Err(StorageError::OutOfOrderSample)
                        | Err(StorageError::TooOldSample)
                        | Err(StorageError::OutOfBounds)
                        | Err(StorageError::DuplicateSampleForTimestamp) => {}
                        Err(e) => {
                            tracing::warn!(sample = %lset, err = %e, "Adding stale sample failed")
                        }
                    }
                }
            }
            if let Err(e) = app.commit() {
                append_err = Some(e);
            }
            self.series_in_previous_eval[i] = returned;
            let info = rule.info_mut();
            if let Some(e) = append_err {
                info.health = Health::Bad;
                info.last_error = Some(e.to_string());
            }
            info.eval_duration = started.elapsed();
            info.eval_timestamp = Some(wall);
            GroupMetrics::add_f64(
                &self.metrics.rule_duration_seconds_sum,
                info.eval_duration.as_secs_f64(),
            );
            self.metrics
                .rule_duration_seconds_count
                .fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .last_evaluation_samples
            .store(samples_total, Ordering::Relaxed);
        self.cleanup_stale_series(appendable, ts - offset);
    }

    /// Stale markers for series of rules removed by a reload.
    fn cleanup_stale_series(&mut self, appendable: &dyn Appendable, t: i64) {
        if self.stale_series.is_empty() {
            return;
        }
        let mut app = appendable.appender();
        for s in self.stale_series.drain(..) {
            let _ = app.append(0, &s, t, STALE_NAN);
        }
        if let Err(e) = app.commit() {
            tracing::warn!(group = %self.name, err = %e, "Stale sample appending for previous configuration failed");
        }
    }

    /// Stale markers for everything this group wrote (the group was
    /// removed from the configuration).
    pub fn mark_all_stale(&mut self, appendable: &dyn Appendable, t: i64) {
        let mut app = appendable.appender();
        for set in &self.series_in_previous_eval {
            for s in set {
                let _ = app.append(0, s, t, STALE_NAN);
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(group = %self.name, err = %e, "Stale sample appending failed");
        }
    }

    /// Restores `for` state of active alerts from `ALERTS_FOR_STATE`, as
    /// Prometheus's `RestoreForState` at wall time `now` (ms).
    pub fn restore_for_state(
        &mut self,
        env: &EvalEnv<'_>,
        now: i64,
        outage_tolerance_ms: i64,
        grace_period_ms: i64,
    ) {
        let mint = now - outage_tolerance_ms;
        let q = match env.queryable.querier(mint, now) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(group = %self.name, err = %e, "Failed to get Querier");
                return;
            }
        };
        for rule in &mut self.rules {
            let Rule::Alerting(ar) = rule else { continue };
            let hold = ar.hold_ms;
            if hold < grace_period_ms {
                // It would wait for the grace period longer than `for`:
                // nothing to restore, wait `for` as usual.
                ar.restored = true;
                continue;
            }
            let keys: Vec<Labels> = ar.active.keys().cloned().collect();
            for k in keys {
                let Some(a) = ar.active.get(&k) else { continue };
                let want = ar.for_state_labels(a);
                let matchers = ar.for_state_matchers(a);
                let series = match q.select(None, &matchers) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(alert = %ar.name, err = %e, "Failed to restore 'for' state");
                        continue;
                    }
                };
                let Some(s) = series.iter().find(|s| *s.labels() == want) else {
                    continue;
                };
                let mut it = s.iter();
                let mut last = None;
                loop {
                    match it.next() {
                        Ok(Some(x)) => last = Some(x),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!(alert = %ar.name, err = %e, "Failed to restore 'for' state");
                            last = None;
                            break;
                        }
                    }
                }
                let Some(last) = last else { continue };
                if is_stale_nan(last.v) {
                    continue;
                }
                let down_at = last.t.div_euclid(1000) * 1000;
                let mut restored_active_at = (last.v as i64) * 1000;
                let pending_spent = down_at - restored_active_at;
                let remaining = hold - pending_spent;
                if remaining <= 0 {
                    // Was firing; the next evaluation keeps it firing.
                } else if remaining < grace_period_ms {
                    restored_active_at = now + grace_period_ms - hold;
                } else {
                    restored_active_at += now - down_at;
                }
                if let Some(a) = ar.active.get_mut(&k) {
                    a.active_at = restored_active_at;
                }
                tracing::debug!(alert = %ar.name, labels = %k, "'for' state restored");
            }
            ar.restored = true;
        }
    }

    /// Takes over state of the previous version of this group: alerts and
    /// previously written series of rules with the same name and labels;
    /// series of rules that disappeared are marked stale at the next
    /// evaluation.
    pub fn copy_state(&mut self, from: &Group) {
        self.last_duration = from.last_duration;
        self.last_evaluation = from.last_evaluation;
        self.last_eval_ts = from.last_eval_ts;
        let key = |r: &Rule| {
            let labels = match r {
                Rule::Recording(x) => &x.labels,
                Rule::Alerting(x) => &x.labels,
            };
            format!("{}{}", r.name(), labels)
        };
        let mut used = vec![false; from.rules.len()];
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let k = key(rule);
            let Some(fi) = (0..from.rules.len()).find(|&fi| !used[fi] && key(&from.rules[fi]) == k)
            else {
                continue;
            };
            used[fi] = true;
            self.series_in_previous_eval[i] = from.series_in_previous_eval[fi].clone();
            if let (Rule::Alerting(ar), Rule::Alerting(far)) = (rule, &from.rules[fi]) {
                for (lk, a) in &far.active {
                    ar.active.insert(lk.clone(), a.clone());
                }
            }
        }
        self.stale_series = from.stale_series.clone();
        for (fi, u) in used.iter().enumerate() {
            if !u {
                self.stale_series
                    .extend(from.series_in_previous_eval[fi].iter().cloned());
            }
        }
    }

    /// The group as the API shows it.
    pub fn status(&self) -> RuleGroupStatus {
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let info = r.info();
                let health = info.health.as_str().to_string();
                let last_error = info.last_error.clone().unwrap_or_default();
                let evaluation_time = info.eval_duration.as_secs_f64();
                match r {
                    Rule::Recording(x) => RuleStatus::Recording(RecordingRuleStatus {
                        name: x.name.clone(),
                        query: x.expr.clone(),
                        labels: x.labels.clone(),
                        health,
                        last_error,
                        evaluation_time,
                        last_evaluation: info.eval_timestamp,
                    }),
                    Rule::Alerting(x) => RuleStatus::Alerting(AlertingRuleStatus {
                        state: x.state().as_str().to_string(),
                        name: x.name.clone(),
                        query: x.expr.clone(),
                        duration: x.hold_ms as f64 / 1000.0,
                        keep_firing_for: x.keep_firing_for_ms as f64 / 1000.0,
                        labels: x.labels.clone(),
                        annotations: pairs_to_labels(&x.annotations),
                        alerts: x
                            .active
                            .values()
                            .filter(|a| a.state != AlertState::Inactive)
                            .map(alert_status)
                            .collect(),
                        health,
                        last_error,
                        evaluation_time,
                        last_evaluation: info.eval_timestamp,
                    }),
                }
            })
            .collect();
        RuleGroupStatus {
            name: self.name.clone(),
            file: self.file.clone(),
            rules,
            interval: self.interval_ms as f64 / 1000.0,
            limit: self.limit as i64,
            evaluation_time: self.last_duration.as_secs_f64(),
            last_evaluation: self.last_evaluation,
        }
    }
}

pub(crate) fn pairs_to_labels(p: &[(String, String)]) -> Labels {
    Labels::from_pairs(
        &p.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    )
}

pub(crate) fn alert_status(a: &Alert) -> AlertStatus {
    AlertStatus {
        labels: a.labels.clone(),
        annotations: pairs_to_labels(&a.annotations),
        state: a.state.as_str().to_string(),
        active_at: Some(ms_to_system_time(a.active_at)),
        keep_firing_since: a.keep_firing_since.map(ms_to_system_time),
        value: a.value,
    }
}
