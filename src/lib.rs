//! errsnap records errors and panics of a running program as *snapshots*:
//! the message, the error chain, a backtrace, the process id and thread, and
//! a CPU/memory picture of the process and the host, in an embedded SQLite
//! file (`LOGS.db` by default). Every event is on disk, grouped by a stable
//! fingerprint, and queryable with plain SQL.
//!
//! # Quick start
//!
//! ```no_run
//! use errsnap::prelude::*;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Opens ./LOGS.db, reads ./.env, installs the panic hook.
//!     let guard = errsnap::init(errsnap::EventLogger::builder().name("error_table"))?;
//!     let logger = guard.logger().clone();
//!
//!     logger.error("payment provider timed out");
//!     let _ = std::fs::read("/missing/config.toml").report(&logger);
//!     Ok(()) // the guard flushes here
//! }
//! ```
//!
//! # Core concepts
//!
//! - [`EventLogger`]: a handle to one logger (a table of `LOGS.db`, as in
//!   the original design). Cheap to clone, `Send + Sync`. All loggers of one
//!   file share one background writer thread (`errsnap-writer`).
//! - The caller's thread only captures: it walks the stack without symbols,
//!   copies the message and hands the event to a bounded queue. It never
//!   waits for the disk (unless [`Overflow::Block`] is chosen). The writer
//!   resolves symbols (cached), takes the snapshot, computes the fingerprint
//!   and commits a batch per transaction.
//! - [`install_panic_hook`] / [`init`]: every panic is recorded and
//!   committed before the hook returns, so it survives `panic = "abort"`.
//! - [`prelude`]: `result.report(&logger)?` and `option.report(&logger, msg)`.
//!
//! # What is stored
//!
//! | table / view | holds |
//! | --- | --- |
//! | `events` | one row per event: `uid` (sortable id), `ts` (ms, UTC), level (0 trace to 5 fatal), kind, message, error chain (JSON), location, thread, pid, app/release/environment, tags and extra (JSON), and ids into the tables below |
//! | `event_groups` | one row per fingerprint: title, culprit, first/last seen, count, status |
//! | `backtraces`, `frames` | each distinct backtrace once, its frames (function, file, line, column, address, module, module offset, in-app) |
//! | `snapshots` | process CPU time and CPU %, RSS, virtual memory, memory %, threads, I/O bytes, open fds; host memory, swap, CPU %, load, uptime |
//! | `hosts` | the machine's description (CPU, memory, OS, kernel, hostname) |
//! | `counters` | `dropped_events` and other loss counters |
//! | view `<logger name>` | the events of that logger (`SELECT * FROM error_table`) |
//! | view `hw_logs` | events joined with their snapshots (the original's table) |
//!
//! ```sh
//! sqlite3 LOGS.db "SELECT time, level, message FROM error_table ORDER BY ts DESC LIMIT 10"
//! ```
//!
//! # Durability and shutdown
//!
//! Commits use WAL with `synchronous = NORMAL` (they survive a crash of the
//! process); [`Durability::Full`] also survives power loss.
//! [`EventLogger::flush`] waits until what was handed over is committed and
//! its alerts are delivered ([`EventLogger::flush_report`] says per channel
//! what became of them). When the process ends, by a return from `main` (the
//! [`Guard`] or the last logger dropped) or by `std::process::exit` (an exit
//! hook errsnap registers), the queue is committed and its alerts delivered
//! within one exit budget (3 s); with
//! [`drain_on_termination`](EventLoggerBuilder::drain_on_termination), a
//! SIGTERM or SIGINT too. SIGKILL and `_exit` lose what is still queued.
//!
//! # Feature flags
//!
//! | feature | default | adds | pulls in |
//! | --- | --- | --- | --- |
//! | `slack` | yes | [`channels::SlackChannel`], Slack alerts from `.env` | reqwest (blocking, rustls + ring), rustls |
//! | `email` | yes | [`channels::EmailChannel`], e-mail alerts from `.env` | lettre (SMTP, rustls + ring), rustls |
//! | `webhook` | yes | a generic JSON webhook channel from `.env` | reqwest (blocking, rustls + ring), rustls |
//! | `sentry` | no | forwarding every event to a Sentry-compatible server (`ERRSNAP_SENTRY_DSN`, [`EventLoggerBuilder::sentry_dsn`]) through the outbox | reqwest (blocking, rustls + ring), rustls |
//! | `otlp` | no | forwarding every event to an OpenTelemetry collector as OTLP/HTTP log records (`ERRSNAP_OTLP_ENDPOINT`, [`EventLoggerBuilder::otlp_endpoint`]) | reqwest (blocking, rustls + ring), rustls |
//! | `native-roots` | no | trust the operating system's certificate store too, for SMTP and webhooks | rustls-native-certs |
//! | `anyhow` | no | `.report(&logger)` on `anyhow::Result`, `EventLogger::capture_anyhow` | anyhow |
//! | `eyre` | no | `.report(&logger)` on `eyre::Result`, `EventLogger::capture_eyre` | eyre |
//! | `tracing` | no | [`tracing::ErrsnapLayer`], a `tracing_subscriber::Layer` | tracing, tracing-subscriber |
//! | `log` | no | [`log::LogBridge`], a `log::Log` implementation | log |
//! | `cli` | no | the `errsnap` command (`cargo install errsnap --features cli`), the `errsnap serve` dashboard included; enables `sentry` and `otlp` | clap, anyhow, indicatif, csv, axum, tokio, maud |
//! | `fuzzing` | no | entry points for the fuzz targets and the benchmarks (not a stable API) | nothing |
//!
//! Always pulled in: rusqlite (SQLite bundled), backtrace, sysinfo, and for
//! errsnap's own symbol tables addr2line, gimli, object and memmap2; on
//! Linux x86_64 framehop (the callers' stack walk).
//!
//! With `default-features = false` errsnap keeps storage, capture, the
//! panic hook, custom [`channels::Channel`]s and the test mode; no OpenSSL is ever
//! needed.
//!
//! # Testing your application
//!
//! [`EventLogger::for_tests`] gives a logger that writes no file and sends
//! no alert, and the list of what it recorded, to assert on.
//! `ERRSNAP_DISABLED=1` (or [`EventLoggerBuilder::disabled`]) switches
//! errsnap off entirely: nothing is recorded, no thread starts.
//!
//! # Report once
//!
//! An error passed up with `?` through several layers that each call
//! `.report()` is recorded once, with the outermost context. The rule:
//! on the same thread within 1 s, a later error report whose chain ends
//! with an earlier one's, and that comes from further up the same call
//! chain (reported in the frame that called toward the first report, on that
//! line or up to 3 lines after it, or carrying the same backtrace of the
//! error's own making), is the same failure. A retry loop reporting the same
//! error at the same place, or two errors with the same text from one
//! function, stay separate. Dropped repeats are counted as `deduplicated`.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.89 (set by the dependencies);
//! raising it is a minor-version change.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod capture;
pub mod channels;
mod crash;
mod ecosystem;
mod error;
pub mod event;
mod ext;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod level;
mod logger;
mod monitors;
mod panic;
mod pipeline;
pub mod prelude;
mod settings;
mod store;
mod suspect;
mod util;
mod worker;

