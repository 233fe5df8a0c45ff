//! Native crashes: a signal handler that records a dying process's last
//! moment into a file made ready at start, read back by the next process
//! that opens the same store.
//!
//! At start ([`arm`]) a crash file is created in the store's private crash
//! directory (`<db>.crash/`, `O_EXCL | O_NOFOLLOW`, 0600), sized, and given
//! the process's metadata and module list. When SIGSEGV, SIGBUS, SIGILL,
//! SIGFPE, SIGABRT or SIGTRAP arrives, the handler (`handler.rs`, on the
//! alternate signal stack, async-signal-safe) writes the signal, the fault
//! address, the thread, the registers, up to 64 KiB of the stack and the
//! last sign of life; then the signal goes on as it would have without
//! errsnap. Unwinding and symbols happen at the next start
//! (`pipeline::crash`), never in the dying process.
//!
//! Linux only; elsewhere [`arm`] does nothing.

pub(crate) mod file;
#[cfg(target_os = "linux")]
mod handler;
pub(crate) mod layout;
pub(crate) mod minidump;
pub(crate) mod ring;

use std::ffi::OsString;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::event::EventId;
use crate::util::private_dir::PrivateDir;

/// What the crash file says about its process, written when it is armed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CrashMeta {
    /// The id the crash's event gets (printed by the end-user message).
    pub(crate) id: String,
    pub(crate) pid: u32,
    /// Clock ticks since boot when the process started (`/proc/<pid>/stat`).
    pub(crate) process_start: Option<u64>,
    pub(crate) boot_id: Option<String>,
    pub(crate) armed_at_ms: i64,
    pub(crate) logger: String,
    pub(crate) app_name: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) environment: Option<String>,
    /// The alert channels a fatal event of that logger goes to.
    pub(crate) channels: Vec<String>,
    /// The logger's redaction settings, so that whoever imports the crash
    /// (the next start, `errsnap check`) redacts as the application did.
    #[serde(default)]
    pub(crate) redact_emails: bool,
    #[serde(default)]
    pub(crate) redact_patterns: Vec<String>,
    /// Only the application may import it: its logger has a `before_save`
    /// hook (which only it can run), or its redaction patterns did not fit
    /// in the file.
    #[serde(default)]
    pub(crate) needs_app: bool,
    /// When the process started, seconds since the Unix epoch.
    #[serde(default)]
    pub(crate) started_at_secs: Option<u64>,
    /// Where the command line's and the environment's strings start, at
    /// the top of the main thread's stack (`arg_start` of
    /// `/proc/self/stat`): a minidump's stack copy ends below it, so
    /// neither is ever in a dump.
    #[serde(default)]
    pub(crate) args_at: Option<u64>,
    /// No minidump is made of the crash (`ERRSNAP_CRASH_MINIDUMP=0`).
    #[serde(default)]
    pub(crate) no_minidump: bool,
}

/// One loaded module, as the crashed process had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModuleEntry {
    pub(crate) path: String,
    /// Load bias: address in memory minus address in the file.
    pub(crate) base: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) build_id: Option<String>,
}

/// The armed file, held by normal code (never by the handler).
struct Armed {
    dir: PrivateDir,
    name: OsString,
    file: std::fs::File,
    slot: u32,
    /// The process that armed it: a forked child is not armed.
    pid: u32,
    /// Readings written to its ring so far.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    readings: u64,
    /// The breadcrumbs slot in use (0: none written yet).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    crumbs_slot: u32,
    /// The logger it was armed for.
    logger: String,
}

static ARMED: Mutex<Option<Armed>> = Mutex::new(None);

/// The lowest address of this process's command-line and environment
/// strings (`arg_start` and `env_start`, fields 48 and 50 of
/// `/proc/self/stat`; `None` elsewhere).
pub(crate) fn args_at() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let at = |n: usize| fields.get(n - 3)?.parse::<u64>().ok().filter(|&a| a > 0);
    match (at(48), at(50)) {
        (Some(a), Some(e)) => Some(a.min(e)),
        (a, e) => a.or(e),
    }
}

/// The file name of a crash file.
pub(crate) fn file_name(pid: u32, id: &str) -> OsString {
    OsString::from(format!("crash-{pid}-{id}.bin"))
}

