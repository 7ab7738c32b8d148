//! Library side of `vigil tsdb list|analyze|dump`: the data promtool's
//! commands print, computed from a data directory's blocks, plus formatting
//! helpers that reproduce Go's number and duration output so the CLI can
//! print byte-identical text.
//!
//! Read-only: nothing here writes to or locks the directory.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use vigil_model::storage::{Queryable, StorageError};
use vigil_model::{Labels, Matcher, Sample, METRIC_NAME};

use crate::block::{list_block_dirs, Block};
use crate::meta::BlockMeta;

mod verify;
pub use verify::{verify, BlockVerdict, HeadVerdict, VerifyReport};

/// One row of `tsdb list`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockListing {
    pub meta: BlockMeta,
    /// Bytes on disk (index, chunks, tombstones, meta.json).
    pub size: u64,
}

/// Opens every block of `dir`, ordered by min time (as Prometheus orders them).
pub(crate) fn open_blocks(dir: &Path) -> Result<Vec<Block>, StorageError> {
    let mut blocks = list_block_dirs(dir)?
        .into_iter()
        .map(|(_, p)| Block::open(&p))
        .collect::<Result<Vec<_>, _>>()?;
    blocks.sort_by_key(|b| {
        let m = b.meta();
        (m.min_time, m.ulid)
    });
    Ok(blocks)
}

/// The blocks of a data dir, ordered by min time.
pub fn list(dir: &Path) -> Result<Vec<BlockListing>, StorageError> {
    Ok(open_blocks(dir)?
        .into_iter()
        .map(|b| BlockListing {
            meta: b.meta(),
            size: b.size(),
        })
        .collect())
}

impl From<&crate::block::WrittenBlock> for BlockListing {
    fn from(b: &crate::block::WrittenBlock) -> Self {
        BlockListing {
            meta: b.meta.clone(),
            size: b.size,
        }
    }
}

