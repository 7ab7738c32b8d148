//! Rule evaluation against in-memory storage: ordering within a group,
//! the ALERTS/ALERTS_FOR_STATE series, limits, query offset, group
//! offsets, `for`-state restore and the manager's scheduling and reloads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil_model::storage::{Appendable, Querier, Queryable, StorageError};
use vigil_model::{is_stale_nan, Labels, Sample};
use vigil_promql::engine::{Engine, EngineOptions};
use vigil_rules::group::Group;
use vigil_rules::manager::{RuleManager, RuleManagerOptions, RuleSettings};
use vigil_rules::memstore::MemStorage;
use vigil_rules::rule::{AlertState, EvalEnv, Health, Rule};
use vigil_rules::rulefmt::parse_rule_file;

const MIN: i64 = 60_000;

fn group(yaml: &str, should_restore: bool) -> Group {
    let f = parse_rule_file(yaml, Path::new("t.yml")).expect("valid rules");
    Group::new(&f.groups[0], MIN, 0, should_restore)
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

struct Ctx {
    store: MemStorage,
    engine: Engine,
    ext: Labels,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            store: MemStorage::new(),
            engine: Engine::new(EngineOptions::default()),
            ext: Labels::empty(),
        }
    }

    fn eval(&self, g: &mut Group, ts: i64) {
        let env = EvalEnv {
            engine: &self.engine,
            queryable: &self.store,
            external_url: "http://vigil:9090",
            external_labels: &self.ext,
        };
        g.eval(&env, &self.store, ts, MIN, None);
    }

    fn restore(&self, g: &mut Group, now: i64, tolerance: i64, grace: i64) {
        let env = EvalEnv {
            engine: &self.engine,
            queryable: &self.store,
            external_url: "",
            external_labels: &self.ext,
        };
        g.restore_for_state(&env, now, tolerance, grace);
    }

    fn values(&self, labels: &Labels) -> Vec<(i64, String)> {
        self.store
            .samples(labels)
            .into_iter()
            .map(|s| {
                let v = if is_stale_nan(s.v) {
                    "stale".to_string()
                } else {
                    s.v.to_string()
                };
                (s.t, v)
            })
            .collect()
    }
}

#[test]
fn later_rules_see_earlier_output_of_the_same_evaluation() {
    let c = Ctx::new();
    c.store.add(
        l(&[("__name__", "up"), ("job", "a")]),
        &[Sample::new(0, 1.0)],
    );
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:up:x2\n    expr: up * 2\n    labels: {src: r}\n  - record: job:up:x2p1\n    expr: job:up:x2 + 1\n",
        false,
    );
    c.eval(&mut g, 0);
    assert_eq!(
        c.values(&l(&[("__name__", "job:up:x2"), ("job", "a"), ("src", "r")])),
        vec![(0, "2".into())]
    );
    assert_eq!(
        c.values(&l(&[
            ("__name__", "job:up:x2p1"),
            ("job", "a"),
            ("src", "r")
        ])),
        vec![(0, "3".into())],
        "the second rule saw the first's output"
    );
    assert!(g.rules.iter().all(|r| r.info().health == Health::Good));
}

#[test]
fn recording_rule_output_goes_stale_when_input_disappears() {
    let c = Ctx::new();
    c.store.add(
        l(&[("__name__", "up"), ("job", "a")]),
        &[Sample::new(0, 1.0)],
    );
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n",
        false,
    );
    c.eval(&mut g, 0);
    // Past the 5m lookback, `up` is gone.
    c.eval(&mut g, 6 * MIN);
    assert_eq!(
        c.values(&l(&[("__name__", "r"), ("job", "a")])),
        vec![(0, "1".into()), (6 * MIN, "stale".into())]
    );
}