// What an application calls: starting, capturing, scopes, levels, errors.
pub use channels::delivery::FlushReport;
#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
pub use ecosystem::AnyhowResultExt;
#[cfg(feature = "eyre")]
#[cfg_attr(docsrs, doc(cfg(feature = "eyre")))]
pub use ecosystem::EyreResultExt;
pub use error::{Error, ErrorKind, Result};
pub use event::attachment::Attachment;
pub use event::context::User;
pub use event::id::EventId;
pub use ext::{OptionExt, ResultExt};
pub use guard::{init, Guard};
pub use level::{Level, LevelFilter, ParseLevelError};
pub use logger::options::{EndUserMessage, PushOptions};
pub use logger::{
    bind_scope, configure_scope, CatchError, EventBuilder, EventLogger, EventLoggerBuilder, Scope,
    ScopeGuard, Scoped,
};
pub use panic::install_panic_hook;
pub use settings::{Config, Durability};
pub use worker::Overflow;

/// Monitors: jobs that should have run. A monitor has a schedule (a
/// crontab in a time zone, or an interval between check-ins); its
/// check-ins say when a run started and how it ended; a run that was due
/// and never came, that ran too long, or whose process died is noticed by
/// whichever errsnap process has the store open, and raised as an event of
/// the monitor's group through the alert channels.
pub mod monitor {
    pub use crate::logger::monitor::{CheckIn, Monitor, MonitorConfig};
    pub use crate::monitors::schedule::Schedule;
}

