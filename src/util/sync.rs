//! Small synchronization helpers shared by the writer and the notify thread.

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
