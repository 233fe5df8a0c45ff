//! The writer thread: takes batches from the queue, runs the pipeline,
//! writes the store (or the spool while it cannot), runs retention and
//! wakes the notify thread. Also the panic hook's direct write.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Shared, Target, HOOK_RESOLVE_BUDGET, RETRY_EVERY, WRITER_RESOLVE_BUDGET};
use crate::event::{Event, EventKind, HostInfo};
use crate::pipeline::sampler::Sampler;
use crate::pipeline::symbolize::Symbolizer;
use crate::pipeline::PendingEvent;
use crate::store::spool;
use crate::store::{AlertRules, Durability, Store};
use crate::util::internal_log;

mod monitors;
mod runs;
mod spooling;
mod upkeep;

/// The writer thread's state besides the queue.
struct Writer {
    shared: Arc<Shared>,
    /// `None` while the database cannot be opened (locked, read-only, ...).
    store: Option<Box<dyn Store>>,
    last_open: Instant,
    host: HostInfo,
    sampler: Sampler,
    symbolizer: Symbolizer,
    dedupe: crate::pipeline::dedupe::Dedupe,
    /// Set when a batch went to the spool: import it once writes work again.
    spooled: bool,
    last_retention: Option<Instant>,
    /// Attachments were written since the database's cap on them was last
    /// applied (a writer that stores none never takes the write lock for
    /// it).
    attachments_written: bool,
    /// While a panic's raw row is written: new alerts wait for its names
    /// (the notify thread reads the frames when it sends).
    hold_alerts: bool,
    /// Alerts were written while held: kick the notify thread once named.
    alerts_held: bool,
    /// This process's row in the runs ledger, once the store was opened.
    run: Option<i64>,
    /// When the run's last sign of life was written.
    run_seen: Option<Instant>,
    /// The run's release was handed to the ledger (its session begun).
    release_noted: bool,
    /// The flight recorder's open chunk (see `runs::Recorder`).
    recorder: runs::Recorder,
    /// The loaded modules' generation last given to the crash file.
    modules_generation: u64,
    /// When the unwind tables (and prewarmed symbols) are read if no
    /// event came first (`None`: read).
    tables_due: Option<Instant>,
    /// Crash files wait for a logger of the application (see
    /// `crashes::import`).
    crashes_waiting: bool,
    /// How events are grouped: the settings' rules and, while the store is
    /// in transition, its earlier configurations (`adopt_grouping`).
    grouping: crate::pipeline::grouping::Grouping,
}

/// How long a new writer waits, idle, before it reads the unwind tables:
/// a program that reports nothing and ends within it never pays for them
/// (BENCHMARKS.md, the exit section); the first event reads them at once.
const TABLES_AFTER: Duration = Duration::from_millis(20);

/// How often automatic retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// A stack written raw (a panic's batch), to be named after the commit.
pub(super) struct RawStack {
    raw: crate::capture::RawBacktrace,
    redactor: Arc<crate::pipeline::redact::Redactor>,
    /// The storage key it was written under.
    hash: Arc<str>,
}

