//! The background writer: one thread per database file owns the SQLite
//! connection. Callers push captured events into a bounded queue; the writer
//! resolves symbols, takes the snapshot, computes fingerprints and commits
//! one transaction per batch.
//!
//! The hot path takes one uncontended lock and wakes the writer only when it
//! sleeps with an empty queue (or the batch is full): while the writer
//! lingers to gather a batch, producers do not signal it at all.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::PendingEvent;
use crate::error::ErrorKind;
use crate::event::Event;
use crate::event::HostInfo;
use crate::notify::outbox::NotifyHandle;
use crate::notify::Alerting;
use crate::pipeline::sampler::Sampler;
use crate::pipeline::symbolize::Symbolizer;
use crate::store::spool;
use crate::store::{AlertRules, Durability, Store};
use crate::util::internal_log;

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

/// The default exit budget (see [`exit_deadline`]).
pub(crate) const DEFAULT_EXIT_BUDGET: Duration = Duration::from_secs(3);

/// When the exit that a panic started must be over: a process-wide mark,
/// in ms since [`EXIT_EPOCH`] (0: no panic is on its way out).
static PANIC_EXIT_MS: AtomicU64 = AtomicU64::new(0);
static EXIT_EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn epoch() -> Instant {
    *EXIT_EPOCH.get_or_init(Instant::now)
}

/// Called by the panic hook: the process may be on its way out, so the
/// exit budget starts now (unless an earlier panic's budget still runs).
/// Returns the deadline.
pub(crate) fn start_exit(budget: Duration) -> Instant {
    let current = exit_deadline(budget);
    let ms = u64::try_from(current.duration_since(epoch()).as_millis()).unwrap_or(u64::MAX);
    PANIC_EXIT_MS.fetch_max(ms.max(1), Ordering::SeqCst);
    current
}

/// The end of the exit budget: the one a panic started, else one starting
/// now. Everything done on the way out (the panic hook's waits, the guard's
/// flush, the writer's and the notify thread's drain) shares it. A drop
/// within one more budget after a panic's deadline belongs to that panic's
/// exit (it gets no time of its own); later ones (a thread panicked long
/// ago, the process went on) get a fresh budget.
pub(crate) fn exit_deadline(budget: Duration) -> Instant {
    let now = Instant::now();
    match PANIC_EXIT_MS.load(Ordering::SeqCst) {
        0 => now + budget,
        ms => {
            let d = epoch() + Duration::from_millis(ms);
            if now < d + budget {
                d
            } else {
                now + budget
            }
        }
    }
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
    pub(crate) prewarm_symbols: bool,
    /// Where events go.
    pub(crate) target: Target,
}

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
        AlertRules {
            channels: self
                .alerting
                .channels
                .iter()
                .map(|c| c.name.to_string())
                .collect(),
            policy: self.alerting.policy.clone(),
        }
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
            prewarm_symbols: false,
            target: Target::File,
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
    writer_idle: bool,
    hurry: bool,
    shutdown: bool,
    alive: bool,
    /// The writer has imported any spool left by earlier runs.
    ready: bool,
}

struct Shared {
    path: PathBuf,
    cfg: WorkerConfig,
    state: Mutex<State>,
    wake_writer: Condvar,
    progress: Condvar,
    dropped: AtomicU64,
    dropped_total: AtomicU64,
    /// Events left out by sampling, not yet added to the `counters` table.
    sampled: AtomicU64,
    /// Reports of a failure already recorded (see `dedupe`), not yet added
    /// to the `counters` table.
    deduplicated: AtomicU64,
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

    /// Counts events lost (queue full, writer gone, spool unwritable).
    fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.dropped_total.fetch_add(n, Ordering::Relaxed);
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
}

/// Counts the `fork()`s this process descends from (incremented in the
/// child by a `pthread_atfork` handler, which may only do async-signal-safe
/// work: one atomic add).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn watch_forks() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: registers a handler that only does an atomic add.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
            if rc != 0 {
                internal_log::report(
                    "fork",
                    &"pthread_atfork failed: a forked child will not record events",
                );
            }
        });
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("path", &self.shared.path)
            .finish()
    }
}

static WORKERS: Mutex<Vec<(PathBuf, Weak<Worker>)>> = Mutex::new(Vec::new());

