//! Go-style leniency for request targets. Prometheus (Go's `net/http`)
//! accepts `"`, `<`, `>` and `` ` `` unescaped in a URL; hyper refuses them
//! with a bare 400 before any handler runs. Scripts written for Prometheus
//! (`curl -g 'http://host:9090/api/v1/query?query=up{job="node"}'`,
//! `...?query=count(up)>0`) must keep working, so every connection's bytes
//! pass through a small HTTP/1 framing tracker that percent-encodes those
//! bytes inside request targets only.
//!
//! It must not interpret HTTP beyond framing: bodies of known length,
//! chunked or upgraded connections, HTTP/2 and anything it does not
//! understand pass through untouched for hyper to handle (or reject).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Bytes Go accepts unescaped in a request target and the `http` crate
/// does not (in the path or the query).
fn needs_escape(b: u8) -> bool {
    matches!(b, b'"' | b'<' | b'>' | b'`')
}

/// Longest header line tracked; beyond it the connection passes through
/// (hyper rejects such headers anyway).
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug)]
enum Phase {
    /// In a request line: `part` 0 is the method, 1 the target, 2 the
    /// version; `method` keeps the method's first bytes.
    RequestLine {
        part: u8,
        method: [u8; 4],
        method_len: usize,
    },
    /// In the header block: the current line and the framing announced so
    /// far. `opaque` means the body's end cannot be found by counting.
    Headers {
        line: Vec<u8>,
        content_length: Option<u64>,
        opaque: bool,
    },
    /// Inside a body with this many bytes left.
    Body(u64),
    /// No more rewriting on this connection.
    Passthrough,
}

impl Phase {
    fn request_line() -> Phase {
        Phase::RequestLine {
            part: 0,
            method: [0; 4],
            method_len: 0,
        }
    }
}

/// Tracks HTTP/1 request framing over a byte stream and escapes the bytes
/// of request targets that Go accepts but hyper does not.
#[derive(Debug)]
pub struct RequestTargetEscaper {
    phase: Phase,
}

impl Default for RequestTargetEscaper {
    fn default() -> Self {
        RequestTargetEscaper {
            phase: Phase::request_line(),
        }
    }
}

/// Appends `bytes` to the rewritten output, if one has been started.
fn emit(out: &mut Option<Vec<u8>>, bytes: &[u8]) {
    if let Some(o) = out {
        o.extend_from_slice(bytes);
    }
}

impl RequestTargetEscaper {
    pub fn new() -> Self {
        RequestTargetEscaper::default()
    }

    /// True once nothing on this connection will be rewritten again.
    pub fn is_passthrough(&self) -> bool {
        matches!(self.phase, Phase::Passthrough)
    }

    /// Feeds the next bytes received from the client. Returns `None` when
    /// they pass unchanged, else the rewritten bytes.
    pub fn feed(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        let mut i = 0;
        while i < input.len() {
            match &mut self.phase {
                Phase::Passthrough => {
                    emit(&mut out, &input[i..]);
                    break;
                }
                Phase::Body(left) => {
                    let take = (*left).min((input.len() - i) as u64) as usize;
                    emit(&mut out, &input[i..i + take]);
                    i += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.phase = Phase::request_line();
                    }
                }
                Phase::RequestLine {
                    part,
                    method,
                    method_len,
                } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        // Empty lines before a request line are allowed.
                        b'\n' if *part > 0 || *method_len > 0 => {
                            self.phase = Phase::Headers {
                                line: Vec::new(),
                                content_length: None,
                                opaque: false,
                            };
                        }
                        b'\n' | b'\r' => {}
                        b' ' if *part < 2 => {
                            *part += 1;
                            // The HTTP/2 preface ("PRI * HTTP/2.0").
                            if *part == 1 && method[..(*method_len).min(4)] == *b"PRI" {
                                self.phase = Phase::Passthrough;
                            }
                        }
                        _ if *part == 0 => {
                            if *method_len < method.len() {
                                method[*method_len] = b;
                            }
                            *method_len += 1;
                        }
                        _ if *part == 1 && needs_escape(b) => {
                            let o = out.get_or_insert_with(|| {
                                let mut v = Vec::with_capacity(input.len() + 16);
                                v.extend_from_slice(&input[..i - 1]);
                                v
                            });
                            const HEX: &[u8; 16] = b"0123456789ABCDEF";
                            o.extend_from_slice(&[
                                b'%',
                                HEX[(b >> 4) as usize],
                                HEX[(b & 0xf) as usize],
                            ]);
                            continue;
                        }
                        _ => {}
                    }
                    emit(&mut out, &[b]);
                }
                Phase::Headers {
                    line,
                    content_length,
                    opaque,
                } => {
                    let b = input[i];
                    i += 1;
                    emit(&mut out, &[b]);
                    if b != b'\n' {
                        line.push(b);
                        if line.len() > MAX_LINE {
                            self.phase = Phase::Passthrough;
                        }
                        continue;
                    }
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.is_empty() {
                        self.phase = match (*opaque, *content_length) {
                            (true, _) => Phase::Passthrough,
                            (false, Some(n)) if n > 0 => Phase::Body(n),
                            (false, _) => Phase::request_line(),
                        };
                        continue;
                    }
                    let (name, value) = match line.iter().position(|&c| c == b':') {
                        Some(p) => (&line[..p], line[p + 1..].trim_ascii()),
                        None => (&line[..], &b""[..]),
                    };
                    if name.eq_ignore_ascii_case(b"content-length") {
                        let n = std::str::from_utf8(value)
                            .ok()
                            .and_then(|v| v.parse::<u64>().ok());
                        match (n, *content_length) {
                            (Some(n), None) => *content_length = Some(n),
                            (Some(n), Some(m)) if n == m => {}
                            _ => *opaque = true,
                        }
                    } else if name.eq_ignore_ascii_case(b"transfer-encoding")
                        || name.eq_ignore_ascii_case(b"upgrade")
                    {
                        *opaque = true;
                    }
                    line.clear();
                }
            }
        }
        out
    }
}

