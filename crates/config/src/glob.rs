//! File globbing with Go's `filepath.Glob` semantics (`*`, `?`, `[...]`,
//! `[^...]`, `\` escapes; `*` does not cross `/`), used for `rule_files`.

use std::path::{Path, PathBuf};

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Paths matching `pattern`, sorted within each directory. A pattern without
/// metacharacters yields itself if it exists. I/O errors yield no matches.
pub fn glob(pattern: &str) -> Vec<PathBuf> {
    if !has_meta(pattern) {
        return if std::fs::symlink_metadata(pattern).is_ok() {
            vec![PathBuf::from(pattern)]
        } else {
            Vec::new()
        };
    }
    let path = Path::new(pattern);
    let (dir, file) = match (path.parent(), path.file_name()) {
        (Some(d), Some(f)) => (d.to_path_buf(), f.to_string_lossy().into_owned()),
        _ => return Vec::new(),
    };
    let dir_str = dir.to_string_lossy().into_owned();
    let dirs: Vec<PathBuf> = if dir_str.is_empty() {
        vec![PathBuf::from(".")]
    } else if has_meta(&dir_str) {
        glob(&dir_str)
    } else {
        vec![dir.clone()]
    };
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if glob_match(&file, &n) {
                out.push(if dir_str.is_empty() {
                    PathBuf::from(&n)
                } else {
                    d.join(&n)
                });
            }
        }
    }
    out
}

/// Go's `filepath.Match`; a malformed pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n).unwrap_or(false)
}

fn matches(p: &[char], n: &[char]) -> Option<bool> {
    let Some(&c) = p.first() else {
        return Some(n.is_empty());
    };
    match c {
        '*' => {
            // Try every split that does not cross a separator.
            for i in 0..=n.len() {
                if i > 0 && n[i - 1] == '/' {
                    break;
                }
                if matches(&p[1..], &n[i..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        '?' => match n.first() {
            Some(&x) if x != '/' => matches(&p[1..], &n[1..]),
            _ => Some(false),
        },
        '[' => {
            let (ok, used) = class(&p[1..], n.first().copied())?;
            if ok {
                matches(&p[1 + used..], &n[1..])
            } else {
                Some(false)
            }
        }
        '\\' => {
            let &lit = p.get(1)?;
            match n.first() {
                Some(&x) if x == lit => matches(&p[2..], &n[1..]),
                _ => Some(false),
            }
        }
        _ => match n.first() {
            Some(&x) if x == c => matches(&p[1..], &n[1..]),
            _ => Some(false),
        },
    }
}

/// Matches a class body (after `[`) against `ch`; returns (matched, chars
/// consumed including `]`). `None` for a malformed class.
fn class(p: &[char], ch: Option<char>) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = p.first() == Some(&'^');
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &c = p.get(i)?;
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, next) = class_char(p, i)?;
        i = next;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            let (hi, next) = class_char(p, i + 1)?;
            i = next;
            hi
        } else {
            lo
        };
        if let Some(x) = ch {
            if lo <= x && x <= hi {
                found = true;
            }
        }
    }
    let ok = match ch {
        Some(x) if x != '/' => found != negate,
        _ => false,
    };
    Some((ok, i))
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '\\' => p.get(i + 1).map(|&c| (c, i + 2)),
        '-' | ']' if i > 0 && p.get(i - 1) != Some(&'[') => None,
        &c => Some((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_semantics() {
        for (p, n, want) in [
            ("*.yml", "a.yml", true),
            ("*.yml", "a.yaml", false),
            ("*", "a/b", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("\\*", "*", true),
            ("rules_[0-9][0-9].yml", "rules_07.yml", true),
            ("[", "[", false),
            ("", "", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn globbing_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.rules.yml", "a.rules.yml", "c.txt"] {
            std::fs::write(dir.path().join(f), "groups: []\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.yml"), "").unwrap();
        let pat = format!("{}/*.yml", dir.path().display());
        let got: Vec<String> = glob(&pat)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, vec!["a.rules.yml", "b.rules.yml"]);
        let nested = format!("{}/s*/*.yml", dir.path().display());
        assert_eq!(glob(&nested).len(), 1);
        let plain = format!("{}/c.txt", dir.path().display());
        assert_eq!(glob(&plain).len(), 1);
        assert!(glob(&format!("{}/missing.yml", dir.path().display())).is_empty());
    }
}
