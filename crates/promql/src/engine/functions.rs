//! Functions over instant vectors and scalars: math, clamping, rounding,
//! dates, `vector`/`scalar`/`time`, `absent`, sorting, label rewriting and
//! `histogram_quantile`. Range-vector functions live in `range_fns`.
//!
//! Element-wise functions drop `__name__` and stay lazy on selector input;
//! everything else materializes its argument.

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use vigil_model::{Labels, METRIC_NAME};

use crate::ast::{Call, Expr};

use super::eval::{absent_labels, merge_same_labels, Dup, Evaluator, Lazy, Src};
use super::gomath::{go_f64_to_i64, go_max, go_min, natural_less};
use super::histogram::bucket_quantile;
use super::types::{is_present, Grid, StepSeries, StepVector, Val, ABSENT};
use super::EvalError;
use vigil_model::gofmt::{FloatFormat, GoFloat, GoTime};

type MapFn = Arc<dyn Fn(usize, f64) -> Option<f64> + Send + Sync>;

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum DateFn {
    Year,
    Month,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    Hour,
    Minute,
    DaysInMonth,
}

impl DateFn {
    fn from_name(n: &str) -> Option<Self> {
        Some(match n {
            "year" => DateFn::Year,
            "month" => DateFn::Month,
            "day_of_month" => DateFn::DayOfMonth,
            "day_of_week" => DateFn::DayOfWeek,
            "day_of_year" => DateFn::DayOfYear,
            "hour" => DateFn::Hour,
            "minute" => DateFn::Minute,
            "days_in_month" => DateFn::DaysInMonth,
            _ => return None,
        })
    }

    /// The function of `time.Unix(unix_sec, 0).UTC()`, with Go's answers
    /// for times beyond any calendar (NaN and ±Inf arrive as i64::MIN).
    fn apply(self, unix_sec: i64) -> f64 {
        let t = GoTime::from_unix(unix_sec);
        (match self {
            DateFn::Year => return t.year() as f64,
            DateFn::Month => t.month(),
            DateFn::DayOfMonth => t.day(),
            DateFn::DayOfWeek => t.weekday(),
            DateFn::DayOfYear => t.year_day(),
            DateFn::Hour => t.hour(),
            DateFn::Minute => t.minute(),
            DateFn::DaysInMonth => t.days_in_month(),
        }) as f64
    }
}

pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn eval_call<'q>(ev: &'q Evaluator<'q>, c: &'q Call, g: Grid) -> Result<Src<'q>, EvalError> {
    let name = c.func.name;
    let args = &c.args;
    match name {
        "time" => Ok(Src::Val(Val::Scalar(
            (0..g.len).map(|i| g.ts(i) as f64 / 1000.0).collect(),
        ))),
        "pi" => Ok(Src::Val(Val::Scalar(vec![std::f64::consts::PI; g.len]))),
        "vector" => {
            let v = ev.eval_scalar(&args[0], g)?;
            let s = StepSeries {
                labels: Labels::empty(),
                vals: v,
            };
            Ok(Src::Val(Val::Vector(ev.vector(vec![s])?)))
        }
        "scalar" => {
            let v = ev.eval_vector(&args[0], g)?;
            let mut out = vec![f64::NAN; g.len];
            let mut count = vec![0u32; g.len];
            for s in &v.series {
                for (i, x) in s.vals.iter().enumerate() {
                    if is_present(*x) {
                        count[i] += 1;
                        out[i] = *x;
                    }
                }
            }
            for (i, n) in count.iter().enumerate() {
                if *n != 1 {
                    out[i] = f64::NAN;
                }
            }
            Ok(Src::Val(Val::Scalar(out)))
        }
        "absent" => {
            let v = ev.eval_vector(&args[0], g)?;
            let mut covered = vec![false; g.len];
            for s in &v.series {
                for (i, x) in s.vals.iter().enumerate() {
                    if is_present(*x) {
                        covered[i] = true;
                    }
                }
            }
            drop(v);
            if covered.iter().all(|c| *c) {
                return Ok(Src::Val(Val::Vector(ev.empty_vector())));
            }
            let vals = covered
                .iter()
                .map(|c| if *c { ABSENT } else { 1.0 })
                .collect();
            let s = StepSeries {
                labels: absent_labels(&args[0]),
                vals,
            };
            Ok(Src::Val(Val::Vector(ev.vector(vec![s])?)))
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.eval_vector(&args[0], g)?;
            if g.len == 1 {
                let mut label_args = Vec::new();
                for a in &args[1..] {
                    label_args.push(ev.eval_string(a)?);
                }
                sort_instant(name, &mut v.series, &label_args);
            }
            Ok(Src::Val(Val::Vector(v)))
        }
        "label_replace" => label_replace(ev, c, g).map(|v| Src::Val(Val::Vector(v))),
        "label_join" => label_join(ev, c, g).map(|v| Src::Val(Val::Vector(v))),
        "histogram_quantile" => histogram_quantile(ev, c, g).map(|v| Src::Val(Val::Vector(v))),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_fraction"
        | "histogram_stddev" | "histogram_stdvar" => {
            // Only native histograms have these; float samples are ignored.
            for a in args {
                ev.eval(a, g)?;
            }
            Ok(Src::Val(Val::Vector(ev.empty_vector())))
        }
        _ => {
            if let Some(d) = DateFn::from_name(name) {
                if args.is_empty() {
                    let vals = (0..g.len).map(|i| d.apply(g.ts(i) / 1000)).collect();
                    let s = StepSeries {
                        labels: Labels::empty(),
                        vals,
                    };
                    return Ok(Src::Val(Val::Vector(ev.vector(vec![s])?)));
                }
                let f: MapFn = Arc::new(move |_, v| Some(d.apply(go_f64_to_i64(v))));
                return map_vector(ev, &args[0], g, f);
            }
            let f: MapFn = match name {
                "round" => {
                    let to_nearest = match args.get(1) {
                        Some(a) => ev.eval_scalar(a, g)?,
                        None => vec![1.0; g.len],
                    };
                    Arc::new(move |i, v| {
                        let inv = 1.0 / to_nearest[i];
                        Some((v * inv + 0.5).floor() / inv)
                    })
                }
                "clamp" => {
                    let min = ev.eval_scalar(&args[1], g)?;
                    let max = ev.eval_scalar(&args[2], g)?;
                    Arc::new(move |i, v| {
                        if max[i] < min[i] {
                            None
                        } else {
                            Some(go_max(min[i], go_min(max[i], v)))
                        }
                    })
                }
                "clamp_min" => {
                    let min = ev.eval_scalar(&args[1], g)?;
                    Arc::new(move |i, v| Some(go_max(min[i], v)))
                }
                "clamp_max" => {
                    let max = ev.eval_scalar(&args[1], g)?;
                    Arc::new(move |i, v| Some(go_min(max[i], v)))
                }
                "timestamp" => {
                    // Not a selector: the point's time is the step's time.
                    Arc::new(move |i, _| Some(g.ts(i) as f64 / 1000.0))
                }
                _ => match math_fn(name) {
                    Some(m) => Arc::new(move |_, v| Some(m(v))),
                    None => {
                        return Err(EvalError::exec(format!("unknown function: {name}")));
                    }
                },
            };
            map_vector(ev, &args[0], g, f)
        }
    }
}

