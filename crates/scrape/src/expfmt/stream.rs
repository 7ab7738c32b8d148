//! Parsing a body of any size from a `Read`, one buffer of lines at a time
//! (for `tsdb create-blocks-from openmetrics` on multi-gigabyte files).

use std::io::{self, Read};

use super::lexer::LineParser;
use super::{Entry, Format, ParseError};

/// An I/O or parse failure while streaming.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading input: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Streams entries out of a reader. Memory is bounded by the buffer size
/// (1 MiB by default), growing only for a single line longer than it.
/// Entries borrow the buffer, so each one must be dropped before the next
/// call (a lending iterator).
pub struct StreamParser<R> {
    reader: R,
    buf: Vec<u8>,
    /// Unparsed data is `buf[start..end]`.
    start: usize,
    end: usize,
    /// `buf[start..scanned]` is known to hold no newline.
    scanned: usize,
    reader_done: bool,
    done: bool,
    lines: LineParser,
    bytes: u64,
}

impl<R: Read> StreamParser<R> {
    pub fn new(reader: R, format: Format) -> Self {
        Self::with_capacity(reader, format, 1 << 20)
    }

    pub fn with_capacity(reader: R, format: Format, capacity: usize) -> Self {
        StreamParser {
            reader,
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
            scanned: 0,
            reader_done: false,
            done: false,
            lines: LineParser::new(format),
            bytes: 0,
        }
    }

    /// Line number of the last entry or error, 1-based.
    pub fn line(&self) -> usize {
        self.lines.line()
    }

    /// Bytes consumed from the reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next entry, `Ok(None)` at the end of a valid input.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, StreamError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let (from, to, terminated) = match self.next_line()? {
                Some(l) => l,
                None => {
                    self.done = true;
                    self.lines.finish()?;
                    return Ok(None);
                }
            };
            // Lines that carry no entry are handled here so that the borrow
            // of the buffer below is only taken on the path that returns it.
            let line = &self.buf[from..to];
            let skip = match self.lines.format() {
                Format::PrometheusText => line.iter().all(|&c| c == b' ' || c == b'\t'),
                Format::OpenMetrics => line == b"# EOF",
            };
            if skip {
                if let Err(e) = self.lines.parse_line(line, terminated) {
                    self.done = true;
                    return Err(e.into());
                }
                continue;
            }
            let Self {
                buf, lines, done, ..
            } = self;
            return match lines.parse_line(&buf[from..to], terminated) {
                Ok(e) => Ok(e),
                Err(e) => {
                    *done = true;
                    Err(e.into())
                }
            };
        }
    }

    /// Finds the next line, reading more input as needed. Returns its range
    /// in `buf` and whether it ended with a newline.
    fn next_line(&mut self) -> Result<Option<(usize, usize, bool)>, io::Error> {
        loop {
            if let Some(n) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let from = self.start;
                let to = self.scanned + n;
                self.start = to + 1;
                self.scanned = self.start;
                return Ok(Some((from, to, true)));
            }
            self.scanned = self.end;
            if self.reader_done {
                if self.start == self.end {
                    return Ok(None);
                }
                let from = self.start;
                self.start = self.end;
                self.scanned = self.end;
                return Ok(Some((from, self.end, false)));
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<(), io::Error> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.reader_done = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
