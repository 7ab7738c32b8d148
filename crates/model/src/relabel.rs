//! Relabeling with Prometheus 2.53's semantics: every action, its defaults,
//! its validation rules, Go's `Regexp.Expand` templates and `hashmod`'s shard.
//!
//! This module is pure: no serde, no YAML, no I/O. `vigil-config` builds
//! [`RelabelConfig`]s at load time; scrape, alerting and remote write call
//! [`process`] on hot paths, so a rule that does not change anything allocates
//! nothing (joined source values and expansions go to a per-thread scratch
//! buffer, and labels are copied only on the first real change).

use crate::labels::{Label, Labels};
use regex::Regex;
use std::cell::RefCell;
use std::fmt;
use std::sync::LazyLock;

/// Prometheus's default separator between joined source label values.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Prometheus's default regex (anchored at compile time).
pub const DEFAULT_REGEX: &str = "(.*)";
/// Prometheus's default replacement.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a relabel rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name case-insensitively, as Prometheus does.
    pub fn parse(s: &str) -> Result<Action, RelabelError> {
        let lower = s.to_ascii_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| RelabelError::UnknownAction(s.to_string()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a relabel rule is invalid. Messages are Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("unknown relabel action {}", crate::gofmt::quote(.0))]
    UnknownAction(String),
    #[error("error parsing regexp: {0}")]
    BadRegex(String),
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("{} is invalid 'target_label' for {} action", crate::gofmt::quote(.0), .1)]
    InvalidTargetLabel(String, Action),
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{} is invalid 'replacement' for {} action", crate::gofmt::quote(.0), .1)]
    InvalidReplacement(String, Action),
    #[error("{0} action requires only 'source_labels' and `target_label`, and no other fields")]
    OnlySourceAndTarget(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

/// A relabel rule as written by a user: `None` means "not set", which matters
/// because some actions reject fields that were set at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelabelSpec {
    pub source_labels: Option<Vec<String>>,
    pub separator: Option<String>,
    pub target_label: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub replacement: Option<String>,
    pub action: Option<Action>,
}

/// An anchored regex that remembers the pattern it was written as.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    pattern: String,
    re: Regex,
    /// The pattern is exactly the default `(.*)`: lets hot paths skip the engine.
    is_default: bool,
}

impl RelabelRegex {
    /// Compiles `^(?:pattern)$` with Go RE2 syntax (see [`translate_go_regex`]).
    pub fn new(pattern: &str) -> Result<Self, RelabelError> {
        let translated = translate_go_regex(pattern).map_err(RelabelError::BadRegex)?;
        let re = Regex::new(&format!("^(?:{translated})$")).map_err(|e| {
            RelabelError::BadRegex(format!("{}: `{pattern}`", regex_error_text(&e)))
        })?;
        Ok(RelabelRegex {
            pattern: pattern.to_string(),
            re,
            is_default: pattern == DEFAULT_REGEX,
        })
    }

    /// The pattern as written (without the anchors).
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn is_match(&self, s: &str) -> bool {
        if self.is_default {
            return !s.contains('\n');
        }
        self.re.is_match(s)
    }

    /// The compiled, anchored regex.
    pub fn regex(&self) -> &Regex {
        &self.re
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for RelabelRegex {}

/// A validated relabel rule with Prometheus's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelabelConfig {
    source_labels: Vec<String>,
    separator: String,
    target_label: String,
    regex: RelabelRegex,
    modulus: u64,
    replacement: String,
    action: Action,
    target_has_var: bool,
    replacement_has_var: bool,
}

impl RelabelConfig {
    /// Validates a rule with Prometheus's rules and compiles it.
    pub fn new(spec: RelabelSpec) -> Result<Self, RelabelError> {
        let action = spec.action.unwrap_or(Action::Replace);
        let regex_set = spec.regex.is_some();
        let regex = RelabelRegex::new(spec.regex.as_deref().unwrap_or(DEFAULT_REGEX))?;
        let source_set = spec.source_labels.is_some();
        let cfg = RelabelConfig {
            source_labels: spec.source_labels.unwrap_or_default(),
            separator: spec
                .separator
                .unwrap_or_else(|| DEFAULT_SEPARATOR.to_string()),
            target_label: spec.target_label.unwrap_or_default(),
            regex,
            modulus: spec.modulus.unwrap_or(0),
            replacement: spec
                .replacement
                .unwrap_or_else(|| DEFAULT_REPLACEMENT.to_string()),
            action,
            target_has_var: false,
            replacement_has_var: false,
        };
        cfg.validate(source_set, regex_set)?;
        Ok(RelabelConfig {
            target_has_var: cfg.target_label.contains('$'),
            replacement_has_var: cfg.replacement.contains('$'),
            ..cfg
        })
    }

