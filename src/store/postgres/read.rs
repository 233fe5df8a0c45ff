//! Reading a fleet's PostgreSQL database (`errsnap --db postgres://...`):
//! groups, events, one event in full, group status, runs, releases, hosts,
//! stats, purge and a health check (`report.rs` holds the reports). Export
//! and symbolicate answer with an error that says so: they read the file
//! store only, for now.

use std::sync::Mutex;

use postgres::types::ToSql;
use postgres::Client;

use super::connect::PgTarget;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventKind, HostInfo};
use crate::level::Level;
use crate::store::read::*;
use crate::store::runs::{ReleaseRow, RunRow, RunStatus};
use crate::store::summary::HOUR_MS;
use crate::store::{PurgeReport, PurgeRule, Reader};

/// A connection reading a fleet's database.
pub(crate) struct PgReader {
    client: Mutex<Client>,
    pub(super) target: PgTarget,
    /// Whether the schema has the summaries (version 2; a database no new
    /// writer has upgraded yet is read without them). Looked up again while
    /// false: a writer may upgrade the database under a long-lived reader.
    summaries: std::sync::atomic::AtomicBool,
    /// Whether the schema has events' context and attachments (version 3),
    /// looked up again while false, like `summaries`.
    context: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader")
            .field("at", &self.target.display())
            .finish_non_exhaustive()
    }
}

/// What a listing errsnap cannot read from a server yet answers.
fn not_yet(what: &str) -> Error {
    Error::new(ErrorKind::Storage {
        context: format!(
            "{what} reads a database file only, not yet a PostgreSQL database (issue #18)"
        ),
    })
}

type Params = Vec<Box<dyn ToSql + Sync>>;

/// The `schema_version` recorded in the database (0 without one).
fn schema_version(client: &mut Client) -> std::result::Result<i64, postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT value FROM errsnap_meta WHERE key = 'schema_version'",
            &[],
        )?
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0))
}

fn refs(p: &Params) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|b| b.as_ref()).collect()
}

impl PgReader {
    /// Runs `f` on the shared SQL layer's view of `client`.
    pub(super) fn sql<R>(
        &self,
        client: &mut Client,
        f: impl FnOnce(&mut dyn crate::store::sql::Conn) -> Result<R>,
    ) -> Result<R> {
        let mut stmts = super::Stmts::default();
        f(&mut super::conn::PgConn {
            client,
            stmts: &mut stmts,
            target: &self.target,
        })
    }

