//! WAL checkpoints: `checkpoint.NNNNNNNN/` holds, in WAL segment format,
//! the records of segments up to NNNNNNNN (and the previous checkpoint)
//! that are still needed: series still in the head, samples, tombstones
//! and exemplars not older than the truncation time. Written to a `.tmp`
//! directory and renamed, so a crash never leaves a half checkpoint that
//! replay would trust.

use super::record::{self, RecordType, RefExemplar, RefSample, Stone};
use super::{
    list_segments, sync_dir, RecordReader, SegmentRef, Wal, WalError, WalOptions, WalScratch,
};
use std::fs;
use std::path::{Path, PathBuf};

const PREFIX: &str = "checkpoint.";

/// What a checkpoint kept and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    pub series_kept: u64,
    pub series_dropped: u64,
    pub samples_kept: u64,
    pub samples_dropped: u64,
    pub tombstones_kept: u64,
    pub tombstones_dropped: u64,
    pub exemplars_kept: u64,
    pub exemplars_dropped: u64,
    /// Records of types a checkpoint does not carry (metadata, histograms).
    pub other_dropped: u64,
}

/// Name of checkpoint `i`.
pub fn checkpoint_name(i: u32) -> String {
    format!("{PREFIX}{i:08}")
}

/// All finished checkpoints in `wal_dir`, sorted by index.
pub fn list_checkpoints(wal_dir: &Path) -> Result<Vec<(u32, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(wal_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io("listing", wal_dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| WalError::io("listing", wal_dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(num) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(i) = num.parse::<u32>() {
            out.push((i, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest checkpoint, if any.
pub fn last_checkpoint(wal_dir: &Path) -> Result<Option<(u32, PathBuf)>, WalError> {
    Ok(list_checkpoints(wal_dir)?.pop())
}

/// Removes checkpoints with an index below `below`, and leftover `.tmp`
/// directories of interrupted checkpoints.
pub fn delete_checkpoints(wal_dir: &Path, below: u32) -> Result<(), WalError> {
    for (i, path) in list_checkpoints(wal_dir)? {
        if i < below {
            fs::remove_dir_all(&path).map_err(|e| WalError::io("removing", &path, e))?;
        }
    }
    if let Ok(rd) = fs::read_dir(wal_dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            if let Some(n) = name.to_str() {
                if n.starts_with(PREFIX) && n.ends_with(".tmp") {
                    let p = e.path();
                    fs::remove_dir_all(&p).map_err(|e| WalError::io("removing", &p, e))?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `checkpoint.<to>` from the last checkpoint and WAL segments
/// `from..=to`, keeping series for which `keep(ref)` holds and data at or
/// after `mint`. Segments and older checkpoints are not deleted here.
pub fn checkpoint(
    wal_dir: &Path,
    from: u32,
    to: u32,
    keep: impl Fn(u64) -> bool,
    mint: i64,
    compress: bool,
) -> Result<CheckpointStats, WalError> {
    let res = write_checkpoint(wal_dir, from, to, keep, mint, compress);
    if res.is_err() {
        // Never trusted (not a checkpoint name), but it holds space, which
        // matters most when the write failed for lack of it.
        let tmp_dir = wal_dir.join(format!("{}.tmp", checkpoint_name(to)));
        if let Err(e) = fs::remove_dir_all(&tmp_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %tmp_dir.display(), "removing unfinished checkpoint: {e}");
            }
        }
    }
    res
}

fn write_checkpoint(
    wal_dir: &Path,
    from: u32,
    to: u32,
    keep: impl Fn(u64) -> bool,
    mint: i64,
    compress: bool,
) -> Result<CheckpointStats, WalError> {
    let mut sources: Vec<(PathBuf, Vec<SegmentRef>)> = Vec::new();
    let mut from = from;
    if let Some((idx, dir)) = last_checkpoint(wal_dir)? {
        from = from.max(idx + 1);
        let segs = list_segments(&dir)?;
        sources.push((dir, segs));
    }
    let segs: Vec<SegmentRef> = list_segments(wal_dir)?
        .into_iter()
        .filter(|s| s.index >= from && s.index <= to)
        .collect();
    sources.push((wal_dir.to_path_buf(), segs));

    let final_dir = wal_dir.join(checkpoint_name(to));
    let tmp_dir = wal_dir.join(format!("{}.tmp", checkpoint_name(to)));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| WalError::io("removing", &tmp_dir, e))?;
    }
    let mut stats = CheckpointStats::default();
    {
        let out = Wal::open(
            &tmp_dir,
            WalOptions {
                compress,
                ..WalOptions::default()
            },
        )?;
        let mut scratch = WalScratch::default();
        let mut enc = Vec::new();
        let mut samples: Vec<RefSample> = Vec::new();
        let mut stones: Vec<Stone> = Vec::new();
        let mut exemplars: Vec<RefExemplar> = Vec::new();
        for (dir, segs) in sources {
            let mut r = RecordReader::new(&dir, segs)?;
            while let Some((segment, rec)) = r.next_with_segment()? {
                let bad = |e: record::RecordError| WalError::Corruption {
                    dir: dir.clone(),
                    segment,
                    offset: 0,
                    reason: format!("decoding record: {e}"),
                };
                match RecordType::of(rec) {
                    Some(RecordType::Series) => {
                        record::begin_series(&mut enc);
                        let mut pairs = Vec::new();
                        let mut n = 0;
                        let res = record::decode_series_with(rec, &mut pairs, |sref, p| {
                            if keep(sref) {
                                record::put_series_entry(
                                    &mut enc,
                                    sref,
                                    p.len(),
                                    p.iter().copied(),
                                );
                                n += 1;
                                stats.series_kept += 1;
                            } else {
                                stats.series_dropped += 1;
                            }
                        });
                        if let Err(e) = res {
                            return Err(bad(e));
                        }
                        if n > 0 {
                            out.log(&[&enc], &mut scratch)?;
                        }
                    }
                    Some(RecordType::Samples) => {
                        samples.clear();
                        record::decode_samples(rec, &mut samples).map_err(bad)?;
                        let before = samples.len();
                        samples.retain(|s| s.t >= mint && keep(s.series_ref));
                        stats.samples_kept += samples.len() as u64;
                        stats.samples_dropped += (before - samples.len()) as u64;
                        if !samples.is_empty() {
                            record::encode_samples(&samples, &mut enc);
                            out.log(&[&enc], &mut scratch)?;
                        }
                    }
                    Some(RecordType::Tombstones) => {
                        stones.clear();
                        record::decode_tombstones(rec, &mut stones).map_err(bad)?;
                        let before = stones.len();
                        stones.retain(|s| s.maxt >= mint && keep(s.series_ref));
                        stats.tombstones_kept += stones.len() as u64;
                        stats.tombstones_dropped += (before - stones.len()) as u64;
                        if !stones.is_empty() {
                            record::encode_tombstones(&stones, &mut enc);
                            out.log(&[&enc], &mut scratch)?;
                        }
                    }
                    Some(RecordType::Exemplars) => {
                        exemplars.clear();
                        record::decode_exemplars(rec, &mut exemplars).map_err(bad)?;
                        let before = exemplars.len();
                        exemplars.retain(|e| e.t >= mint && keep(e.series_ref));
                        stats.exemplars_kept += exemplars.len() as u64;
                        stats.exemplars_dropped += (before - exemplars.len()) as u64;
                        if !exemplars.is_empty() {
                            record::encode_exemplars(&exemplars, &mut enc);
                            out.log(&[&enc], &mut scratch)?;
                        }
                    }
                    _ => stats.other_dropped += 1,
                }
            }
        }
        out.close()?;
    }
    sync_dir(&tmp_dir)?;
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| WalError::io("removing", &final_dir, e))?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| WalError::io("renaming", &tmp_dir, e))?;
    sync_dir(wal_dir)?;
    Ok(stats)
}
