//! Small synchronization helpers shared by the writer and the notify thread,
//! and the thread identities the exit hook tells apart without thread-locals.

use std::sync::{Condvar, MutexGuard};
use std::time::Instant;

/// Waits on `cv` once, at most until `deadline`; `None` once the deadline
/// has passed. Poisoned locks are taken over (errsnap must keep working
/// after a panic elsewhere).
pub(crate) fn wait_until<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Instant,
) -> Option<MutexGuard<'a, T>> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    Some(
        cv.wait_timeout(guard, left)
            .unwrap_or_else(|p| p.into_inner())
            .0,
    )
}

/// The calling thread's `pthread_t` (0 where there is none): read from
/// the thread pointer, never from a thread-local.
pub(crate) fn current_pthread() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: pthread_self has no preconditions. (`pthread_t` is an
        // integer on Linux, a pointer elsewhere.)
        #[allow(clippy::unnecessary_cast)]
        let id = unsafe { libc::pthread_self() } as u64;
        id
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// The `pthread_t` of a thread errsnap started (0 where there is none).
pub(crate) fn pthread_of<T>(handle: &std::thread::JoinHandle<T>) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::thread::JoinHandleExt;
        // `pthread_t` is an integer on Linux, a pointer elsewhere.
        #[allow(clippy::unnecessary_cast)]
        let id = handle.as_pthread_t() as u64;
        id
    }
    #[cfg(not(unix))]
    {
        let _ = handle;
        0
    }
}
