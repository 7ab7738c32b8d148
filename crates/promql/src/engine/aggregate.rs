//! Aggregation operators (`sum`, `avg`, `topk`, `count_values`, ...).
//!
//! Input series are folded into per-group, per-step accumulators one batch
//! at a time, in input order, so a lazy input is never held whole and the
//! floating-point order matches Prometheus's (Kahan `sum`, incremental
//! `avg`, Welford `stddev`). `topk`/`bottomk` reproduce Go's heap and sort so
//! ties come out in Prometheus's order.

use std::collections::HashMap;

use vigil_model::gofmt;
use vigil_model::{Labels, METRIC_NAME};

use crate::ast::{AggregateExpr, AggregateOp};

use super::eval::{Dup, Evaluator, LabelsFrom, Src};
use super::functions::{go_reverse_sort, is_valid_label_name};
use super::gomath::kahan_sum_inc;
use super::range_fns::quantile;
use super::types::{is_absent, is_present, Grid, StepSeries, StepVector, Val, ABSENT};
use super::EvalError;
use vigil_model::gofmt::{format_float, FloatFormat, GoFloat};

/// The output labels of the group a series falls into.
fn grouping_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    Labels::from_sorted(group_subset(l, grouping, without, false).cloned().collect())
}

/// The labels of `l` that decide its group (`drop_name`: treat `__name__`
/// as absent).
fn group_subset<'a>(
    l: &'a Labels,
    grouping: &'a [String],
    without: bool,
    drop_name: bool,
) -> impl Iterator<Item = &'a vigil_model::Label> + 'a {
    l.iter().filter(move |lb| {
        if lb.name == METRIC_NAME && (drop_name || without) {
            return false;
        }
        let listed = grouping.contains(&lb.name);
        listed != without
    })
}

/// FNV-1a over the grouping labels: cheap, and collisions are resolved by
/// comparing the labels themselves.
fn group_hash<'a>(it: impl Iterator<Item = &'a vigil_model::Label>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for l in it {
        eat(l.name.as_bytes());
        eat(l.value.as_bytes());
    }
    h
}

struct Group {
    labels: Labels,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    lists: Vec<Vec<f64>>,
    heaps: Vec<Vec<(f64, u32)>>,
}

struct Aggregator {
    op: AggregateOp,
    len: usize,
    grouping: Vec<String>,
    without: bool,
    /// k per step for topk/bottomk (None: no output at that step).
    k: Vec<Option<usize>>,
    groups: Vec<Group>,
    index: HashMap<u64, Vec<usize>>,
    /// Labels of every input series (topk/bottomk only).
    inputs: Vec<Labels>,
}

fn topk_less(op: AggregateOp) -> fn(f64, f64) -> bool {
    if op == AggregateOp::Topk {
        |a, b| a.is_nan() || a < b
    } else {
        |a, b| a.is_nan() || a > b
    }
}

/// Go's `container/heap` primitives over `(value, series)` with `less`.
fn heap_up(h: &mut [(f64, u32)], mut j: usize, less: fn(f64, f64) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].0, h[i].0) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [(f64, u32)], i0: usize, less: fn(f64, f64) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(h[j2].0, h[j1].0) {
            j = j2;
        }
        if !less(h[j].0, h[i].0) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

impl Aggregator {
    fn group_of(&mut self, labels: &Labels, drop_name: bool) -> usize {
        let subset = || group_subset(labels, &self.grouping, self.without, drop_name);
        let h = group_hash(subset());
        if let Some(cands) = self.index.get(&h) {
            for &gi in cands {
                if self.groups[gi].labels.iter().eq(subset()) {
                    return gi;
                }
            }
        }
        let key = Labels::from_sorted(subset().cloned().collect());
        let gi = self.groups.len();
        let len = self.len;
        let (a, b, c, lists, heaps) = match self.op {
            AggregateOp::Sum | AggregateOp::Avg => {
                (vec![ABSENT; len], vec![0.0; len], vec![], vec![], vec![])
            }
            AggregateOp::Stddev | AggregateOp::Stdvar => (
                vec![ABSENT; len],
                vec![0.0; len],
                vec![0.0; len],
                vec![],
                vec![],
            ),
            AggregateOp::Quantile => (vec![], vec![], vec![], vec![Vec::new(); len], vec![]),
            AggregateOp::Topk | AggregateOp::Bottomk => {
                (vec![], vec![], vec![], vec![], vec![Vec::new(); len])
            }
            _ => (vec![ABSENT; len], vec![], vec![], vec![], vec![]),
        };
        self.groups.push(Group {
            labels: key.clone(),
            a,
            b,
            c,
            lists,
            heaps,
        });
        self.index.entry(h).or_default().push(gi);
        gi
    }

