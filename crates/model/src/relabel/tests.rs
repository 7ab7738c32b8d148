use super::*;
use proptest::prelude::*;

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

/// A rule from a spec with only the given fields set.
fn rule(f: impl FnOnce(&mut RelabelSpec)) -> RelabelConfig {
    let mut spec = RelabelSpec::default();
    f(&mut spec);
    match RelabelConfig::new(spec) {
        Ok(c) => c,
        Err(e) => panic!("rule should be valid: {e}"),
    }
}

fn src(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

struct Case {
    name: &'static str,
    input: Labels,
    rules: Vec<RelabelConfig>,
    output: Option<Labels>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "replace with ${1} twice",
            input: ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("f(.*)");
                r.target_label = s("d");
                r.replacement = s("ch${1}-ch${1}");
            })],
            output: Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "choo-choo"),
            ])),
        },
        Case {
            name: "replace joins sources with the separator",
            input: ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]),
            rules: vec![
                rule(|r| {
                    r.source_labels = src(&["a", "b"]);
                    r.regex = s("f(.*);(.*)r");
                    r.target_label = s("a");
                    r.replacement = s("b${1}${2}m");
                }),
                rule(|r| {
                    r.source_labels = src(&["c", "a"]);
                    r.regex = s("(b).*b(.*)ba(.*)");
                    r.target_label = s("d");
                    r.replacement = s("$1$2$2$3");
                }),
            ],
            output: Some(ls(&[
                ("a", "boobam"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "boooom"),
            ])),
        },
        Case {
            name: "replace without match leaves labels alone",
            input: ls(&[("a", "foo")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("f");
                r.target_label = s("b");
            })],
            output: Some(ls(&[("a", "foo")])),
        },
        Case {
            name: "missing source label is the empty string",
            input: ls(&[("a", "foo")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["nope"]);
                r.regex = s("(.*)");
                r.target_label = s("b");
                r.replacement = s("x${1}y");
            })],
            output: Some(ls(&[("a", "foo"), ("b", "xy")])),
        },
        Case {
            name: "empty replacement deletes the target",
            input: ls(&[("a", "foo"), ("b", "bar")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.target_label = s("b");
                r.replacement = s("");
            })],
            output: Some(ls(&[("a", "foo")])),
        },
        Case {
            name: "$1x names group 1x, which does not exist",
            input: ls(&[("a", "foo"), ("b", "bar")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.target_label = s("b");
                r.replacement = s("$1x");
            })],
            output: Some(ls(&[("a", "foo")])),
        },
        Case {
            name: "named groups and $$",
            input: ls(&[("__address__", "host.example:9100")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["__address__"]);
                r.regex = s(r"(?P<host>[^:]+):(?P<port>\d+)");
                r.target_label = s("instance");
                r.replacement = s("${host}$$${port}$");
            })],
            output: Some(ls(&[
                ("__address__", "host.example:9100"),
                ("instance", "host.example$9100$"),
            ])),
        },
        Case {
            name: "templated target label",
            input: ls(&[("a", "some-name-value")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("some-([^-]+)-([^,]+)");
                r.target_label = s("${1}");
                r.replacement = s("${2}");
            })],
            output: Some(ls(&[("a", "some-name-value"), ("name", "value")])),
        },
        Case {
            name: "templated target that expands to an invalid name is skipped",
            input: ls(&[("a", "some-1name-value")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("some-([^-]+)-([^,]+)");
                r.target_label = s("${1}");
                r.replacement = s("${2}");
            })],
            output: Some(ls(&[("a", "some-1name-value")])),
        },
        Case {
            name: "default regex does not match a newline",
            input: ls(&[("a", "foo\nbar")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.target_label = s("b");
            })],
            output: Some(ls(&[("a", "foo\nbar")])),
        },
        Case {
            name: "drop on match",
            input: ls(&[("a", "foo")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s(".*o.*");
                r.action = Some(Action::Drop);
            })],
            output: None,
        },
        Case {
            name: "drop is anchored",
            input: ls(&[("a", "foo")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("o");
                r.action = Some(Action::Drop);
            })],
            output: Some(ls(&[("a", "foo")])),
        },
        Case {
            name: "keep without match drops",
            input: ls(&[("a", "foo")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("no-match");
                r.action = Some(Action::Keep);
            })],
            output: None,
        },
        Case {
            name: "keep on missing label matches the empty string",
            input: ls(&[("a", "foo")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["b"]);
                r.regex = s("f*");
                r.action = Some(Action::Keep);
            })],
            output: Some(ls(&[("a", "foo")])),
        },
        Case {
            name: "hashmod (Prometheus's own test value)",
            input: ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["c"]);
                r.target_label = s("d");
                r.modulus = Some(1000);
                r.action = Some(Action::HashMod);
            })],
            output: Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "976"),
            ])),
        },
        Case {
            name: "hashmod of a value with a newline",
            input: ls(&[("a", "foo\nbar")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.target_label = s("b");
                r.modulus = Some(1000);
                r.action = Some(Action::HashMod);
            })],
            output: Some(ls(&[("a", "foo\nbar"), ("b", "734")])),
        },
        Case {
            name: "labelmap copies matching labels",
            input: ls(&[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
            ]),
            rules: vec![rule(|r| {
                r.regex = s("__meta_my_(.+)");
                r.action = Some(Action::LabelMap);
            })],
            output: Some(ls(&[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("bar", "aaa"),
                ("baz", "bbb"),
            ])),
        },
        Case {
            name: "labelmap with a template",
            input: ls(&[("__meta_x", "1"), ("y", "2")]),
            rules: vec![rule(|r| {
                r.regex = s("__meta_(.+)");
                r.replacement = s("m_${1}_l");
                r.action = Some(Action::LabelMap);
            })],
            output: Some(ls(&[("__meta_x", "1"), ("m_x_l", "1"), ("y", "2")])),
        },
        Case {
            name: "labeldrop",
            input: ls(&[("a", "foo"), ("b1", "bar"), ("b2", "baz")]),
            rules: vec![rule(|r| {
                r.regex = s("b.");
                r.action = Some(Action::LabelDrop);
            })],
            output: Some(ls(&[("a", "foo")])),
        },
        Case {
            name: "labelkeep",
            input: ls(&[("a", "foo"), ("b1", "bar"), ("b2", "baz")]),
            rules: vec![rule(|r| {
                r.regex = s("b.");
                r.action = Some(Action::LabelKeep);
            })],
            output: Some(ls(&[("b1", "bar"), ("b2", "baz")])),
        },
        Case {
            name: "lowercase and uppercase",
            input: ls(&[("a", "FoO"), ("b", "Straße")]),
            rules: vec![
                rule(|r| {
                    r.source_labels = src(&["a"]);
                    r.target_label = s("lo");
                    r.action = Some(Action::Lowercase);
                }),
                rule(|r| {
                    r.source_labels = src(&["a", "b"]);
                    r.target_label = s("up");
                    r.action = Some(Action::Uppercase);
                }),
            ],
            output: Some(ls(&[
                ("a", "FoO"),
                ("b", "Straße"),
                ("lo", "foo"),
                ("up", "FOO;STRAßE"),
            ])),
        },
        Case {
            name: "keepequal keeps equal values",
            input: ls(&[("__tmp_port", "9100"), ("port", "9100")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["__tmp_port"]);
                r.target_label = s("port");
                r.action = Some(Action::KeepEqual);
            })],
            output: Some(ls(&[("__tmp_port", "9100"), ("port", "9100")])),
        },
        Case {
            name: "keepequal drops different values",
            input: ls(&[("__tmp_port", "9100"), ("port", "9101")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["__tmp_port"]);
                r.target_label = s("port");
                r.action = Some(Action::KeepEqual);
            })],
            output: None,
        },
        Case {
            name: "dropequal drops equal values",
            input: ls(&[("a", "x"), ("b", "x")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.target_label = s("b");
                r.action = Some(Action::DropEqual);
            })],
            output: None,
        },
        Case {
            name: "a dropped set stops later rules",
            input: ls(&[("a", "x")]),
            rules: vec![
                rule(|r| {
                    r.source_labels = src(&["a"]);
                    r.action = Some(Action::Drop);
                    r.regex = s("x");
                }),
                rule(|r| {
                    r.source_labels = src(&["a"]);
                    r.target_label = s("b");
                }),
            ],
            output: None,
        },
        Case {
            name: "Go's \\d is ASCII only",
            input: ls(&[("a", "\u{661}\u{662}")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s(r"\d+");
                r.action = Some(Action::Drop);
            })],
            output: Some(ls(&[("a", "\u{661}\u{662}")])),
        },
        Case {
            name: "a brace that is not a repetition is literal",
            input: ls(&[("a", "{x}")]),
            rules: vec![rule(|r| {
                r.source_labels = src(&["a"]);
                r.regex = s("{x}");
                r.action = Some(Action::Drop);
            })],
            output: None,
        },
    ]
}

