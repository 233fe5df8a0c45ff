//! Severity levels.

use std::fmt;
use std::str::FromStr;

/// The severity of an event: `Trace < Debug < Info < Warn < Error < Fatal`.
///
/// Stored in `LOGS.db` as the integer [`Level::as_i64`] (0 to 5), so
/// `WHERE level >= 4` selects errors and worse.
///
/// ```
/// use errsnap::Level;
/// assert!(Level::Warn < Level::Error);
/// assert_eq!("fatal".parse::<Level>().unwrap(), Level::Fatal);
/// assert_eq!(Level::Error.to_string(), "error");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging information.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// An operation failed.
    Error,
    /// The program cannot go on (panics are recorded at this level).
    Fatal,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The lowercase name (`"error"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// The integer stored in the database (0 for trace to 5 for fatal).
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    /// The level for a stored integer, if it is one.
    pub fn from_i64(v: i64) -> Option<Level> {
        Level::ALL.get(usize::try_from(v).ok()?).copied()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error returned when a string is not a level name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLevelError {
    input: String,
}

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown level {:?}: expected one of trace, debug, info, warn, error, fatal (or off)",
            self.input
        )
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "critical" | "crit" => Level::Fatal,
            _ => {
                return Err(ParseLevelError {
                    input: s.to_owned(),
                })
            }
        })
    }
}

/// A minimum level for a destination, or `Off`.
///
/// ```
/// use errsnap::{Level, LevelFilter};
/// assert!(LevelFilter::Warn.allows(Level::Error));
/// assert!(!LevelFilter::Warn.allows(Level::Info));
/// assert!(!LevelFilter::Off.allows(Level::Fatal));
/// assert_eq!("disabled".parse::<LevelFilter>().unwrap(), LevelFilter::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LevelFilter {
    /// Everything from trace up.
    Trace,
    /// Debug and above.
    Debug,
    /// Info and above.
    Info,
    /// Warn and above.
    Warn,
    /// Error and above.
    Error,
    /// Fatal only.
    Fatal,
    /// Nothing (the `disabled` level).
    Off,
}

impl LevelFilter {
    /// Whether an event at `level` passes.
    pub fn allows(self, level: Level) -> bool {
        match self.min() {
            Some(min) => level >= min,
            None => false,
        }
    }

    /// The lowest level that passes, `None` for `Off`.
    pub fn min(self) -> Option<Level> {
        Some(match self {
            LevelFilter::Trace => Level::Trace,
            LevelFilter::Debug => Level::Debug,
            LevelFilter::Info => Level::Info,
            LevelFilter::Warn => Level::Warn,
            LevelFilter::Error => Level::Error,
            LevelFilter::Fatal => Level::Fatal,
            LevelFilter::Off => return None,
        })
    }
}

impl From<Level> for LevelFilter {
    fn from(l: Level) -> Self {
        match l {
            Level::Trace => LevelFilter::Trace,
            Level::Debug => LevelFilter::Debug,
            Level::Info => LevelFilter::Info,
            Level::Warn => LevelFilter::Warn,
            Level::Error => LevelFilter::Error,
            Level::Fatal => LevelFilter::Fatal,
        }
    }
}

impl fmt::Display for LevelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.min() {
            Some(l) => l.fmt(f),
            None => f.pad("off"),
        }
    }
}

impl FromStr for LevelFilter {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "disabled" | "none" => Ok(LevelFilter::Off),
            _ => s
                .parse::<Level>()
                .map(LevelFilter::from)
                .map_err(|_| ParseLevelError {
                    input: s.to_owned(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>(), Ok(l));
            assert_eq!(Level::from_i64(l.as_i64()), Some(l));
        }
        assert_eq!(Level::from_i64(6), None);
        assert_eq!(Level::from_i64(-1), None);
        assert!("loud"
            .parse::<Level>()
            .unwrap_err()
            .to_string()
            .contains("\"loud\""));
    }
}
