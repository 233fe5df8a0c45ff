//! The panic hook: records every panic durably before the process can die.

use std::cell::Cell;
use std::panic::PanicHookInfo;
use std::sync::{Once, RwLock};

use crate::capture::CallSite;
use crate::event::{EventKind, Location};
use crate::level::Level;
use crate::logger::{payload_text, EventLogger, Extras};
use crate::worker;

static TARGET: RwLock<Option<EventLogger>> = RwLock::new(None);
static INSTALL: Once = Once::new();

thread_local! {
    /// Set while this thread runs our hook: a panic inside it is not
    /// recorded again (and cannot recurse).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Installs errsnap's panic hook, recording into `logger`.
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
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            on_panic(info);
            previous(info);
        }));
    });
}

fn on_panic(info: &PanicHookInfo<'_>) {
    // If thread-locals are gone (thread teardown), record anyway.
    let reentered = IN_HOOK.try_with(|f| f.replace(true)).unwrap_or(false);
    if reentered {
        return;
    }
    if crate::util::unwind::is_guarded() {
        let _ = IN_HOOK.try_with(|f| f.set(false));
        return;
    }
    let logger = match TARGET.read() {
        Ok(t) => t.clone(),
        Err(p) => p.into_inner().clone(),
    };
    if let Some(logger) = logger {
        if record(&logger, info) {
            crate::util::unwind::mark_recorded();
        }
    }
    let _ = IN_HOOK.try_with(|f| f.set(false));
}

/// Records the panic and waits until it is durable. Never panics: every
/// step below handles its failure.
fn record(logger: &EventLogger, info: &PanicHookInfo<'_>) -> bool {
    if logger.worker().is_disabled() {
        return false;
    }
    let message = payload_text(info.payload());
    let site = info
        .location()
        .map(|l| CallSite::Owned(Location::from_std(l)));
    // A panic is always stored, so this is always `Some`.
    let Some(ev) = logger.pending(
        Level::Fatal,
        EventKind::Panic,
        message,
        Vec::new(),
        site,
        Extras::default(),
    ) else {
        return false;
    };
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
            && worker::write_directly(w.path(), w.durability(), w.rules(), vec![ev], deadline)
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
    // Give the fatal alert a bounded chance to go out before the process
    // may die (retried if a failure's backoff fits). Sending happens on the
    // notify thread, not here.
    let wait = w.panic_alert_wait().min(left());
    if recorded && alerts && !wait.is_zero() && !w.is_current_thread() {
        w.drain_alerts(std::time::Instant::now() + wait);
    }
    recorded
}
