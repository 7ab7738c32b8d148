//! End to end: the TSDB admin API and TSDB status endpoints of the real
//! binary. Admin calls are refused without `--web.enable-admin-api` exactly
//! as Prometheus refuses them; with it, `delete_series` removes exactly the
//! matching samples from a backfilled block and from the head,
//! `clean_tombstones` rewrites the block, and `snapshot` makes a directory
//! that promtool lists and a second Vigil serves. `/api/v1/status/tsdb` is
//! compared with a real Prometheus 2.42 scraping the same fake exporter.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Start of the backfilled data: aligned to 2h, so it is one block.
const START: i64 = 1_699_999_200;
/// Samples per backfilled series (one a minute, 2h).
const BF_SAMPLES: i64 = 120;

const EXPORTER_BODY: &str = "\
# TYPE fake_requests_total counter
fake_requests_total{code=\"200\",path=\"/a\"} 10
fake_requests_total{code=\"200\",path=\"/b\"} 20
fake_requests_total{code=\"500\",path=\"/a\"} 1
# TYPE fake_temp gauge
fake_temp{room=\"kitchen\"} 21.5
fake_temp{room=\"hall\"} 19
# TYPE fake_up gauge
fake_up 1
";

fn scrape_config(exporter: &StaticExporter) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fake\n    static_configs:\n      - targets: ['{}']\n",
        exporter.address()
    )
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn get_json(url: &str) -> (u16, Value) {
    let r = http().get(url).send().unwrap();
    let code = r.status().as_u16();
    let text = r.text().unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text })),
    )
}

fn post(url: &str, form: &[(&str, String)]) -> (u16, String) {
    let r = http().post(url).form(form).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Raw samples of every series `selector` matches within the last `range`
/// before `at` (an instant query of a range selector, so no lookback
/// fills in deleted samples). Keyed by the series' labels.
fn raw_samples(
    base: &str,
    selector: &str,
    range: &str,
    at: f64,
) -> BTreeMap<String, Vec<(f64, String)>> {
    let r = http()
        .post(format!("{base}/api/v1/query"))
        .form(&[
            ("query", format!("{selector}[{range}]")),
            ("time", format!("{at:.3}")),
        ])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
            .collect();
        out.insert(s["metric"].to_string(), samples);
    }
    out
}

/// The backfill input: `bf_metric{inst="0".."2"}`, value = minute index.
fn backfill_input() -> String {
    let mut out = String::from("# TYPE bf_metric gauge\n");
    for i in 0..BF_SAMPLES {
        for inst in 0..3 {
            writeln!(out, "bf_metric{{inst=\"{inst}\"}} {i} {}", START + i * 60).unwrap();
        }
    }
    out.push_str("# EOF\n");
    out
}

fn backfill(dir: &Path, data: &Path) {
    let input = dir.join("in.om");
    std::fs::write(&input, backfill_input()).unwrap();
    let out = Command::new(vigil_bin())
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// ULID dirs of the data dir with their meta.json.
fn blocks(data: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(data).unwrap().flatten() {
        let meta = e.path().join("meta.json");
        if let Ok(text) = std::fs::read_to_string(&meta) {
            out.insert(
                e.file_name().to_string_lossy().to_string(),
                serde_json::from_str(&text).unwrap(),
            );
        }
    }
    out
}

fn num_tombstones(meta: &Value) -> u64 {
    meta["stats"]["numTombstones"].as_u64().unwrap_or(0)
}

fn start_prometheus(dir: &Path, config: &str, extra: &[&str]) -> Option<(Proc, String)> {
    let bin = peer("prometheus")?;
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra);
    let p = Proc::spawn("prometheus", cmd, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base}/-/ready"),
        Duration::from_secs(60),
        Some(&p),
    );
    Some((p, base))
}

