//! Fuzz-style harness for every decoder of bytes that come from disk or the
//! network: WAL segments and records, index files, block chunk segments,
//! XOR chunks, `meta.json`, tombstones, head chunk files, the exposition
//! parsers, the PromQL parser, config loading and file SD files.
//!
//! Each decoder gets arbitrary bytes and mutations of valid inputs made by
//! the real writers, and must: not panic; keep its peak heap allocation
//! within `k * input_len + c` (a counting global allocator measures this
//! thread's allocations); and reject garbage with an error where the format
//! has a magic number or checksum to reject it by.
//!
//! Cases per decoder: `PROPTEST_CASES` (default 256). For long runs use the
//! cargo-fuzz targets in `fuzz/` (see docs/CONTRIBUTING.md, "Fuzzing").

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use proptest::prelude::*;

// ---- allocation accounting -------------------------------------------------

/// Counts the bytes allocated by the current thread while `TRACK` is set.
struct Counting;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static CUR: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let c = CUR.with(|c| {
                let v = c.get() + delta;
                c.set(v);
                v
            });
            PEAK.with(|p| p.set(p.get().max(c)));
        }
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only
// const-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size() as isize);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result and the peak of the bytes it held
/// allocated at once (on this thread).
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    CUR.with(|c| c.set(0));
    PEAK.with(|p| p.set(0));
    TRACK.with(|t| t.set(true));
    let r = f();
    TRACK.with(|t| t.set(false));
    (r, PEAK.with(|p| p.get()).max(0) as usize)
}

/// A decoder under test: its name, allocation bound `k * len + c`, and
/// whether random bytes must be rejected.
struct Target {
    name: &'static str,
    k: usize,
    c: usize,
    garbage_is_error: bool,
}

/// Runs one input through `decode` and checks the allocation bound.
fn check(
    t: &Target,
    input: &[u8],
    decode: &dyn Fn(&[u8]) -> Result<usize, String>,
) -> Result<Result<usize, String>, TestCaseError> {
    let (res, peak) = peak_of(|| decode(input));
    let bound = t.k * input.len() + t.c;
    prop_assert!(
        peak <= bound,
        "{}: peak allocation {peak} B for {} input bytes exceeds {bound} B",
        t.name,
        input.len()
    );
    Ok(res)
}

/// Random bytes that do not start like the valid input (so a magic number
/// or a checksum must reject them).
fn garbage(
    t: &Target,
    input: &[u8],
    valid: &[u8],
    decode: &dyn Fn(&[u8]) -> Result<usize, String>,
) -> Result<(), TestCaseError> {
    let res = check(t, input, decode)?;
    let looks_valid = input.len() >= 4 && valid.len() >= 4 && input[..4] == valid[..4];
    if t.garbage_is_error && !looks_valid && !input.iter().all(|&b| b == 0) {
        prop_assert!(res.is_err(), "{}: garbage accepted: {:?}", t.name, res);
    }
    Ok(())
}

/// Edits of a valid input: byte flips, inserts, removals, a cut.
#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
    Cut(prop::sample::Index),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            4 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Edit::Flip(i, b)),
            2 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Edit::Insert(i, b)),
            2 => (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, n)| Edit::Remove(i, n)),
            1 => any::<prop::sample::Index>().prop_map(Edit::Cut),
        ],
        1..6,
    )
}