/// Reading and keeping a database errsnap wrote: [`Database`](db::Database)
/// (what the `errsnap` command and its dashboard use), the rows and queries
/// it answers with, crash files imported after the fact, and PostgreSQL's
/// schema.
pub mod db {
    pub use crate::event::sample::RunSample;
    pub use crate::monitors::rows::{CheckInRow, MonitorRow};
    pub use crate::pipeline::trend::{describe_trend, TREND_WINDOW_MS};
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
    pub use crate::store::migrate;
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub use crate::store::postgres::{migrate_postgres, PgMigration};
    pub use crate::store::{
        AlertStatus, ChannelHealth, CheckReport, Database, DeliveryStatus, EventDetail,
        EventFilter, EventRow, EventTrend, ExportRow, GroupOrder, GroupQuery, GroupRow,
        GroupStatus, GroupValue, HostRow, HourCount, MergeReport, Migration, MissingModule,
        PurgeReport, PurgeRule, RegroupMove, RegroupReport, ReleaseRow, RunRow, RunStatus, Sample,
        SearchHit, Stats, SymbolicateReport,
    };
    pub use crate::suspect::{
        commit_of_release, BlamedLine, Repository, SuspectCommit, Suspects, FRAMES_BLAMED,
    };
    pub use crate::worker::{import_crashes, CrashImport};
}

/// The process and host picture stored with an event.
pub mod snapshot {
    pub use crate::event::snapshot::{CgroupStats, HostInfo, HostStats, ProcessStats, Snapshot};
}

/// Asserting on what your application records, in its own tests (see
/// [`EventLogger::for_tests`]).
pub mod testing {
    pub use crate::logger::testing::CapturedEvents;
}

/// A `log::Log` that records log records as events (feature `log`).
#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub mod log {
    pub use crate::bridge::log::LogBridge;
}

/// A `tracing_subscriber` layer that records `tracing` events as events
/// (feature `tracing`).
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing {
    pub use crate::bridge::tracing::ErrsnapLayer;
}

/// A tower layer for HTTP services: [`tower::HttpLayer`] (feature `tower`).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower {
    pub use crate::bridge::tower::{HttpLayer, HttpService, ResponseError, ResponseFuture};
}

// The names of errsnap 0.1, kept for a release (CHANGELOG.md lists every
// move). A trait cannot be aliased with a deprecation: `Channel` stays
// reachable here, hidden.
#[doc(hidden)]
pub use channels::Channel;
/// Moved: [`db::Database`].
#[deprecated(since = "0.2.0", note = "moved to `errsnap::db::Database`")]
#[doc(hidden)]
pub type Database = db::Database;
/// Moved: [`channels::Alert`].
#[deprecated(since = "0.2.0", note = "moved to `errsnap::channels::Alert`")]
#[doc(hidden)]
pub type Alert = channels::Alert;
/// Renamed: [`channels::ChannelError`].
#[deprecated(since = "0.2.0", note = "renamed `errsnap::channels::ChannelError`")]
#[doc(hidden)]
pub type NotifyError = channels::ChannelError;
/// Renamed: [`channels::SlackChannel`].
#[cfg(feature = "slack")]
#[deprecated(since = "0.2.0", note = "renamed `errsnap::channels::SlackChannel`")]
#[doc(hidden)]
pub type SlackWebhook = channels::SlackChannel;
/// Renamed: [`channels::EmailChannel`].
#[cfg(feature = "email")]
#[deprecated(since = "0.2.0", note = "renamed `errsnap::channels::EmailChannel`")]
#[doc(hidden)]
pub type SmtpMailer = channels::EmailChannel;
/// Moved: [`tracing::ErrsnapLayer`].
#[cfg(feature = "tracing")]
#[deprecated(since = "0.2.0", note = "moved to `errsnap::tracing::ErrsnapLayer`")]
#[doc(hidden)]
pub type ErrsnapLayer = tracing::ErrsnapLayer;
/// Moved: [`log::LogBridge`].
#[cfg(feature = "log")]
#[deprecated(since = "0.2.0", note = "moved to `errsnap::log::LogBridge`")]
#[doc(hidden)]
pub type LogBridge = log::LogBridge;

/// The release of the crate that calls it, as `name@version` from its
/// `Cargo.toml` (`CARGO_PKG_NAME` and `CARGO_PKG_VERSION`), as sentry-rust's
/// `release_name!` gives it. A `&'static str`.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let logger = errsnap::EventLogger::builder()
///     .name("app")
///     .release(errsnap::release_name!())
/// #   .db_path(dir.path().join("LOGS.db"))
///     .build()?;
/// assert_eq!(errsnap::release_name!(), concat!("errsnap@", env!("CARGO_PKG_VERSION")));
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! release_name {
    () => {
        concat!(env!("CARGO_PKG_NAME"), "@", env!("CARGO_PKG_VERSION"))
    };
}

/// The README's code blocks, compiled as doc tests (they use every feature).
#[cfg(all(
    doctest,
    feature = "slack",
    feature = "email",
    feature = "tracing",
    feature = "log",
    feature = "anyhow"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
