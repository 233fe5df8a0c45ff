//! The writer's timed chores: the symbol and unwind tables loaded and let
//! go when idle, automatic retention, and the losses counted (dropped,
//! sampled out, deduplicated, ignored) written to the `counters` table.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Writer, RETENTION_EVERY};
use crate::util::internal_log;

impl Writer {
    /// Reads the unwind tables the callers' walk uses (again, when a walk
    /// found a module it did not know), and the first time the symbol
    /// tables when they are to be prewarmed.
    pub(super) fn load_tables(&mut self) {
        crate::capture::refresh_unwind_tables();
        if self.tables_due.take().is_some() && self.shared.cfg.prewarm_symbols {
            self.symbolizer.prewarm();
        }
    }

    /// How long until the symbol tables count as idle and are dropped
    /// (`None`: nothing loaded, or they are kept for good).
    pub(super) fn symbols_due_in(&self) -> Option<Duration> {
        let cfg = &self.shared.cfg;
        let idle = cfg.symbol_cache_idle.filter(|_| !cfg.prewarm_symbols)?;
        let last = self.symbolizer.last_resolved()?;
        Some((last + idle).saturating_duration_since(Instant::now()))
    }

    pub(super) fn release_symbols(&mut self) {
        let Some(idle) = self.shared.cfg.symbol_cache_idle else {
            return;
        };
        if self.symbolizer.release_if_idle(idle) {
            // Counted, so `errsnap stats` shows how often tables reload.
            self.count("symbol_tables_released");
        }
    }

    pub(super) fn count(&mut self, counter: &str) {
        if let Some(store) = self.store.as_deref_mut() {
            let _ = store.add_counter(counter, 1);
        }
    }

    /// Runs automatic retention at most once a minute, and at shutdown.
    pub(super) fn retention(&mut self, now: bool) {
        let mut limits = self.shared.cfg.retention;
        if !self.attachments_written {
            limits.attachments_max_bytes = None;
        }
        if !limits.any()
            || (!now
                && self
                    .last_retention
                    .is_some_and(|t| t.elapsed() < RETENTION_EVERY))
        {
            return;
        }
        self.last_retention = Some(Instant::now());
        if let Some(store) = self.store() {
            match store.enforce_retention(limits) {
                Ok(_) => self.attachments_written = false,
                Err(e) => internal_log::report("retention", &internal_log::chain(&e)),
            }
        }
    }

    pub(super) fn record_dropped(&mut self) {
        let shared = self.shared.clone();
        let ignored = std::mem::take(&mut self.grouping.ignored);
        shared
            .grouping_ignored
            .fetch_add(ignored, Ordering::Relaxed);
        let mut reported = false;
        let lost =
            super::super::Lost::ALL.map(|l| (l.counter(), &shared.lost_upstream[l as usize]));
        for (name, counter) in [
            ("dropped_events", &shared.dropped),
            ("sampled_out", &shared.sampled),
            ("deduplicated", &shared.deduplicated),
            ("grouping_ignored", &shared.grouping_ignored),
        ]
        .into_iter()
        .chain(lost)
        {
            let n = counter.swap(0, Ordering::Relaxed);
            if n > 0 {
                let Some(store) = self.store() else {
                    counter.fetch_add(n, Ordering::Relaxed);
                    continue;
                };
                match store.add_counter(name, n) {
                    Ok(()) => reported |= crate::store::upstream::discard_reason(name).is_some(),
                    Err(e) => {
                        counter.fetch_add(n, Ordering::Relaxed);
                        internal_log::report("counter", &internal_log::chain(&e));
                    }
                }
            }
        }
        if reported {
            self.note_queued_items();
        }
    }
}
