//! [`Database`]: an errsnap database opened for reading and
//! administration, what the `errsnap` command shows, for programs too.

use std::path::{Path, PathBuf};

use super::read::*;
use super::runs::{self, RunRow};
use super::seam::{Admin, PurgeReport, PurgeRule};
use crate::error::Result;
use crate::event::HostInfo;

/// An errsnap database, opened for reading and administration: what the
/// `errsnap` command shows, available to programs.
///
/// ```
/// # fn main() -> errsnap::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("LOGS.db");
/// # let logger = errsnap::EventLogger::builder().name("t").db_path(&path).config(errsnap::Config::empty()).build()?;
/// # logger.error("disk full"); logger.flush(std::time::Duration::from_secs(10));
/// let db = errsnap::db::Database::open(&path)?;
/// let groups = db.groups(&errsnap::db::GroupQuery::default())?;
/// assert_eq!(groups[0].title, "disk full");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Database {
    pub(super) reader: Box<dyn Admin>,
    path: PathBuf,
    /// Opened from a file (with a spool beside it), not a server.
    file: bool,
}

impl Database {
    /// The file a logger writes when no path is configured: `LOGS.db` in
    /// the working directory, as in the original design.
    pub const DEFAULT_PATH: &'static str = crate::settings::DEFAULT_DB_PATH;

