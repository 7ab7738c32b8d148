//! `--query.max-concurrency`: a counting semaphore that queries pass before
//! evaluation. Waiting honours the query's cancellation flag and deadline,
//! failing with Prometheus's "... in query queue" errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::EvalError;

#[derive(Debug, Clone)]
pub struct QueryGate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    max: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

/// Holds one slot of the gate until dropped.
#[derive(Debug)]
pub struct GatePermit {
    inner: Arc<GateInner>,
}

impl QueryGate {
    pub fn new(max: usize) -> Self {
        QueryGate {
            inner: Arc::new(GateInner {
                max: max.max(1),
                running: Mutex::new(0),
                freed: Condvar::new(),
            }),
        }
    }

    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Queries currently holding a slot.
    pub fn running(&self) -> usize {
        self.inner.running.lock().map(|g| *g).unwrap_or(0)
    }

    /// Waits for a free slot.
    pub fn acquire(
        &self,
        cancel: &AtomicBool,
        deadline: Option<Instant>,
    ) -> Result<GatePermit, EvalError> {
        let mut running = self
            .inner
            .running
            .lock()
            .map_err(|_| EvalError::Internal("query gate poisoned".into()))?;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(EvalError::Canceled("query queue"));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(EvalError::Timeout("query queue"));
            }
            if *running < self.inner.max {
                *running += 1;
                return Ok(GatePermit {
                    inner: self.inner.clone(),
                });
            }
            // Wake up now and then to notice cancellation.
            let (g, _) = self
                .inner
                .freed
                .wait_timeout(running, Duration::from_millis(20))
                .map_err(|_| EvalError::Internal("query gate poisoned".into()))?;
            running = g;
        }
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        if let Ok(mut g) = self.inner.running.lock() {
            *g = g.saturating_sub(1);
        }
        self.inner.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_bounds_and_cancels() {
        let gate = QueryGate::new(1);
        let flag = AtomicBool::new(false);
        let p = gate.acquire(&flag, None).unwrap();
        assert_eq!(gate.running(), 1);
        let soon = Instant::now() + Duration::from_millis(30);
        assert_eq!(
            gate.acquire(&flag, Some(soon)).unwrap_err(),
            EvalError::Timeout("query queue")
        );
        flag.store(true, Ordering::Relaxed);
        assert_eq!(
            gate.acquire(&flag, None).unwrap_err(),
            EvalError::Canceled("query queue")
        );
        drop(p);
        flag.store(false, Ordering::Relaxed);
        assert!(gate.acquire(&flag, None).is_ok());
    }
}
