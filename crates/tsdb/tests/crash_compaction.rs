//! SIGKILL during compaction and retention: a child process (this test
//! binary re-invoked) appends to a DB with one-minute blocks, compacts
//! (head to blocks, blocks to larger blocks, retention deleting old ones)
//! every few batches and records each commit in a ledger; the parent kills
//! it at random points, often just after it announced a compaction, many
//! times. Then every committed sample newer than what retention may delete
//! is there exactly once, older data is gone only as whole, oldest-first
//! blocks, no blocks overlap and no temporary directory was trusted.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vigil_model::storage::{Appendable, Querier, Queryable};
use vigil_model::{Labels, Matcher};
use vigil_tsdb::db::{Db, DbOptions};

const SERIES: usize = 20;
const STEP: i64 = 1000;
const BASE: i64 = 1_000_000;
const BLOCK: i64 = 60_000;
/// Retention in sample time: 12 minutes, with blocks compacted up to 9.
const RETENTION: i64 = 12 * 60_000;
const CHILD_ENV: &str = "VIGIL_CRASH_COMPACTION_CHILD";

fn opts() -> DbOptions {
    let mut o = DbOptions::from_flags(Some(RETENTION), None, Some(BLOCK), Some(9 * BLOCK));
    o.head.wal_segment_size = 64 * 1024;
    o.head.head_chunk_file_size = 64 * 1024;
    o
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "crash_compaction"), ("s", &s.to_string())])
}

fn value(s: usize, t: i64) -> f64 {
    ((t - BASE) / STEP) as f64 * (s as f64 + 1.0) + 0.5
}

/// Runs in the child: appends and compacts until killed.
#[test]
fn crash_compaction_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let db = Db::open(&root.join("data"), opts()).expect("open");
    let mut ledger = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("ledger"))
        .expect("ledger");
    let newest = db.head().max_time().max(
        db.blocks()
            .last()
            .map_or(i64::MIN, |b| b.meta().max_time - 1),
    );
    let mut t = if newest < BASE { BASE } else { newest + STEP };
    let mut refs = [0u64; SERIES];
    let mut batches = 0u64;
    loop {
        let mut app = db.appender();
        for (s, r) in refs.iter_mut().enumerate() {
            *r = app.append(*r, &labels(s), t, value(s, t)).expect("append");
        }
        app.commit().expect("commit");
        writeln!(ledger, "C {t}").expect("ledger");
        batches += 1;
        if batches.is_multiple_of(20) {
            writeln!(ledger, "K").expect("ledger");
            db.compact().expect("compact");
        }
        t += STEP;
    }
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn ledger(root: &Path) -> (Vec<i64>, usize) {
    let text = fs::read_to_string(root.join("ledger")).unwrap_or_default();
    let mut committed = Vec::new();
    let mut compactions = 0;
    for line in text.lines() {
        if line == "K" {
            compactions += 1;
        } else if let Some(t) = line.strip_prefix("C ").and_then(|v| v.parse().ok()) {
            committed.push(t);
        }
    }
    (committed, compactions)
}

/// Samples of one querier, per series index.
fn samples(q: &dyn Querier) -> BTreeMap<usize, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in q
        .select(None, &[Matcher::equal("__name__", "crash_compaction")])
        .unwrap()
    {
        let idx: usize = s.labels().get("s").unwrap().parse().unwrap();
        let mut it = s.iter();
        let v: &mut Vec<(i64, f64)> = out.entry(idx).or_default();
        while let Some(x) = it.next().unwrap() {
            v.push((x.t, x.v));
        }
    }
    out
}