    /// Opens an existing errsnap database.
    ///
    /// # Errors
    /// The file does not exist, is not an errsnap database (another
    /// program's, an unknown schema), or was written by a newer errsnap this
    /// build cannot read.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        Ok(Database {
            reader: super::open::admin(path)?,
            path: path.to_owned(),
            file: true,
        })
    }

    /// Opens a fleet's PostgreSQL database (`postgres://...`; feature
    /// `postgres`) or MySQL / MariaDB database (`mysql://...`,
    /// `mariadb://...`; feature `mysql`) for reading, the password and CA file taken from
    /// `config` when the URL has none (`ERRSNAP_DATABASE_PASSWORD`,
    /// `ERRSNAP_TLS_CA_FILE`). Everything reads it as it reads a file.
    ///
    /// # Errors
    /// The URL is not usable, the server cannot be reached or refuses the
    /// login, or the database holds no errsnap schema; never with the
    /// password in the message.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
    pub fn open_url(url: &str, config: &crate::settings::Config) -> Result<Database> {
        let (reader, shown) = super::open::admin_url(url, config)?;
        Ok(Database {
            reader,
            path: PathBuf::from(shown),
            file: false,
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
        self.reader.runs(limit, None)
    }

    /// Every monitor by slug, with its latest `runs` runs (newest first)
    /// and when the next is expected.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn monitors(&self, runs: usize) -> Result<Vec<crate::monitors::rows::MonitorRow>> {
        self.reader.monitors(runs)
    }

    /// Run `id` (`None`: no such run).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>> {
        Ok(self.reader.runs(1, Some(id))?.pop())
    }

    /// Run `run`'s flight recorder: the readings taken from `since_ms` to
    /// `until_ms` (ms since the Unix epoch), oldest first. The writer takes
    /// one on each heartbeat (`ERRSNAP_HEARTBEAT_SECS`); a run that died
    /// leaves those its crash file held, imported by the next start.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn run_samples(
        &self,
        run: i64,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<crate::event::sample::RunSample>> {
        self.reader.run_samples(run, since_ms, until_ms)
    }

    /// The minutes before event `id` (its id or unique prefix, as
    /// [`event`](Database::event) takes it): its run, the flight recorder's
    /// readings of the [`TREND_WINDOW_MS`](crate::db::TREND_WINDOW_MS)
    /// before it, and their trend in words. `None` for an unknown event or
    /// one whose run was not recorded.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn event_trend(&self, id: &str) -> Result<Option<EventTrend>> {
        let Some(d) = self.reader.event(id)? else {
            return Ok(None);
        };
        Ok(self
            .reader
            .trend_before(&d.row.id)?
            .map(|(run, readings)| EventTrend {
                run,
                words: crate::pipeline::trend::describe_trend(&readings),
                readings,
            }))
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

    /// Merges the groups `from` into `into`, for good: their events move
    /// there, their counts are added, and their fingerprints' future
    /// events go there too (from every process writing the store). Undone
    /// group by group with [`unmerge`](Self::unmerge).
    ///
    /// # Errors
    /// A group that does not exist or is merged already (the message says
    /// into which), `into` among `from`, or the store failed.
    pub fn merge(&self, into: i64, from: &[i64]) -> Result<MergeReport> {
        self.reader.merge_groups(into, from)
    }

    /// Takes the merged group `group` back out of the group it was merged
    /// into, with its events (those retention already deleted stay counted
    /// where they were); its fingerprint groups apart again from then on.
    ///
    /// # Errors
    /// No such group, or it is not merged; the store failed.
    pub fn unmerge(&self, group: i64) -> Result<MergeReport> {
        self.reader.unmerge_group(group)
    }

    /// Groups every stored event again by the grouping rules of `config`
    /// (its settings file's `[[grouping]]`), from the fields as stored
    /// (redacted), as the writer groups new ones; events whose fingerprint
    /// the code chose stay where they are. With `apply` false, a dry run:
    /// says which events would move where. With `apply`, moves them (a
    /// page at a time: a run cut short is finished by running it again),
    /// merges a group left without events into the one that took most, and
    /// records the rules as the store's (writers stop keeping events in
    /// their earlier groups: see the transition in the guide).
    ///
    /// # Errors
    /// The rules do not parse (the error names the rule and key), or the
    /// store failed.
    pub fn regroup(&self, config: &crate::settings::Config, apply: bool) -> Result<RegroupReport> {
        let settings = crate::settings::Settings::from_config(config)?;
        self.reader.regroup(&settings.grouping, apply)
    }

    /// The suspect commit of a group: `git blame`, at the commit its
    /// newest event's release names, of the lines of that event's top
    /// in-app frames (see [`Suspects`](crate::db::Suspects)). `None`: no
    /// such group.
    ///
    /// # Errors
    /// `git` cannot be run, the repository has no such commit, or the store
    /// failed.
    pub fn suspects(
        &self,
        group: i64,
        repo: &crate::suspect::Repository,
    ) -> Result<Option<crate::suspect::Suspects>> {
        let Some(g) = self.group(group)? else {
            return Ok(None);
        };
        let Some(ev) = self.event(&g.last_event)? else {
            return Ok(None);
        };
        let location = ev.row.file.clone().map(|file| crate::event::Location {
            file,
            line: ev.row.line.unwrap_or(0),
            column: ev.column.unwrap_or(0),
        });
        crate::suspect::suspects(repo, ev.release.as_deref(), location.as_ref(), &ev.frames)
            .map(Some)
    }

    /// The groups merged into `group`.
    ///
    /// # Errors
    /// The store failed.
    pub fn merged_into(&self, group: i64) -> Result<Vec<GroupRow>> {
        self.reader.groups(&GroupQuery {
            merged_into: Some(group),
            ..GroupQuery::default()
        })
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
        let mut r = self.reader.check()?;
        if self.file {
            super::open::add_spool(&mut r, &self.path);
        }
        Ok(r)
    }

    /// Checks the database at `path` without changing it: whether errsnap
    /// can use it at all (another program's file, an unknown schema), its
    /// integrity, alerts waiting or failed, the spool, lines that could not
    /// be imported, and the file's permissions. Never fails: what cannot be
    /// checked is a problem in the report.
    pub fn check_path(path: impl AsRef<Path>) -> CheckReport {
        super::open::check_path(path.as_ref())
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

/// Connects to the server database at `url` (`postgres://`, feature
/// `postgres`; `mysql://` or `mariadb://`, feature `mysql`) and creates or
/// upgrades errsnap's schema in it: what `errsnap migrate` does, and every
/// process that opens the store. The password comes from the URL or
/// `ERRSNAP_DATABASE_PASSWORD`, trusted CAs from the URL or
/// `ERRSNAP_TLS_CA_FILE` in `config`. Safe from many processes at once.
///
/// # Errors
/// The server cannot be reached or refuses the login; the database holds
/// tables named like errsnap's that are not errsnap's; its schema is newer
/// than this build writes. No message holds the password.
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub fn migrate(url: &str, config: &crate::settings::Config) -> Result<super::read::Migration> {
    super::open::migrate_url(url, config)
}

/// The minutes before an event, as [`Database::event_trend`] finds them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct EventTrend {
    /// The run the event was raised in (a [`RunRow`] id).
    pub run: i64,
    /// Its flight recorder's readings of the minutes before, oldest first.
    pub readings: Vec<crate::event::sample::RunSample>,
    /// Their trend in words ([`describe_trend`](crate::db::describe_trend)).
    pub words: Vec<String>,
}
