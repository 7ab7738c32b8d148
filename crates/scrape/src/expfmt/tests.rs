use super::*;

type Pairs = Vec<(String, String)>;
type Flat = (String, Pairs, u64, Option<i64>);

/// A parsed entry with everything decoded, for comparisons.
#[derive(Debug, Clone, PartialEq)]
enum E {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Comment,
    Series {
        key: String,
        name: String,
        labels: Vec<(String, String)>,
        value: u64,
        ts: Option<i64>,
        ex: Option<(Pairs, u64, Option<i64>)>,
    },
}

fn own(e: Entry<'_>) -> E {
    match e {
        Entry::Help { name, text } => E::Help(name.into(), text.decode().into_owned()),
        Entry::Type { name, kind } => E::Type(name.into(), kind),
        Entry::Unit { name, unit } => E::Unit(name.into(), unit.into()),
        Entry::Comment(_) => E::Comment,
        Entry::Series(s) => E::Series {
            key: s.series.into(),
            name: s.name.into(),
            labels: s
                .labels()
                .map(|(n, v)| (n.to_string(), v.decode().into_owned()))
                .collect(),
            value: s.value.to_bits(),
            ts: s.timestamp,
            ex: s.exemplar.map(|x| {
                (
                    x.labels()
                        .map(|(n, v)| (n.to_string(), v.decode().into_owned()))
                        .collect(),
                    x.value.to_bits(),
                    x.timestamp,
                )
            }),
        },
    }
}

fn parse_all(body: &str, f: Format) -> Result<Vec<E>, ParseError> {
    let mut p = Parser::new(body.as_bytes(), f);
    let mut out = Vec::new();
    while let Some(e) = p.next_entry()? {
        out.push(own(e));
    }
    Ok(out)
}

fn err(body: &str, f: Format) -> String {
    match parse_all(body, f) {
        Ok(v) => panic!("parsed {body:?} into {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn series(name: &str, labels: &[(&str, &str)], v: f64, ts: Option<i64>) -> Flat {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        v.to_bits(),
        ts,
    )
}

fn only_series(v: Vec<E>) -> Vec<Flat> {
    v.into_iter()
        .filter_map(|e| match e {
            E::Series {
                name,
                labels,
                value,
                ts,
                ..
            } => Some((name, labels, value, ts)),
            _ => None,
        })
        .collect()
}

const T: Format = Format::PrometheusText;
const OM: Format = Format::OpenMetrics;

#[test]
fn content_type_selects_parser() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        OM
    );
    assert_eq!(
        Format::from_content_type("Application/OpenMetrics-Text"),
        OM
    );
    assert_eq!(Format::from_content_type("text/plain; version=0.0.4"), T);
    assert_eq!(Format::from_content_type(""), T);
    assert_eq!(Format::from_content_type("garbage;;;"), T);
}

