use std::time::Instant;

use super::*;
use crate::testing::{Recorded, RecordingStorage};
use vigil_model::relabel::{Action, RelabelSpec};

fn target() -> Labels {
    Labels::from_pairs(&[
        ("__address__", "h:9100"),
        ("__scheme__", "http"),
        ("instance", "h:9100"),
        ("job", "node"),
    ])
}

fn lp(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

fn sl(opts: LoopOptions) -> ScrapeLoop {
    ScrapeLoop::new(&target(), Arc::new(opts), "test")
}

fn default_opts() -> LoopOptions {
    LoopOptions {
        honor_timestamps: true,
        ..LoopOptions::default()
    }
}

fn ok(sl: &mut ScrapeLoop, st: &RecordingStorage, body: &str, ts: i64) -> ScrapeOutcome {
    sl.ingest(
        st,
        Ok((body.as_bytes(), Format::PrometheusText)),
        ts,
        Instant::now(),
    )
}

fn fail(sl: &mut ScrapeLoop, st: &RecordingStorage, ts: i64) -> ScrapeOutcome {
    sl.ingest(
        st,
        Err(ScrapeError::Http(
            "server returned HTTP status 500 Internal Server Error".into(),
        )),
        ts,
        Instant::now(),
    )
}

fn up(st: &RecordingStorage) -> f64 {
    st.last(&lp(&[
        ("__name__", "up"),
        ("instance", "h:9100"),
        ("job", "node"),
    ]))
    .map(|r| r.v)
    .unwrap_or(-1.0)
}

fn report(st: &RecordingStorage, name: &str) -> f64 {
    st.last(&lp(&[
        ("__name__", name),
        ("instance", "h:9100"),
        ("job", "node"),
    ]))
    .map(|r| r.v)
    .unwrap_or(-1.0)
}

#[test]
fn samples_get_target_labels_and_report_series() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    let out = ok(
        &mut l,
        &st,
        "# TYPE a counter\na_total 1\nb{x=\"1\"} 2\nb{x=\"2\"} 3\n",
        1000,
    );
    assert_eq!(out.error, None);
    assert_eq!(
        out.stats,
        AppendStats {
            scraped: 3,
            post_relabel: 3,
            series_added: 3
        }
    );
    let b1 = st
        .last(&lp(&[
            ("__name__", "b"),
            ("instance", "h:9100"),
            ("job", "node"),
            ("x", "1"),
        ]))
        .unwrap();
    assert_eq!((b1.t, b1.v), (1000, 2.0));
    assert_eq!(up(&st), 1.0);
    assert_eq!(report(&st, "scrape_samples_scraped"), 3.0);
    assert_eq!(report(&st, "scrape_samples_post_metric_relabeling"), 3.0);
    assert_eq!(report(&st, "scrape_series_added"), 3.0);
    assert!(report(&st, "scrape_duration_seconds") >= 0.0);
    // No `__` label leaks onto samples.
    assert!(st.samples().iter().all(|r| r
        .labels
        .iter()
        .all(|l| !l.name.starts_with("__") || l.name == "__name__")));
    assert_eq!(st.commits(), 1);
}

#[test]
fn steady_state_hits_the_cache() {
    // By ref (the TSDB) and by labels rebuilt from the cached text.
    for st in RecordingStorage::both() {
        let mut l = sl(default_opts());
        let body = "a 1\nb{x=\"1\"} 2\n";
        ok(&mut l, &st, body, 1000);
        let hits_after_first = st.ref_hits();
        let out = ok(&mut l, &st, body, 2000);
        assert_eq!(out.stats.series_added, 0);
        assert_eq!(out.stats.scraped, 2);
        // Both samples and the 5 report series came with their refs.
        assert_eq!(st.ref_hits() - hits_after_first, 2 + 5);
        assert_eq!(l.cached_series(), 2);
        assert_eq!(report(&st, "scrape_series_added"), 0.0);
    }
}