    /// Folds one input series. `labels` (minus `__name__` when `drop_name`)
    /// are its labels; `owned` makes a copy for `topk`/`bottomk` output.
    fn add(
        &mut self,
        labels: &Labels,
        drop_name: bool,
        vals: &[f64],
        owned: impl FnOnce() -> Labels,
    ) {
        let gi = self.group_of(labels, drop_name);
        let op = self.op;
        let sid = self.inputs.len() as u32;
        let g = &mut self.groups[gi];
        for (i, &f) in vals.iter().enumerate() {
            if is_absent(f) {
                continue;
            }
            match op {
                AggregateOp::Sum => {
                    if is_absent(g.a[i]) {
                        g.a[i] = f;
                    } else {
                        (g.a[i], g.b[i]) = kahan_sum_inc(f, g.a[i], g.b[i]);
                    }
                }
                AggregateOp::Avg => {
                    if is_absent(g.a[i]) {
                        g.a[i] = f;
                        g.b[i] = 1.0;
                        continue;
                    }
                    g.b[i] += 1.0;
                    let mean = g.a[i];
                    if mean.is_infinite() {
                        if f.is_infinite() && (mean > 0.0) == (f > 0.0) {
                            continue;
                        }
                        if !f.is_infinite() && !f.is_nan() {
                            continue;
                        }
                    }
                    let n = g.b[i];
                    g.a[i] = mean + (f / n - mean / n);
                }
                AggregateOp::Count => {
                    g.a[i] = if is_absent(g.a[i]) { 1.0 } else { g.a[i] + 1.0 };
                }
                AggregateOp::Group => g.a[i] = 1.0,
                AggregateOp::Max => {
                    if is_absent(g.a[i]) || g.a[i] < f || g.a[i].is_nan() {
                        g.a[i] = f;
                    }
                }
                AggregateOp::Min => {
                    if is_absent(g.a[i]) || g.a[i] > f || g.a[i].is_nan() {
                        g.a[i] = f;
                    }
                }
                AggregateOp::Stddev | AggregateOp::Stdvar => {
                    if is_absent(g.a[i]) {
                        // A lone NaN or Inf has no defined deviation.
                        g.a[i] = if f.is_nan() || f.is_infinite() {
                            f64::NAN
                        } else {
                            0.0
                        };
                        g.b[i] = f;
                        g.c[i] = 1.0;
                        continue;
                    }
                    g.c[i] += 1.0;
                    let delta = f - g.b[i];
                    g.b[i] += delta / g.c[i];
                    g.a[i] += delta * (f - g.b[i]);
                }
                AggregateOp::Quantile => g.lists[i].push(f),
                AggregateOp::Topk | AggregateOp::Bottomk => {
                    let Some(k) = self.k[i] else { continue };
                    let less = topk_less(op);
                    let h = &mut g.heaps[i];
                    if h.len() < k {
                        h.push((f, sid));
                        let last = h.len() - 1;
                        heap_up(h, last, less);
                    } else {
                        let top = h[0].0;
                        let replace = if op == AggregateOp::Topk {
                            top < f || (top.is_nan() && !f.is_nan())
                        } else {
                            top > f || (top.is_nan() && !f.is_nan())
                        };
                        if replace {
                            h[0] = (f, sid);
                            if k > 1 && !heap_down(h, 0, less) {
                                heap_up(h, 0, less);
                            }
                        }
                    }
                }
                AggregateOp::CountValues => {}
            }
        }
        if matches!(op, AggregateOp::Topk | AggregateOp::Bottomk) {
            self.inputs.push(owned());
        }
    }

    fn finish(self, q: &[f64]) -> Vec<StepSeries> {
        let op = self.op;
        let len = self.len;
        if matches!(op, AggregateOp::Topk | AggregateOp::Bottomk) {
            let less = topk_less(op);
            let mut out: Vec<StepSeries> = Vec::new();
            if len == 1 {
                for mut g in self.groups {
                    let h = &mut g.heaps[0];
                    go_reverse_sort(h, |a, b| less(a.0, b.0));
                    for &(v, sid) in h.iter() {
                        out.push(StepSeries {
                            labels: self.inputs[sid as usize].clone(),
                            vals: vec![v],
                        });
                    }
                }
                return out;
            }
            let mut by_input: HashMap<u32, usize> = HashMap::new();
            for g in &self.groups {
                for (i, h) in g.heaps.iter().enumerate() {
                    for &(v, sid) in h {
                        let o = *by_input.entry(sid).or_insert_with(|| {
                            out.push(StepSeries::new(self.inputs[sid as usize].clone(), len));
                            out.len() - 1
                        });
                        out[o].vals[i] = v;
                    }
                }
            }
            return out;
        }
        let mut out = Vec::with_capacity(self.groups.len());
        for mut g in self.groups {
            let vals = match op {
                AggregateOp::Sum => {
                    for i in 0..len {
                        if is_present(g.a[i]) {
                            g.a[i] += g.b[i];
                        }
                    }
                    g.a
                }
                AggregateOp::Stdvar | AggregateOp::Stddev => {
                    for i in 0..len {
                        if is_present(g.a[i]) {
                            let v = g.a[i] / g.c[i];
                            g.a[i] = if op == AggregateOp::Stddev {
                                v.sqrt()
                            } else {
                                v
                            };
                        }
                    }
                    g.a
                }
                AggregateOp::Quantile => g
                    .lists
                    .iter_mut()
                    .enumerate()
                    .map(|(i, l)| {
                        if l.is_empty() {
                            ABSENT
                        } else {
                            quantile(q[i], l)
                        }
                    })
                    .collect(),
                _ => g.a,
            };
            let s = StepSeries {
                labels: g.labels,
                vals,
            };
            if !s.is_empty() {
                out.push(s);
            }
        }
        out
    }
}