// Long by design: the writer thread's whole life (start, the batch loop,
// the steps of stopping) in the order it runs, each progress signal beside
// the step it reports; each step it calls is its own function.
pub(super) fn writer_main(shared: Arc<Shared>) {
    let in_memory = matches!(shared.cfg.target, Target::Memory(_));
    let mut w = Writer {
        shared: shared.clone(),
        store: None,
        // The first `store()` opens at once.
        last_open: Instant::now()
            .checked_sub(RETRY_EVERY)
            .unwrap_or_else(Instant::now),
        host: HostInfo::collect(),
        sampler: Sampler::new(),
        // Prewarmed tables are kept for good, whatever they cost.
        symbolizer: Symbolizer::new(if shared.cfg.prewarm_symbols {
            u64::MAX
        } else {
            shared.cfg.symbol_cache_bytes
        }),
        dedupe: crate::pipeline::dedupe::Dedupe::default(),
        spooled: false,
        last_retention: None,
        attachments_written: false,
        hold_alerts: false,
        alerts_held: false,
        run: None,
        run_seen: None,
        release_noted: false,
        recorder: runs::Recorder::default(),
        modules_generation: 0,
        tables_due: None,
        crashes_waiting: false,
        grouping: crate::pipeline::grouping::Grouping::new(shared.cfg.grouping.clone()),
    };
    // Opened here, not on the caller's thread (`on_open` records the host
    // and the run, then imports the spool and crash files). Locked,
    // read-only, full, unreadable; another program's file or a schema this
    // build cannot write (refused, left untouched): events go to the spool
    // and the store is retried every couple of seconds.
    if !in_memory && w.store().is_none() && matches!(shared.cfg.target, Target::File) {
        w.set_spooled(true);
    }
    if !in_memory && !w.spooled && spool::has_pending(&shared.path) {
        w.set_spooled(true);
    }
    w.register_loggers();
    {
        let mut st = shared.lock();
        st.ready = true;
        shared.progress.notify_all();
    }
    // The callers' stack walk needs the modules' unwind tables (read here,
    // not on a caller's thread): with the first batch, or once the writer
    // has been idle a moment; never by a program that ends at once with
    // nothing to record (see `TABLES_AFTER`).
    w.tables_due = Some(Instant::now() + TABLES_AFTER);
    loop {
        let (batch, last_seq, stop) = w.next_batch();
        if !batch.is_empty() {
            w.load_tables();
        }
        let mut raw_stacks = Vec::new();
        if !batch.is_empty() {
            let n = batch.len();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| w.handle(batch)));
            match result {
                Ok(later) => raw_stacks = later,
                Err(_) => {
                    internal_log::report(
                        "writer",
                        &format_args!("a batch of {n} events was lost to a panic in the writer"),
                    );
                    if let Some(store) = w.store.as_mut() {
                        let _ = store.add_counter("writer_panics", 1);
                    }
                    // The panic hook, on this thread, may have spooled the
                    // panic's own record: import (forward) it.
                    if !in_memory && spool::has_pending(&shared.path) {
                        w.set_spooled(true);
                    }
                }
            }
        }
        {
            let mut st = shared.lock();
            st.done = st.done.max(last_seq);
            if raw_stacks.is_empty() {
                st.named = st.named.max(last_seq);
            }
            shared.progress.notify_all();
        }
        if !raw_stacks.is_empty() {
            // The panic's raw row is durable (the hook stopped waiting
            // for it above): now name its stack.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| w.name_raw_stacks(raw_stacks)));
            let mut st = shared.lock();
            st.named = st.named.max(last_seq);
            shared.progress.notify_all();
        }
        if std::mem::take(&mut w.alerts_held) {
            w.kick_delivery();
        }
        // A busy writer keeps the heartbeat's time too.
        if w.heartbeat_due_in().is_some_and(|d| d.is_zero()) {
            w.heartbeat();
        }
        w.retention(false);
        if stop {
            break;
        }
    }
    w.retention(true);
    w.record_check_ins();
    w.record_dropped();
    // The run's session ends before the delivery, so that it goes with it.
    w.end_session(crate::store::RunStatus::Exited);
    if super::Worker::deliver_before_stop(&shared) {
        w.put_back_own_claims();
    }
    w.end_run(crate::store::RunStatus::Exited);
    let mut st = shared.lock();
    st.alive = false;
    shared.progress.notify_all();
}

