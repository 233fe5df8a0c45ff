//! Monitors and their check-ins, written once over the shared SQL layer.
//! Every finding is made once across a fleet: a missed run is a row
//! unique per (monitor, expected time), a timeout or a death is a row's
//! status changed from `in_progress` by one `UPDATE`; whoever changes the
//! row raises the event.

use std::time::Duration;

use super::backend::SqlRuns;
use super::{items, params, Conn, Row};
use crate::error::Result;
use crate::monitors::check_in::{new_uid, MonitorSpec, Note, Status};
use crate::monitors::judge::{self, Finding, EARLY_MS};
use crate::monitors::rows::{CheckInRow, MonitorRow};
use crate::monitors::Schedule;
use crate::store::claims::Claimant;
use crate::store::seam::{AlertRules, Monitors};
use crate::util::internal_log;

impl<T: SqlRuns> Monitors for T {
    fn record_check_in(&mut self, note: &Note, run: &Claimant) -> Result<Vec<Finding>> {
        let host = self.host();
        let up = Upstream {
            rules: self.rules().clone(),
            origin: self.run(),
        };
        self.conn()
            .in_transaction("recording a check-in", |c| record(c, note, run, host, &up))
    }

    fn drop_check_ins_before(&mut self, before_ms: i64) -> Result<u64> {
        let mut c = self.conn();
        // The upstream items delivered (or failed) by then go too: a
        // session's start is what tells its end it is not the first.
        c.execute(
            "dropping old upstream items",
            "DELETE FROM outbox
             WHERE group_id IS NULL AND status NOT IN ('pending', 'sending')
               AND created_at < ?1",
            params![before_ms],
        )?;
        c.execute(
            "dropping old check-ins",
            "DELETE FROM check_ins
             WHERE status != 'in_progress'
               AND coalesce(ended_at, started_at, expected_at) < ?1",
            params![before_ms],
        )
    }

    fn judge_monitors(&mut self, now_ms: i64) -> Result<Vec<(MonitorSpec, Finding)>> {
        let up = Upstream {
            rules: self.rules().clone(),
            origin: self.run(),
        };
        let mut c = self.conn();
        let monitors = c.map(
            "reading the monitors",
            "SELECT id, slug, crontab, zone, every_ms, margin_ms, max_runtime_ms, judged_until
             FROM monitors ORDER BY id",
            params![],
            |r| Ok((r.get::<i64>(0)?, spec_of(r, 1)?, r.get::<i64>(7)?)),
        )?;
        let mut out = Vec::new();
        for (id, spec, judged_until) in monitors {
            let Some(spec) = spec else { continue };
            let found = c.in_transaction("judging a monitor", |c| {
                judge_one(c, id, &spec, judged_until, now_ms, &up)
            })?;
            out.extend(found.into_iter().map(|f| (spec.clone(), f)));
        }
        Ok(out)
    }
}

/// A monitor's spec from its row, columns from `at` (slug, crontab, zone,
/// every_ms, margin_ms, max_runtime_ms); `None` when its schedule does not
/// read here (a zone this host does not know).
pub(crate) fn spec_of(r: &Row, at: usize) -> Result<Option<MonitorSpec>> {
    let slug: String = r.get(at)?;
    let crontab: Option<String> = r.get(at + 1)?;
    let zone: Option<String> = r.get(at + 2)?;
    let every: Option<i64> = r.get(at + 3)?;
    let schedule = match (crontab, every) {
        (Some(tab), _) => Schedule::crontab(&tab, zone.as_deref().unwrap_or("UTC")),
        (None, Some(ms)) => Schedule::interval(Duration::from_millis(ms.max(0) as u64)),
        (None, None) => return Ok(None),
    };
    let schedule = match schedule {
        Ok(s) => s,
        Err(e) => {
            internal_log::report("monitor", &format!("{slug}: {e}"));
            return Ok(None);
        }
    };
    let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
    Ok(Some(MonitorSpec {
        slug,
        schedule,
        margin: ms(r.get(at + 4)?),
        max_runtime: r.get::<Option<i64>>(at + 5)?.map(ms),
    }))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Declares the monitor (its latest schedule and limits); its id and
/// whether its last judged run failed.
fn declare(c: &mut dyn Conn, spec: &MonitorSpec, now_ms: i64) -> Result<(i64, bool)> {
    let every = spec.schedule.every().map(ms);
    let sets = "crontab = excluded.crontab, zone = excluded.zone, every_ms = excluded.every_ms,
                margin_ms = excluded.margin_ms, max_runtime_ms = excluded.max_runtime_ms,
                updated_at = excluded.updated_at";
    let upsert = c.dialect().upsert("monitors", "slug", sets, false);
    c.execute(
        "declaring a monitor",
        &format!(
            "INSERT INTO monitors (slug, crontab, zone, every_ms, margin_ms, max_runtime_ms,
                 declared_at, updated_at, judged_until, failing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, 0) {upsert}"
        ),
        params![
            spec.slug,
            spec.schedule.crontab_text(),
            spec.schedule.zone(),
            every,
            ms(spec.margin),
            spec.max_runtime.map(ms),
            now_ms
        ],
    )?;
    let row = c
        .query_opt(
            "reading a monitor",
            "SELECT id, failing FROM monitors WHERE slug = ?1",
            params![spec.slug],
        )?
        .ok_or_else(|| {
            crate::error::Error::config(format!("monitor {:?}", spec.slug), "not stored")
        })?;
    Ok((row.get(0)?, row.get::<i64>(1)? != 0))
}