#[test]
fn alert_lifecycle_writes_alerts_series_like_prometheus() {
    let c = Ctx::new();
    let up = l(&[("__name__", "up"), ("instance", "i")]);
    c.store.add(
        up.clone(),
        &[
            Sample::new(0, 0.0),
            Sample::new(MIN, 0.0),
            Sample::new(2 * MIN, 0.0),
        ],
    );
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 1m\n    labels: {sev: page}\n    annotations: {s: \"{{ $labels.instance }} is {{ $value }}\"}\n",
        false,
    );
    c.eval(&mut g, 0);
    c.eval(&mut g, MIN);
    c.store.add(up.clone(), &[Sample::new(3 * MIN, 1.0)]);
    c.eval(&mut g, 3 * MIN);
    let pending = l(&[
        ("__name__", "ALERTS"),
        ("alertname", "Down"),
        ("alertstate", "pending"),
        ("instance", "i"),
        ("sev", "page"),
    ]);
    let firing = l(&[
        ("__name__", "ALERTS"),
        ("alertname", "Down"),
        ("alertstate", "firing"),
        ("instance", "i"),
        ("sev", "page"),
    ]);
    let for_state = l(&[
        ("__name__", "ALERTS_FOR_STATE"),
        ("alertname", "Down"),
        ("instance", "i"),
        ("sev", "page"),
    ]);
    assert_eq!(
        c.values(&pending),
        vec![(0, "1".into()), (MIN, "stale".into())]
    );
    assert_eq!(
        c.values(&firing),
        vec![(MIN, "1".into()), (3 * MIN, "stale".into())]
    );
    assert_eq!(
        c.values(&for_state),
        vec![
            (0, "0".into()),
            (MIN, "0".into()),
            (3 * MIN, "stale".into())
        ]
    );
    let Rule::Alerting(ar) = &g.rules[0] else {
        panic!("alerting rule")
    };
    let a = ar.active.values().next().expect("resolved alert kept");
    assert_eq!(a.state, AlertState::Inactive);
    assert_eq!(a.resolved_at, Some(3 * MIN));
    assert_eq!(a.annotations, vec![("s".to_string(), "i is 0".to_string())]);
}

#[test]
fn resolved_alerts_are_kept_and_resent_for_15_minutes() {
    let c = Ctx::new();
    let up = l(&[("__name__", "up")]);
    c.store.add(up.clone(), &[Sample::new(0, 0.0)]);
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n",
        false,
    );
    c.eval(&mut g, 0);
    c.store.add(up, &[Sample::new(MIN, 1.0)]);
    c.eval(&mut g, MIN);
    let Rule::Alerting(ar) = &mut g.rules[0] else {
        panic!()
    };
    // Firing sent at 0 would be marked by sendAlerts; emulate the sends.
    let sent = ar.alerts_to_send(MIN, MIN, MIN);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].resolved_at, Some(MIN));
    assert!(
        ar.alerts_to_send(MIN + 30_000, MIN, MIN).is_empty(),
        "not before resend delay"
    );
    assert_eq!(
        ar.alerts_to_send(2 * MIN + 1, MIN, MIN).len(),
        1,
        "re-sent after resend delay"
    );
    for t in 2..=16 {
        c.eval(&mut g, t * MIN);
    }
    let Rule::Alerting(ar) = &g.rules[0] else {
        panic!()
    };
    assert_eq!(ar.active.len(), 1, "kept through 15m after resolution");
    c.eval(&mut g, 17 * MIN);
    let Rule::Alerting(ar) = &g.rules[0] else {
        panic!()
    };
    assert!(ar.active.is_empty(), "dropped after 15m");
}

#[test]
fn valid_until_is_four_times_max_of_resend_delay_and_interval() {
    let c = Ctx::new();
    c.store
        .add(l(&[("__name__", "up")]), &[Sample::new(0, 0.0)]);
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n",
        false,
    );
    c.eval(&mut g, 0);
    let Rule::Alerting(ar) = &mut g.rules[0] else {
        panic!()
    };
    let sent = ar.alerts_to_send(0, 60_000, 15_000);
    assert_eq!(sent[0].valid_until, Some(240_000));
}

