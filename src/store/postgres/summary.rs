//! The dashboard's summaries in PostgreSQL (`store::summary`): kept with
//! each batch in a few array statements, filled once for the events
//! stored before schema 2, and read back (search with `tsvector`).

use postgres::Transaction;

use super::connect::PgTarget;
use super::read::PgReader;
use crate::error::Result;
use crate::event::ChainLink;
use crate::store::read::{
    ChannelHealth, GroupQuery, GroupValue, HourCount, Sample, SearchHit, NEWEST_CHANNEL_ERROR,
};
use crate::store::summary::{self, BatchSummary, NewText, HOUR_MS};
use crate::store::Reader;

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

/// The search texts holding stack `backtrace`, their frames replaced by
/// `frames` (named after they were stored raw: a panic's stack), in the
/// caller's transaction; the word vector follows the body.
pub(super) fn refresh_texts(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    backtrace: i64,
    frames: &[crate::event::Frame],
) -> Result<()> {
    let fail = |e| target.error("indexing named frames for search in", e);
    let rows = tx
        .query(
            "SELECT id, body, head_len FROM group_texts WHERE backtrace_id = $1",
            &[&backtrace],
        )
        .map_err(fail)?;
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for r in &rows {
        let body: String = r.get(1);
        let new = summary::renamed(&body, r.get(2), summary::frame_names(frames));
        if new != body {
            ids.push(r.get::<_, i64>(0));
            bodies.push(new);
        }
    }
    if !ids.is_empty() {
        tx.execute(
            "UPDATE group_texts t SET body = n.body
             FROM unnest($1::bigint[], $2::text[]) AS n(id, body) WHERE t.id = n.id",
            &[&ids, &bodies],
        )
        .map_err(fail)?;
    }
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

impl PgReader {
    pub(super) fn hourly_of(
        &self,
        groups: Option<&[i64]>,
        since: i64,
        until: i64,
    ) -> Result<Vec<HourCount>> {
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        let from = since.div_euclid(HOUR_MS);
        let to = (until - 1).div_euclid(HOUR_MS);
        let rows = match groups {
            None => self.client().query(
                "SELECT NULL::bigint, hour, sum(count)::bigint FROM group_hours
                 WHERE hour BETWEEN $1 AND $2 GROUP BY hour ORDER BY hour",
                &[&from, &to],
            ),
            Some(ids) => self.client().query(
                "SELECT group_id, hour, count FROM group_hours
                 WHERE group_id = ANY($1) AND hour BETWEEN $2 AND $3 ORDER BY group_id, hour",
                &[&ids, &from, &to],
            ),
        }
        .map_err(self.fail("counting occurrences per hour in"))?;
        Ok(rows
            .iter()
            .map(|r| HourCount {
                group: r.get(0),
                hour_ms: r.get::<_, i64>(1) * HOUR_MS,
                count: r.get::<_, i64>(2).max(0) as u64,
            })
            .collect())
    }

    pub(super) fn group_values_of(&self, group: i64) -> Result<Vec<GroupValue>> {
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        let rows = self
            .client()
            .query(
                // The 50 most recent of each key.
                "SELECT key, value, count, first_seen, last_seen FROM (
                     SELECT key, value, count, first_seen, last_seen, row_number() OVER (
                         PARTITION BY key ORDER BY last_seen DESC) AS n
                     FROM group_values WHERE group_id = $1) AS v
                 WHERE n <= 50 ORDER BY key, last_seen DESC",
                &[&group],
            )
            .map_err(self.fail("reading a group's values in"))?;
        Ok(rows
            .iter()
            .map(|r| GroupValue {
                key: r.get(0),
                value: r.get(1),
                count: r.get(2),
                first_seen: r.get(3),
                last_seen: r.get(4),
            })
            .collect())
    }

    pub(super) fn values_of(&self, key: &str, limit: usize) -> Result<Vec<String>> {
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        let rows = self
            .client()
            .query(
                "SELECT value FROM group_values WHERE key = $1
                 GROUP BY value ORDER BY max(last_seen) DESC LIMIT $2",
                &[&key, &(limit as i64)],
            )
            .map_err(self.fail("listing values in"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) fn search_of(&self, typed: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let words = summary::words(typed);
        if words.is_empty() || !self.has_summaries() {
            return Ok(Vec::new());
        }
        // Every word, the last one as a prefix; each one lowercased and
        // quoted, so nothing typed is read as an operator.
        let n = words.len();
        let query = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let w = w.to_lowercase().replace('\'', "");
                if i + 1 == n {
                    format!("'{w}':*")
                } else {
                    format!("'{w}'")
                }
            })
            .collect::<Vec<_>>()
            .join(" & ");
        // The best texts, then their groups, each once.
        let found = self
            .client()
            .query(
                "SELECT t.group_id, t.body FROM group_texts t, to_tsquery('simple', $1) q
                 WHERE t.words @@ q ORDER BY ts_rank(t.words, q) DESC, t.id LIMIT $2",
                &[&query, &((limit * 8).max(64) as i64)],
            )
            .map_err(self.fail("searching"))?;
        let found: Vec<(i64, String)> = found.iter().map(|r| (r.get(0), r.get(1))).collect();
        summary::hits(found, limit, typed, |ids| {
            self.groups(&GroupQuery {
                ids: ids.to_vec(),
                ..GroupQuery::default()
            })
        })
    }

    pub(super) fn samples_of(&self, group: i64, limit: usize) -> Result<Vec<Sample>> {
        let rows = self
            .client()
            .query(
                "SELECT e.ts, s.proc_cpu_percent, s.proc_rss_bytes, s.proc_memory_percent
                 FROM events e JOIN snapshots s ON s.id = e.snapshot_id
                 WHERE e.group_id = $1 ORDER BY e.ts DESC LIMIT $2",
                &[&group, &(limit as i64)],
            )
            .map_err(self.fail("reading a group's snapshots in"))?;
        let mut v: Vec<Sample> = rows
            .iter()
            .map(|r| Sample {
                ts: r.get(0),
                cpu_percent: r.get::<_, Option<f64>>(1),
                rss_bytes: r.get(2),
                memory_percent: r.get(3),
            })
            .collect();
        v.reverse();
        Ok(v)
    }

    pub(super) fn deliveries_of(&self) -> Result<Vec<ChannelHealth>> {
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT o.channel,
                            count(*) FILTER (WHERE o.status IN ('pending', 'sending')),
                            count(*) FILTER (WHERE o.status = 'failed'),
                            count(*) FILTER (WHERE o.status = 'sent'), {NEWEST_CHANNEL_ERROR}
                     FROM outbox o GROUP BY o.channel ORDER BY o.channel"
                ),
                &[],
            )
            .map_err(self.fail("reading alert deliveries in"))?;
        Ok(rows
            .iter()
            .map(|r| ChannelHealth {
                channel: r.get(0),
                pending: r.get(1),
                failed: r.get(2),
                sent: r.get(3),
                last_error: r.get(4),
                last_error_at: r.get(5),
            })
            .collect())
    }
}
