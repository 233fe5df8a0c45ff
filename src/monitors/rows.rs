//! Monitors as the store reports them (`Database::monitors`).

use serde::Serialize;

/// A monitor, its schedule, and its latest runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MonitorRow {
    /// Its slug.
    pub slug: String,
    /// Its crontab as given (`None`: an interval).
    pub crontab: Option<String>,
    /// The crontab's time zone.
    pub zone: Option<String>,
    /// The interval between check-ins, in ms (`None`: a crontab).
    pub every_ms: Option<i64>,
    /// How late a run may start (ms).
    pub margin_ms: i64,
    /// How long a run may take (ms; `None`: no limit).
    pub max_runtime_ms: Option<i64>,
    /// When it was first declared, and last (ms since the Unix epoch).
    pub declared_at: i64,
    /// See `declared_at`.
    pub updated_at: i64,
    /// Whether its last judged run failed.
    pub failing: bool,
    /// When the next run is expected (ms since the Unix epoch), when this
    /// host knows its zone.
    pub next_expected_at: Option<i64>,
    /// Its latest runs, newest first.
    pub runs: Vec<CheckInRow>,
}

/// One run of a monitor: a check-in, or an expected run that never came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckInRow {
    /// The run's id (32 hex digits).
    pub id: String,
    /// `in_progress`, `ok`, `error`, `missed` or `timeout`.
    pub status: String,
    /// The expected time it answers (ms since the Unix epoch).
    pub expected_at: Option<i64>,
    /// When it started and ended.
    pub started_at: Option<i64>,
    /// See `started_at`.
    pub ended_at: Option<i64>,
    /// How long it took (ms).
    pub duration_ms: Option<i64>,
    /// A wrapped command's exit code, or the signal that ended it.
    pub exit_code: Option<i64>,
    /// See `exit_code`.
    pub signal: Option<i64>,
    /// The process that ran it.
    pub pid: Option<i64>,
    /// Why it failed, in words.
    pub reason: Option<String>,
}
