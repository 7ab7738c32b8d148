//! Log output in Prometheus's two formats: `logfmt` (default) and `json`,
//! selected by `--log.format`, filtered by `--log.level`.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Logs go to stderr, as Prometheus's do.
pub fn init(level: &str, format: &str) {
    // RUST_LOG, when set, refines the level per module (for debugging).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.event_format(Logfmt).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// `ts=... level=info caller=module msg="..." key=value` lines.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(128);
        let now = humantime_now();
        let _ = write!(
            line,
            "ts={} level={} caller={}",
            now,
            meta.level().as_str().to_ascii_lowercase(),
            meta.target()
        );
        let mut visitor = LogfmtVisitor { out: &mut line };
        event.record(&mut visitor);
        writeln!(writer, "{line}")
    }
}

struct LogfmtVisitor<'a> {
    out: &'a mut String,
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_pair(self.out, key(field), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        push_pair(self.out, key(field), &format!("{value:?}"));
    }
}

/// tracing calls the message `message`; Prometheus's logs call it `msg`.
fn key(field: &Field) -> &'static str {
    match field.name() {
        "message" => "msg",
        other => other,
    }
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    if !value.is_empty() && !value.contains([' ', '"', '=', '\n', '\t']) {
        out.push_str(value);
    } else {
        out.push('"');
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// RFC 3339 UTC timestamp with milliseconds, without a date crate.
fn humantime_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339_millis(now.as_millis() as i64)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_millis(ms: i64) -> String {
    let t = vigil_model::gofmt::GoTime::from_unix(ms.div_euclid(1000));
    let millis = ms.rem_euclid(1000);
    let (y, m, d) = t.ymd();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn logfmt_quotes_when_needed() {
        let mut s = String::new();
        push_pair(&mut s, "msg", "two words");
        push_pair(&mut s, "k", "v");
        push_pair(&mut s, "e", "");
        assert_eq!(s, r#" msg="two words" k=v e="""#);
    }
}
