//! A full disk under the head: commits fail with a clear error instead of
//! crashing or corrupting the WAL, ingestion resumes by itself when space
//! returns, and everything committed survives a restart. Uses a small tmpfs
//! mounted by the test; skips (printing why) where mounting is not allowed.

use std::path::{Path, PathBuf};
use std::process::Command;
use vigil_model::storage::{Appendable, Queryable, StorageError};
use vigil_model::{Labels, Matcher};
use vigil_tsdb::head::{Head, HeadOptions};

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
                "skipping: cannot mount a tmpfs ({})",
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

const SERIES: usize = 50;

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "disk_full"), ("s", &s.to_string())])
}

fn commit_batch(head: &Head, t: i64) -> Result<(), StorageError> {
    let mut app = head.appender();
    for s in 0..SERIES {
        app.append(0, &labels(s), t, (t + s as i64) as f64)?;
    }
    app.commit()
}

#[test]
fn full_disk_fails_commits_then_recovers() {
    let root = tempfile::tempdir().unwrap();
    let Some(mnt) = Mount::tmpfs(&root.path().join("mnt"), "4m") else {
        return;
    };
    let data = mnt.0.join("data");
    let opts = HeadOptions {
        wal_segment_size: 256 * 1024,
        chunk_range: 60_000,
        wal_compression: false,
        ..HeadOptions::default()
    };
    let head = Head::open(&data, opts.clone()).unwrap();
    let mut committed = Vec::new();
    let mut t = 1_000_000i64;
    // Leave little room, then write until a commit fails.
    let filler = mnt.0.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 3 * 1024 * 1024]);
    let mut failures = 0;
    for _ in 0..20_000 {
        match commit_batch(&head, t) {
            Ok(()) => committed.push(t),
            Err(e) => {
                assert!(
                    e.to_string().contains("No space left"),
                    "disk-full error should say so: {e}"
                );
                failures += 1;
                if failures >= 3 {
                    break;
                }
            }
        }
        t += 1000;
    }
    assert!(failures >= 3, "the disk never filled");
    // Queries keep working while full.
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    assert_eq!(
        q.select(None, &[Matcher::equal("__name__", "disk_full")])
            .unwrap()
            .len(),
        SERIES
    );
    drop(q);
    // Space returns: ingestion resumes without intervention.
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..50 {
        commit_batch(&head, t).unwrap();
        committed.push(t);
        t += 1000;
    }
    drop(head);
    let head = Head::open(&data, opts).unwrap();
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    let got = q
        .select(None, &[Matcher::equal("__name__", "disk_full")])
        .unwrap();
    assert_eq!(got.len(), SERIES);
    for s in &got {
        let idx: i64 = s.labels().get("s").unwrap().parse().unwrap();
        let mut it = s.iter();
        let mut have = std::collections::HashSet::new();
        while let Some(x) = it.next().unwrap() {
            assert_eq!(x.v, (x.t + idx) as f64);
            have.insert(x.t);
        }
        for t in &committed {
            assert!(
                have.contains(t),
                "committed sample at {t} of series {idx} lost"
            );
        }
    }
    assert_eq!(
        head.stats()
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
