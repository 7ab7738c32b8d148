//! Range-vector functions (`rate`, `*_over_time`, ...) evaluated for every
//! step of a grid over one series' samples.
//!
//! The caller hands in a series' samples once (stale markers removed, time
//! ordered); windows `[end - range, end]` (closed on both sides, as in
//! Prometheus 2.x) slide forward with two pointers, so a series is never
//! re-read per step. Functions whose answer is order-sensitive in floating
//! point (`sum_over_time`'s Kahan sum, `rate`'s reset corrections) add in
//! exactly Prometheus's order.

use vigil_model::gofmt::format_f;
use vigil_model::Sample;

use super::gomath::{kahan_sum_inc, kahan_sum_inc_unguarded};
use super::EvalError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Changes,
    Resets,
    Deriv,
    PredictLinear,
    HoltWinters,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    LastOverTime,
    PresentOverTime,
    AbsentOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    MadOverTime,
}

impl RangeFn {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "changes" => RangeFn::Changes,
            "resets" => RangeFn::Resets,
            "deriv" => RangeFn::Deriv,
            "predict_linear" => RangeFn::PredictLinear,
            "holt_winters" | "double_exponential_smoothing" => RangeFn::HoltWinters,
            "avg_over_time" => RangeFn::AvgOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "absent_over_time" => RangeFn::AbsentOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            "mad_over_time" => RangeFn::MadOverTime,
            _ => return None,
        })
    }

    /// Position of the range-vector argument.
    pub fn matrix_arg(self) -> usize {
        match self {
            RangeFn::QuantileOverTime => 1,
            _ => 0,
        }
    }

    /// `last_over_time` acts like an offset and keeps `__name__`.
    pub fn keeps_name(self) -> bool {
        self == RangeFn::LastOverTime
    }
}

/// Where the windows are: for step `i` the window is
/// `[ends[i] - range, ends[i]]`; `eval_ts[i]` is the step's evaluation time.
pub struct Windows<'a> {
    pub ends: &'a [i64],
    pub eval_ts: &'a [i64],
    pub range: i64,
    /// Scalar arguments per step, in argument order without the matrix one.
    pub params: &'a [Vec<f64>],
}

/// Per-series precomputation reused across steps.
#[derive(Default)]
pub struct Scratch {
    resets: Vec<usize>,
    changes_prefix: Vec<u32>,
    sort_buf: Vec<f64>,
    /// `avg_over_time` windows `(step, lo, hi)`, evaluated after the scan.
    avg_windows: Vec<(usize, usize, usize)>,
    widest: usize,
    extreme: SlidingExtreme,
}

/// `min_over_time`/`max_over_time` over windows that slide forward: a deque
/// of candidate indices, so each sample is pushed and popped once instead
/// of every window rescanning its samples. The answer is exactly the
/// sequential scan's (NaN loses to any number; among equal values the
/// earliest wins, which keeps the sign of a zero).
#[derive(Default)]
struct SlidingExtreme {
    q: std::collections::VecDeque<usize>,
    /// Samples before this index have been offered to the deque.
    pushed: usize,
    lo: usize,
}

impl SlidingExtreme {
    fn reset(&mut self) {
        self.q.clear();
        self.pushed = 0;
        self.lo = 0;
    }

    /// Index of the answer for the window `lo..hi` (non-empty).
    fn window(&mut self, samples: &[Sample], lo: usize, hi: usize, max: bool) -> usize {
        // `@` can pin windows in place or move them back: start over.
        if lo < self.lo || hi < self.pushed || self.pushed < lo {
            self.q.clear();
            self.pushed = lo;
        }
        self.lo = lo;
        while self.q.front().is_some_and(|&k| k < lo) {
            self.q.pop_front();
        }
        // `a` can never be the answer once `b` (later) is in the window.
        let loses = |a: f64, b: f64| {
            if a.is_nan() {
                !b.is_nan()
            } else if max {
                a < b
            } else {
                a > b
            }
        };
        for k in self.pushed..hi {
            let v = samples[k].v;
            while self.q.back().is_some_and(|&b| loses(samples[b].v, v)) {
                self.q.pop_back();
            }
            self.q.push_back(k);
        }
        self.pushed = hi;
        self.q.front().copied().unwrap_or(lo)
    }
}

impl Scratch {
    /// Samples in the largest window of the last `apply`.
    pub fn widest_window(&self) -> usize {
        self.widest
    }
}