fn set_failing(c: &mut dyn Conn, id: i64, failing: bool) -> Result<()> {
    c.execute(
        "marking a monitor",
        "UPDATE monitors SET failing = ?2 WHERE id = ?1",
        params![id, i64::from(failing)],
    )?;
    Ok(())
}

/// What queues a check-in for the channels that take them: the rules, and
/// this process's run.
struct Upstream {
    rules: AlertRules,
    origin: Option<i64>,
}

impl Upstream {
    /// Queues a started run's change (`in_progress`, `ok`, `error`) for
    /// the channels that take check-ins.
    fn send(&self, c: &mut dyn Conn, item: &crate::store::upstream::Item) -> Result<()> {
        items::queue(
            c,
            &self.rules,
            item,
            crate::util::time::now_ms(),
            self.origin,
        )?;
        Ok(())
    }
}

fn record(
    c: &mut dyn Conn,
    note: &Note,
    run: &Claimant,
    host: Option<i64>,
    up: &Upstream,
) -> Result<Vec<Finding>> {
    let spec = &note.spec;
    let (id, failing) = declare(c, spec, note.at_ms)?;
    let finding =
        |status: Status, started: Option<i64>, expected: Option<i64>, recovered: bool| Finding {
            slug: spec.slug.clone(),
            status,
            uid: note.uid.clone(),
            expected_at: expected,
            started_at: started,
            reason: note.reason.clone(),
            recovered,
        };
    match note.status {
        Status::InProgress => {
            insert_run(c, id, note, note.at_ms, run, host)?;
            let item = items::check_in(
                spec,
                &note.uid,
                note.status.as_str(),
                note.at_ms,
                None,
                None,
            );
            up.send(c, &item)?;
            Ok(Vec::new())
        }
        Status::Ok | Status::Error => {
            let n = c.execute(
                "ending a check-in",
                "UPDATE check_ins SET status = ?2, ended_at = ?3, duration_ms = ?4,
                     exit_code = ?5, exit_signal = ?6, reason = ?7
                 WHERE uid = ?1 AND status = 'in_progress'",
                params![
                    note.uid,
                    note.status.as_str(),
                    note.at_ms,
                    note.duration_ms,
                    note.exit.code,
                    note.exit.signal,
                    note.reason
                ],
            )?;
            let started = note.at_ms - note.duration_ms.unwrap_or(0);
            if n == 0 {
                let known: i64 = c.one(
                    "finding a check-in",
                    "SELECT count(*) FROM check_ins WHERE uid = ?1",
                    params![note.uid],
                )?;
                if known > 0 {
                    // Judged already (timed out, or its process found
                    // gone): the end is noted, the finding stands.
                    c.execute(
                        "ending a judged check-in",
                        "UPDATE check_ins SET ended_at = ?2, duration_ms = ?3 WHERE uid = ?1",
                        params![note.uid, note.at_ms, note.duration_ms],
                    )?;
                    return Ok(Vec::new());
                }
                // A heartbeat, or an end whose start was never recorded.
                insert_run(c, id, note, started, run, host)?;
            }
            let item = items::check_in(
                spec,
                &note.uid,
                note.status.as_str(),
                note.at_ms,
                Some(note.duration_ms.unwrap_or(0)),
                note.reason.as_deref(),
            );
            up.send(c, &item)?;
            let expected: Option<i64> = c.one(
                "reading a check-in",
                "SELECT expected_at FROM check_ins WHERE uid = ?1",
                params![note.uid],
            )?;
            if note.status == Status::Error {
                set_failing(c, id, true)?;
                Ok(vec![finding(Status::Error, Some(started), expected, false)])
            } else if failing {
                set_failing(c, id, false)?;
                Ok(vec![finding(Status::Ok, Some(started), expected, true)])
            } else {
                Ok(Vec::new())
            }
        }
        Status::Missed | Status::Timeout | Status::Declared => Ok(Vec::new()),
    }
}

