//! Parser throughput on a node_exporter-like body (~2,000 series).
//!
//! `cargo bench --bench scrape_parse`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_scrape::expfmt::{push_go_float, Entry, Format, Parser};

/// A body shaped like node_exporter's: HELP/TYPE per family, cpu/mode,
/// device, interface and filesystem label sets, Go-formatted values.
pub fn node_exporter_body(format: Format) -> String {
    let mut out = String::new();
    let mut n = 0u64;
    let mut value = |out: &mut String, i: u64| {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407 + i);
        let v = match n >> 62 {
            0 => (n >> 40) as f64,
            1 => (n >> 20) as f64 / 1000.0,
            2 => (n >> 33) as f64 * 1.5,
            _ => ((n >> 50) % 100) as f64,
        };
        push_go_float(out, v);
    };
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    };
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    family(
        &mut out,
        "node_cpu_seconds_total",
        "counter",
        "Seconds the CPUs spent in each mode.",
    );
    for cpu in 0..32 {
        for mode in modes {
            out.push_str(&format!(
                "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} "
            ));
            value(&mut out, cpu);
            out.push('\n');
        }
    }
    let disk = [
        "node_disk_io_time_seconds_total",
        "node_disk_read_bytes_total",
        "node_disk_reads_completed_total",
        "node_disk_write_time_seconds_total",
        "node_disk_written_bytes_total",
        "node_disk_writes_completed_total",
        "node_disk_discards_completed_total",
        "node_disk_io_now",
    ];
    for m in disk {
        family(
            &mut out,
            m,
            "counter",
            "Disk statistic from /proc/diskstats.",
        );
        for d in 0..24 {
            out.push_str(&format!("{m}{{device=\"nvme{}n{}\"}} ", d / 4, d % 4));
            value(&mut out, d);
            out.push('\n');
        }
    }
    let net = [
        "node_network_receive_bytes_total",
        "node_network_receive_packets_total",
        "node_network_receive_errs_total",
        "node_network_receive_drop_total",
        "node_network_transmit_bytes_total",
        "node_network_transmit_packets_total",
        "node_network_transmit_errs_total",
        "node_network_transmit_drop_total",
        "node_network_up",
        "node_network_mtu_bytes",
    ];
    for m in net {
        family(
            &mut out,
            m,
            "gauge",
            "Network device statistic from /proc/net/dev.",
        );
        for d in 0..40 {
            out.push_str(&format!("{m}{{device=\"veth{d:04x}a1\"}} "));
            value(&mut out, d);
            out.push('\n');
        }
    }
    let fs = [
        "node_filesystem_avail_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_filesystem_free_bytes",
        "node_filesystem_readonly",
        "node_filesystem_size_bytes",
    ];
    for m in fs {
        family(
            &mut out,
            m,
            "gauge",
            "Filesystem space available to non-root users in bytes.",
        );
        for d in 0..30 {
            out.push_str(&format!(
                "{m}{{device=\"/dev/mapper/vg0-lv{d}\",fstype=\"ext4\",mountpoint=\"/var/lib/docker/overlay2/{d:08x}/merged\"}} "
            ));
            value(&mut out, d);
            out.push('\n');
        }
    }
    for i in 0..360 {
        let name = format!("node_vmstat_counter_{i}");
        family(
            &mut out,
            &name,
            "untyped",
            "/proc/vmstat information field.",
        );
        out.push_str(&name);
        out.push(' ');
        value(&mut out, i);
        out.push('\n');
    }
    family(
        &mut out,
        "node_scrape_collector_duration_seconds",
        "gauge",
        "node_exporter: Duration of a collector scrape.",
    );
    for c in 0..40 {
        out.push_str(&format!(
            "node_scrape_collector_duration_seconds{{collector=\"collector{c}\"}} "
        ));
        value(&mut out, c);
        out.push('\n');
    }
    family(
        &mut out,
        "go_gc_duration_seconds",
        "summary",
        "A summary of the pause duration of garbage collection cycles.",
    );
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        out.push_str(&format!("go_gc_duration_seconds{{quantile=\"{q}\"}} "));
        value(&mut out, 1);
        out.push('\n');
    }
    family(
        &mut out,
        "node_interrupts_total",
        "counter",
        "Interrupt details.",
    );
    for i in 0..500 {
        out.push_str(&format!(
            "node_interrupts_total{{cpu=\"{}\",devices=\"nvme0q{}\",info=\"PCI-MSI-edge\",type=\"{}\"}} ",
            i % 32,
            i / 32,
            100 + i
        ));
        value(&mut out, i);
        out.push('\n');
    }
    if format == Format::OpenMetrics {
        out = out.replace("untyped", "unknown");
        out.push_str("# EOF\n");
    }
    out
}

fn count_series(body: &str, format: Format) -> usize {
    let mut p = Parser::new(body.as_bytes(), format);
    let mut n = 0;
    while let Some(e) = p.next_entry().expect("bench body parses") {
        if matches!(e, Entry::Series(_)) {
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let body = node_exporter_body(format);
        let series = count_series(&body, format);
        let mut g = c.benchmark_group(format!("parse/{format:?}/{series}series"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("entries", |b| {
            b.iter(|| {
                let mut p = Parser::new(black_box(body.as_bytes()), format);
                let mut acc = 0.0;
                while let Ok(Some(e)) = p.next_entry() {
                    if let Entry::Series(s) = e {
                        acc += s.value;
                        black_box(s.series);
                    }
                }
                acc
            })
        });
        g.bench_function("entries+labels", |b| {
            let mut scratch = String::new();
            b.iter(|| {
                let mut p = Parser::new(black_box(body.as_bytes()), format);
                let mut n = 0usize;
                while let Ok(Some(e)) = p.next_entry() {
                    if let Entry::Series(s) = e {
                        for (name, v) in s.labels() {
                            n += name.len() + v.decode_into(&mut scratch).len();
                        }
                    }
                }
                n
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
