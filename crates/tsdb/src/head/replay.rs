//! Rebuilding the head at startup: memory-mapped chunks from
//! `chunks_head/`, then the last WAL checkpoint, then the WAL segments after
//! it, as Prometheus does. Corrupt chunk files and a corrupt WAL tail are
//! repaired (logged with what was dropped); replay never fails on bad data.

use super::index::FastMap;
use super::series::{Applied, ApplyCtx, ChunkMeta};
use super::{lock, shard_of, write, HeadError, HeadInner};
use crate::chunkenc::Encoding;
use crate::head_chunks::HeadChunksError;
use crate::wal::record::{self, RecordType, RefSample, Stone};
use crate::wal::{self, RecordReader, SegmentRef, WalError};
use std::path::Path;
use std::sync::atomic::Ordering;
use vigil_model::{Label, Labels};

#[derive(Default)]
struct ReplayState {
    /// Refs of duplicate series records, mapped to the series kept.
    multi_ref: FastMap<u64, u64>,
    mmapped: FastMap<u64, Vec<ChunkMeta>>,
    samples: Vec<RefSample>,
    stones: Vec<Stone>,
    head_max: i64,
    lo: i64,
    hi: i64,
    olo: i64,
    ohi: i64,
    series: u64,
    samples_applied: u64,
    unknown_refs: u64,
    skipped_records: u64,
    chunks: u64,
}

pub(crate) fn replay(h: &mut HeadInner) -> Result<(), HeadError> {
    let mut st = ReplayState {
        head_max: i64::MIN,
        lo: i64::MAX,
        hi: i64::MIN,
        olo: i64::MAX,
        ohi: i64::MIN,
        ..Default::default()
    };
    st.mmapped = load_mmapped(h)?;
    if !h.opts.wal_enabled {
        return Ok(());
    }
    let wal_dir = h.dir.join("wal");
    let mut from = 0;
    if let Some((idx, cp)) = wal::last_checkpoint(&wal_dir)? {
        let segs = wal::list_segments(&cp)?;
        match replay_segments(h, &cp, segs, &mut st) {
            Ok(()) => {}
            Err(HeadError::Wal(e @ WalError::Corruption { .. })) => {
                // A checkpoint is written whole and renamed: this is damage
                // on disk. Keep what was read, continue with the segments.
                h.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "corrupt WAL checkpoint {}, replaying what was readable: {e}",
                    cp.display()
                );
            }
            Err(e) => return Err(e),
        }
        from = idx + 1;
    }
    let mut segs: Vec<SegmentRef> = wal::list_segments(&wal_dir)?
        .into_iter()
        .filter(|s| s.index >= from)
        .collect();
    // Segments after a gap cannot be trusted to follow what precedes it.
    if let Some(pos) = segs.windows(2).position(|w| w[1].index != w[0].index + 1) {
        let last_good = segs[pos].index;
        let dropped: Vec<u32> = segs[pos + 1..].iter().map(|s| s.index).collect();
        tracing::warn!(
            ?dropped,
            "WAL segments are not sequential after {last_good}; removing the later ones"
        );
        h.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
        for s in &segs[pos + 1..] {
            std::fs::remove_file(&s.path).map_err(|e| WalError::io("removing", &s.path, e))?;
        }
        segs.truncate(pos + 1);
    }
    match replay_segments(h, &wal_dir, segs, &mut st) {
        Ok(()) => {}
        Err(HeadError::Wal(WalError::Corruption {
            segment,
            offset,
            reason,
            ..
        })) => {
            h.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
            let rs = wal::repair(&wal_dir, segment, offset)?;
            tracing::warn!(
                segment,
                offset,
                bytes_dropped = rs.bytes_dropped,
                segments_removed = rs.segments_removed,
                records_kept = st.samples_applied,
                "WAL corruption ({reason}); truncated at the last good record"
            );
        }
        Err(e) => return Err(e),
    }
    if !st.mmapped.is_empty() {
        tracing::info!(
            series = st.mmapped.len(),
            "head chunks of series not in the WAL are ignored"
        );
    }
    if st.unknown_refs > 0 {
        tracing::warn!(
            samples = st.unknown_refs,
            "WAL samples for unknown series refs were dropped"
        );
    }
    if st.skipped_records > 0 {
        tracing::warn!(
            records = st.skipped_records,
            "WAL records of unsupported types (native histograms, metadata, exemplars) were skipped"
        );
    }
    h.update_time_range(st.lo, st.hi);
    h.update_ooo_range(st.olo, st.ohi);
    h.stats.chunks.fetch_add(st.chunks, Ordering::Relaxed);
    tracing::info!(
        series = st.series,
        samples = st.samples_applied,
        "head replayed"
    );
    Ok(())
}

