//! Where events are kept: the [`Store`] seam and what goes through it.
//!
//! A [`Store`] is the write side, owned by one thread at a time (the
//! writer, the notify thread, or the panic hook's fallback): it appends
//! batches of resolved events, registers loggers and hosts, keeps counters
//! and retention, and serves the outbox (claim a due alert, record how its
//! delivery went). A [`Reader`] is the read side behind [`Database`]: what
//! the `errsnap` command and a dashboard ask. `sqlite/` implements both for
//! `LOGS.db`; `postgres/` holds the shape of the PostgreSQL one. Nothing
//! outside this folder names a database library.
//!
//! The spool (`spool`) is the store's fallback when it cannot be written,
//! and the logger-name rules (`ident`) are shared by every backend.

pub(crate) mod claims;
mod ident;
pub(crate) mod postgres;
pub(crate) mod read;
pub(crate) mod reopen;
pub(crate) mod runs;
pub(crate) mod spool;
pub(crate) mod sqlite;
pub(crate) mod summary;
mod symbolicate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;
use crate::event::{Alert, AlertPolicy, Event, HostInfo};
pub use crate::settings::Durability;
pub(crate) use crate::settings::Limits;

pub(crate) use ident::validate_logger_name;
pub use read::{
    AlertStatus, ChannelHealth, CheckReport, DeliveryStatus, EventDetail, EventFilter, EventRow,
    ExportRow, GroupOrder, GroupQuery, GroupRow, GroupStatus, GroupValue, HostRow, HourCount,
    Sample, SearchHit, Stats,
};
pub use runs::{ReleaseRow, RunRow, RunStatus};
pub use symbolicate::{MissingModule, SymbolicateReport};

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    /// Events newly written (duplicates of stored ids are skipped).
    pub(crate) written: usize,
    /// Alerts made pending in the outbox.
    pub(crate) alerts: usize,
    /// With alerts: the outbox's highest row id after them (every row this
    /// batch made has an id at most this; 0 without alerts).
    pub(crate) outbox_mark: i64,
}

/// Rows of this run's own alerts, per channel and status, as
/// [`Store::own_rows`] counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnRows {
    pub(crate) channel: String,
    /// `pending`, `sending`, `sent`, `failed` or `dropped`.
    pub(crate) status: String,
    pub(crate) count: u64,
    /// The earliest `next_attempt` among them.
    pub(crate) next_attempt: Option<i64>,
}

/// What the writer knows about alerting for the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertRules {
    pub(crate) channels: Vec<String>,
    /// The channels among them that forward every routed event (Sentry,
    /// OTLP): one outbox row per event, no threshold, cooldown or mute.
    pub(crate) forward: Vec<String>,
    pub(crate) policy: AlertPolicy,
}

impl AlertRules {
    /// Whether `channel` forwards every routed event.
    pub(crate) fn forwards(&self, channel: &str) -> bool {
        self.forward.iter().any(|c| c == channel)
    }
}

/// One outbox row to deliver.
#[derive(Debug, Clone)]
pub(crate) struct DueAlert {
    pub(crate) id: i64,
    pub(crate) channel: String,
    /// The event's id (what a forwarding channel sends).
    pub(crate) event_uid: String,
    pub(crate) attempts: i64,
    pub(crate) created_at: i64,
}

/// What happened to a delivery attempt.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    Sent,
    Retry {
        at: i64,
        error: &'a str,
    },
    Failed {
        error: &'a str,
    },
    /// The channel broke: the row waits, unclaimed, for the next start.
    Parked {
        error: &'a str,
    },
}

/// Which events a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurgeRule {
    /// Events older than this timestamp (ms since the Unix epoch).
    OlderThan(i64),
    /// All but the newest `n` events.
    KeepNewest(u64),
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Events deleted.
    pub events: u64,
    /// Events that matched but were kept (first of their group, or with a
    /// pending alert).
    pub kept: u64,
    /// Snapshots no longer used, deleted.
    pub snapshots: u64,
    /// Backtraces no longer used, deleted (with their frames).
    pub backtraces: u64,
}

