//! `anyhow::Error` and `eyre::Report`: most applications carry one of them
//! rather than a concrete error type. They do not implement
//! `std::error::Error`, so they get extension traits of their own (in the
//! prelude) and capture methods on [`EventLogger`]. Each records the whole
//! chain (contexts outermost first) and, when the error captured a
//! backtrace where it was made, that backtrace instead of the report
//! site's stack.

#[cfg(any(feature = "anyhow", feature = "eyre"))]
use crate::capture::{self, CallSite};
#[cfg(any(feature = "anyhow", feature = "eyre"))]
use crate::event::{ChainLink, EventId};
#[cfg(any(feature = "anyhow", feature = "eyre"))]
use crate::level::Level;
#[cfg(any(feature = "anyhow", feature = "eyre"))]
use crate::logger::options::PushOptions;
#[cfg(any(feature = "anyhow", feature = "eyre"))]
use crate::logger::EventLogger;

/// The chain of an error object given as `&dyn Error`.
#[cfg(any(feature = "anyhow", feature = "eyre"))]
fn chain(outermost: &(dyn std::error::Error + 'static), type_name: &str) -> Vec<ChainLink> {
    let mut chain = capture::error_chain(outermost, None);
    if let Some(first) = chain.first_mut() {
        first.type_name = Some(type_name.to_owned());
    }
    chain
}

/// The backtrace section of a report's `Debug` text, without colours.
#[cfg(feature = "eyre")]
fn backtrace_section(debug: &str) -> Option<String> {
    let start = debug
        .find("Stack backtrace:")
        .or_else(|| debug.find("BACKTRACE"))?;
    let text = &debug[start..];
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An SGR sequence: ESC [ ... m
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
impl EventLogger {
    /// Records an `anyhow::Error` at level error: its whole chain (the
    /// contexts, outermost first) and, when it captured one
    /// (`RUST_BACKTRACE` or `RUST_LIB_BACKTRACE`), its own backtrace, where
    /// the error was made. Formatting that backtrace resolves its symbols
    /// on this thread; without one, only this stack is walked.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).build()?;
    /// use anyhow::Context;
    /// let err = std::fs::read("/nonexistent/app.toml")
    ///     .context("loading the settings")
    ///     .unwrap_err();
    /// logger.capture_anyhow(&err); // chain: "loading the settings", "No such file ..."
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn capture_anyhow(&self, err: &anyhow::Error) -> EventId {
        self.capture_anyhow_with(err, PushOptions::new())
    }

    /// [`capture_anyhow`](Self::capture_anyhow) with per-call options.
    #[track_caller]
    pub fn capture_anyhow_with(&self, err: &anyhow::Error, options: PushOptions) -> EventId {
        let site = CallSite::Static(std::panic::Location::caller());
        self.capture_chain(anyhow_chain(err), anyhow_origin(err), site, options)
    }
}

#[cfg(feature = "anyhow")]
fn anyhow_chain(err: &anyhow::Error) -> Vec<ChainLink> {
    let outermost: &(dyn std::error::Error + Send + Sync + 'static) = &**err;
    chain(outermost, "anyhow::Error")
}

#[cfg(feature = "anyhow")]
fn anyhow_origin(err: &anyhow::Error) -> Option<String> {
    let bt = err.backtrace();
    (bt.status() == std::backtrace::BacktraceStatus::Captured)
        .then(|| crate::util::unwind::guarded(|| bt.to_string()))
        .flatten()
}

#[cfg(feature = "eyre")]
#[cfg_attr(docsrs, doc(cfg(feature = "eyre")))]
impl EventLogger {
    /// Records an `eyre::Report` at level error: its whole chain and, when
    /// its handler captured a backtrace (color-eyre, stable-eyre, or the
    /// default handler on nightly), that backtrace.
    #[track_caller]
    pub fn capture_eyre(&self, report: &eyre::Report) -> EventId {
        self.capture_eyre_with(report, PushOptions::new())
    }

    /// [`capture_eyre`](Self::capture_eyre) with per-call options.
    #[track_caller]
    pub fn capture_eyre_with(&self, report: &eyre::Report, options: PushOptions) -> EventId {
        let site = CallSite::Static(std::panic::Location::caller());
        self.capture_chain(eyre_chain(report), eyre_origin(report), site, options)
    }
}

#[cfg(feature = "eyre")]
fn eyre_chain(report: &eyre::Report) -> Vec<ChainLink> {
    let outermost: &(dyn std::error::Error + Send + Sync + 'static) = &**report;
    chain(outermost, "eyre::Report")
}

#[cfg(feature = "eyre")]
fn eyre_origin(report: &eyre::Report) -> Option<String> {
    crate::util::unwind::guarded(|| format!("{report:?}"))
        .as_deref()
        .and_then(backtrace_section)
}

/// Implements the extension trait for one error-report type.
#[cfg(any(feature = "anyhow", feature = "eyre"))]
macro_rules! report_ext {
    ($trait:ident, $err:ty, $chain:ident, $origin:ident, $feature:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Import it with `use errsnap::prelude::*;`. Sealed.
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        pub trait $trait<T>: crate::ext::Sealed {
            /// Records an `Err` (level error, the whole chain, the error's
            /// own backtrace when it has one, the caller's location) and
            /// passes the `Result` on unchanged.
            #[track_caller]
            fn report(self, logger: &EventLogger) -> Result<T, $err>;

            /// Records an `Err` at `level`.
            #[track_caller]
            fn report_at(self, logger: &EventLogger, level: Level) -> Result<T, $err>;

            /// Records an `Err` with per-call options (level, tags, extra,
            /// grouping, alert choices).
            #[track_caller]
            fn report_with_options(
                self,
                logger: &EventLogger,
                options: PushOptions,
            ) -> Result<T, $err>;
        }

        impl<T> $trait<T> for Result<T, $err> {
            #[track_caller]
            fn report(self, logger: &EventLogger) -> Result<T, $err> {
                self.report_with_options(logger, PushOptions::new())
            }

            #[track_caller]
            fn report_at(self, logger: &EventLogger, level: Level) -> Result<T, $err> {
                self.report_with_options(logger, PushOptions::new().level(level))
            }

            #[track_caller]
            fn report_with_options(
                self,
                logger: &EventLogger,
                options: PushOptions,
            ) -> Result<T, $err> {
                if let Err(e) = &self {
                    let site = CallSite::Static(std::panic::Location::caller());
                    logger.capture_chain($chain(e), $origin(e), site, options);
                }
                self
            }
        }
    };
}

#[cfg(feature = "anyhow")]
report_ext!(
    AnyhowResultExt,
    anyhow::Error,
    anyhow_chain,
    anyhow_origin,
    "anyhow",
    "Records the error of an `anyhow::Result` and passes it on unchanged."
);

#[cfg(feature = "eyre")]
report_ext!(
    EyreResultExt,
    eyre::Report,
    eyre_chain,
    eyre_origin,
    "eyre",
    "Records the error of an `eyre::Result` and passes it on unchanged."
);

#[cfg(all(test, feature = "eyre"))]
mod tests {
    use super::*;

    #[test]
    fn the_backtrace_section_loses_its_colours() {
        let debug = "boom\n\nStack backtrace:\n   0: \u{1b}[32mapp::run\u{1b}[0m\n             at ./src/run.rs:3:4\n";
        let s = backtrace_section(debug).unwrap();
        assert!(s.contains("0: app::run\n"), "{s}");
        assert!(backtrace_section("boom").is_none());
    }
}