impl Writer {
    /// Blocks for the first event, lingers briefly to gather more, then takes
    /// up to a batch. Returns the batch, the last sequence number taken and
    /// whether the writer should stop.
    // Long by design: its three phases share one hold of the queue's lock
    // (wait for work, with it let go for the timed chores; linger for more;
    // take the batch).
    fn next_batch(&mut self) -> (Vec<PendingEvent>, u64, bool) {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let mut st = shared.lock();
        if !st.new_loggers.is_empty() || !st.check_ins.is_empty() {
            drop(st);
            self.register_loggers();
            self.record_check_ins();
            st = shared.lock();
        }
        while st.queue.is_empty()
            && !st.shutdown
            && st.new_loggers.is_empty()
            && st.check_ins.is_empty()
        {
            st.writer_idle = true;
            st.hurry = false;
            let mut wait = if self.spooled {
                RETRY_EVERY
            } else {
                Duration::from_secs(3600)
            };
            let tables = self
                .tables_due
                .map(|t| t.saturating_duration_since(Instant::now()));
            for d in [self.symbols_due_in(), self.heartbeat_due_in(), tables]
                .into_iter()
                .flatten()
            {
                wait = wait.min(d.max(Duration::from_millis(10)));
            }
            let (g, timeout) = shared
                .wake_writer
                .wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner());
            st = g;
            if timeout.timed_out() && st.queue.is_empty() {
                let release = self.symbols_due_in().is_some_and(|d| d.is_zero());
                let beat = self.heartbeat_due_in().is_some_and(|d| d.is_zero());
                let tables = self.tables_due.is_some_and(|t| t <= Instant::now());
                if self.spooled || release || beat || tables {
                    // Never with the queue's lock held: callers need it.
                    drop(st);
                    if tables {
                        self.load_tables();
                    }
                    if self.spooled {
                        self.import_spool();
                    }
                    if release {
                        self.release_symbols();
                    }
                    if beat {
                        self.heartbeat();
                    }
                    st = shared.lock();
                }
            }
        }
        st.writer_idle = false;
        let deadline = Instant::now() + cfg.linger;
        while !st.shutdown && !st.hurry && st.queue.len() < cfg.batch_max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = shared
                .wake_writer
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let n = st.queue.len().min(cfg.batch_max);
        let mut batch = Vec::with_capacity(n);
        let mut last_seq = st.done;
        let mut taken_bytes = 0;
        for (seq, ev) in st.queue.drain(..n) {
            taken_bytes += ev.approx_bytes();
            last_seq = seq;
            batch.push(ev);
        }
        st.bytes = if st.queue.is_empty() {
            0
        } else {
            st.bytes.saturating_sub(taken_bytes)
        };
        let stop = st.shutdown && st.queue.is_empty();
        (batch, last_seq, stop)
    }

    /// Processes and writes a batch. The panics of a batch are written
    /// first, in a transaction of their own, with the stacks that are not
    /// resolved yet left raw (module, offset, build-id), so a panic is
    /// durable without waiting for symbol tables to load; those stacks are
    /// returned, to be named right after. The batch's other events are then
    /// resolved and written as usual (their grouping needs the names).
    fn handle(&mut self, batch: Vec<PendingEvent>) -> Vec<RawStack> {
        let snapshot = batch
            .iter()
            .any(|e| e.snapshot && e.store)
            .then(|| self.sampler.sample());
        let urgent = !matches!(self.shared.cfg.target, Target::Memory(_))
            && batch.iter().any(|e| e.kind == EventKind::Panic);
        if !urgent {
            self.process_and_write(batch, WRITER_RESOLVE_BUDGET, snapshot.as_ref());
            return Vec::new();
        }
        let (panics, others): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|e| e.kind == EventKind::Panic);
        self.hold_alerts = true;
        let later = self.process_and_write(panics, Duration::ZERO, snapshot.as_ref());
        self.hold_alerts = false;
        if !others.is_empty() {
            self.process_and_write(others, WRITER_RESOLVE_BUDGET, snapshot.as_ref());
        }
        later
    }

    /// Resolves (within `budget`), de-duplicates and writes events; returns
    /// the stacks left raw when the budget ran out.
    fn process_and_write(
        &mut self,
        batch: Vec<PendingEvent>,
        budget: Duration,
        snapshot: Option<&crate::event::Snapshot>,
    ) -> Vec<RawStack> {
        let mut later = Vec::new();
        let mut events = Vec::with_capacity(batch.len());
        for e in batch {
            let raw = (budget < WRITER_RESOLVE_BUDGET)
                .then(|| e.backtrace.clone().filter(|_| e.origin.is_none()))
                .flatten()
                .map(|raw| (raw, e.context.redactor.clone()));
            // Decided before the event is consumed: no copy of its routes.
            let reported = self.shared.reports_loss_of(&e.alert_channels);
            let ignored = self.grouping.ignored;
            let Some(ev) = e.process(&mut self.symbolizer, budget, snapshot, &mut self.grouping)
            else {
                // Ignored by a grouping rule, or dropped by the hook.
                let why = if self.grouping.ignored > ignored {
                    super::Lost::Ignored
                } else {
                    super::Lost::BeforeSave
                };
                if reported {
                    self.shared.lost_upstream[why as usize].fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            if let (Some((raw, redactor)), false, Some(hash)) =
                (raw, ev.symbols_resolved, &ev.backtrace_hash)
            {
                later.push(RawStack {
                    raw,
                    redactor,
                    hash: hash.clone(),
                });
            }
            events.push(ev);
        }
        if self.symbolizer.after_batch() {
            self.count("symbol_tables_over_budget");
        }
        let (events, repeats) = self.dedupe.apply(events);
        if !repeats.is_empty() {
            self.shared
                .deduplicated
                .fetch_add(repeats.len() as u64, Ordering::Relaxed);
            for r in &repeats {
                self.shared
                    .count_lost_upstream(&r.alert_channels, super::Lost::Duplicate);
            }
        }
        if !events.is_empty() {
            self.write(&events);
        }
        self.record_dropped();
        later
    }

    /// Names the raw stacks a panic's batch was written with, replacing
    /// their stored frames (the writer's full resolution budget applies).
    fn name_raw_stacks(&mut self, stacks: Vec<RawStack>) {
        let mut done = std::collections::HashSet::new();
        for s in stacks {
            if !done.insert(s.hash.clone()) {
                continue;
            }
            let trace = self
                .symbolizer
                .trace(&s.raw, WRITER_RESOLVE_BUDGET, &s.redactor);
            if let Some(store) = self.store.as_deref_mut() {
                if let Err(e) = store.name_frames(&s.hash, &trace.frames) {
                    internal_log::report("naming a panic's stack", &internal_log::chain(&e));
                }
            }
        }
        if self.symbolizer.after_batch() {
            self.count("symbol_tables_over_budget");
        }
    }

    /// The store, reopening it (at most every couple of seconds) while it
    /// is unavailable.
    fn store(&mut self) -> Option<&mut (dyn Store + 'static)> {
        if !matches!(self.shared.cfg.target, Target::File) {
            return None;
        }
        if self.store.is_none() && self.last_open.elapsed() >= RETRY_EVERY {
            self.last_open = Instant::now();
            let cfg = &self.shared.cfg;
            let opened = crate::store::open(
                &self.shared.path,
                &cfg.backend,
                cfg.durability,
                cfg.busy_timeout,
                true,
            );
            match opened {
                Ok(mut s) => {
                    s.set_alert_rules(cfg.rules());
                    match s.adopt_grouping(Some(&cfg.grouping)) {
                        Ok((_, earlier)) => self.grouping.earlier = earlier,
                        Err(e) => internal_log::report("grouping", &internal_log::chain(&e)),
                    }
                    self.store = Some(s);
                    self.on_open();
                }
                Err(e) => internal_log::report("open", &internal_log::chain(&e)),
            }
        }
        self.store.as_deref_mut()
    }

    /// Registers the loggers started since (their rows and views), when
    /// the store can be written: otherwise their first event does it.
    fn register_loggers(&mut self) {
        let names = std::mem::take(&mut self.shared.lock().new_loggers);
        if let Some(store) = self.store() {
            for name in &names {
                if let Err(e) = store.ensure_logger(name) {
                    internal_log::report("logger", &internal_log::chain(&e));
                }
            }
        }
        if !names.is_empty() && self.crashes_waiting && self.import_crashes() {
            self.check_crash_loop();
        }
        self.shared.progress.notify_all();
    }

    /// After (re)opening: record the host and the run, import the spool and
    /// the crash files, and check the crash-loop rule.
    fn on_open(&mut self) {
        let host = self.host.clone();
        let mut loop_check = false;
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.register_host(&host, crate::util::time::now_ms()) {
                internal_log::report("host", &internal_log::chain(&e));
            }
            if self.run.is_none() {
                // Earlier runs of this boot whose process is gone are
                // judged abnormal here, before this one is recorded.
                let start = crate::store::runs::RunStart::this_process(None, None);
                // The rows this run makes (its session's start too) come
                // after these.
                let floor = store.outbox_mark();
                match store.start_run(&start) {
                    Ok((id, abnormal)) => {
                        self.run = Some(id);
                        loop_check |= abnormal > 0;
                        match floor {
                            Ok(floor) => {
                                if let Some(n) = &self.shared.notify {
                                    n.set_run(id, floor);
                                }
                            }
                            Err(e) => internal_log::report("outbox", &internal_log::chain(&e)),
                        }
                        self.note_queued_items();
                    }
                    Err(e) => internal_log::report("runs", &internal_log::chain(&e)),
                }
            }
        }
        self.import_spool();
        loop_check |= self.import_crashes();
        if loop_check {
            self.check_crash_loop();
        }
        self.judge_monitors();
    }

    /// After the store queued upstream items (check-ins, sessions, client
    /// reports): a flush from now on waits for them too. Only when a
    /// channel takes such items.
    pub(super) fn note_queued_items(&mut self) {
        if self
            .shared
            .cfg
            .alerting
            .channels
            .iter()
            .all(|c| c.forward.as_ref().is_none_or(|f| f.takes().is_empty()))
        {
            return;
        }
        let shared = self.shared.clone();
        let Some(store) = self.store() else {
            return;
        };
        match store.outbox_mark() {
            Ok(mark) => {
                let mut st = shared.lock();
                st.outbox_mark = st.outbox_mark.max(mark);
            }
            Err(e) => internal_log::report("outbox", &internal_log::chain(&e)),
        }
        self.kick_delivery();
    }

    /// After a write: a flush from now on waits for the alerts it made.
    fn note_outbox(&self, outcome: crate::store::BatchOutcome) {
        if outcome.outbox_mark > 0 {
            let mut st = self.shared.lock();
            st.outbox_mark = st.outbox_mark.max(outcome.outbox_mark);
        }
    }

    /// On the way out, once the notify thread claims nothing more: its
    /// delivery still in progress (cut short by the exit budget) is put
    /// back, so the row is not left `sending` (sent again by the next
    /// start: at most one duplicate).
    fn put_back_own_claims(&mut self) {
        if let Some(store) = self.store.as_deref_mut() {
            if let Err(e) = store.release_own() {
                internal_log::report("outbox", &internal_log::chain(&e));
            }
        }
    }

    fn kick_delivery(&self) {
        if let Some(n) = &self.shared.notify {
            n.kick();
        }
    }

    fn write(&mut self, events: &[Event]) {
        if let Target::Memory(list) = &self.shared.cfg.target {
            list.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(events);
            return;
        }
        if events.iter().any(|e| !e.attachments.is_empty()) {
            self.attachments_written = true;
        }
        let result = match self.store() {
            Some(store) => store.insert_batch(events),
            None => {
                self.spool(events);
                return;
            }
        };
        match result {
            Ok(outcome) => {
                self.note_outbox(outcome);
                self.note_run(events);
                if outcome.alerts > 0 {
                    if self.hold_alerts {
                        self.alerts_held = true;
                    } else {
                        self.kick_delivery();
                    }
                }
                if self.spooled {
                    self.import_spool();
                }
            }
            Err(e) => {
                internal_log::report("write", &internal_log::chain(&e));
                self.on_store_error(&e);
                self.spool(events);
            }
        }
    }

    /// After a failed write: a damaged file is moved aside (once our
    /// connection is closed); any failure but a lock closes the connection,
    /// so the next attempt reopens it (a file that was read-only, full or
    /// replaced may be fine again).
    fn on_store_error(&mut self, e: &crate::error::Error) {
        if e.is_busy() {
            return;
        }
        self.store = None;
        if e.is_corrupt() {
            match crate::store::move_aside(&self.shared.path) {
                Ok(to) => internal_log::report(
                    "corrupt database",
                    &format_args!("moved to {}", to.display()),
                ),
                Err(e) => internal_log::report("corrupt database", &internal_log::chain(&e)),
            }
            self.last_open = Instant::now() - RETRY_EVERY;
        }
    }
}

