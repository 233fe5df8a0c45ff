//! The outbox, written once for every SQL backend: due rows read per
//! channel (each in the order of the `(status, channel, next_attempt)`
//! index: one channel's backlog is never read through to find another's),
//! a row claimed by one process (PostgreSQL skips a row another process is
//! claiming instead of waiting for it), deliveries recorded, claims put
//! back, digests made. Digests are made in one transaction under the
//! database's lock (SQLite's writer lock; PostgreSQL's advisory lock, with
//! groups locked in the batches' order), so two processes never make the
//! same one.

use super::backend::SqlStore;
use super::{params, recorder, Conn, Lock, Row};
use crate::error::Result;
use crate::event::{Alert, AlertFrame, AlertKind, EventKind, Frame};
use crate::level::Level;
use crate::store::claims::{Claim, Claimant};
use crate::store::seam::{AlertRules, DueAlert, Outbox, Outcome, OwnRows};
use crate::util::time::duration_ms;

/// The key of the advisory lock digests are made under (`'errsnap-d'`).
const DIGEST_LOCK: i64 = 0x6572_7273_6e61_7064;

impl<T: SqlStore> Outbox for T {
    fn make_due_digests(&mut self, rules: &AlertRules, now: i64) -> Result<usize> {
        make_due_digests(&mut *self.conn(), rules, now)
    }

    fn next_digest_at(&mut self, rules: &AlertRules) -> Result<Option<i64>> {
        let t: Option<i64> = self.conn().one(
            "looking for digests",
            "SELECT min(last_alert_at) FROM alert_state WHERE suppressed > 0",
            params![],
        )?;
        Ok(t.map(|t| t.saturating_add(duration_ms(rules.policy.cooldown))))
    }

    fn due_alerts(&mut self, channels: &[String], now: i64, limit: usize) -> Result<Vec<DueAlert>> {
        let mut c = self.conn();
        let mut rows: Vec<(i64, DueAlert)> = Vec::new();
        for channel in channels {
            rows.extend(c.map(
                "reading the outbox",
                "SELECT id, channel, attempts, created_at, event_uid, next_attempt, payload
                 FROM outbox
                 WHERE status = 'pending' AND channel = ?1 AND next_attempt <= ?2
                 ORDER BY next_attempt, id LIMIT ?3",
                params![channel, now, limit],
                |r| {
                    Ok((
                        r.get(5)?,
                        DueAlert {
                            id: r.get(0)?,
                            channel: r.get(1)?,
                            attempts: r.get(2)?,
                            created_at: r.get(3)?,
                            event_uid: r.get(4)?,
                            payload: r.get(6)?,
                        },
                    ))
                },
            )?);
        }
        rows.sort_by_key(|(at, row)| (*at, row.id));
        rows.truncate(limit);
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }

