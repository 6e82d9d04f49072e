//! How times and windows are written on the command line (`--since`,
//! `--until`, `--window`).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// A time on the command line: RFC 3339 (`2026-03-10T12:00:00Z`, any
/// offset), or a UTC date and time (`2026-03-10 12:00`, `2026-03-10T12:00:30`),
/// or a UTC date (`2026-03-10`, midnight). Returns ms since the epoch.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = day.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "{text:?} is not a time (try 2026-03-10, \"2026-03-10 14:30\" or 2026-03-10T14:30:00Z; times without an offset are UTC)"
    ))
}

/// A window length: `30s`, `1m`, `5m`, `1h`, `1d`, or milliseconds (`500ms`).
pub(crate) fn parse_window(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a window (try 1m, 5m or 1h)"))?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown window unit {other:?} in {text:?} (use ms, s, m, h or d)"
            ))
        }
    };
    match number.checked_mul(factor) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(format!("{text:?}: a window must be longer than zero")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_accepted_shape() {
        let noon = 1_773_144_000_000; // 2026-03-10T12:00:00Z
        assert_eq!(parse_time("2026-03-10T12:00:00Z"), Ok(noon));
        assert_eq!(parse_time("2026-03-10T13:00:00+01:00"), Ok(noon));
        assert_eq!(parse_time("2026-03-10 12:00"), Ok(noon));
        assert_eq!(parse_time("2026-03-10T12:00:00.000"), Ok(noon));
        assert_eq!(parse_time("2026-03-10"), Ok(noon - 12 * 3_600_000));
        assert!(parse_time("yesterday").unwrap_err().contains("not a time"));
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("1m"), Ok(60_000));
        assert_eq!(parse_window("30s"), Ok(30_000));
        assert_eq!(parse_window("2h"), Ok(7_200_000));
        assert_eq!(parse_window("250ms"), Ok(250));
        assert!(parse_window("0m").is_err());
        assert!(parse_window("5 minutes").is_err());
    }
}