/// Returns the writer of `path` (canonical), starting it if none runs.
/// The first opener's settings win for a file shared by several loggers.
pub(crate) fn for_path(path: &Path, cfg: &WorkerConfig) -> crate::Result<Arc<Worker>> {
    watch_forks();
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

/// Opens the store (or falls back to the spool) and starts a writer.
fn start(path: &Path, cfg: &WorkerConfig) -> crate::Result<Arc<Worker>> {
    if !matches!(cfg.target, Target::File) {
        return Ok(Arc::new(Worker::start(path.to_owned(), cfg.clone(), None)?));
    }
    let store = match crate::store::open(path, cfg.durability, cfg.busy_timeout, true) {
        Ok(mut s) => {
            s.set_alert_rules(cfg.rules());
            Some(s)
        }
        // Locked, read-only, full, unreadable; another program's file or a
        // schema this build cannot write (refused, left untouched): events
        // go to the spool and the writer keeps retrying the database. If
        // even the spool cannot be written, the error stands.
        Err(e) if e.is_refusal() || matches!(e.kind(), ErrorKind::Storage { .. }) => {
            internal_log::report("open", &internal_log::chain(&e));
            if let Err(io) = spool::ensure_dir(path) {
                internal_log::report("spool", &io);
                return Err(e.clone_kind_only());
            }
            None
        }
        Err(e) => return Err(e),
    };
    Ok(Arc::new(Worker::start(
        path.to_owned(),
        cfg.clone(),
        store,
    )?))
}

impl Worker {
    fn start(
        path: PathBuf,
        cfg: WorkerConfig,
        store: Option<Box<dyn Store>>,
    ) -> crate::Result<Worker> {
        let disabled = matches!(cfg.target, Target::Disabled);
        let notify = if cfg.alerting.channels.is_empty() || !matches!(cfg.target, Target::File) {
            None
        } else {
            Some(NotifyHandle::start(
                &path,
                cfg.durability,
                cfg.alerting.clone(),
            )?)
        };
        let shared = Arc::new(Shared {
            path,
            cfg,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                queued: 0,
                done: 0,
                writer_idle: false,
                hurry: false,
                shutdown: false,
                alive: !disabled,
                ready: disabled,
            }),
            wake_writer: Condvar::new(),
            progress: Condvar::new(),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            deduplicated: AtomicU64::new(0),
            notify,
        });
        if disabled {
            return Ok(Worker {
                shared,
                thread: Mutex::new(None),
                thread_id: std::thread::current().id(),
                generation: FORK_GENERATION.load(Ordering::SeqCst),
                successor: std::sync::OnceLock::new(),
            });
        }
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name("errsnap-writer".into())
            .spawn(move || writer_main(s, store))
            .map_err(|e| crate::Error::io("starting the errsnap-writer thread", e))?;
        let thread_id = handle.thread().id();
        Ok(Worker {
            shared,
            thread: Mutex::new(Some(handle)),
            thread_id,
            generation: FORK_GENERATION.load(Ordering::SeqCst),
            successor: std::sync::OnceLock::new(),
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

    pub(crate) fn exit_budget(&self) -> Duration {
        self.shared.cfg.exit_budget
    }

    pub(crate) fn durability(&self) -> Durability {
        self.shared.cfg.durability
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
            self.shared.count_dropped(1);
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
                            self.shared.count_dropped(1);
                            return None;
                        }
                    }
                }
            }
            if full(&st) {
                drop(st);
                self.shared.count_dropped(1);
                return None;
            }
        }
        if !st.alive {
            drop(st);
            self.shared.count_dropped(1);
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

    /// Waits until the event numbered `seq` (and all before it) was handled.
    pub(crate) fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        if self.is_stale() {
            return false;
        }
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.done >= seq && st.ready {
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

    /// Waits until everything queued so far was handled.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        if self.is_disabled() {
            return true;
        }
        if self.is_stale() {
            return false;
        }
        let target = self.shared.lock().queued;
        self.wait_for(target, timeout)
    }

    /// Waits until no alert is due on a usable channel (sent, or waiting
    /// for a later retry). `true` when there are no channels.
    pub(crate) fn flush_alerts(&self, timeout: Duration) -> bool {
        if self.is_stale() {
            return false;
        }
        match &self.shared.notify {
            Some(n) => {
                let k = n.kick();
                n.wait_idle(k, timeout)
            }
            None => true,
        }
    }

    /// On the way out: delivers due alerts, retrying failed deliveries whose
    /// backoff ends before `deadline`. `true` when nothing is left to do.
    pub(crate) fn drain_alerts(&self, deadline: Instant) -> bool {
        if self.is_stale() {
            return false;
        }
        match &self.shared.notify {
            Some(n) => n.drain_until(deadline),
            None => true,
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
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            st.hurry = true;
        }
        self.shared.wake_writer.notify_one();
        let timeout = self.shared.cfg.exit_budget;
        let deadline = exit_deadline(timeout);
        let mut st = self.shared.lock();
        while st.alive {
            match self.shared.wait_progress(st, deadline) {
                Some(g) => st = g,
                None => {
                    st = self.shared.lock();
                    break;
                }
            }
        }
        let (alive, pending) = (st.alive, st.queue.len());
        drop(st);
        if alive {
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
        } else if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // The thread has finished its loop; joining cannot block long,
            // and a panic inside it was already reported by the hook.
            let _ = handle.join();
        }
        if let Some(n) = &self.shared.notify {
            // Give due alerts (and retries that fit) the rest of the budget,
            // then stop; what is left stays in the outbox for the next start.
            n.drain_until(deadline);
            n.shutdown(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

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
}

/// How often automatic retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

fn writer_main(shared: Arc<Shared>, store: Option<Box<dyn Store>>) {
    let in_memory = matches!(shared.cfg.target, Target::Memory(_));
    let have_store = store.is_some() || in_memory;
    let mut w = Writer {
        shared: shared.clone(),
        store,
        last_open: Instant::now(),
        host: HostInfo::collect(),
        sampler: Sampler::new(),
        symbolizer: Symbolizer::new(),
        dedupe: crate::pipeline::dedupe::Dedupe::default(),
        spooled: !in_memory && (spool::has_pending(&shared.path) || !have_store),
        last_retention: None,
    };
    if have_store && !in_memory {
        w.on_open();
    }
    if shared.cfg.prewarm_symbols {
        w.symbolizer.prewarm();
    }
    {
        let mut st = shared.lock();
        st.ready = true;
        shared.progress.notify_all();
    }
    loop {
        let (batch, last_seq, stop) = w.next_batch();
        if !batch.is_empty() {
            let n = batch.len();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| w.handle(batch)));
            if result.is_err() {
                internal_log::report(
                    "writer",
                    &format_args!("a batch of {n} events was lost to a panic in the writer"),
                );
                if let Some(store) = w.store.as_mut() {
                    let _ = store.add_counter("writer_panics", 1);
                }
            }
        }
        {
            let mut st = shared.lock();
            st.done = st.done.max(last_seq);
            shared.progress.notify_all();
        }
        w.retention(false);
        if stop {
            break;
        }
    }
    w.retention(true);
    w.record_dropped();
    let mut st = shared.lock();
    st.alive = false;
    shared.progress.notify_all();
}

