//! A YAML document as a tree of nodes that remember their line.
//!
//! Built from yaml-rust2's event parser (serde_yaml_ng exposes no positions
//! and no merge keys). Aliases are expanded, merge keys (`<<`) applied with
//! YAML's rule (explicit keys win, earlier merge sources win), and duplicate
//! keys rejected, so the serde layer above sees a plain tree.

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

/// Upper bound on nodes after alias expansion ("billion laughs" guard).
const MAX_NODES: usize = 1_000_000;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// A scalar with its text; `plain` is false for quoted and block scalars.
    Scalar {
        text: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    /// 1-based line of the node's first character.
    pub line: usize,
}

impl Node {
    pub fn null(line: usize) -> Node {
        Node {
            kind: Kind::Scalar {
                text: String::new(),
                plain: true,
                tag: None,
            },
            line,
        }
    }

    /// YAML's null: `~`, `null`, an empty plain scalar, or `!!null`.
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar { text, plain, tag } => {
                tag.as_deref() == Some("null")
                    || (*plain
                        && tag.is_none()
                        && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
            }
            _ => false,
        }
    }

    /// The scalar's text, if this is a scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Go-YAML style name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
            Kind::Scalar { .. } if self.is_null() => "!!null",
            Kind::Scalar { .. } => "!!str",
        }
    }

    /// Entry whose key is the scalar `key`.
    pub fn get(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// Line of the node at `path`: the key's line for a final key segment,
    /// else the node's. Stops at the deepest part of the path that exists.
    pub fn line_of(&self, path: &[Seg<'_>]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for seg in path {
            match seg {
                Seg::Key(k) => match node.get(k) {
                    Some((key, value)) => {
                        line = key.line;
                        node = value;
                    }
                    None => return line,
                },
                Seg::Index(i) => match &node.kind {
                    Kind::Seq(items) if *i < items.len() => {
                        node = &items[*i];
                        line = node.line;
                    }
                    _ => return line,
                },
            }
        }
        line
    }
}

/// One step of a path into the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// A syntax error with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        line: usize,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        line: usize,
        anchor: usize,
    },
}

/// Parses the first document of `text` (an empty text is a null document).
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    let mut root: Option<Node> = None;
    let mut count = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
        let line = mark.line();
        let complete: Option<(Node, usize)> = match event {
            Event::StreamEnd => break,
            Event::DocumentEnd => {
                // Only the first document counts, as in Go's yaml.Unmarshal.
                if root.is_some() {
                    break;
                }
                None
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart => None,
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    line,
                    message: "unknown anchor".to_string(),
                })?;
                count += node_count(&node);
                Some((node, 0))
            }
            Event::Scalar(text, style, anchor, tag) => Some((
                Node {
                    kind: Kind::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                        tag: tag.map(tag_name),
                    },
                    line,
                },
                anchor,
            )),
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    line,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending_key: None,
                    line,
                    anchor,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    line,
                    anchor,
                }) => Some((
                    Node {
                        kind: Kind::Seq(items),
                        line,
                    },
                    anchor,
                )),
                _ => return Err(internal(line)),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    entries,
                    line,
                    anchor,
                    ..
                }) => Some((
                    Node {
                        kind: Kind::Map(apply_merges(entries)?),
                        line,
                    },
                    anchor,
                )),
                _ => return Err(internal(line)),
            },
        };
        let Some((node, anchor)) = complete else {
            continue;
        };
        count += 1;
        if count > MAX_NODES {
            return Err(SyntaxError {
                line,
                message: "document too large after expanding aliases".to_string(),
            });
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    if !matches!(node.kind, Kind::Scalar { .. }) {
                        return Err(SyntaxError {
                            line: node.line,
                            message: "mapping keys must be scalars".to_string(),
                        });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if !is_merge_key(&key) {
                        if let Some((prev, _)) =
                            entries.iter().find(|(k, _)| k.scalar() == key.scalar())
                        {
                            return Err(SyntaxError {
                                line: key.line,
                                message: format!(
                                    "mapping key {:?} already defined at line {}",
                                    key.scalar().unwrap_or_default(),
                                    prev.line
                                ),
                            });
                        }
                    }
                    entries.push((key, node));
                }
            },
        }
    }
    Ok(root.unwrap_or_else(|| Node::null(1)))
}