/// Fills `out[i]` for every step whose window has an answer (others are
/// left as they are, i.e. absent). Returns whether any step produced a value.
pub fn apply(
    f: RangeFn,
    samples: &[Sample],
    w: &Windows<'_>,
    scratch: &mut Scratch,
    out: &mut [f64],
) -> Result<bool, EvalError> {
    scratch.widest = 0;
    scratch.extreme.reset();
    if samples.is_empty() {
        return Ok(false);
    }
    match f {
        RangeFn::Rate | RangeFn::Increase => {
            scratch.resets.clear();
            for (k, pair) in samples.windows(2).enumerate() {
                if pair[1].v < pair[0].v {
                    scratch.resets.push(k + 1);
                }
            }
        }
        RangeFn::Changes => {
            scratch.changes_prefix.clear();
            scratch.changes_prefix.push(0);
            let mut acc = 0u32;
            for k in 1..samples.len() {
                let (p, c) = (samples[k - 1].v, samples[k].v);
                if c != p && !(c.is_nan() && p.is_nan()) {
                    acc += 1;
                }
                scratch.changes_prefix.push(acc);
            }
        }
        RangeFn::Resets => {
            scratch.changes_prefix.clear();
            scratch.changes_prefix.push(0);
            let mut acc = 0u32;
            for k in 1..samples.len() {
                if samples[k].v < samples[k - 1].v {
                    acc += 1;
                }
                scratch.changes_prefix.push(acc);
            }
        }
        _ => {}
    }
    let mut any = false;
    // The commonest range functions get loops of their own, free of the
    // per-window dispatch below.
    if let RangeFn::Rate | RangeFn::Increase | RangeFn::Delta = f {
        let spec = RateSpec {
            range_secs: range_seconds(w.range),
            is_counter: f != RangeFn::Delta,
            is_rate: f == RangeFn::Rate,
        };
        let mut memo = RateMemo::default();
        let mut cursor = Cursor::default();
        for (i, &end) in w.ends.iter().enumerate() {
            let Some(span) = cursor.advance(samples, end - w.range, end) else {
                continue;
            };
            scratch.widest = scratch.widest.max(span.hi - span.lo);
            if let Some(v) = memo.rate(samples, span, spec, &scratch.resets) {
                out[i] = v;
                any = true;
            }
        }
        return Ok(any);
    }
    if f == RangeFn::AvgOverTime {
        scratch.avg_windows.clear();
        let mut cursor = Cursor::default();
        for (i, &end) in w.ends.iter().enumerate() {
            let Some(span) = cursor.advance(samples, end - w.range, end) else {
                continue;
            };
            scratch.widest = scratch.widest.max(span.hi - span.lo);
            scratch.avg_windows.push((i, span.lo, span.hi));
        }
        avg_over_time_windows(samples, &scratch.avg_windows, out);
        return Ok(!scratch.avg_windows.is_empty());
    }
    let mut cursor = Cursor::default();
    for (i, &end) in w.ends.iter().enumerate() {
        let Some(Span { lo, hi, .. }) = cursor.advance(samples, end - w.range, end) else {
            continue;
        };
        scratch.widest = scratch.widest.max(hi - lo);
        let win = &samples[lo..hi];
        let v = match f {
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta | RangeFn::AvgOverTime => {
                unreachable!("handled above")
            }
            RangeFn::Irate | RangeFn::Idelta => instant_value(win, f == RangeFn::Irate),
            RangeFn::Changes | RangeFn::Resets => {
                Some((scratch.changes_prefix[hi - 1] - scratch.changes_prefix[lo]) as f64)
            }
            RangeFn::Deriv => {
                if win.len() < 2 {
                    None
                } else {
                    Some(linear_regression(win, win[0].t).0)
                }
            }
            RangeFn::PredictLinear => {
                if win.len() < 2 {
                    None
                } else {
                    let duration = w.params[0][i];
                    let (slope, intercept) = linear_regression(win, w.eval_ts[i]);
                    Some(slope * duration + intercept)
                }
            }
            RangeFn::HoltWinters => holt_winters(win, w.params[0][i], w.params[1][i])?,
            RangeFn::SumOverTime => {
                let (mut sum, mut c) = (0.0, 0.0);
                for s in win {
                    (sum, c) = kahan_sum_inc(s.v, sum, c);
                }
                Some(if sum.is_infinite() { sum } else { sum + c })
            }
            RangeFn::CountOverTime => Some(win.len() as f64),
            RangeFn::MinOverTime | RangeFn::MaxOverTime => {
                let k = scratch
                    .extreme
                    .window(samples, lo, hi, f == RangeFn::MaxOverTime);
                Some(samples[k].v)
            }
            RangeFn::LastOverTime => Some(win[win.len() - 1].v),
            RangeFn::PresentOverTime | RangeFn::AbsentOverTime => Some(1.0),
            RangeFn::StddevOverTime => Some(stdvar_over_time(win).sqrt()),
            RangeFn::StdvarOverTime => Some(stdvar_over_time(win)),
            RangeFn::QuantileOverTime => {
                let q = w.params[0][i];
                scratch.sort_buf.clear();
                scratch.sort_buf.extend(win.iter().map(|s| s.v));
                Some(quantile(q, &mut scratch.sort_buf))
            }
            RangeFn::MadOverTime => {
                scratch.sort_buf.clear();
                scratch.sort_buf.extend(win.iter().map(|s| s.v));
                let median = quantile(0.5, &mut scratch.sort_buf);
                scratch.sort_buf.clear();
                scratch
                    .sort_buf
                    .extend(win.iter().map(|s| (s.v - median).abs()));
                Some(quantile(0.5, &mut scratch.sort_buf))
            }
        };
        if let Some(v) = v {
            out[i] = v;
            any = true;
        }
    }
    Ok(any)
}

