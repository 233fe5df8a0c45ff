//! Writing a batch into PostgreSQL: one transaction. Events are taken in
//! the order of their group's fingerprint, so that two processes writing
//! the same groups lock their rows in the same order (no deadlock); each
//! group row is locked (`FOR UPDATE`) while its events are counted and its
//! alerts decided, so a fleet decides each group's alert once and shares
//! its cooldown. An event whose uid is stored is skipped (`ON CONFLICT DO
//! NOTHING RETURNING`): only rows actually inserted count or alert.

use postgres::Transaction;

use super::connect::PgTarget;
use super::store::{big, PgStore};
use crate::error::Result;
use crate::event::{AlertKind, Event, Frame, Snapshot};
use crate::pipeline::fingerprint;
use crate::store::BatchOutcome;

/// The id of logger `name`, created (with its `SELECT * FROM "<name>"`
/// view, as in the file) if new.
pub(super) fn logger_id(tx: &mut Transaction<'_>, target: &PgTarget, name: &str) -> Result<i64> {
    let fail = |e| target.error("registering a logger in", e);
    let created = tx
        .query_opt(
            "INSERT INTO loggers (name, created_at) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            &[&name, &crate::util::time::now_ms()],
        )
        .map_err(fail)?;
    if let Some(row) = created {
        let id: i64 = row.get(0);
        // The name was validated as an identifier when its logger was built;
        // checked again, as it is spliced into the statement. A table of
        // that name (not ours) keeps its place: the view is skipped.
        if crate::store::validate_logger_name(name).is_ok() {
            let mut sp = tx.savepoint("logger_view").map_err(fail)?;
            if sp.batch_execute(&logger_view_sql(name, id)).is_ok() {
                sp.commit().map_err(fail)?;
            }
        }
        return Ok(id);
    }
    let id: i64 = tx
        .query_one("SELECT id FROM loggers WHERE name = $1", &[&name])
        .map_err(fail)?
        .get(0);
    Ok(id)
}

