//! [`EventLogger`], its builder, and the per-call options.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use crate::capture::{self, BeforeSave, CallSite, Context, PendingEvent, RawBacktrace, ThreadInfo};
use crate::config::Config;
use crate::config::Destination;
use crate::error::{Error, Result};
use crate::event::{Breadcrumb, ChainLink, Event, EventId, EventKind};
use crate::level::{Level, LevelFilter};
use crate::notify::setup::AlertOverrides;
use crate::notify::{Alert, Notifier, NotifyError};
use crate::options::PushOptions;
use crate::pipeline::redact::Redactor;
use crate::store::{validate_logger_name, Durability};
use crate::worker::{self, Overflow, Worker, WorkerConfig};

/// The database file used when no path is configured: `LOGS.db` in the
/// working directory, as in the original design.
pub const DEFAULT_DB_PATH: &str = "LOGS.db";

/// Records events into one logger (table) of a `LOGS.db` file.
///
/// Cheap to clone (an `Arc`), `Send + Sync`. All loggers that point at the
/// same file share one writer thread and one connection.
///
/// Capturing never waits for the disk: the event goes into a bounded queue
/// and a background thread (`errsnap-writer`) resolves symbols, takes the
/// snapshot and commits in batches. Call [`flush`](Self::flush) (or keep the
/// [`Guard`](crate::Guard) from [`init`](crate::init)) before the process
/// exits.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("LOGS.db");
/// use std::time::Duration;
/// use errsnap::{EventLogger, PushOptions};
///
/// let logger = EventLogger::builder().name("error_table").path(&path).build()?;
/// let id = logger.push_to_table("Error: division by zero", PushOptions::new().hw_monitor(true));
/// logger.error("something else failed");
/// assert!(logger.flush(Duration::from_secs(5)));
///
/// let db = rusqlite::Connection::open(&path).unwrap();
/// let stored: String = db
///     .query_row("SELECT message FROM error_table WHERE event_id = ?1", [id.to_string()], |r| r.get(0))
///     .unwrap();
/// assert_eq!(stored, "Error: division by zero");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventLogger {
    inner: Arc<Inner>,
}

struct Inner {
    context: Arc<Context>,
    worker: Arc<Worker>,
    /// Alert channels and this logger's filter for each.
    routes: Vec<(String, LevelFilter)>,
    /// What the database keeps (panics always; alerted events always).
    db_level: LevelFilter,
    /// What is printed on stderr.
    console_level: LevelFilter,
    /// Keep 1 in N events below error (1: keep all).
    keep_one_in: u64,
    sample_counter: AtomicU64,
    breadcrumbs: Mutex<VecDeque<Breadcrumb>>,
    breadcrumb_capacity: usize,
    backtrace_level: Level,
    panic_timeout: Duration,
}

impl std::fmt::Debug for EventLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLogger")
            .field("name", &self.inner.context.logger)
            .field("path", &self.inner.worker.path())
            .finish()
    }
}

/// The error returned by [`EventLogger::catch`]: what the closure returned,
/// or the panic it raised (both already recorded).
pub enum CatchError<E> {
    /// The closure returned `Err`.
    Err(E),
    /// The closure panicked. Resume it with `std::panic::resume_unwind(payload)`.
    Panic {
        /// The panic message (payload text, or a placeholder).
        message: String,
        /// The original payload.
        payload: Box<dyn Any + Send + 'static>,
    },
}

impl<E: std::fmt::Debug> std::fmt::Debug for CatchError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchError::Err(e) => f.debug_tuple("Err").field(e).finish(),
            CatchError::Panic { message, .. } => {
                f.debug_struct("Panic").field("message", message).finish()
            }
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for CatchError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchError::Err(e) => e.fmt(f),
            CatchError::Panic { message, .. } => write!(f, "panicked: {message}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CatchError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CatchError::Err(e) => e.source(),
            CatchError::Panic { .. } => None,
        }
    }
}

/// The text of a panic payload: `&str`, `String`, or a placeholder.
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// A tidy type name for the error-type column: `dyn` types say nothing.
fn useful_type_name<E: ?Sized>() -> Option<&'static str> {
    let n = std::any::type_name::<E>();
    (!n.starts_with("dyn ")).then_some(n)
}

impl EventLogger {
    /// Opens (creating if needed) `LOGS.db` in the working directory, reads
    /// `.env` if present, and records into the table `name`.
    ///
    /// # Errors
    /// `name` is not a valid identifier, the configuration is invalid, or
    /// the database cannot be opened.
    pub fn new(name: &str) -> Result<EventLogger> {
        Self::builder().name(name).build()
    }

    /// A logger for your own tests (`cargo test` of your application):
    /// named `test`, no settings read from `.env` or the environment, events
    /// kept in memory (no `LOGS.db`), no alert sent. Returns the logger and
    /// the list of what it recorded.
    ///
    /// ```
    /// use errsnap::prelude::*;
    ///
    /// fn parse_port(s: &str, logger: &errsnap::EventLogger) -> Option<u16> {
    ///     s.parse::<u16>().report(logger).ok()
    /// }
    ///
    /// let (logger, captured) = errsnap::EventLogger::for_tests();
    /// assert_eq!(parse_port("http", &logger), None);
    /// let events = captured.events();
    /// assert_eq!(events.len(), 1);
    /// assert_eq!(events[0].message(), "invalid digit found in string");
    /// ```
    ///
    /// Use [`EventLoggerBuilder::build_for_tests`] for other settings.
    ///
    /// # Panics
    /// If the writer thread cannot be started (a test helper may panic;
    /// `build_for_tests` returns the error instead).
    #[allow(clippy::expect_used)]
    pub fn for_tests() -> (EventLogger, crate::testing::CapturedEvents) {
        Self::builder()
            .name("test")
            .config(Config::empty())
            .build_for_tests()
            .expect("errsnap: starting a test logger")
    }

