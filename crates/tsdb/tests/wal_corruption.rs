//! Prometheus's WAL corruption cases (the scenarios of its
//! `TestWALRepair_ReadingError`): three segments of three one-page records,
//! one byte (or four) damaged; reading stops at the damage, repair keeps
//! exactly the intact records before it, and writing resumes in a fresh,
//! empty segment right after the repaired one.

use std::os::unix::fs::FileExt;
use std::path::Path;
use vigil_tsdb::wal::{
    self, list_segments, segment_name, RecordReader, Wal, WalError, WalOptions, WalScratch,
    PAGE_SIZE, RECORD_HEADER_SIZE,
};

// Fragment types of the format.
const REC_PAGE_TERM: u8 = 0;
const REC_FIRST: u8 = 2;
const REC_LAST: u8 = 4;

struct Case {
    name: &'static str,
    segment: u32,
    offset: u64,
    bytes: &'static [u8],
    intact: usize,
}

const CASES: &[Case] = &[
    // The last record's only fragment claims more follow: a torn write.
    Case {
        name: "torn_last_record",
        segment: 2,
        offset: 2 * PAGE_SIZE as u64,
        bytes: &[REC_FIRST],
        intact: 8,
    },
    // A page-termination type where a record header should be.
    Case {
        name: "bad_header",
        segment: 1,
        offset: PAGE_SIZE as u64,
        bytes: &[REC_PAGE_TERM],
        intact: 4,
    },
    // A last fragment with no first one before it.
    Case {
        name: "bad_fragment_sequence",
        segment: 1,
        offset: PAGE_SIZE as u64,
        bytes: &[REC_LAST],
        intact: 4,
    },
    // A fragment type that does not exist.
    Case {
        name: "bad_fragment_flag",
        segment: 1,
        offset: PAGE_SIZE as u64,
        bytes: &[123],
        intact: 4,
    },
    Case {
        name: "bad_checksum",
        segment: 1,
        offset: PAGE_SIZE as u64 + 4,
        bytes: &[0],
        intact: 4,
    },
    Case {
        name: "bad_length",
        segment: 1,
        offset: PAGE_SIZE as u64 + 2,
        bytes: &[0],
        intact: 4,
    },
    Case {
        name: "bad_content",
        segment: 1,
        offset: PAGE_SIZE as u64 + 100,
        bytes: b"beef",
        intact: 4,
    },
];

fn opts() -> WalOptions {
    WalOptions {
        segment_size: 3 * PAGE_SIZE,
        compress: false,
    }
}

/// Nine records of exactly one page each, record i starting with byte i.
fn records() -> Vec<Vec<u8>> {
    (1..=9u8)
        .map(|i| {
            let mut b = vec![0u8; PAGE_SIZE - RECORD_HEADER_SIZE];
            b[0] = i;
            b[1..]
                .iter_mut()
                .enumerate()
                .for_each(|(k, x)| *x = (k % 251) as u8 ^ i);
            b
        })
        .collect()
}

fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Option<WalError>) {
    let mut r = RecordReader::new(dir, list_segments(dir).unwrap()).unwrap();
    let mut out = Vec::new();
    loop {
        match r.next() {
            Ok(Some(rec)) => out.push(rec.to_vec()),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn prometheus_corruption_cases_keep_exactly_the_intact_records() {
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let recs = records();
        {
            let w = Wal::open(dir.path(), opts()).unwrap();
            let mut scratch = WalScratch::default();
            for r in &recs {
                w.log(&[r], &mut scratch).unwrap();
            }
            w.close().unwrap();
        }
        let segs: Vec<u32> = list_segments(dir.path())
            .unwrap()
            .iter()
            .map(|s| s.index)
            .collect();
        assert_eq!(segs, vec![0, 1, 2], "{}: layout", case.name);

        let path = dir.path().join(segment_name(case.segment));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(case.bytes, case.offset).unwrap();
        drop(f);

        // Reading stops at the damage with a corruption error naming it.
        let (got, err) = read_all(dir.path());
        let Some(WalError::Corruption {
            segment, offset, ..
        }) = err
        else {
            panic!("{}: no corruption reported ({err:?})", case.name);
        };
        assert_eq!(segment, case.segment, "{}", case.name);
        assert_eq!(
            got.len(),
            case.intact,
            "{}: records before the damage",
            case.name
        );

        // Repair keeps exactly those records; a new writer starts a fresh
        // segment after the repaired one.
        wal::repair(dir.path(), segment, offset).unwrap();
        let w = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(w.current_segment(), case.segment + 1, "{}", case.name);
        drop(w);
        let (got, err) = read_all(dir.path());
        assert!(
            err.is_none(),
            "{}: still corrupt after repair: {err:?}",
            case.name
        );
        assert_eq!(got.len(), case.intact, "{}: intact records", case.name);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r, &recs[i], "{}: record {i} differs", case.name);
        }
        let last = list_segments(dir.path()).unwrap().pop().unwrap();
        assert_eq!(last.index, case.segment + 1, "{}", case.name);
        assert_eq!(
            std::fs::metadata(&last.path).unwrap().len(),
            0,
            "{}",
            case.name
        );

        // And the log carries on from there.
        let w = Wal::open(dir.path(), opts()).unwrap();
        w.log(&[&recs[8]], &mut WalScratch::default()).unwrap();
        w.close().unwrap();
        drop(w);
        let (got, err) = read_all(dir.path());
        assert!(err.is_none(), "{}: {err:?}", case.name);
        assert_eq!(got.len(), case.intact + 1, "{}", case.name);
    }
}

/// The same damage under a head: replay keeps the samples of the intact
/// records, repairs the WAL (counted once) and the next start is clean.
#[test]
fn head_replay_repairs_each_case() {
    use vigil_model::storage::{Appendable, Queryable};
    use vigil_model::{Labels, Matcher};
    use vigil_tsdb::head::{Head, HeadOptions};
    use vigil_tsdb::wal::record::{self, RefSample};

    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        // Every page holds one real record (the series record on page 0,
        // a samples record on each later page) and a padding record of an
        // unknown type, which replay skips, filling the page exactly.
        const N: i64 = 2000;
        {
            let w = Wal::open(&wal_dir, opts()).unwrap();
            let mut scratch = WalScratch::default();
            let mut buf = Vec::new();
            let mut log_page = |rec: &[u8]| {
                w.log(&[rec], &mut scratch).unwrap();
                let pad = PAGE_SIZE - 2 * RECORD_HEADER_SIZE - rec.len();
                w.log(&[&vec![0xffu8; pad]], &mut scratch).unwrap();
            };
            record::begin_series(&mut buf);
            record::put_series_entry(&mut buf, 1, 1, [("__name__", "m")]);
            log_page(&buf);
            for rec in 0..8i64 {
                let samples: Vec<RefSample> = (0..N)
                    .map(|k| RefSample {
                        series_ref: 1,
                        t: (rec * N + k) * 10,
                        v: k as f64,
                    })
                    .collect();
                record::encode_samples(&samples, &mut buf);
                log_page(&buf);
            }
            w.close().unwrap();
        }
        let path = wal_dir.join(segment_name(case.segment));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(case.bytes, case.offset).unwrap();
        drop(f);

        // The damaged page is the case's `intact`-th (0-based); the pages
        // before it hold the series and `intact - 1` samples records.
        let want = N as usize * (case.intact - 1);
        let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let n = {
            let q = h.querier(i64::MIN, i64::MAX).unwrap();
            let s = q.select(None, &[Matcher::equal("__name__", "m")]).unwrap();
            let mut it = s[0].iter();
            let mut n = 0;
            while it.next().unwrap().is_some() {
                n += 1;
            }
            n
        };
        assert_eq!(n, want, "{}: samples kept", case.name);
        assert_eq!(
            h.stats()
                .wal_corruptions
                .load(std::sync::atomic::Ordering::Relaxed),
            1,
            "{}",
            case.name
        );
        let mut app = h.appender();
        app.append(0, &Labels::from_pairs(&[("__name__", "m")]), 1 << 40, 1.0)
            .unwrap();
        app.commit().unwrap();
        drop(app);
        h.close().unwrap();
        drop(h);
        let h = Head::open(dir.path(), HeadOptions::default()).unwrap();
        assert_eq!(
            h.stats()
                .wal_corruptions
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{}: repaired WAL should be clean",
            case.name
        );
    }
}
