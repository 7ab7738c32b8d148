//! Interop of whole blocks with the real `promtool` (Debian `prometheus`):
//! blocks Vigil writes pass `promtool tsdb analyze` and `promtool tsdb dump`
//! prints exactly the samples written; blocks promtool writes open in Vigil
//! with every sample present. Skips with a message when promtool is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use vigil_model::storage::Querier;
use vigil_model::{Labels, MatchOp, Matcher, Sample, STALE_NAN};
use vigil_tsdb::block::{Block, BlockBuilder};
use vigil_tsdb::chunkenc::{EncodedChunk, SAMPLES_PER_CHUNK};
use vigil_tsdb::meta::{BlockMetaCompaction, Ulid};

fn have_promtool() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return true;
    }
    eprintln!("skipping: promtool not installed (apt-get install prometheus)");
    false
}

type Data = BTreeMap<Labels, Vec<(i64, u64)>>;

fn rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Series with counters, gauges, special floats and irregular timestamps.
fn dataset(start: i64) -> Data {
    let mut rnd = rng(0x9e37_79b9);
    let mut out = Data::new();
    for s in 0..40 {
        let l = Labels::from_pairs(&[
            (
                "__name__",
                ["node_cpu_seconds_total", "up", "go_gc_duration_seconds"][s % 3],
            ),
            ("instance", &format!("10.0.0.{}:9100", s % 7)),
            ("job", if s % 2 == 0 { "node" } else { "api \"quoted\"" }),
            ("series", &s.to_string()),
        ]);
        let mut t = start + (rnd() % 1000) as i64;
        let mut c = 0.0;
        let mut v = Vec::new();
        for i in 0..(100 + s * 20) {
            t += if rnd().is_multiple_of(9) {
                1 + (rnd() % 60_000) as i64
            } else {
                15_000
            };
            let x = match (s % 4, i % 37) {
                (_, 5) => STALE_NAN,
                (2, 6) => f64::INFINITY,
                (2, 7) => f64::NEG_INFINITY,
                (0, _) => {
                    c += (rnd() % 100) as f64 * 0.25;
                    c
                }
                (1, _) => (rnd() % 1_000_000) as f64 / 1e3,
                _ => f64::from_bits(rnd() >> 2),
            };
            v.push((t, x.to_bits()));
        }
        out.insert(l, v);
    }
    out
}

fn write_block(dir: &Path, data: &Data) -> Ulid {
    let mut syms = BTreeSet::new();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    for (l, s) in data {
        for x in l {
            syms.insert(x.name.clone());
            syms.insert(x.value.clone());
        }
        mint = mint.min(s[0].0);
        maxt = maxt.max(s[s.len() - 1].0);
    }
    let ulid = Ulid::new();
    let mut b = BlockBuilder::create(dir, ulid, mint, maxt + 1, &syms).unwrap();
    for (l, s) in data {
        let samples: Vec<Sample> = s
            .iter()
            .map(|&(t, v)| Sample::new(t, f64::from_bits(v)))
            .collect();
        let chunks: Vec<EncodedChunk> = samples
            .chunks(SAMPLES_PER_CHUNK)
            .filter_map(EncodedChunk::from_samples)
            .collect();
        b.add_series(l, &chunks).unwrap();
    }
    b.finish(BlockMetaCompaction {
        level: 1,
        sources: vec![ulid],
        ..Default::default()
    })
    .unwrap();
    ulid
}

/// Parses Go's `%g`-style floats as promtool prints them.
fn parse_go_float(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("bad float {s:?}")),
    }
}

/// Parses `{a="b", c="d"}` with Go string escapes.
fn parse_labels(s: &str) -> Labels {
    let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut pairs = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while b[i] == b' ' || b[i] == b',' {
            i += 1;
        }
        let eq = inner[i..].find('=').unwrap() + i;
        let name = inner[i..eq].to_string();
        i = eq + 2;
        let mut val = String::new();
        while b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
                val.push(match b[i] {
                    b'n' => '\n',
                    b't' => '\t',
                    c => c as char,
                });
            } else {
                let ch = inner[i..].chars().next().unwrap();
                val.push(ch);
                i += ch.len_utf8() - 1;
            }
            i += 1;
        }
        i += 1;
        pairs.push((name, val));
    }
    Labels::from_pairs(&pairs)
}

