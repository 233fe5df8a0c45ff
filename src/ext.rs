//! Extension traits for wrapping fallible code: `result.report(&logger)?`.

use crate::capture::CallSite;
use crate::level::Level;
use crate::logger::options::PushOptions;
use crate::logger::EventLogger;

mod sealed {
    pub trait Sealed {}
    impl<T, E> Sealed for Result<T, E> {}
    impl<T> Sealed for Option<T> {}
}
pub(crate) use sealed::Sealed;

/// Records the error of a `Result` and passes the `Result` on unchanged.
///
/// Import it with `use errsnap::prelude::*;`. Sealed: implemented for
/// `Result<T, E>` where `E: std::error::Error + 'static`.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
/// use errsnap::prelude::*;
///
/// fn parse(s: &str, logger: &errsnap::EventLogger) -> Result<u16, std::num::ParseIntError> {
///     let port = s.parse::<u16>().report(logger)?; // recorded with its chain and this line
///     Ok(port)
/// }
/// assert!(parse("http", &logger).is_err());
/// assert_eq!(parse("8080", &logger), Ok(8080));
/// # Ok(()) }
/// ```
pub trait ResultExt<T, E>: Sealed {
    /// Records an `Err` (level error, whole chain, the caller's location).
    #[track_caller]
    fn report(self, logger: &EventLogger) -> Result<T, E>;

    /// Records an `Err` at `level`.
    #[track_caller]
    fn report_at(self, logger: &EventLogger, level: Level) -> Result<T, E>;

    /// Records an `Err` with a message made by `f` (the error's chain is
    /// kept beneath it).
    #[track_caller]
    fn report_with<F, S>(self, logger: &EventLogger, f: F) -> Result<T, E>
    where
        F: FnOnce(&E) -> S,
        S: Into<String>;

    /// Records an `Err` with per-call options (level, tags, extra,
    /// grouping, alert choices).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
    /// use errsnap::prelude::*;
    /// use errsnap::PushOptions;
    /// let port = "http"
    ///     .parse::<u16>()
    ///     .report_with_options(&logger, PushOptions::new().tag("setting", "port"));
    /// assert!(port.is_err());
    /// # Ok(()) }
    /// ```
    #[track_caller]
    fn report_with_options(self, logger: &EventLogger, options: PushOptions) -> Result<T, E>;
}

impl<T, E> ResultExt<T, E> for Result<T, E>
where
    E: std::error::Error + 'static,
{
    #[track_caller]
    fn report(self, logger: &EventLogger) -> Result<T, E> {
        if let Err(e) = &self {
            logger.capture_error(e);
        }
        self
    }

    #[track_caller]
    fn report_at(self, logger: &EventLogger, level: Level) -> Result<T, E> {
        if let Err(e) = &self {
            logger.capture_error_at(level, e);
        }
        self
    }

    #[track_caller]
    fn report_with<F, S>(self, logger: &EventLogger, f: F) -> Result<T, E>
    where
        F: FnOnce(&E) -> S,
        S: Into<String>,
    {
        if let Err(e) = &self {
            let site = CallSite::Static(std::panic::Location::caller());
            logger.capture_error_as(f(e).into(), e, site);
        }
        self
    }

    #[track_caller]
    fn report_with_options(self, logger: &EventLogger, options: PushOptions) -> Result<T, E> {
        if let Err(e) = &self {
            logger.capture_error_with(e, options);
        }
        self
    }
}

/// Records a `None` and passes the `Option` on unchanged.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
/// use errsnap::prelude::*;
/// let user: Option<&str> = None;
/// assert_eq!(user.report(&logger, "no user in session"), None);
/// # Ok(()) }
/// ```
pub trait OptionExt<T>: Sealed {
    /// Records `message` at level error when `None`.
    #[track_caller]
    fn report(self, logger: &EventLogger, message: &str) -> Option<T>;

    /// Records `message` at `level` when `None`.
    #[track_caller]
    fn report_at(self, logger: &EventLogger, level: Level, message: &str) -> Option<T>;

    /// Records `message` with per-call options (level, tags, extra data,
    /// grouping, alert choices) when `None`.
    #[track_caller]
    fn report_with_options(
        self,
        logger: &EventLogger,
        message: &str,
        options: PushOptions,
    ) -> Option<T>;
}

impl<T> OptionExt<T> for Option<T> {
    #[track_caller]
    fn report(self, logger: &EventLogger, message: &str) -> Option<T> {
        if self.is_none() {
            logger.log(Level::Error, message);
        }
        self
    }

    #[track_caller]
    fn report_at(self, logger: &EventLogger, level: Level, message: &str) -> Option<T> {
        if self.is_none() {
            logger.log(level, message);
        }
        self
    }

    #[track_caller]
    fn report_with_options(
        self,
        logger: &EventLogger,
        message: &str,
        options: PushOptions,
    ) -> Option<T> {
        if self.is_none() {
            logger.push_to_table(message, options);
        }
        self
    }
}
