//! The breadcrumb ring of a logger: lower-level records kept for the next
//! stored event.

use super::EventLogger;
use crate::event::Breadcrumb;
use crate::level::Level;

impl EventLogger {
    pub(super) fn take_breadcrumbs(&self) -> Vec<Breadcrumb> {
        if self.inner.breadcrumb_capacity == 0 {
            return Vec::new();
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
    /// records below their capture level.
    ///
    /// ```
    /// # fn main() -> errsnap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let logger = errsnap::EventLogger::builder().name("t").path(dir.path().join("L.db")).config(errsnap::Config::empty()).build()?;
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
