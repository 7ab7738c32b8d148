//! serde over the YAML node tree, with Go-YAML (yaml.v2) semantics where a
//! Prometheus user relies on them, and a line on every error.
//!
//! An error without a line takes the line of the innermost node that sees it.
//! Two private conventions with the config types: a struct field renamed
//! [`INLINE`] receives the keys its parent does not know (Go's `yaml:",inline"`),
//! and [`field_error`] names the key whose line an error should point at.

use crate::yaml::{Kind, Node};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::fmt;

/// Field name that marks an inlined struct (Go's `yaml:",inline"`).
pub(crate) const INLINE: &str = "$vigil_inline";

/// Marks the start and end of a key name hint inside an error message.
const HINT: char = '\u{1}';

/// A deserialisation error with the line it belongs to (once known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub line: Option<usize>,
    pub message: String,
    /// Set for "unknown field" errors so the message can name the section.
    unknown_field: Option<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            line: None,
            message: msg.to_string(),
            unknown_field: None,
        }
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Error {
            line: None,
            message: format!("field {field} not found"),
            unknown_field: Some(field.to_string()),
        }
    }
}

/// An error that should point at key `field` of the enclosing mapping.
pub(crate) fn field_error<E: de::Error>(field: &str, msg: impl fmt::Display) -> E {
    E::custom(format!("{HINT}{field}{HINT}{msg}"))
}

impl Error {
    /// Gives the error `node`'s line unless it already has one; resolves a
    /// key hint against `node` when it is a mapping.
    fn at(mut self, node: &Node) -> Self {
        if let Some(rest) = self.message.strip_prefix(HINT) {
            if let Some((field, msg)) = rest.split_once(HINT) {
                let line = node.get(field).map(|(k, _)| k.line);
                let msg = msg.to_string();
                if self.line.is_none() {
                    self.line = line.or(Some(node.line));
                }
                self.message = msg;
                return self;
            }
        }
        if self.line.is_none() {
            self.line = Some(node.line);
        }
        self
    }

    fn type_error(node: &Node, want: &str) -> Self {
        let got = match node.scalar() {
            Some(s) if !node.is_null() => format!("!!str `{}`", truncate(s)),
            _ => node.type_name().to_string(),
        };
        Error {
            line: Some(node.line),
            message: format!("cannot unmarshal {got} into {want}"),
            unknown_field: None,
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        let head: String = s.chars().take(37).collect();
        format!("{head}...")
    } else {
        s.to_string()
    }
}

/// Which keys of a mapping a struct sees.
#[derive(Clone, Copy)]
enum Filter {
    All,
    /// Keys not in this list belong to the inlined struct.
    Only(&'static [&'static str]),
    /// The inlined struct: keys of its parent are skipped.
    Except(&'static [&'static str]),
}

impl Filter {
    fn admits(&self, key: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Only(f) => f.contains(&key),
            Filter::Except(f) => !f.contains(&key),
        }
    }
}

/// Deserialises a value from a node.
pub(crate) struct De<'a> {
    node: &'a Node,
    filter: Filter,
    /// Name of the struct an inlined struct belongs to (for messages).
    parent: Option<&'static str>,
}

impl<'a> De<'a> {
    pub fn new(node: &'a Node) -> Self {
        De {
            node,
            filter: Filter::All,
            parent: None,
        }
    }

    fn scalar_text(&self, want: &str) -> Result<&'a str, Error> {
        match &self.node.kind {
            Kind::Scalar { text, .. } => Ok(text),
            _ => Err(Error::type_error(self.node, want)),
        }
    }

    fn is_plain(&self) -> bool {
        matches!(
            &self.node.kind,
            Kind::Scalar {
                plain: true,
                tag: None,
                ..
            }
        )
    }
}

/// Go YAML 1.1 booleans.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// Integers as YAML 1.1 writes them: sign, `_` separators, `0x`, `0o`, `0b`.
fn parse_int(s: &str) -> Option<i128> {
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    if body.is_empty() {
        return None;
    }
    let v = if let Some(h) = body.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if let Some(b) = body.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else if body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i128>().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => {
            if let Some(i) = parse_int(s) {
                return Some(i as f64);
            }
            let cleaned: String = s.chars().filter(|&c| c != '_').collect();
            let ok = !cleaned.is_empty()
                && cleaned
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if ok {
                cleaned.parse().ok()
            } else {
                None
            }
        }
    }
}

