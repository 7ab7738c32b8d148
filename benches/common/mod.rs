//! Helpers shared by the root benches (not a bench target itself): CPU time
//! of the calling thread or process, so throughput figures do not depend on
//! how busy the shared machine is.

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

fn rusage_secs(who: libc::c_int) -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds (user + system) used so far by the calling thread, so that
/// throughput figures do not depend on how busy the machine is.
pub fn thread_cpu_secs() -> f64 {
    rusage_secs(libc::RUSAGE_THREAD)
}

/// CPU seconds (user + system) used so far by the whole process, all
/// threads included (for benches whose work spans threads).
pub fn process_cpu_secs() -> f64 {
    rusage_secs(libc::RUSAGE_SELF)
}

/// One xorshift64 step: cheap, deterministic noise for synthetic data.
pub fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Scrape `k`'s value of series `i` in the memory benches, by `i % 3` a
/// counter, a gauge or a constant, like an exporter's mix.
pub fn scrape_value(seed: &mut u64, k: i64, i: usize) -> f64 {
    let r = xorshift(seed);
    match i % 3 {
        0 => (k * 100 + (r % 100) as i64) as f64,
        1 => (r % 10_000) as f64 / 10.0,
        _ => 1.0,
    }
}
