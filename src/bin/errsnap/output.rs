//! Text output: colour, times, sparklines, and parsing of times and
//! durations given on the command line.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use errsnap::Level;

use crate::args::ColorChoice;

/// Where text goes, and whether it may be coloured.
pub(crate) struct Out {
    pub(crate) w: std::io::StdoutLock<'static>,
    pub(crate) color: bool,
}

impl Out {
    pub(crate) fn new(choice: ColorChoice) -> Out {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Out {
            w: std::io::stdout().lock(),
            color,
        }
    }

    /// Wraps `text` in an SGR code when colour is on.
    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn level(&self, l: Level) -> String {
        let code = match l {
            Level::Fatal => "1;35",
            Level::Error => "31",
            Level::Warn => "33",
            Level::Info => "32",
            Level::Debug => "34",
            Level::Trace => "2",
        };
        self.paint(code, &format!("{:<5}", l.as_str().to_ascii_uppercase()))
    }

    pub(crate) fn json(&mut self, v: &impl serde::Serialize) -> Result<()> {
        serde_json::to_writer_pretty(&mut self.w, v)?;
        writeln!(self.w)?;
        Ok(())
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A duration (`30d`, `12h`, `90m`, `1h 30m`, humantime's forms), in ms.
pub(crate) fn duration_ms(s: &str) -> Result<i64> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| anyhow::anyhow!("{s:?}: expected a duration such as 2h, 30m or 7d ({e})"))?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A point in time: a duration ago (`2h`), a date (`2026-11-23`, UTC
/// midnight), a date and time (`2026-11-23T18:00[:00]`, UTC), an RFC 3339
/// timestamp with its offset, or ms since the epoch.
pub(crate) fn parse_time(s: &str, now: i64) -> Result<i64> {
    use jiff::{civil, tz::TimeZone, Timestamp};
    let t = s.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(t) {
        return Ok(now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    }
    let utc = |dt: civil::DateTime| -> Option<i64> {
        dt.to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    };
    t.parse::<Timestamp>()
        .ok()
        .map(Timestamp::as_millisecond)
        .or_else(|| t.parse::<civil::DateTime>().ok().and_then(utc))
        .or_else(|| {
            t.parse::<civil::Date>()
                .ok()
                .and_then(|d| utc(d.to_datetime(civil::Time::midnight())))
        })
        .ok_or_else(|| {
            anyhow::anyhow!("{s:?}: expected 2h / 7d, YYYY-MM-DD[THH:MM[:SS]][Z], or ms")
        })
}

/// A small bar chart: one character per bucket.
pub(crate) fn sparkline(counts: &[u64]) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| {
            if c == 0 || max == 0 {
                BARS[0]
            } else {
                BARS[(1 + (c * 7) / max).min(8) as usize]
            }
        })
        .collect()
}

/// The first line of `s`, at most `max` characters, made safe for a
/// terminal.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    let cut: String = line.chars().take(max).collect();
    let mut out = crate::term::safe_line(&cut).into_owned();
    if line.chars().count() > max || s.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// Bytes in a readable unit.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(
            parse_time("2026-11-23T18:00:00Z", now).unwrap(),
            1_795_456_800_000
        );
        assert_eq!(parse_time("1234", now).unwrap(), 1234);
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("2026-13-01", now).is_err());
        assert_eq!(time(1_795_456_800_000), "2026-11-23 18:00:00");
        assert!(duration_ms("30x").is_err());
        assert_eq!(duration_ms("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(duration_ms("1h 30m").unwrap(), 5_400_000);
        assert_eq!(
            parse_time("2026-11-23 18:00", now).unwrap(),
            1_795_456_800_000
        );
        assert_eq!(
            parse_time("2026-11-23T19:00:00+01:00", now).unwrap(),
            1_795_456_800_000
        );
    }

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), " ▂▄█");
    }
}
