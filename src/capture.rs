//! The caller's side (the hot path) and the writer's resolution step.
//!
//! On the caller's thread errsnap only walks the stack (instruction pointers,
//! no symbols), reads the clock and a cached thread id, and copies the
//! message. Symbol resolution, the snapshot and the fingerprint happen later
//! on the writer thread ([`Symbolizer`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::{ChainLink, Event, EventId, EventKind, Frame, Location};
use crate::fingerprint;
use crate::internal_log;
use crate::level::Level;
use crate::snapshot::Snapshot;

/// The most frames captured per event.
pub(crate) const MAX_FRAMES: usize = 128;

/// Milliseconds since the Unix epoch (UTC).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
        backtrace::trace(|frame| {
            let ip = frame.ip() as usize;
            if ip != 0 {
                ips.push(ip);
            }
            ips.len() < MAX_FRAMES
        });
        RawBacktrace { ips }
    }
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
    fn to_location(&self) -> Location {
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
    pub(crate) redactor: Arc<crate::redact::Redactor>,
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

/// The most links an error chain keeps; a longer chain ends with a marker
/// link ("... 12 more causes").
pub(crate) const MAX_CHAIN: usize = 64;
/// How far past [`MAX_CHAIN`] the remaining causes are counted (a `source()`
/// that loops would never end).
const COUNT_BEYOND: usize = 10_000;

/// What a `Display` impl that panicked is recorded as.
pub(crate) const DISPLAY_PANICKED: &str = "<Display panicked>";

/// `e.to_string()`, or [`DISPLAY_PANICKED`] if the impl panics.
pub(crate) fn display_text(e: &dyn std::fmt::Display) -> String {
    crate::panic::guarded(|| e.to_string()).unwrap_or_else(|| DISPLAY_PANICKED.to_owned())
}

/// Walks `err.source()` and returns the chain, outermost first.
#[cfg_attr(not(any(feature = "anyhow", feature = "eyre")), allow(dead_code))]
pub(crate) fn error_chain(
    err: &(dyn std::error::Error + 'static),
    type_name: Option<&str>,
) -> Vec<ChainLink> {
    let mut chain = Vec::new();
    chain.push(ChainLink {
        message: display_text(err),
        type_name: type_name.map(str::to_owned),
    });
    add_sources(err.source(), &mut chain);
    chain
}

/// Appends `first` and its sources to `chain`, up to [`MAX_CHAIN`] links,
/// then a marker link counting the causes left out.
pub(crate) fn add_sources(
    first: Option<&(dyn std::error::Error + 'static)>,
    chain: &mut Vec<ChainLink>,
) {
    let mut cur = first;
    while let Some(e) = cur {
        if chain.len() >= MAX_CHAIN {
            let mut more = 0usize;
            while let Some(e) = cur {
                if more >= COUNT_BEYOND {
                    break;
                }
                more += 1;
                cur = crate::panic::guarded(|| e.source()).flatten();
            }
            let n = if cur.is_some() {
                format!("{more}+")
            } else {
                more.to_string()
            };
            let causes = if more == 1 { "cause" } else { "causes" };
            chain.push(ChainLink {
                message: format!("... {n} more {causes}"),
                type_name: None,
            });
            return;
        }
        chain.push(ChainLink {
            message: display_text(e),
            type_name: None,
        });
        cur = crate::panic::guarded(|| e.source()).flatten();
    }
}

/// Function-name prefixes of frames that belong to errsnap, the backtrace
/// crate or std's panic machinery: trimmed off the top of a backtrace.
const INTERNAL_PREFIXES: &[&str] = &[
    "backtrace::",
    "anyhow::",
    "<anyhow::",
    "eyre::",
    "<eyre::",
    "std::backtrace::",
    "std::backtrace_rs::",
    "errsnap::",
    "<errsnap::",
    "std::panicking",
    "core::panicking",
    "std::panic::",
    "core::panic::",
    "std::sys::backtrace",
    "std::sys_common::backtrace",
    "std::rt::begin_panic",
    "rust_begin_unwind",
    "__rustc::",
    "core::option::unwrap_failed",
    "core::option::expect_failed",
    "core::result::unwrap_failed",
    "<alloc::boxed::Box<F,A> as core::ops::function::Fn",
];

/// Prefixes of code that is never the application's own.
const NOT_IN_APP_PREFIXES: &[&str] = &[
    "anyhow::",
    "<anyhow::",
    "eyre::",
    "<eyre::",
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "backtrace::",
    "errsnap::",
    "<errsnap::",
    "test::",
    "__rust",
    "__libc",
    "_start",
    "__GI_",
    "start_thread",
    "clone",
];

fn is_internal(f: &Frame) -> bool {
    f.function.as_deref().is_some_and(|n| {
        INTERNAL_PREFIXES.iter().any(|p| n.starts_with(p))
            // `<E as anyhow::context::ext::StdError>::ext_context`,
            // `<Result<T, E> as eyre::WrapErr<..>>::wrap_err`.
            || n.contains(" as anyhow::")
            || n.contains(" as eyre::")
            // errsnap's extension traits: `<Result<T, E> as
            // errsnap::ext::ResultExt<T, E>>::report`.
            || n.contains(" as errsnap::")
    })
}

pub(crate) fn is_in_app(function: Option<&str>, file: Option<&str>) -> bool {
    let Some(name) = function else { return false };
    // `main` alone is the C entry point rustc generates, not the crate's.
    if name == "main" || NOT_IN_APP_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    match file {
        Some(f) => {
            !(f.starts_with("/rustc/")
                || f.contains("/.cargo/registry/")
                || f.contains("/.cargo/git/")
                || f.contains("/rustlib/"))
        }
        None => true,
    }
}

#[derive(Clone)]
struct Sym {
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
}

/// A backtrace resolved, trimmed, its paths redacted and its storage key
/// computed: done once per distinct stack, shared by every event from it.
#[derive(Debug)]
pub(crate) struct ResolvedTrace {
    pub(crate) frames: Arc<[Frame]>,
    pub(crate) hash: Arc<str>,
    pub(crate) complete: bool,
    pub(crate) redactions: u32,
}

/// Resolves addresses to symbols on the writer thread, with a cache keyed by
/// instruction pointer and one keyed by the whole stack (both bounded:
/// cleared when they grow past their limit).
pub(crate) struct Symbolizer {
    cache: HashMap<usize, Arc<[Sym]>>,
    modules: HashMap<usize, Option<(Arc<str>, usize)>>,
    traces: HashMap<(u64, usize), Arc<ResolvedTrace>>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("cached", &self.cache.len())
            .finish()
    }
}

const SYMBOL_CACHE_LIMIT: usize = 50_000;

impl Symbolizer {
    pub(crate) fn new() -> Symbolizer {
        Symbolizer {
            cache: HashMap::new(),
            modules: HashMap::new(),
            traces: HashMap::new(),
        }
    }

    /// Loads the symbol tables of the program now (the first resolution in a
    /// process is the slow one), by resolving this very stack.
    pub(crate) fn prewarm(&mut self) {
        let raw = RawBacktrace::capture();
        let _ = self.resolve(&raw, Duration::from_secs(30));
    }

    /// The processed backtrace for `raw`, from the cache when this stack
    /// (under this redactor) was seen before. Incomplete resolutions (the
    /// budget ran out) are not cached, so a later event can do better.
    pub(crate) fn trace(
        &mut self,
        raw: &RawBacktrace,
        budget: Duration,
        redactor: &Arc<crate::redact::Redactor>,
    ) -> Arc<ResolvedTrace> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        raw.ips.hash(&mut h);
        let key = (h.finish(), Arc::as_ptr(redactor) as usize);
        if let Some(t) = self.traces.get(&key) {
            return t.clone();
        }
        let (mut frames, complete) = self.resolve(raw, budget);
        let redactions = redactor.frames(&mut frames);
        let hash: Arc<str> = Arc::from(crate::store::backtrace_hash(&frames));
        let trace = Arc::new(ResolvedTrace {
            frames: Arc::from(frames),
            hash,
            complete,
            redactions,
        });
        if complete {
            if self.traces.len() > SYMBOL_CACHE_LIMIT / 10 {
                self.traces.clear();
            }
            self.traces.insert(key, trace.clone());
        }
        trace
    }

    /// Resolves the frames, trimming errsnap's and std's own frames off the
    /// top. Stops resolving when `budget` runs out (the rest keep only their
    /// addresses); returns the frames and whether all were resolved.
    pub(crate) fn resolve(&mut self, raw: &RawBacktrace, budget: Duration) -> (Vec<Frame>, bool) {
        if self.cache.len() > SYMBOL_CACHE_LIMIT {
            self.cache.clear();
            self.modules.clear();
        }
        let start = Instant::now();
        let mut complete = true;
        let mut frames = Vec::with_capacity(raw.ips.len());
        for (i, &ip) in raw.ips.iter().enumerate() {
            let module = self.module_of(ip);
            let module_offset = module.as_ref().map(|(_, base)| (ip - base) as u64);
            let module_name = module.map(|(m, _)| m.to_string());
            let syms = match self.cache.get(&ip) {
                Some(s) => Some(s.clone()),
                None if start.elapsed() < budget => {
                    let s = resolve_ip(ip, i == 0);
                    self.cache.insert(ip, s.clone());
                    Some(s)
                }
                None => None,
            };
            match syms {
                Some(syms) if !syms.is_empty() => {
                    for s in syms.iter() {
                        frames.push(Frame {
                            in_app: is_in_app(s.function.as_deref(), s.file.as_deref()),
                            function: s.function.clone(),
                            file: s.file.clone(),
                            line: s.line,
                            column: s.column,
                            address: ip as u64,
                            module: module_name.clone(),
                            module_offset,
                        });
                    }
                }
                other => {
                    if other.is_none() {
                        complete = false;
                    }
                    frames.push(Frame {
                        function: None,
                        file: None,
                        line: None,
                        column: None,
                        address: ip as u64,
                        module: module_name,
                        module_offset,
                        in_app: false,
                    });
                }
            }
        }
        (trim_internal(frames), complete)
    }

    #[cfg(unix)]
    fn module_of(&mut self, ip: usize) -> Option<(Arc<str>, usize)> {
        if let Some(m) = self.modules.get(&ip) {
            return m.clone();
        }
        // SAFETY: dladdr only reads loader tables and writes into `info`.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::dladdr(ip as *const libc::c_void, &mut info) } != 0;
        let m = if ok && !info.dli_fname.is_null() {
            // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
            let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
            Some((
                Arc::from(name.to_string_lossy().as_ref()),
                info.dli_fbase as usize,
            ))
        } else {
            None
        };
        self.modules.insert(ip, m.clone());
        m
    }

    #[cfg(not(unix))]
    fn module_of(&mut self, _ip: usize) -> Option<(Arc<str>, usize)> {
        None
    }
}

fn resolve_ip(ip: usize, first: bool) -> Arc<[Sym]> {
    // A return address points after the call: look up the call itself.
    let addr = if first { ip } else { ip.saturating_sub(1) };
    let mut out = Vec::new();
    backtrace::resolve(addr as *mut std::ffi::c_void, |sym| {
        out.push(Sym {
            function: sym.name().map(|n| format!("{n:#}")),
            file: sym.filename().map(|p| p.to_string_lossy().into_owned()),
            line: sym.lineno(),
            column: sym.colno(),
        });
    });
    Arc::from(out)
}

/// Drops the leading frames that belong to errsnap, the stack walker or std's
/// panic machinery: everything up to the last such frame that comes before
/// the first in-app frame. A stripped binary (no names) keeps all frames.
pub(crate) fn trim_internal(frames: Vec<Frame>) -> Vec<Frame> {
    let last_internal = frames
        .iter()
        .take_while(|f| !f.in_app)
        .enumerate()
        .filter(|(_, f)| is_internal(f))
        .map(|(i, _)| i)
        .last();
    match last_internal {
        Some(i) => frames.into_iter().skip(i + 1).collect(),
        None => frames,
    }
}

impl PendingEvent {
    /// The writer's whole treatment of one event: resolve, the logger's
    /// `before_save` hook, redaction, console output. Returns the event to
    /// store, or `None` (console only, or dropped by the hook).
    pub(crate) fn process(
        self,
        symbolizer: &mut Symbolizer,
        budget: Duration,
        snapshot: Option<&Snapshot>,
    ) -> Option<Event> {
        let context = self.context.clone();
        let (store, console) = (self.store, self.console);
        let mut ev = self.resolve(symbolizer, budget, snapshot);
        let frame_redactions = ev.redactions;
        if let Some(hook) = &context.before_save {
            let keep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&mut ev)));
            match keep {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => {
                    // A panicking hook must not cost the event.
                    ev.tags
                        .insert("errsnap.before_save".into(), "panicked".into());
                }
            }
        }
        // The hook may have added data: bound it like data from the caller.
        crate::event::bound_map_depth(&mut ev.extra);
        ev.redactions = frame_redactions + context.redactor.event(&mut ev);
        if console {
            print_console(&ev);
        }
        store.then_some(ev)
    }

    /// Turns the captured event into a stored one (writer side).
    pub(crate) fn resolve(
        self,
        symbolizer: &mut Symbolizer,
        budget: Duration,
        snapshot: Option<&Snapshot>,
    ) -> Event {
        let trace = match (&self.origin, &self.backtrace) {
            (Some(text), _) => Some(crate::origin::trace(text, &self.context.redactor)),
            (None, Some(raw)) => Some(symbolizer.trace(raw, budget, &self.context.redactor)),
            (None, None) => None,
        };
        let (frames, symbols_resolved, backtrace_hash, redactions): (Arc<[Frame]>, bool, _, u32) =
            match &trace {
                Some(t) if !t.frames.is_empty() => (
                    t.frames.clone(),
                    t.complete,
                    Some(t.hash.clone()),
                    t.redactions,
                ),
                Some(t) => (t.frames.clone(), t.complete, None, 0),
                None => (Arc::from(Vec::new()), true, None, 0),
            };
        let location = self.call_site.as_ref().map(CallSite::to_location);
        let logger = self.context.logger.clone();
        let mut fingerprint = fingerprint::fingerprint(
            &logger,
            self.kind,
            &self.message,
            &self.chain,
            &frames,
            location.as_ref(),
        );
        if let Some(parts) = &self.fingerprint {
            fingerprint = crate::options::custom_fingerprint(parts, &fingerprint);
        }
        let mut tags = self.context.tags.clone();
        tags.extend(self.tags);
        Event {
            id: self.id,
            timestamp_ms: self.timestamp_ms,
            logger,
            level: self.level,
            kind: self.kind,
            message: self.message,
            chain: self.chain,
            location,
            thread_name: self.thread.name.map(|n| n.to_string()),
            thread_id: self.thread.id,
            pid: std::process::id(),
            app_name: self.context.app_name.clone(),
            release: self.context.release.clone(),
            environment: self.context.environment.clone(),
            tags,
            extra: self.extra,
            frames,
            backtrace_hash,
            symbols_resolved,
            fingerprint,
            snapshot: if self.snapshot {
                snapshot.cloned()
            } else {
                None
            },
            alert_channels: self.alert_channels,
            breadcrumbs: self.breadcrumbs,
            redactions,
            origin: self.origin.is_some(),
        }
    }
}