#[test]
fn admin_endpoints_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (_v, base) = start_vigil(dir.path(), "global:\n  scrape_interval: 1m\n", &[]);
    let mut ours = Vec::new();
    for ep in ["delete_series", "clean_tombstones", "snapshot"] {
        let (code, body) = post(
            &format!("{base}/api/v1/admin/tsdb/{ep}"),
            &[("match[]", "up".to_string())],
        );
        assert_eq!(code, 500, "{ep}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"status":"error","errorType":"unavailable","error":"admin APIs disabled"})
        );
        ours.push((code, v));
    }
    // Only POST and PUT exist.
    let r = http()
        .get(format!("{base}/api/v1/admin/tsdb/snapshot"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // And snapshots are not even attempted.
    assert!(!dir.path().join("data/snapshots").exists());

    // A real Prometheus answers the same.
    let pdir = tempfile::tempdir().unwrap();
    let Some((_p, pbase)) = start_prometheus(pdir.path(), "global:\n  scrape_interval: 1m\n", &[])
    else {
        return;
    };
    for (i, ep) in ["delete_series", "clean_tombstones", "snapshot"]
        .iter()
        .enumerate()
    {
        let (code, body) = post(
            &format!("{pbase}/api/v1/admin/tsdb/{ep}"),
            &[("match[]", "up".to_string())],
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((code, v), ours[i], "{ep} differs from Prometheus");
    }
}

#[test]
fn delete_clean_and_snapshot_on_block_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    backfill(dir.path(), &data);
    let backfilled = blocks(&data);
    assert_eq!(backfilled.len(), 1, "{backfilled:?}");
    let exporter = StaticExporter::start(EXPORTER_BODY);
    let (_v, base) = start_vigil(
        dir.path(),
        &scrape_config(&exporter),
        &[
            "--web.enable-admin-api",
            "--storage.tsdb.retention.time=100y",
        ],
    );
    let admin = format!("{base}/api/v1/admin/tsdb");

    // --- Deletion inside the block: inst="1", minutes 30..=60.
    let end = (START + BF_SAMPLES * 60) as f64;
    let before = raw_samples(&base, "bf_metric", "3h", end);
    assert_eq!(before.len(), 3);
    assert!(before.values().all(|s| s.len() == BF_SAMPLES as usize));
    let (code, body) = post(
        &format!("{admin}/delete_series"),
        &[
            ("match[]", "bf_metric{inst=\"1\"}".to_string()),
            ("start", (START + 30 * 60).to_string()),
            ("end", (START + 60 * 60).to_string()),
        ],
    );
    assert_eq!((code, body.as_str()), (204, ""));
    let after = raw_samples(&base, "bf_metric", "3h", end);
    for (labels, samples) in &after {
        if labels.contains("\"1\"") {
            let want: Vec<(f64, String)> = (0..BF_SAMPLES)
                .filter(|i| !(30..=60).contains(i))
                .map(|i| ((START + i * 60) as f64, i.to_string()))
                .collect();
            assert_eq!(samples, &want);
        } else {
            assert_eq!(samples, &before[labels], "{labels} must be untouched");
        }
    }
    let with_stones = blocks(&data);
    assert_eq!(with_stones.len(), 1);
    assert!(with_stones.values().all(|m| num_tombstones(m) == 1));

    // --- Deletion in the head. Wait for a few scrapes first.
    let series_500 = "fake_requests_total{code=\"500\"}";
    eventually(Duration::from_secs(30), || {
        let s = raw_samples(&base, "fake_temp", "10m", now_s());
        (s.len() == 2 && s.values().all(|v| v.len() >= 4)).then_some(())
    })
    .expect("four scrapes");
    // A window inside the hall series: its 2nd and 3rd samples.
    let hall = raw_samples(&base, "fake_temp{room=\"hall\"}", "10m", now_s());
    let hall: Vec<(f64, String)> = hall.into_values().next().unwrap();
    let (t2, t3) = (hall[1].0, hall[2].0);
    let (code, _) = post(
        &format!("{admin}/delete_series"),
        &[
            ("match[]", "fake_temp{room=\"hall\"}".to_string()),
            ("start", format!("{t2:.3}")),
            ("end", format!("{t3:.3}")),
        ],
    );
    assert_eq!(code, 204);
    let hall_after: Vec<(f64, String)> = raw_samples(
        &base,
        "fake_temp{room=\"hall\"}",
        "10m",
        hall.last().unwrap().0,
    )
    .into_values()
    .next()
    .unwrap();
    let mut want = hall.clone();
    want.drain(1..3);
    assert_eq!(hall_after, want, "exactly the 2nd and 3rd samples go");

    // Without start/end: everything up to the series' newest sample; later
    // scrapes come back, as in Prometheus.
    let seen_500 = raw_samples(&base, series_500, "10m", now_s());
    let last_seen = seen_500.values().next().unwrap().last().unwrap().0;
    let ok_200 = raw_samples(&base, "fake_requests_total{code=\"200\"}", "10m", now_s());
    let (code, _) = post(
        &format!("{admin}/delete_series"),
        &[("match[]", series_500.to_string())],
    );
    assert_eq!(code, 204);
    let gone = raw_samples(&base, series_500, "10m", now_s());
    for s in gone.values() {
        assert!(
            s.iter().all(|x| x.0 > last_seen),
            "old samples must go: {s:?}"
        );
    }
    let back = eventually(Duration::from_secs(20), || {
        let s = raw_samples(&base, series_500, "10m", now_s());
        s.values().next().filter(|v| v.len() >= 2).cloned()
    })
    .expect("new scrapes of a deleted series show again");
    assert!(back.iter().all(|x| x.0 > last_seen), "{back:?}");
    let ok_200_after = raw_samples(
        &base,
        "fake_requests_total{code=\"200\"}",
        "10m",
        ok_200.values().next().unwrap().last().unwrap().0,
    );
    assert_eq!(ok_200_after, ok_200, "other series keep every sample");

    // --- clean_tombstones rewrites the block without the deleted samples.
    let r = http()
        .put(format!("{admin}/clean_tombstones"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let cleaned = blocks(&data);
    assert_eq!(cleaned.len(), 1, "{cleaned:?}");
    let (old_ulid, _) = with_stones.iter().next().unwrap();
    assert!(
        !cleaned.contains_key(old_ulid),
        "old block and its tombstones are gone"
    );
    assert!(!data.join(old_ulid).exists());
    for (u, m) in &cleaned {
        assert_eq!(num_tombstones(m), 0, "{u}");
        let stones = std::fs::metadata(data.join(u).join("tombstones"))
            .map(|m| m.len())
            .unwrap_or(0);
        // An empty tombstones file is its header and checksum only.
        assert!(stones <= 9, "{u}: tombstones file of {stones} bytes");
        assert_eq!(m["stats"]["numSamples"], 3 * BF_SAMPLES - 31);
    }
    assert_eq!(raw_samples(&base, "bf_metric", "3h", end), after);

    // --- Snapshot with the head.
    let window_end = now_s() - 3.0;
    let (code, body) = post(&format!("{admin}/snapshot"), &[]);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    let name = v["data"]["name"].as_str().unwrap().to_string();
    let (ts, hex) = name.split_once('-').unwrap();
    assert_eq!(ts.len(), 16, "{name}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[8] == b'T', "{name}");
    assert_eq!(hex.len(), 16, "{name}");
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let snap = data.join("snapshots").join(&name);
    let snap_blocks = blocks(&snap);
    assert_eq!(
        snap_blocks.len(),
        2,
        "backfilled block + head: {snap_blocks:?}"
    );
    for u in cleaned.keys() {
        assert!(snap_blocks.contains_key(u));
    }

    // skip_head=true: the blocks only.
    let (code, body) = post(
        &format!("{admin}/snapshot"),
        &[("skip_head", "true".into())],
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let only_blocks = blocks(
        &data
            .join("snapshots")
            .join(v["data"]["name"].as_str().unwrap()),
    );
    assert_eq!(
        only_blocks.keys().collect::<Vec<_>>(),
        cleaned.keys().collect::<Vec<_>>()
    );

    // promtool reads the snapshot.
    if let Some(promtool) = peer("promtool") {
        let out = Command::new(promtool)
            .args(["tsdb", "list"])
            .arg(&snap)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        for u in snap_blocks.keys() {
            assert!(
                text.contains(u.as_str()),
                "promtool list misses {u}:\n{text}"
            );
        }
    }

    // A second Vigil on the snapshot serves the same data.
    let second = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(vigil_bin());
    let cfg = second.path().join("empty.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").unwrap();
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", snap.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y");
    let p2 = Proc::spawn("vigil-snapshot", cmd, second.path());
    let base2 = format!("http://127.0.0.1:{port}");
    wait_ok(
        &format!("{base2}/-/ready"),
        Duration::from_secs(60),
        Some(&p2),
    );
    assert_eq!(raw_samples(&base2, "bf_metric", "3h", end), after);
    for sel in ["fake_requests_total", "fake_temp", "fake_up", "up"] {
        let a = raw_samples(&base, sel, "10m", window_end);
        let b = raw_samples(&base2, sel, "10m", window_end);
        assert!(!a.is_empty(), "{sel}");
        assert_eq!(a, b, "{sel} differs in the snapshot");
    }
}

/// Compares a top list with Prometheus's: same values in the same order;
/// same names for every entry above the smallest value (entries tied at
/// the cut are picked arbitrarily by Prometheus).
fn same_top_list(key: &str, ours: &Value, theirs: &Value) {
    let pairs = |v: &Value| -> Vec<(String, u64)> {
        v.as_array()
            .unwrap_or_else(|| panic!("{key} is not a list: {v}"))
            .iter()
            .map(|e| {
                assert_eq!(e.as_object().unwrap().len(), 2, "{key}: {e}");
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (pairs(ours), pairs(theirs));
    let values = |l: &[(String, u64)]| l.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(values(&a), values(&b), "{key}: ours {a:?} theirs {b:?}");
    let min = values(&a).into_iter().min().unwrap_or(0);
    let above = |l: &[(String, u64)]| {
        let mut v: Vec<_> = l.iter().filter(|x| x.1 > min).cloned().collect();
        v.sort();
        v
    };
    assert_eq!(above(&a), above(&b), "{key}");
    // Ours breaks ties by name.
    for w in a.windows(2) {
        assert!(
            w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0),
            "{key}: {a:?}"
        );
    }
}

#[test]
fn tsdb_status_matches_prometheus() {
    let exporter = StaticExporter::start(EXPORTER_BODY);
    let config = scrape_config(&exporter);
    let dir = tempfile::tempdir().unwrap();
    let (_v, base) = start_vigil(dir.path(), &config, &[]);
    let scraped = |base: &str| {
        eventually(Duration::from_secs(30), || {
            let s = raw_samples(base, "up", "1m", now_s());
            s.values().next().filter(|v| v.len() >= 2).map(|_| ())
        })
        .expect("two scrapes")
    };
    scraped(&base);
    let (code, v) = get_json(&format!("{base}/api/v1/status/tsdb"));
    assert_eq!(code, 200, "{v}");
    let d = &v["data"];
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "headStats",
            "labelValueCountByLabelName",
            "memoryInBytesByLabelName",
            "seriesCountByLabelValuePair",
            "seriesCountByMetricName"
        ]
    );
    let hs = &d["headStats"];
    // 6 exported series + up, scrape_duration_seconds, scrape_samples_*
    // (2) and scrape_series_added.
    assert_eq!(hs["numSeries"], 11, "{v}");
    // __name__ 8, code 2, path 2, room 2, instance 1, job 1.
    assert_eq!(hs["numLabelPairs"], 16, "{v}");
    assert_eq!(hs["chunkCount"], 11, "{v}");
    let (lo, hi) = (
        hs["minTime"].as_i64().unwrap(),
        hs["maxTime"].as_i64().unwrap(),
    );
    let now_ms = (now_s() * 1000.0) as i64;
    assert!(lo <= hi && hi <= now_ms && now_ms - lo < 60_000, "{hs}");
    assert_eq!(
        d["seriesCountByMetricName"][0],
        json!({"name": "fake_requests_total", "value": 3})
    );
    assert_eq!(
        d["seriesCountByMetricName"][1],
        json!({"name": "fake_temp", "value": 2})
    );
    assert_eq!(
        d["labelValueCountByLabelName"][0],
        json!({"name": "__name__", "value": 8})
    );
    let instance = exporter.address();
    assert_eq!(
        &d["seriesCountByLabelValuePair"].as_array().unwrap()[..2],
        &[
            json!({"name": format!("instance={instance}"), "value": 11}),
            json!({"name": "job=fake", "value": 11}),
        ]
    );
    let names_len: u64 = [
        "fake_requests_total",
        "fake_temp",
        "fake_up",
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ]
    .iter()
    .map(|n| n.len() as u64)
    .sum();
    assert_eq!(
        d["memoryInBytesByLabelName"][0],
        json!({"name": "__name__", "value": names_len})
    );
    // limit
    let (_, two) = get_json(&format!("{base}/api/v1/status/tsdb?limit=2"));
    for k in [
        "seriesCountByMetricName",
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ] {
        assert_eq!(two["data"][k].as_array().unwrap().len(), 2, "{k}");
        assert_eq!(two["data"][k][0], d[k][0], "{k}");
    }
    let (code, bad) = get_json(&format!("{base}/api/v1/status/tsdb?limit=0"));
    assert_eq!(code, 400);
    assert_eq!(
        bad,
        json!({"status":"error","errorType":"bad_data","error":"limit must be a positive number"})
    );

    // The same exporter scraped by Prometheus 2.42. Its statistics are
    // cached for 30s from the first call, so ask only once it has data.
    let pdir = tempfile::tempdir().unwrap();
    let Some((_p, pbase)) = start_prometheus(pdir.path(), &config, &[]) else {
        return;
    };
    scraped(&pbase);
    let (_, pv) = get_json(&format!("{pbase}/api/v1/status/tsdb"));
    let (_, v) = get_json(&format!("{base}/api/v1/status/tsdb"));
    let (d, pd) = (&v["data"], &pv["data"]);
    assert_eq!(
        d.as_object().unwrap().keys().collect::<Vec<_>>(),
        pd.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let hs_keys = |x: &Value| {
        let mut k: Vec<String> = x["headStats"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(hs_keys(d), hs_keys(pd));
    for k in ["numSeries", "numLabelPairs", "chunkCount"] {
        assert_eq!(d["headStats"][k], pd["headStats"][k], "{k}: {v} vs {pv}");
    }
    for k in [
        "seriesCountByMetricName",
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ] {
        same_top_list(k, &d[k], &pd[k]);
    }
}

#[test]
fn wal_replay_status_during_and_after_start() {
    let dir = tempfile::tempdir().unwrap();
    // Fresh directory: what Prometheus answers on one.
    {
        let (mut v, base) = start_vigil(dir.path(), "global:\n  scrape_interval: 1m\n", &[]);
        let (code, body) = get_json(&format!("{base}/api/v1/status/walreplay"));
        assert_eq!(code, 200);
        assert_eq!(
            body,
            json!({"status":"success","data":{"min":0,"max":0,"current":0}})
        );
        v.stop(Duration::from_secs(20));
    }
    // A WAL worth replaying: many series in small segments.
    let data = dir.path().join("data");
    {
        use vigil_model::storage::Appendable;
        let h = vigil_tsdb::head::Head::open(
            &data,
            vigil_tsdb::head::HeadOptions {
                wal_segment_size: 256 * 1024,
                ..Default::default()
            },
        )
        .unwrap();
        let t0 = (now_s() as i64 - 600) * 1000;
        for batch in 0..100 {
            let mut app = h.appender();
            for i in 0..1000 {
                let l = vigil_model::Labels::from_pairs(&[
                    ("__name__", "replayed"),
                    ("i", &(batch * 1000 + i).to_string()),
                ]);
                for k in 0..5 {
                    app.append(0, &l, t0 + k * 15_000, k as f64).unwrap();
                }
            }
            app.commit().unwrap();
        }
        h.close().unwrap();
    }
    let last = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()))
        .max()
        .unwrap();
    assert!(last >= 5, "{last}");

    let port = free_port();
    let cfg = dir.path().join("vigil.yml");
    let mut cmd = Command::new(vigil_bin());
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let p = Proc::spawn("vigil-replay", cmd, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // Poll until ready; record what walreplay says while /-/ready is 503.
    let mut during = Vec::new();
    let mut gated = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(std::time::Instant::now() < deadline, "{}", p.output());
        let Ok(r) = client.get(format!("{base}/-/ready")).send() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        if r.status().as_u16() == 200 {
            break;
        }
        assert_eq!(r.status().as_u16(), 503);
        if let Ok(w) = client.get(format!("{base}/api/v1/status/walreplay")).send() {
            assert_eq!(w.status().as_u16(), 200);
            let v: Value = w.json().unwrap();
            during.push(v["data"].clone());
        }
        // The rest of the API waits for the TSDB (or it just got ready).
        let q = client
            .get(format!("{base}/api/v1/status/tsdb"))
            .send()
            .unwrap();
        match q.status().as_u16() {
            503 => gated += 1,
            200 => {}
            other => panic!("/api/v1/status/tsdb during start-up: {other}"),
        }
    }
    let (code, body) = get_json(&format!("{base}/api/v1/status/walreplay"));
    assert_eq!(code, 200);
    assert_eq!(
        body["data"],
        json!({"min": 0, "max": last + 1, "current": last + 1}),
        "{}",
        p.output()
    );
    // Replay takes a while for 100k series: it was seen in progress.
    assert!(
        !during.is_empty(),
        "never saw /-/ready 503 with walreplay answering"
    );
    assert!(gated > 0, "the API was never gated during start-up");
    assert!(
        during.iter().any(|d| d["max"] == last + 1),
        "replay progress never seen before ready: {during:?}"
    );
    let mut prev = -1;
    for d in &during {
        let (min, max, cur) = (
            d["min"].as_i64().unwrap(),
            d["max"].as_i64().unwrap(),
            d["current"].as_i64().unwrap(),
        );
        if max == 0 {
            continue; // before replay began
        }
        assert_eq!((min, max), (0, last + 1), "{during:?}");
        assert!(cur >= prev && cur <= max, "{during:?}");
        prev = cur;
    }
    // The replayed data is there.
    let (_, st) = get_json(&format!("{base}/api/v1/status/tsdb?limit=1"));
    assert_eq!(
        st["data"]["seriesCountByMetricName"][0],
        json!({"name":"replayed","value":100000})
    );
}

/// A minimal exporter on 127.0.0.1: answers every request with the
/// given exposition text; stops when dropped.
pub struct StaticExporter {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticExporter {
    pub fn start(body: &str) -> StaticExporter {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake exporter");
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let body = body.to_string();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Acquire) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(body.as_bytes());
            }
        });
        StaticExporter {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// `host:port` for a scrape config.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticExporter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
