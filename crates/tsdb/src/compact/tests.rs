use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_model::storage::Series;
use vigil_model::{Labels, MatchOp, Matcher, Sample};

use super::*;
use crate::block::tests::build_block;
use crate::meta::{BlockStats, META_VERSION};

const H: i64 = 3_600_000;

fn meta(min: i64, max: i64) -> BlockMeta {
    BlockMeta {
        ulid: Ulid::with_time(min.max(0) as u64),
        min_time: min,
        max_time: max,
        stats: BlockStats {
            num_series: 10,
            num_samples: 100,
            ..Default::default()
        },
        compaction: BlockMetaCompaction {
            level: 1,
            ..Default::default()
        },
        version: META_VERSION,
    }
}

fn planner() -> Planner {
    Planner::new(block_ranges(2 * H, 31 * 24 * H))
}

#[test]
fn ranges_ladder() {
    assert_eq!(block_ranges(2 * H, 24 * H), vec![2 * H, 6 * H, 18 * H]);
    assert_eq!(block_ranges(2 * H, 36 * H).len(), 3);
    assert_eq!(
        exponential_block_ranges(2 * H, 10, 3)[9],
        2 * H * 3i64.pow(9)
    );
}

#[test]
fn plan_adjacent_blocks_into_next_range() {
    let p = planner();
    // Three 2h blocks filling [0, 6h) plus a newer one: the three merge.
    let ms = vec![
        meta(0, 2 * H),
        meta(2 * H, 4 * H),
        meta(4 * H, 6 * H),
        meta(6 * H, 8 * H),
    ];
    assert_eq!(p.plan(&ms), vec![ms[0].ulid, ms[1].ulid, ms[2].ulid]);
    // Only two of them and the newest is in the same window: wait.
    let ms = vec![meta(0, 2 * H), meta(2 * H, 4 * H), meta(4 * H, 6 * H)];
    assert!(p.plan(&ms).is_empty());
    // Nothing with a single block.
    assert!(p.plan(&[meta(0, 2 * H)]).is_empty());
    // A failed block blocks its range.
    let mut ms = vec![
        meta(0, 2 * H),
        meta(2 * H, 4 * H),
        meta(4 * H, 6 * H),
        meta(6 * H, 8 * H),
    ];
    ms[1].compaction.failed = true;
    assert!(p.plan(&ms).is_empty());
}

#[test]
fn plan_overlapping_first() {
    let p = planner();
    let ms = vec![
        meta(0, 2 * H),
        meta(H, 3 * H),
        meta(5 * H, 6 * H),
        meta(8 * H, 10 * H),
    ];
    assert_eq!(p.plan(&ms), vec![ms[0].ulid, ms[1].ulid]);
    // A backfilled big block over several head blocks.
    let ms = vec![meta(0, 2 * H), meta(2 * H, 4 * H), meta(0, 18 * H)];
    let mut got = p.plan(&ms);
    got.sort();
    let mut want = vec![ms[0].ulid, ms[1].ulid, ms[2].ulid];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn plan_tombstones() {
    let p = planner();
    // Only blocks longer than the middle range (54h) qualify by ratio.
    let mut ms = vec![meta(0, 162 * H), meta(162 * H, 164 * H)];
    ms[0].stats.num_series = 100;
    ms[0].stats.num_tombstones = 5;
    assert!(p.plan(&ms).is_empty());
    ms[0].stats.num_tombstones = 6;
    assert_eq!(p.plan(&ms), vec![ms[0].ulid]);
    let mut ms = vec![meta(0, 2 * H), meta(2 * H, 4 * H)];
    ms[0].stats.num_tombstones = 6;
    assert!(p.plan(&ms).is_empty());
    // A block whose every series is deleted is rewritten whatever its size.
    ms[0].stats.num_tombstones = 10;
    assert_eq!(p.plan(&ms), vec![ms[0].ulid]);
}

type Model = Vec<(Labels, Vec<Sample>)>;

fn read(dir: &Path, b: &Block) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    let _ = dir;
    let mut out = BTreeMap::new();
    let q = b.querier(i64::MIN, i64::MAX);
    for s in q
        .select_series(&[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()])
        .unwrap()
    {
        out.insert(
            s.labels().clone(),
            s.samples()
                .unwrap()
                .iter()
                .map(|x| (x.t, x.v.to_bits()))
                .collect(),
        );
    }
    out
}