/// The write side of a store. Owned by one thread at a time; every method
/// is one transaction (or none), so a failure leaves nothing half done.
pub(crate) trait Store: Send + std::fmt::Debug {
    /// Where the store is, for messages and for the spool.
    fn path(&self) -> &Path;
    /// Sets the channels and policy used for alert decisions.
    fn set_alert_rules(&mut self, rules: AlertRules);
    /// Writes a batch in one transaction; events whose id is stored already
    /// are skipped (a retried or re-imported batch is written once).
    fn insert_batch(&mut self, events: &[Event]) -> Result<BatchOutcome>;
    /// Makes sure a logger exists (with its `SELECT * FROM <name>` view).
    fn ensure_logger(&mut self, name: &str) -> Result<i64>;
    /// Records the host description once; later events point to it.
    fn register_host(&mut self, host: &HostInfo, now_ms: i64) -> Result<i64>;
    /// Adds `delta` to a named counter (`dropped_events`, ...).
    fn add_counter(&mut self, name: &str, delta: u64) -> Result<()>;
    /// Replaces the frames of the stored stack with storage key `hash`
    /// (a raw stack committed first) with its named frames. `false` when
    /// no such stack is stored.
    fn name_frames(&mut self, hash: &str, frames: &[crate::event::Frame]) -> Result<bool>;
    /// Records this process's run, after judging earlier runs of this boot
    /// whose process is gone as abnormal; returns the run's id and how many
    /// were judged.
    fn start_run(&mut self, run: &runs::RunStart) -> Result<(i64, usize)>;
    /// Ends a run (`exited` only ends a running one; `crashed` also an
    /// exited one); `true` when its status changed.
    fn end_run(&mut self, id: i64, status: RunStatus, now_ms: i64) -> Result<bool>;
    /// How many runs crashed or ended abnormally at or after `since_ms`
    /// (the crash-loop rule).
    fn troubled_runs_since(&mut self, since_ms: i64) -> Result<u64>;
    /// The run's last sign of life, and its application and release when
    /// not known yet.
    fn touch_run(&mut self, id: i64, now_ms: i64, sign: &runs::RunSign<'_>) -> Result<()>;
    /// Marks the run of a process that died by a native crash as crashed,
    /// ended when it crashed, with its release (found by boot, pid and process start, so a reused
    /// pid is never taken for it). `false` when no such run is recorded or
    /// it was marked crashed already (by the panic the crash ended).
    fn crash_run(&mut self, run: &runs::CrashedRun<'_>) -> Result<bool>;
    /// Adds a native crash's details to the stored event `uid` (the panic
    /// that the crash ended) as its `crash` extra. `false` when no such
    /// event is stored.
    fn attach_crash(&mut self, uid: &str, details: &serde_json::Value) -> Result<bool>;
    /// Applies automatic retention; returns how many events were deleted.
    fn enforce_retention(&mut self, limits: Limits) -> Result<u64>;

    /// Turns ended cooldowns with held-back occurrences into digests.
    fn make_due_digests(&mut self, rules: &AlertRules, now: i64) -> Result<usize>;
    /// When the next digest falls due.
    fn next_digest_at(&mut self, rules: &AlertRules) -> Result<Option<i64>>;
    /// Alerts due now on these channels, oldest first.
    fn due_alerts(&mut self, channels: &[String], now: i64, limit: usize) -> Result<Vec<DueAlert>>;
    /// When the next retry on these channels falls due.
    fn next_attempt_at(&mut self, channels: &[String]) -> Result<Option<i64>>;
    /// Claims a due alert for this process; `false` if another took it.
    fn claim(&mut self, id: i64, now: i64) -> Result<bool>;
    /// The alert an outbox row stands for, built from its stored event.
    fn load_alert(&mut self, id: i64) -> Result<Option<Alert>>;
    /// Records how a delivery went.
    fn record_outcome(&mut self, id: i64, outcome: Outcome<'_>, now: i64) -> Result<()>;
    /// Who this store's claims name: this process's run (see
    /// [`claims`]).
    fn claimant(&self) -> &claims::Claimant;
    /// The rows being sent, with their claims.
    fn claims_in_flight(&mut self) -> Result<Vec<claims::Claim>>;
    /// How the runs ledger records the run `c` names (`None`: unknown).
    fn run_status_of(&mut self, c: &claims::Claimant) -> Result<Option<RunStatus>>;
    /// Puts a claimed row back to pending; `false` if it was no longer
    /// being sent.
    fn put_back(&mut self, id: i64) -> Result<bool>;
    /// Makes every pending row due now.
    fn retry_pending_now(&mut self, now: i64) -> Result<()>;
    /// The outbox's highest row id (0 when empty).
    fn outbox_mark(&mut self) -> Result<i64>;
    /// This run's own rows (made by events the run `run` wrote) with ids in
    /// `(after, upto]`, counted per channel and status.
    fn own_rows(&mut self, run: i64, after: i64, upto: i64) -> Result<Vec<OwnRows>>;
}

/// The read side of a store, behind [`Database`]; each method is what the
/// `Database` method of the same name documents.
pub(crate) trait Reader: Send + std::fmt::Debug {
    fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>>;
    fn histogram(&self, group: i64, since: i64, until: i64, buckets: usize) -> Result<Vec<u64>>;
    fn for_each_event(&self, f: &EventFilter, each: &mut dyn FnMut(EventRow) -> bool)
        -> Result<()>;
    fn count_events(&self, f: &EventFilter) -> Result<u64>;
    fn event(&self, id: &str) -> Result<Option<EventDetail>>;
    /// One event in full, by its full id, without its alerts' deliveries
    /// (what a forwarding channel sends).
    fn event_to_forward(&self, uid: &str) -> Result<Option<EventDetail>>;
    /// An event's attachments (by id or prefix), with their bytes.
    fn attachments(&self, uid: &str) -> Result<Vec<crate::event::StoredAttachment>>;
    fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>>;
    fn stats(&self, top: usize) -> Result<Stats>;
    fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool>;
    fn purge_candidates(&self, rule: PurgeRule) -> Result<Vec<String>>;
    fn purge(&mut self, rule: PurgeRule) -> Result<PurgeReport>;
    fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter>;
    fn vacuum(&self) -> Result<()>;
    fn check(&self) -> Result<CheckReport>;
    fn for_each_export(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(ExportRow) -> bool,
    ) -> Result<()>;
    fn last_row(&self) -> Result<Option<i64>>;
    fn raw_backtraces(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<crate::event::Frame>)>>;
    fn replace_frames(&mut self, id: i64, frames: &[crate::event::Frame]) -> Result<()>;
    fn runs(&self, limit: usize) -> Result<Vec<RunRow>>;
    fn releases(&self) -> Result<Vec<runs::ReleaseRow>>;
    fn hourly(&self, groups: Option<&[i64]>, since: i64, until: i64) -> Result<Vec<HourCount>>;
    fn group_values(&self, group: i64) -> Result<Vec<GroupValue>>;
    fn values(&self, key: &str, limit: usize) -> Result<Vec<String>>;
    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>>;
    fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>>;
    fn deliveries(&self) -> Result<Vec<ChannelHealth>>;
}

/// Where a logger's events are stored: the file at its path, or (feature
/// `postgres`) a PostgreSQL database shared by a fleet, the file's
/// directory then keeping only the spool and the crash files.
#[derive(Debug, Clone, Default)]
pub(crate) enum Backend {
    /// The SQLite file at the logger's path.
    #[default]
    File,
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(std::sync::Arc<postgres::connect::PgTarget>),
}

impl Backend {
    /// Whether events go to the file (not to a server).
    pub(crate) fn is_file(&self) -> bool {
        matches!(self, Backend::File)
    }
}

/// Opens the store at `path` (or the server `backend` names) for writing,
/// creating and migrating it. With `recover`, a damaged file is first
/// moved aside (with its `-wal` and `-shm`) and a new one created.
pub(crate) fn open(
    path: &Path,
    backend: &Backend,
    durability: Durability,
    busy_timeout: Duration,
    recover: bool,
) -> Result<Box<dyn Store>> {
    match backend {
        Backend::File => {}
        #[cfg(feature = "postgres")]
        Backend::Postgres(target) => {
            return Ok(Box::new(postgres::PgStore::open(target, path)?));
        }
    }
    let store = if recover {
        sqlite::SqliteStore::open_or_recover(path, durability, busy_timeout)?
    } else {
        sqlite::SqliteStore::open(path, durability, busy_timeout)?
    };
    Ok(Box::new(store))
}

/// What the caller's thread checks before a writer starts, without opening
/// anything: the database file can be made where it should be (a missing
/// directory is an error of `build`, not a silent spool). Opening, which
/// reads the schema or reaches a server, is the writer's.
pub(crate) fn prepare(path: &Path, backend: &Backend) -> Result<()> {
    match backend {
        Backend::File => sqlite::create_private(path),
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) => Ok(()),
    }
}

/// Opens the read side of the store at `path` (or on the server `backend`
/// names): what a forwarding channel reads each event from, in full.
pub(crate) fn open_reader(path: &Path, backend: &Backend) -> Result<Box<dyn Reader>> {
    match backend {
        Backend::File => Ok(Box::new(sqlite::read::SqliteReader::open(path)?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres(target) => Ok(Box::new(postgres::read::PgReader::open(target)?)),
    }
}

/// Moves a damaged store aside (no connection of this process may be open
/// on it); returns where it went.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf> {
    sqlite::move_aside(path)
}

/// An errsnap database, opened for reading and administration: what the
/// `errsnap` command shows, available to programs.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("LOGS.db");
/// # let logger = errsnap::EventLogger::builder().name("t").path(&path).config(errsnap::Config::empty()).build()?;
/// # logger.error("disk full"); logger.flush(std::time::Duration::from_secs(10));
/// let db = errsnap::Database::open(&path)?;
/// let groups = db.groups(&errsnap::GroupQuery::default())?;
/// assert_eq!(groups[0].title, "disk full");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Database {
    reader: Box<dyn Reader>,
    path: PathBuf,
}

impl Database {
    /// Opens an existing errsnap database.
    ///
    /// # Errors
    /// The file does not exist, is not an errsnap database (another
    /// program's, an unknown schema), or was written by a newer errsnap this
    /// build cannot read.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        Ok(Database {
            reader: Box::new(sqlite::read::SqliteReader::open(path)?),
            path: path.to_owned(),
        })
    }

    /// Opens a fleet's PostgreSQL database (`postgres://...`; feature
    /// `postgres`) for reading, the password and CA file taken from
    /// `config` when the URL has none (`ERRSNAP_DATABASE_PASSWORD`,
    /// `ERRSNAP_TLS_CA_FILE`). Everything but export and symbolicate reads
    /// it (those say they read a file only, for now).
    ///
    /// # Errors
    /// The URL is not usable, the server cannot be reached or refuses the
    /// login, or the database holds no errsnap schema; never with the
    /// password in the message.
    #[cfg(feature = "postgres")]
    pub fn open_url(url: &str, config: &crate::settings::Config) -> Result<Database> {
        let target = postgres::migrate_target(url, config)?;
        Ok(Database {
            reader: Box::new(postgres::read::PgReader::open(&target)?),
            path: PathBuf::from(target.display()),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lists groups.
    pub fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>> {
        self.reader.groups(q)
    }

    /// Occurrences of a group in `buckets` equal slices of `[since, until)`.
    pub fn histogram(
        &self,
        group: i64,
        since: i64,
        until: i64,
        buckets: usize,
    ) -> Result<Vec<u64>> {
        self.reader.histogram(group, since, until, buckets)
    }

    /// Lists events.
    pub fn events(&self, f: &EventFilter) -> Result<Vec<EventRow>> {
        let mut out = Vec::new();
        self.reader.for_each_event(f, &mut |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    /// Calls `each` for every event the filter selects, streaming. The
    /// callback's error type only needs `From<errsnap::Error>` (as
    /// `anyhow::Error` has); its first error stops the walk and is returned.
    pub fn for_each_event<E: From<crate::error::Error>>(
        &self,
        f: &EventFilter,
        each: impl FnMut(EventRow) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        until_error(|cb| self.reader.for_each_event(f, cb), each)
    }

    /// Counts the events a filter selects.
    pub fn count_events(&self, f: &EventFilter) -> Result<u64> {
        self.reader.count_events(f)
    }

    /// One event in full, by id (or a unique prefix of at least 6 characters).
    pub fn event(&self, id: &str) -> Result<Option<EventDetail>> {
        self.reader.event(id)
    }

    /// The attachments of an event (given in full or by a unique prefix of
    /// at least 6 characters), with their bytes; empty when it has none
    /// or is not stored.
    pub fn attachments(&self, id: &str) -> Result<Vec<crate::event::StoredAttachment>> {
        self.reader.attachments(id)
    }

    /// Writes an event's attachments into `dir`, one file each, and
    /// returns the files written (those a cap dropped have no bytes and
    /// are skipped). `dir` is created (0700) when missing and must be
    /// yours and not writable by others; each file is created new (never
    /// over an existing file, never through a link), mode 0600, named after
    /// the attachment with any path and control characters removed
    /// (`-2`, `-3`, ... before the extension on a clash).
    ///
    /// # Errors
    /// The event cannot be read, `dir` is refused, or a file cannot be
    /// written.
    pub fn save_attachments(&self, id: &str, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        let attachments = self.attachments(id)?;
        if attachments.iter().all(|a| a.data().is_none()) {
            return Ok(Vec::new());
        }
        let io = |what: String| move |e| crate::error::Error::io(what, e);
        let target = crate::util::private_dir::PrivateDir::open_or_create(dir)
            .map_err(io(format!("opening {}", dir.display())))?;
        let mut written = Vec::new();
        for a in &attachments {
            let Some(data) = a.data() else { continue };
            let name = crate::event::clean_name(a.name());
            let (stem, ext) = match name.rsplit_once('.') {
                Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
                _ => (name.clone(), String::new()),
            };
            let mut n = 1;
            let mut file = loop {
                let candidate = if n == 1 {
                    name.clone()
                } else {
                    format!("{stem}-{n}{ext}")
                };
                match target.create_rw(std::ffi::OsStr::new(&candidate)) {
                    Ok(f) => break (f, candidate),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                    Err(e) => {
                        return Err(io(format!("creating {candidate} in {}", dir.display()))(e))
                    }
                }
            };
            std::io::Write::write_all(&mut file.0, data)
                .map_err(io(format!("writing {}", file.1)))?;
            written.push(dir.join(&file.1));
        }
        Ok(written)
    }

    /// The hosts recorded, with their descriptions.
    pub fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>> {
        self.reader.hosts()
    }

    /// Counts per level, logger and day, the top groups, alerts, losses and
    /// the file's size.
    pub fn stats(&self, top: usize) -> Result<Stats> {
        self.reader.stats(top)
    }

    /// The newest `limit` runs (one per process that opened the store), with
    /// how each ended: exited, crashed, abnormal (gone without a word), or
    /// still running.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        self.reader.runs(limit)
    }

    /// Each release's health, newest first: its runs and how they ended
    /// (the crash-free share), the groups new in it and those that
    /// regressed in it.
    pub fn releases(&self) -> Result<Vec<runs::ReleaseRow>> {
        self.reader.releases()
    }

    /// One group, by id.
    pub fn group(&self, id: i64) -> Result<Option<GroupRow>> {
        let q = GroupQuery {
            ids: vec![id],
            ..GroupQuery::default()
        };
        Ok(self.reader.groups(&q)?.into_iter().next())
    }

    /// Occurrences per hour in `[since, until)` (ms), to the hour: of each
    /// of `groups`, or (`None`) of every group together. Hours without an
    /// occurrence are left out. Purging events keeps these counts, as it
    /// keeps each group's count.
    pub fn hourly(&self, groups: Option<&[i64]>, since: i64, until: i64) -> Result<Vec<HourCount>> {
        self.reader.hourly(groups, since, until)
    }

    /// The releases, environments and hosts a group was seen with, each
    /// with its count and first and last time (the 50 most recently seen
    /// of each kind).
    pub fn group_values(&self, group: i64) -> Result<Vec<GroupValue>> {
        self.reader.group_values(group)
    }

    /// The values of `key` (`release`, `environment` or `host`) any group
    /// was seen with, most recently seen first (at most `limit`).
    pub fn values(&self, key: &str, limit: usize) -> Result<Vec<String>> {
        self.reader.values(key, limit)
    }

    /// Groups whose message, error chain or frames (function and file
    /// names) hold every word of `query` (the last one also as a prefix),
    /// best match first, at most `limit`. Each distinct text of a group is
    /// indexed once, however often it occurred.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        self.reader.search(query, limit)
    }

    /// The CPU and memory figures of a group's newest `limit` occurrences
    /// that have a snapshot, oldest first.
    pub fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>> {
        self.reader.samples(group, limit)
    }

    /// Alert deliveries per channel: pending, failed, sent, and the newest
    /// error.
    pub fn deliveries(&self) -> Result<Vec<ChannelHealth>> {
        self.reader.deliveries()
    }

    /// Sets a group's status; `false` if there is no such group.
    pub fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool> {
        self.reader.set_group_status(group, status)
    }

    /// The group of an event (id or unique prefix).
    pub fn group_of(&self, event: &str) -> Result<Option<i64>> {
        Ok(self.reader.event(event)?.map(|d| d.row.group))
    }

    /// The ids of the events a purge would delete.
    pub fn purge_candidates(&self, rule: PurgeRule) -> Result<Vec<String>> {
        self.reader.purge_candidates(rule)
    }

    /// Deletes events (never the first of a group, nor one with an alert
    /// pending) and what only they used.
    pub fn purge(&mut self, rule: PurgeRule) -> Result<PurgeReport> {
        self.reader.purge(rule)
    }

    /// The filter selecting what a purge would delete (to archive it first).
    pub fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter> {
        self.reader.purge_bound(rule)
    }

    /// Gives free space back to the file system.
    pub fn vacuum(&self) -> Result<()> {
        self.reader.vacuum()
    }

    /// Integrity, schema version, alerts waiting or failed, and the spool
    /// (see [`check_path`](Self::check_path)).
    pub fn check(&self) -> Result<CheckReport> {
        self.reader.check()
    }

    /// Checks the database at `path` without changing it: whether errsnap
    /// can use it at all (another program's file, an unknown schema), its
    /// integrity, alerts waiting or failed, the spool, lines that could not
    /// be imported, and the file's permissions. Never fails: what cannot be
    /// checked is a problem in the report.
    pub fn check_path(path: impl AsRef<Path>) -> CheckReport {
        sqlite::read::SqliteReader::check_path(path)
    }

    /// Calls `each` for every event the filter selects, in full export
    /// form, oldest first; the callback's first error stops the walk.
    pub fn for_each_export<E: From<crate::error::Error>>(
        &self,
        f: &EventFilter,
        each: impl FnMut(ExportRow) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        until_error(|cb| self.reader.for_each_export(f, cb), each)
    }

    /// The row id of the newest event, if any (for following new events).
    pub fn last_row(&self) -> Result<Option<i64>> {
        self.reader.last_row()
    }
}

/// Runs a streaming walk with a fallible callback: the callback's first
/// error stops the walk and is returned; the walk's own error converts.
fn until_error<R, E: From<crate::error::Error>>(
    walk: impl FnOnce(&mut dyn FnMut(R) -> bool) -> Result<()>,
    mut each: impl FnMut(R) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut failed = None;
    walk(&mut |row| match each(row) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    failed.map_or(Ok(()), Err)
}
