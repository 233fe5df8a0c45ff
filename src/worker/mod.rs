//! The background writer: one thread per database file owns the SQLite
//! connection. Callers push captured events into a bounded queue; the writer
//! resolves symbols, takes the snapshot, computes fingerprints and commits
//! one transaction per batch.
//!
//! The hot path takes one uncontended lock and wakes the writer only when it
//! sleeps with an empty queue (or the batch is full): while the writer
//! lingers to gather a batch, producers do not signal it at all.

mod crashes;
mod exit;
mod flush;
mod fork;
mod losses;
#[cfg(target_os = "linux")]
mod signals;
mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channels::outbox::NotifyHandle;
use crate::channels::Alerting;
use crate::error::ErrorKind;
use crate::event::Event;
use crate::pipeline::PendingEvent;
use crate::store::{AlertRules, Durability};
use crate::util::internal_log;
use losses::Lost;
use writer::writer_main;

pub use crashes::{import_crashes, CrashImport};
pub(crate) use exit::{exit_deadline, start_exit, DEFAULT_EXIT_BUDGET};
use fork::{watch_forks, FORK_GENERATION};
#[cfg(target_os = "linux")]
pub(crate) use signals::drain_on_termination;
pub(crate) use writer::write_directly;

/// What a caller does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Never wait: the event is dropped and counted (the default). The count
    /// is written to the `counters` table as `dropped_events` and is
    /// available from [`EventLogger::dropped_events`](crate::EventLogger::dropped_events).
    #[default]
    Drop,
    /// Wait up to this long for room, then drop and count.
    Block(Duration),
}

/// Symbol resolution budget per event on the writer thread.
const WRITER_RESOLVE_BUDGET: Duration = Duration::from_secs(10);
/// Symbol resolution budget per event inside the panic hook's fallback.
pub(crate) const HOOK_RESOLVE_BUDGET: Duration = Duration::from_millis(500);
/// How often the writer retries a database it could not write.
const RETRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    pub(crate) durability: Durability,
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
    pub(crate) overflow: Overflow,
    pub(crate) linger: Duration,
    pub(crate) batch_max: usize,
    pub(crate) busy_timeout: Duration,
    /// The one budget for everything done on the way out (the panic hook's
    /// waits, then the drain of the queue and the outbox).
    pub(crate) exit_budget: Duration,
    pub(crate) alerting: Alerting,
    pub(crate) retention: crate::store::Limits,
    /// How long the flight recorder's readings are kept.
    pub(crate) run_samples_keep: Duration,
    pub(crate) prewarm_symbols: bool,
    /// The writer drops its symbol tables after this long without a new
    /// stack to resolve (`None`: never; also never with `prewarm_symbols`).
    pub(crate) symbol_cache_idle: Option<Duration>,
    /// The memory the symbol tables may hold before the writer drops them.
    pub(crate) symbol_cache_bytes: u64,
    /// How often an idle writer notes the run's last sign of life.
    pub(crate) heartbeat: Option<Duration>,
    /// The crash-loop rule: runs and window (`None`: off).
    pub(crate) crash_loop: Option<(u64, Duration)>,
    /// Where events go.
    pub(crate) target: Target,
    /// The file, or a PostgreSQL server.
    pub(crate) backend: crate::store::Backend,
    /// How events are grouped (`[[grouping]]` of the settings file).
    pub(crate) grouping: crate::settings::grouping::GroupingConfig,
    /// Warnings before death (`[[resource_warning]]`), checked on the
    /// heartbeat.
    pub(crate) resource_warnings: Vec<crate::settings::resource_warnings::ResourceWarning>,
}

/// The symbol tables' default memory budget (32 MiB).
pub(crate) const DEFAULT_SYMBOL_CACHE_BYTES: u64 = 32 << 20;

/// Where a writer puts events.
#[derive(Clone, Default)]
pub(crate) enum Target {
    /// The database file (and the spool when it cannot be written).
    #[default]
    File,
    /// A list in memory, for tests (no file, no alert).
    Memory(Arc<Mutex<Vec<Event>>>),
    /// Nowhere: errsnap is switched off (`ERRSNAP_DISABLED=1`).
    Disabled,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::File => "File",
            Target::Memory(_) => "Memory",
            Target::Disabled => "Disabled",
        })
    }
}

