//! Property tests of the exposition parsers: round trip through our writer,
//! differential against the `openmetrics-parser` crate, streaming equals
//! whole-body parsing, and no input makes the parser panic.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vigil_scrape::expfmt::{
    write_family, Entry, Format, MetricType, Parser, StreamParser, WriteFamily, WriteSample,
    NORMAL_NAN,
};

/// Everything a parse yields, decoded, for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Sample(String, Vec<(String, String)>, u64, Option<i64>),
}

/// An entry as an `Item`; comments are not compared.
fn item(e: Entry<'_>) -> Option<Item> {
    Some(match e {
        Entry::Help { name, text } => Item::Help(name.into(), text.decode().into_owned()),
        Entry::Type { name, kind } => Item::Type(name.into(), kind),
        Entry::Unit { name, unit } => Item::Unit(name.into(), unit.into()),
        Entry::Comment(_) => return None,
        Entry::Series(s) => Item::Sample(
            s.name.into(),
            s.labels()
                .map(|(n, v)| (n.to_string(), v.decode().into_owned()))
                .collect(),
            s.value.to_bits(),
            s.timestamp,
        ),
    })
}

fn parse(body: &[u8], format: Format) -> Result<Vec<Item>, String> {
    let mut p = Parser::new(body, format);
    let mut out = Vec::new();
    while let Some(e) = p.next_entry().map_err(|e| e.to_string())? {
        out.extend(item(e));
    }
    Ok(out)
}

fn stream(body: &[u8], format: Format, cap: usize) -> Result<Vec<Item>, String> {
    let mut p = StreamParser::with_capacity(body, format, cap);
    let mut out = Vec::new();
    while let Some(e) = p.next_entry().map_err(|e| e.to_string())? {
        out.extend(item(e));
    }
    Ok(out)
}

fn metric_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}"
}

fn label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn family(format: Format) -> impl Strategy<Value = WriteFamily> {
    let kinds = match format {
        Format::PrometheusText => vec![
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Unknown,
        ],
        Format::OpenMetrics => vec![
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Summary,
            MetricType::Info,
            MetricType::StateSet,
            MetricType::Unknown,
        ],
    };
    let sample = (
        metric_name(),
        prop::collection::vec((label_name(), any::<String>()), 0..4),
        value(),
        prop::option::of(-1_000_000_000_000_000i64..1_000_000_000_000_000),
    )
        .prop_map(|(name, labels, value, timestamp)| WriteSample {
            name,
            labels,
            value,
            timestamp,
        });
    (
        metric_name(),
        prop::option::of(any::<String>()),
        prop::option::of(prop::sample::select(kinds)),
        prop::option::of("[a-z]{1,6}"),
        prop::collection::vec(sample, 0..5),
    )
        .prop_map(move |(name, help, kind, unit, mut samples)| {
            // The text format has no negative timestamps (Prometheus's lexer
            // takes digits only).
            if format == Format::PrometheusText {
                for s in &mut samples {
                    s.timestamp = s.timestamp.map(i64::abs);
                }
            }
            // A unit must be a `_`-separated suffix of the family name.
            let (name, unit) = match (unit, format) {
                (Some(u), Format::OpenMetrics) => (format!("{name}_{u}"), Some(u)),
                _ => (name, None),
            };
            WriteFamily {
                name,
                help,
                kind,
                unit,
                samples,
            }
        })
}

fn body_of(format: Format, fams: &[WriteFamily]) -> String {
    let mut out = String::new();
    for f in fams {
        write_family(&mut out, format, f);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn expected(format: Format, fams: &[WriteFamily]) -> Vec<Item> {
    let mut out = Vec::new();
    for f in fams {
        if let Some(h) = &f.help {
            out.push(Item::Help(f.name.clone(), h.clone()));
        }
        if let Some(k) = f.kind {
            out.push(Item::Type(f.name.clone(), k));
        }
        if let (Some(u), Format::OpenMetrics) = (&f.unit, format) {
            out.push(Item::Unit(f.name.clone(), u.clone()));
        }
        for s in &f.samples {
            let v = if s.value.is_nan() {
                NORMAL_NAN
            } else {
                s.value
            };
            out.push(Item::Sample(
                s.name.clone(),
                s.labels.clone(),
                v.to_bits(),
                s.timestamp,
            ));
        }
    }
    out
}

fn formats() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::PrometheusText), Just(Format::OpenMetrics)]
}