/// Reads `chunks_head/`, repairing corrupt files, into series ref ->
/// in-order chunks.
fn load_mmapped(h: &HeadInner) -> Result<FastMap<u64, Vec<ChunkMeta>>, HeadError> {
    let mut out: FastMap<u64, Vec<ChunkMeta>> = FastMap::default();
    // Every repair removes data, so this ends; the bound is a safety net.
    for _ in 0..h.chunks.file_seqs().len() + 2 {
        out.clear();
        let res = h.chunks.iterate_all(|m| {
            if !m.out_of_order && m.encoding == Encoding::Xor.as_u8() {
                out.entry(m.series_ref).or_default().push(ChunkMeta {
                    r: m.chunk_ref,
                    mint: m.mint,
                    maxt: m.maxt,
                });
            }
        });
        match res {
            Ok(()) => return Ok(out),
            Err(e @ HeadChunksError::Corruption { .. }) => {
                h.stats
                    .mmap_chunk_corruptions
                    .fetch_add(1, Ordering::Relaxed);
                let dropped = h.chunks.repair(&e)?;
                tracing::warn!(
                    bytes_dropped = dropped,
                    "head chunk files repaired, data is rebuilt from the WAL: {e}"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::error!("head chunk files could not be repaired; ignoring them");
    out.clear();
    Ok(out)
}

fn replay_segments(
    h: &HeadInner,
    dir: &Path,
    segs: Vec<SegmentRef>,
    st: &mut ReplayState,
) -> Result<(), HeadError> {
    let mut r = RecordReader::new(dir, segs)?;
    while let Some(rec) = r.next()? {
        apply_record(h, rec, st);
    }
    Ok(())
}

/// Label pairs as a valid label set: sorted, unique names, no empty values.
fn normalized(pairs: &[(&str, &str)]) -> Option<Labels> {
    let ok = pairs.windows(2).all(|w| w[0].0 < w[1].0) && pairs.iter().all(|p| !p.1.is_empty());
    if ok {
        None
    } else {
        Some(Labels::new(
            pairs.iter().map(|&(n, v)| Label::new(n, v)).collect(),
        ))
    }
}

fn apply_record(h: &HeadInner, rec: &[u8], st: &mut ReplayState) {
    match RecordType::of(rec) {
        Some(RecordType::Series) => {
            let mut pairs = Vec::new();
            let res = record::decode_series_with(rec, &mut pairs, |r, p| add_series(h, r, p, st));
            if let Err(e) = res {
                tracing::warn!("skipping undecodable WAL series record: {e}");
            }
        }
        Some(RecordType::Samples) => {
            let mut samples = std::mem::take(&mut st.samples);
            samples.clear();
            match record::decode_samples(rec, &mut samples) {
                Ok(()) => apply_samples(h, &samples, st),
                Err(e) => tracing::warn!("skipping undecodable WAL samples record: {e}"),
            }
            st.samples = samples;
        }
        Some(RecordType::Tombstones) => {
            st.stones.clear();
            match record::decode_tombstones(rec, &mut st.stones) {
                Ok(()) => {
                    let mut ts = write(&h.tombstones);
                    for s in &st.stones {
                        let r = st
                            .multi_ref
                            .get(&s.series_ref)
                            .copied()
                            .unwrap_or(s.series_ref);
                        ts.entry(r).or_default().push((s.mint, s.maxt));
                    }
                }
                Err(e) => tracing::warn!("skipping undecodable WAL tombstones record: {e}"),
            }
        }
        _ => st.skipped_records += 1,
    }
}

fn add_series(h: &HeadInner, r: u64, pairs: &[(&str, &str)], st: &mut ReplayState) {
    let owned = normalized(pairs);
    let owned_pairs: Vec<(&str, &str)>;
    let pairs = match &owned {
        Some(l) => {
            owned_pairs = l
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            &owned_pairs[..]
        }
        None => pairs,
    };
    if pairs.is_empty() {
        return;
    }
    if lock(&h.shards[shard_of(r)]).series.contains_key(&r) {
        // The same series again (checkpoint and segment both hold it).
        return;
    }
    let kept = h.create_replayed(r, pairs);
    if kept != r {
        st.multi_ref.insert(r, kept);
        // Its chunks belong to the same series.
        if let Some(extra) = st.mmapped.remove(&r) {
            st.mmapped.entry(kept).or_default().extend(extra);
        }
        return;
    }
    st.series += 1;
    if let Some(mut chunks) = st.mmapped.remove(&r) {
        let min_valid = h.min_valid_time.load(Ordering::Relaxed);
        chunks.retain(|c| c.maxt >= min_valid);
        chunks.sort_by_key(|c| c.mint);
        if let (Some(f), Some(l)) = (chunks.first(), chunks.last()) {
            st.lo = st.lo.min(f.mint);
            st.hi = st.hi.max(l.maxt);
            st.head_max = st.head_max.max(l.maxt);
        }
        st.chunks += chunks.len() as u64;
        if let Some(s) = lock(&h.shards[shard_of(r)]).series.get_mut(&r) {
            s.set_mmapped(chunks);
        }
    }
}

fn apply_samples(h: &HeadInner, samples: &[RefSample], st: &mut ReplayState) {
    let min_valid = h.min_valid_time.load(Ordering::Relaxed);
    let mut i = 0;
    while i < samples.len() {
        let first = st
            .multi_ref
            .get(&samples[i].series_ref)
            .copied()
            .unwrap_or(samples[i].series_ref);
        let si = shard_of(first);
        let mut shard = lock(&h.shards[si]);
        while i < samples.len() {
            let s = samples[i];
            let r = st
                .multi_ref
                .get(&s.series_ref)
                .copied()
                .unwrap_or(s.series_ref);
            if shard_of(r) != si {
                break;
            }
            i += 1;
            let Some(series) = shard.series.get_mut(&r) else {
                st.unknown_refs += 1;
                continue;
            };
            if s.t < min_valid || s.t <= series.mmapped_max_t() {
                continue;
            }
            let ctx = ApplyCtx {
                series_ref: r,
                chunk_range: h.opts.chunk_range,
                ooo_window: h.opts.ooo_time_window,
                head_max_t: st.head_max,
                mapper: &h.chunks,
            };
            match series.apply(s.t, s.v, &ctx) {
                Applied::InOrder { chunk_cut } => {
                    st.samples_applied += 1;
                    st.chunks += chunk_cut as u64;
                    st.lo = st.lo.min(s.t);
                    st.hi = st.hi.max(s.t);
                    st.head_max = st.head_max.max(s.t);
                }
                Applied::OutOfOrder { chunk_cut } => {
                    st.samples_applied += 1;
                    st.chunks += chunk_cut as u64;
                    st.olo = st.olo.min(s.t);
                    st.ohi = st.ohi.max(s.t);
                }
                _ => {}
            }
        }
    }
}
