//! Symbolization on the writer thread: instruction pointers to functions,
//! files and lines, cached; errsnap's and std's own frames trimmed off the
//! top; the application's own frames marked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture::RawBacktrace;
use crate::event::Frame;
use crate::pipeline::modules::Modules;
use crate::pipeline::symbols::{Sym, SymbolTables};

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

/// A backtrace resolved, trimmed, its paths redacted and its storage key
/// computed: done once per distinct stack, shared by every event from it.
#[derive(Debug)]
pub(crate) struct ResolvedTrace {
    pub(crate) frames: Arc<[Frame]>,
    pub(crate) hash: Arc<str>,
    pub(crate) complete: bool,
    pub(crate) redactions: u32,
}

/// Resolves addresses to symbols on the writer thread with errsnap's own
/// symbol tables, with a cache keyed by instruction pointer and one keyed
/// by the whole stack (both bounded: cleared when they grow past their
/// limit). The tables are dropped when they outgrow their memory budget or
/// sit idle.
pub(crate) struct Symbolizer {
    cache: HashMap<usize, Arc<[Sym]>>,
    modules: Modules,
    tables: SymbolTables,
    /// What the entries of `cache` hold (their strings and overhead).
    cache_bytes: u64,
    /// What the stacks of `traces` hold.
    traces_bytes: u64,
    budget_bytes: u64,
    traces: HashMap<(u64, usize), Arc<ResolvedTrace>>,
    /// When a stack last needed a resolution (`None`: nothing is loaded
    /// since the start or the last release).
    last_resolved: Option<Instant>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("cached", &self.cache.len())
            .field("tables", &self.tables)
            .finish()
    }
}

const SYMBOL_CACHE_LIMIT: usize = 50_000;

impl Symbolizer {
    /// A symbolizer whose tables may hold `budget_bytes` of memory.
    pub(crate) fn new(budget_bytes: u64) -> Symbolizer {
        Symbolizer {
            cache: HashMap::new(),
            cache_bytes: 0,
            traces_bytes: 0,
            modules: Modules::default(),
            tables: SymbolTables::default(),
            budget_bytes,
            traces: HashMap::new(),
            last_resolved: None,
        }
    }

    /// When the symbol tables were last needed, if they are loaded.
    pub(crate) fn last_resolved(&self) -> Option<Instant> {
        self.last_resolved
    }

    /// Drops the caches and the symbol tables (tens of MiB for a binary
    /// with debug info) when no stack needed resolving for `idle`. The next
    /// stack loads them again. Returns whether it released anything.
    pub(crate) fn release_if_idle(&mut self, idle: Duration) -> bool {
        match self.last_resolved {
            Some(t) if t.elapsed() >= idle => {
                self.release();
                true
            }
            _ => false,
        }
    }

    /// After a batch: gives back the pages of the symbol files that were
    /// read, and drops parsed units, least recently used first, while the
    /// tables hold more than their budget. Resolved stacks stay cached
    /// (their frames are small). Returns whether it dropped any.
    pub(crate) fn after_batch(&mut self) -> bool {
        self.tables.drop_mapped_pages();
        let total = self.tables.estimated_bytes() + self.cache_bytes + self.traces_bytes;
        if total <= self.budget_bytes {
            return false;
        }
        // The per-address names go first, then (if still over) the whole
        // stacks, then parsed units.
        self.cache = HashMap::new();
        self.cache_bytes = 0;
        if self.tables.estimated_bytes() + self.traces_bytes > self.budget_bytes {
            self.traces = HashMap::new();
            self.traces_bytes = 0;
        }
        self.tables.evict_to(self.budget_bytes);
        true
    }

    /// The symbol tables themselves (a crash's frames are named with them).
    pub(crate) fn tables_mut(&mut self) -> &mut SymbolTables {
        &mut self.tables
    }

    /// The memory the symbol tables are estimated to hold.
    #[cfg(test)]
    pub(crate) fn table_bytes(&self) -> u64 {
        self.tables.estimated_bytes()
    }

