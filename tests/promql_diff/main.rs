//! Differential test of the PromQL engine against a real Prometheus
//! (issue 4, item 5): the same generated data in both servers, the same
//! HTTP requests, the same answers.
//!
//! Data: `datagen` writes a seeded OpenMetrics file; `promtool tsdb
//! create-blocks-from openmetrics` turns it into blocks for Prometheus and
//! `vigil tsdb create-blocks-from openmetrics` into blocks for Vigil (or
//! Vigil gets a copy of promtool's blocks, see `Backfill`). Queries:
//! `tests/promql/differential_queries.txt`, each run as instant queries at
//! `INSTANT_TIMES` and range queries over `RANGES`, against both servers.

#[path = "../common/mod.rs"]
mod common;
mod compare;
mod corpus;
mod datagen;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use compare::{Answer, Mode};
use datagen::{END_MS, START_MS};

/// How Vigil's data directory gets the generated data.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Backfill {
    /// Vigil opens a copy of the blocks promtool wrote: tests that Vigil
    /// reads Prometheus's block format, and separates evaluator bugs from
    /// backfill bugs when triaging (`VIGIL_DIFF_BACKFILL=promtool`).
    CopyPromtoolBlocks,
    /// `vigil tsdb create-blocks-from openmetrics` on the same file.
    VigilTool,
}

/// The default; the environment variable `VIGIL_DIFF_BACKFILL`
/// (`vigil` or `promtool`) overrides it.
const VIGIL_BACKFILL: Backfill = Backfill::VigilTool;

fn vigil_backfill() -> Backfill {
    match std::env::var("VIGIL_DIFF_BACKFILL").as_deref() {
        Ok("promtool") => Backfill::CopyPromtoolBlocks,
        Ok("vigil") => Backfill::VigilTool,
        Ok(other) => panic!("VIGIL_DIFF_BACKFILL={other}: expected `vigil` or `promtool`"),
        Err(_) => VIGIL_BACKFILL,
    }
}

const SEED: u64 = 0x5eed_0004;

/// Evaluation times of instant queries, in ms (see the corpus header).
const INSTANT_TIMES: [i64; 8] = [
    START_MS + 120_000,      // 2m in: windows reach before the first sample
    START_MS + 2_833_457,    // misaligned to the scrape grid and to seconds
    START_MS + 77 * 60_000,  // inside api-2's 15m outage
    START_MS + 80 * 60_000,  // 02:00:00, the 2h block boundary
    START_MS + 151 * 60_000, // after api-3 stopped, node-1 just restarted
    END_MS,                  // end of data
    END_MS + 270_000,        // last samples still within the 5m lookback
    END_MS + 600_000,        // nothing within the lookback
];

/// Range queries: (start ms, end ms, step ms).
const RANGES: [(i64, i64, i64); 3] = [
    // The whole data set, aligned steps.
    (START_MS - 300_000, END_MS + 600_000, 60_000),
    // Misaligned start and step across the outage and the block boundary.
    (START_MS + 3_607_500, START_MS + 6_601_250, 37_000),
    // The tail: series ending, lookback running out.
    (END_MS - 1_200_000 + 333, END_MS + 720_000, 23_000),
];

/// Prometheus's config: no scrape jobs, nothing but the backfilled blocks.
const CONFIG: &str = "global:\n  scrape_interval: 15s\n";

/// Far beyond the data's age, so neither server deletes the old blocks.
const RETENTION: &str = "--storage.tsdb.retention.time=100y";

fn secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
    }
}

fn corpus_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql/differential_queries.txt")
}

fn run_ok(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy file");
        }
    }
}

/// One request, as sent to both servers.
#[derive(Clone)]
struct Request {
    label: String,
    path: &'static str,
    params: Vec<(&'static str, String)>,
    /// Send the parameters as a form body (as Grafana does) instead of in
    /// the URL.
    post: bool,
}

impl Request {
    fn get(label: &str, path: &'static str, params: &[(&'static str, &str)]) -> Request {
        Request {
            label: label.to_string(),
            path,
            params: params.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            post: false,
        }
    }

    fn post(label: &str, path: &'static str, params: &[(&'static str, &str)]) -> Request {
        Request {
            post: true,
            ..Request::get(label, path, params)
        }
    }
}

