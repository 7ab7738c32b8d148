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
