//! A small process-wide cache of compiled regex matchers.
//!
//! Compiling a regex costs tens of microseconds, far more than parsing the
//! rest of a query; dashboards send the same selectors again and again.
//! Entries are keyed by operator and pattern (the label name is swapped in
//! on a hit) and the cache is simply emptied when full.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use vigil_model::{MatchOp, Matcher, MatcherError};

const MAX_ENTRIES: usize = 512;
const MAX_PATTERN_LEN: usize = 4096;

#[derive(Default)]
struct Cache {
    regex: HashMap<String, Matcher>,
    not_regex: HashMap<String, Matcher>,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

/// `Matcher::new`, reusing a previously compiled regex for the same pattern.
pub(crate) fn matcher(op: MatchOp, name: &str, value: &str) -> Result<Matcher, MatcherError> {
    let is_regex = matches!(op, MatchOp::Regex | MatchOp::NotRegex);
    if !is_regex || value.len() > MAX_PATTERN_LEN {
        return Matcher::new(op, name, value);
    }
    let lookup = |c: &Cache| {
        let map = if op == MatchOp::Regex {
            &c.regex
        } else {
            &c.not_regex
        };
        map.get(value).cloned()
    };
    // A poisoned lock only means another thread panicked mid-insert; the
    // map itself is still usable.
    let hit = lookup(&CACHE.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(mut m) = hit {
        m.name = name.to_string();
        return Ok(m);
    }
    let m = Matcher::new(op, name, value)?;
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if c.regex.len() + c.not_regex.len() >= MAX_ENTRIES {
        c.regex.clear();
        c.not_regex.clear();
    }
    let map = if op == MatchOp::Regex {
        &mut c.regex
    } else {
        &mut c.not_regex
    };
    map.insert(value.to_string(), m.clone());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_matchers_behave_like_fresh_ones() {
        let a = matcher(MatchOp::Regex, "job", "api|db").expect("valid");
        let b = matcher(MatchOp::Regex, "zone", "api|db").expect("valid");
        assert_eq!((a.name.as_str(), b.name.as_str()), ("job", "zone"));
        assert!(b.matches("db") && !b.matches("dbx"));
        let n = matcher(MatchOp::NotRegex, "job", "api|db").expect("valid");
        assert!(!n.matches("api") && n.matches("x"));
        assert!(matcher(MatchOp::Regex, "job", "(").is_err());
        assert!(matcher(MatchOp::Regex, "job", "(").is_err());
    }
}