impl Writer {
    /// Blocks for the first event, lingers briefly to gather more, then takes
    /// up to a batch. Returns the batch, the last sequence number taken and
    /// whether the writer should stop.
    fn next_batch(&mut self) -> (Vec<PendingEvent>, u64, bool) {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let mut st = shared.lock();
        while st.queue.is_empty() && !st.shutdown {
            st.writer_idle = true;
            st.hurry = false;
            let wait = if self.spooled {
                RETRY_EVERY
            } else {
                Duration::from_secs(3600)
            };
            let (g, timeout) = shared
                .wake_writer
                .wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner());
            st = g;
            if timeout.timed_out() && st.queue.is_empty() && self.spooled {
                drop(st);
                self.import_spool();
                st = shared.lock();
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

    fn handle(&mut self, batch: Vec<PendingEvent>) {
        let snapshot = batch
            .iter()
            .any(|e| e.snapshot && e.store)
            .then(|| self.sampler.sample());
        let events: Vec<Event> = batch
            .into_iter()
            .filter_map(|e| {
                e.process(
                    &mut self.symbolizer,
                    WRITER_RESOLVE_BUDGET,
                    snapshot.as_ref(),
                )
            })
            .collect();
        let (events, repeats) = self.dedupe.apply(events);
        if repeats > 0 {
            self.shared
                .deduplicated
                .fetch_add(repeats, Ordering::Relaxed);
        }
        if !events.is_empty() {
            self.write(&events);
        }
        self.record_dropped();
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
            match crate::store::open(&self.shared.path, cfg.durability, cfg.busy_timeout, true) {
                Ok(mut s) => {
                    s.set_alert_rules(cfg.rules());
                    self.store = Some(s);
                    self.on_open();
                }
                Err(e) => internal_log::report("open", &internal_log::chain(&e)),
            }
        }
        self.store.as_deref_mut()
    }

    /// After (re)opening: record the host, import the spool.
    fn on_open(&mut self) {
        let host = self.host.clone();
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.register_host(&host, crate::util::time::now_ms()) {
                internal_log::report("host", &internal_log::chain(&e));
            }
        }
        self.import_spool();
    }

