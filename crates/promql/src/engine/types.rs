//! The evaluator's internal value shapes.
//!
//! Every expression is evaluated over a `Grid` of steps at once. An instant
//! vector becomes a list of `StepSeries`, each holding one value slot per
//! step; a slot with no point holds the `ABSENT` bit pattern (a signalling
//! NaN that arithmetic never produces and that storage values are mapped
//! away from on load). Scalars are one value per step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vigil_model::{Labels, Sample};

use super::EvalError;

/// Bits of the "no point at this step" marker: a signalling NaN, distinct
/// from Prometheus's stale marker (`0x7ff0000000000002`).
pub const ABSENT_BITS: u64 = 0x7ff0_0000_dead_beef;
pub const ABSENT: f64 = f64::from_bits(ABSENT_BITS);
/// Prometheus's `value.NormalNaN`, used to replace stored values that happen
/// to carry the `ABSENT` bit pattern.
pub const NORMAL_NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

#[inline]
pub fn is_absent(v: f64) -> bool {
    v.to_bits() == ABSENT_BITS
}

#[inline]
pub fn is_present(v: f64) -> bool {
    v.to_bits() != ABSENT_BITS
}

/// Maps a stored value into the evaluator's domain.
#[inline]
pub fn sanitize(v: f64) -> f64 {
    if v.to_bits() == ABSENT_BITS {
        NORMAL_NAN
    } else {
        v
    }
}

/// Evaluation timestamps `start, start+step, ...` (`len` of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

impl Grid {
    pub fn instant(t: i64) -> Self {
        Grid {
            start: t,
            step: 1,
            len: 1,
        }
    }

    pub fn range(start: i64, end: i64, step: i64) -> Self {
        let len = if end < start {
            0
        } else {
            ((end - start) / step) as usize + 1
        };
        Grid { start, step, len }
    }

    #[inline]
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub fn end(&self) -> i64 {
        if self.len == 0 {
            self.start
        } else {
            self.ts(self.len - 1)
        }
    }

    pub fn first(&self) -> Grid {
        Grid::instant(self.start)
    }
}

/// One series of an instant-vector result, one slot per grid step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSeries {
    pub labels: Labels,
    pub vals: Vec<f64>,
}

impl StepSeries {
    pub fn new(labels: Labels, len: usize) -> Self {
        StepSeries {
            labels,
            vals: vec![ABSENT; len],
        }
    }

    pub fn points(&self) -> usize {
        self.vals.iter().filter(|v| is_present(**v)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.vals.iter().all(|v| is_absent(*v))
    }
}

/// A range-vector series: raw points with their own timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Counts the samples a query holds in memory and enforces `max_samples`.
#[derive(Debug)]
pub struct SampleBudget {
    max: usize,
    current: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicUsize,
}

impl SampleBudget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(SampleBudget {
            max,
            current: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        })
    }

    /// Takes `n` samples from the budget, failing with Prometheus's error
    /// when the query would hold more than the maximum.
    pub fn reserve(&self, n: usize) -> Result<(), EvalError> {
        if n == 0 {
            return Ok(());
        }
        let now = self.current.fetch_add(n, Ordering::Relaxed) + n;
        if now > self.max {
            self.current.fetch_sub(n, Ordering::Relaxed);
            return Err(EvalError::TooManySamples);
        }
        self.peak.fetch_max(now, Ordering::Relaxed);
        Ok(())
    }

    pub fn release(&self, n: usize) {
        if n > 0 {
            self.current.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Records samples read from storage (for the query statistics).
    pub fn loaded(&self, n: usize) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// Samples held by a live intermediate value; returned to the budget on drop.
#[derive(Debug)]
pub struct Hold {
    budget: Arc<SampleBudget>,
    n: usize,
}

impl Hold {
    pub fn new(budget: &Arc<SampleBudget>, n: usize) -> Result<Self, EvalError> {
        budget.reserve(n)?;
        Ok(Hold {
            budget: budget.clone(),
            n,
        })
    }

    pub fn none(budget: &Arc<SampleBudget>) -> Self {
        Hold {
            budget: budget.clone(),
            n: 0,
        }
    }

    pub fn add(&mut self, n: usize) -> Result<(), EvalError> {
        self.budget.reserve(n)?;
        self.n += n;
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.budget.release(self.n);
    }
}

/// A materialized instant vector over a grid, with its sample accounting.
#[derive(Debug)]
pub struct StepVector {
    pub series: Vec<StepSeries>,
    pub hold: Hold,
}

/// The value of an evaluated expression over a grid.
#[derive(Debug)]
pub enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(StepVector),
    /// Raw points (only for range-vector expressions at the top of an
    /// instant query).
    Matrix(Vec<RangeSeries>),
}
