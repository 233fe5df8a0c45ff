//! The SQLite store (`LOGS.db`): the only module that speaks SQLite. A
//! [`SqliteStore`] is owned by one writer thread (or the notify thread, or
//! the panic hook's fallback) and writes batches of resolved events in
//! `BEGIN IMMEDIATE` transactions; [`read::SqliteReader`] answers the read
//! side.

pub(crate) mod conn;
mod insert;
pub(crate) mod read;
pub(crate) mod schema;
mod summary;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Fault, Result};
use crate::event::Event;
use crate::event::HostInfo;
use crate::store::sql::writer;

use crate::settings::Durability;
use crate::store::seam::{AlertRules, BatchOutcome};

/// A storage error from SQLite, classified for the writer (a lock held
/// elsewhere, a damaged file) so no layer above needs rusqlite's types.
/// `column` of `table` when the file has it, else `NULL`: a newer reader
/// on a file no writer has migrated yet reads what is there.
/// Around `fork()`: the forking thread holds SQLite's global (static)
/// mutexes, so that a child never inherits one locked by a thread that does
/// not exist there (a child that records opens a connection of its own,
/// which takes them: the allocator's, the random generator's, the VFS's).
/// They are taken in SQLite's own order (the outer ones first, the
/// allocator's last), after the random generator's one-time set-up, the
/// one place where SQLite takes an outer one inside an inner one.
#[cfg(unix)]
pub(crate) mod fork {
    use std::cell::RefCell;

    use rusqlite::ffi;

    /// Outer to inner.
    const ORDER: [std::os::raw::c_int; 9] = [
        ffi::SQLITE_MUTEX_STATIC_MAIN,
        ffi::SQLITE_MUTEX_STATIC_OPEN,
        ffi::SQLITE_MUTEX_STATIC_VFS1,
        ffi::SQLITE_MUTEX_STATIC_VFS2,
        ffi::SQLITE_MUTEX_STATIC_VFS3,
        ffi::SQLITE_MUTEX_STATIC_LRU,
        ffi::SQLITE_MUTEX_STATIC_PMEM,
        ffi::SQLITE_MUTEX_STATIC_PRNG,
        ffi::SQLITE_MUTEX_STATIC_MEM,
    ];

    thread_local! {
        /// The mutexes `prepare` entered on this (the forking) thread, as
        /// addresses, released in reverse by `release` (two threads may
        /// fork at once: each keeps its own).
        static HELD: RefCell<[usize; ORDER.len()]> = const { RefCell::new([0; ORDER.len()]) };
    }

    /// `pthread_atfork`'s prepare handler.
    pub(crate) extern "C" fn prepare() {
        let mut held = [0usize; ORDER.len()];
        // SAFETY: static SQLite mutexes (allocated once, never freed),
        // entered by this thread and left by `release` in both processes;
        // the random call sets the generator up outside any of them.
        unsafe {
            let mut byte = 0u8;
            ffi::sqlite3_randomness(1, (&mut byte as *mut u8).cast());
            for (slot, id) in held.iter_mut().zip(ORDER) {
                let m = ffi::sqlite3_mutex_alloc(id);
                if !m.is_null() {
                    ffi::sqlite3_mutex_enter(m);
                    *slot = m as usize;
                }
            }
        }
        let _ = HELD.try_with(|h| *h.borrow_mut() = held);
    }

    /// `pthread_atfork`'s parent and child handler.
    pub(crate) extern "C" fn release() {
        let held = HELD
            .try_with(|h| std::mem::replace(&mut *h.borrow_mut(), [0; ORDER.len()]))
            .unwrap_or([0; ORDER.len()]);
        for &m in held.iter().rev().filter(|&&m| m != 0) {
            // SAFETY: a mutex `prepare` entered on this same thread.
            unsafe { ffi::sqlite3_mutex_leave(m as *mut ffi::sqlite3_mutex) };
        }
    }
}

