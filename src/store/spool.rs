//! The fallback spool: when the database cannot be written, resolved events
//! are appended as JSON Lines to `spool-<pid>.jsonl` (fsynced) and imported
//! into the database once it works again or at the next start. Import skips
//! events already stored (by id), so each lands exactly once.
//!
//! Where: `<db>.spool/` beside the database, else a per-user directory
//! (`$XDG_STATE_HOME/errsnap/spool-<hash of the db path>/`, see
//! [`crate::util::private_dir::user_state_dir`]). Every directory and file goes
//! through [`PrivateDir`]: owned by us, not writable by others, no symlinks,
//! files created `O_EXCL` 0600. A line that cannot be imported is moved to
//! `rejected-<pid>.jsonl` in the same directory, never deleted, and counted.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::event::Event;
use crate::store::seam::{BatchOutcome, Store};
use crate::util::internal_log;
use crate::util::private_dir::{self, PrivateDir};

/// Serializes this process's appends and imports of its own spool file.
static SPOOL_LOCK: Mutex<()> = Mutex::new(());

/// The counter (in the `counters` table) of spool lines set aside.
pub(crate) const REJECTED_COUNTER: &str = "spool_rejected";

/// Which private directory of a database: the spool, or the crash files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Private {
    /// `<db>.spool/`: fallback files (this module).
    Spool,
    /// `<db>.crash/`: the crash handler's files (`crate::crash`).
    Crash,
}

impl Private {
    fn word(self) -> &'static str {
        match self {
            Private::Spool => "spool",
            Private::Crash => "crash",
        }
    }
}

/// The spool directory beside a database file.
pub(crate) fn dir_for(db: &Path) -> PathBuf {
    private_dir_for(db, Private::Spool)
}

/// The private directory of kind `kind` beside a database file.
pub(crate) fn private_dir_for(db: &Path, kind: Private) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".");
    s.push(kind.word());
    PathBuf::from(s)
}

/// The name of a database's private directory inside the per-user state
/// directory.
fn fallback_name_of(db: &Path, kind: Private) -> OsString {
    let mut h = crate::pipeline::fingerprint::StableHasher::new();
    h.field(&db.to_string_lossy());
    let hash = h.finish_hex();
    OsString::from(format!("{}-{}", kind.word(), &hash[..16]))
}

#[cfg(test)]
fn fallback_name(db: &Path) -> OsString {
    fallback_name_of(db, Private::Spool)
}

/// The per-user fallback spool of `db`, created if needed.
fn fallback_dir(db: &Path) -> std::io::Result<PrivateDir> {
    private_dir::user_state_dir()?.subdir(&fallback_name_of(db, Private::Spool))
}

/// The private directories of `db` that exist and pass the checks (nothing
/// is created), and the reasons for those that exist but were refused.
fn existing_dirs_and_refusals(db: &Path) -> (Vec<PrivateDir>, Vec<std::io::Error>) {
    existing_private_dirs(db, Private::Spool)
}

/// As [`existing_dirs_and_refusals`], for either kind.
pub(crate) fn existing_private_dirs(
    db: &Path,
    kind: Private,
) -> (Vec<PrivateDir>, Vec<std::io::Error>) {
    let mut dirs = Vec::new();
    let mut refused = Vec::new();
    let primary = private_dir_for(db, kind);
    if std::fs::symlink_metadata(&primary).is_ok() {
        match PrivateDir::open(&primary) {
            Ok(d) => dirs.push(d),
            Err(e) => refused.push(e),
        }
    }
    let name = fallback_name_of(db, kind);
    let (bases, base_refusals) = private_dir::existing_user_state_dirs();
    refused.extend(base_refusals);
    for base in bases {
        if std::fs::symlink_metadata(base.path().join(&name)).is_err() {
            continue;
        }
        match base.subdir(&name) {
            Ok(d) => dirs.push(d),
            Err(e) => refused.push(e),
        }
    }
    (dirs, refused)
}

/// The private directory of kind `kind` of `db`, created if needed: beside
/// the database, else in the per-user state directory.
pub(crate) fn ensure_private_dir(db: &Path, kind: Private) -> std::io::Result<PrivateDir> {
    match PrivateDir::open_or_create(&private_dir_for(db, kind)) {
        Ok(d) => Ok(d),
        Err(e) => {
            internal_log::report(kind.word(), &e);
            private_dir::user_state_dir()?.subdir(&fallback_name_of(db, kind))
        }
    }
}