/// Normalises NaN payloads: text output cannot tell them apart.
fn norm(v: u64) -> u64 {
    if f64::from_bits(v).is_nan() {
        0x7ff8_0000_0000_0001
    } else {
        v
    }
}

#[test]
fn vigil_blocks_pass_promtool_analyze_and_dump() {
    if !have_promtool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(1_700_000_000_000);
    let ulid = write_block(dir.path(), &data);

    let out = Command::new("promtool")
        .args(["tsdb", "analyze"])
        .arg(dir.path())
        .arg(ulid.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "analyze failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("Block ID: {ulid}")), "{text}");
    assert!(text.contains("Series: 40"), "{text}");
    assert!(text.contains("Label names: 4"), "{text}");

    // promtool opens the dir as a read-only DB, which wants a WAL dir.
    std::fs::create_dir(dir.path().join("wal")).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = Data::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let close = line.rfind('}').unwrap();
        let l = parse_labels(&line[..=close]);
        let mut rest = line[close + 1..].split_whitespace();
        let v = parse_go_float(rest.next().unwrap());
        let t: i64 = rest.next().unwrap().parse().unwrap();
        got.entry(l).or_default().push((t, norm(v.to_bits())));
    }
    let want: Data = data
        .iter()
        .map(|(l, s)| (l.clone(), s.iter().map(|&(t, v)| (t, norm(v))).collect()))
        .collect();
    assert_eq!(got.len(), want.len());
    for (l, s) in &want {
        assert_eq!(got.get(l), Some(s), "series {l}");
    }
}

fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

#[test]
fn promtool_blocks_open_in_vigil() {
    if !have_promtool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Spans several 2h blocks.
    let start = 1_700_000_000_000i64;
    let mut rnd = rng(7);
    let mut want = Data::new();
    let mut input = String::from("# TYPE vigil_backfill gauge\n");
    for s in 0..12 {
        let l = Labels::from_pairs(&[("__name__", "vigil_backfill"), ("shard", &s.to_string())]);
        let mut t = start;
        let mut v = Vec::new();
        for _ in 0..(400 + s * 37) {
            t += 30_000 + (rnd() % 3) as i64;
            let x = (rnd() % 100_000) as f64 / 7.0;
            input.push_str(&format!(
                "vigil_backfill{{shard=\"{s}\"}} {} {}.{:03}\n",
                value_text(x),
                t / 1000,
                t % 1000
            ));
            v.push((t, x.to_bits()));
        }
        want.insert(l, v);
    }
    input.push_str("# EOF\n");
    let in_path = dir.path().join("in.om");
    std::fs::write(&in_path, input).unwrap();
    let out_dir = dir.path().join("data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&in_path)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut got = Data::new();
    let mut blocks = 0;
    let mut shards = BTreeSet::new();
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let p = e.unwrap().path();
        if !p.is_dir() {
            continue;
        }
        blocks += 1;
        let b = Block::open(&p).unwrap();
        let q = b.querier(i64::MIN, i64::MAX);
        let all = [Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()];
        for s in q.select(None, &all).unwrap() {
            let mut it = s.iter();
            let e = got.entry(s.labels().clone()).or_default();
            while let Some(x) = it.next().unwrap() {
                e.push((x.t, x.v.to_bits()));
            }
        }
        shards.extend(q.label_values("shard", &[]).unwrap());
    }
    assert_eq!(shards.len(), 12);
    assert!(blocks >= 2, "expected several blocks, got {blocks}");
    for s in got.values_mut() {
        s.sort_unstable();
    }
    assert_eq!(got, want);
}

