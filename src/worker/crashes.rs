//! Importing crash files: each file left by a process that is gone and
//! that recorded a signal becomes one fatal event of kind `crash` (or is
//! linked to the panic it ended), its run is marked crashed, and the file
//! is removed. Files of processes that ended without a crash are removed.
//!
//! Exactly once: the event's id was fixed when the file was armed, and a
//! stored id is skipped, so a file imported twice (two processes starting
//! at once, a kill between the write and the removal) is stored once.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use crate::crash::file::{self, CrashFile};
use crate::pipeline::grouping::Grouping;
use crate::pipeline::redact::Redactor;
use crate::pipeline::symbols::SymbolTables;
use crate::pipeline::Context;
use crate::store::runs::still_running;
use crate::store::spool::{self, Private};
use crate::store::Store;
use crate::util::internal_log;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CrashImport {
    /// Crashes stored as new events.
    pub imported: usize,
    /// Crashes that ended a recorded panic, linked to it.
    pub linked: usize,
    /// Files of processes that ended without a crash, removed.
    pub cleaned: usize,
    /// Runs marked crashed by these crashes (not already by a panic).
    pub crashed_runs: usize,
    /// Flight-recorder readings the files held that their runs' stored
    /// series lacked (the last moments of a process killed between two
    /// writes), added to it.
    pub readings: usize,
    /// Files of processes still running, left alone.
    pub running: usize,
    /// Crashes of a logger with a `before_save` hook (or redaction
    /// patterns too long for the file), left for the application's next
    /// start: only it can run them.
    pub waiting: usize,
    /// Files refused (not ours, damaged), with the reason; never read
    /// further, never removed.
    pub refused: Vec<String>,
}

/// Whether the process of a crash file is gone.
fn gone(f: &CrashFile, boot_now: Option<&str>) -> bool {
    match (f.meta.boot_id.as_deref(), boot_now) {
        (Some(then), Some(now)) if then != now => true,
        _ => !still_running(f.meta.pid, f.meta.process_start),
    }
}

/// The application's loggers, by name, when the importer is the
/// application itself (its writer); `errsnap check` has none.
pub(crate) type Loggers<'a> = Option<&'a dyn Fn(&str) -> Option<Arc<Context>>>;

/// How a crash is redacted and kept: by the application's logger when the
/// importer has it (its `before_save` hook too), else by the redaction
/// settings the crash file recorded.
fn redaction(f: &CrashFile, logger: Option<&Context>) -> Arc<Redactor> {
    if let Some(c) = logger {
        return c.redactor.clone();
    }
    let m = &f.meta;
    Redactor::new(
        m.redact_emails,
        &m.redact_patterns,
        "the crash file's redaction",
    )
    .or_else(|_| Redactor::new(m.redact_emails, &[], "redaction"))
    .map(Arc::new)
    .unwrap_or_else(|_| Arc::new(Redactor::fail_closed()))
}

/// Runs the logger's `before_save` hook on a crash event, then redacts
/// again what it added; `false` when the hook dropped the event.
fn keep(
    event: &mut crate::event::Event,
    logger: Option<&Context>,
    redactor: &Redactor,
    grouping: &mut Grouping,
) -> bool {
    if let Some(hook) = logger.and_then(|c| c.before_save.as_ref()) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(event))) {
            Ok(false) => return false,
            Ok(true) => {}
            Err(_) => {
                event
                    .tags
                    .insert("errsnap.before_save".into(), "panicked".into());
            }
        }
        crate::event::bound_map_depth(&mut event.extra);
        event.redactions += redactor.event(event);
    }
    // Grouped as stored, as every event is (`pipeline::grouping`).
    let captured = std::mem::take(&mut event.fingerprint);
    grouping.apply(event, None, captured)
}

