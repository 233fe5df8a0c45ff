//! Flushing and stopping a writer: "flushed" means committed *and*
//! delivered (or failed in a way waiting cannot fix), within one deadline.

use std::time::{Duration, Instant};

use super::Worker;
use crate::channels::delivery::FlushReport;

impl Worker {
    /// Waits until every event handed over so far is committed (or spooled)
    /// and the alerts and forwards they made are delivered, failed for
    /// good, or held by their channel, all before `deadline`; reports what
    /// it found.
    pub(crate) fn flush_until(&self, deadline: Instant) -> FlushReport {
        if self.is_disabled() {
            return FlushReport::new(true, Vec::new(), true);
        }
        if self.is_stale() {
            return FlushReport::new(false, Vec::new(), false);
        }
        let committed = self.wait_committed(deadline);
        let mark = self.shared.lock().outbox_mark;
        match &self.shared.notify {
            Some(n) if mark > 0 => {
                let (channels, counted) = n.wait_delivered(mark, deadline);
                FlushReport::new(committed, channels, counted)
            }
            _ => FlushReport::new(committed, Vec::new(), true),
        }
    }

    /// Waits until everything queued so far was handled (and, with a
    /// server as the store, what waits in the spool was forwarded; and the
    /// loggers started so far are registered).
    fn wait_committed(&self, deadline: Instant) -> bool {
        let target = self.shared.lock().queued;
        if !self.wait_named(target, deadline.saturating_duration_since(Instant::now())) {
            return false;
        }
        let mut st = self.shared.lock();
        while st.unforwarded
            || !st.new_loggers.is_empty()
            || !st.check_ins.is_empty()
            || st.check_ins_in_hand > 0
        {
            if !st.alive {
                return false;
            }
            match self.shared.wait_progress(st, deadline) {
                Some(g) => st = g,
                None => return false,
            }
        }
        true
    }

    /// Asks the writer to stop: it commits what is queued, delivers alerts
    /// until shortly before `deadline`, puts back what it was still
    /// sending, records the run as exited, and ends.
    pub(crate) fn request_stop(&self, deadline: Instant) {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            st.hurry = true;
            st.stop_by = Some(st.stop_by.map_or(deadline, |d| d.min(deadline)));
        }
        self.shared.wake_writer.notify_one();
    }

    /// Waits until the writer has ended, at most until `deadline`.
    pub(crate) fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut st = self.shared.lock();
        while st.alive {
            match self.shared.wait_progress(st, deadline) {
                Some(g) => st = g,
                None => return false,
            }
        }
        true
    }

    /// The writer's part of stopping: waits for the delivery of what this
    /// process's events made until shortly before the stop's deadline,
    /// then claims nothing more and lets the delivery in progress finish
    /// within that time. Returns whether the notify thread may still be
    /// sending (its claims are then put back).
    pub(super) fn deliver_before_stop(shared: &super::Shared) -> bool {
        let Some(n) = &shared.notify else {
            return false;
        };
        let (mark, stop_by) = {
            let st = shared.lock();
            (st.outbox_mark, st.stop_by)
        };
        let budget = shared.cfg.exit_budget;
        let deadline = stop_by.unwrap_or_else(|| super::exit_deadline(budget));
        // Time left, after the wait, to put back a delivery cut short and
        // record the run before the deadline.
        let margin = (budget / 10).min(Duration::from_millis(250));
        let until = deadline
            .checked_sub(margin)
            .unwrap_or(deadline)
            .max(Instant::now());
        if mark > 0 {
            n.wait_delivered(mark, until);
        }
        !n.stop(until)
    }
}
