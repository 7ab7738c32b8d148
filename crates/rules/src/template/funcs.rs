//! Template functions: Go's builtins (`and`, `eq`, `printf`, `index`, ...)
//! and Prometheus's (`humanize*`, `query`, `reReplaceAll`, ...), with the
//! output Prometheus 2.53 produces.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::exec::{Exec, QuerySample, Value};
use super::gofmt::{format_e, format_f, format_g};
use super::TemplateError;

const FUNCTIONS: &[&str] = &[
    // Go's text/template builtins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // Prometheus's.
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "stripPort",
    "stripDomain",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

type R<T> = Result<T, TemplateError>;

fn want(ex: &Exec, name: &str, args: &[Value], n: usize, line: usize) -> R<()> {
    if args.len() != n {
        return Err(ex.err(
            line,
            name,
            format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ),
        ));
    }
    Ok(())
}

fn string_arg(ex: &Exec, name: &str, v: &Value, line: usize) -> R<String> {
    match v {
        Value::Str(s) | Value::Html(s) => Ok(s.clone()),
        other => Err(ex.err(
            line,
            name,
            format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            ),
        )),
    }
}

/// Prometheus's `convertToFloat`.
fn float_arg(ex: &Exec, name: &str, v: &Value, line: usize) -> R<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s).ok_or_else(|| {
            ex.err(
                line,
                name,
                format!("error calling {name}: strconv.ParseFloat: parsing {s:?}: invalid syntax"),
            )
        }),
        other => Err(ex.err(
            line,
            name,
            format!(
                "error calling {name}: can't convert {} to float",
                other.type_name()
            ),
        )),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    let neg = s.starts_with('-');
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if let Some(h) = lower.strip_prefix("0x") {
                i64::from_str_radix(h, 16).ok()? as f64
            } else {
                lower.replace('_', "").parse::<f64>().ok()?
            }
        }
    };
    Some(if neg { -v } else { v })
}

