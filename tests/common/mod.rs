//! Helpers for end-to-end tests: free ports, child processes stopped by PID,
//! real peers (prometheus, node_exporter, ...) found on PATH, HTTP polling.
//!
//! Peers are skipped with a printed reason when absent, unless
//! `VIGIL_REQUIRE_PEERS=1` (set by scripts/test.sh, so CI never skips).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Path of the `vigil` binary built for this test run.
pub fn vigil_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vigil"))
}

/// Finds `bin` on PATH.
pub fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Returns the peer's path, or `None` after printing why the test skips.
/// Panics instead when `VIGIL_REQUIRE_PEERS=1`.
pub fn peer(bin: &str) -> Option<PathBuf> {
    match which(bin) {
        Some(p) => Some(p),
        None => {
            if std::env::var("VIGIL_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("required peer `{bin}` is not on PATH (run scripts/install-test-deps.sh)");
            }
            eprintln!(
                "SKIP: `{bin}` not found on PATH; install it with scripts/install-test-deps.sh"
            );
            None
        }
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr going to `<dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).expect("create log file");
        let f2 = f.try_clone().expect("clone log file");
        cmd.stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .stdin(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by PID.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM and wait up to `timeout` for exit; returns the exit status.
    pub fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the process exits by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// Blocking HTTP client for tests.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Polls `url` until it answers 200 or `timeout` passes; panics with the
/// process log on timeout.
pub fn wait_ok(url: &str, timeout: Duration, proc_: Option<&Proc>) {
    let client = http();
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.get(url).send() {
            Ok(r) if r.status().as_u16() == 200 => return,
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = proc_.map(|p| p.output()).unwrap_or_default();
    panic!("{url} not OK after {timeout:?}: {last}\n--- log ---\n{log}");
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `vigil` with the given config text and extra flags in `dir`,
/// returning the process and its base URL once `/-/ready` answers.
pub fn start_vigil(dir: &Path, config: &str, extra: &[&str]) -> (Proc, String) {
    start_vigil_at(dir, &dir.join("data"), config, extra)
}

/// Like `start_vigil` with the data directory at `data` (config and log
/// stay in `dir`, so they work when `data`'s file system is full).
pub fn start_vigil_at(dir: &Path, data: &Path, config: &str, extra: &[&str]) -> (Proc, String) {
    let cfg = dir.join("vigil.yml");
    std::fs::write(&cfg, config).expect("write config");
    let port = free_port();
    let mut cmd = Command::new(vigil_bin());
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra);
    let p = Proc::spawn("vigil", cmd, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&p),
    );
    (p, base)
}
