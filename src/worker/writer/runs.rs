//! The writer's part in the runs ledger and the crash files: the run's
//! signs of life, how it ends, crash files imported, the crash-loop rule.

use std::time::{Duration, Instant};

use super::Writer;
use crate::event::sample::RunSample;
use crate::event::{Event, EventKind};
use crate::util::internal_log;

impl Writer {
    /// Imports the crash files that processes now gone left (after the
    /// spool: a panic that ended in `SIGABRT` may have been spooled).
    /// `true` when a run was marked crashed.
    pub(super) fn import_crashes(&mut self) -> bool {
        let skip = crate::crash::armed_name();
        let shared = self.shared.clone();
        let Some(store) = self.store.as_deref_mut() else {
            return false;
        };
        let tables = self.symbolizer.tables_mut();
        let grouping = &mut self.grouping;
        // This application's loggers (for crashes only it may import).
        let find = |name: &str| {
            shared
                .lock()
                .loggers
                .iter()
                .find(|c| c.logger == name)
                .cloned()
        };
        match crate::worker::crashes::import(store, tables, grouping, skip.as_deref(), Some(&find))
        {
            Ok(r) => {
                if r.imported > 0 {
                    self.kick_delivery();
                }
                // Waiting for a logger of theirs: tried again when one is
                // registered.
                self.crashes_waiting = r.waiting > 0;
                r.crashed_runs > 0
            }
            Err(e) => {
                internal_log::report("crash import", &internal_log::chain(&e));
                false
            }
        }
    }

    /// Gives the crash file the process's last sign of life, and the
    /// module list again when a library was loaded or unloaded.
    pub(super) fn note_crash_sign(&mut self, rss_bytes: Option<u64>, cpu_percent: Option<f64>) {
        if crate::crash::armed_name().is_none() {
            return;
        }
        if let Some(rss) = rss_bytes {
            crate::crash::note_sign(rss, cpu_percent, crate::util::time::now_ms());
        }
        self.copy_breadcrumbs();
        let generation = crate::pipeline::modules::generation();
        if generation != self.modules_generation {
            self.modules_generation = generation;
            crate::crash::set_modules(&crate::pipeline::modules::for_crash_file());
        }
    }

    /// Gives the crash file the armed logger's breadcrumbs as they stand
    /// (those added since its last stored event), when they changed: a
    /// native crash then carries them. The ring's lock is held for a copy.
    fn copy_breadcrumbs(&mut self) {
        let Some(name) = crate::crash::armed_logger() else {
            return;
        };
        let ring = {
            let st = self.shared.lock();
            st.loggers
                .iter()
                .find(|c| c.logger == name)
                .map(|c| std::sync::Arc::clone(&c.breadcrumbs))
        };
        let Some(ring) = ring else { return };
        let crumbs: Vec<crate::event::Breadcrumb> = ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let mark = (
            crumbs.len(),
            crumbs.first().map(|c| c.timestamp_ms),
            crumbs.last().map(|c| c.timestamp_ms),
        );
        if self.recorder.crumbs_written != Some(mark) {
            crate::crash::set_breadcrumbs(&crumbs);
            self.recorder.crumbs_written = Some(mark);
        }
    }

