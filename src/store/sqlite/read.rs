//! The read and administration side of a SQLite store, behind
//! [`crate::Database`]: groups, events, one event in full, statistics,
//! status changes, retention and checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    params_from_iter, types::Value as SqlValue, Connection, OpenFlags, OptionalExtension,
};

use super::fail;
use super::retention;
use super::schema;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventKind, HostInfo};
use crate::level::Level;
use crate::store::read::*;
use crate::store::summary::HOUR_MS;
use crate::store::{PurgeReport, PurgeRule};

/// An open SQLite database for reading and administration.
pub(crate) struct SqliteReader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Set once the file is seen at schema 6 or later (it never goes back).
    pub(super) summaries: std::cell::Cell<bool>,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish()
    }
}

pub(super) fn err(what: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| fail(what, e)
}

impl SqliteReader {
    /// Opens an existing errsnap database.
    ///
    /// # Errors
    /// The file does not exist, is not an errsnap database, or was written by
    /// a newer errsnap.
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<SqliteReader> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::new(ErrorKind::Io {
                context: format!("opening {}: no such file", path.display()),
            }));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(format!("opening {}", path.display()), e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(err("setting busy_timeout"))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
            .map_err(err("setting pragmas"))?;
        if schema::inspect(&conn, path)? == schema::Disposition::New {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "opening {}: an empty file, not yet an errsnap database",
                    path.display()
                ),
            }));
        }
        Ok(SqliteReader {
            conn,
            path: path.to_owned(),
            summaries: std::cell::Cell::new(false),
        })
    }

    /// Lists groups.
    pub(crate) fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>> {
        // Files not migrated to schema 5 (6) yet have no release columns
        // (summaries): a filter on them selects nothing.
        let v6 = self.has_summaries();
        let col = |c: &str| {
            if v6 {
                c.to_owned()
            } else {
                super::column_or_null(&self.conn, "event_groups", c)
            }
        };
        let first_release = col("first_release");
        let next = col("resolved_next");
        let mut sql = format!(
            "SELECT g.id, g.fingerprint, l.name, g.level, g.kind, g.title, g.culprit,
                    g.first_seen, g.last_seen, g.count,
                    CASE WHEN g.status = 'resolved' AND {next} = 1 THEN 'resolved-next'
                         ELSE g.status END,
                    g.last_event_uid, {first_release}, {}, {}
             FROM event_groups g JOIN loggers l ON l.id = g.logger_id WHERE 1 = 1",
            col("regressed_in"),
            col("regressed_at")
        );
        let mut args: Vec<SqlValue> = Vec::new();
        let mut arg = |v: SqlValue| {
            args.push(v);
            format!("?{}", args.len())
        };
        if !q.ids.is_empty() {
            let list: Vec<String> = q.ids.iter().map(i64::to_string).collect();
            sql.push_str(&format!(" AND g.id IN ({})", list.join(", ")));
        }
        if let Some(r) = &q.new_in {
            sql.push_str(&format!(" AND {first_release} = {}", arg(r.clone().into())));
        }
        if let Some(l) = &q.logger {
            sql.push_str(&format!(" AND l.name = {}", arg(l.clone().into())));
        }
        match q.status {
            None => {}
            Some(GroupStatus::ResolvedInNextRelease) => {
                sql.push_str(&format!(" AND g.status = 'resolved' AND {next} = 1"));
            }
            Some(s) => {
                sql.push_str(&format!(
                    " AND g.status = {}",
                    arg(s.stored().to_owned().into())
                ));
            }
        }
        if let Some(l) = q.min_level {
            sql.push_str(&format!(" AND g.level >= {}", arg(l.as_i64().into())));
        }
        let summaries = next != "NULL";
        for (key, value) in [
            ("release", &q.release),
            ("environment", &q.environment),
            ("host", &q.host),
        ] {
            let Some(value) = value else { continue };
            if !summaries {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(
                " AND g.id IN (SELECT group_id FROM group_values WHERE key = '{key}' AND value = {})",
                arg(value.clone().into())
            ));
        }
        if let Some(since) = q.since {
            sql.push_str(&format!(" AND g.last_seen >= {}", arg(since.into())));
        }
        if let Some(until) = q.until {
            sql.push_str(&format!(" AND g.first_seen < {}", arg(until.into())));
        }
        if summaries && (q.since.is_some() || q.until.is_some()) {
            // An occurrence in the range, to the hour.
            let from = q.since.map_or(i64::MIN, |t| t.div_euclid(HOUR_MS));
            let to = q.until.map_or(i64::MAX, |t| (t - 1).div_euclid(HOUR_MS));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM group_hours h WHERE h.group_id = g.id
                     AND h.hour BETWEEN {} AND {})",
                arg(from.into()),
                arg(to.into())
            ));
        }
        sql.push_str(match q.order {
            GroupOrder::LastSeen => " ORDER BY g.last_seen DESC, g.id DESC",
            GroupOrder::Count => " ORDER BY g.count DESC, g.last_seen DESC",
            GroupOrder::FirstSeen => " ORDER BY g.first_seen DESC, g.id DESC",
        });
        if q.limit > 0 || q.offset > 0 {
            let limit = if q.limit == 0 { -1 } else { q.limit as i64 };
            sql.push_str(&format!(" LIMIT {limit} OFFSET {}", q.offset));
        }
        let mut stmt = self.conn.prepare(&sql).map_err(err("listing groups"))?;
        let rows = stmt
            .query_map(params_from_iter(args), group_row)
            .and_then(|r| r.collect())
            .map_err(err("listing groups"));
        rows
    }

    /// Occurrences of a group in `buckets` equal slices of `[since, until)`.
    pub(crate) fn histogram(
        &self,
        group: i64,
        since: i64,
        until: i64,
        buckets: usize,
    ) -> Result<Vec<u64>> {
        let buckets = buckets.max(1);
        let width = ((until - since) / buckets as i64).max(1);
        let mut out = vec![0u64; buckets];
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT (ts - ?2) / ?4, count(*) FROM events
                 WHERE group_id = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY 1",
            )
            .map_err(err("counting occurrences"))?;
        let rows = stmt
            .query_map(rusqlite::params![group, since, until, width], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(err("counting occurrences"))?;
        for row in rows {
            let (b, n) = row.map_err(err("counting occurrences"))?;
            if let Some(slot) = usize::try_from(b).ok().and_then(|b| out.get_mut(b)) {
                *slot += n as u64;
            }
        }
        Ok(out)
    }

    fn event_query(f: &EventFilter) -> (String, Vec<SqlValue>) {
        let mut sql = String::from(
            "SELECT e.id, e.uid, e.ts, l.name, e.level, e.kind, e.message, e.file, e.line,
                    e.group_id, e.thread_name, e.pid
             FROM events e JOIN loggers l ON l.id = e.logger_id WHERE 1 = 1",
        );
        let mut args: Vec<SqlValue> = Vec::new();
        let mut cond = |sql: &mut String, c: &str, v: SqlValue| {
            args.push(v);
            sql.push_str(&c.replace('?', &format!("?{}", args.len())));
        };
        if let Some(g) = f.group {
            cond(&mut sql, " AND e.group_id = ?", g.into());
        }
        if let Some(l) = &f.logger {
            cond(&mut sql, " AND l.name = ?", l.clone().into());
        }
        if let Some(l) = f.min_level {
            cond(&mut sql, " AND e.level >= ?", l.as_i64().into());
        }
        if let Some(t) = f.since {
            cond(&mut sql, " AND e.ts >= ?", t.into());
        }
        if let Some(t) = f.until {
            cond(&mut sql, " AND e.ts < ?", t.into());
        }
        if let Some(g) = &f.grep {
            cond(
                &mut sql,
                " AND instr(lower(e.message), lower(?)) > 0",
                g.clone().into(),
            );
        }
        if let Some((file, line)) = &f.file {
            // An exact path, or any path ending in "/<file>".
            cond(&mut sql, " AND (e.file = ?", file.clone().into());
            cond(
                &mut sql,
                " OR e.file LIKE ? ESCAPE '\\')",
                like_suffix(file).into(),
            );
            if let Some(line) = line {
                cond(&mut sql, " AND e.line = ?", i64::from(*line).into());
            }
        }
        if let Some(r) = f.after_row {
            cond(&mut sql, " AND e.id > ?", r.into());
        }
        if let Some(r) = f.before_row {
            cond(&mut sql, " AND e.id < ?", r.into());
        }
        sql.push_str(if f.newest_first {
            " ORDER BY e.id DESC"
        } else {
            " ORDER BY e.id"
        });
        if f.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", f.limit));
        }
        (sql, args)
    }

    /// Calls `each` for every event the filter selects, streaming, until it
    /// returns `false`.
    pub(crate) fn for_each_event(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        let (sql, args) = Self::event_query(f);
        let mut stmt = self.conn.prepare(&sql).map_err(err("listing events"))?;
        let mut rows = stmt
            .query(params_from_iter(args))
            .map_err(err("listing events"))?;
        while let Some(r) = rows.next().map_err(err("listing events"))? {
            if !each(event_row(r).map_err(err("reading an event"))?) {
                break;
            }
        }
        Ok(())
    }

    /// Counts the events a filter selects.
    pub(crate) fn count_events(&self, f: &EventFilter) -> Result<u64> {
        let (sql, args) = Self::event_query(f);
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM ({sql})"),
                params_from_iter(args),
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(err("counting events"))
    }

    /// Statistics.
    pub(crate) fn stats(&self, top: usize) -> Result<Stats> {
        let mut s = Stats::default();
        let count = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(err("counting"))
        };
        s.events = count("SELECT count(*) FROM events")?;
        s.groups = count("SELECT count(*) FROM event_groups")?;
        let pairs = |sql: &str| -> Result<Vec<(String, i64)>> {
            self.conn
                .prepare(sql)
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(err("counting"))
        };
        for (l, n) in pairs("SELECT CAST(level AS TEXT), count(*) FROM events GROUP BY level")? {
            let name = l
                .parse::<i64>()
                .ok()
                .and_then(Level::from_i64)
                .map_or(l, |l| l.to_string());
            s.by_level.insert(name, n);
        }
        s.by_logger = pairs(
            "SELECT l.name, count(e.id) FROM loggers l LEFT JOIN events e ON e.logger_id = l.id GROUP BY l.id",
        )?
        .into_iter()
        .collect();
        s.by_day = pairs(
            "SELECT strftime('%Y-%m-%d', ts / 1000, 'unixepoch'), count(*) FROM events GROUP BY 1",
        )?
        .into_iter()
        .collect();
        s.alerts = pairs("SELECT status, count(*) FROM outbox GROUP BY status")?
            .into_iter()
            .collect();
        s.counters = pairs("SELECT name, value FROM counters")?
            .into_iter()
            .collect();
        s.top_groups = self.groups(&GroupQuery {
            order: GroupOrder::Count,
            limit: top,
            ..GroupQuery::default()
        })?;
        s.file_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(wal_path(&self.path))
                .map(|m| m.len())
                .unwrap_or(0);
        s.used_bytes = retention::used_bytes(&self.conn)?;
        Ok(s)
    }

    /// Sets the status of a group. Returns whether it existed.
    pub(crate) fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool> {
        let next = status == GroupStatus::ResolvedInNextRelease;
        let v6 = self.has_summaries();
        if next && !v6 {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "{} has schema version 5: resolving in the next release needs version 6 \
                     (run the program, or any errsnap writer, once to upgrade it)",
                    self.path.display()
                ),
            }));
        }
        let (next_col, newest) = if v6 {
            (
                "resolved_next = ?3,",
                "CASE ?3 WHEN 1 THEN (SELECT value FROM group_values
                     WHERE group_id = ?1 AND key = 'release' ORDER BY last_seen DESC LIMIT 1) END",
            )
        } else {
            ("", "NULL")
        };
        // Resolving notes the release it was resolved in (its last event's;
        // in the next release: the newest it was seen with) and clears an
        // earlier regression.
        let sql = format!(
            "UPDATE event_groups SET status = ?2, {next_col}
             resolved_release = CASE ?2 WHEN 'resolved' THEN coalesce({newest},
                 (SELECT release FROM events WHERE uid = last_event_uid))
                 ELSE resolved_release END,
             regressed_in = CASE ?2 WHEN 'resolved' THEN NULL ELSE regressed_in END,
             regressed_at = CASE ?2 WHEN 'resolved' THEN NULL ELSE regressed_at END
             WHERE id = ?1"
        );
        // A schema 5 file's statement has no third parameter.
        let n = if v6 {
            self.conn
                .execute(&sql, rusqlite::params![group, status.stored(), next])
        } else {
            self.conn
                .execute(&sql, rusqlite::params![group, status.stored()])
        }
        .map_err(err("changing a group's status"))?;
        Ok(n == 1)
    }
}

