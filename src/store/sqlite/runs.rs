//! The runs ledger in SQLite: each process's run, and the judgement of
//! earlier runs of the same boot whose process is gone.

use rusqlite::{params, Connection};

use super::fail;
use crate::error::Result;
use crate::store::claims::Claimant;
use crate::store::runs::{still_running, RunSign, RunStart, RunStatus};

/// Records `run` as running, after marking earlier runs of the same boot
/// whose process is gone as abnormal (ended at their last sign of life).
/// Returns the new run's id and how many runs were judged abnormal.
pub(crate) fn start_run(
    conn: &mut Connection,
    run: &RunStart,
    host_id: Option<i64>,
) -> Result<(i64, usize)> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| fail("recording the run", e))?;
    let mut abnormal = 0;
    if let Some(boot) = &run.boot_id {
        type Open = (i64, u32, Option<i64>, Option<String>, Option<i64>);
        let open: Vec<Open> = tx
            .prepare(
                "SELECT id, pid, process_start, cgroup, oom_kills_at_start FROM runs
                 WHERE status = 'running' AND boot_id = ?1",
            )
            .and_then(|mut s| {
                s.query_map([boot], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(|e| fail("reading open runs", e))?;
        for (id, pid, start, cgroup, oom_then) in open {
            if still_running(pid, start.map(|s| s as u64)) {
                continue;
            }
            tx.execute(
                "UPDATE runs SET status = 'abnormal',
                     ended_at = coalesce(last_seen, started_at), end_reason = ?2
                 WHERE id = ?1 AND status = 'running'",
                params![id, end_reason(cgroup.as_deref(), oom_then)],
            )
            .map_err(|e| fail("judging a run", e))?;
            abnormal += 1;
        }
    }
    let id: i64 = tx
        .query_row(
            "INSERT INTO runs (host_id, boot_id, pid, process_start, started_at, last_seen,
                 app_name, release, build_id, status, cgroup, oom_kills_at_start,
                 memory_max_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, 'running', ?9, ?10, ?11)
             RETURNING id",
            params![
                host_id,
                run.boot_id,
                run.pid,
                run.process_start.map(|s| s as i64),
                run.started_at,
                run.app_name,
                run.release,
                run.build_id,
                run.cgroup,
                run.oom_kills.map(|n| n as i64),
                run.memory_max_bytes.map(|n| n as i64),
            ],
            |r| r.get(0),
        )
        .map_err(|e| fail("recording the run", e))?;
    tx.commit().map_err(|e| fail("recording the run", e))?;
    Ok((id, abnormal))
}

/// Why a run found gone ended, when its cgroup can tell: the OOM killer
/// killed a process of the cgroup since the run started. (A cgroup shared
/// with other processes may have lost another one: the count says a kill
/// happened there, the run's disappearance says it was most likely this.)
fn end_reason(cgroup: Option<&str>, oom_kills_at_start: Option<i64>) -> Option<&'static str> {
    let now = crate::pipeline::cgroup::oom_kills_at(std::path::Path::new(cgroup?))?;
    (now as i64 > oom_kills_at_start?).then_some("oom-kill")
}

/// Marks the run of a crashed process as crashed (see `Store::crash_run`).
pub(crate) fn crash_run(
    conn: &Connection,
    run: &crate::store::runs::CrashedRun<'_>,
) -> Result<bool> {
    let crate::store::runs::CrashedRun {
        boot_id,
        pid,
        process_start,
        at_ms,
        release,
        app_name,
    } = *run;
    let n = conn
        .execute(
            "UPDATE runs SET status = 'crashed', ended_at = ?4,
                 last_seen = max(coalesce(last_seen, ?4), ?4),
                 release = coalesce(release, ?5), app_name = coalesce(app_name, ?6)
             WHERE boot_id IS ?1 AND pid = ?2 AND process_start IS ?3
                 AND status != 'crashed'",
            params![
                boot_id,
                pid,
                process_start.map(|s| s as i64),
                at_ms,
                release,
                app_name
            ],
        )
        .map_err(|e| fail("marking a crashed run", e))?;
    Ok(n > 0)
}

/// Ends run `id` with `status`: `crashed` overrides a running run; `exited`
/// only ends one still running (a crashed run stays crashed).
pub(crate) fn end_run(conn: &Connection, id: i64, status: RunStatus, now: i64) -> Result<bool> {
    let from = match status {
        RunStatus::Exited => "'running'",
        _ => "'running', 'exited'",
    };
    let n = conn
        .execute(
            &format!(
                "UPDATE runs SET status = ?2, ended_at = ?3, last_seen = ?3
                 WHERE id = ?1 AND status IN ({from})"
            ),
            params![id, status.as_str(), now],
        )
        .map_err(|e| fail("ending the run", e))?;
    Ok(n > 0)
}

/// How the ledger records the run that `c` names (its latest row, should
/// one run have opened the file twice).
pub(crate) fn status_of(conn: &Connection, c: &Claimant) -> Result<Option<RunStatus>> {
    use rusqlite::OptionalExtension;
    let status: Option<String> = conn
        .prepare_cached(
            "SELECT status FROM runs WHERE boot_id IS ?1 AND pid = ?2 AND process_start IS ?3
             ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(
                params![c.boot_id, c.pid, c.process_start.map(|t| t as i64)],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|e| fail("reading the runs ledger", e))?;
    Ok(status.as_deref().and_then(RunStatus::from_name))
}

/// Notes that run `id` is alive now (its last sign of life, used as its
/// end when it is later found gone), with its application and release when
/// they were not known yet.
pub(crate) fn touch_run(conn: &Connection, id: i64, now: i64, sign: &RunSign<'_>) -> Result<()> {
    conn.execute(
        "UPDATE runs SET last_seen = ?2, app_name = coalesce(app_name, ?3),
             release = coalesce(release, ?4),
             last_rss_bytes = coalesce(?5, last_rss_bytes),
             last_cpu_percent = coalesce(?6, last_cpu_percent)
         WHERE id = ?1",
        params![
            id,
            now,
            sign.app,
            sign.release,
            sign.rss_bytes.map(|b| b as i64),
            sign.cpu_percent
        ],
    )
    .map_err(|e| fail("updating the run", e))?;
    Ok(())
}
