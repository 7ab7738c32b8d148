//! `vigil tsdb ...`: promtool-compatible TSDB tools (`create-blocks-from
//! openmetrics`, `list`, `analyze`, `dump`, `verify`). They only read the
//! data directory (except backfill, which writes new blocks into OUTDIR),
//! so they are safe to run next to a server.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vigil_model::{Label, Labels};
use vigil_scrape::expfmt::{Entry, Format, StreamParser};
use vigil_tsdb::block::{compatible_block_duration, BackfillSeriesId, BlockWriter, WrittenBlock};
use vigil_tsdb::tools;

#[derive(Subcommand, Debug)]
pub enum TsdbCommand {
    /// Create blocks from data in another format (like promtool).
    #[command(name = "create-blocks-from", subcommand)]
    CreateBlocksFrom(CreateBlocksFrom),
    /// List the blocks of a data directory.
    List {
        /// Print sizes and times in human-readable form.
        #[arg(short = 'r', long = "human-readable")]
        human_readable: bool,
        #[arg(default_value = "data/")]
        dir: PathBuf,
    },
    /// Analyze churn, label pair cardinality and compaction efficiency of a block.
    Analyze {
        #[arg(default_value = "data/")]
        dir: PathBuf,
        /// Block to analyze (default: the last block).
        block_id: Option<String>,
        /// How many items to show in each list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Dump samples from a data directory.
    Dump {
        #[arg(default_value = "data/")]
        dir: PathBuf,
        /// Minimum timestamp to dump (ms).
        #[arg(long = "min-time", default_value_t = i64::MIN, allow_hyphen_values = true)]
        min_time: i64,
        /// Maximum timestamp to dump (ms).
        #[arg(long = "max-time", default_value_t = i64::MAX, allow_hyphen_values = true)]
        max_time: i64,
        /// Series selector (repeatable).
        #[arg(long = "match")]
        matches: Vec<String>,
    },
    /// Check every block, the head chunks and the WAL for corruption.
    Verify {
        #[arg(default_value = "data/")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreateBlocksFrom {
    /// Import samples from an OpenMetrics input and produce TSDB blocks.
    Openmetrics(OpenMetricsArgs),
}

#[derive(Args, Debug)]
pub struct OpenMetricsArgs {
    /// OpenMetrics file to read (timestamps in seconds, ending in `# EOF`).
    pub input: PathBuf,
    /// Output directory for the blocks.
    #[arg(default_value = "data/")]
    pub outdir: PathBuf,
    /// Maximum duration of a created block (as promtool: 2h, 6h, 18h, ...).
    #[arg(long = "max-block-duration", default_value = "2h")]
    pub max_block_duration: String,
    /// Print sizes and times in human-readable form.
    #[arg(short = 'r', long = "human-readable")]
    pub human_readable: bool,
    /// Do not print the created blocks.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Runs a tsdb subcommand; returns the exit code.
pub fn run(cmd: TsdbCommand) -> i32 {
    let result = match cmd {
        TsdbCommand::CreateBlocksFrom(CreateBlocksFrom::Openmetrics(a)) => backfill(&a),
        TsdbCommand::List { dir, .. } => tools::list(&dir)
            .map(|rows| print!("{}", tools::format_list(&rows)))
            .with_context(|| format!("list blocks in {}", dir.display())),
        TsdbCommand::Analyze {
            dir,
            block_id,
            limit,
        } => tools::analyze(&dir, block_id.as_deref(), limit)
            .map(|r| print!("{r}"))
            .with_context(|| format!("analyze {}", dir.display())),
        TsdbCommand::Dump {
            dir,
            min_time,
            max_time,
            matches,
        } => dump(&dir, min_time, max_time, &matches),
        TsdbCommand::Verify { dir } => match tools::verify(&dir) {
            Ok(report) => {
                print!("{report}");
                if report.is_ok() {
                    return 0;
                }
                eprintln!("corrupt blocks: {}", report.corrupt_blocks().join(", "));
                return 1;
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("verify {}", dir.display()))),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn dump(dir: &std::path::Path, mint: i64, maxt: i64, matches: &[String]) -> anyhow::Result<()> {
    let mut matchers = Vec::new();
    for m in matches {
        let ms = vigil_promql::parser::parse_metric_selector(m)
            .map_err(|e| anyhow::anyhow!("invalid --match {m:?}: {e}"))?;
        matchers.extend(ms);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    tools::dump(dir, mint, maxt, &matchers, |labels, s| {
        writeln!(out, "{}", tools::format_dump_line(labels, s))
            .map_err(|e| vigil_model::storage::StorageError::Io(e.to_string()))
    })
    .with_context(|| format!("dump {}", dir.display()))?;
    out.flush()?;
    Ok(())
}

/// Reader wrapper counting bytes for the progress display.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Progress on stderr, at most a few times a second, only on a terminal.
struct Progress {
    total: u64,
    last: Instant,
    enabled: bool,
}

impl Progress {
    fn update(&mut self, read: u64, samples: u64, force: bool) {
        if !self.enabled || (!force && self.last.elapsed() < Duration::from_millis(250)) {
            return;
        }
        self.last = Instant::now();
        let pct = if self.total > 0 {
            read as f64 * 100.0 / self.total as f64
        } else {
            100.0
        };
        let width = 30usize;
        let filled = ((pct / 100.0) * width as f64).round() as usize;
        eprint!(
            "\r[{}{}] {pct:5.1}%  {:.1} MiB  {} samples",
            "#".repeat(filled.min(width)),
            " ".repeat(width - filled.min(width)),
            read as f64 / (1 << 20) as f64,
            samples
        );
    }
}

/// Series text (as written in the input) to backfill series.
///
/// Exports repeat the same series in the same order at every timestamp, so
/// the series after the last one found is tried first: one compare against
/// bytes laid out in input order, instead of a hash probe and a compare
/// against a key somewhere in memory (that was half the backfill's CPU).
#[derive(Default)]
struct SeriesIds {
    by_text: HashMap<Box<str>, usize>,
    /// Series texts, concatenated in order of first appearance.
    text: String,
    /// Per series: end of its text in `text` (the start is the previous end).
    ends: Vec<usize>,
    series: Vec<(BackfillSeriesId, Labels)>,
    /// Index of the series expected next.
    next: usize,
}

impl SeriesIds {
    #[inline]
    fn find(&mut self, series: &str) -> Option<usize> {
        let k = self.next;
        if let Some(&end) = self.ends.get(k) {
            let start = if k == 0 { 0 } else { self.ends[k - 1] };
            if &self.text[start..end] == series {
                self.next = k + 1;
                return Some(k);
            }
        }
        let k = *self.by_text.get(series)?;
        self.next = k + 1;
        Some(k)
    }

    fn insert(&mut self, series: &str, id: BackfillSeriesId, labels: Labels) -> usize {
        let k = self.series.len();
        self.text.push_str(series);
        self.ends.push(self.text.len());
        self.series.push((id, labels));
        self.by_text.insert(series.into(), k);
        self.next = k + 1;
        k
    }

    #[inline]
    fn get(&self, k: usize) -> (BackfillSeriesId, &Labels) {
        let (id, labels) = &self.series[k];
        (*id, labels)
    }
}

/// `create-blocks-from openmetrics`: streams the file once. Blocks are cut
/// on aligned windows of the block duration and written as soon as the
/// input has moved a full window past them, so a time-ordered file keeps
/// only about two windows in memory. Samples that arrive for a window
/// already written go to a second writer flushed at the end: its blocks
/// overlap and are merged by vertical compaction, as Prometheus does.
fn backfill(a: &OpenMetricsArgs) -> anyhow::Result<()> {
    let max_block = vigil_config::Duration::parse(&a.max_block_duration)
        .with_context(|| format!("invalid --max-block-duration={}", a.max_block_duration))?;
    let block_duration = compatible_block_duration(max_block.as_millis() as i64);
    let file =
        std::fs::File::open(&a.input).with_context(|| format!("open {}", a.input.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = Counting {
        inner: file,
        read: 0,
    };
    let mut parser = StreamParser::new(reader, Format::OpenMetrics);
    let mut writer = BlockWriter::new(&a.outdir, block_duration);
    let mut late: Option<BlockWriter> = None;
    let mut ids = SeriesIds::default();
    let mut max_t = i64::MIN;
    let mut flushed_to = i64::MIN;
    let mut progress = Progress {
        total,
        last: Instant::now(),
        enabled: std::io::stderr().is_terminal() && !a.quiet,
    };
    let mut scratch = String::new();
    let started = Instant::now();
    let mut samples: u64 = 0;
    loop {
        // `entry` borrows the parser: finish with it before asking the
        // parser anything else.
        let t = {
            let entry = parser
                .next_entry()
                .with_context(|| format!("read {}", a.input.display()))?;
            let Some(entry) = entry else { break };
            let Entry::Series(line) = entry else { continue };
            match line.timestamp {
                None => None,
                Some(t) => {
                    let k = match ids.find(line.series) {
                        Some(k) => k,
                        None => {
                            let mut ls = vec![Label::new(vigil_model::METRIC_NAME, line.name)];
                            for (name, value) in line.labels() {
                                ls.push(Label::new(name, value.decode_into(&mut scratch)));
                            }
                            let labels = Labels::new(ls);
                            let id = writer.series_id(&labels)?;
                            ids.insert(line.series, id, labels)
                        }
                    };
                    let (id, labels) = ids.get(k);
                    match writer.add(id, t, line.value) {
                        Ok(()) => {}
                        Err(vigil_model::storage::StorageError::OutOfBounds) => {
                            let w = late
                                .get_or_insert_with(|| BlockWriter::new(&a.outdir, block_duration));
                            w.append(labels, t, line.value)?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                    Some(t)
                }
            }
        };
        let Some(t) = t else {
            anyhow::bail!(
                "{}: line {}: sample without a timestamp (backfill needs one on every sample)",
                a.input.display(),
                parser.line()
            );
        };
        samples += 1;
        if t > max_t {
            max_t = t;
            // Keep the current and the previous window open.
            let limit = (max_t.div_euclid(block_duration) - 1) * block_duration;
            if limit > flushed_to {
                writer.flush_before(limit)?;
                flushed_to = limit;
            }
        }
        if samples % 65_536 == 0 {
            progress.update(parser.bytes_read(), samples, false);
        }
    }
    progress.update(total, samples, true);
    if progress.enabled {
        eprintln!();
    }
    let mut blocks: Vec<WrittenBlock> = writer.flush()?;
    if let Some(w) = late {
        blocks.extend(w.flush()?);
    }
    blocks.sort_by_key(|b| b.meta.min_time);
    tracing::info!(samples, elapsed = ?started.elapsed(), blocks = blocks.len(), "backfill done");
    if !a.quiet {
        let rows: Vec<tools::BlockListing> = blocks.iter().map(Into::into).collect();
        print!("{}", tools::format_list(&rows));
    }
    Ok(())
}
