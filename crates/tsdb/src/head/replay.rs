//! Rebuilding the head at startup: memory-mapped chunks from
//! `chunks_head/`, then the last WAL checkpoint, then the WAL segments after
//! it, as Prometheus does. Corrupt chunk files and a corrupt WAL tail are
//! repaired (logged with what was dropped); replay never fails on bad data.
//! A read-only head (its chunk mapper opened read-only) repairs nothing:
//! it keeps what precedes a fault, and a torn WAL tail is just the end of
//! what a running server has written so far.

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

/// Per series ref, the newest timestamp replay must skip (samples already
/// in an on-disk chunk or older than the head's lower bound); `i64::MAX`
/// for unknown refs. Paged so that sparse refs cost little and the common
/// case (runs of consecutive refs) is an array access, not a map probe.
#[derive(Default)]
struct SkipIndex {
    pages: FastMap<u64, Box<[i64; PAGE]>>,
}

const PAGE: usize = 1024;

impl SkipIndex {
    fn set(&mut self, r: u64, skip: i64) {
        let page = self
            .pages
            .entry(r / PAGE as u64)
            .or_insert_with(|| Box::new([i64::MAX; PAGE]));
        page[(r % PAGE as u64) as usize] = skip;
    }

    #[inline]
    fn get(&self, r: u64) -> i64 {
        self.pages
            .get(&(r / PAGE as u64))
            .map_or(i64::MAX, |p| p[(r % PAGE as u64) as usize])
    }
}

#[derive(Default)]
struct ReplayState {
    skip: SkipIndex,
    /// Refs of duplicate series records, mapped to the series kept.
    multi_ref: FastMap<u64, u64>,
    mmapped: FastMap<u64, Vec<ChunkMeta>>,
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
    let ro = h.chunks.is_read_only();
    st.mmapped = if ro {
        load_mmapped_read_only(h)
    } else {
        load_mmapped(h)?
    };
    if !h.opts.wal_enabled {
        return Ok(());
    }
    let wal_dir = h.dir.join("wal");
    h.opts.replay_status.start(&wal_dir);
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
        if !ro {
            for s in &segs[pos + 1..] {
                std::fs::remove_file(&s.path).map_err(|e| WalError::io("removing", &s.path, e))?;
            }
        }
        segs.truncate(pos + 1);
    }
    let last_seg = segs.last().map(|s| s.index);
    match replay_segments(h, &wal_dir, segs, &mut st) {
        Ok(()) => {}
        Err(HeadError::Wal(WalError::Corruption {
            segment,
            offset,
            reason,
            ..
        })) if ro => {
            // A server may be writing this very segment.
            if Some(segment) == last_seg {
                tracing::debug!(
                    segment,
                    offset,
                    "WAL read up to a torn or partial record ({reason}); taking it as the end"
                );
            } else {
                h.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    segment,
                    offset,
                    "WAL corruption ({reason}); the read-only view ends there"
                );
            }
        }
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
    h.opts.replay_status.finish();
    replay_wbl(h, &mut st)?;
    h.limit_log.flush_replay(h.opts.max_series);
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
    h.chunks.freeze();
    tracing::info!(
        series = st.series,
        samples = st.samples_applied,
        "head replayed"
    );
    Ok(())
}