impl WorkerConfig {
    fn rules(&self) -> AlertRules {
        self.alerting.rules()
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            durability: Durability::Normal,
            capacity: 10_000,
            max_bytes: 64 << 20,
            overflow: Overflow::Drop,
            linger: Duration::from_millis(10),
            batch_max: 512,
            busy_timeout: Duration::from_secs(5),
            exit_budget: DEFAULT_EXIT_BUDGET,
            alerting: Alerting::default(),
            retention: Default::default(),
            run_samples_keep: Duration::from_secs(7 * 86_400),
            prewarm_symbols: false,
            symbol_cache_idle: Some(Duration::from_secs(300)),
            symbol_cache_bytes: DEFAULT_SYMBOL_CACHE_BYTES,
            heartbeat: Some(Duration::from_secs(10)),
            crash_loop: Some((3, Duration::from_secs(300))),
            target: Target::File,
            backend: crate::store::Backend::File,
            grouping: Default::default(),
            resource_warnings: Vec::new(),
        }
    }
}

struct State {
    queue: VecDeque<(u64, PendingEvent)>,
    bytes: usize,
    /// Sequence number of the last event queued.
    queued: u64,
    /// Every event with a sequence number up to this one has been handled.
    done: u64,
    /// ... and has its final frames: a panic's raw stack, committed first,
    /// has since been named (or naming gave up).
    named: u64,
    writer_idle: bool,
    hurry: bool,
    shutdown: bool,
    alive: bool,
    /// The writer has imported any spool left by earlier runs.
    ready: bool,
    /// With a server as the store: events wait in the spool to be
    /// forwarded (the server could not be reached).
    unforwarded: bool,
    /// The outbox's highest id after the last batch that made alerts:
    /// every alert of an event handled so far has an id at most this.
    outbox_mark: i64,
    /// When stopping: the end of the exit budget (the writer delivers
    /// alerts until shortly before it).
    stop_by: Option<Instant>,
    /// Loggers whose views the writer is to make (see `register_logger`).
    new_loggers: Vec<String>,
    /// The loggers of this process, by name (their redaction and
    /// `before_save` hook, for crash files only the application may import).
    loggers: Vec<Arc<crate::pipeline::Context>>,
    /// Monitors' check-ins waiting for the writer, and how many it has
    /// taken but not yet recorded (a flush waits for both).
    check_ins: VecDeque<crate::monitors::check_in::Note>,
    check_ins_in_hand: usize,
}

/// The most check-ins waiting for the writer; more are dropped (and
/// counted as `check_ins_dropped`).
pub(crate) const MAX_CHECK_INS: usize = 1000;

struct Shared {
    path: PathBuf,
    cfg: WorkerConfig,
    state: Mutex<State>,
    wake_writer: Condvar,
    progress: Condvar,
    dropped: AtomicU64,
    dropped_total: AtomicU64,
    /// Check-ins dropped (too many waiting), not yet counted in the store.
    check_ins_dropped: AtomicU64,
    /// Events left out by sampling, not yet added to the `counters` table.
    sampled: AtomicU64,
    /// Reports of a failure already recorded (see `dedupe`), not yet added
    /// to the `counters` table.
    deduplicated: AtomicU64,
    /// Events a grouping rule ignored, not yet added to the `counters`
    /// table.
    grouping_ignored: AtomicU64,
    /// The channels that take client reports, and the losses among events
    /// routed to one of them (by Sentry's reason), not yet counted.
    report_takers: Vec<String>,
    lost_upstream: [AtomicU64; 5],
    notify: Option<NotifyHandle>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the next progress report, at most until `deadline`.
    fn wait_progress<'a>(
        &self,
        st: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, State>> {
        crate::util::sync::wait_until(&self.progress, st, deadline)
    }
}

/// A running writer. Dropping the last handle stops it after draining the
/// queue, waiting at most the configured shutdown timeout.
///
/// After `fork()` the child has none of the parent's threads, and its copies
/// of the parent's locks may be held forever: a worker made before the fork
/// is *stale* in the child and is never used there. The first capture in
/// the child starts a successor (a new connection, new threads), see
/// [`Worker::current`].
pub(crate) struct Worker {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: std::thread::ThreadId,
    /// The fork generation this worker belongs to.
    generation: u64,
    /// The worker that replaces this one in a forked child.
    successor: std::sync::OnceLock<Arc<Worker>>,
    /// The writer thread's `pthread_t` (0: none), told apart at exit
    /// without thread-locals.
    pthread: u64,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("path", &self.shared.path)
            .finish()
    }
}