    /// After a write: the run's last sign of life is noted (at most once a
    /// second) with the release the events carry; a panic marks it crashed.
    pub(super) fn note_run(&mut self, events: &[Event]) {
        let Some(id) = self.run else { return };
        let now = crate::util::time::now_ms();
        let crashed = events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Panic | EventKind::Crash));
        if !crashed
            && self
                .run_seen
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.run_seen = Some(Instant::now());
        let first = events
            .iter()
            .find(|e| e.app_name.is_some() || e.release.is_some());
        let snapshot = events.iter().find_map(|e| e.snapshot.as_ref());
        let sign = crate::store::runs::RunSign {
            app: first.and_then(|e| e.app_name.as_deref()),
            release: first.and_then(|e| e.release.as_deref()),
            rss_bytes: snapshot.map(|s| s.process.rss_bytes),
            cpu_percent: snapshot.and_then(|s| s.process.cpu_percent),
        };
        let release = sign.release.is_some();
        if let Some(store) = self.store.as_deref_mut() {
            let _ = store.touch_run(id, now, &sign);
        }
        if release && !self.release_noted {
            // Its session begins: a flush waits for its start too.
            self.release_noted = true;
            self.note_queued_items();
        }
        self.note_crash_sign(sign.rss_bytes, sign.cpu_percent);
        // After the sign: a run that crashes on its first event still
        // records its release.
        if crashed {
            self.end_run(crate::store::RunStatus::Crashed);
        }
    }

    /// How long until the next heartbeat (`None`: no run, or no
    /// heartbeat).
    pub(super) fn heartbeat_due_in(&self) -> Option<Duration> {
        let every = self.shared.cfg.heartbeat?;
        self.run?;
        let last = self.recorder.last.unwrap_or(self.last_open);
        Some((last + every).saturating_duration_since(Instant::now()))
    }

    /// The heartbeat, idle or busy: a flight-recorder reading into the
    /// store's series and the crash file's ring, and the run's last sign
    /// of life with it (a run killed later keeps what it had here).
    pub(super) fn heartbeat(&mut self) {
        let Some(id) = self.run else { return };
        let reading = self.sampler.reading();
        let now = Instant::now();
        self.recorder.last = Some(now);
        self.run_seen = Some(now);
        crate::crash::note_reading(&reading);
        let sign = crate::store::runs::RunSign {
            rss_bytes: reading.rss_bytes,
            cpu_percent: reading.cpu_percent,
            ..Default::default()
        };
        let r = &mut self.recorder;
        if r.run != Some(id) {
            // A new run (the store was opened again): its own series.
            r.run = Some(id);
            r.chunk = 0;
            r.readings.clear();
            r.recent.clear();
        }
        if r.recent.len() >= crate::settings::resource_warnings::MAX_READINGS {
            r.recent.pop_front();
        }
        r.recent.push_back(reading.clone());
        r.readings.push(reading);
        let keep = self.shared.cfg.run_samples_keep;
        let drop_old = r
            .dropped
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600));
        if let Some(store) = self.store.as_deref_mut() {
            let at = crate::util::time::now_ms();
            let _ = store.touch_run(id, at, &sign);
            if let Err(e) = store.record_samples(id, r.chunk, &r.readings) {
                internal_log::report("flight recorder", &internal_log::chain(&e));
            }
            if drop_old {
                r.dropped = Some(now);
                let before = at.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
                if let Err(e) = store.drop_samples_before(before) {
                    internal_log::report("flight recorder", &internal_log::chain(&e));
                }
                // Monitors' runs and the runs ledger: as long as events
                // are kept, 90 days without an age limit.
                let days90 = 90 * 86_400_000;
                let keep_runs = self.shared.cfg.retention.max_age_ms.unwrap_or(days90);
                let before = at.saturating_sub(keep_runs);
                if let Err(e) = store.drop_check_ins_before(before) {
                    internal_log::report("monitors", &internal_log::chain(&e));
                }
                if let Err(e) = store.drop_runs_before(before) {
                    internal_log::report("runs", &internal_log::chain(&e));
                }
            }
        }
        if r.readings.len() >= crate::store::recorder::CHUNK {
            r.readings.clear();
            r.chunk += 1;
        }
        self.note_crash_sign(sign.rss_bytes, sign.cpu_percent);
        self.check_resource_warnings();
        self.judge_monitors();
    }

    /// The `[[resource_warning]]` rules against the latest readings: each
    /// that holds (and had not fired since it last held) is one `warn`
    /// event of its own group, with the trend.
    fn check_resource_warnings(&mut self) {
        use crate::pipeline::resource_warnings::{event, fire};
        let shared = self.shared.clone();
        let rules = &shared.cfg.resource_warnings;
        if rules.is_empty() {
            return;
        }
        let r = &mut self.recorder;
        let recent = r.recent.make_contiguous();
        let fires = fire(rules, &mut r.fired, recent);
        if fires.is_empty() {
            return;
        }
        let since = recent.last().map_or(0, |s| s.at_ms) - crate::pipeline::trend::TREND_WINDOW_MS;
        let window: Vec<RunSample> = recent
            .iter()
            .filter(|s| s.at_ms >= since)
            .cloned()
            .collect();
        let channels = shared.cfg.rules().channels;
        let events: Vec<Event> = fires
            .iter()
            .map(|(i, what)| event(&rules[*i], what, &window, channels.clone()))
            .collect();
        self.write(&events);
        self.kick_delivery();
    }

    /// Queues the end of this run's session as `status` (before the
    /// ledger records it).
    pub(super) fn end_session(&mut self, status: crate::store::RunStatus) {
        let (Some(id), Some(store)) = (self.run, self.store.as_deref_mut()) else {
            return;
        };
        match store.end_session(id, status, crate::util::time::now_ms()) {
            Ok(()) => self.note_queued_items(),
            Err(e) => internal_log::report("runs", &internal_log::chain(&e)),
        }
    }

    pub(super) fn end_run(&mut self, status: crate::store::RunStatus) {
        let (Some(id), Some(store)) = (self.run, self.store.as_deref_mut()) else {
            return;
        };
        match store.end_run(id, status, crate::util::time::now_ms()) {
            Ok(true) if status == crate::store::RunStatus::Crashed => {
                self.note_queued_items();
                self.check_crash_loop();
            }
            Ok(_) => {}
            Err(e) => internal_log::report("runs", &internal_log::chain(&e)),
        }
    }

    /// After a run crashed or was found gone: when the crash-loop rule's
    /// count is reached, one more occurrence of the crash-loop group (its
    /// alert policy sends the first, then digests).
    pub(super) fn check_crash_loop(&mut self) {
        let Some((runs, window)) = self.shared.cfg.crash_loop else {
            return;
        };
        let since = crate::util::time::now_ms() - window.as_millis() as i64;
        let Some(store) = self.store.as_deref_mut() else {
            return;
        };
        let count = match store.troubled_runs_since(since) {
            Ok(n) => n,
            Err(e) => {
                internal_log::report("crash loop", &internal_log::chain(&e));
                return;
            }
        };
        if count < runs {
            return;
        }
        let channels = self.shared.cfg.rules().channels;
        let ev = crate::pipeline::crash::crash_loop_event(count, window, channels);
        self.write(&[ev]);
        self.kick_delivery();
    }
}

/// The writer's flight recorder: the run's open chunk of readings.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    /// The run the open chunk is of.
    run: Option<i64>,
    /// When the last reading was taken.
    last: Option<Instant>,
    /// The open chunk's number and its readings so far.
    chunk: u32,
    readings: Vec<RunSample>,
    /// When old readings were last dropped.
    dropped: Option<Instant>,
    /// The latest readings, for the resource-warning rules, and which of
    /// the rules has fired since it last held.
    recent: std::collections::VecDeque<RunSample>,
    fired: Vec<bool>,
    /// What the crash file's breadcrumbs were last written from (count,
    /// first and last time).
    crumbs_written: Option<(usize, Option<i64>, Option<i64>)>,
}
