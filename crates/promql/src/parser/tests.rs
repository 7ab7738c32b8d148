//! Parser unit tests: accepted queries, the AST they build, and the exact
//! text and position of Prometheus's errors.

use super::*;

fn ok(q: &str) -> Expr {
    match parse(q) {
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

#[test]
fn smoke() {
    for q in [
        "1",
        "foo",
        "sum by (job) (rate(x[5m]))",
        "-2^2",
        "a + b * c",
        "foo offset 5m @ 100",
        "x[5m:1m]",
        "topk(3, foo)",
        r#"count_values("v", foo)"#,
        "foo and on(a) bar",
        "a * on(instance) group_left(x) b",
    ] {
        println!("{q:>40} => {}", format_expr(&ok(q)));
    }
    for q in [
        "rate(foo)",
        "foo]",
        "sum(",
        "1 == 1",
        "foo{",
        "unknown(x)",
        "",
    ] {
        println!("{q:>40} => {}", err(q));
    }
}
