//! Reading one selected series from storage: instant-selector values for
//! every step (lookback and staleness) and the raw samples a range function
//! slides over. Each series is read front to back exactly once.

use vigil_model::storage::Series as StorageSeries;
use vigil_model::{is_stale_nan, Sample};

use super::types::{is_present, sanitize, SampleBudget, ABSENT};
use super::EvalError;

/// An error met while iterating a selected series (a corrupt chunk, say)
/// is an execution error, as in Prometheus (HTTP 422, `execution`); only
/// failures to select series are storage errors.
fn storage_err(e: vigil_model::storage::StorageError) -> EvalError {
    EvalError::Execution(e.to_string())
}

/// Selecting series failed: a storage error (HTTP 500, `internal`), except
/// corrupt data, which fails only this query like a corrupt chunk met
/// while iterating (HTTP 422, `execution`).
pub(super) fn select_err(e: vigil_model::storage::StorageError) -> EvalError {
    match e {
        vigil_model::storage::StorageError::Corruption { .. } => {
            EvalError::Execution(e.to_string())
        }
        e => EvalError::Storage(e.to_string()),
    }
}

/// Values of an instant selector at each step whose reference time is
/// `ends[i]` (evaluation time minus offset, or the `@` time). A step has a
/// value when the newest sample at or before `ends[i]` is no older than
/// `lookback` and is not a staleness marker. Returns `None` if no step has
/// a value. `buf` is scratch space.
pub fn instant_values(
    series: &dyn StorageSeries,
    ends: &[i64],
    lookback: i64,
    budget: &SampleBudget,
    buf: &mut Vec<Sample>,
) -> Result<Option<Vec<f64>>, EvalError> {
    let (Some(&first), Some(&last_end)) = (ends.first(), ends.last()) else {
        return Ok(None);
    };
    buf.clear();
    series
        .iter()
        .collect_range(first - lookback, last_end, buf)
        .map_err(storage_err)?;
    budget.loaded(buf.len());
    if buf.is_empty() {
        return Ok(None);
    }
    let samples = &buf[..];
    let mut out: Option<Vec<f64>> = None;
    // `pos` is the number of samples at or before the current end.
    let mut pos = 0usize;
    let n = samples.len();
    for (i, &end) in ends.iter().enumerate() {
        while pos < n && samples[pos].t <= end {
            pos += 1;
        }
        if pos == 0 {
            continue;
        }
        let l = samples[pos - 1];
        if l.t >= end - lookback && !is_stale_nan(l.v) {
            let o = out.get_or_insert_with(|| vec![ABSENT; ends.len()]);
            o[i] = sanitize(l.v);
        }
    }
    Ok(out)
}

/// Like `instant_values` but returns the timestamp (seconds) of the sample
/// each step would use, for `timestamp(selector)`.
pub fn instant_timestamps(
    series: &dyn StorageSeries,
    ends: &[i64],
    lookback: i64,
    budget: &SampleBudget,
) -> Result<Option<Vec<f64>>, EvalError> {
    let Some(&first) = ends.first() else {
        return Ok(None);
    };
    let mut it = series.iter();
    let mut cur = it.seek(first - lookback).map_err(storage_err)?;
    let mut last: Option<Sample> = None;
    let mut out: Option<Vec<f64>> = None;
    let mut loaded = 0usize;
    for (i, &end) in ends.iter().enumerate() {
        // `@` pins `end`; a smaller end than before means re-reading.
        if last.is_some_and(|l| l.t > end) {
            it = series.iter();
            cur = it.seek(end - lookback).map_err(storage_err)?;
            last = None;
        }
        while let Some(s) = cur {
            if s.t > end {
                break;
            }
            last = Some(s);
            loaded += 1;
            cur = it.next().map_err(storage_err)?;
        }
        if let Some(l) = last {
            if l.t >= end - lookback && !is_stale_nan(l.v) {
                let o = out.get_or_insert_with(|| vec![ABSENT; ends.len()]);
                o[i] = l.t as f64 / 1000.0;
            }
        }
    }
    budget.loaded(loaded);
    Ok(out)
}

/// Appends the samples with `mint <= t <= maxt` to `out`, skipping
/// staleness markers (range selectors never see them).
pub fn range_samples(
    series: &dyn StorageSeries,
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
    budget: &SampleBudget,
) -> Result<(), EvalError> {
    let before = out.len();
    series
        .iter()
        .collect_range(mint, maxt, out)
        .map_err(storage_err)?;
    budget.loaded(out.len() - before);
    // Only NaNs (staleness markers, the absent-marker bit pattern) need
    // work; most series have none, and then nothing is rewritten.
    let Some(first_nan) = out[before..].iter().position(|s| s.v.is_nan()) else {
        return Ok(());
    };
    let from = before + first_nan;
    let mut w = from;
    for r in from..out.len() {
        let s = out[r];
        if !is_stale_nan(s.v) {
            out[w] = Sample::new(s.t, sanitize(s.v));
            w += 1;
        }
    }
    out.truncate(w);
    Ok(())
}

/// Present points of a step series as samples at the grid's timestamps.
pub fn step_points(vals: &[f64], ts: impl Fn(usize) -> i64, out: &mut Vec<Sample>) {
    for (i, &v) in vals.iter().enumerate() {
        if is_present(v) {
            out.push(Sample::new(ts(i), v));
        }
    }
}