#[test]
fn limits_fail_the_rule() {
    let c = Ctx::new();
    c.store
        .add(l(&[("__name__", "up"), ("i", "1")]), &[Sample::new(0, 0.0)]);
    c.store
        .add(l(&[("__name__", "up"), ("i", "2")]), &[Sample::new(0, 0.0)]);
    let mut g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: up\n  - alert: A\n    expr: up == 0\n",
        false,
    );
    c.eval(&mut g, 0);
    assert_eq!(g.rules[0].info().health, Health::Bad);
    assert_eq!(
        g.rules[0].info().last_error.as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
    assert_eq!(
        g.rules[1].info().last_error.as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert!(c.values(&l(&[("__name__", "r"), ("i", "1")])).is_empty());
}

#[test]
fn duplicate_labelsets_after_rule_labels_fail() {
    let c = Ctx::new();
    c.store
        .add(l(&[("__name__", "a"), ("x", "1")]), &[Sample::new(0, 1.0)]);
    c.store
        .add(l(&[("__name__", "b"), ("x", "1")]), &[Sample::new(0, 1.0)]);
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: '{x=\"1\"}'\n",
        false,
    );
    c.eval(&mut g, 0);
    assert_eq!(
        g.rules[0].info().last_error.as_deref(),
        Some("vector contains metrics with the same labelset after applying rule labels")
    );
}

#[test]
fn query_offset_shifts_query_and_output_time() {
    let c = Ctx::new();
    c.store.add(
        l(&[("__name__", "up")]),
        &[Sample::new(0, 1.0), Sample::new(10 * MIN, 2.0)],
    );
    let mut g = group(
        "groups:\n- name: g\n  query_offset: 5m\n  rules:\n  - record: r\n    expr: up\n",
        false,
    );
    assert_eq!(g.query_offset_ms, 5 * MIN);
    c.eval(&mut g, 10 * MIN);
    assert_eq!(
        c.values(&l(&[("__name__", "r")])),
        vec![(5 * MIN, "1".into())]
    );
}

#[test]
fn group_evaluation_offset_is_stable_and_aligned() {
    let g = group("groups:\n- name: g\n  interval: 1m\n  rules: []\n", false);
    let base: i128 = 1_700_000_000_000_000_000;
    let t1 = g.eval_timestamp(base);
    let t2 = g.eval_timestamp(base + 1_000_000);
    let off = t1.rem_euclid(MIN);
    assert!(t1 as i128 * 1_000_000 <= base);
    assert!(base - (t1 as i128) * 1_000_000 < 60_000_000_000);
    // Same offset within the interval for every tick.
    assert_eq!(off, t2.rem_euclid(MIN));
    assert_eq!(
        off,
        g.eval_timestamp(base + 3_600_000_000_000).rem_euclid(MIN)
    );
    // A different group lands elsewhere.
    let h = group(
        "groups:\n- name: other\n  interval: 1m\n  rules: []\n",
        false,
    );
    assert_ne!(off, h.eval_timestamp(base).rem_euclid(MIN));
}

fn down_rule(for_: &str) -> String {
    format!("groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: {for_}\n")
}

#[test]
fn restore_after_restart_shifts_active_at_by_downtime() {
    let c = Ctx::new();
    let up = l(&[("__name__", "up")]);
    c.store.add(
        up.clone(),
        &(0..=30)
            .map(|i| Sample::new(i * MIN, 0.0))
            .collect::<Vec<_>>(),
    );
    let mut g = group(&down_rule("10m"), false);
    for t in 0..=3 {
        c.eval(&mut g, t * MIN);
    }
    // Restart at 5m: the new group restores before producing ALERTS.
    let mut g2 = group(&down_rule("10m"), true);
    c.eval(&mut g2, 5 * MIN);
    c.restore(&mut g2, 5 * MIN, 60 * MIN, 2 * MIN);
    let Rule::Alerting(ar) = &g2.rules[0] else {
        panic!()
    };
    let a = ar.active.values().next().expect("alert");
    // Pending 3m before going down, down for 2m: active since 2m.
    assert_eq!(a.active_at, 2 * MIN);
    for t in 6..=11 {
        c.eval(&mut g2, t * MIN);
        let Rule::Alerting(ar) = &g2.rules[0] else {
            panic!()
        };
        assert_eq!(
            ar.state(),
            AlertState::Pending,
            "no premature firing at {t}m"
        );
    }
    c.eval(&mut g2, 12 * MIN);
    let Rule::Alerting(ar) = &g2.rules[0] else {
        panic!()
    };
    assert_eq!(ar.state(), AlertState::Firing);
}

