//! Retention: deleting old events without losing what matters. Shared by
//! the writer's automatic retention and `errsnap purge`.
//!
//! Never deleted: a group's first event, and an event whose alert is still
//! pending. Snapshots and backtraces no event points to any more go too;
//! groups (with their counts) stay.

use rusqlite::{Connection, TransactionBehavior};

use super::fail;
use crate::error::Result;
use crate::store::{Limits, PurgeReport, PurgeRule};

const PROTECTED: &str = "(e.uid IN (SELECT first_event_uid FROM event_groups)
     OR e.uid IN (SELECT event_uid FROM outbox WHERE status IN ('pending', 'sending')))";

/// The `WHERE` clause and its bound value for a rule.
fn selection(conn: &Connection, rule: PurgeRule) -> Result<Option<(String, i64)>> {
    Ok(match rule {
        PurgeRule::OlderThan(ts) => Some(("e.ts < ?1".to_owned(), ts)),
        PurgeRule::KeepNewest(n) => {
            let cutoff: Option<i64> = conn
                .query_row(
                    "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1",
                    [n.saturating_sub(1) as i64],
                    |r| r.get(0),
                )
                .ok();
            cutoff.map(|id| ("e.id < ?1".to_owned(), id))
        }
    })
}

/// The ids (text) of the events a rule would delete, oldest first.
pub(crate) fn matching_uids(conn: &Connection, rule: PurgeRule) -> Result<Vec<String>> {
    let Some((cond, v)) = selection(conn, rule)? else {
        return Ok(Vec::new());
    };
    let sql = format!("SELECT e.uid FROM events e WHERE {cond} AND NOT {PROTECTED} ORDER BY e.id");
    conn.prepare(&sql)
        .and_then(|mut s| s.query_map([v], |r| r.get(0))?.collect())
        .map_err(|e| fail("selecting events to purge", e))
}

/// Deletes what `rule` selects, in transactions of at most 5,000 events.
pub(crate) fn purge(conn: &mut Connection, rule: PurgeRule) -> Result<PurgeReport> {
    let err = |e| fail("purging events", e);
    let mut report = PurgeReport::default();
    let Some((cond, v)) = selection(conn, rule)? else {
        return Ok(report);
    };
    report.kept = conn
        .query_row(
            &format!("SELECT count(*) FROM events e WHERE {cond} AND {PROTECTED}"),
            [v],
            |r| r.get::<_, i64>(0),
        )
        .map_err(err)? as u64;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let n = tx
            .execute(
                &format!(
                    "DELETE FROM events WHERE id IN (
                         SELECT e.id FROM events e WHERE {cond} AND NOT {PROTECTED}
                         ORDER BY e.id LIMIT 5000)"
                ),
                [v],
            )
            .map_err(err)?;
        tx.execute(
            "DELETE FROM outbox WHERE status NOT IN ('pending', 'sending')
               AND event_uid NOT IN (SELECT uid FROM events)",
            [],
        )
        .map_err(err)?;
        // Attachments go with their event (a trigger, schema 8).
        tx.commit().map_err(err)?;
        report.events += n as u64;
        if n < 5000 {
            break;
        }
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    report.snapshots = tx
        .execute(
            "DELETE FROM snapshots WHERE id NOT IN
                 (SELECT snapshot_id FROM events WHERE snapshot_id IS NOT NULL)",
            [],
        )
        .map_err(err)? as u64;
    tx.execute(
        "DELETE FROM frames WHERE backtrace_id NOT IN
             (SELECT backtrace_id FROM events WHERE backtrace_id IS NOT NULL)",
        [],
    )
    .map_err(err)?;
    report.backtraces = tx
        .execute(
            "DELETE FROM backtraces WHERE id NOT IN
                 (SELECT backtrace_id FROM events WHERE backtrace_id IS NOT NULL)",
            [],
        )
        .map_err(err)? as u64;
    // A deleted stack's id may be given to a new one: the search texts
    // that held it no longer follow it (schema 6).
    if super::column_or_null(&tx, "group_texts", "backtrace_id") != "NULL" {
        tx.execute(
            "UPDATE group_texts SET backtrace_id = NULL WHERE backtrace_id IS NOT NULL
               AND backtrace_id NOT IN (SELECT id FROM backtraces)",
            [],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)?;
    Ok(report)
}

