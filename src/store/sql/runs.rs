//! The runs ledger written once over the shared SQL layer: each process's
//! run, and the judgement of earlier runs of the same boot whose process
//! is gone. Runs are judged per host: a boot id is one machine's and one
//! boot's alone, so a run still open is judged by the next start on the
//! same host and boot (a reused pid told apart by its start time), never
//! by another host.

use super::backend::SqlRuns;
use super::{items, params, recorder, Conn, Lock};
use crate::error::Result;
use crate::event::sample::RunSample;
use crate::store::claims::Claimant;
use crate::store::runs::{still_running, CrashedRun, RunSign, RunStart, RunStatus};
use crate::store::seam::{AlertRules, Runs};

impl<T: SqlRuns> Runs for T {
    fn start_run(&mut self, run: &RunStart) -> Result<(i64, usize)> {
        let host = self.host();
        let rules = self.rules().clone();
        let started = self
            .conn()
            .in_transaction("recording the run", |c| start_run(c, run, host, &rules))?;
        self.set_run(started.0);
        Ok(started)
    }

    fn end_run(&mut self, id: i64, status: RunStatus, now_ms: i64) -> Result<bool> {
        // `crashed` overrides a running or exited run; `exited` only ends
        // one still running (a crashed run stays crashed).
        let from = match status {
            RunStatus::Exited => "'running'",
            _ => "'running', 'exited'",
        };
        let rules = self.rules().clone();
        let origin = self.run();
        self.conn().in_transaction("ending the run", |c| {
            let n = c.execute(
                "ending the run",
                &format!(
                    "UPDATE runs SET status = ?2, ended_at = ?3, last_seen = ?3
                     WHERE id = ?1 AND status IN ({from})"
                ),
                params![id, status.as_str(), now_ms],
            )?;
            if n > 0 {
                items::queue_session(c, &rules, id, None, now_ms, origin)?;
            }
            Ok(n > 0)
        })
    }

    fn end_session(&mut self, id: i64, status: RunStatus, now_ms: i64) -> Result<()> {
        let rules = self.rules().clone();
        let origin = self.run();
        self.conn().in_transaction("ending the run's session", |c| {
            items::queue_session(c, &rules, id, Some(status.as_str()), now_ms, origin)
        })
    }

    fn troubled_runs_since(&mut self, since_ms: i64) -> Result<u64> {
        self.conn().one(
            "counting crashed runs",
            "SELECT count(*) FROM runs WHERE status IN ('crashed', 'abnormal') AND ended_at >= ?1",
            params![since_ms],
        )
    }

    fn touch_run(&mut self, id: i64, now_ms: i64, sign: &RunSign<'_>) -> Result<()> {
        let rules = self.rules().clone();
        let sessions = sign.release.is_some()
            && rules
                .takers(crate::store::upstream::ItemKind::Session)
                .next()
                .is_some();
        self.conn().in_transaction("updating the run", |c| {
            // A run that learns its release now begins its session.
            let begins = sessions && {
                let release: Option<Option<String>> = c
                    .query_opt(
                        "reading the run",
                        "SELECT \"release\" FROM runs WHERE id = ?1 AND status = 'running'",
                        params![id],
                    )?
                    .map(|r| r.get(0))
                    .transpose()?;
                matches!(release, Some(None))
            };
            c.execute(
                "updating the run",
                "UPDATE runs SET last_seen = ?2, app_name = coalesce(app_name, ?3),
                     \"release\" = coalesce(\"release\", ?4),
                     last_rss_bytes = coalesce(?5, last_rss_bytes),
                     last_cpu_percent = coalesce(?6, last_cpu_percent)
                 WHERE id = ?1",
                params![
                    id,
                    now_ms,
                    sign.app,
                    sign.release,
                    sign.rss_bytes,
                    sign.cpu_percent
                ],
            )?;
            if begins {
                items::queue_session(c, &rules, id, None, now_ms, Some(id))?;
            }
            Ok(())
        })
    }

    fn crash_run(&mut self, run: &CrashedRun<'_>) -> Result<bool> {
        let rules = self.rules().clone();
        let origin = self.run();
        self.conn().in_transaction("marking a crashed run", |c| {
            crash_run(c, run, &rules, origin)
        })
    }

    fn run_status_of(&mut self, who: &Claimant) -> Result<Option<RunStatus>> {
        let mut c = self.conn();
        let d = c.dialect();
        let sql = format!(
            "SELECT status FROM runs WHERE {} ORDER BY id DESC LIMIT 1",
            same_process(d),
        );
        let status: Option<String> = c
            .query_opt(
                "reading the runs ledger",
                &sql,
                params![who.boot_id, who.pid, who.process_start],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        Ok(status.as_deref().and_then(RunStatus::from_name))
    }

    fn find_run(
        &mut self,
        boot_id: Option<&str>,
        pid: u32,
        process_start: Option<u64>,
    ) -> Result<Option<i64>> {
        latest_run_of(&mut *self.conn(), params![boot_id, pid, process_start])
    }

    fn record_samples(&mut self, run: i64, chunk: u32, readings: &[RunSample]) -> Result<()> {
        recorder::put_chunk(&mut *self.conn(), run, chunk, readings)
    }

    fn append_samples(&mut self, run: i64, readings: &[RunSample]) -> Result<usize> {
        self.conn()
            .in_transaction("recording a run's last readings", |c| {
                recorder::append(c, run, readings)
            })
    }

    fn drop_samples_before(&mut self, before_ms: i64) -> Result<u64> {
        recorder::drop_before(&mut *self.conn(), before_ms)
    }

    fn drop_runs_before(&mut self, before_ms: i64) -> Result<u64> {
        self.conn().in_transaction("dropping old runs", |c| {
            let n = c.execute(
                "dropping old runs",
                "DELETE FROM runs
                 WHERE status != 'running'
                   AND coalesce(ended_at, last_seen, started_at) < ?1",
                params![before_ms],
            )?;
            if n > 0 {
                c.execute(
                    "dropping old runs' readings",
                    "DELETE FROM run_samples
                     WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = run_samples.run_id)",
                    params![],
                )?;
            }
            Ok(n)
        })
    }
}

