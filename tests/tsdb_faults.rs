//! The TSDB's fault tolerance seen through the real binary: a corrupt block
//! chunk fails only the query that reads it (HTTP 422, `execution`), a full
//! disk turns ingestion read-only and back, and the head series limit holds
//! a target that explodes in cardinality (also across a restart).

mod common;

use common::{http, start_vigil};
use std::path::{Path, PathBuf};
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