/// A connection whose incoming request targets get Go's leniency (see the
/// module doc); writes pass straight through.
pub struct LenientIo<T> {
    inner: T,
    escaper: RequestTargetEscaper,
    /// Rewritten bytes that did not fit the caller's buffer yet.
    pending: Vec<u8>,
    pending_pos: usize,
}

impl<T> LenientIo<T> {
    pub fn new(inner: T) -> Self {
        LenientIo {
            inner,
            escaper: RequestTargetEscaper::new(),
            pending: Vec::new(),
            pending_pos: 0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for LenientIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending_pos < this.pending.len() {
            let n = buf.remaining().min(this.pending.len() - this.pending_pos);
            buf.put_slice(&this.pending[this.pending_pos..this.pending_pos + n]);
            this.pending_pos += n;
            if this.pending_pos == this.pending.len() {
                this.pending.clear();
                this.pending_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if this.escaper.is_passthrough() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let rewritten = this.escaper.feed(&buf.filled()[before..]);
        if let Some(bytes) = rewritten {
            buf.set_filled(before);
            let n = buf.remaining().min(bytes.len());
            buf.put_slice(&bytes[..n]);
            if n < bytes.len() {
                this.pending = bytes;
                this.pending_pos = n;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LenientIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A TCP listener whose connections are wrapped in `LenientIo`.
pub struct LenientListener(pub TcpListener);

impl axum::serve::Listener for LenientListener {
    type Io = LenientIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop (it retries and backs off on errors).
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (LenientIo::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces cut at `cuts` and returns the output.
    fn run(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut e = RequestTargetEscaper::new();
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            let c = c.clamp(from, input.len());
            let piece = &input[from..c];
            match e.feed(piece) {
                Some(r) => out.extend_from_slice(&r),
                None => out.extend_from_slice(piece),
            }
            from = c;
        }
        out
    }

    fn s(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn escapes_only_the_target() {
        let req =
            b"GET /api/v1/query?query=up{job=\"a\"}>0 HTTP/1.1\r\nHost: x\r\nX-Q: \"kept\"\r\n\r\n";
        assert_eq!(
            s(&run(req, &[])),
            "GET /api/v1/query?query=up{job=%22a%22}%3E0 HTTP/1.1\r\nHost: x\r\nX-Q: \"kept\"\r\n\r\n"
        );
        let clean = b"GET /api/v1/query?query=up HTTP/1.1\r\n\r\n";
        assert_eq!(RequestTargetEscaper::new().feed(clean), None);
    }

    #[test]
    fn bodies_pass_and_pipelined_requests_are_escaped() {
        let req =
            b"POST /q HTTP/1.1\r\ncontent-length: 7\r\n\r\nq=\"<>\"GET /a?b=\"c\" HTTP/1.1\r\n\r\n";
        assert_eq!(
            s(&run(req, &[])),
            "POST /q HTTP/1.1\r\ncontent-length: 7\r\n\r\nq=\"<>\"GET /a?b=%22c%22 HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn every_split_gives_the_same_bytes() {
        let req: &[u8] = b"\r\nGET /x?q=\"a\" HTTP/1.1\r\nContent-Length: 3\r\n\r\n\"\"\"POST /y?`z` HTTP/1.1\r\nContent-Length:0\r\n\r\nGET /<> HTTP/1.1\r\n\r\n";
        let whole = run(req, &[]);
        assert!(s(&whole).contains("/x?q=%22a%22 "), "{}", s(&whole));
        assert!(s(&whole).contains("\r\n\r\n\"\"\"POST"), "{}", s(&whole));
        assert!(s(&whole).contains("/y?%60z%60 "), "{}", s(&whole));
        assert!(s(&whole).contains("GET /%3C%3E "), "{}", s(&whole));
        for a in 0..=req.len() {
            for b in a..=req.len() {
                assert_eq!(run(req, &[a, b]), whole, "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn opaque_framing_passes_through() {
        for req in [
            &b"POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\"\r\n0\r\n\r\nGET /\" HTTP/1.1\r\n\r\n"[..],
            &b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /\" HTTP/1.1\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /\" HTTP/1.1\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /\" HTTP/1.1\r\n\r\n"[..],
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\"\"<>"[..],
        ] {
            let mut e = RequestTargetEscaper::new();
            assert_eq!(e.feed(req), None, "{}", s(req));
            assert!(e.is_passthrough(), "{}", s(req));
        }
    }

    #[tokio::test]
    async fn io_delivers_rewritten_bytes_through_small_buffers() {
        use tokio::io::AsyncReadExt;
        let req = b"GET /?q=\"\"\"\"\"\"\"\" HTTP/1.1\r\n\r\n".to_vec();
        let mut io = LenientIo::new(&req[..]);
        let mut got = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = io.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(s(&got), "GET /?q=%22%22%22%22%22%22%22%22 HTTP/1.1\r\n\r\n");
    }
}
