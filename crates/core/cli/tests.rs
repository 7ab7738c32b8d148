//! Tests of `vigil promql` and `vigil query` against a canned HTTP server
//! on 127.0.0.1 and against a local engine.

#[allow(dead_code)]
#[path = "mod.rs"]
mod cli;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use clap::Parser;

use cli::*;
use vigil_model::{Labels, Matcher, Sample};
use vigil_web::*;

/// Serves `responses` in order (status, body), one per connection, and
/// records each request's first line and body.
struct CannedServer {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

fn canned(responses: Vec<(u16, &'static str)>) -> CannedServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut r = BufReader::new(stream);
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut len = 0;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                if l.trim().is_empty() {
                    break;
                }
                if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut b = vec![0; len];
            r.read_exact(&mut b).unwrap();
            rec.lock()
                .unwrap()
                .push((first.trim().to_string(), String::from_utf8(b).unwrap()));
            let mut s = r.into_inner();
            write!(
                s,
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                status,
                body.len(),
                body
            )
            .unwrap();
        }
    });
    CannedServer { url, seen }
}

#[derive(Parser)]
struct TestCli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    Promql(PromqlArgs),
    Query(QueryArgs),
}

fn no_local(_: &Path) -> Result<Arc<dyn QueryEngine>, String> {
    Err("no TSDB in this test".into())
}

fn run(argv: &[&str]) -> (i32, String, String) {
    run_with(argv, &no_local)
}

fn run_with(argv: &[&str], opener: LocalOpener) -> (i32, String, String) {
    let mut full = vec!["vigil"];
    full.extend_from_slice(argv);
    let parsed = TestCli::try_parse_from(full).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match parsed.cmd {
        Cmd::Promql(a) => run_promql(&a, opener, &mut out, &mut err),
        Cmd::Query(a) => run_query(&a, &mut out, &mut err),
    };
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"__name__":"up","job":"node","instance":"b:9100"},"value":[1700000000,"1"]},
 {"metric":{"__name__":"up","job":"alpha","instance":"a:9090"},"value":[1700000000,"0.5"]},
 {"metric":{"job":"x"},"value":[1700000000,"NaN"]}]}}"#;

#[test]
fn instant_table_is_sorted_and_aligned() {
    let srv = canned(vec![(200, VECTOR)]);
    let (code, out, err) = run(&["promql", "--server", &srv.url, "--time", "1700000000", "up"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "SERIES                                   VALUE\n\
         up{instance=\"a:9090\", job=\"alpha\"}  0.5\n\
         up{instance=\"b:9100\", job=\"node\"}   1\n\
         {job=\"x\"}                              NaN\n"
            .replace(
                "SERIES                                   VALUE",
                &format!("{:<34}  VALUE", "SERIES")
            )
            .replace(
                "up{instance=\"a:9090\", job=\"alpha\"}  0.5",
                &format!("{:<34}  0.5", "up{instance=\"a:9090\", job=\"alpha\"}")
            )
            .replace(
                "up{instance=\"b:9100\", job=\"node\"}   1",
                &format!("{:<34}  1", "up{instance=\"b:9100\", job=\"node\"}")
            )
            .replace(
                "{job=\"x\"}                              NaN",
                &format!("{:<34}  NaN", "{job=\"x\"}")
            )
    );
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen[0].0, "POST /api/v1/query HTTP/1.1");
    assert_eq!(seen[0].1, "query=up&time=1700000000");
}

#[test]
fn json_and_csv_formats() {
    let srv = canned(vec![(200, VECTOR), (200, VECTOR)]);
    let (code, out, _) = run(&["promql", "--server", &srv.url, "--format", "json", "up"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resultType"], "vector");
    assert_eq!(v["result"].as_array().unwrap().len(), 3);
    assert_eq!(v["result"][0]["value"][1], "1");
    let (code, out, _) = run(&["promql", "--server", &srv.url, "--format", "csv", "up"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "series,timestamp,value\n\
         \"up{instance=\"\"a:9090\"\", job=\"\"alpha\"\"}\",1700000000,0.5\n\
         \"up{instance=\"\"b:9100\"\", job=\"\"node\"\"}\",1700000000,1\n\
         \"{job=\"\"x\"\"}\",1700000000,NaN\n"
    );
}

const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
 {"metric":{"__name__":"rate","job":"a"},"values":[[0,"0"],[60,"1"],[120,"2"],[180,"3"]]},
 {"metric":{"__name__":"rate","job":"b"},"values":[[0,"3"],[60,"2"],[120,"1"],[180,"0"]]}]}}"#;

