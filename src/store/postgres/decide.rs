//! The end of a batch's transaction: its groups locked in fingerprint
//! order, counted once each, and their alerts decided with the SQLite
//! store's rules (configured channel, muted, threshold, cooldown,
//! regression, suppression count), one group and channel at a time with
//! its state read once and written once.

use std::collections::{BTreeMap, HashMap};

use postgres::Transaction;

use super::connect::PgTarget;
use crate::error::Result;
use crate::event::{AlertKind, Event};
use crate::store::AlertRules;

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

const LOCK: &str = "SELECT id, status, resolved_next, resolved_release FROM event_groups
     WHERE id = ANY($1) ORDER BY fingerprint FOR NO KEY UPDATE";

const BUMP: &str = "UPDATE event_groups g SET
             count = g.count + d.n,
             level = greatest(g.level, d.lv),
             first_seen = least(g.first_seen, d.f),
             last_event_uid = CASE WHEN d.l >= g.last_seen THEN d.u ELSE g.last_event_uid END,
             last_seen = greatest(g.last_seen, d.l),
             regressed_in = CASE WHEN g.status = 'resolved' AND NOT d.q THEN d.r
                            ELSE g.regressed_in END,
             regressed_at = CASE WHEN g.status = 'resolved' AND NOT d.q THEN d.f
                            ELSE g.regressed_at END,
             resolved_next = d.q,
             status = CASE WHEN g.status = 'resolved' AND NOT d.q THEN 'open' ELSE g.status END
         FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::bigint[], $5::bigint[],
                     $6::text[], $7::text[], $8::boolean[]) AS d(id, n, lv, f, l, u, r, q)
         WHERE g.id = d.id";

const GROUP_HOSTS: &str = "INSERT INTO group_hosts (group_id, host_id)
     SELECT unnest($1::bigint[]), $2 ON CONFLICT DO NOTHING";

/// What the batch's end needs to know besides its events.
pub(super) struct Batch<'a> {
    pub(super) rules: &'a AlertRules,
    /// Group ids by fingerprint.
    pub(super) groups: &'a HashMap<String, i64>,
    pub(super) host_id: Option<i64>,
    pub(super) now: i64,
    /// The run whose events these are (`origin_run` of the rows made).
    pub(super) origin: Option<i64>,
}

