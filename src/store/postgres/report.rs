//! The fleet database's reports and maintenance, for the CLI: `stats`,
//! `host`, `releases`, and `purge` (with the file store's rules: never a
//! group's first event, never one whose alert is pending; groups and their
//! counts stay; backtraces stay too, as writers of the fleet cache them).

use postgres::Client;

use super::connect::PgTarget;
use crate::error::Result;
use crate::event::HostInfo;
use crate::level::Level;
use crate::store::read::{EventFilter, HostRow, Stats};
use crate::store::runs::ReleaseRow;
use crate::store::{PurgeReport, PurgeRule};

const PROTECTED: &str = "(e.uid IN (SELECT first_event_uid FROM event_groups)
     OR e.uid IN (SELECT event_uid FROM outbox WHERE status IN ('pending', 'sending')))";

/// Counts by level, logger, day, alert status and counter, and the sizes.
pub(super) fn stats(c: &mut Client, t: &PgTarget) -> Result<Stats> {
    let fail = |e| t.error("counting in", e);
    let mut s = Stats::default();
    let one = |c: &mut Client, sql: &str| -> Result<i64> {
        Ok(c.query_one(sql, &[]).map_err(fail)?.get(0))
    };
    s.events = one(c, "SELECT count(*) FROM events")?;
    s.groups = one(c, "SELECT count(*) FROM event_groups")?;
    let pairs = |c: &mut Client, sql: &str| -> Result<Vec<(String, i64)>> {
        Ok(c.query(sql, &[])
            .map_err(fail)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    };
    for (l, n) in pairs(c, "SELECT level::text, count(*) FROM events GROUP BY level")? {
        let name = l
            .parse::<i64>()
            .ok()
            .and_then(Level::from_i64)
            .map_or(l, |l| l.to_string());
        s.by_level.insert(name, n);
    }
    s.by_logger = pairs(
        c,
        "SELECT l.name, count(e.id) FROM loggers l LEFT JOIN events e ON e.logger_id = l.id GROUP BY l.id, l.name",
    )?
    .into_iter()
    .collect();
    s.by_day = pairs(
        c,
        "SELECT to_char(to_timestamp(ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*)
         FROM events GROUP BY 1",
    )?
    .into_iter()
    .collect();
    s.alerts = pairs(c, "SELECT status, count(*) FROM outbox GROUP BY status")?
        .into_iter()
        .collect();
    s.counters = pairs(c, "SELECT name, value FROM counters")?
        .into_iter()
        .collect();
    let size = one(c, "SELECT pg_database_size(current_database())")?;
    s.file_bytes = size.max(0) as u64;
    s.used_bytes = size.max(0) as u64;
    Ok(s)
}

/// The recorded hosts, most recent first.
pub(super) fn hosts(c: &mut Client, t: &PgTarget) -> Result<Vec<(HostRow, HostInfo)>> {
    hosts_where(c, t, None)
}

/// One host, by id.
pub(super) fn host(c: &mut Client, t: &PgTarget, id: i64) -> Result<Option<HostInfo>> {
    Ok(hosts_where(c, t, Some(id))?
        .into_iter()
        .next()
        .map(|(_, h)| h))
}

fn hosts_where(c: &mut Client, t: &PgTarget, id: Option<i64>) -> Result<Vec<(HostRow, HostInfo)>> {
    let rows = c
        .query(
            "SELECT id, hostname, os_name, os_version, kernel_version, arch, cpu_brand, cpu_count,
                    physical_cores, cpu_frequency_mhz, total_memory, total_swap, boot_time,
                    first_seen, last_seen
             FROM hosts WHERE $1::bigint IS NULL OR id = $1 ORDER BY last_seen DESC",
            &[&id],
        )
        .map_err(|e| t.error("reading hosts in", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                HostRow {
                    id: r.get(0),
                    first_seen: r.get(13),
                    last_seen: r.get(14),
                },
                HostInfo {
                    hostname: r.get(1),
                    os_name: r.get(2),
                    os_version: r.get(3),
                    kernel_version: r.get(4),
                    arch: r.get(5),
                    cpu_brand: r.get(6),
                    cpu_count: r.get::<_, i32>(7).max(0) as u64,
                    physical_cores: r.get::<_, Option<i32>>(8).map(|v| v.max(0) as u64),
                    cpu_frequency_mhz: r.get::<_, Option<i64>>(9).map(|v| v.max(0) as u64),
                    total_memory: r.get::<_, i64>(10).max(0) as u64,
                    total_swap: r.get::<_, i64>(11).max(0) as u64,
                    boot_time: r.get::<_, i64>(12).max(0) as u64,
                },
            )
        })
        .collect())
}

