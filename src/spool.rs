//! The fallback spool: when the database cannot be written, resolved events
//! are appended as JSON Lines to `<db>.spool/spool-<pid>.jsonl` (fsynced),
//! and imported into the database once it works again or at the next start.
//! Import skips events already stored (by id), so each lands exactly once.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::event::Event;
use crate::store::{BatchOutcome, Store};

/// Serializes this process's appends and imports of its own spool file.
static SPOOL_LOCK: Mutex<()> = Mutex::new(());

/// The spool directory of a database file.
pub(crate) fn dir_for(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".spool");
    PathBuf::from(s)
}

/// Creates the spool directory (owner-only on Unix) if needed.
pub(crate) fn ensure_dir(db: &Path) -> std::io::Result<PathBuf> {
    let dir = dir_for(db);
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&dir)?;
    Ok(dir)
}

/// Appends events to this process's spool file and fsyncs it.
pub(crate) fn append(db: &Path, events: &[Event]) -> std::io::Result<()> {
    let _guard = SPOOL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = ensure_dir(db)?;
    let path = dir.join(format!("spool-{}.jsonl", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&path)?;
    let mut buf = Vec::new();
    for ev in events {
        serde_json::to_writer(&mut buf, ev).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    file.write_all(&buf)?;
    file.sync_data()?;
    Ok(())
}

/// Whether a spool file exists and holds anything.
pub(crate) fn has_pending(db: &Path) -> bool {
    std::fs::read_dir(dir_for(db))
        .map(|mut d| d.any(|e| e.is_ok()))
        .unwrap_or(false)
}

/// Spool files waiting to be imported, and the events in them.
pub(crate) fn pending_counts(db: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir_for(db)) else {
        return (0, 0);
    };
    let mut files = 0;
    let mut events = 0;
    for e in entries.flatten() {
        if pid_of(&e.path()).is_none() {
            continue;
        }
        files += 1;
        if let Ok(f) = std::fs::File::open(e.path()) {
            events += std::io::BufReader::new(f).lines().count() as u64;
        }
    }
    (files, events)
}

fn pid_of(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_prefix("spool-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

#[cfg(unix)]
pub(crate) fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
pub(crate) fn process_alive(_pid: u32) -> bool {
    false
}

/// Imports the spool files of this process and of processes that are gone,
/// then removes them. Returns what the writes did.
pub(crate) fn import(store: &mut Store) -> crate::Result<BatchOutcome> {
    let dir = dir_for(store.path());
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(_) => return Ok(BatchOutcome::default()),
    };
    let me = std::process::id();
    let mut total = BatchOutcome::default();
    let mut add = |o: BatchOutcome| {
        total.written += o.written;
        total.alerts += o.alerts;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = pid_of(&path) else { continue };
        if pid != me && process_alive(pid) {
            continue;
        }
        let _guard = SPOOL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(_) => continue,
        };
        let mut batch = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            // A line cut short by a crash is not valid JSON: skip it.
            if let Ok(ev) = serde_json::from_str::<Event>(&line) {
                batch.push(ev);
            }
            if batch.len() >= 500 {
                add(store.insert_batch(&batch)?);
                batch.clear();
            }
        }
        add(store.insert_batch(&batch)?);
        std::fs::remove_file(&path)
            .map_err(|e| crate::Error::io(format!("removing {}", path.display()), e))?;
    }
    let _ = std::fs::remove_dir(&dir);
    Ok(total)
}