/// The per-logger view (`SELECT * FROM error_table`, the original design's
/// query), with the host of each event.
fn logger_view_sql(name: &str, logger_id: i64) -> String {
    format!(
        r#"CREATE OR REPLACE VIEW "{name}" AS
SELECT e.uid AS event_id,
       e.ts AS ts,
       to_char(to_timestamp(e.ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time,
       CASE e.level WHEN 0 THEN 'trace' WHEN 1 THEN 'debug' WHEN 2 THEN 'info'
                    WHEN 3 THEN 'warn' WHEN 4 THEN 'error' ELSE 'fatal' END AS level,
       e.kind AS kind,
       e.message AS message,
       e.error_chain AS error_chain,
       e.file AS file,
       e.line AS line,
       e.thread_name AS thread_name,
       e.pid AS pid,
       h.hostname AS hostname,
       g.fingerprint AS fingerprint,
       e.snapshot_id AS snapshot_id
FROM events e JOIN event_groups g ON g.id = e.group_id
LEFT JOIN hosts h ON h.id = e.host_id
WHERE e.logger_id = {logger_id}"#
    )
}

/// Writes `frames` as the frames of backtrace `id`.
pub(super) fn insert_frames(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    id: i64,
    frames: &[Frame],
) -> Result<()> {
    let stmt = tx
        .prepare(
            "INSERT INTO frames (backtrace_id, idx, function, file, line, col, address,
                 module, module_offset, in_app, build_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .map_err(|e| target.error("inserting frames in", e))?;
    for (i, f) in frames.iter().enumerate() {
        tx.execute(
            &stmt,
            &[
                &id,
                &(i as i32),
                &f.function,
                &f.file,
                &f.line.map(|n| n as i32),
                &f.column.map(|n| n as i32),
                &(f.address as i64),
                &f.module,
                &f.module_offset.map(|o| o as i64),
                &f.in_app,
                &f.build_id,
            ],
        )
        .map_err(|e| target.error("inserting frames in", e))?;
    }
    Ok(())
}

fn backtrace_of(tx: &mut Transaction<'_>, target: &PgTarget, ev: &Event) -> Result<Option<i64>> {
    if ev.frames.is_empty() {
        return Ok(None);
    }
    let fail = |e| target.error("storing a backtrace in", e);
    let hash = match &ev.backtrace_hash {
        Some(h) => h.to_string(),
        None => fingerprint::backtrace_hash(&ev.frames),
    };
    let inserted = tx
        .query_opt(
            "INSERT INTO backtraces (hash, frame_count, resolved) VALUES ($1, $2, $3)
             ON CONFLICT (hash) DO NOTHING RETURNING id",
            &[&hash, &(ev.frames.len() as i32), &ev.symbols_resolved],
        )
        .map_err(fail)?;
    if let Some(row) = inserted {
        let id: i64 = row.get(0);
        insert_frames(tx, target, id, &ev.frames)?;
        return Ok(Some(id));
    }
    Ok(Some(
        tx.query_one("SELECT id FROM backtraces WHERE hash = $1", &[&hash])
            .map_err(fail)?
            .get(0),
    ))
}

fn insert_snapshot(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    s: &Snapshot,
    pid: u32,
) -> Result<i64> {
    let p = &s.process;
    let h = &s.host;
    let opt = |v: Option<u64>| v.map(big);
    let cgroup = s
        .cgroup
        .as_ref()
        .and_then(|c| serde_json::to_string(c).ok());
    let row = tx
        .query_one(
            "INSERT INTO snapshots (taken_at, pid, proc_cpu_user_ms, proc_cpu_system_ms,
                 proc_cpu_percent, proc_rss_bytes, proc_virtual_bytes, proc_memory_percent,
                 proc_threads, proc_io_read_bytes, proc_io_write_bytes, proc_open_fds,
                 sys_total_memory, sys_used_memory, sys_available_memory, sys_total_swap,
                 sys_used_swap, sys_cpu_percent, load_1, load_5, load_15, uptime_s, cgroup)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18, $19, $20, $21, $22, $23::text::jsonb)
             RETURNING id",
            &[
                &s.taken_at_ms,
                &i64::from(pid),
                &opt(p.cpu_user_ms),
                &opt(p.cpu_system_ms),
                &p.cpu_percent,
                &big(p.rss_bytes),
                &big(p.virtual_bytes),
                &p.memory_percent,
                &opt(p.threads),
                &opt(p.io_read_bytes),
                &opt(p.io_write_bytes),
                &opt(p.open_fds),
                &big(h.total_memory),
                &big(h.used_memory),
                &big(h.available_memory),
                &big(h.total_swap),
                &big(h.used_swap),
                &h.cpu_percent,
                &h.load_1,
                &h.load_5,
                &h.load_15,
                &big(h.uptime_s),
                &cgroup,
            ],
        )
        .map_err(|e| target.error("inserting a snapshot in", e))?;
    Ok(row.get(0))
}

/// The group of the event's fingerprint, created if new, and locked for
/// this transaction; its id and status before this event.
fn lock_group(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    ev: &Event,
    logger: i64,
    uid: &str,
) -> Result<(i64, String)> {
    let fail = |e| target.error("storing a group in", e);
    tx.execute(
        "INSERT INTO event_groups (fingerprint, logger_id, kind, level, title, culprit,
             first_seen, last_seen, count, first_event_uid, last_event_uid, first_release)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0, $8, $8, $9)
         ON CONFLICT (fingerprint) DO NOTHING",
        &[
            &ev.fingerprint,
            &logger,
            &ev.kind.as_str(),
            &(ev.level.as_i64() as i16),
            &fingerprint::title(&ev.message),
            &fingerprint::culprit(&ev.frames, ev.location.as_ref()),
            &ev.timestamp_ms,
            &uid,
            &ev.release,
        ],
    )
    .map_err(fail)?;
    let row = tx
        .query_one(
            "SELECT id, status FROM event_groups WHERE fingerprint = $1 FOR UPDATE",
            &[&ev.fingerprint],
        )
        .map_err(fail)?;
    Ok((row.get(0), row.get(1)))
}