    fn release(&mut self) {
        self.cache = HashMap::new();
        self.cache_bytes = 0;
        self.modules = Modules::default();
        self.traces = HashMap::new();
        self.traces_bytes = 0;
        self.tables = SymbolTables::default();
        self.last_resolved = None;
        // glibc keeps freed heap in its arenas: give the pages of the
        // parsed tables back to the system.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory of the allocator;
        // it has no preconditions.
        unsafe {
            libc::malloc_trim(0);
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
        redactor: &Arc<crate::pipeline::redact::Redactor>,
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
        let hash: Arc<str> = Arc::from(crate::pipeline::fingerprint::backtrace_hash(&frames));
        let trace = Arc::new(ResolvedTrace {
            frames: Arc::from(frames),
            hash,
            complete,
            redactions,
        });
        if complete {
            if self.traces.len() > SYMBOL_CACHE_LIMIT / 10 {
                self.traces.clear();
                self.traces_bytes = 0;
            }
            self.traces_bytes += frame_bytes(&trace.frames);
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
            self.cache_bytes = 0;
        }
        let start = Instant::now();
        let mut complete = true;
        let mut frames = Vec::with_capacity(raw.ips.len());
        for (i, &ip) in raw.ips.iter().enumerate() {
            let module = self.modules.find(ip).cloned();
            let module_offset = module.as_ref().map(|m| (ip - m.base) as u64);
            let module_name = module.as_ref().map(|m| m.path.to_string());
            let build_id = module
                .as_ref()
                .and_then(|m| m.build_id.as_deref().map(str::to_owned));
            let syms = match self.cache.get(&ip) {
                Some(s) => Some(s.clone()),
                None if start.elapsed() < budget => {
                    self.last_resolved = Some(Instant::now());
                    let mut found = match (&module, module_offset) {
                        (Some(m), Some(offset)) => {
                            self.tables
                                .lookup(&m.path, m.build_id.as_deref(), offset, i == 0)
                        }
                        _ => Vec::new(),
                    };
                    if found.is_empty() {
                        found = elsewhere(ip, i == 0);
                    }
                    let s: Arc<[Sym]> = Arc::from(found);
                    self.cache_bytes += sym_bytes(&s);
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
                            build_id: build_id.clone(),
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
                        build_id,
                        in_app: false,
                    });
                }
            }
        }
        (trim_internal(frames), complete)
    }
}

/// Outside Linux (no ELF module list; Mach-O and PE debug information live
/// elsewhere) the backtrace crate's resolver names the frame. On Linux,
/// errsnap's own tables are the only source.
#[cfg(not(target_os = "linux"))]
fn elsewhere(ip: usize, first: bool) -> Vec<Sym> {
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
    out
}

#[cfg(target_os = "linux")]
fn elsewhere(_ip: usize, _first: bool) -> Vec<Sym> {
    Vec::new()
}

/// What a cached stack holds: its frames' strings and their overhead.
fn frame_bytes(frames: &[Frame]) -> u64 {
    let strings: usize = frames
        .iter()
        .map(|f| {
            f.function.as_ref().map_or(0, String::len)
                + f.file.as_ref().map_or(0, String::len)
                + f.module.as_ref().map_or(0, String::len)
                + f.build_id.as_ref().map_or(0, String::len)
        })
        .sum();
    (strings + std::mem::size_of_val(frames) + 128) as u64
}

/// What a cached entry holds: its strings and the entry's overhead.
fn sym_bytes(syms: &[Sym]) -> u64 {
    let strings: usize = syms
        .iter()
        .map(|s| {
            s.function.as_ref().map_or(0, String::len) + s.file.as_ref().map_or(0, String::len)
        })
        .sum();
    (strings + 64 * (syms.len() + 1)) as u64
}

