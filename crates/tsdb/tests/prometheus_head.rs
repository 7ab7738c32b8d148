//! Interop with a real Prometheus (Debian's 2.42), both directions:
//! - Prometheus scrapes itself into a temp dir, is stopped, and Vigil's head
//!   opened on that dir (WAL + chunks_head) holds every sample Prometheus's
//!   API returned;
//! - Vigil's head writes a dir, Prometheus is started on it and its API
//!   returns every sample Vigil wrote.
//!
//! Skipped, with a printed reason, when `prometheus` is not installed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vigil_model::storage::{Appendable, Queryable};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::head::{Head, HeadOptions};

fn have_prometheus() -> bool {
    match Command::new("prometheus").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipping: `prometheus` not installed (apt-get install prometheus)");
            false
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Prom {
    child: Child,
    port: u16,
}

impl Prom {
    fn start(data: &Path, config: &Path) -> Prom {
        let port = free_port();
        let cfg = std::fs::read_to_string(config)
            .unwrap()
            .replace("PORT", &port.to_string());
        std::fs::write(config, cfg).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let p = Prom { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some((200, _)) = http_get(port, "/-/ready") {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready");
    }

    /// Raw samples of every series matching `selector` in the last `range`.
    fn raw_samples(&self, selector: &str, range: &str) -> BTreeMap<String, Vec<(i64, u64)>> {
        let q = urlencode(&format!("{selector}[{range}]"));
        let (code, body) = http_get(self.port, &format!("/api/v1/query?query={q}")).unwrap();
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut out = BTreeMap::new();
        for r in v["data"]["result"].as_array().unwrap() {
            let mut pairs: Vec<(String, String)> = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            pairs.sort();
            let labels = Labels::from_pairs(&pairs).to_string();
            let samples = r["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    let v: f64 = match p[1].as_str().unwrap() {
                        "NaN" => f64::NAN,
                        "+Inf" => f64::INFINITY,
                        "-Inf" => f64::NEG_INFINITY,
                        s => s.parse().unwrap(),
                    };
                    (t, v.to_bits())
                })
                .collect();
            out.insert(labels, samples);
        }
        out
    }

    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("prometheus did not stop on SIGTERM");
    }
}

/// Samples of every series in `head`, keyed by the label set's string,
/// without staleness markers (the API hides those in range selections).
fn head_samples(
    head: &Head,
    mint: i64,
    maxt: i64,
    sel: Matcher,
) -> BTreeMap<String, Vec<(i64, u64)>> {
    let q = head.querier(mint, maxt).unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(None, &[sel]).unwrap() {
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some(x) = it.next().unwrap() {
            if !vigil_model::is_stale_nan(x.v) {
                v.push((
                    x.t,
                    if x.v.is_nan() {
                        f64::NAN.to_bits()
                    } else {
                        x.v.to_bits()
                    },
                ));
            }
        }
        out.insert(s.labels().to_string(), v);
    }
    out
}

fn norm_nan(m: &mut BTreeMap<String, Vec<(i64, u64)>>) {
    for v in m.values_mut() {
        for s in v.iter_mut() {
            if f64::from_bits(s.1).is_nan() {
                s.1 = f64::NAN.to_bits();
            }
        }
    }
}

#[test]
fn vigil_head_reads_a_prometheus_data_dir() {
    if !have_prometheus() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("prometheus.yml");
    // 100 ms scrapes fill a head chunk (~120 samples) in about 12 s.
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:PORT']\n",
    )
    .unwrap();
    let prom = Prom::start(&data, &cfg);
    // Wait until Prometheus has memory-mapped some full chunks.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let head_chunk_bytes: u64 = std::fs::read_dir(data.join("chunks_head"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        if head_chunk_bytes > 64 * 1024 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut want = prom.raw_samples("{__name__=~\".+\"}", "1h");
    prom.stop();
    assert!(want.len() > 100, "prometheus scraped {} series", want.len());

    let head = Head::open(&data, HeadOptions::default()).unwrap();
    assert_eq!(
        head.stats()
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        head.stats()
            .mmap_chunk_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(
        head.stats()
            .chunks
            .load(std::sync::atomic::Ordering::Relaxed)
            > 100,
        "mmapped chunks were loaded"
    );
    let all = Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap();
    let mut got = head_samples(&head, i64::MIN, i64::MAX, all);
    norm_nan(&mut want);
    norm_nan(&mut got);
    let mut checked = 0usize;
    for (series, samples) in &want {
        let ours = got
            .get(series)
            .unwrap_or_else(|| panic!("series {series} missing"));
        let (lo, hi) = (samples[0].0, samples[samples.len() - 1].0);
        let ours: Vec<(i64, u64)> = ours
            .iter()
            .copied()
            .filter(|s| s.0 >= lo && s.0 <= hi)
            .collect();
        assert_eq!(&ours, samples, "samples of {series}");
        checked += samples.len();
    }
    eprintln!(
        "compared {checked} samples of {} series with Prometheus's API",
        want.len()
    );
    assert!(checked > 10_000);
}

