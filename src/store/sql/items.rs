//! Upstream items (`store::upstream`) queued in the outbox, written once for
//! every SQL backend: one row per channel that takes the item, in the
//! caller's transaction, named by the item's key, with no group, made by
//! this process's run (a flush waits for them as for its events' rows).
//! Client reports add up: while a channel's report waits unsent, new
//! losses are added to it instead of making another.

use super::{params, Conn, Lock};
use crate::error::Result;
use crate::level::Level;
use crate::monitors::check_in::MonitorSpec;
use crate::store::seam::AlertRules;
use crate::store::upstream::{session_id, CheckInItem, ClientReportItem, Item, SessionItem};

/// How long before its run is recorded a process's events count as its.
const EARLY_EVENTS_MS: i64 = 5 * 60 * 1000;

/// Queues `item` for every channel that takes its kind.
pub(crate) fn queue(
    c: &mut dyn Conn,
    rules: &AlertRules,
    item: &Item,
    now: i64,
    origin: Option<i64>,
) -> Result<()> {
    let kind = item.kind();
    let channels: Vec<String> = rules.takers(kind).map(str::to_owned).collect();
    for channel in channels {
        if let Item::ClientReport(report) = item {
            if add_to_waiting_report(c, &channel, report)? {
                continue;
            }
        }
        c.execute(
            "queueing an upstream item",
            "INSERT INTO outbox (event_uid, group_id, channel, kind, status, created_at,
                 next_attempt, origin_run, payload)
             VALUES (?1, NULL, ?2, ?3, 'pending', ?4, ?4, ?5, ?6)",
            params![
                item.key(),
                channel,
                kind.as_str(),
                now,
                origin,
                item.to_payload()
            ],
        )?;
    }
    Ok(())
}

/// Adds `report` to the channel's report still waiting to be sent, if
/// there is one (never to one being sent: its counts are on their way).
/// The row is read for update in the caller's transaction: no process
/// claims it before this one writes it.
fn add_to_waiting_report(
    c: &mut dyn Conn,
    channel: &str,
    report: &ClientReportItem,
) -> Result<bool> {
    let sql = format!(
        "SELECT id, payload FROM outbox
         WHERE status = 'pending' AND channel = ?1 AND kind = 'client_report'
         ORDER BY id LIMIT 1{}",
        c.dialect().lock(Lock::Update)
    );
    let Some(row) = c.query_opt("reading a client report", &sql, params![channel])? else {
        return Ok(false);
    };
    let id: i64 = row.get(0)?;
    let payload: Option<String> = row.get(1)?;
    let Some(Item::ClientReport(mut waiting)) = payload.as_deref().and_then(Item::from_payload)
    else {
        return Ok(false);
    };
    waiting.add(report);
    c.execute(
        "adding to a client report",
        "UPDATE outbox SET payload = ?2 WHERE id = ?1",
        params![id, Item::ClientReport(waiting).to_payload()],
    )?;
    Ok(true)
}

/// A monitor's check-in as an item: `status` is `in_progress`, `ok` or
/// `error`.
pub(crate) fn check_in(
    spec: &MonitorSpec,
    id: &str,
    status: &str,
    at_ms: i64,
    duration_ms: Option<i64>,
    reason: Option<&str>,
) -> Item {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    Item::CheckIn(CheckInItem {
        id: id.to_owned(),
        slug: spec.slug.clone(),
        status: status.to_owned(),
        at_ms,
        duration_ms,
        crontab: spec.schedule.crontab_text().map(str::to_owned),
        zone: spec.schedule.zone().map(str::to_owned),
        every_ms: spec.schedule.every().map(ms),
        margin_ms: ms(spec.margin),
        max_runtime_ms: spec.max_runtime.map(ms),
        reason: reason.map(str::to_owned),
    })
}

