//! Terminal line charts drawn with Unicode braille (2x4 dots per cell),
//! with a labelled y axis, start/end times on the x axis, one ANSI colour
//! per series and a legend.

use vigil_web::MatrixSeries;

use super::render::{series_name, time_string, value_string};

const PALETTE: [&str; 6] = [
    "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[31m",
];
const RESET: &str = "\x1b[0m";

/// Chart size in character cells (plot area only).
#[derive(Debug, Clone, Copy)]
pub struct ChartSize {
    pub width: usize,
    pub height: usize,
}

impl Default for ChartSize {
    fn default() -> Self {
        ChartSize {
            width: 72,
            height: 16,
        }
    }
}

/// Dot bit of braille cell position (dx 0..2, dy 0..4).
fn dot_bit(dx: usize, dy: usize) -> u8 {
    const BITS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];
    BITS[dx][dy]
}

struct Canvas {
    w: usize,
    h: usize,
    dots: Vec<u8>,
    colour: Vec<Option<usize>>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            dots: vec![0; w * h],
            colour: vec![None; w * h],
        }
    }

    /// Sets pixel (x, y), y = 0 at the top.
    fn set(&mut self, x: i64, y: i64, series: usize) {
        if x < 0 || y < 0 || x >= (self.w * 2) as i64 || y >= (self.h * 4) as i64 {
            return;
        }
        let (x, y) = (x as usize, y as usize);
        let cell = (y / 4) * self.w + x / 2;
        self.dots[cell] |= dot_bit(x % 2, y % 4);
        self.colour[cell] = Some(series);
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), series: usize) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, series);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// Draws every series over `[start, end]` (ms). Consecutive samples more
/// than 1.5 steps apart are not joined, so gaps stay visible.
pub fn render(
    series: &[MatrixSeries],
    start: i64,
    end: i64,
    step: i64,
    size: ChartSize,
    colour: bool,
) -> String {
    let finite = series
        .iter()
        .flat_map(|s| s.samples.iter().map(|p| p.v))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if series.is_empty() || !lo.is_finite() {
        return "(no data)\n".to_string();
    }
    if lo == hi {
        lo -= 1.0;
        hi += 1.0;
    }
    let (w, h) = (size.width.max(4), size.height.max(2));
    let mut canvas = Canvas::new(w, h);
    let span = (end - start).max(1) as f64;
    let px = |t: i64| ((t - start) as f64 / span * (w * 2 - 1) as f64).round() as i64;
    let py = |v: f64| ((hi - v) / (hi - lo) * (h * 4 - 1) as f64).round() as i64;
    for (i, s) in series.iter().enumerate() {
        let mut prev: Option<(i64, (i64, i64))> = None;
        for p in s.samples.iter().filter(|p| p.v.is_finite()) {
            let cur = (px(p.t), py(p.v));
            match prev {
                Some((pt, pp)) if (p.t - pt) as f64 <= 1.5 * step.max(1) as f64 => {
                    canvas.line(pp, cur, i)
                }
                _ => canvas.set(cur.0, cur.1, i),
            }
            prev = Some((p.t, cur));
        }
    }
    let labels = [
        value_string(hi),
        value_string((hi + lo) / 2.0),
        value_string(lo),
    ];
    let lw = labels.iter().map(|l| l.len()).max().unwrap_or(1);
    let mut out = String::new();
    for row in 0..h {
        let label = if row == 0 {
            &labels[0]
        } else if row == h / 2 {
            &labels[1]
        } else if row == h - 1 {
            &labels[2]
        } else {
            ""
        };
        out.push_str(&format!("{:>lw$} ┤", label, lw = lw));
        for col in 0..w {
            let cell = row * w + col;
            let ch = char::from_u32(0x2800 + canvas.dots[cell] as u32).unwrap_or(' ');
            match (colour, canvas.colour[cell]) {
                (true, Some(c)) => {
                    out.push_str(&format!("{}{}{}", PALETTE[c % PALETTE.len()], ch, RESET))
                }
                _ => out.push(ch),
            }
        }
        out.push('\n');
    }
    out.push_str(&format!("{:>lw$} └{}\n", "", "─".repeat(w), lw = lw));
    let (l, r) = (time_string(start), time_string(end));
    let gap = (w + 2).saturating_sub(l.len() + r.len()).max(1);
    out.push_str(&format!(
        "{:>lw$}{}{}{}\n",
        "",
        l,
        " ".repeat(gap),
        r,
        lw = lw
    ));
    for (i, s) in series.iter().enumerate() {
        let name = series_name(&s.labels);
        if colour {
            out.push_str(&format!(
                "{}⣿{} {}\n",
                PALETTE[i % PALETTE.len()],
                RESET,
                name
            ));
        } else {
            out.push_str(&format!("[{}] {}\n", i + 1, name));
        }
    }
    out
}