#[test]
fn prometheus_reads_a_vigil_data_dir() {
    if !have_prometheus() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - 20 * 60 * 1000;
    let mut want: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    {
        let head = Head::open(&data, HeadOptions::default()).unwrap();
        let mut app = head.appender();
        let mut refs = vec![0u64; 50];
        for i in 0..240i64 {
            let t = start + i * 5000;
            for (s, r) in refs.iter_mut().enumerate() {
                let l = Labels::from_pairs(&[("__name__", "vigil_test"), ("s", &s.to_string())]);
                let v = match s % 3 {
                    0 => i as f64,
                    1 => (i * s as i64) as f64 / 7.0,
                    _ => 42.0,
                };
                *r = app.append(*r, &l, t, v).unwrap();
                want.entry(l.to_string())
                    .or_default()
                    .push((t, v.to_bits()));
            }
            app.commit().unwrap();
        }
        head.close().unwrap();
    }
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let prom = Prom::start(&data, &cfg);
    let got = prom.raw_samples("{__name__=\"vigil_test\"}", "1h");
    prom.stop();
    assert_eq!(got.len(), 50);
    assert_eq!(got, want);
}

/// Restart time, Vigil vs Prometheus, on the same data dir written by
/// Vigil's head (100k series x 480 samples = 2 h at 15 s). A measurement,
/// not a check: run with
/// `cargo test --release -p vigil-tsdb --test prometheus_head -- --ignored --nocapture`.
#[test]
#[ignore]
fn restart_time_vs_prometheus() {
    if !have_prometheus() {
        return;
    }
    let series: usize = std::env::var("VIGIL_RESTART_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let samples: i64 = std::env::var("VIGIL_RESTART_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(480);
    let dir = tempfile::tempdir().unwrap();
    // VIGIL_RESTART_DIR keeps the generated dir for repeated measurements.
    let keep = std::env::var("VIGIL_RESTART_DIR")
        .ok()
        .map(std::path::PathBuf::from);
    let data = keep.clone().unwrap_or_else(|| dir.path().join("data"));
    let reuse = keep.is_some() && data.join("wal").exists();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Stay inside one 2 h block range so neither system compacts at start.
    let start = (now / 7_200_000) * 7_200_000 - 7_200_000 + 1;
    let step = 7_000_000 / samples;
    if !reuse {
        let head = Head::open(&data, HeadOptions::default()).unwrap();
        let labels: Vec<Labels> = (0..series)
            .map(|i| {
                Labels::from_pairs(&[
                    ("__name__", format!("metric_{}", i % 500).as_str()),
                    ("instance", format!("host-{}:9100", i / 2000).as_str()),
                    ("job", "node"),
                    ("idx", (i % 2000).to_string().as_str()),
                ])
            })
            .collect();
        let mut refs = vec![0u64; series];
        for k in 0..samples {
            for (chunk_i, chunk) in labels.chunks(2000).enumerate() {
                let mut app = head.appender();
                for (j, l) in chunk.iter().enumerate() {
                    let i = chunk_i * 2000 + j;
                    refs[i] = app
                        .append(refs[i], l, start + k * step, (k * (i as i64 % 7)) as f64)
                        .unwrap();
                }
                app.commit().unwrap();
            }
        }
        head.close().unwrap();
    }
    let wal_bytes: u64 = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let t0 = Instant::now();
    let cpu0 = process_cpu_secs();
    let head = Head::open(&data, HeadOptions::default()).unwrap();
    let vigil = t0.elapsed();
    let vigil_cpu = process_cpu_secs() - cpu0;
    assert_eq!(head.num_series() as usize, series);
    drop(head);
    if std::env::var("VIGIL_RESTART_SKIP_PROMETHEUS").is_ok() {
        eprintln!("vigil restart {vigil:.2?} ({vigil_cpu:.2} CPU-s)");
        return;
    }
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let t0 = Instant::now();
    let prom = Prom::start(&data, &cfg);
    let prom_t = t0.elapsed();
    let prom_cpu = child_cpu_secs(prom.child.id());
    prom.stop();
    eprintln!(
        "restart with {series} series x {samples} samples ({} MB of WAL): vigil {:.2?} ({vigil_cpu:.2} CPU-s), prometheus {:.2?} ({prom_cpu:.2} CPU-s)",
        wal_bytes / 1_000_000,
        vigil,
        prom_t
    );
}

fn process_cpu_secs() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime + stime of a running child, from /proc.
fn child_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let u: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let s: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (u + s) / ticks
}