#[test]
fn range_query_draws_a_chart() {
    let srv = canned(vec![(200, MATRIX), (200, MATRIX)]);
    let (code, out, err) = run(&[
        "promql",
        "--server",
        &srv.url,
        "--start",
        "0",
        "--end",
        "180",
        "--step",
        "1m",
        "--no-color",
        "rate",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].trim_start().starts_with("3 ┤"), "{out}");
    assert!(lines[15].trim_start().starts_with("0 ┤"), "{out}");
    assert!(lines[8].starts_with("1.5 ┤"), "{out}");
    assert!(
        out.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "{out}"
    );
    assert!(out.contains("1970-01-01T00:00:00Z"), "{out}");
    assert!(out.contains("1970-01-01T00:03:00Z"), "{out}");
    assert!(
        out.contains("[1] rate{job=\"a\"}") && out.contains("[2] rate{job=\"b\"}"),
        "{out}"
    );
    // Rising line: top-right and bottom-left cells carry dots.
    let row = |i: usize| {
        lines[i]
            .split('┤')
            .nth(1)
            .unwrap()
            .chars()
            .collect::<Vec<char>>()
    };
    assert_ne!(row(0)[71], '\u{2800}');
    assert_ne!(row(15)[0], '\u{2800}');
    let seen = srv.seen.lock().unwrap();
    assert_eq!(seen[0].0, "POST /api/v1/query_range HTTP/1.1");
    assert_eq!(seen[0].1, "query=rate&start=0&end=180&step=60");
    drop(seen);
    // --format table lists the points per series instead.
    let (_, out, _) = run(&[
        "promql", "--server", &srv.url, "--start", "0", "--end", "180", "--format", "table", "rate",
    ]);
    assert!(
        out.starts_with("rate{job=\"a\"}\n  1970-01-01T00:00:00Z  0\n"),
        "{out}"
    );
}

#[test]
fn parse_error_prints_caret() {
    let srv = canned(vec![(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:14: parse error: unexpected \"}\" in label matching, expected string"}"#,
    )]);
    let (code, out, err) = run(&["promql", "--server", &srv.url, "sum(up{job=})"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Error: invalid parameter \"query\": 1:14: parse error: unexpected \"}\" in label matching, expected string\n\
         \x20 sum(up{job=})\n\
         \x20              ^\n"
    );
}

#[test]
fn caret_on_second_line_and_unicode() {
    let q = "sum(\n  rate(é[5m] x)\n)";
    let pos = cli::result::error_position("2:15: parse error: unexpected identifier", q).unwrap();
    assert_eq!(&q[pos..pos + 1], "x");
    let report =
        cli::render::error_report(q, "2:15: parse error: unexpected identifier", Some(pos));
    assert_eq!(
        report,
        "Error: 2:15: parse error: unexpected identifier\n    rate(é[5m] x)\n               ^\n"
    );
}

