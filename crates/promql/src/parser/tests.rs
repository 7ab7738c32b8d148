//! Parser unit tests: accepted queries and the tree they build, and the
//! exact text and position of Prometheus's errors (cases mostly taken from
//! the behaviour of Prometheus 2.53's `parse_test.go`).

use super::*;
use crate::ast::{AggregateOp, AtModifier, BinaryOp, Cardinality, UnaryOp};
use vigil_model::gofmt::{format_float, quote, FloatFormat};
use vigil_model::MatchOp;

/// Parses with everything enabled: these tests are about the grammar.
fn ok(q: &str) -> Expr {
    match parse_with_options(q, ParseOptions::all()) {
        Ok(e) => e,
        Err(e) => panic!("{q:?} failed: {e}"),
    }
}

fn err(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q:?} parsed as {e:?}"),
        Err(e) => e.to_string(),
    }
}

/// A compact tree rendering that shows structure: `(+ 1 (* 2 3))`.
fn tree(e: &Expr) -> String {
    match e {
        Expr::NumberLiteral(v) => format_float(*v, FloatFormat::G),
        Expr::StringLiteral(s) => quote(s),
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => format_expr(e),
        Expr::Subquery(s) => format!(
            "(subquery {} {:?} {:?} {} {:?})",
            tree(&s.expr),
            s.range,
            s.step,
            s.offset,
            s.at
        ),
        Expr::Paren(p) => format!("(paren {})", tree(p)),
        Expr::Unary(u) => format!(
            "({} {})",
            if u.op == UnaryOp::Neg { "neg" } else { "pos" },
            tree(&u.expr)
        ),
        Expr::Binary(b) => format!("({} {} {})", b.op.as_str(), tree(&b.lhs), tree(&b.rhs)),
        Expr::Aggregate(a) => match &a.param {
            Some(p) => format!("({} {} {})", a.op.as_str(), tree(p), tree(&a.expr)),
            None => format!("({} {})", a.op.as_str(), tree(&a.expr)),
        },
        Expr::Call(c) => {
            let args: Vec<String> = c.args.iter().map(tree).collect();
            format!("({} {})", c.func.name, args.join(" "))
        }
    }
}

fn t(q: &str) -> String {
    tree(&ok(q))
}

fn num(q: &str) -> f64 {
    match ok(q) {
        Expr::NumberLiteral(v) => v,
        e => panic!("{q:?} is not a number: {e:?}"),
    }
}

#[test]
fn number_literals() {
    assert_eq!(num("1"), 1.0);
    assert_eq!(num("+Inf"), f64::INFINITY);
    assert_eq!(num("-Inf"), f64::NEG_INFINITY);
    assert_eq!(num("iNf"), f64::INFINITY);
    assert!(num("NaN").is_nan());
    assert!(num("nan").is_nan());
    assert_eq!(num(".5"), 0.5);
    assert_eq!(num("5."), 5.0);
    assert_eq!(num("123.4567"), 123.4567);
    assert_eq!(num("5e-3"), 0.005);
    assert_eq!(num("5E3"), 5000.0);
    assert_eq!(num("0xc"), 12.0);
    assert_eq!(num("0X1f"), 31.0);
    assert_eq!(num("0755"), 493.0);
    assert_eq!(num("+5.5e-3"), 0.0055);
    assert_eq!(num("-0755"), -493.0);
    assert_eq!(num("- - 1"), 1.0);
}