fn convertible_to_i64(v: f64) -> bool {
    (-9_223_372_036_854_775_808.0..=9_223_372_036_854_774_784.0).contains(&v)
}

pub fn eval_aggregate<'q>(
    ev: &'q Evaluator<'q>,
    a: &'q AggregateExpr,
    g: Grid,
) -> Result<StepVector, EvalError> {
    let mut grouping = a.grouping.clone();
    grouping.sort();
    if a.op == AggregateOp::CountValues {
        let Some(p) = &a.param else {
            return Err(EvalError::Internal("count_values without label".into()));
        };
        let label = ev.eval_string(p)?;
        if !is_valid_label_name(&label) {
            return Err(EvalError::exec(format!(
                "invalid label name {}",
                gofmt::quote(&gofmt::quote(&label))
            )));
        }
        return count_values(ev, a, &label, grouping, g);
    }
    // Prometheus 2.53 evaluates the parameter once and uses its value at
    // the first step for the whole range.
    let param = match (&a.param, a.op) {
        (Some(p), AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile) => {
            let v = ev.eval_scalar(p, g)?;
            vec![v.first().copied().unwrap_or(f64::NAN); g.len]
        }
        _ => Vec::new(),
    };
    let mut k = Vec::new();
    if matches!(a.op, AggregateOp::Topk | AggregateOp::Bottomk) {
        for &p in &param {
            if !convertible_to_i64(p) {
                return Err(EvalError::exec(format!(
                    "Scalar value {} overflows int64",
                    GoFloat(p, FloatFormat::G)
                )));
            }
            let kk = p as i64;
            k.push(if kk < 1 {
                None
            } else {
                Some(usize::try_from(kk).unwrap_or(usize::MAX))
            });
        }
    }
    if a.op == AggregateOp::Quantile {
        if let Some(q) = param.iter().find(|q| q.is_nan() || **q < 0.0 || **q > 1.0) {
            ev.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                GoFloat(*q, FloatFormat::G)
            ));
        }
    }
    let mut agg = Aggregator {
        op: a.op,
        len: g.len,
        grouping,
        without: a.without,
        k,
        groups: Vec::new(),
        index: HashMap::new(),
        inputs: Vec::new(),
    };
    match ev.eval_src(&a.expr, g)? {
        Src::Lazy(l) if l.dup == Dup::Unique => {
            let from = l.labels;
            ev.for_each_batch(&l, g, |chunk, batch| {
                for (src, s) in chunk.iter().zip(batch) {
                    let Some(s) = s else { continue };
                    match from {
                        LabelsFrom::Produced => {
                            let StepSeries { labels, vals } = s;
                            agg.add(&labels, false, &vals, || labels.clone());
                        }
                        LabelsFrom::Storage | LabelsFrom::StorageWithoutName => {
                            let src = src.as_ref();
                            agg.add(
                                src.labels(),
                                from == LabelsFrom::StorageWithoutName,
                                &s.vals,
                                || from.fill(src, Labels::empty()),
                            );
                        }
                    }
                }
                Ok(())
            })?;
        }
        Src::Lazy(l) => {
            let v = ev.materialize(l, g)?;
            let StepVector { series, hold } = v;
            for s in series {
                agg.add(&s.labels, false, &s.vals, || s.labels.clone());
            }
            drop(hold);
        }
        Src::Val(Val::Vector(v)) => {
            let StepVector { series, hold } = v;
            for s in series {
                agg.add(&s.labels, false, &s.vals, || s.labels.clone());
            }
            drop(hold);
        }
        Src::Val(_) => return Err(EvalError::Internal("aggregation over non-vector".into())),
    }
    let out = agg.finish(&param);
    ev.vector(out)
}

fn count_values<'q>(
    ev: &'q Evaluator<'q>,
    a: &'q AggregateExpr,
    label: &str,
    mut grouping: Vec<String>,
    g: Grid,
) -> Result<StepVector, EvalError> {
    if !a.without {
        grouping.push(label.to_string());
        grouping.sort();
    }
    let v = ev.eval_vector(&a.expr, g)?;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<StepSeries> = Vec::new();
    for s in &v.series {
        for (i, &f) in s.vals.iter().enumerate() {
            if is_absent(f) {
                continue;
            }
            let mut b = s.labels.builder();
            b.set(label.to_string(), format_float(f, FloatFormat::F));
            let metric = b.build();
            let key = grouping_labels(&metric, &grouping, a.without);
            let o = match index.get(&key) {
                Some(&o) => o,
                None => {
                    index.insert(key.clone(), out.len());
                    out.push(StepSeries::new(key, g.len));
                    out.len() - 1
                }
            };
            let slot = &mut out[o].vals[i];
            *slot = if is_absent(*slot) { 1.0 } else { *slot + 1.0 };
        }
    }
    drop(v);
    ev.vector(out)
}