    /// A builder for every other setting.
    pub fn builder() -> EventLoggerBuilder {
        EventLoggerBuilder::default()
    }

    /// The logger (table) name.
    pub fn name(&self) -> &str {
        &self.inner.context.logger
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.inner.worker.path()
    }

    /// Records a message at `level`; returns its id.
    #[track_caller]
    pub fn log(&self, level: Level, message: impl Into<String>) -> EventId {
        self.submit(
            level,
            EventKind::Message,
            message.into(),
            Vec::new(),
            Some(CallSite::Static(std::panic::Location::caller())),
            Extras::default(),
        )
    }

    /// Records a message that may not be valid UTF-8 (a path, an argument,
    /// an environment value): it is stored with invalid sequences replaced
    /// by U+FFFD, and then tagged `errsnap.invalid_utf8 = true`.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// let arg = std::env::args_os().next().unwrap_or_default();
    /// logger.log_os(errsnap::Level::Warn, &arg);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn log_os(&self, level: Level, message: &std::ffi::OsStr) -> EventId {
        let lossy = message.to_string_lossy();
        let mut extras = Extras::default();
        if let std::borrow::Cow::Owned(_) = lossy {
            extras
                .tags
                .insert("errsnap.invalid_utf8".into(), "true".into());
        }
        self.submit(
            level,
            EventKind::Message,
            lossy.into_owned(),
            Vec::new(),
            Some(CallSite::Static(std::panic::Location::caller())),
            extras,
        )
    }

    /// Records a message at level trace.
    #[track_caller]
    pub fn trace(&self, message: impl Into<String>) -> EventId {
        self.log(Level::Trace, message)
    }
    /// Records a message at level debug.
    #[track_caller]
    pub fn debug(&self, message: impl Into<String>) -> EventId {
        self.log(Level::Debug, message)
    }
    /// Records a message at level info.
    #[track_caller]
    pub fn info(&self, message: impl Into<String>) -> EventId {
        self.log(Level::Info, message)
    }
    /// Records a message at level warn.
    #[track_caller]
    pub fn warn(&self, message: impl Into<String>) -> EventId {
        self.log(Level::Warn, message)
    }
    /// Records a message at level error.
    #[track_caller]
    pub fn error(&self, message: impl Into<String>) -> EventId {
        self.log(Level::Error, message)
    }
    /// Records a message at level fatal.
    #[track_caller]
    pub fn fatal(&self, message: impl Into<String>) -> EventId {
        self.log(Level::Fatal, message)
    }

    /// Records an error with its whole `source()` chain at level error.
    ///
    /// Works with any `std::error::Error`; pass `&*err` for an
    /// `anyhow::Error` or a `Box<dyn Error>`.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).build()?;
    /// let err = std::fs::read("/nonexistent/file").unwrap_err();
    /// logger.capture_error(&err);
    /// let boxed: Box<dyn std::error::Error + Send + Sync> = "boxed failure".into();
    /// logger.capture_error(&*boxed);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn capture_error<E>(&self, err: &E) -> EventId
    where
        E: std::error::Error + ?Sized + 'static,
    {
        self.capture_error_at(Level::Error, err)
    }

    /// [`capture_error`](Self::capture_error) at a given level.
    #[track_caller]
    pub fn capture_error_at<E>(&self, level: Level, err: &E) -> EventId
    where
        E: std::error::Error + ?Sized + 'static,
    {
        let chain = chain_of(err);
        let message = chain.first().map(|c| c.message.clone()).unwrap_or_default();
        self.submit(
            level,
            EventKind::Error,
            message,
            chain,
            Some(CallSite::Static(std::panic::Location::caller())),
            Extras::default(),
        )
    }

    /// Records an error under a message of the caller's (`report_with`):
    /// the message first, then the error's own chain.
    pub(crate) fn capture_error_as<E>(&self, message: String, err: &E, site: CallSite) -> EventId
    where
        E: std::error::Error + ?Sized + 'static,
    {
        let mut chain = chain_of(err);
        let type_name = chain.first_mut().and_then(|c| c.type_name.take());
        chain.insert(
            0,
            ChainLink {
                message: message.clone(),
                type_name,
            },
        );
        self.submit(
            Level::Error,
            EventKind::Error,
            message,
            chain,
            Some(site),
            Extras::default(),
        )
    }

    /// The original design's call: records `msg` into this logger's table,
    /// with a snapshot if `hw_monitor`, and asks for Slack / e-mail alerts.
    /// Returns the new event's id.
    #[track_caller]
    pub fn push_to_table(&self, msg: impl Into<String>, options: PushOptions) -> EventId {
        self.submit(
            options.level,
            EventKind::Message,
            msg.into(),
            Vec::new(),
            Some(CallSite::Static(std::panic::Location::caller())),
            Extras::from(options),
        )
    }

    /// Records an error with its whole `source()` chain, with per-call
    /// options: level, tags, extra data, grouping, alert choices.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).build()?;
    /// use errsnap::{Level, PushOptions};
    /// let err = std::fs::read("/nonexistent/file").unwrap_err();
    /// logger.capture_error_with(
    ///     &err,
    ///     PushOptions::new().level(Level::Warn).tag("file", "settings").fingerprint(["settings-missing"]),
    /// );
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn capture_error_with<E>(&self, err: &E, options: PushOptions) -> EventId
    where
        E: std::error::Error + ?Sized + 'static,
    {
        let chain = chain_of(err);
        let message = chain.first().map(|c| c.message.clone()).unwrap_or_default();
        self.submit(
            options.level,
            EventKind::Error,
            message,
            chain,
            Some(CallSite::Static(std::panic::Location::caller())),
            Extras::from(options),
        )
    }

    /// Records an error whose chain and origin were read already (the
    /// `anyhow` and `eyre` integrations).
    #[cfg_attr(not(any(feature = "anyhow", feature = "eyre")), allow(dead_code))]
    pub(crate) fn capture_chain(
        &self,
        chain: Vec<ChainLink>,
        origin: Option<String>,
        site: CallSite,
        options: PushOptions,
    ) -> EventId {
        let message = chain.first().map(|c| c.message.clone()).unwrap_or_default();
        let mut extras = Extras::from(options);
        extras.origin = origin;
        self.submit(
            extras.level,
            EventKind::Error,
            message,
            chain,
            Some(site),
            extras,
        )
    }

    /// Starts an event with tags and extra data.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).build()?;
    /// logger
    ///     .event(errsnap::Level::Warn, "slow request")
    ///     .tag("route", "/checkout")
    ///     .extra("elapsed_ms", 1530)
    ///     .emit();
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn event(&self, level: Level, message: impl Into<String>) -> EventBuilder<'_> {
        EventBuilder {
            logger: self,
            level,
            kind: EventKind::Message,
            message: message.into(),
            chain: Vec::new(),
            call_site: CallSite::Static(std::panic::Location::caller()),
            extras: Extras::default(),
        }
    }

    /// Runs `f`, records an `Err` it returns or a panic it raises, and gives
    /// back what it returned (a panic comes back as [`CatchError::Panic`]).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).build()?;
    /// let r: Result<u32, errsnap::CatchError<std::num::ParseIntError>> =
    ///     logger.catch(|| "42".parse::<u32>());
    /// assert_eq!(r.unwrap(), 42);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn catch<T, E, F>(&self, f: F) -> std::result::Result<T, CatchError<E>>
    where
        F: FnOnce() -> std::result::Result<T, E> + std::panic::UnwindSafe,
        E: std::error::Error + 'static,
    {
        let site = std::panic::Location::caller();
        crate::panic::take_recorded_panic();
        match std::panic::catch_unwind(f) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let chain = chain_of(&e);
                let message = chain.first().map(|c| c.message.clone()).unwrap_or_default();
                self.submit(
                    Level::Error,
                    EventKind::Error,
                    message,
                    chain,
                    Some(CallSite::Static(site)),
                    Extras::default(),
                );
                Err(CatchError::Err(e))
            }
            Err(payload) => {
                let message = payload_text(payload.as_ref());
                // The panic hook, if installed, recorded it already.
                if !crate::panic::take_recorded_panic() {
                    self.submit(
                        Level::Fatal,
                        EventKind::Panic,
                        message.clone(),
                        Vec::new(),
                        Some(CallSite::Static(site)),
                        Extras::default(),
                    );
                }
                Err(CatchError::Panic { message, payload })
            }
        }
    }

    /// Waits until every event handed over so far is committed (or spooled,
    /// if the database cannot be written). Returns `false` if `timeout`
    /// passed first or the writer has stopped.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.worker().flush(timeout)
    }

    /// Waits until no alert is due: each was sent, or waits for a later
    /// retry (a server that is down, a rate limit) in the outbox. Returns
    /// `false` if `timeout` passed first. Call [`flush`](Self::flush) first
    /// for alerts of events still in the queue.
    pub fn flush_alerts(&self, timeout: Duration) -> bool {
        self.worker().flush_alerts(timeout)
    }

    /// Sends a test alert through every configured channel and returns what
    /// each answered, as `(channel, result)`. Blocks for up to the channels'
    /// timeouts; meant for set-up checks, not the hot path. Nothing is
    /// stored.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let logger = errsnap::EventLogger::builder()
    ///     .name("t")
    ///     .path(dir.path().join("L.db"))
    ///     .config(errsnap::Config::empty())
    ///     .build()?;
    /// assert!(logger.send_test_alert().is_empty()); // no channel configured
    /// # Ok(()) }
    /// ```
    pub fn send_test_alert(&self) -> Vec<(String, std::result::Result<(), NotifyError>)> {
        let ctx = &self.inner.context;
        let alert = Alert::test(&ctx.logger, ctx.app_name.clone(), ctx.environment.clone());
        self.inner.worker.alerting().send_test(alert)
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.worker().dropped_events()
    }

    pub(crate) fn exit_budget(&self) -> Duration {
        self.worker().exit_budget()
    }

    pub(crate) fn panic_timeout(&self) -> Duration {
        self.inner.panic_timeout
    }

    pub(crate) fn worker(&self) -> &Arc<Worker> {
        self.inner.worker.current()
    }

    /// Builds the pending event on the caller's thread.
    pub(crate) fn pending(
        &self,
        level: Level,
        kind: EventKind,
        message: String,
        chain: Vec<ChainLink>,
        call_site: Option<CallSite>,
        extras: Extras,
    ) -> Option<PendingEvent> {
        let inner = &*self.inner;
        let alert_channels = self.route(level, &extras.channels);
        let panic = kind == EventKind::Panic;
        let store = panic || inner.db_level.allows(level) || !alert_channels.is_empty();
        let console = inner.console_level.allows(level);
        if !store && !console {
            return None;
        }
        if inner.keep_one_in > 1 && level < Level::Error && !panic && alert_channels.is_empty() {
            let n = inner.sample_counter.fetch_add(1, Ordering::Relaxed);
            if !n.is_multiple_of(inner.keep_one_in) {
                self.worker().count_sampled();
                return None;
            }
        }
        let timestamp_ms = crate::util::time::now_ms();
        // An error that brings its own backtrace (where it was made) needs
        // no walk of this stack.
        let backtrace =
            if store && extras.origin.is_none() && (panic || level >= inner.backtrace_level) {
                Some(RawBacktrace::capture())
            } else {
                None
            };
        let breadcrumbs = if store {
            self.take_breadcrumbs()
        } else {
            Vec::new()
        };
        Some(PendingEvent {
            id: EventId::generate(timestamp_ms),
            timestamp_ms,
            context: inner.context.clone(),
            level,
            kind,
            message,
            chain,
            call_site,
            thread: ThreadInfo::current(),
            backtrace,
            snapshot: extras.snapshot.unwrap_or(true),
            alert_channels,
            store,
            console,
            breadcrumbs,
            tags: extras.tags,
            extra: extras.extra,
            fingerprint: extras.fingerprint,
            origin: if store { extras.origin } else { None },
        })
    }

    fn take_breadcrumbs(&self) -> Vec<Breadcrumb> {
        if self.inner.breadcrumb_capacity == 0 {
            return Vec::new();
        }
        let mut ring = self
            .inner
            .breadcrumbs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if ring.is_empty() {
            return Vec::new();
        }
        ring.drain(..).collect()
    }

    /// Keeps a lower-level record in this logger's ring (the last
    /// `breadcrumbs` of them, default 50); the next stored event carries
    /// them, oldest first. The `log` and `tracing` bridges call this for
    /// records below their capture level.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// use errsnap::Level;
    /// logger.add_breadcrumb(Level::Info, "http", "GET /cart 200");
    /// logger.add_breadcrumb(Level::Info, "http", "POST /checkout");
    /// logger.error("checkout failed"); // stored with both breadcrumbs
    /// # Ok(()) }
    /// ```
    pub fn add_breadcrumb(&self, level: Level, category: &str, message: impl Into<String>) {
        let cap = self.inner.breadcrumb_capacity;
        if cap == 0 {
            return;
        }
        let crumb = Breadcrumb {
            timestamp_ms: crate::util::time::now_ms(),
            level,
            category: category.to_owned(),
            message: message.into(),
        };
        let mut ring = self
            .inner
            .breadcrumbs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if ring.len() >= cap {
            ring.pop_front();
        }
        ring.push_back(crumb);
    }

    /// Whether an event at `level` would be kept anywhere (the database,
    /// the console or an alert channel). Lets callers skip building costly
    /// messages.
    pub fn enabled(&self, level: Level) -> bool {
        let inner = &*self.inner;
        inner.db_level.allows(level)
            || inner.console_level.allows(level)
            || inner.routes.iter().any(|(_, f)| f.allows(level))
    }

    /// The channels an event goes to: by level, then the explicit choices.
    fn route(&self, level: Level, explicit: &[(&'static str, bool)]) -> Vec<String> {
        let mut out: Vec<String> = self
            .inner
            .routes
            .iter()
            .filter(|(_, filter)| filter.allows(level))
            .map(|(name, _)| name.clone())
            .collect();
        for (name, on) in explicit {
            let present = out.iter().position(|c| c == name);
            match (on, present) {
                (true, None) => out.push((*name).to_owned()),
                (false, Some(i)) => {
                    out.remove(i);
                }
                _ => {}
            }
        }
        out
    }

    /// Records an event built elsewhere (the bridges).
    #[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
    pub(crate) fn record(
        &self,
        level: Level,
        kind: EventKind,
        message: String,
        chain: Vec<ChainLink>,
        call_site: Option<CallSite>,
        extras: Extras,
    ) -> EventId {
        self.submit(level, kind, message, chain, call_site, extras)
    }

    fn submit(
        &self,
        level: Level,
        kind: EventKind,
        message: String,
        chain: Vec<ChainLink>,
        call_site: Option<CallSite>,
        extras: Extras,
    ) -> EventId {
        match self.pending(level, kind, message, chain, call_site, extras) {
            Some(ev) => {
                let id = ev.id;
                self.worker().submit(ev, false);
                id
            }
            // Filtered out: the id refers to nothing stored.
            None => EventId::generate(crate::util::time::now_ms()),
        }
    }
}

fn chain_of<E: std::error::Error + ?Sized + 'static>(err: &E) -> Vec<ChainLink> {
    // `&E` with `E: ?Sized` cannot be turned into `&dyn Error` directly:
    // record the outermost link here and walk the sources from there.
    let mut chain = vec![ChainLink {
        message: capture::display_text(&err),
        type_name: useful_type_name::<E>().map(str::to_owned),
    }];
    let source = crate::util::unwind::guarded(|| err.source()).flatten();
    capture::add_sources(source, &mut chain);
    chain
}

