use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use vigil_model::storage::StorageError;
use vigil_model::{Label, Labels};

use super::*;
use crate::chunks::ChunkMeta;

type Model = Vec<(Labels, Vec<ChunkMeta>)>;

fn write_index(path: &Path, series: &Model) -> Vec<u32> {
    let mut syms = BTreeSet::new();
    for (l, _) in series {
        for x in l {
            syms.insert(x.name.clone());
            syms.insert(x.value.clone());
        }
    }
    let mut w = IndexWriter::create(path, &syms).unwrap();
    let ids = series
        .iter()
        .map(|(l, c)| w.add_series(l, c).unwrap())
        .collect();
    w.finish().unwrap();
    ids
}

fn arb_series() -> impl Strategy<Value = Model> {
    let label = (0usize..4, 0usize..6).prop_map(|(n, v)| {
        Label::new(
            ["__name__", "a", "job", "zz"][n],
            ["x", "y", "long-value-ü", "1", "2", "3"][v],
        )
    });
    let labels = proptest::collection::vec(label, 0..4).prop_map(Labels::new);
    let chunks =
        proptest::collection::vec((0i64..1000, 0i64..1000, 0u64..100_000), 0..5).prop_map(|v| {
            let mut t = -5000i64;
            let mut r = 8u64;
            v.into_iter()
                .map(|(gap, len, dr)| {
                    let mint = t + gap + 1;
                    let maxt = mint + len;
                    t = maxt;
                    r += dr;
                    ChunkMeta {
                        min_time: mint,
                        max_time: maxt,
                        chunk_ref: r,
                    }
                })
                .collect::<Vec<_>>()
        });
    proptest::collection::vec((labels, chunks), 0..30).prop_map(|mut v| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn index_round_trip(series in arb_series()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let ids = write_index(&path, &series);
        let r = IndexReader::open(&path).unwrap();

        // Series decode back exactly, and IDs are increasing.
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for (id, (l, c)) in ids.iter().zip(&series) {
            let e = r.series(*id).unwrap();
            prop_assert_eq!(&e.labels, l);
            prop_assert_eq!(&e.chunks, c);
        }
        prop_assert_eq!(r.all_postings().unwrap(), ids.clone());
        prop_assert_eq!(r.scan_series_ids().unwrap(), ids.clone());

        // Postings and label values match a model.
        let mut model: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
        for (id, (l, _)) in ids.iter().zip(&series) {
            for x in l {
                model.entry((x.name.clone(), x.value.clone())).or_default().push(*id);
            }
        }
        let names: BTreeSet<&str> = model.keys().map(|k| k.0.as_str()).collect();
        prop_assert_eq!(r.label_names(), names.iter().copied().collect::<Vec<_>>());
        for name in &names {
            let vals: Vec<&str> = model.keys().filter(|k| k.0 == *name).map(|k| k.1.as_str()).collect();
            prop_assert_eq!(r.label_values(name).unwrap(), vals);
        }
        for ((n, v), p) in &model {
            prop_assert_eq!(&r.postings(n, v).unwrap(), p);
        }
        prop_assert!(r.postings("a", "nope").unwrap().is_empty());
        prop_assert!(r.postings("nope", "x").unwrap().is_empty());
        let mut seen = Vec::new();
        r.for_each_value("a", "y", |v, _| { seen.push(v.to_string()); true }).unwrap();
        let want: Vec<String> = model.keys().filter(|k| k.0 == "a" && k.1.as_str() >= "y").map(|k| k.1.clone()).collect();
        prop_assert_eq!(seen, want);
    }
}

fn sample_index() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let series: Model = (0..6)
        .map(|i| {
            (
                Labels::from_pairs(&[
                    ("__name__", "up"),
                    ("instance", &format!("h{i}")),
                    ("job", "node"),
                ]),
                vec![ChunkMeta {
                    min_time: i,
                    max_time: i + 10,
                    chunk_ref: 8 + i as u64 * 20,
                }],
            )
        })
        .collect();
    write_index(&path, &series);
    let b = std::fs::read(&path).unwrap();
    (dir, b)
}