/// Writes events with a connection of its own: the panic hook's path when
/// the writer is dead, stuck, or is the panicking thread itself. Falls back
/// to the spool when the database cannot be written.
pub(crate) fn write_directly(
    path: &Path,
    backend: &crate::store::Backend,
    durability: Durability,
    rules: AlertRules,
    grouping: &crate::settings::grouping::GroupingConfig,
    events: Vec<PendingEvent>,
    deadline: Instant,
) -> bool {
    // The settings' grouping only (a store in transition is the writer's
    // to read): a rule's group, or the code's.
    let mut grouping = crate::pipeline::grouping::Grouping::new(grouping.clone());
    let mut symbolizer = Symbolizer::new(u64::MAX);
    let snapshot = Sampler::new().sample();
    // Symbols only while the exit budget allows (addresses are kept, and
    // `errsnap show --binary` resolves them later).
    let budget = HOOK_RESOLVE_BUDGET.min(deadline.saturating_duration_since(Instant::now()) / 2);
    let resolved: Vec<Event> = events
        .into_iter()
        .filter_map(|e| e.process(&mut symbolizer, budget, Some(&snapshot), &mut grouping))
        .collect();
    // A server is never reached from the panicking (caller's) thread: the
    // spool keeps the record and the writer forwards it.
    let stored = if backend.is_file() {
        crate::store::open(path, backend, durability, Duration::from_millis(250), false).and_then(
            |mut s| {
                s.set_alert_rules(rules);
                s.insert_batch(&resolved)
            },
        )
    } else {
        Err(crate::error::Error::config(
            "ERRSNAP_DATABASE_URL",
            "no network from a panicking thread",
        ))
    };
    match stored {
        Ok(_) => true,
        Err(e) => {
            internal_log::report("panic write", &internal_log::chain(&e));
            match spool::append(path, &resolved) {
                Ok(()) => true,
                Err(io) => {
                    internal_log::report("spool", &format_args!("panic record lost: {io}"));
                    false
                }
            }
        }
    }
}