    /// Connects (the schema must be errsnap's: it is checked, not made).
    ///
    /// # Errors
    /// The server cannot be reached or refuses the login, or the database
    /// holds no errsnap schema.
    pub(crate) fn open(target: &PgTarget) -> Result<PgReader> {
        let mut client = target.connect()?;
        let ours: bool = client
            .query_one("SELECT to_regclass('errsnap_meta') IS NOT NULL", &[])
            .map_err(|e| target.error("reading", e))?
            .get(0);
        if !ours {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "{} holds no errsnap schema (run `errsnap --db URL migrate`, or start a logger with it)",
                    target.display()
                ),
            }));
        }
        let version = schema_version(&mut client).map_err(|e| target.error("reading", e))?;
        Ok(PgReader {
            client: Mutex::new(client),
            target: target.clone(),
            summaries: std::sync::atomic::AtomicBool::new(version >= 2),
            context: std::sync::atomic::AtomicBool::new(version >= 3),
        })
    }

    /// Whether the database has the summaries (schema 2), remembered once
    /// seen.
    pub(super) fn has_summaries(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.summaries.load(Relaxed) {
            return true;
        }
        let now = schema_version(&mut self.client()).is_ok_and(|v| v >= 2);
        self.summaries.store(now, Relaxed);
        now
    }

    /// Whether the database has events' context and attachments (schema
    /// 3), remembered once seen.
    pub(super) fn has_context(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.context.load(Relaxed) {
            return true;
        }
        let now = schema_version(&mut self.client()).is_ok_and(|v| v >= 3);
        self.context.store(now, Relaxed);
        now
    }

    /// A group's status as `GroupStatus` names it (schema 1 has no
    /// resolved-in-next-release mark).
    pub(super) fn status_expr(&self) -> &'static str {
        if self.has_summaries() {
            "CASE WHEN g.status = 'resolved' AND g.resolved_next THEN 'resolved-next' ELSE g.status END"
        } else {
            "g.status"
        }
    }

    pub(super) fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn fail(&self, doing: &'static str) -> impl Fn(postgres::Error) -> Error + '_ {
        move |e| self.target.error(doing, e)
    }

    fn event_query(f: &EventFilter, select: &str) -> (String, Params) {
        let mut sql = format!(
            "SELECT {select} FROM events e JOIN loggers l ON l.id = e.logger_id WHERE true"
        );
        let mut args: Params = Vec::new();
        // Appends condition `c`, its `?` the next parameter, `v`.
        fn cond(sql: &mut String, args: &mut Params, c: &str, v: Box<dyn ToSql + Sync>) {
            args.push(v);
            sql.push_str(&c.replace('?', &format!("${}", args.len())));
        }
        let (s, a) = (&mut sql, &mut args);
        if let Some(g) = f.group {
            cond(s, a, " AND e.group_id = ?", Box::new(g));
        }
        if let Some(l) = &f.logger {
            cond(s, a, " AND l.name = ?", Box::new(l.clone()));
        }
        if let Some(l) = f.min_level {
            cond(s, a, " AND e.level >= ?", Box::new(l.as_i64() as i16));
        }
        if let Some(t) = f.since {
            cond(s, a, " AND e.ts >= ?", Box::new(t));
        }
        if let Some(t) = f.until {
            cond(s, a, " AND e.ts < ?", Box::new(t));
        }
        if let Some(g) = &f.grep {
            cond(
                s,
                a,
                " AND strpos(lower(e.message), lower(?)) > 0",
                Box::new(g.clone()),
            );
        }
        if let Some((file, line)) = &f.file {
            // An exact path, or any path ending in "/<file>" (the `?` is
            // the one parameter, used three times).
            cond(
                s,
                a,
                " AND (e.file = ? OR right(e.file, length(?) + 1) = '/' || ?)",
                Box::new(file.clone()),
            );
            if let Some(line) = line {
                cond(s, a, " AND e.line = ?", Box::new(*line as i32));
            }
        }
        if let Some(r) = f.after_row {
            cond(s, a, " AND e.id > ?", Box::new(r));
        }
        if let Some(r) = f.before_row {
            cond(s, a, " AND e.id < ?", Box::new(r));
        }
        (sql, args)
    }

    pub(super) fn event_row(r: &postgres::Row) -> EventRow {
        EventRow {
            row: r.get(0),
            id: r.get(1),
            ts: r.get(2),
            logger: r.get(3),
            level: Level::from_i64(i64::from(r.get::<_, i16>(4))).unwrap_or(Level::Error),
            kind: EventKind::from_name(&r.get::<_, String>(5)).unwrap_or(EventKind::Message),
            message: r.get(6),
            file: r.get(7),
            line: r.get::<_, Option<i32>>(8).map(|v| v as u32),
            group: r.get(9),
            thread: r.get(10),
            pid: r.get::<_, i64>(11) as u32,
        }
    }

    /// The full id of an event given in full or by a unique prefix of at
    /// least 6 characters.
    pub(super) fn full_id(&self, id: &str) -> Result<Option<String>> {
        let id = id.trim().to_ascii_uppercase();
        if id.len() == 26 {
            return Ok(Some(id));
        }
        if id.len() < 6 {
            return Ok(None);
        }
        let found: Vec<String> = self
            .client()
            .query(
                "SELECT uid FROM events WHERE uid >= $1 AND uid < $1 || 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ' LIMIT 2",
                &[&id],
            )
            .map_err(self.fail("finding an event in"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next()),
            _ => Err(Error::config(
                "ID",
                format!("{id:?} matches several events: give more characters"),
            )),
        }
    }
}

pub(super) const EVENT_COLUMNS: &str =
    "e.id, e.uid, e.ts, l.name, e.level, e.kind, e.message, e.file, \
     e.line, e.group_id, e.thread_name, e.pid";