pub(crate) fn call(ex: &mut Exec, name: &str, args: Vec<Value>, line: usize) -> R<Value> {
    let s = |ex: &Exec, i: usize| string_arg(ex, name, &args[i], line);
    Ok(match name {
        "not" => {
            want(ex, name, &args, 1, line)?;
            Value::Bool(!args[0].truth())
        }
        "and" | "or" => and_or_as_value(ex, name, line)?,
        "len" => {
            want(ex, name, &args, 1, line)?;
            Value::Int(match &args[0] {
                Value::Str(s) | Value::Html(s) => s.len() as i64,
                Value::StrMap(m) => m.len() as i64,
                Value::AnyMap(m) => m.len() as i64,
                Value::Samples(v) => v.len() as i64,
                other => {
                    return Err(ex.err(
                        line,
                        name,
                        format!("error calling len: len of type {}", other.type_name()),
                    ))
                }
            })
        }
        "index" => {
            if args.is_empty() {
                return Err(ex.err(
                    line,
                    name,
                    "wrong number of args for index: want at least 1 got 0",
                ));
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = index(ex, &v, k, line)?;
            }
            v
        }
        "print" => Value::Str(go_sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::print).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            if args.is_empty() {
                return Err(ex.err(
                    line,
                    name,
                    "wrong number of args for printf: want at least 1 got 0",
                ));
            }
            let f = s(ex, 0)?;
            Value::Str(sprintf(&f, &args[1..]))
        }
        "html" => Value::Str(html_escape(&go_sprint(&args))),
        "js" => Value::Str(js_escape(&go_sprint(&args))),
        "urlquery" => Value::Str(query_escape(&go_sprint(&args))),
        "eq" => {
            if args.len() < 2 {
                return Err(ex.err(
                    line,
                    name,
                    "error calling eq: missing argument for comparison",
                ));
            }
            let mut any = false;
            for b in &args[1..] {
                if compare(ex, name, &args[0], b, line)? == Some(std::cmp::Ordering::Equal) {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(ex, name, &args, 2, line)?;
            if name != "ne" && matches!(args[0], Value::Bool(_)) {
                return Err(ex.err(
                    line,
                    name,
                    format!("error calling {name}: invalid type for comparison"),
                ));
            }
            // Go derives these from `<` and `==` only, which matters for
            // NaN: gt is !le and ge is !lt.
            let o = compare(ex, name, &args[0], &args[1], line)?;
            let (lt, eq) = (o == Some(Less), o == Some(Equal));
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "ne" => !eq,
                "lt" => lt,
                "le" => lt || eq,
                "gt" => !(lt || eq),
                _ => !lt,
            })
        }
        "query" => {
            want(ex, name, &args, 1, line)?;
            let q = s(ex, 0)?;
            let Some(f) = ex.env.query else {
                return Err(ex.err(line, name, "error calling query: no query engine available"));
            };
            match f(&q) {
                Ok(v) => Value::Samples(Rc::new(v)),
                Err(e) => return Err(ex.err(line, name, format!("error calling query: {e}"))),
            }
        }
        "first" => {
            want(ex, name, &args, 1, line)?;
            match &args[0] {
                Value::Samples(v) => match v.first() {
                    Some(x) => Value::Sample(Rc::new(x.clone())),
                    None => {
                        return Err(ex.err(
                            line,
                            name,
                            "error calling first: first() called on vector with no elements",
                        ))
                    }
                },
                other => return Err(wrong(ex, name, "template.queryResult", other, line)),
            }
        }
        "label" => {
            want(ex, name, &args, 2, line)?;
            let l = s(ex, 0)?;
            match &args[1] {
                Value::Sample(x) => Value::Str(x.labels.get(&l).cloned().unwrap_or_default()),
                other => return Err(wrong(ex, name, "*template.sample", other, line)),
            }
        }
        "value" => {
            want(ex, name, &args, 1, line)?;
            match &args[0] {
                Value::Sample(x) => Value::Float(x.value),
                other => return Err(wrong(ex, name, "*template.sample", other, line)),
            }
        }
        "strvalue" => {
            want(ex, name, &args, 1, line)?;
            match &args[0] {
                Value::Sample(x) => {
                    Value::Str(x.labels.get("__value__").cloned().unwrap_or_default())
                }
                other => return Err(wrong(ex, name, "*template.sample", other, line)),
            }
        }
        "sortByLabel" => {
            want(ex, name, &args, 2, line)?;
            let l = s(ex, 0)?;
            match &args[1] {
                Value::Samples(v) => {
                    let mut v: Vec<QuerySample> = v.as_ref().clone();
                    let key = |x: &QuerySample| x.labels.get(&l).cloned().unwrap_or_default();
                    v.sort_by_key(key);
                    Value::Samples(Rc::new(v))
                }
                other => return Err(wrong(ex, name, "template.queryResult", other, line)),
            }
        }
        "args" => {
            let m: BTreeMap<String, Value> = args
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect();
            Value::AnyMap(Rc::new(m))
        }
        "reReplaceAll" => {
            want(ex, name, &args, 3, line)?;
            let (pat, repl, text) = (s(ex, 0)?, s(ex, 1)?, s(ex, 2)?);
            let re = compile_go_regex(&pat).map_err(|e| {
                ex.err(
                    line,
                    name,
                    format!("error calling reReplaceAll: regexp: Compile({pat:?}): {e}"),
                )
            })?;
            Value::Str(
                re.replace_all(&text, go_expand_template(&repl).as_str())
                    .into_owned(),
            )
        }
        "match" => {
            want(ex, name, &args, 2, line)?;
            let (pat, text) = (s(ex, 0)?, s(ex, 1)?);
            let re = compile_go_regex(&pat)
                .map_err(|e| ex.err(line, name, format!("error calling match: {e}")))?;
            Value::Bool(re.is_match(&text))
        }
        "safeHtml" => {
            want(ex, name, &args, 1, line)?;
            Value::Html(s(ex, 0)?)
        }
        "title" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(go_title(&s(ex, 0)?))
        }
        "toUpper" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(s(ex, 0)?.to_uppercase())
        }
        "toLower" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(s(ex, 0)?.to_lowercase())
        }
        "graphLink" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(graph_link(&s(ex, 0)?))
        }
        "tableLink" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(table_link(&s(ex, 0)?))
        }
        "humanize" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(humanize(float_arg(ex, name, &args[0], line)?))
        }
        "humanize1024" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(humanize1024(float_arg(ex, name, &args[0], line)?))
        }
        "humanizeDuration" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(humanize_duration(float_arg(ex, name, &args[0], line)?))
        }
        "humanizePercentage" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(humanize_percentage(float_arg(ex, name, &args[0], line)?))
        }
        "humanizeTimestamp" => {
            want(ex, name, &args, 1, line)?;
            let v = float_arg(ex, name, &args[0], line)?;
            Value::Str(
                humanize_timestamp(v).map_err(|e| {
                    ex.err(line, name, format!("error calling humanizeTimestamp: {e}"))
                })?,
            )
        }
        "toTime" => {
            want(ex, name, &args, 1, line)?;
            let v = float_arg(ex, name, &args[0], line)?;
            match float_to_millis(v) {
                Ok(ms) => Value::Time(ms),
                Err(e) => return Err(ex.err(line, name, format!("error calling toTime: {e}"))),
            }
        }
        "parseDuration" => {
            want(ex, name, &args, 1, line)?;
            let d = s(ex, 0)?;
            match vigil_config::Duration::parse(&d) {
                Ok(d) => Value::Float(d.as_millis() as f64 / 1000.0),
                Err(e) => {
                    return Err(ex.err(line, name, format!("error calling parseDuration: {e}")))
                }
            }
        }
        "pathPrefix" => {
            want(ex, name, &args, 0, line)?;
            Value::Str(url_path(ex.env.external_url))
        }
        "externalURL" => {
            want(ex, name, &args, 0, line)?;
            Value::Str(ex.env.external_url.to_string())
        }
        "stripPort" => {
            want(ex, name, &args, 1, line)?;
            let hp = s(ex, 0)?;
            Value::Str(match split_host_port(&hp) {
                Some((h, _)) => h,
                None => hp,
            })
        }
        "stripDomain" => {
            want(ex, name, &args, 1, line)?;
            Value::Str(strip_domain(&s(ex, 0)?))
        }
        other => return Err(ex.err(line, other, format!("function {other:?} not defined"))),
    })
}