/// The sample window `lo..hi` of successive steps.
#[derive(Default)]
struct Cursor {
    lo: usize,
    hi: usize,
}

impl Cursor {
    /// Moves to the window `[start, end]`; `None` if it holds no sample.
    #[inline(always)]
    fn advance(&mut self, samples: &[Sample], start: i64, end: i64) -> Option<Span> {
        let n = samples.len();
        let (mut lo, mut hi) = (self.lo, self.hi);
        // Windows only move forward, except that `@` pins them in place.
        if lo > 0 && samples[lo - 1].t >= start {
            lo = samples[..lo].partition_point(|s| s.t < start);
        }
        while lo < n && samples[lo].t < start {
            lo += 1;
        }
        if hi < lo {
            hi = lo;
        }
        if hi > 0 && samples[hi - 1].t > end {
            hi = samples[..hi].partition_point(|s| s.t <= end);
        }
        while hi < n && samples[hi].t <= end {
            hi += 1;
        }
        (self.lo, self.hi) = (lo, hi);
        (hi > lo).then_some(Span { lo, hi, start, end })
    }
}

/// `range` as Go's `Duration.Seconds()` computes it.
fn range_seconds(range_ms: i64) -> f64 {
    let sec = range_ms / 1000;
    let nsec = (range_ms % 1000) * 1_000_000;
    sec as f64 + nsec as f64 / 1e9
}

/// A window: samples `lo..hi`, bounds `[start, end]` in milliseconds.
#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    hi: usize,
    start: i64,
    end: i64,
}

/// Which of `rate`, `increase` and `delta`, and the range in seconds.
#[derive(Clone, Copy)]
struct RateSpec {
    range_secs: f64,
    /// `rate`/`increase`: resets add back, and extrapolation stops at zero.
    is_counter: bool,
    /// `rate`: per second.
    is_rate: bool,
}

/// The extrapolation factor of the last `rate`/`increase`/`delta` window,
/// by what it depends on: the window's offsets from its bounds, its sample
/// span and count. Regularly spaced samples give every window the same,
/// so its seven divisions are done once per series instead of once per
/// step. The factor is reused only where `extrapolated_rate` would not
/// extrapolate towards zero, so every result is that function's, bit for
/// bit.
#[derive(Default)]
struct RateMemo {
    /// (first - start, end - last, last - first, samples).
    key: Option<(i64, i64, i64, usize)>,
    factor: f64,
    /// The start extrapolation (before the zero cap) is at most the
    /// sampled interval.
    start_within_span: bool,
}