/// Drops the leading frames that belong to errsnap, the stack walker or std's
/// panic machinery: everything up to the last such frame that comes before
/// the first in-app frame. Only a leading run of named frames is looked at:
/// an unnamed frame (a stripped binary, a stack stored raw) may be the
/// application's own, so it and everything under it stay.
pub(crate) fn trim_internal(frames: Vec<Frame>) -> Vec<Frame> {
    let last_internal = frames
        .iter()
        .take_while(|f| !f.in_app && f.function.is_some())
        .enumerate()
        .filter(|(_, f)| is_internal(f))
        .map(|(i, _)| i)
        .last();
    match last_internal {
        Some(i) => frames.into_iter().skip(i + 1).collect(),
        None => frames,
    }
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
        let mut s = Symbolizer::new(u64::MAX);
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
    fn idle_tables_are_released_and_come_back() {
        let raw = capture_here();
        let mut s = Symbolizer::new(u64::MAX);
        assert!(!s.release_if_idle(Duration::ZERO), "nothing loaded yet");
        let (frames, _) = s.resolve(&raw, Duration::from_secs(30));
        assert!(s.last_resolved().is_some());
        // Used just now: kept.
        assert!(!s.release_if_idle(Duration::from_secs(3600)));
        assert!(!s.cache.is_empty());
        // Idle long enough: released, and the next resolution loads again.
        assert!(s.release_if_idle(Duration::ZERO));
        assert!(s.cache.is_empty() && s.traces.is_empty());
        assert!(s.last_resolved().is_none());
        assert!(!s.release_if_idle(Duration::ZERO), "released once");
        let (again, complete) = s.resolve(&raw, Duration::from_secs(30));
        assert!(complete);
        assert_eq!(again, frames);
        // Cached stacks do not count as use: only resolutions do.
        let used = s.last_resolved();
        let _ = s.resolve(&raw, Duration::from_secs(30));
        assert_eq!(s.last_resolved(), used);
    }

    #[test]
    fn tables_over_their_budget_are_dropped_and_stacks_stay_resolved() {
        let raw = capture_here();
        let mut s = Symbolizer::new(u64::MAX);
        let (frames, _) = s.resolve(&raw, Duration::from_secs(30));
        assert!(s.table_bytes() > 0, "loading tables is accounted");
        assert!(!s.after_batch(), "within an unlimited budget");
        let mut small = Symbolizer::new(1);
        let redactor =
            Arc::new(crate::pipeline::redact::Redactor::new(false, &[], "test").unwrap());
        let trace = small.trace(&raw, Duration::from_secs(30), &redactor);
        assert!(small.after_batch());
        assert_eq!(small.table_bytes(), 0, "every parsed unit dropped");
        assert!(small.cache.is_empty() && small.cache_bytes == 0);
        // Everything went (the budget is smaller than one stack); a new
        // resolution parses again and gives the same stack.
        assert!(small.traces.is_empty() && small.traces_bytes == 0);
        assert_eq!(
            small.trace(&raw, Duration::from_secs(30), &redactor).frames,
            trace.frames
        );
        let (again, complete) = small.resolve(&raw, Duration::from_secs(30));
        assert!(complete);
        assert_eq!(again, frames);
        assert!(frames
            .iter()
            .any(|f| f.line.is_some() && f.build_id.is_some()));
    }

    #[test]
    fn zero_budget_keeps_addresses() {
        let raw = capture_here();
        let mut s = Symbolizer::new(u64::MAX);
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
    fn trimming_stops_at_the_first_unnamed_frame() {
        let named = |n: &str| Frame {
            function: Some(n.into()),
            file: None,
            line: None,
            column: None,
            address: 1,
            module: None,
            module_offset: None,
            build_id: None,
            in_app: false,
        };
        let raw = Frame {
            function: None,
            ..named("")
        };
        // errsnap's frames on top are trimmed ...
        let t = trim_internal(vec![
            named("errsnap::capture"),
            named("main_loop"),
            raw.clone(),
        ]);
        assert_eq!(t.len(), 2);
        // ... but never across an unnamed frame: it may be the app's, and
        // the internal frames under it (thread start) are not the top.
        let frames = vec![
            named("errsnap::capture"),
            raw.clone(),
            raw.clone(),
            named("std::panicking::try"),
            named("start_thread"),
        ];
        let t = trim_internal(frames);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t[0].function.is_none());
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
}
