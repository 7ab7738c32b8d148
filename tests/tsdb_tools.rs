//! End to end: `vigil tsdb create-blocks-from openmetrics` writes blocks that
//! the real promtool reads back sample for sample, and that a Vigil server
//! serves; `list`, `analyze`, `dump` and `verify` work on them.

mod common;

use common::*;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const START: i64 = 1_700_000_000; // seconds

/// A small OpenMetrics file: counters, a gauge with an escaped label value,
/// a classic histogram; 3h at 15s. `shuffle` moves some samples late in
/// the file (out of time order across block windows).
fn openmetrics(shuffle: bool) -> String {
    let mut rows: Vec<(i64, String)> = Vec::new();
    for i in 0..(3 * 3600 / 15) {
        let t = START + i * 15;
        for inst in 0..3 {
            rows.push((
                t,
                format!(
                    "http_requests_total{{code=\"200\",instance=\"h{inst}\"}} {} {t}",
                    i * (inst + 1)
                ),
            ));
        }
        rows.push((
            t,
            format!("temp_celsius{{room=\"a \\\"b\\\", c\"}} {}.5 {t}", i % 40),
        ));
        for (le, mult) in [("0.1", 1), ("1", 3), ("+Inf", 4)] {
            rows.push((
                t,
                format!("req_seconds_bucket{{le=\"{le}\"}} {} {t}", i * mult),
            ));
        }
    }
    if shuffle {
        // Move every 7th sample to the end of the file.
        let (late, mut keep): (Vec<_>, Vec<_>) =
            rows.into_iter().enumerate().partition(|(i, _)| i % 7 == 0);
        keep.extend(late);
        rows = keep.into_iter().map(|(_, r)| r).collect();
    }
    let mut out = String::new();
    out.push_str("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    for (_, r) in &rows {
        // Families must stay contiguous in OpenMetrics only per family
        // header; promtool accepts samples interleaved after the headers.
        writeln!(out, "{r}").unwrap();
    }
    out.push_str("# EOF\n");
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn promtool_dump(promtool: &Path, dir: &Path) -> Vec<String> {
    // promtool 2.42 opens the WAL dir even for blocks-only dirs.
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    let text = run(Command::new(promtool).args(["tsdb", "dump"]).arg(dir));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn backfill_matches_promtool(shuffle: bool) {
    let Some(promtool) = peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    std::fs::write(&input, openmetrics(shuffle)).unwrap();
    let ours = dir.path().join("vigil");
    let theirs = dir.path().join("promtool");
    let listing = run(Command::new(vigil_bin())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&ours));
    assert!(listing.contains("BLOCK ULID"), "{listing}");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&theirs));
    let a = promtool_dump(&promtool, &ours);
    let b = promtool_dump(&promtool, &theirs);
    assert_eq!(a.len(), 3 * 720 + 720 + 3 * 720);
    assert!(
        a == b,
        "promtool dump differs between Vigil's and promtool's blocks"
    );
    // promtool analyzes every block Vigil wrote.
    let analyze = run(Command::new(&promtool).args(["tsdb", "analyze"]).arg(&ours));
    assert!(analyze.contains("Series: "), "{analyze}");
    // Our own tools agree.
    let ours_dump = run(Command::new(vigil_bin()).args(["tsdb", "dump"]).arg(&ours));
    let mut ours_lines: Vec<String> = ours_dump.lines().map(str::to_string).collect();
    ours_lines.sort();
    assert!(ours_lines == b, "vigil tsdb dump differs from promtool's");
    let verify = run(Command::new(vigil_bin())
        .args(["tsdb", "verify"])
        .arg(&ours));
    assert!(verify.contains("ok"), "{verify}");
    let list = run(Command::new(vigil_bin()).args(["tsdb", "list"]).arg(&ours));
    assert!(list.lines().count() >= 3, "{list}");
}

#[test]
fn backfill_matches_promtool_time_ordered() {
    backfill_matches_promtool(false);
}

#[test]
fn backfill_matches_promtool_out_of_order() {
    backfill_matches_promtool(true);
}

#[test]
fn server_serves_backfilled_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    std::fs::write(&input, openmetrics(false)).unwrap();
    let data = dir.path().join("data");
    run(Command::new(vigil_bin())
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&data));
    let (_p, base) = start_vigil(
        dir.path(),
        "global:\n  scrape_interval: 1m\n",
        &["--storage.tsdb.retention.time=100y"],
    );
    let t = START + 3600;
    let v: serde_json::Value = http()
        .post(format!("{base}/api/v1/query"))
        .form(&[
            ("query", "sum(http_requests_total)".to_string()),
            ("time", t.to_string()),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    // At t = START+1h, i = 240: 240*1 + 240*2 + 240*3.
    assert_eq!(v["data"]["result"][0]["value"][1], "1440", "{v}");
}

#[test]
fn verify_names_a_corrupt_block() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    std::fs::write(&input, openmetrics(false)).unwrap();
    let data = dir.path().join("data");
    run(Command::new(vigil_bin())
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&data));
    // Flip a byte in the middle of one block's index.
    let block = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("index").exists())
        .unwrap();
    let index = block.join("index");
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&index, bytes).unwrap();
    let out = Command::new(vigil_bin())
        .args(["tsdb", "verify"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let ulid = block.file_name().unwrap().to_string_lossy().to_string();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains(&ulid), "{all}");
}

/// Samples at rates that make Prometheus's head cut chunks away from 120
/// samples: 7 s (fewer, larger chunks), a series starting mid-window, and a
/// rate jump from 60 s to 1 s (the 240-sample cap).
fn openmetrics_mixed_rates() -> String {
    let mut rows: Vec<(i64, String)> = Vec::new();
    for i in 0..(5 * 3600 / 7) {
        let t = START + i * 7;
        rows.push((t, format!("seven_seconds{{k=\"a\"}} {} {t}", i % 97)));
    }
    for i in 0..(3 * 3600 / 15) {
        let t = START + 50 * 60 + i * 15;
        rows.push((t, format!("late_start {} {t}", i * 3)));
    }
    let mut t = START;
    while t < START + 2 * 3600 {
        rows.push((t, format!("rate_jump {} {t}", t % 1000)));
        t += if t < START + 40 * 60 { 60 } else { 1 };
    }
    rows.sort_by_key(|r| r.0);
    let mut out = String::new();
    for (_, r) in &rows {
        writeln!(out, "{r}").unwrap();
    }
    out.push_str("# EOF\n");
    out
}

/// `tsdb list` rows without the ULID and size columns, by min time.
fn list_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[1..7].iter().map(|s| s.to_string()).collect()
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn backfill_cuts_chunks_like_promtool() {
    let Some(promtool) = peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    std::fs::write(&input, openmetrics_mixed_rates()).unwrap();
    let ours = dir.path().join("vigil");
    let theirs = dir.path().join("promtool");
    run(Command::new(vigil_bin())
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&ours));
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&theirs));
    let a = list_rows(&run(Command::new(vigil_bin())
        .args(["tsdb", "list"])
        .arg(&ours)));
    let b = list_rows(&run(Command::new(&promtool)
        .args(["tsdb", "list"])
        .arg(&theirs)));
    assert_eq!(a.len(), 3, "{a:?}");
    // MIN TIME, MAX TIME, DURATION, NUM SAMPLES, NUM CHUNKS, NUM SERIES.
    assert_eq!(a, b, "vigil's blocks differ from promtool's");
    assert_eq!(
        promtool_dump(&promtool, &ours),
        promtool_dump(&promtool, &theirs)
    );
}
