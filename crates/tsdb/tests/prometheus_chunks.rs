//! Interop: XOR chunks written by the real `promtool` (Prometheus 2.x) decode
//! to the samples it was given, and re-encoding them with Vigil's appender
//! gives the very same bytes. Skips (with a message) when `promtool` is absent.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use vigil_tsdb::chunkenc::{ChunkIter, XorChunk};

/// Parses a block chunk segment file into (encoding, data) pairs, checking
/// the header and every CRC.
fn read_segment(path: &Path) -> Vec<(u8, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], &0x85BD_40DDu32.to_be_bytes(), "magic of {path:?}");
    assert_eq!(b[4], 1, "version");
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < b.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let x = b[pos];
            pos += 1;
            len |= ((x & 0x7f) as usize) << shift;
            shift += 7;
            if x < 0x80 {
                break;
            }
        }
        let enc = b[pos];
        let data = b[pos + 1..pos + 1 + len].to_vec();
        let crc = u32::from_be_bytes(b[pos + 1 + len..pos + 5 + len].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&b[pos..pos + 1 + len]), "crc at {pos}");
        pos += 5 + len;
        out.push((enc, data));
    }
    out
}

fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Go's ParseFloat reads Rust's shortest round-trip form exactly.
        format!("{v:?}")
    }
}

#[test]
fn promtool_chunks_decode_and_reencode_identically() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("skipping: promtool not installed (apt-get install prometheus)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A few series with counters, gauges with fractional values, special
    // floats and irregular millisecond timestamps.
    let start: i64 = 1_700_000_000_000;
    let mut input = String::new();
    let mut want: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let mut seed: u64 = 0x1234_5678;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    input.push_str("# TYPE vigil_test gauge\n");
    for s in 0..4 {
        let mut t = start;
        let mut counter = 0.0f64;
        for i in 0..700 {
            t += match rnd() % 10 {
                0 => 1 + (rnd() % 100_000) as i64,
                1 => 15_000 + (rnd() % 7) as i64 - 3,
                _ => 15_000,
            };
            let v = match s {
                0 => {
                    counter += (rnd() % 1000) as f64;
                    counter
                }
                1 => (rnd() % 1_000_000) as f64 / 1000.0,
                2 => match i % 50 {
                    7 => f64::NAN,
                    8 => f64::INFINITY,
                    9 => f64::NEG_INFINITY,
                    _ => f64::from_bits(rnd() >> 2) * if rnd() % 2 == 0 { 1.0 } else { -1.0 },
                },
                _ => 42.0,
            };
            input.push_str(&format!(
                "vigil_test{{series=\"{s}\"}} {} {}.{:03}\n",
                value_text(v),
                t / 1000,
                t % 1000
            ));
            // Prometheus parses NaN as its own canonical NaN bits.
            let bits = if v.is_nan() {
                0x7ff8_0000_0000_0001
            } else {
                v.to_bits()
            };
            want.entry(s.to_string()).or_default().push((t, bits));
        }
    }
    input.push_str("# EOF\n");
    // OpenMetrics wants samples of one series grouped, which they are.
    let in_path = dir.path().join("input.om");
    std::fs::write(&in_path, &input).unwrap();
    let out_dir = dir.path().join("blocks");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&in_path)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut decoded_total = 0usize;
    let mut all: Vec<(i64, u64)> = Vec::new();
    let mut chunks_seen = 0;
    for block in std::fs::read_dir(&out_dir).unwrap() {
        let block = block.unwrap().path();
        for seg in std::fs::read_dir(block.join("chunks")).unwrap() {
            for (enc, data) in read_segment(&seg.unwrap().path()) {
                assert_eq!(enc, 1, "XOR encoding");
                let mut it = ChunkIter::from_raw(enc, &data).unwrap();
                let mut re = XorChunk::new();
                while let Some(s) = it.next().unwrap() {
                    re.append(s.t, s.v).unwrap();
                    all.push((s.t, s.v.to_bits()));
                    decoded_total += 1;
                }
                assert_eq!(
                    re.bytes(),
                    &data[..],
                    "re-encoded chunk differs from Prometheus's"
                );
                chunks_seen += 1;
            }
        }
    }
    assert!(chunks_seen > 10, "expected many chunks, got {chunks_seen}");
    let mut want_all: Vec<(i64, u64)> = want.values().flatten().copied().collect();
    assert_eq!(decoded_total, want_all.len());
    want_all.sort_unstable();
    all.sort_unstable();
    // NaN payloads: compare NaN-ness only, since Go's parser picks the bits.
    let norm = |v: &Vec<(i64, u64)>| -> Vec<(i64, u64)> {
        v.iter()
            .map(|&(t, b)| {
                if f64::from_bits(b).is_nan() {
                    (t, 0x7ff8_0000_0000_0001)
                } else {
                    (t, b)
                }
            })
            .collect()
    };
    assert_eq!(norm(&all), norm(&want_all));
}