/// Applies an element-wise function that drops `__name__`, staying lazy on
/// lazy input.
fn map_vector<'q>(
    ev: &'q Evaluator<'q>,
    arg: &'q Expr,
    g: Grid,
    f: MapFn,
) -> Result<Src<'q>, EvalError> {
    let apply = move |mut s: StepSeries| -> Option<StepSeries> {
        s.labels = s.labels.without_metric_name();
        let mut any = false;
        for (i, x) in s.vals.iter_mut().enumerate() {
            if is_present(*x) {
                match f(i, *x) {
                    Some(y) => {
                        *x = y;
                        any = true;
                    }
                    None => *x = ABSENT,
                }
            }
        }
        any.then_some(s)
    };
    match ev.eval_src(arg, g)? {
        Src::Lazy(l) if l.dup == Dup::Unique => {
            let unique = l.name_fixed;
            let l = ev.map_lazy(l, apply);
            Ok(Src::Lazy(Lazy {
                dup: if unique { Dup::Unique } else { Dup::PerStep },
                name_fixed: true,
                ..l
            }))
        }
        src => {
            let v = match src {
                Src::Lazy(l) => ev.materialize(l, g)?,
                Src::Val(Val::Vector(v)) => v,
                Src::Val(_) => return Err(EvalError::Internal("expected instant vector".into())),
            };
            let StepVector { series, hold } = v;
            let out: Vec<StepSeries> = series.into_iter().filter_map(apply).collect();
            drop(hold);
            let out = merge_same_labels(out, g.len)?;
            Ok(Src::Val(Val::Vector(ev.vector(out)?)))
        }
    }
}