/// Writes a batch in one transaction; see the module's description.
pub(super) fn insert_batch(store: &mut PgStore, events: &[Event]) -> Result<BatchOutcome> {
    let target = store.target.clone();
    let fail = |e| target.error("writing a batch to", e);
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    let host_id = store.host_id;
    let rules = store.rules.clone();
    let now = crate::util::time::now_ms();
    let mut out = BatchOutcome::default();
    let mut tx = store.client.transaction().map_err(fail)?;
    let mut last_snapshot: Option<(&Snapshot, i64)> = None;
    let mut new_loggers: Vec<(String, i64)> = Vec::new();
    for ev in order {
        let uid = ev.id.to_string();
        let known = store.loggers.get(&ev.logger).copied().or_else(|| {
            new_loggers
                .iter()
                .find(|(n, _)| *n == ev.logger)
                .map(|l| l.1)
        });
        let logger = match known {
            Some(id) => id,
            None => {
                let id = logger_id(&mut tx, &target, &ev.logger)?;
                new_loggers.push((ev.logger.clone(), id));
                id
            }
        };
        let backtrace = backtrace_of(&mut tx, &target, ev)?;
        let (group, status) = lock_group(&mut tx, &target, ev, logger, &uid)?;
        let inserted = tx
            .query_opt(
                "INSERT INTO events (uid, ts, logger_id, level, kind, message, error_chain,
                     error_type, file, line, col, thread_name, thread_id, pid, app_name,
                     release, environment, tags, extra, group_id, backtrace_id, host_id,
                     alert_channels, breadcrumbs, redactions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11, $12, $13,
                     $14, $15, $16, $17, $18::text::jsonb, $19::text::jsonb, $20, $21, $22,
                     $23, $24::text::jsonb, $25)
                 ON CONFLICT (uid) DO NOTHING RETURNING id",
                &[
                    &uid,
                    &ev.timestamp_ms,
                    &logger,
                    &(ev.level.as_i64() as i16),
                    &ev.kind.as_str(),
                    &ev.message,
                    &json_unless(ev.chain.is_empty(), &ev.chain),
                    &ev.chain.first().and_then(|c| c.type_name.as_deref()),
                    &ev.location.as_ref().map(|l| l.file.as_str()),
                    &ev.location.as_ref().map(|l| l.line as i32),
                    &ev.location.as_ref().map(|l| l.column as i32),
                    &ev.thread_name,
                    &(ev.thread_id as i64),
                    &i64::from(ev.pid),
                    &ev.app_name,
                    &ev.release,
                    &ev.environment,
                    &json_unless(ev.tags.is_empty(), &ev.tags),
                    &json_unless(ev.extra.is_empty(), &ev.extra),
                    &group,
                    &backtrace,
                    &host_id,
                    &(!ev.alert_channels.is_empty()).then(|| ev.alert_channels.join(",")),
                    &json_unless(ev.breadcrumbs.is_empty(), &ev.breadcrumbs),
                    &(ev.redactions as i32),
                ],
            )
            .map_err(fail)?;
        let Some(row) = inserted else {
            // Stored already (a retried batch, a re-imported spool).
            continue;
        };
        let event_row: i64 = row.get(0);
        out.written += 1;
        if let Some(s) = &ev.snapshot {
            let id = match last_snapshot {
                Some((prev, id)) if prev == s => id,
                _ => {
                    let id = insert_snapshot(&mut tx, &target, s, ev.pid)?;
                    last_snapshot = Some((s, id));
                    id
                }
            };
            tx.execute(
                "UPDATE events SET snapshot_id = $2 WHERE id = $1",
                &[&event_row, &id],
            )
            .map_err(fail)?;
        }
        tx.execute(
            "UPDATE event_groups SET
                 count = count + 1,
                 level = greatest(level, $2),
                 first_seen = least(first_seen, $3),
                 last_event_uid = CASE WHEN $3 >= last_seen THEN $4 ELSE last_event_uid END,
                 last_seen = greatest(last_seen, $3),
                 regressed_in = CASE status WHEN 'resolved' THEN $5 ELSE regressed_in END,
                 regressed_at = CASE status WHEN 'resolved' THEN $3 ELSE regressed_at END,
                 status = CASE status WHEN 'resolved' THEN 'open' ELSE status END
             WHERE id = $1",
            &[
                &group,
                &(ev.level.as_i64() as i16),
                &ev.timestamp_ms,
                &uid,
                &ev.release,
            ],
        )
        .map_err(fail)?;
        if let Some(h) = host_id {
            tx.execute(
                "INSERT INTO group_hosts (group_id, host_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&group, &h],
            )
            .map_err(fail)?;
        }
        for channel in &ev.alert_channels {
            if decide(
                &mut tx,
                &target,
                &rules,
                channel,
                &uid,
                ev.timestamp_ms,
                group,
                &status,
                now,
            )? {
                out.alerts += 1;
            }
        }
    }
    tx.commit().map_err(fail)?;
    store.loggers.extend(new_loggers);
    Ok(out)
}

