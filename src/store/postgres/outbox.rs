//! The notify side of the PostgreSQL store: the outbox shared by a fleet.
//! A row is claimed by one process (`FOR UPDATE SKIP LOCKED`: a row another
//! process is claiming is skipped, not waited for), claims name their run
//! and are put back by the rule of `store::claims` (at most one duplicate,
//! never a loss). Digests are made under the same advisory lock, so two
//! processes never make the same one.

use super::PgStore;
use crate::error::Result;
use crate::event::{Alert, AlertFrame, AlertKind, EventKind, Frame};
use crate::level::Level;
use crate::store::claims::Claim;
use crate::store::{AlertRules, DueAlert, Outcome, OwnRows};

/// The advisory lock under which digests are made (`'errsnap-d'`).
const DIGEST_LOCK: i64 = 0x6572_7273_6e61_7064;

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn make_due_digests(store: &mut PgStore, rules: &AlertRules, now: i64) -> Result<usize> {
    let target = store.target.clone();
    let fail = |e| target.error("making digest alerts in", e);
    let cutoff = now.saturating_sub(ms(rules.policy.cooldown));
    // Most passes have none: a read first, without the lock.
    let any: bool = store
        .client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM alert_state WHERE suppressed > 0 AND last_alert_at <= $1)",
            &[&cutoff],
        )
        .map_err(fail)?
        .get(0);
    if !any {
        return Ok(0);
    }
    let mut tx = store.client.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DIGEST_LOCK])
        .map_err(fail)?;
    // The groups first, in the batches' order (fingerprint): a batch
    // deciding for one of them meanwhile waits, or is waited for, whole.
    tx.query(
        "SELECT g.id FROM event_groups g
         WHERE g.id IN (SELECT group_id FROM alert_state WHERE suppressed > 0 AND last_alert_at <= $1)
         ORDER BY g.fingerprint FOR NO KEY UPDATE",
        &[&cutoff],
    )
    .map_err(fail)?;
    let rows = tx
        .query(
            "SELECT a.group_id, a.channel, a.suppressed, a.last_event_uid
             FROM alert_state a JOIN event_groups g ON g.id = a.group_id
             WHERE a.suppressed > 0 AND a.last_alert_at <= $1 AND g.status != 'muted'
               AND a.channel = ANY($2)
             ORDER BY g.fingerprint, a.channel
             FOR UPDATE OF a",
            &[&cutoff, &rules.channels],
        )
        .map_err(fail)?;
    let mut made = 0;
    for r in rows {
        let (group, channel, suppressed, uid): (i64, String, i64, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        tx.execute(
            "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                 created_at, next_attempt)
             VALUES ($1, $2, $3, 'digest', 'pending', $4, $5, $5)",
            &[&uid, &group, &channel, &suppressed, &now],
        )
        .map_err(fail)?;
        tx.execute(
            "UPDATE alert_state SET suppressed = 0, last_alert_at = $3
             WHERE group_id = $1 AND channel = $2",
            &[&group, &channel, &now],
        )
        .map_err(fail)?;
        made += 1;
    }
    tx.commit().map_err(fail)?;
    Ok(made)
}

pub(super) fn next_digest_at(store: &mut PgStore, rules: &AlertRules) -> Result<Option<i64>> {
    let target = store.target.clone();
    let t: Option<i64> = store
        .client
        .query_one(
            "SELECT min(last_alert_at) FROM alert_state WHERE suppressed > 0",
            &[],
        )
        .map_err(|e| target.error("looking for digests in", e))?
        .get(0);
    Ok(t.map(|t| t.saturating_add(ms(rules.policy.cooldown))))
}

pub(super) fn due_alerts(
    store: &mut PgStore,
    channels: &[String],
    now: i64,
    limit: usize,
) -> Result<Vec<DueAlert>> {
    let target = store.target.clone();
    let rows = store
        .client
        .query(
            "SELECT id, channel, attempts, created_at, event_uid FROM outbox
             WHERE status = 'pending' AND next_attempt <= $1 AND channel = ANY($2)
             ORDER BY next_attempt, id LIMIT $3",
            &[&now, &channels, &(limit as i64)],
        )
        .map_err(|e| target.error("reading the outbox of", e))?;
    Ok(rows
        .into_iter()
        .map(|r| DueAlert {
            id: r.get(0),
            channel: r.get(1),
            attempts: i64::from(r.get::<_, i32>(2)),
            created_at: r.get(3),
            event_uid: r.get(4),
        })
        .collect())
}