/// Per-event additions.
#[derive(Debug)]
pub(crate) struct Extras {
    pub(crate) snapshot: Option<bool>,
    /// Explicit per-event choices: `(channel, on)`.
    pub(crate) channels: Vec<(&'static str, bool)>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    /// Custom grouping parts (see [`PushOptions::fingerprint`]).
    pub(crate) fingerprint: Option<Vec<String>>,
    /// The error's own backtrace, as text (`anyhow`, `eyre`): where it was
    /// made, rather than where it was reported.
    pub(crate) origin: Option<String>,
    /// The level asked for with the options.
    pub(crate) level: Level,
}

impl Default for Extras {
    fn default() -> Extras {
        Extras {
            snapshot: None,
            channels: Vec::new(),
            tags: BTreeMap::new(),
            extra: serde_json::Map::new(),
            fingerprint: None,
            origin: None,
            level: Level::Error,
        }
    }
}

impl From<PushOptions> for Extras {
    fn from(o: PushOptions) -> Extras {
        Extras {
            snapshot: Some(o.hw_monitor),
            channels: [("slack", o.slack), ("email", o.email)]
                .into_iter()
                .filter_map(|(c, on)| on.map(|on| (c, on)))
                .collect(),
            tags: o.tags,
            extra: o.extra,
            fingerprint: o.fingerprint,
            origin: None,
            level: o.level,
        }
    }
}

/// An event being put together; see [`EventLogger::event`]. Nothing is
/// recorded until [`emit`](Self::emit).
#[derive(Debug)]
#[must_use = "the event is recorded only when `emit` is called"]
pub struct EventBuilder<'a> {
    logger: &'a EventLogger,
    level: Level,
    kind: EventKind,
    message: String,
    chain: Vec<ChainLink>,
    call_site: CallSite,
    extras: Extras,
}

