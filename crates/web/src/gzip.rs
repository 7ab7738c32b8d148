//! gzip of whole responses in one call, for clients that accept it.
//!
//! Every response here is complete in memory before it is sent (the API
//! writes JSON into one buffer), so it is compressed in one shot with
//! zlib-rs at level 1 instead of through a streaming encoder: that is
//! several times faster on the number-heavy JSON of range queries, where
//! compression used to cost as much as evaluating the query.
//!
//! It must not touch a response that already has a `Content-Encoding`, one
//! whose size is not known up front (a stream), or a tiny one.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Bodies below this are sent as they are, as tower-http's default does.
const MIN_SIZE: u64 = 32;

/// Middleware: gzips the response when the request accepts gzip.
pub async fn gzip(req: Request, next: Next) -> Response {
    let wanted = accepts_gzip(req.headers());
    let resp = next.run(req).await;
    if !wanted || !compressible(resp.headers()) {
        return resp;
    }
    match resp.body().size_hint().exact() {
        Some(n) if n >= MIN_SIZE => {}
        _ => return resp,
    }
    let (mut parts, body) = resp.into_parts();
    // A body of known size is already in memory: collecting cannot fail
    // short of a bug, which gets a 500 rather than a truncated reply.
    let Ok(plain) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(packed) = compress(&plain) else {
        return Response::from_parts(parts, Body::from(plain));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, Body::from(packed))
}

/// gzip (RFC 1952) of `input` at level 1; `None` if zlib-rs refuses.
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    // Window bits 15 plus 16 selects the gzip wrapper, whose header and
    // trailer are 12 bytes more than the zlib one `compress_bound` counts.
    let config = zlib_rs::DeflateConfig {
        window_bits: 31,
        ..zlib_rs::DeflateConfig::new(1)
    };
    let mut out = vec![0u8; zlib_rs::compress_bound(input.len()) + 12];
    let (written, rc) = zlib_rs::compress_slice(&mut out, input, config);
    if rc != zlib_rs::ReturnCode::Ok {
        return None;
    }
    let n = written.len();
    out.truncate(n);
    Some(out)
}

/// Whether `Accept-Encoding` admits gzip: `gzip`, `x-gzip` or `*` with a
/// non-zero quality, unless gzip itself is given quality zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut any = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut fields = item.split(';');
            let coding = fields.next().unwrap_or("").trim();
            let q_zero = fields.any(|f| {
                f.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                if q_zero {
                    return false;
                }
                any = true;
            } else if coding == "*" && !q_zero {
                any = true;
            }
        }
    }
    any
}

/// Not already encoded, and not a type that is compressed already or must
/// not be buffered (images other than SVG, gRPC, event streams).
fn compressible(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::CONTENT_ENCODING) {
        return false;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !((ct.starts_with("image/") && !ct.starts_with("image/svg+xml"))
        || ct.starts_with("application/grpc")
        || ct.starts_with("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_encoding_forms() {
        for (v, want) in [
            ("gzip", true),
            ("GZIP", true),
            ("deflate, gzip;q=0.5", true),
            ("x-gzip", true),
            ("*", true),
            ("gzip;q=0", false),
            ("*, gzip;q=0", false),
            ("gzip; q=0.0", false),
            ("deflate, br", false),
            ("*;q=0", false),
            ("identity", false),
        ] {
            assert_eq!(accepts_gzip(&headers(v)), want, "{v}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn compress_round_trips() {
        use std::io::Read;
        for input in [
            Vec::new(),
            b"x".to_vec(),
            br#"[1795543200,"0.123456789"],"#.repeat(20_000),
            (0..200_000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ] {
            let packed = compress(&input).unwrap();
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, input);
        }
    }
}
