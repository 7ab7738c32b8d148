//! Deterministic OpenMetrics data set for the PromQL differential test: what
//! a Prometheus scraping a small fleet for three hours would have stored.
//!
//! Owns the shape of the data (jobs, instances, restarts, outages, missed
//! scrapes, series that start and stop) and its text form for
//! `create-blocks-from openmetrics`. It must stay seeded and free of wall-clock
//! input: the corpus names absolute timestamps inside this data set.
//!
//! Stale markers cannot be written in OpenMetrics text (`NaN` parses as an
//! ordinary NaN, not the staleness NaN), so a series that stops here stays
//! visible for the 5m lookback after its last sample, where a scraping
//! Prometheus would have ended it at once. Staleness-marker semantics are
//! therefore covered by the conformance scripts, not by this data set.

use std::fmt::Write;

/// 2024-01-01T00:40:00Z: the first scrape slot. Not block-aligned, so the
/// 2h block boundary at 02:00:00 (`START + 80m`) falls inside the data.
pub const START_MS: i64 = 1_704_069_600_000;
/// Scrape interval.
pub const INTERVAL_MS: i64 = 15_000;
/// Scrape slots per target: three hours.
pub const SLOTS: i64 = 720;
/// First instant after the last scrape slot.
pub const END_MS: i64 = START_MS + SLOTS * INTERVAL_MS;

/// Minutes from `START_MS` as a slot index.
const fn min(m: i64) -> i64 {
    m * 60_000 / INTERVAL_MS
}

/// The generated data set.
pub struct DataSet {
    /// OpenMetrics text, ending with `# EOF`.
    pub text: String,
    /// Number of distinct series written.
    pub series: usize,
    /// Number of samples written.
    pub samples: usize,
    pub min_ms: i64,
    pub max_ms: i64,
}

