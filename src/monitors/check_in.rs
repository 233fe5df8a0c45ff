//! A monitor's declaration and its check-ins, as the writer records them.

use std::time::Duration;

use super::Schedule;
use crate::error::{Error, Result};

/// A monitor as declared (by the code or `errsnap monitor run`): every
/// check-in carries it, so the store always has the latest.
#[derive(Debug, Clone)]
pub(crate) struct MonitorSpec {
    pub(crate) slug: String,
    pub(crate) schedule: Schedule,
    /// How late a run may start and still count as on time.
    pub(crate) margin: Duration,
    /// How long a run may take before it counts as timed out.
    pub(crate) max_runtime: Option<Duration>,
}

/// What a check-in says (or what the judge found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// A run started.
    InProgress,
    /// A run ended well (or a heartbeat).
    Ok,
    /// A run ended badly.
    Error,
    /// No run started within the margin of an expected time.
    Missed,
    /// A run went past its maximum run time.
    Timeout,
    /// Not a check-in: the monitor declared (its latest schedule and
    /// limits), nothing stored for a run.
    Declared,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Missed => "missed",
            Status::Timeout => "timeout",
            Status::Declared => "declared",
        }
    }

    /// Whether the run (or its absence) is a failure.
    pub(crate) fn failed(self) -> bool {
        matches!(self, Status::Error | Status::Missed | Status::Timeout)
    }
}

/// How a run ended, when a wrapped command ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Exit {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
}

/// One check-in, queued by the caller and recorded by the writer.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub(crate) spec: MonitorSpec,
    /// The run's id (32 hex digits): a start and its end share it.
    pub(crate) uid: String,
    pub(crate) status: Status,
    /// When it was said (ms since the Unix epoch).
    pub(crate) at_ms: i64,
    /// For an end: how long the run took.
    pub(crate) duration_ms: Option<i64>,
    pub(crate) exit: Exit,
    /// For an error: what went wrong, in words (redacted by the caller).
    pub(crate) reason: Option<String>,
    /// Kept with the failure's event (a wrapped command's output), within
    /// `attachment_cap` bytes.
    pub(crate) attachments: Vec<crate::event::Attachment>,
    pub(crate) attachment_cap: u64,
}

/// The longest slug.
pub(crate) const SLUG_MAX: usize = 64;

/// Checks a monitor's slug: 1 to 64 lowercase ASCII letters, digits, `-`
/// and `_` (Sentry's rule), starting with a letter or digit.
pub(crate) fn check_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= SLUG_MAX
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && slug.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        let shown: String = slug.chars().take(80).collect();
        Err(Error::config(
            format!("monitor {shown:?}"),
            "a slug is 1 to 64 lowercase letters, digits, '-' and '_', starting with a letter or digit",
        ))
    }
}

/// A run's id: 32 hex digits from the clock and randomness.
pub(crate) fn new_uid() -> String {
    let id = crate::event::EventId::generate(crate::util::time::now_ms());
    format!("{:032x}", id.as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_and_errors_name_them() {
        for good in ["nightly-sync", "a", "job_2", "0-backup", &"x".repeat(64)] {
            assert!(check_slug(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Nightly",
            "-lead",
            "_lead",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
        ] {
            let e = check_slug(bad).unwrap_err().to_string();
            assert!(e.contains("monitor"), "{e}");
        }
        let e = check_slug("bad\u{1b}[2J").unwrap_err().to_string();
        assert!(e.contains("\\u{1b}"), "escaped: {e}");
    }

    #[test]
    fn failures_are_errors_misses_and_timeouts() {
        for s in [Status::Error, Status::Missed, Status::Timeout] {
            assert!(s.failed(), "{s:?}");
        }
        for s in [Status::Ok, Status::InProgress, Status::Declared] {
            assert!(!s.failed(), "{s:?}");
        }
    }

    #[test]
    fn run_ids_are_32_hex_digits_and_unique() {
        assert_eq!(new_uid().len(), 32);
        assert!(new_uid().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_uid(), new_uid());
    }
}