#[test]
fn execution_error_exits_1_and_connection_error_exits_2() {
    let srv = canned(vec![(
        422,
        r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
    )]);
    let (code, _, err) = run(&["promql", "--server", &srv.url, "a / b"]);
    assert_eq!(code, 1);
    assert_eq!(err, "Error: many-to-many matching not allowed\n");
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = run(&[
        "promql",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "up",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("Error: cannot connect to 127.0.0.1:"),
        "{err}"
    );
    let (code, _, _) = run(&["promql", "--server", "https://example.invalid", "up"]);
    assert_eq!(code, 2);
}

struct LocalEngine;
impl QueryEngine for LocalEngine {
    fn instant_query(&self, q: &str, t: i64, _: &QueryOptions) -> Result<QueryOutput, QueryError> {
        if q == "up{" {
            return Err(QueryError {
                kind: ErrorKind::BadData,
                message: "1:4: parse error: unexpected end of input".into(),
                position: Some(3),
            });
        }
        Ok(QueryOutput {
            value: QueryValue::Vector(vec![VectorElement {
                labels: Labels::from_pairs(&[("__name__", "up")]),
                t,
                v: 1.0,
            }]),
            warnings: vec![],
            stats: SampleStats::default(),
        })
    }
    fn range_query(
        &self,
        _: &str,
        s: i64,
        e: i64,
        step: i64,
        _: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let samples = (0..)
            .map(|i| s + i * step)
            .take_while(|t| *t <= e)
            .map(|t| Sample::new(t, t as f64))
            .collect();
        Ok(QueryOutput {
            value: QueryValue::Matrix(vec![MatrixSeries {
                labels: Labels::from_pairs(&[("__name__", "up")]),
                samples,
            }]),
            warnings: vec!["PromQL info: local".into()],
            stats: SampleStats::default(),
        })
    }
    fn format_query(&self, q: &str) -> Result<String, QueryError> {
        Ok(q.into())
    }
    fn parse_metric_selector(&self, _: &str) -> Result<Vec<Matcher>, QueryError> {
        Ok(vec![])
    }
    fn selectors(&self, _: &str) -> Result<Vec<Vec<Matcher>>, QueryError> {
        Ok(vec![])
    }
}

#[test]
fn data_dir_uses_the_local_engine() {
    let dir = std::env::temp_dir();
    let dir_s = dir.display().to_string();
    let opener = |p: &Path| -> Result<Arc<dyn QueryEngine>, String> {
        assert_eq!(p, std::env::temp_dir().as_path());
        Ok(Arc::new(LocalEngine))
    };
    let (code, out, _) = run_with(
        &[
            "promql", "--data", &dir_s, "--time", "10", "--format", "csv", "up",
        ],
        &opener,
    );
    assert_eq!(code, 0);
    assert_eq!(out, "series,timestamp,value\nup,10,1\n");
    let (code, out, err) = run_with(
        &[
            "promql", "--data", &dir_s, "--start", "0", "--end", "60", "--step", "30", "--format",
            "csv", "up",
        ],
        &opener,
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "series,timestamp,value\nup,0,0\nup,30,30000\nup,60,60000\n"
    );
    assert_eq!(err, "Warning: PromQL info: local\n");
    let (code, _, err) = run_with(&["promql", "--data", &dir_s, "up{"], &opener);
    assert_eq!(code, 1);
    assert!(err.ends_with("  up{\n     ^\n"), "{err}");
    let (code, _, err) = run(&["promql", "--data", &dir_s, "up"]);
    assert_eq!(code, 2);
    assert!(err.contains("no TSDB in this test"));
}

#[test]
fn metadata_subcommands() {
    let srv = canned(vec![
        (
            200,
            r#"{"status":"success","data":[{"__name__":"up","job":"b"},{"__name__":"up","job":"a"}]}"#,
        ),
        (
            200,
            r#"{"status":"success","data":["__name__","job"],"warnings":["results truncated due to limit"]}"#,
        ),
        (200, r#"{"status":"success","data":["a","b"]}"#),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#,
        ),
    ]);
    let (code, out, _) = run(&[
        "query",
        "--server",
        &srv.url,
        "series",
        "--match",
        "up",
        "--match",
        "{job=\"a\"}",
        "--start",
        "0",
        "--end",
        "60",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out, "up{job=\"a\"}\nup{job=\"b\"}\n");
    let (code, out, err) = run(&["query", "--server", &srv.url, "labels", "--limit", "2"]);
    assert_eq!((code, out.as_str()), (0, "__name__\njob\n"));
    assert_eq!(err, "Warning: results truncated due to limit\n");
    let (code, out, _) = run(&[
        "query",
        "--server",
        &srv.url,
        "--json",
        "label-values",
        "job",
    ]);
    assert_eq!((code, out.as_str()), (0, "[\"a\",\"b\"]\n"));
    let (code, _, err) = run(&["query", "--server", &srv.url, "series"]);
    assert_eq!(code, 1);
    assert_eq!(err, "Error: no match[] parameter provided\n");
    let seen = srv.seen.lock().unwrap();
    assert_eq!(
        seen[0].0,
        "GET /api/v1/series?match%5B%5D=up&match%5B%5D=%7Bjob%3D%22a%22%7D&start=0&end=60 HTTP/1.1"
    );
    assert_eq!(seen[1].0, "GET /api/v1/labels?limit=2 HTTP/1.1");
    assert_eq!(seen[2].0, "GET /api/v1/label/job/values HTTP/1.1");
}

#[test]
fn time_resolution_and_defaults() {
    use cli::promql::{evaluation, resolve_time, Evaluation};
    let now = 1_700_000_000_000;
    assert_eq!(resolve_time("now", now), Ok(now));
    assert_eq!(resolve_time("-1h", now), Ok(now - 3_600_000));
    assert_eq!(resolve_time("now-90s", now), Ok(now - 90_000));
    assert_eq!(resolve_time("-1.5", now), Ok(-1500));
    assert_eq!(resolve_time("2023-11-14T22:13:20Z", now), Ok(now));
    assert!(resolve_time("yesterday", now).is_err());
    let args = |v: &[&str]| {
        let mut full = vec!["vigil", "promql"];
        full.extend_from_slice(v);
        match TestCli::try_parse_from(full).unwrap().cmd {
            Cmd::Promql(a) => a,
            Cmd::Query(_) => unreachable!(),
        }
    };
    assert_eq!(
        evaluation(&args(&["up"]), now),
        Ok(Evaluation::Instant { time: now })
    );
    assert_eq!(
        evaluation(&args(&["--start", "-1h", "up"]), now),
        Ok(Evaluation::Range {
            start: now - 3_600_000,
            end: now,
            step: 25_000
        })
    );
    assert!(evaluation(&args(&["--start", "10", "--end", "5", "up"]), now).is_err());
    assert!(
        TestCli::try_parse_from(["vigil", "promql", "--time", "1", "--step", "1", "up"]).is_err()
    );
    assert!(TestCli::try_parse_from([
        "vigil", "promql", "--data", "d", "--server", "http://x", "up"
    ])
    .is_err());
}
