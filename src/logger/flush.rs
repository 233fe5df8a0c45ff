//! Flushing: everything handed over committed, and its alerts delivered.

use std::time::Duration;

use super::EventLogger;
use crate::channels::delivery::FlushReport;

impl EventLogger {
    /// Waits until every event handed over so far is committed, and the
    /// alerts and forwards those events made (Slack, e-mail, webhook,
    /// Sentry, OTLP) are delivered, or have failed in a way that waiting
    /// cannot fix: a refused login, a removed webhook, a channel its server
    /// paused past the timeout. Failed deliveries are retried meanwhile
    /// when their backoff fits in `timeout`.
    ///
    /// Returns `true` when nothing is left that waiting could deliver;
    /// `false` when `timeout` passed first (what is left waits in the
    /// outbox and is sent later, by this process or the next start) or the
    /// writer has stopped. [`flush_report`](Self::flush_report) says what
    /// was committed, delivered and still pending, per channel.
    ///
    /// With a PostgreSQL fleet, the alerts counted are those this
    /// process's events made, whichever process sends them. Occurrences a
    /// cooldown holds back for a later digest are not waited for. While
    /// the database cannot be written, an event counts as committed once
    /// it is in the spool beside it.
    ///
    /// ```no_run
    /// # fn main() -> errsnap::Result<()> {
    /// use std::time::Duration;
    ///
    /// let logger = errsnap::EventLogger::new("error_table")?;
    /// logger.push_to_table("Error: division by zero", errsnap::PushOptions::new().slack(true));
    /// if !logger.flush(Duration::from_secs(5)) {
    ///     eprintln!("the alert is still on its way; it stays in the outbox");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        self.flush_report(timeout).is_complete()
    }

    /// Like [`flush`](Self::flush), and says what it found: whether
    /// everything was committed, and per channel how many alerts were
    /// delivered, failed for good, are held by their channel, or are still
    /// pending.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let logger = errsnap::EventLogger::builder()
    ///     .name("jobs")
    ///     .db_path(dir.path().join("LOGS.db"))
    ///     .config(errsnap::Config::empty())
    ///     .build()?;
    /// logger.error("the nightly export failed");
    /// let report = logger.flush_report(std::time::Duration::from_secs(10));
    /// assert!(report.committed && report.is_complete());
    /// assert!(report.channels.is_empty()); // no channel configured
    /// # Ok(()) }
    /// ```
    pub fn flush_report(&self, timeout: Duration) -> FlushReport {
        self.worker()
            .flush_until(std::time::Instant::now() + timeout)
    }

    /// The same as [`flush`](Self::flush), which now waits for alerts too.
    #[deprecated(note = "`flush` now waits for alerts as well: call `flush`")]
    pub fn flush_alerts(&self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}
