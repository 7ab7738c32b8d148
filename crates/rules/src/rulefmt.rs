//! Rule files: Prometheus's rule-file YAML, parsed strictly and validated
//! as Prometheus's `rulefmt` does, every error with `file: line:col:`.
//!
//! Owns the text -> `RuleFile` boundary only: expressions are parsed with
//! the PromQL parser and templates with our template parser here, so the
//! evaluator never meets an invalid rule. Nothing here evaluates.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_config::Duration;
use vigil_promql::ast::Expr;

use crate::template::Template;
use crate::yamlpos::{self, PNode, Pos};

/// One problem in a rule file, printed as promtool prints it:
/// `file: line:col: group "g", rule 1, "name": message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    pub file: PathBuf,
    /// Position of the offending node, when there is one.
    pub pos: Option<(usize, usize)>,
    /// A second node involved (e.g. both `record` and `alert`).
    pub pos_alt: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if let Some((l, c)) = self.pos {
            write!(f, "{l}:{c}: ")?;
        }
        if let Some((l, c)) = self.pos_alt {
            write!(f, "{l}:{c}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleFileError {}

impl RuleFileError {
    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.pos.map(|(l, _)| l)
    }
}

/// A validated rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: PathBuf,
    pub groups: Vec<GroupDef>,
}

/// A validated rule group, in file order.
#[derive(Debug, Clone)]
pub struct GroupDef {
    pub name: String,
    /// The file it came from, as given to the loader.
    pub file: String,
    pub interval: Option<Duration>,
    pub query_offset: Option<Duration>,
    /// `limit`; 0 means no limit.
    pub limit: u64,
    pub rules: Vec<RuleDef>,
}

/// What a rule produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    Recording,
    Alerting,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct RuleDef {
    pub kind: RuleKind,
    /// `record` or `alert`.
    pub name: String,
    /// The expression as written.
    pub expr: String,
    pub ast: Expr,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Parsed templates of `labels` (alerting rules only).
    pub label_templates: Vec<(String, Template)>,
    /// Parsed templates of `annotations`.
    pub annotation_templates: Vec<(String, Template)>,
    /// 1-based line of the rule in its file.
    pub line: usize,
}

impl RuleDef {
    /// Returns this rule's identity for reload diffing and duplicates.
    fn identity(&self) -> String {
        format!(
            "{:?}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}",
            self.kind,
            self.name,
            self.expr,
            self.for_,
            self.keep_firing_for,
            self.labels,
            self.annotations
        )
    }
}

impl GroupDef {
    /// True if `other` has the same definition (used to keep state of
    /// unchanged groups across reloads).
    pub fn same_definition(&self, other: &GroupDef) -> bool {
        self.name == other.name
            && self.file == other.file
            && self.interval == other.interval
            && self.query_offset == other.query_offset
            && self.limit == other.limit
            && self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| a.identity() == b.identity())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Option<Vec<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    query_offset: Option<Duration>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<String>,
    #[serde(default, rename = "for")]
    for_: Option<Duration>,
    #[serde(default)]
    keep_firing_for: Option<Duration>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

const FILE_KEYS: &[&str] = &["groups"];
const GROUP_KEYS: &[&str] = &["name", "interval", "query_offset", "limit", "rules"];
const RULE_KEYS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

/// `model.IsValidMetricName` (legacy charset).
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `model.LabelName.IsValid` (legacy charset).
pub fn is_valid_label_name(s: &str) -> bool {
    vigil_model::relabel::is_valid_label_name(s)
}

/// Reads and validates a rule file.
pub fn load_rule_file(path: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleFileError {
            file: path.to_path_buf(),
            pos: None,
            pos_alt: None,
            message: e.to_string(),
        }]
    })?;
    parse_rule_file(&text, path)
}

