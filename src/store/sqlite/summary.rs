//! Keeping the dashboard's summary rows (`store::summary`) in the batch's
//! transaction: occurrences per hour, values, and new search texts.

use rusqlite::{params, OptionalExtension, Transaction};

use super::fail;
use crate::error::Result;
use crate::event::ChainLink;
use crate::store::read::{
    ChannelHealth, GroupQuery, GroupValue, HourCount, Sample, SearchHit, NEWEST_CHANNEL_ERROR,
};
use crate::store::summary::{self, BatchSummary, NewText, HOUR_MS};

/// Adds a batch's summary.
pub(super) fn write(tx: &Transaction<'_>, s: &BatchSummary) -> Result<()> {
    let err = |e| fail("updating the groups' summaries", e);
    let mut hours = tx
        .prepare_cached(
            "INSERT INTO group_hours (group_id, hour, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (group_id, hour) DO UPDATE SET count = count + excluded.count",
        )
        .map_err(err)?;
    for (&(group, hour), &n) in &s.hours {
        hours.execute(params![group, hour, n]).map_err(err)?;
    }
    let mut values = tx
        .prepare_cached(
            "INSERT INTO group_values (group_id, key, value, count, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (group_id, key, value) DO UPDATE SET
                 count = count + excluded.count,
                 first_seen = min(first_seen, excluded.first_seen),
                 last_seen = max(last_seen, excluded.last_seen)",
        )
        .map_err(err)?;
    for ((group, key, value), c) in &s.values {
        values
            .execute(params![
                group,
                key,
                value,
                c.count,
                c.first_seen,
                c.last_seen
            ])
            .map_err(err)?;
    }
    for t in &s.texts {
        add_text(tx, t)?;
    }
    Ok(())
}

