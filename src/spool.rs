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

/// Where the spool goes when the database's own directory cannot take it
/// (a full or read-only file system): a folder in the system's temporary
/// directory, named after the database's path.
pub(crate) fn fallback_dir_for(db: &Path) -> PathBuf {
    let mut h = crate::fingerprint::StableHasher::new();
    h.field(&db.to_string_lossy());
    let hash = h.finish_hex();
    std::env::temp_dir().join(format!("errsnap-spool-{}", &hash[..16]))
}

/// Both spool directories, the primary first.
fn dirs_for(db: &Path) -> [PathBuf; 2] {
    [dir_for(db), fallback_dir_for(db)]
}

/// Creates the spool directory (owner-only on Unix) if needed.
pub(crate) fn ensure_dir(db: &Path) -> std::io::Result<PathBuf> {
    create_dir(&dir_for(db)).or_else(|_| create_dir(&fallback_dir_for(db)))
}

fn create_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let dir = dir.to_owned();
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

/// Appends events to this process's spool file and fsyncs it: beside the
/// database if possible, else in the fallback directory.
pub(crate) fn append(db: &Path, events: &[Event]) -> std::io::Result<()> {
    let _guard = SPOOL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    for dir in dirs_for(db) {
        match create_dir(&dir).and_then(|dir| append_in(&dir, events)) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no spool directory")))
}

fn append_in(dir: &Path, events: &[Event]) -> std::io::Result<()> {
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
    let len = file.metadata()?.len();
    if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
        // Leave no partial line behind (the next append starts clean).
        let _ = file.set_len(len);
        return Err(e);
    }
    Ok(())
}

/// Whether a spool file exists and holds anything.
pub(crate) fn has_pending(db: &Path) -> bool {
    dirs_for(db).iter().any(|dir| {
        std::fs::read_dir(dir)
            .map(|mut d| d.any(|e| e.is_ok()))
            .unwrap_or(false)
    })
}

/// Spool files waiting to be imported, and the events in them.
pub(crate) fn pending_counts(db: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut events = 0;
    let entries = dirs_for(db)
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten();
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
    let mut total = BatchOutcome::default();
    for dir in dirs_for(store.path()) {
        let o = import_dir(store, &dir)?;
        total.written += o.written;
        total.alerts += o.alerts;
    }
    Ok(total)
}

fn import_dir(store: &mut Store, dir: &Path) -> crate::Result<BatchOutcome> {
    let entries = match std::fs::read_dir(dir) {
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
    let _ = std::fs::remove_dir(dir);
    Ok(total)
}