pub(crate) fn column_or_null(conn: &Connection, table: &str, column: &str) -> String {
    let has = conn
        .prepare_cached("SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2")
        .and_then(|mut s| s.query_row([table, column], |r| r.get::<_, i64>(0)))
        .unwrap_or(0)
        > 0;
    if has {
        column.to_owned()
    } else {
        "NULL".to_owned()
    }
}

pub(crate) fn fail(context: impl Into<String>, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseCorrupt, DatabaseLocked, NotADatabase};
    let fault = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            DatabaseBusy | DatabaseLocked => Fault::Busy,
            DatabaseCorrupt | NotADatabase => Fault::Corrupt,
            _ => Fault::Other,
        },
        _ => Fault::Other,
    };
    Error::storage(context, e).with_fault(fault)
}

/// Bytes the database uses (pages in use, not free pages).
pub(crate) fn used_bytes(c: &mut dyn crate::store::sql::Conn) -> Result<u64> {
    let mut pragma = |p: &str| -> Result<i64> {
        c.one(
            "measuring the database",
            &format!("PRAGMA {p}"),
            crate::store::sql::params![],
        )
    };
    let used = (pragma("page_count")? - pragma("freelist_count")?).max(0) * pragma("page_size")?;
    Ok(used as u64)
}

/// Bounded caches cleared when they grow past this many entries.
const CACHE_LIMIT: usize = 10_000;

pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    loggers: HashMap<String, i64>,
    backtraces: HashMap<String, i64>,
    /// Fingerprint -> group id (groups are never deleted).
    groups: HashMap<String, i64>,
    /// The merged groups, as last read.
    pub(super) merges: crate::store::sql::grouping::Merges,
    host_id: Option<i64>,
    /// The registered host's name (a value groups are seen with).
    host_name: Option<String>,
    /// Search texts known to be stored.
    texts: crate::store::summary::KnownTexts,
    rules: AlertRules,
    /// This process's run, once recorded: the origin of the outbox rows
    /// its events make.
    run: Option<i64>,
    /// Who this connection's claims name.
    claimant: crate::store::claims::Claimant,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Creates the file with owner-only permissions (0600) on Unix if it does not
