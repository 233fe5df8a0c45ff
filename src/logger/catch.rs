//! [`EventLogger::catch`](super::EventLogger::catch) and
//! [`catch_with`](super::EventLogger::catch_with), and [`CatchError`], what
//! they return.

use std::any::Any;

use super::options::PushOptions;
use super::payload_text;
use crate::capture::CallSite;
use crate::event::EventKind;
use crate::level::Level;

/// The error returned by [`EventLogger::catch`](crate::EventLogger::catch): what the closure returned,
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

impl super::EventLogger {
    /// Runs `f`, records an `Err` it returns or a panic it raises, and gives
    /// back what it returned (a panic comes back as [`CatchError::Panic`]).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
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
        self.catch_with(PushOptions::default(), f)
    }

    /// [`catch`](Self::catch) with per-call options: tags, extra data,
    /// grouping and alert choices apply to the recorded error or panic; the
    /// level to an `Err` (a panic is always fatal).
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
    /// let r: Result<u32, _> = logger.catch_with(
    ///     errsnap::PushOptions::new().tag("job", "import"),
    ///     || "x".parse::<u32>(),
    /// );
    /// assert!(r.is_err());
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn catch_with<T, E, F>(
        &self,
        options: PushOptions,
        f: F,
    ) -> std::result::Result<T, CatchError<E>>
    where
        F: FnOnce() -> std::result::Result<T, E> + std::panic::UnwindSafe,
        E: std::error::Error + 'static,
    {
        let site = std::panic::Location::caller();
        let level = options.level;
        crate::util::unwind::take_recorded();
        match std::panic::catch_unwind(f) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.submit_error(level, &e, site, options);
                Err(CatchError::Err(e))
            }
            Err(payload) => {
                let message = payload_text(payload.as_ref());
                // The panic hook, if installed, recorded it already.
                if !crate::util::unwind::take_recorded() {
                    self.submit(
                        Level::Fatal,
                        EventKind::Panic,
                        message.clone(),
                        Vec::new(),
                        Some(CallSite::Static(site)),
                        options,
                    );
                }
                Err(CatchError::Panic { message, payload })
            }
        }
    }
}
