//! The TSDB's fault tolerance seen through the real binary: a corrupt block
//! chunk fails only the query that reads it (HTTP 422, `execution`), a full
//! disk turns ingestion read-only and back, and the head series limit holds
//! a target that explodes in cardinality (also across a restart).

mod common;

use common::{eventually, http, start_vigil, start_vigil_at};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_model::{Labels, MatchOp, Matcher};
use vigil_tsdb::block::{BlockWriter, DEFAULT_BLOCK_DURATION};

fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = http().get(url).send().expect("GET");
    let status = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"));
    (status, v)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an unlabelled metric on `/metrics`.
fn self_metric(base: &str, name: &str) -> Option<f64> {
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Result of an instant query as (labels JSON, value) pairs.
fn instant(base: &str, q: &str) -> Vec<(serde_json::Value, f64)> {
    let (st, v) = get_json(&format!("{base}/api/v1/query?query={}", enc(q)));
    assert_eq!(st, 200, "{q}: {v}");
    v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let val = r["value"][1]
                .as_str()
                .unwrap_or("NaN")
                .parse()
                .unwrap_or(f64::NAN);
            (r["metric"].clone(), val)
        })
        .collect()
}

fn scalar(base: &str, q: &str) -> Option<f64> {
    instant(base, q).first().map(|r| r.1)
}

/// Raw samples of every series matching `selector` over the last `range`,
/// keyed by the series' labels: (timestamp ms, value text).
fn raw_samples(base: &str, selector: &str, range: &str) -> BTreeMap<String, Vec<(i64, String)>> {
    let (st, v) = get_json(&format!(
        "{base}/api/v1/query?query={}",
        enc(&format!("{selector}[{range}]"))
    ));
    assert_eq!(st, 200, "{v}");
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let samples = r["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap_or_default().to_string())
            })
            .collect();
        out.insert(r["metric"].to_string(), samples);
    }
    out
}

/// A scrape target in this process: `<name>{i="0".."n-1"}`, each value the
/// scrape count plus the series index. `series` can be changed while it
/// runs.
struct Exporter {
    port: u16,
    series: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    fn start(name: &'static str, series: usize) -> Exporter {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind exporter");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let n = Arc::new(AtomicUsize::new(series));
        let stop = Arc::new(AtomicBool::new(false));
        let (n2, stop2) = (n.clone(), stop.clone());
        let scrapes = AtomicU64::new(0);
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let (mut c, _) = match l.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                let k = scrapes.fetch_add(1, Ordering::Relaxed);
                let mut body = format!("# TYPE {name} gauge\n");
                for i in 0..n2.load(Ordering::Relaxed) {
                    body.push_str(&format!("{name}{{i=\"{i}\"}} {}\n", k + i as u64));
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(body.as_bytes());
            }
        });
        Exporter {
            port,
            series: n,
            stop,
            thread: Some(thread),
        }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIP: cannot mount a tmpfs ({}); run as root to test a full disk",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes a file filling the file system of `dir`; returns its path.
