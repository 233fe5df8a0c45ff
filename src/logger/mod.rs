//! [`EventLogger`], its builder, and the per-call options.

use std::any::Any;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

mod breadcrumbs;
mod builder;
mod catch;
mod event_builder;
mod flush;
pub(crate) mod monitor;
pub(crate) mod options;
mod place;
pub(crate) mod scope;
pub(crate) mod testing;

use crate::capture::{self, CallSite, RawBacktrace, ThreadInfo};
use crate::channels::{Alert, ChannelError};
use crate::error::Result;
use crate::event::{Breadcrumb, ChainLink, EventId, EventKind};
use crate::level::{Level, LevelFilter};
use crate::pipeline::{Context, PendingEvent};
use crate::settings::Config;
use crate::worker::Worker;

pub use builder::EventLoggerBuilder;
pub use catch::CatchError;
pub use event_builder::EventBuilder;

pub(crate) use options::PushOptions;
pub use scope::{bind_scope, configure_scope, Scope, ScopeGuard, Scoped};

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
/// let logger = EventLogger::builder().name("error_table").db_path(&path).build()?;
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
    breadcrumbs: Arc<Mutex<VecDeque<Breadcrumb>>>,
    breadcrumb_capacity: usize,
    backtrace_level: Level,
    panic_timeout: Duration,
    /// Print the end-user line instead of Rust's panic message.
    end_user_message: bool,
}

impl std::fmt::Debug for EventLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLogger")
            .field("name", &self.inner.context.logger)
            .field("path", &self.inner.worker.path())
            .finish()
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
    pub fn for_tests() -> (EventLogger, crate::logger::testing::CapturedEvents) {
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
            PushOptions::default(),
        )
    }

    /// Records a message that may not be valid UTF-8 (a path, an argument,
    /// an environment value): it is stored with invalid sequences replaced
    /// by U+FFFD, and then tagged `errsnap.invalid_utf8 = true`.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// let arg = std::env::args_os().next().unwrap_or_default();
    /// logger.log_os(errsnap::Level::Warn, &arg);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn log_os(&self, level: Level, message: &std::ffi::OsStr) -> EventId {
        let lossy = message.to_string_lossy();
        let mut options = PushOptions::default();
        if let std::borrow::Cow::Owned(_) = lossy {
            options
                .tags
                .insert("errsnap.invalid_utf8".into(), "true".into());
        }
        self.submit(
            level,
            EventKind::Message,
            lossy.into_owned(),
            Vec::new(),
            Some(CallSite::Static(std::panic::Location::caller())),
            options,
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
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
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
        self.submit_error(
            level,
            err,
            std::panic::Location::caller(),
            PushOptions::default(),
        )
    }

    /// Records `err` with its chain, the first link as the message.
    pub(super) fn submit_error<E>(
        &self,
        level: Level,
        err: &E,
        site: &'static std::panic::Location<'static>,
        options: PushOptions,
    ) -> EventId
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
            Some(CallSite::Static(site)),
            options,
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
            PushOptions::default(),
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
            options,
        )
    }

    /// Records an error with its whole `source()` chain, with per-call
    /// options: level, tags, extra data, grouping, alert choices.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
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
        self.submit_error(options.level, err, std::panic::Location::caller(), options)
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
        let mut options = options;
        options.origin = origin;
        self.submit(
            options.level,
            EventKind::Error,
            message,
            chain,
            Some(site),
            options,
        )
    }

    /// Starts an event with tags and extra data.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
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
            kind: EventKind::Message,
            message: message.into(),
            chain: Vec::new(),
            call_site: CallSite::Static(std::panic::Location::caller()),
            options: PushOptions::new().level(level),
        }
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
    ///     .db_path(dir.path().join("L.db"))
    ///     .config(errsnap::Config::empty())
    ///     .build()?;
    /// assert!(logger.send_test_alert().is_empty()); // no channel configured
    /// # Ok(()) }
    /// ```
    pub fn send_test_alert(&self) -> Vec<(String, std::result::Result<(), ChannelError>)> {
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

    /// The end-user line for a report saved under `id`, when asked for.
    pub(crate) fn end_user_line(&self, id: &crate::event::EventId) -> Option<String> {
        if !self.inner.end_user_message {
            return None;
        }
        let ctx = &self.inner.context;
        let app = ctx.app_name.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| ctx.logger.clone())
        });
        let app: String = app.chars().filter(|c| !c.is_control()).collect();
        Some(format!("{app} crashed. A report was saved (id {id}).\n"))
    }

    /// What the crash file records about this logger's process.
    pub(crate) fn crash_meta(&self, id: crate::event::EventId) -> crate::crash::CrashMeta {
        let ctx = &self.inner.context;
        // Only what names the run (the executable's build-id and the
        // cgroup are the writer's to read, not the caller's).
        let run = crate::store::claims::Claimant::this_process();
        crate::crash::CrashMeta {
            id: id.to_string(),
            pid: run.pid,
            process_start: run.process_start,
            boot_id: run.boot_id,
            armed_at_ms: crate::util::time::now_ms(),
            logger: ctx.logger.clone(),
            app_name: ctx.app_name.clone(),
            release: ctx.release.clone(),
            environment: ctx.environment.clone(),
            channels: self.route(Level::Fatal, &[]),
            redact_emails: ctx.redactor.settings().0,
            redact_patterns: ctx.redactor.settings().1.to_vec(),
            needs_app: ctx.before_save.is_some(),
            no_minidump: !ctx.crash_minidump,
            args_at: crate::crash::args_at(),
            started_at_secs: run
                .process_start
                .and_then(crate::store::runs::started_at_secs),
        }
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
        options: PushOptions,
    ) -> Option<PendingEvent> {
        let inner = &*self.inner;
        let alert_channels = self.route(level, &options.channels);
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
            if store && options.origin.is_none() && (panic || level >= inner.backtrace_level) {
                Some(RawBacktrace::capture())
            } else {
                None
            };
        let scope = if store {
            crate::capture::scope::current()
        } else {
            None
        };
        let (mut tags, mut extra) = (options.tags, options.extra);
        // Never from the panic hook: a panic inside tracing or
        // OpenTelemetry could be holding what these lookups take.
        if store && !panic {
            crate::capture::trace::add_to(&mut tags, &mut extra);
        }
        let breadcrumbs = if store {
            self.take_breadcrumbs(scope.as_deref())
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
            snapshot: options.snapshot.unwrap_or(true),
            alert_channels,
            store,
            console,
            breadcrumbs,
            tags,
            extra,
            fingerprint: options.fingerprint,
            origin: if store { options.origin } else { None },
            scope,
            attachments: if store && !options.attachments.is_empty() {
                crate::pipeline::attach::cap(options.attachments, inner.context.attachment_cap)
            } else {
                Vec::new()
            },
        })
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
        options: PushOptions,
    ) -> EventId {
        self.submit(level, kind, message, chain, call_site, options)
    }

    pub(super) fn submit(
        &self,
        level: Level,
        kind: EventKind,
        message: String,
        chain: Vec<ChainLink>,
        call_site: Option<CallSite>,
        options: PushOptions,
    ) -> EventId {
        match self.pending(level, kind, message, chain, call_site, options) {
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

pub(crate) fn chain_of<E: std::error::Error + ?Sized + 'static>(err: &E) -> Vec<ChainLink> {
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
