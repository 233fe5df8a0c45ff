//! Text output: colour, times, sparklines, and parsing of times and
//! durations given on the command line.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn time(ms: i64) -> String {
    errsnap::format_utc(ms).trim_end_matches(" UTC").to_owned()
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration like `30d`, `12h`, `90m`, `45s`, `2w`, in ms.
pub(crate) fn duration_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .with_context(|| format!("{s:?}: expected a number and a unit (s, m, h, d, w)"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => bail!("{s:?}: unknown unit {unit:?} (use s, m, h, d or w)"),
    };
    Ok(n.saturating_mul(unit_ms))
}

/// A point in time: a duration ago (`2h`), a date (`2026-11-23`, UTC
/// midnight), a date and time (`2026-11-23T18:00[:00][Z]`), or ms.
pub(crate) fn parse_time(s: &str, now: i64) -> Result<i64> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    if t.ends_with(|c: char| c.is_ascii_alphabetic())
        && t.starts_with(|c: char| c.is_ascii_digit())
        && !t.contains('-')
    {
        return Ok(now - duration_ms(t)?);
    }
    let (date, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c.trim_end_matches('Z'))),
        None => (t, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let bad = || anyhow::anyhow!("{s:?}: expected 2h / 7d, YYYY-MM-DD[THH:MM[:SS]], or ms");
    if parts.len() != 3 {
        return Err(bad());
    }
    let y: i64 = parts[0].parse().map_err(|_| bad())?;
    let m: u32 = parts[1].parse().map_err(|_| bad())?;
    let d: u32 = parts[2].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(c) = clock {
        let hms: Vec<&str> = c.split(':').collect();
        let field = |i: usize, max: i64| -> Result<i64> {
            match hms.get(i) {
                None => Ok(0),
                Some(v) => {
                    let n: i64 = v
                        .split('.')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| bad())?;
                    if n > max {
                        return Err(bad());
                    }
                    Ok(n)
                }
            }
        };
        ms += field(0, 23)? * 3_600_000 + field(1, 59)? * 60_000 + field(2, 60)? * 1000;
    }
    Ok(ms)
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
    }

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), " ▂▄█");
    }
}
