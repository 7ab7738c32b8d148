//! Property tests of the parser and printer:
//! - random well-typed ASTs, shaped as the parser builds them, print to a
//!   query that parses back to the same AST (also after `prettify`);
//! - arbitrary input never panics;
//! - mutations of valid queries never panic, and whatever parses prints
//!   to a query that parses to the same AST.

use proptest::prelude::*;
use vigil_model::{MatchOp, Matcher};
use vigil_promql::ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Cardinality, Expr,
    MatrixSelector, SubqueryExpr, UnaryExpr, UnaryOp, ValueType, VectorMatching, VectorSelector,
};
use vigil_promql::parser::{
    format_expr, get_function, parse_with_options, prettify, ParseError, ParseOptions, FUNCTIONS,
};

/// Generated trees use every function, experimental ones included.
fn parse(q: &str) -> Result<Expr, ParseError> {
    parse_with_options(q, ParseOptions::all())
}

/// A small deterministic generator (xorshift64*), seeded by proptest.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const METRICS: &[&str] = &[
    "up",
    "http_requests_total",
    "job:rate5m:sum",
    "sum",
    "by",
    "offset",
    "start",
    "x1",
    "_a",
];
const LABELS: &[&str] = &[
    "job",
    "instance",
    "le",
    "by",
    "on",
    "bool",
    "group_left",
    "start",
    "_x",
    "a1",
    "atan2",
];
const VALUES: &[&str] = &[
    "",
    "api",
    "a\"b",
    "x\\y",
    "line\nbreak",
    "tab\t",
    "☺ é",
    "\u{a0}",
    "a|b",
    "5m",
    "'",
];
const REGEXES: &[&str] = &["a.*", ".+", "api|db", "x[0-9]+", ".*", ""];

fn duration(g: &mut Gen) -> i64 {
    match g.below(4) {
        0 => 1 + g.below(999) as i64,
        1 => 1000 * (1 + g.below(3600) as i64),
        2 => 60_000 * (1 + g.below(10_000) as i64),
        _ => 86_400_000 * (1 + g.below(800) as i64),
    }
}

fn at(g: &mut Gen) -> Option<AtModifier> {
    match g.below(6) {
        0 => Some(AtModifier::Start),
        1 => Some(AtModifier::End),
        2 => Some(AtModifier::Timestamp(
            g.below(2_000_000_000_000) as i64 - 500_000_000_000,
        )),
        _ => None,
    }
}

fn selector(g: &mut Gen) -> VectorSelector {
    let name = if g.chance(85) {
        Some(g.pick(METRICS).to_string())
    } else {
        None
    };
    let mut matchers = Vec::new();
    for _ in 0..g.below(3) {
        let op = *g.pick(&[
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ]);
        let value = match op {
            MatchOp::Regex | MatchOp::NotRegex => g.pick(REGEXES).to_string(),
            _ => g.pick(VALUES).to_string(),
        };
        if let Ok(m) = Matcher::new(op, *g.pick(LABELS), value) {
            matchers.push(m);
        }
    }
    if name.is_none() {
        // At least one matcher that does not match the empty string.
        matchers.push(Matcher::equal("__name__", *g.pick(METRICS)));
    }
    // The printer sorts matchers by their text; the parser keeps text order.
    let key = |m: &Matcher| {
        format!(
            "{}{}{}",
            m.name,
            m.op.as_str(),
            vigil_model::gofmt::quote(&m.value)
        )
    };
    matchers.sort_by_key(key);
    matchers.dedup_by_key(|m| key(m));
    if let Some(n) = &name {
        matchers.push(Matcher::equal("__name__", n.as_str()));
    }
    VectorSelector {
        name,
        matchers,
        offset: if g.chance(20) {
            duration(g) * if g.chance(30) { -1 } else { 1 }
        } else {
            0
        },
        at: at(g),
    }
}