impl EventBuilder<'_> {
    /// Adds a tag (indexed text).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extras.tags.insert(key.into(), value.into());
        self
    }
    /// Adds structured extra data. Values nested deeper than 64 levels
    /// are cut there (the deeper part becomes a marker string).
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let mut value = value.into();
        crate::event::bound_json_depth(&mut value);
        if let Some(old) = self.extras.extra.insert(key.into(), value) {
            crate::event::drop_json(old);
        }
        self
    }
    /// Attaches an error and its `source()` chain.
    pub fn error<E: std::error::Error + ?Sized + 'static>(mut self, err: &E) -> Self {
        self.chain = chain_of(err);
        self.kind = EventKind::Error;
        self
    }
    /// Groups the event by these parts instead of errsnap's own
    /// fingerprint; see [`PushOptions::fingerprint`].
    pub fn fingerprint<I, S>(mut self, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extras.fingerprint = Some(parts.into_iter().map(Into::into).collect());
        self
    }
    /// Whether to take the CPU/memory snapshot (default: yes).
    pub fn hw_monitor(mut self, on: bool) -> Self {
        self.extras.snapshot = Some(on);
        self
    }
    /// `true` asks for a Slack alert whatever the level; `false` prevents one.
    pub fn slack(mut self, on: bool) -> Self {
        self.extras.channels.push(("slack", on));
        self
    }
    /// `true` asks for an e-mail alert whatever the level; `false` prevents one.
    pub fn email(mut self, on: bool) -> Self {
        self.extras.channels.push(("email", on));
        self
    }
    /// Records the event; returns its id.
    pub fn emit(self) -> EventId {
        self.logger.submit(
            self.level,
            self.kind,
            self.message,
            self.chain,
            Some(self.call_site),
            self.extras,
        )
    }
}