/// One line on stderr for the console destination.
fn print_console(ev: &Event) {
    let at = ev
        .location
        .as_ref()
        .map(|l| format!(" ({}:{})", l.file, l.line))
        .unwrap_or_default();
    let first = ev.message.lines().next().unwrap_or("");
    let line = format!(
        "[{}] {:<5} {}: {first}{at}",
        crate::notify::format::format_utc(ev.timestamp_ms),
        ev.level.as_str().to_ascii_uppercase(),
        ev.logger
    );
    let _ = internal_log::stderr_line(&line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn capture_here() -> RawBacktrace {
        RawBacktrace::capture()
    }

    #[test]
    fn resolves_with_file_and_line_and_caches() {
        let raw = capture_here();
        assert!(raw.ips.len() > 3);
        let mut s = Symbolizer::new();
        let (frames, complete) = s.resolve(&raw, Duration::from_secs(30));
        assert!(complete);
        // errsnap's own frames are trimmed: in unit tests every frame of this
        // crate is named errsnap::, so the top is the test harness.
        assert!(frames.iter().all(|f| !f
            .function
            .as_deref()
            .unwrap_or("")
            .starts_with("backtrace::")));
        let cached = s.cache.len();
        let (again, _) = s.resolve(&raw, Duration::from_secs(30));
        assert_eq!(s.cache.len(), cached);
        assert_eq!(again, frames);
    }

    #[test]
    fn zero_budget_keeps_addresses() {
        let raw = capture_here();
        let mut s = Symbolizer::new();
        let (frames, complete) = s.resolve(&raw, Duration::ZERO);
        assert!(!complete);
        assert_eq!(frames.len(), raw.ips.len());
        assert!(frames
            .iter()
            .all(|f| f.address != 0 && f.function.is_none()));
        #[cfg(target_os = "linux")]
        assert!(frames.iter().any(|f| f.module_offset.is_some()));
    }

    #[test]
    fn in_app_rules() {
        assert!(is_in_app(Some("myapp::run"), Some("src/main.rs")));
        assert!(!is_in_app(Some("std::rt::lang_start"), None));
        assert!(!is_in_app(
            Some("tokio::runtime::park"),
            Some("/root/.cargo/registry/src/x/tokio-1/src/park.rs")
        ));
        assert!(!is_in_app(None, Some("src/main.rs")));
    }

    #[test]
    fn chain_walks_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("loading failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let outer = Outer(std::io::Error::other("disk on fire"));
        let chain = error_chain(&outer, Some("std::io::Error"));
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].message, "disk on fire");
        assert_eq!(chain[0].type_name.as_deref(), Some("std::io::Error"));
    }
}