/// `tsdb list` as promtool prints it (non-human-readable form); also what
/// `create-blocks-from` prints for the blocks it wrote.
pub fn format_list(rows: &[BlockListing]) -> String {
    let mut table = vec![[
        "BLOCK ULID".to_string(),
        "MIN TIME".into(),
        "MAX TIME".into(),
        "DURATION".into(),
        "NUM SAMPLES".into(),
        "NUM CHUNKS".into(),
        "NUM SERIES".into(),
        "SIZE".into(),
    ]];
    for r in rows {
        let m = &r.meta;
        table.push([
            m.ulid.to_string(),
            m.min_time.to_string(),
            m.max_time.to_string(),
            format_go_duration(m.max_time - m.min_time),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.stats.num_series.to_string(),
            r.size.to_string(),
        ]);
    }
    // Go's tabwriter as promtool sets it up: cells at least 13 wide
    // including 2 spaces of padding.
    let mut widths = [0usize; 8];
    for row in &table {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &table {
        for (i, c) in row.iter().enumerate() {
            out.push_str(c);
            if i + 1 < row.len() {
                let w = (widths[i] + 2).max(13);
                out.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// What `tsdb analyze` reports for one block. Lists are sorted by count,
/// largest first (ties by name), and cut at the requested limit.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeReport {
    pub meta: BlockMeta,
    pub series: u64,
    pub label_names: usize,
    /// Distinct label pairs.
    pub postings: usize,
    /// Label pairs over all series.
    pub postings_entries: u64,
    /// Label pairs by the block-lengths of time their series did not cover.
    pub churn_label_pairs: Vec<(String, u64)>,
    pub churn_label_names: Vec<(String, u64)>,
    /// Label pairs by number of series.
    pub common_label_pairs: Vec<(String, u64)>,
    /// Label names by the summed length of their distinct values.
    pub label_value_lengths: Vec<(String, u64)>,
    /// Label names by number of distinct values.
    pub label_cardinality: Vec<(String, u64)>,
    /// Metric names by number of series.
    pub metric_cardinality: Vec<(String, u64)>,
}

fn top(m: HashMap<String, u64>, limit: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// Cardinality and churn of one block of `dir`: `block_id`, or the last
/// block (by min time) when `None`.
pub fn analyze(
    dir: &Path,
    block_id: Option<&str>,
    limit: usize,
) -> Result<AnalyzeReport, StorageError> {
    let blocks = open_blocks(dir)?;
    let block = match block_id {
        Some(id) => blocks
            .iter()
            .find(|b| b.meta().ulid.to_string().eq_ignore_ascii_case(id))
            .ok_or_else(|| StorageError::Io(format!("block {id} not found")))?,
        None => blocks
            .last()
            .ok_or_else(|| StorageError::Io(format!("no blocks found in {}", dir.display())))?,
    };
    let meta = block.meta();
    let ix = block.index();
    let span = (meta.max_time - meta.min_time).max(1) as u64;

    let mut pair_uncovered: HashMap<String, u64> = HashMap::new();
    let mut name_uncovered: HashMap<String, u64> = HashMap::new();
    let mut pair_count: HashMap<String, u64> = HashMap::new();
    let mut entries = 0u64;
    let mut series = 0u64;
    let mut lbuf = Vec::new();
    let mut chunks = Vec::new();
    for id in ix.all_postings()? {
        ix.series_into(id, Some(&mut lbuf), &mut chunks)?;
        series += 1;
        let covered = match (chunks.first(), chunks.last()) {
            (Some(a), Some(z)) => (z.max_time - a.min_time) as u64,
            _ => 0,
        };
        let uncovered = span.saturating_sub(covered);
        for l in &lbuf {
            let key = format!("{}={}", l.name, l.value);
            *name_uncovered.entry(l.name.clone()).or_default() += uncovered;
            *pair_uncovered.entry(key.clone()).or_default() += uncovered;
            *pair_count.entry(key).or_default() += 1;
            entries += 1;
        }
    }
    let postings = pair_uncovered.len();
    let per_span = |m: HashMap<String, u64>| -> HashMap<String, u64> {
        m.into_iter()
            .map(|(k, v)| (k, (v as f64 / span as f64) as u64))
            .collect()
    };

    let names = ix.label_names();
    let mut lengths = HashMap::new();
    let mut cardinality = HashMap::new();
    for n in &names {
        let vals = ix.label_values(n)?;
        lengths.insert(n.to_string(), vals.iter().map(|v| v.len() as u64).sum());
        cardinality.insert(n.to_string(), vals.len() as u64);
    }
    let mut metrics = HashMap::new();
    let mut offsets = Vec::new();
    ix.for_each_value(METRIC_NAME, "", |v, off| {
        offsets.push((v.to_string(), off));
        true
    })?;
    for (v, off) in offsets {
        metrics.insert(v, ix.read_postings(off)?.len() as u64);
    }

    Ok(AnalyzeReport {
        meta,
        series,
        label_names: names.len(),
        postings,
        postings_entries: entries,
        churn_label_pairs: top(per_span(pair_uncovered), limit),
        churn_label_names: top(per_span(name_uncovered), limit),
        common_label_pairs: top(pair_count, limit),
        label_value_lengths: top(lengths, limit),
        label_cardinality: top(cardinality, limit),
        metric_cardinality: top(metrics, limit),
    })
}

/// Formats like `promtool tsdb analyze` (without `--extended`).
impl fmt::Display for AnalyzeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Block ID: {}", self.meta.ulid)?;
        writeln!(
            f,
            "Duration: {}",
            format_go_duration(self.meta.max_time - self.meta.min_time)
        )?;
        writeln!(f, "Series: {}", self.series)?;
        writeln!(f, "Label names: {}", self.label_names)?;
        writeln!(f, "Postings (unique label pairs): {}", self.postings)?;
        writeln!(
            f,
            "Postings entries (total label pairs): {}",
            self.postings_entries
        )?;
        let sections = [
            (
                "Label pairs most involved in churning:",
                &self.churn_label_pairs,
            ),
            (
                "Label names most involved in churning:",
                &self.churn_label_names,
            ),
            ("Most common label pairs:", &self.common_label_pairs),
            (
                "Label names with highest cumulative label value length:",
                &self.label_value_lengths,
            ),
            ("Highest cardinality labels:", &self.label_cardinality),
            (
                "Highest cardinality metric names:",
                &self.metric_cardinality,
            ),
        ];
        for (title, list) in sections {
            writeln!(f, "\n{title}")?;
            for (k, v) in list.iter() {
                writeln!(f, "{v} {k}")?;
            }
        }
        Ok(())
    }
}

/// Calls `f` for every sample in `[mint, maxt]` of every series of `dir`
/// matching `matchers` (every named series when empty), series in label
/// order, samples in time order. Like promtool's, it reads the blocks and
/// the head (WAL and `chunks_head/`, replayed read-only), merging overlaps.
pub fn dump(
    dir: &Path,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
    mut f: impl FnMut(&Labels, Sample) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let db = crate::db::ReadOnlyDb::open(dir)?;
    let q = db.querier(mint, maxt)?;
    let every;
    let matchers = if matchers.is_empty() {
        every = [Matcher::new(vigil_model::MatchOp::Regex, METRIC_NAME, ".+")
            .map_err(|e| StorageError::Io(e.to_string()))?];
        &every[..]
    } else {
        matchers
    };
    for s in q.select(None, matchers)? {
        let mut it = s.iter();
        while let Some(x) = it.next()? {
            f(s.labels(), x)?;
        }
    }
    Ok(())
}

/// One line of `promtool tsdb dump`: `{labels} value timestamp`.
pub fn format_dump_line(labels: &Labels, s: Sample) -> String {
    // Go's `%g`, as promtool prints the value.
    format!(
        "{} {} {}",
        labels,
        vigil_model::gofmt::GoFloat(s.v, vigil_model::gofmt::FloatFormat::G),
        s.t
    )
}

/// Go's `time.Duration.String()` for a span of milliseconds.
pub fn format_go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:03}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lines_print_values_like_go() {
        for (v, s) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (12345678.0, "1.2345678e+07"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-07"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
        ] {
            let line = format_dump_line(&Labels::empty(), Sample { t: 7, v });
            assert_eq!(line, format!("{{}} {s} 7"), "{v:?}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(format_go_duration(7_200_000), "2h0m0s");
        assert_eq!(format_go_duration(5_970_001), "1h39m30.001s");
        assert_eq!(format_go_duration(61_500), "1m1.5s");
        assert_eq!(format_go_duration(1_000), "1s");
        assert_eq!(format_go_duration(999), "999ms");
        assert_eq!(format_go_duration(0), "0s");
    }
}
