//! Go `text/template` for alert labels and annotations, as Prometheus runs
//! them: `$labels`, `$value`, `$externalLabels`, `$externalURL` are bound,
//! missing map keys print as empty (`missingkey=zero`), and Prometheus's
//! function set is available.
//!
//! Our own implementation of the subset rule files use. Anything outside it
//! (`define`, `template`, unknown functions) fails at parse time with the
//! construct named; this module never touches storage except through the
//! `query` callback its caller provides.

mod exec;
mod funcs;
mod gofmt;
mod parse;
pub(crate) mod timefmt;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use exec::{AlertData, QuerySample, StrMap, Value};
pub use funcs::{
    graph_link, humanize, humanize1024, humanize_duration, humanize_percentage, humanize_timestamp,
    query_escape, sprintf, table_link,
};
pub use gofmt::format_g;

/// A template that failed to parse or to execute. The message has Go's
/// shape (`template: NAME:LINE: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Exec(String),
}

/// Runs a PromQL query for the `query` function: the samples of the
/// resulting instant vector, or an error message.
pub type QueryFn<'a> = &'a dyn Fn(&str) -> Result<Vec<QuerySample>, String>;

/// What a template may reach beyond its data.
pub struct ExpandEnv<'a> {
    /// `--web.external-url` as a string (for `externalURL`/`pathPrefix`).
    pub external_url: &'a str,
    pub query: Option<QueryFn<'a>>,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    name: String,
    nodes: Vec<parse::Node>,
}

/// The variables Prometheus defines before an alert template.
const ALERT_VARS: [&str; 4] = ["$labels", "$externalLabels", "$externalURL", "$value"];

impl Template {
    /// Parses `text` as an alert template named `name` (Prometheus names
    /// them `__alert_<alertname>`), with the alert variables in scope.
    pub fn parse_alert(name: &str, text: &str) -> Result<Template, TemplateError> {
        let mut defs = String::new();
        for v in ALERT_VARS {
            defs.push_str(&format!("{{{{{v} := 0}}}}"));
        }
        // Parse with the declarations prepended (as Prometheus does) so
        // the variables are known, then drop the declaration nodes.
        let nodes = parse::parse(name, &format!("{defs}{text}"))?;
        let nodes = nodes.into_iter().skip(ALERT_VARS.len()).collect();
        Ok(Template {
            name: name.to_string(),
            nodes,
        })
    }

    /// Parses a template with only `$` defined.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            name: name.to_string(),
            nodes: parse::parse(name, text)?,
        })
    }

    /// True when the template is plain text (no actions): expanding it
    /// yields the text itself.
    pub fn is_plain(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, parse::Node::Text(_)))
    }

    /// Executes the template over alert data.
    pub fn expand_alert(
        &self,
        data: &AlertData,
        env: &ExpandEnv<'_>,
    ) -> Result<String, TemplateError> {
        self.expand_alert_rc(&Rc::new(data.clone()), env)
    }

    /// `expand_alert` over shared data (one per alert, many templates).
    pub fn expand_alert_rc(
        &self,
        data: &Rc<AlertData>,
        env: &ExpandEnv<'_>,
    ) -> Result<String, TemplateError> {
        let root = Value::Data(data.clone());
        let mut ex = exec::Exec::new(&self.name, env, root.clone());
        ex.define("$labels", Value::StrMap(data.labels.clone()));
        ex.define(
            "$externalLabels",
            Value::StrMap(data.external_labels.clone()),
        );
        ex.define("$externalURL", Value::Str(data.external_url.clone()));
        ex.define("$value", Value::Float(data.value));
        ex.walk(&root, &self.nodes)?;
        Ok(ex.out)
    }

    /// Executes the template with `dot` as data.
    pub fn expand(&self, dot: Value, env: &ExpandEnv<'_>) -> Result<String, TemplateError> {
        let mut ex = exec::Exec::new(&self.name, env, dot.clone());
        ex.walk(&dot, &self.nodes)?;
        Ok(ex.out)
    }
}

/// Labels as the `map[string]string` templates see.
pub fn label_map(labels: &vigil_model::Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
