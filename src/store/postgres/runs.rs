//! The runs ledger and retention in PostgreSQL. Runs are judged per host:
//! a run still open whose process is gone is judged by the next start on
//! the same host and boot (a reused pid told apart by its start time),
//! never by another host.

use super::{big, PgStore};
use crate::error::Result;
use crate::store::claims::Claimant;
use crate::store::runs::{still_running, CrashedRun, RunSign, RunStart, RunStatus};
use crate::store::Limits;

pub(super) fn start_run(store: &mut PgStore, run: &RunStart) -> Result<(i64, usize)> {
    let target = store.target.clone();
    let fail = |e| target.error("recording the run in", e);
    let host = store.host_id;
    let mut tx = store.client.transaction().map_err(fail)?;
    let mut abnormal = 0;
    if let Some(boot) = &run.boot_id {
        let open = tx
            .query(
                // A boot id is this machine's and this boot's alone.
                "SELECT id, pid, process_start FROM runs
                 WHERE status = 'running' AND boot_id = $1
                 FOR UPDATE",
                &[boot],
            )
            .map_err(fail)?;
        for r in open {
            let (id, pid, start): (i64, i32, Option<i64>) = (r.get(0), r.get(1), r.get(2));
            if still_running(pid as u32, start.map(|s| s as u64)) {
                continue;
            }
            tx.execute(
                "UPDATE runs SET status = 'abnormal', ended_at = coalesce(last_seen, started_at)
                 WHERE id = $1 AND status = 'running'",
                &[&id],
            )
            .map_err(fail)?;
            abnormal += 1;
        }
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO runs (host_id, boot_id, pid, process_start, started_at, last_seen,
                 app_name, release, build_id, status, cgroup, oom_kills_at_start,
                 memory_max_bytes)
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, 'running', $9, $10, $11)
             RETURNING id",
            &[
                &host,
                &run.boot_id,
                &(run.pid as i32),
                &run.process_start.map(big),
                &run.started_at,
                &run.app_name,
                &run.release,
                &run.build_id,
                &run.cgroup,
                &run.oom_kills.map(big),
                &run.memory_max_bytes.map(big),
            ],
        )
        .map_err(fail)?
        .get(0);
    tx.commit().map_err(fail)?;
    store.run = Some(id);
    Ok((id, abnormal))
}

/// How the ledger records the run that `c` names (its latest row).
pub(super) fn status_of(store: &mut PgStore, c: &Claimant) -> Result<Option<RunStatus>> {
    let target = store.target.clone();
    let row = store
        .client
        .query_opt(
            "SELECT status FROM runs
             WHERE boot_id IS NOT DISTINCT FROM $1 AND pid = $2
               AND process_start IS NOT DISTINCT FROM $3
             ORDER BY id DESC LIMIT 1",
            &[&c.boot_id, &(c.pid as i32), &c.process_start.map(big)],
        )
        .map_err(|e| target.error("reading the runs ledger of", e))?;
    Ok(row.and_then(|r| RunStatus::from_name(r.get::<_, &str>(0))))
}

pub(super) fn end_run(store: &mut PgStore, id: i64, status: RunStatus, now: i64) -> Result<bool> {
    let target = store.target.clone();
    let from: &[&str] = match status {
        RunStatus::Exited => &["running"],
        _ => &["running", "exited"],
    };
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let n = store
        .client
        .execute(
            "UPDATE runs SET status = $2, ended_at = $3, last_seen = $3
             WHERE id = $1 AND status = ANY($4)",
            &[&id, &status.as_str(), &now, &from],
        )
        .map_err(|e| target.error("ending the run in", e))?;
    Ok(n > 0)
}

pub(super) fn troubled_runs_since(store: &mut PgStore, since: i64) -> Result<u64> {
    let target = store.target.clone();
    let n: i64 = store
        .client
        .query_one(
            "SELECT count(*) FROM runs WHERE status IN ('crashed', 'abnormal') AND ended_at >= $1",
            &[&since],
        )
        .map_err(|e| target.error("counting crashed runs in", e))?
        .get(0);
    Ok(n.max(0) as u64)
}

pub(super) fn touch_run(store: &mut PgStore, id: i64, now: i64, sign: &RunSign<'_>) -> Result<()> {
    let target = store.target.clone();
    store
        .client
        .execute(
            "UPDATE runs SET last_seen = $2, app_name = coalesce(app_name, $3),
                 release = coalesce(release, $4),
                 last_rss_bytes = coalesce($5, last_rss_bytes),
                 last_cpu_percent = coalesce($6, last_cpu_percent)
             WHERE id = $1",
            &[
                &id,
                &now,
                &sign.app,
                &sign.release,
                &sign.rss_bytes.map(big),
                &sign.cpu_percent,
            ],
        )
        .map_err(|e| target.error("updating the run in", e))?;
    Ok(())
}