    /// A `replace` rule from the given parts, other fields defaulted.
    pub fn replace(
        source_labels: &[&str],
        regex: &str,
        target_label: &str,
        replacement: &str,
    ) -> Result<Self, RelabelError> {
        RelabelConfig::new(RelabelSpec {
            source_labels: Some(source_labels.iter().map(|s| s.to_string()).collect()),
            regex: Some(regex.to_string()),
            target_label: Some(target_label.to_string()),
            replacement: Some(replacement.to_string()),
            ..RelabelSpec::default()
        })
    }

    fn validate(&self, source_set: bool, regex_set: bool) -> Result<(), RelabelError> {
        use Action::*;
        let a = self.action;
        let t = self.target_label.as_str();
        if a == HashMod && self.modulus == 0 {
            return Err(RelabelError::ZeroModulus);
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && t.is_empty()
        {
            return Err(RelabelError::MissingTargetLabel(a));
        }
        let invalid_target = || RelabelError::InvalidTargetLabel(t.to_string(), a);
        if a == Replace {
            let ok = if t.contains('$') {
                RELABEL_TARGET.is_match(t)
            } else {
                is_valid_label_name(t)
            };
            if !ok {
                return Err(invalid_target());
            }
        }
        let default_replacement = self.replacement == DEFAULT_REPLACEMENT;
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) {
            if !is_valid_label_name(t) {
                return Err(invalid_target());
            }
            if !default_replacement {
                return Err(RelabelError::ReplacementNotAllowed(a));
            }
        }
        if a == LabelMap && !RELABEL_TARGET.is_match(&self.replacement) {
            return Err(RelabelError::InvalidReplacement(
                self.replacement.clone(),
                a,
            ));
        }
        if a == HashMod && !is_valid_label_name(t) {
            return Err(invalid_target());
        }
        // Prometheus compares the compiled regex by identity, so any explicitly
        // given regex counts as "set" here.
        if matches!(a, KeepEqual | DropEqual)
            && (regex_set
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || !default_replacement)
        {
            return Err(RelabelError::OnlySourceAndTarget(a));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (source_set
                || !t.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || !default_replacement)
        {
            return Err(RelabelError::OnlyRegex(a));
        }
        Ok(())
    }

    pub fn source_labels(&self) -> &[String] {
        &self.source_labels
    }
    pub fn separator(&self) -> &str {
        &self.separator
    }
    pub fn target_label(&self) -> &str {
        &self.target_label
    }
    pub fn regex(&self) -> &RelabelRegex {
        &self.regex
    }
    pub fn modulus(&self) -> u64 {
        self.modulus
    }
    pub fn replacement(&self) -> &str {
        &self.replacement
    }
    pub fn action(&self) -> Action {
        self.action
    }

    /// The rule with every field explicit (what an effective-config dump shows).
    pub fn to_spec(&self) -> RelabelSpec {
        RelabelSpec {
            source_labels: Some(self.source_labels.clone()),
            separator: Some(self.separator.clone()),
            target_label: Some(self.target_label.clone()),
            regex: Some(self.regex.pattern.clone()),
            modulus: Some(self.modulus),
            replacement: Some(self.replacement.clone()),
            action: Some(self.action),
        }
    }
}

/// `relabelTarget` of Prometheus: label-name characters and `$1`/`${name}` references.
static RELABEL_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// Prometheus 2.x (legacy) label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The shard `hashmod` assigns: md5 of the value, low 8 bytes of the digest
/// read big-endian, modulo `modulus` (as Prometheus computes it).
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(value.as_bytes());
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(low) % modulus.max(1)
}

/// Applies `cfgs` in order. `None` means a rule dropped the label set.
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut work = Work {
        borrowed: labels.as_slice(),
        owned: None,
    };
    if !run(&mut work, cfgs) {
        return None;
    }
    Some(match work.owned {
        Some(v) => Labels::from_sorted(v),
        None => labels.clone(),
    })
}