fn mutate(valid: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = valid.to_vec();
    for e in edits {
        match e {
            Edit::Flip(i, x) if !b.is_empty() => {
                let i = i.index(b.len());
                b[i] ^= x;
            }
            Edit::Insert(i, bytes) => {
                let i = i.index(b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Remove(i, n) if !b.is_empty() => {
                let i = i.index(b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Cut(i) => {
                let i = i.index(b.len() + 1);
                b.truncate(i);
            }
            _ => {}
        }
    }
    b
}

// ---- valid inputs, made by the real writers --------------------------------

mod seeds {
    use std::path::Path;
    use vigil_model::Labels;
    use vigil_tsdb::chunkenc::{EncodedChunk, XorChunk};
    use vigil_tsdb::wal::record::{self, RefExemplar, RefSample, RefSeries, Stone};

    fn series(i: u64) -> Labels {
        Labels::from_pairs(&[
            ("__name__", "fuzz_metric"),
            ("i", &i.to_string()),
            ("job", "fuzz"),
        ])
    }

    pub fn wal_records() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut b = Vec::new();
        let ser: Vec<RefSeries> = (1..4)
            .map(|i| RefSeries {
                series_ref: i,
                labels: series(i),
            })
            .collect();
        record::encode_series(&ser, &mut b);
        out.push(std::mem::take(&mut b));
        let smp: Vec<RefSample> = (0..20)
            .map(|i| RefSample {
                series_ref: 1 + i % 3,
                t: 1_700_000_000_000 + i as i64 * 15_000,
                v: i as f64 * 1.5,
            })
            .collect();
        record::encode_samples(&smp, &mut b);
        out.push(std::mem::take(&mut b));
        record::encode_tombstones(
            &[Stone {
                series_ref: 2,
                mint: 10,
                maxt: 20,
            }],
            &mut b,
        );
        out.push(std::mem::take(&mut b));
        record::encode_exemplars(
            &[RefExemplar {
                series_ref: 1,
                t: 5,
                v: 1.0,
                labels: Labels::from_pairs(&[("trace_id", "abc")]),
            }],
            &mut b,
        );
        out.push(b);
        out
    }

    /// A WAL segment with series, samples (spanning pages) and tombstones.
    pub fn wal_segment(dir: &Path) -> Vec<u8> {
        use vigil_tsdb::wal::{Wal, WalOptions, WalScratch};
        let w = Wal::open(
            dir,
            WalOptions {
                segment_size: 1 << 20,
                compress: true,
            },
        )
        .unwrap();
        let mut s = WalScratch::default();
        for r in wal_records().iter().cycle().take(12) {
            w.log(&[r], &mut s).unwrap();
        }
        // A record larger than a page: fragments.
        let big: Vec<RefSample> = (0..4000)
            .map(|i| RefSample {
                series_ref: 1,
                t: i,
                v: (i * 7919 % 1000) as f64,
            })
            .collect();
        let mut b = Vec::new();
        record::encode_samples(&big, &mut b);
        w.log(&[&b], &mut s).unwrap();
        w.close().unwrap();
        drop(w);
        let seg = dir.join(vigil_tsdb::wal::segment_name(0));
        let bytes = std::fs::read(&seg).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        bytes
    }

    pub fn xor_chunk() -> Vec<u8> {
        let mut c = XorChunk::new();
        for i in 0..120i64 {
            c.append(1_700_000_000_000 + i * 15_000 + i % 3, (i * i) as f64 / 7.0)
                .unwrap();
        }
        c.into_bytes()
    }

    /// A small block written by `BlockBuilder`: its index, chunk segment,
    /// meta.json and (after a deletion) tombstones.
    pub struct Block {
        pub index: Vec<u8>,
        pub chunks: Vec<u8>,
        pub meta: Vec<u8>,
        pub tombstones: Vec<u8>,
    }

    pub fn block(dir: &Path) -> Block {
        use vigil_model::{MatchOp, Matcher, Sample};
        use vigil_tsdb::block::{Block as TsdbBlock, BlockBuilder};
        use vigil_tsdb::meta::{BlockMetaCompaction, Ulid};
        let mut syms = std::collections::BTreeSet::new();
        let all: Vec<Labels> = (0..8).map(series).collect();
        for l in &all {
            for p in l {
                syms.insert(p.name.clone());
                syms.insert(p.value.clone());
            }
        }
        let ulid = Ulid::new();
        let mut b = BlockBuilder::create(dir, ulid, 0, 7_200_000, &syms).unwrap();
        for (i, l) in all.iter().enumerate() {
            let samples: Vec<Sample> = (0..300)
                .map(|k| Sample::new(k * 15_000, (k * (i as i64 + 1)) as f64))
                .collect();
            let chunks: Vec<EncodedChunk> = samples
                .chunks(120)
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
        let bdir = dir.join(ulid.to_string());
        let blk = TsdbBlock::open(&bdir).unwrap();
        let m = [Matcher::new(MatchOp::Regex, "i", "[1-3]").unwrap()];
        blk.delete(100_000, 900_000, &m).unwrap();
        drop(blk);
        let read = |p: &str| std::fs::read(bdir.join(p)).unwrap();
        Block {
            index: read("index"),
            chunks: read("chunks/000001"),
            meta: read("meta.json"),
            tombstones: read("tombstones"),
        }
    }

    /// A head chunk file with in-order and out-of-order chunks.
    pub fn head_chunk_file(dir: &Path) -> Vec<u8> {
        use vigil_tsdb::head_chunks::ChunkDiskMapper;
        let m = ChunkDiskMapper::open(dir).unwrap();
        let data = xor_chunk();
        for i in 0..6u64 {
            m.write_chunk(
                i + 1,
                i as i64,
                i as i64 + 100,
                1,
                &data[..data.len() - (i as usize * 9)],
                i == 4,
            )
            .unwrap();
        }
        m.close().unwrap();
        drop(m);
        let bytes = std::fs::read(dir.join("000001")).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        bytes
    }

    pub const PROM_TEXT: &str = "# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000
# Escaping in label values:
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9
metric_without_timestamp_and_labels 12.47
# A weird metric from before the epoch:
something_weird{problem=\"division by zero\"} +Inf 3982045
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.5\"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
";

    pub const OPENMETRICS: &str = "# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0
# TYPE foo histogram
foo_bucket{le=\"0.0\"} 0
foo_bucket{le=\"1e-05\"} 0 # {trace_id=\"KOO5S4vxi0o\"} 0.67
foo_bucket{le=\"+Inf\"} 17 123.4
foo_count 17
foo_sum 324789.3
# TYPE state stateset
state{state=\"a\"} 1
# TYPE info info
build_info{version=\"1.2\"} 1
# EOF
";

    pub const PROMQL: &[&str] = &[
        r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        r#"topk(5, rate(node_network_receive_bytes_total{device=~"eth.*|en.*"}[5m] offset 1h @ 1700000000))"#,
        "100 * (1 - node_memory_MemAvailable_bytes / on(instance) group_left(job) node_memory_MemTotal_bytes)",
        "max_over_time(deriv(rate(x[1m])[10m:30s])[1h:]) unless absent(y) or -vector(1) ^ 2 % 3",
        r#"label_replace(up, "a", "$1", "instance", "(.*):.*") > bool 0.5e3"#,
        "count_values(\"v\", {__name__=~\"a|b\", job!~\"x\"}) == ignoring(foo) sum without(bar) (c)",
    ];

    pub const CONFIG: &str = "global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels:
    monitor: codelab
    foo: bar
rule_files:
  - first.rules
  - my/*.rules
remote_write:
  - url: http://remote1/push
    name: drop_expensive
    write_relabel_configs:
      - source_labels: [__name__]
        regex: expensive.*
        action: drop
scrape_configs:
  - job_name: prometheus
    honor_labels: true
    file_sd_configs:
      - files: [foo/*.slow.json, single/file.yml]
        refresh_interval: 10m
    static_configs:
      - targets: ['localhost:9090', 'localhost:9191']
        labels:
          my: label
    relabel_configs:
      - source_labels: [job, __meta_dns_name]
        regex: (.*)some-[regex]
        target_label: job
        replacement: foo-${1}
      - action: labelmap
        regex: __meta_(.*)
  - job_name: service-x
    basic_auth:
      username: admin_name
      password: multiline\\nmysecret\\ntest
    scrape_interval: 50s
    scrape_timeout: 5s
    sample_limit: 1000
    metrics_path: /my_path
    scheme: https
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: expensive_metric.*
        action: drop
alerting:
  alertmanagers:
    - scheme: https
      static_configs:
        - targets: ['1.2.3.4:9093']
";

    pub const FILE_SD_JSON: &str = r#"[
  {"targets": ["localhost:9090", "example.org:443"], "labels": {"foo": "bar", "__meta_x": "y"}},
  {"targets": ["my.domain:9100"]}
]"#;

    pub const FILE_SD_YAML: &str = "- targets: ['localhost:9090', 'example.org:443']
  labels:
    foo: bar
- targets:
    - my.domain:9100
";
}

// ---- decoders ---------------------------------------------------------------

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn expfmt(b: &[u8], om: bool) -> Result<usize, String> {
    use vigil_scrape::expfmt::{Format, Parser};
    let f = if om {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    };
    let mut p = Parser::new(b, f);
    let mut n = 0;
    while let Some(e) = p.next_entry().map_err(|e| e.to_string())? {
        if let vigil_scrape::expfmt::Entry::Series(s) = e {
            n += s.labels().count();
        }
        n += 1;
    }
    Ok(n)
}

fn expfmt_stream(b: &[u8], om: bool) -> Result<usize, String> {
    use vigil_scrape::expfmt::{Format, StreamParser};
    let f = if om {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    };
    let mut p = StreamParser::new(b, f);
    let mut n = 0;
    while p.next_entry().map_err(|e| e.to_string())?.is_some() {
        n += 1;
    }
    Ok(n)
}

fn promql(b: &[u8]) -> Result<usize, String> {
    let s = String::from_utf8_lossy(b);
    vigil_promql::parser::parse(&s)
        .map(|e| format!("{e}").len())
        .map_err(|e| format!("{e:?}"))
}

fn config(b: &[u8]) -> Result<usize, String> {
    let s = String::from_utf8_lossy(b);
    vigil_config::Config::from_yaml(&s, "/fuzz/prometheus.yml")
        .map(|c| c.scrape_configs.len())
        .map_err(|e| e.to_string())
}

fn file_sd(b: &[u8], json: bool) -> Result<usize, String> {
    let p = if json { "/fuzz/t.json" } else { "/fuzz/t.yml" };
    vigil_scrape::discovery::file::parse_file(Path::new(p), b)
        .map(|g| g.len())
        .map_err(|e| e.to_string())
}

// ---- the harness --------------------------------------------------------------

/// One decoder: random bytes (up to `max_len`) and mutated valid inputs.
fn run_target(
    t: Target,
    valid: Vec<Vec<u8>>,
    max_len: usize,
    decode: impl Fn(&[u8]) -> Result<usize, String>,
) {
    // Lazily built process-wide tables (e.g. a Unicode class regex the
    // PromQL lexer compiles on its first non-ASCII character) are built
    // before measuring: they are allocated once, not per input.
    for w in ["\u{e9}x", "{a=~\"\u{e9}\"}", "a\u{fffd}b"] {
        let _ = decode(w.as_bytes());
    }
    // Valid inputs decode (the harness exercises real structure).
    for v in &valid {
        let (res, _) = peak_of(|| decode(v));
        assert!(
            res.is_ok(),
            "{}: a valid input was rejected: {:?}",
            t.name,
            res
        );
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let first = valid.first().cloned().unwrap_or_default();
    let strat = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max_len).prop_map(|b| (b, true)),
        (prop::sample::select(valid.clone()), edits()).prop_map(|(v, e)| (mutate(&v, &e), false)),
    ];
    let res = runner.run(&strat, |(input, random)| {
        if random {
            garbage(&t, &input, &first, &decode)
        } else {
            check(&t, &input, &decode).map(|_| ())
        }
    });
    if let Err(e) = res {
        panic!("{}: {e}", t.name);
    }
}

#[test]
fn wal_segments() {
    let dir = scratch();
    let valid = vec![seeds::wal_segment(dir.path())];
    // Snappy expands up to 64x; the reader's buffers are fixed size.
    let t = Target {
        name: "WAL segment",
        k: 70,
        c: 1 << 20,
        garbage_is_error: true,
    };
    run_target(t, valid, 4096, |b| {
        vigil_tsdb::fuzz::wal_segment(dir.path(), b)
    });
}

#[test]
fn wal_records() {
    let t = Target {
        name: "WAL record",
        k: 64,
        c: 4096,
        garbage_is_error: false,
    };
    run_target(t, seeds::wal_records(), 512, vigil_tsdb::fuzz::wal_record);
}

#[test]
fn block_files() {
    let dir = scratch();
    let b = seeds::block(dir.path());
    let scratch_dir = scratch();
    let t = Target {
        name: "index",
        k: 16,
        c: 64 * 1024,
        garbage_is_error: true,
    };
    run_target(t, vec![b.index], 2048, vigil_tsdb::fuzz::index);
    let t = Target {
        name: "chunk segment",
        k: 8,
        c: 64 * 1024,
        garbage_is_error: true,
    };
    run_target(t, vec![b.chunks], 2048, |x| {
        vigil_tsdb::fuzz::chunk_segment(scratch_dir.path(), x)
    });
    let t = Target {
        name: "meta.json",
        k: 16,
        c: 16 * 1024,
        garbage_is_error: true,
    };
    run_target(t, vec![b.meta], 1024, vigil_tsdb::fuzz::meta_json);
    let t = Target {
        name: "tombstones",
        k: 16,
        c: 4096,
        garbage_is_error: true,
    };
    run_target(t, vec![b.tombstones], 512, vigil_tsdb::fuzz::tombstones);
}

#[test]
fn xor_chunks() {
    let t = Target {
        name: "XOR chunk",
        k: 4,
        c: 4096,
        garbage_is_error: false,
    };
    run_target(
        t,
        vec![seeds::xor_chunk()],
        512,
        vigil_tsdb::fuzz::xor_chunk,
    );
}

#[test]
fn head_chunk_files() {
    let dir = scratch();
    let valid = vec![seeds::head_chunk_file(dir.path())];
    // The last file is copied into anonymous memory (page-rounded).
    let t = Target {
        name: "head chunk file",
        k: 4,
        c: 64 * 1024,
        garbage_is_error: true,
    };
    run_target(t, valid, 2048, |b| {
        vigil_tsdb::fuzz::head_chunk_file(dir.path(), b)
    });
}

#[test]
fn exposition_formats() {
    for (om, body) in [(false, seeds::PROM_TEXT), (true, seeds::OPENMETRICS)] {
        let t = Target {
            name: if om { "OpenMetrics" } else { "Prometheus text" },
            k: 8,
            c: 8192,
            garbage_is_error: false,
        };
        run_target(t, vec![body.as_bytes().to_vec()], 1024, |b| expfmt(b, om));
        let t = Target {
            name: "exposition (streaming)",
            k: 8,
            c: 1536 * 1024,
            garbage_is_error: false,
        };
        run_target(t, vec![body.as_bytes().to_vec()], 1024, |b| {
            expfmt_stream(b, om)
        });
    }
}

#[test]
fn promql_parser() {
    let valid: Vec<Vec<u8>> = seeds::PROMQL
        .iter()
        .map(|q| q.as_bytes().to_vec())
        .collect();
    // Regex matchers compile to automata whose size follows the pattern's
    // structure, not its length (a Unicode `.*` alone takes ~300 KiB); the
    // regex crate caps it (10 MiB by default).
    let t = Target {
        name: "PromQL",
        k: 512,
        c: 1024 * 1024,
        garbage_is_error: false,
    };
    run_target(t, valid, 256, promql);
}

#[test]
fn config_loading() {
    let t = Target {
        name: "config",
        k: 512,
        c: 256 * 1024,
        garbage_is_error: false,
    };
    run_target(t, vec![seeds::CONFIG.as_bytes().to_vec()], 1024, config);
}

#[test]
fn file_sd_files() {
    let t = Target {
        name: "file SD (JSON)",
        k: 64,
        c: 16 * 1024,
        garbage_is_error: false,
    };
    run_target(t, vec![seeds::FILE_SD_JSON.as_bytes().to_vec()], 512, |b| {
        file_sd(b, true)
    });
    let t = Target {
        name: "file SD (YAML)",
        k: 256,
        c: 128 * 1024,
        garbage_is_error: false,
    };
    run_target(t, vec![seeds::FILE_SD_YAML.as_bytes().to_vec()], 512, |b| {
        file_sd(b, false)
    });
}
