//! Unit tests of the evaluator on hand-built ASTs over in-memory storage.

use super::*;
use crate::ast::*;
use vigil_model::memstore::MemStorage;
use vigil_model::storage::VecSeries;
use vigil_model::{Matcher, STALE_NAN};

fn series(labels: &[(&str, &str)], step_ms: i64, vals: &[f64]) -> VecSeries {
    VecSeries {
        labels: Labels::from_pairs(labels),
        samples: vals
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan() || vigil_model::is_stale_nan(**v))
            .map(|(i, v)| Sample::new(i as i64 * step_ms, *v))
            .collect(),
    }
}

fn sel(name: &str, extra: &[(&str, &str)]) -> VectorSelector {
    let mut matchers = vec![Matcher::equal("__name__", name)];
    for (n, v) in extra {
        matchers.push(Matcher::equal(*n, *v));
    }
    VectorSelector {
        name: Some(name.to_string()),
        matchers,
        offset: 0,
        at: None,
    }
}

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(sel(name, &[]))
}

fn ms(name: &str, range_ms: i64) -> Expr {
    Expr::MatrixSelector(MatrixSelector {
        selector: sel(name, &[]),
        range: range_ms,
    })
}

fn func(name: &'static str, ret: ValueType) -> &'static Function {
    Box::leak(Box::new(Function {
        name,
        arg_types: &[],
        variadic: -1,
        return_type: ret,
        experimental: false,
    }))
}

fn call(name: &'static str, ret: ValueType, args: Vec<Expr>) -> Expr {
    Expr::Call(Call {
        func: func(name, ret),
        args,
    })
}

fn agg(op: AggregateOp, expr: Expr, by: &[&str]) -> Expr {
    Expr::Aggregate(AggregateExpr {
        op,
        expr: Box::new(expr),
        param: None,
        grouping: by.iter().map(|s| s.to_string()).collect(),
        without: false,
    })
}

fn bin(op: BinaryOp, lhs: Expr, rhs: Expr, matching: Option<VectorMatching>) -> Expr {
    let both_vec = lhs.value_type() != ValueType::Scalar && rhs.value_type() != ValueType::Scalar;
    let matching = matching.or_else(|| {
        both_vec.then(|| VectorMatching {
            card: if op.is_set() {
                Cardinality::ManyToMany
            } else {
                Cardinality::OneToOne
            },
            matching_labels: vec![],
            on: false,
            include: vec![],
        })
    });
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        matching,
        return_bool: false,
    })
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: 10_000,
        threads: 2,
        ..Default::default()
    })
}

fn instant(db: &MemStorage, e: &Expr, t: i64) -> Result<Vec<(String, f64)>, EvalError> {
    let r = engine().instant_query(db, e, t, &QueryControl::new())?;
    match r.value {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> =
                v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        }
        Value::Scalar { v, .. } => Ok(vec![("scalar".into(), v)]),
        other => panic!("unexpected {other:?}"),
    }
}

const M: i64 = 60_000;

fn http_db() -> MemStorage {
    MemStorage::from_series(vec![
        series(
            &[("__name__", "http"), ("job", "a"), ("i", "0")],
            5 * M,
            &(0..=10).map(|i| i as f64 * 10.0).collect::<Vec<_>>(),
        ),
        series(
            &[("__name__", "http"), ("job", "a"), ("i", "1")],
            5 * M,
            &(0..=10).map(|i| i as f64 * 20.0).collect::<Vec<_>>(),
        ),
        series(
            &[("__name__", "http"), ("job", "b"), ("i", "0")],
            5 * M,
            &(0..=10).map(|i| i as f64 * 30.0).collect::<Vec<_>>(),
        ),
    ])
}