/// Locks, bumps and decides for the events a batch inserted (in batch
/// order); returns how many alerts were made pending.
pub(super) fn bump_and_decide(
    stmts: &mut super::Stmts,
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    new: &[&Event],
    batch: &Batch<'_>,
) -> Result<usize> {
    let Batch {
        rules,
        groups,
        host_id,
        ..
    } = *batch;
    let fail = |e| target.error("counting a batch's groups in", e);
    // Each group's events, by fingerprint (the lock order).
    let mut by_group: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for ev in new {
        by_group
            .entry(ev.fingerprint.as_str())
            .or_default()
            .push(ev);
    }
    let ids: Vec<i64> = by_group.keys().map(|f| groups[*f]).collect();
    // Each group's status, and whether it was resolved in the next
    // release, with the release it was resolved in.
    let mut status: HashMap<i64, (String, bool, Option<String>)> = HashMap::new();
    let st = stmts.get(tx, LOCK).map_err(fail)?;
    for r in tx.query(&st, &[&ids]).map_err(fail)? {
        status.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
    }
    // A resolved group reopens, or (resolved in the next release, every
    // new event from the release it was resolved in) stays quiet, as if
    // muted: `store::reopen`, as in the file.
    let reopen: Vec<(bool, Option<&str>)> = by_group
        .iter()
        .map(|(fp, evs)| {
            let (status, next, resolved) = status
                .get(&groups[*fp])
                .map_or(("open", false, None), |(s, n, r)| {
                    (s.as_str(), *n, r.as_deref())
                });
            let mut releases: Vec<Option<&str>> = Vec::new();
            for e in evs {
                if !releases.contains(&e.release.as_deref()) {
                    releases.push(e.release.as_deref());
                }
            }
            crate::store::reopen::reopening(status, next, resolved, releases)
        })
        .collect();
    let quiet: Vec<bool> = reopen.iter().map(|r| r.0).collect();
    let mut count = Vec::with_capacity(ids.len());
    let mut level = Vec::with_capacity(ids.len());
    let mut first = Vec::with_capacity(ids.len());
    let mut last = Vec::with_capacity(ids.len());
    let mut last_uid = Vec::with_capacity(ids.len());
    let release: Vec<Option<&str>> = reopen.iter().map(|r| r.1).collect();
    for evs in by_group.values() {
        count.push(evs.len() as i64);
        level.push(evs.iter().map(|e| e.level.as_i64()).max().unwrap_or(0) as i16);
        first.push(evs.iter().map(|e| e.timestamp_ms).min().unwrap_or(0));
        // Every group of the map has at least one event.
        let (newest_ts, newest_uid) = evs
            .iter()
            .max_by_key(|e| e.timestamp_ms)
            .map_or((0, String::new()), |e| (e.timestamp_ms, e.id.to_string()));
        last.push(newest_ts);
        last_uid.push(newest_uid);
    }
    let st = stmts.get(tx, BUMP).map_err(fail)?;
    tx.execute(
        &st,
        &[
            &ids, &count, &level, &first, &last, &last_uid, &release, &quiet,
        ],
    )
    .map_err(fail)?;
    if let Some(h) = host_id {
        let st = stmts.get(tx, GROUP_HOSTS).map_err(fail)?;
        tx.execute(&st, &[&ids, &h]).map_err(fail)?;
    }
    let mut made = 0;
    for ((fp, evs), quiet) in by_group.iter().zip(&quiet) {
        let group = groups[*fp];
        let (stored, next, resolved) = status
            .get(&group)
            .map_or(("open", false, None), |(s, n, r)| {
                (s.as_str(), *n, r.as_deref())
            });
        made += forward(tx, target, batch, group, evs)?;
        // As the file decides: a group resolved in the next release is
        // quiet (muted) for the events of its release before the first from
        // another one, which reopens it; from there, each channel's first
        // event alerts the regression (the rest count towards its digest).
        let (before, from) = if *quiet {
            ("muted", evs.len())
        } else if stored == "resolved" && next {
            let at = evs
                .iter()
                .position(|e| e.release.as_deref() != resolved)
                .unwrap_or(evs.len());
            ("resolved", at)
        } else {
            (stored, 0)
        };
        let evs = &evs[from..];
        let mut channels: Vec<&str> = evs
            .iter()
            .flat_map(|e| e.alert_channels.iter().map(String::as_str))
            .collect();
        channels.sort_unstable();
        channels.dedup();
        for channel in channels.into_iter().filter(|c| !rules.forwards(c)) {
            let mut routed: Vec<&Event> = evs
                .iter()
                .copied()
                .filter(|e| e.alert_channels.iter().any(|c| c == channel))
                .collect();
            routed.sort_by_key(|e| e.timestamp_ms);
            made += decide(tx, target, batch, channel, group, before, &routed)?;
        }
    }
    Ok(made)
}

/// One pending row per new event and forwarding channel it is routed to
/// (as the file does: every event, whatever the group's status); returns
/// how many were made.
fn forward(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    batch: &Batch<'_>,
    group: i64,
    events: &[&Event],
) -> Result<usize> {
    let (rules, now) = (batch.rules, batch.now);
    let mut uids: Vec<String> = Vec::new();
    let mut channels: Vec<&str> = Vec::new();
    for ev in events {
        for channel in ev.alert_channels.iter().filter(|c| rules.forwards(c)) {
            uids.push(ev.id.to_string());
            channels.push(channel);
        }
    }
    if uids.is_empty() {
        return Ok(0);
    }
    // One statement for the group's rows (a round trip each would hold
    // the group's lock that much longer).
    tx.execute(
        "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
             created_at, next_attempt, origin_run)
         SELECT u, $3, c, 'new', 'pending', 0, $4, $4, $5
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(u, c, n) ORDER BY n",
        &[&uids, &channels, &group, &now, &batch.origin],
    )
    .map_err(|e| target.error("queueing events to forward in", e))?;
    Ok(uids.len())
}

