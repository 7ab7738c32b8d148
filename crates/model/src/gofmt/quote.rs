//! Go's `strconv.Quote` (what `%q` prints): printable runes as they are,
//! `\a \b \f \n \r \t \v`, other ASCII controls as `\xNN`, other
//! non-printable runes as `\uNNNN` or `\UNNNNNNNN`, bytes that are not UTF-8
//! as `\xNN`.

use std::fmt::{self, Write};
use std::sync::LazyLock;

/// Go's `strconv.IsPrint` (= `unicode.IsPrint`): letters, marks, numbers,
/// punctuation, symbols and the ASCII space; not other spaces, controls,
/// format characters or unassigned code points.
pub fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let t = &*PRINTABLE;
    if t.is_empty() {
        return !c.is_control() && !c.is_whitespace();
    }
    let i = t.partition_point(|&(_, end)| end < c);
    i < t.len() && t[i].0 <= c
}

/// The code point ranges of `[\p{L}\p{M}\p{N}\p{P}\p{S}]`, sorted, built
/// once: a lookup is a binary search that never allocates (a regex's lazy
/// DFA would grow its cache with every new character it meets, and error
/// messages quote arbitrary input).
static PRINTABLE: LazyLock<Vec<(char, char)>> = LazyLock::new(|| {
    use regex_syntax::hir::{Class, HirKind};
    match regex_syntax::Parser::new()
        .parse(r"[\p{L}\p{M}\p{N}\p{P}\p{S}]")
        .map(|h| h.kind().clone())
    {
        Ok(HirKind::Class(Class::Unicode(c))) => {
            c.ranges().iter().map(|r| (r.start(), r.end())).collect()
        }
        _ => Vec::new(),
    }
});

/// `strconv.Quote(s)`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let _ = write_quoted(&mut out, s);
    out
}

/// `strconv.Quote` of a byte string that may not be UTF-8: each byte of an
/// invalid sequence becomes `\xNN`, as Go does.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        let _ = write_escaped(&mut out, chunk.valid());
        for &x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    out.push('"');
    out
}

/// Writes `strconv.Quote(s)` to `w` without an intermediate `String`.
pub fn write_quoted(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    write_escaped(w, s)?;
    w.write_char('"')
}

fn write_escaped(w: &mut impl Write, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c != '"' && c != '\\' && is_print(c) {
            continue;
        }
        w.write_str(&s[start..i])?;
        start = i + c.len_utf8();
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\u{07}' => w.write_str("\\a")?,
            '\u{08}' => w.write_str("\\b")?,
            '\u{0c}' => w.write_str("\\f")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            '\u{0b}' => w.write_str("\\v")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(w, "\\x{:02x}", c as u32)?,
            c if (c as u32) < 0x10000 => write!(w, "\\u{:04x}", c as u32)?,
            c => write!(w, "\\U{:08x}", c as u32)?,
        }
    }
    w.write_str(&s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn is_print_is_the_unicode_class() {
        let re = regex::Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").unwrap();
        assert!(!PRINTABLE.is_empty());
        for c in (0x80u32..=0x10FFFF).step_by(7).filter_map(char::from_u32) {
            let want = re.is_match(c.encode_utf8(&mut [0; 4]));
            assert_eq!(is_print(c), want, "{:?} U+{:04X}", c, c as u32);
        }
        for c in ['\u{a0}', '\u{2028}', '\u{200b}', '\u{e000}', '\u{10ffff}'] {
            assert!(!is_print(c), "U+{:04X}", c as u32);
        }
        for c in ['\u{e9}', 'ʌ', '吂', '\u{1f600}', '\u{301}'] {
            assert!(is_print(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn escapes_like_strconv_quote() {
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\n\t\u{7}\u{8}\u{c}\r\u{b}"), r#""\n\t\a\b\f\r\v""#);
        assert_eq!(quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(quote("☺ é 日本"), "\"☺ é 日本\"");
        // No-break space and soft hyphen are not printable in Go.
        assert_eq!(quote("\u{a0}\u{ad}"), r#""\u00a0\u00ad""#);
        assert_eq!(quote("\u{2028}\u{feff}"), r#""\u2028\ufeff""#);
        assert_eq!(quote("\u{e0001}"), r#""\U000e0001""#);
        assert_eq!(quote("\u{1f600}"), "\"\u{1f600}\"");
    }

    #[test]
    fn invalid_bytes_become_hex() {
        assert_eq!(quote_bytes(b"a\xffb"), r#""a\xffb""#);
        assert_eq!(quote_bytes(b"\xe2\x82x"), r#""\xe2\x82x""#);
        assert_eq!(quote_bytes("é\n".as_bytes()), r#""é\n""#);
    }

    /// Reads a quoted string back (the inverse of Go's escapes).
    fn unquote(q: &str) -> Option<String> {
        let inner = q.strip_prefix('"')?.strip_suffix('"')?;
        let mut out = String::new();
        let mut it = inner.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let hex = |it: &mut std::str::Chars<'_>, n: usize| -> Option<char> {
                let s: String = it.by_ref().take(n).collect();
                char::from_u32(u32::from_str_radix(&s, 16).ok()?)
            };
            out.push(match it.next()? {
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'v' => '\u{b}',
                '"' => '"',
                '\\' => '\\',
                'x' => hex(&mut it, 2)?,
                'u' => hex(&mut it, 4)?,
                'U' => hex(&mut it, 8)?,
                _ => return None,
            });
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn quote_round_trips_and_is_printable(s in any::<String>()) {
            let q = quote(&s);
            prop_assert_eq!(unquote(&q), Some(s.clone()));
            prop_assert!(q.chars().all(is_print));
            prop_assert_eq!(quote_bytes(s.as_bytes()), q);
        }
    }
}
