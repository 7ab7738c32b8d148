use super::*;
use proptest::prelude::*;

fn read_all(dir: &Path) -> Result<Vec<Vec<u8>>, WalError> {
    let mut r = RecordReader::from_dir(dir, 0)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next()? {
        out.push(rec.to_vec());
    }
    Ok(out)
}

/// Records of varied sizes: tiny, page-spanning, compressible and not.
fn records() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let rec = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..100),
        2 => (0usize..3 * PAGE_SIZE, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        1 => proptest::collection::vec(any::<u8>(), 0..2 * PAGE_SIZE),
    ];
    proptest::collection::vec(rec, 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn round_trip_across_pages_and_segments(recs in records(), compress in any::<bool>(), deferred in any::<u16>()) {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = Wal::open(dir.path(), WalOptions { segment_size: 4 * PAGE_SIZE, compress }).unwrap();
            let mut s = WalScratch::default();
            for (i, r) in recs.iter().enumerate() {
                if deferred & (1 << (i % 16)) != 0 {
                    w.log_deferred(r, &mut s).unwrap();
                } else {
                    w.log(&[r], &mut s).unwrap();
                }
            }
            w.close().unwrap();
        }
        prop_assert_eq!(read_all(dir.path()).unwrap(), recs);
    }

    /// Any truncation of the last segment reads back a prefix of the
    /// records, reports the cut as corruption at most, and `repair` leaves a
    /// WAL that reads cleanly with exactly that prefix.
    #[test]
    fn truncated_tail_repairs_to_prefix(recs in records(), cut in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = Wal::open(dir.path(), WalOptions { segment_size: 1 << 30, compress: true }).unwrap();
            let mut s = WalScratch::default();
            for r in &recs {
                w.log(&[r], &mut s).unwrap();
            }
        }
        let seg = dir.path().join(segment_name(0));
        let len = fs::metadata(&seg).unwrap().len();
        let cut = if len == 0 { 0 } else { cut % len };
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        check_prefix_and_repair(dir.path(), &recs)?;
    }

    #[test]
    fn flipped_bytes_repair_to_prefix(recs in records(), flips in proptest::collection::vec((any::<u64>(), 1u8..=255), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = Wal::open(dir.path(), WalOptions { segment_size: 1 << 30, compress: false }).unwrap();
            let mut s = WalScratch::default();
            for r in &recs {
                w.log(&[r], &mut s).unwrap();
            }
        }
        let seg = dir.path().join(segment_name(0));
        let mut b = fs::read(&seg).unwrap();
        if !b.is_empty() {
            for (at, x) in flips {
                let n = b.len() as u64;
                b[(at % n) as usize] ^= x;
            }
        }
        fs::write(&seg, &b).unwrap();
        check_prefix_and_repair(dir.path(), &recs)?;
    }
}

fn check_prefix_and_repair(dir: &Path, recs: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut r = RecordReader::from_dir(dir, 0).unwrap();
    let mut got = Vec::new();
    let err = loop {
        match r.next() {
            Ok(Some(rec)) => got.push(rec.to_vec()),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    // What was read is a prefix of what was written (a flipped byte may
    // also hit a record's data, which the CRC catches).
    prop_assert!(got.len() <= recs.len());
    prop_assert_eq!(&got[..], &recs[..got.len()]);
    if let Some(WalError::Corruption {
        segment, offset, ..
    }) = err
    {
        repair(dir, segment, offset).unwrap();
        prop_assert_eq!(&read_all(dir).unwrap(), &got);
        // A WAL opened after repair appends after the kept records.
        let w = Wal::open(dir, WalOptions::default()).unwrap();
        w.log(&[b"after"], &mut WalScratch::default()).unwrap();
        let mut all = got.clone();
        all.push(b"after".to_vec());
        prop_assert_eq!(read_all(dir).unwrap(), all);
    } else if let Some(e) = err {
        return Err(TestCaseError::fail(format!("unexpected error {e}")));
    }
    Ok(())
}

#[test]
fn fragment_layout_matches_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compress: false,
        },
    )
    .unwrap();
    let mut s = WalScratch::default();
    w.log(&[b"abc"], &mut s).unwrap();
    // A record larger than the rest of the page is split first/last.
    let big = vec![7u8; PAGE_SIZE];
    w.log(&[&big], &mut s).unwrap();
    drop(w);
    let b = fs::read(dir.path().join("00000000")).unwrap();
    assert_eq!(b[0], REC_FULL);
    assert_eq!(&b[1..3], &3u16.to_be_bytes());
    assert_eq!(&b[3..7], &crc32c::crc32c(b"abc").to_be_bytes());
    assert_eq!(&b[7..10], b"abc");
    assert_eq!(b[10], REC_FIRST);
    let first_len = PAGE_SIZE - 10 - RECORD_HEADER_SIZE;
    assert_eq!(u16::from_be_bytes([b[11], b[12]]) as usize, first_len);
    assert_eq!(b[PAGE_SIZE], REC_LAST);
    assert_eq!(
        b.len(),
        PAGE_SIZE + RECORD_HEADER_SIZE + (PAGE_SIZE - first_len)
    );
}

#[test]
fn snappy_flag_only_when_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let mut s = WalScratch::default();
    w.log(&[&[0u8; 1000]], &mut s).unwrap();
    w.log(&[b"x"], &mut s).unwrap();
    drop(w);
    let b = fs::read(dir.path().join("00000000")).unwrap();
    assert_eq!(b[0], REC_FULL | SNAPPY_MASK);
    let n = u16::from_be_bytes([b[1], b[2]]) as usize;
    assert_eq!(b[7 + n], REC_FULL);
    assert_eq!(
        read_all(dir.path()).unwrap(),
        vec![vec![0u8; 1000], b"x".to_vec()]
    );
}