/// Stores a text and indexes it, unless its key is stored.
fn add_text(tx: &Transaction<'_>, t: &NewText) -> Result<()> {
    let err = |e| fail("indexing a search text", e);
    let id: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO group_texts (key, group_id, backtrace_id, head_len, body)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO NOTHING RETURNING id",
        )
        .and_then(|mut st| {
            st.query_row(
                params![t.key, t.group, t.backtrace, t.head_len, t.body],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(err)?;
    if let Some(id) = id {
        tx.prepare_cached("INSERT INTO group_texts_fts (rowid, body) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![id, t.body]))
            .map_err(err)?;
    }
    Ok(())
}

/// Indexes the distinct texts of the events stored before schema 6.
pub(super) fn backfill_texts(tx: &Transaction<'_>) -> Result<()> {
    let err = |e| fail("indexing the stored events for search", e);
    let mut distinct = tx
        .prepare(
            "SELECT DISTINCT group_id, message, error_chain, backtrace_id FROM events
             ORDER BY group_id",
        )
        .map_err(err)?;
    let mut frames = tx
        .prepare("SELECT function, file FROM frames WHERE backtrace_id = ?1 ORDER BY idx")
        .map_err(err)?;
    let mut rows = distinct.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let group: i64 = r.get(0).map_err(err)?;
        let message: String = r.get(1).map_err(err)?;
        let chain: Vec<ChainLink> = r
            .get::<_, Option<String>>(2)
            .map_err(err)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        let backtrace: Option<i64> = r.get(3).map_err(err)?;
        let names: Vec<(Option<String>, Option<String>)> = match backtrace {
            Some(b) => frames
                .query_map([b], |f| Ok((f.get(0)?, f.get(1)?)))
                .and_then(|it| it.collect())
                .map_err(err)?,
            None => Vec::new(),
        };
        let text = summary::text_of(
            group,
            &message,
            &chain,
            backtrace,
            names.iter().map(|(f, l)| (f.as_deref(), l.as_deref())),
        );
        add_text(tx, &text)?;
    }
    Ok(())
}

impl super::read::SqliteReader {
    /// Whether the file has the summaries (schema 6; remembered once seen).
    pub(super) fn has_summaries(&self) -> bool {
        if self.summaries.get() {
            return true;
        }
        let has = super::column_or_null(&self.conn, "event_groups", "resolved_next") != "NULL";
        self.summaries.set(has);
        has
    }

    /// Occurrences per hour in `[since, until)`: of each of `groups`, or
    /// (`None`) of all groups together.
    pub(crate) fn hourly(
        &self,
        groups: Option<&[i64]>,
        since: i64,
        until: i64,
    ) -> Result<Vec<HourCount>> {
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        let err = |e| fail("counting occurrences per hour", e);
        let from = since.div_euclid(HOUR_MS);
        let to = (until - 1).div_euclid(HOUR_MS);
        let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<HourCount> {
            Ok(HourCount {
                group: r.get(0)?,
                hour_ms: r.get::<_, i64>(1)? * HOUR_MS,
                count: r.get::<_, i64>(2)?.max(0) as u64,
            })
        };
        match groups {
            None => self
                .conn
                .prepare_cached(
                    "SELECT NULL, hour, sum(count) FROM group_hours
                     WHERE hour BETWEEN ?1 AND ?2 GROUP BY hour ORDER BY hour",
                )
                .and_then(|mut s| s.query_map(params![from, to], row)?.collect())
                .map_err(err),
            Some(ids) => {
                let mut out = Vec::new();
                let mut stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT group_id, hour, count FROM group_hours
                         WHERE group_id = ?1 AND hour BETWEEN ?2 AND ?3 ORDER BY hour",
                    )
                    .map_err(err)?;
                for id in ids {
                    let rows = stmt.query_map(params![id, from, to], row).map_err(err)?;
                    for r in rows {
                        out.push(r.map_err(err)?);
                    }
                }
                Ok(out)
            }
        }
    }

    /// The releases, environments and hosts a group was seen with, most
    /// recent first.
    pub(crate) fn group_values(&self, group: i64) -> Result<Vec<GroupValue>> {
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        self.conn
            .prepare_cached(
                // The 50 most recent of each key.
                "SELECT key, value, count, first_seen, last_seen FROM (
                     SELECT key, value, count, first_seen, last_seen, row_number() OVER (
                         PARTITION BY key ORDER BY last_seen DESC) AS n
                     FROM group_values WHERE group_id = ?1) AS v
                 WHERE n <= 50 ORDER BY key, last_seen DESC",
            )
            .and_then(|mut s| {
                s.query_map([group], |r| {
                    Ok(GroupValue {
                        key: r.get(0)?,
                        value: r.get(1)?,
                        count: r.get(2)?,
                        first_seen: r.get(3)?,
                        last_seen: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| fail("reading a group's values", e))
    }

    /// The values of `key` (`release`, `environment`, `host`) seen,
    /// most recently seen first.
    pub(crate) fn values(&self, key: &str, limit: usize) -> Result<Vec<String>> {
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        self.conn
            .prepare_cached(
                "SELECT value FROM group_values WHERE key = ?1
                 GROUP BY value ORDER BY max(last_seen) DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![key, limit as i64], |r| r.get(0))?
                    .collect()
            })
            .map_err(|e| fail("listing values", e))
    }

    /// Groups whose message, chain or frames hold every word of `query`
    /// (the last one as a prefix), best match first.
    pub(crate) fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        if !self.has_summaries() {
            return Ok(Vec::new());
        }
        let err = |e| fail("searching", e);
        // The best texts (FTS5 ranks with a bounded heap), then their
        // groups, each once, in the order of their best text.
        let found: Vec<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT t.group_id, t.body
                 FROM group_texts_fts f JOIN group_texts t ON t.id = f.rowid
                 WHERE group_texts_fts MATCH ?1 ORDER BY f.rank LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![fts, (limit * 8).max(64) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(err)?;
        summary::hits(found, limit, query, |ids| {
            self.groups(&GroupQuery {
                ids: ids.to_vec(),
                ..GroupQuery::default()
            })
        })
    }

    /// The process figures of a group's newest occurrences that have a
    /// snapshot, oldest first.
    pub(crate) fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>> {
        let mut v: Vec<Sample> = self
            .conn
            .prepare_cached(
                "SELECT e.ts, s.proc_cpu_percent, s.proc_rss_bytes, s.proc_memory_percent
                 FROM events e JOIN snapshots s ON s.id = e.snapshot_id
                 WHERE e.group_id = ?1 ORDER BY e.ts DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![group, limit as i64], |r| {
                    Ok(Sample {
                        ts: r.get(0)?,
                        cpu_percent: r.get(1)?,
                        rss_bytes: r.get(2)?,
                        memory_percent: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| fail("reading a group's snapshots", e))?;
        v.reverse();
        Ok(v)
    }

    /// Alert deliveries per channel, with the newest error.
    pub(crate) fn deliveries(&self) -> Result<Vec<ChannelHealth>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT o.channel,
                        sum(o.status IN ('pending', 'sending')),
                        sum(o.status = 'failed'), sum(o.status = 'sent'), {NEWEST_CHANNEL_ERROR}
                 FROM outbox o GROUP BY o.channel ORDER BY o.channel"
            ))
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(ChannelHealth {
                        channel: r.get(0)?,
                        pending: r.get(1)?,
                        failed: r.get(2)?,
                        sent: r.get(3)?,
                        last_error: r.get(4)?,
                        last_error_at: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| fail("reading alert deliveries", e))
    }
}

/// The FTS5 query for what a person typed: each word a quoted term (so
/// FTS5's operators in the text are plain words), the last one a prefix;
/// `None` when it holds no word.
pub(crate) fn fts_query(typed: &str) -> Option<String> {
    let words = summary::words(typed);
    let n = words.len();
    (n > 0).then(|| {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i + 1 == n {
                    format!("\"{w}\"*")
                } else {
                    format!("\"{w}\"")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The search texts holding stack `backtrace`, their frames replaced by
/// `frames` (named after they were stored raw: a panic's stack, `errsnap
/// symbolicate`), in the caller's transaction.
pub(super) fn refresh_texts(
    tx: &Transaction<'_>,
    backtrace: i64,
    frames: &[crate::event::Frame],
) -> Result<()> {
    let err = |e| fail("indexing named frames for search", e);
    let rows: Vec<(i64, String, i64)> = tx
        .prepare_cached("SELECT id, body, head_len FROM group_texts WHERE backtrace_id = ?1")
        .and_then(|mut s| {
            s.query_map([backtrace], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(err)?;
    for (id, body, head_len) in rows {
        let new = summary::renamed(&body, head_len, summary::frame_names(frames));
        if new == body {
            continue;
        }
        // An external-content index forgets a text by its old body.
        tx.prepare_cached(
            "INSERT INTO group_texts_fts (group_texts_fts, rowid, body) VALUES ('delete', ?1, ?2)",
        )
        .and_then(|mut s| s.execute(params![id, body]))
        .map_err(err)?;
        tx.prepare_cached("UPDATE group_texts SET body = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, new]))
            .map_err(err)?;
        tx.prepare_cached("INSERT INTO group_texts_fts (rowid, body) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![id, new]))
            .map_err(err)?;
    }
    Ok(())
}