/// Settings for an [`EventLogger`]; every setting has a default.
///
/// | setting | default | `.env` / environment key |
/// | --- | --- | --- |
/// | `name` | `events_log` | |
/// | `path` | `./LOGS.db` | `ERRSNAP_DB_PATH` |
/// | `app_name` | none | `ERRSNAP_APP_NAME` |
/// | `release` | none | `ERRSNAP_RELEASE` |
/// | `environment` | none | `ERRSNAP_ENVIRONMENT` |
/// | `durability` | `Normal` | `ERRSNAP_DURABILITY` (`normal`/`full`) |
/// | `queue_capacity` | 10,000 events (and 64 MiB) | `ERRSNAP_QUEUE_CAPACITY` |
/// | `overflow` | `Overflow::Drop` | |
/// | `exit_budget` | 3 s: everything done on the way out (the panic hook's waits for the commit and the alert, then the guard's and the writer's drain, retries that fit included) | `ERRSNAP_EXIT_BUDGET_MS` |
/// | `panic_timeout` | 2 s (within the exit budget) | `ERRSNAP_PANIC_TIMEOUT_MS` |
/// | `backtrace_level` | `Warn` (events below it carry no backtrace) | |
///
/// Builder calls win over the environment, which wins over `.env`.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventLoggerBuilder {
    name: Option<String>,
    path: Option<PathBuf>,
    app_name: Option<String>,
    release: Option<String>,
    environment: Option<String>,
    tags: BTreeMap<String, String>,
    durability: Option<Durability>,
    capacity: Option<usize>,
    max_queue_bytes: Option<usize>,
    overflow: Option<Overflow>,
    linger: Option<Duration>,
    panic_timeout: Option<Duration>,
    exit_budget: Option<Duration>,
    disabled: Option<bool>,
    backtrace_level: Option<Level>,
    config: Option<Config>,
    dotenv_path: Option<PathBuf>,
    config_file: Option<PathBuf>,
    alerts: AlertOverrides,
    db_level: Option<LevelFilter>,
    console_level: Option<LevelFilter>,
    keep_one_in: Option<u64>,
    redact_emails: Option<bool>,
    redact_patterns: Vec<String>,
    before_save: Option<Hook>,
    breadcrumbs: Option<usize>,
    retain_for: Option<Duration>,
    retain_events: Option<u64>,
    retain_bytes: Option<u64>,
    prewarm_symbols: bool,
    busy_timeout: Option<Duration>,
}

/// A `before_save` hook, with a `Debug` that says only whether it is set.
#[derive(Clone)]
struct Hook(BeforeSave);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook(..)")
    }
}

