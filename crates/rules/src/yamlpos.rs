//! Where each node of a YAML document starts, for error messages.
//!
//! serde_yaml_ng gives typed values but no positions; this walks
//! yaml-rust2's event stream once and keeps only (line, column) of every
//! mapping key, value and sequence item, addressed by path.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PNode {
    Scalar(Pos, String),
    Seq(Pos, Vec<PNode>),
    /// Entries: key text, key position, value.
    Map(Pos, Vec<(String, Pos, PNode)>),
}

impl PNode {
    pub fn pos(&self) -> Pos {
        match self {
            PNode::Scalar(p, _) | PNode::Seq(p, _) | PNode::Map(p, _) => *p,
        }
    }

    /// Value of key `k` in a mapping.
    pub fn get(&self, k: &str) -> Option<&PNode> {
        match self {
            PNode::Map(_, es) => es.iter().find(|(n, _, _)| n == k).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// Position of key `k` in a mapping.
    #[allow(dead_code)] // used by tests and kept for key-level errors
    pub fn key_pos(&self, k: &str) -> Option<Pos> {
        match self {
            PNode::Map(_, es) => es.iter().find(|(n, _, _)| n == k).map(|(_, p, _)| *p),
            _ => None,
        }
    }

    pub fn item(&self, i: usize) -> Option<&PNode> {
        match self {
            PNode::Seq(_, items) => items.get(i),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(String, Pos, PNode)] {
        match self {
            PNode::Map(_, es) => es,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[PNode] {
        match self {
            PNode::Seq(_, items) => items,
            _ => &[],
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, PNode::Scalar(_, s) if s.is_empty() || s == "~" || s == "null")
    }
}

enum Frame {
    Seq(Pos, Vec<PNode>),
    /// Entries so far and a pending key.
    Map(Pos, Vec<(String, Pos, PNode)>, Option<(String, Pos)>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<PNode>,
}

impl Builder {
    fn push_node(&mut self, n: PNode) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(n);
                }
            }
            Some(Frame::Seq(_, items)) => items.push(n),
            Some(Frame::Map(_, es, pending)) => match pending.take() {
                None => {
                    let key = match &n {
                        PNode::Scalar(_, s) => s.clone(),
                        _ => String::new(),
                    };
                    *pending = Some((key, n.pos()));
                }
                Some((k, kp)) => es.push((k, kp, n)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos {
            line: mark.line(),
            col: mark.col() + 1,
        };
        match ev {
            Event::Scalar(s, _, _, _) => self.push_node(PNode::Scalar(pos, s)),
            Event::Alias(_) => self.push_node(PNode::Scalar(pos, String::new())),
            Event::SequenceStart(_, _) => self.stack.push(Frame::Seq(pos, Vec::new())),
            Event::MappingStart(_, _) => self.stack.push(Frame::Map(pos, Vec::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let n = match self.stack.pop() {
                    Some(Frame::Seq(p, items)) => PNode::Seq(p, items),
                    // Block mappings start at their first key (the
                    // parser's mark is at the first `:`).
                    Some(Frame::Map(p, es, _)) => {
                        let p = es.first().map(|e| e.1).unwrap_or(p);
                        PNode::Map(p, es)
                    }
                    None => return,
                };
                self.push_node(n);
            }
            _ => {}
        }
    }
}

/// Positions of the first document in `text`; `Err` carries the syntax
/// error's message and position.
pub fn index(text: &str) -> Result<Option<PNode>, (String, Pos)> {
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(text);
    p.load(&mut b, false).map_err(|e| {
        let m = e.marker();
        (
            e.info().to_string(),
            Pos {
                line: m.line(),
                col: m.col() + 1,
            },
        )
    })?;
    Ok(b.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let t = "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n";
        let root = index(t).unwrap().unwrap();
        let g = root.get("groups").unwrap().item(0).unwrap();
        assert_eq!(g.pos(), Pos { line: 2, col: 5 });
        let r = g.get("rules").unwrap().item(0).unwrap();
        assert_eq!(r.get("record").unwrap().pos(), Pos { line: 4, col: 17 });
        assert_eq!(r.key_pos("expr"), Some(Pos { line: 5, col: 9 }));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (msg, pos) = index("foo: [\n").unwrap_err();
        assert!(!msg.is_empty());
        assert!(pos.line >= 1);
    }
}
