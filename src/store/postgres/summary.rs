//! The dashboard's summaries in PostgreSQL (`store::summary`): kept with
//! each batch in a few array statements, filled once for the events
//! stored before schema 2, and read back (search with `tsvector`).

use postgres::Transaction;

use super::connect::PgTarget;
use crate::error::Result;
use crate::event::ChainLink;
use crate::store::summary::{self, BatchSummary, NewText};

const HOURS: &str = "INSERT INTO group_hours (group_id, hour, count)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
     ORDER BY 1, 2
     ON CONFLICT (group_id, hour) DO UPDATE SET count = group_hours.count + excluded.count";

const VALUES: &str = "INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                          $6::bigint[])
     ORDER BY 1, 2, 3
     ON CONFLICT (group_id, key, value) DO UPDATE SET
         count = group_values.count + excluded.count,
         first_seen = least(group_values.first_seen, excluded.first_seen),
         last_seen = greatest(group_values.last_seen, excluded.last_seen)";

const TEXTS: &str = "INSERT INTO group_texts (key, group_id, backtrace_id, head_len, body)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
     ON CONFLICT (key) DO NOTHING";

/// Adds a batch's summary (rows in key order, so that writers adding to
/// the same rows lock them in the same order).
pub(super) fn write(
    stmts: &mut super::Stmts,
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    s: &BatchSummary,
) -> Result<()> {
    let fail = |e| target.error("updating the groups' summaries in", e);
    if !s.hours.is_empty() {
        let (mut g, mut h, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for (&(group, hour), &count) in &s.hours {
            g.push(group);
            h.push(hour);
            n.push(count);
        }
        let st = stmts.get(tx, HOURS).map_err(fail)?;
        tx.execute(&st, &[&g, &h, &n]).map_err(fail)?;
    }
    if !s.values.is_empty() {
        let mut cols = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for ((group, key, value), c) in &s.values {
            cols.0.push(*group);
            cols.1.push(*key);
            cols.2.push(value.as_str());
            cols.3.push(c.count);
            cols.4.push(c.first_seen);
            cols.5.push(c.last_seen);
        }
        let st = stmts.get(tx, VALUES).map_err(fail)?;
        tx.execute(&st, &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5])
            .map_err(fail)?;
    }
    add_texts(stmts, tx, target, &s.texts)
}

fn add_texts(
    stmts: &mut super::Stmts,
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    texts: &[NewText],
) -> Result<()> {
    if texts.is_empty() {
        return Ok(());
    }
    let fail = |e| target.error("indexing search texts in", e);
    let keys: Vec<&str> = texts.iter().map(|t| t.key.as_str()).collect();
    let groups: Vec<i64> = texts.iter().map(|t| t.group).collect();
    let stacks: Vec<Option<i64>> = texts.iter().map(|t| t.backtrace).collect();
    let heads: Vec<i64> = texts.iter().map(|t| t.head_len).collect();
    let bodies: Vec<&str> = texts.iter().map(|t| t.body.as_str()).collect();
    let st = stmts.get(tx, TEXTS).map_err(fail)?;
    tx.execute(&st, &[&keys, &groups, &stacks, &heads, &bodies])
        .map_err(fail)?;
    Ok(())
}

/// Fills the summaries of the events stored before schema 2.
pub(super) fn backfill(tx: &mut Transaction<'_>, target: &PgTarget) -> Result<()> {
    let fail = |e| target.error("summarizing the stored events of", e);
    tx.batch_execute(
        "INSERT INTO group_hours (group_id, hour, count)
             SELECT group_id, ts / 3600000, count(*) FROM events GROUP BY 1, 2
             ON CONFLICT DO NOTHING;
         INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
             SELECT group_id, 'release', release, count(*), min(ts), max(ts) FROM events
             WHERE release <> '' GROUP BY group_id, release ON CONFLICT DO NOTHING;
         INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
             SELECT group_id, 'environment', environment, count(*), min(ts), max(ts)
             FROM events WHERE environment <> '' GROUP BY group_id, environment
             ON CONFLICT DO NOTHING;
         INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
             SELECT e.group_id, 'host', h.hostname, count(*), min(e.ts), max(e.ts)
             FROM events e JOIN hosts h ON h.id = e.host_id
             WHERE h.hostname <> '' GROUP BY e.group_id, h.hostname ON CONFLICT DO NOTHING;",
    )
    .map_err(fail)?;
    // Streamed through a portal, 1,000 rows at a time (a large database
    // has about one distinct row per event: the ids are normalized only
    // here), each chunk's texts inserted before the next is read.
    let portal = tx
        .bind(
            "SELECT DISTINCT e.group_id, e.message, e.error_chain::text, e.backtrace_id,
                    (SELECT array_agg(f.function ORDER BY f.idx) FROM frames f
                      WHERE f.backtrace_id = e.backtrace_id),
                    (SELECT array_agg(f.file ORDER BY f.idx) FROM frames f
                      WHERE f.backtrace_id = e.backtrace_id)
             FROM events e",
            &[],
        )
        .map_err(fail)?;
    let mut stmts = super::Stmts::default();
    loop {
        let rows = tx.query_portal(&portal, 1000).map_err(fail)?;
        if rows.is_empty() {
            break;
        }
        let mut texts = Vec::with_capacity(rows.len());
        for r in &rows {
            let chain: Vec<ChainLink> = r
                .get::<_, Option<String>>(2)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default();
            let functions: Vec<Option<String>> = r.get::<_, Option<Vec<_>>>(4).unwrap_or_default();
            let files: Vec<Option<String>> = r.get::<_, Option<Vec<_>>>(5).unwrap_or_default();
            texts.push(summary::text_of(
                r.get(0),
                r.get(1),
                &chain,
                r.get(3),
                functions
                    .iter()
                    .zip(&files)
                    .map(|(f, l)| (f.as_deref(), l.as_deref())),
            ));
        }
        // One key may come from several rows of a chunk (ids normalized).
        texts.sort_by(|a, b| a.key.cmp(&b.key));
        texts.dedup_by(|a, b| a.key == b.key);
        add_texts(&mut stmts, tx, target, &texts)?;
    }
    Ok(())
}
