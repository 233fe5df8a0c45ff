//! Pure data: what one recorded event holds. No I/O, no threads.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::level::Level;
use crate::snapshot::Snapshot;

/// A sortable unique event id (a ULID: 48 bits of milliseconds since the Unix
/// epoch, then 80 bits that are unique per process and increase within it).
///
/// Displayed as 26 Crockford base-32 characters; ids made later sort later
/// (within one process strictly, across processes by millisecond).
///
/// ```
/// let a = errsnap::EventId::generate(1_700_000_000_000);
/// let b = errsnap::EventId::generate(1_700_000_000_000);
/// assert!(a < b);
/// assert_eq!(a.to_string().len(), 26);
/// assert_eq!(a.to_string().parse::<errsnap::EventId>().unwrap(), a);
/// assert_eq!(a.timestamp_ms(), 1_700_000_000_000);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u128);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl EventId {
    /// Makes a new id for an event that happened at `timestamp_ms`.
    pub fn generate(timestamp_ms: i64) -> EventId {
        static PROCESS_BITS: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let process = *PROCESS_BITS.get_or_init(|| random_u64() & 0xFF_FFFF_FFFF);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFF_FFFF_FFFF;
        let ms = (timestamp_ms.max(0) as u128) & 0xFFFF_FFFF_FFFF;
        EventId((ms << 80) | ((process as u128) << 40) | n as u128)
    }

    /// The millisecond timestamp encoded in the id.
    pub fn timestamp_ms(self) -> i64 {
        (self.0 >> 80) as i64
    }

    /// The id as a 128-bit integer.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

/// 64 bits that differ from process to process (std's randomly keyed hasher,
/// fed with the pid and the time): no `rand` dependency needed.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i as i32;
            let v = if shift >= 0 {
                (self.0 >> shift) & 0x1F
            } else {
                (self.0 << (-shift)) & 0x1F
            };
            *slot = CROCKFORD[v as usize];
        }
        // All bytes come from the ASCII alphabet above.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// The error returned when a string is not a 26-character event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEventIdError {
    input: String,
}

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid event id {:?}: expected 26 Crockford base-32 characters",
            self.input
        )
    }
}

impl std::error::Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseEventIdError {
            input: s.chars().take(64).collect(),
        };
        if s.len() != 26 {
            return Err(err());
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let c = c.to_ascii_uppercase();
            let d = CROCKFORD.iter().position(|&x| x == c).ok_or_else(err)? as u128;
            if i == 0 && d > 7 {
                return Err(err());
            }
            v = (v << 5) | d;
        }
        Ok(EventId(v))
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
}

impl EventKind {
    /// The name stored in the database (`message`, `error`, `panic`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Error => "error",
            EventKind::Panic => "panic",
        }
    }

    /// Parses the stored name.
    pub fn from_name(s: &str) -> Option<EventKind> {
        match s {
            "message" => Some(EventKind::Message),
            "error" => Some(EventKind::Error),
            "panic" => Some(EventKind::Panic),
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
    /// Whether the frame is the application's own code (not std, not a
    /// dependency from the cargo registry, not errsnap).
    pub in_app: bool,
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
    /// The grouping key (hex).
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
            snapshot: None,
            alert_channels: Vec::new(),
            breadcrumbs: Vec::new(),
            redactions: 0,
            origin: false,
        }
    }
}

/// How deep user-supplied JSON (`extra`) may nest; deeper values are
/// replaced by [`DEPTH_MARKER`] where they enter, so capture, the spool
/// (serde_json refuses more than 128 levels) and the store agree, and no
/// recursive serialize or drop can overflow a thread's stack.
pub(crate) const MAX_JSON_DEPTH: usize = 64;

/// What replaces a value nested deeper than [`MAX_JSON_DEPTH`].
pub(crate) const DEPTH_MARKER: &str = "[errsnap: nested deeper than 64 levels]";

/// Cuts `v` at [`MAX_JSON_DEPTH`] levels (`v` itself is level 1), without
/// recursion. Returns how many values were replaced by the marker.
pub(crate) fn bound_json_depth(v: &mut serde_json::Value) -> u32 {
    use serde_json::Value;
    let mut cut = 0;
    let mut stack: Vec<(&mut Value, usize)> = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_JSON_DEPTH && (v.is_array() || v.is_object()) {
            drop_json(std::mem::replace(v, Value::String(DEPTH_MARKER.to_owned())));
            cut += 1;
            continue;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter_mut().map(|x| (x, depth + 1))),
            Value::Object(o) => stack.extend(o.values_mut().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    cut
}

/// [`bound_json_depth`] over every value of a map (each value is level 1).
pub(crate) fn bound_map_depth(m: &mut serde_json::Map<String, serde_json::Value>) -> u32 {
    m.values_mut().map(bound_json_depth).sum()
}

/// Drops a JSON value of any depth without recursion (serde_json's own
/// `Drop` recurses once per level).
pub(crate) fn drop_json(v: serde_json::Value) {
    use serde_json::Value;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.into_iter().map(|(_, x)| x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn nested(depth: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 1..depth {
            v = Value::Array(vec![v]);
        }
        v
    }

    fn depth_of(v: &Value) -> usize {
        let mut d = 1;
        let mut cur = v;
        while let Value::Array(a) = cur {
            match a.first() {
                Some(x) => {
                    d += 1;
                    cur = x;
                }
                None => break,
            }
        }
        d
    }

    #[test]
    fn deep_json_is_cut_at_the_limit_without_recursion() {
        // At the limit: untouched.
        let mut v = nested(MAX_JSON_DEPTH);
        assert_eq!(bound_json_depth(&mut v), 0);
        assert_eq!(v, nested(MAX_JSON_DEPTH));
        // One level more: the innermost container becomes the marker.
        let mut v = nested(MAX_JSON_DEPTH + 2);
        assert_eq!(bound_json_depth(&mut v), 1);
        // 64 levels of containers, then the marker in place of the 65th.
        assert_eq!(depth_of(&v), MAX_JSON_DEPTH + 1);
        let mut cur = &v;
        while let Value::Array(a) = cur {
            cur = &a[0];
        }
        assert_eq!(cur, &json!(DEPTH_MARKER));
        // 30,000 levels: no stack overflow, and the result survives a round
        // trip through serde_json (which refuses more than 128).
        let mut v = nested(30_000);
        assert_eq!(bound_json_depth(&mut v), 1);
        let text = serde_json::to_string(&v).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        // Objects count as levels too; siblings are each cut.
        let mut m = serde_json::Map::new();
        let mut o = json!({"k": nested(MAX_JSON_DEPTH + 1)});
        m.insert("a".into(), o.clone());
        m.insert("b".into(), json!([1, 2]));
        assert_eq!(bound_map_depth(&mut m), 1);
        assert_eq!(m["b"], json!([1, 2]));
        assert_eq!(bound_json_depth(&mut o), 1);
        assert_eq!(o["k"].as_array().map(Vec::len), Some(1));
    }
}