fn temp_dirs(data: &Path) -> Vec<String> {
    fs::read_dir(data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn sigkill_during_compaction_and_retention() {
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
            0x2545_f491_4f6c_dd1du64
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64,
        );
    eprintln!("compaction crash test seed {seed:#x}");
    let mut rounds = 0;
    let mut temp_seen = 0;
    // Bounded by time as well as rounds: the whole test stays under 60 s.
    while rounds < 80 && started.elapsed() < Duration::from_secs(40) {
        rounds += 1;
        let (_, compactions_before) = ledger(root.path());
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_compaction_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if !rng(&mut seed).is_multiple_of(3) {
            // Kill just after a compaction started: inside it, mostly.
            let skip = rng(&mut seed) % 3;
            let deadline = Instant::now() + Duration::from_secs(3);
            while ledger(root.path()).1 <= compactions_before + skip as usize
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(300));
            }
            std::thread::sleep(Duration::from_micros(rng(&mut seed) % 30_000));
        } else {
            std::thread::sleep(Duration::from_millis(50 + rng(&mut seed) % 400));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "child exited by itself in round {rounds}: {status}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // SAFETY: a signal to the child we spawned, by its PID.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "child died otherwise: {status}"
        );
        temp_seen += temp_dirs(&data).len();
    }

    let (committed, compactions) = ledger(root.path());
    assert!(compactions > 20, "only {compactions} compactions ran");
    let last = *committed.last().unwrap();
    assert!(
        last - BASE > 2 * RETENTION,
        "retention never came into play ({} min of data)",
        (last - BASE) / 60_000
    );

    let db = Db::open(&data, opts()).expect("the DB must open on whatever the kills left");
    assert!(
        temp_dirs(&data).is_empty(),
        "left over: {:?}",
        temp_dirs(&data)
    );
    let blocks = db.blocks();
    assert!(blocks.len() > 1);
    // Blocks never overlap: a compaction's output and its parents are
    // never both loaded.
    for w in blocks.windows(2) {
        let (a, b) = (w[0].meta(), w[1].meta());
        assert!(
            a.max_time <= b.min_time,
            "overlapping blocks {a:?} and {b:?}"
        );
    }
    // Each sample is stored exactly once across the blocks and the head.
    let mut seen: BTreeMap<(usize, i64), u32> = BTreeMap::new();
    let head_mint = blocks.last().map_or(i64::MIN, |b| b.meta().max_time);
    let sources: Vec<Box<dyn Querier>> = blocks
        .iter()
        .map(|b| Box::new(b.querier(i64::MIN, i64::MAX)) as Box<dyn Querier>)
        .chain(std::iter::once(
            Box::new(db.head().head_querier(head_mint, i64::MAX)) as Box<dyn Querier>,
        ))
        .collect();
    for q in &sources {
        for (s, v) in samples(q.as_ref()) {
            for (t, x) in v {
                assert_eq!(x, value(s, t), "series {s} at {t}");
                *seen.entry((s, t)).or_default() += 1;
            }
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).take(5).collect();
    assert!(dups.is_empty(), "samples stored twice: {dups:?}");
    // Through the DB: per series, exactly the committed samples from the
    // oldest kept block on (plus possibly the batch committed just before
    // the last kill, whose ledger line was not written).
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let got = samples(q.as_ref());
    let oldest_kept = blocks[0].meta().min_time;
    let newest_block_max = blocks.last().unwrap().meta().max_time;
    // Retention deletes only blocks ending more than RETENTION before the
    // newest block's end.
    assert!(
        oldest_kept <= newest_block_max - RETENTION,
        "retention deleted too much: oldest kept {oldest_kept}, newest block end {newest_block_max}"
    );
    let committed_set: std::collections::HashSet<i64> = committed.iter().copied().collect();
    let want: std::collections::HashSet<i64> = committed
        .iter()
        .copied()
        .filter(|&t| t >= oldest_kept)
        .collect();
    for s in 0..SERIES {
        let have: std::collections::HashSet<i64> = got[&s].iter().map(|x| x.0).collect();
        let extra: Vec<i64> = have.iter().copied().filter(|t| !want.contains(t)).collect();
        // A kill between a commit and its ledger line leaves a sample the
        // ledger lacks; the next child resumed after it, so it sits in a
        // one-step hole of the ledger (or right after its end).
        let in_hole = |t: i64| {
            committed_set.contains(&(t - STEP))
                && (committed_set.contains(&(t + STEP)) || t == last + STEP)
        };
        assert!(
            extra.iter().all(|&t| in_hole(t)),
            "series {s}: samples never committed: {extra:?}"
        );
        let missing: Vec<i64> = want
            .iter()
            .copied()
            .filter(|t| !have.contains(t))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "series {s}: committed samples lost: {missing:?}"
        );
    }
    eprintln!(
        "{rounds} SIGKILLs, {compactions} compactions, {} committed batches, {} blocks left, {temp_seen} temp dirs found after kills; {:?}",
        committed.len(),
        blocks.len(),
        started.elapsed()
    );
}