/// Like [`process`], but takes ownership so an unchanged set is returned as is.
pub fn process_owned(labels: Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut work = Work {
        borrowed: &[],
        owned: Some(labels.into_vec()),
    };
    if !run(&mut work, cfgs) {
        return None;
    }
    work.owned.map(Labels::from_sorted)
}

/// Per-thread buffers so that evaluating a rule does not allocate.
#[derive(Default)]
struct Scratch {
    joined: String,
    target: String,
    value: String,
    pairs: Vec<(String, String)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn run(work: &mut Work<'_>, cfgs: &[RelabelConfig]) -> bool {
    if cfgs.is_empty() {
        return true;
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => cfgs.iter().all(|c| apply(c, work, &mut s)),
        // Re-entered on this thread (cannot happen today): use fresh buffers.
        Err(_) => {
            let mut s = Scratch::default();
            cfgs.iter().all(|c| apply(c, work, &mut s))
        }
    })
}

/// A label set that is copied on its first change.
struct Work<'a> {
    borrowed: &'a [Label],
    owned: Option<Vec<Label>>,
}

impl Work<'_> {
    fn labels(&self) -> &[Label] {
        self.owned.as_deref().unwrap_or(self.borrowed)
    }

    fn get(&self, name: &str) -> &str {
        let ls = self.labels();
        match ls.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => &ls[i].value,
            Err(_) => "",
        }
    }

    fn owned(&mut self) -> &mut Vec<Label> {
        let borrowed = self.borrowed;
        self.owned.get_or_insert_with(|| borrowed.to_vec())
    }

    /// Sets `name` to `value`; an empty value deletes. No-op (and no copy)
    /// when nothing changes.
    fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            return self.del(name);
        }
        match self
            .labels()
            .binary_search_by(|l| l.name.as_str().cmp(name))
        {
            Ok(i) => {
                if self.labels()[i].value != value {
                    let l = &mut self.owned()[i];
                    l.value.clear();
                    l.value.push_str(value);
                }
            }
            Err(i) => self.owned().insert(i, Label::new(name, value)),
        }
    }

    fn del(&mut self, name: &str) {
        if let Ok(i) = self
            .labels()
            .binary_search_by(|l| l.name.as_str().cmp(name))
        {
            self.owned().remove(i);
        }
    }

    /// Keeps only labels whose name satisfies `keep`.
    fn retain_names(&mut self, keep: impl Fn(&str) -> bool) {
        if self.labels().iter().all(|l| keep(&l.name)) {
            return;
        }
        self.owned().retain(|l| keep(&l.name));
    }
}

/// Applies one rule; false means "drop".
fn apply(cfg: &RelabelConfig, work: &mut Work<'_>, s: &mut Scratch) -> bool {
    // Joined source values: borrowed for zero or one source label.
    let val: &str = match cfg.source_labels.as_slice() {
        [] => "",
        [one] => work.get(one),
        many => {
            s.joined.clear();
            for (i, n) in many.iter().enumerate() {
                if i > 0 {
                    s.joined.push_str(&cfg.separator);
                }
                s.joined.push_str(work.get(n));
            }
            &s.joined
        }
    };
    // `val` may borrow from `work`: every arm finishes reading it before it
    // mutates `work`.
    match cfg.action {
        Action::Drop => !cfg.regex.is_match(val),
        Action::Keep => cfg.regex.is_match(val),
        Action::DropEqual => work.get(&cfg.target_label) != val,
        Action::KeepEqual => work.get(&cfg.target_label) == val,
        Action::Replace => {
            if replace(cfg, val, &mut s.target, &mut s.value) {
                let target = if cfg.target_has_var {
                    s.target.as_str()
                } else {
                    cfg.target_label.as_str()
                };
                if is_valid_label_name(target) {
                    work.set(target, &s.value);
                }
            }
            true
        }
        Action::Lowercase | Action::Uppercase => {
            s.value.clear();
            change_case(val, cfg.action == Action::Lowercase, &mut s.value);
            work.set(&cfg.target_label, &s.value);
            true
        }
        Action::HashMod => {
            let shard = hashmod(val, cfg.modulus);
            let buf = itoa_buf(shard);
            work.set(&cfg.target_label, buf.as_str());
            true
        }
        Action::LabelMap => {
            s.pairs.clear();
            for l in work.labels() {
                if let Some(caps) = captures(&cfg.regex, &l.name) {
                    let mut name = String::new();
                    expand_go(&cfg.replacement, &caps, &mut name);
                    s.pairs.push((name, l.value.clone()));
                }
            }
            for (n, v) in s.pairs.drain(..) {
                work.set(&n, &v);
            }
            true
        }
        Action::LabelDrop => {
            work.retain_names(|n| !cfg.regex.is_match(n));
            true
        }
        Action::LabelKeep => {
            work.retain_names(|n| cfg.regex.is_match(n));
            true
        }
    }
}

