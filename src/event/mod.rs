//! Pure data: what one recorded event holds. No I/O, no threads.

pub(crate) mod alert;
pub(crate) mod attachment;
pub(crate) mod context;
pub(crate) mod id;
mod json;
pub(crate) mod sample;
pub(crate) mod snapshot;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub(crate) use alert::AlertPolicy;
pub(crate) use alert::{Alert, AlertFrame, AlertKind};
pub(crate) use attachment::Attachment;
pub use attachment::StoredAttachment;
pub(crate) use attachment::{clean_name, Source as AttachmentSource};
pub(crate) use context::EventContext;
pub use context::Request;
pub(crate) use context::User;
pub(crate) use id::random_u64;
pub(crate) use id::EventId;
pub use id::ParseEventIdError;
pub(crate) use json::{bound_json_depth, bound_map_depth, drop_json};
pub(crate) use snapshot::{CgroupStats, HostInfo, HostStats, ProcessStats, Snapshot};

use crate::level::Level;

/// The part of a custom fingerprint that stands for errsnap's own one (see
/// [`PushOptions::fingerprint`](crate::PushOptions::fingerprint)).
pub const DEFAULT_FINGERPRINT: &str = "{{ default }}";

/// What produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EventKind {
    /// A message logged with [`EventLogger::error`](crate::EventLogger::error) and friends.
    Message,
    /// An error value captured with its `source()` chain.
    Error,
    /// A panic caught by the panic hook or [`EventLogger::catch`](crate::EventLogger::catch).
    Panic,
    /// A native crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP)
    /// recorded by the crash handler and imported at the next start.
    Crash,
}