fn number(g: &mut Gen) -> f64 {
    match g.below(8) {
        0 => f64::INFINITY,
        1 => f64::NEG_INFINITY,
        2 => f64::from_bits(g.next()).abs().min(1e300),
        3 => -(g.below(1000) as f64),
        4 => g.below(100) as f64 / 8.0,
        5 => 1e6 * g.below(10) as f64,
        _ => g.below(100) as f64,
    }
}

fn prec(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And | BinaryOp::Unless => 2,
        BinaryOp::Eql
        | BinaryOp::Neq
        | BinaryOp::Gtr
        | BinaryOp::Lss
        | BinaryOp::Gte
        | BinaryOp::Lte => 3,
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
        BinaryOp::Pow => 6,
    }
}

fn paren(e: Expr) -> Expr {
    Expr::Paren(Box::new(e))
}

/// Wraps an operand in parentheses where the parser would need them.
fn operand(e: Expr, op: BinaryOp, left: bool) -> Expr {
    let needs = match &e {
        Expr::Binary(b) => {
            let (p, q) = (prec(b.op), prec(op));
            p < q || (p == q && (left == (op == BinaryOp::Pow)))
        }
        Expr::Unary(_) => left && op == BinaryOp::Pow,
        // `-1 ^ 2` and `+Inf ^ 2` print a sign that reparses as unary.
        Expr::NumberLiteral(v) => {
            left && op == BinaryOp::Pow && (v.is_sign_negative() || v.is_infinite())
        }
        _ => false,
    };
    if needs {
        paren(e)
    } else {
        e
    }
}

fn gen(g: &mut Gen, typ: ValueType, depth: u32) -> Expr {
    match typ {
        ValueType::String => Expr::StringLiteral(g.pick(VALUES).to_string()),
        ValueType::Matrix => {
            if depth == 0 || g.chance(60) {
                let mut sel = selector(g);
                let (offset, at) = (sel.offset, sel.at);
                sel.offset = 0;
                sel.at = None;
                let mut m = MatrixSelector {
                    selector: sel,
                    range: duration(g),
                };
                m.selector.offset = offset;
                m.selector.at = at;
                Expr::MatrixSelector(m)
            } else {
                let mut inner = gen(g, ValueType::Vector, depth - 1);
                if matches!(inner, Expr::Binary(_) | Expr::Unary(_)) {
                    inner = paren(inner);
                }
                Expr::Subquery(SubqueryExpr {
                    expr: Box::new(inner),
                    range: duration(g),
                    step: if g.chance(50) {
                        Some(duration(g))
                    } else {
                        None
                    },
                    offset: if g.chance(20) { duration(g) } else { 0 },
                    at: at(g),
                })
            }
        }
        ValueType::Scalar => {
            if depth == 0 || g.chance(40) {
                return Expr::NumberLiteral(number(g));
            }
            match g.below(4) {
                0 => call_returning(g, ValueType::Scalar, depth),
                1 => paren(gen(g, ValueType::Scalar, depth - 1)),
                _ => binary(g, ValueType::Scalar, depth),
            }
        }
        ValueType::Vector => {
            if depth == 0 || g.chance(25) {
                return Expr::VectorSelector(selector(g));
            }
            match g.below(6) {
                0 => call_returning(g, ValueType::Vector, depth),
                1 => aggregate(g, depth),
                2 => paren(gen(g, ValueType::Vector, depth - 1)),
                3 => {
                    let mut child = gen(g, ValueType::Vector, depth - 1);
                    if matches!(child, Expr::Binary(_) | Expr::Unary(_)) {
                        child = paren(child);
                    }
                    let op = if g.chance(50) {
                        UnaryOp::Neg
                    } else {
                        UnaryOp::Pos
                    };
                    Expr::Unary(UnaryExpr {
                        op,
                        expr: Box::new(child),
                    })
                }
                _ => binary(g, ValueType::Vector, depth),
            }
        }
    }
}