#[test]
fn disappearing_series_get_one_staleness_marker() {
    // By ref (the TSDB) and by labels rebuilt from the cached text.
    for st in RecordingStorage::both() {
        let mut l = sl(default_opts());
        ok(&mut l, &st, "a 1\nb 2\n", 1000);
        ok(&mut l, &st, "a 1\n", 2000);
        ok(&mut l, &st, "a 1\n", 3000);
        let b = st.series_named("b");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].v, 2.0);
        assert!(b[1].is_stale());
        assert_eq!(b[1].t, 2000);
        // The cache forgot it after the scrape it vanished in.
        assert_eq!(l.cached_series(), 1);
        // It comes back as a new series.
        let out = ok(&mut l, &st, "a 1\nb 5\n", 4000);
        assert_eq!(out.stats.series_added, 1);
        assert_eq!(st.series_named("b").last().unwrap().v, 5.0);
    }
}

#[test]
fn failed_scrape_marks_everything_stale_and_recovers() {
    // By ref (the TSDB) and by labels rebuilt from the cached text.
    for st in RecordingStorage::both() {
        let mut l = sl(default_opts());
        ok(&mut l, &st, "a 1\nb 2\n", 1000);
        let out = fail(&mut l, &st, 2000);
        assert_eq!(
            out.error.unwrap().to_string(),
            "server returned HTTP status 500 Internal Server Error"
        );
        assert_eq!(up(&st), 0.0);
        assert_eq!(report(&st, "scrape_samples_scraped"), 0.0);
        for name in ["a", "b"] {
            let s = st.series_named(name);
            assert!(s.last().unwrap().is_stale(), "{name}");
            assert_eq!(s.last().unwrap().t, 2000);
        }
        // A second failure writes no further markers.
        fail(&mut l, &st, 3000);
        assert_eq!(st.series_named("a").len(), 2);
        // Recovery.
        let out = ok(&mut l, &st, "a 7\n", 4000);
        assert_eq!(out.error, None);
        assert_eq!(up(&st), 1.0);
        assert_eq!(st.series_named("a").last().unwrap().v, 7.0);
        // `b` went stale at the failure already, not again now.
        assert_eq!(st.series_named("b").len(), 2);
    }
}

#[test]
fn parse_error_appends_nothing_from_the_body() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    ok(&mut l, &st, "a 1\nb 2\n", 1000);
    let out = ok(&mut l, &st, "a 3\nnew 4\nb{ 5\n", 2000);
    let err = out.error.unwrap().to_string();
    assert!(err.starts_with("line 3: expected label name"), "{err}");
    assert_eq!(out.stats.scraped, 2);
    assert!(st.series_named("new").is_empty());
    // Series parsed before the error are stale too: the body counts as empty.
    assert!(st.series_named("a").last().unwrap().is_stale());
    assert!(st.series_named("b").last().unwrap().is_stale());
    assert_eq!(up(&st), 0.0);
    assert_eq!(report(&st, "scrape_samples_scraped"), 2.0);
    assert_eq!(st.rollbacks(), 1);
    // Next good scrape: only what it exposes, no more stale markers.
    ok(&mut l, &st, "a 3\n", 3000);
    assert_eq!(st.series_named("a").last().unwrap().v, 3.0);
    assert_eq!(st.series_named("b").len(), 2);
}

#[test]
fn explicit_timestamps_are_honoured_and_not_tracked() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    ok(&mut l, &st, "a 1 500\nb 2\n", 1000);
    assert_eq!(st.series_named("a")[0].t, 500);
    ok(&mut l, &st, "", 2000);
    // `a` had its own timestamp: no staleness marker (Prometheus).
    assert_eq!(st.series_named("a").len(), 1);
    assert!(st.series_named("b").last().unwrap().is_stale());

    let st = RecordingStorage::new();
    let mut l = sl(LoopOptions {
        track_timestamps_staleness: true,
        ..default_opts()
    });
    ok(&mut l, &st, "a 1 500\n", 1000);
    ok(&mut l, &st, "", 2000);
    assert!(st.series_named("a").last().unwrap().is_stale());

    let st = RecordingStorage::new();
    let mut l = sl(LoopOptions {
        honor_timestamps: false,
        ..default_opts()
    });
    ok(&mut l, &st, "a 1 500\n", 1000);
    assert_eq!(st.series_named("a")[0].t, 1000);
    ok(&mut l, &st, "", 2000);
    assert!(st.series_named("a").last().unwrap().is_stale());
}