fn and_or_as_value(ex: &Exec, name: &str, line: usize) -> R<Value> {
    // `and`/`or` are evaluated lazily by the executor; reaching here means
    // they were used as a bare value.
    Err(ex.err(
        line,
        name,
        format!("wrong number of args for {name}: want at least 1 got 0"),
    ))
}

fn wrong(ex: &Exec, name: &str, expected: &str, got: &Value, line: usize) -> TemplateError {
    ex.err(
        line,
        name,
        format!(
            "wrong type for value; expected {expected}; got {}",
            got.type_name()
        ),
    )
}

fn index(ex: &Exec, v: &Value, k: &Value, line: usize) -> R<Value> {
    match (v, k) {
        (Value::StrMap(m), Value::Str(k)) => Ok(Value::Str(m.get(k).cloned().unwrap_or_default())),
        (Value::AnyMap(m), Value::Str(k)) => Ok(m.get(k).cloned().unwrap_or(Value::Invalid)),
        (Value::Samples(s), Value::Int(i)) => match usize::try_from(*i).ok().and_then(|i| s.get(i))
        {
            Some(x) => Ok(Value::Sample(Rc::new(x.clone()))),
            None => Err(ex.err(
                line,
                "index",
                format!("error calling index: index out of range: {i}"),
            )),
        },
        (Value::Str(s), Value::Int(i)) => {
            match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                Some(b) => Ok(Value::Int(*b as i64)),
                None => Err(ex.err(
                    line,
                    "index",
                    format!("error calling index: index out of range: {i}"),
                )),
            }
        }
        (Value::Invalid | Value::Nil, _) => {
            Err(ex.err(line, "index", "error calling index: index of untyped nil"))
        }
        (v, k) => Err(ex.err(
            line,
            "index",
            format!(
                "error calling index: cannot index {} with {}",
                v.type_name(),
                k.type_name()
            ),
        )),
    }
}

/// Go's `eq`/`lt` rules: ints with ints, floats with floats, strings with
/// strings; mixing kinds is an error.
fn compare(
    ex: &Exec,
    name: &str,
    a: &Value,
    b: &Value,
    line: usize,
) -> R<Option<std::cmp::Ordering>> {
    use std::cmp::Ordering;
    let bad = |m: &str| ex.err(line, name, format!("error calling {name}: {m}"));
    let strish = |v: &Value| match v {
        Value::Str(s) | Value::Html(s) => Some(s.clone()),
        _ => None,
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Some(x.cmp(y))),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(Some(if x == y {
            Ordering::Equal
        } else {
            Ordering::Less
        })),
        (Value::Time(x), Value::Time(y)) => Ok(Some(x.cmp(y))),
        (Value::Invalid, _) | (_, Value::Invalid) => Err(bad("invalid type for comparison")),
        _ => match (strish(a), strish(b)) {
            (Some(x), Some(y)) => Ok(Some(x.cmp(&y))),
            _ => {
                let basic = |v: &Value| {
                    matches!(
                        v,
                        Value::Int(_)
                            | Value::Float(_)
                            | Value::Bool(_)
                            | Value::Str(_)
                            | Value::Html(_)
                    )
                };
                if basic(a) && basic(b) {
                    Err(bad("incompatible types for comparison"))
                } else if name == "eq" || name == "ne" {
                    Err(bad("non-comparable types"))
                } else {
                    Err(bad("invalid type for comparison"))
                }
            }
        },
    }
}

