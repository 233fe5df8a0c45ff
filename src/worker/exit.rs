//! The exit budget: one deadline shared by everything done on the way out
//! (the panic hook's waits, the guard's flush, the writer's and the notify
//! thread's drain).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// Registers [`drain_all`] with `atexit`, once per process (when
/// the first writer starts): `std::process::exit`, and a return from
/// `main` while a logger is still alive, then lose nothing handed over.
pub(crate) fn register_exit_hook() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        #[cfg(unix)]
        {
            extern "C" fn at_exit() {
                // Nothing may unwind out of an `extern "C"` function (and
                // with panic = "abort" a panic here would be a fake crash):
                // every step below handles its failure, and this is the
                // last guard.
                let _ = std::panic::catch_unwind(drain_all);
            }
            // SAFETY: registers a function with no arguments that never
            // unwinds (caught above).
            unsafe { libc::atexit(at_exit) };
        }
    });
}

/// At the process's exit (`atexit`, or a termination signal with
/// `drain_on_termination`): every writer still running commits its queue
/// and delivers the alerts of this process's events within the exit
/// budget, puts back a delivery cut short, and records its run as exited;
/// what does not fit waits in the outbox.
///
/// Touches no thread-local (they may be gone by now), starts no thread,
/// and only waits on the writers (which wait on their notify threads)
/// until the budget's deadline. Does nothing in a forked child (its
/// workers are the parent's, see `fork`) or when `exit` is called from one
/// of errsnap's own threads (a `before_save` hook, a custom channel):
/// those would wait for themselves.
pub(crate) fn drain_all() {
    let workers = super::running_workers();
    let me = crate::util::sync::current_pthread();
    if workers.iter().any(|w| w.runs_on(me)) {
        return;
    }
    let live: Vec<_> = workers.into_iter().filter(|w| !w.is_stale()).collect();
    let Some(budget) = live.iter().map(|w| w.exit_budget()).max() else {
        return;
    };
    let deadline = exit_deadline(budget);
    for w in &live {
        w.request_stop(deadline);
    }
    for w in &live {
        w.wait_stopped(deadline);
    }
}

impl super::Worker {
    /// Whether `pthread` is this worker's writer or notify thread.
    fn runs_on(&self, pthread: u64) -> bool {
        pthread != 0
            && (self.pthread == pthread
                || self
                    .shared
                    .notify
                    .as_ref()
                    .is_some_and(|n| n.pthread() == pthread))
    }
}
