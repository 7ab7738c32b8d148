//! Where evaluation helper threads run.
//!
//! A helper is a new thread, and Linux starts it on its parent's CPU or on
//! whichever CPU looked least loaded at that instant; on a small machine
//! that is often the parent's own CPU (the HTTP client that sent the query
//! was still running on the other one). Both threads then stay busy, so the
//! scheduler counts them as cache-hot and does not move either to the CPU
//! that goes idle a moment later: perf showed the two threads sharing one
//! CPU for the first 8 ms of 14 ms queries, with the other idle. A helper
//! therefore moves itself off its parent's CPU as it starts. The mask lives
//! and dies with the helper thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The helpers of one fork: each moves off the forking thread's CPU as it
/// starts, and the forking thread waits for that briefly.
pub(crate) struct Fork {
    here: Option<usize>,
    placed: AtomicUsize,
}

impl Fork {
    /// Notes the calling (forking) thread's CPU.
    pub(crate) fn new() -> Self {
        Fork {
            here: current_cpu(),
            placed: AtomicUsize::new(0),
        }
    }

    /// First thing a helper does.
    pub(crate) fn helper_started(&self) {
        avoid_cpu(self.here);
        self.placed.fetch_add(1, Ordering::Release);
    }

    /// After spawning `helpers`: new threads often start queued behind the
    /// forking thread on its CPU, so yield until they have moved off it,
    /// for at most 2 ms.
    pub(crate) fn wait_placed(&self, helpers: usize) {
        let since = Instant::now();
        while self.placed.load(Ordering::Acquire) < helpers
            && since.elapsed() < Duration::from_millis(2)
        {
            std::thread::yield_now();
        }
    }
}

/// The CPU the calling thread runs on, if the platform says.
fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: no arguments, no memory touched.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Removes `cpu` from the calling thread's allowed CPUs, unless that would
/// leave none. Failure changes nothing: placement is only an optimisation.
fn avoid_cpu(cpu: Option<usize>) {
    #[cfg(target_os = "linux")]
    {
        let Some(cpu) = cpu else { return };
        if cpu >= libc::CPU_SETSIZE as usize {
            return;
        }
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `set` is a plain bit mask of the size passed to both
        // calls, and pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, size, &mut set) != 0 || !libc::CPU_ISSET(cpu, &set) {
                return;
            }
            libc::CPU_CLR(cpu, &mut set);
            if libc::CPU_COUNT(&set) > 0 {
                libc::sched_setaffinity(0, size, &set);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that avoids a CPU is never seen on it, and keeps the others.
    #[cfg(target_os = "linux")]
    #[test]
    fn avoided_cpu_is_left() {
        let Some(here) = current_cpu() else { return };
        let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::spawn(move || {
            avoid_cpu(Some(here));
            for _ in 0..200 {
                let now = current_cpu().unwrap();
                if allowed > 1 {
                    assert_ne!(now, here);
                }
                std::thread::yield_now();
            }
        })
        .join()
        .unwrap();
        // Out of range and absent CPUs are ignored.
        avoid_cpu(Some(usize::MAX));
        avoid_cpu(None);
    }
}
