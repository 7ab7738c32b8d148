//! Executes a parsed template over alert data, with Go's semantics for
//! truth, printing, variables, pipelines and `missingkey=zero` map lookups.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::funcs::call;
use super::gofmt::format_g;
use super::parse::{Arg, Branch, Cmd, Node, Pipe};
use super::{ExpandEnv, TemplateError};

/// One sample of a `query` result, as templates see it.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A `map[string]string` shared between template values without copying.
pub type StrMap = Rc<BTreeMap<String, String>>;

/// The `.` of an alert template.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AlertData {
    pub labels: StrMap,
    pub external_labels: StrMap,
    pub external_url: String,
    pub value: f64,
}

/// A template value (Go's dynamic types, reduced to what rule templates
/// meet).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A missing value (printed `<no value>`).
    Invalid,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `safeHtml` output (an `html/template.HTML`, printed as is).
    Html(String),
    /// `map[string]string` (labels).
    StrMap(Rc<BTreeMap<String, String>>),
    /// `map[string]interface{}` (`args`).
    AnyMap(Rc<BTreeMap<String, Value>>),
    /// A `query` result.
    Samples(Rc<Vec<QuerySample>>),
    Sample(Rc<QuerySample>),
    Data(Rc<AlertData>),
    /// `toTime` result: milliseconds since the epoch.
    Time(i64),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<invalid>",
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::StrMap(_) => "map[string]string",
            Value::AnyMap(_) => "map[string]interface {}",
            Value::Samples(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Data(_) => "struct",
            Value::Time(_) => "time.Time",
        }
    }

    /// Go's `truth`: false, 0, nil and empty values are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::AnyMap(m) => !m.is_empty(),
            Value::Samples(s) => !s.is_empty(),
            Value::Sample(_) | Value::Data(_) | Value::Time(_) => true,
        }
    }

    /// What `fmt.Sprint` prints.
    pub fn print(&self) -> String {
        match self {
            Value::Invalid => "<no value>".into(),
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_g(*f, None, false),
            Value::Str(s) | Value::Html(s) => s.clone(),
            Value::StrMap(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::AnyMap(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::Samples(s) => {
                let parts: Vec<String> = s.iter().map(print_sample).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(s) => print_sample(s),
            Value::Data(d) => format!(
                "{{{} {} {} {}}}",
                Value::StrMap(d.labels.clone()).print(),
                Value::StrMap(d.external_labels.clone()).print(),
                d.external_url,
                format_g(d.value, None, false)
            ),
            Value::Time(ms) => super::timefmt::go_time_string(*ms),
        }
    }
}

/// Go templates print a `*sample` dereferenced: `{map[...] value}`.
fn print_sample(s: &QuerySample) -> String {
    let parts: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!(
        "{{map[{}] {}}}",
        parts.join(" "),
        format_g(s.value, None, false)
    )
}

pub(crate) struct Exec<'a> {
    pub name: &'a str,
    pub env: &'a ExpandEnv<'a>,
    vars: Vec<(String, Value)>,
    pub out: String,
}

type R<T> = Result<T, TemplateError>;

impl<'a> Exec<'a> {
    pub fn new(name: &'a str, env: &'a ExpandEnv<'a>, root: Value) -> Self {
        Exec {
            name,
            env,
            vars: vec![("$".to_string(), root)],
            out: String::new(),
        }
    }

    pub fn define(&mut self, name: &str, v: Value) {
        self.vars.push((name.to_string(), v));
    }

    pub fn err(&self, line: usize, what: &str, msg: impl Into<String>) -> TemplateError {
        TemplateError::Exec(format!(
            "template: {}:{}: executing {:?} at <{}>: {}",
            self.name,
            line,
            self.name,
            what,
            msg.into()
        ))
    }

    fn var(&self, name: &str) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Invalid)
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    pub fn walk(&mut self, dot: &Value, nodes: &[Node]) -> R<()> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { pipe, line } => {
                    let v = self.pipe(dot, pipe, *line)?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&v.print());
                    }
                }
                Node::If(b) => self.branch_if(dot, b)?,
                Node::With(b) => {
                    let depth = self.vars.len();
                    let v = self.pipe(dot, &b.pipe, b.line)?;
                    if v.truth() {
                        self.walk(&v, &b.list)?;
                    } else if let Some(e) = &b.else_list {
                        self.walk(dot, e)?;
                    }
                    self.vars.truncate(depth);
                }
                Node::Range(b) => self.range(dot, b)?,
            }
        }
        Ok(())
    }

    fn branch_if(&mut self, dot: &Value, b: &Branch) -> R<()> {
        let depth = self.vars.len();
        let v = self.pipe(dot, &b.pipe, b.line)?;
        if v.truth() {
            self.walk(dot, &b.list)?;
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e)?;
        }
        self.vars.truncate(depth);
        Ok(())
    }

    fn range(&mut self, dot: &Value, b: &Branch) -> R<()> {
        let depth = self.vars.len();
        // The pipeline is evaluated without its declarations; they are
        // bound per element.
        let inner = Pipe {
            decl: vec![],
            is_assign: false,
            cmds: b.pipe.cmds.clone(),
        };
        let v = self.pipe(dot, &inner, b.line)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::StrMap(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::AnyMap(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Samples(s) => s
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), Value::Sample(Rc::new(x.clone()))))
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Invalid | Value::Nil => vec![],
            other => {
                return Err(self.err(
                    b.line,
                    "range",
                    format!("range can't iterate over {}", other.print()),
                ))
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                self.walk(dot, e)?;
            }
            self.vars.truncate(depth);
            return Ok(());
        }
        for (k, elem) in items {
            let d = self.vars.len();
            match b.pipe.decl.len() {
                1 => self.bind(&b.pipe, 0, elem.clone()),
                2 => {
                    self.bind(&b.pipe, 0, k);
                    self.bind(&b.pipe, 1, elem.clone());
                }
                _ => {}
            }
            self.walk(&elem, &b.list)?;
            self.vars.truncate(d.max(depth));
        }
        self.vars.truncate(depth);
        Ok(())
    }

    fn bind(&mut self, pipe: &Pipe, i: usize, v: Value) {
        if pipe.is_assign {
            self.set_var(&pipe.decl[i], v);
        } else {
            self.define(&pipe.decl[i].clone(), v);
        }
    }

    pub fn pipe(&mut self, dot: &Value, pipe: &Pipe, line: usize) -> R<Value> {
        let mut final_v: Option<Value> = None;
        for c in &pipe.cmds {
            final_v = Some(self.cmd(dot, c, final_v, line)?);
        }
        let v = final_v.unwrap_or(Value::Invalid);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, v.clone());
            } else {
                self.define(d, v.clone());
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, dot: &Value, c: &Cmd, final_v: Option<Value>, line: usize) -> R<Value> {
        match &c.args[0] {
            Arg::Func(name) => {
                if name == "and" || name == "or" {
                    return self.and_or(dot, name == "and", &c.args[1..], final_v, line);
                }
                let mut args = Vec::with_capacity(c.args.len());
                for a in &c.args[1..] {
                    args.push(self.arg(dot, a, line)?);
                }
                if let Some(f) = final_v {
                    args.push(f);
                }
                call(self, name, args, line)
            }
            first => {
                if c.args.len() > 1 || final_v.is_some() {
                    let what = arg_name(first);
                    return Err(self.err(
                        line,
                        &what,
                        format!("can't give argument to non-function {what}"),
                    ));
                }
                self.arg(dot, first, line)
            }
        }
    }

    fn and_or(
        &mut self,
        dot: &Value,
        is_and: bool,
        args: &[Arg],
        final_v: Option<Value>,
        line: usize,
    ) -> R<Value> {
        let name = if is_and { "and" } else { "or" };
        if args.is_empty() && final_v.is_none() {
            return Err(self.err(
                line,
                name,
                format!("wrong number of args for {name}: want at least 1 got 0"),
            ));
        }
        let mut last = Value::Invalid;
        for a in args {
            last = self.arg(dot, a, line)?;
            if last.truth() != is_and {
                return Ok(last);
            }
        }
        if let Some(f) = final_v {
            last = f;
        }
        Ok(last)
    }

    pub fn arg(&mut self, dot: &Value, a: &Arg, line: usize) -> R<Value> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(fs) => self.fields(dot.clone(), fs, line),
            Arg::Var(v, fs) => {
                let base = self.var(v);
                self.fields(base, fs, line)
            }
            Arg::Pipe(p, fs) => {
                let depth = self.vars.len();
                let v = self.pipe(dot, p, line)?;
                self.vars.truncate(depth);
                self.fields(v, fs, line)
            }
            Arg::Func(name) => call(self, name, vec![], line),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Err(self.err(line, "nil", "nil is not a command")),
        }
    }

    fn fields(&self, mut v: Value, fs: &[String], line: usize) -> R<Value> {
        for f in fs {
            v = match &v {
                Value::StrMap(m) => Value::Str(m.get(f).cloned().unwrap_or_default()),
                Value::AnyMap(m) => m.get(f).cloned().unwrap_or(Value::Invalid),
                Value::Data(d) => match f.as_str() {
                    "Labels" => Value::StrMap(d.labels.clone()),
                    "ExternalLabels" => Value::StrMap(d.external_labels.clone()),
                    "ExternalURL" => Value::Str(d.external_url.clone()),
                    "Value" => Value::Float(d.value),
                    _ => {
                        return Err(self.err(
                            line,
                            &format!(".{f}"),
                            format!("can't evaluate field {f} in type struct"),
                        ))
                    }
                },
                Value::Sample(s) => match f.as_str() {
                    "Labels" => Value::StrMap(Rc::new(s.labels.clone())),
                    "Value" => Value::Float(s.value),
                    _ => {
                        return Err(self.err(
                            line,
                            &format!(".{f}"),
                            format!("can't evaluate field {f} in type *template.sample"),
                        ))
                    }
                },
                Value::Invalid | Value::Nil => {
                    return Err(self.err(
                        line,
                        &format!(".{f}"),
                        format!("nil pointer evaluating interface {{}}.{f}"),
                    ))
                }
                other => {
                    return Err(self.err(
                        line,
                        &format!(".{f}"),
                        format!("can't evaluate field {f} in type {}", other.type_name()),
                    ))
                }
            };
        }
        Ok(v)
    }
}

fn arg_name(a: &Arg) -> String {
    match a {
        Arg::Dot => ".".into(),
        Arg::Field(fs) => format!(".{}", fs.join(".")),
        Arg::Var(v, fs) if fs.is_empty() => v.clone(),
        Arg::Var(v, fs) => format!("{v}.{}", fs.join(".")),
        Arg::Func(f) => f.clone(),
        Arg::Pipe(_, _) => "(...)".into(),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => format_g(*f, None, false),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".into(),
    }
}
