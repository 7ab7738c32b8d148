//! `vigil test rules` against the fixtures: `pass_*` must pass and `fail_*`
//! must fail, and, where the real `promtool` is installed, promtool must
//! agree file by file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unittest");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("pass_") || n.starts_with("fail_")
        })
        .collect();
    v.sort();
    v
}

fn ours_split(p: &Path) -> (bool, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = vigil_rules::unittest::test_rules(&[p.to_path_buf()], &mut out, &mut err);
    (
        code == 0,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn ours(p: &Path) -> (bool, String) {
    let (ok, out, err) = ours_split(p);
    (ok, format!("{out}{err}"))
}

#[test]
fn fixtures_pass_and_fail_as_named() {
    let files = fixtures();
    assert!(files.len() >= 8);
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let (ok, output) = ours(&f);
        assert_eq!(ok, name.starts_with("pass_"), "{name}:\n{output}");
    }
}

#[test]
fn agrees_with_promtool() {
    let promtool = Command::new("promtool").arg("--version").output();
    if promtool.is_err() {
        println!("skipping: promtool not installed");
        return;
    }
    for f in fixtures() {
        let real = Command::new("promtool")
            .args(["test", "rules"])
            .arg(&f)
            .output()
            .expect("run promtool");
        let (ok, output) = ours(&f);
        assert_eq!(
            ok,
            real.status.success(),
            "{}: vigil {} but promtool {}\nvigil:\n{output}\npromtool:\n{}{}",
            f.display(),
            if ok { "passed" } else { "failed" },
            if real.status.success() {
                "passed"
            } else {
                "failed"
            },
            String::from_utf8_lossy(&real.stdout),
            String::from_utf8_lossy(&real.stderr)
        );
        // Where promtool reports a difference, ours must read the same.
        let real_err = String::from_utf8_lossy(&real.stderr);
        if real_err.contains("exp:")
            || real_err.contains("err: ")
            || real_err.contains("unmarshal errors")
        {
            let (_, _, err) = ours_split(&f);
            assert_eq!(err, real_err, "{}", f.display());
        }
    }
}

#[test]
#[ignore]
fn print_outputs() {
    let mut fs = fixtures();
    if let Ok(p) = std::env::var("FIXTURE") {
        fs = vec![PathBuf::from(p)];
    }
    for f in fs {
        println!("{}", ours(&f).1);
    }
}

/// Fields newer than the promtool installed here (Prometheus 2.53's
/// `fuzzy_compare`): checked by name only.
#[test]
fn newer_format_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unittest_253");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let (ok, output) = ours(&f);
        assert_eq!(ok, name.starts_with("pass_"), "{name}:\n{output}");
    }
}
