//! A small blocking HTTP/1.1 client for the CLI: one request per
//! connection, `http://` only, form-encoded POSTs and GETs. Enough for
//! talking to a Vigil or Prometheus server on the local network without
//! pulling a TLS stack into the command line.

use std::io::{BufRead, BufReader, Write};

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a request did not produce an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("unsupported server URL {0:?}: only http:// is supported")]
    BadUrl(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("error talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("malformed HTTP response from {addr}: {reason}")]
    Malformed { addr: String, reason: String },
}

/// A response: status and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A parsed `http://host:port/prefix` server URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerUrl {
    pub host_port: String,
    pub prefix: String,
}

impl ServerUrl {
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::BadUrl(url.to_string()))?;
        let (hp, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if hp.is_empty() {
            return Err(HttpError::BadUrl(url.to_string()));
        }
        let host_port = if hp
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hp.to_string()
        } else {
            format!("{}:80", hp)
        };
        Ok(ServerUrl {
            host_port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }
}

/// Percent-encodes form pairs (`application/x-www-form-urlencoded`).
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{:02X}", b)),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

/// POSTs a form to `path` (relative to the server's prefix).
pub fn post_form(server: &ServerUrl, path: &str, form: &str) -> Result<HttpResponse, HttpError> {
    request(server, "POST", path, Some(form))
}

/// GETs `path_and_query`.
pub fn get(server: &ServerUrl, path_and_query: &str) -> Result<HttpResponse, HttpError> {
    request(server, "GET", path_and_query, None)
}

fn request(
    server: &ServerUrl,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> Result<HttpResponse, HttpError> {
    let addr = server.host_port.clone();
    let io = |source| HttpError::Io {
        addr: addr.clone(),
        source,
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|source| HttpError::Connect {
            addr: addr.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| HttpError::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })?;
    let mut stream =
        TcpStream::connect_timeout(&sock, Duration::from_secs(10)).map_err(|source| {
            HttpError::Connect {
                addr: addr.clone(),
                source,
            }
        })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(io)?;
    let mut req = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vigil-cli\r\nAccept: application/json\r\nConnection: close\r\n",
        method, server.prefix, path, server.host_port
    );
    if let Some(f) = form {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
            f.len(),
            f
        ));
    } else {
        req.push_str("\r\n");
    }
    stream.write_all(req.as_bytes()).map_err(io)?;
    read_response(BufReader::new(stream), &addr)
}

fn read_response<R: BufRead>(mut r: R, addr: &str) -> Result<HttpResponse, HttpError> {
    let malformed = |reason: &str| HttpError::Malformed {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let io = |source| HttpError::Io {
        addr: addr.to_string(),
        source,
    };
    let mut line = String::new();
    r.read_line(&mut line).map_err(io)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io)? == 0 {
            return Err(malformed("headers cut short"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse().ok();
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(io)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| malformed("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).map_err(io)?;
            line.clear();
            r.read_line(&mut line).map_err(io)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io)?;
    } else {
        r.read_to_end(&mut body).map_err(io)?;
    }
    Ok(HttpResponse { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let u = ServerUrl::parse("http://localhost:9090/prom/").unwrap();
        assert_eq!(u.host_port, "localhost:9090");
        assert_eq!(u.prefix, "/prom");
        assert_eq!(ServerUrl::parse("http://h").unwrap().host_port, "h:80");
        assert!(ServerUrl::parse("https://h").is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            encode_form(&[("query", "sum(rate(x{a=\"b\"}[5m]))"), ("time", "4")]),
            "query=sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29&time=4"
        );
        assert_eq!(encode_form(&[("q", "1 + 1")]), "q=1+%2B+1");
    }

    #[test]
    fn chunked_and_sized_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = read_response(&raw[..], "x").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let raw = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}";
        let r = read_response(&raw[..], "x").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{}"[..]));
    }
}