/// The usable spool directories of `db`; refused ones are reported.
fn existing_dirs(db: &Path) -> Vec<PrivateDir> {
    let (dirs, refused) = existing_dirs_and_refusals(db);
    for e in &refused {
        internal_log::report("spool directory", e);
    }
    dirs
}

fn own_file() -> OsString {
    OsString::from(format!("spool-{}.jsonl", std::process::id()))
}

/// Appends events to this process's spool file and fsyncs it: beside the
/// database if possible, else in the per-user directory.
pub(crate) fn append(db: &Path, events: &[Event]) -> std::io::Result<()> {
    let _guard = SPOOL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut buf = Vec::new();
    for ev in events {
        serde_json::to_writer(&mut buf, ev).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    let primary =
        PrivateDir::open_or_create(&dir_for(db)).and_then(|d| append_in(&d, &own_file(), &buf));
    match primary {
        Ok(()) => Ok(()),
        Err(e) => {
            internal_log::report("spool", &e);
            fallback_dir(db).and_then(|d| append_in(&d, &own_file(), &buf))
        }
    }
}

fn append_in(dir: &PrivateDir, name: &OsStr, buf: &[u8]) -> std::io::Result<()> {
    let new = std::fs::symlink_metadata(dir.path().join(name)).is_err();
    let mut file = dir.append(name)?;
    let len = file.metadata()?.len();
    if let Err(e) = file.write_all(buf).and_then(|()| file.sync_data()) {
        // Leave no partial line behind (the next append starts clean).
        let _ = file.set_len(len);
        return Err(e);
    }
    if new {
        let _ = dir.sync();
    }
    Ok(())
}

/// Whether a spool file (one we would read) waits to be imported.
/// (Files of other live processes are theirs to import: not counted.)
pub(crate) fn has_pending(db: &Path) -> bool {
    let me = std::process::id();
    existing_dirs(db).iter().any(|d| {
        d.names()
            .map(|n| {
                n.iter().any(|n| {
                    pid_of(n).is_some_and(|pid| pid == me || !process_alive(pid))
                        && d.read(n).is_ok()
                })
            })
            .unwrap_or(false)
    })
}

/// What waits in the spool, and what was set aside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SpoolState {
    /// Spool files waiting to be imported.
    pub(crate) files: u64,
    /// Events in them.
    pub(crate) events: u64,
    /// Files of rejected lines (full paths), with their line counts.
    pub(crate) rejected: Vec<(PathBuf, u64)>,
    /// Spool directories or files that exist but were refused (never
    /// read), with the reason.
    pub(crate) refused: Vec<String>,
}

/// Counts what waits and what was rejected (for `errsnap check`).
pub(crate) fn state(db: &Path) -> SpoolState {
    let mut st = SpoolState::default();
    let (dirs, refused) = existing_dirs_and_refusals(db);
    st.refused.extend(refused.iter().map(ToString::to_string));
    for dir in dirs {
        for name in dir.names().unwrap_or_default() {
            if pid_of(&name).is_none() && !is_rejected(&name) {
                continue;
            }
            let lines = match dir.read(&name) {
                Ok(f) => std::io::BufReader::new(f).split(b'\n').count() as u64,
                Err(e) => {
                    // A link, another user's file, a FIFO: never read.
                    st.refused.push(e.to_string());
                    continue;
                }
            };
            if pid_of(&name).is_some() {
                st.files += 1;
                st.events += lines;
            } else {
                st.rejected.push((dir.path().join(&name), lines));
            }
        }
    }
    st
}