/// Reads everything a querier would; must return errors, never panic.
fn exercise(r: &IndexReader) -> Result<(), StorageError> {
    for id in r.all_postings()? {
        r.series(id)?;
    }
    for n in r.label_names() {
        for v in r.label_values(n)? {
            r.postings(n, v)?;
        }
    }
    r.scan_series_ids()?;
    Ok(())
}

#[test]
fn layout_matches_the_format() {
    let (_d, b) = sample_index();
    assert_eq!(&b[..5], &[0xBA, 0xAA, 0xD7, 0x00, 2]);
    let r = IndexReader::from_mapped(Path::new("x"), mapped(&b)).unwrap();
    let toc = r.toc();
    assert_eq!(toc.symbols, 5);
    assert!(toc.series > toc.symbols && toc.label_indices > toc.series);
    assert!(toc.postings > toc.label_indices && toc.label_indices_table > toc.postings);
    assert!(toc.postings_table > toc.label_indices_table);
    for id in r.all_postings().unwrap() {
        assert_eq!((u64::from(id) * SERIES_ALIGN) % 16, 0);
        assert!(u64::from(id) * 16 >= toc.series);
    }
    assert_eq!(toc.postings % 4, 0);
    // Symbols: __name__, h0..h5, instance, job, node, up.
    assert_eq!(r.num_symbols(), 11);
    assert_eq!(r.symbol(0).unwrap(), "__name__");
}

fn mapped(b: &[u8]) -> crate::binfmt::MappedFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), b).unwrap();
    crate::binfmt::MappedFile::open(f.path()).unwrap()
}

#[test]
fn every_single_byte_flip_is_caught_or_harmless() {
    let (_d, good) = sample_index();
    let mut detected = 0;
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        match IndexReader::from_mapped(Path::new("x"), mapped(&b)) {
            Err(StorageError::Corruption { .. }) => detected += 1,
            Err(e) => panic!("unexpected error kind {e:?}"),
            Ok(r) => {
                if exercise(&r).is_err() {
                    detected += 1;
                }
            }
        }
    }
    // Only padding and the unused label indices are not covered by reads.
    assert!(
        detected * 10 >= good.len() * 8,
        "{detected} of {}",
        good.len()
    );
}

#[test]
fn truncation_is_corruption() {
    let (_d, good) = sample_index();
    for n in 0..good.len() {
        let r = IndexReader::from_mapped(Path::new("x"), mapped(&good[..n]));
        assert!(matches!(r, Err(StorageError::Corruption { .. })), "len {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn mutated_indexes_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (_d, mut b) = sample_index();
        let n = b.len();
        for (i, x) in flips { b[i.index(n)] = x; }
        if let Ok(r) = IndexReader::from_mapped(Path::new("x"), mapped(&b)) {
            let _ = exercise(&r);
            let _ = r.series(u32::MAX);
            let _ = r.read_postings(u64::MAX);
        }
    }
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    assert!(IndexWriter::create(&dir.path().join("i1"), ["b", "a"]).is_err());
    let mut w = IndexWriter::create(&dir.path().join("i2"), ["a", "b"]).unwrap();
    w.add_series(&Labels::from_pairs(&[("a", "b")]), &[])
        .unwrap();
    assert!(w
        .add_series(&Labels::from_pairs(&[("a", "a")]), &[])
        .is_err());
    assert!(w
        .add_series(&Labels::from_pairs(&[("a", "c")]), &[])
        .is_err());
    let bad = [
        ChunkMeta {
            min_time: 5,
            max_time: 9,
            chunk_ref: 8,
        },
        ChunkMeta {
            min_time: 9,
            max_time: 12,
            chunk_ref: 20,
        },
    ];
    assert!(w
        .add_series(&Labels::from_pairs(&[("b", "b")]), &bad)
        .is_err());
}