    fn next_attempt_at(&mut self, channels: &[String]) -> Result<Option<i64>> {
        let mut c = self.conn();
        let mut first: Option<i64> = None;
        for channel in channels {
            let at: Option<i64> = c.one(
                "reading the outbox",
                "SELECT min(next_attempt) FROM outbox WHERE status = 'pending' AND channel = ?1",
                params![channel],
            )?;
            first = match (first, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }

    fn claim(&mut self, id: i64, now: i64) -> Result<bool> {
        let (me, claimed_by) = self.claims_as();
        let run = me.key();
        let mut c = self.conn();
        let sql = format!(
            "UPDATE outbox SET status = 'sending', claimed_by = ?2, claimed_at = ?3, claim_run = ?4
             WHERE id = (SELECT id FROM outbox WHERE id = ?1 AND status = 'pending'{})",
            c.dialect().lock(Lock::SkipLocked)
        );
        let n = c.execute("claiming an alert", &sql, params![id, claimed_by, now, run])?;
        Ok(n == 1)
    }

    fn load_alert(&mut self, id: i64) -> Result<Option<Alert>> {
        load_alert(&mut *self.conn(), id)
    }

    fn record_outcome(&mut self, id: i64, outcome: Outcome<'_>, now: i64) -> Result<()> {
        let (sql, p) = match outcome {
            Outcome::Sent => (
                "UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1,
                     last_error = NULL WHERE id = ?1",
                params![id, now].to_vec(),
            ),
            Outcome::Retry { at, error } => (
                "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt = ?2,
                     last_error = ?3, claimed_by = NULL, claimed_at = NULL, claim_run = NULL
                 WHERE id = ?1",
                params![id, at, error].to_vec(),
            ),
            Outcome::Failed { error } => (
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1",
                params![id, error].to_vec(),
            ),
            Outcome::Parked { error } => (
                "UPDATE outbox SET status = 'pending', attempts = attempts + 1, last_error = ?2,
                     claimed_by = NULL, claimed_at = NULL, claim_run = NULL WHERE id = ?1",
                params![id, error].to_vec(),
            ),
        };
        self.conn()
            .execute("recording an alert's delivery", sql, &p)
            .map(|_| ())
    }

    fn claimant(&self) -> &Claimant {
        self.claims_as().0
    }

    fn claims_in_flight(&mut self) -> Result<Vec<Claim>> {
        self.conn().map(
            "reading claimed alerts",
            "SELECT id, claim_run, claimed_at FROM outbox WHERE status = 'sending'",
            params![],
            |r| {
                Ok(Claim {
                    id: r.get(0)?,
                    run: r.get(1)?,
                    claimed_at: r.get(2)?,
                })
            },
        )
    }

    fn put_back(&mut self, id: i64) -> Result<bool> {
        let n = self.conn().execute(
            "releasing a claimed alert",
            "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL,
                 claim_run = NULL
             WHERE id = ?1 AND status = 'sending'",
            params![id],
        )?;
        Ok(n == 1)
    }

    fn retry_pending_now(&mut self, now: i64) -> Result<()> {
        self.conn()
            .execute(
                "rescheduling pending alerts",
                "UPDATE outbox SET next_attempt = ?1 WHERE status = 'pending' AND next_attempt > ?1",
                params![now],
            )
            .map(|_| ())
    }

    fn outbox_mark(&mut self) -> Result<i64> {
        mark(&mut *self.conn())
    }

    fn own_rows(&mut self, run: i64, after: i64, upto: i64) -> Result<Vec<OwnRows>> {
        // A range of the primary key: only the rows made since are read.
        self.conn().map(
            "reading this run's alerts",
            "SELECT channel, status, count(*), min(next_attempt) FROM outbox
             WHERE id > ?2 AND id <= ?3 AND origin_run = ?1
             GROUP BY channel, status",
            params![run, after, upto],
            |r| {
                Ok(OwnRows {
                    channel: r.get(0)?,
                    status: r.get(1)?,
                    count: r.get(2)?,
                    next_attempt: r.get(3)?,
                })
            },
        )
    }
}

/// The outbox's highest row id (0 when empty), in `c`'s view (a batch's
/// own transaction sees its rows).
pub(crate) fn mark(c: &mut dyn Conn) -> Result<i64> {
    c.one(
        "reading the outbox",
        "SELECT coalesce(max(id), 0) FROM outbox",
        params![],
    )
}

/// Turns suppressed occurrences whose cooldown has ended into digest
/// alerts; how many were made.
fn make_due_digests(c: &mut dyn Conn, rules: &AlertRules, now: i64) -> Result<usize> {
    const DOING: &str = "making digest alerts";
    let cutoff = now.saturating_sub(duration_ms(rules.policy.cooldown));
    // Most passes have none: a read first, so no lock is taken for nothing.
    let any: bool = c.one(
        DOING,
        "SELECT EXISTS (SELECT 1 FROM alert_state WHERE suppressed > 0 AND last_alert_at <= ?1)",
        params![cutoff],
    )?;
    if !any {
        return Ok(0);
    }
    let d = c.dialect();
    c.in_transaction(DOING, |c| {
        if let Some(lock) = d.advisory_lock() {
            c.query(DOING, lock, params![DIGEST_LOCK])?;
        }
        if d.has_row_locks() {
            // The groups first, in the batches' order (fingerprint): a
            // batch deciding for one of them meanwhile waits, or is waited
            // for, whole.
            c.query(
                DOING,
                &format!(
                    "SELECT g.id FROM event_groups g
                     WHERE g.id IN (SELECT group_id FROM alert_state
                                    WHERE suppressed > 0 AND last_alert_at <= ?1)
                     ORDER BY g.fingerprint{}",
                    d.lock(Lock::NoKeyUpdate)
                ),
                params![cutoff],
            )?;
        }
        let rows = c.query(
            DOING,
            &format!(
                "SELECT a.group_id, a.channel, a.suppressed, a.last_event_uid
                 FROM alert_state a JOIN event_groups g ON g.id = a.group_id
                 WHERE a.suppressed > 0 AND a.last_alert_at <= ?1 AND g.status != 'muted'
                   AND {}
                 ORDER BY g.fingerprint, a.channel{}",
                d.any("a.channel", 2),
                d.lock(Lock::UpdateOf("a"))
            ),
            params![cutoff, rules.channels],
        )?;
        let mut made = 0;
        for r in rows {
            let (group, channel, suppressed, uid): (i64, String, i64, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            c.execute(
                DOING,
                "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                     created_at, next_attempt)
                 VALUES (?1, ?2, ?3, 'digest', 'pending', ?4, ?5, ?5)",
                params![uid, group, channel, suppressed, now],
            )?;
            c.execute(
                DOING,
                "UPDATE alert_state SET suppressed = 0, last_alert_at = ?3
                 WHERE group_id = ?1 AND channel = ?2",
                params![group, channel, now],
            )?;
            made += 1;
        }
        Ok(made)
    })
}

/// Builds the alert of an outbox row from its stored event, with the
/// number of hosts its group was seen on.
fn load_alert(c: &mut dyn Conn, id: i64) -> Result<Option<Alert>> {
    let row = c.query_opt(
        "loading an alert's event",
        "SELECT o.kind, o.suppressed, e.uid, e.ts, e.level, e.kind, l.name, e.app_name,
                e.environment, e.message, e.error_chain, e.file, e.line, e.col,
                h.hostname, e.pid, s.proc_cpu_percent, s.proc_rss_bytes, s.sys_used_memory,
                s.sys_total_memory, g.title, g.count, e.backtrace_id, e.\"release\",
                (SELECT count(*) FROM group_values v WHERE v.group_id = g.id AND v.\"key\" = 'host'),
                e.host_id
         FROM outbox o
         JOIN events e ON e.uid = o.event_uid
         JOIN loggers l ON l.id = e.logger_id
         JOIN event_groups g ON g.id = e.group_id
         LEFT JOIN snapshots s ON s.id = e.snapshot_id
         LEFT JOIN hosts h ON h.id = e.host_id
         WHERE o.id = ?1",
        params![id],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    let mut alert = alert_of(&r)?;
    if let Some(bt) = r.get::<Option<i64>>(22)? {
        alert.frames = frames(c, bt)?.into_iter().map(AlertFrame::of).collect();
    }
    // The run's minutes before the event, in words (none without readings;
    // an alert never fails for want of them).
    let host: Option<i64> = r.get(25)?;
    if let Ok(Some((_, readings))) = recorder::before(c, host, alert.pid, alert.timestamp_ms) {
        alert.trend = crate::pipeline::trend::describe_trend(&readings);
    }
    alert.strip_controls();
    Ok(Some(alert))
}

fn alert_of(r: &Row) -> Result<Alert> {
    let chain: Option<String> = r.get(10)?;
    let location = match r.get::<Option<String>>(11)? {
        Some(f) => Some(format!(
            "{f}:{}:{}",
            r.get::<Option<i64>>(12)?.unwrap_or(0),
            r.get::<Option<i64>>(13)?.unwrap_or(0)
        )),
        None => None,
    };
    let used: Option<i64> = r.get(18)?;
    let total: Option<i64> = r.get(19)?;
    Ok(Alert {
        kind: AlertKind::from_name(&r.get::<String>(0)?).unwrap_or(AlertKind::New),
        suppressed: r.get(1)?,
        event_id: r.get(2)?,
        timestamp_ms: r.get(3)?,
        level: Level::from_i64(r.get(4)?).unwrap_or(Level::Error),
        event_kind: EventKind::from_name(&r.get::<String>(5)?).unwrap_or(EventKind::Message),
        logger: r.get(6)?,
        app_name: r.get(7)?,
        environment: r.get(8)?,
        release: r.get(23)?,
        message: r.get(9)?,
        chain: crate::event::alert::chain_messages(chain.as_deref()),
        location,
        host: r.get(14)?,
        pid: r.get(15)?,
        cpu_percent: r.get(16)?,
        rss_bytes: r.get(17)?,
        host_memory_percent: match (used, total) {
            (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
            _ => None,
        },
        frames: Vec::new(),
        group_title: r.get(20)?,
        occurrences: r.get(21)?,
        suspect: None,
        trend: Vec::new(),
        hosts_seen: Some(r.get(24)?),
    })
}

/// The frames of a stored backtrace, innermost first.
pub(crate) fn frames(c: &mut dyn Conn, backtrace: i64) -> Result<Vec<Frame>> {
    const DOING: &str = "reading frames";
    let full = c.map(
        DOING,
        "SELECT function, file, line, col, address, module, module_offset, in_app, build_id
         FROM frames WHERE backtrace_id = ?1 ORDER BY idx",
        params![backtrace],
        frame_of,
    );
    match full {
        Ok(frames) => Ok(frames),
        // A file of schema 2 (read by a newer CLI, never migrated by
        // reading) has no build-id column.
        Err(_) if c.dialect() == super::Dialect::Sqlite => c.map(
            DOING,
            "SELECT function, file, line, col, address, module, module_offset, in_app, NULL
             FROM frames WHERE backtrace_id = ?1 ORDER BY idx",
            params![backtrace],
            frame_of,
        ),
        Err(e) => Err(e),
    }
}

fn frame_of(r: &Row) -> Result<Frame> {
    Ok(Frame {
        function: r.get(0)?,
        file: r.get(1)?,
        line: r.get(2)?,
        column: r.get(3)?,
        address: r.get::<i64>(4)? as u64,
        module: r.get(5)?,
        module_offset: r.get::<Option<i64>>(6)?.map(|v| v as u64),
        in_app: r.get(7)?,
        build_id: r.get(8)?,
    })
}
