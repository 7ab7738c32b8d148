//! Template expansion and alerting-rule evaluation costs.
//! `cargo bench --bench rules_rules`

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_model::memstore::MemStorage;
use vigil_model::storage::{Appendable, Appender, SeriesRef, StorageError};
use vigil_model::{Labels, Sample};
use vigil_promql::engine::{Engine, EngineOptions};
use vigil_promql::parser::ParseOptions;
use vigil_rules::group::Group;
use vigil_rules::rule::EvalEnv;
use vigil_rules::rulefmt::parse_rule_file;
use vigil_rules::template::{AlertData, ExpandEnv, Template};

fn template(c: &mut Criterion) {
    let t = Template::parse_alert(
        "__alert_X",
        "Instance {{ $labels.instance }} of {{ $labels.job }} at {{ $value | humanizePercentage }} ({{ printf \"%.2f\" $value }}){{ if gt $value 0.9 }} CRITICAL{{ end }}",
    )
    .expect("template");
    let data = AlertData {
        labels: std::rc::Rc::new(
            [("instance", "db1:9100"), ("job", "node")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        value: 0.95,
        ..AlertData::default()
    };
    let env = ExpandEnv {
        external_url: "",
        query: None,
    };
    c.bench_function("template/expand_annotation", |b| {
        b.iter(|| t.expand_alert(&data, &env).expect("expand"))
    });
}

/// Accepts and discards every sample: measures evaluation, not storage.
struct NullStorage;
struct NullAppender;

impl Appender for NullAppender {
    fn append(
        &mut self,
        _: SeriesRef,
        _: &Labels,
        _: i64,
        _: f64,
    ) -> Result<SeriesRef, StorageError> {
        Ok(0)
    }
    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl Appendable for NullStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(NullAppender)
    }
}

fn alert_eval(c: &mut Criterion) {
    let store = MemStorage::new();
    for i in 0..1000 {
        let l = Labels::from_pairs(&[
            ("__name__", "up"),
            ("instance", &format!("i{i}")),
            ("job", "node"),
        ]);
        store.add(
            l,
            &(0..100)
                .map(|t| Sample::new(t * 15_000, 0.0))
                .collect::<Vec<_>>(),
        );
    }
    let f = parse_rule_file(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.instance }} down for {{ $value }}'\n",
        Path::new("b.yml"),
        ParseOptions::default(),
    )
    .expect("rules");
    let engine = Engine::new(EngineOptions::default());
    let ext = Labels::empty();
    let env = EvalEnv {
        engine: &engine,
        queryable: &store,
        external_url: "",
        external_labels: &ext,
        parse: ParseOptions::default(),
    };
    let expr = vigil_promql::parser::parse("up == 0").expect("expr");
    c.bench_function("group/query_only_1000_series", |b| {
        b.iter(|| vigil_rules::rule::query_vector(&env, &expr, 750_000).expect("query"))
    });
    let mut g = Group::new(&f.groups[0], 15_000, 0, false);
    let mut ts = 0;
    let sink = NullStorage;
    c.bench_function("group/eval_alert_1000_series", |b| {
        b.iter(|| {
            ts += 15_000;
            g.eval(&env, &sink, ts % 1_500_000, 60_000, None);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = template, alert_eval
}
criterion_main!(benches);