/// Replays `wbl/`, the write-behind log where Prometheus (with an
/// out-of-order window) keeps out-of-order samples. Vigil logs those in the
/// WAL, so it only reads a WBL it inherits; its samples are taken as
/// accepted out-of-order samples. The WBL is kept until a truncation passes
/// its newest sample (see `truncate`).
fn replay_wbl(h: &HeadInner, st: &mut ReplayState) -> Result<(), HeadError> {
    let dir = h.dir.join("wbl");
    let segs = wal::list_segments(&dir)?;
    if segs.is_empty() {
        return Ok(());
    }
    let min_valid = h.min_valid_time.load(Ordering::Relaxed);
    let mut r = match RecordReader::new(&dir, segs) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("ignoring WBL: {e}");
            return Ok(());
        }
    };
    let mut samples = Vec::new();
    let mut n = 0u64;
    loop {
        let rec = match r.next() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                // The WBL holds data also written by a WAL-less OOO path we
                // do not continue; keep what was read, never repair it.
                h.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("corrupt WBL, replayed what was readable: {e}");
                break;
            }
        };
        if RecordType::of(rec) != Some(RecordType::Samples) {
            continue;
        }
        samples.clear();
        if record::decode_samples(rec, &mut samples).is_err() {
            continue;
        }
        for s in &samples {
            let r = st
                .multi_ref
                .get(&s.series_ref)
                .copied()
                .unwrap_or(s.series_ref);
            if s.t < min_valid {
                continue;
            }
            let mut shard = lock(&h.shards[shard_of(r)]);
            let Some(series) = shard.series.get_mut(&r) else {
                st.unknown_refs += 1;
                continue;
            };
            let ctx = ApplyCtx {
                series_ref: r,
                chunk_range: h.opts.chunk_range,
                // Prometheus accepted these: take them whatever our window.
                ooo_window: i64::MAX,
                head_max_t: i64::MIN,
                mapper: &h.chunks,
            };
            match series.apply(s.t, s.v, &ctx) {
                Applied::OutOfOrder { chunk_cut } => {
                    n += 1;
                    st.chunks += chunk_cut as u64;
                    st.olo = st.olo.min(s.t);
                    st.ohi = st.ohi.max(s.t);
                }
                Applied::InOrder { chunk_cut } => {
                    n += 1;
                    st.chunks += chunk_cut as u64;
                    st.lo = st.lo.min(s.t);
                    st.hi = st.hi.max(s.t);
                }
                _ => {}
            }
            h.wbl_max_time.fetch_max(s.t, Ordering::Relaxed);
        }
    }
    tracing::info!(samples = n, "replayed out-of-order samples from the WBL");
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

/// `load_mmapped` for a read-only head: the chunks before the first fault
/// are kept, nothing is repaired (a torn chunk at the end of the last file
/// is one a server is still writing).
fn load_mmapped_read_only(h: &HeadInner) -> FastMap<u64, Vec<ChunkMeta>> {
    let mut out: FastMap<u64, Vec<ChunkMeta>> = FastMap::default();
    let res = h.chunks.iterate_all(|m| {
        if !m.out_of_order && m.encoding == Encoding::Xor.as_u8() {
            out.entry(m.series_ref).or_default().push(ChunkMeta {
                r: m.chunk_ref,
                mint: m.mint,
                maxt: m.maxt,
            });
        }
    });
    if let Err(e) = res {
        tracing::debug!("head chunk files read up to a fault, the WAL supplies the rest: {e}");
    }
    out
}

/// Samples handed from the reader thread to the applying one at a time.
const SAMPLE_BATCH: usize = 64 * 1024;

/// A record decoded by the reader thread, in log order.
enum Msg {
    Series(Vec<u8>),
    Samples(Vec<RefSample>),
    Stones(Vec<Stone>),
    Other,
}

/// Samples to apply, for one worker: (ref, t, v), and the head's max time
/// when they were dispatched (for out-of-order decisions).
type Work = (Vec<(u64, i64, f64)>, i64);

/// What applying samples did, per worker; merged at the end.
#[derive(Clone, Copy)]
struct ApplyStats {
    samples: u64,
    chunks: u64,
    unknown: u64,
    lo: i64,
    hi: i64,
    olo: i64,
    ohi: i64,
}

impl Default for ApplyStats {
    fn default() -> Self {
        ApplyStats {
            samples: 0,
            chunks: 0,
            unknown: 0,
            lo: i64::MAX,
            hi: i64::MIN,
            olo: i64::MAX,
            ohi: i64::MIN,
        }
    }
}

impl ApplyStats {
    fn merge_into(self, st: &mut ReplayState) {
        st.samples_applied += self.samples;
        st.chunks += self.chunks;
        st.unknown_refs += self.unknown;
        st.lo = st.lo.min(self.lo);
        st.hi = st.hi.max(self.hi);
        st.olo = st.olo.min(self.olo);
        st.ohi = st.ohi.max(self.ohi);
    }
}

