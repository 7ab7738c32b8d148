//! End to end: command-line clients written for Prometheus work against
//! Vigil unchanged. `promtool query instant|range|series|labels` (Debian's
//! 2.42) must exit 0 with the same output against Vigil as against a real
//! Prometheus scraping the same fake exporter (and exit 1 with the same
//! message on a bad query). Hand-written URLs as scripts send them
//! (`curl -g '...?query=up{job="x"}'`, quotes and `<`/`>` unescaped) must
//! get the same answers too.
//!
//! Only constant gauges are queried at explicit, already-scraped times, so
//! the two servers' outputs can be compared byte for byte.

mod api_peer;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use api_peer::*;
use common::*;

/// One promtool run: exit code, stdout, stderr.
#[derive(Debug, PartialEq)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn promtool(bin: &Path, args: &[String]) -> Run {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run promtool {args:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The invocations, with `{URL}` standing for the server.
fn invocations(t: i64) -> Vec<(&'static str, Vec<String>)> {
    let time = format!("--time={t}");
    let start = format!("--start={}", t - 4);
    let end = format!("--end={t}");
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (
            "instant",
            v(&[
                "query",
                "instant",
                &time,
                "{URL}",
                "fake_temperature_celsius",
            ]),
        ),
        (
            "instant_json",
            v(&[
                "query",
                "instant",
                "-o",
                "json",
                &time,
                "{URL}",
                "sum by (job) (fake_temperature_celsius)",
            ]),
        ),
        (
            "instant_scalar",
            v(&["query", "instant", &time, "{URL}", "scalar(count(up))"]),
        ),
        (
            "range",
            v(&[
                "query",
                "range",
                &start,
                &end,
                "--step=1s",
                "{URL}",
                "fake_temperature_celsius{room=\"a\"}",
            ]),
        ),
        (
            "range_json",
            v(&[
                "query",
                "range",
                "-o",
                "json",
                &start,
                &end,
                "--step=2s",
                "{URL}",
                "sum by (job) (fake_temperature_celsius)",
            ]),
        ),
        (
            "series",
            v(&[
                "query",
                "series",
                "--match=fake_requests_total",
                &start,
                &end,
                "{URL}",
            ]),
        ),
        (
            "series_json",
            v(&[
                "query",
                "series",
                "-o",
                "json",
                "--match={__name__=~\"fake_temp.*\"}",
                "{URL}",
            ]),
        ),
        ("labels", v(&["query", "labels", "{URL}", "code"])),
        (
            "labels_match",
            v(&[
                "query",
                "labels",
                "--match=fake_temperature_celsius",
                &start,
                &end,
                "{URL}",
                "room",
            ]),
        ),
        (
            "bad_query",
            v(&[
                "query",
                "instant",
                &time,
                "{URL}",
                "fake_temperature_celsius{",
            ]),
        ),
    ]
}

fn run_all(bin: &Path, base: &str, t: i64) -> Vec<(&'static str, Run)> {
    invocations(t)
        .into_iter()
        .map(|(name, args)| {
            let args: Vec<String> = args.into_iter().map(|a| a.replace("{URL}", base)).collect();
            (name, promtool(bin, &args))
        })
        .collect()
}