fn internal(line: usize) -> SyntaxError {
    SyntaxError {
        line,
        message: "unbalanced YAML events".to_string(),
    }
}

fn tag_name(t: Tag) -> String {
    // `!!str` arrives as handle "tag:yaml.org,2002:" + suffix "str".
    if t.handle == "!!" || t.handle.starts_with("tag:yaml.org,2002:") {
        t.suffix
    } else {
        format!("{}{}", t.handle, t.suffix)
    }
}

fn node_count(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
    }
}

fn is_merge_key(k: &Node) -> bool {
    matches!(&k.kind, Kind::Scalar { text, plain: true, .. } if text == "<<")
}

/// Replaces `<<` entries by the entries they merge in.
fn apply_merges(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, SyntaxError> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return Ok(entries);
    }
    let mut explicit = Vec::with_capacity(entries.len());
    let mut sources: Vec<Node> = Vec::new();
    for (k, v) in entries {
        if is_merge_key(&k) {
            match v.kind {
                Kind::Map(_) => sources.push(v),
                Kind::Seq(items) => {
                    for item in items {
                        if !matches!(item.kind, Kind::Map(_)) {
                            return Err(merge_error(item.line));
                        }
                        sources.push(item);
                    }
                }
                _ => return Err(merge_error(v.line)),
            }
        } else {
            explicit.push((k, v));
        }
    }
    for src in sources {
        if let Kind::Map(src_entries) = src.kind {
            for (k, v) in src_entries {
                if !explicit.iter().any(|(e, _)| e.scalar() == k.scalar()) {
                    explicit.push((k, v));
                }
            }
        }
    }
    Ok(explicit)
}

fn merge_error(line: usize) -> SyntaxError {
    SyntaxError {
        line,
        message: "map merge requires map or sequence of maps as the value".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_keys(n: &Node) -> Vec<(&str, usize)> {
        match &n.kind {
            Kind::Map(e) => e
                .iter()
                .map(|(k, _)| (k.scalar().unwrap_or_default(), k.line))
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn lines_and_paths() {
        let doc = "a: 1\nb:\n  - x: 2\n    y: 3\n  - [4, 5]\n";
        let n = parse(doc).unwrap();
        assert_eq!(map_keys(&n), vec![("a", 1), ("b", 2)]);
        assert_eq!(n.line_of(&[Seg::Key("b"), Seg::Index(0), Seg::Key("y")]), 4);
        assert_eq!(n.line_of(&[Seg::Key("b"), Seg::Index(1)]), 5);
        // Missing parts fall back to the deepest existing node.
        assert_eq!(
            n.line_of(&[Seg::Key("b"), Seg::Index(0), Seg::Key("zz")]),
            3
        );
        assert_eq!(n.line_of(&[Seg::Key("nope")]), 1);
    }

    #[test]
    fn nulls_and_empty_document() {
        assert!(parse("").unwrap().is_null());
        assert!(parse("# only a comment\n").unwrap().is_null());
        let n = parse("a:\nb: ~\nc: ''\n").unwrap();
        assert!(n.get("a").unwrap().1.is_null());
        assert!(n.get("b").unwrap().1.is_null());
        assert!(!n.get("c").unwrap().1.is_null());
    }

    #[test]
    fn anchors_and_merge_keys() {
        let doc = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n";
        let n = parse(doc).unwrap();
        let other = n.get("other").unwrap().1;
        assert_eq!(other.get("x").unwrap().1.scalar(), Some("1"));
        assert_eq!(other.get("y").unwrap().1.scalar(), Some("3"));
        let seq = "a: &a {k: 1}\nb: &b {k: 2, j: 2}\nc:\n  <<: [*a, *b]\n";
        let c = parse(seq).unwrap();
        let c = c.get("c").unwrap().1;
        assert_eq!(c.get("k").unwrap().1.scalar(), Some("1"));
        assert_eq!(c.get("j").unwrap().1.scalar(), Some("2"));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("already defined at line 1"),
            "{}",
            e.message
        );
    }

    #[test]
    fn syntax_errors_have_lines() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&doc).is_err());
    }
}