/// Replays segments as a pipeline: a reader thread checks and decodes
/// records; this thread creates series and drops samples already on disk;
/// worker threads, each owning a share of the series shards, append the
/// rest. Order per series is kept: a series' samples always go to the same
/// worker, in log order, and after the series was created.
fn replay_segments(
    h: &HeadInner,
    dir: &Path,
    segs: Vec<SegmentRef>,
    st: &mut ReplayState,
) -> Result<(), HeadError> {
    // The reader and this thread need CPU too.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .clamp(1, 4);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(8);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<RefSample>>();
    std::thread::scope(|sc| {
        // Progress is reported for WAL segments, not a checkpoint's.
        let progress = (dir.file_name() == Some("wal".as_ref())).then_some(&*h.opts.replay_status);
        let reader = sc.spawn(move || read_records(dir, segs, tx, recycle_rx, progress));
        let mut work_txs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (wtx, wrx) = std::sync::mpsc::sync_channel::<Work>(4);
            work_txs.push(wtx);
            handles.push(sc.spawn(move || {
                let mut stats = ApplyStats::default();
                for (batch, head_max) in wrx {
                    apply_batch(h, &batch, head_max, &mut stats);
                }
                stats
            }));
        }
        let mut parts: Vec<Vec<(u64, i64, f64)>> = vec![Vec::new(); workers];
        for msg in rx {
            match msg {
                Msg::Series(rec) => {
                    let mut pairs = Vec::new();
                    let res = record::decode_series_with(&rec, &mut pairs, |r, p| {
                        add_series(h, r, p, st)
                    });
                    if let Err(e) = res {
                        tracing::warn!("skipping undecodable WAL series record: {e}");
                    }
                }
                Msg::Samples(v) => {
                    dispatch(&v, st, &mut parts, &work_txs);
                    let _ = recycle_tx.send(v);
                }
                Msg::Stones(v) => {
                    let mut ts = write(&h.tombstones);
                    for s in &v {
                        let r = st
                            .multi_ref
                            .get(&s.series_ref)
                            .copied()
                            .unwrap_or(s.series_ref);
                        ts.entry(r).or_default().push((s.mint, s.maxt));
                    }
                }
                Msg::Other => st.skipped_records += 1,
            }
        }
        drop(work_txs);
        for hd in handles {
            match hd.join() {
                Ok(stats) => stats.merge_into(st),
                Err(_) => {
                    return Err(HeadError::Io {
                        op: "replaying",
                        path: dir.to_path_buf(),
                        source: std::io::Error::other("WAL replay worker panicked"),
                    })
                }
            }
        }
        match reader.join() {
            Ok(res) => res.map_err(HeadError::from),
            Err(_) => Err(HeadError::Io {
                op: "replaying",
                path: dir.to_path_buf(),
                source: std::io::Error::other("WAL reader thread panicked"),
            }),
        }
    })
}

/// Reader thread: records in log order; consecutive samples records
/// travel as one batch (fewer wake-ups downstream).
fn read_records(
    dir: &Path,
    segs: Vec<SegmentRef>,
    tx: std::sync::mpsc::SyncSender<Msg>,
    recycle: std::sync::mpsc::Receiver<Vec<RefSample>>,
    progress: Option<&super::WalReplayStatus>,
) -> Result<(), WalError> {
    let mut r = RecordReader::new(dir, segs)?;
    let mut batch: Vec<RefSample> = Vec::new();
    let send = |m: Msg| tx.send(m).is_ok();
    let mut last_seg = None;
    loop {
        let rec = match r.next_with_segment() {
            Ok(Some((seg, rec))) => {
                if last_seg != Some(seg) {
                    last_seg = Some(seg);
                    if let Some(p) = progress {
                        p.reading(seg);
                    }
                }
                rec
            }
            Ok(None) => break,
            Err(e) => {
                // Everything before the corruption is good: apply it.
                if !batch.is_empty() {
                    send(Msg::Samples(batch));
                }
                return Err(e);
            }
        };
        let msg = match RecordType::of(rec) {
            Some(RecordType::Samples) => {
                if batch.capacity() == 0 {
                    batch = recycle.try_recv().unwrap_or_default();
                    batch.clear();
                }
                if let Err(e) = record::decode_samples(rec, &mut batch) {
                    tracing::warn!("skipping undecodable WAL samples record: {e}");
                }
                if batch.len() < SAMPLE_BATCH {
                    continue;
                }
                Msg::Samples(std::mem::take(&mut batch))
            }
            other => {
                // Keep log order: samples decoded so far go first.
                if !batch.is_empty() && !send(Msg::Samples(std::mem::take(&mut batch))) {
                    break;
                }
                match other {
                    Some(RecordType::Series) => Msg::Series(rec.to_vec()),
                    Some(RecordType::Tombstones) => {
                        let mut v = Vec::new();
                        match record::decode_tombstones(rec, &mut v) {
                            Ok(()) => Msg::Stones(v),
                            Err(e) => {
                                tracing::warn!("skipping undecodable WAL tombstones record: {e}");
                                continue;
                            }
                        }
                    }
                    _ => Msg::Other,
                }
            }
        };
        if !send(msg) {
            break;
        }
    }
    if !batch.is_empty() {
        send(Msg::Samples(batch));
    }
    Ok(())
}

