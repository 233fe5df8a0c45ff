//! [`EventLoggerBuilder`]: settings in code, over the environment, `.env`
//! and the settings file.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::options::EndUserMessage;
use super::place::{absolute, backend_of};
use super::{EventLogger, Inner};
use crate::channels::setup::AlertOverrides;
use crate::channels::{Alerting, Channel};
use crate::error::{Error, Result};
use crate::level::{Level, LevelFilter};
use crate::pipeline::redact::Redactor;
use crate::pipeline::{BeforeSave, Context};
use crate::settings::{Config, Durability, Settings};
use crate::store::validate_logger_name;
use crate::worker::{self, Overflow, WorkerConfig};

// What is kept of personal data and secrets: redaction, personal data, the
// `before_save` hook.
mod privacy;

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
/// | `exit_budget` | 3 s: everything done on the way out (the panic hook's waits for the commit and the alert, then the drain of the queue and the delivery of its alerts by the guard, the last logger's drop or the exit hook, retries that fit included) | `ERRSNAP_EXIT_BUDGET_MS` |
/// | `drain_on_termination` | off: SIGTERM and SIGINT end the process at once (on: drain within the exit budget, then end by the signal; Linux) | `ERRSNAP_DRAIN_ON_SIGTERM` |
/// | `panic_timeout` | 2 s (within the exit budget) | `ERRSNAP_PANIC_TIMEOUT_MS` |
/// | `backtrace_level` | `Warn` (events below it carry no backtrace) | |
/// | `symbol_cache_idle` | 5 min: the writer drops its symbol tables after this long without a new stack (`Duration::ZERO`: never) | `ERRSNAP_SYMBOL_CACHE_IDLE_SECS` |
/// | `crash_loop` | 3 runs in 5 min | `ERRSNAP_CRASH_LOOP_RUNS`, `ERRSNAP_CRASH_LOOP_WINDOW_SECS` |
/// | `heartbeat` | 10 s: how often an idle writer notes the run's last sign of life, RSS and CPU (`errsnap runs`; `Duration::ZERO`: never) | `ERRSNAP_HEARTBEAT_SECS` |
/// | `symbol_cache_budget` | 32 MiB: the memory the writer's symbol tables may hold; past it they are dropped once the stack at hand is resolved | `ERRSNAP_SYMBOL_CACHE_MB` |
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
    database_url: Option<String>,
    end_user_message: Option<EndUserMessage>,
    symbol_cache_idle: Option<Duration>,
    symbol_cache_bytes: Option<u64>,
    heartbeat: Option<Duration>,
    drain_on_termination: Option<bool>,
    crash_loop: Option<(u32, Duration)>,
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
    personal: (Option<bool>, Option<bool>),
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
    /// Store events in a PostgreSQL database shared by a fleet
    /// (`postgres://user@host:port/db?sslmode=verify-full`; feature
    /// `postgres`) instead of the file; the file's place then keeps only
    /// the spool (events waiting while the server cannot be reached) and
    /// the crash files. Also `ERRSNAP_DATABASE_URL`; the password may come
    /// from `ERRSNAP_DATABASE_PASSWORD`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }
    /// What a person running the program sees when it panics or crashes
    /// (default [`EndUserMessage::Off`]: Rust's usual message and
    /// backtrace). With it on, the panic hook and the crash handler print
    /// one line instead: `<app> crashed. A report was saved (id …).`, like
    /// `human-panic`.
    pub fn end_user_message(mut self, when: EndUserMessage) -> Self {
        self.end_user_message = Some(when);
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
    /// Adds an alert channel (throttled and retried like the built-in
    /// ones); its [`Channel::min_level`] and [`Channel::per_minute`] are
    /// the defaults, [`channel_min_level`](Self::channel_min_level) changes
    /// the level for this logger.
    pub fn channel(mut self, channel: impl Channel) -> Self {
        self.alerts.custom.push(Arc::new(channel));
        self
    }
    /// Forwards every stored event at or above `ERRSNAP_SENTRY_MIN_LEVEL`
    /// (default error) to a Sentry-compatible server (Sentry, GlitchTip,
    /// Bugsink) through the outbox; feature `sentry`. The same as
    /// `ERRSNAP_SENTRY_DSN`, which it overrides. The DSN is a secret: never
    /// shown.
    pub fn sentry_dsn(mut self, dsn: impl Into<String>) -> Self {
        self.alerts.keys.insert("ERRSNAP_SENTRY_DSN", dsn.into());
        self
    }
    /// Forwards every stored event at or above `ERRSNAP_OTLP_MIN_LEVEL`
    /// (default error) to an OpenTelemetry collector as an OTLP/HTTP log
    /// record (`http://127.0.0.1:4318`: `/v1/logs` is added) through the
    /// outbox; feature `otlp`. The same as `ERRSNAP_OTLP_ENDPOINT`.
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.alerts.keys.insert("ERRSNAP_OTLP_ENDPOINT", url.into());
        self
    }
    /// This logger's lowest level alerted on the channel `name` (a custom
    /// channel's, or `slack`, `email`, `webhook`); `LevelFilter::Off` for
    /// none.
    pub fn channel_min_level(mut self, name: &str, level: impl Into<LevelFilter>) -> Self {
        self.alerts.min_levels.insert(name.to_owned(), level.into());
        self
    }
    /// This logger's lowest level alerted on Slack (default error;
    /// `LevelFilter::Off` for none).
    pub fn slack_min_level(self, level: impl Into<LevelFilter>) -> Self {
        self.channel_min_level(crate::channels::SLACK, level)
    }
    /// This logger's lowest level alerted by e-mail (default fatal).
    pub fn email_min_level(self, level: impl Into<LevelFilter>) -> Self {
        self.channel_min_level(crate::channels::EMAIL, level)
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
    /// How long the writer keeps its symbol tables (the parsed debug
    /// information, tens of MiB for a binary with debug info) without a new
    /// stack to resolve; then it drops them and the next new stack loads
    /// them again. `Duration::ZERO` keeps them for good. Default 5 min.
    pub fn symbol_cache_idle(mut self, d: Duration) -> Self {
        self.symbol_cache_idle = Some(d);
        self
    }
    /// The memory the writer's symbol tables (errsnap's own, parsed one
    /// DWARF unit at a time) may hold, in bytes: estimated from the heap
    /// allocated while each unit is parsed and searched. Past it, the
    /// writer finishes the stack at hand and drops its cached names and
    /// parsed units, least recently used first; a later stack parses again
    /// what it needs. Default 32 MiB; at least 1 MiB.
    pub fn symbol_cache_budget(mut self, bytes: u64) -> Self {
        self.symbol_cache_bytes = Some(bytes.max(1 << 20));
        self
    }
    /// On SIGTERM or SIGINT (`docker stop`, systemd, Kubernetes, Ctrl-C),
    /// drain the queue and deliver the alerts within the exit budget, then
    /// end by the same signal (same exit status). Taken only for a signal
    /// the application installed no handler for; Linux. Default off: the
    /// signal ends the process at once and what is queued is lost.
    pub fn drain_on_termination(mut self, on: bool) -> Self {
        self.drain_on_termination = Some(on);
        self
    }
    /// How often an idle writer notes the run's last sign of life with the
    /// process's RSS and CPU (what `errsnap runs` shows for a run that
    /// was killed). Default 10 s; `Duration::ZERO` never.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }
    /// The crash-loop rule: `runs` crashed or abnormal runs within
    /// `window` raise one "crash loop" alert, then digests while it lasts
    /// (default 3 in 5 minutes; 0 runs: never).
    pub fn crash_loop(mut self, runs: u32, window: Duration) -> Self {
        self.crash_loop = Some((runs, window));
        self
    }
    /// Load the program's symbol tables on the writer thread at start, so
    /// the first panic's record is as fast as later ones (see
    /// BENCHMARKS.md). Costs the symbolizer's memory (tens of MiB for a
    /// binary with debug info) even if nothing ever fails; off by default.
    /// Prewarmed tables are kept for good (neither
    /// `ERRSNAP_SYMBOL_CACHE_IDLE_SECS` nor the memory budget drops them).
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
    pub fn build_for_tests(self) -> Result<(EventLogger, super::testing::CapturedEvents)> {
        let list = Arc::new(Mutex::new(Vec::new()));
        let logger = self.build_to(worker::Target::Memory(list.clone()))?;
        let captured = super::testing::CapturedEvents::new(list, logger.clone());
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

    /// The settings as read (builder's `.config`, else `.env` and the
    /// environment), with the settings file below them.
    fn read_config(&self) -> Result<Config> {
        let mut config = match (&self.config, &self.dotenv_path) {
            (Some(c), _) => c.clone(),
            (None, Some(p)) => Config::from_dotenv_path(p)?,
            (None, None) => Config::from_env()?,
        };
        if let Some(file) = &self.config_file {
            config = config.with_file(file)?;
        }
        if !config.warnings().is_empty() {
            crate::util::internal_log::report("settings", &config.warnings().join("; "));
        }
        Ok(config)
    }

    /// The builder's calls, over the settings read.
    fn apply(&self, s: &mut Settings) {
        fn put<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        put(&mut s.db_path, &self.path);
        if self.app_name.is_some() {
            s.app_name.clone_from(&self.app_name);
        }
        if self.release.is_some() {
            s.release.clone_from(&self.release);
        }
        if self.environment.is_some() {
            s.environment.clone_from(&self.environment);
        }
        put(&mut s.durability, &self.durability);
        put(&mut s.queue_capacity, &self.capacity);
        put(&mut s.exit_budget, &self.exit_budget);
        put(&mut s.drain_on_termination, &self.drain_on_termination);
        put(&mut s.panic_timeout, &self.panic_timeout);
        if self.database_url.is_some() {
            s.database_url.clone_from(&self.database_url);
        }
        if let Some(d) = self.symbol_cache_idle {
            s.symbol_cache_idle = (!d.is_zero()).then_some(d);
        }
        put(&mut s.symbol_cache_bytes, &self.symbol_cache_bytes);
        if let Some(d) = self.heartbeat {
            s.heartbeat = (!d.is_zero()).then_some(d);
        }
        if let Some((n, w)) = self.crash_loop {
            s.crash_loop = (n > 0).then_some((u64::from(n), w));
        }
        put(&mut s.disabled, &self.disabled);
        put(&mut s.breadcrumbs, &self.breadcrumbs);
        put(&mut s.keep_one_in, &self.keep_one_in);
        put(&mut s.redact_emails, &self.redact_emails);
        put(&mut s.store_user_email, &self.personal.0);
        put(&mut s.store_user_ip, &self.personal.1);
        s.redact_patterns
            .extend(self.redact_patterns.iter().cloned());
        if let Some(age) = self.retain_for {
            s.retention.max_age_ms = Some(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        }
        if self.retain_events.is_some() {
            s.retention.max_events = self.retain_events;
        }
        if self.retain_bytes.is_some() {
            s.retention.max_bytes = self.retain_bytes;
        }
        let p = &mut s.policy;
        put(&mut p.cooldown, &self.alerts.cooldown);
        if let Some((count, window)) = self.alerts.threshold {
            p.threshold = count.max(1);
            p.window = window;
        }
        put(&mut p.retry_base, &self.alerts.retry_base);
        put(&mut p.panic_wait, &self.alerts.panic_wait);
        s.breadcrumbs = s.breadcrumbs.min(10_000);
    }

    /// Each alert channel with this logger's level for it: the builder,
    /// then the environment and `.env`, then the settings file, then the
    /// channel's default.
    fn routes(
        &self,
        config: &Config,
        name: &str,
        alerting: &Alerting,
    ) -> Result<Vec<(String, LevelFilter)>> {
        let mut routes = Vec::new();
        for c in &alerting.channels {
            let filter = match self.alerts.min_levels.get(&*c.name) {
                Some(f) => *f,
                None => config.level_for(name, &c.name, c.min_level)?,
            };
            routes.push((c.name.to_string(), filter));
        }
        // A level for a destination that does not exist is a typo.
        for (dest, source) in config.level_destinations() {
            let known = dest == "database"
                || dest == "console"
                || alerting.channels.iter().any(|c| *c.name == *dest)
                || crate::settings::keys::CHANNEL_PREFIXES
                    .iter()
                    .any(|(n, _)| *n == dest);
            if !known {
                let mut names: Vec<&str> = vec!["database", "console"];
                names.extend(alerting.channels.iter().map(|c| &*c.name));
                names.extend(
                    crate::settings::keys::CHANNEL_PREFIXES
                        .iter()
                        .map(|(n, _)| *n),
                );
                let hint = names
                    .iter()
                    .min_by_key(|n| crate::settings::edit_distance(n, &dest))
                    .map(|n| format!(" (did you mean {n}?)"))
                    .unwrap_or_default();
                return Err(Error::config(
                    source,
                    format!(
                        "{dest:?} is no destination: database, console, or an alert channel's \
                         name{hint}"
                    ),
                ));
            }
        }
        Ok(routes)
    }

    fn build_to(self, target: worker::Target) -> Result<EventLogger> {
        let name = self.name.clone().unwrap_or_else(|| "events_log".to_owned());
        validate_logger_name(&name)?;
        let config = self.read_config()?;
        let mut s = Settings::from_config(&config)?;
        self.apply(&mut s);
        let alerting = crate::channels::setup::alerting(&config, &s, &self.alerts)?;
        let routes = self.routes(&config, &name, &alerting)?;
        let db_level = match self.db_level {
            Some(l) => l,
            None => config.level_for(&name, "database", LevelFilter::Warn)?,
        };
        let console_level = match self.console_level {
            Some(l) => l,
            None => config.level_for(&name, "console", LevelFilter::Off)?,
        };
        let patterns_key = if config.get("ERRSNAP_REDACT_PATTERNS").is_some() {
            "ERRSNAP_REDACT_PATTERNS"
        } else {
            "redact"
        };
        let redactor = Redactor::new(s.redact_emails, &s.redact_patterns, patterns_key)?;
        let target = if s.disabled {
            worker::Target::Disabled
        } else {
            target
        };
        let in_file = matches!(target, worker::Target::File);
        let worker = self.start_worker(&s, alerting, target)?;
        #[cfg(target_os = "linux")]
        if s.drain_on_termination && in_file {
            worker::drain_on_termination();
        }
        let context = Context {
            logger: name,
            app_name: s.app_name.clone(),
            release: s.release.clone(),
            environment: s.environment.clone(),
            tags: self.tags,
            redactor: Arc::new(redactor),
            before_save: self.before_save.map(|h| h.0),
            store_user_email: s.store_user_email,
            store_user_ip: s.store_user_ip,
            attachment_cap: s.attachment_event_cap,
        };
        let context = Arc::new(context);
        // The writer registers the logger as soon as it has the store open
        // (`SELECT * FROM <name>` works from then on; `flush` waits for
        // it), so the caller's thread never opens the database. If it
        // cannot be written right now, the first event stored registers it.
        if in_file {
            worker.register_logger(&context);
        }
        Ok(EventLogger {
            inner: Arc::new(Inner {
                context,
                routes,
                db_level,
                console_level,
                keep_one_in: s.keep_one_in,
                sample_counter: AtomicU64::new(0),
                breadcrumbs: Mutex::new(VecDeque::new()),
                breadcrumb_capacity: s.breadcrumbs,
                worker,
                backtrace_level: self.backtrace_level.unwrap_or(Level::Warn),
                panic_timeout: s.panic_timeout,
                end_user_message: self.end_user_message.unwrap_or_default().applies(),
            }),
        })
    }

    /// The writer of the logger's file (started if none runs), with the
    /// logger registered in it.
    fn start_worker(
        &self,
        s: &Settings,
        alerting: Alerting,
        target: worker::Target,
    ) -> Result<Arc<worker::Worker>> {
        let defaults = WorkerConfig::default();
        let in_file = matches!(target, worker::Target::File);
        let disabled = matches!(target, worker::Target::Disabled);
        let cfg = WorkerConfig {
            busy_timeout: self.busy_timeout.unwrap_or(defaults.busy_timeout),
            prewarm_symbols: self.prewarm_symbols,
            retention: s.retention,
            alerting,
            durability: s.durability,
            capacity: s.queue_capacity,
            max_bytes: self.max_queue_bytes.unwrap_or(defaults.max_bytes),
            overflow: self.overflow.unwrap_or_default(),
            linger: self.linger.unwrap_or(defaults.linger),
            exit_budget: s.exit_budget,
            symbol_cache_idle: s.symbol_cache_idle,
            symbol_cache_bytes: s.symbol_cache_bytes,
            heartbeat: s.heartbeat,
            crash_loop: s.crash_loop,
            backend: backend_of(s)?,
            target,
            ..defaults
        };
        let path = if in_file {
            absolute(&s.db_path)?
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
        Ok(worker)
    }
}