/// splitmix64: small, fast, and stable across platforms and Rust versions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent stream for a named purpose, so adding a series does
    /// not shift every value generated after it.
    fn fork(&self, name: &str) -> Rng {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Poisson-like count with mean `mean` (normal approximation above 30).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let l = (-mean).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

/// One scrape target and what happened to it over the three hours.
struct Target {
    job: &'static str,
    instance: &'static str,
    /// Scrape time of slot i, or None when no sample exists for that slot
    /// (target absent, or the scrape failed).
    times: Vec<Option<i64>>,
    /// Whether the target was up at slot i (only meaningful while present).
    present: Vec<bool>,
    /// Process generation at slot i: a restart increments it.
    epoch: Vec<u32>,
    /// The target appeared during the data set (its process is new).
    fresh: bool,
}

struct TargetPlan {
    job: &'static str,
    instance: &'static str,
    /// Slots [first, last) in which the target is scraped at all.
    first: i64,
    last: i64,
    /// Slots at which the process restarted (counters start over).
    restarts: &'static [i64],
    /// Slot ranges in which scrapes fail (`up` is 0, nothing else written).
    outages: &'static [(i64, i64)],
    /// Probability that any one scrape fails.
    miss: f64,
}

const PLANS: &[TargetPlan] = &[
    TargetPlan {
        job: "api",
        instance: "api-0:8080",
        first: 0,
        last: SLOTS,
        restarts: &[],
        outages: &[],
        miss: 0.01,
    },
    TargetPlan {
        job: "api",
        instance: "api-1:8080",
        first: 0,
        last: SLOTS,
        restarts: &[min(100)],
        outages: &[],
        miss: 0.01,
    },
    // A 15 minute outage: longer than the 5m lookback.
    TargetPlan {
        job: "api",
        instance: "api-2:8080",
        first: 0,
        last: SLOTS,
        restarts: &[min(85)],
        outages: &[(min(70), min(85))],
        miss: 0.02,
    },
    // Decommissioned: every series of it stops at 2h25m.
    TargetPlan {
        job: "api",
        instance: "api-3:8080",
        first: 0,
        last: min(145),
        restarts: &[],
        outages: &[],
        miss: 0.0,
    },
    // Scaled up at 1h20m: series start mid-range from small values.
    TargetPlan {
        job: "api",
        instance: "api-4:8080",
        first: min(80),
        last: SLOTS,
        restarts: &[],
        outages: &[],
        miss: 0.01,
    },
    TargetPlan {
        job: "db",
        instance: "db-0:9187",
        first: 0,
        last: SLOTS,
        restarts: &[min(40)],
        outages: &[],
        miss: 0.005,
    },
    TargetPlan {
        job: "db",
        instance: "db-1:9187",
        first: 0,
        last: SLOTS,
        restarts: &[],
        outages: &[(min(120), min(123))],
        miss: 0.005,
    },
    TargetPlan {
        job: "node",
        instance: "node-0:9100",
        first: 0,
        last: SLOTS,
        restarts: &[],
        outages: &[],
        miss: 0.0,
    },
    TargetPlan {
        job: "node",
        instance: "node-1:9100",
        first: 0,
        last: SLOTS,
        restarts: &[min(150)],
        outages: &[],
        miss: 0.01,
    },
    TargetPlan {
        job: "node",
        instance: "node-2:9100",
        first: 0,
        last: SLOTS,
        restarts: &[],
        outages: &[],
        miss: 0.03,
    },
    TargetPlan {
        job: "batch",
        instance: "pushgateway:9091",
        first: 0,
        last: SLOTS,
        restarts: &[],
        outages: &[],
        miss: 0.0,
    },
    TargetPlan {
        job: "edge",
        instance: "edge:1",
        first: 0,
        last: SLOTS,
        restarts: &[],
        outages: &[],
        miss: 0.0,
    },
];

fn build_targets(rng: &Rng) -> Vec<Target> {
    PLANS
        .iter()
        .map(|p| {
            let mut r = rng.fork(p.instance);
            // Prometheus spreads targets over the interval by a hash offset.
            let offset = r.below(INTERVAL_MS as u64) as i64;
            let mut times = Vec::with_capacity(SLOTS as usize);
            let mut present = Vec::with_capacity(SLOTS as usize);
            let mut epoch = Vec::with_capacity(SLOTS as usize);
            let mut gen = 0u32;
            for i in 0..SLOTS {
                if p.restarts.contains(&i) {
                    gen += 1;
                }
                let jitter = r.below(25) as i64;
                let t = START_MS + i * INTERVAL_MS + offset + jitter;
                let scraped = i >= p.first && i < p.last;
                let down = p.outages.iter().any(|&(a, b)| i >= a && i < b) || r.chance(p.miss);
                times.push(if scraped { Some(t) } else { None });
                present.push(scraped && !down);
                epoch.push(gen);
            }
            Target {
                job: p.job,
                instance: p.instance,
                times,
                present,
                epoch,
                fresh: p.first > 0,
            }
        })
        .collect()
}

/// Formats a float as OpenMetrics text that parses back to the same bits.
fn fmt_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-5) {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Seconds with millisecond precision, as a scraper would write them.
fn fmt_ts(out: &mut String, ms: i64) {
    let _ = write!(out, "{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
}

/// Writes families, keeping each contiguous as OpenMetrics requires.
struct Writer {
    text: String,
    series: usize,
    samples: usize,
    min_ms: i64,
    max_ms: i64,
}

impl Writer {
    fn family(&mut self, name: &str, typ: &str, help: &str) {
        let _ = writeln!(self.text, "# TYPE {name} {typ}");
        let _ = writeln!(self.text, "# HELP {name} {help}");
    }

    /// `labels` is written in the given order; `escape` handles quotes,
    /// backslashes and newlines.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64, ms: i64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                for c in val.chars() {
                    match c {
                        '"' => self.text.push_str("\\\""),
                        '\\' => self.text.push_str("\\\\"),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        fmt_value(&mut self.text, v);
        self.text.push(' ');
        fmt_ts(&mut self.text, ms);
        self.text.push('\n');
        self.samples += 1;
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
    }
}

/// A counter following its target's restarts: per-scrape increments drawn
/// from `inc`. A target scraped from the start has been running for a day
/// (the counter starts high); a new target or a restarted process starts
/// at zero. That keeps the first sample of a fresh series at 0, where
/// Prometheus 2.42 and 2.53 extrapolate `rate` alike (see `edge_fresh`).
fn counter(
    w: &mut Writer,
    t: &Target,
    name: &str,
    extra: &[(&str, &str)],
    rng: &mut Rng,
    mut inc: impl FnMut(&mut Rng, i64) -> f64,
) {
    let labels = with_target(extra, t);
    let mut value = 0.0;
    let mut epoch = u32::MAX;
    let mut any = false;
    for i in 0..SLOTS as usize {
        let Some(ms) = t.times[i] else { continue };
        if t.epoch[i] != epoch {
            value = if epoch == u32::MAX && !t.fresh {
                (inc(rng, 0) * rng.range(2000.0, 6000.0)).round()
            } else {
                0.0
            };
            epoch = t.epoch[i];
        } else {
            value += inc(rng, i as i64);
        }
        if t.present[i] {
            w.sample(name, &labels, value, ms);
            any = true;
        }
    }
    if any {
        w.series += 1;
    }
}

/// A gauge: `f(rng, slot)` gives the value, `None` skips the sample.
fn gauge(
    w: &mut Writer,
    t: &Target,
    name: &str,
    extra: &[(&str, &str)],
    rng: &mut Rng,
    mut f: impl FnMut(&mut Rng, i64) -> Option<f64>,
) {
    let labels = with_target(extra, t);
    let mut any = false;
    for i in 0..SLOTS as usize {
        let Some(ms) = t.times[i] else { continue };
        let v = f(rng, i as i64);
        if !t.present[i] {
            continue;
        }
        if let Some(v) = v {
            w.sample(name, &labels, v, ms);
            any = true;
        }
    }
    if any {
        w.series += 1;
    }
}

fn with_target<'a>(extra: &[(&'a str, &'a str)], t: &'a Target) -> Vec<(&'a str, &'a str)> {
    let mut l: Vec<(&str, &str)> = extra.to_vec();
    l.push(("instance", t.instance));
    l.push(("job", t.job));
    l
}

/// A classic histogram: per scrape a Poisson number of observations drawn
/// log-normally around `median`; cumulative buckets, `_sum` and `_count`
/// written together per scrape as one OpenMetrics MetricPoint.
#[allow(clippy::too_many_arguments)]
fn histogram(
    w: &mut Writer,
    t: &Target,
    name: &str,
    extra: &[(&str, &str)],
    bounds: &[f64],
    per_scrape: f64,
    median: f64,
    rng: &mut Rng,
) {
    let le_text: Vec<String> = bounds
        .iter()
        .map(|b| {
            let mut s = String::new();
            fmt_value(&mut s, *b);
            s
        })
        .chain(std::iter::once("+Inf".to_string()))
        .collect();
    let base = with_target(extra, t);
    let mut counts = vec![0u64; bounds.len() + 1];
    let mut sum = 0.0;
    let mut epoch = u32::MAX;
    let mut any = false;
    let (bucket, count_name, sum_name) = (
        format!("{name}_bucket"),
        format!("{name}_count"),
        format!("{name}_sum"),
    );
    let observe = |rng: &mut Rng, n: u64, weight: u64, counts: &mut [u64], sum: &mut f64| {
        for _ in 0..n {
            let x = median * (0.9 * rng.normal()).exp();
            *sum += x * weight as f64;
            let b = bounds.iter().position(|&b| x <= b).unwrap_or(bounds.len());
            counts[b] += weight;
        }
    };
    for i in 0..SLOTS as usize {
        let Some(ms) = t.times[i] else { continue };
        if t.epoch[i] != epoch {
            counts.iter_mut().for_each(|c| *c = 0);
            sum = 0.0;
            if epoch == u32::MAX && !t.fresh {
                // A day of history: 400 draws standing for 40 times as many.
                observe(rng, 400, (per_scrape * 100.0) as u64, &mut counts, &mut sum);
            }
            epoch = t.epoch[i];
        } else {
            // Load varies slowly over the day.
            let load = 1.0 + 0.5 * ((i as f64) / 90.0).sin();
            let n = rng.poisson(per_scrape * load);
            observe(rng, n, 1, &mut counts, &mut sum);
        }
        if !t.present[i] {
            continue;
        }
        any = true;
        let mut cum = 0u64;
        for (b, le) in le_text.iter().enumerate() {
            cum += counts[b];
            let mut l = base.clone();
            l.insert(extra.len(), ("le", le));
            w.sample(&bucket, &l, cum as f64, ms);
        }
        w.sample(&count_name, &base, cum as f64, ms);
        w.sample(&sum_name, &base, sum, ms);
    }
    if any {
        w.series += le_text.len() + 2;
    }
}

/// A summary with 0.5/0.9/0.99 quantiles over the last scrape's
/// observations; NaN quantiles when a scrape saw none, as client libraries
/// report an empty window.
fn summary(
    w: &mut Writer,
    t: &Target,
    name: &str,
    extra: &[(&str, &str)],
    per_scrape: f64,
    rng: &mut Rng,
) {
    const QS: [(&str, f64); 3] = [("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99)];
    let base = with_target(extra, t);
    let (count_name, sum_name) = (format!("{name}_count"), format!("{name}_sum"));
    let mut count = 0u64;
    let mut sum = 0.0;
    let mut epoch = u32::MAX;
    let mut any = false;
    let mut obs: Vec<f64> = Vec::new();
    for i in 0..SLOTS as usize {
        let Some(ms) = t.times[i] else { continue };
        let fresh_epoch = t.epoch[i] != epoch;
        if fresh_epoch {
            count = 0;
            sum = 0.0;
            if epoch == u32::MAX && !t.fresh {
                count = (per_scrape * rng.range(2000.0, 6000.0)).round() as u64;
                sum = count as f64 * 0.025;
            }
            epoch = t.epoch[i];
        }
        // A restarted process reports an empty summary at its first scrape.
        let n = if fresh_epoch {
            0
        } else {
            rng.poisson(per_scrape)
        };
        obs.clear();
        for _ in 0..n {
            obs.push(0.02 * (0.7 * rng.normal()).exp());
        }
        obs.sort_by(f64::total_cmp);
        count += n;
        sum += obs.iter().sum::<f64>();
        if !t.present[i] {
            continue;
        }
        any = true;
        for (qt, q) in QS {
            let v = if obs.is_empty() {
                f64::NAN
            } else {
                obs[((obs.len() - 1) as f64 * q).round() as usize]
            };
            let mut l = base.clone();
            l.insert(extra.len(), ("quantile", qt));
            w.sample(name, &l, v, ms);
        }
        w.sample(&count_name, &base, count as f64, ms);
        w.sample(&sum_name, &base, sum, ms);
    }
    if any {
        w.series += QS.len() + 2;
    }
}

fn targets_of<'a>(ts: &'a [Target], job: &'a str) -> impl Iterator<Item = &'a Target> + 'a {
    ts.iter().filter(move |t| t.job == job)
}

/// Generates the data set for `seed`.
pub fn generate(seed: u64) -> DataSet {
    let root = Rng::new(seed);
    let targets = build_targets(&root);
    let mut w = Writer {
        text: String::with_capacity(48 << 20),
        series: 0,
        samples: 0,
        min_ms: i64::MAX,
        max_ms: i64::MIN,
    };

    // up: every slot of a scraped target, 0 when the scrape failed.
    w.family("up", "gauge", "Whether the last scrape succeeded.");
    for t in &targets {
        let labels = with_target(&[], t);
        let mut any = false;
        for i in 0..SLOTS as usize {
            if let Some(ms) = t.times[i] {
                w.sample("up", &labels, if t.present[i] { 1.0 } else { 0.0 }, ms);
                any = true;
            }
        }
        if any {
            w.series += 1;
        }
    }

    // ---- api ----
    w.family("http_requests", "counter", "Requests served.");
    for t in targets_of(&targets, "api") {
        for handler in ["/api/v1/query", "/api/v1/write"] {
            for method in ["GET", "POST"] {
                for code in ["200", "404", "500"] {
                    let mut r = root.fork(&format!("req{}{handler}{method}{code}", t.instance));
                    let base = match (handler, method, code) {
                        (_, _, "200") => 3.0,
                        (_, _, "404") => 0.2,
                        _ => 0.03,
                    } * if method == "GET" { 1.0 } else { 0.4 }
                        * r.range(0.5, 2.0);
                    counter(
                        &mut w,
                        t,
                        "http_requests_total",
                        &[("code", code), ("handler", handler), ("method", method)],
                        &mut r,
                        |r, i| {
                            let wave = 1.0 + 0.6 * ((i as f64) / 60.0).sin();
                            r.poisson(base * 15.0 * wave) as f64
                        },
                    );
                }
            }
        }
    }

    w.family(
        "http_request_duration_seconds",
        "histogram",
        "Request latency.",
    );
    const HTTP_BOUNDS: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    for t in targets_of(&targets, "api") {
        for handler in ["/api/v1/query", "/api/v1/write"] {
            for method in ["GET", "POST"] {
                let mut r = root.fork(&format!("lat{}{handler}{method}", t.instance));
                let median = if handler == "/api/v1/query" {
                    0.08
                } else {
                    0.012
                };
                let per = if method == "GET" { 30.0 } else { 6.0 };
                histogram(
                    &mut w,
                    t,
                    "http_request_duration_seconds",
                    &[("handler", handler), ("method", method)],
                    &HTTP_BOUNDS,
                    per,
                    median,
                    &mut r,
                );
            }
        }
    }

    w.family("rpc_duration_seconds", "summary", "RPC latency.");
    for t in targets_of(&targets, "api") {
        for service in ["auth", "storage"] {
            let mut r = root.fork(&format!("rpc{}{service}", t.instance));
            // auth is called rarely: empty windows give NaN quantiles.
            let per = if service == "auth" { 0.8 } else { 12.0 };
            summary(
                &mut w,
                t,
                "rpc_duration_seconds",
                &[("service", service)],
                per,
                &mut r,
            );
        }
    }

    w.family(
        "process_cpu_seconds",
        "counter",
        "CPU time used by the process.",
    );
    for job in ["api", "db"] {
        for t in targets_of(&targets, job) {
            let mut r = root.fork(&format!("cpu{}", t.instance));
            let busy = r.range(0.05, 0.9);
            counter(
                &mut w,
                t,
                "process_cpu_seconds_total",
                &[],
                &mut r,
                |r, _| (busy * 15.0 * r.range(0.7, 1.3) * 100.0).round() / 100.0,
            );
        }
    }

    w.family("process_resident_memory_bytes", "gauge", "Resident memory.");
    for job in ["api", "db"] {
        for t in targets_of(&targets, job) {
            let mut r = root.fork(&format!("rss{}", t.instance));
            let mut v = r.range(1e8, 9e8).round();
            let mut epoch = 0;
            gauge(
                &mut w,
                t,
                "process_resident_memory_bytes",
                &[],
                &mut r,
                |r, i| {
                    if t.epoch[i as usize] != epoch {
                        epoch = t.epoch[i as usize];
                        v = 5e7;
                    }
                    v = (v + r.normal() * 2e6 + 1e5).max(1e7).round();
                    Some(v)
                },
            );
        }
    }

    w.family("process_start_time_seconds", "gauge", "Process start time.");
    for job in ["api", "db"] {
        for t in targets_of(&targets, job) {
            let mut r = root.fork(&format!("start{}", t.instance));
            let first = (START_MS / 1000 - 86_400) as f64 + r.range(0.0, 3600.0).round();
            gauge(
                &mut w,
                t,
                "process_start_time_seconds",
                &[],
                &mut r,
                |_, i| {
                    let e = t.epoch[i as usize];
                    Some(if e == 0 {
                        first
                    } else {
                        // Restarted at the first slot of this generation.
                        let slot = (0..=i)
                            .rev()
                            .find(|&j| j == 0 || t.epoch[(j - 1) as usize] != e)
                            .unwrap_or(i);
                        ((START_MS + slot * INTERVAL_MS) / 1000 - 3) as f64
                    })
                },
            );
        }
    }

    w.family("go_goroutines", "gauge", "Number of goroutines.");
    for job in ["api", "db"] {
        for t in targets_of(&targets, job) {
            let mut r = root.fork(&format!("gor{}", t.instance));
            let mut v: f64 = r.range(40.0, 200.0).round();
            gauge(&mut w, t, "go_goroutines", &[], &mut r, |r, _| {
                v = (v + (r.normal() * 3.0).round()).max(8.0);
                Some(v)
            });
        }
    }

    w.family("queue_depth", "gauge", "Items waiting in a queue.");
    for t in targets_of(&targets, "api") {
        for queue in ["ingest", "notify"] {
            let mut r = root.fork(&format!("q{}{queue}", t.instance));
            let mut v: f64 = 0.0;
            gauge(
                &mut w,
                t,
                "queue_depth",
                &[("queue", queue)],
                &mut r,
                |r, _| {
                    v = (v + (r.normal() * 4.0).round()).clamp(0.0, 500.0);
                    // A broken collector occasionally reports NaN.
                    Some(if r.chance(0.004) { f64::NAN } else { v })
                },
            );
        }
    }

    w.family("build", "info", "Build information.");
    for job in ["api", "db"] {
        for t in targets_of(&targets, job) {
            let version = if t.instance.starts_with("api-4") {
                "1.5.0-rc.1"
            } else if job == "db" {
                "15.4"
            } else {
                "1.4.2"
            };
            let mut r = root.fork("build");
            gauge(
                &mut w,
                t,
                "build_info",
                &[
                    ("branch", "release/1.4 \"stable\""),
                    ("goversion", "go1.21.5"),
                    ("revision", "a1b2c3\\d4"),
                    ("version", version),
                ],
                &mut r,
                |_, _| Some(1.0),
            );
        }
    }

    // ---- db ----
    w.family(
        "pg_stat_database_xact_commit",
        "counter",
        "Committed transactions.",
    );
    for t in targets_of(&targets, "db") {
        for datname in ["orders", "users", "metrics"] {
            let mut r = root.fork(&format!("xact{}{datname}", t.instance));
            let rate = r.range(20.0, 400.0);
            counter(
                &mut w,
                t,
                "pg_stat_database_xact_commit_total",
                &[("datname", datname)],
                &mut r,
                |r, _| r.poisson(rate * 15.0) as f64,
            );
        }
    }

    w.family("pg_connections", "gauge", "Connections by state.");
    for t in targets_of(&targets, "db") {
        for state in ["active", "idle", "idle in transaction"] {
            let mut r = root.fork(&format!("conn{}{state}", t.instance));
            let mean = match state {
                "active" => 12.0,
                "idle" => 40.0,
                _ => 1.0,
            };
            gauge(
                &mut w,
                t,
                "pg_connections",
                &[("state", state)],
                &mut r,
                |r, _| Some(r.poisson(mean) as f64),
            );
        }
    }

    w.family("db_query_duration_seconds", "histogram", "Query latency.");
    const DB_BOUNDS: [f64; 6] = [0.001, 0.01, 0.1, 1.0, 10.0, 60.0];
    for t in targets_of(&targets, "db") {
        for op in ["read", "write"] {
            let mut r = root.fork(&format!("dbq{}{op}", t.instance));
            histogram(
                &mut w,
                t,
                "db_query_duration_seconds",
                &[("op", op)],
                &DB_BOUNDS,
                if op == "read" { 50.0 } else { 4.0 },
                if op == "read" { 0.004 } else { 0.08 },
                &mut r,
            );
        }
    }

    w.family(
        "clock_skew_seconds",
        "gauge",
        "Clock offset to the primary.",
    );
    for t in targets_of(&targets, "db") {
        let mut r = root.fork(&format!("skew{}", t.instance));
        gauge(&mut w, t, "clock_skew_seconds", &[], &mut r, |r, i| {
            Some(-0.0004 + 0.0006 * ((i as f64) / 40.0).sin() + r.normal() * 1e-5)
        });
    }

    // ---- node ----
    w.family("node_cpu_seconds", "counter", "CPU time by mode.");
    for t in targets_of(&targets, "node") {
        for cpu in ["0", "1", "2", "3"] {
            for mode in ["idle", "iowait", "system", "user"] {
                let mut r = root.fork(&format!("ncpu{}{cpu}{mode}", t.instance));
                let share = match mode {
                    "idle" => 0.7,
                    "user" => 0.2,
                    "system" => 0.08,
                    _ => 0.02,
                } * r.range(0.8, 1.2);
                counter(
                    &mut w,
                    t,
                    "node_cpu_seconds_total",
                    &[("cpu", cpu), ("mode", mode)],
                    &mut r,
                    |r, _| (share * 15.0 * r.range(0.8, 1.2) * 100.0).round() / 100.0,
                );
            }
        }
    }

    w.family(
        "node_memory_MemAvailable_bytes",
        "gauge",
        "Available memory.",
    );
    for t in targets_of(&targets, "node") {
        let mut r = root.fork(&format!("mem{}", t.instance));
        let total = [8.0, 16.0, 64.0][r.below(3) as usize] * 1073741824.0;
        let mut v = total * 0.6;
        gauge(
            &mut w,
            t,
            "node_memory_MemAvailable_bytes",
            &[],
            &mut r,
            |r, _| {
                v = (v + r.normal() * total * 0.005).clamp(total * 0.05, total * 0.95);
                Some((v / 4096.0).round() * 4096.0)
            },
        );
    }

    w.family("node_network_receive_bytes", "counter", "Bytes received.");
    for t in targets_of(&targets, "node") {
        for device in ["eth0", "lo"] {
            let mut r = root.fork(&format!("net{}{device}", t.instance));
            let rate = if device == "eth0" { 3e6 } else { 2e4 };
            counter(
                &mut w,
                t,
                "node_network_receive_bytes_total",
                &[("device", device)],
                &mut r,
                |r, _| (rate * 15.0 * r.range(0.3, 1.7)).round(),
            );
        }
    }

    w.family("node_hwmon_temp_celsius", "gauge", "Hardware temperatures.");
    for t in targets_of(&targets, "node") {
        for (chip, sensor, base) in [
            ("coretemp", "temp1", 55.0),
            ("acpitz", "temp1", 40.0),
            ("outdoor", "temp2", -12.5),
        ] {
            let mut r = root.fork(&format!("temp{}{chip}", t.instance));
            gauge(
                &mut w,
                t,
                "node_hwmon_temp_celsius",
                &[("chip", chip), ("sensor", sensor)],
                &mut r,
                |r, i| {
                    let v = base + 6.0 * ((i as f64) / 120.0).sin() + r.normal() * 0.4;
                    Some((v * 10.0).round() / 10.0)
                },
            );
        }
    }

    w.family("node_load1", "gauge", "1m load average.");
    for t in targets_of(&targets, "node") {
        let mut r = root.fork(&format!("load{}", t.instance));
        let mut v: f64 = 0.5;
        gauge(&mut w, t, "node_load1", &[], &mut r, |r, _| {
            v = (v * 0.92 + r.range(0.0, 0.4)).max(0.0);
            Some((v * 100.0).round() / 100.0)
        });
    }

    w.family(
        "node_timex_offset_seconds",
        "gauge",
        "Clock offset (tiny magnitudes).",
    );
    for t in targets_of(&targets, "node") {
        let mut r = root.fork(&format!("timex{}", t.instance));
        gauge(
            &mut w,
            t,
            "node_timex_offset_seconds",
            &[],
            &mut r,
            |r, _| Some(r.normal() * 3e-7),
        );
    }

    w.family(
        "node_filesystem_avail_bytes",
        "gauge",
        "Free filesystem space.",
    );
    for t in targets_of(&targets, "node") {
        for (mountpoint, fstype) in [("/", "ext4"), ("/boot", "vfat"), ("/var/lib", "xfs")] {
            let mut r = root.fork(&format!("fs{}{mountpoint}", t.instance));
            let mut v = r.range(1e9, 4e11).round();
            let fill = r.range(1e4, 1e6);
            gauge(
                &mut w,
                t,
                "node_filesystem_avail_bytes",
                &[("fstype", fstype), ("mountpoint", mountpoint)],
                &mut r,
                |r, _| {
                    v = (v - fill * r.range(0.0, 2.0)).max(0.0).round();
                    Some(v)
                },
            );
        }
    }

    // ---- batch (a pushgateway: sparse and one-off series) ----
    let batch = targets_of(&targets, "batch").next();
    if let Some(t) = batch {
        w.family(
            "batch_last_success_timestamp_seconds",
            "gauge",
            "When each batch job last succeeded.",
        );
        for (name, every) in [("nightly", 200), ("hourly", 240), ("reindex", 97)] {
            let mut r = root.fork(&format!("batch{name}"));
            let mut last = (START_MS / 1000 - 1800) as f64;
            gauge(
                &mut w,
                t,
                "batch_last_success_timestamp_seconds",
                &[("batch_job", name)],
                &mut r,
                |_, i| {
                    if i > 0 && i % every == 0 {
                        last = ((START_MS + i * INTERVAL_MS) / 1000) as f64;
                    }
                    Some(last)
                },
            );
        }

        w.family(
            "batch_records_processed",
            "counter",
            "Records processed by batch jobs.",
        );
        for batch_job in ["nightly", "hourly"] {
            let mut r = root.fork(&format!("rec{batch_job}"));
            counter(
                &mut w,
                t,
                "batch_records_processed_total",
                &[("batch_job", batch_job)],
                &mut r,
                // Bursty: mostly flat, sometimes a large step.
                |r, _| {
                    if r.chance(0.05) {
                        r.range(1000.0, 50000.0).round()
                    } else {
                        0.0
                    }
                },
            );
        }

        // Present only every 8th slot (2m): always within the lookback.
        w.family("batch_sparse_gauge", "gauge", "Written every 2 minutes.");
        let mut r = root.fork("sparse");
        gauge(&mut w, t, "batch_sparse_gauge", &[], &mut r, |r, i| {
            (i % 8 == 3).then(|| r.range(-5.0, 5.0).round())
        });

        // Present every 24th slot (6m): gaps longer than the lookback.
        w.family("batch_gappy_gauge", "gauge", "Written every 6 minutes.");
        let mut r = root.fork("gappy");
        gauge(&mut w, t, "batch_gappy_gauge", &[], &mut r, |r, i| {
            (i % 24 == 5).then(|| r.range(0.0, 100.0).round())
        });

        // A single sample.
        w.family("batch_one_shot", "gauge", "Written once.");
        let mut r = root.fork("oneshot");
        gauge(&mut w, t, "batch_one_shot", &[], &mut r, |_, i| {
            (i == min(95)).then_some(7.0)
        });
    }

    // ---- edge: values chosen for arithmetic corner cases ----
    if let Some(t) = targets_of(&targets, "edge").next() {
        w.family("edge_const", "gauge", "Always 42.");
        let mut r = root.fork("edge");
        gauge(&mut w, t, "edge_const", &[], &mut r, |_, _| Some(42.0));

        w.family("edge_zero", "gauge", "Always 0.");
        gauge(&mut w, t, "edge_zero", &[], &mut r, |_, _| Some(0.0));

        w.family("edge_inf", "gauge", "Finite, +Inf and -Inf in turn.");
        gauge(&mut w, t, "edge_inf", &[], &mut r, |_, i| {
            Some(match (i / 20) % 4 {
                0 => 1.5,
                1 => f64::INFINITY,
                2 => -3.0,
                _ => f64::NEG_INFINITY,
            })
        });

        w.family("edge_nan", "gauge", "Often NaN.");
        gauge(&mut w, t, "edge_nan", &[], &mut r, |r, i| {
            Some(if (i / 10) % 3 == 1 {
                f64::NAN
            } else {
                r.range(-10.0, 10.0).round()
            })
        });

        w.family("edge_huge", "gauge", "Near the float maximum.");
        gauge(
            &mut w,
            t,
            "edge_huge",
            &[("sign", "pos")],
            &mut r,
            |r, _| Some(r.range(1.0, 1.7) * 1e308),
        );
        gauge(
            &mut w,
            t,
            "edge_huge",
            &[("sign", "neg")],
            &mut r,
            |r, _| Some(-r.range(1.0, 1.7) * 1e308),
        );

        w.family("edge_tiny", "gauge", "Subnormal-adjacent values.");
        gauge(&mut w, t, "edge_tiny", &[], &mut r, |r, _| {
            Some(r.range(1.0, 9.0) * 1e-300)
        });

        // Two metrics with the same labels: dropping __name__ collides.
        w.family("edge_dup_a", "gauge", "Same labels as edge_dup_b.");
        gauge(&mut w, t, "edge_dup_a", &[("k", "v")], &mut r, |_, i| {
            Some(i as f64)
        });
        w.family("edge_dup_b", "gauge", "Same labels as edge_dup_a.");
        gauge(&mut w, t, "edge_dup_b", &[("k", "v")], &mut r, |_, i| {
            Some(-(i as f64))
        });

        // Label values needing escapes and UTF-8.
        w.family("edge_labels", "gauge", "Unusual label values.");
        for (path, unicode) in [
            ("/a\"b", "日本"),
            ("C:\\dir\\file", "ünïcödé"),
            ("line\nbreak", "emoji 🚀"),
            ("/plain", "ascii"),
        ] {
            gauge(
                &mut w,
                t,
                "edge_labels",
                &[("path", path), ("unicode", unicode)],
                &mut r,
                |_, i| Some((i % 7) as f64),
            );
        }

        // A counter resetting every 50 slots to a small non-zero value.
        w.family("edge_resets", "counter", "Frequent resets.");
        gauge(&mut w, t, "edge_resets_total", &[], &mut r, |_, i| {
            let base = if i < 50 { 1000.0 } else { 3.0 };
            Some(base + 5.0 * (i % 50) as f64)
        });

        // A counter that appears at 1h with its first sample at one
        // increment: the case where Prometheus 2.51 changed `rate`
        // extrapolation (#13725), so 2.42 and 2.53 differ by design.
        w.family("edge_fresh", "counter", "Starts at 1h from one increment.");
        gauge(&mut w, t, "edge_fresh_total", &[], &mut r, |_, i| {
            (i >= min(60)).then(|| 10.0 * (i - min(60) + 1) as f64)
        });

        // Same value for identical label sets under two jobs is avoided
        // elsewhere; here ties for topk/bottomk/sort are deliberate.
        w.family("edge_ties", "gauge", "Tied values.");
        for k in ["a", "b", "c", "d"] {
            gauge(&mut w, t, "edge_ties", &[("k", k)], &mut r, |_, i| {
                Some(if k == "d" { 2.0 } else { (i % 3) as f64 })
            });
        }

        w.family("edge_unknown", "unknown", "Untyped.");
        gauge(&mut w, t, "edge_unknown", &[], &mut r, |_, i| {
            Some(((i * 37) % 101) as f64 - 50.0)
        });
    }

    w.text.push_str("# EOF\n");
    DataSet {
        text: w.text,
        series: w.series,
        samples: w.samples,
        min_ms: w.min_ms,
        max_ms: w.max_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(7);
        assert_eq!(a.text, generate(7).text);
        assert_ne!(a.text, generate(8).text);
        assert!(a.text.ends_with("# EOF\n"));
        assert!(a.series > 300 && a.series < 3000, "{} series", a.series);
    }

    /// What promtool needs: each series in strictly increasing time; and
    /// what a histogram means: cumulative buckets per scrape.
    #[test]
    fn series_are_time_ordered_and_buckets_cumulative() {
        let d = generate(7);
        let mut last_ts: HashMap<&str, i64> = HashMap::new();
        let mut bucket_run: Option<(String, i64, f64)> = None;
        for line in d.text.lines().filter(|l| !l.starts_with('#')) {
            let (series, rest) = line.rsplit_once('}').map_or_else(
                || line.split_once(' ').expect("name and value"),
                |(s, r)| (s, r.trim_start()),
            );
            let (_, ts) = rest.rsplit_once(' ').expect("value and timestamp");
            let ms = (ts.parse::<f64>().expect("timestamp") * 1000.0).round() as i64;
            if let Some(prev) = last_ts.insert(series, ms) {
                assert!(ms > prev, "{series}: {ms} after {prev}");
            }
            assert!((d.min_ms..=d.max_ms).contains(&ms));
            if let Some(i) = series.find(",le=\"") {
                // The series without its `le` label.
                let after_le = &series[i + 5..];
                let end = after_le.find('"').expect("closing quote") + 1;
                let key = format!("{}{}", &series[..i], &after_le[end..]);
                let v: f64 = rest
                    .split(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("value");
                if let Some((k, t, prev)) = &bucket_run {
                    if *k == key && *t == ms {
                        assert!(v >= *prev, "{series} at {ms}: {v} < {prev}");
                    }
                }
                bucket_run = Some((key, ms, v));
            }
        }
    }
}