/// exist yet, so that SQLite (and its `-wal`/`-shm` files) inherit them.
pub(crate) fn create_private(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(format!("creating {}", path.display()), e)),
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub(crate) fn open(
        path: &Path,
        durability: Durability,
        busy_timeout: Duration,
    ) -> Result<SqliteStore> {
        create_private(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| fail(format!("opening {}", path.display()), e))?;
        let ctx = |what: &str| format!("{what} on {}", path.display());
        conn.busy_timeout(busy_timeout)
            .map_err(|e| fail(ctx("setting busy_timeout"), e))?;
        // Decide whether the file is ours before anything (even the journal
        // mode) is changed in it: another program's database, or a schema
        // this build cannot write, is refused and left untouched.
        schema::inspect(&conn, path)?;
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(|e| fail(ctx("setting pragmas"), e))?;
        // Closing the last connection would checkpoint the WAL into the
        // file (fsyncs) and delete it: a short-lived program would pay that
        // at every exit, and the next start would make the WAL again. The
        // WAL is checkpointed as it grows instead (`wal_autocheckpoint`,
        // on a commit), and read by every SQLite reader meanwhile.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(|e| fail(ctx("setting the close behaviour"), e))?;
        let mut store = SqliteStore {
            conn,
            path: path.to_owned(),
            loggers: HashMap::new(),
            backtraces: HashMap::new(),
            groups: HashMap::new(),
            merges: Default::default(),
            host_id: None,
            host_name: None,
            texts: Default::default(),
            rules: AlertRules::default(),
            run: None,
            claimant: crate::store::claims::Claimant::this_process(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens the database; a damaged file (or one that is not a database)
    /// is first moved aside, with its `-wal` and `-shm`, to
    /// `<path>.corrupt-<time>`, and a new one is created. Nothing is
    /// overwritten.
    pub(crate) fn open_or_recover(
        path: &Path,
        durability: Durability,
        busy_timeout: Duration,
    ) -> Result<SqliteStore> {
        match SqliteStore::open(path, durability, busy_timeout) {
            Err(e) if e.is_corrupt() => {
                let moved = move_aside(path)?;
                crate::util::internal_log::report(
                    "corrupt database",
                    &format_args!(
                        "{} was damaged; moved to {}",
                        path.display(),
                        moved.display()
                    ),
                );
                SqliteStore::open(path, durability, busy_timeout)
            }
            other => other,
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.display().to_string();
        if let schema::Disposition::Ours { version } = schema::inspect(&self.conn, &self.path)? {
            if version >= schema::LATEST {
                return Ok(());
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail(format!("starting the migration of {path}"), e))?;
        // Another process may have migrated (or created) the file while we
        // waited for the lock: decide again under it.
        let version = match schema::inspect(&tx, &self.path)? {
            schema::Disposition::New => 0,
            schema::Disposition::Ours { version } => version,
        };
        if version >= schema::LATEST {
            return Ok(());
        }
        for (i, m) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m.sql)
                .map_err(|e| fail(format!("migrating {path} to schema version {}", i + 1), e))?;
        }
        if (1..6).contains(&version) {
            summary::backfill_texts(&tx)?;
        }
        let min_writer = schema::MIGRATIONS
            .last()
            .map_or(schema::LATEST, |m| m.min_writer);
        tx.execute(schema::RECORD_META, params![schema::LATEST, min_writer])
            .map_err(|e| fail(format!("recording the schema of {path}"), e))?;
        tx.execute_batch(&format!(
            "PRAGMA user_version = {}; PRAGMA application_id = {};",
            schema::LATEST,
            schema::APPLICATION_ID
        ))
        .map_err(|e| fail(format!("recording the schema version of {path}"), e))?;
        tx.commit()
            .map_err(|e| fail(format!("committing the migration of {path}"), e))
    }

    /// Makes sure the logger exists, with its `SELECT * FROM <name>` view.
    pub(crate) fn ensure_logger(&mut self, name: &str) -> Result<i64> {
        if let Some(&id) = self.loggers.get(name) {
            return Ok(id);
        }
        // Registered already (every start but the first): a read, never
        // the write lock.
        let known: Option<i64> = self
            .conn
            .query_row("SELECT id FROM loggers WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| fail(format!("registering logger {name:?}"), e))?;
        let id = match known {
            Some(id) => id,
            None => (&mut conn::Lite(&self.conn) as &mut dyn crate::store::sql::Conn)
                .in_transaction("registering a logger", |c| writer::logger_id(c, name))?,
        };
        self.loggers.insert(name.to_owned(), id);
        Ok(id)
    }

    /// One integer from a query, for unit tests.
    #[cfg(test)]
    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.conn.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
    }
}

/// Moves a damaged database and its `-wal`/`-shm` files aside. Must only be
/// called with no connection of this process open on it.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = crate::util::time::compact(crate::util::time::now_ms());
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".corrupt-{stamp}-{}", std::process::id()));
    let target = PathBuf::from(target);
    std::fs::rename(path, &target)
        .map_err(|e| Error::io(format!("moving the damaged {} aside", path.display()), e))?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let from = PathBuf::from(from);
        if from.exists() {
            let mut to = target.as_os_str().to_owned();
            to.push(suffix);
            std::fs::rename(&from, PathBuf::from(to)).map_err(|e| {
                Error::io(format!("moving the damaged {} aside", from.display()), e)
            })?;
        }
    }
    Ok(target)
}