/// Drops samples already in on-disk chunks (or too old) without touching
/// their series, and hands the rest to the worker owning their shard.
fn dispatch(
    samples: &[RefSample],
    st: &mut ReplayState,
    parts: &mut [Vec<(u64, i64, f64)>],
    txs: &[std::sync::mpsc::SyncSender<Work>],
) {
    let multi = !st.multi_ref.is_empty();
    let n = parts.len();
    for s in samples {
        let r = if multi {
            st.multi_ref
                .get(&s.series_ref)
                .copied()
                .unwrap_or(s.series_ref)
        } else {
            s.series_ref
        };
        let skip = st.skip.get(r);
        if s.t <= skip {
            if skip == i64::MAX {
                st.unknown_refs += 1;
            }
            continue;
        }
        st.head_max = st.head_max.max(s.t);
        parts[shard_of(r) % n].push((r, s.t, s.v));
    }
    for (part, tx) in parts.iter_mut().zip(txs) {
        if !part.is_empty() {
            let batch = std::mem::take(part);
            // A worker only stops when this thread drops its sender.
            let _ = tx.send((batch, st.head_max));
        }
    }
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
    // The series limit holds during replay too, so a restart cannot replay
    // its way into the memory blow-up the limit prevented.
    let limit = h.opts.max_series;
    if limit > 0 && h.stats.series.load(Ordering::Relaxed) >= limit as u64 {
        h.stats
            .series_limit_rejections
            .fetch_add(1, Ordering::Relaxed);
        let name = pairs
            .iter()
            .find(|p| p.0 == vigil_model::METRIC_NAME)
            .map_or("", |p| p.1);
        h.limit_log.refused(limit, name, true);
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
    let min_valid = h.min_valid_time.load(Ordering::Relaxed);
    let mut skip = min_valid.saturating_sub(1);
    if let Some(mut chunks) = st.mmapped.remove(&r) {
        chunks.retain(|c| c.maxt >= min_valid);
        chunks.sort_by_key(|c| c.mint);
        if let (Some(f), Some(l)) = (chunks.first(), chunks.last()) {
            st.lo = st.lo.min(f.mint);
            st.hi = st.hi.max(l.maxt);
            st.head_max = st.head_max.max(l.maxt);
            skip = skip.max(l.maxt);
        }
        st.chunks += chunks.len() as u64;
        if let Some(s) = lock(&h.shards[shard_of(r)]).series.get_mut(&r) {
            s.set_mmapped(chunks);
        }
    }
    st.skip.set(r, skip);
}

/// Samples applied per group: their series are looked up and prefetched
/// together, so the cache misses overlap instead of queueing.
const GROUP: usize = 16;

/// Worker: appends samples (all of shards this worker owns) to their series.
fn apply_batch(h: &HeadInner, samples: &[(u64, i64, f64)], head_max: i64, st: &mut ApplyStats) {
    let mut cur: Option<(usize, std::sync::MutexGuard<'_, super::Shard>)> = None;
    let mut i = 0;
    while i < samples.len() {
        // Up to GROUP samples of one shard.
        let si = shard_of(samples[i].0);
        let mut j = i + 1;
        while j < samples.len() && j - i < GROUP && shard_of(samples[j].0) == si {
            j += 1;
        }
        let group = &samples[i..j];
        i = j;
        if cur.as_ref().map(|c| c.0) != Some(si) {
            drop(cur.take());
            cur = Some((si, lock(&h.shards[si])));
        }
        let Some((_, shard)) = cur.as_mut() else {
            continue;
        };
        for &(r, _, _) in group {
            if let Some(series) = shard.series.get(&r) {
                series.head.prefetch_tail();
            }
        }
        for &(r, t, v) in group {
            let Some(series) = shard.series.get_mut(&r) else {
                st.unknown += 1;
                continue;
            };
            let ctx = ApplyCtx {
                series_ref: r,
                chunk_range: h.opts.chunk_range,
                ooo_window: h.opts.ooo_time_window,
                head_max_t: head_max,
                mapper: &h.chunks,
            };
            match series.apply(t, v, &ctx) {
                Applied::InOrder { chunk_cut } => {
                    st.samples += 1;
                    st.chunks += chunk_cut as u64;
                    st.lo = st.lo.min(t);
                    st.hi = st.hi.max(t);
                }
                Applied::OutOfOrder { chunk_cut } => {
                    st.samples += 1;
                    st.chunks += chunk_cut as u64;
                    st.olo = st.olo.min(t);
                    st.ohi = st.ohi.max(t);
                }
                _ => {}
            }
        }
    }
}