#[test]
fn selector_lookback_and_staleness() {
    let db = MemStorage::from_series(vec![series(
        &[("__name__", "m")],
        10_000,
        &[0.0, 1.0, STALE_NAN, 2.0],
    )]);
    assert_eq!(
        instant(&db, &vs("m"), 10_000).unwrap(),
        vec![("{__name__=\"m\"}".into(), 1.0)]
    );
    assert!(instant(&db, &vs("m"), 20_000).unwrap().is_empty());
    assert_eq!(instant(&db, &vs("m"), 330_000).unwrap()[0].1, 2.0);
    assert!(instant(&db, &vs("m"), 331_000).unwrap().is_empty());
}

#[test]
fn sum_by_and_rate() {
    let db = http_db();
    let e = agg(AggregateOp::Sum, vs("http"), &["job"]);
    assert_eq!(
        instant(&db, &e, 50 * M).unwrap(),
        vec![("{job=\"a\"}".into(), 300.0), ("{job=\"b\"}".into(), 300.0)]
    );
    let r = call("rate", ValueType::Vector, vec![ms("http", 50 * M)]);
    let out = instant(&db, &r, 50 * M).unwrap();
    assert_eq!(out.len(), 3);
    assert!((out[0].1 - 100.0 / 3000.0).abs() < 1e-12, "{out:?}");
    // Names are dropped by rate.
    assert!(!out[0].0.contains("__name__"));
}

#[test]
fn increase_extrapolates_to_zero() {
    // 1+10x10 at 5m: increase over 100m is 101 (zero cut-off at -30s).
    let db = MemStorage::from_series(vec![series(
        &[("__name__", "c")],
        5 * M,
        &(0..=10).map(|i| 1.0 + 10.0 * i as f64).collect::<Vec<_>>(),
    )]);
    let e = call("increase", ValueType::Vector, vec![ms("c", 100 * M)]);
    let out = instant(&db, &e, 50 * M).unwrap();
    assert!((out[0].1 - 101.0).abs() < 1e-9, "{out:?}");
}

#[test]
fn binary_matching_and_errors() {
    let db = http_db();
    let e = bin(BinaryOp::Div, vs("http"), vs("http"), None);
    let out = instant(&db, &e, 50 * M).unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|(_, v)| *v == 1.0));
    // on(job) with two series per job on the right is many-to-many.
    let m = VectorMatching {
        card: Cardinality::OneToOne,
        matching_labels: vec!["job".into()],
        on: true,
        include: vec![],
    };
    let e = bin(BinaryOp::Add, vs("http"), vs("http"), Some(m));
    let err = instant(&db, &e, 50 * M).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "found duplicate series for the match group {job=\"a\"} on the right hand-side"
        ),
        "{err}"
    );
    assert_eq!(err.error_type(), "execution");
}

#[test]
fn range_query_matches_instant_queries() {
    let db = http_db();
    let e = agg(
        AggregateOp::Sum,
        call("rate", ValueType::Vector, vec![ms("http", 10 * M)]),
        &["job"],
    );
    let eng = engine();
    let r = eng
        .range_query(&db, &e, 10 * M, 50 * M, 5 * M, &QueryControl::new())
        .unwrap();
    let Value::Matrix(m) = r.value else { panic!() };
    for s in &m {
        for p in &s.samples {
            let one = instant(&db, &e, p.t).unwrap();
            let want = one
                .iter()
                .find(|(l, _)| *l == s.labels.to_string())
                .unwrap()
                .1;
            assert!((want - p.v).abs() < 1e-12);
        }
    }
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].samples.len(), 9);
}

#[test]
fn max_samples_is_enforced() {
    let db = MemStorage::from_series(vec![series(&[("__name__", "m")], 1000, &vec![1.0; 5000])]);
    let eng = Engine::new(EngineOptions {
        max_samples: 100,
        ..Default::default()
    });
    let err = eng
        .range_query(&db, &vs("m"), 0, 4_000_000, 1000, &QueryControl::new())
        .unwrap_err();
    assert_eq!(err, EvalError::TooManySamples);
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
}

#[test]
fn cancellation_stops_the_query() {
    let db = http_db();
    let ctl = QueryControl::new();
    ctl.cancel();
    let err = engine()
        .instant_query(&db, &vs("http"), 0, &ctl)
        .unwrap_err();
    assert_eq!(err.error_type(), "canceled");
    let ctl = QueryControl::new().with_deadline(std::time::Instant::now());
    let err = engine()
        .instant_query(&db, &vs("http"), 0, &ctl)
        .unwrap_err();
    assert_eq!(err.error_type(), "timeout");
}