impl crate::store::sql::backend::SqlStore for SqliteStore {
    fn conn(&mut self) -> Box<dyn crate::store::sql::Conn + '_> {
        Box::new(conn::Lite(&self.conn))
    }

    fn claims_as(&self) -> (&crate::store::claims::Claimant, crate::store::sql::Value) {
        let pid = crate::store::sql::Value::Int(i64::from(self.claimant.pid));
        (&self.claimant, pid)
    }
}

impl crate::store::seam::Writer for SqliteStore {
    fn path(&self) -> &Path {
        &self.path
    }
    fn set_alert_rules(&mut self, rules: AlertRules) {
        self.rules = rules;
    }
    fn insert_batch(&mut self, events: &[Event]) -> Result<BatchOutcome> {
        let out = SqliteStore::insert_batch(self, events);
        if out.is_err() {
            self.merges.forget();
        }
        out
    }
    fn attach_crash(
        &mut self,
        uid: &str,
        details: &serde_json::Value,
        attachments: &[crate::event::StoredAttachment],
    ) -> Result<bool> {
        writer::attach_crash(&mut conn::Lite(&self.conn), uid, details, attachments)
    }
    fn name_frames(&mut self, hash: &str, frames: &[crate::event::Frame]) -> Result<bool> {
        crate::store::sql::maintenance::name_frames(&mut conn::Lite(&self.conn), hash, frames)
    }
    fn ensure_logger(&mut self, name: &str) -> Result<i64> {
        SqliteStore::ensure_logger(self, name)
    }
    fn register_host(&mut self, host: &HostInfo, now_ms: i64) -> Result<i64> {
        let id = writer::register_host(&mut conn::Lite(&self.conn), host, now_ms)?;
        self.host_id = Some(id);
        self.host_name.clone_from(&host.hostname);
        Ok(id)
    }
    fn add_counter(&mut self, name: &str, delta: u64) -> Result<()> {
        writer::add_counter(
            &mut conn::Lite(&self.conn),
            name,
            delta,
            &self.rules,
            self.run,
        )
    }
    fn adopt_grouping(
        &mut self,
        current: Option<&crate::settings::grouping::GroupingConfig>,
    ) -> Result<crate::store::seam::Adopted> {
        crate::store::sql::grouping::adopt(&mut conn::Lite(&self.conn), current)
    }

    fn enforce_retention(&mut self, limits: crate::settings::Limits) -> Result<u64> {
        let tables = crate::store::sql::maintenance::Tables {
            attachments: true,
            texts: true,
        };
        crate::store::sql::maintenance::enforce(
            &mut conn::Lite(&self.conn),
            limits,
            crate::util::time::now_ms(),
            tables,
            &used_bytes,
        )
    }
}

