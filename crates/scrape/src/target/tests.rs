use super::*;
use vigil_config::Config;

fn job(yaml_job: &str) -> ScrapeConfig {
    let text = format!("scrape_configs:\n{yaml_job}");
    let cfg = Config::from_yaml(&text, "test.yml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    cfg.scrape_configs[0].clone()
}

fn lp(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

fn group(addrs: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
    TargetGroup {
        source: "0".into(),
        targets: addrs.iter().map(|a| lp(&[("__address__", a)])).collect(),
        labels: lp(labels),
    }
}

#[test]
fn defaults_are_filled_in() {
    let cfg = job("- job_name: node\n");
    let (ts, errs) = targets_from_group(&group(&["h:9100"], &[("env", "prod")]), &cfg);
    assert!(errs.is_empty(), "{errs:?}");
    let t = &ts[0];
    assert_eq!(
        t.all_labels(),
        &lp(&[
            ("__address__", "h:9100"),
            ("__metrics_path__", "/metrics"),
            ("__scheme__", "http"),
            ("__scrape_interval__", "1m"),
            ("__scrape_timeout__", "10s"),
            ("env", "prod"),
            ("instance", "h:9100"),
            ("job", "node"),
        ])
    );
    assert_eq!(
        t.labels(),
        lp(&[("env", "prod"), ("instance", "h:9100"), ("job", "node")])
    );
    assert_eq!(t.url(), "http://h:9100/metrics");
    assert_eq!(
        t.interval_and_timeout(Duration::from_secs(1), Duration::from_secs(1)),
        (Duration::from_secs(60), Duration::from_secs(10))
    );
    // Discovered labels are the ones before relabeling, defaults included.
    assert_eq!(t.discovered_labels().get("job"), Some("node"));
    assert_eq!(t.discovered_labels().get("instance"), None);
}

#[test]
fn target_labels_win_over_group_labels() {
    let cfg = job("- job_name: j\n");
    let tg = TargetGroup {
        source: "s".into(),
        targets: vec![lp(&[("__address__", "a:1"), ("env", "target")])],
        labels: lp(&[("env", "group"), ("dc", "x")]),
    };
    let (ts, _) = targets_from_group(&tg, &cfg);
    assert_eq!(ts[0].labels().get("env"), Some("target"));
    assert_eq!(ts[0].labels().get("dc"), Some("x"));
}

#[test]
fn default_ports_follow_the_scheme() {
    let cfg = job("- job_name: j\n");
    let (ts, _) = targets_from_group(&group(&["h", "[::1]", "h:1"], &[]), &cfg);
    let addrs: Vec<&str> = ts
        .iter()
        .map(|t| t.all_labels().get("__address__").unwrap())
        .collect();
    assert_eq!(addrs, ["h:80", "[::1]:80", "h:1"]);
    assert_eq!(ts[0].labels().get("instance"), Some("h:80"));
    let cfg = job("- job_name: j\n  scheme: https\n");
    let (ts, _) = targets_from_group(&group(&["h"], &[]), &cfg);
    assert_eq!(ts[0].url(), "https://h:443/metrics");
}

#[test]
fn params_and_param_labels_build_the_query() {
    let cfg = job("- job_name: j
  metrics_path: /probe
  params:
    module: [http_2xx, other]
    target: ['a b&c']
  relabel_configs:
    - target_label: __param_module
      replacement: icmp
    - target_label: __param_extra
      replacement: x
");
    let (ts, _) = targets_from_group(&group(&["bb:9115"], &[]), &cfg);
    assert_eq!(
        ts[0].url(),
        "http://bb:9115/probe?extra=x&module=icmp&module=other&target=a+b%26c"
    );
}

#[test]
fn relabeling_can_drop_and_rewrite() {
    let cfg = job("- job_name: j
  relabel_configs:
    - source_labels: [__meta_keep]
      regex: 'no'
      action: drop
    - source_labels: [__meta_name]
      target_label: instance
    - source_labels: [__address__]
      target_label: __tmp_addr
    - source_labels: [__meta_path]
      target_label: __metrics_path__
      regex: '(.+)'
");
    let tg = TargetGroup {
        source: "g".into(),
        targets: vec![
            lp(&[("__address__", "a:1"), ("__meta_keep", "no")]),
            lp(&[
                ("__address__", "b:1"),
                ("__meta_keep", "yes"),
                ("__meta_name", "bee"),
                ("__meta_path", "/m"),
            ]),
        ],
        labels: Labels::empty(),
    };
    let (ts, errs) = targets_from_group(&tg, &cfg);
    assert!(errs.is_empty());
    assert!(ts[0].is_dropped());
    assert_eq!(ts[0].discovered_labels().get("__meta_keep"), Some("no"));
    let t = &ts[1];
    assert!(!t.is_dropped());
    // Meta labels are gone, __tmp stays internal, instance is the relabeled one.
    assert!(t
        .all_labels()
        .iter()
        .all(|l| !l.name.starts_with("__meta_")));
    assert_eq!(t.all_labels().get("__tmp_addr"), Some("b:1"));
    assert_eq!(t.labels(), lp(&[("instance", "bee"), ("job", "j")]));
    assert_eq!(t.url(), "http://b:1/m");
}

#[test]
fn per_target_interval_and_timeout() {
    let cfg = job("- job_name: j
  scrape_interval: 30s
  relabel_configs:
    - target_label: __scrape_interval__
      replacement: 5s
    - target_label: __scrape_timeout__
      replacement: 2s
");
    let (ts, _) = targets_from_group(&group(&["a:1"], &[]), &cfg);
    assert_eq!(
        ts[0].interval_and_timeout(Duration::from_secs(30), Duration::from_secs(10)),
        (Duration::from_secs(5), Duration::from_secs(2))
    );
}

#[test]
fn invalid_targets_are_reported() {
    let cases = [
        (
            "- job_name: j\n  relabel_configs:\n    - regex: __address__\n      action: labeldrop\n",
            "a:1",
            "instance 0 in group 0: no address",
        ),
        (
            "- job_name: j\n",
            "a:1/x",
            "instance 0 in group 0: \"a:1/x\" is not a valid hostname",
        ),
        (
            "- job_name: j\n  relabel_configs:\n    - target_label: __scrape_timeout__\n      replacement: 2m\n",
            "a:1",
            "instance 0 in group 0: scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")",
        ),
        (
            "- job_name: j\n  relabel_configs:\n    - target_label: __scrape_interval__\n      replacement: 0s\n",
            "a:1",
            "instance 0 in group 0: scrape interval cannot be 0",
        ),
        (
            "- job_name: j\n  relabel_configs:\n    - target_label: __scrape_interval__\n      replacement: soon\n",
            "a:1",
            "instance 0 in group 0: error parsing scrape interval: not a valid duration string: \"soon\"",
        ),
        (
            "- job_name: j\n  relabel_configs:\n    - target_label: __scheme__\n      replacement: ftp\n",
            "a",
            "instance 0 in group 0: invalid scheme: \"http\"",
        ),
    ];
    for (yaml, addr, want) in cases {
        let (ts, errs) = targets_from_group(&group(&[addr], &[]), &job(yaml));
        assert!(ts.is_empty(), "{yaml}");
        assert_eq!(errs, vec![want.to_string()]);
    }
}

#[test]
fn split_host_port_like_go() {
    assert_eq!(split_host_port("h:1"), Ok(("h", "1")));
    assert_eq!(split_host_port("[::1]:9"), Ok(("::1", "9")));
    assert_eq!(split_host_port(":9"), Ok(("", "9")));
    assert!(split_host_port("h").is_err());
    assert!(split_host_port("::1").is_err());
    assert!(split_host_port("[::1]").is_err());
    assert!(split_host_port("[::1]x:1").is_err());
    assert!(split_host_port("h]:1").is_err());
}

#[test]
fn hash_is_stable_and_tracks_labels_and_url() {
    let cfg = job("- job_name: j\n");
    let (a, _) = targets_from_group(&group(&["a:1", "a:1", "b:1"], &[]), &cfg);
    assert_eq!(a[0].hash(), a[1].hash());
    assert_ne!(a[0].hash(), a[2].hash());
    let (c, _) = targets_from_group(&group(&["a:1"], &[("x", "y")]), &cfg);
    assert_ne!(a[0].hash(), c[0].hash());
}