fn fill_fs(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    let chunk = vec![7u8; 256 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = vec![7u8; 512];
    while f.write_all(&small).is_ok() {}
    path
}

/// `lastError` of every active target of `job`.
fn target_errors(base: &str, job: &str) -> Vec<String> {
    let (_, v) = get_json(&format!("{base}/api/v1/targets?state=active"));
    v["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["labels"]["job"] == job)
        .map(|t| t["lastError"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Checked reads

/// Block data: two series over two hours, one sample a minute.
const T0: i64 = 1_700_000_000_000 / DEFAULT_BLOCK_DURATION * DEFAULT_BLOCK_DURATION;

fn write_block(data: &Path) -> PathBuf {
    let mut w = BlockWriter::new(data, DEFAULT_BLOCK_DURATION);
    for name in ["good_metric", "bad_metric"] {
        let l = Labels::from_pairs(&[("__name__", name), ("job", "backfill")]);
        let id = w.series_id(&l).expect("series id");
        for i in 0..120 {
            w.add(id, T0 + i * 60_000, i as f64).expect("add");
        }
    }
    let blocks = w.flush().expect("flush");
    assert_eq!(blocks.len(), 1);
    vigil_tsdb::block::list_block_dirs(data).expect("list")[0]
        .1
        .clone()
}

/// Flips a byte inside the data of the first chunk of `metric` in `block`.
fn corrupt_chunk_of(block: &Path, metric: &str) {
    let b = vigil_tsdb::block::Block::open(block).expect("open block");
    let ids = vigil_tsdb::block::postings_for_matchers(
        b.index(),
        &[Matcher::new(MatchOp::Equal, "__name__", metric).expect("matcher")],
    )
    .expect("postings");
    let mut chunks = Vec::new();
    b.index()
        .series_into(ids[0], None, &mut chunks)
        .expect("series");
    let (seg, off) = vigil_tsdb::chunks::split_chunk_ref(chunks[0].chunk_ref);
    drop(b);
    let path = block.join("chunks").join(format!("{:06}", seg + 1));
    let mut bytes = std::fs::read(&path).expect("read chunks");
    // Past the length varint and the encoding byte: in the chunk data.
    bytes[off as usize + 8] ^= 0x40;
    std::fs::write(&path, bytes).expect("write chunks");
}

#[test]
fn corrupt_block_chunk_fails_only_the_query_that_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = write_block(&dir.path().join("data"));
    let ulid = block
        .file_name()
        .and_then(|n| n.to_str())
        .expect("ulid")
        .to_string();
    corrupt_chunk_of(&block, "bad_metric");
    let (vigil, base) = start_vigil(
        dir.path(),
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
        &["--storage.tsdb.retention.time=100000d"],
    );
    let range = |q: &str| {
        get_json(&format!(
            "{base}/api/v1/query_range?query={}&start={}&end={}&step=60",
            enc(q),
            T0 / 1000,
            T0 / 1000 + 7140
        ))
    };

    let (st, v) = range("bad_metric");
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "execution", "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(&ulid), "error should name block {ulid}: {msg}");
    assert!(
        msg.contains("bad_metric"),
        "error should name the series: {msg}"
    );

    // Other queries are unaffected, also ones over the same block.
    let (st, v) = range("good_metric");
    assert_eq!(st, 200, "{v}");
    let values = v["data"]["result"][0]["values"]
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(values, 120, "{v}");
    let (st, v) = get_json(&format!(
        "{base}/api/v1/series?match[]=bad_metric&start={}&end={}",
        T0 / 1000,
        T0 / 1000 + 7200
    ));
    assert_eq!(st, 200, "series metadata needs no chunk: {v}");

    // Counted, and the server keeps serving.
    let n = self_metric(&base, "vigil_tsdb_chunk_corruptions_total");
    assert!(n.is_some_and(|n| n >= 1.0), "corruption not counted: {n:?}");
    let (st, _) = range("bad_metric");
    assert_eq!(st, 422);
    drop(vigil);
}

// ---------------------------------------------------------------------------
// Disk full

fn scrape_config(jobs: &[(&str, &Exporter)]) -> String {
    let mut c =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, e) in jobs {
        c.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{}']\n",
            e.target()
        ));
    }
    c
}

#[test]
fn full_disk_makes_ingestion_read_only_then_resumes_without_loss() {
    let root = tempfile::tempdir().expect("tempdir");
    let Some(mnt) = Mount::tmpfs(&root.path().join("mnt"), "48m") else {
        return;
    };
    let data = mnt.0.join("data");
    let exporter = Exporter::start("fault_test_gauge", 200);
    let (mut vigil, base) = start_vigil_at(
        root.path(),
        &data,
        &scrape_config(&[("faults", &exporter)]),
        &[],
    );
    let up = |b: &str| scalar(b, "up{job=\"faults\"}");
    eventually(Duration::from_secs(30), || {
        (scalar(&base, "count(count_over_time(fault_test_gauge[1m]) >= 3)") == Some(200.0))
            .then_some(())
    })
    .expect("scrapes never arrived");
    assert_eq!(self_metric(&base, "vigil_tsdb_read_only"), Some(0.0));
    assert_eq!(up(&base), Some(1.0));

    // What is committed now must survive everything below.
    let before = raw_samples(&base, "fault_test_gauge", "1h");
    assert_eq!(before.len(), 200);
    let filler = fill_fs(&mnt.0);

    // Ingestion turns read-only within a few scrapes; the target says why.
    eventually(Duration::from_secs(20), || {
        (self_metric(&base, "vigil_tsdb_read_only") == Some(1.0)).then_some(())
    })
    .unwrap_or_else(|| panic!("never read-only\n{}", vigil.output()));
    let err = eventually(Duration::from_secs(10), || {
        target_errors(&base, "faults")
            .into_iter()
            .find(|e| e.contains("no space left on device"))
    })
    .unwrap_or_else(|| {
        panic!(
            "target error should say the disk is full: {:?}",
            target_errors(&base, "faults")
        )
    });
    assert!(err.contains("read-only"), "{err}");
    // The API keeps working: queries, metadata, status, health.
    let during = raw_samples(&base, "fault_test_gauge", "1h");
    for (k, v) in &before {
        let d = &during[k];
        assert!(
            v.iter().all(|s| d.contains(s)),
            "{k}: committed samples missing while full"
        );
    }
    for path in [
        "/-/healthy",
        "/-/ready",
        "/api/v1/labels",
        "/api/v1/status/tsdb",
        "/api/v1/targets",
        "/metrics",
    ] {
        let st = http()
            .get(format!("{base}{path}"))
            .send()
            .map(|r| r.status().as_u16());
        assert_eq!(st.ok(), Some(200), "{path} while the disk is full");
    }
    assert!(
        vigil.child.try_wait().ok().flatten().is_none(),
        "vigil exited"
    );

    // Space returns: ingestion resumes by itself within a few seconds.
    std::fs::remove_file(&filler).expect("remove filler");
    let freed = Instant::now();
    eventually(Duration::from_secs(10), || {
        (self_metric(&base, "vigil_tsdb_read_only") == Some(0.0)).then_some(())
    })
    .unwrap_or_else(|| panic!("ingestion did not resume\n{}", vigil.output()));
    let resumed_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    eventually(Duration::from_secs(10), || {
        target_errors(&base, "faults")
            .iter()
            .all(|e| e.is_empty())
            .then_some(())
    })
    .expect("the target error did not clear");
    eprintln!("resumed {:?} after space returned", freed.elapsed());
    // New samples arrive after the resumption.
    eventually(Duration::from_secs(10), || {
        let now = raw_samples(&base, "fault_test_gauge{i=\"0\"}", "1m");
        now.values()
            .next()
            .and_then(|v| v.last())
            .filter(|s| s.0 > resumed_ms)
            .map(|_| ())
    })
    .expect("no samples after resumption");
    let after = raw_samples(&base, "fault_test_gauge", "1h");

    // A restart finds everything committed before and after.
    vigil.stop(Duration::from_secs(20));
    drop(vigil);
    let (vigil, base) = start_vigil_at(
        root.path(),
        &data,
        &scrape_config(&[("faults", &exporter)]),
        &[],
    );
    let restarted = raw_samples(&base, "fault_test_gauge", "1h");
    for (k, v) in &after {
        let r = &restarted[k];
        let missing: Vec<_> = v.iter().filter(|s| !r.contains(s)).collect();
        assert!(missing.is_empty(), "{k}: lost after restart: {missing:?}");
    }
    assert_eq!(
        self_metric(&base, "prometheus_tsdb_wal_corruptions_total"),
        Some(0.0)
    );
    drop(vigil);
}

// ---------------------------------------------------------------------------
// Cardinality limit

#[test]
fn series_limit_holds_an_exploding_target_while_others_ingest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let steady = Exporter::start("steady_gauge", 100);
    let exploding = Exporter::start("exploding_gauge", 100);
    let config = scrape_config(&[("steady", &steady), ("exploding", &exploding)]);
    // 200 series plus 5 scrape report series per target, and room for 40
    // more: the explosion (100 -> 1000 series) is held there.
    const LIMIT: f64 = 250.0;
    let limit_flag = format!("--storage.tsdb.max-head-series={LIMIT}");
    let (vigil, base) = start_vigil(dir.path(), &config, &[&limit_flag]);
    let head_series = |b: &str| self_metric(b, "prometheus_tsdb_head_series");
    eventually(Duration::from_secs(30), || {
        (head_series(&base) == Some(210.0)).then_some(())
    })
    .unwrap_or_else(|| panic!("head never reached 210 series\n{}", vigil.output()));

    exploding.series.store(1000, Ordering::Relaxed);
    eventually(Duration::from_secs(20), || {
        self_metric(&base, "vigil_tsdb_head_series_limit_rejections_total")
            .filter(|&n| n >= 2.0 * 960.0)
            .map(|_| ())
    })
    .expect("rejections were not counted");
    assert_eq!(
        head_series(&base),
        Some(LIMIT),
        "the head must stay at the limit"
    );
    // The steady target keeps ingesting: fresh samples for all its series,
    // and it is healthy.
    let fresh = |b: &str, m: &str| scalar(b, &format!("count(count_over_time({m}[5s]))"));
    eventually(Duration::from_secs(10), || {
        (fresh(&base, "steady_gauge") == Some(100.0)).then_some(())
    })
    .expect("the steady target stopped ingesting");
    assert_eq!(scalar(&base, "up{job=\"steady\"}"), Some(1.0));
    // The exploding target's existing series keep ingesting too.
    assert_eq!(fresh(&base, "exploding_gauge"), Some(140.0));
    // Logged, naming the metric that was adding series.
    let log = vigil.output();
    let line = log
        .lines()
        .find(|l| l.contains("head series limit reached"))
        .unwrap_or_else(|| panic!("no limit log line:\n{log}"));
    assert!(line.contains("exploding_gauge"), "{line}");
    assert!(!line.contains("steady_gauge"), "{line}");
    // At most once a minute.
    std::thread::sleep(Duration::from_secs(2));
    let lines = vigil
        .output()
        .lines()
        .filter(|l| l.contains("head series limit reached"))
        .count();
    assert_eq!(lines, 1, "logged more than once a minute");

    // A restart replays within the limit, and scraping goes on.
    let mut vigil = vigil;
    vigil.stop(Duration::from_secs(20));
    drop(vigil);
    let (vigil, base) = start_vigil(dir.path(), &config, &[&limit_flag]);
    assert_eq!(head_series(&base), Some(LIMIT));
    eventually(Duration::from_secs(10), || {
        (fresh(&base, "steady_gauge") == Some(100.0)).then_some(())
    })
    .expect("the steady target did not resume after the restart");
    assert_eq!(head_series(&base), Some(LIMIT));
    drop(vigil);
}