#[test]
fn text_format_full_example() {
    let body = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# 	TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds_count 99
# Hello
#comment without space
# HELP nohelp
	 some:aggregate:rate5m{a_b="c"}	1 1520879607789

# HELP escaped Multi-line\nhelp with \\ and \" kept.
escaped_metric{a="x\"y\\z\nw",b="\t"} -Inf
nan_metric NaN
pos_inf +Inf
spaced { a = "1" , b="2" } 3
"#;
    let got = parse_all(body, T).unwrap();
    assert_eq!(
        got[0],
        E::Help(
            "go_gc_duration_seconds".into(),
            "A summary of the GC invocation durations.".into()
        )
    );
    assert_eq!(
        got[1],
        E::Type("go_gc_duration_seconds".into(), MetricType::Summary)
    );
    assert!(
        matches!(&got[2], E::Series { key, .. } if key == r#"go_gc_duration_seconds{quantile="0"}"#)
    );
    assert_eq!(got[5], E::Comment);
    assert_eq!(got[6], E::Comment);
    assert_eq!(got[7], E::Help("nohelp".into(), "".into()));
    assert_eq!(
        got[9],
        E::Help(
            "escaped".into(),
            "Multi-line\nhelp with \\ and \\\" kept.".into()
        )
    );
    let s = only_series(got);
    assert_eq!(
        s,
        vec![
            series(
                "go_gc_duration_seconds",
                &[("quantile", "0")],
                4.9351e-05,
                None
            ),
            series(
                "go_gc_duration_seconds",
                &[("quantile", "0.25")],
                7.424100000000001e-05,
                None
            ),
            series("go_gc_duration_seconds_count", &[], 99.0, None),
            series(
                "some:aggregate:rate5m",
                &[("a_b", "c")],
                1.0,
                Some(1520879607789)
            ),
            series(
                "escaped_metric",
                &[("a", "x\"y\\z\nw"), ("b", "\\t")],
                f64::NEG_INFINITY,
                None
            ),
            series("nan_metric", &[], NORMAL_NAN, None),
            series("pos_inf", &[], f64::INFINITY, None),
            series("spaced", &[("a", "1"), ("b", "2")], 3.0, None),
        ]
    );
}

#[test]
fn unknown_escapes_stay_literal() {
    let got = only_series(parse_all("m{a=\"\\t\\\\n\"} 1\n", T).unwrap());
    assert_eq!(got[0].1, vec![("a".to_string(), "\\t\\n".to_string())]);
}

#[test]
fn parsed_nan_is_never_the_stale_marker() {
    for body in ["m NaN\n", "m nan\n"] {
        let got = only_series(parse_all(body, T).unwrap());
        assert_eq!(got[0].2, NORMAL_NAN.to_bits());
        assert!(!vigil_model::is_stale_nan(f64::from_bits(got[0].2)));
    }
    // Even the stale marker's own bit pattern can't be spelled in text.
    let got = only_series(parse_all("m{} NaN 1\n", T).unwrap());
    assert_ne!(got[0].2, vigil_model::STALE_NAN_BITS);
}

#[test]
fn text_format_errors_name_line_and_problem() {
    let cases: &[(&str, &str)] = &[
        ("a\n#bad", "line 1: expected value after metric, got \"\\n\" (\"INVALID\") while parsing: \"a\\n\""),
        ("ok 1\nm{a=\"1\" 1\n", "line 2: expected label name, got \"1\" (\"INVALID\") while parsing: \"m{a=\\\"1\\\" 1\""),
        ("m{a=1} 1\n", "line 1: expected label value, got \"1\" (\"INVALID\") while parsing: \"m{a=1\""),
        ("m{a\"b\"} 1\n", "line 1: expected equal, got \"\\\"\" (\"INVALID\") while parsing: \"m{a\\\"\""),
        ("m{1=\"b\"} 1\n", "line 1: expected label name, got \"1\" (\"INVALID\") while parsing: \"m{1\""),
        ("m 1 2 3\n", "line 1: expected next entry after timestamp, got \"3\\n\" (\"TIMESTAMP\") while parsing: \"m 1 2 3\\n\""),
        ("m 1 -2\n", "line 1: expected timestamp or new record, got \"-\" (\"INVALID\") while parsing: \"m 1 -\""),
        ("m abc\n", "line 1: strconv.ParseFloat: parsing \"abc\": invalid syntax while parsing: \"m abc\""),
        ("m 1_0\n", "line 1: unsupported character in float while parsing: \"m 1_0\""),
        ("m 1 99999999999999999999\n", "line 1: strconv.ParseInt: parsing \"99999999999999999999\": value out of range while parsing: \"m 1 99999999999999999999\""),
        ("# TYPE m gauges\n", "line 1: invalid metric type \"gauges\""),
        ("# TYPE m info\n", "line 1: invalid metric type \"info\""),
        ("# HELP 0m x\n", "line 1: expected metric name after HELP, got \"0\" (\"INVALID\") while parsing: \"# HELP 0\""),
        ("{a=\"b\"} 1\n", "line 1: expected a valid start token, got \"{\" (\"INVALID\") while parsing: \"{\""),
        ("m{a=\"\u{fffd}\"} 1\n", ""),
    ];
    for (body, want) in cases {
        if want.is_empty() {
            assert!(parse_all(body, T).is_ok());
            continue;
        }
        assert_eq!(&err(body, T), want, "body {body:?}");
    }
    let bad_utf8 = b"m{a=\"\xff\"} 1\n";
    let e = Parser::new(bad_utf8, T).next_entry().unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: invalid UTF-8 label value: \"\\\"\\xff\\\"\""
    );
    let bad_help = b"# HELP m \xfe\n";
    let e = Parser::new(bad_help, T).next_entry().unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: help text \"\\xfe\" is not a valid utf8 string"
    );
}

#[test]
fn text_format_line_numbers_count_blank_and_comment_lines() {
    let e = err("# c\n\na 1\n\n\nb{ 1\n", T);
    assert!(e.starts_with("line 6: expected label name"), "{e}");
}

#[test]
fn text_format_accepts_missing_final_newline_and_crlf_is_an_error() {
    assert_eq!(only_series(parse_all("a 1", T).unwrap()).len(), 1);
    let e = err("a 1\r\n", T);
    assert!(e.contains("parsing \"1\\r\": invalid syntax"), "{e}");
}

