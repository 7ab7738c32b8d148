//! The civil date of a Unix time in UTC, computed as Go 1.22's `time`
//! package computes it (`time.Unix(sec, 0).UTC()`), including what it does
//! with times no calendar holds: Go counts in unsigned 64-bit seconds from
//! the year -292277022399 and lets the arithmetic wrap, so
//! `time.Unix(math.MinInt64, 0)` is in December of the year 292277026596.
//! PromQL's date functions show those values (`month(vector(NaN))` is 12).

const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_HOUR: u64 = 60 * SECONDS_PER_MINUTE;
const SECONDS_PER_DAY: u64 = 24 * SECONDS_PER_HOUR;
const SECONDS_PER_WEEK: u64 = 7 * SECONDS_PER_DAY;
const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;

/// Go's `absoluteZeroYear`: day 0 of the unsigned count is January 1 of
/// this year (a Monday, like January 1 of 2001).
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
/// Go's `unixToInternal + internalToAbsolute`: seconds from the absolute
/// zero to 1970-01-01 (365.2425 days a year over whole 400-year cycles,
/// plus 1969 years from year 1 to the Unix epoch).
const UNIX_TO_ABSOLUTE: i64 = (1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400) * 86_400
    - (ABSOLUTE_ZERO_YEAR - 1) * 31_556_952;

/// Days before each month in a non-leap year; `[12]` is the whole year.
const DAYS_BEFORE: [u32; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

/// A point in time as Go's `time.Time` in UTC holds it for calendar
/// questions: seconds since the absolute zero, modulo 2^64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoTime {
    abs: u64,
}

/// The parts of a calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Date {
    year: i64,
    month: u32,
    day: u32,
    /// 0-based day of the year.
    yday: u32,
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

impl GoTime {
    /// `time.Unix(sec, 0).UTC()`.
    pub fn from_unix(sec: i64) -> GoTime {
        GoTime {
            abs: sec.wrapping_add(UNIX_TO_ABSOLUTE) as u64,
        }
    }

    /// Seconds since 1970-01-01T00:00:00Z (`t.Unix()`).
    pub fn unix(self) -> i64 {
        (self.abs as i64).wrapping_sub(UNIX_TO_ABSOLUTE)
    }

    /// Go's `absDate`.
    fn date(self) -> Date {
        let mut d = self.abs / SECONDS_PER_DAY;
        let mut n = d / DAYS_PER_400_YEARS;
        let mut y = 400 * n;
        d -= DAYS_PER_400_YEARS * n;
        // The last day of a 400-year cycle would count as a fifth century.
        n = d / DAYS_PER_100_YEARS;
        n -= n >> 2;
        y += 100 * n;
        d -= DAYS_PER_100_YEARS * n;
        n = d / DAYS_PER_4_YEARS;
        y += 4 * n;
        d -= DAYS_PER_4_YEARS * n;
        // Likewise the last day of a 4-year cycle.
        n = d / 365;
        n -= n >> 2;
        y += n;
        d -= 365 * n;

        let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
        let yday = d as u32;
        let mut day = yday;
        if is_leap(year) {
            if day == 31 + 29 - 1 {
                return Date {
                    year,
                    month: 2,
                    day: 29,
                    yday,
                };
            }
            if day > 31 + 29 - 1 {
                day -= 1;
            }
        }
        // Assuming 31-day months the estimate is at most one month low.
        let mut month = (day / 31) as usize;
        let end = DAYS_BEFORE[month + 1];
        let begin = if day >= end {
            month += 1;
            end
        } else {
            DAYS_BEFORE[month]
        };
        Date {
            year,
            month: month as u32 + 1,
            day: day - begin + 1,
            yday,
        }
    }

    /// `t.Year()`.
    pub fn year(self) -> i64 {
        self.date().year
    }

    /// `t.Month()`, 1 to 12.
    pub fn month(self) -> u32 {
        self.date().month
    }

    /// `t.Day()`, 1 to 31.
    pub fn day(self) -> u32 {
        self.date().day
    }

    /// `t.YearDay()`, 1 to 366.
    pub fn year_day(self) -> u32 {
        self.date().yday + 1
    }

    /// `(year, month, day)` at once.
    pub fn ymd(self) -> (i64, u32, u32) {
        let d = self.date();
        (d.year, d.month, d.day)
    }

    /// `t.Hour()`.
    pub fn hour(self) -> u32 {
        ((self.abs % SECONDS_PER_DAY) / SECONDS_PER_HOUR) as u32
    }