/// Computes the `replace` action's target (only when templated) and value
/// into the scratch buffers; false when the regex does not match.
fn replace(cfg: &RelabelConfig, val: &str, target: &mut String, value: &mut String) -> bool {
    target.clear();
    value.clear();
    if !cfg.target_has_var && !cfg.replacement_has_var {
        if !cfg.regex.is_match(val) {
            return false;
        }
        value.push_str(&cfg.replacement);
        return true;
    }
    // Cheap reject before asking for capture positions (which allocate).
    if !cfg.regex.is_match(val) {
        return false;
    }
    let Some(caps) = captures(&cfg.regex, val) else {
        return false;
    };
    if cfg.target_has_var {
        expand_go(&cfg.target_label, &caps, target);
    }
    expand_go(&cfg.replacement, &caps, value);
    true
}

/// Match positions of a successful anchored match.
enum Caps<'h> {
    /// The default `(.*)`: groups 0 and 1 are the whole input.
    Whole(&'h str),
    Regex(regex::Captures<'h>),
}

impl<'h> Caps<'h> {
    fn group(&self, i: usize) -> Option<&'h str> {
        match self {
            Caps::Whole(s) => (i <= 1).then_some(*s),
            Caps::Regex(c) => c.get(i).map(|m| m.as_str()),
        }
    }

    fn named(&self, name: &str) -> Option<&'h str> {
        match self {
            Caps::Whole(_) => None,
            Caps::Regex(c) => c.name(name).map(|m| m.as_str()),
        }
    }
}

fn captures<'h>(re: &RelabelRegex, s: &'h str) -> Option<Caps<'h>> {
    if re.is_default {
        return (!s.contains('\n')).then_some(Caps::Whole(s));
    }
    re.re.captures(s).map(Caps::Regex)
}

/// Go's `Regexp.Expand`: `$$` is `$`; `$name` takes the longest run of
/// letters, digits and `_` (so `$1x` is group "1x"); `${name}` is explicit;
/// a malformed reference is kept literally; a missing group expands to "".
fn expand_go(template: &str, caps: &Caps<'_>, out: &mut String) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let Some((name, after)) = extract_ref(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.group(n),
            None => caps.named(name),
        };
        if let Some(g) = group {
            out.push_str(g);
        }
    }
    out.push_str(rest);
}

