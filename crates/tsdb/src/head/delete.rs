//! Which samples a head deletion covers: as in Prometheus, each matching
//! series' tombstone is the requested range clamped to the samples it holds
//! at that moment, so samples appended later are not deleted (a deleted
//! series that is still scraped shows again). Series without samples get
//! no tombstone.

use super::{lock, shard_of, HeadInner};
use crate::wal::record::Stone;

/// Tombstones for `refs` (sorted) over `[mint, maxt]`, clamped per series.
pub(crate) fn clamped_stones(head: &HeadInner, refs: &[u64], mint: i64, maxt: i64) -> Vec<Stone> {
    let mut out = Vec::with_capacity(refs.len());
    let mut i = 0;
    while i < refs.len() {
        let si = shard_of(refs[i]);
        let shard = lock(&head.shards[si]);
        while i < refs.len() && shard_of(refs[i]) == si {
            let r = refs[i];
            i += 1;
            let Some((lo, hi)) = shard.series.get(&r).and_then(|s| s.time_range()) else {
                continue;
            };
            let (a, b) = (mint.max(lo), maxt.min(hi));
            if a <= b {
                out.push(Stone {
                    series_ref: r,
                    mint: a,
                    maxt: b,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::head::{Head, HeadOptions};
    use vigil_model::storage::{Appendable, Queryable};
    use vigil_model::{Labels, Matcher};

    fn times(h: &Head, name: &str) -> Vec<i64> {
        let q = h.querier(i64::MIN, i64::MAX).unwrap();
        let mut out = Vec::new();
        for s in q.select(None, &[Matcher::equal("__name__", name)]).unwrap() {
            let mut it = s.iter();
            while let Some(x) = it.next().unwrap() {
                out.push(x.t);
            }
        }
        out
    }

    #[test]
    fn deletion_stops_at_the_newest_sample_and_survives_replay() {
        let dir = tempfile::tempdir().unwrap();
        let x = Labels::from_pairs(&[("__name__", "x")]);
        {
            let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
            let mut app = h.appender();
            for t in 0..5 {
                app.append(0, &x, t * 1000, 1.0).unwrap();
            }
            app.commit().unwrap();
            h.delete(1000, i64::MAX, &[Matcher::equal("__name__", "x")])
                .unwrap();
            assert_eq!(times(&h, "x"), vec![0]);
            // Appended after the deletion: kept.
            let mut app = h.appender();
            app.append(0, &x, 5000, 1.0).unwrap();
            app.append(0, &x, 6000, 1.0).unwrap();
            app.commit().unwrap();
            assert_eq!(times(&h, "x"), vec![0, 5000, 6000]);
            // A range beyond the samples held deletes nothing.
            h.delete(7000, 9000, &[Matcher::equal("__name__", "x")])
                .unwrap();
            let mut app = h.appender();
            app.append(0, &x, 8000, 1.0).unwrap();
            app.commit().unwrap();
            assert_eq!(times(&h, "x"), vec![0, 5000, 6000, 8000]);
            h.close().unwrap();
        }
        let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
        assert_eq!(times(&h, "x"), vec![0, 5000, 6000, 8000]);
    }
}
