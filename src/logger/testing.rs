//! A test mode for applications that use errsnap: see
//! [`EventLogger::for_tests`] and [`EventLoggerBuilder::build_for_tests`].
//!
//! [`EventLoggerBuilder::build_for_tests`]: crate::EventLoggerBuilder::build_for_tests

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::event::Event;
use crate::logger::EventLogger;

/// How long [`CapturedEvents::events`] waits for the writer.
const WAIT: Duration = Duration::from_secs(10);

/// What a test logger recorded, in order. Cheap to clone.
#[derive(Clone)]
pub struct CapturedEvents {
    list: Arc<Mutex<Vec<Event>>>,
    logger: EventLogger,
}

impl std::fmt::Debug for CapturedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapturedEvents")
            .field("len", &self.lock().len())
            .finish()
    }
}

impl CapturedEvents {
    pub(crate) fn new(list: Arc<Mutex<Vec<Event>>>, logger: EventLogger) -> CapturedEvents {
        CapturedEvents { list, logger }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything recorded so far, after waiting (up to 10 s) for the
    /// writer to process what was handed over: resolved, grouped, redacted,
    /// as it would have been stored.
    pub fn events(&self) -> Vec<Event> {
        self.logger.flush(WAIT);
        self.lock().clone()
    }

    /// Like [`events`](Self::events), and empties the list.
    pub fn take(&self) -> Vec<Event> {
        self.logger.flush(WAIT);
        std::mem::take(&mut *self.lock())
    }

    /// How many events were recorded (after waiting for the writer).
    pub fn len(&self) -> usize {
        self.logger.flush(WAIT);
        self.lock().len()
    }

    /// Whether nothing was recorded (after waiting for the writer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