    /// Runs automatic retention at most once a minute, and at shutdown.
    fn retention(&mut self, now: bool) {
        let limits = self.shared.cfg.retention;
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
            if let Err(e) = store.enforce_retention(limits) {
                internal_log::report("retention", &internal_log::chain(&e));
            }
        }
    }

    fn kick_notifier(&self) {
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
        let result = match self.store() {
            Some(store) => store.insert_batch(events),
            None => {
                self.spool(events);
                return;
            }
        };
        match result {
            Ok(outcome) => {
                if outcome.alerts > 0 {
                    self.kick_notifier();
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
    fn on_store_error(&mut self, e: &crate::Error) {
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

    fn spool(&mut self, events: &[Event]) {
        match spool::append(&self.shared.path, events) {
            Ok(()) => self.spooled = true,
            Err(io) => {
                internal_log::report("spool", &format_args!("{} events lost: {io}", events.len()));
                self.shared.count_dropped(events.len() as u64);
            }
        }
    }

    fn import_spool(&mut self) {
        if !matches!(self.shared.cfg.target, Target::File) {
            return;
        }
        let Some(store) = self.store() else {
            self.spooled = true;
            return;
        };
        match spool::import(store) {
            Ok(imported) => {
                if imported.outcome.alerts > 0 {
                    self.kick_notifier();
                }
                self.spooled = spool::has_pending(&self.shared.path);
            }
            Err(e) => {
                self.spooled = true;
                internal_log::report("spool import", &internal_log::chain(&e));
                self.on_store_error(&e);
            }
        }
    }

    fn record_dropped(&mut self) {
        let shared = self.shared.clone();
        for (name, counter) in [
            ("dropped_events", &shared.dropped),
            ("sampled_out", &shared.sampled),
            ("deduplicated", &shared.deduplicated),
        ] {
            let n = counter.swap(0, Ordering::Relaxed);
            if n > 0 {
                let Some(store) = self.store() else {
                    counter.fetch_add(n, Ordering::Relaxed);
                    continue;
                };
                if let Err(e) = store.add_counter(name, n) {
                    counter.fetch_add(n, Ordering::Relaxed);
                    internal_log::report("counter", &internal_log::chain(&e));
                }
            }
        }
    }
}

/// Writes events with a connection of its own: the panic hook's path when
/// the writer is dead, stuck, or is the panicking thread itself. Falls back
/// to the spool when the database cannot be written.
pub(crate) fn write_directly(
    path: &Path,
    durability: Durability,
    rules: AlertRules,
    events: Vec<PendingEvent>,
    deadline: Instant,
) -> bool {
    let mut symbolizer = Symbolizer::new();
    let snapshot = Sampler::new().sample();
    // Symbols only while the exit budget allows (addresses are kept, and
    // `errsnap show --binary` resolves them later).
    let budget = HOOK_RESOLVE_BUDGET.min(deadline.saturating_duration_since(Instant::now()) / 2);
    let resolved: Vec<Event> = events
        .into_iter()
        .filter_map(|e| e.process(&mut symbolizer, budget, Some(&snapshot)))
        .collect();
    let stored = crate::store::open(path, durability, Duration::from_millis(250), false).and_then(
        |mut s| {
            s.set_alert_rules(rules);
            s.insert_batch(&resolved)
        },
    );
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
