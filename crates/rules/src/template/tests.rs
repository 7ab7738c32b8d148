use super::*;

fn data() -> AlertData {
    AlertData {
        labels: std::rc::Rc::new(
            [
                ("instance", "db1.example.com:9100"),
                ("job", "node"),
                ("severity", "page"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
        external_labels: std::rc::Rc::new(
            [("cluster", "eu1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        external_url: "http://prom.example.com:9090/prom".into(),
        value: 0.123456,
    }
}

fn query(q: &str) -> Result<Vec<QuerySample>, String> {
    let mk = |inst: &str, v: f64| QuerySample {
        labels: [("__name__", "up"), ("instance", inst)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value: v,
    };
    match q {
        "up" => Ok(vec![mk("b", 1.0), mk("a", 0.0), mk("c", 1.0)]),
        "none" => Ok(vec![]),
        _ => Err(format!("bad query {q:?}")),
    }
}

fn render(text: &str) -> Result<String, TemplateError> {
    let t = Template::parse_alert("__alert_Test", text)?;
    let env = ExpandEnv {
        external_url: "http://prom.example.com:9090/prom",
        query: Some(&query),
    };
    t.expand_alert(&data(), &env)
}

fn ok(text: &str) -> String {
    match render(text) {
        Ok(s) => s,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[test]
fn variables_and_fields() {
    assert_eq!(ok("{{ $labels.job }}"), "node");
    assert_eq!(ok("{{ .Labels.job }}"), "node");
    assert_eq!(ok("{{ $labels.missing }}"), "");
    assert_eq!(ok("{{ $value }}"), "0.123456");
    assert_eq!(ok("{{ .Value }}"), "0.123456");
    assert_eq!(ok("{{ $externalLabels.cluster }}"), "eu1");
    assert_eq!(ok("{{ .ExternalLabels.cluster }}"), "eu1");
    assert_eq!(
        ok("{{ $externalURL }}"),
        "http://prom.example.com:9090/prom"
    );
    assert_eq!(
        ok("{{ .ExternalURL }}"),
        "http://prom.example.com:9090/prom"
    );
    assert_eq!(ok("plain text"), "plain text");
    assert_eq!(
        ok("{{ $labels }}"),
        "map[instance:db1.example.com:9100 job:node severity:page]"
    );
}

#[test]
fn pipelines_and_functions() {
    assert_eq!(ok("{{ $value | humanizePercentage }}"), "12.35%");
    assert_eq!(ok("{{ $value | printf \"%.2f\" }}"), "0.12");
    assert_eq!(
        ok("{{ printf \"%s is %.1f\" $labels.job 2.55 }}"),
        "node is 2.5"
    );
    assert_eq!(ok("{{ $labels.job | toUpper }}"), "NODE");
    assert_eq!(ok("{{ \"HeLLo\" | toLower }}"), "hello");
    assert_eq!(ok("{{ title \"hello world\" }}"), "Hello World");
    assert_eq!(ok("{{ $labels.instance | stripPort }}"), "db1.example.com");
    assert_eq!(ok("{{ $labels.instance | stripDomain }}"), "db1:9100");
    assert_eq!(
        ok("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}"),
        "db1.example.com"
    );
    assert_eq!(ok("{{ match \"^db\" $labels.instance }}"), "true");
    assert_eq!(ok("{{ len $labels }}"), "3");
    assert_eq!(ok("{{ index $labels \"job\" }}"), "node");
    assert_eq!(
        ok("{{ externalURL }}|{{ pathPrefix }}"),
        "http://prom.example.com:9090/prom|/prom"
    );
    assert_eq!(ok("{{ \"<b>\" | safeHtml }}"), "<b>");
    assert_eq!(ok("{{ humanize 1234567.0 }}"), "1.235M");
    assert_eq!(ok("{{ humanize \"1234567\" }}"), "1.235M");
    assert_eq!(ok("{{ humanize 1024 }}"), "1.024k");
    assert_eq!(ok("{{ humanize1024 1048576.0 }}"), "1Mi");
    assert_eq!(ok("{{ humanizeDuration 3661 }}"), "1h 1m 1s");
    assert_eq!(
        ok("{{ humanizeTimestamp 1435065584.128 }}"),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(ok("{{ (args 1 \"x\").arg1 }}"), "x");
    assert_eq!(
        ok("{{ with args 1 2 }}{{ .arg0 }}+{{ .arg1 }}{{ end }}"),
        "1+2"
    );
    assert_eq!(ok("{{ parseDuration \"1m30s\" }}"), "90");
    assert_eq!(ok("{{ print 1 2 \"a\" \"b\" 3 }}"), "1 2ab3");
}

#[test]
fn control_flow() {
    assert_eq!(
        ok("{{ if gt $value 0.1 }}high{{ else }}low{{ end }}"),
        "high"
    );
    assert_eq!(
        ok("{{ if lt $value 0.1 }}low{{ else if lt $value 0.2 }}mid{{ else }}high{{ end }}"),
        "mid"
    );
    assert_eq!(
        ok("{{ if and (eq $labels.job \"node\") (ne $labels.severity \"info\") }}y{{ end }}"),
        "y"
    );
    assert_eq!(ok("{{ if or false \"\" }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(ok("{{ if not $labels.missing }}absent{{ end }}"), "absent");
    assert_eq!(
        ok("{{ if eq $labels.job \"a\" \"node\" }}one of{{ end }}"),
        "one of"
    );
    assert_eq!(
        ok("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"),
        "instance=db1.example.com:9100;job=node;severity=page;"
    );
    assert_eq!(
        ok("{{ range $labels }}[{{ . }}]{{ end }}"),
        "[db1.example.com:9100][node][page]"
    );
    assert_eq!(
        ok("{{ range query \"none\" }}x{{ else }}empty{{ end }}"),
        "empty"
    );
    assert_eq!(ok("{{ with $labels.job }}job={{ . }}{{ end }}"), "job=node");
    assert_eq!(
        ok("{{ with $labels.nope }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        ok("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(ok("{{ $j := $labels.job }}{{ $j }}"), "node");
    assert_eq!(ok("{{/* comment */}}a"), "a");
    assert_eq!(ok("a  {{- \"b\" -}}  \n c"), "abc");
    assert_eq!(ok("{{- /* c */ -}}  x"), "x");
    assert_eq!(
        ok("{{ if ge 2 2 }}ge{{ end }}{{ if le 1 2 }}le{{ end }}"),
        "gele"
    );
}

#[test]
fn query_functions() {
    assert_eq!(ok("{{ query \"up\" | first | value }}"), "1");
    assert_eq!(ok("{{ query \"up\" | first | label \"instance\" }}"), "b");
    assert_eq!(ok("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}"), "a=0 b=1 c=1 ");
    assert_eq!(ok("{{ len (query \"up\") }}"), "3");
    assert_eq!(
        ok("{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}"),
        "1"
    );
    let e = render("{{ query \"none\" | first | value }}").unwrap_err();
    assert!(
        e.to_string()
            .contains("first() called on vector with no elements"),
        "{e}"
    );
    let e = render("{{ query \"bad\" }}").unwrap_err();
    assert!(e.to_string().contains("bad query"), "{e}");
}

#[test]
fn go_comparison_rules() {
    // Go refuses to compare float64 with an int constant.
    let e = render("{{ if gt $value 1 }}x{{ end }}").unwrap_err();
    assert!(
        e.to_string().contains("incompatible types for comparison"),
        "{e}"
    );
}

#[test]
fn parse_errors_name_the_problem() {
    let e = render("{{ $labels.x ").unwrap_err();
    assert_eq!(e.to_string(), "template: __alert_Test:1: unclosed action");
    let e = render("{{ nosuch 1 }}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: __alert_Test:1: function \"nosuch\" not defined"
    );
    let e = render("{{ define \"x\" }}{{ end }}").unwrap_err();
    assert!(
        e.to_string()
            .contains("unsupported template construct: {{define}}"),
        "{e}"
    );
    let e = render("{{ template \"x\" }}").unwrap_err();
    assert!(
        e.to_string()
            .contains("unsupported template construct: {{template}}"),
        "{e}"
    );
    let e = render("{{ if true }}x").unwrap_err();
    assert!(e.to_string().contains("unexpected EOF"), "{e}");
    let e = render("x{{ end }}").unwrap_err();
    assert!(e.to_string().contains("unexpected {{end}}"), "{e}");
    let e = render("{{ $nope }}").unwrap_err();
    assert!(
        e.to_string().contains("undefined variable \"$nope\""),
        "{e}"
    );
    let e = render("line1\n{{ nosuch }}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: __alert_Test:2: function \"nosuch\" not defined"
    );
}

#[test]
fn exec_errors() {
    let e = render("{{ .Nope }}").unwrap_err();
    assert!(e.to_string().contains("can't evaluate field Nope"), "{e}");
    let e = render("{{ humanize \"abc\" }}").unwrap_err();
    assert!(e.to_string().contains("invalid syntax"), "{e}");
}

#[test]
fn nan_comparisons_follow_go() {
    let t = Template::parse_alert("t", "{{ gt $value 1.0 }} {{ lt $value 1.0 }} {{ le $value 1.0 }} {{ ge $value 1.0 }} {{ eq $value $value }} {{ ne $value 1.0 }}").unwrap();
    let env = ExpandEnv {
        external_url: "",
        query: None,
    };
    let d = AlertData {
        value: f64::NAN,
        ..AlertData::default()
    };
    assert_eq!(
        t.expand_alert(&d, &env).unwrap(),
        "true false false true false true"
    );
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        /// Text without delimiters expands to itself.
        #[test]
        fn plain_text_round_trips(s in "[^{}]{0,80}") {
            let t = Template::parse_alert("p", &s).unwrap();
            let env = ExpandEnv { external_url: "", query: None };
            prop_assert_eq!(t.expand_alert(&AlertData::default(), &env).unwrap(), s);
        }

        /// Arbitrary input never panics the parser or the executor.
        #[test]
        fn arbitrary_templates_do_not_panic(s in "(\\{\\{|\\}\\}|-|\\$[a-z]*|\\.[A-Za-z]*|\"[a-z]*\"|[ a-z0-9|()=:,]|if|else|end|range|with){0,30}") {
            if let Ok(t) = Template::parse_alert("p", &s) {
                let env = ExpandEnv { external_url: "", query: None };
                let _ = t.expand_alert(&AlertData::default(), &env);
            }
        }

        /// `printf "%v"` of a float equals `{{ $value }}` and parses back.
        #[test]
        fn float_printing_round_trips(v in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            let s = format_g(v, None, false);
            let back: f64 = s.parse().unwrap();
            prop_assert_eq!(back, v);
        }
    }
}

#[test]
fn samples_print_like_go_pointers() {
    assert_eq!(
        ok("{{ query \"up\" | first }}"),
        "{map[__name__:up instance:b] 1}"
    );
}
