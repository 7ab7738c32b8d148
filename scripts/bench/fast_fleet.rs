//! A fast synthetic exporter fleet for the restart benchmark: N targets
//! (one port each, from --port-base), each exposing S node_exporter-like
//! series WITH TIMESTAMPS. Every scrape of a target advances its clock by
//! --step seconds from --start (Unix ms), so a Prometheus scraping every
//! few seconds records an hour of 15 s data in minutes. After --scrapes
//! scrapes a target keeps returning its last body (same timestamps and
//! values: Prometheus ignores such duplicates).
//!
//! std only; build with
//! `rustc --edition 2021 -O scripts/bench/fast_fleet.rs -o fast_fleet`.
//! Usage: fast_fleet --targets 500 --series 2000 --port-base 19100
//!                   --start <unix ms> --step 15 --scrapes 241

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Args {
    targets: usize,
    series: usize,
    port_base: u16,
    start: i64,
    step: i64,
    scrapes: u64,
}

fn args() -> Args {
    let mut a = Args {
        targets: 500,
        series: 2000,
        port_base: 19100,
        start: 0,
        step: 15,
        scrapes: 241,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < v.len() {
        let x = &v[i + 1];
        match v[i].as_str() {
            "--targets" => a.targets = x.parse().expect("--targets"),
            "--series" => a.series = x.parse().expect("--series"),
            "--port-base" => a.port_base = x.parse().expect("--port-base"),
            "--start" => a.start = x.parse().expect("--start"),
            "--step" => a.step = x.parse().expect("--step"),
            "--scrapes" => a.scrapes = x.parse().expect("--scrapes"),
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    if a.start == 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        a.start = now / 15_000 * 15_000;
    }
    a
}

/// One series: its exposition prefix (`name{labels} `) and how it moves.
struct Series {
    prefix: String,
    kind: u8, // 0 counter (float), 1 counter (int), 2 gauge walk, 3 constant
    rate: f64,
    base: f64,
}

/// A node_exporter-like catalog of `n` series for target `t`.
fn catalog(t: usize, n: usize) -> Vec<Series> {
    let mut out = Vec::with_capacity(n);
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ (t as u64).wrapping_mul(0x1000_0000_01b3);
    let mut rnd = move || {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        (h >> 11) as f64 / (1u64 << 53) as f64
    };
    let modes = ["idle", "user", "system", "iowait", "irq", "nice", "softirq", "steal"];
    for cpu in 0..8 {
        for m in modes {
            out.push(Series {
                prefix: format!("node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{m}\"}} "),
                kind: 0,
                rate: if m == "idle" { 12.0 } else { rnd() * 2.0 },
                base: rnd() * 1e6,
            });
        }
    }
    let devs = ["sda", "sdb", "nvme0n1", "dm-0", "dm-1", "eth0", "eth1", "lo"];
    let families = [
        ("node_disk_read_bytes_total", 1u8),
        ("node_disk_written_bytes_total", 1),
        ("node_disk_io_time_seconds_total", 0),
        ("node_network_receive_bytes_total", 1),
        ("node_network_transmit_bytes_total", 1),
        ("node_network_receive_packets_total", 1),
        ("node_filesystem_avail_bytes", 2),
        ("node_filesystem_size_bytes", 3),
    ];
    for (f, kind) in families {
        for d in devs {
            out.push(Series {
                prefix: format!("{f}{{device=\"{d}\"}} "),
                kind,
                rate: rnd() * 1e5,
                base: (rnd() * 1e9).floor(),
            });
        }
    }
    let gauges = ["node_memory_MemFree_bytes", "node_memory_Cached_bytes", "node_load1", "node_load5"];
    for g in gauges {
        out.push(Series {
            prefix: format!("{g} "),
            kind: 2,
            rate: 4096.0,
            base: (rnd() * 1e9).floor(),
        });
    }
    // Filler in node_exporter proportions: many sparse counters, some
    // constants, some walking gauges.
    let mut i = 0;
    while out.len() < n {
        let (name, kind) = match i % 10 {
            0..=4 => ("node_interrupts_total", 1u8),
            5..=6 => ("node_systemd_unit_state", 3),
            7 => ("node_hwmon_temp_celsius", 2),
            _ => ("node_netstat_counter_total", 1),
        };
        out.push(Series {
            prefix: format!("{name}{{idx=\"{i}\"}} "),
            kind,
            rate: if kind == 1 && rnd() < 0.8 { 0.0 } else { rnd() * 50.0 },
            base: (rnd() * 1000.0).floor(),
        });
        i += 1;
    }
    out.truncate(n);
    out
}

fn render(series: &[Series], k: u64, ts: i64, buf: &mut Vec<u8>) {
    buf.clear();
    for (j, s) in series.iter().enumerate() {
        buf.extend_from_slice(s.prefix.as_bytes());
        let kf = k as f64;
        let v = match s.kind {
            0 => ((s.base + s.rate * 15.0 * kf) * 100.0).round() / 100.0,
            1 => (s.base + (s.rate * 15.0 * kf).floor()).floor(),
            2 => {
                // Deterministic walk: a few steps up or down per scrape.
                let w = ((k.wrapping_mul(2654435761).wrapping_add(j as u64 * 40503)) % 9) as f64 - 4.0;
                ((s.base + s.rate * (w + (kf * 0.37).sin() * 20.0)) * 10.0).round() / 10.0
            }
            _ => s.base,
        };
        let _ = write!(buf, "{v} {ts}\n");
    }
}

fn serve(target: usize, a: Arc<Args>, scraped: Arc<AtomicU64>) {
    let l = TcpListener::bind(("127.0.0.1", a.port_base + target as u16)).expect("bind");
    let series = catalog(target, a.series);
    let mut body = Vec::with_capacity(a.series * 64);
    let mut k: u64 = 0;
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        let mut r = BufReader::new(c.try_clone().expect("clone"));
        loop {
            // One request: lines until the blank one.
            let mut line = String::new();
            let mut got = false;
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        got = true;
                        if line == "\r\n" || line == "\n" {
                            break;
                        }
                    }
                }
            }
            if !got || !(line == "\r\n" || line == "\n") {
                break;
            }
            let step = k.min(a.scrapes.saturating_sub(1));
            render(&series, step, a.start + step as i64 * a.step * 1000, &mut body);
            k += 1;
            scraped.fetch_add(1, Ordering::Relaxed);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if c.write_all(head.as_bytes()).and_then(|_| c.write_all(&body)).is_err() {
                break;
            }
        }
    }
}

fn main() {
    let a = Arc::new(args());
    let scraped = Arc::new(AtomicU64::new(0));
    eprintln!(
        "fast_fleet: {} targets x {} series on 127.0.0.1:{}.., start {} step {}s, {} scrapes each",
        a.targets, a.series, a.port_base, a.start, a.step, a.scrapes
    );
    for t in 0..a.targets {
        let (a, s) = (a.clone(), scraped.clone());
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || serve(t, a, s))
            .expect("spawn");
    }
    let total = a.targets as u64 * a.scrapes;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(10));
        let n = scraped.load(Ordering::Relaxed);
        eprintln!("fast_fleet: {n} scrapes served ({:.0}% of the synthetic hour)", n as f64 * 100.0 / total as f64);
    }
}
