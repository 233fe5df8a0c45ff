//! The stack walk on the caller's thread: instruction pointers only, no
//! symbols (the writer resolves them).

/// The most frames captured per event.
pub(crate) const MAX_FRAMES: usize = 128;

/// A stack walk without symbols: instruction pointers only.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawBacktrace {
    pub(crate) ips: Vec<usize>,
}

impl RawBacktrace {
    /// Walks the current stack (a few microseconds for ~30 frames).
    #[inline(never)]
    pub(crate) fn capture() -> RawBacktrace {
        let mut ips = Vec::with_capacity(48);
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if super::fast_walk::walk(&mut ips, MAX_FRAMES) && ips.len() > 1 {
            return RawBacktrace { ips };
        }
        ips.clear();
        walk(&mut |frame| {
            let ip = frame.ip() as usize;
            if ip != 0 {
                ips.push(ip);
            }
            ips.len() < MAX_FRAMES
        });
        RawBacktrace { ips }
    }
}

/// Walks the stack without the backtrace crate's global lock.
///
/// `backtrace::trace` takes that lock, and `backtrace::resolve` holds it
/// for the whole resolution on errsnap's writer thread: a caller that
/// walked its stack with `trace` waited behind the writer's symbolization
/// (47-440 ms measured, issue #16). The lock exists for unwinders that are
/// not thread-safe (Windows' dbghelp); on Unix the walk is libgcc's or
/// LLVM libunwind's `_Unwind_Backtrace`, which is thread-safe and shares no
/// state with symbol resolution.
#[cfg(unix)]
fn walk(cb: &mut dyn FnMut(&backtrace::Frame) -> bool) {
    // SAFETY: see above: on Unix the backtrace crate's unwinder is
    // `_Unwind_Backtrace`, safe to call from several threads at once and
    // independent of the resolver's caches; the callback does not unwind.
    unsafe { backtrace::trace_unsynchronized(cb) }
}

/// Elsewhere (Windows' dbghelp is not thread-safe) the lock stays.
#[cfg(not(unix))]
fn walk(cb: &mut dyn FnMut(&backtrace::Frame) -> bool) {
    backtrace::trace(cb)
}