static WORKERS: Mutex<Vec<(PathBuf, Weak<Worker>)>> = Mutex::new(Vec::new());

/// Every running writer (none while another thread holds the registry:
/// the lock is never waited for, so that an exit cannot hang on it).
fn running_workers() -> Vec<Arc<Worker>> {
    match WORKERS.try_lock() {
        Ok(w) => w.iter().filter_map(|(_, w)| w.upgrade()).collect(),
        Err(std::sync::TryLockError::Poisoned(p)) => p
            .into_inner()
            .iter()
            .filter_map(|(_, w)| w.upgrade())
            .collect(),
        Err(std::sync::TryLockError::WouldBlock) => Vec::new(),
    }
}

/// Returns the writer of `path` (canonical), starting it if none runs.
/// The first opener's settings win for a file shared by several loggers.
pub(crate) fn for_path(path: &Path, cfg: &WorkerConfig) -> crate::error::Result<Arc<Worker>> {
    watch_forks();
    exit::register_exit_hook();
    let generation = FORK_GENERATION.load(Ordering::SeqCst);
    let mut workers = match WORKERS.try_lock() {
        Ok(w) => w,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        // In a forked child the lock may have been held by a thread that
        // does not exist here: never wait for it, start an unshared writer.
        Err(std::sync::TryLockError::WouldBlock) if generation > 0 => {
            return start(path, cfg);
        }
        Err(std::sync::TryLockError::WouldBlock) => {
            WORKERS.lock().unwrap_or_else(|p| p.into_inner())
        }
    };
    workers.retain(|(_, w)| w.strong_count() > 0);
    if let Some(w) = workers
        .iter()
        .filter(|(p, _)| p == path)
        .filter_map(|(_, w)| w.upgrade())
        .find(|w| w.generation == generation)
    {
        return Ok(w);
    }
    let worker = start(path, cfg)?;
    workers.push((path.to_owned(), Arc::downgrade(&worker)));
    Ok(worker)
}

/// Starts a writer; it opens the store itself (or falls back to the
/// spool), so the caller's thread never reads a schema or reaches a
/// server. A database file that cannot even be made (a missing directory)
/// is an error here.
fn start(path: &Path, cfg: &WorkerConfig) -> crate::error::Result<Arc<Worker>> {
    if matches!(cfg.target, Target::File) {
        if let Err(e) = crate::store::prepare(path, &cfg.backend) {
            // Refused files and storage errors are the spool's to handle.
            if !e.is_refusal() && !matches!(e.kind(), ErrorKind::Storage { .. }) {
                return Err(e);
            }
        }
    }
    Ok(Arc::new(Worker::start(path.to_owned(), cfg.clone())?))
}