#[test]
fn conflicting_exposed_labels_are_exported() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    ok(&mut l, &st, "m{job=\"app\",instance=\"x\"} 1\n", 1000);
    let got = &st.series_named("m")[0].labels;
    assert_eq!(
        got,
        &lp(&[
            ("__name__", "m"),
            ("exported_instance", "x"),
            ("exported_job", "app"),
            ("instance", "h:9100"),
            ("job", "node"),
        ])
    );

    // Prometheus's chained case: targets {foo=3, exported_foo=4}, exposed
    // {foo=1, exported_foo=2}.
    let t = lp(&[("exported_foo", "4"), ("foo", "3")]);
    let mut l = ScrapeLoop::new(&t, Arc::new(default_opts()), "t");
    let st = RecordingStorage::new();
    l.ingest(
        &st,
        Ok((
            b"m{foo=\"1\",exported_foo=\"2\"} 1\n",
            Format::PrometheusText,
        )),
        1,
        Instant::now(),
    );
    assert_eq!(
        st.series_named("m")[0].labels,
        lp(&[
            ("__name__", "m"),
            ("exported_exported_exported_foo", "2"),
            ("exported_exported_foo", "1"),
            ("exported_foo", "4"),
            ("foo", "3"),
        ])
    );
}

#[test]
fn honor_labels_keeps_exposed_values() {
    let st = RecordingStorage::new();
    let mut l = sl(LoopOptions {
        honor_labels: true,
        ..default_opts()
    });
    ok(&mut l, &st, "m{job=\"app\"} 1\nm{job=\"\"} 2\n", 1000);
    let got: Vec<Labels> = st.series_named("m").into_iter().map(|r| r.labels).collect();
    assert_eq!(
        got,
        vec![
            lp(&[("__name__", "m"), ("instance", "h:9100"), ("job", "app")]),
            // An empty exposed value is an absent label: the target's wins.
            lp(&[("__name__", "m"), ("instance", "h:9100"), ("job", "node")]),
        ]
    );
}

fn rule(spec: RelabelSpec) -> RelabelConfig {
    RelabelConfig::new(spec).unwrap()
}

#[test]
fn metric_relabeling_runs_after_target_labels() {
    // By ref (the TSDB) and by labels rebuilt from the cached text.
    for st in RecordingStorage::both() {
        let drop_b = rule(RelabelSpec {
            source_labels: Some(vec!["__name__".into()]),
            regex: Some("b".into()),
            action: Some(Action::Drop),
            ..RelabelSpec::default()
        });
        // Sees the target's `job`, so it must run after attaching it.
        let copy_job = rule(RelabelSpec {
            source_labels: Some(vec!["job".into()]),
            target_label: Some("from_job".into()),
            ..RelabelSpec::default()
        });
        let mut l = sl(LoopOptions {
            metric_relabel_configs: vec![drop_b, copy_job],
            ..default_opts()
        });
        let out = ok(&mut l, &st, "a 1\nb 2\nb{x=\"y\"} 3\n", 1000);
        assert_eq!(
            out.stats,
            AppendStats {
                scraped: 3,
                post_relabel: 1,
                series_added: 1
            }
        );
        assert!(st.series_named("b").is_empty());
        assert_eq!(st.series_named("a")[0].labels.get("from_job"), Some("node"));
        assert_eq!(report(&st, "scrape_samples_post_metric_relabeling"), 1.0);
        // Dropped lines are cached as dropped: the second scrape stays the same.
        let out = ok(&mut l, &st, "a 1\nb 2\nb{x=\"y\"} 3\n", 2000);
        assert_eq!(out.stats.post_relabel, 1);
        assert_eq!(l.cached_series(), 3);
    }
}

#[test]
fn sample_limit_fails_the_scrape() {
    let st = RecordingStorage::new();
    let mut l = sl(LoopOptions {
        sample_limit: 2,
        ..default_opts()
    });
    ok(&mut l, &st, "a 1\n", 500);
    let out = ok(&mut l, &st, "a 1\nb 2\nc 3\n", 1000);
    assert_eq!(out.error, Some(ScrapeError::SampleLimit));
    assert_eq!(out.error.unwrap().to_string(), "sample limit exceeded");
    assert_eq!(out.stats.scraped, 3);
    assert!(st.series_named("b").is_empty());
    assert!(st.series_named("a").last().unwrap().is_stale());
    assert_eq!(up(&st), 0.0);
    assert_eq!(report(&st, "scrape_samples_scraped"), 3.0);
    // At the limit is fine; metric relabeling drops do not count.
    let out = ok(&mut l, &st, "a 1\nb 2\n", 2000);
    assert_eq!(out.error, None);
}