impl EventLoggerBuilder {
    /// The logger (table) name: `[A-Za-z_][A-Za-z0-9_]{0,63}`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The database file (default `./LOGS.db`).
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_owned());
        self
    }
    /// The application's name, stored with each event.
    pub fn app_name(mut self, v: impl Into<String>) -> Self {
        self.app_name = Some(v.into());
        self
    }
    /// The release (version), stored with each event.
    pub fn release(mut self, v: impl Into<String>) -> Self {
        self.release = Some(v.into());
        self
    }
    /// The environment (`production`, `staging`, ...).
    pub fn environment(mut self, v: impl Into<String>) -> Self {
        self.environment = Some(v.into());
        self
    }
    /// A tag added to every event of this logger.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
    /// Durability of commits (see [`Durability`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = Some(d);
        self
    }
    /// How many events may wait for the writer.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.capacity = Some(n.max(1));
        self
    }
    /// How many bytes of events may wait for the writer.
    pub fn max_queue_bytes(mut self, n: usize) -> Self {
        self.max_queue_bytes = Some(n.max(1));
        self
    }
    /// What a caller does when the queue is full.
    pub fn overflow(mut self, o: Overflow) -> Self {
        self.overflow = Some(o);
        self
    }
    /// How long the writer waits to gather a batch after the first event.
    pub fn linger(mut self, d: Duration) -> Self {
        self.linger = Some(d);
        self
    }
    /// How long the panic hook waits for the panic's record to be committed
    /// before writing it itself.
    pub fn panic_timeout(mut self, d: Duration) -> Self {
        self.panic_timeout = Some(d);
        self
    }
    /// The one budget for everything done on the way out (default 3 s):
    /// the panic hook's waits for the commit and for the fatal alert, then
    /// the guard's or the last logger's drain of the queue and the outbox.
    /// A failed delivery is retried within it when its backoff fits; what
    /// does not fit waits in the outbox for the next start.
    pub fn exit_budget(mut self, d: Duration) -> Self {
        self.exit_budget = Some(d);
        self
    }
    /// The same as [`exit_budget`](Self::exit_budget) (its former name).
    pub fn shutdown_timeout(self, d: Duration) -> Self {
        self.exit_budget(d)
    }
    /// Events at or above this level carry a backtrace (panics always do).
    pub fn backtrace_level(mut self, level: Level) -> Self {
        self.backtrace_level = Some(level);
        self
    }
    /// Use these settings instead of reading `./.env` and the environment.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }
    /// Adds an alert channel: events at or above `min_level` are sent to it
    /// (throttled like the built-in ones).
    pub fn notifier(mut self, notifier: impl Notifier, min_level: Level) -> Self {
        self.alerts.custom.push((Arc::new(notifier), min_level));
        self
    }
    /// This logger's lowest level alerted on Slack (default error;
    /// `LevelFilter::Off` for none).
    pub fn slack_min_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.alerts.slack_min = Some(level.into());
        self
    }
    /// This logger's lowest level alerted by e-mail (default fatal).
    pub fn email_min_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.alerts.email_min = Some(level.into());
        self
    }
    /// This logger's lowest level stored in the database (default warn).
    /// Panics, and events routed to an alert channel, are always stored.
    pub fn db_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.db_level = Some(level.into());
        self
    }
    /// This logger's lowest level printed on stderr (default off).
    pub fn console_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.console_level = Some(level.into());
        self
    }
    /// Keep one in `n` events below error (default 1: all). What sampling
    /// leaves out is counted in the `counters` table as `sampled_out`.
    pub fn sample_below_error(mut self, n: u64) -> Self {
        self.keep_one_in = Some(n.max(1));
        self
    }
    /// Also redact e-mail addresses (default off).
    pub fn redact_emails(mut self, on: bool) -> Self {
        self.redact_emails = Some(on);
        self
    }
    /// Adds a redaction rule: every match of the regular expression is
    /// replaced by `[REDACTED]` (checked by [`build`](Self::build)).
    pub fn redact(mut self, pattern: impl Into<String>) -> Self {
        self.redact_patterns.push(pattern.into());
        self
    }
    /// A hook run on the writer thread for each event of this logger, after
    /// symbol resolution and before redaction and storage: it may change the
    /// event, or drop it by returning `false`. A hook that panics keeps the
    /// event unchanged, tagged `errsnap.before_save = panicked`.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let logger = errsnap::EventLogger::builder()
    ///     .name("t")
    ///     # .path(dir.path().join("L.db")).config(errsnap::Config::empty())
    ///     .before_save(|ev| {
    ///         ev.tags_mut().insert("team".into(), "payments".into());
    ///         !ev.message().contains("healthcheck") // drop the noisy ones
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn before_save(
        mut self,
        hook: impl Fn(&mut Event) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.before_save = Some(Hook(Arc::new(hook)));
        self
    }
    /// Automatic retention: the writer deletes events older than this (a
    /// group's first event, and events with a pending alert, are kept).
    pub fn retain_for(mut self, age: Duration) -> Self {
        self.retain_for = Some(age);
        self
    }
    /// Automatic retention: keep at most this many events (the newest).
    pub fn retain_events(mut self, n: u64) -> Self {
        self.retain_events = Some(n.max(1));
        self
    }
    /// Automatic retention: keep the database's used size under this many
    /// bytes, deleting the oldest events first.
    pub fn retain_bytes(mut self, n: u64) -> Self {
        self.retain_bytes = Some(n);
        self
    }
    /// Load the program's symbol tables on the writer thread at start, so
    /// the first panic's record is as fast as later ones (see
    /// BENCHMARKS.md). Costs the symbolizer's memory (tens of MiB for a
    /// binary with debug info) even if nothing ever fails; off by default.
    pub fn prewarm_symbols(mut self, on: bool) -> Self {
        self.prewarm_symbols = on;
        self
    }
    /// How long a write waits for another connection's lock before the
    /// batch goes to the spool (default 5 s).
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = Some(d);
        self
    }
    /// How many breadcrumbs the ring keeps (default 50; 0 disables).
    pub fn breadcrumbs(mut self, n: usize) -> Self {
        self.breadcrumbs = Some(n);
        self
    }
    /// Read this TOML settings file (it must exist) instead of the optional
    /// `config/errsnap.toml`.
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.config_file = Some(path.as_ref().to_owned());
        self
    }
    /// After alerting, a group alerts again at most once per `cooldown`
    /// (default 10 min), with a digest of what it held back.
    pub fn alert_cooldown(mut self, cooldown: Duration) -> Self {
        self.alerts.cooldown = Some(cooldown);
        self
    }
    /// Alert only once a group happened `count` times within `window`
    /// (default: on first sight).
    pub fn alert_threshold(mut self, count: u32, window: Duration) -> Self {
        self.alerts.threshold = Some((count.max(1), window));
        self
    }
    /// The first retry delay of a failed delivery (default 2 s; doubles
    /// each attempt, with jitter, up to 5 min).
    pub fn alert_retry_base(mut self, base: Duration) -> Self {
        self.alerts.retry_base = Some(base);
        self
    }
    /// How long the panic hook waits for a fatal alert to go out (default
    /// 2 s, within the exit budget; zero disables).
    pub fn panic_alert_wait(mut self, wait: Duration) -> Self {
        self.alerts.panic_wait = Some(wait);
        self
    }
    /// Read this `.env` file (it must exist) instead of `./.env`.
    pub fn dotenv_path(mut self, path: impl AsRef<Path>) -> Self {
        self.dotenv_path = Some(path.as_ref().to_owned());
        self
    }

    /// Validates the settings, opens the database (creating and migrating
    /// it) and starts its writer if none runs for that file yet.
    ///
    /// # Errors
    /// An invalid logger name or setting (the error names the key), or a
    /// database that cannot be opened or is from a newer errsnap.
    pub fn build(self) -> Result<EventLogger> {
        self.build_to(worker::Target::File)
    }

    /// Builds a logger for your own tests: the same capture, grouping,
    /// redaction and `before_save` as [`build`](Self::build), but events go
    /// to a list in memory instead of a file, and no alert is sent. Returns
    /// the logger and the list.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// let (logger, captured) = errsnap::EventLogger::builder()
    ///     .name("checkout")
    ///     .config(errsnap::Config::empty())
    ///     .build_for_tests()?;
    /// logger.error("card declined");
    /// let events = captured.events(); // waits for the writer
    /// assert_eq!(events[0].message(), "card declined");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`build`](Self::build), for the settings.
    pub fn build_for_tests(self) -> Result<(EventLogger, crate::testing::CapturedEvents)> {
        let list = Arc::new(Mutex::new(Vec::new()));
        let logger = self.build_to(worker::Target::Memory(list.clone()))?;
        let captured = crate::testing::CapturedEvents::new(list, logger.clone());
        Ok((logger, captured))
    }

    /// Switches errsnap off for this logger: it records nothing, creates no
    /// file, starts no thread and sends nothing; every call returns at once.
    /// `ERRSNAP_DISABLED=1` does the same from the environment or `.env`
    /// (for a test run of your application, say).
    pub fn disabled(mut self, off: bool) -> Self {
        self.disabled = Some(off);
        self
    }

    fn build_to(self, target: worker::Target) -> Result<EventLogger> {
        let name = self.name.unwrap_or_else(|| "events_log".to_owned());
        validate_logger_name(&name)?;
        let mut config = match (self.config, &self.dotenv_path) {
            (Some(c), _) => c,
            (None, Some(p)) => Config::from_dotenv_path(p)?,
            (None, None) => Config::from_env()?,
        };
        if let Some(file) = &self.config_file {
            config = config.with_file(file)?;
        }
        if !config.warnings().is_empty() {
            crate::util::internal_log::report("settings", &config.warnings().join("; "));
        }
        let path = match self.path {
            Some(p) => p,
            None => config
                .string("ERRSNAP_DB_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH)),
        };
        let durability = match self.durability {
            Some(d) => d,
            None => config
                .parse("ERRSNAP_DURABILITY", "normal or full")?
                .unwrap_or_default(),
        };
        let capacity = match self.capacity {
            Some(c) => c,
            None => {
                match config.parse::<usize>("ERRSNAP_QUEUE_CAPACITY", "a whole number from 1")? {
                    Some(0) => {
                        return Err(Error::config(
                            "ERRSNAP_QUEUE_CAPACITY",
                            "\"0\": expected a whole number from 1",
                        ))
                    }
                    Some(c) => c,
                    None => WorkerConfig::default().capacity,
                }
            }
        };
        let panic_timeout = match self.panic_timeout {
            Some(t) => t,
            None => config
                .parse::<u64>("ERRSNAP_PANIC_TIMEOUT_MS", "milliseconds as a whole number")?
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_secs(2)),
        };
        let slack_min = self.alerts.slack_min;
        let email_min = self.alerts.email_min;
        let alerting = crate::notify::setup::alerting(&config, self.alerts)?;
        let mut routes = Vec::new();
        for c in &alerting.channels {
            let filter = match (&*c.name, slack_min, email_min) {
                ("slack", Some(f), _) | ("email", _, Some(f)) => f,
                ("slack", None, _) => config
                    .level_for(&name, Destination::Slack)?
                    .unwrap_or(c.min_level),
                ("email", _, None) => config
                    .level_for(&name, Destination::Email)?
                    .unwrap_or(c.min_level),
                _ => c.min_level,
            };
            routes.push((c.name.to_string(), filter));
        }
        let db_level = match self.db_level {
            Some(l) => l,
            None => config
                .level_for(&name, Destination::Database)?
                .unwrap_or(LevelFilter::Warn),
        };
        let console_level = match self.console_level {
            Some(l) => l,
            None => config
                .level_for(&name, Destination::Console)?
                .unwrap_or(LevelFilter::Off),
        };
        let keep_one_in = match self.keep_one_in {
            Some(n) => n,
            None => {
                match config.parse::<u64>("ERRSNAP_SAMPLE_KEEP_ONE_IN", "a whole number from 1")? {
                    Some(0) => {
                        return Err(Error::config(
                            "ERRSNAP_SAMPLE_KEEP_ONE_IN",
                            "\"0\": expected a whole number from 1",
                        ))
                    }
                    Some(n) => n,
                    None => 1,
                }
            }
        };
        let breadcrumb_capacity = match self.breadcrumbs {
            Some(n) => n,
            None => config
                .parse::<usize>("ERRSNAP_BREADCRUMBS", "a whole number (0 disables)")?
                .unwrap_or(50),
        }
        .min(10_000);
        let redact_emails = match self.redact_emails {
            Some(b) => b,
            None => config
                .parse::<bool>("ERRSNAP_REDACT_EMAILS", "true or false")?
                .unwrap_or(false),
        };
        let mut patterns = self.redact_patterns.clone();
        let mut patterns_key = "redact";
        if let Some(raw) = config.string("ERRSNAP_REDACT_PATTERNS") {
            patterns_key = "ERRSNAP_REDACT_PATTERNS";
            if raw.starts_with('[') {
                let list: Vec<String> = serde_json::from_str(&raw).map_err(|e| {
                    Error::config(
                        "ERRSNAP_REDACT_PATTERNS",
                        format!("expected a JSON array of strings or one pattern ({e})"),
                    )
                })?;
                patterns.extend(list);
            } else {
                patterns.push(raw);
            }
        }
        let redactor = Redactor::new(redact_emails, &patterns, patterns_key)?;
        let retention = crate::store::Limits {
            max_age_ms: match self.retain_for {
                Some(d) => Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                None => config
                    .parse::<u64>("ERRSNAP_RETENTION_MAX_AGE_DAYS", "a number of days")?
                    .map(|d| i64::try_from(d.saturating_mul(86_400_000)).unwrap_or(i64::MAX)),
            },
            max_events: match self.retain_events {
                Some(n) => Some(n),
                None => {
                    config.parse::<u64>("ERRSNAP_RETENTION_MAX_EVENTS", "a number of events")?
                }
            },
            max_bytes: match self.retain_bytes {
                Some(n) => Some(n),
                None => config
                    .parse::<u64>("ERRSNAP_RETENTION_MAX_MB", "a size in MiB")?
                    .map(|mb| mb.saturating_mul(1 << 20)),
            },
        };
        let defaults = WorkerConfig::default();
        let cfg = WorkerConfig {
            busy_timeout: self.busy_timeout.unwrap_or(defaults.busy_timeout),
            prewarm_symbols: self.prewarm_symbols,
            retention,
            alerting,
            durability,
            capacity,
            max_bytes: self.max_queue_bytes.unwrap_or(defaults.max_bytes),
            overflow: self.overflow.unwrap_or_default(),
            linger: self.linger.unwrap_or(defaults.linger),
            exit_budget: match self.exit_budget {
                Some(b) => b,
                None => config
                    .parse::<u64>("ERRSNAP_EXIT_BUDGET_MS", "milliseconds as a whole number")?
                    .map_or(defaults.exit_budget, Duration::from_millis),
            },
            ..defaults
        };
        let disabled = match self.disabled {
            Some(d) => d,
            None => config
                .parse::<crate::config::Flag>("ERRSNAP_DISABLED", "1, true, 0 or false")?
                .is_some_and(|f| f.0),
        };
        let target = if disabled {
            worker::Target::Disabled
        } else {
            target
        };
        let in_file = matches!(target, worker::Target::File);
        let cfg = WorkerConfig { target, ..cfg };
        let path = if in_file {
            absolute(&path)?
        } else {
            // Not a file: a name no other logger shares.
            static NEXT: AtomicU64 = AtomicU64::new(0);
            PathBuf::from(format!(
                "<{} {}>",
                if disabled { "disabled" } else { "memory" },
                NEXT.fetch_add(1, Ordering::Relaxed)
            ))
        };
        let worker = worker::for_path(&path, &cfg)?;
        // Register the logger now, so `SELECT * FROM <name>` works at once.
        // Best effort: if the database cannot be written right now, the
        // writer registers it with the first event it stores.
        if in_file {
            if let Err(e) = crate::store::open(&path, durability, Duration::from_millis(500), false)
                .and_then(|mut s| s.ensure_logger(&name))
            {
                if !e.is_refusal() && !matches!(e.kind(), crate::ErrorKind::Storage { .. }) {
                    return Err(e);
                }
            }
        }
        let context = Context {
            logger: name,
            app_name: self.app_name.or_else(|| config.string("ERRSNAP_APP_NAME")),
            release: self.release.or_else(|| config.string("ERRSNAP_RELEASE")),
            environment: self
                .environment
                .or_else(|| config.string("ERRSNAP_ENVIRONMENT")),
            tags: self.tags,
            redactor: Arc::new(redactor),
            before_save: self.before_save.map(|h| h.0),
        };
        Ok(EventLogger {
            inner: Arc::new(Inner {
                context: Arc::new(context),
                routes,
                db_level,
                console_level,
                keep_one_in,
                sample_counter: AtomicU64::new(0),
                breadcrumbs: Mutex::new(VecDeque::new()),
                breadcrumb_capacity,
                worker,
                backtrace_level: self.backtrace_level.unwrap_or(Level::Warn),
                panic_timeout,
            }),
        })
    }
}

/// The canonical form of a database path, so two spellings of one file share
/// one writer. The parent directory must exist.
fn absolute(path: &Path) -> Result<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        Error::config(
            "ERRSNAP_DB_PATH",
            format!("{:?}: expected a file path", path.display().to_string()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| Error::io(format!("finding the directory of {}", path.display()), e))?;
    Ok(parent.join(file_name))
}