fn series(name: &str, ts: impl Iterator<Item = i64>, v: f64) -> (Labels, Vec<Sample>) {
    (
        Labels::from_pairs(&[("__name__", name)]),
        ts.map(|t| Sample::new(t, v + t as f64)).collect(),
    )
}

#[test]
fn compacts_adjacent_blocks_copying_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let a: Model = vec![
        series("a", (0..500).map(|i| i * 10), 0.0),
        series("b", (0..10).map(|i| i * 10), 1.0),
    ];
    let b: Model = vec![
        series("a", (500..900).map(|i| i * 10), 0.0),
        series("c", (600..610).map(|i| i * 10), 2.0),
    ];
    let ba = build_block(dir.path(), a.clone());
    let bb = build_block(dir.path(), b.clone());
    let m = compact_blocks(dir.path(), &[ba.clone(), bb.clone()])
        .unwrap()
        .unwrap();
    assert_eq!(m.compaction.level, 2);
    assert_eq!(m.compaction.parents.len(), 2);
    assert_eq!(m.stats.num_samples, 500 + 10 + 400 + 10);
    assert_eq!((m.min_time, m.max_time), (0, 8991));
    let out = Block::open(&dir.path().join(m.ulid.to_string())).unwrap();
    let mut want = read(dir.path(), &ba);
    for (l, s) in read(dir.path(), &bb) {
        want.entry(l).or_default().extend(s);
    }
    assert_eq!(read(dir.path(), &out), want);
    // Chunks were copied, not re-cut: same count.
    assert_eq!(
        m.stats.num_chunks,
        ba.meta().stats.num_chunks + bb.meta().stats.num_chunks
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn vertical_compaction_loses_and_duplicates_nothing(
        spans in proptest::collection::vec((0usize..4, 0i64..3000, 1i64..400), 2..5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut want: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut blocks = Vec::new();
        for (i, (s, start, len)) in spans.iter().enumerate() {
            let name = format!("m{s}");
            // Same value for a timestamp in every block: duplicates are identical.
            let (l, samples) = series(&name, (*start..start + len).map(|t| t * 7), 0.5);
            let extra = series(&format!("only{i}"), (0..5).map(|t| t + start), 9.0);
            for (l, ss) in [(l.clone(), samples.clone()), extra.clone()] {
                let e = want.entry(l).or_default();
                for x in ss { e.insert(x.t, x.v.to_bits()); }
            }
            blocks.push(build_block(dir.path(), vec![(l, samples), extra]));
        }
        let m = compact_blocks(dir.path(), &blocks).unwrap().unwrap();
        let out = Block::open(&dir.path().join(m.ulid.to_string())).unwrap();
        let got = read(dir.path(), &out);
        let want: BTreeMap<Labels, Vec<(i64, u64)>> = want.into_iter().map(|(l, m)| (l, m.into_iter().collect())).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(m.stats.num_samples, out.meta().stats.num_samples);
    }
}

#[test]
fn compaction_applies_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let a: Model = vec![series("a", 0..300, 0.0), series("b", 0..300, 0.0)];
    let ba = build_block(dir.path(), a);
    ba.delete(100, 149, &[Matcher::equal("__name__", "a")])
        .unwrap();
    ba.delete(0, 1000, &[Matcher::equal("__name__", "b")])
        .unwrap();
    let m = compact_blocks(dir.path(), std::slice::from_ref(&ba))
        .unwrap()
        .unwrap();
    let out = Block::open(&dir.path().join(m.ulid.to_string())).unwrap();
    let got = read(dir.path(), &out);
    assert_eq!(got.len(), 1);
    let a = &got[&Labels::from_pairs(&[("__name__", "a")])];
    assert_eq!(a.len(), 250);
    assert!(a.iter().all(|(t, _)| *t < 100 || *t > 149));
    assert_eq!(out.meta().stats.num_tombstones, 0);
    // Everything deleted: no block.
    ba.delete(0, 1000, &[Matcher::equal("__name__", "a")])
        .unwrap();
    assert!(compact_blocks(dir.path(), &[ba]).unwrap().is_none());
}
