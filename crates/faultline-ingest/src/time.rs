//! Timestamps: RFC 3339 (any fraction, any offset) and epoch seconds, ms, us or ns.

use chrono::{DateTime, NaiveDateTime};

/// Earliest accepted timestamp: 2000-01-01T00:00:00Z.
const MIN_MS: i64 = 946_684_800_000;
/// Latest accepted timestamp: 2100-01-01T00:00:00Z.
const MAX_MS: i64 = 4_102_444_800_000;

/// Why a timestamp was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsError {
    Unparseable,
    OutOfRange,
}

/// Epoch number to milliseconds, the unit inferred from the magnitude.
pub(crate) fn epoch_to_ms(value: f64) -> Result<i64, TsError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(TsError::OutOfRange);
    }
    let ms = if value < 1e11 {
        value * 1e3
    } else if value < 1e14 {
        value
    } else if value < 1e17 {
        value / 1e3
    } else {
        value / 1e6
    };
    check_range(ms.floor() as i64)
}

fn check_range(ms: i64) -> Result<i64, TsError> {
    if (MIN_MS..MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TsError::OutOfRange)
    }
}

/// A timestamp string: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (UTC assumed when no
/// offset is given), or an epoch number written as a string.
pub(crate) fn parse_ts_str(text: &str) -> Result<i64, TsError> {
    let text = text.trim();
    // First the shape nearly every line has (never digits alone).
    if let Some(ms) = usual_rfc3339(text.as_bytes()) {
        return check_range(ms);
    }
    if text.is_empty() {
        return Err(TsError::Unparseable);
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return text
            .parse::<f64>()
            .map_err(|_| TsError::Unparseable)
            .and_then(epoch_to_ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return check_range(dt.timestamp_millis());
    }
    // RFC 3339 allows a space for the `T`; chrono only takes it through this format.
    if let Ok(dt) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return check_range(dt.timestamp_millis());
    }
    let naive = text.strip_suffix(" UTC").unwrap_or(text);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, format) {
            return check_range(dt.and_utc().timestamp_millis());
        }
    }
    Err(TsError::Unparseable)
}

thread_local! {
    /// The date, hour and minute (`YYYY-MM-DDTHH:MM`) of the last timestamp
    /// read on this thread, checked, and its minutes since the epoch before
    /// any offset: most lines of a log fall in the minute of the line
    /// before, and only their seconds are read.
    static LAST_MINUTE: std::cell::Cell<Option<([u8; 16], i64)>> = const { std::cell::Cell::new(None) };
}

