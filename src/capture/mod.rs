//! The caller's side: only what runs on the thread that reports (or in the
//! panic hook), before the hand-off to the queue.
//!
//! On the caller's thread errsnap only walks the stack (instruction pointers,
//! no symbols), reads the clock and a cached thread id, copies the message
//! and the error chain. Symbol resolution, the snapshot and the fingerprint
//! happen later on the writer thread (`pipeline`).

mod chain;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod fast_walk;
pub(crate) mod scope;
mod stack;
pub(crate) mod trace;

use std::sync::Arc;

use crate::event::Location;

#[cfg_attr(
    not(any(feature = "anyhow", feature = "eyre", feature = "tracing")),
    allow(unused_imports)
)]
pub(crate) use chain::error_chain;
pub(crate) use chain::{add_sources, display_text};
pub(crate) use stack::{RawBacktrace, MAX_FRAMES};

/// Reads the loaded modules' unwind tables for the callers' stack walk
/// when a walk asked for it (writer thread only; a no-op elsewhere).
pub(crate) fn refresh_unwind_tables() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fast_walk::refresh();
}

/// The name and id of the current thread, cached per thread.
#[derive(Clone)]
pub(crate) struct ThreadInfo {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) id: u64,
}

thread_local! {
    static THREAD_INFO: ThreadInfo = ThreadInfo::read();
}

impl ThreadInfo {
    fn read() -> ThreadInfo {
        let t = std::thread::current();
        ThreadInfo {
            name: t.name().map(Arc::from),
            id: os_thread_id().unwrap_or_else(|| rust_thread_id(&t)),
        }
    }

    /// The current thread's info; works during thread teardown too.
    pub(crate) fn current() -> ThreadInfo {
        THREAD_INFO
            .try_with(ThreadInfo::clone)
            .unwrap_or_else(|_| ThreadInfo::read())
    }
}

#[cfg(target_os = "linux")]
fn os_thread_id() -> Option<u64> {
    // SAFETY: a plain system call without arguments (not libc's `gettid`
    // wrapper, which glibc has only since 2.30).
    Some(unsafe { libc::syscall(libc::SYS_gettid) } as u64)
}

#[cfg(not(target_os = "linux"))]
fn os_thread_id() -> Option<u64> {
    None
}

fn rust_thread_id(t: &std::thread::Thread) -> u64 {
    // `ThreadId::as_u64` is unstable; its Debug form is `ThreadId(N)`.
    let s = format!("{:?}", t.id());
    s.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0)
}

/// Where the location came from: `#[track_caller]` gives a `'static` one
/// for free; panics and imports give an owned one.
#[derive(Debug, Clone)]
pub(crate) enum CallSite {
    Static(&'static std::panic::Location<'static>),
    Owned(Location),
}

impl CallSite {
    pub(crate) fn to_location(&self) -> Location {
        match self {
            CallSite::Static(l) => Location::from_std(l),
            CallSite::Owned(l) => l.clone(),
        }
    }
}

impl std::fmt::Debug for ThreadInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadInfo")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish()
    }
}