/// The run `run` as a session update, when it has a release: `ok` while it
/// runs, its end status after (`ending`, when given, before the ledger
/// says it). The first update of a session (for any channel) is its
/// `init`; the end's `seq` is 1, and a session has one end (the first).
pub(crate) fn session(
    c: &mut dyn Conn,
    run: i64,
    ending: Option<&str>,
    now: i64,
) -> Result<Option<Item>> {
    let Some(r) = c.query_opt(
        "reading a run",
        "SELECT r.boot_id, r.pid, r.process_start, r.started_at, r.ended_at, r.status,
             r.\"release\", r.host_id, h.hostname
         FROM runs r LEFT JOIN hosts h ON h.id = r.host_id WHERE r.id = ?1",
        params![run],
    )?
    else {
        return Ok(None);
    };
    let release: Option<String> = r.get(6)?;
    let Some(release) = release.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let boot: Option<String> = r.get(0)?;
    let pid: i64 = r.get(1)?;
    let process_start: Option<i64> = r.get(2)?;
    let started: i64 = r.get(3)?;
    let ended: Option<i64> = r.get(4)?;
    let status: String = r.get(5)?;
    let host: Option<i64> = r.get(7)?;
    let hostname: Option<String> = r.get(8)?;
    let sid = session_id(boot.as_deref(), pid, process_start, started);
    let status = ending.map_or(status, str::to_owned);
    let running = status == "running";
    let queued = |c: &mut dyn Conn, seq: u64| -> Result<bool> {
        let n: i64 = c.one(
            "reading a session's updates",
            "SELECT count(*) FROM outbox WHERE kind = 'session' AND event_uid = ?1",
            params![SessionItem::key_of(&sid, seq)],
        )?;
        Ok(n > 0)
    };
    let begun = queued(c, 0)?;
    if queued(c, 1)? || (running && begun) {
        return Ok(None);
    }
    let init = !begun;
    let until = if ending.is_some() {
        now
    } else {
        ended.unwrap_or(now)
    };
    let (errors, environment) = errors_of_run(c, run, pid, host, started, until)?;
    Ok(Some(Item::Session(SessionItem {
        sid,
        init,
        seq: u64::from(!running),
        started_ms: started,
        at_ms: until,
        status: if running { "ok".to_owned() } else { status },
        errors,
        duration_ms: (!running).then(|| until.saturating_sub(started).max(0)),
        release,
        environment,
        host: hostname,
    })))
}

/// The error events (level error and above) of a run's process, and the
/// environment its latest event names. A process's first events may come
/// before its run is recorded (the writer opens the store after them):
/// they count from five minutes before, never before an earlier run of the
/// same pid on the host ended.
fn errors_of_run(
    c: &mut dyn Conn,
    run: i64,
    pid: i64,
    host: Option<i64>,
    started: i64,
    until: i64,
) -> Result<(u64, Option<String>)> {
    let same_host = c.dialect().same("host_id", "?2");
    let earlier: Option<i64> = c.one(
        "reading a run's predecessor",
        &format!(
            "SELECT max(coalesce(ended_at, last_seen, started_at)) FROM runs
             WHERE pid = ?1 AND {same_host} AND id < ?3"
        ),
        params![pid, host, run],
    )?;
    let from = (started - EARLY_EVENTS_MS).max(earlier.map_or(i64::MIN, |e| e + 1));
    let errors: i64 = c.one(
        "counting a run's errors",
        &format!(
            "SELECT count(*) FROM events
             WHERE pid = ?1 AND {same_host} AND ts BETWEEN ?3 AND ?4 AND level >= ?5"
        ),
        params![pid, host, from, until, Level::Error.as_i64()],
    )?;
    let environment: Option<String> = c
        .query_opt(
            "reading a run's environment",
            &format!(
                "SELECT environment FROM events
                 WHERE pid = ?1 AND {same_host} AND ts BETWEEN ?3 AND ?4
                   AND environment IS NOT NULL
                 ORDER BY ts DESC LIMIT 1"
            ),
            params![pid, host, from, until],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    Ok((u64::try_from(errors).unwrap_or(0), environment))
}

/// Queues the session update of `run` (if it has a release and a channel
/// takes sessions).
pub(crate) fn queue_session(
    c: &mut dyn Conn,
    rules: &AlertRules,
    run: i64,
    ending: Option<&str>,
    now: i64,
    origin: Option<i64>,
) -> Result<()> {
    if rules
        .takers(crate::store::upstream::ItemKind::Session)
        .next()
        .is_none()
    {
        return Ok(());
    }
    if let Some(item) = session(c, run, ending, now)? {
        queue(c, rules, &item, now, origin)?;
    }
    Ok(())
}
