//! Go's text formats, byte for byte: `strconv.FormatFloat` with the shortest
//! precision, Prometheus's JSON float rule, `strconv.Quote`, and the civil
//! date of a Unix time as Go's `time` package computes it.
//!
//! Prometheus's answers are whatever Go prints, so every crate that prints a
//! float, quotes a string or turns seconds into a date goes through here;
//! there is no second copy. Pure functions only: no I/O, no allocation on
//! the float paths unless the caller asks for a `String`.

mod float;
mod quote;
mod time;

pub use float::{append_float, format_float, FloatFormat, GoFloat};
pub use quote::{is_print, quote, quote_bytes, write_quoted};
pub use time::{days_in_month, unix_days_from_date, GoTime};
