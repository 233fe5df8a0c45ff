//! The caller's side: only what runs on the thread that reports (or in the
//! panic hook), before the hand-off to the queue.
//!
//! On the caller's thread errsnap only walks the stack (instruction pointers,
//! no symbols), reads the clock and a cached thread id, copies the message
//! and the error chain. Symbol resolution, the snapshot and the fingerprint
//! happen later on the writer thread (`pipeline`).

mod chain;
mod stack;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::event::{ChainLink, Event, EventId, EventKind, Location};
use crate::level::Level;

#[cfg_attr(
    not(any(feature = "anyhow", feature = "eyre", feature = "tracing")),
    allow(unused_imports)
)]
pub(crate) use chain::error_chain;
pub(crate) use chain::{add_sources, display_text};
pub(crate) use stack::{RawBacktrace, MAX_FRAMES};

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
    // SAFETY: gettid has no preconditions.
    Some(unsafe { libc::gettid() } as u64)
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

/// A hook that may change an event, or drop it by returning `false`.
pub(crate) type BeforeSave = Arc<dyn Fn(&mut Event) -> bool + Send + Sync>;

/// The per-logger context handed to the writer with each event (shared,
/// not cloned).
pub(crate) struct Context {
    pub(crate) logger: String,
    pub(crate) app_name: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) redactor: Arc<crate::pipeline::redact::Redactor>,
    pub(crate) before_save: Option<BeforeSave>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("logger", &self.logger)
            .field("before_save", &self.before_save.is_some())
            .finish_non_exhaustive()
    }
}

/// An event as handed to the writer: captured, not yet resolved.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub(crate) id: EventId,
    pub(crate) timestamp_ms: i64,
    pub(crate) context: Arc<Context>,
    pub(crate) level: Level,
    pub(crate) kind: EventKind,
    pub(crate) message: String,
    pub(crate) chain: Vec<ChainLink>,
    pub(crate) call_site: Option<CallSite>,
    pub(crate) thread: ThreadInfo,
    pub(crate) backtrace: Option<RawBacktrace>,
    pub(crate) snapshot: bool,
    /// Alert channels the event is routed to.
    pub(crate) alert_channels: Vec<String>,
    /// Whether the event is stored (else only printed to the console).
    pub(crate) store: bool,
    /// Whether the event is printed to stderr by the writer.
    pub(crate) console: bool,
    pub(crate) breadcrumbs: Vec<crate::event::Breadcrumb>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    /// Custom grouping parts.
    pub(crate) fingerprint: Option<Vec<String>>,
    /// The error's own backtrace as text (replaces `backtrace`).
    pub(crate) origin: Option<String>,
}

impl std::fmt::Debug for ThreadInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadInfo")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish()
    }
}

impl PendingEvent {
    /// Rough heap size, for the queue's byte budget.
    pub(crate) fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.message.len()
            + self
                .chain
                .iter()
                .map(|c| c.message.len() + 32)
                .sum::<usize>()
            + self.backtrace.as_ref().map_or(0, |b| b.ips.len() * 8)
            + self
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
            + self.extra.len() * 64
            + self
                .breadcrumbs
                .iter()
                .map(|b| b.message.len() + b.category.len() + 48)
                .sum::<usize>()
            + self.origin.as_ref().map_or(0, String::len)
            + self
                .fingerprint
                .as_ref()
                .map_or(0, |f| f.iter().map(|p| p.len() + 24).sum())
    }
}