/// Go's insertion sort (what `sort.Sort` does for up to 12 elements), so
/// ties and NaNs end up where Prometheus puts them.
fn go_insertion_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Sorts the way Prometheus's `sort.Sort(sort.Reverse(h))` does for a value
/// heap whose `Less` is `h_less`.
pub fn go_reverse_sort<T>(v: &mut [T], h_less: impl Fn(&T, &T) -> bool) {
    if v.len() <= 12 {
        go_insertion_sort(v, |a, b| h_less(b, a));
    } else {
        // Larger inputs: same order up to ties.
        v.sort_by(|a, b| {
            if h_less(b, a) {
                std::cmp::Ordering::Less
            } else if h_less(a, b) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
}

fn sort_instant(name: &str, series: &mut [StepSeries], label_args: &[String]) {
    let val = |s: &StepSeries| s.vals[0];
    // `sort`: reverse of a descending, NaN-first order.
    let asc_nan_last = |a: &StepSeries, b: &StepSeries| val(a).is_nan() || val(a) > val(b);
    let desc_nan_last = |a: &StepSeries, b: &StepSeries| val(a).is_nan() || val(a) < val(b);
    match name {
        "sort" | "sort_by_label" => go_reverse_sort(series, asc_nan_last),
        _ => go_reverse_sort(series, desc_nan_last),
    }
    if name.starts_with("sort_by_label") {
        let desc = name == "sort_by_label_desc";
        let cmp = |a: &StepSeries, b: &StepSeries| -> std::cmp::Ordering {
            for l in label_args {
                let x = a.labels.get(l).unwrap_or("");
                let y = b.labels.get(l).unwrap_or("");
                if x == y {
                    continue;
                }
                let less = natural_less(x, y);
                return match (less, desc) {
                    (true, false) | (false, true) => std::cmp::Ordering::Less,
                    _ => std::cmp::Ordering::Greater,
                };
            }
            std::cmp::Ordering::Equal
        };
        // Stable, so the value order above breaks ties.
        series.sort_by(cmp);
    }
}

fn label_replace<'q>(ev: &'q Evaluator<'q>, c: &'q Call, g: Grid) -> Result<StepVector, EvalError> {
    let dst = ev.eval_string(&c.args[1])?;
    let repl = ev.eval_string(&c.args[2])?;
    let src = ev.eval_string(&c.args[3])?;
    let regex = ev.eval_string(&c.args[4])?;
    let re = Regex::new(&format!("^(?:{regex})$")).map_err(|_| {
        EvalError::exec(format!(
            "invalid regular expression in label_replace(): {regex}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(EvalError::exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let v = ev.eval_vector(&c.args[0], g)?;
    let StepVector { series, hold } = v;
    let mut out = Vec::with_capacity(series.len());
    for mut s in series {
        let sv = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&sv) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut b = s.labels.builder();
            b.del(&dst);
            if !res.is_empty() {
                b.set(dst.clone(), res);
            }
            s.labels = b.build();
        }
        out.push(s);
    }
    drop(hold);
    let out = merge_same_labels(out, g.len)?;
    ev.vector(out)
}

fn label_join<'q>(ev: &'q Evaluator<'q>, c: &'q Call, g: Grid) -> Result<StepVector, EvalError> {
    let dst = ev.eval_string(&c.args[1])?;
    let sep = ev.eval_string(&c.args[2])?;
    let mut srcs = Vec::new();
    for a in &c.args[3..] {
        let s = ev.eval_string(a)?;
        if !is_valid_label_name(&s) {
            return Err(EvalError::exec(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(EvalError::exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let v = ev.eval_vector(&c.args[0], g)?;
    let StepVector { series, hold } = v;
    let mut out = Vec::with_capacity(series.len());
    for mut s in series {
        let joined = srcs
            .iter()
            .map(|l| s.labels.get(l).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        let mut b = s.labels.builder();
        if joined.is_empty() {
            b.del(&dst);
        } else {
            b.set(dst.clone(), joined);
        }
        s.labels = b.build();
        out.push(s);
    }
    drop(hold);
    let out = merge_same_labels(out, g.len)?;
    ev.vector(out)
}

fn histogram_quantile<'q>(
    ev: &'q Evaluator<'q>,
    c: &'q Call,
    g: Grid,
) -> Result<StepVector, EvalError> {
    let q = ev.eval_scalar(&c.args[0], g)?;
    for &qv in &q {
        if qv.is_nan() || !(0.0..=1.0).contains(&qv) {
            ev.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                GoFloat(qv, FloatFormat::G)
            ));
            break;
        }
    }
    let v = ev.eval_vector(&c.args[1], g)?;
    // Group bucket series by their labels without `le` (name included).
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut members: Vec<Vec<(f64, usize)>> = Vec::new();
    for (idx, s) in v.series.iter().enumerate() {
        let le = s.labels.get("le").unwrap_or("");
        let Some(upper) = super::gomath::go_parse_float(le) else {
            ev.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {} for metric name {}",
                vigil_model::gofmt::quote(le),
                vigil_model::gofmt::quote(s.labels.metric_name().unwrap_or(""))
            ));
            continue;
        };
        let key = s.labels.without(&["le"]);
        let gi = match groups.get(&key) {
            Some(&gi) => gi,
            None => {
                let gi = group_labels.len();
                group_labels.push(key.without(&[METRIC_NAME]));
                groups.insert(key, gi);
                members.push(Vec::new());
                gi
            }
        };
        members[gi].push((upper, idx));
    }
    let mut out: Vec<StepSeries> = group_labels
        .into_iter()
        .map(|l| StepSeries::new(l, g.len))
        .collect();
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (gi, mem) in members.iter().enumerate() {
        for (i, &qi) in q.iter().enumerate().take(g.len) {
            buckets.clear();
            for &(upper, idx) in mem {
                let x = v.series[idx].vals[i];
                if is_present(x) {
                    buckets.push((upper, x));
                }
            }
            if buckets.is_empty() {
                continue;
            }
            let (res, _forced) = bucket_quantile(qi, &mut buckets);
            out[gi].vals[i] = res;
        }
    }
    drop(v);
    out.retain(|s| !s.is_empty());
    let out = merge_same_labels(out, g.len)?;
    ev.vector(out)
}