impl EventKind {
    /// The name stored in the database (`message`, `error`, `panic`,
    /// `crash`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Error => "error",
            EventKind::Panic => "panic",
            EventKind::Crash => "crash",
        }
    }

    /// Parses the stored name.
    pub fn from_name(s: &str) -> Option<EventKind> {
        match s {
            "message" => Some(EventKind::Message),
            "error" => Some(EventKind::Error),
            "panic" => Some(EventKind::Panic),
            "crash" => Some(EventKind::Crash),
            _ => None,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A source location (file, line, column), from `#[track_caller]` or a panic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Source file path as the compiler saw it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Location {
    pub(crate) fn from_std(l: &std::panic::Location<'_>) -> Location {
        Location {
            file: l.file().to_owned(),
            line: l.line(),
            column: l.column(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One link of an error chain: the error's `Display` text and, for the
/// outermost error when it is known, its type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// `Display` of this error.
    pub message: String,
    /// Type name (only known for the outermost error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
}

/// One resolved stack frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Demangled function name without the hash suffix.
    pub function: Option<String>,
    /// Source file.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// Instruction pointer in this process.
    pub address: u64,
    /// Path of the binary or shared library holding the address.
    pub module: Option<String>,
    /// `address` minus the module's load address: stable across runs, so the
    /// frame can be resolved later against the same binary.
    pub module_offset: Option<u64>,
    /// The module's GNU build-id (lowercase hex): identifies the exact
    /// binary, so `errsnap symbolicate` resolves the frame only against a
    /// file with the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Whether the frame is the application's own code (not std, not a
    /// dependency from the cargo registry, not errsnap).
    pub in_app: bool,
}

impl Frame {
    /// A frame known by its name and place only, without an address: read
    /// back from a store or an alert, or made by a test.
    pub(crate) fn named(
        function: Option<String>,
        file: Option<String>,
        line: Option<u32>,
        in_app: bool,
    ) -> Frame {
        Frame {
            function,
            file,
            line,
            column: None,
            address: 0,
            module: None,
            module_offset: None,
            build_id: None,
            in_app,
        }
    }
}

/// A lower-level record kept in a ring and attached to the next captured
/// event, so an error comes with what led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breadcrumb {
    /// When (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// Its level.
    pub level: Level,
    /// Where it came from (a `tracing`/`log` target, or your own category).
    pub category: String,
    /// What it said.
    pub message: String,
}

/// One recorded event, as stored.
///
/// Events are made by [`EventLogger`](crate::EventLogger); the writer thread
/// resolves the backtrace, takes the snapshot and computes the fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub(crate) id: EventId,
    pub(crate) timestamp_ms: i64,
    pub(crate) logger: String,
    pub(crate) level: Level,
    pub(crate) kind: EventKind,
    pub(crate) message: String,
    pub(crate) chain: Vec<ChainLink>,
    pub(crate) location: Option<Location>,
    pub(crate) thread_name: Option<String>,
    pub(crate) thread_id: u64,
    pub(crate) pid: u32,
    pub(crate) app_name: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    /// Shared with every event of the same call stack.
    pub(crate) frames: std::sync::Arc<[Frame]>,
    /// The backtrace's storage key, when known (computed once per stack).
    #[serde(skip)]
    pub(crate) backtrace_hash: Option<std::sync::Arc<str>>,
    /// Whether symbol resolution was complete (false: some frames hold only
    /// addresses).
    pub(crate) symbols_resolved: bool,
    pub(crate) fingerprint: String,
    /// Whether the code chose the fingerprint (`PushOptions::fingerprint`):
    /// `errsnap regroup` leaves such events where they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) custom_fingerprint: bool,
    /// Its fingerprints under the store's earlier grouping configurations,
    /// while the store is in transition (`pipeline::grouping`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) earlier_fingerprints: Vec<String>,
    pub(crate) snapshot: Option<Snapshot>,
    /// The alert channels this event is routed to.
    #[serde(default)]
    pub(crate) alert_channels: Vec<String>,
    /// What led to it (oldest first).
    #[serde(default)]
    pub(crate) breadcrumbs: Vec<Breadcrumb>,
    /// How many secrets redaction replaced.
    #[serde(default)]
    pub(crate) redactions: u32,
    /// Whether `frames` is the error's own backtrace (where it was made)
    /// rather than the stack where it was reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) origin: bool,
    /// The transaction, user and request (from the scope it was raised in).
    #[serde(default, skip_serializing_if = "EventContext::is_empty")]
    pub(crate) context: EventContext,
    /// Blobs kept with it (stored in their own table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) attachments: Vec<StoredAttachment>,
}

impl Event {
    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }
    /// When it happened, in milliseconds since the Unix epoch (UTC).
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }
    /// The logger (table) name.
    pub fn logger(&self) -> &str {
        &self.logger
    }
    /// Severity.
    pub fn level(&self) -> Level {
        self.level
    }
    /// What produced it.
    pub fn kind(&self) -> EventKind {
        self.kind
    }
    /// The message (for an error: its `Display`; for a panic: the payload).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The error chain, outermost first (empty for messages).
    pub fn chain(&self) -> &[ChainLink] {
        &self.chain
    }
    /// Where it was raised.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
    /// Name of the thread that raised it.
    pub fn thread_name(&self) -> Option<&str> {
        self.thread_name.as_deref()
    }
    /// The operating system's id of that thread where known, else Rust's.
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }
    /// Process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// Application name, if configured.
    pub fn app_name(&self) -> Option<&str> {
        self.app_name.as_deref()
    }
    /// Release, if configured.
    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }
    /// Environment (`production`, ...), if configured.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }
    /// Tags (logger tags merged with per-event tags).
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
    /// Extra structured data.
    pub fn extra(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extra
    }
    /// The backtrace, innermost frame first, errsnap's and std's own
    /// capture/panic frames trimmed off.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
    /// The grouping key (hex). In a `before_save` hook, the key of the
    /// fields as captured; the stored one is computed after redaction (and
    /// the settings file's grouping rules).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    /// The process and host picture, if one was taken.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// The alert channels the event was routed to (`slack`, `email`, ...).
    pub fn alert_channels(&self) -> &[String] {
        &self.alert_channels
    }
    /// The breadcrumbs attached to it, oldest first.
    pub fn breadcrumbs(&self) -> &[Breadcrumb] {
        &self.breadcrumbs
    }
    /// How many replacements redaction made (0 before it ran).
    pub fn redactions(&self) -> u32 {
        self.redactions
    }
    /// The transaction (for a web request: `METHOD /route`), from the
    /// scope the event was raised in.
    pub fn transaction(&self) -> Option<&str> {
        self.context.transaction.as_deref()
    }
    /// The user, from the scope the event was raised in (e-mail and IP
    /// only when their storing is enabled).
    pub fn user(&self) -> Option<&User> {
        self.context.user.as_ref()
    }
    /// The HTTP request it was raised while handling.
    pub fn request(&self) -> Option<&Request> {
        self.context.request.as_ref()
    }
    /// Its attachments (what a cap dropped has no data).
    pub fn attachments(&self) -> &[StoredAttachment] {
        &self.attachments
    }
    /// The user, to change or remove in a `before_save` hook.
    pub fn user_mut(&mut self) -> &mut Option<User> {
        &mut self.context.user
    }
    /// The request, to change or remove in a `before_save` hook.
    pub fn request_mut(&mut self) -> &mut Option<Request> {
        &mut self.context.request
    }
    /// The attachments, to remove in a `before_save` hook.
    pub fn attachments_mut(&mut self) -> &mut Vec<StoredAttachment> {
        &mut self.attachments
    }
    /// The message, to change in a `before_save` hook.
    pub fn message_mut(&mut self) -> &mut String {
        &mut self.message
    }
    /// The tags, to change in a `before_save` hook.
    pub fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.tags
    }
    /// The extra data, to change in a `before_save` hook.
    pub fn extra_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        &mut self.extra
    }
}

#[cfg(test)]
impl Event {
    /// A plain error event, for unit tests.
    pub(crate) fn sample(message: &str) -> Event {
        let now = 1_700_000_000_000;
        Event {
            id: EventId::generate(now),
            timestamp_ms: now,
            logger: "unit".into(),
            level: Level::Error,
            kind: EventKind::Message,
            message: message.into(),
            chain: Vec::new(),
            location: None,
            thread_name: None,
            thread_id: 1,
            pid: std::process::id(),
            app_name: None,
            release: None,
            environment: None,
            tags: BTreeMap::new(),
            extra: serde_json::Map::new(),
            frames: std::sync::Arc::from(Vec::new()),
            backtrace_hash: None,
            symbols_resolved: true,
            fingerprint: "0123456789abcdef".into(),
            custom_fingerprint: false,
            earlier_fingerprints: Vec::new(),
            snapshot: None,
            alert_channels: Vec::new(),
            breadcrumbs: Vec::new(),
            redactions: 0,
            origin: false,
            context: EventContext::default(),
            attachments: Vec::new(),
        }
    }
}