impl crate::store::sql::backend::SqlRuns for SqliteStore {
    fn host(&self) -> Option<i64> {
        self.host_id
    }
    fn set_run(&mut self, id: i64) {
        self.run = Some(id);
    }
    fn run(&self) -> Option<i64> {
        self.run
    }
    fn rules(&self) -> &crate::store::AlertRules {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_sets_the_synchronous_pragma() {
        let dir = tempfile::tempdir().unwrap();
        for (d, expected) in [(Durability::Normal, 1), (Durability::Full, 2)] {
            let store =
                SqliteStore::open(&dir.path().join("s.db"), d, Duration::from_secs(1)).unwrap();
            let sync: i64 = store
                .conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sync, expected, "{d:?}");
            let mode: String = store
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    /// A logger's view lists its events with their host; a table of the
    /// logger's name that is not ours keeps its place and its rows, and
    /// the events are still stored.
    #[test]
    fn a_loggers_view_has_the_host_and_never_replaces_a_table() {
        use crate::store::seam::Writer;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let mut store =
            SqliteStore::open(&path, Durability::Normal, Duration::from_secs(1)).unwrap();
        store
            .conn
            .execute_batch("CREATE TABLE theirs (note TEXT); INSERT INTO theirs VALUES ('kept');")
            .unwrap();
        let host = crate::event::HostInfo {
            hostname: Some("build-7".into()),
            ..crate::event::HostInfo::default()
        };
        store.register_host(&host, 1).unwrap();
        for logger in ["mine", "theirs"] {
            let mut e = Event::sample("disk full");
            e.logger = logger.into();
            assert_eq!(store.insert_batch(&[e]).unwrap().written, 1, "{logger}");
        }
        let (message, hostname): (String, String) = store
            .conn
            .query_row("SELECT message, hostname FROM mine", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (message.as_str(), hostname.as_str()),
            ("disk full", "build-7")
        );
        let note: String = store
            .conn
            .query_row("SELECT note FROM theirs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(note, "kept");
        assert_eq!(store.count("SELECT count(*) FROM events"), 2);
    }

    /// Three alerts claimed by three runs: another host's ended run, a
    /// gone process of this boot, and this process; what each rule of
    /// `store::claims` puts back.
    #[test]
    // Long by design: one store through the whole story of its claims
    // (made, then put back by each rule in turn), each assertion counting
    // on what the steps before left.
    fn claims_are_put_back_by_the_shared_rules() {
        use crate::store::claims::Claimant;
        use crate::store::seam::{Outbox, Store, Writer};
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(
            &dir.path().join("c.db"),
            Durability::Normal,
            Duration::from_secs(1),
        )
        .unwrap();
        store.set_alert_rules(AlertRules {
            channels: vec!["slack".into()],
            ..Default::default()
        });
        let events: Vec<Event> = ["a", "b", "c", "d"]
            .iter()
            .map(|fp| {
                let mut e = Event::sample(&format!("failure {fp}"));
                e.fingerprint = (*fp).to_owned();
                e.alert_channels = vec!["slack".into()];
                e
            })
            .collect();
        assert_eq!(store.insert_batch(&events).unwrap().alerts, 4);
        let me = store.claimant().clone();
        let gone = Claimant {
            boot_id: me.boot_id.clone(),
            pid: me.pid,
            process_start: me.process_start.map(|s| s + 1),
        };
        let now = crate::util::time::now_ms();
        store
            .conn
            .execute_batch(&format!(
                "INSERT INTO runs (boot_id, pid, process_start, started_at, status)
                     VALUES ('far', 7, 7, 1, 'crashed'), ('far', 8, 8, 1, 'running');
                 UPDATE outbox SET status = 'sending', claimed_at = {now}, claim_run = CASE id
                     WHEN 1 THEN 'far/7/7' WHEN 2 THEN '{}' WHEN 3 THEN '{}'
                     ELSE 'far/8/8' END;",
                gone.key(),
                me.key()
            ))
            .unwrap();
        let status = |store: &SqliteStore| -> Vec<String> {
            store
                .conn
                .prepare("SELECT status FROM outbox ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        // This boot's gone process: asked about with its own pid and start.
        let alive = |pid: u32, start: Option<u64>| (pid, start) != (gone.pid, gone.process_start);
        store.release_stale(&alive, false).unwrap();
        assert_eq!(
            status(&store),
            ["pending", "pending", "sending", "sending"],
            "the ended run's and the gone process's claims, not this one's or a live run's"
        );
        store.release_own().unwrap();
        assert_eq!(status(&store), ["pending", "pending", "pending", "sending"]);
        // At start, what is pending is retried at once.
        store
            .conn
            .execute(
                "UPDATE outbox SET next_attempt = ?1 WHERE id = 1",
                [now + 3_600_000],
            )
            .unwrap();
        store.release_stale(&alive, true).unwrap();
        let due: i64 = store
            .conn
            .query_row("SELECT next_attempt FROM outbox WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(due <= crate::util::time::now_ms(), "{due}");
        assert_eq!(status(&store)[3], "sending", "a live run's claim stays");
    }
}