#[test]
fn restore_near_the_end_of_for_waits_the_grace_period() {
    let c = Ctx::new();
    c.store.add(
        l(&[("__name__", "up")]),
        &(0..=30)
            .map(|i| Sample::new(i * MIN, 0.0))
            .collect::<Vec<_>>(),
    );
    let mut g = group(&down_rule("10m"), false);
    for t in 0..=9 {
        c.eval(&mut g, t * MIN);
    }
    let mut g2 = group(&down_rule("10m"), true);
    c.eval(&mut g2, 12 * MIN);
    c.restore(&mut g2, 12 * MIN, 60 * MIN, 3 * MIN);
    let Rule::Alerting(ar) = &g2.rules[0] else {
        panic!()
    };
    // 1m left < 3m grace: fire at now + grace.
    assert_eq!(
        ar.active.values().next().map(|a| a.active_at),
        Some(12 * MIN + 3 * MIN - 10 * MIN)
    );
}

#[test]
fn restore_keeps_firing_alerts_firing_and_ignores_old_outages() {
    let c = Ctx::new();
    c.store.add(
        l(&[("__name__", "up")]),
        &(0..=200)
            .map(|i| Sample::new(i * MIN, 0.0))
            .collect::<Vec<_>>(),
    );
    let mut g = group(&down_rule("10m"), false);
    for t in 0..=15 {
        c.eval(&mut g, t * MIN);
    }
    let mut g2 = group(&down_rule("10m"), true);
    c.eval(&mut g2, 17 * MIN);
    c.restore(&mut g2, 17 * MIN, 60 * MIN, 2 * MIN);
    c.eval(&mut g2, 18 * MIN);
    let Rule::Alerting(ar) = &g2.rules[0] else {
        panic!()
    };
    assert_eq!(
        ar.state(),
        AlertState::Firing,
        "was firing before the restart"
    );
    // Beyond the outage tolerance nothing is restored: `for` starts over.
    let mut g3 = group(&down_rule("10m"), true);
    c.eval(&mut g3, 150 * MIN);
    c.restore(&mut g3, 150 * MIN, 60 * MIN, 2 * MIN);
    let Rule::Alerting(ar) = &g3.rules[0] else {
        panic!()
    };
    assert_eq!(
        ar.active.values().next().map(|a| a.active_at),
        Some(150 * MIN)
    );
}

#[test]
fn copy_state_keeps_alerts_across_reload_and_marks_removed_rules_stale() {
    let c = Ctx::new();
    c.store
        .add(l(&[("__name__", "up")]), &[Sample::new(0, 0.0)]);
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 5m\n  - record: gone\n    expr: up\n",
        false,
    );
    c.eval(&mut g, 0);
    let mut g2 = group(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 5m\n",
        false,
    );
    g2.copy_state(&g);
    c.eval(&mut g2, MIN);
    let Rule::Alerting(ar) = &g2.rules[0] else {
        panic!()
    };
    assert_eq!(ar.active.values().next().map(|a| a.active_at), Some(0));
    assert_eq!(
        c.values(&l(&[("__name__", "gone")])),
        vec![(0, "0".into()), (MIN, "stale".into())]
    );
}

/// A queryable that takes a while to open queriers.
struct Slow(MemStorage, Duration);

impl Queryable for Slow {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        std::thread::sleep(self.1);
        self.0.querier(mint, maxt)
    }
}

