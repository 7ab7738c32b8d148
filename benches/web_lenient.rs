//! Cost of the request-target escaper every connection's bytes go through:
//! a Grafana panel request (headers plus a form body), the same with a
//! target that needs escaping, and a 1 MiB body (a remote-write batch).
//!
//! Run: `cargo bench --bench web_lenient`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vigil_web::lenient::RequestTargetEscaper;

fn request(target: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {target} HTTP/1.1\r\nHost: prometheus:9090\r\nUser-Agent: Grafana/11.3.0\r\n\
         Content-Length: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept-Encoding: gzip\r\nX-Dashboard-Uid: abc\r\nX-Panel-Id: 2\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn bench(c: &mut Criterion) {
    let form = b"query=histogram_quantile%280.9%2C+sum+by+%28le%29+%28rate%28x_bucket%5B1m0s%5D%29%29%29&start=1700000000&end=1700021600&step=20";
    let cases = [
        ("grafana_panel", request("/api/v1/query_range", form)),
        (
            "unescaped_target",
            request("/api/v1/query?query=up{job=\"node\"}>0", b""),
        ),
        (
            "remote_write_1mib",
            request("/api/v1/write", &vec![b'"'; 1 << 20]),
        ),
    ];
    let mut g = c.benchmark_group("lenient_feed");
    for (name, bytes) in &cases {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut e = RequestTargetEscaper::new();
                black_box(e.feed(black_box(bytes)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