    /// `t.Minute()`.
    pub fn minute(self) -> u32 {
        ((self.abs % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE) as u32
    }

    /// `t.Second()`.
    pub fn second(self) -> u32 {
        (self.abs % SECONDS_PER_MINUTE) as u32
    }

    /// `t.Weekday()`, 0 = Sunday.
    pub fn weekday(self) -> u32 {
        // Day 0 of the absolute count is a Monday.
        let sec = self.abs.wrapping_add(SECONDS_PER_DAY) % SECONDS_PER_WEEK;
        (sec / SECONDS_PER_DAY) as u32
    }

    /// Prometheus's `days_in_month`:
    /// `32 - time.Date(t.Year(), t.Month(), 32, 0, 0, 0, 0, time.UTC).Day()`,
    /// with Go's wrapping arithmetic for years no calendar holds.
    pub fn days_in_month(self) -> u32 {
        let d = self.date();
        32 - GoTime::from_date_abs(d.year, d.month, 32).day()
    }

    /// `time.Date(year, month, day, 0, 0, 0, 0, time.UTC)` for `month` in
    /// 1..=12 and `day >= 1` (Go's normalisation of other fields is not
    /// needed here).
    fn from_date_abs(year: i64, month: u32, day: u32) -> GoTime {
        let month = month.clamp(1, 12);
        let mut d = days_since_absolute_zero(year);
        d = d.wrapping_add(u64::from(DAYS_BEFORE[month as usize - 1]));
        if is_leap(year) && month >= 3 {
            d = d.wrapping_add(1);
        }
        d = d.wrapping_add(u64::from(day.max(1) - 1));
        GoTime {
            abs: d.wrapping_mul(SECONDS_PER_DAY),
        }
    }
}

/// Go's `daysSinceEpoch`: days from the absolute zero to January 1 of
/// `year`, in wrapping unsigned arithmetic.
fn days_since_absolute_zero(year: i64) -> u64 {
    let mut y = year.wrapping_sub(ABSOLUTE_ZERO_YEAR) as u64;
    let mut n = y / 400;
    y -= 400 * n;
    let mut d = DAYS_PER_400_YEARS.wrapping_mul(n);
    n = y / 100;
    y -= 100 * n;
    d = d.wrapping_add(DAYS_PER_100_YEARS * n);
    n = y / 4;
    y -= 4 * n;
    d = d.wrapping_add(DAYS_PER_4_YEARS * n);
    d.wrapping_add(365 * y)
}

/// Days in `month` (1..=12) of `year` in the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        1..=12 => DAYS_BEFORE[month as usize] - DAYS_BEFORE[month as usize - 1],
        _ => 0,
    }
}

/// Days from 1970-01-01 to `year-month-day` (month 1..=12, day >= 1), as
/// `time.Date(...).Unix() / 86400` for any date an i64 of seconds holds.
pub fn unix_days_from_date(year: i64, month: u32, day: u32) -> i64 {
    GoTime::from_date_abs(year, month, day)
        .unix()
        .div_euclid(SECONDS_PER_DAY as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(sec: i64) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
        let t = GoTime::from_unix(sec);
        (
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.weekday(),
            t.year_day(),
        )
    }

    #[test]
    fn ordinary_dates() {
        // 2006-01-02T15:04:05Z, a Monday, Go's reference time.
        assert_eq!(parts(1_136_214_245), (2006, 1, 2, 15, 4, 5, 1, 2));
        assert_eq!(parts(0), (1970, 1, 1, 0, 0, 0, 4, 1));
        assert_eq!(parts(-1), (1969, 12, 31, 23, 59, 59, 3, 365));
        // 2016-12-31, day 366 of a leap year; 2000-02-29.
        assert_eq!(GoTime::from_unix(1_483_191_420).year_day(), 366);
        assert_eq!(GoTime::from_unix(951_782_400).ymd(), (2000, 2, 29));
        // Year 1 and year 9999.
        assert_eq!(GoTime::from_unix(-62_135_596_800).ymd(), (1, 1, 1));
        assert_eq!(GoTime::from_unix(253_402_300_799).ymd(), (9999, 12, 31));
        assert_eq!(GoTime::from_unix(1_136_214_245).unix(), 1_136_214_245);
    }

    /// What Prometheus (Go) answers for times no calendar holds: NaN, ±Inf
    /// and out-of-range floats all convert to `math.MinInt64` on amd64.
    #[test]
    fn min_int64_wraps_like_go() {
        let t = GoTime::from_unix(i64::MIN);
        assert_eq!(t.month(), 12);
        assert_eq!(t.year(), 292_277_026_596);
        assert_eq!(t.hour(), 15);
        assert_eq!(t.day(), 4);
    }

    #[test]
    fn days_in_month_follows_prometheus() {
        let dim =
            |y, m, d| GoTime::from_unix(unix_days_from_date(y, m, d) * 86_400).days_in_month();
        assert_eq!(dim(2016, 2, 10), 29);
        assert_eq!(dim(1900, 2, 1), 28);
        assert_eq!(dim(2000, 2, 1), 29);
        assert_eq!(dim(2023, 12, 31), 31);
        assert_eq!(dim(2023, 4, 30), 30);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 11), 30);
        assert_eq!(days_in_month(2023, 13), 0);
    }

    /// Howard Hinnant's `civil_from_days`, an independent algorithm, as
    /// the oracle for every date an ordinary calendar holds.
    fn hinnant(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    proptest! {
        #[test]
        fn agrees_with_the_proleptic_gregorian_calendar(sec in -(1i64 << 50)..(1i64 << 50)) {
            let t = GoTime::from_unix(sec);
            let days = sec.div_euclid(86_400);
            prop_assert_eq!(t.ymd(), hinnant(days));
            prop_assert_eq!(t.weekday() as i64, (days + 4).rem_euclid(7));
            let (y, m, d) = t.ymd();
            prop_assert_eq!(unix_days_from_date(y, m, d), days);
            prop_assert_eq!(
                t.year_day() as i64,
                days - unix_days_from_date(y, 1, 1) + 1
            );
            prop_assert_eq!(t.days_in_month(), days_in_month(y, m));
            let sod = sec.rem_euclid(86_400);
            prop_assert_eq!(
                (t.hour() as i64, t.minute() as i64, t.second() as i64),
                (sod / 3600, sod / 60 % 60, sod % 60)
            );
        }

        /// Any i64 gives a date without panicking (the arithmetic wraps).
        #[test]
        fn every_i64_has_a_date(sec in any::<i64>()) {
            let t = GoTime::from_unix(sec);
            prop_assert!((1..=12).contains(&t.month()));
            prop_assert!((1..=31).contains(&t.day()));
            prop_assert!((1..=31).contains(&t.days_in_month()));
            prop_assert!(t.weekday() < 7 && t.hour() < 24 && t.minute() < 60);
            prop_assert_eq!(t.unix(), sec);
        }
    }
}
