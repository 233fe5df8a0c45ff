//! What a setting's value must look like (a count in a range, a duration, a
//! size, a level, ...), and how an error message says so.

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Free text.
    Text,
    /// A file path.
    Path,
    /// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
    Flag,
    /// A whole number within a range.
    Count { min: u64, max: u64 },
    /// A duration: a number of milliseconds, or `3s`, `1m 30s`.
    Millis { max_ms: u64 },
    /// A duration: a number of seconds, or `10m`, `2h`.
    Secs { min_s: u64, max_s: u64 },
    /// A positive duration: a number of days, or `12h`, `30d`.
    Days { max_d: u64 },
    /// A size: a number of `unit`s (1,024 bytes or 1 MiB), or with a unit
    /// (`512KiB`, `2GiB`, `4096B`); `min`/`max` in `unit`s.
    Size { unit: u64, min: u64, max: u64 },
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `off`.
    Level,
    /// `normal` or `full`.
    Durability,
    /// `implicit`, `starttls` or `none`.
    SmtpTls,
    /// A port from 1 to 65535.
    Port,
    /// A URL (a secret).
    Url,
    /// `Name: value` (a secret).
    Header,
    /// One regular expression, or a JSON array of them.
    Patterns,
}

impl Kind {
    /// What a valid value looks like, for error messages.
    pub(crate) fn expected(self) -> String {
        match self {
            Kind::Text => "text".into(),
            Kind::Path => "a file path".into(),
            Kind::Flag => "1, true, yes, on, 0, false, no or off".into(),
            Kind::Count { min, max } => format!("a whole number from {min} to {max}"),
            Kind::Millis { max_ms } => format!(
                "milliseconds as a whole number, or a duration such as 3s (at most {})",
                humantime::format_duration(std::time::Duration::from_millis(max_ms))
            ),
            Kind::Secs { min_s, max_s } => format!(
                "seconds as a whole number, or a duration such as 10m ({min_s} s to {})",
                humantime::format_duration(std::time::Duration::from_secs(max_s))
            ),
            Kind::Days { max_d } => format!(
                "days as a whole number, or a duration such as 12h (more than 0, at most {max_d} days)"
            ),
            Kind::Size { unit, min, max } => {
                let u = if unit == 1024 { "KiB" } else { "MiB" };
                format!("{u} as a whole number, or a size such as 512KiB or 2GiB ({min} to {max} {u})")
            }
            Kind::Level => "one of trace, debug, info, warn, error, fatal, off".into(),
            Kind::Durability => "normal or full".into(),
            Kind::SmtpTls => "implicit, starttls or none".into(),
            Kind::Port => "a port from 1 to 65535".into(),
            Kind::Url => "a URL".into(),
            Kind::Header => "Name: value".into(),
            Kind::Patterns => "a regular expression, or a JSON array of them".into(),
        }
    }
}
