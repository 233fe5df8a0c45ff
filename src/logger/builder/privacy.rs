//! The builder's settings of what is kept of secrets and personal data:
//! redaction, a scope user's e-mail and IP addresses, the `before_save`
//! hook.

use std::sync::Arc;

use super::{EventLoggerBuilder, Hook};
use crate::event::Event;

impl EventLoggerBuilder {
    /// Also redact e-mail addresses (default off).
    pub fn redact_emails(mut self, on: bool) -> Self {
        self.redact_emails = Some(on);
        self
    }
    /// Stores a scope user's e-mail address (default off,
    /// `ERRSNAP_STORE_USER_EMAIL`). Redaction still runs over it.
    pub fn store_user_email(mut self, on: bool) -> Self {
        self.personal.0 = Some(on);
        self
    }
    /// Stores IP addresses: a scope user's, a request's peer and its
    /// forwarding headers (default off, `ERRSNAP_STORE_USER_IP`).
    pub fn store_user_ip(mut self, on: bool) -> Self {
        self.personal.1 = Some(on);
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
}
