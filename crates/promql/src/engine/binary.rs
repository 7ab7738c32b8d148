//! Binary operators: arithmetic, comparisons (with and without `bool`), set
//! operators and vector matching (`on`/`ignoring`, `group_left`/
//! `group_right`), with Prometheus's rules for which labels survive and its
//! many-to-many and duplicate errors.
//!
//! Matching signatures are computed once per series, not per step; the step
//! loop then only compares small integers.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_model::{Labels, METRIC_NAME};

use crate::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};

use super::eval::{dup_error, Dup, Evaluator, Lazy, Src};
use super::types::{is_present, Grid, StepSeries, StepVector, Val, ABSENT};
use super::EvalError;

/// Whether the operator removes `__name__` from its result.
fn drops_name(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Atan2
    )
}

/// `vectorElemBinop`: the value and whether a comparison keeps the sample.
#[inline]
fn elem(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eql => (l, l == r),
        BinaryOp::Neq => (l, l != r),
        BinaryOp::Gtr => (l, l > r),
        BinaryOp::Lss => (l, l < r),
        BinaryOp::Gte => (l, l >= r),
        BinaryOp::Lte => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (f64::NAN, false),
    }
}

fn scalar_op(op: BinaryOp, l: f64, r: f64) -> f64 {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    match op {
        BinaryOp::Eql => b(l == r),
        BinaryOp::Neq => b(l != r),
        BinaryOp::Gtr => b(l > r),
        BinaryOp::Lss => b(l < r),
        BinaryOp::Gte => b(l >= r),
        BinaryOp::Lte => b(l <= r),
        _ => elem(op, l, r).0,
    }
}

pub fn eval_binary<'q>(
    ev: &'q Evaluator<'q>,
    b: &'q BinaryExpr,
    g: Grid,
) -> Result<Src<'q>, EvalError> {
    let lt = b.lhs.value_type();
    let rt = b.rhs.value_type();
    use crate::ast::ValueType::{Scalar, Vector};
    match (lt, rt) {
        (Scalar, Scalar) => {
            let l = ev.eval_scalar(&b.lhs, g)?;
            let r = ev.eval_scalar(&b.rhs, g)?;
            Ok(Src::Val(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(x, y)| scalar_op(b.op, *x, *y))
                    .collect(),
            )))
        }
        (Vector, Scalar) => {
            let v = ev.eval_src(&b.lhs, g)?;
            let s = ev.eval_scalar(&b.rhs, g)?;
            vector_scalar(ev, b.op, v, s, false, b.return_bool, g)
        }
        (Scalar, Vector) => {
            let s = ev.eval_scalar(&b.lhs, g)?;
            let v = ev.eval_src(&b.rhs, g)?;
            vector_scalar(ev, b.op, v, s, true, b.return_bool, g)
        }
        _ => {
            let default_matching;
            let matching = match &b.matching {
                Some(m) => m,
                None => {
                    default_matching = VectorMatching {
                        card: if b.op.is_set() {
                            Cardinality::ManyToMany
                        } else {
                            Cardinality::OneToOne
                        },
                        matching_labels: Vec::new(),
                        on: false,
                        include: Vec::new(),
                    };
                    &default_matching
                }
            };
            let l = ev.eval_vector(&b.lhs, g)?;
            let r = ev.eval_vector(&b.rhs, g)?;
            let out = if b.op.is_set() {
                set_op(b.op, &l, &r, matching, g)?
            } else {
                vector_vector(b.op, &l, &r, matching, b.return_bool, g)?
            };
            drop(l);
            drop(r);
            Ok(Src::Val(Val::Vector(ev.vector(out)?)))
        }
    }
}

fn vector_scalar<'q>(
    ev: &'q Evaluator<'q>,
    op: BinaryOp,
    v: Src<'q>,
    s: Vec<f64>,
    swap: bool,
    return_bool: bool,
    g: Grid,
) -> Result<Src<'q>, EvalError> {
    let drop_name = drops_name(op) || return_bool;
    let s = Arc::new(s);
    let apply = move |mut ser: StepSeries| -> Option<StepSeries> {
        if drop_name {
            ser.labels = ser.labels.without_metric_name();
        }
        let mut any = false;
        for (i, x) in ser.vals.iter_mut().enumerate() {
            if !is_present(*x) {
                continue;
            }
            let (l, r) = if swap { (s[i], *x) } else { (*x, s[i]) };
            let (mut val, mut keep) = elem(op, l, r);
            if op.is_comparison() && swap {
                val = r;
            }
            if return_bool {
                val = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if keep {
                *x = val;
                any = true;
            } else {
                *x = ABSENT;
            }
        }
        any.then_some(ser)
    };
    match v {
        Src::Lazy(l) if l.dup == Dup::Unique => {
            let unique = !drop_name || l.name_fixed;
            let name_fixed = drop_name || l.name_fixed;
            let l = ev.map_lazy(l, apply);
            Ok(Src::Lazy(Lazy {
                dup: if unique { Dup::Unique } else { Dup::PerStep },
                name_fixed,
                ..l
            }))
        }
        v => {
            let vec = match v {
                Src::Lazy(l) => ev.materialize(l, g)?,
                Src::Val(Val::Vector(v)) => v,
                Src::Val(_) => return Err(EvalError::Internal("expected instant vector".into())),
            };
            let StepVector { series, hold } = vec;
            let out: Vec<StepSeries> = series.into_iter().filter_map(apply).collect();
            drop(hold);
            let out = if drop_name {
                super::eval::merge_same_labels(out, g.len)?
            } else {
                out
            };
            Ok(Src::Val(Val::Vector(ev.vector(out)?)))
        }
    }
}