#[test]
fn openmetrics_full_example() {
    let body = "# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
# TYPE foo counter\n\
foo_total 17.0 1520879607.789 # {id=\"counter-test\"} 5\n\
foo_created 1520872607.123\n\
# TYPE bar histogram\n\
bar_bucket{le=\"0.01\"} 0 # {trace_id=\"KOO5S4vxi0o\"} 0.004 1520879607.5\n\
bar_bucket{le=\"+Inf\"} 17\n\
# TYPE build info\n\
build_info{version=\"1.2\"} 1\n\
# TYPE state stateset\n\
state{state=\"a\"} 1\n\
# TYPE queue gaugehistogram\n\
queue_gcount 3\n\
# TYPE mystery unknown\n\
mystery -0.5 -1.25\n\
# HELP esc a \\\"quoted\\\" \\\\ help\\n\n\
# EOF\n";
    let got = parse_all(body, OM).unwrap();
    assert_eq!(
        got[2],
        E::Unit("acme_http_router_request_seconds".into(), "seconds".into())
    );
    assert!(got.contains(&E::Type("build".into(), MetricType::Info)));
    assert!(got.contains(&E::Type("state".into(), MetricType::StateSet)));
    assert!(got.contains(&E::Type("queue".into(), MetricType::GaugeHistogram)));
    assert!(got.contains(&E::Type("mystery".into(), MetricType::Unknown)));
    assert_eq!(
        got.last().unwrap(),
        &E::Help("esc".into(), "a \"quoted\" \\ help\n".into())
    );
    let foo = got
        .iter()
        .find(|e| matches!(e, E::Series { name, .. } if name == "foo_total"))
        .unwrap();
    assert_eq!(
        foo,
        &E::Series {
            key: "foo_total".into(),
            name: "foo_total".into(),
            labels: vec![],
            value: 17f64.to_bits(),
            ts: Some(1520879607789),
            ex: Some((
                vec![("id".into(), "counter-test".into())],
                5f64.to_bits(),
                None
            )),
        }
    );
    let bucket = got
        .iter()
        .find(|e| matches!(e, E::Series { key, .. } if key == "bar_bucket{le=\"0.01\"}"))
        .unwrap();
    match bucket {
        E::Series { ex, ts, .. } => {
            assert_eq!(*ts, None);
            assert_eq!(ex.as_ref().unwrap().2, Some(1520879607500));
        }
        _ => unreachable!(),
    }
    let s = only_series(got);
    assert!(s.contains(&series("mystery", &[], -0.5, Some(-1250))));
    assert!(s.contains(&series("foo_created", &[], 1520872607.123, None)));
}

#[test]
fn openmetrics_errors() {
    let cases: &[(&str, &str)] = &[
        ("a 1\n", "line 1: data does not end with # EOF"),
        ("", "line 1: data does not end with # EOF"),
        ("a 1", "line 1: data does not end with # EOF"),
        ("# EOF\n\n", "line 2: unexpected data after # EOF"),
        ("# EOF\na 1\n", "line 2: unexpected data after # EOF"),
        ("# EOF x\n", "line 1: unexpected data after # EOF"),
        ("\n# EOF\n", "line 1: expected a valid start token, got \"\\n\" (\"INVALID\") while parsing: \"\\n\""),
        ("# comment\n# EOF\n", "line 1: expected a valid start token, got \"#\" (\"INVALID\") while parsing: \"#\""),
        ("a  1\n# EOF\n", "line 1: expected value after metric, got \" \" (\"INVALID\") while parsing: \"a \""),
        ("a{b=\"c\", d=\"e\"} 1\n# EOF\n", "line 1: expected label name, got \" \" (\"INVALID\") while parsing: \"a{b=\\\"c\\\", \""),
        ("a{b=\"c\" d=\"e\"} 1\n# EOF\n", "line 1: expected comma or brace close, got \" \" (\"INVALID\") while parsing: \"a{b=\\\"c\\\" \""),
        ("a 1 NaN\n# EOF\n", "line 1: invalid timestamp NaN"),
        ("a 1 +Inf\n# EOF\n", "line 1: invalid timestamp +Inf"),
        ("a 1 # {} 1 NaN\n# EOF\n", "line 1: invalid exemplar timestamp NaN"),
        ("a 1 # {b=\"c\"}\n# EOF\n", "line 1: expected value after exemplar labels, got \"\\n\" (\"INVALID\") while parsing: \"a 1 # {b=\\\"c\\\"}\\n\""),
        ("a 1 1 2\n# EOF\n", "line 1: expected next entry after timestamp, got \" 2\\n\" (\"TIMESTAMP\") while parsing: \"a 1 1 2\\n\""),
        ("# TYPE a untyped\n# EOF\n", "line 1: invalid metric type \"untyped\""),
        ("# UNIT a_seconds bytes\n# EOF\n", "line 1: unit \"bytes\" not a suffix of metric \"a_seconds\""),
        ("# UNIT seconds seconds\n# EOF\n", "line 1: unit \"seconds\" not a suffix of metric \"seconds\""),
        ("# HELP a\n# EOF\n", "line 1: expected text in HELP"),
        ("# TYPE 1 counter\n# EOF\n", "line 1: expected metric name after TYPE, got \"1\" (\"INVALID\") while parsing: \"# TYPE 1\""),
    ];
    for (body, want) in cases {
        assert_eq!(&err(body, OM), want, "body {body:?}");
    }
    // Valid edge cases.
    for body in [
        "# EOF",
        "# EOF\n",
        "a{b=\"c\",} 1\n# EOF\n",
        "# HELP a \n# EOF\n",
        "# UNIT a_seconds \n# EOF\n",
        "a 1 # {} 2\n# EOF\n",
    ] {
        parse_all(body, OM).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    }
}

#[test]
fn openmetrics_timestamps_are_exact_milliseconds() {
    for (ts, ms) in [
        ("0.001", 1),
        ("1520879607.789", 1520879607789),
        ("-0.001", -1),
        ("1.0005", 1000),
        ("1e3", 1_000_000),
        ("5", 5000),
    ] {
        let body = format!("a 1 {ts}\n# EOF\n");
        let s = only_series(parse_all(&body, OM).unwrap());
        assert_eq!(s[0].3, Some(ms), "{ts}");
    }
}

#[test]
fn streaming_matches_whole_body_at_every_buffer_size() {
    let mut body = String::new();
    for i in 0..200 {
        body.push_str(&format!(
            "# HELP m{i} help {i}\n# TYPE m{i} gauge\nm{i}{{a=\"{}\",b=\"x\\\"y\"}} {i}.5 {}\n",
            "v".repeat(i % 37),
            1000 + i
        ));
    }
    let want = parse_all(&body, T).unwrap();
    for cap in [64, 100, 1000, 1 << 20] {
        let mut p = StreamParser::with_capacity(body.as_bytes(), T, cap);
        let mut got = Vec::new();
        while let Some(e) = p.next_entry().unwrap() {
            got.push(own(e));
        }
        assert_eq!(got, want, "capacity {cap}");
        assert_eq!(p.bytes_read(), body.len() as u64);
    }
    let mut om = String::new();
    for i in 0..200 {
        om.push_str(&format!(
            "# TYPE m{i} counter\nm{i}_total{{a=\"{}\"}} {i} {i}.25 # {{t=\"{i}\"}} 1\n",
            "w".repeat(i % 41)
        ));
    }
    om.push_str("# EOF\n");
    let want = parse_all(&om, OM).unwrap();
    let mut p = StreamParser::with_capacity(om.as_bytes(), OM, 64);
    let mut got = Vec::new();
    while let Some(e) = p.next_entry().unwrap() {
        got.push(own(e));
    }
    assert_eq!(got, want);
}

#[test]
fn streaming_reports_errors_with_line_numbers() {
    let body = "a 1\nb 2\nc{ 3\n";
    let mut p = StreamParser::with_capacity(body.as_bytes(), T, 64);
    assert!(p.next_entry().unwrap().is_some());
    assert!(p.next_entry().unwrap().is_some());
    match p.next_entry() {
        Err(StreamError::Parse(e)) => assert_eq!(e.line, 3),
        other => panic!("{other:?}"),
    }
    assert!(p.next_entry().unwrap().is_none());
    let mut p = StreamParser::new("a 1\n".as_bytes(), OM);
    assert!(p.next_entry().unwrap().is_some());
    assert!(
        matches!(p.next_entry(), Err(StreamError::Parse(e)) if e.msg == "data does not end with # EOF")
    );
}

#[test]
fn decode_into_reuses_scratch() {
    let e = Escaped {
        raw: r#"a\"b\\c\nd\t"#,
        rules: EscapeRules::LabelValue,
    };
    let mut scratch = String::new();
    assert_eq!(e.decode_into(&mut scratch), "a\"b\\c\nd\\t");
    let plain = Escaped {
        raw: "plain",
        rules: EscapeRules::LabelValue,
    };
    assert!(matches!(plain.decode(), Cow::Borrowed("plain")));
    let help = Escaped {
        raw: r#"x\"y\\z"#,
        rules: EscapeRules::TextHelp,
    };
    assert_eq!(help.decode(), "x\\\"y\\z");
}