#[test]
fn label_limits_fail_the_scrape_with_prometheus_reasons() {
    let cases = [
        (
            LoopOptions {
                label_limit: 3,
                ..default_opts()
            },
            "m{a=\"1\"} 1\n",
            "label_limit exceeded (metric: m, number of labels: 4, limit: 3)",
        ),
        (
            LoopOptions {
                label_name_length_limit: 8,
                ..default_opts()
            },
            "m{abcdefghi=\"1\"} 1\n",
            "label_name_length_limit exceeded (metric: m, label name: abcdefghi, length: 9, limit: 8)",
        ),
        (
            LoopOptions {
                label_value_length_limit: 3,
                ..default_opts()
            },
            "m{a=\"h\u{e9}llo\"} 1\n",
            "label_value_length_limit exceeded (metric: m, label name: a, value: \"h\u{e9}llo\", length: 5, limit: 3)",
        ),
    ];
    for (opts, body, want) in cases {
        let st = RecordingStorage::new();
        let mut l = sl(opts);
        let out = ok(&mut l, &st, body, 1000);
        assert_eq!(out.error.map(|e| e.to_string()).as_deref(), Some(want));
        assert!(st.series_named("m").is_empty());
        assert_eq!(up(&st), 0.0);
    }
    // Within limits.
    let st = RecordingStorage::new();
    let mut l = sl(LoopOptions {
        label_limit: 4,
        label_name_length_limit: 8,
        label_value_length_limit: 6,
        ..default_opts()
    });
    assert_eq!(ok(&mut l, &st, "m{a=\"1\"} 1\n", 1000).error, None);
}

#[test]
fn invalid_series_fail_the_scrape() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    let out = ok(&mut l, &st, "m{a=\"1\",a=\"2\"} 1\n", 1000);
    assert_eq!(
        out.error.unwrap().to_string(),
        "label name \"a\" is not unique: invalid sample"
    );
    let drop_name = rule(RelabelSpec {
        regex: Some("__name__".into()),
        action: Some(Action::LabelDrop),
        ..RelabelSpec::default()
    });
    let mut l = sl(LoopOptions {
        metric_relabel_configs: vec![drop_name],
        ..default_opts()
    });
    let out = ok(&mut l, &st, "m 1\n", 1000);
    assert_eq!(
        out.error.unwrap().to_string(),
        "missing metric name (__name__ label)"
    );
    let bad_name = rule(RelabelSpec {
        target_label: Some("__name__".into()),
        replacement: Some("bad-name".into()),
        ..RelabelSpec::default()
    });
    let mut l = sl(LoopOptions {
        metric_relabel_configs: vec![bad_name],
        ..default_opts()
    });
    let out = ok(&mut l, &st, "m 1\n", 1000);
    assert!(out
        .error
        .unwrap()
        .to_string()
        .starts_with("invalid metric name or label names: {__name__=\"bad-name\""));
}

#[test]
fn out_of_order_samples_do_not_fail_the_scrape() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    ok(&mut l, &st, "a 1 5000\n", 1000);
    let out = ok(&mut l, &st, "a 2 4000\nb 1\n", 2000);
    assert_eq!(out.error, None);
    assert_eq!(st.series_named("a").len(), 1);
    assert_eq!(st.series_named("b").len(), 1);
}

#[test]
fn report_stale_marks_the_report_series() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    ok(&mut l, &st, "a 1\n", 1000);
    let mut app = st.appender();
    l.append_empty(app.as_mut(), 2000, false).unwrap();
    l.report_stale(app.as_mut(), 2000).unwrap();
    app.commit().unwrap();
    for name in REPORT_NAMES.iter().chain(["a"].iter()) {
        let last = st.series_named(name).last().cloned().unwrap();
        assert!(last.is_stale(), "{name}");
        assert_eq!(last.t, 2000);
    }
}

