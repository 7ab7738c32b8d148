//! Reporting the head series limit (`--storage.tsdb.max-head-series`).
//!
//! The head refuses series beyond the limit (appends and WAL replay alike);
//! this module only tells the operator: at most one log line a minute,
//! naming the metrics whose new series were refused, so a cardinality
//! explosion can be traced to its source without flooding the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per this interval.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);
/// Metric names tracked between two lines (the rest are counted as other).
const MAX_NAMES: usize = 64;
/// Metric names printed per line, most refused first.
const PRINT_NAMES: usize = 10;

#[derive(Default)]
struct State {
    last: Option<Instant>,
    refused: u64,
    by_name: HashMap<String, u64>,
    other: u64,
}

/// Refusals since the last line, by metric name.
#[derive(Default)]
pub(crate) struct SeriesLimitLog {
    state: Mutex<State>,
}

impl SeriesLimitLog {
    /// Records a refused series of metric `name`; logs if a line is due.
    pub(crate) fn refused(&self, limit: usize, name: &str, during_replay: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.refused += 1;
        if let Some(n) = st.by_name.get_mut(name) {
            *n += 1;
        } else if st.by_name.len() < MAX_NAMES {
            st.by_name.insert(name.to_string(), 1);
        } else {
            st.other += 1;
        }
        let due = st.last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due && !during_replay {
            st.last = Some(Instant::now());
            emit(&mut st, limit, false);
        }
    }

    /// Logs what replay refused, if anything (replay logs once, at its end).
    pub(crate) fn flush_replay(&self, limit: usize) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.refused > 0 {
            emit(&mut st, limit, true);
        }
    }
}

fn emit(st: &mut State, limit: usize, replay: bool) {
    let mut names: Vec<(&String, &u64)> = st.by_name.iter().collect();
    names.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = names
        .iter()
        .take(PRINT_NAMES)
        .map(|(n, c)| format!("{n} ({c})"))
        .collect();
    let more = names.len().saturating_sub(PRINT_NAMES) as u64 + st.other;
    let shown = shown.join(", ");
    if replay {
        tracing::warn!(
            limit,
            refused_series = st.refused,
            metrics = %shown,
            other_metrics = more,
            "WAL replay: series beyond --storage.tsdb.max-head-series were dropped"
        );
    } else {
        tracing::warn!(
            limit,
            refused_series = st.refused,
            metrics = %shown,
            other_metrics = more,
            "head series limit reached (--storage.tsdb.max-head-series): new series are refused, existing ones keep ingesting"
        );
    }
    st.refused = 0;
    st.by_name.clear();
    st.other = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_minute_accumulates_names() {
        let l = SeriesLimitLog::default();
        l.refused(10, "a", false);
        // Logged at once: the state restarted.
        assert_eq!(l.state.lock().unwrap().refused, 0);
        l.refused(10, "b", false);
        l.refused(10, "b", false);
        l.refused(10, "c", false);
        let st = l.state.lock().unwrap();
        assert_eq!(st.refused, 3);
        assert_eq!(st.by_name.get("b"), Some(&2));
        assert!(st.last.is_some());
    }

    #[test]
    fn replay_logs_once_at_the_end() {
        let l = SeriesLimitLog::default();
        for i in 0..100 {
            l.refused(5, &format!("m{i}"), true);
        }
        {
            let st = l.state.lock().unwrap();
            assert_eq!(st.refused, 100);
            assert_eq!(st.by_name.len(), MAX_NAMES);
            assert_eq!(st.other, 100 - MAX_NAMES as u64);
        }
        l.flush_replay(5);
        assert_eq!(l.state.lock().unwrap().refused, 0);
    }
}