fn manager(q: Arc<dyn Queryable>, store: MemStorage) -> RuleManager {
    RuleManager::new(RuleManagerOptions {
        engine: Arc::new(Engine::new(EngineOptions::default())),
        queryable: q,
        appendable: Arc::new(store) as Arc<dyn Appendable>,
        notify: None,
        external_url: "http://localhost:9090".into(),
        resend_delay: Duration::from_secs(60),
        outage_tolerance: Duration::from_secs(3600),
        for_grace_period: Duration::from_secs(600),
    })
}

/// Waits up to 10s for `cond`.
fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn settings(ms: u64) -> RuleSettings {
    RuleSettings {
        evaluation_interval: Duration::from_millis(ms),
        query_offset: Duration::ZERO,
        external_labels: Labels::empty(),
    }
}

#[test]
fn manager_runs_groups_and_counts_missed_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.yml");
    std::fs::write(&f, "groups:\n- name: slow\n  interval: 100ms\n  rules:\n  - record: one\n    expr: vector(1) or up\n").unwrap();
    let store = MemStorage::new();
    let slow: Arc<dyn Queryable> = Arc::new(Slow(store.clone(), Duration::from_millis(250)));
    let m = manager(slow, store.clone());
    m.update(std::slice::from_ref(&f), &settings(1000)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = m.group_metrics();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].0, format!("{};slow", f.display()));
    let missed = metrics[0]
        .1
        .iterations_missed_total
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(missed >= 2, "missed {missed}");
    let groups = m.rule_groups();
    assert_eq!(groups[0].interval, 0.1);
    assert!(groups[0].last_evaluation.is_some());
    assert!(!store.samples(&l(&[("__name__", "one")])).is_empty());
    // Every written timestamp is on the group's 100ms grid.
    let ts: Vec<i64> = store
        .samples(&l(&[("__name__", "one")]))
        .iter()
        .map(|s| s.t)
        .collect();
    assert!(
        ts.windows(2)
            .all(|w| (w[1] - w[0]) % 100 == 0 && w[1] > w[0]),
        "{ts:?}"
    );
    m.stop();
}

#[test]
fn manager_reload_keeps_unchanged_groups_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.yml");
    std::fs::write(&f, "groups:\n- name: a\n  interval: 50ms\n  rules:\n  - record: one\n    expr: vector(1)\n- name: b\n  interval: 50ms\n  rules:\n  - record: two\n    expr: vector(2)\n").unwrap();
    let store = MemStorage::new();
    let m = manager(Arc::new(store.clone()), store.clone());
    m.update(std::slice::from_ref(&f), &settings(1000)).unwrap();
    poll("group b evaluated", || {
        !store.samples(&l(&[("__name__", "two")])).is_empty()
    });
    let before = m.group_metrics();
    m.update(std::slice::from_ref(&f), &settings(1000)).unwrap();
    let after = m.group_metrics();
    assert!(
        Arc::ptr_eq(&before[0].1, &after[0].1),
        "unchanged group keeps running"
    );
    std::fs::write(
        &f,
        "groups:\n- name: a\n  interval: 50ms\n  rules:\n  - record: one\n    expr: vector(3)\n",
    )
    .unwrap();
    m.update(std::slice::from_ref(&f), &settings(1000)).unwrap();
    let after2 = m.group_metrics();
    assert_eq!(after2.len(), 1);
    assert!(
        !Arc::ptr_eq(&before[0].1, &after2[0].1),
        "changed group restarted"
    );
    // A bad file leaves the running groups alone.
    std::fs::write(
        &f,
        "groups:\n- name: a\n  rules:\n  - record: 'bad name'\n    expr: up\n",
    )
    .unwrap();
    let errs = m
        .update(std::slice::from_ref(&f), &settings(1000))
        .unwrap_err();
    assert!(errs[0].to_string().contains("invalid recording rule name"));
    assert_eq!(m.group_metrics().len(), 1);
    // The removed group's output goes stale (two intervals later).
    poll("stale marker for the removed group", || {
        store
            .samples(&l(&[("__name__", "two")]))
            .last()
            .is_some_and(|s| is_stale_nan(s.v))
    });
    m.stop();
}