pub(super) fn next_attempt_at(store: &mut PgStore, channels: &[String]) -> Result<Option<i64>> {
    let target = store.target.clone();
    Ok(store
        .client
        .query_opt(
            "SELECT next_attempt FROM outbox WHERE status = 'pending' AND channel = ANY($1)
             ORDER BY next_attempt LIMIT 1",
            &[&channels],
        )
        .map_err(|e| target.error("reading the outbox of", e))?
        .map(|r| r.get(0)))
}

pub(super) fn claim(store: &mut PgStore, id: i64, now: i64) -> Result<bool> {
    let target = store.target.clone();
    let n = store
        .client
        .execute(
            // A row another process is claiming right now is skipped, not
            // waited for.
            "UPDATE outbox SET status = 'sending', claimed_by = $2, claimed_at = $3,
                 claim_run = $4
             WHERE id = (SELECT id FROM outbox WHERE id = $1 AND status = 'pending'
                         FOR UPDATE SKIP LOCKED)",
            &[&id, &store.claimer, &now, &store.claimant.key()],
        )
        .map_err(|e| target.error("claiming an alert in", e))?;
    Ok(n == 1)
}

pub(super) fn record_outcome(
    store: &mut PgStore,
    id: i64,
    outcome: Outcome<'_>,
    now: i64,
) -> Result<()> {
    let target = store.target.clone();
    let c = &mut store.client;
    let r = match outcome {
        Outcome::Sent => c.execute(
            "UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1,
                 last_error = NULL WHERE id = $1",
            &[&id, &now],
        ),
        Outcome::Retry { at, error } => c.execute(
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt = $2,
                 last_error = $3, claimed_by = NULL, claimed_at = NULL, claim_run = NULL
             WHERE id = $1",
            &[&id, &at, &error],
        ),
        Outcome::Failed { error } => c.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2
             WHERE id = $1",
            &[&id, &error],
        ),
        Outcome::Parked { error } => c.execute(
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, last_error = $2,
                 claimed_by = NULL, claimed_at = NULL, claim_run = NULL WHERE id = $1",
            &[&id, &error],
        ),
    };
    r.map(|_| ())
        .map_err(|e| target.error("recording an alert's delivery in", e))
}

pub(super) fn claims_in_flight(store: &mut PgStore) -> Result<Vec<Claim>> {
    let target = store.target.clone();
    let rows = store
        .client
        .query(
            "SELECT id, claim_run, claimed_at FROM outbox WHERE status = 'sending'",
            &[],
        )
        .map_err(|e| target.error("reading claimed alerts in", e))?;
    Ok(rows
        .into_iter()
        .map(|r| Claim {
            id: r.get(0),
            run: r.get(1),
            claimed_at: r.get(2),
        })
        .collect())
}

pub(super) fn put_back(store: &mut PgStore, id: i64) -> Result<bool> {
    let target = store.target.clone();
    let n = store
        .client
        .execute(
            "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL,
                 claim_run = NULL
             WHERE id = $1 AND status = 'sending'",
            &[&id],
        )
        .map_err(|e| target.error("releasing a claimed alert in", e))?;
    Ok(n == 1)
}

pub(super) fn retry_pending_now(store: &mut PgStore, now: i64) -> Result<()> {
    let target = store.target.clone();
    store
        .client
        .execute(
            "UPDATE outbox SET next_attempt = $1 WHERE status = 'pending' AND next_attempt > $1",
            &[&now],
        )
        .map(|_| ())
        .map_err(|e| target.error("rescheduling pending alerts in", e))
}

/// The outbox's highest row id (0 when empty), in `client`'s view (a
/// batch's own transaction sees its rows).
pub(super) fn mark(
    client: &mut impl postgres::GenericClient,
    target: &super::connect::PgTarget,
) -> Result<i64> {
    client
        .query_one("SELECT coalesce(max(id), 0)::BIGINT FROM outbox", &[])
        .map(|r| r.get(0))
        .map_err(|e| target.error("reading the outbox of", e))
}

/// The rows that events of run `run` made, with ids in `(after, upto]`,
/// per channel and status.
pub(super) fn own_rows(
    store: &mut PgStore,
    run: i64,
    after: i64,
    upto: i64,
) -> Result<Vec<OwnRows>> {
    let target = store.target.clone();
    let rows = store
        .client
        .query(
            "SELECT channel, status, count(*), min(next_attempt) FROM outbox
             WHERE id > $2 AND id <= $3 AND origin_run = $1
             GROUP BY channel, status",
            &[&run, &after, &upto],
        )
        .map_err(|e| target.error("reading this run's alerts in", e))?;
    Ok(rows
        .into_iter()
        .map(|r| OwnRows {
            channel: r.get(0),
            status: r.get(1),
            count: r.get::<_, i64>(2).max(0) as u64,
            next_attempt: r.get(3),
        })
        .collect())
}

