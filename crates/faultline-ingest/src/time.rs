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
