//! The panic hook: records every panic durably before the process can die.

use std::cell::Cell;
use std::panic::PanicHookInfo;
use std::path::PathBuf;
use std::sync::{Mutex, Once, RwLock};

use crate::capture::CallSite;
use crate::event::{EventId, EventKind, Location};
use crate::level::Level;
use crate::logger::{payload_text, EventLogger, PushOptions};
use crate::store::spool::{self, Private};
use crate::util::internal_log;
use crate::worker;

static TARGET: RwLock<Option<EventLogger>> = RwLock::new(None);
static INSTALL: Once = Once::new();

thread_local! {
    /// Set while this thread runs our hook: a panic inside it is not
    /// recorded again (and cannot recurse).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Installs errsnap's panic hook and native crash handler, recording into
/// `logger`.
///
/// The hook is installed once per process; later calls only change the
/// logger it records into. The previous hook (Rust's default message, or
/// another library's) still runs, after ours. Each panic is recorded at
/// level fatal, kind panic, with payload, location, thread, backtrace and
/// snapshot, and the record is committed **before the hook returns**: it
/// survives `panic = "abort"` and a panic that ends `main`.
///
/// The hook waits up to the logger's `panic_timeout` (default 2 s) for the
/// writer to commit; if the writer is stuck, dead, or is the panicking
/// thread, it writes with a connection of its own, and if the database
/// cannot be written it appends the record to the spool beside it.
///
/// Calling this while the current thread is panicking does nothing (std
/// forbids changing the hook then).
///
/// # Native crashes (Linux)
///
/// The same call arms the crash handler for SIGSEGV, SIGBUS, SIGILL,
/// SIGFPE, SIGABRT and SIGTRAP: a crash file is made ready beside the
/// database (`LOGS.db.crash/`, private to the user), and a crash writes the
/// signal, fault address, thread, registers, the top 64 KiB of the stack
/// and the last CPU/RSS figures into it, without allocating or locking.
/// The signal then goes on to the handler that was there before (Rust's
/// stack-overflow report) or to its default action, so the exit status and
/// core dumps are unchanged. The next process that opens the same
/// database (or `errsnap check`) turns the file into a fatal event of kind
/// `crash` ("SIGSEGV at 0x0 (address not mapped)"), unwinds and names its
/// stack, marks the run crashed and alerts. A `SIGABRT` that ends a panic
/// just recorded (`panic = "abort"`, a panic while panicking) is linked to
/// that panic, not counted again.
///
/// Each crash is also kept as a standard minidump, the event's
/// `minidump.dmp` attachment (only the crashing thread; never the command
/// line or the environment; `ERRSNAP_CRASH_MINIDUMP=false` keeps none): see
/// the README's "Minidumps".
///
/// The handler runs on the alternate signal stack. Rust gives every thread
/// it starts one, and this call gives the calling thread one if it has
/// none; a thread started by C code without one can still record a fault,
/// but not its own stack overflow (there is no stack left to run the
/// handler on: the kernel ends the process). A forked child does not write
/// its parent's crash file.
///
/// A panic *inside* a panic hook makes std abort the process at once, so
/// the hook runs no user code that could panic: it records the payload's
/// text (`&str` or `String`; anything else becomes `<non-string panic payload>`), the
/// location and the thread, never a user `Display` or `Debug` impl. (Outside
/// the hook, [`EventLogger::capture_error`] and `.report()` catch a
/// panicking `Display` and record `<Display panicked>` instead.)
///
/// ```no_run
/// # fn main() -> errsnap::Result<()> {
/// let logger = errsnap::EventLogger::new("crashes")?;
/// errsnap::install_panic_hook(&logger);
/// panic!("recorded in LOGS.db before the process ends");
/// # }
/// ```
pub fn install_panic_hook(logger: &EventLogger) {
    if std::thread::panicking() {
        return;
    }
    {
        let mut t = TARGET.write().unwrap_or_else(|p| p.into_inner());
        *t = Some(logger.clone());
    }
    INSTALL.call_once(|| {
        // The hook keeps its logger for good, so no drop ends the writer:
        // at exit, the exit hook (registered with the first writer) drains
        // it and records the run as exited.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !on_panic(info) {
                previous(info);
            }
        }));
    });
    arm_crash_handler(logger);
}