/// Builds the alert of an outbox row from its stored event, with the
/// number of hosts its group was seen on.
pub(super) fn load_alert(store: &mut PgStore, id: i64) -> Result<Option<Alert>> {
    let target = store.target.clone();
    let fail = |e| target.error("loading an alert's event from", e);
    let row = store
        .client
        .query_opt(
            "SELECT o.kind, o.suppressed, e.uid, e.ts, e.level, e.kind, l.name, e.app_name,
                    e.environment, e.message, e.error_chain::text, e.file, e.line, e.col,
                    h.hostname, e.pid, s.proc_cpu_percent, s.proc_rss_bytes, s.sys_used_memory,
                    s.sys_total_memory, g.title, g.count, e.backtrace_id, e.release,
                    (SELECT count(*) FROM group_hosts gh WHERE gh.group_id = g.id)
             FROM outbox o
             JOIN events e ON e.uid = o.event_uid
             JOIN loggers l ON l.id = e.logger_id
             JOIN event_groups g ON g.id = e.group_id
             LEFT JOIN snapshots s ON s.id = e.snapshot_id
             LEFT JOIN hosts h ON h.id = e.host_id
             WHERE o.id = $1",
            &[&id],
        )
        .map_err(fail)?;
    let Some(r) = row else {
        return Ok(None);
    };
    let chain: Option<String> = r.get(10);
    let file: Option<String> = r.get(11);
    let location = file.map(|f| {
        format!(
            "{f}:{}:{}",
            r.get::<_, Option<i32>>(12).unwrap_or(0),
            r.get::<_, Option<i32>>(13).unwrap_or(0)
        )
    });
    let used: Option<i64> = r.get(18);
    let total: Option<i64> = r.get(19);
    let backtrace: Option<i64> = r.get(22);
    let hosts: i64 = r.get(24);
    let mut alert = Alert {
        kind: AlertKind::from_name(&r.get::<_, String>(0)).unwrap_or(AlertKind::New),
        suppressed: r.get::<_, i64>(1).max(0) as u64,
        event_id: r.get(2),
        timestamp_ms: r.get(3),
        level: Level::from_i64(i64::from(r.get::<_, i16>(4))).unwrap_or(Level::Error),
        event_kind: EventKind::from_name(&r.get::<_, String>(5)).unwrap_or(EventKind::Message),
        logger: r.get(6),
        app_name: r.get(7),
        environment: r.get(8),
        release: r.get(23),
        message: r.get(9),
        chain: crate::event::alert::chain_messages(chain.as_deref()),
        location,
        host: r.get(14),
        pid: r.get::<_, i64>(15) as u32,
        cpu_percent: r.get(16),
        rss_bytes: r.get::<_, Option<i64>>(17).map(|v| v.max(0) as u64),
        host_memory_percent: match (used, total) {
            (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
            _ => None,
        },
        frames: Vec::new(),
        group_title: r.get(20),
        occurrences: r.get::<_, i64>(21).max(0) as u64,
        hosts_seen: Some(hosts.max(0) as u64),
    };
    if let Some(bt) = backtrace {
        alert.frames = frames(&mut store.client, &target, bt)?
            .into_iter()
            .map(AlertFrame::of)
            .collect();
    }
    alert.strip_controls();
    Ok(Some(alert))
}

/// The frames of a stored backtrace, innermost first.
pub(super) fn frames(
    client: &mut postgres::Client,
    target: &super::connect::PgTarget,
    backtrace: i64,
) -> Result<Vec<Frame>> {
    let rows = client
        .query(
            "SELECT function, file, line, col, address, module, module_offset, in_app, build_id
             FROM frames WHERE backtrace_id = $1 ORDER BY idx",
            &[&backtrace],
        )
        .map_err(|e| target.error("reading frames from", e))?;
    Ok(rows
        .into_iter()
        .map(|r| Frame {
            function: r.get(0),
            file: r.get(1),
            line: r.get::<_, Option<i32>>(2).map(|v| v as u32),
            column: r.get::<_, Option<i32>>(3).map(|v| v as u32),
            address: r.get::<_, i64>(4) as u64,
            module: r.get(5),
            module_offset: r.get::<_, Option<i64>>(6).map(|v| v as u64),
            in_app: r.get(7),
            build_id: r.get(8),
        })
        .collect())
}