pub(super) fn crash_run(store: &mut PgStore, run: &CrashedRun<'_>) -> Result<bool> {
    let target = store.target.clone();
    let n = store
        .client
        .execute(
            "UPDATE runs SET status = 'crashed', ended_at = $4,
                 last_seen = greatest(coalesce(last_seen, $4), $4),
                 release = coalesce(release, $5), app_name = coalesce(app_name, $6)
             WHERE boot_id IS NOT DISTINCT FROM $1 AND pid = $2
               AND process_start IS NOT DISTINCT FROM $3 AND status != 'crashed'",
            &[
                &run.boot_id,
                &(run.pid as i32),
                &run.process_start.map(big),
                &run.at_ms,
                &run.release,
                &run.app_name,
            ],
        )
        .map_err(|e| target.error("marking a crashed run in", e))?;
    Ok(n > 0)
}

/// Deletes events past the limits, never a group's first event nor one
/// whose alert is pending (as the SQLite store). `max_bytes` is compared
/// with the live rows' estimated size (count × the newest rows' width).
pub(super) fn enforce_retention(store: &mut PgStore, limits: Limits) -> Result<u64> {
    const PROTECTED: &str = "(e.uid IN (SELECT first_event_uid FROM event_groups)
         OR e.uid IN (SELECT event_uid FROM outbox WHERE status IN ('pending', 'sending')))";
    let target = store.target.clone();
    let fail = |e| target.error("applying retention in", e);
    let now = crate::util::time::now_ms();
    let mut deleted = 0u64;
    if let Some(age) = limits.max_age_ms {
        deleted += store
            .client
            .execute(
                &format!("DELETE FROM events e WHERE e.ts < $1 AND NOT {PROTECTED}"),
                &[&now.saturating_sub(age)],
            )
            .map_err(fail)?;
    }
    if let Some(n) = limits.max_events {
        deleted += store
            .client
            .execute(
                &format!(
                    "DELETE FROM events e WHERE e.id < (
                         SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1)
                     AND NOT {PROTECTED}"
                ),
                &[&(n.saturating_sub(1) as i64)],
            )
            .map_err(fail)?;
    }
    if let Some(max) = limits.max_bytes {
        // The table's size does not shrink after a DELETE (not without
        // VACUUM FULL): live bytes are estimated from the newest rows'
        // average width, and the oldest tenth goes until they fit.
        for _ in 0..10 {
            let row = store
                .client
                .query_one(
                    "SELECT count(*), coalesce((SELECT avg(pg_column_size(e.*))::bigint
                         FROM (SELECT * FROM events ORDER BY id DESC LIMIT 1000) e), 0)
                     FROM events",
                    &[],
                )
                .map_err(fail)?;
            let (rows, width): (i64, i64) = (row.get(0), row.get(1));
            if (rows.max(0) as u64).saturating_mul(width.max(0) as u64) <= max {
                break;
            }
            let n = store
                .client
                .execute(
                    &format!(
                        "DELETE FROM events e WHERE e.id IN (
                             SELECT id FROM events ORDER BY id
                             LIMIT greatest($1 / 10, 1))
                         AND NOT {PROTECTED}"
                    ),
                    &[&rows],
                )
                .map_err(fail)?;
            deleted += n;
            if n == 0 {
                break;
            }
        }
    }
    if deleted > 0 {
        store
            .client
            .batch_execute(
                "DELETE FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.snapshot_id = s.id)",
            )
            .map_err(fail)?;
        store
            .client
            .batch_execute(ORPHAN_ATTACHMENTS)
            .map_err(fail)?;
    }
    if let Some(max) = limits.attachments_max_bytes {
        // The oldest lose their bytes until the rest fit (as in SQLite).
        store
            .client
            .execute(
                "UPDATE attachments SET data = NULL, dropped = 'over the database cap'
                 WHERE id IN (
                     SELECT id FROM (
                         SELECT id, sum(size) OVER (ORDER BY id DESC) AS newer
                         FROM attachments WHERE data IS NOT NULL) a
                     WHERE a.newer > $1)",
                &[&i64::try_from(max).unwrap_or(i64::MAX)],
            )
            .map_err(fail)?;
    }
    Ok(deleted)
}

/// Deletes the attachments whose event is gone.
pub(super) const ORPHAN_ATTACHMENTS: &str = "DELETE FROM attachments a
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.uid = a.event_uid)";