impl Reader for PgReader {
    fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>> {
        let mut sql = format!(
            "SELECT g.id, g.fingerprint, l.name, g.level, g.kind, g.title, g.culprit,
                    g.first_seen, g.last_seen, g.count, {},
                    g.last_event_uid, g.first_release, g.regressed_in, g.regressed_at
             FROM event_groups g JOIN loggers l ON l.id = g.logger_id WHERE true",
            self.status_expr()
        );
        let mut args: Params = Vec::new();
        let mut arg = |v: Box<dyn ToSql + Sync>| {
            args.push(v);
            format!("${}", args.len())
        };
        if !q.ids.is_empty() {
            sql.push_str(&format!(
                " AND g.id = ANY({})",
                arg(Box::new(q.ids.clone()))
            ));
        }
        if let Some(l) = &q.logger {
            sql.push_str(&format!(" AND l.name = {}", arg(Box::new(l.clone()))));
        }
        let values_asked = q.release.is_some() || q.environment.is_some() || q.host.is_some();
        if !self.has_summaries()
            && (values_asked || q.status == Some(GroupStatus::ResolvedInNextRelease))
        {
            // Schema 1 records neither.
            return Ok(Vec::new());
        }
        match q.status {
            None => {}
            Some(GroupStatus::ResolvedInNextRelease) => {
                sql.push_str(" AND g.status = 'resolved' AND g.resolved_next");
            }
            Some(s) => {
                let p = arg(Box::new(s.stored().to_owned()));
                sql.push_str(&format!(" AND g.status = {p}"));
            }
        }
        if let Some(r) = &q.new_in {
            sql.push_str(&format!(
                " AND g.first_release = {}",
                arg(Box::new(r.clone()))
            ));
        }
        if let Some(l) = q.min_level {
            sql.push_str(&format!(
                " AND g.level >= {}",
                arg(Box::new(l.as_i64() as i16))
            ));
        }
        for (key, value) in [
            ("release", &q.release),
            ("environment", &q.environment),
            ("host", &q.host),
        ] {
            let Some(value) = value else { continue };
            sql.push_str(&format!(
                " AND g.id IN (SELECT group_id FROM group_values WHERE key = '{key}' AND value = {})",
                arg(Box::new(value.clone()))
            ));
        }
        if let Some(since) = q.since {
            sql.push_str(&format!(" AND g.last_seen >= {}", arg(Box::new(since))));
        }
        if let Some(until) = q.until {
            sql.push_str(&format!(" AND g.first_seen < {}", arg(Box::new(until))));
        }
        if self.has_summaries() && (q.since.is_some() || q.until.is_some()) {
            let from = q.since.map_or(i64::MIN, |t| t.div_euclid(HOUR_MS));
            let to = q.until.map_or(i64::MAX, |t| (t - 1).div_euclid(HOUR_MS));
            let (from, to) = (arg(Box::new(from)), arg(Box::new(to)));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM group_hours h WHERE h.group_id = g.id
                     AND h.hour BETWEEN {from} AND {to})"
            ));
        }
        sql.push_str(match q.order {
            GroupOrder::LastSeen => " ORDER BY g.last_seen DESC, g.id DESC",
            GroupOrder::Count => " ORDER BY g.count DESC, g.last_seen DESC",
            GroupOrder::FirstSeen => " ORDER BY g.first_seen DESC, g.id DESC",
        });
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", q.limit));
        }
        if q.offset > 0 {
            sql.push_str(&format!(" OFFSET {}", q.offset));
        }
        let rows = self
            .client()
            .query(&sql, &refs(&args))
            .map_err(self.fail("listing groups in"))?;
        Ok(rows
            .iter()
            .map(|r| GroupRow {
                id: r.get(0),
                fingerprint: r.get(1),
                logger: r.get(2),
                level: Level::from_i64(i64::from(r.get::<_, i16>(3))).unwrap_or(Level::Error),
                kind: EventKind::from_name(&r.get::<_, String>(4)).unwrap_or(EventKind::Message),
                title: r.get(5),
                culprit: r.get(6),
                first_seen: r.get(7),
                last_seen: r.get(8),
                count: r.get(9),
                status: GroupStatus::from_name(&r.get::<_, String>(10))
                    .unwrap_or(GroupStatus::Open),
                last_event: r.get(11),
                first_release: r.get(12),
                regressed_in: r.get(13),
                regressed_at: r.get(14),
            })
            .collect())
    }

    fn histogram(&self, group: i64, since: i64, until: i64, buckets: usize) -> Result<Vec<u64>> {
        let buckets = buckets.max(1);
        let width = ((until - since) / buckets as i64).max(1);
        let mut out = vec![0u64; buckets];
        for r in self
            .client()
            .query(
                "SELECT (ts - $2) / $4, count(*) FROM events
                 WHERE group_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1",
                &[&group, &since, &until, &width],
            )
            .map_err(self.fail("counting occurrences in"))?
        {
            let (b, n): (i64, i64) = (r.get(0), r.get(1));
            if let Some(slot) = usize::try_from(b).ok().and_then(|b| out.get_mut(b)) {
                *slot += n as u64;
            }
        }
        Ok(out)
    }

    fn for_each_event(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        let (mut sql, args) = Self::event_query(f, EVENT_COLUMNS);
        sql.push_str(if f.newest_first {
            " ORDER BY e.id DESC"
        } else {
            " ORDER BY e.id"
        });
        if f.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", f.limit));
        }
        let rows = self
            .client()
            .query(&sql, &refs(&args))
            .map_err(self.fail("listing events in"))?;
        for r in &rows {
            if !each(Self::event_row(r)) {
                break;
            }
        }
        Ok(())
    }

    fn count_events(&self, f: &EventFilter) -> Result<u64> {
        let (sql, args) = Self::event_query(f, "count(*)");
        let n: i64 = self
            .client()
            .query_one(&sql, &refs(&args))
            .map_err(self.fail("counting events in"))?
            .get(0);
        Ok(n.max(0) as u64)
    }

    fn event(&self, id: &str) -> Result<Option<EventDetail>> {
        self.detail(id, true)
    }

    fn event_to_forward(&self, uid: &str) -> Result<Option<EventDetail>> {
        self.detail(uid, false)
    }

    fn attachments(&self, uid: &str) -> Result<Vec<crate::event::StoredAttachment>> {
        self.attachments_by_id(uid)
    }

    fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>> {
        super::report::hosts(&mut self.client(), &self.target)
    }

    fn stats(&self, top: usize) -> Result<Stats> {
        let mut s = super::report::stats(&mut self.client(), &self.target)?;
        s.top_groups = self.groups(&GroupQuery {
            order: GroupOrder::Count,
            limit: top,
            ..GroupQuery::default()
        })?;
        Ok(s)
    }

    fn purge_candidates(&self, rule: PurgeRule) -> Result<Vec<String>> {
        super::report::purge_candidates(&mut self.client(), &self.target, rule)
    }

    fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter> {
        super::report::purge_bound(&mut self.client(), &self.target, rule)
    }

    fn check(&self) -> Result<CheckReport> {
        let mut client = self.client();
        let fail = self.fail("checking");
        let version: Option<i64> = client
            .query_opt(
                "SELECT value FROM errsnap_meta WHERE key = 'schema_version'",
                &[],
            )
            .map_err(&fail)?
            .and_then(|r| r.get::<_, String>(0).parse().ok());
        let count = |client: &mut Client, status: &str| -> Result<i64> {
            Ok(client
                .query_one("SELECT count(*) FROM outbox WHERE status = $1", &[&status])
                .map_err(&fail)?
                .get(0))
        };
        let pending = count(&mut client, "pending")?;
        let failed = count(&mut client, "failed")?;
        let mut r = CheckReport {
            schema_version: version,
            supported_version: super::SCHEMA_VERSION,
            pending_alerts: pending,
            failed_alerts: failed,
            ..Default::default()
        };
        match version {
            Some(v) if v > super::SCHEMA_VERSION => r.warnings.push(format!(
                "schema version {v} is newer than this errsnap's ({})",
                super::SCHEMA_VERSION
            )),
            Some(_) => {}
            None => r
                .problems
                .push("no errsnap schema version recorded".to_owned()),
        }
        if failed > 0 {
            r.warnings
                .push(format!("{failed} alerts could not be delivered"));
        }
        Ok(r)
    }

    fn for_each_export(
        &self,
        _f: &EventFilter,
        _each: &mut dyn FnMut(ExportRow) -> bool,
    ) -> Result<()> {
        Err(not_yet("errsnap export"))
    }

    fn last_row(&self) -> Result<Option<i64>> {
        Ok(self
            .client()
            .query_one("SELECT max(id) FROM events", &[])
            .map_err(self.fail("reading"))?
            .get(0))
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        let rows = self
            .client()
            .query(
                "SELECT r.id, r.status, r.pid, r.started_at, r.ended_at, h.hostname, r.app_name,
                        r.release, r.build_id, r.last_rss_bytes, r.last_cpu_percent,
                        r.end_reason, r.cgroup, r.memory_max_bytes
                 FROM runs r LEFT JOIN hosts h ON h.id = r.host_id
                 ORDER BY r.id DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .map_err(self.fail("reading runs in"))?;
        Ok(rows
            .iter()
            .map(|r| RunRow {
                id: r.get(0),
                status: RunStatus::from_name(&r.get::<_, String>(1)).unwrap_or(RunStatus::Running),
                pid: r.get::<_, i32>(2) as u32,
                started_at: r.get(3),
                ended_at: r.get(4),
                hostname: r.get(5),
                app_name: r.get(6),
                release: r.get(7),
                build_id: r.get(8),
                last_rss_bytes: r.get::<_, Option<i64>>(9).map(|v| v as u64),
                last_cpu_percent: r.get(10),
                end_reason: r.get(11),
                cgroup: r.get(12),
                memory_max_bytes: r.get::<_, Option<i64>>(13).map(|v| v as u64),
            })
            .collect())
    }

    fn releases(&self) -> Result<Vec<ReleaseRow>> {
        super::report::releases(&mut self.client(), &self.target)
    }
    fn hourly(&self, groups: Option<&[i64]>, since: i64, until: i64) -> Result<Vec<HourCount>> {
        self.hourly_of(groups, since, until)
    }
    fn group_values(&self, group: i64) -> Result<Vec<GroupValue>> {
        self.group_values_of(group)
    }
    fn values(&self, key: &str, limit: usize) -> Result<Vec<String>> {
        self.values_of(key, limit)
    }
    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        self.search_of(query, limit)
    }
    fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>> {
        self.samples_of(group, limit)
    }
    fn deliveries(&self) -> Result<Vec<ChannelHealth>> {
        self.deliveries_of()
    }
}