fn call_returning(g: &mut Gen, typ: ValueType, depth: u32) -> Expr {
    let candidates: Vec<_> = FUNCTIONS.iter().filter(|f| f.return_type == typ).collect();
    let f = *g.pick(&candidates);
    let mut n = f.arg_types.len();
    if f.variadic > 0 {
        n = n - 1 + g.below(f.variadic as usize + 1);
    } else if f.variadic < 0 {
        n = n - 1 + g.below(4);
    }
    let args = (0..n)
        .map(|i| {
            let t = f.arg_types[i.min(f.arg_types.len() - 1)];
            gen(g, t, depth - 1)
        })
        .collect();
    Expr::Call(Call {
        func: get_function(f.name).expect("known"),
        args,
    })
}

fn aggregate(g: &mut Gen, depth: u32) -> Expr {
    let op = *g.pick(&[
        AggregateOp::Sum,
        AggregateOp::Avg,
        AggregateOp::Count,
        AggregateOp::Min,
        AggregateOp::Max,
        AggregateOp::Group,
        AggregateOp::Stddev,
        AggregateOp::Stdvar,
        AggregateOp::Topk,
        AggregateOp::Bottomk,
        AggregateOp::CountValues,
        AggregateOp::Quantile,
    ]);
    let param = match op {
        AggregateOp::CountValues => Some(gen(g, ValueType::String, 0)),
        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile => {
            Some(gen(g, ValueType::Scalar, depth - 1))
        }
        _ => None,
    };
    let without = g.chance(30);
    let grouping = if without || g.chance(60) {
        (0..g.below(3))
            .map(|_| g.pick(LABELS).to_string())
            .collect()
    } else {
        Vec::new()
    };
    Expr::Aggregate(AggregateExpr {
        op,
        expr: Box::new(gen(g, ValueType::Vector, depth - 1)),
        param: param.map(Box::new),
        grouping,
        without,
    })
}

fn binary(g: &mut Gen, typ: ValueType, depth: u32) -> Expr {
    use BinaryOp::*;
    let (lt, rt) = match typ {
        ValueType::Scalar => (ValueType::Scalar, ValueType::Scalar),
        _ => match g.below(3) {
            0 => (ValueType::Scalar, ValueType::Vector),
            1 => (ValueType::Vector, ValueType::Scalar),
            _ => (ValueType::Vector, ValueType::Vector),
        },
    };
    let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
    let ops: &[BinaryOp] = if both_vectors {
        &[
            Add, Sub, Mul, Div, Mod, Pow, Atan2, Eql, Neq, Gtr, Lss, Gte, Lte, And, Or, Unless,
        ]
    } else {
        &[
            Add, Sub, Mul, Div, Mod, Pow, Atan2, Eql, Neq, Gtr, Lss, Gte, Lte,
        ]
    };
    let op = *g.pick(ops);
    let return_bool = op.is_comparison() && (typ == ValueType::Scalar || g.chance(40));
    let matching = both_vectors.then(|| {
        let on = g.chance(40);
        let labels: Vec<String> = if on || g.chance(40) {
            (0..g.below(3))
                .map(|_| g.pick(LABELS).to_string())
                .collect()
        } else {
            Vec::new()
        };
        let mut card = if op.is_set() {
            Cardinality::ManyToMany
        } else {
            Cardinality::OneToOne
        };
        let mut include = Vec::new();
        if !op.is_set() && (on || !labels.is_empty()) && g.chance(40) {
            card = if g.chance(50) {
                Cardinality::ManyToOne
            } else {
                Cardinality::OneToMany
            };
            include = (0..g.below(3))
                .map(|_| g.pick(LABELS).to_string())
                .filter(|l| !on || !labels.contains(l))
                .collect();
        }
        VectorMatching {
            card,
            matching_labels: labels,
            on,
            include,
        }
    });
    let lhs = operand(gen(g, lt, depth - 1), op, true);
    let rhs = operand(gen(g, rt, depth - 1), op, false);
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        matching,
        return_bool,
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_asts_round_trip(seed in any::<u64>(), typ in 0usize..3, depth in 0u32..5) {
        let mut g = Gen(seed | 1);
        let t = [ValueType::Vector, ValueType::Scalar, ValueType::Matrix][typ];
        let e = gen(&mut g, t, depth);
        let text = format_expr(&e);
        match parse(&text) {
            Ok(back) => prop_assert_eq!(&back, &e, "printed as {}", text),
            Err(err) => prop_assert!(false, "{} does not parse: {}", text, err),
        }
        let pretty = prettify(&e);
        match parse(&pretty) {
            Ok(back) => prop_assert_eq!(&back, &e, "prettified as {}", pretty),
            Err(err) => prop_assert!(false, "{} does not parse: {}", pretty, err),
        }
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,80}") {
        let _ = parse(&s);
        let _ = vigil_promql::parser::parse_metric_selector(&s);
        let _ = vigil_promql::parser::parse_metric(&s);
        let _ = vigil_promql::parser::parse_duration(&s);
    }

    #[test]
    fn promql_alphabet_never_panics(s in "[a-z_:0-9 (){}\\[\\],.=!~<>+*/%^@\"'`#\\\\-]{0,60}") {
        if let Ok(e) = parse(&s) {
            let text = format_expr(&e);
            prop_assert!(parse(&text).is_ok(), "{} -> {} does not parse", s, text);
        }
    }
}