/// Marks the run of a crashed process (`run`) as crashed, and queues its
/// session's end.
fn crash_run(
    c: &mut dyn Conn,
    run: &CrashedRun<'_>,
    rules: &AlertRules,
    origin: Option<i64>,
) -> Result<bool> {
    let d = c.dialect();
    let sql = format!(
        "UPDATE runs SET status = 'crashed', ended_at = ?4,
             last_seen = {}, \"release\" = coalesce(\"release\", ?5),
             app_name = coalesce(app_name, ?6)
         WHERE {} AND status != 'crashed'",
        d.greatest("coalesce(last_seen, ?4)", "?4"),
        same_process(d),
    );
    let n = c.execute(
        "marking a crashed run",
        &sql,
        params![
            run.boot_id,
            run.pid,
            run.process_start,
            run.at_ms,
            run.release,
            run.app_name
        ],
    )?;
    if n > 0 {
        let id = latest_run_of(c, params![run.boot_id, run.pid, run.process_start])?;
        if let Some(id) = id {
            items::queue_session(c, rules, id, None, run.at_ms, origin)?;
        }
    }
    Ok(n > 0)
}

/// The latest run of one process (`same_process`'s three values).
fn latest_run_of(c: &mut dyn Conn, process: &[super::Value]) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT id FROM runs WHERE {} ORDER BY id DESC LIMIT 1",
        same_process(c.dialect()),
    );
    c.query_opt("reading the runs ledger", &sql, process)?
        .map(|r| r.get(0))
        .transpose()
}

/// The runs of one process: the same boot (`?1`), pid (`?2`) and process
/// start (`?3`), so a reused pid is never taken for the process.
fn same_process(d: super::Dialect) -> String {
    format!(
        "{} AND pid = ?2 AND {}",
        d.same("boot_id", "?1"),
        d.same("process_start", "?3")
    )
}

/// Records `run` as running, after marking earlier runs of the same boot
/// whose process is gone as abnormal (ended at their last sign of life,
/// with the reason when the cgroup can tell). Returns the new run's id and
/// how many runs were judged abnormal.
fn start_run(
    c: &mut dyn Conn,
    run: &RunStart,
    host: Option<i64>,
    rules: &AlertRules,
) -> Result<(i64, usize)> {
    let mut abnormal = 0;
    let mut judged = Vec::new();
    if let Some(boot) = &run.boot_id {
        let sql = format!(
            "SELECT id, pid, process_start, cgroup, oom_kills_at_start FROM runs
             WHERE status = 'running' AND boot_id = ?1{}",
            c.dialect().lock(Lock::Update)
        );
        type Open = (i64, u32, Option<u64>, Option<String>, Option<i64>);
        let open: Vec<Open> = c.map("reading open runs", &sql, params![boot], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        for (id, pid, start, cgroup, oom_then) in open {
            if still_running(pid, start) {
                continue;
            }
            c.execute(
                "judging a run",
                "UPDATE runs SET status = 'abnormal',
                     ended_at = coalesce(last_seen, started_at), end_reason = ?2
                 WHERE id = ?1 AND status = 'running'",
                params![id, end_reason(cgroup.as_deref(), oom_then)],
            )?;
            abnormal += 1;
            judged.push(id);
        }
    }
    let id: i64 = c.insert_id(
        "recording the run",
        "INSERT INTO runs (host_id, boot_id, pid, process_start, started_at, last_seen,
             app_name, \"release\", build_id, status, cgroup, oom_kills_at_start,
             memory_max_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, 'running', ?9, ?10, ?11)",
        params![
            host,
            run.boot_id,
            run.pid,
            run.process_start,
            run.started_at,
            run.app_name,
            run.release,
            run.build_id,
            run.cgroup,
            run.oom_kills,
            run.memory_max_bytes
        ],
    )?;
    // The sessions: the runs found gone end, this one begins.
    for gone in judged {
        items::queue_session(c, rules, gone, None, run.started_at, Some(id))?;
    }
    items::queue_session(c, rules, id, None, run.started_at, Some(id))?;
    Ok((id, abnormal))
}

/// Why a run found gone ended, when its cgroup can tell: the OOM killer
/// killed a process of the cgroup since the run started. (A cgroup shared
/// with other processes may have lost another one: the count says a kill
/// happened there, the run's disappearance says it was most likely this.)
fn end_reason(cgroup: Option<&str>, oom_kills_at_start: Option<i64>) -> Option<&'static str> {
    let now = crate::pipeline::cgroup::oom_kills_at(std::path::Path::new(cgroup?))?;
    (i64::try_from(now).unwrap_or(i64::MAX) > oom_kills_at_start?).then_some("oom-kill")
}