impl SqliteReader {
    /// Calls `each` for every event the filter selects, in full export
    /// form, oldest first (the filter's order and limit apply).
    pub(crate) fn for_each_export(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(ExportRow) -> bool,
    ) -> Result<()> {
        let (inner, args) = Self::event_query(f);
        let sql = format!(
            "SELECT e.uid, e.ts, l.name, e.level, e.kind, e.message, e.error_type, e.error_chain,
                    e.file, e.line, e.col, e.thread_name, e.thread_id, e.pid, e.app_name,
                    e.release, e.environment, e.group_id, g.fingerprint, e.tags, e.extra,
                    e.breadcrumbs, e.redactions, s.proc_cpu_percent, s.proc_rss_bytes, h.hostname
             FROM ({inner}) sel
             JOIN events e ON e.id = sel.id
             JOIN loggers l ON l.id = e.logger_id
             JOIN event_groups g ON g.id = e.group_id
             LEFT JOIN snapshots s ON s.id = e.snapshot_id
             LEFT JOIN hosts h ON h.id = e.host_id
             ORDER BY e.id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(err("exporting events"))?;
        let mut rows = stmt
            .query(params_from_iter(args))
            .map_err(err("exporting events"))?;
        let json = |v: Option<String>, empty: serde_json::Value| {
            v.and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or(empty)
        };
        while let Some(r) = rows.next().map_err(err("exporting events"))? {
            let row = (|| -> rusqlite::Result<ExportRow> {
                let ts: i64 = r.get(1)?;
                Ok(ExportRow {
                    id: r.get(0)?,
                    time: crate::util::time::rfc3339(ts),
                    ts,
                    logger: r.get(2)?,
                    level: Level::from_i64(r.get(3)?).map_or("?".into(), |l| l.to_string()),
                    kind: r.get(4)?,
                    message: r.get(5)?,
                    error_type: r.get(6)?,
                    error_chain: json(r.get(7)?, serde_json::Value::Array(Vec::new())),
                    file: r.get(8)?,
                    line: r.get(9)?,
                    column: r.get(10)?,
                    thread: r.get(11)?,
                    thread_id: r.get(12)?,
                    pid: r.get(13)?,
                    app_name: r.get(14)?,
                    release: r.get(15)?,
                    environment: r.get(16)?,
                    group: r.get(17)?,
                    fingerprint: r.get(18)?,
                    tags: json(r.get(19)?, serde_json::Value::Object(Default::default())),
                    extra: json(r.get(20)?, serde_json::Value::Object(Default::default())),
                    breadcrumbs: json(r.get(21)?, serde_json::Value::Array(Vec::new())),
                    redactions: r.get(22)?,
                    cpu_percent: r.get(23)?,
                    rss_bytes: r.get(24)?,
                    host: r.get(25)?,
                })
            })()
            .map_err(err("reading an event"))?;
            if !each(row) {
                break;
            }
        }
        Ok(())
    }

    /// The row id of the newest event, if any (for following new events).
    pub(crate) fn last_row(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
            .map_err(err("reading the newest event"))
    }

    /// The row id below which a [`PurgeRule`] selects events (for
    /// archiving what a purge would delete), or the cut-off time.
    pub(crate) fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter> {
        let mut f = EventFilter::default();
        match rule {
            PurgeRule::OlderThan(ts) => f.until = Some(ts),
            PurgeRule::KeepNewest(n) => {
                let cutoff: Option<i64> = self
                    .conn
                    .query_row(
                        "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1",
                        [n.saturating_sub(1) as i64],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(err("finding the purge bound"))?;
                // Nothing to purge: select nothing.
                f.before_row = Some(cutoff.unwrap_or(i64::MIN));
            }
        }
        Ok(f)
    }
}

/// `%/<file>` with LIKE's wildcards in `file` escaped.
fn like_suffix(file: &str) -> String {
    let mut out = String::from("%/");
    for c in file.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn wal_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

pub(super) fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        logger: r.get(2)?,
        level: Level::from_i64(r.get(3)?).unwrap_or(Level::Error),
        kind: named(r, 4, EventKind::from_name)?,
        title: r.get(5)?,
        culprit: r.get(6)?,
        first_seen: r.get(7)?,
        last_seen: r.get(8)?,
        count: r.get(9)?,
        status: named(r, 10, GroupStatus::from_name)?,
        last_event: r.get(11)?,
        first_release: r.get(12)?,
        regressed_in: r.get(13)?,
        regressed_at: r.get(14)?,
    })
}

