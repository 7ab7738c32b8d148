//! Label sets: the identity of a series.
//!
//! A `Labels` is always sorted by name, has unique names and no empty values
//! (an empty value means "label absent", as in Prometheus). Every constructor
//! upholds that, so comparison, hashing and lookups can rely on it.

use std::fmt;

/// Name of the label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Separator byte used when hashing label sets (never valid in UTF-8 text).
const SEP: u8 = 0xff;

/// One label pair.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted set of labels. Ordering is Prometheus's `labels.Compare`:
/// pairwise by name, then value, then by length.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from arbitrary labels: sorts them, drops empty values,
    /// and keeps the last value for a repeated name.
    pub fn new(mut labels: Vec<Label>) -> Self {
        labels.retain(|l| !l.value.is_empty());
        // Stable sort keeps input order among equal names; keep the last one.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(out)
    }

    /// Wraps labels that the caller guarantees are sorted, unique and non-empty.
    /// Checked in debug builds.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        debug_assert!(labels.iter().all(|l| !l.value.is_empty()));
        Labels(labels)
    }

    /// Convenience constructor from string pairs.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Self {
        Labels::new(
            pairs
                .iter()
                .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// A copy without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        self.without(&[METRIC_NAME])
    }

    /// A copy keeping only the named labels.
    pub fn keep_only(&self, names: &[impl AsRef<str>]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A copy without the named labels.
    pub fn without(&self, names: &[impl AsRef<str>]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// Stable 64-bit hash of the whole set (same value in every process).
    pub fn stable_hash(&self) -> u64 {
        let mut h = StableHasher::new();
        for l in &self.0 {
            h.write_label(l);
        }
        h.finish()
    }

    /// Stable hash of only the named labels (`names` need not be sorted).
    pub fn hash_for_labels(&self, names: &[impl AsRef<str>]) -> u64 {
        let mut h = StableHasher::new();
        for l in &self.0 {
            if names.iter().any(|n| n.as_ref() == l.name) {
                h.write_label(l);
            }
        }
        h.finish()
    }

    /// Stable hash of all labels except the named ones and `__name__`
    /// (what `without(...)` grouping and `ignoring(...)` matching need).
    pub fn hash_without_labels(&self, names: &[impl AsRef<str>]) -> u64 {
        let mut h = StableHasher::new();
        for l in &self.0 {
            if l.name != METRIC_NAME && !names.iter().any(|n| n.as_ref() == l.name) {
                h.write_label(l);
            }
        }
        h.finish()
    }

    /// A builder seeded with these labels.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::new(self.clone())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<T: IntoIterator<Item = Label>>(iter: T) -> Self {
        Labels::new(iter.into_iter().collect())
    }
}

/// Formats as Prometheus's `labels.Labels.String()`: `{a="1", b="2"}` with Go
/// string quoting of values.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&l.name)?;
            f.write_str("=")?;
            crate::gofmt::write_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

/// Mutable construction of a label set: set and delete, then `build`.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    base: Labels,
    del: Vec<String>,
    add: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new(base: Labels) -> Self {
        LabelsBuilder {
            base,
            del: Vec::new(),
            add: Vec::new(),
        }
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        if value.is_empty() {
            return self.del(&name);
        }
        self.del.retain(|d| *d != name);
        if let Some(l) = self.add.iter_mut().find(|l| l.name == name) {
            l.value = value;
        } else {
            self.add.push(Label { name, value });
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.add.retain(|l| l.name != name);
        if !self.del.iter().any(|d| d == name) {
            self.del.push(name.to_string());
        }
        self
    }

    /// Current value of `name`, taking pending changes into account.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(l) = self.add.iter().find(|l| l.name == name) {
            return Some(&l.value);
        }
        if self.del.iter().any(|d| d == name) {
            return None;
        }
        self.base.get(name)
    }

    pub fn build(&self) -> Labels {
        if self.del.is_empty() && self.add.is_empty() {
            return self.base.clone();
        }
        let mut out: Vec<Label> = self
            .base
            .iter()
            .filter(|l| !self.del.contains(&l.name) && !self.add.iter().any(|a| a.name == l.name))
            .cloned()
            .collect();
        out.extend(self.add.iter().cloned());
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Labels(out)
    }
}

/// xxHash64-style stable hasher. Deterministic across processes and builds,
/// which `std`'s hashers do not promise; good distribution for shard selection.
struct StableHasher {
    state: u64,
}

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;

impl StableHasher {
    fn new() -> Self {
        StableHasher { state: P2 }
    }

    #[inline]
    fn mix(&mut self, word: u64) {
        self.state ^= word.wrapping_mul(P1).rotate_left(31).wrapping_mul(P2);
        self.state = self.state.rotate_left(27).wrapping_mul(P1).wrapping_add(P2);
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
    }

    fn write_label(&mut self, l: &Label) {
        self.write(l.name.as_bytes());
        self.mix(SEP as u64);
        self.write(l.value.as_bytes());
        self.mix(SEP as u64);
    }

    fn finish(&self) -> u64 {
        let mut h = self.state;
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P1);
        h ^= h >> 32;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sorts_dedups_and_drops_empty() {
        let l = Labels::new(vec![
            Label::new("b", "2"),
            Label::new("a", "1"),
            Label::new("c", ""),
            Label::new("a", "3"),
        ]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.to_string(), r#"{a="3", b="2"}"#);
    }

    #[test]
    fn ordering_matches_prometheus_compare() {
        let a = Labels::from_pairs(&[("a", "1")]);
        let ab = Labels::from_pairs(&[("a", "1"), ("b", "1")]);
        let b = Labels::from_pairs(&[("b", "0")]);
        assert!(a < ab);
        assert!(ab < b);
    }

    #[test]
    fn builder_set_and_delete() {
        let base = Labels::from_pairs(&[("__name__", "up"), ("job", "x")]);
        let mut b = base.builder();
        b.set("instance", "h:1").del("job").set("__name__", "");
        assert_eq!(b.get("job"), None);
        assert_eq!(b.build(), Labels::from_pairs(&[("instance", "h:1")]));
    }

    #[test]
    fn hashes_are_stable_and_selective() {
        let l = Labels::from_pairs(&[("__name__", "m"), ("a", "1"), ("b", "2")]);
        let same = Labels::from_pairs(&[("b", "2"), ("a", "1"), ("__name__", "m")]);
        assert_eq!(l.stable_hash(), same.stable_hash());
        assert_eq!(
            l.hash_for_labels(&["a"]),
            Labels::from_pairs(&[("a", "1")]).stable_hash()
        );
        assert_eq!(
            l.hash_without_labels(&["b"]),
            Labels::from_pairs(&[("a", "1")]).stable_hash()
        );
        // Label boundaries matter: {a="bc"} and {ab="c"} differ.
        assert_ne!(
            Labels::from_pairs(&[("a", "bc")]).stable_hash(),
            Labels::from_pairs(&[("ab", "c")]).stable_hash()
        );
    }
}
