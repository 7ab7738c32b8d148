//! Helpers shared by the TSDB benches (not a bench target itself).

/// CPU seconds (user + system) used so far by the calling thread, so that
/// throughput figures do not depend on how busy the machine is.
pub fn thread_cpu_secs() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
