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
//! process); [`Durability::Full`] also survives power loss. Events still in
//! the queue when the process ends are lost unless they were flushed: keep
//! the [`Guard`] alive in `main`, or call [`EventLogger::flush`].
//! `std::process::exit` runs no destructors, so flush before it.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.89 (set by the dependencies);
//! raising it is a minor-version change.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod capture;
mod config;
mod dotenv;
mod error;
mod event;
mod ext;
mod fingerprint;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod internal_log;
mod level;
mod logger;
mod notify;
mod panic;
pub mod prelude;
mod private_dir;
mod redact;
mod snapshot;
mod spool;
mod store;
mod sync;
#[cfg(any(feature = "slack", feature = "email"))]
mod tls;
mod worker;

#[cfg(feature = "log")]
pub use bridge::log::LogBridge;
#[cfg(feature = "tracing")]
pub use bridge::tracing::ErrsnapLayer;
pub use config::{Config, DEFAULT_CONFIG_FILE};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    Breadcrumb, ChainLink, Event, EventId, EventKind, Frame, Location, ParseEventIdError,
};
pub use ext::{OptionExt, ResultExt};
pub use guard::{init, Guard};
pub use level::{Level, LevelFilter, ParseLevelError};
pub use logger::{
    CatchError, EventBuilder, EventLogger, EventLoggerBuilder, PushOptions, DEFAULT_DB_PATH,
};
#[cfg(feature = "email")]
pub use notify::email::SmtpMailerBuilder;
pub use notify::format::format_utc;
pub use notify::send_test_alert;
#[cfg(feature = "slack")]
pub use notify::SlackWebhook;
pub use notify::{Alert, AlertFrame, AlertKind, Notifier, NotifyError};
#[cfg(feature = "email")]
pub use notify::{SmtpMailer, SmtpTls};
pub use panic::install_panic_hook;
pub use snapshot::{HostInfo, HostStats, ProcessStats, Sampler, Snapshot};
pub use store::query::{
    AlertStatus, CheckReport, Database, EventDetail, EventFilter, EventRow, ExportRow, GroupOrder,
    GroupQuery, GroupRow, GroupStatus, HostRow, Stats,
};
pub use store::retention::{PurgeReport, PurgeRule};
pub use store::Durability;
pub use worker::Overflow;

/// The README's code blocks, compiled as doc tests (they use every feature).
#[cfg(all(
    doctest,
    feature = "slack",
    feature = "email",
    feature = "tracing",
    feature = "log"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