/// The shape nearly every line carries, `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)`
/// (or a space for the `T`, or no offset: UTC), read without chrono's
/// general parser. `None` for anything else, a leap second or a date that
/// does not exist included: the general parsers then decide.
fn usual_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[16] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<i64> {
        let (tens, ones) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (tens < 10 && ones < 10).then(|| i64::from(tens * 10 + ones))
    };
    let prefix: [u8; 16] = b[..16].try_into().ok()?;
    let minutes = match LAST_MINUTE.get() {
        Some((last, minutes)) if last == prefix => minutes,
        _ => {
            if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':'
            {
                return None;
            }
            let year = two(0)? * 100 + two(2)?;
            let (month, day) = (two(5)?, two(8)?);
            if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
                return None;
            }
            let (hour, minute) = (two(11)?, two(14)?);
            if hour > 23 || minute > 59 {
                return None;
            }
            let minutes = (days_from_civil(year, month, day) * 24 + hour) * 60 + minute;
            LAST_MINUTE.set(Some((prefix, minutes)));
            minutes
        }
    };
    let second = two(17)?;
    if second > 59 {
        return None;
    }
    let mut at = 19;
    let mut ms = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(digit) = b.get(at).filter(|c| c.is_ascii_digit()) {
            if at - start < 3 {
                ms = ms * 10 + i64::from(digit - b'0');
            }
            at += 1;
        }
        match at - start {
            0 => return None,
            1 => ms *= 100,
            2 => ms *= 10,
            _ => {}
        }
    }
    let offset_minutes = match &b[at..] {
        // No offset: UTC, as the naive formats take it (with `T` or a space).
        [] if b[10] != b't' => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (two(at + 1)?, two(at + 4)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    Some((minutes - offset_minutes) * 60_000 + second * 1000 + ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_736_942_400_000; // 2025-01-15T12:00:00Z

    #[test]
    fn rfc3339_with_any_fraction_and_offset() {
        assert_eq!(parse_ts_str("2025-01-15T12:00:00Z"), Ok(T));
        assert_eq!(parse_ts_str("2025-01-15T12:00:00.250Z"), Ok(T + 250));
        assert_eq!(parse_ts_str("2025-01-15T12:00:00.123456789Z"), Ok(T + 123));
        assert_eq!(parse_ts_str("2025-01-15T14:00:00+02:00"), Ok(T));
        assert_eq!(parse_ts_str("2025-01-15 12:00:00.5"), Ok(T + 500));
        assert_eq!(parse_ts_str("2025-01-15 12:00:00+00:00"), Ok(T));
        assert_eq!(parse_ts_str("2025-01-15T12:00:00"), Ok(T));
    }

    /// What the general parsers make of a text, without the shortcut.
    fn general(text: &str) -> Option<i64> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(dt.timestamp_millis());
        }
        if let Ok(dt) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return Some(dt.timestamp_millis());
        }
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|dt| dt.and_utc().timestamp_millis())
    }

    #[test]
    fn the_usual_shape_reads_as_chrono_reads_it() {
        let mut next = crate::testing::draws(0x9e37_79b9_7f4a_7c15);
        let fractions = ["", ".5", ".25", ".250", ".123456", ".123456789", "."];
        let offsets = [
            "Z", "z", "", "+02:00", "-07:30", "+23:59", "+24:00", "-00:00", "+0200",
        ];
        let (mut read, mut same_minutes) = (0, 0);
        for _ in 0..20_000 {
            let text = format!(
                "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{}{}",
                1999 + next(103),
                next(14),
                next(33),
                ["T", " ", "t", "x"][next(4) as usize],
                next(26),
                next(61),
                next(62),
                fractions[next(fractions.len() as u64) as usize],
                offsets[next(offsets.len() as u64) as usize],
            );
            let usual = usual_rfc3339(text.as_bytes());
            if usual.is_some() {
                read += 1;
                assert_eq!(usual, general(&text), "{text}");
            }
            // The same date again, as the next line of a log has it: the
            // date is then taken from the last one read.
            let again = format!(
                "{}{:02}:{:02}:{:02}Z",
                &text[..11],
                next(24),
                next(60),
                next(60)
            );
            assert_eq!(usual_rfc3339(again.as_bytes()), general(&again), "{again}");
            // The same minute again: only the seconds and what follows
            // are read.
            let same_minute = format!(
                "{}{:02}{}{}",
                &text[..17],
                next(62),
                fractions[next(fractions.len() as u64) as usize],
                offsets[next(offsets.len() as u64) as usize],
            );
            let first = usual_rfc3339(text.as_bytes());
            let second = usual_rfc3339(same_minute.as_bytes());
            if second.is_some() {
                same_minutes += usize::from(first.is_some());
                assert_eq!(second, general(&same_minute), "{same_minute} after {text}");
            }
        }
        assert!(same_minutes > 2_000, "{same_minutes}");
        // Most of the generated texts are valid, and read by the shortcut.
        assert!(read > 5_000, "{read}");
        for text in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T23:59:59.999Z",
            "2100-02-28T00:00:00Z",
        ] {
            assert_eq!(usual_rfc3339(text.as_bytes()), general(text), "{text}");
        }
        // A text whose first 16 bytes are all zeros (a string of `\u0000`
        // escapes) is not taken for the minute of an earlier line.
        assert_eq!(usual_rfc3339(b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0:00Z"), None);
        // Left to chrono: days that do not exist, leap seconds, other shapes.
        for text in [
            "2023-02-29T00:00:00Z",
            "2016-12-31T23:59:60Z",
            "2025-01-15T12:00Z",
            "2025-1-15T12:00:00Z",
        ] {
            assert_eq!(usual_rfc3339(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn epoch_units_by_magnitude() {
        assert_eq!(epoch_to_ms(1_736_942_400.0), Ok(T));
        assert_eq!(epoch_to_ms(1_736_942_400.25), Ok(T + 250));
        assert_eq!(epoch_to_ms(1_736_942_400_000.0), Ok(T));
        assert_eq!(epoch_to_ms(1_736_942_400_000_000.0), Ok(T));
        assert_eq!(epoch_to_ms(1_736_942_400_000_000_000.0), Ok(T));
        assert_eq!(parse_ts_str("1736942400"), Ok(T));
    }

    #[test]
    fn rejects_garbage_and_absurd_dates() {
        assert_eq!(parse_ts_str("yesterday"), Err(TsError::Unparseable));
        assert_eq!(parse_ts_str(""), Err(TsError::Unparseable));
        assert_eq!(
            parse_ts_str("1970-01-01T00:00:00Z"),
            Err(TsError::OutOfRange)
        );
        assert_eq!(
            parse_ts_str("2999-01-01T00:00:00Z"),
            Err(TsError::OutOfRange)
        );
        assert_eq!(epoch_to_ms(-5.0), Err(TsError::OutOfRange));
    }
}