/// A stored name read back as its enum; a name this build does not know
/// is an error that names it.
pub(super) fn named<T>(
    r: &rusqlite::Row<'_>,
    idx: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown value {s:?}").into(),
        )
    })
}

pub(super) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        row: r.get(0)?,
        id: r.get(1)?,
        ts: r.get(2)?,
        logger: r.get(3)?,
        level: Level::from_i64(r.get(4)?).unwrap_or(Level::Error),
        kind: named(r, 5, EventKind::from_name)?,
        message: r.get(6)?,
        file: r.get(7)?,
        line: r.get(8)?,
        group: r.get(9)?,
        thread: r.get(10)?,
        pid: r.get::<_, i64>(11)? as u32,
    })
}

impl crate::store::Reader for SqliteReader {
    fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>> {
        SqliteReader::groups(self, q)
    }
    fn histogram(&self, group: i64, since: i64, until: i64, buckets: usize) -> Result<Vec<u64>> {
        SqliteReader::histogram(self, group, since, until, buckets)
    }
    fn for_each_event(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        SqliteReader::for_each_event(self, f, each)
    }
    fn count_events(&self, f: &EventFilter) -> Result<u64> {
        SqliteReader::count_events(self, f)
    }
    fn event(&self, id: &str) -> Result<Option<EventDetail>> {
        SqliteReader::event(self, id, true)
    }
    fn event_to_forward(&self, uid: &str) -> Result<Option<EventDetail>> {
        SqliteReader::event(self, uid, false)
    }
    fn attachments(&self, uid: &str) -> Result<Vec<crate::event::StoredAttachment>> {
        match self.full_id(uid)? {
            Some(uid) => SqliteReader::attachments_of(self, &uid, true),
            None => Ok(Vec::new()),
        }
    }
    fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>> {
        SqliteReader::hosts(self)
    }
    fn stats(&self, top: usize) -> Result<Stats> {
        SqliteReader::stats(self, top)
    }
    fn purge_candidates(&self, rule: PurgeRule) -> Result<Vec<String>> {
        retention::matching_uids(&self.conn, rule)
    }
    fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter> {
        SqliteReader::purge_bound(self, rule)
    }
    fn check(&self) -> Result<CheckReport> {
        Ok(SqliteReader::check_path(&self.path))
    }
    fn for_each_export(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(ExportRow) -> bool,
    ) -> Result<()> {
        SqliteReader::for_each_export(self, f, each)
    }
    fn last_row(&self) -> Result<Option<i64>> {
        SqliteReader::last_row(self)
    }
    fn runs(&self, limit: usize) -> Result<Vec<crate::store::RunRow>> {
        super::runs::runs(&self.conn, limit)
    }
    fn releases(&self) -> Result<Vec<crate::store::runs::ReleaseRow>> {
        super::runs::releases(&self.conn)
    }
    fn hourly(&self, groups: Option<&[i64]>, since: i64, until: i64) -> Result<Vec<HourCount>> {
        SqliteReader::hourly(self, groups, since, until)
    }
    fn group_values(&self, group: i64) -> Result<Vec<GroupValue>> {
        SqliteReader::group_values(self, group)
    }
    fn values(&self, key: &str, limit: usize) -> Result<Vec<String>> {
        SqliteReader::values(self, key, limit)
    }
    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        SqliteReader::search(self, query, limit)
    }
    fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>> {
        SqliteReader::samples(self, group, limit)
    }
    fn deliveries(&self) -> Result<Vec<ChannelHealth>> {
        SqliteReader::deliveries(self)
    }
}

impl crate::store::Maintenance for SqliteReader {
    fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool> {
        SqliteReader::set_group_status(self, group, status)
    }
    fn purge(&mut self, rule: PurgeRule) -> Result<PurgeReport> {
        retention::purge(&mut self.conn, rule)
    }
    fn vacuum(&self) -> Result<()> {
        self.conn.execute_batch("VACUUM").map_err(err("vacuuming"))
    }
    fn raw_backtraces(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<crate::event::Frame>)>> {
        SqliteReader::raw_backtraces(self, after, limit)
    }
    fn replace_frames(&mut self, id: i64, frames: &[crate::event::Frame]) -> Result<()> {
        SqliteReader::replace_frames(self, id, frames)
    }
}
