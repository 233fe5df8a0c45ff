//! The breadcrumb ring of a logger: lower-level records kept for the next
//! stored event.

use super::EventLogger;
use crate::event::Breadcrumb;
use crate::level::Level;

impl EventLogger {
    /// The breadcrumbs for an event: its scope's when it was raised in
    /// one, else the logger's ring.
    pub(super) fn take_breadcrumbs(
        &self,
        scope: Option<&super::scope::ScopeData>,
    ) -> Vec<Breadcrumb> {
        if self.inner.breadcrumb_capacity == 0 {
            return Vec::new();
        }
        if let Some(scope) = scope {
            return scope.take_breadcrumbs(self.inner.breadcrumb_capacity);
        }
        let mut ring = self
            .inner
            .breadcrumbs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if ring.is_empty() {
            return Vec::new();
        }
        ring.drain(..).collect()
    }

    /// Keeps a lower-level record in this logger's ring (the last
    /// `breadcrumbs` of them, default 50); the next stored event carries
    /// them, oldest first. The `log` and `tracing` bridges call this for
    /// records below their capture level. Inside a
    /// [scope](EventLogger::scope) the breadcrumb is kept in the scope's
    /// own ring instead, for the events raised in that scope, so that
    /// concurrent requests do not mix their trails.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").db_path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
    /// use errsnap::Level;
    /// logger.add_breadcrumb(Level::Info, "http", "GET /cart 200");
    /// logger.add_breadcrumb(Level::Info, "http", "POST /checkout");
    /// logger.error("checkout failed"); // stored with both breadcrumbs
    /// # Ok(()) }
    /// ```
    pub fn add_breadcrumb(&self, level: Level, category: &str, message: impl Into<String>) {
        let cap = self.inner.breadcrumb_capacity;
        if cap == 0 {
            return;
        }
        let crumb = Breadcrumb {
            timestamp_ms: crate::util::time::now_ms(),
            level,
            category: category.to_owned(),
            message: message.into(),
        };
        if let Some(scope) = crate::capture::scope::current() {
            scope.add_breadcrumb(crumb, cap);
            return;
        }
        let mut ring = self
            .inner
            .breadcrumbs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if ring.len() >= cap {
            ring.pop_front();
        }
        ring.push_back(crumb);
    }
}
