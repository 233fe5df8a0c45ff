//! What the writer receives: an event as captured on the caller's thread,
//! not yet resolved ([`PendingEvent`]), and the per-logger rules it is
//! processed under ([`Context`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::capture::{CallSite, RawBacktrace, ThreadInfo};
use crate::event::{ChainLink, Event, EventId, EventKind};
use crate::level::Level;
use crate::pipeline::redact::Redactor;

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
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) before_save: Option<BeforeSave>,
    /// Whether a user's e-mail address is stored (else dropped).
    pub(crate) store_user_email: bool,
    /// Whether IP addresses (a user's, a request's peer) are stored.
    pub(crate) store_user_ip: bool,
    /// The bytes of attachments one event may carry.
    pub(crate) attachment_cap: u64,
    /// Whether a native crash's minidump is kept.
    pub(crate) crash_minidump: bool,
    /// The logger's breadcrumb ring (shared with it): the writer copies it
    /// into the crash file on the heartbeat.
    pub(crate) breadcrumbs:
        Arc<std::sync::Mutex<std::collections::VecDeque<crate::event::Breadcrumb>>>,
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
    /// The scope it was raised in (merged by the writer).
    pub(crate) scope: Option<Arc<crate::capture::scope::ScopeData>>,
    /// Blobs and files to keep with it (capped; files not read yet).
    pub(crate) attachments: Vec<crate::event::Attachment>,
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
            + self.scope.as_ref().map_or(0, |s| s.approx_bytes())
            + self
                .attachments
                .iter()
                .map(|a| a.queued_bytes(self.context.attachment_cap) + a.name().len() + 64)
                .sum::<usize>()
    }
}