impl RateMemo {
    #[inline]
    fn rate(
        &mut self,
        samples: &[Sample],
        span: Span,
        spec: RateSpec,
        resets: &[usize],
    ) -> Option<f64> {
        let Span {
            lo,
            hi,
            start: range_start,
            end: range_end,
        } = span;
        let n = hi - lo;
        if n < 2 {
            return None;
        }
        let (first, last) = (samples[lo], samples[hi - 1]);
        let key = (
            first.t - range_start,
            range_end - last.t,
            last.t - first.t,
            n,
        );
        if self.key != Some(key) {
            let sampled = key.2 as f64 / 1000.0;
            let avg = sampled / (n - 1) as f64;
            let threshold = avg * 1.1;
            let (mut to_start, mut to_end) = (key.0 as f64 / 1000.0, key.1 as f64 / 1000.0);
            if to_start >= threshold {
                to_start = avg / 2.0;
            }
            if to_end >= threshold {
                to_end = avg / 2.0;
            }
            let mut extrapolate_to = sampled;
            extrapolate_to += to_start;
            extrapolate_to += to_end;
            let mut factor = extrapolate_to / sampled;
            if spec.is_rate {
                factor /= spec.range_secs;
            }
            *self = RateMemo {
                key: Some(key),
                factor,
                start_within_span: to_start <= sampled,
            };
        }
        let result = raw_change(samples, lo, hi, spec.is_counter, resets);
        if spec.is_counter {
            // The zero cap applies only if `sampled * (first / result)`
            // could be below the start extrapolation; with first >= result
            // it is at least `sampled` (rounding is monotonic).
            if result > 0.0 && first.v >= 0.0 && !(first.v >= result && self.start_within_span) {
                return extrapolated_rate(samples, span, spec, result);
            }
        }
        Some(result * self.factor)
    }
}

/// Last minus first sample of the window `lo..hi`, plus for counters the
/// value before each reset (`resets`: indices whose value dropped).
fn raw_change(samples: &[Sample], lo: usize, hi: usize, is_counter: bool, resets: &[usize]) -> f64 {
    let mut result = samples[hi - 1].v - samples[lo].v;
    if is_counter {
        let from = resets.partition_point(|&k| k <= lo);
        for &k in &resets[from..] {
            if k >= hi {
                break;
            }
            result += samples[k - 1].v;
        }
    }
    result
}