/// Why an API request's error text is not compared (2.42 and 2.53 word it
/// differently), by request label.
const API_TEXT_DIFFERS: &[(&str, &str)] = &[
    (
        "bad time",
        "2.42 says `Invalid time value for 'time'`; Vigil writes `invalid` (not yet checked against the 2.53 source)",
    ),
    (
        "missing query",
        "an empty query's parse error has no position: 2.53's posrange prints `unknown position:`, 2.42 printed `1:1:`",
    ),
    (
        "empty query",
        "an empty query's parse error has no position: 2.53's posrange prints `unknown position:`, 2.42 printed `1:1:`",
    ),
];

/// Requests about the API's parameter handling rather than PromQL:
/// time formats, form bodies, step syntax and its limits.
fn api_requests() -> Vec<Request> {
    const Q: &str = "/api/v1/query";
    const R: &str = "/api/v1/query_range";
    vec![
        Request::get(
            "RFC 3339 time",
            Q,
            &[("query", "up"), ("time", "2024-01-01T02:00:00Z")],
        ),
        Request::get(
            "RFC 3339 time with offset and fraction",
            Q,
            &[("query", "up"), ("time", "2024-01-01T02:00:00.5+01:00")],
        ),
        Request::get(
            "microsecond time",
            Q,
            &[("query", "up"), ("time", "1704074400.123456")],
        ),
        Request::get("negative time", Q, &[("query", "time()"), ("time", "-1.5")]),
        Request::get("bad time", Q, &[("query", "up"), ("time", "abc")]),
        Request::get("missing query", Q, &[("time", "1704074400")]),
        Request::get("empty query", Q, &[("query", ""), ("time", "1704074400")]),
        Request::post(
            "POST form",
            Q,
            &[("query", "sum by (job) (up)"), ("time", "1704074400")],
        ),
        Request::post(
            "POST form range",
            R,
            &[
                ("query", "rate(up[5m])"),
                ("start", "1704070000"),
                ("end", "1704073000"),
                ("step", "60"),
            ],
        ),
        Request::get(
            "bad timeout",
            Q,
            &[("query", "up"), ("time", "1704074400"), ("timeout", "abc")],
        ),
        Request::get(
            "timeout",
            Q,
            &[("query", "up"), ("time", "1704074400"), ("timeout", "30s")],
        ),
        Request::get(
            "duration step",
            R,
            &[
                ("query", "up{job=\"db\"}"),
                ("start", "1704070000"),
                ("end", "1704073000"),
                ("step", "1m"),
            ],
        ),
        Request::get(
            "fractional step",
            R,
            &[
                ("query", "node_load1"),
                ("start", "1704070000"),
                ("end", "1704071000"),
                ("step", "37.5"),
            ],
        ),
        Request::get(
            "RFC 3339 range",
            R,
            &[
                ("query", "up{job=\"batch\"}"),
                ("start", "2024-01-01T01:00:00Z"),
                ("end", "2024-01-01T01:30:00.250Z"),
                ("step", "5m"),
            ],
        ),
        Request::get(
            "zero step",
            R,
            &[
                ("query", "up"),
                ("start", "1704070000"),
                ("end", "1704073000"),
                ("step", "0"),
            ],
        ),
        Request::get(
            "negative step",
            R,
            &[
                ("query", "up"),
                ("start", "1704070000"),
                ("end", "1704073000"),
                ("step", "-15"),
            ],
        ),
        Request::get(
            "bad step",
            R,
            &[
                ("query", "up"),
                ("start", "1704070000"),
                ("end", "1704073000"),
                ("step", "x"),
            ],
        ),
        Request::get(
            "end before start",
            R,
            &[
                ("query", "up"),
                ("start", "1704073000"),
                ("end", "1704070000"),
                ("step", "15"),
            ],
        ),
        Request::get(
            "too many points",
            R,
            &[
                ("query", "up"),
                ("start", "1704069600"),
                ("end", "1704080400"),
                ("step", "0.5"),
            ],
        ),
        Request::get(
            "bad start",
            R,
            &[
                ("query", "up"),
                ("start", "abc"),
                ("end", "1704073000"),
                ("step", "15"),
            ],
        ),
        Request::get(
            "missing end",
            R,
            &[("query", "up"), ("start", "1704070000"), ("step", "15")],
        ),
        Request::get(
            "missing step",
            R,
            &[
                ("query", "up"),
                ("start", "1704070000"),
                ("end", "1704073000"),
            ],
        ),
    ]
}