/// Inserts a run's row: the expected time it answers, unless another row
/// answers it already (a second run, or one judged missed: this one came
/// late).
fn insert_run(
    c: &mut dyn Conn,
    id: i64,
    note: &Note,
    started: i64,
    run: &Claimant,
    host: Option<i64>,
) -> Result<()> {
    let mut expected = judge::expected_for_start(&note.spec, started);
    let mut reason = note.reason.clone();
    if let Some(e) = expected {
        let taken: Option<String> = c
            .query_opt(
                "finding an expected run",
                "SELECT status FROM check_ins WHERE monitor_id = ?1 AND expected_at = ?2",
                params![id, e],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        if let Some(status) = taken {
            expected = None;
            if status == Status::Missed.as_str() && reason.is_none() {
                reason = Some("started after its margin".to_owned());
            }
        }
    }
    let upsert = c.dialect().upsert("check_ins", "uid", "", false);
    c.execute(
        "recording a check-in",
        &format!(
            "INSERT INTO check_ins (monitor_id, uid, expected_at, started_at, ended_at, status,
                 duration_ms, exit_code, exit_signal, host_id, pid, boot_id, process_start, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) {upsert}"
        ),
        params![
            id,
            note.uid,
            expected,
            started,
            (note.status != Status::InProgress).then_some(note.at_ms),
            note.status.as_str(),
            note.duration_ms,
            note.exit.code,
            note.exit.signal,
            host,
            run.pid,
            run.boot_id,
            run.process_start,
            reason
        ],
    )?;
    Ok(())
}

/// One monitor's pass: its missed expected times, its runs past their
/// maximum, its runs whose process ended without an answer.
fn judge_one(
    c: &mut dyn Conn,
    id: i64,
    spec: &MonitorSpec,
    judged_until: i64,
    now_ms: i64,
    up: &Upstream,
) -> Result<Vec<Finding>> {
    let mut found = Vec::new();
    let last: Option<i64> = c.one(
        "reading a monitor's last run",
        "SELECT max(started_at) FROM check_ins WHERE monitor_id = ?1 AND started_at IS NOT NULL",
        params![id],
    )?;
    let declared: i64 = c.one(
        "reading a monitor",
        "SELECT declared_at FROM monitors WHERE id = ?1",
        params![id],
    )?;
    let margin = ms(spec.margin);
    let interval = spec.schedule.every().is_some();
    for e in judge::due(spec, judged_until, last.unwrap_or(declared), now_ms) {
        // An interval's expected time is after its last run: none answered
        // it. A crontab's may have been answered by a run that matched no
        // expected time (another run had taken it).
        let answered: i64 = if interval {
            0
        } else {
            c.one(
                "finding a run",
                "SELECT count(*) FROM check_ins
             WHERE monitor_id = ?1 AND (expected_at = ?2 OR started_at BETWEEN ?3 AND ?4)",
                params![id, e, e - EARLY_MS, e + margin],
            )?
        };
        let claimed = if answered == 0 {
            claim_missed(c, id, e)?
        } else {
            None
        };
        if let Some(uid) = claimed {
            found.push(Finding {
                slug: spec.slug.clone(),
                status: Status::Missed,
                uid,
                expected_at: Some(e),
                started_at: None,
                reason: None,
                recovered: false,
            });
        }
        c.execute(
            "judging a monitor",
            "UPDATE monitors SET judged_until = ?2 WHERE id = ?1 AND judged_until < ?2",
            params![id, e],
        )?;
    }
    let open = c.map(
        "reading running check-ins",
        "SELECT k.uid, k.started_at, k.expected_at, r.status, r.end_reason, r.ended_at, k.pid
         FROM check_ins k
         LEFT JOIN runs r ON r.boot_id = k.boot_id AND r.pid = k.pid
             AND r.process_start = k.process_start
         WHERE k.monitor_id = ?1 AND k.status = 'in_progress'",
        params![id],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<Option<i64>>(1)?,
                r.get::<Option<i64>>(2)?,
                r.get::<Option<String>>(3)?,
                r.get::<Option<String>>(4)?,
                r.get::<Option<i64>>(5)?,
                r.get::<Option<i64>>(6)?,
            ))
        },
    )?;
    for (uid, started, expected, run_status, end_reason, ended_at, pid) in open {
        let late = match (started, spec.max_runtime) {
            (Some(s), Some(max)) => s + ms(max) < now_ms,
            _ => false,
        };
        let gone = matches!(
            run_status.as_deref(),
            Some("exited" | "crashed" | "abnormal")
        );
        let (status, reason) = if gone {
            let how = match (run_status.as_deref(), end_reason.as_deref()) {
                (_, Some("oom-kill")) => "was OOM-killed".to_owned(),
                (Some("crashed"), _) => "crashed".to_owned(),
                (Some("abnormal"), Some(r)) => format!("ended abnormally ({r})"),
                (Some("abnormal"), None) => {
                    "ended abnormally (killed, or the machine stopped)".to_owned()
                }
                _ => "exited without ending the check-in".to_owned(),
            };
            let when = ended_at
                .map(|t| format!(" at {}", judge::local(spec, t)))
                .unwrap_or_default();
            let who = pid.map(|p| format!("pid {p} ")).unwrap_or_default();
            (Status::Error, Some(format!("{who}{how}{when}")))
        } else if late {
            (Status::Timeout, None)
        } else {
            continue;
        };
        let n = c.execute(
            "judging a run",
            "UPDATE check_ins SET status = ?2, reason = coalesce(reason, ?3)
             WHERE uid = ?1 AND status = 'in_progress'",
            params![uid, status.as_str(), reason],
        )?;
        // A run found dead ends as an error upstream too; a timeout (and a
        // miss) the server finds by itself from the monitor's limits.
        if n > 0 && status == Status::Error {
            let duration = match (started, ended_at) {
                (Some(s), Some(e)) => Some(e.saturating_sub(s).max(0)),
                _ => None,
            };
            let item = items::check_in(spec, &uid, "error", now_ms, duration, reason.as_deref());
            up.send(c, &item)?;
        }
        if n > 0 {
            found.push(Finding {
                slug: spec.slug.clone(),
                status,
                uid,
                expected_at: expected,
                started_at: started,
                reason,
                recovered: false,
            });
        }
    }
    if !found.is_empty() {
        set_failing(c, id, true)?;
    }
    Ok(found)
}

