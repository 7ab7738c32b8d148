//! Template rendering compared with Prometheus itself: we render alert
//! annotations for a set of values, write them as the expectations of a
//! `promtool test rules` file, and the real promtool (Go's text/template
//! and Prometheus's functions) must agree. Skips without promtool.

use std::path::Path;
use std::process::Command;

use vigil_model::{Labels, Sample};
use vigil_promql::engine::{Engine, EngineOptions};
use vigil_rules::group::Group;
use vigil_rules::memstore::MemStorage;
use vigil_rules::rule::{EvalEnv, Rule};
use vigil_rules::rulefmt::load_rule_file;

const TEMPLATES: &[&str] = &[
    "{{ $value }}",
    "{{ .Value }} {{ .Labels.instance }}",
    "{{ humanize $value }}",
    "{{ humanize1024 $value }}",
    "{{ humanizeDuration $value }}",
    "{{ humanizePercentage $value }}",
    "{{ humanizeTimestamp $value }}",
    "{{ printf \"%.2f|%v|%g|%e|%8.3f|%-9.1f|%s\" $value $value $value $value $value $value $labels.instance }}",
    "{{ printf \"%d %x %X %q %5s|%-4s|%t %05d\" 42 255 255 $labels.instance \"ab\" \"c\" true -42 }}",
    "{{ $labels.instance | toUpper }} {{ title \"hello world-foo bar_baz\" }} {{ toLower \"ABC\" }}",
    "{{ reReplaceAll \"v(\\\\d+)\" \"val-$1\" $labels.instance }}",
    "{{ if match \"^v[12]$\" $labels.instance }}low{{ else }}high{{ end }}",
    "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
    "{{ with query \"count(metric)\" }}{{ . | first | value | humanize }}{{ end }}",
    "{{ range query \"metric > 1000\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }};{{ end }}",
    "{{ len $labels }} {{ index $labels \"instance\" }} {{ $labels.missing }}|",
    "{{ if and (gt $value 1.0) (lt $value 100000.0) }}mid{{ else if le $value 1.0 }}small{{ else }}big{{ end }}",
    "{{ $x := 3 }}{{ $x }} {{ $x = 4 }}{{ $x }}",
    "{{ $externalLabels.cluster }}/{{ .ExternalLabels.cluster }}",
    "{{ print 1 2 \"a\" \"b\" 3.5 }} {{ 1e6 }} {{ 0.00001 }} {{ 123456789.0 }} {{ 0x1F }}",
    "{{ \"a\\tb\" | printf \"%q\" }} {{ html \"<a&b>\" }} {{ urlquery \"a b&c\" }} {{ js \"it's\" }}",
    "  {{- \"trim\" -}}  |{{/* comment */}}{{ or \"\" \"dflt\" }} {{ and 1 0 }} {{ not true }}",
    "{{ if eq $labels.instance \"v1\" \"v2\" }}one-or-two{{ end }}{{ if ne $labels.instance \"v3\" }}!3{{ end }}",
    "{{ humanize \"1234.5\" }} {{ humanizeDuration \"90\" }}",
    "{{ tableLink \"up == 0\" }} {{ graphLink \"rate(x[5m])\" }}",
    "{{ with $labels.nope }}x{{ else }}no-nope{{ end }} {{ range $i, $e := query \"metric < 0\" | sortByLabel \"instance\" }}{{ $i }}{{ $e.Value }}{{ end }}",
    "{{ query \"metric == 1\" | first }} {{ toTime 1435065584.128 }}",
    "{{ $labels.instance | reReplaceAll \"[0-9]+\" \"N\" }} {{ printf \"%.0f|%s|%d\" $value $value $value }} {{ $value | printf \"%.1f%%\" }}",
    "{{ humanize 0.0000001234 }} {{ humanize1024 -2048 }} {{ humanizeDuration 0.000001 }} {{ humanizeDuration 59.9999 }} {{ humanizePercentage 0.999999 }}",
    "{{ with $x := 1 }}{{ $x }}{{ end }} {{ len \"h\u{00e9}llo\" }} [{{ index $labels \"nope\" }}] {{ printf \"%v\" $labels }} {{ printf \"%q\" 65 }}",
    "{{ printf \"%5.1f|%-8s|%08.3f|%+.2e\" $value \"ab\" $value $value }} {{ 1 | printf \"%d-%d\" 2 }} {{ toUpper (printf \"%s-%s\" \"a\" \"b\") }}",
    "{{ match \"(?i)^V1$\" $labels.instance }} {{ reReplaceAll \"(?P<x>v)(\\\\d+)\" \"${2}${x}\" $labels.instance }} {{ \"abc\" | len }} {{ stripPort \"host:80\" }}",
    "{{ if not (eq $labels.instance \"v1\") }}not-v1{{ end }}",
];