/// Arms the native crash handler for `logger`'s database (once per
/// database: arming for another one moves the crash file there).
fn arm_crash_handler(logger: &EventLogger) {
    static ARMED_FOR: Mutex<Option<PathBuf>> = Mutex::new(None);
    let w = logger.worker();
    if !w.writes_files() {
        return;
    }
    let mut armed = ARMED_FOR.lock().unwrap_or_else(|p| p.into_inner());
    if armed.as_deref() == Some(w.path()) {
        return;
    }
    let dir = match spool::ensure_private_dir(w.path(), Private::Crash) {
        Ok(d) => d,
        Err(e) => {
            internal_log::report("crash handler", &e);
            return;
        }
    };
    let id = EventId::generate(crate::util::time::now_ms());
    let meta = logger.crash_meta(id);
    let modules = crate::pipeline::modules::for_crash_file();
    match crate::crash::arm(dir, &meta, &modules, logger.end_user_line(&id)) {
        Ok(()) => *armed = Some(w.path().to_owned()),
        Err(e) => internal_log::report("crash handler", &e),
    }
}

/// Records the panic; `true` when the end-user line was printed instead
/// of the previous hook's message.
fn on_panic(info: &PanicHookInfo<'_>) -> bool {
    // If thread-locals are gone (thread teardown), record anyway.
    let reentered = IN_HOOK.try_with(|f| f.replace(true)).unwrap_or(false);
    if reentered {
        return false;
    }
    if crate::util::unwind::is_guarded() {
        let _ = IN_HOOK.try_with(|f| f.set(false));
        return false;
    }
    let logger = match TARGET.read() {
        Ok(t) => t.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let mut printed = false;
    if let Some(logger) = logger {
        if let Some(id) = record(&logger, info) {
            crate::util::unwind::mark_recorded();
            if let Some(line) = logger.end_user_line(&id) {
                printed = internal_log::stderr_line(line.trim_end()).is_ok();
            }
        }
    }
    let _ = IN_HOOK.try_with(|f| f.set(false));
    printed
}

/// Records the panic and waits until it is durable; its id when recorded.
/// Never panics: every step below handles its failure.
fn record(logger: &EventLogger, info: &PanicHookInfo<'_>) -> Option<EventId> {
    if logger.worker().is_disabled() {
        return None;
    }
    let message = payload_text(info.payload());
    let site = info
        .location()
        .map(|l| CallSite::Owned(Location::from_std(l)));
    // A panic is always stored, so this is always `Some`.
    let ev = logger.pending(
        Level::Fatal,
        EventKind::Panic,
        message,
        Vec::new(),
        site,
        PushOptions::default(),
    )?;
    let id = ev.id;
    // A SIGABRT on this thread soon after (panic = "abort") ends this panic.
    crate::crash::note_panic(id);
    let w = logger.worker();
    // The process may be on its way out: one budget for the waits here and
    // for the guard's and the writer's drain after.
    let deadline = worker::start_exit(w.exit_budget());
    let left = || deadline.saturating_duration_since(std::time::Instant::now());
    let alerts = !ev.alert_channels.is_empty();
    // The writer stuck, gone, or panicking itself: write with a connection
    // of our own (a test logger has no file to write).
    let directly = |ev| {
        w.writes_files()
            && worker::write_directly(
                w.path(),
                w.backend(),
                w.durability(),
                w.rules(),
                w.grouping(),
                vec![ev],
                deadline,
            )
    };
    let recorded = if w.is_current_thread() || !w.is_alive() {
        directly(ev)
    } else {
        let copy = ev.clone();
        let started = std::time::Instant::now();
        let timeout = logger.panic_timeout().min(left());
        match w.submit(ev, true) {
            Some(seq) if w.wait_for(seq, timeout) => {
                // Durable, its stack raw if the symbol tables were not
                // loaded: give the writer the rest of the timeout to name it
                // (the alert, sent after this, then carries the names).
                w.wait_named(seq, timeout.saturating_sub(started.elapsed()));
                true
            }
            // If the writer commits its copy later, the duplicate id is
            // skipped.
            _ => directly(copy),
        }
    };
    // Give the fatal alert (and the alerts of events before it) a bounded
    // chance to go out before the process may die (retried if a failure's
    // backoff fits). Sending happens on the notify thread, not here.
    let wait = w.panic_alert_wait().min(left());
    if recorded && alerts && !wait.is_zero() && !w.is_current_thread() {
        w.flush_until(std::time::Instant::now() + wait);
    }
    recorded.then_some(id)
}