/// Imports the crash files of the store's database, except `skip` (this
/// process's own armed file). `loggers` are the importing application's:
/// a crash that only the application may import (its logger has a
/// `before_save` hook) waits until one of that name is there.
///
/// # Errors
/// The store failed; the files not yet imported stay for the next time.
pub(crate) fn import(
    store: &mut dyn Store,
    tables: &mut SymbolTables,
    grouping: &mut Grouping,
    skip: Option<&OsStr>,
    loggers: Loggers<'_>,
) -> crate::error::Result<CrashImport> {
    let mut report = CrashImport::default();
    let (dirs, refused) = spool::existing_private_dirs(store.path(), Private::Crash);
    report
        .refused
        .extend(refused.iter().map(ToString::to_string));
    let boot_now = crate::store::runs::boot_id();
    for dir in dirs {
        let names = dir.names().unwrap_or_default();
        for name in names {
            if !file::is_crash_name(&name) || Some(name.as_os_str()) == skip {
                continue;
            }
            let f = match file::read(&dir, &name) {
                Ok(f) => f,
                Err(e) => {
                    internal_log::report("crash file", &e);
                    report.refused.push(e.to_string());
                    continue;
                }
            };
            if !gone(&f, boot_now.as_deref()) {
                report.running += 1;
                continue;
            }
            // The flight recorder's last readings, with or without a crash
            // (added once: only those newer than the run's stored ones).
            if !f.readings.is_empty() {
                let m = &f.meta;
                if let Some(run) = store.find_run(m.boot_id.as_deref(), m.pid, m.process_start)? {
                    report.readings += store.append_samples(run, &f.readings)?;
                }
            }
            let logger = loggers.and_then(|find| find(&f.meta.logger));
            if f.meta.needs_app && logger.is_none() {
                report.waiting += 1;
                continue;
            }
            let redactor = redaction(&f, logger.as_deref());
            if let Some(mut ce) = crate::pipeline::crash::to_event(&f, tables, &redactor) {
                let kept = keep(&mut ce.event, logger.as_deref(), &redactor, grouping);
                let m = &f.meta;
                if store.crash_run(&crate::store::runs::CrashedRun {
                    boot_id: m.boot_id.as_deref(),
                    pid: m.pid,
                    process_start: m.process_start,
                    at_ms: ce.event.timestamp_ms,
                    release: m.release.as_deref(),
                    app_name: m.app_name.as_deref(),
                })? {
                    report.crashed_runs += 1;
                }
                let linked = match ce.after_panic {
                    Some(p) => {
                        store.attach_crash(&p.to_string(), &ce.details, &ce.event.attachments)?
                    }
                    None => false,
                };
                if linked {
                    report.linked += 1;
                } else if kept {
                    store.insert_batch(std::slice::from_ref(&ce.event))?;
                    report.imported += 1;
                }
            } else {
                report.cleaned += 1;
            }
            if let Err(e) = dir.remove(&name) {
                internal_log::report("crash file", &e);
            }
        }
    }
    Ok(report)
}

/// Imports the crash files left beside the database at `db` by processes
/// that are gone (what every process opening the store does at start; `errsnap
/// check` does it too), without the alert channels of a running logger:
/// the alerts are queued in the outbox for the next process that sends.
///
/// # Errors
/// The database cannot be opened or written.
pub fn import_crashes(db: impl AsRef<Path>) -> crate::error::Result<CrashImport> {
    // Never moves a damaged file aside: that is for a writer to decide
    // (`errsnap check` reports it instead).
    let mut store = crate::store::open(
        db.as_ref(),
        &crate::store::Backend::File,
        crate::store::Durability::Normal,
        std::time::Duration::from_secs(5),
        false,
    )?;
    let mut tables = SymbolTables::default();
    // Grouped as the store's writers group (read, never changed from here).
    let (current, earlier) = store.adopt_grouping(None)?;
    let mut grouping = Grouping {
        earlier,
        ..Grouping::new(current)
    };
    import(
        &mut *store,
        &mut tables,
        &mut grouping,
        crate::crash::armed_name().as_deref(),
        None,
    )
}
