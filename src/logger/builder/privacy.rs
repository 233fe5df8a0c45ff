//! The builder's `before_save` hook: what the application keeps of an
//! event, beside the redaction and personal-data settings (`settings`).

use std::sync::Arc;

use super::{EventLoggerBuilder, Hook};
use crate::event::Event;

impl EventLoggerBuilder {
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
    ///     # .db_path(dir.path().join("L.db")).config(errsnap::Config::empty())
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
