//! Crash safety: a child process (this test binary re-invoked) appends and
//! records each committed batch in a ledger; the parent SIGKILLs it at
//! random points, restarts it, and finally checks that every committed
//! sample is there with the right value. Then the last WAL segment is cut at
//! random offsets and has random bytes flipped: the head must still open
//! (never panic, never refuse) and hold a consistent prefix of the data.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vigil_model::storage::{Appendable, Queryable};
use vigil_model::{Labels, Matcher};
use vigil_tsdb::head::{Head, HeadOptions};

const SERIES: usize = 100;
const STEP: i64 = 1000;
const BASE: i64 = 1_000_000;
const CHILD_ENV: &str = "VIGIL_CRASH_CHILD";

fn opts() -> HeadOptions {
    HeadOptions {
        // Small ranges and segments so chunk cutting, chunk files, head
        // truncation and WAL checkpoints all happen within seconds.
        chunk_range: 60_000,
        wal_segment_size: 64 * 1024,
        head_chunk_file_size: 256 * 1024,
        ..HeadOptions::default()
    }
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "crash_test"), ("s", &s.to_string())])
}

fn value(s: usize, t: i64) -> f64 {
    ((t - BASE) / STEP) as f64 * (s as f64 + 1.0) + 0.25
}

/// Runs in the child: appends batches forever (until killed).
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let head = Head::open(&root.join("data"), opts()).expect("open");
    let mut ledger = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("ledger"))
        .expect("ledger");
    let mut t = if head.max_time() == i64::MIN {
        BASE
    } else {
        head.max_time() + STEP
    };
    let mut refs = vec![0u64; SERIES];
    let mut batches = 0u64;
    loop {
        let mut app = head.appender();
        for (s, r) in refs.iter_mut().enumerate() {
            *r = app.append(*r, &labels(s), t, value(s, t)).expect("append");
        }
        app.commit().expect("commit");
        // Only after commit returned is the batch promised.
        writeln!(ledger, "C {t}").expect("ledger write");
        batches += 1;
        if batches.is_multiple_of(150) {
            let mint = t - 120_000;
            writeln!(ledger, "T {mint}").expect("ledger write");
            head.truncate(mint).expect("truncate");
        }
        t += STEP;
    }
}

struct Ledger {
    committed: Vec<i64>,
    truncated: i64,
}

fn read_ledger(root: &Path) -> Ledger {
    let text = fs::read_to_string(root.join("ledger")).unwrap_or_default();
    let mut l = Ledger {
        committed: Vec::new(),
        truncated: i64::MIN,
    };
    for line in text.lines() {
        // A line cut by the kill is not a promise.
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        let Ok(v) = v.parse::<i64>() else { continue };
        match k {
            "C" => l.committed.push(v),
            "T" => l.truncated = l.truncated.max(v),
            _ => {}
        }
    }
    l
}

/// Samples per series: t -> value bits.
fn read_head(dir: &Path) -> (Head, Vec<Vec<(i64, f64)>>) {
    let head = Head::open(dir, opts()).expect("head must open on whatever it finds");
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = vec![Vec::new(); SERIES];
    for s in q
        .select(None, &[Matcher::equal("__name__", "crash_test")])
        .unwrap()
    {
        let idx: usize = s.labels().get("s").unwrap().parse().unwrap();
        let mut it = s.iter();
        while let Some(x) = it.next().unwrap() {
            out[idx].push((x.t, x.v));
        }
    }
    drop(q);
    (head, out)
}