/// Checks one server's outputs against what the exporter serves.
fn check_outputs(who: &str, runs: &[(&str, Run)], target: &str, t: i64) {
    for (name, run) in runs {
        let want_code = if *name == "bad_query" { 1 } else { 0 };
        assert_eq!(run.code, Some(want_code), "{who} {name}: {run:?}");
    }
    let get = |n: &str| &runs.iter().find(|(name, _)| *name == n).expect(n).1;
    let lbl = format!("instance=\"{target}\", job=\"fake\"");
    assert_eq!(
        get("instant").stdout,
        format!(
            "fake_temperature_celsius{{{lbl}, room=\"a\"}} => 21.5 @[{t}]\n\
             fake_temperature_celsius{{{lbl}, room=\"b\"}} => 19.25 @[{t}]\n"
        ),
        "{who}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&get("instant_json").stdout).expect("instant json");
    assert_eq!(
        json,
        serde_json::json!([{"metric":{"job":"fake"},"value":[t,"40.75"]}]),
        "{who}"
    );
    assert_eq!(
        get("instant_scalar").stdout,
        format!("scalar: 1 @[{t}]\n"),
        "{who}"
    );
    let mut want = format!("fake_temperature_celsius{{{lbl}, room=\"a\"}} =>\n");
    for ts in t - 4..=t {
        want.push_str(&format!("21.5 @[{ts}]\n"));
    }
    assert_eq!(get("range").stdout, want, "{who}");
    let json: serde_json::Value =
        serde_json::from_str(&get("range_json").stdout).expect("range json");
    let points: Vec<serde_json::Value> = [t - 4, t - 2, t]
        .iter()
        .map(|ts| serde_json::json!([ts, "40.75"]))
        .collect();
    assert_eq!(
        json,
        serde_json::json!([{"metric":{"job":"fake"},"values":points}]),
        "{who}"
    );
    assert_eq!(
        get("series").stdout,
        format!(
            "{{__name__=\"fake_requests_total\", code=\"200\", {lbl}, method=\"get\"}}\n\
             {{__name__=\"fake_requests_total\", code=\"500\", {lbl}, method=\"get\"}}\n"
        ),
        "{who}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&get("series_json").stdout).expect("series json");
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{who}: {json}");
    assert_eq!(get("labels").stdout, "200\n500\n", "{who}");
    assert_eq!(get("labels_match").stdout, "a\nb\n", "{who}");
    assert_eq!(
        get("bad_query").stderr,
        "query error: bad_data: invalid parameter \"query\": 1:26: parse error: unexpected end of input inside braces\n",
        "{who}"
    );
}

#[test]
fn promtool_query_works_against_vigil_like_prometheus() {
    let Some(bin) = peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exporter = FakeExporter::start();
    let cfg = scrape_config(&exporter.target());
    let prom = spawn_prometheus(dir.path(), &cfg);
    let (_vigil, vbase) = start_vigil(dir.path(), &cfg, &[]);
    let mut bases = vec![("vigil", vbase)];
    if let Some((p, base)) = &prom {
        wait_prometheus_ready(p, base);
        bases.push(("prometheus", base.clone()));
    }
    // Query 4s back from a time both servers have scraped through.
    let mut latest_first = 0.0f64;
    for (who, base) in &bases {
        let first = eventually(Duration::from_secs(20), || first_scrape(base))
            .unwrap_or_else(|| panic!("{who} never scraped the exporter"));
        latest_first = latest_first.max(first);
    }
    let t = (latest_first.ceil() as i64) + 4;
    while now_secs() < t as f64 + 1.5 {
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut outputs = Vec::new();
    for (who, base) in &bases {
        let runs = run_all(&bin, base, t);
        check_outputs(who, &runs, &exporter.target(), t);
        outputs.push(runs);
    }
    if let [vigil, prom] = outputs.as_slice() {
        for ((name, v), (_, p)) in vigil.iter().zip(prom) {
            assert_eq!(v, p, "{name}: vigil and prometheus differ");
        }
    }
}

/// Sends `GET <target>` byte for byte (no client-side escaping, like
/// `curl -g`) and returns the status code and body.
fn raw_get(base: &str, target: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}

#[test]
fn unescaped_urls_from_scripts_answer_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = FakeExporter::start();
    let cfg = scrape_config(&exporter.target());
    let prom = spawn_prometheus(dir.path(), &cfg);
    let (_vigil, vbase) = start_vigil(dir.path(), &cfg, &[]);
    let mut bases = vec![("vigil", vbase)];
    if let Some((p, base)) = &prom {
        wait_prometheus_ready(p, base);
        bases.push(("prometheus", base.clone()));
    }
    let mut latest_first = 0.0f64;
    for (who, base) in &bases {
        let first = eventually(Duration::from_secs(20), || first_scrape(base))
            .unwrap_or_else(|| panic!("{who} never scraped the exporter"));
        latest_first = latest_first.max(first);
    }
    let t = latest_first.ceil() as i64 + 1;
    while now_secs() < t as f64 + 0.5 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cases = [
        (
            format!("/api/v1/query?query=fake_temperature_celsius{{room=\"a\"}}&time={t}"),
            "21.5",
        ),
        (
            format!("/api/v1/query?query=count(fake_temperature_celsius)>1&time={t}"),
            "2",
        ),
        (
            format!("/api/v1/query?query=sum(fake_temperature_celsius<20)&time={t}"),
            "19.25",
        ),
        (
            format!(
                "/api/v1/query?query=fake_temperature_celsius{{room=~\"a|c\",job!=\"x\"}}&time={t}"
            ),
            "21.5",
        ),
    ];
    let mut answers = Vec::new();
    for (who, base) in &bases {
        let mut mine = Vec::new();
        for (target, want) in &cases {
            let (status, body) = raw_get(base, target);
            assert_eq!(status, 200, "{who} GET {target}: {body:?}");
            let v: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{who} GET {target}: {e}: {body:?}"));
            assert_eq!(
                v["data"]["result"][0]["value"],
                serde_json::json!([t, want]),
                "{who} GET {target}: {body}"
            );
            mine.push(v);
        }
        answers.push(mine);
    }
    if let [vigil, prom] = answers.as_slice() {
        assert_eq!(vigil, prom);
    }
}
