//! Stored stacks whose frames are still raw, and replacing them once
//! resolved (`errsnap symbolicate`, the panic hook's second step).

use rusqlite::params;

use super::read::{err, SqliteReader};
use crate::error::Result;
use crate::event::Frame;

impl SqliteReader {
    /// Up to `limit` stacks with a frame that has a module offset but no
    /// function, after backtrace id `after`, with their frames.
    pub(crate) fn raw_backtraces(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<Frame>)>> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT backtrace_id FROM frames
                 WHERE backtrace_id > ?1 AND function IS NULL AND module_offset IS NOT NULL
                 ORDER BY backtrace_id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after, limit as i64], |r| r.get(0))?
                    .collect()
            })
            .map_err(err("finding raw stacks"))?;
        ids.into_iter()
            .map(|id| {
                Ok((
                    id,
                    crate::store::sql::outbox::frames(&mut super::conn::Lite(&self.conn), id)?,
                ))
            })
            .collect()
    }

    /// Replaces the frames of stack `id` (one transaction), marking it
    /// resolved when no raw frame is left.
    pub(crate) fn replace_frames(&mut self, id: i64, frames: &[Frame]) -> Result<()> {
        replace_frames(&mut self.conn, id, frames)
    }
}

/// Replaces the frames of stack `id` in one transaction, marking it
/// resolved when no raw frame is left. Its hash (the storage key computed
/// from the frames first stored) stays.
pub(crate) fn replace_frames(
    conn: &mut rusqlite::Connection,
    id: i64,
    frames: &[Frame],
) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err("replacing frames"))?;
    tx.execute("DELETE FROM frames WHERE backtrace_id = ?1", [id])
        .map_err(err("replacing frames"))?;
    super::insert::insert_frames(&tx, id, frames)?;
    // The file may predate the summaries (a newer CLI on an old file).
    if super::column_or_null(&tx, "event_groups", "resolved_next") != "NULL" {
        super::summary::refresh_texts(&tx, id, frames)?;
    }
    let resolved = !frames.iter().any(crate::pipeline::symbolicate::is_raw);
    tx.execute(
        "UPDATE backtraces SET frame_count = ?2, resolved = ?3 WHERE id = ?1",
        params![id, frames.len() as i64, resolved],
    )
    .map_err(err("replacing frames"))?;
    tx.commit().map_err(err("replacing frames"))
}