/// The alert decisions of one group and channel for its new events (time
/// order); returns how many outbox rows were made pending.
// Long by design: one decision, read top to bottom in the order the rules
// apply (as in the SQLite store's `outbox::decide`).
fn decide(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    batch: &Batch<'_>,
    channel: &str,
    group: i64,
    status_before: &str,
    events: &[&Event],
) -> Result<usize> {
    let (rules, now, origin) = (batch.rules, batch.now, batch.origin);
    let fail = |e| target.error("deciding an alert in", e);
    let insert = |tx: &mut Transaction<'_>,
                  uid: &str,
                  kind: &str,
                  status: &str,
                  sup: i64,
                  err: Option<&str>| {
        tx.execute(
            "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                 created_at, next_attempt, last_error, origin_run)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
            &[
                &uid, &group, &channel, &kind, &status, &sup, &now, &err, &origin,
            ],
        )
        .map_err(fail)
    };
    if !rules.channels.iter().any(|c| c == channel) {
        let why = format!("the channel {channel:?} is not configured");
        for ev in events {
            let uid = ev.id.to_string();
            insert(tx, &uid, AlertKind::New.as_str(), "dropped", 0, Some(&why))?;
        }
        return Ok(0);
    }
    if status_before == "muted" || events.is_empty() {
        return Ok(0);
    }
    let regression = status_before == "resolved";
    let policy = &rules.policy;
    // The threshold rule: the group must have happened often enough
    // within the window (counted with this batch's rows).
    let mut eligible_from = 0;
    if policy.threshold > 1 && !regression {
        let mut found = None;
        for (i, ev) in events.iter().enumerate() {
            let since = ev.timestamp_ms.saturating_sub(ms(policy.window));
            let n: i64 = tx
                .query_one(
                    "SELECT count(*) FROM events WHERE group_id = $1 AND ts >= $2 AND ts <= $3",
                    &[&group, &since, &ev.timestamp_ms],
                )
                .map_err(fail)?
                .get(0);
            if n >= i64::from(policy.threshold) {
                found = Some(i);
                break;
            }
        }
        match found {
            Some(i) => eligible_from = i,
            None => return Ok(0),
        }
    }
    let mut state: Option<(i64, i64)> = tx
        .query_opt(
            "SELECT last_alert_at, suppressed FROM alert_state
             WHERE group_id = $1 AND channel = $2 FOR UPDATE",
            &[&group, &channel],
        )
        .map_err(fail)?
        .map(|r| (r.get(0), r.get(1)));
    let existed = state.is_some();
    let mut made = 0;
    let mut last_uid = String::new();
    for (i, ev) in events.iter().enumerate().skip(eligible_from) {
        let uid = ev.id.to_string();
        let kind = match state {
            None => Some((AlertKind::New, 0)),
            Some((_, sup)) if regression && i == eligible_from => {
                Some((AlertKind::Regression, sup))
            }
            Some((last, sup)) if ev.timestamp_ms.saturating_sub(last) >= ms(policy.cooldown) => {
                Some((AlertKind::New, sup))
            }
            Some(_) => None,
        };
        match kind {
            Some((kind, sup)) => {
                insert(tx, &uid, kind.as_str(), "pending", sup, None)?;
                state = Some((ev.timestamp_ms, 0));
                made += 1;
            }
            None => {
                if let Some((_, sup)) = &mut state {
                    *sup += 1;
                }
            }
        }
        last_uid = uid;
    }
    if let Some((at, sup)) = state {
        if made > 0 || existed {
            tx.execute(
                "INSERT INTO alert_state (group_id, channel, last_alert_at, suppressed, last_event_uid)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (group_id, channel) DO UPDATE SET
                     last_alert_at = excluded.last_alert_at, suppressed = excluded.suppressed,
                     last_event_uid = excluded.last_event_uid",
                &[&group, &channel, &at, &sup, &last_uid],
            )
            .map_err(fail)?;
        }
    }
    Ok(made)
}
