//! The end of a batch's transaction: its groups locked in fingerprint
//! order, their alerts decided by the shared policy (`sql::alerts`), and
//! each group counted once.

use std::collections::HashMap;

use postgres::Transaction;

use super::conn::PgConn;
use super::connect::PgTarget;
use crate::error::Result;
use crate::event::Event;
use crate::store::seam::AlertRules;
use crate::store::sql::alerts::{by_group, decide_batch, Stamp};

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
    /// The group each fingerprint's events are stored in.
    pub(super) groups: &'a HashMap<String, i64>,
    /// The batch's groups merged into others (checked once locked).
    pub(super) merged: &'a HashMap<i64, i64>,
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
    let fail = |e| target.error("counting a batch's groups in", e);
    let groups = by_group(new.iter().map(|ev| (batch.groups[&ev.fingerprint], *ev)));
    let stamp = Stamp {
        now: batch.now,
        origin: batch.origin,
    };
    let mut c = PgConn {
        client: &mut *tx,
        stmts: &mut *stmts,
        target,
    };
    let (made, deltas) = decide_batch(&mut c, &groups, batch.rules, stamp, batch.merged)?;
    let ids: Vec<i64> = deltas.iter().map(|d| d.group).collect();
    let count: Vec<i64> = deltas.iter().map(|d| d.count).collect();
    let level: Vec<i16> = deltas.iter().map(|d| d.level as i16).collect();
    let first: Vec<i64> = deltas.iter().map(|d| d.first_seen).collect();
    let last: Vec<i64> = deltas.iter().map(|d| d.last_seen).collect();
    let last_uid: Vec<&str> = deltas.iter().map(|d| d.last_uid.as_str()).collect();
    let reopened: Vec<bool> = deltas.iter().map(|d| d.reopened.is_some()).collect();
    let release: Vec<Option<&str>> = deltas
        .iter()
        .map(|d| d.reopened.as_ref().and_then(|(r, _)| r.as_deref()))
        .collect();
    let at: Vec<Option<i64>> = deltas
        .iter()
        .map(|d| d.reopened.as_ref().map(|(_, a)| *a))
        .collect();
    let quiet: Vec<bool> = deltas.iter().map(|d| d.quiet).collect();
    let st = stmts.get(tx, BUMP).map_err(fail)?;
    tx.execute(
        &st,
        &[
            &ids, &count, &level, &first, &last, &last_uid, &reopened, &release, &at, &quiet,
        ],
    )
    .map_err(fail)?;
    if let Some(h) = batch.host_id {
        let st = stmts.get(tx, GROUP_HOSTS).map_err(fail)?;
        tx.execute(&st, &[&ids, &h]).map_err(fail)?;
    }
    Ok(made)
}
