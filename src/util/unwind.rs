//! Running user code (a `Display` or `Debug` impl) on errsnap's behalf.

use std::cell::Cell;

thread_local! {
    /// Set while errsnap runs user code it guards: a panic there is caught
    /// and replaced by a placeholder, so the panic hook must not record it
    /// as a panic of the program.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Set when the panic hook recorded a panic on this thread; read by
    /// `EventLogger::catch`, which must not record it twice.
    static RECORDED: Cell<bool> = const { Cell::new(false) };
}

/// Notes that the panic hook recorded a panic on this thread.
pub(crate) fn mark_recorded() {
    let _ = RECORDED.try_with(|r| r.set(true));
}

/// Clears and returns the "the hook recorded a panic here" flag.
pub(crate) fn take_recorded() -> bool {
    RECORDED.try_with(|r| r.replace(false)).unwrap_or(false)
}

/// Runs `f`; a panic in it is caught (`None`). The panic hook chain still
/// runs (std calls it before unwinding) and sees [`is_guarded`].
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    let was = GUARDED.try_with(|g| g.replace(true)).unwrap_or(false);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    let _ = GUARDED.try_with(|g| g.set(was));
    r
}

/// Whether the current thread runs user code inside [`guarded`].
pub(crate) fn is_guarded() -> bool {
    GUARDED.try_with(Cell::get).unwrap_or(false)
}