/// Inserts the missed row for (`id`, `expected`); its uid when this call
/// made it (another process judging at once finds it there).
fn claim_missed(c: &mut dyn Conn, id: i64, expected: i64) -> Result<Option<String>> {
    let uid = new_uid();
    let upsert = c
        .dialect()
        .upsert("check_ins", "monitor_id, expected_at", "", false);
    c.execute(
        "recording a missed run",
        &format!(
            "INSERT INTO check_ins (monitor_id, uid, expected_at, status)
             VALUES (?1, ?2, ?3, 'missed') {upsert}"
        ),
        params![id, uid, expected],
    )?;
    let who: Option<String> = c.one(
        "reading a missed run",
        "SELECT max(uid) FROM check_ins WHERE monitor_id = ?1 AND expected_at = ?2",
        params![id, expected],
    )?;
    Ok((who.as_deref() == Some(uid.as_str())).then_some(uid))
}

/// Every monitor with its latest `runs` runs, by slug.
pub(crate) fn list(c: &mut dyn Conn, runs: usize, now_ms: i64) -> Result<Vec<MonitorRow>> {
    let mut out = c.map(
        "reading the monitors",
        "SELECT id, slug, crontab, zone, every_ms, margin_ms, max_runtime_ms,
             declared_at, updated_at, failing
         FROM monitors ORDER BY slug",
        params![],
        |r| {
            let spec = spec_of(r, 1)?;
            Ok((
                r.get::<i64>(0)?,
                MonitorRow {
                    slug: r.get(1)?,
                    crontab: r.get(2)?,
                    zone: r.get(3)?,
                    every_ms: r.get(4)?,
                    margin_ms: r.get(5)?,
                    max_runtime_ms: r.get(6)?,
                    declared_at: r.get(7)?,
                    updated_at: r.get(8)?,
                    failing: r.get::<i64>(9)? != 0,
                    next_expected_at: spec.and_then(|s| {
                        if s.schedule.every().is_some() {
                            None
                        } else {
                            s.schedule.next_after(now_ms)
                        }
                    }),
                    runs: Vec::new(),
                },
            ))
        },
    )?;
    for (id, m) in &mut out {
        m.runs = c.map(
            "reading a monitor's runs",
            &format!(
                "SELECT uid, status, expected_at, started_at, ended_at, duration_ms, exit_code,
                     exit_signal, pid, reason
                 FROM check_ins WHERE monitor_id = ?1
                 ORDER BY coalesce(started_at, expected_at) DESC, id DESC LIMIT {runs}"
            ),
            params![*id],
            |r| {
                Ok(CheckInRow {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    expected_at: r.get(2)?,
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    duration_ms: r.get(5)?,
                    exit_code: r.get(6)?,
                    signal: r.get(7)?,
                    pid: r.get(8)?,
                    reason: r.get(9)?,
                })
            },
        )?;
        // An interval's next check-in: due after the last run.
        if let Some(every) = m.every_ms {
            m.next_expected_at = m
                .runs
                .iter()
                .filter_map(|r| r.started_at)
                .max()
                .or(Some(m.declared_at))
                .map(|t| t + every);
        }
    }
    Ok(out.into_iter().map(|(_, m)| m).collect())
}