/// Splits analyze output into its header and its sections, each section's
/// lines sorted (Go's unstable sort orders ties arbitrarily).
fn analyze_sections(text: &str) -> Vec<Vec<String>> {
    text.split("\n\n")
        .map(|sec| {
            let mut lines: Vec<String> = sec.lines().map(str::to_string).collect();
            if lines.len() > 1 && lines[0].ends_with(':') {
                lines[1..].sort();
            }
            lines
        })
        .collect()
}

#[test]
fn vigil_tools_print_what_promtool_prints() {
    if !have_promtool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(1_700_000_000_000);
    // Two blocks, the second overlapping the first in time: dump must merge.
    let (a, b): (Data, Data) = data
        .into_iter()
        .partition(|(l, _)| l.get("job") == Some("node"));
    write_block(dir.path(), &a);
    write_block(dir.path(), &b);
    std::fs::create_dir(dir.path().join("wal")).unwrap();

    let run = |args: &[&str]| -> String {
        let out = Command::new("promtool")
            .args(args)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let ours = vigil_tsdb::tools::format_list(&vigil_tsdb::tools::list(dir.path()).unwrap());
    let theirs = run(&["tsdb", "list"]);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&ours), sorted(&theirs));

    let report = vigil_tsdb::tools::analyze(dir.path(), None, 1000).unwrap();
    let theirs = run(&["tsdb", "analyze", "--limit=1000"]);
    assert_eq!(
        analyze_sections(&report.to_string()),
        analyze_sections(&theirs)
    );

    let mut ours = String::new();
    vigil_tsdb::tools::dump(dir.path(), i64::MIN, i64::MAX, &[], |l, s| {
        ours.push_str(&vigil_tsdb::tools::format_dump_line(l, s));
        ours.push('\n');
        Ok(())
    })
    .unwrap();
    let theirs = run(&["tsdb", "dump"]);
    assert_eq!(ours.lines().count(), theirs.lines().count());
    for (o, t) in ours.lines().zip(theirs.lines()) {
        assert_eq!(o, t);
    }
}

#[test]
fn backfill_writer_output_reads_back_in_promtool() {
    if !have_promtool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(1_700_000_000_000);
    let mut w =
        vigil_tsdb::block::BlockWriter::new(dir.path(), vigil_tsdb::block::DEFAULT_BLOCK_DURATION);
    // Interleave series sample by sample (time-ordered input, as a real
    // OpenMetrics dump of many series is).
    let ids: Vec<(u32, &Vec<(i64, u64)>)> = data
        .iter()
        .map(|(l, s)| (w.series_id(l).unwrap(), s))
        .collect();
    let longest = ids.iter().map(|x| x.1.len()).max().unwrap();
    for k in 0..longest {
        for (id, s) in &ids {
            if let Some(&(t, v)) = s.get(k) {
                w.add(*id, t, f64::from_bits(v)).unwrap();
            }
        }
    }
    let blocks = w.flush().unwrap();
    assert!(blocks.len() >= 2);
    std::fs::create_dir(dir.path().join("wal")).unwrap();
    let listing: Vec<vigil_tsdb::tools::BlockListing> = blocks.iter().map(Into::into).collect();
    let ours = vigil_tsdb::tools::format_list(&listing);
    let out = Command::new("promtool")
        .args(["tsdb", "list"])
        .arg(dir.path())
        .output()
        .unwrap();
    let theirs = String::from_utf8(out.stdout).unwrap();
    let mut a: Vec<&str> = ours.lines().map(str::trim_end).collect();
    let mut b: Vec<&str> = theirs.lines().map(str::trim_end).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);

    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut got = Data::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let close = line.rfind('}').unwrap();
        let mut rest = line[close + 1..].split_whitespace();
        let v = parse_go_float(rest.next().unwrap());
        let t: i64 = rest.next().unwrap().parse().unwrap();
        got.entry(parse_labels(&line[..=close]))
            .or_default()
            .push((t, norm(v.to_bits())));
    }
    let want: Data = data
        .iter()
        .map(|(l, s)| (l.clone(), s.iter().map(|&(t, v)| (t, norm(v))).collect()))
        .collect();
    assert_eq!(got, want);
}
