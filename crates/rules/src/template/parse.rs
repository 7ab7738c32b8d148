//! Lexer and parser for the Go `text/template` subset rule files use.
//!
//! Produces a small tree (`Node`) checked at parse time as Go checks it:
//! unknown functions, undefined variables, unclosed actions and unsupported
//! constructs (`define`, `template`, `block`, `break`, `continue`) are errors
//! naming the construct, so a rule file fails at load, not at alert time.

use super::funcs::is_function;
use super::TemplateError;

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Text(String),
    Action { pipe: Pipe, line: usize },
    If(Branch),
    Range(Branch),
    With(Branch),
}

/// `if`/`range`/`with`: the pipeline, the body and the `else` part (an
/// `else if` chain is a nested `If` in `else_list`).
#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipe {
    /// Declared variables (`$x := ...`, `$i, $e := ...`).
    pub decl: Vec<String>,
    /// `=` instead of `:=`.
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `.` itself.
    Dot,
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B` (fields may be empty).
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B`.
    Pipe(Box<Pipe>, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Text(String),
    /// Start of an action; carries the line.
    Open(usize),
    Close,
    Ident(String),
    Var(String),
    /// `.name`; `chained` when it directly follows an operand.
    Field(String, bool),
    Dot,
    Str(String),
    Num(String),
    Char(char),
    LParen,
    /// `)`.
    RParen,
    PipeSym,
    Declare,
    Assign,
    Comma,
}