impl crate::store::Maintenance for PgReader {
    fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool> {
        let next = status == GroupStatus::ResolvedInNextRelease;
        if !self.has_summaries() {
            if next {
                return Err(Error::new(ErrorKind::Storage {
                    context: format!(
                        "{} has schema version 1: resolving in the next release needs version 2 \
                         (run `errsnap --db URL migrate`, or start a writer of this version)",
                        self.target.display()
                    ),
                }));
            }
            let n = self
                .client()
                .execute(
                    "UPDATE event_groups SET status = $2,
                         resolved_release = CASE $2 WHEN 'resolved'
                             THEN (SELECT release FROM events WHERE uid = last_event_uid)
                             ELSE resolved_release END,
                         regressed_in = CASE $2 WHEN 'resolved' THEN NULL ELSE regressed_in END,
                         regressed_at = CASE $2 WHEN 'resolved' THEN NULL ELSE regressed_at END
                     WHERE id = $1",
                    &[&group, &status.stored()],
                )
                .map_err(self.fail("changing a group's status in"))?;
            return Ok(n == 1);
        }
        let n = self
            .client()
            .execute(
                // As in the file: the release it was resolved in (in the
                // next release: the newest it was seen with).
                "UPDATE event_groups SET status = $2, resolved_next = $3,
                     resolved_release = CASE $2 WHEN 'resolved' THEN coalesce(
                         CASE WHEN $3 THEN (SELECT value FROM group_values
                             WHERE group_id = $1 AND key = 'release'
                             ORDER BY last_seen DESC LIMIT 1) END,
                         (SELECT release FROM events WHERE uid = last_event_uid))
                         ELSE resolved_release END,
                     regressed_in = CASE $2 WHEN 'resolved' THEN NULL ELSE regressed_in END,
                     regressed_at = CASE $2 WHEN 'resolved' THEN NULL ELSE regressed_at END
                 WHERE id = $1",
                &[&group, &status.stored(), &next],
            )
            .map_err(self.fail("changing a group's status in"))?;
        Ok(n == 1)
    }

    fn purge(&mut self, rule: PurgeRule) -> Result<PurgeReport> {
        super::report::purge(&mut self.client(), &self.target, rule)
    }

    fn vacuum(&self) -> Result<()> {
        self.client()
            .batch_execute("VACUUM ANALYZE")
            .map_err(self.fail("vacuuming"))
    }

    fn raw_backtraces(
        &self,
        _after: i64,
        _limit: usize,
    ) -> Result<Vec<(i64, Vec<crate::event::Frame>)>> {
        Err(not_yet("errsnap symbolicate"))
    }

    fn replace_frames(&mut self, _id: i64, _frames: &[crate::event::Frame]) -> Result<()> {
        Err(not_yet("errsnap symbolicate"))
    }
}
