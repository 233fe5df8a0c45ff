//! Keeping the dashboard's summary rows (`store::summary`) in the batch's
//! transaction: occurrences per hour, values, and new search texts.

use rusqlite::{params, OptionalExtension, Transaction};

use super::fail;
use crate::error::Result;
use crate::event::ChainLink;
use crate::store::summary::{self, BatchSummary, NewText};

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