#[test]
fn metadata_is_collected_per_family() {
    let st = RecordingStorage::new();
    let mut l = sl(default_opts());
    l.ingest(
        &st,
        Ok((
            b"# HELP a_seconds Time \\\"spent\\\".\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1\n# EOF\n",
            Format::OpenMetrics,
        )),
        1000,
        Instant::now(),
    );
    let md = l.take_metadata().unwrap();
    assert_eq!(
        md.as_slice(),
        &[MetricMetadata {
            metric: "a_seconds".into(),
            kind: crate::expfmt::MetricType::Counter,
            help: "Time \"spent\".".into(),
            unit: "seconds".into(),
        }]
    );
    // Unchanged metadata: no new snapshot.
    l.ingest(
        &st,
        Ok((
            b"# HELP a_seconds Time \\\"spent\\\".\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1\n# EOF\n",
            Format::OpenMetrics,
        )),
        2000,
        Instant::now(),
    );
    assert!(l.take_metadata().is_none());
}

#[test]
fn label_changing_reload_marks_old_series_stale() {
    // By ref (the TSDB) and by labels rebuilt from the cached text.
    for st in RecordingStorage::both() {
        let mut l = sl(default_opts());
        ok(&mut l, &st, "a 1\nb 2\n", 1000);
        let rename_b = rule(RelabelSpec {
            source_labels: Some(vec!["__name__".into()]),
            regex: Some("b".into()),
            target_label: Some("__name__".into()),
            replacement: Some("b2".into()),
            ..RelabelSpec::default()
        });
        l.set_options(Arc::new(LoopOptions {
            metric_relabel_configs: vec![rename_b],
            ..default_opts()
        }));
        ok(&mut l, &st, "a 1\nb 2\n", 2000);
        // `a` keeps its labels: no marker. `b` became `b2`: old series stale.
        assert!(st.series_named("a").iter().all(|r| !r.is_stale()));
        assert!(st.series_named("b").last().unwrap().is_stale());
        assert_eq!(st.series_named("b2")[0].v, 2.0);
        // A reload that changes nothing label-related keeps the cache.
        let before = st.ref_hits();
        l.set_options(Arc::new(LoopOptions {
            sample_limit: 100,
            ..(**l.options()).clone()
        }));
        ok(&mut l, &st, "a 1\nb 2\n", 3000);
        assert_eq!(st.ref_hits() - before, 2 + 5);
    }
}

#[test]
fn rebuilt_labels_match_for_escapes_blanks_and_openmetrics() {
    // Without append-by-ref the labels of hits and staleness markers are
    // rebuilt from the cached text: they must be the labels first stored.
    let lines = [
        (
            Format::PrometheusText,
            "m{a=\"x\\\"y\\\\z\",b=\"1\\n2\"} 1\n",
        ),
        (Format::PrometheusText, "m { a = \"v\" , b=\"w\", } 1\n"),
        (Format::OpenMetrics, "m{a=\"x\\\"y\",c=\"ü,=}\"} 1\n# EOF\n"),
    ];
    for st in RecordingStorage::both() {
        for (i, (format, line)) in lines.iter().enumerate() {
            let mut l = sl(default_opts());
            let t0 = 10_000 * i as i64;
            let ingest = |l: &mut ScrapeLoop, body: &str, t: i64| {
                l.ingest(&st, Ok((body.as_bytes(), *format)), t, Instant::now())
            };
            let empty = if *format == Format::OpenMetrics {
                "# EOF\n"
            } else {
                ""
            };
            assert_eq!(ingest(&mut l, line, t0 + 1000).error, None, "{line}");
            assert_eq!(ingest(&mut l, line, t0 + 2000).error, None, "{line}");
            assert_eq!(ingest(&mut l, empty, t0 + 3000).error, None, "{line}");
            let got: Vec<Recorded> = st
                .series_named("m")
                .into_iter()
                .filter(|r| r.t > t0)
                .collect();
            assert_eq!(got.len(), 3, "{line}: {got:?}");
            assert!(got.iter().all(|r| r.labels == got[0].labels), "{got:?}");
            assert!(got[2].is_stale());
            assert_eq!(got[0].labels.get("job"), Some("node"));
        }
    }
}