/// Each release's runs and groups, newest first.
pub(super) fn releases(c: &mut Client, t: &PgTarget) -> Result<Vec<ReleaseRow>> {
    let rows = c
        .query(
            "WITH names AS (
                 SELECT release FROM runs WHERE release IS NOT NULL
                 UNION SELECT first_release FROM event_groups WHERE first_release IS NOT NULL
                 UNION SELECT regressed_in FROM event_groups WHERE regressed_in IS NOT NULL
             ),
             r AS (
                 SELECT release, count(*) AS runs,
                        count(*) FILTER (WHERE status = 'exited') AS exited,
                        count(*) FILTER (WHERE status = 'crashed') AS crashed,
                        count(*) FILTER (WHERE status = 'abnormal') AS abnormal,
                        count(*) FILTER (WHERE status = 'running') AS running,
                        min(started_at) AS first_seen,
                        max(coalesce(ended_at, last_seen, started_at)) AS last_seen
                 FROM runs WHERE release IS NOT NULL GROUP BY release
             ),
             g AS (
                 SELECT first_release AS release, count(*) AS new_groups,
                        min(first_seen) AS first_event, max(last_seen) AS last_event
                 FROM event_groups WHERE first_release IS NOT NULL GROUP BY first_release
             ),
             rg AS (
                 SELECT regressed_in AS release, count(*) AS regressed
                 FROM event_groups WHERE regressed_in IS NOT NULL GROUP BY regressed_in
             )
             SELECT n.release, coalesce(r.runs, 0), coalesce(r.exited, 0),
                    coalesce(r.crashed, 0), coalesce(r.abnormal, 0), coalesce(r.running, 0),
                    coalesce(r.first_seen, g.first_event), coalesce(r.last_seen, g.last_event),
                    coalesce(g.new_groups, 0), coalesce(rg.regressed, 0)
             FROM names n
             LEFT JOIN r ON r.release = n.release
             LEFT JOIN g ON g.release = n.release
             LEFT JOIN rg ON rg.release = n.release
             ORDER BY coalesce(r.first_seen, g.first_event) DESC NULLS LAST, n.release DESC",
            &[],
        )
        .map_err(|e| t.error("reading releases in", e))?;
    let n = |r: &postgres::Row, i: usize| r.get::<_, i64>(i).max(0) as u64;
    Ok(rows
        .iter()
        .map(|r| {
            let (runs, crashed, abnormal) = (n(r, 1), n(r, 3), n(r, 4));
            ReleaseRow {
                release: r.get(0),
                runs,
                exited: n(r, 2),
                crashed,
                abnormal,
                running: n(r, 5),
                crash_free_percent: ReleaseRow::crash_free(runs, crashed + abnormal),
                first_seen: r.get(6),
                last_seen: r.get(7),
                new_groups: n(r, 8),
                regressed_groups: n(r, 9),
            }
        })
        .collect())
}

/// The condition a rule selects by and its value (`None`: nothing).
fn selection(c: &mut Client, t: &PgTarget, rule: PurgeRule) -> Result<Option<(&'static str, i64)>> {
    Ok(match rule {
        PurgeRule::OlderThan(ts) => Some(("e.ts < $1", ts)),
        PurgeRule::KeepNewest(n) => c
            .query_opt(
                "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1",
                &[&(n.saturating_sub(1) as i64)],
            )
            .map_err(|e| t.error("finding the purge bound in", e))?
            .map(|r| ("e.id < $1", r.get(0))),
    })
}

/// The ids of the events a rule would delete, oldest first.
pub(super) fn purge_candidates(
    c: &mut Client,
    t: &PgTarget,
    rule: PurgeRule,
) -> Result<Vec<String>> {
    let Some((cond, v)) = selection(c, t, rule)? else {
        return Ok(Vec::new());
    };
    Ok(c.query(
        &format!("SELECT e.uid FROM events e WHERE {cond} AND NOT {PROTECTED} ORDER BY e.id"),
        &[&v],
    )
    .map_err(|e| t.error("selecting events to purge in", e))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// The filter selecting what a rule would purge (for an archive).
pub(super) fn purge_bound(c: &mut Client, t: &PgTarget, rule: PurgeRule) -> Result<EventFilter> {
    let mut f = EventFilter::default();
    match rule {
        PurgeRule::OlderThan(ts) => f.until = Some(ts),
        PurgeRule::KeepNewest(_) => {
            f.before_row = Some(match selection(c, t, rule)? {
                Some((_, id)) => id,
                None => i64::MIN,
            });
        }
    }
    Ok(f)
}

/// Deletes what `rule` selects, 5,000 events a transaction, then the
/// snapshots and backtraces no event points to any more.
pub(super) fn purge(c: &mut Client, t: &PgTarget, rule: PurgeRule) -> Result<PurgeReport> {
    let fail = |e| t.error("purging events in", e);
    let mut report = PurgeReport::default();
    let Some((cond, v)) = selection(c, t, rule)? else {
        return Ok(report);
    };
    // Schema 3 and up keep attachments, deleted with their event.
    let attachments: bool = c
        .query_one("SELECT to_regclass('attachments') IS NOT NULL", &[])
        .map_err(fail)?
        .get(0);
    let kept: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM events e WHERE {cond} AND {PROTECTED}"),
            &[&v],
        )
        .map_err(fail)?
        .get(0);
    report.kept = kept.max(0) as u64;
    loop {
        let mut tx = c.transaction().map_err(fail)?;
        let n = tx
            .execute(
                &format!(
                    "DELETE FROM events WHERE id IN (
                         SELECT e.id FROM events e WHERE {cond} AND NOT {PROTECTED}
                         ORDER BY e.id LIMIT 5000)"
                ),
                &[&v],
            )
            .map_err(fail)?;
        tx.execute(
            "DELETE FROM outbox o WHERE o.status NOT IN ('pending', 'sending')
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.uid = o.event_uid)",
            &[],
        )
        .map_err(fail)?;
        if attachments {
            tx.execute(super::runs::ORPHAN_ATTACHMENTS, &[])
                .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        report.events += n;
        if n < 5000 {
            break;
        }
    }
    let mut tx = c.transaction().map_err(fail)?;
    report.snapshots = tx
        .execute(
            "DELETE FROM snapshots s WHERE NOT EXISTS
                 (SELECT 1 FROM events e WHERE e.snapshot_id = s.id)",
            &[],
        )
        .map_err(fail)?;
    // Backtraces stay: other processes of the fleet keep their ids in
    // cache and may be writing events that point to them right now.
    tx.commit().map_err(fail)?;
    Ok(report)
}