/// Bytes the database uses (pages in use, not free pages).
pub(crate) fn used_bytes(conn: &Connection) -> Result<u64> {
    let q = |p: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .map_err(|e| fail("measuring the database", e))
    };
    let used = (q("page_count")? - q("freelist_count")?).max(0) * q("page_size")?;
    Ok(used as u64)
}

/// The database's cap on attachments: when their bytes add up to more
/// than `max`, the oldest lose their bytes (name, size and the reason
/// kept) until the rest fit. Returns how many were dropped.
pub(crate) fn cap_attachments(conn: &mut Connection, max: u64) -> Result<u64> {
    let err = |e| fail("capping attachments", e);
    // Read first: the write lock only when something is over.
    if attachment_bytes(conn)? <= max {
        return Ok(0);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let total: i64 = tx
        .query_row(
            "SELECT coalesce(sum(size), 0) FROM attachments WHERE data IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    let mut over = (total.max(0) as u64).saturating_sub(max);
    if over == 0 {
        return Ok(0);
    }
    let mut last = None;
    {
        let mut st = tx
            .prepare("SELECT id, size FROM attachments WHERE data IS NOT NULL ORDER BY id")
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let (id, len): (i64, i64) = (r.get(0).map_err(err)?, r.get(1).map_err(err)?);
            last = Some(id);
            over = over.saturating_sub(len.max(0) as u64);
            if over == 0 {
                break;
            }
        }
    }
    let n = match last {
        Some(id) => tx
            .execute(
                "UPDATE attachments SET data = NULL, dropped = 'over the database cap'
                 WHERE id <= ?1 AND data IS NOT NULL",
                [id],
            )
            .map_err(err)?,
        None => 0,
    };
    tx.commit().map_err(err)?;
    Ok(n as u64)
}

/// The bytes of the attachments kept (0 before schema 8).
fn attachment_bytes(conn: &Connection) -> Result<u64> {
    if super::column_or_null(conn, "attachments", "event_uid") == "NULL" {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(sum(size), 0) FROM attachments WHERE data IS NOT NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
    .map_err(|e| fail("measuring attachments", e))
}

/// Applies the limits; returns how many events were deleted.
pub(crate) fn enforce(conn: &mut Connection, limits: Limits, now: i64) -> Result<u64> {
    let mut deleted = 0;
    if let Some(age) = limits.max_age_ms {
        deleted += purge(conn, PurgeRule::OlderThan(now.saturating_sub(age)))?.events;
    }
    if let Some(n) = limits.max_events {
        deleted += purge(conn, PurgeRule::KeepNewest(n))?.events;
    }
    if let Some(max) = limits.attachments_max_bytes {
        cap_attachments(conn, max)?;
    }
    if let Some(max) = limits.max_bytes {
        // Attachments' bytes go before events do.
        let over = used_bytes(conn)?.saturating_sub(max);
        if over > 0 {
            let keep = attachment_bytes(conn)?.saturating_sub(over);
            cap_attachments(conn, keep)?;
        }
        // Free pages are reused, so deleting the oldest tenth at a time
        // brings the used size down without a VACUUM.
        for _ in 0..10 {
            if used_bytes(conn)? <= max {
                break;
            }
            let total: i64 = conn
                .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                .map_err(|e| fail("counting events", e))?;
            let keep = (total as u64).saturating_sub((total as u64 / 10).max(1));
            let n = purge(conn, PurgeRule::KeepNewest(keep))?.events;
            deleted += n;
            if n == 0 {
                break;
            }
        }
    }
    Ok(deleted)
}