macro_rules! deserialize_int {
    ($method:ident, $visit:ident, $t:ty, $go:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let node = self.node;
            let text = self.scalar_text($go)?;
            let v = parse_int(text)
                .and_then(|i| <$t>::try_from(i).ok())
                .ok_or_else(|| Error::type_error(node, $go))?;
            visitor.$visit::<Error>(v).map_err(|e| e.at(node))
        }
    };
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let r = match &node.kind {
            Kind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
            }),
            Kind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
            Kind::Scalar { text, .. } => {
                if node.is_null() {
                    visitor.visit_unit::<Error>()
                } else if !self.is_plain() {
                    visitor.visit_str::<Error>(text)
                } else if let Some(b) = parse_bool(text) {
                    visitor.visit_bool::<Error>(b)
                } else if let Some(i) = parse_int(text) {
                    if let Ok(u) = u64::try_from(i) {
                        visitor.visit_u64::<Error>(u)
                    } else if let Ok(s) = i64::try_from(i) {
                        visitor.visit_i64::<Error>(s)
                    } else {
                        visitor.visit_str::<Error>(text)
                    }
                } else if let Some(f) = parse_float(text).filter(|_| text.contains(['.', 'e', 'E']))
                {
                    visitor.visit_f64::<Error>(f)
                } else {
                    visitor.visit_str::<Error>(text)
                }
            }
        };
        r.map_err(|e| e.at(node))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let text = self.scalar_text("bool")?;
        let b = parse_bool(text).ok_or_else(|| Error::type_error(node, "bool"))?;
        visitor.visit_bool::<Error>(b).map_err(|e| e.at(node))
    }

    deserialize_int!(deserialize_i8, visit_i8, i8, "int");
    deserialize_int!(deserialize_i16, visit_i16, i16, "int");
    deserialize_int!(deserialize_i32, visit_i32, i32, "int");
    deserialize_int!(deserialize_i64, visit_i64, i64, "int");
    deserialize_int!(deserialize_u8, visit_u8, u8, "uint");
    deserialize_int!(deserialize_u16, visit_u16, u16, "uint");
    deserialize_int!(deserialize_u32, visit_u32, u32, "uint");
    deserialize_int!(deserialize_u64, visit_u64, u64, "uint");

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let text = self.scalar_text("float64")?;
        let f = parse_float(text).ok_or_else(|| Error::type_error(node, "float64"))?;
        visitor.visit_f64::<Error>(f).map_err(|e| e.at(node))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        // Go decodes a null into a string as "" and any scalar as its text.
        let text = if node.is_null() {
            ""
        } else {
            self.scalar_text("string")?
        };
        visitor.visit_str::<Error>(text).map_err(|e| e.at(node))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        if node.is_null() {
            visitor.visit_none::<Error>().map_err(|e| e.at(node))
        } else {
            visitor.visit_some(self).map_err(|e| e.at(node))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        if node.is_null() {
            visitor.visit_unit::<Error>().map_err(|e| e.at(node))
        } else {
            Err(Error::type_error(node, "null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.node;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(node))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let r = match &node.kind {
            Kind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
            }),
            // Go leaves a nil slice for null.
            _ if node.is_null() => visitor.visit_seq(SeqAccess { items: [].iter() }),
            _ => return Err(Error::type_error(node, "a list")),
        };
        r.map_err(|e| e.at(node))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.node;
        let r = match &node.kind {
            Kind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
            _ if node.is_null() => visitor.visit_map(MapAccess {
                entries: [].iter(),
                value: None,
            }),
            _ => return Err(Error::type_error(node, "a map")),
        };
        r.map_err(|e| e.at(node))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.node;
        let entries: &[(Node, Node)] = match &node.kind {
            Kind::Map(entries) => entries,
            _ if node.is_null() => &[],
            _ => return Err(Error::type_error(node, "a map")),
        };
        let inline = matches!(self.filter, Filter::All) && fields.contains(&INLINE);
        let filter = if inline {
            Filter::Only(fields)
        } else {
            self.filter
        };
        let section = self.parent.unwrap_or(name);
        let access = StructAccess {
            node,
            entries: entries.iter(),
            filter,
            inline_pending: inline,
            inline_fields: fields,
            section,
            value: None,
        };
        visitor.visit_map(access).map_err(|e| e.at(node))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.node;
        let text = self.scalar_text("string")?;
        let d: de::value::StrDeserializer<'_, Error> = text.into_deserializer();
        visitor.visit_enum(d).map_err(|e| e.at(node))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit::<Error>()
    }
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => seed
                .deserialize(De::new(node))
                .map(Some)
                .map_err(|e| e.at(node)),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A mapping read as a map: every entry, nulls included.
struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(De::new(k)).map(Some).map_err(|e| e.at(k))
            }
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(De::new(v)).map_err(|e| e.at(v)),
            None => Err(de::Error::custom("value requested before key")),
        }
    }
}

/// A mapping read as a struct: null values are skipped (Go keeps the
/// default), and with an inlined field the unclaimed keys go to it last.
struct StructAccess<'a> {
    node: &'a Node,
    entries: std::slice::Iter<'a, (Node, Node)>,
    filter: Filter,
    inline_pending: bool,
    inline_fields: &'static [&'static str],
    section: &'static str,
    value: Option<De<'a>>,
}

impl<'de> de::MapAccess<'de> for StructAccess<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (k, v) in self.entries.by_ref() {
            if v.is_null() {
                continue;
            }
            let name = k.scalar().unwrap_or_default();
            if !self.filter.admits(name) {
                continue;
            }
            self.value = Some(De::new(v));
            let section = self.section;
            return seed.deserialize(De::new(k)).map(Some).map_err(|mut e| {
                if let Some(f) = e.unknown_field.take() {
                    e.message = format!("field {f} not found in type {section}");
                }
                e.at(k)
            });
        }
        if self.inline_pending {
            self.inline_pending = false;
            self.value = Some(De {
                node: self.node,
                filter: Filter::Except(self.inline_fields),
                parent: Some(self.section),
            });
            let key: de::value::StrDeserializer<'_, Error> = INLINE.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(d) => {
                let node = d.node;
                seed.deserialize(d).map_err(|e| e.at(node))
            }
            None => Err(de::Error::custom("value requested before key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        a: String,
        b: u64,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Outer {
        name: String,
        flag: bool,
        list: Vec<Inner>,
        #[serde(rename = "$vigil_inline")]
        inner: Inner,
    }

    impl Default for Outer {
        fn default() -> Self {
            Outer {
                name: "dflt".into(),
                flag: true,
                list: vec![],
                inner: Inner::default(),
            }
        }
    }

    fn load(text: &str) -> Result<Outer, Error> {
        let node = parse(text).map_err(|e| Error {
            line: Some(e.line),
            message: e.message,
            unknown_field: None,
        })?;
        Outer::deserialize(De::new(&node))
    }

    #[test]
    fn inline_fields_and_defaults() {
        let o = load("name: x\na: inl\nb: 0x10\nlist:\n  - a: 1\n").unwrap();
        assert_eq!(o.name, "x");
        assert!(o.flag, "default kept");
        assert_eq!(
            o.inner,
            Inner {
                a: "inl".into(),
                b: 16
            }
        );
        assert_eq!(
            o.list,
            vec![Inner {
                a: "1".into(),
                b: 0
            }]
        );
    }

    #[test]
    fn null_keeps_default() {
        let o = load("name:\nflag: ~\n").unwrap();
        assert_eq!(o.name, "dflt");
        assert!(o.flag);
    }

    #[test]
    fn errors_carry_lines() {
        let e = load("name: x\n\nbogus: 1\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(3), "field bogus not found in type Outer")
        );
        let e = load("name: x\nlist:\n  - a: 1\n    c: 2\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(4), "field c not found in type Inner")
        );
        let e = load("flag: maybe\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(1), "cannot unmarshal !!str `maybe` into bool")
        );
        let e = load("name: x\nb: -1\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = load("name: [1]\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(1), "cannot unmarshal !!seq into string")
        );
    }

    #[test]
    fn yaml11_scalars() {
        assert_eq!(parse_bool("on"), Some(true));
        assert_eq!(parse_bool("No"), Some(false));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("-0x1f"), Some(-31));
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_float("1.5e3"), Some(1500.0));
        assert!(parse_float(".nan").is_some_and(f64::is_nan));
    }
}