impl Worker {
    fn start(path: PathBuf, cfg: WorkerConfig) -> crate::error::Result<Worker> {
        let disabled = matches!(cfg.target, Target::Disabled);
        let notify = if cfg.alerting.channels.is_empty() || !matches!(cfg.target, Target::File) {
            None
        } else {
            Some(NotifyHandle::start(
                &path,
                cfg.durability,
                cfg.backend.clone(),
                cfg.alerting.clone(),
            )?)
        };
        let report_takers = losses::report_takers(&cfg.alerting);
        let shared = Arc::new(Shared {
            path,
            cfg,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                queued: 0,
                done: 0,
                named: 0,
                writer_idle: false,
                hurry: false,
                shutdown: false,
                alive: !disabled,
                ready: disabled,
                unforwarded: false,
                outbox_mark: 0,
                stop_by: None,
                new_loggers: Vec::new(),
                loggers: Vec::new(),
                check_ins: VecDeque::new(),
                check_ins_in_hand: 0,
            }),
            wake_writer: Condvar::new(),
            progress: Condvar::new(),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            check_ins_dropped: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            deduplicated: AtomicU64::new(0),
            report_takers,
            lost_upstream: Default::default(),
            grouping_ignored: AtomicU64::new(0),
            notify,
        });
        if disabled {
            return Ok(Worker {
                shared,
                thread: Mutex::new(None),
                thread_id: std::thread::current().id(),
                generation: FORK_GENERATION.load(Ordering::SeqCst),
                successor: std::sync::OnceLock::new(),
                pthread: 0,
            });
        }
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name("errsnap-writer".into())
            .spawn(move || writer_main(s))
            .map_err(|e| crate::error::Error::io("starting the errsnap-writer thread", e))?;
        let thread_id = handle.thread().id();
        let pthread = crate::util::sync::pthread_of(&handle);
        Ok(Worker {
            shared,
            thread: Mutex::new(Some(handle)),
            thread_id,
            generation: FORK_GENERATION.load(Ordering::SeqCst),
            successor: std::sync::OnceLock::new(),
            pthread,
        })
    }

    /// Whether events go to a database file (not a test list, not off).
    pub(crate) fn writes_files(&self) -> bool {
        matches!(self.shared.cfg.target, Target::File)
    }

    /// Whether errsnap is switched off for this logger (nothing is
    /// recorded, nothing waits).
    pub(crate) fn is_disabled(&self) -> bool {
        matches!(self.shared.cfg.target, Target::Disabled)
    }

    /// Whether this worker was made before a `fork()` of this process (its
    /// threads do not exist here).
    fn is_stale(&self) -> bool {
        FORK_GENERATION.load(Ordering::Relaxed) != self.generation
    }

    /// The worker to use in this process: `self`, or in a forked child the
    /// successor started for it (a new connection and new threads). One
    /// atomic load when no fork happened.
    pub(crate) fn current(self: &Arc<Self>) -> &Arc<Worker> {
        if !self.is_stale() {
            return self;
        }
        let next = self.successor.get_or_init(|| {
            match for_path(&self.shared.path, &self.shared.cfg) {
                Ok(w) => w,
                Err(e) => {
                    internal_log::report("fork", &internal_log::chain(&e));
                    // A stale worker refuses everything (counted as lost).
                    self.clone()
                }
            }
        });
        if Arc::ptr_eq(next, self) {
            self
        } else {
            next.current()
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Where the events go: the file, or a server.
    pub(crate) fn backend(&self) -> &crate::store::Backend {
        &self.shared.cfg.backend
    }

    pub(crate) fn exit_budget(&self) -> Duration {
        self.shared.cfg.exit_budget
    }

    pub(crate) fn durability(&self) -> Durability {
        self.shared.cfg.durability
    }

    /// How this file's events are grouped.
    pub(crate) fn grouping(&self) -> &crate::settings::grouping::GroupingConfig {
        &self.shared.cfg.grouping
    }

    /// Hands an event to the writer. Returns its sequence number, or `None`
    /// if it was dropped because the queue stayed full. `force` (panics)
    /// ignores the bounds.
    pub(crate) fn submit(&self, ev: PendingEvent, force: bool) -> Option<u64> {
        if self.is_disabled() {
            return None;
        }
        if self.is_stale() {
            // Never touch the parent's queue (its lock may be held forever).
            self.shared.count_dropped_event(&ev.alert_channels);
            return None;
        }
        let bytes = ev.approx_bytes();
        let cfg = &self.shared.cfg;
        let mut st = self.shared.lock();
        let full = |st: &State| {
            st.queue.len() >= cfg.capacity
                || (!st.queue.is_empty() && st.bytes + bytes > cfg.max_bytes)
        };
        if !force && full(&st) {
            if let Overflow::Block(timeout) = cfg.overflow {
                let deadline = Instant::now() + timeout;
                while full(&st) && st.alive {
                    st.hurry = true;
                    self.shared.wake_writer.notify_one();
                    match self.shared.wait_progress(st, deadline) {
                        Some(g) => st = g,
                        None => {
                            self.shared.count_dropped_event(&ev.alert_channels);
                            return None;
                        }
                    }
                }
            }
            if full(&st) {
                drop(st);
                self.shared.count_dropped_event(&ev.alert_channels);
                return None;
            }
        }
        if !st.alive {
            drop(st);
            self.shared.count_dropped_event(&ev.alert_channels);
            return None;
        }
        st.queued += 1;
        let seq = st.queued;
        st.queue.push_back((seq, ev));
        st.bytes += bytes;
        if force {
            st.hurry = true;
        }
        let wake = st.writer_idle || st.hurry || st.queue.len() == cfg.batch_max;
        if wake {
            st.writer_idle = false;
        }
        drop(st);
        if wake {
            self.shared.wake_writer.notify_one();
        }
        Some(seq)
    }

    /// Asks the writer to register the logger of `context` (its row and
    /// its `SELECT * FROM <name>` view) as soon as it has the store, and
    /// keeps its context for crash files only the application may import.
    pub(crate) fn register_logger(&self, context: &Arc<crate::pipeline::Context>) {
        if self.is_disabled() || self.is_stale() {
            return;
        }
        let name = &context.logger;
        let mut st = self.shared.lock();
        if !st.new_loggers.iter().any(|n| n == name) {
            st.new_loggers.push(name.clone());
        }
        st.loggers.retain(|c| c.logger != *name);
        st.loggers.push(Arc::clone(context));
        st.hurry = true;
        drop(st);
        self.shared.wake_writer.notify_one();
    }

    /// Hands a monitor's check-in to the writer (never waits: one lock,
    /// one push). `false` when it was dropped: errsnap is off, or too many
    /// wait.
    pub(crate) fn check_in(&self, note: crate::monitors::check_in::Note) -> bool {
        if self.is_disabled() || self.is_stale() {
            return false;
        }
        let mut st = self.shared.lock();
        if st.check_ins.len() >= MAX_CHECK_INS {
            drop(st);
            self.shared
                .check_ins_dropped
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        st.check_ins.push_back(note);
        st.hurry = true;
        drop(st);
        self.shared.wake_writer.notify_one();
        true
    }

    /// Waits until the event numbered `seq` (and all before it) was handled.
    pub(crate) fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        self.wait_until_seq(seq, timeout, |st| st.done)
    }

    /// Waits until the event numbered `seq` (and all before it) also has
    /// its final frames: a panic's raw stack is committed first and named
    /// right after.
    pub(crate) fn wait_named(&self, seq: u64, timeout: Duration) -> bool {
        self.wait_until_seq(seq, timeout, |st| st.named)
    }

    fn wait_until_seq(&self, seq: u64, timeout: Duration, reached: fn(&State) -> u64) -> bool {
        if self.is_stale() {
            return false;
        }
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if reached(&st) >= seq && st.ready {
                return true;
            }
            if !st.alive {
                return false;
            }
            if !st.hurry {
                st.hurry = true;
                st.writer_idle = false;
                self.shared.wake_writer.notify_one();
            }
            match self.shared.wait_progress(st, deadline) {
                Some(g) => st = g,
                None => return false,
            }
        }
    }

    /// How long the panic hook waits for a fatal alert.
    pub(crate) fn panic_alert_wait(&self) -> Duration {
        self.shared.cfg.alerting.policy.panic_wait
    }

    pub(crate) fn rules(&self) -> AlertRules {
        self.shared.cfg.rules()
    }

    /// The alert channels and policy of this file.
    pub(crate) fn alerting(&self) -> &Alerting {
        &self.shared.cfg.alerting
    }

    /// Counts an event left out by sampling (recorded as `sampled_out`).
    pub(crate) fn count_sampled(&self) {
        self.shared.sampled.fetch_add(1, Ordering::Relaxed);
    }

    /// Events dropped because the queue was full (since start).
    pub(crate) fn dropped_events(&self) -> u64 {
        self.shared.dropped_total.load(Ordering::Relaxed)
    }

    /// Whether the writer thread is still running.
    pub(crate) fn is_alive(&self) -> bool {
        !self.is_stale() && self.shared.lock().alive
    }

    pub(crate) fn is_current_thread(&self) -> bool {
        std::thread::current().id() == self.thread_id
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.is_stale() {
            // In a forked child: the thread does not exist here and the
            // parent's locks may be held forever. Touch nothing.
            let handle = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
            std::mem::forget(handle.take());
            return;
        }
        let timeout = self.shared.cfg.exit_budget;
        let deadline = exit_deadline(timeout);
        self.request_stop(deadline);
        if self.wait_stopped(deadline) {
            if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
                // The thread has finished its loop; joining cannot block
                // long, and a panic inside it was already reported by the
                // hook.
                let _ = handle.join();
            }
        } else {
            let pending = self.shared.lock().queue.len();
            internal_log::report(
                "shutdown",
                &format_args!(
                    "the writer of {} did not finish within the exit budget ({:?}); {} queued \
                     events may be lost",
                    self.shared.path.display(),
                    timeout,
                    pending
                ),
            );
        }
        if let Some(n) = &self.shared.notify {
            // The writer delivered what fit in the budget; what is left
            // stays in the outbox for the next start.
            n.shutdown(deadline.saturating_duration_since(Instant::now()));
        }
    }
}