/// Every stored sample has its value; per series, timestamps ascend.
fn check_values(data: &[Vec<(i64, f64)>]) {
    for (s, v) in data.iter().enumerate() {
        for w in v.windows(2) {
            assert!(w[0].0 < w[1].0, "series {s} not ascending");
        }
        for &(t, x) in v {
            assert_eq!(x, value(s, t), "series {s} at {t}");
        }
    }
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn last_segment(data: &Path) -> Option<PathBuf> {
    let mut segs: Vec<PathBuf> = fs::read_dir(data.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    segs.sort();
    segs.pop()
}

#[test]
fn sigkill_and_damaged_wal() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::env::var("VIGIL_CRASH_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(
            0x9e37_79b9_7f4a_7c15u64
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64,
        );
    eprintln!("crash test seed {seed:#x}");
    let rounds = 12;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let it replay and append for a random while.
        let wait = 200 + rng(&mut seed) % 900;
        std::thread::sleep(Duration::from_millis(wait));
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "child exited by itself in round {round}: {status}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child died of something else: {status}"
        );
    }

    let ledger = read_ledger(root.path());
    assert!(
        ledger.committed.len() > 300,
        "child committed only {} batches",
        ledger.committed.len()
    );
    assert!(ledger.truncated > i64::MIN, "child never truncated");
    let (head, got) = read_head(&data);
    check_values(&got);
    for (s, v) in got.iter().enumerate() {
        let have: std::collections::HashSet<i64> = v.iter().map(|x| x.0).collect();
        for &t in &ledger.committed {
            if t >= ledger.truncated {
                assert!(
                    have.contains(&t),
                    "committed sample of series {s} at {t} lost"
                );
            }
        }
    }
    head.close().unwrap();
    drop(head);
    eprintln!(
        "{} committed batches survived {rounds} SIGKILLs ({:?})",
        ledger.committed.len(),
        started.elapsed()
    );

    // Damage the last WAL segment in copies of the dir.
    let mut damaged = 0;
    for i in 0..16 {
        let copy = root.path().join(format!("copy{i}"));
        copy_dir(&data, &copy);
        let Some(seg) = last_segment(&copy) else {
            break;
        };
        let mut bytes = fs::read(&seg).unwrap();
        let len = bytes.len();
        if i % 2 == 0 {
            bytes.truncate((rng(&mut seed) as usize) % len);
        } else {
            for _ in 0..1 + rng(&mut seed) % 4 {
                let at = (rng(&mut seed) as usize) % len;
                bytes[at] ^= 1 + (rng(&mut seed) % 255) as u8;
            }
        }
        fs::write(&seg, &bytes).unwrap();
        damaged += 1;
        let (head, got) = read_head(&copy);
        check_values(&got);
        // What is left is a prefix: no series has a hole in the committed
        // timestamps after the truncation point.
        for (s, v) in got.iter().enumerate() {
            let have: std::collections::HashSet<i64> = v.iter().map(|x| x.0).collect();
            let newest = v.last().map_or(i64::MIN, |x| x.0);
            for &t in &ledger.committed {
                if t >= ledger.truncated && t <= newest {
                    assert!(have.contains(&t), "copy {i}: series {s} has a hole at {t}");
                }
            }
        }
        // The repaired head accepts appends and keeps them.
        let t = head.max_time() + STEP;
        let mut app = head.appender();
        for s in 0..SERIES {
            app.append(0, &labels(s), t, value(s, t)).unwrap();
        }
        app.commit().unwrap();
        drop(app);
        drop(head);
        let (_head, again) = read_head(&copy);
        check_values(&again);
        for (s, v) in again.iter().enumerate() {
            if v.last().map(|x| x.0) != Some(t) {
                let tail: Vec<i64> = v.iter().rev().take(3).map(|x| x.0).collect();
                let before: Vec<i64> = got[s].iter().rev().take(3).map(|x| x.0).collect();
                let kept = root.keep();
                panic!("kept {kept:?}; copy {i}: series {s} lost the sample appended after repair at {t}: tail {tail:?}, before append {before:?}, truncated {}", ledger.truncated);
            }
        }
        fs::remove_dir_all(&copy).unwrap();
    }
    assert!(damaged > 0);
    eprintln!("crash test done in {:?}", started.elapsed());
}