#[test]
fn string_literals() {
    let s = |q: &str| match ok(q) {
        Expr::StringLiteral(s) => s,
        e => panic!("{e:?}"),
    };
    assert_eq!(
        s(r#""double-quoted string \" with escaped quote""#),
        "double-quoted string \" with escaped quote"
    );
    assert_eq!(
        s(r"'single-quoted string \' with escaped quote'"),
        "single-quoted string ' with escaped quote"
    );
    assert_eq!(s("`backtick-quoted string`"), "backtick-quoted string");
    assert_eq!(
        s(r#""\a\b\f\n\r\t\v\\\" - \u1234\U00010111☺""#),
        "\u{7}\u{8}\u{c}\n\r\t\u{b}\\\" - \u{1234}\u{10111}☺"
    );
    assert_eq!(s("`\\a\\b\\\"\\'`"), "\\a\\b\\\"\\'");
    assert_eq!(s("`multi\nline`"), "multi\nline");
}

#[test]
fn unary_and_binary_precedence() {
    assert_eq!(t("-1^2"), "(neg (^ 1 2))");
    assert_eq!(t("-2^2"), "(neg (^ 2 2))");
    assert_eq!(t("-1*2"), "(* -1 2)");
    assert_eq!(t("-1+2"), "(+ -1 2)");
    assert_eq!(t("-1^-2"), "(neg (^ 1 -2))");
    assert_eq!(t("+1 + -2 * 1"), "(+ 1 (* -2 1))");
    assert_eq!(t("1 + 2/(3*1)"), "(+ 1 (/ 2 (paren (* 3 1))))");
    assert_eq!(t("1 < bool 2 - 1 * 2"), "(< 1 (- 2 (* 1 2)))");
    assert_eq!(t("2 ^ 3 ^ 2"), "(^ 2 (^ 3 2))");
    assert_eq!(t("2 ^ -1 * 3"), "(* (^ 2 -1) 3)");
    assert_eq!(t("a - b - c"), "(- (- a b) c)");
    assert_eq!(t("a or b and c"), "(or a (and b c))");
    assert_eq!(t("a and b unless c"), "(unless (and a b) c)");
    assert_eq!(t("a == b + c"), "(== a (+ b c))");
    assert_eq!(t("a atan2 b * c"), "(* (atan2 a b) c)");
    assert_eq!(t("a % b ^ c"), "(% a (^ b c))");
    assert_eq!(t("-a * b"), "(* (neg a) b)");
    assert_eq!(t("-a ^ b"), "(neg (^ a b))");
    assert_eq!(t("a ^ -b ^ c"), "(^ a (neg (^ b c)))");
    assert_eq!(t("-some_metric"), "(neg some_metric)");
    assert_eq!(t("+some_metric"), "(pos some_metric)");
    assert_eq!(t("---metric @ 100"), "(neg (neg (neg metric @ 100.000)))");
    assert_eq!(t("-(1)"), "(neg (paren 1))");
}

#[test]
fn vector_selectors() {
    let vs = |q: &str| match ok(q) {
        Expr::VectorSelector(vs) => vs,
        e => panic!("{e:?}"),
    };
    let v = vs(r#"foo{a="b", foo!="bar", test=~"test", bar!~"baz",}"#);
    assert_eq!(v.name.as_deref(), Some("foo"));
    let m: Vec<(&str, MatchOp, &str)> = v
        .matchers
        .iter()
        .map(|m| (m.name.as_str(), m.op, m.value.as_str()))
        .collect();
    assert_eq!(
        m,
        vec![
            ("a", MatchOp::Equal, "b"),
            ("foo", MatchOp::NotEqual, "bar"),
            ("test", MatchOp::Regex, "test"),
            ("bar", MatchOp::NotRegex, "baz"),
            ("__name__", MatchOp::Equal, "foo"),
        ]
    );
    let v = vs(r#"{__name__=~"foo|bar"}"#);
    assert_eq!(v.name, None);
    assert_eq!(v.matchers.len(), 1);
    assert_eq!(vs("foo:bar{a=\"bc\"}").name.as_deref(), Some("foo:bar"));
    assert_eq!(vs("foo{NaN='bc'}").matchers[0].name, "NaN");
    assert_eq!(vs("foo{bar='}'}").matchers[0].value, "}");
    assert_eq!(vs("foo{}").matchers.len(), 1);
    assert_eq!(vs("foo{a=\"b\" # comment\n}").matchers.len(), 2);
    // Keywords usable as metric names.
    for name in [
        "min",
        "sum",
        "start",
        "end",
        "by",
        "without",
        "offset",
        "and",
        "or",
        "unless",
        "count_values",
    ] {
        assert_eq!(vs(name).name.as_deref(), Some(name), "{name}");
    }
    assert_eq!(vs("start{end=\"foo\"}").matchers[0].name, "end");
    assert_eq!(t("foo * sum"), "(* foo sum)");
    assert_eq!(t("sum(sum)"), "(sum sum)");
    assert_eq!(t("a + sum offset 5m"), "(+ a sum offset 5m)");
}

#[test]
fn offsets_and_at() {
    let vs = |q: &str| match ok(q) {
        Expr::VectorSelector(vs) => (vs.offset, vs.at),
        e => panic!("{e:?}"),
    };
    assert_eq!(vs("foo offset 5m"), (300_000, None));
    assert_eq!(vs("foo offset -7m"), (-420_000, None));
    assert_eq!(vs("foo OFFSET 1h30m"), (5_400_000, None));
    assert_eq!(vs("foo OFFSET 1m30ms"), (60_030, None));
    assert_eq!(
        vs("foo @ 1603774568"),
        (0, Some(AtModifier::Timestamp(1_603_774_568_000)))
    );
    assert_eq!(vs("foo @ -100"), (0, Some(AtModifier::Timestamp(-100_000))));
    assert_eq!(vs("foo @ .3"), (0, Some(AtModifier::Timestamp(300))));
    assert_eq!(vs("foo @ 3."), (0, Some(AtModifier::Timestamp(3000))));
    assert_eq!(vs("foo @ 3.3333"), (0, Some(AtModifier::Timestamp(3333))));
    assert_eq!(vs("foo @ 3.3335"), (0, Some(AtModifier::Timestamp(3334))));
    assert_eq!(vs("foo @ 3e2"), (0, Some(AtModifier::Timestamp(300_000))));
    assert_eq!(vs("foo @ 0xA"), (0, Some(AtModifier::Timestamp(10_000))));
    assert_eq!(
        vs("foo @ -3.3e1"),
        (0, Some(AtModifier::Timestamp(-33_000)))
    );
    assert_eq!(vs("foo @ start()"), (0, Some(AtModifier::Start)));
    assert_eq!(vs("foo @ end ( )"), (0, Some(AtModifier::End)));
    assert_eq!(
        vs("foo offset 5m @ 10"),
        (300_000, Some(AtModifier::Timestamp(10_000)))
    );
    assert_eq!(
        vs("foo @ 10 offset 5m"),
        (300_000, Some(AtModifier::Timestamp(10_000)))
    );
    assert_eq!(
        vs("metric_ms @ 1.234"),
        (0, Some(AtModifier::Timestamp(1234)))
    );
}

#[test]
fn matrix_selectors_and_subqueries() {
    let m = |q: &str| match ok(q) {
        Expr::MatrixSelector(m) => (m.range, m.selector.offset, m.selector.at),
        e => panic!("{e:?}"),
    };
    assert_eq!(m("test[5s]"), (5_000, 0, None));
    assert_eq!(m("test[5m30s]"), (330_000, 0, None));
    assert_eq!(m("test[5h] OFFSET 5m"), (18_000_000, 300_000, None));
    assert_eq!(m("test[5d] OFFSET 10s"), (432_000_000, 10_000, None));
    assert_eq!(
        m("test[5w] offset 2w"),
        (3_024_000_000, 1_209_600_000, None)
    );
    assert_eq!(
        m("test{a=\"b\"}[5y] @ 1603774699"),
        (
            157_680_000_000,
            0,
            Some(AtModifier::Timestamp(1_603_774_699_000))
        )
    );
    assert_eq!(
        m("test[5y] @ start()"),
        (157_680_000_000, 0, Some(AtModifier::Start))
    );
    // Prometheus only rejects a numeric `@` before a range.
    assert_eq!(m("test @ end() [5m]"), (300_000, 0, Some(AtModifier::End)));
    assert_eq!(m("test[ 5m ]"), (300_000, 0, None));

    assert_eq!(
        t("foo{bar=\"baz\"}[10m:6s]"),
        "(subquery foo{bar=\"baz\"} 600000 Some(6000) 0 None)"
    );
    assert_eq!(
        t("foo[10m5s:1h6ms]"),
        "(subquery foo 605000 Some(3600006) 0 None)"
    );
    assert_eq!(t("foo[10m:]"), "(subquery foo 600000 None 0 None)");
    assert_eq!(
        t("min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:5s])"),
        "(min_over_time (subquery (rate foo{bar=\"baz\"}[2s]) 300000 Some(5000) 0 None))"
    );
    assert_eq!(
        t("min_over_time(rate(foo[2s])[5m:] @ 1603775091)[4m:3s]"),
        "(subquery (min_over_time (subquery (rate foo[2s]) 300000 None 0 Some(Timestamp(1603775091000)))) 240000 Some(3000) 0 None)"
    );
    assert_eq!(
        t("some_metric OFFSET 1m [10m:5s]"),
        "(subquery some_metric offset 1m 600000 Some(5000) 0 None)"
    );
    assert_eq!(
        t("some_metric[10m:5s] offset 1m @ 123"),
        "(subquery some_metric 600000 Some(5000) 60000 Some(Timestamp(123000)))"
    );
    assert_eq!(
        t("(foo + bar{nm=\"val\"})[5m:] offset 10m"),
        "(subquery (paren (+ foo bar{nm=\"val\"})) 300000 None 600000 None)"
    );
    assert_eq!(
        t("foo[10m:6s] @ end()"),
        "(subquery foo 600000 Some(6000) 0 Some(End))"
    );
    assert_eq!(
        t("topk(5, x)[5m:]"),
        "(subquery (topk 5 x) 300000 None 0 None)"
    );
    // Prometheus 2.53 lexes a letter inside brackets as the colon.
    assert_eq!(t("foo[5m x]"), "(subquery foo 300000 None 0 None)");
}

#[test]
fn binary_matching() {
    let b = |q: &str| match ok(q) {
        Expr::Binary(b) => b,
        e => panic!("{e:?}"),
    };
    let e = b("foo * bar");
    let m = e.matching.expect("vector matching");
    assert_eq!(
        (m.card, m.on, m.matching_labels.len()),
        (Cardinality::OneToOne, false, 0)
    );
    let m = b("foo and bar").matching.expect("matching");
    assert_eq!(m.card, Cardinality::ManyToMany);
    let m = b("foo unless on(start) bar").matching.expect("matching");
    assert_eq!(
        (m.card, m.on, m.matching_labels),
        (Cardinality::ManyToMany, true, vec!["start".to_string()])
    );
    let m = b("foo * on(test,blub) group_left(bar) bar")
        .matching
        .expect("matching");
    assert_eq!(
        (m.card, m.on, m.matching_labels, m.include),
        (
            Cardinality::ManyToOne,
            true,
            vec!["test".into(), "blub".into()],
            vec!["bar".into()]
        )
    );
    let m = b("foo - ignoring(test,blub) group_right(bar,foo) bar")
        .matching
        .expect("matching");
    assert_eq!(
        (m.card, m.on, m.include.len()),
        (Cardinality::OneToMany, false, 2)
    );
    let m = b("foo * on(a) group_left bar").matching.expect("matching");
    assert_eq!((m.card, m.include.len()), (Cardinality::ManyToOne, 0));
    let e = b("foo == bool 1");
    assert!(e.return_bool && e.matching.is_none());
    assert!(b("1 + 2").matching.is_none());
    assert!(b("foo * 2").matching.is_none());
    // Matching without labels is dropped silently when a side is a scalar.
    assert!(b("1 + on() foo").matching.is_none());
    assert_eq!(b("foo > bool on(x) group_left b").op, BinaryOp::Gtr);
}

#[test]
fn aggregations() {
    let a = |q: &str| match ok(q) {
        Expr::Aggregate(a) => a,
        e => panic!("{e:?}"),
    };
    let e = a("sum by (foo)(some_metric)");
    assert_eq!(
        (e.op, e.grouping.clone(), e.without),
        (AggregateOp::Sum, vec!["foo".to_string()], false)
    );
    let e = a("sum (some_metric) without (foo)");
    assert_eq!(
        (e.grouping.clone(), e.without),
        (vec!["foo".to_string()], true)
    );
    let e = a("sum without(and, by, avg, count, alert, annotations)(some_metric)");
    assert_eq!(
        e.grouping,
        vec!["and", "by", "avg", "count", "alert", "annotations"]
    );
    assert_eq!(a("sum by ()(some_metric)").grouping.len(), 0);
    assert_eq!(
        a("sum by (foo,bar,)(some_metric)").grouping,
        vec!["foo", "bar"]
    );
    assert_eq!(
        a("sum by (on, bool, group_left, atan2, start)(x)")
            .grouping
            .len(),
        5
    );
    let e = a("topk(5, some_metric)");
    assert_eq!(
        (e.op, e.param.as_deref()),
        (AggregateOp::Topk, Some(&Expr::NumberLiteral(5.0)))
    );
    let e = a(r#"count_values("value", some_metric)"#);
    assert_eq!(
        e.param.as_deref(),
        Some(&Expr::StringLiteral("value".into()))
    );
    assert_eq!(a("quantile(0.9, x)").op, AggregateOp::Quantile);
    assert_eq!(a("COUNT BY (a) (x)").op, AggregateOp::Count);
    for op in [
        "avg",
        "count",
        "min",
        "max",
        "group",
        "stddev",
        "stdvar",
        "bottomk(1,",
        "sum(",
    ] {
        let q = if op.ends_with(['(', ',']) {
            format!("{op}x)")
        } else {
            format!("{op}(x)")
        };
        ok(&q);
    }
}

#[test]
fn function_calls() {
    assert_eq!(t("time()"), "(time )");
    assert_eq!(
        t("floor(some_metric{foo!=\"bar\"})"),
        "(floor some_metric{foo!=\"bar\"})"
    );
    assert_eq!(t("round(some_metric, 5)"), "(round some_metric 5)");
    assert_eq!(t("hour()"), "(hour )");
    assert_eq!(
        t(r#"label_join(x, "a", ",", "b", "c", "d")"#),
        r#"(label_join x "a" "," "b" "c" "d")"#
    );
    assert_eq!(t(r#"sort_by_label(x)"#), "(sort_by_label x)");
    assert_eq!(
        t(r#"sort_by_label_desc(x, "a", "b")"#),
        r#"(sort_by_label_desc x "a" "b")"#
    );
    assert_eq!(t("mad_over_time(x[5m])"), "(mad_over_time x[5m])");
    // Off by default, with Prometheus's error at the function's name.
    for (q, e) in [
        (
            r#"sort_by_label(up, "job")"#,
            r#"1:1: parse error: function "sort_by_label" is not enabled"#,
        ),
        (
            r#"1 + sort_by_label_desc(x)"#,
            r#"1:5: parse error: function "sort_by_label_desc" is not enabled"#,
        ),
        (
            "sum(mad_over_time(x[5m]))",
            r#"1:5: parse error: function "mad_over_time" is not enabled"#,
        ),
    ] {
        assert_eq!(err(q), e, "{q}");
    }
    assert_eq!(
        t("holt_winters(x[5m], 0.1, 0.5)"),
        "(holt_winters x[5m] 0.1 0.5)"
    );
    assert_eq!(t("changes((x[5m]))"), "(changes (paren x[5m]))");
    assert_eq!(t("vector(time())"), "(vector (time ))");
    assert_eq!(t("rate(foo[5m]) # trailing comment"), "(rate foo[5m])");
}

#[test]
fn syntax_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "unknown position: parse error: no expression found in input"),
        ("# just a comment\n\n", "1:1: parse error: no expression found in input"),
        ("1+", "1:3: parse error: unexpected end of input"),
        (".", "1:1: parse error: unexpected character: '.'"),
        ("2.5.", "1:4: parse error: unexpected character: '.'"),
        ("100..4", "1:5: parse error: unexpected number \".4\""),
        ("0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""),
        ("1 /", "1:4: parse error: unexpected end of input"),
        ("*1", "1:1: parse error: unexpected <op:*>"),
        ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
        ("((1)", "1:5: parse error: unclosed left parenthesis"),
        ("(", "1:2: parse error: unclosed left parenthesis"),
        ("1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"),
        ("1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"),
        ("a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"),
        ("foo + group_left(baz) bar", "1:7: parse error: unexpected <group_left>"),
        ("{", "1:2: parse error: unexpected end of input inside braces"),
        ("}", "1:1: parse error: unexpected character: '}'"),
        ("some{", "1:6: parse error: unexpected end of input inside braces"),
        ("some_metric{a=b}", "1:15: parse error: unexpected identifier \"b\" in label matching, expected string"),
        ("some_metric{a:b=\"b\"}", "1:14: parse error: unexpected character inside braces: ':'"),
        ("foo{a*\"b\"}", "1:6: parse error: unexpected character inside braces: '*'"),
        ("foo{a>=\"b\"}", "1:6: parse error: unexpected character inside braces: '>'"),
        ("foo{gibberish}", "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator"),
        ("foo{1}", "1:5: parse error: unexpected character inside braces: '1'"),
        ("foo{__name__= =}", "1:15: parse error: unexpected \"=\" in label matching, expected string"),
        ("foo{,}", "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
        ("foo{__name__ == \"bar\"}", "1:15: parse error: unexpected \"=\" in label matching, expected string"),
        ("foo{__name__=\"bar\" lol}", "1:20: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""),
        ("foo{a=\"b\"}{c=\"d\"}", "1:11: parse error: unexpected \"{\""),
        ("foo]", "1:4: parse error: unexpected right bracket ']'"),
        ("rate(x])", "1:7: parse error: unexpected right bracket ']'"),
        ("foo[5m", "1:7: parse error: unclosed left bracket"),
        ("foo[5mm]", "1:5: parse error: bad duration syntax: \"5mm\""),
        ("foo[5m1]", "1:5: parse error: bad duration syntax: \"5m1\""),
        ("foo[5m:1m1]", "1:8: parse error: bad number or duration syntax: \"1m1\""),
        ("foo[]", "1:5: parse error: missing unit character in duration"),
        ("foo[1]", "1:5: parse error: missing unit character in duration"),
        ("foo[\"5m\"]", "1:5: parse error: missing unit character in duration"),
        ("foo[5m 5m]", "1:8: parse error: unexpected duration \"5m\" in subquery or range, expected \":\" or \"]\""),
        ("foo[5m:1]", "1:8: parse error: unexpected number \"1\" in subquery selector, expected duration or \"]\""),
        ("foo[5m:1m 1m]", "1:11: parse error: unexpected duration \"1m\" in subquery selector, expected \"]\""),
        ("some_metric[5m] OFFSET 1", "1:24: parse error: unexpected number \"1\" in offset, expected duration"),
        ("some_metric[5m] OFFSET 1mm", "1:24: parse error: bad number or duration syntax: \"1mm\""),
        ("some_metric[5m] OFFSET", "1:23: parse error: unexpected end of input in offset, expected duration"),
        ("foo offset +5m", "1:12: parse error: unexpected <op:+> in offset, expected duration"),
        ("some_metric[5m] @ 1m", "1:19: parse error: unexpected duration \"1m\" in @, expected timestamp"),
        ("some_metric[5m] @", "1:18: parse error: unexpected end of input in @, expected timestamp"),
        ("foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"),
        ("sum without(==)(some_metric)", "1:13: parse error: unexpected <op:==> in grouping opts, expected label"),
        ("sum without(,)(some_metric)", "1:13: parse error: unexpected \",\" in grouping opts, expected label"),
        ("sum without(foo,,)(some_metric)", "1:17: parse error: unexpected \",\" in grouping opts, expected label"),
        ("sum by (a b)(x)", "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""),
        ("sum by (foo:bar)(x)", "1:9: parse error: unexpected metric identifier \"foo:bar\" in grouping opts, expected label"),
        ("sum by (inf)(x)", "1:9: parse error: unexpected number \"inf\" in grouping opts, expected label"),
        ("sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""),
        ("sum (some_metric) by test", "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""),
        ("sum(x) by", "1:10: parse error: unexpected end of input in grouping opts, expected \"(\""),
        ("MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\""),
        ("MIN (some_metric) keep_common", "1:19: parse error: unexpected identifier \"keep_common\""),
        ("sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"),
        ("sum without (test) (some_metric) by (test)", "1:34: parse error: unexpected <by>"),
        ("sum by (a) foo", "1:12: parse error: unexpected identifier \"foo\" in aggregation"),
        ("sum(rate(x[5m] y))", "1:16: parse error: unexpected identifier \"y\" in aggregation"),
        ("foo * on(a) group_left (bar)", "1:29: parse error: unexpected end of input"),
        ("start()", "1:6: parse error: unexpected \"(\""),
        ("end()", "1:4: parse error: unexpected \"(\""),
        ("a:b(x)", "1:4: parse error: unexpected \"(\""),
        ("foo bool", "1:5: parse error: unexpected <bool>"),
        ("-=", "1:2: parse error: unexpected \"=\""),
        ("++-++-+-+-<", "1:11: parse error: unexpected <op:<>"),
        ("e-+=/(0)", "1:4: parse error: unexpected \"=\""),
        ("rate(,)", "1:6: parse error: unexpected \",\""),
        ("`\\``", "1:4: parse error: unterminated raw string"),
        ("\"\\", "1:1: parse error: escape sequence not terminated"),
        ("\"\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"),
        ("\"\\x.\"", "1:1: parse error: illegal character U+002E '.' in escape sequence"),
        ("foo $", "1:5: parse error: unexpected character: '$'"),
        ("foo\n  + bar)", "2:9: parse error: unexpected right parenthesis ')'"),
    ];
    for &(q, want) in cases {
        assert_eq!(err(q), want, "query {q:?}");
    }
}

#[test]
fn semantic_errors() {
    let cases: &[(&str, &str)] = &[
        ("1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
        ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
        ("1 or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"),
        ("foo unless 1", "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression"),
        ("-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""),
        ("-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""),
        ("1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("-1 offset 5m", "1:2: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"),
        ("1 or on(bar) foo", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("foo == on(bar) 10", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("foo and on(bar) group_left(baz) bar", "1:1: parse error: no grouping allowed for \"and\" operation"),
        ("foo or on(bar) group_right(baz) bar", "1:1: parse error: no grouping allowed for \"or\" operation"),
        (
            "http_requests{group=\"production\"} + on(instance) group_left(job,instance) cpu_count{type=\"smp\"}",
            "1:35: parse error: label \"instance\" must not occur in ON and GROUP clause at once",
        ),
        ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
        ("foo and bool 10", "1:5: parse error: bool modifier can only be used on comparison operators"),
        ("foo + x[5m]", "1:7: parse error: binary expression must contain only scalar and instant vector types"),
        ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("{x=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("{x=~\".*\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("{x!~\".+\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("{x!=\"a\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("rate({x=\"\"}[5m])", "1:6: parse error: vector selector must contain at least one non-empty matcher"),
        ("foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""),
        ("foo[5y1hs]", "1:5: parse error: unknown unit \"hs\" in duration \"5y1hs\""),
        ("foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""),
        ("foo[5m1m]", "1:5: parse error: not a valid duration string: \"5m1m\""),
        ("foo[0m]", "1:5: parse error: duration must be greater than 0"),
        ("foo offset 0s", "1:12: parse error: duration must be greater than 0"),
        ("foo[5m:0s]", "1:8: parse error: duration must be greater than 0"),
        ("some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range"),
        ("some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"),
        ("(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"),
        ("rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors"),
        ("rate(food[1m])[1h] @ 100", "1:15: parse error: ranges only allowed for vector selectors"),
        ("foo[5m][5m]", "1:8: parse error: ranges only allowed for vector selectors"),
        ("test[5d] OFFSET 10s [10m:5s]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ("(foo + bar{nm=\"val\"})[5m:][10m:5s]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ("1[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got scalar instead"),
        ("sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"),
        ("topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        ("sum(a, b)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2"),
        ("topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"),
        ("rate(x[5m],)", "1:11: parse error: trailing commas not allowed in function call args"),
        ("topk(some_metric, other_metric)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
        ("count_values(5, other_metric)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
        ("sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
        ("rate(some_metric[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("foo @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
        ("foo @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf"),
        ("foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"),
        (
            "foo @ 9223372036854775808.000000",
            "1:1: parse error: timestamp out of bounds for @ modifier: 9223372036854775808.000000",
        ),
        ("floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"),
        ("floor(some_metric, other_metric)", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 2"),
        ("floor(1)", "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar"),
        ("hour(some_metric, some_metric, some_metric)", "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3"),
        ("time(some_metric)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"),
        ("label_join(x)", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1"),
        ("label_join(x, \"a\", \",\", 1)", "1:25: parse error: expected type string in call to function \"label_join\", got scalar"),
        ("non_existent_function_far_bar()", "1:1: parse error: unknown function with name \"non_existent_function_far_bar\""),
        ("a>b()", "1:3: parse error: unknown function with name \"b\""),
        ("rate(some_metric)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
        ("rate(avg)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
        ("histogram_quantile(x, y)", "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got instant vector"),
        ("1e", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax"),
        ("1e999", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e999\": value out of range"),
        ("foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing ): `(`"),
        ("foo{a!~\"[b-a]\"}", "1:5: parse error: error parsing regexp: invalid character class range: `b-a`"),
        // The first error wins, even when a later one is a syntax error.
        ("foo offset 1s offset 2s +", "1:1: parse error: offset may not be set multiple times"),
        ("(\"-{}-1\")[1m:]", "1:1: parse error: subquery is only allowed on instant vector, got string instead"),
    ];
    for &(q, want) in cases {
        assert_eq!(err(q), want, "query {q:?}");
    }
}

#[test]
fn long_binary_chains_fit_a_default_test_stack() {
    // Check, conversion, printing and drop recurse once per level.
    let q = vec!["a"; 1000].join(" + ");
    let e = ok(&q);
    assert_eq!(format_expr(&e), q);
}

#[test]
fn deep_but_valid_queries_parse_and_absurd_ones_fail_cleanly() {
    // Debug builds use several KB of stack per nesting level (release about
    // 1 KB), so this runs on a larger stack than the 2 MB test default.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(deep_queries)
        .expect("thread")
        .join()
        .expect("no panic");
}

fn deep_queries() {
    // Prometheus's fuzzing regression: long chains must not be quadratic.
    let q = format!("({}){}", "-{}-1".repeat(200), "[1m:]".repeat(200));
    assert_eq!(
        err(&q),
        "1:3: parse error: vector selector must contain at least one non-empty matcher"
    );
    let q = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    ok(&q);
    let q = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(err(&q).contains("nests too deeply"));
    let q = vec!["a"; 3000].join(" + ");
    assert!(err(&q).contains("too deeply nested"));
    let q = format!("{}1", "-".repeat(5000));
    assert!(err(&q).contains("nests too deeply"));
}

#[test]
fn metric_selector_entry_point() {
    let m = parse_metric_selector(r#"up{job="api", instance=~"a|b"}"#).expect("parses");
    assert_eq!(m.len(), 3);
    assert_eq!(m[2].name, "__name__");
    let m = parse_metric_selector(r#"{__name__=~"x.*"}"#).expect("parses");
    assert_eq!(m.len(), 1);
    // Like Prometheus, no non-empty matcher is required here.
    assert_eq!(parse_metric_selector("{}").expect("parses").len(), 0);
    assert_eq!(
        parse_metric_selector("foo bar").unwrap_err().to_string(),
        "1:5: parse error: unexpected identifier \"bar\""
    );
    assert_eq!(
        parse_metric_selector("rate(x[5m])")
            .unwrap_err()
            .to_string(),
        "1:5: parse error: unexpected \"(\""
    );
    assert!(parse_metric_selector("foo{a=~\"(\"}").is_err());
}

#[test]
fn metric_entry_points() {
    let l = parse_metric(r#"http_requests{job="api", instance="0"}"#).expect("parses");
    assert_eq!(
        l.to_string(),
        r#"{__name__="http_requests", instance="0", job="api"}"#
    );
    assert_eq!(
        parse_metric(r#"{a="b",}"#).expect("parses").to_string(),
        r#"{a="b"}"#
    );
    assert_eq!(
        parse_metric("sum").expect("parses").to_string(),
        r#"{__name__="sum"}"#
    );
    assert_eq!(
        parse_metric(r#"x{a="\u70ac"}"#).expect("parses").get("a"),
        Some("炬")
    );
    assert_eq!(
        parse_metric("x{a=b}").unwrap_err().to_string(),
        "1:5: parse error: unexpected identifier \"b\" in label set, expected string"
    );
    assert_eq!(
        parse_metric("x{a}").unwrap_err().to_string(),
        "1:4: parse error: unexpected \"}\" in label set, expected \"=\""
    );

    let (l, rest) =
        parse_metric_prefix(r#"http_requests{job="api"} 0+10x10 _ stale"#).expect("parses");
    assert_eq!(l.get("job"), Some("api"));
    assert_eq!(
        &r#"http_requests{job="api"} 0+10x10 _ stale"#[rest..],
        " 0+10x10 _ stale"
    );
    let line = "metric 1x4 2";
    let (l, rest) = parse_metric_prefix(line).expect("parses");
    assert_eq!((l.metric_name(), &line[rest..]), (Some("metric"), " 1x4 2"));
    let line = r#"{__name__="a", b="c"} 1"#;
    let (l, rest) = parse_metric_prefix(line).expect("parses");
    assert_eq!((l.metric_name(), &line[rest..]), (Some("a"), " 1"));
}

#[test]
fn durations_round_trip_through_the_lexer() {
    for (q, ms) in [
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("100ms", 100),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
    ] {
        assert_eq!(parse_duration(q), Ok(ms));
        assert_eq!(format_duration(ms), q);
        match ok(&format!("x[{q}]")) {
            Expr::MatrixSelector(m) => assert_eq!(m.range, ms),
            e => panic!("{e:?}"),
        }
    }
}