/// Valid queries to mutate.
const SEEDS: &[&str] = &[
    r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle",job=~"node.*"}[5m])) / on(instance) group_left count by (instance) (node_cpu_seconds_total{mode="idle"})"#,
    r#"histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{job="api"}[5m])))"#,
    r#"topk(5, max_over_time(rate(x[1m])[10m:30s] offset 5m @ end()))"#,
    r#"-a ^ 2 * b % c atan2 d == bool 1 and on(x) e or f unless g"#,
    r#"label_replace(up{job='a\n"b'}, "dst", "$1", "src", "(.*)") > bool 0"#,
    r#"count_values without (a) ("v", {__name__=~"x|y", b!~`z`}) @ start()"#,
    r#"absent_over_time(nonexistent{job="x"}[1h] offset -1d) + time() - vector(1e3)"#,
    "# comment\nsum(\n  foo # trailing\n)\n",
];

fn mutate(g: &mut Gen, s: &str) -> String {
    const ALPHABET: &[char] = &[
        '(', ')', '{', '}', '[', ']', ',', ':', '"', '\'', '`', '\\', '=', '~', '!', '<', '>', '+',
        '-', '*', '/', '%', '^', '@', '#', ' ', '\n', '.', 'e', 'x', '0', '5', 'm', 's', 'é',
        '\u{0}',
    ];
    let mut chars: Vec<char> = s.chars().collect();
    for _ in 0..1 + g.below(4) {
        let pos = if chars.is_empty() {
            0
        } else {
            g.below(chars.len())
        };
        match g.below(5) {
            0 if !chars.is_empty() => {
                chars.remove(pos);
            }
            1 => chars.insert(pos, *g.pick(ALPHABET)),
            2 if !chars.is_empty() => chars[pos] = *g.pick(ALPHABET),
            3 if chars.len() > 2 => {
                let end = (pos + 1 + g.below(8)).min(chars.len());
                let piece: Vec<char> = chars[pos..end].to_vec();
                let at = g.below(chars.len());
                chars.splice(at..at, piece);
            }
            _ => chars.truncate(pos),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_valid_queries_never_panic() {
    // Debug builds need a larger stack for the deepest accepted nesting.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut g = Gen(0x9E37_79B9_7F4A_7C15);
            let mut parsed = 0;
            for i in 0..40_000 {
                let seed = SEEDS[i % SEEDS.len()];
                let q = mutate(&mut g, seed);
                if let Ok(e) = parse(&q) {
                    parsed += 1;
                    let text = format_expr(&e);
                    let back = parse(&text)
                        .unwrap_or_else(|err| panic!("{q:?} printed as {text:?}: {err}"));
                    assert_eq!(format_expr(&back), text, "printing is not stable for {q:?}");
                }
            }
            println!("{parsed} of 40000 mutated queries still parsed");
        })
        .expect("thread")
        .join()
        .expect("no panic");
}