struct Lexer<'a> {
    name: &'a str,
    src: &'a str,
    pos: usize,
    line: usize,
    toks: Vec<(Tok, usize)>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl<'a> Lexer<'a> {
    fn err(&self, line: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::Parse(format!("template: {}:{}: {}", self.name, line, msg.into()))
    }

    fn run(mut self) -> Result<Vec<(Tok, usize)>, TemplateError> {
        while self.pos < self.src.len() {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                self.push_text(rest.to_string());
                self.pos = self.src.len();
                break;
            };
            let mut text = rest[..open].to_string();
            let after = &rest[open + 2..];
            let left_trim = after.starts_with('-') && after[1..].starts_with(is_space);
            if left_trim {
                text = text.trim_end_matches(is_space).to_string();
            }
            self.push_text(text);
            self.line += rest[..open].matches('\n').count();
            self.pos += open + 2 + if left_trim { 2 } else { 0 };
            self.lex_action()?;
        }
        Ok(self.toks)
    }

    fn push_text(&mut self, t: String) {
        if !t.is_empty() {
            self.toks.push((Tok::Text(t), self.line));
        }
    }

    /// After `}}`: drops leading whitespace of the following text when the
    /// action ended with ` -}}`.
    fn close(&mut self, right_trim: bool) {
        self.toks.push((Tok::Close, self.line));
        if right_trim {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start_matches(is_space);
            self.line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            self.pos += rest.len() - trimmed.len();
        }
    }

    fn lex_action(&mut self) -> Result<(), TemplateError> {
        let start_line = self.line;
        // Comments: `{{/* ... */}}`, only directly after the delimiter.
        let rest = &self.src[self.pos..];
        let ws = rest.len() - rest.trim_start_matches(is_space).len();
        if rest[ws..].starts_with("/*") {
            let Some(end) = rest.find("*/") else {
                return Err(self.err(start_line, "unclosed comment"));
            };
            self.line += rest[..end].matches('\n').count();
            let after = &rest[end + 2..];
            let (consumed, right_trim) = if let Some(a) = after.strip_prefix(" -}}") {
                (after.len() - a.len(), true)
            } else if after.starts_with("}}") {
                (2, false)
            } else {
                return Err(self.err(start_line, "comment ends before closing delimiter"));
            };
            self.pos += end + 2 + consumed;
            if right_trim {
                let rest = &self.src[self.pos..];
                let trimmed = rest.trim_start_matches(is_space);
                self.line += rest[..rest.len() - trimmed.len()].matches('\n').count();
                self.pos += rest.len() - trimmed.len();
            }
            return Ok(());
        }
        self.toks.push((Tok::Open(start_line), start_line));
        let mut prev_operand = false;
        loop {
            let rest = &self.src[self.pos..];
            if rest.is_empty() {
                return Err(self.err(start_line, "unclosed action"));
            }
            if rest.starts_with("}}") {
                self.pos += 2;
                self.close(false);
                return Ok(());
            }
            let c = rest.chars().next().unwrap_or(' ');
            if is_space(c) {
                // ` -}}` right-trim marker.
                let ws = rest.len() - rest.trim_start_matches(is_space).len();
                if rest[ws..].starts_with("-}}") {
                    self.line += rest[..ws].matches('\n').count();
                    self.pos += ws + 3;
                    self.close(true);
                    return Ok(());
                }
                if rest[..ws].contains('\n') {
                    // Go rejects newlines inside actions (outside of
                    // parentheses and comments) before 1.16; newer Go
                    // accepts them. Accept, as current Prometheus does.
                    self.line += rest[..ws].matches('\n').count();
                }
                self.pos += ws;
                prev_operand = false;
                continue;
            }
            let line = self.line;
            match c {
                '|' => {
                    self.pos += 1;
                    self.toks.push((Tok::PipeSym, line));
                    prev_operand = false;
                }
                '(' => {
                    self.pos += 1;
                    self.toks.push((Tok::LParen, line));
                    prev_operand = false;
                }
                ')' => {
                    self.pos += 1;
                    self.toks.push((Tok::RParen, line));
                    prev_operand = true;
                }
                ',' => {
                    self.pos += 1;
                    self.toks.push((Tok::Comma, line));
                    prev_operand = false;
                }
                ':' => {
                    if rest.starts_with(":=") {
                        self.pos += 2;
                        self.toks.push((Tok::Declare, line));
                        prev_operand = false;
                    } else {
                        return Err(self.err(line, "expected :="));
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.toks.push((Tok::Assign, line));
                    prev_operand = false;
                }
                '"' => {
                    let (s, n) = lex_quoted(rest)
                        .ok_or_else(|| self.err(line, "unterminated quoted string"))?;
                    self.pos += n;
                    self.toks.push((Tok::Str(s), line));
                    prev_operand = true;
                }
                '`' => {
                    let end = rest[1..]
                        .find('`')
                        .ok_or_else(|| self.err(line, "unterminated raw quoted string"))?;
                    let s = rest[1..1 + end].to_string();
                    self.line += s.matches('\n').count();
                    self.pos += end + 2;
                    self.toks.push((Tok::Str(s), line));
                    prev_operand = true;
                }
                '\'' => {
                    let (ch, n) = lex_char(rest)
                        .ok_or_else(|| self.err(line, "unterminated character constant"))?;
                    self.pos += n;
                    self.toks.push((Tok::Char(ch), line));
                    prev_operand = true;
                }
                '$' => {
                    let n = 1 + ident_len(&rest[1..]);
                    self.toks.push((Tok::Var(rest[..n].to_string()), line));
                    self.pos += n;
                    prev_operand = true;
                }
                '.' => {
                    let second = rest[1..].chars().next();
                    if second.is_some_and(|c| c.is_ascii_digit()) {
                        let n = number_len(rest);
                        self.toks.push((Tok::Num(rest[..n].to_string()), line));
                        self.pos += n;
                    } else {
                        let n = ident_len(&rest[1..]);
                        if n == 0 {
                            self.toks.push((Tok::Dot, line));
                        } else {
                            self.toks
                                .push((Tok::Field(rest[1..1 + n].to_string(), prev_operand), line));
                        }
                        self.pos += 1 + n;
                    }
                    prev_operand = true;
                }
                c if c.is_ascii_digit() || c == '-' || c == '+' => {
                    let n = number_len(rest);
                    if n == 0 {
                        return Err(self.err(line, format!("bad number syntax: {:?}", &rest[..1])));
                    }
                    self.toks.push((Tok::Num(rest[..n].to_string()), line));
                    self.pos += n;
                    prev_operand = true;
                }
                c if c.is_alphabetic() || c == '_' => {
                    let n = ident_len(rest);
                    self.toks.push((Tok::Ident(rest[..n].to_string()), line));
                    self.pos += n;
                    prev_operand = true;
                }
                c => {
                    return Err(self.err(line, format!("unexpected {c:?} in command")));
                }
            }
        }
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let start = i;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_alphanumeric()
            || c == b'.'
            || c == b'_'
            || ((c == b'+' || c == b'-')
                && i > start
                && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P'));
        if !ok {
            break;
        }
        i += 1;
    }
    if i == start {
        0
    } else {
        i
    }
}

/// Unquotes a Go interpreted string literal at the start of `s`; returns
/// the value and the bytes consumed.
pub(crate) fn lex_quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\n' => return None,
            '\\' => {
                let (_, e) = it.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{07}'),
                    'b' => out.push('\u{08}'),
                    'f' => out.push('\u{0c}'),
                    'v' => out.push('\u{0b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let (_, h) = it.next()?;
                            v = v * 16 + h.to_digit(16)?;
                        }
                        out.push(char::from_u32(v)?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            let (_, h) = it.next()?;
                            v = v * 8 + h.to_digit(8)?;
                        }
                        out.push(char::from_u32(v)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

fn lex_char(s: &str) -> Option<(char, usize)> {
    let inner = &s[1..];
    let mut chars = inner.char_indices();
    let (_, c) = chars.next()?;
    if c == '\\' {
        let end = inner[1..].find('\'')? + 1;
        let q = format!("\"{}\"", &inner[..end]);
        let (v, _) = lex_quoted(&q)?;
        let mut vc = v.chars();
        let ch = vc.next()?;
        return Some((ch, end + 2));
    }
    let (j, close) = chars.next()?;
    (close == '\'').then_some((c, j + 2))
}

/// Parses `text` as template `name` (the name appears in errors).
pub fn parse(name: &str, text: &str) -> Result<Vec<Node>, TemplateError> {
    let toks = Lexer {
        name,
        src: text,
        pos: 0,
        line: 1,
        toks: Vec::new(),
    }
    .run()?;
    let mut p = Parser {
        name,
        toks,
        pos: 0,
        vars: vec!["$".to_string()],
    };
    let (list, end) = p.list()?;
    match end {
        Stop::Eof => Ok(list),
        Stop::End(l) => Err(p.err(l, "unexpected {{end}}")),
        Stop::Else(l, _) => Err(p.err(l, "unexpected {{else}}")),
    }
}

enum Stop {
    Eof,
    End(usize),
    /// `{{else}}` or `{{else if ...}}` (the `if` pipeline already parsed).
    Else(usize, Option<Pipe>),
}

struct Parser<'a> {
    name: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    vars: Vec<String>,
}

impl Parser<'_> {
    fn err(&self, line: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::Parse(format!("template: {}:{}: {}", self.name, line, msg.into()))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|(_, l)| *l)
            .unwrap_or(1)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expect_close(&mut self, ctx: &str) -> Result<(), TemplateError> {
        let line = self.line();
        match self.next() {
            Some(Tok::Close) => Ok(()),
            Some(t) => Err(self.err(line, format!("unexpected {} in {ctx}", describe(&t)))),
            None => Err(self.err(line, "unclosed action")),
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut out = Vec::new();
        loop {
            let Some(t) = self.next() else {
                return Ok((out, Stop::Eof));
            };
            match t {
                Tok::Text(s) => out.push(Node::Text(s)),
                Tok::Open(line) => {
                    if let Some(Tok::Ident(kw)) = self.peek().cloned() {
                        match kw.as_str() {
                            "end" => {
                                self.pos += 1;
                                self.expect_close("end")?;
                                return Ok((out, Stop::End(line)));
                            }
                            "else" => {
                                self.pos += 1;
                                if let Some(Tok::Ident(k)) = self.peek().cloned() {
                                    if k == "if" {
                                        self.pos += 1;
                                        let pipe = self.pipeline("if", false)?;
                                        return Ok((out, Stop::Else(line, Some(pipe))));
                                    }
                                    if k == "with" {
                                        return Err(self.err(
                                            line,
                                            "unsupported template construct: else with",
                                        ));
                                    }
                                }
                                self.expect_close("else")?;
                                return Ok((out, Stop::Else(line, None)));
                            }
                            "if" | "range" | "with" => {
                                self.pos += 1;
                                out.push(self.branch(&kw, line, None)?);
                                continue;
                            }
                            "define" | "template" | "block" | "break" | "continue" => {
                                return Err(self.err(
                                    line,
                                    format!("unsupported template construct: {{{{{kw}}}}}"),
                                ));
                            }
                            _ => {}
                        }
                    }
                    let pipe = self.pipeline("command", false)?;
                    out.push(Node::Action { pipe, line });
                }
                t => return Err(self.err(self.line(), format!("unexpected {}", describe(&t)))),
            }
        }
    }

    /// Parses the rest of an `if`/`range`/`with` after its keyword (or the
    /// `if` of an `else if` whose pipeline is given).
    fn branch(&mut self, kw: &str, line: usize, pipe: Option<Pipe>) -> Result<Node, TemplateError> {
        let depth = self.vars.len();
        let pipe = match pipe {
            Some(p) => p,
            None => self.pipeline(kw, kw == "range")?,
        };
        let (list, end) = self.list()?;
        let else_list = match end {
            Stop::Eof => return Err(self.err(self.line(), "unexpected EOF")),
            Stop::End(_) => None,
            Stop::Else(_, None) => {
                let (el, end2) = self.list()?;
                match end2 {
                    Stop::End(_) => Some(el),
                    Stop::Eof => return Err(self.err(self.line(), "unexpected EOF")),
                    Stop::Else(l2, _) => {
                        return Err(self.err(l2, "expected end; found {{else}}"));
                    }
                }
            }
            Stop::Else(l, Some(p)) => {
                if kw != "if" {
                    return Err(self.err(
                        l,
                        format!("unsupported template construct: else if in {kw}"),
                    ));
                }
                // `else if` shares the `end` of the outer `if`.
                let nested = self.branch("if", l, Some(p))?;
                Some(vec![nested])
            }
        };
        self.vars.truncate(depth);
        let b = Branch {
            pipe,
            list,
            else_list,
            line,
        };
        Ok(match kw {
            "if" => Node::If(b),
            "range" => Node::Range(b),
            _ => Node::With(b),
        })
    }

    /// A pipeline up to and including the closing `}}`.
    fn pipeline(&mut self, ctx: &str, allow_two: bool) -> Result<Pipe, TemplateError> {
        let line = self.line();
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: `$x :=`, `$x =`, `$i, $e :=` (range only).
        let save = self.pos;
        if let Some(Tok::Var(v)) = self.peek().cloned() {
            self.pos += 1;
            match self.peek().cloned() {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    let assign = matches!(self.peek(), Some(Tok::Assign));
                    self.pos += 1;
                    if assign && !self.vars.contains(&v) {
                        return Err(self.err(line, format!("undefined variable {v:?}")));
                    }
                    decl.push(v);
                    is_assign = assign;
                }
                Some(Tok::Comma) if allow_two => {
                    self.pos += 1;
                    match (self.next(), self.next()) {
                        (Some(Tok::Var(v2)), Some(Tok::Declare)) => {
                            decl.push(v);
                            decl.push(v2);
                        }
                        (Some(Tok::Var(v2)), Some(Tok::Assign)) => {
                            decl.push(v);
                            decl.push(v2);
                            is_assign = true;
                        }
                        _ => return Err(self.err(line, format!("too many declarations in {ctx}"))),
                    }
                }
                _ => self.pos = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command(ctx)?;
            cmds.push(cmd);
            match self.next() {
                Some(Tok::PipeSym) => continue,
                Some(Tok::Close) => break,
                Some(t) => {
                    return Err(
                        self.err(self.line(), format!("unexpected {} in {ctx}", describe(&t)))
                    )
                }
                None => return Err(self.err(line, "unclosed action")),
            }
        }
        if cmds.iter().any(|c| c.args.is_empty()) {
            return Err(self.err(line, format!("missing value for {ctx}")));
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if !matches!(
                c.args[0],
                Arg::Func(_) | Arg::Field(_) | Arg::Var(_, _) | Arg::Pipe(_, _) | Arg::Dot
            ) || (matches!(c.args[0], Arg::Var(_, ref f) if f.is_empty()))
            {
                return Err(self.err(
                    line,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        for v in &decl {
            if !is_assign {
                self.vars.push(v.clone());
            }
        }
        Ok(Pipe {
            decl,
            is_assign,
            cmds,
        })
    }

    /// Operands up to `|`, `)` or `}}` (not consumed).
    fn command(&mut self, ctx: &str) -> Result<Cmd, TemplateError> {
        let mut args = Vec::new();
        loop {
            let line = self.line();
            match self.peek().cloned() {
                None => return Err(self.err(line, "unclosed action")),
                Some(Tok::PipeSym) | Some(Tok::Close) | Some(Tok::RParen) => {
                    if args.is_empty() {
                        return Err(self.err(line, format!("missing value for {ctx}")));
                    }
                    return Ok(Cmd { args });
                }
                Some(_) => {
                    let a = self.operand(ctx)?;
                    args.push(a);
                }
            }
        }
    }

    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Tok::Field(f, true)) = self.peek().cloned() {
            self.pos += 1;
            out.push(f);
        }
        out
    }

    fn operand(&mut self, ctx: &str) -> Result<Arg, TemplateError> {
        let line = self.line();
        let t = self
            .next()
            .ok_or_else(|| self.err(line, "unclosed action"))?;
        Ok(match t {
            Tok::Dot => Arg::Dot,
            Tok::Field(f, _) => {
                let mut fs = vec![f];
                fs.extend(self.fields());
                Arg::Field(fs)
            }
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(line, format!("undefined variable {v:?}")));
                }
                let fs = self.fields();
                Arg::Var(v, fs)
            }
            Tok::Str(s) => Arg::Str(s),
            Tok::Char(c) => Arg::Int(c as i64),
            Tok::Num(n) => parse_number(&n)
                .ok_or_else(|| self.err(line, format!("bad number syntax: {n:?}")))?,
            Tok::LParen => {
                let depth = self.vars.len();
                let mut cmds = Vec::new();
                loop {
                    cmds.push(self.command("parenthesized pipeline")?);
                    match self.next() {
                        Some(Tok::PipeSym) => continue,
                        Some(Tok::RParen) => break,
                        _ => return Err(self.err(line, "unclosed left paren")),
                    }
                }
                self.vars.truncate(depth);
                let fs = self.fields();
                Arg::Pipe(
                    Box::new(Pipe {
                        decl: vec![],
                        is_assign: false,
                        cmds,
                    }),
                    fs,
                )
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
                | "break" | "continue" => {
                    return Err(self.err(line, format!("unexpected <{id}> in {ctx}")));
                }
                _ => {
                    if !is_function(&id) {
                        return Err(self.err(line, format!("function {id:?} not defined")));
                    }
                    Arg::Func(id)
                }
            },
            t => return Err(self.err(line, format!("unexpected {} in operand", describe(&t)))),
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Open(_) => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Var(s) => format!("<{s}>"),
        Tok::Field(s, _) => format!("<.{s}>"),
        Tok::Dot => "<.>".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Num(s) => format!("<{s}>"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::PipeSym => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}

fn parse_number(s: &str) -> Option<Arg> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok()?;
    Some(Arg::Float(if neg { -f } else { f }))
}
