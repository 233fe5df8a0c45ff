//! The runs ledger and retention in PostgreSQL. Runs are judged per host:
//! a run still open whose process is gone is judged by the next start on
//! the same host and boot (a reused pid told apart by its start time),
//! never by another host.

use super::{big, PgStore};
use crate::error::Result;
use crate::store::claims::Claimant;
use crate::store::runs::{still_running, CrashedRun, RunSign, RunStart, RunStatus};

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
