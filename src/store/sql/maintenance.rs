//! What changes a store from the outside, once for every backend: group
//! status, purges and retention (never a group's first event, never one
//! whose alert is pending; groups and their counts stay), attachment caps,
//! and stacks named after they were stored raw.

use super::{params, Conn, Dialect, Lock, ToValue, Value};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Frame;
use crate::settings::Limits;
use crate::store::read::{EventFilter, GroupStatus};
use crate::store::seam::{PurgeReport, PurgeRule};
use crate::store::summary;

const PROTECTED: &str = "(e.uid IN (SELECT first_event_uid FROM event_groups)
     OR e.uid IN (SELECT event_uid FROM outbox WHERE status IN ('pending', 'sending')))";

/// Events purged per transaction.
const PURGE_BATCH: i64 = 5000;

/// Sets a group's status; whether it exists. Resolving notes the release
/// it was resolved in (its last event's; in the next release: the newest
/// it was seen with) and clears an earlier regression. `older`: the
/// database lacks the summaries (says which database, for the refusal of
/// resolving in the next release).
pub(crate) fn set_group_status(
    c: &mut dyn Conn,
    group: i64,
    status: GroupStatus,
    older: Option<&str>,
) -> Result<bool> {
    let next = status == GroupStatus::ResolvedInNextRelease;
    if let (true, Some(older)) = (next, older) {
        return Err(Error::new(ErrorKind::Storage {
            context: format!(
                "{older}: resolving in the next release needs the summaries of a newer one \
                 (run the program, or `errsnap migrate`, once to upgrade it)"
            ),
        }));
    }
    let summaries = older.is_none();
    let (next_col, newest, p) = if summaries {
        (
            "resolved_next = ?3,",
            "CASE WHEN ?3 THEN (SELECT value FROM group_values
                 WHERE group_id = ?1 AND \"key\" = 'release' ORDER BY last_seen DESC LIMIT 1) END",
            params![group, status.stored(), next].to_vec(),
        )
    } else {
        ("", "NULL", params![group, status.stored()].to_vec())
    };
    let sql = format!(
        "UPDATE event_groups SET status = ?2, {next_col}
         resolved_release = CASE ?2 WHEN 'resolved' THEN coalesce({newest},
             (SELECT \"release\" FROM events WHERE uid = last_event_uid))
             ELSE resolved_release END,
         regressed_in = CASE ?2 WHEN 'resolved' THEN NULL ELSE regressed_in END,
         regressed_at = CASE ?2 WHEN 'resolved' THEN NULL ELSE regressed_at END
         WHERE id = ?1"
    );
    let doing = "changing a group's status";
    if c.execute(doing, &sql, &p)? == 1 {
        return Ok(true);
    }
    // MySQL counts the rows it changed, not those it found: a status set
    // again changes none.
    c.one(
        doing,
        "SELECT EXISTS (SELECT 1 FROM event_groups WHERE id = ?1)",
        params![group],
    )
}

/// The condition a rule selects by (on `events e`) and its value
/// (`None`: nothing).
fn selection(c: &mut dyn Conn, rule: PurgeRule) -> Result<Option<(&'static str, i64)>> {
    Ok(match rule {
        PurgeRule::OlderThan(ts) => Some(("e.ts < ?1", ts)),
        PurgeRule::KeepNewest(n) => c
            .query_opt(
                "finding the purge bound",
                "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1",
                params![n.saturating_sub(1)],
            )?
            .map(|r| r.get(0))
            .transpose()?
            .map(|id| ("e.id < ?1", id)),
    })
}

/// The ids of the events a rule would delete, oldest first.
pub(crate) fn purge_candidates(c: &mut dyn Conn, rule: PurgeRule) -> Result<Vec<String>> {
    let Some((cond, v)) = selection(c, rule)? else {
        return Ok(Vec::new());
    };
    c.map(
        "selecting events to purge",
        &format!("SELECT e.uid FROM events e WHERE {cond} AND NOT {PROTECTED} ORDER BY e.id"),
        params![v],
        |r| r.get(0),
    )
}

/// The filter selecting what a rule would purge (to archive it first).
pub(crate) fn purge_bound(c: &mut dyn Conn, rule: PurgeRule) -> Result<EventFilter> {
    let mut f = EventFilter::default();
    match rule {
        PurgeRule::OlderThan(ts) => f.until = Some(ts),
        PurgeRule::KeepNewest(_) => {
            // Nothing to purge: select nothing.
            f.before_row = Some(selection(c, rule)?.map_or(i64::MIN, |(_, id)| id));
        }
    }
    Ok(f)
}

/// What a purge may also clean up in this database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    /// It keeps attachments (deleted with their event).
    pub(crate) attachments: bool,
    /// Its search texts point to stacks.
    pub(crate) texts: bool,
}

/// Deletes what `rule` selects, 5,000 events a transaction, then the
/// snapshots (and, but in a fleet, the stacks) no event uses any more.
// Long by design: one statement per step, in the order they must run (count
// the kept, delete events a batch at a time with their outbox rows and
// attachments, then orphaned snapshots and stacks).
pub(crate) fn purge(c: &mut dyn Conn, rule: PurgeRule, tables: Tables) -> Result<PurgeReport> {
    const DOING: &str = "purging events";
    let mut report = PurgeReport::default();
    let Some((cond, v)) = selection(c, rule)? else {
        return Ok(report);
    };
    report.kept = c.one(
        DOING,
        &format!("SELECT count(*) FROM events e WHERE {cond} AND {PROTECTED}"),
        params![v],
    )?;
    loop {
        let n = c.in_transaction(DOING, |c| {
            let n = c.execute(
                DOING,
                &format!(
                    // The ids through a derived table: MySQL deletes from
                    // no table its own subquery reads.
                    "DELETE FROM events WHERE id IN (SELECT id FROM (
                         SELECT e.id FROM events e WHERE {cond} AND NOT {PROTECTED}
                         ORDER BY e.id LIMIT {PURGE_BATCH}) AS batch)"
                ),
                params![v],
            )?;
            c.execute(
                DOING,
                // Event rows only: an item's row (no group) is no event's;
                // it goes with the check-ins (`drop_check_ins_before`).
                "DELETE FROM outbox WHERE status NOT IN ('pending', 'sending')
                   AND group_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.uid = outbox.event_uid)",
                params![],
            )?;
            if tables.attachments {
                c.execute(
                    DOING,
                    "DELETE FROM attachments
                     WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.uid = attachments.event_uid)",
                    params![],
                )?;
            }
            Ok(n)
        })?;
        report.events += n;
        if n < PURGE_BATCH as u64 {
            break;
        }
    }
    let fleet = c.dialect() != Dialect::Sqlite;
    c.in_transaction(DOING, |c| {
        report.snapshots = c.execute(
            DOING,
            // `NOT IN` (one pass over the events): no index leads from a
            // snapshot or a stack to its events.
            "DELETE FROM snapshots WHERE id NOT IN
                 (SELECT snapshot_id FROM events WHERE snapshot_id IS NOT NULL)",
            params![],
        )?;
        if fleet {
            // Stacks stay: other processes of the fleet keep their ids in
            // cache and may be writing events that point to them now.
            return Ok(());
        }
        c.execute(
            DOING,
            "DELETE FROM frames WHERE backtrace_id NOT IN
                 (SELECT backtrace_id FROM events WHERE backtrace_id IS NOT NULL)",
            params![],
        )?;
        report.backtraces = c.execute(
            DOING,
            "DELETE FROM backtraces WHERE id NOT IN
                 (SELECT backtrace_id FROM events WHERE backtrace_id IS NOT NULL)",
            params![],
        )?;
        // A deleted stack's id may be given to a new one: the search texts
        // that held it no longer follow it.
        if tables.texts {
            c.execute(
                DOING,
                "UPDATE group_texts SET backtrace_id = NULL WHERE backtrace_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM backtraces b WHERE b.id = group_texts.backtrace_id)",
                params![],
            )?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// Applies automatic retention (`used`: the bytes the database's rows
/// take); how many events were deleted.
pub(crate) fn enforce(
    c: &mut dyn Conn,
    limits: Limits,
    now: i64,
    tables: Tables,
    used: &dyn Fn(&mut dyn Conn) -> Result<u64>,
) -> Result<u64> {
    let mut deleted = 0;
    if let Some(age) = limits.max_age_ms {
        deleted += purge(c, PurgeRule::OlderThan(now.saturating_sub(age)), tables)?.events;
    }
    if let Some(n) = limits.max_events {
        deleted += purge(c, PurgeRule::KeepNewest(n), tables)?.events;
    }
    if let Some(max) = limits.attachments_max_bytes {
        cap_attachments(c, max)?;
    }
    if let Some(max) = limits.max_bytes {
        // Attachments' bytes go before events do.
        let over = used(c)?.saturating_sub(max);
        if over > 0 && tables.attachments {
            let keep = attachment_bytes(c)?.saturating_sub(over);
            cap_attachments(c, keep)?;
        }
        // Freed space is reused, so deleting the oldest tenth at a time
        // brings the used size down without a VACUUM.
        for _ in 0..10 {
            if used(c)? <= max {
                break;
            }
            let total: u64 = c.one("counting events", "SELECT count(*) FROM events", params![])?;
            let keep = total.saturating_sub((total / 10).max(1));
            let n = purge(c, PurgeRule::KeepNewest(keep), tables)?.events;
            deleted += n;
            if n == 0 {
                break;
            }
        }
    }
    Ok(deleted)
}

/// The bytes of the attachments kept.
fn attachment_bytes(c: &mut dyn Conn) -> Result<u64> {
    c.one(
        "measuring attachments",
        "SELECT coalesce(sum(size), 0) FROM attachments WHERE data IS NOT NULL",
        params![],
    )
}

/// The database's cap on attachments: when their bytes add up to more
/// than `max`, the oldest lose their bytes (name, size and the reason
/// kept) until the rest fit; how many were dropped.
pub(crate) fn cap_attachments(c: &mut dyn Conn, max: u64) -> Result<u64> {
    const DOING: &str = "capping attachments";
    // Read first: a write only when something is over.
    if attachment_bytes(c)? <= max {
        return Ok(0);
    }
    c.execute(
        DOING,
        "UPDATE attachments SET data = NULL, dropped = 'over the database cap'
         WHERE id IN (
             SELECT id FROM (
                 SELECT id, sum(size) OVER (ORDER BY id DESC) AS newer
                 FROM attachments WHERE data IS NOT NULL) a
             WHERE a.newer > ?1)",
        params![max],
    )
}

/// Up to `limit` stacks with a frame that has a module offset but no
/// function, after stack `after`, with their frames.
pub(crate) fn raw_backtraces(
    c: &mut dyn Conn,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, Vec<Frame>)>> {
    let ids: Vec<i64> = c.map(
        "finding raw stacks",
        "SELECT DISTINCT backtrace_id FROM frames
         WHERE backtrace_id > ?1 AND function IS NULL AND module_offset IS NOT NULL
         ORDER BY backtrace_id LIMIT ?2",
        params![after, limit],
        |r| r.get(0),
    )?;
    ids.into_iter()
        .map(|id| Ok((id, super::outbox::frames(c, id)?)))
        .collect()
}

/// Replaces the frames of the stack with storage key `hash` (in one
/// transaction); `false` when no such stack is stored.
pub(crate) fn name_frames(c: &mut dyn Conn, hash: &str, frames: &[Frame]) -> Result<bool> {
    let lock = c.dialect().lock(Lock::Update);
    c.in_transaction("naming frames", |c| {
        let id: Option<i64> = c
            .query_opt(
                "naming frames",
                &format!("SELECT id FROM backtraces WHERE hash = ?1{lock}"),
                params![hash],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        match id {
            Some(id) => replace_frames(c, id, frames, Columns::ALL).map(|()| true),
            None => Ok(false),
        }
    })
}

/// Which of the newer columns the database has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns {
    /// `frames.build_id`.
    pub(crate) build_ids: bool,
    /// The search texts (`group_texts`).
    pub(crate) texts: bool,
}

impl Columns {
    const ALL: Columns = Columns {
        build_ids: true,
        texts: true,
    };
}

/// Replaces the frames of stack `id` (in the caller's transaction, or in
/// one of its own), marking it resolved when no raw frame is left, and
/// names them in the search texts that hold the stack. Its storage key
/// (computed from the frames first stored) stays.
pub(crate) fn replace_frames(
    c: &mut dyn Conn,
    id: i64,
    frames: &[Frame],
    columns: Columns,
) -> Result<()> {
    const DOING: &str = "replacing frames";
    c.in_transaction(DOING, |c| {
        c.execute(
            DOING,
            "DELETE FROM frames WHERE backtrace_id = ?1",
            params![id],
        )?;
        insert_frames(c, id, frames, columns.build_ids)?;
        if columns.texts {
            refresh_texts(c, id, frames)?;
        }
        let resolved = !frames.iter().any(crate::pipeline::symbolicate::is_raw);
        c.execute(
            DOING,
            "UPDATE backtraces SET frame_count = ?2, resolved = ?3 WHERE id = ?1",
            params![id, frames.len(), resolved],
        )?;
        Ok(())
    })
}

/// Frames inserted, many to a statement (`build_ids`: the table has
/// that column).
pub(crate) fn insert_frames(
    c: &mut dyn Conn,
    id: i64,
    frames: &[Frame],
    build_ids: bool,
) -> Result<()> {
    let width = if build_ids { 11 } else { 10 };
    // Many rows a statement save a server round trips; SQLite has none to
    // save, and one statement text stays prepared.
    let per = if c.dialect() == Dialect::Sqlite {
        1
    } else {
        64
    };
    for (n, chunk) in frames.chunks(per).enumerate() {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * width);
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, f) in chunk.iter().enumerate() {
            let at = values.len();
            rows.push(format!(
                "({})",
                (1..=width)
                    .map(|k| format!("?{}", at + k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            values.extend([
                id.to_value(),
                (n * per + i).to_value(),
                f.function.to_value(),
                f.file.to_value(),
                f.line.to_value(),
                f.column.to_value(),
                (f.address as i64).to_value(),
                f.module.to_value(),
                f.module_offset.map(|o| o as i64).to_value(),
                f.in_app.to_value(),
            ]);
            if build_ids {
                values.push(f.build_id.to_value());
            }
        }
        let sql = format!(
            "INSERT INTO frames (backtrace_id, idx, function, file, line, col, address,
                 module, module_offset, in_app{}) VALUES {}",
            if build_ids { ", build_id" } else { "" },
            rows.join(", ")
        );
        c.execute("inserting frames", &sql, &values)?;
    }
    Ok(())
}

/// The search texts holding stack `backtrace`, their frames renamed.
fn refresh_texts(c: &mut dyn Conn, backtrace: i64, frames: &[Frame]) -> Result<()> {
    const DOING: &str = "indexing named frames for search";
    let fts = c.dialect() == Dialect::Sqlite;
    let rows: Vec<(i64, String, i64)> = c.map(
        DOING,
        "SELECT id, body, head_len FROM group_texts WHERE backtrace_id = ?1",
        params![backtrace],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (id, body, head_len) in rows {
        let new = summary::renamed(&body, head_len, summary::frame_names(frames));
        if new == body {
            continue;
        }
        if fts {
            // An external-content FTS5 index forgets a text by its old body.
            c.execute(
                DOING,
                "INSERT INTO group_texts_fts (group_texts_fts, rowid, body) VALUES ('delete', ?1, ?2)",
                params![id, body],
            )?;
        }
        // PostgreSQL's words are a column generated from the body.
        c.execute(
            DOING,
            "UPDATE group_texts SET body = ?2 WHERE id = ?1",
            params![id, new],
        )?;
        if fts {
            c.execute(
                DOING,
                "INSERT INTO group_texts_fts (rowid, body) VALUES (?1, ?2)",
                params![id, new],
            )?;
        }
    }
    Ok(())
}