fn requests_for(query: &str) -> Vec<Request> {
    let mut out = Vec::new();
    for t in INSTANT_TIMES {
        out.push(Request {
            label: format!("instant @{}", secs(t)),
            path: "/api/v1/query",
            params: vec![("query", query.to_string()), ("time", secs(t))],
            post: false,
        });
    }
    for (start, end, step) in RANGES {
        out.push(Request {
            label: format!("range {}..{} step {}s", secs(start), secs(end), secs(step)),
            path: "/api/v1/query_range",
            params: vec![
                ("query", query.to_string()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", secs(step)),
            ],
            post: false,
        });
    }
    out
}

fn ask(client: &reqwest::blocking::Client, base: &str, r: &Request) -> Answer {
    let url = match reqwest::Url::parse_with_params(
        &format!("{base}{}", r.path),
        r.params.iter().map(|(k, v)| (*k, v.as_str())),
    ) {
        Ok(u) => u,
        Err(e) => return Answer::Broken(format!("bad URL: {e}")),
    };
    let req = if r.post {
        let body = url.query().unwrap_or("").to_string();
        let mut u = url.clone();
        u.set_query(None);
        client
            .post(u)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    } else {
        client.get(url)
    };
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.text() {
                Ok(body) => Answer::parse(status, &body),
                Err(e) => Answer::Broken(format!("reading body: {e}")),
            }
        }
        Err(e) => Answer::Broken(format!("request failed: {e}")),
    }
}

/// What one corpus query came to.
struct Outcome {
    /// (request label, differences) for each request that differed.
    diffs: Vec<(String, Vec<String>)>,
    /// Prometheus answered at least one request with samples.
    had_data: bool,
    /// Prometheus answered every request with an error.
    all_errors: bool,
}

fn run_case(
    client: &reqwest::blocking::Client,
    prom: &str,
    vigil: &str,
    case: &corpus::Case,
) -> Outcome {
    let mode = Mode {
        error_text: case.error_text_differs.is_none(),
        ordered: case.ordered,
        range_query: false,
    };
    let mut diffs = Vec::new();
    let (mut had_data, mut all_errors) = (false, true);
    for r in requests_for(&case.query) {
        let want = ask(client, prom, &r);
        let got = ask(client, vigil, &r);
        had_data |= want.has_data();
        all_errors &= want.is_error();
        // Range queries return matrices: order is never part of the answer.
        let range_query = r.path == "/api/v1/query_range";
        let mode = Mode {
            ordered: mode.ordered && !range_query,
            range_query,
            ..mode
        };
        let d = compare::diff(&want, &got, mode);
        if !d.is_empty() {
            diffs.push((r.label, d));
        }
    }
    Outcome {
        diffs,
        had_data,
        all_errors,
    }
}

fn print_diff(case: &corpus::Case, o: &Outcome, tag: &str) {
    println!(
        "{tag} line {} [{}] `{}`",
        case.line, case.family, case.query
    );
    if let Some(r) = &case.known_diff {
        println!("  known difference: {r}");
    }
    let mut shown = 0;
    for (label, d) in &o.diffs {
        for line in d {
            if shown < 6 {
                println!("  {label}: {}", compare::clip(line, 400));
            }
            shown += 1;
        }
    }
    if shown > 6 {
        println!(
            "  ... {} more differences in {} requests",
            shown - 6,
            o.diffs.len()
        );
    }
}