proptest! {
    #[test]
    fn round_trip_through_writer(
        (format, fams) in formats().prop_flat_map(|f| (Just(f), prop::collection::vec(family(f), 0..6)))
    ) {
        let body = body_of(format, &fams);
        let got = parse(body.as_bytes(), format);
        prop_assert_eq!(got, Ok(expected(format, &fams)), "body:\n{}", body);
    }

    #[test]
    fn streaming_equals_whole_body(
        (format, fams) in formats().prop_flat_map(|f| (Just(f), prop::collection::vec(family(f), 0..6))),
        cap in 64usize..300,
        cut in any::<prop::sample::Index>(),
    ) {
        let body = body_of(format, &fams);
        prop_assert_eq!(stream(body.as_bytes(), format, cap), parse(body.as_bytes(), format));
        // Truncated bodies must fail (or succeed) the same way too.
        let short = &body.as_bytes()[..cut.index(body.len() + 1)];
        prop_assert_eq!(stream(short, format, cap), parse(short, format));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), om in any::<bool>()) {
        let format = if om { Format::OpenMetrics } else { Format::PrometheusText };
        let _ = parse(&body, format);
        let _ = stream(&body, format, 64);
    }

    #[test]
    fn never_panics_on_mutated_valid_bodies(
        (format, fams) in formats().prop_flat_map(|f| (Just(f), prop::collection::vec(family(f), 1..4))),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = body_of(format, &fams).into_bytes();
        for (at, byte, op) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 => body.insert(i, byte),
                1 if i < body.len() => { body.remove(i); }
                _ if i < body.len() => body[i] = byte,
                _ => body.push(byte),
            }
        }
        let whole = parse(&body, format);
        prop_assert_eq!(stream(&body, format, 64), whole);
    }
}

// ---- differential test against openmetrics-parser -------------------------

/// A family the oracle accepts too: gauges, untyped/unknown and counters,
/// with one label-name set per family and distinct label values.
#[derive(Debug, Clone)]
struct OracleFamily {
    name: String,
    kind: MetricType,
    help: String,
    label_names: Vec<String>,
    rows: Vec<(Vec<String>, f64, Option<i64>)>,
}

fn oracle_family() -> impl Strategy<Value = OracleFamily> {
    (
        "[a-z][a-z0-9_]{0,10}",
        prop::sample::select(vec![
            MetricType::Gauge,
            MetricType::Unknown,
            MetricType::Counter,
        ]),
        "[ -~]{0,30}",
        prop::collection::btree_set("[a-z][a-z0-9]{0,5}", 0..3),
        prop::collection::vec(
            (
                prop::collection::vec("[ -~\u{e9}\u{1f600}]{0,8}", 3),
                prop_oneof![
                    (-1_000_000i64..1_000_000).prop_map(|v| v as f64 / 8.0),
                    any::<f64>().prop_filter("finite", |v| v.is_finite()),
                ],
                prop::option::of(0i64..4_000_000_000_000),
            ),
            1..4,
        ),
    )
        .prop_map(|(name, kind, help, names, rows)| {
            let names: Vec<String> = names.into_iter().collect();
            let mut seen = BTreeSet::new();
            let rows = rows
                .into_iter()
                .map(|(vals, v, t)| (vals[..names.len()].to_vec(), v, t))
                .filter(|(vals, _, _)| seen.insert(vals.clone()))
                .map(|(vals, v, t)| {
                    // Counters must be non-negative and the oracle wants
                    // the same timestamp precision as we write.
                    let v = if kind == MetricType::Counter {
                        v.abs()
                    } else {
                        v
                    };
                    (vals, v, t)
                })
                .collect();
            OracleFamily {
                name,
                kind,
                help,
                label_names: names,
                rows,
            }
        })
}

fn to_write(format: Format, f: &OracleFamily) -> WriteFamily {
    let sample_name = match (f.kind, format) {
        (MetricType::Counter, Format::OpenMetrics) => format!("{}_total", f.name),
        _ => f.name.clone(),
    };
    WriteFamily {
        name: f.name.clone(),
        help: Some(f.help.clone()),
        kind: Some(f.kind),
        unit: None,
        samples: f
            .rows
            .iter()
            .map(|(vals, v, t)| WriteSample {
                name: sample_name.clone(),
                labels: f
                    .label_names
                    .iter()
                    .cloned()
                    .zip(vals.iter().cloned())
                    .collect(),
                value: *v,
                timestamp: *t,
            })
            .collect(),
    }
}