/// Interns matching signatures so the step loops compare integers.
struct Signatures {
    ids: HashMap<Vec<u8>, u32>,
}

impl Signatures {
    fn new() -> Self {
        Signatures {
            ids: HashMap::new(),
        }
    }

    fn id(&mut self, labels: &Labels, m: &VectorMatching) -> u32 {
        let mut key = Vec::new();
        for l in labels {
            let listed = m.matching_labels.contains(&l.name);
            let take = if m.on {
                listed
            } else {
                !listed && l.name != METRIC_NAME
            };
            if take {
                key.extend_from_slice(l.name.as_bytes());
                key.push(0xff);
                key.extend_from_slice(l.value.as_bytes());
                key.push(0xff);
            }
        }
        let n = self.ids.len() as u32;
        *self.ids.entry(key).or_insert(n)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

fn present_counts(v: &StepVector, len: usize) -> Vec<u32> {
    let mut c = vec![0u32; len];
    for s in &v.series {
        for (i, x) in s.vals.iter().enumerate() {
            if is_present(*x) {
                c[i] += 1;
            }
        }
    }
    c
}

/// `labels.MatchLabels`: the labels a matching clause looks at.
fn match_labels(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        l.keep_only(&m.matching_labels)
    } else {
        let mut names: Vec<&str> = m.matching_labels.iter().map(String::as_str).collect();
        names.push(METRIC_NAME);
        l.without(&names)
    }
}

fn result_labels(
    op: BinaryOp,
    ls: &Labels,
    rs: &Labels,
    m: &VectorMatching,
    return_bool: bool,
) -> Labels {
    let mut b = ls.builder();
    if drops_name(op) {
        b.del(METRIC_NAME);
    }
    let mut out = if m.card == Cardinality::OneToOne {
        let base = b.build();
        if m.on {
            base.keep_only(&m.matching_labels)
        } else {
            base.without(&m.matching_labels)
        }
    } else {
        b.build()
    };
    if !m.include.is_empty() {
        let mut b = out.builder();
        for ln in &m.include {
            match rs.get(ln) {
                Some(v) if !v.is_empty() => {
                    b.set(ln.clone(), v.to_string());
                }
                _ => {
                    b.del(ln);
                }
            }
        }
        out = b.build();
    }
    if return_bool {
        out = out.without_metric_name();
    }
    out
}

fn vector_vector(
    op: BinaryOp,
    lhs: &StepVector,
    rhs: &StepVector,
    m: &VectorMatching,
    return_bool: bool,
    g: Grid,
) -> Result<Vec<StepSeries>, EvalError> {
    let swap = m.card == Cardinality::OneToMany;
    let (many, one) = if swap { (rhs, lhs) } else { (lhs, rhs) };
    let mut sigs = Signatures::new();
    let one_sig: Vec<u32> = one.series.iter().map(|s| sigs.id(&s.labels, m)).collect();
    let many_sig: Vec<u32> = many.series.iter().map(|s| sigs.id(&s.labels, m)).collect();
    let mut by_sig: Vec<Vec<usize>> = vec![Vec::new(); sigs.len()];
    for (j, &sg) in one_sig.iter().enumerate() {
        by_sig[sg as usize].push(j);
    }
    let multi: Vec<usize> = (0..by_sig.len()).filter(|&s| by_sig[s].len() > 1).collect();
    let many_cnt = present_counts(many, g.len);
    let one_cnt = present_counts(one, g.len);

    let mut out: Vec<StepSeries> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    let mut pair_cache: HashMap<(usize, usize), usize> = HashMap::new();
    // Step and signature of the last write to each output series.
    let mut last_write: Vec<(usize, u32)> = Vec::new();
    let mut matched_step: Vec<usize> = vec![usize::MAX; sigs.len()];

    for i in 0..g.len {
        if many_cnt[i] == 0 || one_cnt[i] == 0 {
            continue;
        }
        // The "one" side must be unique per signature at every step.
        for &sg in &multi {
            let mut first: Option<usize> = None;
            for &j in &by_sig[sg] {
                if is_present(one.series[j].vals[i]) {
                    if let Some(f) = first {
                        let side = if swap { "left" } else { "right" };
                        let cur = &one.series[j].labels;
                        return Err(EvalError::exec(format!(
                            "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                            match_labels(cur, m),
                            side,
                            cur,
                            one.series[f].labels
                        )));
                    }
                    first = Some(j);
                }
            }
        }
        let mut pending_dup = false;
        for (k, ms) in many.series.iter().enumerate() {
            let mv = ms.vals[i];
            if !is_present(mv) {
                continue;
            }
            let sg = many_sig[k];
            let cands = &by_sig[sg as usize];
            let Some(&j) = cands.iter().find(|&&j| is_present(one.series[j].vals[i])) else {
                continue;
            };
            let ov = one.series[j].vals[i];
            let (fl, fr) = if swap { (ov, mv) } else { (mv, ov) };
            let (mut val, keep) = elem(op, fl, fr);
            if return_bool {
                val = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            if m.card == Cardinality::OneToOne {
                if matched_step[sg as usize] == i {
                    return Err(EvalError::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                matched_step[sg as usize] = i;
            }
            let o = match pair_cache.get(&(k, j)) {
                Some(&o) => o,
                None => {
                    let labels =
                        result_labels(op, &ms.labels, &one.series[j].labels, m, return_bool);
                    let o = match out_index.get(&labels) {
                        Some(&o) => o,
                        None => {
                            out_index.insert(labels.clone(), out.len());
                            out.push(StepSeries::new(labels, g.len));
                            last_write.push((usize::MAX, 0));
                            out.len() - 1
                        }
                    };
                    pair_cache.insert((k, j), o);
                    o
                }
            };
            if last_write[o].0 == i {
                if m.card != Cardinality::OneToOne && last_write[o].1 == sg {
                    return Err(EvalError::exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
                pending_dup = true;
                continue;
            }
            last_write[o] = (i, sg);
            out[o].vals[i] = val;
        }
        if pending_dup {
            return Err(dup_error());
        }
    }
    out.retain(|s| !s.is_empty());
    Ok(out)
}

fn set_op(
    op: BinaryOp,
    lhs: &StepVector,
    rhs: &StepVector,
    m: &VectorMatching,
    g: Grid,
) -> Result<Vec<StepSeries>, EvalError> {
    let mut sigs = Signatures::new();
    let lsig: Vec<u32> = lhs.series.iter().map(|s| sigs.id(&s.labels, m)).collect();
    let rsig: Vec<u32> = rhs.series.iter().map(|s| sigs.id(&s.labels, m)).collect();
    let lcnt = present_counts(lhs, g.len);
    let rcnt = present_counts(rhs, g.len);
    let mut stamp = vec![usize::MAX; sigs.len()];
    let mut lout: Vec<StepSeries> = lhs
        .series
        .iter()
        .map(|s| StepSeries::new(s.labels.clone(), g.len))
        .collect();
    let mut rout: Vec<StepSeries> = if op == BinaryOp::Or {
        rhs.series
            .iter()
            .map(|s| StepSeries::new(s.labels.clone(), g.len))
            .collect()
    } else {
        Vec::new()
    };
    for i in 0..g.len {
        match op {
            BinaryOp::And => {
                if lcnt[i] == 0 || rcnt[i] == 0 {
                    continue;
                }
                for (j, s) in rhs.series.iter().enumerate() {
                    if is_present(s.vals[i]) {
                        stamp[rsig[j] as usize] = i;
                    }
                }
                for (k, s) in lhs.series.iter().enumerate() {
                    if is_present(s.vals[i]) && stamp[lsig[k] as usize] == i {
                        lout[k].vals[i] = s.vals[i];
                    }
                }
            }
            BinaryOp::Unless => {
                if rcnt[i] > 0 {
                    for (j, s) in rhs.series.iter().enumerate() {
                        if is_present(s.vals[i]) {
                            stamp[rsig[j] as usize] = i;
                        }
                    }
                }
                for (k, s) in lhs.series.iter().enumerate() {
                    if is_present(s.vals[i]) && (rcnt[i] == 0 || stamp[lsig[k] as usize] != i) {
                        lout[k].vals[i] = s.vals[i];
                    }
                }
            }
            _ => {
                for (k, s) in lhs.series.iter().enumerate() {
                    if is_present(s.vals[i]) {
                        stamp[lsig[k] as usize] = i;
                        lout[k].vals[i] = s.vals[i];
                    }
                }
                for (j, s) in rhs.series.iter().enumerate() {
                    if is_present(s.vals[i]) && (lcnt[i] == 0 || stamp[rsig[j] as usize] != i) {
                        rout[j].vals[i] = s.vals[i];
                    }
                }
            }
        }
    }
    lout.append(&mut rout);
    lout.retain(|s| !s.is_empty());
    super::eval::merge_same_labels(lout, g.len)
}
