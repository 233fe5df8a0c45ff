//! The end of a batch's transaction: its groups locked in fingerprint
//! order, their alerts decided by the shared policy (`sql::alerts`), and
//! each group counted once.

use std::collections::{BTreeMap, HashMap};

use postgres::Transaction;

use super::connect::PgTarget;
use crate::error::Result;
use crate::event::Event;
use crate::store::policy::{GroupState, NewEvent};
use crate::store::seam::AlertRules;
use crate::store::sql::alerts::{decide_group, Stamp};

const LOCK: &str = "SELECT id, status, resolved_next, resolved_release FROM event_groups
     WHERE id = ANY($1) ORDER BY fingerprint FOR NO KEY UPDATE";

const BUMP: &str = "UPDATE event_groups g SET
             count = g.count + d.n,
             level = greatest(g.level, d.lv),
             first_seen = least(g.first_seen, d.f),
             last_event_uid = CASE WHEN d.l >= g.last_seen THEN d.u ELSE g.last_event_uid END,
             last_seen = greatest(g.last_seen, d.l),
             regressed_in = CASE WHEN d.o THEN d.r ELSE g.regressed_in END,
             regressed_at = CASE WHEN d.o THEN d.a ELSE g.regressed_at END,
             resolved_next = d.q,
             status = CASE WHEN d.o THEN 'open' ELSE g.status END
         FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::bigint[], $5::bigint[],
                     $6::text[], $7::boolean[], $8::text[], $9::bigint[], $10::boolean[])
              AS d(id, n, lv, f, l, u, o, r, a, q)
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

/// Locks, decides and bumps for the events a batch inserted (in batch
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
    let mut made = 0;
    let n = ids.len();
    let (mut count, mut level, mut first, mut last, mut last_uid) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut reopened, mut release, mut at, mut quiet) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (fp, evs) in &by_group {
        let group = groups[*fp];
        let (stored, next, resolved) = status
            .get(&group)
            .map_or(("open", false, None), |(s, n, r)| {
                (s.as_str(), *n, r.as_deref())
            });
        let uids: Vec<String> = evs.iter().map(|e| e.id.to_string()).collect();
        let events: Vec<NewEvent<'_>> = evs
            .iter()
            .zip(&uids)
            .map(|(e, uid)| NewEvent {
                uid,
                ts: e.timestamp_ms,
                release: e.release.as_deref(),
                channels: &e.alert_channels,
            })
            .collect();
        let plan = decide_group(
            &mut super::conn::PgConn {
                client: &mut *tx,
                stmts: &mut *stmts,
                target,
            },
            group,
            GroupState {
                status: stored,
                resolved_next: next,
                resolved_release: resolved,
            },
            &events,
            rules,
            Stamp {
                now: batch.now,
                origin: batch.origin,
            },
        )?;
        made += plan.pending();
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
        quiet.push(plan.quiet);
        reopened.push(plan.reopened.is_some());
        let (r, a) = plan.reopened.map_or((None, None), |(r, a)| (r, Some(a)));
        release.push(r);
        at.push(a);
    }
    let st = stmts.get(tx, BUMP).map_err(fail)?;
    tx.execute(
        &st,
        &[
            &ids, &count, &level, &first, &last, &last_uid, &reopened, &release, &at, &quiet,
        ],
    )
    .map_err(fail)?;
    if let Some(h) = host_id {
        let st = stmts.get(tx, GROUP_HOSTS).map_err(fail)?;
        tx.execute(&st, &[&ids, &h]).map_err(fail)?;
    }
    Ok(made)
}