/// Prometheus's `extrapolatedRate` for the window `lo..hi` (at least two
/// samples) whose raw change is `result`.
fn extrapolated_rate(samples: &[Sample], span: Span, spec: RateSpec, result: f64) -> Option<f64> {
    let n = span.hi - span.lo;
    if n < 2 {
        return None;
    }
    let first = samples[span.lo];
    let last = samples[span.hi - 1];
    let mut to_start = (first.t - span.start) as f64 / 1000.0;
    let mut to_end = (span.end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (n - 1) as f64;
    let threshold = avg * 1.1;
    let mut extrapolate_to = sampled;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if spec.is_counter && result > 0.0 && first.v >= 0.0 {
        // Do not extrapolate a counter below zero.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    extrapolate_to += to_start;
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    extrapolate_to += to_end;
    let mut factor = extrapolate_to / sampled;
    if spec.is_rate {
        factor /= spec.range_secs;
    }
    Some(result * factor)
}

fn instant_value(win: &[Sample], is_rate: bool) -> Option<f64> {
    if win.len() < 2 {
        return None;
    }
    let last = win[win.len() - 1];
    let prev = win[win.len() - 2];
    let mut v = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit with the intercept at `intercept_time`, Kahan-summed
/// like Prometheus's `linearRegression`.
pub fn linear_regression(win: &[Sample], intercept_time: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = win[0].v;
    let mut const_y = true;
    for (i, s) in win.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(s.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * s.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn holt_winters(win: &[Sample], sf: f64, tf: f64) -> Result<Option<f64>, EvalError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(EvalError::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            format_f(sf, 6)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(EvalError::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            format_f(tf, 6)
        )));
    }
    if win.len() < 2 {
        return Ok(None);
    }
    let mut s0 = 0.0;
    let mut s1 = win[0].v;
    let mut b = win[1].v - win[0].v;
    for (i, s) in win.iter().enumerate().skip(1) {
        let x = sf * s.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// Windows evaluated together, `AVG_LANES` at a time.
const AVG_LANES: usize = 4;

/// `avg_over_time` of many windows. Each window's mean is a chain of two
/// divisions per sample, each waiting for the last; a single chain leaves
/// the divider mostly idle. So windows advance in lockstep, one sample of
/// each per round, with exactly the operations of the one-window loop.
/// The lockstep skips that loop's infinity check, which changes nothing
/// while the mean stays finite; a lane whose mean is not finite at the end
/// is redone alone.
fn avg_over_time_windows(samples: &[Sample], windows: &[(usize, usize, usize)], out: &mut [f64]) {
    let mut groups = windows.chunks_exact(AVG_LANES);
    for group in &mut groups {
        let common = group.iter().map(|&(_, lo, hi)| hi - lo).min().unwrap_or(0);
        let mut mean = [0.0f64; AVG_LANES];
        let mut c = [0.0f64; AVG_LANES];
        let mut count = 0.0f64;
        for k in 0..common {
            count += 1.0;
            for l in 0..AVG_LANES {
                let v = samples[group[l].1 + k].v;
                (mean[l], c[l]) = kahan_sum_inc(v / count - mean[l] / count, mean[l], c[l]);
            }
        }
        for (l, &(i, lo, hi)) in group.iter().enumerate() {
            out[i] = if mean[l].is_finite() {
                avg_over_time_from(&samples[lo + common..hi], mean[l], count, c[l])
            } else {
                avg_over_time(&samples[lo..hi])
            };
        }
    }
    for &(i, lo, hi) in groups.remainder() {
        out[i] = avg_over_time(&samples[lo..hi]);
    }
}

fn avg_over_time(win: &[Sample]) -> f64 {
    avg_over_time_from(win, 0.0, 0.0, 0.0)
}

/// Prometheus's incremental mean, continued over `win` from a state.
fn avg_over_time_from(win: &[Sample], mut mean: f64, mut count: f64, mut c: f64) -> f64 {
    for s in win {
        count += 1.0;
        if mean.is_infinite() {
            if s.v.is_infinite() && (mean > 0.0) == (s.v > 0.0) {
                continue;
            }
            if !s.v.is_infinite() && !s.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(s.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

/// Welford's variance with Kahan-compensated running sums, as Prometheus.
/// The compensation is 2.53's unguarded one: an infinite input, or squared
/// deviations beyond the float range, make the variance NaN (not +Inf),
/// as in 2.42 and 2.53. Sums keep the guard (see `kahan_sum_inc`).
fn stdvar_over_time(win: &[Sample]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for s in win {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc_unguarded(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc_unguarded(delta * (s.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Prometheus's `quantile`: linear interpolation between closest ranks,
/// NaNs sorting first. Sorts `values` in place.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (0u32..6).prop_map(f64::from),
            1 => Just(f64::NAN),
            1 => Just(0.0),
            1 => Just(-0.0),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
        ]
    }

    /// The sequential scan Prometheus runs for every window.
    fn scan(win: &[Sample], max: bool) -> f64 {
        let mut m = win[0].v;
        for s in win {
            if (max && s.v > m) || (!max && s.v < m) || m.is_nan() {
                m = s.v;
            }
        }
        m
    }

    /// `f` over windows of `range` ending at `ends` (sorted or as given,
    /// as `@` can leave them) of samples one apart with values `vs`, equals
    /// `want` of each window bit for bit (empty windows: no answer).
    fn windows_match(
        f: RangeFn,
        vs: &[f64],
        mut ends: Vec<i64>,
        sorted: bool,
        range: i64,
        want: impl Fn(&[Sample]) -> f64,
    ) -> Result<(), TestCaseError> {
        let samples: Vec<Sample> = vs
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64, v))
            .collect();
        if sorted {
            ends.sort();
        }
        let params: Vec<Vec<f64>> = Vec::new();
        let w = Windows {
            ends: &ends,
            eval_ts: &ends,
            range,
            params: &params,
        };
        let mut out = vec![f64::from_bits(1); ends.len()];
        apply(f, &samples, &w, &mut Scratch::default(), &mut out).unwrap();
        for (i, &end) in ends.iter().enumerate() {
            let win: Vec<Sample> = samples
                .iter()
                .copied()
                .filter(|s| s.t >= end - range && s.t <= end)
                .collect();
            let want = if win.is_empty() {
                f64::from_bits(1)
            } else {
                want(&win)
            };
            prop_assert_eq!(
                out[i].to_bits(),
                want.to_bits(),
                "{:?} end {} window {:?}",
                f,
                end,
                win
            );
        }
        Ok(())
    }

    /// Counter-like values: mostly rising (so the zero cap is sometimes
    /// near), with resets, negatives and the odd special value.
    fn counter_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => (0u32..2000).prop_map(|v| f64::from(v) / 7.0),
            2 => (0u32..5).prop_map(f64::from),
            1 => (1u32..100).prop_map(|v| -f64::from(v)),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
        ]
    }

    proptest! {
        /// rate/increase/delta with the memoized factor equal the direct
        /// computation bit for bit, for regular and jittered timestamps,
        /// rising and resetting values, and ends that move back (`@`).
        #[test]
        fn memoized_rate_matches_direct(
            vs in proptest::collection::vec(counter_value(), 2..120),
            jitter in proptest::collection::vec(0i64..3, 120),
            gaps in proptest::collection::vec(prop_oneof![6 => Just(1i64), 1 => Just(2i64), 1 => Just(3i64)], 120),
            rising in any::<bool>(),
            interval in 1i64..20,
            ends in proptest::collection::vec(0i64..7500, 1..60),
            sorted in any::<bool>(),
            grid in proptest::option::of((0i64..500, 1i64..8)),
            range in 1i64..400,
        ) {
            // Regular steps, with gaps (missed scrapes) and jitter.
            let (mut acc, mut t) = (0.0, 0i64);
            let samples: Vec<Sample> = vs.iter().enumerate().map(|(i, &v)| {
                acc += v.abs();
                t += gaps[i] * interval * 10;
                let v = if rising && v.is_finite() && v >= 0.0 { acc } else { v };
                Sample::new(t + jitter[i] * (i as i64 % 2), v)
            }).collect();
            // A range query's grid (steps of whole sample intervals, so
            // windows repeat their shape), or arbitrary ends.
            let ends: Vec<i64> = match grid {
                Some((first, k)) => (0..60).map(|j| first + j * k * interval * 10).collect(),
                None if sorted => { let mut e = ends; e.sort(); e }
                None => ends,
            };
            let params: Vec<Vec<f64>> = Vec::new();
            let w = Windows { ends: &ends, eval_ts: &ends, range: range * 10, params: &params };
            let mut resets = Vec::new();
            for k in 1..samples.len() {
                if samples[k].v < samples[k - 1].v {
                    resets.push(k);
                }
            }
            for f in [RangeFn::Rate, RangeFn::Increase, RangeFn::Delta] {
                let mut out = vec![f64::from_bits(1); ends.len()];
                apply(f, &samples, &w, &mut Scratch::default(), &mut out).unwrap();
                for (i, &end) in ends.iter().enumerate() {
                    let start = end - w.range;
                    let lo = samples.partition_point(|s| s.t < start);
                    let hi = samples.partition_point(|s| s.t <= end);
                    let counter = f != RangeFn::Delta;
                    let want = if hi <= lo + 1 {
                        None
                    } else {
                        let result = raw_change(&samples, lo, hi, counter, &resets);
                        extrapolated_rate(&samples, Span { lo, hi, start, end }, RateSpec { range_secs: range_seconds(w.range), is_counter: counter, is_rate: f == RangeFn::Rate }, result)
                    };
                    let want = want.unwrap_or(f64::from_bits(1));
                    prop_assert_eq!(out[i].to_bits(), want.to_bits(), "{:?} end {} lo {} hi {}", f, end, lo, hi);
                }
            }
        }

        /// Windows averaged in lockstep give the one-window loop's answer
        /// bit for bit: windows of different lengths, infinities of both
        /// signs, NaN, and sums that overflow part way.
        #[test]
        fn lockstep_avg_matches_one_window(
            vs in proptest::collection::vec(prop_oneof![
                6 => (-1000i32..1000).prop_map(|v| f64::from(v) / 3.0),
                1 => Just(f64::MAX),
                1 => Just(-f64::MAX),
                1 => Just(1e300),
                1 => value(),
            ], 1..90),
            ends in proptest::collection::vec(0i64..100, 1..40),
            sorted in any::<bool>(),
            range in 0i64..40,
        ) {
            windows_match(RangeFn::AvgOverTime, &vs, ends, sorted, range, avg_over_time)?;
        }

        /// Sliding min/max give the scan's answer bit for bit, also when
        /// `@` pins windows or moves them back (ends out of order).
        #[test]
        fn sliding_extremes_match_the_scan(
            vs in proptest::collection::vec(value(), 1..80),
            ends in proptest::collection::vec(0i64..90, 1..40),
            sorted in any::<bool>(),
            range in 0i64..20,
        ) {
            windows_match(RangeFn::MaxOverTime, &vs, ends.clone(), sorted, range, |w| scan(w, true))?;
            windows_match(RangeFn::MinOverTime, &vs, ends, sorted, range, |w| scan(w, false))?;
        }
    }
}
