//! `fork()` support: a child process never touches the parent's writer
//! (its thread does not exist there and its locks may be held forever),
//! and SQLite's global mutexes are held by the forking thread across the
//! fork, so the child's own connection never finds one locked for good.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::util::internal_log;

/// Counts the `fork()`s this process descends from (incremented in the
/// child by a `pthread_atfork` handler, which may only do async-signal-safe
/// work: one atomic add).
pub(super) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    crate::store::sqlite::fork::release();
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

pub(super) fn watch_forks() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: registers handlers that only take and release one
            // SQLite mutex and do an atomic add.
            let rc = unsafe {
                libc::pthread_atfork(
                    Some(crate::store::sqlite::fork::prepare),
                    Some(crate::store::sqlite::fork::release),
                    Some(after_fork_in_child),
                )
            };
            if rc != 0 {
                internal_log::report(
                    "fork",
                    &"pthread_atfork failed: a forked child will not record events",
                );
            }
        });
    }
}
