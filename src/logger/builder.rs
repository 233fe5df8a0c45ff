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
use crate::settings::{Config, Settings};
use crate::store::validate_logger_name;
use crate::worker::{self, Overflow, WorkerConfig};

// The `before_save` hook.
mod privacy;
// The setters of the settings that have a key.
pub(crate) mod settings;

/// Settings for an [`EventLogger`]; every setting has a default.
///
/// The builder is the top layer of errsnap's settings: a setter wins over
/// the environment, which wins over `.env`, which wins over the settings
/// file (`config/errsnap.toml`). Every key of `.env.example` that is not
/// a channel's has a setter of the same name, without `ERRSNAP_` and the
/// unit, which the argument's type carries: `ERRSNAP_QUEUE_CAPACITY` is
/// [`queue_capacity`](Self::queue_capacity), `ERRSNAP_EXIT_BUDGET_MS` is
/// [`exit_budget`](Self::exit_budget) (a [`Duration`]),
/// `ERRSNAP_SYMBOL_CACHE_MB` is
/// [`symbol_cache_bytes`](Self::symbol_cache_bytes) (bytes). A value is
/// checked where the other sources' are: out of range, [`build`](Self::build)
/// fails naming the key and the setter.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// let logger = errsnap::EventLogger::builder()
///     .name("billing")
///     .db_path(dir.path().join("LOGS.db"))
/// #   .config(errsnap::Config::empty())
///     .release(errsnap::release_name!())
///     .exit_budget(Duration::from_secs(5))
///     .retention_max_age(Duration::from_secs(30 * 86_400))
///     .build()?;
/// # Ok(()) }
/// ```
///
/// Settings only code can give: [`name`](Self::name) (default
/// `events_log`), [`tag`](Self::tag), [`overflow`](Self::overflow)
/// (default [`Overflow::Drop`]), [`linger`](Self::linger),
/// [`max_queue_bytes`](Self::max_queue_bytes) (64 MiB),
/// [`backtrace_level`](Self::backtrace_level) (`Warn`),
/// [`end_user_message`](Self::end_user_message), [`channel`](Self::channel),
/// [`before_save`](Self::before_save).
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventLoggerBuilder {
    name: Option<String>,
    tags: BTreeMap<String, String>,
    /// The settings given here, by key: `(value, setter)`; the top layer of
    /// the settings (`settings` writes it).
    layer: settings::Layer,
    // Settings only code can give (no key).
    max_queue_bytes: Option<usize>,
    overflow: Option<Overflow>,
    linger: Option<Duration>,
    end_user_message: Option<EndUserMessage>,
    backtrace_level: Option<Level>,
    config: Option<Config>,
    dotenv_path: Option<PathBuf>,
    config_file: Option<PathBuf>,
    alerts: AlertOverrides,
    before_save: Option<Hook>,
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
    /// A tag added to every event of this logger.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
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
    /// What a person running the program sees when it panics or crashes
    /// (default [`EndUserMessage::Off`]: Rust's usual message and
    /// backtrace). With it on, the panic hook and the crash handler print
    /// one line instead: `<app> crashed. A report was saved (id …).`, like
    /// `human-panic`.
    pub fn end_user_message(mut self, when: EndUserMessage) -> Self {
        self.end_user_message = Some(when);
        self
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
    /// This logger's lowest level alerted on the channel `name` (a custom
    /// channel's, or `slack`, `email`, `webhook`); `LevelFilter::Off` for
    /// none.
    pub fn channel_min_level(mut self, name: &str, level: impl Into<LevelFilter>) -> Self {
        let level = level.into();
        match crate::settings::keys::channel_key(name, "MIN_LEVEL") {
            // A built-in channel's: its key, as `slack_min_level` writes it.
            Some(key) => {
                self.layer
                    .insert(key, (Some(level.to_string()), "channel_min_level"));
            }
            None => {
                self.alerts.min_levels.insert(name.to_owned(), level);
            }
        }
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
    /// Read this TOML settings file (it must exist) instead of the optional
    /// `config/errsnap.toml`.
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.config_file = Some(path.as_ref().to_owned());
        self
    }
    /// The first retry delay of a failed delivery (default 2 s; doubles
    /// each attempt, with jitter, up to 5 min).
    pub fn alert_retry_base(mut self, base: Duration) -> Self {
        self.alerts.retry_base = Some(base);
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

    /// The settings: the builder's layer over what was read (the
    /// builder's `.config`, else the environment over `.env`), with the
    /// settings file below them.
    fn read_config(&self) -> Result<Config> {
        let mut config = match (&self.config, &self.dotenv_path) {
            (Some(c), _) => c.clone(),
            (None, Some(p)) => Config::from_dotenv_path(p)?,
            (None, None) => Config::from_env()?,
        };
        if let Some(file) = &self.config_file {
            config = config.with_file(file)?;
        }
        for (key, (value, setter)) in self.layer.iter() {
            let Some(value) = value else {
                return Err(Error::config(
                    *key,
                    format!("the builder's `.{setter}(..)`: the path is not valid UTF-8"),
                ));
            };
            config.set_by_builder(key, value.clone(), setter);
        }
        if !config.warnings().is_empty() {
            crate::util::internal_log::report("settings", &config.warnings().join("; "));
        }
        Ok(config)
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
        if let Some(base) = self.alerts.retry_base {
            s.policy.retry_base = base;
        }
        let alerting = crate::channels::setup::alerting(&config, &s, &self.alerts)?;
        let routes = self.routes(&config, &name, &alerting)?;
        let db_level = config.level_for(&name, "database", LevelFilter::Warn)?;
        let console_level = config.level_for(&name, "console", LevelFilter::Off)?;
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
            crash_minidump: s.crash_minidump,
            breadcrumbs: Arc::new(Mutex::new(VecDeque::new())),
        };
        let context = Arc::new(context);
        let breadcrumbs = Arc::clone(&context.breadcrumbs);
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
                breadcrumbs,
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
            run_samples_keep: s.run_samples_keep,
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
            grouping: s.grouping.clone(),
            resource_warnings: s.resource_warnings.clone(),
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