#[test]
fn reopen_starts_a_new_segment_and_truncate_keeps_current() {
    let dir = tempfile::tempdir().unwrap();
    {
        let w = Wal::open(dir.path(), WalOptions::default()).unwrap();
        w.log(&[b"one"], &mut WalScratch::default()).unwrap();
    }
    let w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(w.current_segment(), 1);
    w.log(&[b"two"], &mut WalScratch::default()).unwrap();
    assert_eq!(w.next_segment().unwrap(), 2);
    w.truncate(5).unwrap();
    let left: Vec<u32> = list_segments(dir.path())
        .unwrap()
        .iter()
        .map(|s| s.index)
        .collect();
    assert_eq!(left, vec![2]);
}

#[test]
fn tailer_follows_writes_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 2 * PAGE_SIZE,
            compress: false,
        },
    )
    .unwrap();
    let mut s = WalScratch::default();
    let mut t = WalTailer::new(dir.path(), 0);
    assert_eq!(t.next().unwrap(), None);
    let mut want = Vec::new();
    let mut got = Vec::new();
    for i in 0..200u32 {
        let rec: Vec<u8> = (0..(i * 37 % 5000)).map(|x| (x ^ i) as u8).collect();
        w.log(&[&rec], &mut s).unwrap();
        want.push(rec);
        if i % 7 == 0 {
            while let Some(r) = t.next().unwrap() {
                got.push(r.to_vec());
            }
        }
    }
    while let Some(r) = t.next().unwrap() {
        got.push(r.to_vec());
    }
    assert!(w.current_segment() > 3);
    assert_eq!(got, want);
}

#[test]
fn checkpoint_filters_and_chains() {
    use record::*;
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let mut s = WalScratch::default();
    let mut buf = Vec::new();
    let lbl = |v: &str| vigil_model::Labels::from_pairs(&[("a", v)]);
    encode_series(
        &[
            RefSeries {
                series_ref: 1,
                labels: lbl("1"),
            },
            RefSeries {
                series_ref: 2,
                labels: lbl("2"),
            },
        ],
        &mut buf,
    );
    w.log(&[&buf], &mut s).unwrap();
    encode_samples(
        &[
            RefSample {
                series_ref: 1,
                t: 10,
                v: 1.0,
            },
            RefSample {
                series_ref: 2,
                t: 20,
                v: 2.0,
            },
            RefSample {
                series_ref: 1,
                t: 30,
                v: 3.0,
            },
        ],
        &mut buf,
    );
    w.log(&[&buf], &mut s).unwrap();
    w.next_segment().unwrap();
    encode_samples(
        &[RefSample {
            series_ref: 1,
            t: 40,
            v: 4.0,
        }],
        &mut buf,
    );
    w.log(&[&buf], &mut s).unwrap();
    w.next_segment().unwrap();

    let st = checkpoint(dir.path(), 0, 0, |r| r == 1, 15, true).unwrap();
    assert_eq!(
        (
            st.series_kept,
            st.series_dropped,
            st.samples_kept,
            st.samples_dropped
        ),
        (1, 1, 1, 2)
    );
    // A second checkpoint reads the first one plus segment 1.
    let st = checkpoint(dir.path(), 0, 1, |_| true, 35, true).unwrap();
    assert_eq!(
        (st.series_kept, st.samples_kept, st.samples_dropped),
        (1, 1, 1)
    );
    delete_checkpoints(dir.path(), 1).unwrap();
    let (idx, cp) = last_checkpoint(dir.path()).unwrap().unwrap();
    assert_eq!(idx, 1);
    assert_eq!(list_checkpoints(dir.path()).unwrap().len(), 1);
    let recs = read_all(&cp).unwrap();
    let mut series = Vec::new();
    decode_series(&recs[0], &mut series).unwrap();
    assert_eq!(
        series,
        vec![RefSeries {
            series_ref: 1,
            labels: lbl("1")
        }]
    );
    let mut samples = Vec::new();
    decode_samples(&recs[1], &mut samples).unwrap();
    assert_eq!(
        samples,
        vec![RefSample {
            series_ref: 1,
            t: 40,
            v: 4.0
        }]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Arbitrary segment bytes (raw, or valid pages with garbage spliced in)
    /// never panic the replay reader or the tailer; they end or report
    /// corruption, and allocation stays bounded by the input.
    #[test]
    fn arbitrary_segments_never_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..3 * PAGE_SIZE),
        splice in any::<bool>(),
        at in any::<usize>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = if splice {
            let w = Wal::open(dir.path(), WalOptions { segment_size: 1 << 30, compress: true }).unwrap();
            let mut s = WalScratch::default();
            for i in 0..20u8 {
                w.log(&[&vec![i; 3000 + i as usize * 100]], &mut s).unwrap();
            }
            drop(w);
            let seg = dir.path().join(segment_name(0));
            let mut b = fs::read(&seg).unwrap();
            fs::remove_file(&seg).unwrap();
            let at = at % (b.len() + 1);
            let end = (at + garbage.len()).min(b.len());
            b.splice(at..end, garbage.iter().copied());
            b
        } else {
            garbage
        };
        fs::write(dir.path().join(segment_name(0)), &bytes).unwrap();
        let mut r = RecordReader::from_dir(dir.path(), 0).unwrap();
        let mut total = 0usize;
        loop {
            match r.next() {
                Ok(Some(rec)) => {
                    total += rec.len();
                    // Decompressed records are bounded by the input.
                    prop_assert!(total <= bytes.len() * 64 + 1024);
                }
                Ok(None) | Err(WalError::Corruption { .. }) => break,
                Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
            }
        }
        let mut t = WalTailer::new(dir.path(), 0);
        for _ in 0..1000 {
            match t.next() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
}
