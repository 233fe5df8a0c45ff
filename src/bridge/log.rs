//! A `log::Log` implementation that records log records.

use crate::capture::CallSite;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventKind, Location};
use crate::level::{Level, LevelFilter};
use crate::logger::{EventLogger, PushOptions};

/// Records `log` records into an [`EventLogger`], optionally forwarding
/// every record to another logger (your usual `env_logger`, say) first.
///
/// Records at or above the capture level (default error) become errsnap
/// events with the target and module as tags; those at or above the
/// breadcrumb level (default info) become breadcrumbs.
///
/// ```no_run
/// # fn main() -> errsnap::Result<()> {
/// let logger = errsnap::EventLogger::new("service")?;
/// errsnap::log::LogBridge::new(logger).install()?;
/// log::info!("starting");           // a breadcrumb
/// log::error!("cannot bind :8080"); // an event, with the breadcrumb
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub struct LogBridge {
    logger: EventLogger,
    capture: Level,
    breadcrumbs: LevelFilter,
    forward: Option<Box<dyn log::Log>>,
}

impl std::fmt::Debug for LogBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBridge")
            .field("logger", &self.logger)
            .field("capture", &self.capture)
            .field("breadcrumbs", &self.breadcrumbs)
            .field("forward", &self.forward.is_some())
            .finish()
    }
}

fn level_of(l: log::Level) -> Level {
    match l {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warn,
        log::Level::Info => Level::Info,
        log::Level::Debug => Level::Debug,
        log::Level::Trace => Level::Trace,
    }
}

impl LogBridge {
    /// A bridge capturing error, keeping info and up as breadcrumbs.
    pub fn new(logger: EventLogger) -> Self {
        LogBridge {
            logger,
            capture: Level::Error,
            breadcrumbs: LevelFilter::Info,
            forward: None,
        }
    }

    /// Records at or above this level become errsnap events.
    #[must_use]
    pub fn capture_level(mut self, level: Level) -> Self {
        self.capture = level;
        self
    }

    /// Records at or above this (below the capture level) become
    /// breadcrumbs; `LevelFilter::Off` for none.
    #[must_use]
    pub fn breadcrumb_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.breadcrumbs = level.into();
        self
    }

    /// Passes every record to `inner` too (before errsnap looks at it).
    #[must_use]
    pub fn forward_to(mut self, inner: Box<dyn log::Log>) -> Self {
        self.forward = Some(inner);
        self
    }

    /// Installs the bridge as the `log` facade's logger.
    ///
    /// # Errors
    /// Another logger is already installed.
    pub fn install(self) -> Result<()> {
        let max = if self.forward.is_some() {
            log::LevelFilter::Trace
        } else {
            let lowest = self
                .breadcrumbs
                .min()
                .unwrap_or(self.capture)
                .min(self.capture);
            match lowest {
                Level::Trace => log::LevelFilter::Trace,
                Level::Debug => log::LevelFilter::Debug,
                Level::Info => log::LevelFilter::Info,
                Level::Warn => log::LevelFilter::Warn,
                Level::Error | Level::Fatal => log::LevelFilter::Error,
            }
        };
        log::set_boxed_logger(Box::new(self)).map_err(|e| {
            Error::with_source(
                ErrorKind::Config {
                    key: "log".into(),
                    message: "a logger is already installed for the log facade".into(),
                },
                e,
            )
        })?;
        log::set_max_level(max);
        Ok(())
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let level = level_of(metadata.level());
        level >= self.capture
            || self.breadcrumbs.allows(level)
            || self.forward.as_ref().is_some_and(|f| f.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Some(f) = &self.forward {
            f.log(record);
        }
        if super::ignored(record.target()) {
            return;
        }
        let level = level_of(record.level());
        if level >= self.capture {
            let mut options = PushOptions::default();
            options
                .tags
                .insert("target".into(), record.target().to_owned());
            if let Some(m) = record.module_path() {
                options.tags.insert("module".into(), m.to_owned());
            }
            let site = record.file().map(|file| {
                CallSite::Owned(Location {
                    file: file.to_owned(),
                    line: record.line().unwrap_or(0),
                    column: 0,
                })
            });
            self.logger.record(
                level,
                EventKind::Message,
                record.args().to_string(),
                Vec::new(),
                site,
                options,
            );
        } else if self.breadcrumbs.allows(level) {
            self.logger
                .add_breadcrumb(level, record.target(), record.args().to_string());
        }
    }

    fn flush(&self) {
        if let Some(f) = &self.forward {
            f.flush();
        }
    }
}