/// Arms the handler: creates this process's crash file in `dir` (sized,
/// metadata and modules written) and installs the signal handler once.
/// Arming again (another store) moves to a new file and removes the old
/// one. `message` is printed on stderr when a crash is recorded (the
/// end-user message), unless a panic already printed its own.
///
/// # Errors
/// The file cannot be created or written, or the handler not installed.
#[cfg(target_os = "linux")]
// Long by design: under the arming lock, the file is made whole (sized,
// reserved, header and modules written, handler installed) or removed; only
// then is what the handler reads published, the descriptor last.
pub(crate) fn arm(
    dir: PrivateDir,
    meta: &CrashMeta,
    modules: &[ModuleEntry],
    message: Option<String>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::Ordering;

    let mut guard = ARMED.lock().unwrap_or_else(|p| p.into_inner());
    let name = file_name(meta.pid, &meta.id);
    let file = dir.create_rw(&name)?;
    let made = (|| {
        file.set_len(layout::FILE_SIZE)?;
        // Reserve the blocks: the handler's writes must not meet a full disk.
        // SAFETY: a valid descriptor and range.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, layout::FILE_SIZE as i64) };
        if rc != 0 && rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        let room = (layout::HEADER_SIZE - layout::META_AT) as usize;
        let mut json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        if json.len() > room && !meta.redact_patterns.is_empty() {
            // The patterns do not fit: only the application itself, with
            // its patterns, may import the crash.
            let lean = CrashMeta {
                redact_patterns: Vec::new(),
                needs_app: true,
                ..meta.clone()
            };
            json = serde_json::to_vec(&lean).map_err(std::io::Error::other)?;
        }
        if json.len() > room {
            return Err(std::io::Error::other(format!(
                "crash metadata too long ({} bytes)",
                json.len()
            )));
        }
        let mut head = Vec::with_capacity(layout::META_AT as usize + json.len());
        head.extend_from_slice(&layout::MAGIC);
        head.extend_from_slice(&layout::VERSION.to_ne_bytes());
        head.extend_from_slice(&0u32.to_ne_bytes()); // done
        head.extend_from_slice(&0u32.to_ne_bytes()); // modules slot
        head.extend_from_slice(&(json.len() as u32).to_ne_bytes());
        head.extend_from_slice(&json);
        file.write_all_at(&head, 0)?;
        write_modules(&file, 1, modules)?;
        handler::install()
    })();
    if let Err(e) = made {
        let _ = dir.remove(&name);
        return Err(e);
    }
    let text: Option<&'static mut &'static [u8]> = message.map(|m| {
        let bytes: &'static [u8] = m.into_bytes().leak();
        Box::leak(Box::new(bytes))
    });
    handler::MESSAGE.store(
        text.map_or(std::ptr::null_mut(), |t| t as *mut &'static [u8]),
        Ordering::Release,
    );
    handler::PID.store(meta.pid, Ordering::Relaxed);
    handler::NEXT_SLOT.store(0, Ordering::Relaxed);
    handler::DONE.store(0, Ordering::Relaxed);
    handler::FD.store(file.as_raw_fd(), Ordering::Release);
    if let Some(old) = guard.replace(Armed {
        dir,
        name,
        file,
        slot: 1,
        pid: meta.pid,
        readings: 0,
        crumbs_slot: 0,
        logger: meta.logger.clone(),
    }) {
        let _ = old.dir.remove(&old.name);
        // Never closed: a handler on another thread may still hold its
        // number, which a new file could otherwise take over. (Arming
        // again happens once per database a process records into.)
        std::mem::forget(old.file);
    }
    Ok(())
}

/// Not Linux: no native crash handler.
#[cfg(not(target_os = "linux"))]
pub(crate) fn arm(
    _dir: PrivateDir,
    _meta: &CrashMeta,
    _modules: &[ModuleEntry],
    _message: Option<String>,
) -> std::io::Result<()> {
    Ok(())
}

/// Whether this process has an armed crash file (its name).
pub(crate) fn armed_name() -> Option<OsString> {
    let g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref()
        .filter(|a| a.pid == std::process::id())
        .map(|a| a.name.clone())
}

/// Writes the module list into slot `slot` (1 or 2), then marks it the one
/// in use. Too long a list is cut (the first modules: the executable and
/// the libraries loaded with it).
#[cfg(target_os = "linux")]
fn write_modules(file: &std::fs::File, slot: u32, modules: &[ModuleEntry]) -> std::io::Result<()> {
    let room = (layout::MODULES_SIZE - 4) as usize;
    let at = (layout::modules_at(slot), layout::SLOT_AT);
    write_slot(file, slot, at, room, modules.len(), |n| &modules[..n])
}

/// Writes a JSON list into a slot (a length, then the JSON) at `at.0`, then
/// marks `slot` the one in use at `at.1`. Too long a list of `len` items is
/// cut to what `part(n)` keeps of `n` of them.
#[cfg(target_os = "linux")]
fn write_slot<'a, T: Serialize + 'a>(
    file: &std::fs::File,
    slot: u32,
    at: (u64, u64),
    room: usize,
    len: usize,
    part: impl Fn(usize) -> &'a [T],
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut n = len;
    let json = loop {
        let j = serde_json::to_vec(part(n)).map_err(std::io::Error::other)?;
        if j.len() <= room || n == 0 {
            break j;
        }
        n = n * 3 / 4;
    };
    let mut buf = (json.len() as u32).to_ne_bytes().to_vec();
    buf.extend_from_slice(&json);
    file.write_all_at(&buf, at.0)?;
    file.write_all_at(&slot.to_ne_bytes(), at.1)
}

/// Replaces the breadcrumbs the armed file holds (the logger's ring as the
/// writer saw it on the heartbeat): written to the slot not in use, then
/// switched to. Too many for the slot: the newest are kept.
pub(crate) fn set_breadcrumbs(crumbs: &[crate::event::Breadcrumb]) {
    #[cfg(target_os = "linux")]
    {
        let mut g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = g.as_mut().filter(|a| a.pid == std::process::id()) {
            let next = 3 - a.crumbs_slot.max(1);
            let room = (layout::CRUMBS_SIZE - 4) as usize;
            let at = (layout::crumbs_at(next), layout::CRUMBS_AT);
            let keep = |n: usize| &crumbs[crumbs.len() - n..];
            if write_slot(&a.file, next, at, room, crumbs.len(), keep).is_ok() {
                a.crumbs_slot = next;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = crumbs;
}

/// The logger whose crash file is armed (its breadcrumbs go there).
pub(crate) fn armed_logger() -> Option<String> {
    let g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref()
        .filter(|a| a.pid == std::process::id())
        .map(|a| a.logger.clone())
}

/// Replaces the module list (a library was loaded or unloaded): written to
/// the slot not in use, then switched to, so a crash meanwhile still finds
/// a whole list.
pub(crate) fn set_modules(modules: &[ModuleEntry]) {
    #[cfg(target_os = "linux")]
    {
        let mut g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        // A forked child never writes its parent's file.
        if let Some(a) = g.as_mut().filter(|a| a.pid == std::process::id()) {
            let next = 3 - a.slot;
            if write_modules(&a.file, next, modules).is_ok() {
                a.slot = next;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = modules;
}

/// Writes a flight-recorder reading into the armed file's ring (the
/// writer thread, on the heartbeat; one `pwrite`).
pub(crate) fn note_reading(reading: &crate::event::sample::RunSample) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::FileExt;
        let mut g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = g.as_mut().filter(|a| a.pid == std::process::id()) {
            a.readings += 1;
            let seq = a.readings;
            let _ = a
                .file
                .write_all_at(&ring::slot(seq, reading), ring::slot_at(seq));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = reading;
}

/// Notes that the current thread recorded panic `id`: a `SIGABRT` on this
/// thread soon after (`panic = "abort"`, a panic while panicking) is the
/// same failure and is linked to it instead of counted again.
pub(crate) fn note_panic(id: EventId) {
    #[cfg(target_os = "linux")]
    {
        use std::sync::atomic::Ordering::Relaxed;
        let v = id.as_u128();
        handler::PANIC_ID[0].store((v >> 64) as u64, Relaxed);
        handler::PANIC_ID[1].store(v as u64, Relaxed);
        // SAFETY: a plain system call.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        handler::PANIC_TID.store(tid, Relaxed);
        handler::PANIC_AT_MS.store(crate::util::time::now_ms(), Relaxed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = id;
}

/// Notes the process's last sign of life (RSS, CPU in percent of one
/// core), copied into a crash record.
pub(crate) fn note_sign(rss_bytes: u64, cpu_percent: Option<f64>, at_ms: i64) {
    #[cfg(target_os = "linux")]
    {
        use std::sync::atomic::Ordering::Relaxed;
        handler::SIGN_RSS.store(rss_bytes, Relaxed);
        handler::SIGN_CPU.store(
            cpu_percent.map_or(u64::MAX, |c| (c * 10.0).round().max(0.0) as u64),
            Relaxed,
        );
        handler::SIGN_AT_MS.store(at_ms, Relaxed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (rss_bytes, cpu_percent, at_ms);
}