const VALUES: &[(&str, &str)] = &[
    ("v1", "0"),
    ("v2", "1"),
    ("v3", "1234567"),
    ("v4", "0.000123"),
    ("v5", "-5.5"),
    ("v6", "262861"),
    ("v7", "1435065584.128"),
    ("v8", "0.1234"),
    ("v9", "NaN"),
    ("v10", "Inf"),
    ("v11", "999.9999"),
    ("v12", "-0.5"),
];

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[test]
fn rendered_annotations_match_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        println!("skipping: promtool not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from(
        "groups:\n- name: t\n  rules:\n  - alert: T\n    expr: metric\n    annotations:\n",
    );
    for (i, t) in TEMPLATES.iter().enumerate() {
        rules.push_str(&format!("      a{i:02}: {}\n", yaml_quote(t)));
    }
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&rules_path, &rules).expect("write");

    // Render with Vigil.
    let rf = load_rule_file(&rules_path).expect("rules load");
    let mut g = Group::new(&rf.groups[0], 60_000, 0, false);
    let store = MemStorage::new();
    for (inst, v) in VALUES {
        let v: f64 = match *v {
            "NaN" => f64::NAN,
            "Inf" => f64::INFINITY,
            x => x.parse().expect("value"),
        };
        store.add(
            Labels::from_pairs(&[("__name__", "metric"), ("instance", inst)]),
            &[Sample::new(0, v), Sample::new(60_000, v)],
        );
    }
    let engine = Engine::new(EngineOptions::default());
    let ext = Labels::from_pairs(&[("cluster", "eu1")]);
    let env = EvalEnv {
        engine: &engine,
        queryable: &store,
        external_url: "",
        external_labels: &ext,
    };
    g.eval(&env, &store, 0, 60_000, None);
    g.eval(&env, &store, 60_000, 60_000, None);
    let Rule::Alerting(ar) = &g.rules[0] else {
        panic!("alerting rule")
    };
    assert_eq!(ar.active.len(), VALUES.len());

    // Ask promtool to expect exactly what we rendered.
    let mut t = format!(
        "rule_files: [{}]\ntests:\n- interval: 1m\n  external_labels:\n    cluster: eu1\n  input_series:\n",
        rules_path.display()
    );
    for (inst, v) in VALUES {
        t.push_str(&format!(
            "  - series: 'metric{{instance=\"{inst}\"}}'\n    values: '{v} {v}'\n"
        ));
    }
    t.push_str("  alert_rule_test:\n  - eval_time: 1m\n    alertname: T\n    exp_alerts:\n");
    for a in ar.active.values() {
        t.push_str(&format!(
            "    - exp_labels:\n        instance: {}\n      exp_annotations:\n",
            a.labels.get("instance").unwrap_or("")
        ));
        for (k, v) in &a.annotations {
            t.push_str(&format!("        {k}: {}\n", yaml_quote(v)));
        }
    }
    let test_path = dir.path().join("test.yml");
    std::fs::write(&test_path, &t).expect("write");
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&test_path)
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool disagrees with Vigil's rendering:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Path::new("");
}