/// A column's JSON text; NULL for an empty value.
fn json_unless(empty: bool, v: &impl serde::Serialize) -> Option<String> {
    (!empty).then(|| serde_json::to_string(v).unwrap_or_default())
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The alert decision for one new event and one channel (the SQLite
/// store's rules: configured channel, muted, threshold, cooldown,
/// regression, suppression count), with the group row locked by the
/// caller. Returns whether an outbox row was made pending.
// Long by design: one decision, read top to bottom in the order the rules
// apply (as in the SQLite store).
#[allow(clippy::too_many_arguments)]
fn decide(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    rules: &crate::store::AlertRules,
    channel: &str,
    uid: &str,
    ts: i64,
    group: i64,
    status_before: &str,
    now: i64,
) -> Result<bool> {
    let fail = |e| target.error("deciding an alert in", e);
    let insert =
        |tx: &mut Transaction<'_>, kind: &str, status: &str, sup: i64, err: Option<&str>| {
            tx.execute(
                "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                 created_at, next_attempt, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
                &[&uid, &group, &channel, &kind, &status, &sup, &now, &err],
            )
            .map_err(fail)
        };
    if !rules.channels.iter().any(|c| c == channel) {
        insert(
            tx,
            AlertKind::New.as_str(),
            "dropped",
            0,
            Some(&format!("the channel {channel:?} is not configured")),
        )?;
        return Ok(false);
    }
    if status_before == "muted" {
        return Ok(false);
    }
    let regression = status_before == "resolved";
    let policy = &rules.policy;
    if policy.threshold > 1 && !regression {
        let since = ts.saturating_sub(ms(policy.window));
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM events WHERE group_id = $1 AND ts >= $2",
                &[&group, &since],
            )
            .map_err(fail)?
            .get(0);
        if n < i64::from(policy.threshold) {
            return Ok(false);
        }
    }
    let state: Option<(i64, i64)> = tx
        .query_opt(
            "SELECT last_alert_at, suppressed FROM alert_state WHERE group_id = $1 AND channel = $2",
            &[&group, &channel],
        )
        .map_err(fail)?
        .map(|r| (r.get(0), r.get(1)));
    let kind = match state {
        None => Some((AlertKind::New, 0)),
        Some((_, sup)) if regression => Some((AlertKind::Regression, sup)),
        Some((last, sup)) if ts.saturating_sub(last) >= ms(policy.cooldown) => {
            Some((AlertKind::New, sup))
        }
        Some(_) => None,
    };
    match kind {
        Some((kind, suppressed)) => {
            insert(tx, kind.as_str(), "pending", suppressed, None)?;
            tx.execute(
                "INSERT INTO alert_state (group_id, channel, last_alert_at, suppressed, last_event_uid)
                 VALUES ($1, $2, $3, 0, $4)
                 ON CONFLICT (group_id, channel) DO UPDATE SET
                     last_alert_at = excluded.last_alert_at, suppressed = 0,
                     last_event_uid = excluded.last_event_uid",
                &[&group, &channel, &ts, &uid],
            )
            .map_err(fail)?;
            Ok(true)
        }
        None => {
            tx.execute(
                "UPDATE alert_state SET suppressed = suppressed + 1, last_event_uid = $3
                 WHERE group_id = $1 AND channel = $2",
                &[&group, &channel, &uid],
            )
            .map_err(fail)?;
            Ok(false)
        }
    }
}