#[test]
fn duplicate_labelset_after_dropping_name() {
    let db = MemStorage::from_series(vec![
        series(&[("__name__", "a"), ("x", "1")], M, &[1.0]),
        series(&[("__name__", "b"), ("x", "1")], M, &[2.0]),
    ]);
    let any = Expr::VectorSelector(VectorSelector {
        name: None,
        matchers: vec![Matcher::new(vigil_model::MatchOp::Regex, "__name__", "a|b").unwrap()],
        offset: 0,
        at: None,
    });
    let e = call("ceil", ValueType::Vector, vec![any]);
    let err = instant(&db, &e, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn topk_orders_like_prometheus() {
    let db = http_db();
    let e = Expr::Aggregate(AggregateExpr {
        op: AggregateOp::Topk,
        expr: Box::new(vs("http")),
        param: Some(Box::new(Expr::NumberLiteral(2.0))),
        grouping: vec![],
        without: false,
    });
    let r = engine()
        .instant_query(&db, &e, 50 * M, &QueryControl::new())
        .unwrap();
    let Value::Vector(v) = r.value else { panic!() };
    let vals: Vec<f64> = v.iter().map(|s| s.v).collect();
    assert_eq!(vals, vec![300.0, 200.0]);
}

#[test]
fn scalar_and_literals() {
    let db = MemStorage::from_series(vec![]);
    let e = bin(
        BinaryOp::Mod,
        Expr::NumberLiteral(1.0),
        Expr::NumberLiteral(0.0),
        None,
    );
    assert!(instant(&db, &e, 0).unwrap()[0].1.is_nan());
    let e = bin(
        BinaryOp::Pow,
        Expr::NumberLiteral(2.0),
        Expr::NumberLiteral(10.0),
        None,
    );
    assert_eq!(instant(&db, &e, 0).unwrap()[0].1, 1024.0);
    let e = call("time", ValueType::Scalar, vec![]);
    assert_eq!(instant(&db, &e, 3_000_000).unwrap()[0].1, 3000.0);
}

#[test]
fn subquery_alignment() {
    // metric1 0+1x1000 at 10s; sum_over_time(metric1[30s:10s]) at 1000s = 394.
    let db = MemStorage::from_series(vec![series(
        &[("__name__", "metric1")],
        10_000,
        &(0..=1000).map(|i| i as f64).collect::<Vec<_>>(),
    )]);
    let sq = Expr::Subquery(SubqueryExpr {
        expr: Box::new(vs("metric1")),
        range: 30_000,
        step: Some(10_000),
        offset: 0,
        at: None,
    });
    let e = call("sum_over_time", ValueType::Vector, vec![sq]);
    assert_eq!(instant(&db, &e, 1_000_000).unwrap()[0].1, 394.0);
}

#[test]
fn max_samples_counts_windows_not_whole_ranges() {
    let db = MemStorage::from_series(vec![series(&[("__name__", "m")], 1000, &vec![1.0; 5000])]);
    let eng = Engine::new(EngineOptions {
        max_samples: 100,
        ..Default::default()
    });
    let ctl = QueryControl::new();
    // A 50 s window holds 51 samples: fine over a long range.
    let small = call("sum_over_time", ValueType::Vector, vec![ms("m", 50_000)]);
    eng.range_query(&db, &small, 100_000, 4_000_000, 1_000_000, &ctl)
        .unwrap();
    // A 200 s window holds 201 samples: too many.
    let big = call("sum_over_time", ValueType::Vector, vec![ms("m", 200_000)]);
    assert_eq!(
        eng.instant_query(&db, &big, 1_000_000, &ctl).unwrap_err(),
        EvalError::TooManySamples
    );
}

mod range_vs_instant {
    //! A range query must give, at every step, what an instant query at that
    //! step gives: this pins the sliding-window code against the simple
    //! one-window path for random data.
    use super::*;
    use proptest::prelude::*;

    const RANGE_FNS: &[&str] = &[
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "changes",
        "resets",
        "deriv",
        "avg_over_time",
        "sum_over_time",
        "count_over_time",
        "min_over_time",
        "max_over_time",
        "last_over_time",
        "present_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "mad_over_time",
    ];

    fn data() -> impl Strategy<Value = Vec<(i64, f64)>> {
        prop::collection::vec(
            (
                // Whole seconds, so samples often sit exactly on window edges.
                prop_oneof![1i64..40, Just(15), Just(30)].prop_map(|s| s * 1000),
                prop_oneof![
                    8 => -5.0f64..50.0,
                    1 => Just(f64::NAN),
                    1 => Just(STALE_NAN),
                ],
            ),
            0..60,
        )
        .prop_map(|v| {
            let mut t = 0;
            v.into_iter()
                .map(|(dt, x)| {
                    t += dt;
                    (t, x)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn range_points_equal_instant_results(
            a in data(),
            b in data(),
            f in 0..RANGE_FNS.len(),
            range_s in 1i64..300,
            step_s in 1i64..120,
            offset_s in -30i64..30,
            kind in 0..3usize,
            sub_step_s in 1i64..90,
        ) {
            let mk = |l: &str, d: &[(i64, f64)]| VecSeries {
                labels: Labels::from_pairs(&[("__name__", "m"), ("s", l)]),
                samples: d.iter().map(|(t, v)| Sample::new(*t, *v)).collect(),
            };
            let db = MemStorage::from_series(vec![mk("a", &a), mk("b", &b)]);
            let mut sel = sel("m", &[]);
            sel.offset = offset_s * 1000;
            let arg = match kind {
                // f(m[r] offset o)
                0 => Expr::MatrixSelector(MatrixSelector {
                    selector: sel,
                    range: range_s * 1000,
                }),
                // f((m offset o)[r:step])
                1 => Expr::Subquery(SubqueryExpr {
                    expr: Box::new(Expr::VectorSelector(sel)),
                    range: range_s * 1000,
                    step: Some(sub_step_s * 1000),
                    offset: 0,
                    at: None,
                }),
                // f(m[r:step] offset o), a subquery of a rate
                _ => Expr::Subquery(SubqueryExpr {
                    expr: Box::new(call(
                        "rate",
                        ValueType::Vector,
                        vec![Expr::MatrixSelector(MatrixSelector {
                            selector: super::sel("m", &[]),
                            range: 60_000,
                        })],
                    )),
                    range: range_s * 1000,
                    step: Some(sub_step_s * 1000),
                    offset: offset_s * 1000,
                    at: None,
                }),
            };
            let e = Expr::Aggregate(AggregateExpr {
                op: AggregateOp::Sum,
                expr: Box::new(call(RANGE_FNS[f], ValueType::Vector, vec![arg])),
                param: None,
                grouping: vec!["s".into()],
                without: false,
            });
            let eng = engine();
            let ctl = QueryControl::new();
            let (start, end, step) = (0, 2_400_000, step_s * 1000);
            let r = eng.range_query(&db, &e, start, end, step, &ctl).unwrap();
            let Value::Matrix(m) = r.value else { panic!("matrix expected") };
            let mut t = start;
            while t <= end {
                let inst = eng.instant_query(&db, &e, t, &ctl).unwrap();
                let Value::Vector(v) = inst.value else { panic!("vector expected") };
                for s in &v {
                    let got = m
                        .iter()
                        .find(|x| x.labels == s.labels)
                        .and_then(|x| x.samples.iter().find(|p| p.t == t))
                        .map(|p| p.v);
                    let same = got.is_some_and(|g| g == s.v || (g.is_nan() && s.v.is_nan()));
                    prop_assert!(same, "{} at {t}: range {got:?} instant {}", RANGE_FNS[f], s.v);
                }
                let n_range = m.iter().filter(|x| x.samples.iter().any(|p| p.t == t)).count();
                prop_assert_eq!(n_range, v.len(), "{} at {}", RANGE_FNS[f], t);
                t += step;
            }
        }
    }
}

#[test]
fn deep_expressions_do_not_overflow_small_stacks() {
    // The parser accepts trees up to 1024 tall; evaluate one on a thread
    // with a 1 MiB stack (smaller than any runtime's default).
    let q = format!("{}m", "m + ".repeat(1000));
    let e = crate::parser::parse(&q).unwrap();
    let deep_scalar = crate::parser::parse(&format!("{}1", "-".repeat(250))).unwrap();
    let db = MemStorage::from_series(vec![series(&[("__name__", "m")], M, &[1.0])]);
    let h = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let eng = engine();
            let r = eng.instant_query(&db, &e, 0, &QueryControl::new()).unwrap();
            let s = eng
                .instant_query(&db, &deep_scalar, 0, &QueryControl::new())
                .unwrap();
            (r.value, s.value)
        })
        .unwrap();
    let (v, s) = h.join().unwrap();
    let Value::Vector(v) = v else { panic!() };
    assert_eq!(v[0].v, 1001.0);
    assert_eq!(s, Value::Scalar { t: 0, v: 1.0 });
}

/// Many series over many steps: several batches, claimed in grains by
/// racing threads. Every thread count must give the same answer, bit for
/// bit and in the same order, and the same error.
#[test]
fn pipelined_batches_match_one_thread() {
    // Many series (grains of 16, several batches) and few (grains of one).
    for n in [700, 9, 2] {
        pipelined_case(n);
    }
}

fn pipelined_case(n: usize) {
    let mut all = Vec::new();
    for i in 0..n {
        let (g, inst) = ((i % 7).to_string(), i.to_string());
        // Counters with a reset and a gap; values differ per series.
        let vals: Vec<f64> = (0..400)
            .map(|k| match k {
                150..=159 if i % 3 == 0 => f64::NAN,
                _ => ((k + i) % 97) as f64 * (1.0 + i as f64 / 1000.0),
            })
            .collect();
        all.push(series(
            &[("__name__", "m"), ("g", &g), ("i", &inst)],
            15_000,
            &vals,
        ));
    }
    let db = MemStorage::from_series(all);
    let run = |threads: usize, e: &Expr, max_samples: usize| {
        let eng = Engine::new(EngineOptions {
            threads,
            max_samples,
            ..Default::default()
        });
        // 5 s steps: 1,200 points, so a batch is 833 -> 848 series.
        eng.range_query(&db, e, 0, 6_000_000, 5_000, &QueryControl::new())
            .map(|r| format!("{:?}", r.value))
    };
    let rate = call("rate", ValueType::Vector, vec![ms("m", 5 * M)]);
    let queries = [
        vs("m"),
        agg(AggregateOp::Sum, rate.clone(), &["g"]),
        agg(AggregateOp::Count, vs("m"), &["g"]),
        Expr::Aggregate(AggregateExpr {
            op: AggregateOp::Topk,
            expr: Box::new(rate.clone()),
            param: Some(Box::new(Expr::NumberLiteral(3.0))),
            grouping: vec![],
            without: false,
        }),
        call(
            "holt_winters",
            ValueType::Vector,
            vec![
                ms("m", 5 * M),
                Expr::NumberLiteral(2.0),
                Expr::NumberLiteral(0.5),
            ],
        ),
    ];
    for e in &queries {
        let one = run(1, e, 50_000_000);
        for threads in [2, 3, 8] {
            assert_eq!(run(threads, e, 50_000_000), one, "{threads} threads");
        }
    }
    assert!(run(2, &queries[4], 50_000_000)
        .unwrap_err()
        .to_string()
        .contains("invalid smoothing factor"));
    // The sample limit trips in the middle of the batches.
    for threads in [1, 2, 8] {
        assert_eq!(
            run(threads, &queries[0], 200 * n),
            Err(EvalError::TooManySamples)
        );
    }
}