type Flat = BTreeMap<(String, Vec<(String, String)>), (u64, Option<i64>)>;

fn ours_flat(body: &str, format: Format) -> (Flat, BTreeMap<String, String>) {
    let mut flat = Flat::new();
    let mut help = BTreeMap::new();
    for item in parse(body.as_bytes(), format).expect("our parser rejects a valid body") {
        match item {
            Item::Sample(name, mut labels, v, t) => {
                labels.sort();
                // The oracle reads "-0" as the integer 0.
                let v = if f64::from_bits(v) == 0.0 { 0 } else { v };
                flat.insert((name, labels), (v, t));
            }
            Item::Help(n, h) => {
                help.insert(n, h);
            }
            _ => {}
        }
    }
    (flat, help)
}

fn oracle_flat(body: &str, format: Format) -> Option<(Flat, BTreeMap<String, String>)> {
    use openmetrics_parser::{MetricNumber, OpenMetricsValue, PrometheusValue};
    let mut flat = Flat::new();
    let mut help = BTreeMap::new();
    let num = |n: &MetricNumber| n.as_f64() + 0.0;
    let ts = |t: Option<f64>| t.map(|t| (t * 1000.0).round() as i64);
    match format {
        Format::OpenMetrics => {
            let exp = openmetrics_parser::openmetrics::parse_openmetrics(body).ok()?;
            for fam in exp.families.values() {
                help.insert(fam.family_name.clone(), fam.help.clone());
                for s in fam.iter_samples() {
                    let mut labels: Vec<(String, String)> = s
                        .get_labelset()
                        .ok()?
                        .iter()
                        .map(|(a, b)| (a.clone(), b.clone()))
                        .collect();
                    labels.sort();
                    let (name, v) = match &s.value {
                        OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => {
                            (fam.family_name.clone(), num(n))
                        }
                        OpenMetricsValue::Counter(c) => {
                            (format!("{}_total", fam.family_name), num(&c.value))
                        }
                        _ => return None,
                    };
                    flat.insert((name, labels), (v.to_bits(), ts(s.timestamp)));
                }
            }
        }
        Format::PrometheusText => {
            let exp = openmetrics_parser::prometheus::parse_prometheus(body).ok()?;
            for fam in exp.families.values() {
                help.insert(fam.family_name.clone(), fam.help.clone());
                for s in fam.iter_samples() {
                    let mut labels: Vec<(String, String)> = s
                        .get_labelset()
                        .ok()?
                        .iter()
                        .map(|(a, b)| (a.clone(), b.clone()))
                        .collect();
                    labels.sort();
                    let v = match &s.value {
                        PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => num(n),
                        PrometheusValue::Counter(c) => num(&c.value),
                        _ => return None,
                    };
                    flat.insert(
                        (fam.family_name.clone(), labels),
                        (v.to_bits(), ts(s.timestamp)),
                    );
                }
            }
        }
    }
    Some((flat, help))
}

proptest! {
    #[test]
    fn agrees_with_openmetrics_parser(
        format in formats(),
        fams in prop::collection::btree_map("[a-z][a-z0-9_]{0,10}", oracle_family(), 1..5),
    ) {
        let fams: Vec<OracleFamily> = fams
            .into_iter()
            .map(|(n, mut f)| { f.name = n; f })
            .collect();
        // Distinct family names, none a prefix-plus-suffix of another.
        let body = body_of(
            format,
            &fams.iter().map(|f| to_write(format, f)).collect::<Vec<_>>(),
        );
        let ours = ours_flat(&body, format);
        let Some(oracle) = std::panic::catch_unwind(|| oracle_flat(&body, format)).ok().flatten() else {
            // The oracle is stricter in places (and panics on some inputs);
            // only bodies it accepts are compared.
            return Ok(());
        };
        // The oracle's text timestamps are milliseconds as floats; ours are
        // exact, so compare after its rounding.
        let oracle_samples: Flat = match format {
            Format::PrometheusText => oracle
                .0
                .into_iter()
                .map(|(k, (v, t))| (k, (v, t.map(|t| t / 1000))))
                .collect(),
            Format::OpenMetrics => oracle.0,
        };
        prop_assert_eq!(&ours.0, &oracle_samples, "body:\n{}", body);
        prop_assert_eq!(&ours.1, &oracle.1, "help differs; body:\n{}", body);
    }
}
