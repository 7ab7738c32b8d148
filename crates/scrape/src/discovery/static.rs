//! `static_configs`: each entry is one target group, its source the entry's
//! index (as Prometheus's static provider names them).

use vigil_config::StaticConfig;
use vigil_model::{Label, Labels};

use super::TargetGroup;
use crate::target::ADDRESS_LABEL;

/// The target groups of a job's `static_configs`.
pub fn static_groups(cfgs: &[StaticConfig]) -> Vec<TargetGroup> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| TargetGroup {
            source: i.to_string(),
            targets: c
                .targets
                .iter()
                .map(|t| Labels::from_pairs(&[(ADDRESS_LABEL, t.as_str())]))
                .collect(),
            labels: Labels::new(c.labels.iter().map(|(n, v)| Label::new(n, v)).collect()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_entry() {
        let cfgs = vec![
            StaticConfig {
                targets: vec!["a:1".into(), "b:2".into()],
                labels: [("env".to_string(), "prod".to_string())].into(),
            },
            StaticConfig {
                targets: vec!["c:3".into()],
                labels: Default::default(),
            },
        ];
        let g = static_groups(&cfgs);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "0");
        assert_eq!(g[1].source, "1");
        assert_eq!(
            g[0].targets[1],
            Labels::from_pairs(&[("__address__", "b:2")])
        );
        assert_eq!(g[0].labels, Labels::from_pairs(&[("env", "prod")]));
        assert!(g[1].labels.is_empty());
    }
}
