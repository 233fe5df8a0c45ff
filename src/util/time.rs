//! Time: the clock in milliseconds since the Unix epoch (as stored), and
//! its human forms, through jiff.

/// Milliseconds of a duration, saturating.
pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch (UTC).
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_utc(ms: i64) -> String {
    timestamp(ms).strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339).
pub(crate) fn rfc3339(ms: i64) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `YYYYMMDDTHHMMSS`, for file names.
pub(crate) fn compact(ms: i64) -> String {
    timestamp(ms).strftime("%Y%m%dT%H%M%S").to_string()
}

/// A duration as people read it: `10 s`, `2.5 s`, `250 ms`.
#[cfg_attr(
    not(any(feature = "slack", feature = "email", feature = "webhook")),
    allow(dead_code)
)]
pub(crate) fn seconds(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_duration_in_milliseconds_saturates() {
        assert_eq!(super::duration_ms(std::time::Duration::from_secs(2)), 2000);
        assert_eq!(super::duration_ms(std::time::Duration::MAX), i64::MAX);
    }

    use super::*;

    #[test]
    fn forms() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(-1000), "1969-12-31 23:59:59 UTC");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(5), "1970-01-01T00:00:00.005Z");
        assert_eq!(compact(1_700_000_000_123), "20231114T221320");
        assert_eq!(seconds(std::time::Duration::from_millis(250)), "250 ms");
        assert_eq!(seconds(std::time::Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(std::time::Duration::from_millis(2500)), "2.5 s");
        assert!(now_ms() > 1_700_000_000_000);
    }
}