#[test]
fn promql_answers_match_prometheus() {
    let (Some(promtool), Some(prometheus)) = (peer("promtool"), peer("prometheus")) else {
        return;
    };
    let began = Instant::now();
    let cases = corpus::load(&corpus_path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(cases.len() >= 300, "corpus has {} queries", cases.len());

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    // VIGIL_DIFF_KEEP=1 keeps the data set and both data directories for
    // reproducing a mismatch by hand.
    let _tmp = if std::env::var_os("VIGIL_DIFF_KEEP").is_some() {
        println!("keeping {}", tmp.keep().display());
        None
    } else {
        Some(tmp)
    };
    let dir = dir.as_path();
    let data = datagen::generate(SEED);
    let om = dir.join("data.om");
    std::fs::write(&om, &data.text).expect("write OpenMetrics");
    println!(
        "data: {} series, {} samples, {:.1} MiB OpenMetrics, {}..{} (generated in {:.1?})",
        data.series,
        data.samples,
        data.text.len() as f64 / (1 << 20) as f64,
        secs(data.min_ms),
        secs(data.max_ms),
        began.elapsed()
    );

    let blocks = dir.join("blocks");
    let mut cmd = Command::new(&promtool);
    cmd.args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&om)
        .arg(&blocks);
    run_ok(cmd, "promtool tsdb create-blocks-from openmetrics");

    let prom_dir = dir.join("prometheus");
    copy_dir(&blocks, &prom_dir.join("data"));
    let vigil_dir = dir.join("vigil");
    let backfill = vigil_backfill();
    match backfill {
        Backfill::CopyPromtoolBlocks => copy_dir(&blocks, &vigil_dir.join("data")),
        Backfill::VigilTool => {
            let mut cmd = Command::new(vigil_bin());
            cmd.args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&om)
                .arg(vigil_dir.join("data"));
            run_ok(cmd, "vigil tsdb create-blocks-from openmetrics");
        }
    }
    println!(
        "backfilled ({backfill:?} for vigil) in {:.1?}",
        began.elapsed()
    );

    let cfg = prom_dir.join("prometheus.yml");
    std::fs::write(&cfg, CONFIG).expect("write config");
    let port = free_port();
    let mut cmd = Command::new(&prometheus);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(RETENTION);
    let prom_proc = Proc::spawn("prometheus", cmd, &prom_dir);
    let prom = format!("http://127.0.0.1:{port}");
    let (vigil_proc, vigil) = start_vigil(&vigil_dir, CONFIG, &[RETENTION]);
    wait_ok(
        &format!("{prom}/-/ready"),
        Duration::from_secs(60),
        Some(&prom_proc),
    );

    // The backfill reached Prometheus intact: every generated series is
    // there, so an empty answer below means a query found nothing, not that
    // the data is missing.
    let client = http();
    let end = secs(END_MS);
    let census = ask(
        &client,
        &prom,
        &Request::get(
            "census",
            "/api/v1/query",
            &[
                ("query", "count(last_over_time({__name__=~\".+\"}[4h]))"),
                ("time", &end),
            ],
        ),
    );
    match &census {
        Answer::Success {
            data: compare::Data::Vector(v),
            ..
        } if v.len() == 1 => assert_eq!(
            v[0].1.v as usize, data.series,
            "Prometheus holds a different number of series than generated"
        ),
        other => panic!("census query failed on Prometheus: {other:?}"),
    }
    println!("servers ready in {:.1?}", began.elapsed());

    let queried = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let client = http();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let o = run_case(&client, &prom, &vigil, case);
                    results.lock().expect("results lock")[i] = Some(o);
                }
            });
        }
    });
    let results = results.into_inner().expect("results lock");

    let (mut agree, mut differ, mut known, mut known_agree) = (0, 0, 0, 0);
    let (mut with_data, mut errors) = (0, 0);
    for (case, o) in cases.iter().zip(&results) {
        let Some(o) = o else { continue };
        with_data += o.had_data as usize;
        errors += o.all_errors as usize;
        match (o.diffs.is_empty(), case.known_diff.is_some()) {
            (true, false) => agree += 1,
            (true, true) => {
                known_agree += 1;
                println!(
                    "NOTE line {}: `{}` is listed as a known difference but agrees",
                    case.line, case.query
                );
            }
            (false, true) => {
                known += 1;
                print_diff(case, o, "KNOWN");
            }
            (false, false) => {
                differ += 1;
                print_diff(case, o, "MISMATCH");
            }
        }
    }
    let mut api_differ = 0;
    for r in api_requests() {
        let want = ask(&client, &prom, &r);
        let got = ask(&client, &vigil, &r);
        let mode = Mode {
            error_text: !API_TEXT_DIFFERS.iter().any(|(l, _)| *l == r.label),
            ordered: false,
            range_query: r.path == "/api/v1/query_range",
        };
        let d = compare::diff(&want, &got, mode);
        if !d.is_empty() {
            api_differ += 1;
            println!(
                "MISMATCH api request `{}` {} {:?}",
                r.label, r.path, r.params
            );
            for line in d.iter().take(4) {
                println!("  {}", compare::clip(line, 400));
            }
        }
    }
    let requests = cases.len() * (INSTANT_TIMES.len() + RANGES.len());
    println!(
        "promql_diff: {} queries ({requests} requests per server) in {:.1?} (total {:.1?}): \
         {agree} agree, {differ} differ, {known} known 2.42/2.53 differences, \
         {known_agree} known differences agreeing; {with_data} returned data, {errors} are errors; \
         {api_differ} of {} API parameter requests differ",
        cases.len(),
        queried.elapsed(),
        began.elapsed(),
        api_requests().len()
    );
    drop(vigil_proc);
    drop(prom_proc);

    // A corpus that mostly selects nothing would agree vacuously.
    let non_error = cases.len() - errors;
    assert!(
        with_data * 10 >= non_error * 8,
        "only {with_data} of {non_error} non-error queries returned data from Prometheus"
    );
    assert_eq!(
        differ, 0,
        "{differ} queries differ from Prometheus (see above)"
    );
}