/// Parses and validates `text`; `path` names the file in errors and in
/// the groups' `file`.
pub fn parse_rule_file(text: &str, path: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let err = |pos: Option<Pos>, message: String| RuleFileError {
        file: path.to_path_buf(),
        pos: pos.map(|p| (p.line, p.col)),
        pos_alt: None,
        message,
    };
    let root = match yamlpos::index(text) {
        Ok(r) => r,
        Err((msg, pos)) => return Err(vec![err(Some(pos), format!("yaml: {msg}"))]),
    };
    let empty = RuleFile {
        path: path.to_path_buf(),
        groups: Vec::new(),
    };
    let Some(root) = root.filter(|r| !r.is_null()) else {
        return Ok(empty);
    };
    // Unknown keys first, all of them, in Go-YAML's words.
    let mut unknown = Vec::new();
    check_keys(&root, FILE_KEYS, "rulefmt.RuleGroups", &mut unknown);
    if let Some(groups) = root.get("groups") {
        for g in groups.items() {
            check_keys(g, GROUP_KEYS, "rulefmt.RuleGroup", &mut unknown);
            if let Some(rules) = g.get("rules") {
                for r in rules.items() {
                    check_keys(r, RULE_KEYS, "rulefmt.RuleNode", &mut unknown);
                }
            }
        }
    }
    // Durations, so a bad one is reported at its own line.
    if let Some(groups) = root.get("groups") {
        for g in groups.items() {
            let mut nodes: Vec<&PNode> = Vec::new();
            nodes.extend(["interval", "query_offset"].iter().filter_map(|k| g.get(k)));
            if let Some(rules) = g.get("rules") {
                for r in rules.items() {
                    nodes.extend(["for", "keep_firing_for"].iter().filter_map(|k| r.get(k)));
                }
            }
            for n in nodes {
                if let PNode::Scalar(p, v) = n {
                    if n.is_null() {
                        continue;
                    }
                    if let Err(e) = Duration::parse(v) {
                        return Err(vec![err(Some(*p), e.to_string())]);
                    }
                }
            }
        }
    }
    if !unknown.is_empty() {
        let lines: Vec<String> = unknown
            .iter()
            .map(|(p, m): &(Pos, String)| format!("  line {}: {m}", p.line))
            .collect();
        return Err(vec![err(
            Some(unknown[0].0),
            format!("yaml: unmarshal errors:\n{}", lines.join("\n")),
        )]);
    }
    let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|e| {
        let pos = e.location().map(|l| Pos {
            line: l.line(),
            col: l.column(),
        });
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        vec![err(pos, msg)]
    })?;
    let file_name = path.to_string_lossy().into_owned();
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    let gnodes = root.get("groups");
    for (gi, g) in raw.groups.unwrap_or_default().into_iter().enumerate() {
        let gnode = gnodes.and_then(|n| n.item(gi));
        let gpos = gnode.map(|n| n.pos());
        let name = g.name.unwrap_or_default();
        if name.is_empty() {
            errors.push(err(gpos, "Groupname must not be empty".into()));
        }
        if !seen.insert(name.clone()) {
            errors.push(err(
                gpos,
                format!("groupname: \"{name}\" is repeated in the same file"),
            ));
        }
        let rnodes = gnode.and_then(|n| n.get("rules"));
        let mut rules = Vec::new();
        for (ri, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
            let rnode = rnodes.and_then(|n| n.item(ri));
            match validate_rule(r, rnode) {
                Ok(rule) => rules.push(rule),
                Err(errs) => {
                    for e in errs {
                        errors.push(RuleFileError {
                            file: path.to_path_buf(),
                            pos: e.pos.map(|p| (p.line, p.col)),
                            pos_alt: e.pos_alt.map(|p| (p.line, p.col)),
                            message: format!(
                                "group \"{name}\", rule {}, \"{}\": {}",
                                ri + 1,
                                e.rule_name,
                                e.message
                            ),
                        });
                    }
                }
            }
        }
        groups.push(GroupDef {
            name,
            file: file_name.clone(),
            interval: g.interval,
            query_offset: g.query_offset,
            limit: g.limit.unwrap_or(0).max(0) as u64,
            rules,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RuleFile {
        path: path.to_path_buf(),
        groups,
    })
}

pub(crate) fn check_keys(node: &PNode, allowed: &[&str], ty: &str, out: &mut Vec<(Pos, String)>) {
    for (k, p, _) in node.entries() {
        if !allowed.contains(&k.as_str()) {
            out.push((*p, format!("field {k} not found in type {ty}")));
        }
    }
}

struct RuleErr {
    rule_name: String,
    pos: Option<Pos>,
    pos_alt: Option<Pos>,
    message: String,
}

fn validate_rule(r: RawRule, node: Option<&PNode>) -> Result<RuleDef, Vec<RuleErr>> {
    let record = r.record.unwrap_or_default();
    let alert = r.alert.unwrap_or_default();
    let expr = r.expr.unwrap_or_default();
    let for_ = r.for_.unwrap_or_default();
    let keep_firing_for = r.keep_firing_for.unwrap_or_default();
    let labels = r.labels.unwrap_or_default();
    let annotations = r.annotations.unwrap_or_default();
    let rule_name = if alert.is_empty() {
        record.clone()
    } else {
        alert.clone()
    };
    let rule_pos = node.map(|n| n.pos());
    let val_pos = |k: &str| node.and_then(|n| n.get(k)).map(|v| v.pos());
    let map_val_pos = |k: &str, key: &str| {
        node.and_then(|n| n.get(k))
            .and_then(|m| m.get(key))
            .map(|v| v.pos())
            .or_else(|| val_pos(k))
    };
    let mut errs = Vec::new();
    let mut push = |pos: Option<Pos>, pos_alt: Option<Pos>, message: String| {
        errs.push(RuleErr {
            rule_name: rule_name.clone(),
            pos,
            pos_alt,
            message,
        })
    };
    if !record.is_empty() && !alert.is_empty() {
        push(
            val_pos("record"),
            val_pos("alert"),
            "only one of 'record' and 'alert' must be set".into(),
        );
    }
    if record.is_empty() && alert.is_empty() {
        push(
            rule_pos,
            None,
            "one of 'record' or 'alert' must be set".into(),
        );
    }
    let mut ast = None;
    if expr.is_empty() {
        push(
            val_pos("expr").or(rule_pos),
            None,
            "field 'expr' must be set in rule".into(),
        );
    } else {
        match vigil_promql::parser::parse(&expr) {
            Ok(e) => ast = Some(e),
            Err(e) => push(
                val_pos("expr"),
                None,
                format!("could not parse expression: {e}"),
            ),
        }
    }
    if !record.is_empty() {
        let rp = val_pos("record");
        if !annotations.is_empty() {
            push(
                rp,
                None,
                "invalid field 'annotations' in recording rule".into(),
            );
        }
        if !for_.is_zero() {
            push(rp, None, "invalid field 'for' in recording rule".into());
        }
        if !keep_firing_for.is_zero() {
            push(
                rp,
                None,
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
        if !is_valid_metric_name(&record) {
            push(rp, None, format!("invalid recording rule name: {record}"));
        }
    }
    for k in labels.keys() {
        if !is_valid_label_name(k) || k == "__name__" {
            push(
                map_val_pos("labels", k),
                None,
                format!("invalid label name: {k}"),
            );
        }
    }
    for k in annotations.keys() {
        if !is_valid_label_name(k) {
            push(
                map_val_pos("annotations", k),
                None,
                format!("invalid annotation name: {k}"),
            );
        }
    }
    let mut label_templates = Vec::new();
    let mut annotation_templates = Vec::new();
    if !alert.is_empty() {
        let tname = format!("__alert_{alert}");
        for (k, v) in &labels {
            match Template::parse_alert(&tname, v) {
                Ok(t) => label_templates.push((k.clone(), t)),
                Err(e) => push(map_val_pos("labels", k), None, format!("label {k:?}: {e}")),
            }
        }
        for (k, v) in &annotations {
            match Template::parse_alert(&tname, v) {
                Ok(t) => annotation_templates.push((k.clone(), t)),
                Err(e) => push(
                    map_val_pos("annotations", k),
                    None,
                    format!("annotation {k:?}: {e}"),
                ),
            }
        }
    }
    match ast {
        Some(ast) if errs.is_empty() => Ok(RuleDef {
            kind: if alert.is_empty() {
                RuleKind::Recording
            } else {
                RuleKind::Alerting
            },
            name: rule_name,
            expr,
            ast,
            for_,
            keep_firing_for,
            labels,
            annotations,
            label_templates,
            annotation_templates,
            line: rule_pos.map(|p| p.line).unwrap_or(0),
        }),
        _ => Err(errs),
    }
}

/// Rules with the same name and labels (promtool's duplicate lint):
/// (name, labels), sorted by name.
pub fn duplicate_rules(groups: &[GroupDef]) -> Vec<(String, BTreeMap<String, String>)> {
    let mut all: Vec<(String, BTreeMap<String, String>)> = groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| (r.name.clone(), r.labels.clone())))
        .collect();
    all.sort();
    let mut out = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && out.last() != Some(&w[0]) {
            out.push(w[0].clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        match parse_rule_file(text, Path::new("r.yml")) {
            Ok(_) => vec![],
            Err(es) => es.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn good_file_parses() {
        let f = parse_rule_file(
            "groups:\n  - name: a\n    interval: 30s\n    limit: 5\n    query_offset: 1m\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n        labels: {team: x}\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels:\n          severity: 1\n        annotations:\n          summary: \"{{ $labels.instance }} down\"\n",
            Path::new("r.yml"),
        )
        .unwrap();
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.query_offset, Some(Duration::from_secs(60)));
        assert_eq!(g.limit, 5);
        assert_eq!(g.rules[0].kind, RuleKind::Recording);
        assert_eq!(g.rules[0].labels["team"], "x");
        assert_eq!(g.rules[1].kind, RuleKind::Alerting);
        assert_eq!(g.rules[1].for_, Duration::from_secs(300));
        assert_eq!(g.rules[1].labels["severity"], "1");
        assert_eq!(g.rules[1].line, 10);
        assert_eq!(g.rules[1].annotation_templates.len(), 1);
    }

    #[test]
    fn empty_files_have_no_groups() {
        for t in ["", "# only a comment\n", "groups:\n", "groups: []\n"] {
            let f = parse_rule_file(t, Path::new("e.yml")).unwrap();
            assert!(f.groups.is_empty(), "{t:?}");
        }
    }

    #[test]
    fn semantic_errors_match_promtool() {
        let t = "groups:\n  - name: a\n    rules:\n      - record: \"foo bar\"\n        expr: up\n      - alert: X\n        expr: up ==\n        for: 5m\n      - record: y\n        alert: z\n        expr: up\n  - name: a\n    rules: []\n";
        assert_eq!(
            errs(t),
            vec![
                "r.yml: 4:17: group \"a\", rule 1, \"foo bar\": invalid recording rule name: foo bar",
                "r.yml: 7:15: group \"a\", rule 2, \"X\": could not parse expression: 1:6: parse error: unexpected end of input",
                "r.yml: 9:17: 10:16: group \"a\", rule 3, \"z\": only one of 'record' and 'alert' must be set",
                "r.yml: 12:5: groupname: \"a\" is repeated in the same file",
            ]
        );
    }

    #[test]
    fn field_errors() {
        let t = "groups:\n  - name: a\n    rules:\n      - expr: up\n      - record: x\n      - record: y\n        expr: up\n        for: 5m\n        annotations: {a: b}\n        labels:\n          bad-name: v\n          __name__: n\n  - name: \"\"\n    rules: []\n";
        let e = errs(t);
        assert_eq!(
            e,
            vec![
                "r.yml: 4:9: group \"a\", rule 1, \"\": one of 'record' or 'alert' must be set",
                "r.yml: 5:9: group \"a\", rule 2, \"x\": field 'expr' must be set in rule",
                "r.yml: 6:17: group \"a\", rule 3, \"y\": invalid field 'annotations' in recording rule",
                "r.yml: 6:17: group \"a\", rule 3, \"y\": invalid field 'for' in recording rule",
                "r.yml: 12:21: group \"a\", rule 3, \"y\": invalid label name: __name__",
                "r.yml: 11:21: group \"a\", rule 3, \"y\": invalid label name: bad-name",
                "r.yml: 13:5: Groupname must not be empty",
            ]
        );
    }

    #[test]
    fn unknown_keys_listed_with_lines() {
        let t = "groups:\n  - name: a\n    foo: 1\n    rules:\n      - record: x\n        expr: up\n        bar: 2\n";
        assert_eq!(
            errs(t),
            vec!["r.yml: 3:5: yaml: unmarshal errors:\n  line 3: field foo not found in type rulefmt.RuleGroup\n  line 7: field bar not found in type rulefmt.RuleNode"]
        );
        assert_eq!(
            errs("group: []\n"),
            vec!["r.yml: 1:1: yaml: unmarshal errors:\n  line 1: field group not found in type rulefmt.RuleGroups"]
        );
    }

    #[test]
    fn type_and_syntax_errors_have_lines() {
        let e = errs("groups:\n  - name: a\n    interval: 5x\n    rules: []\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("r.yml: 3:"), "{}", e[0]);
        assert!(
            e[0].contains("not a valid duration string: \"5x\""),
            "{}",
            e[0]
        );
        let e = errs("groups: [\n");
        assert!(e[0].starts_with("r.yml: "), "{}", e[0]);
        assert!(e[0].contains("yaml: "), "{}", e[0]);
        let e = errs("groups:\n  - name: a\n    name: b\n");
        assert!(e[0].contains("duplicate"), "{}", e[0]);
    }

    #[test]
    fn template_errors() {
        let t = "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels:\n          x: \"{{ nosuch }}\"\n        annotations:\n          s: \"{{ $labels.x \"\n";
        assert_eq!(
            errs(t),
            vec![
                "r.yml: 7:14: group \"a\", rule 1, \"A\": label \"x\": template: __alert_A:1: function \"nosuch\" not defined",
                "r.yml: 9:14: group \"a\", rule 1, \"A\": annotation \"s\": template: __alert_A:1: unclosed action",
            ]
        );
    }

    #[test]
    fn duplicates() {
        let f = parse_rule_file(
            "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n        labels: {a: b}\n      - record: x\n        expr: up + 1\n        labels: {a: b}\n      - alert: A\n        expr: up\n      - alert: A\n        expr: up\n      - record: y\n        expr: up\n",
            Path::new("d.yml"),
        )
        .unwrap();
        let d = duplicate_rules(&f.groups);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, "A");
        assert_eq!(d[1].0, "x");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any input yields rules or errors that name the file; no panics.
        #[test]
        fn arbitrary_yaml_never_panics(s in "(groups:|- name: |rules:|record: |alert: |expr: |for: |labels:|  |\n|[a-z0-9{}$.]){0,40}") {
            match parse_rule_file(&s, Path::new("p.yml")) {
                Ok(_) => {}
                Err(es) => {
                    prop_assert!(!es.is_empty());
                    for e in es {
                        prop_assert!(e.to_string().starts_with("p.yml: "));
                    }
                }
            }
        }
    }
}