#[test]
fn table() {
    for c in cases() {
        assert_eq!(process(&c.input, &c.rules), c.output, "case {:?}", c.name);
        assert_eq!(
            process_owned(c.input.clone(), &c.rules),
            c.output,
            "case {:?} (owned)",
            c.name
        );
    }
}

#[test]
fn defaults_are_prometheus_defaults() {
    let r = rule(|r| r.target_label = s("t"));
    assert_eq!(r.action(), Action::Replace);
    assert_eq!(r.separator(), ";");
    assert_eq!(r.regex().as_str(), "(.*)");
    assert_eq!(r.replacement(), "$1");
    assert_eq!(r.modulus(), 0);
    assert!(r.source_labels().is_empty());
}

#[test]
fn action_names_parse_case_insensitively() {
    for a in Action::ALL {
        assert_eq!(Action::parse(&a.as_str().to_uppercase()), Ok(a));
    }
    assert_eq!(
        Action::parse("explode").map_err(|e| e.to_string()),
        Err("unknown relabel action \"explode\"".to_string())
    );
}

fn invalid(f: impl FnOnce(&mut RelabelSpec)) -> String {
    let mut spec = RelabelSpec::default();
    f(&mut spec);
    match RelabelConfig::new(spec) {
        Ok(c) => panic!("expected an error for {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn validation_rules() {
    use Action::*;
    let cases: Vec<(String, &str)> = vec![
        (
            invalid(|_| {}),
            "relabel configuration for replace action requires 'target_label' value",
        ),
        (
            invalid(|r| {
                r.action = Some(HashMod);
                r.target_label = s("t");
            }),
            "relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            invalid(|r| {
                r.action = Some(HashMod);
                r.modulus = Some(2);
            }),
            "relabel configuration for hashmod action requires 'target_label' value",
        ),
        (
            invalid(|r| {
                r.action = Some(HashMod);
                r.modulus = Some(2);
                r.target_label = s("1x");
            }),
            "\"1x\" is invalid 'target_label' for hashmod action",
        ),
        (
            invalid(|r| r.target_label = s("a-b")),
            "\"a-b\" is invalid 'target_label' for replace action",
        ),
        (
            invalid(|r| r.target_label = s("${1}-x")),
            "\"${1}-x\" is invalid 'target_label' for replace action",
        ),
        (
            invalid(|r| r.regex = s("(")),
            "error parsing regexp: unclosed group: `(`",
        ),
        (
            invalid(|r| {
                r.action = Some(Lowercase);
                r.target_label = s("t");
                r.replacement = s("x");
            }),
            "'replacement' can not be set for lowercase action",
        ),
        (
            invalid(|r| {
                r.action = Some(Uppercase);
                r.target_label = s("t t");
            }),
            "\"t t\" is invalid 'target_label' for uppercase action",
        ),
        (
            invalid(|r| {
                r.action = Some(KeepEqual);
                r.target_label = s("t");
                r.regex = s("(.*)");
            }),
            "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
        ),
        (
            invalid(|r| {
                r.action = Some(DropEqual);
                r.target_label = s("t");
                r.separator = s(",");
            }),
            "dropequal action requires only 'source_labels' and `target_label`, and no other fields",
        ),
        (
            invalid(|r| r.action = Some(KeepEqual)),
            "relabel configuration for keepequal action requires 'target_label' value",
        ),
        (
            invalid(|r| {
                r.action = Some(LabelDrop);
                r.source_labels = src(&["a"]);
            }),
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            invalid(|r| {
                r.action = Some(LabelKeep);
                r.target_label = s("t");
            }),
            "labelkeep action requires only 'regex', and no other fields",
        ),
        (
            invalid(|r| {
                r.action = Some(LabelMap);
                r.replacement = s("a-$1");
            }),
            "\"a-$1\" is invalid 'replacement' for labelmap action",
        ),
        (
            invalid(|r| r.regex = s("a{1001}")),
            "error parsing regexp: invalid repeat count: `{1001}`",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    // Fields equal to the defaults may be spelled out.
    rule(|r| {
        r.action = Some(LabelDrop);
        r.separator = s(";");
        r.replacement = s("$1");
        r.regex = s("x");
    });
    rule(|r| {
        r.action = Some(KeepEqual);
        r.target_label = s("t");
        r.separator = s(";");
    });
    rule(|r| r.target_label = s("${1}_x"));
}

#[test]
fn hashmod_matches_prometheus() {
    // md5 digest bytes 8..16, big-endian, modulo: values from Prometheus's tests.
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("foo\nbar", 1000), 734);
}

#[test]
fn go_expand_edge_cases() {
    let caps = Caps::Whole("v");
    let expand = |t: &str| {
        let mut out = String::new();
        expand_go(t, &caps, &mut out);
        out
    };
    assert_eq!(expand("$1"), "v");
    assert_eq!(expand("${1}x"), "vx");
    assert_eq!(expand("$1x"), "");
    assert_eq!(expand("$$1"), "$1");
    assert_eq!(expand("a$"), "a$");
    assert_eq!(expand("${1"), "${1");
    assert_eq!(expand("$-"), "$-");
    assert_eq!(expand("$01"), "");
    assert_eq!(expand("$0$2"), "v");
}

#[test]
fn go_regex_translation() {
    let ok = |p: &str| translate_go_regex(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(ok(r"\d"), "[0-9]");
    assert_eq!(ok(r"[\d.]"), "[0-9.]");
    assert_eq!(ok(r"[^\S]"), r"[^[^\t\n\x0C\r ]]");
    assert_eq!(ok(r"a{2,3}b{"), r"a{2,3}b\{");
    assert_eq!(ok(r"[[:alpha:][]"), r"[[:alpha:]\[]");
    assert_eq!(ok(r"\Qa.b\E"), r"a\.b");
    assert_eq!(ok(r"\p{Greek}{2}"), r"\p{Greek}{2}");
    for p in [
        r"\d",
        r"[\d.]",
        r"[^\S]",
        r"a{2,3}b{",
        r"[[:alpha:][]",
        r"\Qa.b\E",
        r"\bx\b",
        "[]a]",
        "[&&]",
    ] {
        assert!(RelabelRegex::new(p).is_ok(), "{p} should compile");
    }
    assert!(RelabelRegex::new("[a").is_err());
}

#[test]
fn unchanged_sets_are_not_copied() {
    let input = ls(&[("a", "x"), ("b", "y")]);
    let rules = vec![
        rule(|r| {
            r.source_labels = src(&["a"]);
            r.target_label = s("b");
            r.regex = s("x");
            r.replacement = s("y");
        }),
        rule(|r| {
            r.source_labels = src(&["a", "b"]);
            r.regex = s("x;y");
            r.action = Some(Action::Keep);
        }),
    ];
    let mut work = Work {
        borrowed: input.as_slice(),
        owned: None,
    };
    assert!(run(&mut work, &rules));
    assert!(
        work.owned.is_none(),
        "setting a label to its value must not copy"
    );
}

fn arb_rule() -> impl Strategy<Value = RelabelSpec> {
    let names = prop::sample::select(vec!["a", "b", "c", "__meta_x", "__tmp_y", "${1}", "$1x"]);
    let regexes = prop::sample::select(vec![
        "(.*)",
        "a.*",
        "(a|b)",
        "x(.+)",
        "(?P<n>[^;]*);(.*)",
        ".",
        "",
        r"\d+",
        "__meta_(.*)",
    ]);
    let reps = prop::sample::select(vec!["$1", "${1}", "$n", "$2$1", "", "lit", "$$", "${n}_z"]);
    (
        prop::sample::select(Action::ALL.to_vec()),
        prop::collection::vec(names.clone(), 0..3),
        regexes,
        names,
        reps,
        0u64..5,
        prop::sample::select(vec![";", "", "::"]),
    )
        .prop_map(
            |(action, srcs, re, target, rep, modulus, sep)| RelabelSpec {
                source_labels: Some(srcs.into_iter().map(String::from).collect()),
                separator: Some(sep.to_string()),
                target_label: Some(target.to_string()),
                regex: Some(re.to_string()),
                modulus: Some(modulus),
                replacement: Some(rep.to_string()),
                action: Some(action),
            },
        )
}

proptest! {
    #[test]
    fn process_never_panics_and_keeps_invariants(
        pairs in prop::collection::vec(("[a-c_]{1,3}|__meta_x", "[a-z;\n]{0,4}"), 0..6),
        specs in prop::collection::vec(arb_rule(), 0..5),
    ) {
        let input = Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect());
        // Invalid specs are simply rejected; valid ones must run.
        let rules: Vec<RelabelConfig> =
            specs.into_iter().filter_map(|s| RelabelConfig::new(s).ok()).collect();
        let out = process(&input, &rules);
        prop_assert_eq!(&out, &process_owned(input.clone(), &rules));
        if let Some(out) = out {
            let v = out.as_slice();
            prop_assert!(v.windows(2).all(|w| w[0].name < w[1].name));
            prop_assert!(v.iter().all(|l| !l.value.is_empty()));
        }
    }
}