/// Splits a reference name (after `$`) from the rest of the template.
fn extract_ref(s: &str) -> Option<(&str, &str)> {
    let (body, brace) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if brace {
        let after = body[end..].strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// A group number as Go reads it: ASCII digits, no leading zero, below 1e8.
fn group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

/// Per-character case mapping like Go's `strings.ToLower/ToUpper`: a
/// character whose full mapping is several characters keeps its simple form.
fn change_case(s: &str, lower: bool, out: &mut String) {
    if s.is_ascii() {
        out.push_str(s);
        if lower {
            out.make_ascii_lowercase();
        } else {
            out.make_ascii_uppercase();
        }
        return;
    }
    for c in s.chars() {
        if lower {
            if c == '\u{130}' {
                out.push('i');
                continue;
            }
            let mut m = c.to_lowercase();
            match (m.next(), m.next()) {
                (Some(x), None) => out.push(x),
                _ => out.push(c),
            }
        } else {
            let mut m = c.to_uppercase();
            match (m.next(), m.next()) {
                (Some(x), None) => out.push(x),
                _ => out.push(c),
            }
        }
    }
}

/// Decimal formatting into a stack buffer.
struct ItoaBuf {
    buf: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

fn itoa_buf(mut n: u64) -> ItoaBuf {
    let mut b = ItoaBuf {
        buf: [0; 20],
        start: 20,
    };
    loop {
        b.start -= 1;
        b.buf[b.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b
}

fn regex_error_text(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => {
            let last = s.lines().last().unwrap_or(s).trim();
            last.strip_prefix("error: ").unwrap_or(last).to_string()
        }
        other => other.to_string(),
    }
}

/// Rewrites a Go RE2 pattern so Rust's `regex` reads it the way Go does:
/// `\d \w \s \b` are ASCII-only in Go, `\Q..\E` quotes, a `{` that does not
/// start a repetition is literal, and `[`, `&`, `~` inside a class are
/// literal (Rust would read nested classes and set operations). Repetition
/// counts above 1000 are rejected as in Go.
pub fn translate_go_regex(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false; // just after `[` or `[^`
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err(format!("trailing backslash at end of expression: `{p}`"));
            };
            i += 2;
            class_start = false;
            match n {
                'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                    let set = match n.to_ascii_lowercase() {
                        'd' => "0-9",
                        'w' => "0-9A-Za-z_",
                        _ => r"\t\n\x0C\r ",
                    };
                    let neg = n.is_ascii_uppercase();
                    match (in_class, neg) {
                        (true, false) => out.push_str(set),
                        _ => {
                            out.push('[');
                            if neg {
                                out.push('^');
                            }
                            out.push_str(set);
                            out.push(']');
                        }
                    }
                }
                'b' | 'B' if !in_class => {
                    out.push_str("(?-u:\\");
                    out.push(n);
                    out.push(')');
                }
                'Q' => {
                    // Literal text up to `\E` (or the end).
                    while i < chars.len() {
                        if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                            i += 2;
                            break;
                        }
                        let lit = chars[i];
                        if lit.is_ascii_punctuation() {
                            out.push('\\');
                        }
                        out.push(lit);
                        i += 1;
                    }
                }
                'p' | 'P' | 'x' => {
                    out.push('\\');
                    out.push(n);
                    if chars.get(i) == Some(&'{') {
                        while i < chars.len() {
                            out.push(chars[i]);
                            i += 1;
                            if chars[i - 1] == '}' {
                                break;
                            }
                        }
                    }
                }
                _ => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' if !class_start => in_class = false,
                '[' if chars.get(i + 1) == Some(&':') => {
                    // POSIX class `[:name:]`: copy through the closing `:]`.
                    let rest: String = chars[i..].iter().collect();
                    if let Some(end) = rest.find(":]") {
                        out.push_str(&rest[..end + 2]);
                        i += rest[..end + 2].chars().count();
                        class_start = false;
                        continue;
                    }
                    out.push_str("\\[");
                    i += 1;
                    class_start = false;
                    continue;
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                    i += 1;
                    class_start = false;
                    continue;
                }
                '^' if class_start && out.ends_with('[') => {
                    out.push('^');
                    i += 1;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                i += 1;
            }
            '{' => {
                if let Some((len, min, max)) = repetition(&chars[i..]) {
                    if min > 1000 || max.is_some_and(|m| m > 1000) {
                        let text: String = chars[i..i + len].iter().collect();
                        return Err(format!("invalid repeat count: `{text}`"));
                    }
                    out.extend(&chars[i..i + len]);
                    i += len;
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
            }
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Parses `{n}`, `{n,}` or `{n,m}` (with an optional lazy `?` left to the
/// caller); returns its length in chars and the bounds.
fn repetition(s: &[char]) -> Option<(usize, u64, Option<u64>)> {
    let mut i = 1;
    let digits = |i: &mut usize| -> Option<u64> {
        let start = *i;
        while s.get(*i).is_some_and(|c| c.is_ascii_digit()) {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        let text: String = s[start..*i].iter().collect();
        Some(text.parse::<u64>().unwrap_or(u64::MAX))
    };
    let min = digits(&mut i)?;
    let max = match s.get(i)? {
        '}' => Some(min),
        ',' => {
            i += 1;
            if s.get(i) == Some(&'}') {
                None
            } else {
                Some(digits(&mut i)?)
            }
        }
        _ => return None,
    };
    if s.get(i) != Some(&'}') {
        return None;
    }
    Some((i + 1, min, max))
}

#[cfg(test)]
mod tests;
