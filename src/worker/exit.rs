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
