//! [`init`] and its [`Guard`].

use std::time::Duration;

use crate::logger::{EventLogger, EventLoggerBuilder};

/// Keeps errsnap running; flushes on drop.
///
/// Returned by [`init`]. Hold it in `main` (`let _guard = ...`; not `let _ =`,
/// which drops it at once). When it drops, it flushes as
/// [`EventLogger::flush`] does: every event handed over so far is
/// committed and its alerts are delivered (a failed delivery is retried
/// when its backoff fits), all within the exit budget (default 3 s,
/// `ERRSNAP_EXIT_BUDGET_MS`), which a panic on its way out shares: what
/// cannot go out in time stays in the outbox and is sent at the next start.
///
/// `std::process::exit` skips destructors, but not errsnap's exit hook:
/// it does the same within the same budget. Panics need no guard either:
/// the panic hook commits their record itself.
#[must_use = "dropping the guard flushes and stops waiting for events; bind it with `let _guard = ...`"]
#[derive(Debug)]
pub struct Guard {
    logger: EventLogger,
    timeout: Duration,
    done: bool,
}

impl Guard {
    /// The logger set up by [`init`].
    pub fn logger(&self) -> &EventLogger {
        &self.logger
    }

    /// Flushes as [`EventLogger::flush`] does: everything handed over so
    /// far committed, and its alerts delivered.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.logger.flush(timeout)
    }

    /// Flushes as [`flush`](Self::flush) does, and consumes the guard
    /// (dropping it then waits for nothing more).
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.done = true;
        self.logger.flush(timeout)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            let deadline = crate::worker::exit_deadline(self.timeout);
            self.logger.worker().flush_until(deadline);
        }
    }
}

/// Builds the logger, installs the panic hook into it, and returns a
/// [`Guard`] that flushes when dropped.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _guard = errsnap::init(errsnap::EventLogger::builder().name("app").app_name("billing"))?;
///     // ... the application ...
///     Ok(())
/// }
/// ```
///
/// # Errors
/// As [`EventLoggerBuilder::build`].
pub fn init(builder: EventLoggerBuilder) -> crate::error::Result<Guard> {
    let logger = builder.build()?;
    crate::panic::install_panic_hook(&logger);
    Ok(Guard {
        timeout: logger.exit_budget(),
        logger,
        done: false,
    })
}
