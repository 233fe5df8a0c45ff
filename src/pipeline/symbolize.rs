//! Symbolization on the writer thread: instruction pointers to functions,
//! files and lines, cached; errsnap's and std's own frames trimmed off the
//! top; the application's own frames marked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture::RawBacktrace;
use crate::event::Frame;

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
    /// When a stack last needed a resolution (`None`: nothing is loaded
    /// since the start or the last release).
    last_resolved: Option<Instant>,
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
            last_resolved: None,
        }
    }

    /// When the symbol tables were last needed, if they are loaded.
    pub(crate) fn last_resolved(&self) -> Option<Instant> {
        self.last_resolved
    }

    /// Drops the caches and the parsed debug information (the backtrace
    /// crate keeps it process-wide: tens of MiB for a binary with debug
    /// info) when no stack needed resolving for `idle`. The next stack
    /// loads them again. Returns whether it released anything.
    pub(crate) fn release_if_idle(&mut self, idle: Duration) -> bool {
        match self.last_resolved {
            Some(t) if t.elapsed() >= idle => {
                self.cache = HashMap::new();
                self.modules = HashMap::new();
                self.traces = HashMap::new();
                self.last_resolved = None;
                backtrace::clear_symbol_cache();
                // glibc keeps freed heap in its arenas: give the pages of
                // the parsed tables back to the system.
                #[cfg(all(target_os = "linux", target_env = "gnu"))]
                // SAFETY: malloc_trim only releases free memory of the
                // allocator; it has no preconditions.
                unsafe {
                    libc::malloc_trim(0);
                }
                true
            }
            _ => false,
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
                    self.last_resolved = Some(Instant::now());
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
    fn idle_tables_are_released_and_come_back() {
        let raw = capture_here();
        let mut s = Symbolizer::new();
        assert!(!s.release_if_idle(Duration::ZERO), "nothing loaded yet");
        let (frames, _) = s.resolve(&raw, Duration::from_secs(30));
        assert!(s.last_resolved().is_some());
        // Used just now: kept.
        assert!(!s.release_if_idle(Duration::from_secs(3600)));
        assert!(!s.cache.is_empty());
        // Idle long enough: released, and the next resolution loads again.
        assert!(s.release_if_idle(Duration::ZERO));
        assert!(s.cache.is_empty() && s.modules.is_empty() && s.traces.is_empty());
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
}