fn pid_of(name: &OsStr) -> Option<u32> {
    name.to_str()?
        .strip_prefix("spool-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

fn is_rejected(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("rejected-") && n.ends_with(".jsonl"))
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

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Imported {
    pub(crate) outcome: BatchOutcome,
    /// Lines set aside in `rejected-<pid>.jsonl`.
    pub(crate) rejected: u64,
}

/// Imports the spool files of this process and of processes that are gone,
/// then removes them. Lines that cannot be read as events are moved to
/// `rejected-<pid>.jsonl` and counted.
pub(crate) fn import(store: &mut dyn Store) -> crate::error::Result<Imported> {
    let mut total = Imported::default();
    for dir in existing_dirs(store.path()) {
        import_dir(store, &dir, &mut total)?;
    }
    if total.rejected > 0 {
        store.add_counter(REJECTED_COUNTER, total.rejected)?;
    }
    Ok(total)
}

/// How many events go into the database per transaction during an import.
const IMPORT_BATCH: usize = 500;

fn import_dir(
    store: &mut dyn Store,
    dir: &PrivateDir,
    total: &mut Imported,
) -> crate::error::Result<()> {
    let names = match dir.names() {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    let me = std::process::id();
    for name in names {
        let Some(pid) = pid_of(&name) else { continue };
        if pid != me && process_alive(pid) {
            continue;
        }
        let _guard = SPOOL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let file = match dir.read(&name) {
            Ok(f) => f,
            Err(e) => {
                // Not ours, a link, not a regular file: never read it.
                internal_log::report("spool import", &e);
                continue;
            }
        };
        let mut batch = Vec::new();
        let mut rejected: Vec<Vec<u8>> = Vec::new();
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| {
                crate::error::Error::io(format!("reading {}", dir.path().join(&name).display()), e)
            })?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(&line) {
                Ok(ev) => batch.push(ev),
                Err(_) => rejected.push(line),
            }
            if batch.len() >= IMPORT_BATCH {
                add(&mut total.outcome, store.insert_batch(&batch)?);
                batch.clear();
            }
        }
        add(&mut total.outcome, store.insert_batch(&batch)?);
        if !rejected.is_empty() {
            set_aside(dir, &rejected)?;
            total.rejected += rejected.len() as u64;
            internal_log::report(
                "spool import",
                &format_args!(
                    "{} lines of {} could not be imported; kept in {}",
                    rejected.len(),
                    dir.path().join(&name).display(),
                    dir.path().join(format!("rejected-{me}.jsonl")).display()
                ),
            );
        }
        dir.remove(&name).map_err(|e| {
            crate::error::Error::io(format!("removing {}", dir.path().join(&name).display()), e)
        })?;
    }
    // Leave no empty spool directory behind (it fails if anything is left).
    let _ = std::fs::remove_dir(dir.path());
    Ok(())
}

fn add(total: &mut BatchOutcome, o: BatchOutcome) {
    total.written += o.written;
    total.alerts += o.alerts;
    total.outbox_mark = total.outbox_mark.max(o.outbox_mark);
}

/// Appends unreadable lines to `rejected-<pid>.jsonl` (fsynced).
fn set_aside(dir: &PrivateDir, lines: &[Vec<u8>]) -> crate::error::Result<()> {
    let name = OsString::from(format!("rejected-{}.jsonl", std::process::id()));
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    append_in(dir, &name, &buf).map_err(|e| {
        crate::error::Error::io(
            format!(
                "keeping rejected lines in {}",
                dir.path().join(&name).display()
            ),
            e,
        )
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    #[allow(clippy::unwrap_used)]
    fn store(dir: &Path) -> crate::store::sqlite::SqliteStore {
        crate::store::sqlite::SqliteStore::open(
            &dir.join("LOGS.db"),
            crate::settings::Durability::Normal,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn stored(s: &crate::store::sqlite::SqliteStore) -> i64 {
        s.count("SELECT count(*) FROM events")
    }

    #[test]
    fn a_finished_process_is_not_alive() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn append_then_import_exactly_once() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("LOGS.db");
        assert!(!has_pending(&db));
        append(&db, &[Event::sample("one"), Event::sample("two")]).unwrap();
        append(&db, &[Event::sample("three")]).unwrap();
        let file = dir_for(&db).join(own_file());
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(has_pending(&db));
        let st = state(&db);
        assert_eq!((st.files, st.events), (1, 3));
        assert!(st.rejected.is_empty() && st.refused.is_empty());
        let mut s = store(t.path());
        let done = import(&mut s).unwrap();
        assert_eq!(done.outcome.written, 3);
        assert_eq!(done.rejected, 0);
        assert_eq!(stored(&s), 3);
        assert!(!has_pending(&db));
        assert!(
            !dir_for(&db).exists(),
            "an empty spool directory is removed"
        );
        // The same events again (a second import of a copy): skipped by id.
        let again = import(&mut s).unwrap();
        assert_eq!(again.outcome.written, 0);
        assert_eq!(state(&db), SpoolState::default());
    }

    #[test]
    fn a_live_process_keeps_its_file_and_a_dead_one_is_imported() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("LOGS.db");
        append(&db, &[Event::sample("mine")]).unwrap();
        let line = std::fs::read(dir_for(&db).join(own_file())).unwrap();
        std::fs::remove_file(dir_for(&db).join(own_file())).unwrap();
        // pid 1 is alive; 999999 is not.
        for pid in [1, 999_999] {
            let p = dir_for(&db).join(format!("spool-{pid}.jsonl"));
            std::fs::write(&p, &line).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut s = store(t.path());
        assert_eq!(import(&mut s).unwrap().outcome.written, 1);
        assert!(dir_for(&db).join("spool-1.jsonl").exists());
        assert!(!dir_for(&db).join("spool-999999.jsonl").exists());
        assert_eq!(pid_of(OsStr::new("spool-42.jsonl")), Some(42));
        assert_eq!(pid_of(OsStr::new("spool-x.jsonl")), None);
        assert_eq!(pid_of(OsStr::new("rejected-42.jsonl")), None);
        assert!(is_rejected(OsStr::new("rejected-42.jsonl")));
        assert!(!is_rejected(OsStr::new("rejected-42.json")));
        assert!(!is_rejected(OsStr::new("spool-42.jsonl")));
    }

    #[test]
    fn unreadable_lines_are_set_aside_counted_and_reported() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("LOGS.db");
        append(&db, &[Event::sample("good")]).unwrap();
        let file = dir_for(&db).join(own_file());
        let mut text = std::fs::read(&file).unwrap();
        text.extend_from_slice(b"not json\n\n   \n{\"half\": \n");
        std::fs::write(&file, &text).unwrap();
        let mut s = store(t.path());
        let done = import(&mut s).unwrap();
        assert_eq!((done.outcome.written, done.rejected), (1, 2));
        assert_eq!(stored(&s), 1);
        assert_eq!(
            s.count("SELECT value FROM counters WHERE name = 'spool_rejected'"),
            2
        );
        let rejected = dir_for(&db).join(format!("rejected-{}.jsonl", std::process::id()));
        assert_eq!(
            std::fs::read(&rejected).unwrap(),
            b"not json\n{\"half\": \n"
        );
        assert!(!has_pending(&db), "rejected lines are not pending");
        let st = state(&db);
        assert_eq!(st.rejected, vec![(rejected, 2)]);
        assert_eq!((st.files, st.events), (0, 0));
    }

    #[test]
    fn links_and_foreign_directories_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("LOGS.db");
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir_for(&db)).unwrap();
        let st = state(&db);
        assert_eq!(st.refused.len(), 1, "{st:?}");
        assert!(st.refused[0].contains("symbolic link"), "{st:?}");
        assert!(!has_pending(&db));
        // A linked spool file inside a good directory is not read either.
        std::fs::remove_file(dir_for(&db)).unwrap();
        append(&db, &[Event::sample("real")]).unwrap();
        std::os::unix::fs::symlink(
            dir_for(&db).join(own_file()),
            dir_for(&db).join("spool-999998.jsonl"),
        )
        .unwrap();
        let st = state(&db);
        assert_eq!((st.files, st.events), (1, 1));
        assert_eq!(st.refused.len(), 1);
        assert!(st.refused[0].contains("spool-999998.jsonl"), "{st:?}");
        let mut s = store(t.path());
        assert_eq!(import(&mut s).unwrap().outcome.written, 1);
        assert!(!has_pending(&db));
    }

    #[test]
    fn ensure_dir_makes_the_private_spool_and_imports_count_alerts() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("LOGS.db");
        // Two groups routed to a channel: two first-sight alerts.
        let mut events = Vec::new();
        for (i, fp) in ["a", "b", "b"].iter().enumerate() {
            let mut e = Event::sample(&format!("routed {i}"));
            e.fingerprint = (*fp).to_owned();
            e.alert_channels = vec!["slack".to_owned()];
            events.push(e);
        }
        append(&db, &events).unwrap();
        assert_eq!(
            std::fs::metadata(dir_for(&db))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let mut s = store(t.path());
        crate::store::seam::Writer::set_alert_rules(
            &mut s,
            crate::store::seam::AlertRules {
                channels: vec!["slack".to_owned()],
                forward: Vec::new(),
                takes: Vec::new(),
                policy: Default::default(),
            },
        );
        let done = import(&mut s).unwrap();
        assert_eq!((done.outcome.written, done.outcome.alerts), (3, 2));
    }

    #[test]
    fn fallback_names_are_per_database() {
        let a = fallback_name(Path::new("/srv/a/LOGS.db"));
        assert_eq!(a, fallback_name(Path::new("/srv/a/LOGS.db")));
        assert_ne!(a, fallback_name(Path::new("/srv/b/LOGS.db")));
        assert_eq!(a.len(), "spool-".len() + 16);
        assert_eq!(
            dir_for(Path::new("/x/LOGS.db")),
            PathBuf::from("/x/LOGS.db.spool")
        );
    }
}