/// `fmt.Sprint`: spaces only between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_) | Value::Html(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: flags `-+# 0`, width, precision and the
/// verbs `v s q d f F e E g G x X o b t c %`.
pub fn sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut sharp, mut zero, mut space) =
            (false, false, false, false, false);
        while let Some(&fl) = chars.peek() {
            match fl {
                '-' => minus = true,
                '+' => plus = true,
                '#' => sharp = true,
                '0' => zero = true,
                ' ' => space = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(&d) = chars.peek() {
            if let Some(n) = d.to_digit(10) {
                width = Some(width.unwrap_or(0) * 10 + n as usize);
                chars.next();
            } else {
                break;
            }
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(&d) = chars.peek() {
                if let Some(n) = d.to_digit(10) {
                    p = p * 10 + n as usize;
                    chars.next();
                } else {
                    break;
                }
            }
            prec = Some(p);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let body = format_verb(verb, arg, prec, plus, sharp, space);
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if zero
                    && matches!(arg, Value::Int(_) | Value::Float(_))
                    && !body.contains("Inf")
                    && !body.contains("NaN")
                {
                    let (sign, digits) = match body.strip_prefix(['-', '+']) {
                        Some(d) => (&body[..1], d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(sign);
                    out.push_str(&"0".repeat(pad));
                    out.push_str(digits);
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.print()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn sign(s: String, plus: bool, space: bool) -> String {
    if s.starts_with('-') || s.starts_with('+') {
        return s;
    }
    if plus {
        format!("+{s}")
    } else if space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_verb(
    verb: char,
    arg: &Value,
    prec: Option<usize>,
    plus: bool,
    sharp: bool,
    space: bool,
) -> String {
    let bad = || format!("%!{verb}({}={})", arg.type_name(), arg.print());
    match (verb, arg) {
        ('v', Value::Float(f)) => sign(format_g(*f, prec, false), plus, space),
        ('v', Value::Int(i)) => sign(i.to_string(), plus, space),
        ('v', Value::Str(s) | Value::Html(s)) if sharp => labels_quote(s),
        ('v', v) => match prec {
            Some(p) if matches!(v, Value::Str(_)) => v.print().chars().take(p).collect(),
            _ => v.print(),
        },
        ('s', Value::Str(s) | Value::Html(s)) => match prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', Value::StrMap(_) | Value::AnyMap(_) | Value::Time(_)) => arg.print(),
        ('q', Value::Str(s) | Value::Html(s)) => labels_quote(s),
        ('q', Value::Int(i)) => match char::from_u32(*i as u32) {
            Some(c) => format!("{c:?}"),
            None => bad(),
        },
        ('d', Value::Int(i)) => sign(i.to_string(), plus, space),
        ('t', Value::Bool(b)) => b.to_string(),
        ('c', Value::Int(i)) => char::from_u32(*i as u32)
            .map(String::from)
            .unwrap_or_else(bad),
        ('f' | 'F', Value::Float(f)) => sign(format_f(*f, prec.unwrap_or(6)), plus, space),
        ('f' | 'F', Value::Int(_)) => bad(),
        ('e' | 'E', Value::Float(f)) => {
            sign(format_e(*f, prec.unwrap_or(6), verb == 'E'), plus, space)
        }
        ('g' | 'G', Value::Float(f)) => sign(format_g(*f, prec, verb == 'G'), plus, space),
        ('x' | 'X', Value::Int(i)) => {
            let s = if *i < 0 {
                format!("-{:x}", i.unsigned_abs())
            } else {
                format!("{i:x}")
            };
            let s = if sharp { s.replacen("", "0x", 1) } else { s };
            if verb == 'X' {
                s.to_uppercase()
            } else {
                s
            }
        }
        ('x' | 'X', Value::Str(s) | Value::Html(s)) => {
            let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                h.to_uppercase()
            } else {
                h
            }
        }
        ('o', Value::Int(i)) => format!("{i:o}"),
        ('b', Value::Int(i)) => format!("{i:b}"),
        _ => bad(),
    }
}

fn labels_quote(s: &str) -> String {
    vigil_model::gofmt::quote(s)
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\'' => o.push_str("&#39;"),
            '"' => o.push_str("&#34;"),
            '\0' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn js_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// Prometheus's `strutil.TableLinkForExpression`.
pub fn table_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

/// Prometheus's `strutil.GraphLinkForExpression`.
pub fn graph_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=0", query_escape(expr))
}

/// Go's `strings.Title`: upper-cases the first letter of every word, where
/// words are separated by anything that is not a letter, digit, `_` or `'`.
fn go_title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = is_sep(c);
    }
    out
}

/// Compiles a Go RE2 pattern (unanchored, as `regexp.MatchString`).
fn compile_go_regex(p: &str) -> Result<regex::Regex, String> {
    let translated = vigil_model::relabel::translate_go_regex(p)?;
    regex::Regex::new(&translated).map_err(|e| e.to_string())
}

/// Go's `Regexp.Expand` template (`$1`, `${name}`) in Rust regex syntax:
/// Go's `$1x` means group `1x` (a name), which Rust reads the same way, so
/// only `$$` needs no change. Kept as a hook for future differences.
fn go_expand_template(r: &str) -> String {
    r.to_string()
}

pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4), false);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", format_g(v, Some(4), false));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", format_g(v, Some(4), false))
}

pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4), false);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4), false))
}

pub fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4), false);
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, Some(4), false));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", format_g(v, Some(4), false));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, Some(4), false))
}

pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", format_g(v * 100.0, Some(4), false))
}

/// Seconds to milliseconds as Prometheus's `floatToTime` (truncating).
fn float_to_millis(v: f64) -> Result<i64, String> {
    if v.is_nan() || v.is_infinite() {
        return Err(format!(
            "cannot convert {} to time.Time",
            format_g(v, None, false)
        ));
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_g(v, None, false)
        ));
    }
    Ok((ns as i64) / 1_000_000)
}

pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(format_g(v, Some(4), false));
    }
    Ok(super::timefmt::go_time_string(float_to_millis(v)?))
}

/// Go's `net.SplitHostPort`, loosely: `host:port` or `[v6]:port`.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((h.to_string(), port.to_string()));
    }
    let (h, p) = hp.rsplit_once(':')?;
    if h.contains(':') {
        return None;
    }
    Some((h.to_string(), p.to_string()))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = match split_host_port(hp) {
        Some((h, p)) => (h, Some(p)),
        None => (hp.to_string(), None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let short = host.split('.').next().unwrap_or("").to_string();
    match port {
        Some(p) => {
            if short.contains(':') {
                format!("[{short}]:{p}")
            } else {
                format!("{short}:{p}")
            }
        }
        None => short,
    }
}

/// The path of a URL string (`pathPrefix`).
fn url_path(u: &str) -> String {
    let after_scheme = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return String::new(),
    };
    match after_scheme.find('/') {
        Some(i) => {
            let p = &after_scheme[i..];
            p.split(['?', '#']).next().unwrap_or("").to_string()
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_cases_from_prometheus() {
        // Expected strings as in Prometheus's template tests.
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1.0), "1");
        assert_eq!(humanize(0.0001), "100u");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(-1234567.0), "-1.235M");
        assert_eq!(humanize(1e24), "1Y");
        assert_eq!(humanize(1e27), "1000Y");
        assert_eq!(humanize(1e-24), "1y");
        assert_eq!(humanize(1e-25), "0.1y");
        assert_eq!(humanize(f64::INFINITY), "+Inf");
        assert_eq!(humanize(f64::NAN), "NaN");
        assert_eq!(humanize(0.5), "500m");
        assert_eq!(humanize(1000.0), "1k");
        assert_eq!(humanize(1234.0), "1.234k");
    }

    #[test]
    fn humanize1024_cases() {
        assert_eq!(humanize1024(0.0), "0");
        assert_eq!(humanize1024(1.0), "1");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(1.2089258196146292e24), "1Yi");
        assert_eq!(humanize1024(1.2379400392853803e27), "1024Yi");
        assert_eq!(humanize1024(2048.0), "2ki");
        assert_eq!(humanize1024(1500.0), "1.465ki");
    }

    #[test]
    fn humanize_duration_cases() {
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(60.0), "1m 0s");
        assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
        assert_eq!(humanize_duration(86400.0), "1d 0h 0m 0s");
        assert_eq!(humanize_duration(86400.0 * 5.0 + 3661.0), "5d 1h 1m 1s");
        assert_eq!(humanize_duration(1.234), "1.234s");
        assert_eq!(humanize_duration(-1.234), "-1.234s");
        assert_eq!(humanize_duration(-3661.0), "-1h 1m 1s");
        assert_eq!(humanize_duration(0.1), "100ms");
        assert_eq!(humanize_duration(0.0001), "100us");
        assert_eq!(humanize_duration(0.001234), "1.234ms");
        assert_eq!(humanize_duration(12345.678), "3h 25m 45s");
        assert_eq!(humanize_duration(f64::INFINITY), "+Inf");
    }

    #[test]
    fn humanize_percentage_cases() {
        assert_eq!(humanize_percentage(0.0), "0%");
        assert_eq!(humanize_percentage(0.1234567), "12.35%");
        assert_eq!(humanize_percentage(1.0), "100%");
        assert_eq!(humanize_percentage(-0.5), "-50%");
    }

    #[test]
    fn humanize_timestamp_cases() {
        assert_eq!(
            humanize_timestamp(0.0).unwrap(),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            humanize_timestamp(1435065584.128).unwrap(),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            humanize_timestamp(1.5).unwrap(),
            "1970-01-01 00:00:01.5 +0000 UTC"
        );
        assert_eq!(humanize_timestamp(f64::NAN).unwrap(), "NaN");
    }

    #[test]
    fn printf_verbs() {
        let f = Value::Float(3.25159);
        assert_eq!(sprintf("%.2f", std::slice::from_ref(&f)), "3.25");
        assert_eq!(sprintf("%f", std::slice::from_ref(&f)), "3.251590");
        assert_eq!(sprintf("%v", std::slice::from_ref(&f)), "3.25159");
        assert_eq!(sprintf("%s", &[Value::Str("a".into())]), "a");
        assert_eq!(sprintf("%q", &[Value::Str("a\"b".into())]), "\"a\\\"b\"");
        assert_eq!(sprintf("%d", &[Value::Int(42)]), "42");
        assert_eq!(
            sprintf(
                "%5d|%-5d|%05d",
                &[Value::Int(42), Value::Int(42), Value::Int(-42)]
            ),
            "   42|42   |-0042"
        );
        assert_eq!(
            sprintf("%x %X", &[Value::Int(255), Value::Str("hi".into())]),
            "ff 6869"
        );
        assert_eq!(
            sprintf("%d", std::slice::from_ref(&f)),
            "%!d(float64=3.25159)"
        );
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            sprintf("%d", &[Value::Int(1), Value::Int(2)]),
            "1%!(EXTRA int=2)"
        );
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(sprintf("%.3e", &[Value::Float(123456.0)]), "1.235e+05");
        assert_eq!(sprintf("%g", &[Value::Float(1e6)]), "1e+06");
        assert_eq!(sprintf("%.1f%%", &[Value::Float(99.95)]), "100.0%");
        assert_eq!(sprintf("%t", &[Value::Bool(true)]), "true");
        assert_eq!(sprintf("%+d", &[Value::Int(5)]), "+5");
        assert_eq!(sprintf("%8.3f", &[Value::Float(2.5)]), "   2.500");
    }

    #[test]
    fn strings_and_hosts() {
        assert_eq!(
            go_title("hello world-foo bar_baz"),
            "Hello World-Foo Bar_baz"
        );
        assert_eq!(strip_domain("foo.example.com:9090"), "foo:9090");
        assert_eq!(strip_domain("foo.example.com"), "foo");
        assert_eq!(strip_domain("192.168.0.1:9090"), "192.168.0.1:9090");
        assert_eq!(strip_domain("[::1]:9090"), "[::1]:9090");
        assert_eq!(
            split_host_port("foo:9090"),
            Some(("foo".into(), "9090".into()))
        );
        assert_eq!(
            split_host_port("[::1]:80"),
            Some(("::1".into(), "80".into()))
        );
        assert_eq!(split_host_port("foo"), None);
        assert_eq!(url_path("http://a.b:9090/prom/x?y"), "/prom/x");
        assert_eq!(url_path("http://a.b:9090"), "");
        assert_eq!(table_link("up == 0"), "/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    }
}
