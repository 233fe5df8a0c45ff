//! The rows of a batch that every backend writes one at a time: an
//! event's snapshot (events of a batch share theirs) and its attachments
//! (rare). The events, groups and frames themselves are each backend's
//! batch insert.

use super::alerts::GroupDelta;
use super::{params, Conn, Value};
use crate::error::Result;
use crate::event::{Snapshot, StoredAttachment};

/// Inserts a snapshot taken of process `pid`; its id.
pub(crate) fn snapshot(c: &mut dyn Conn, s: &Snapshot, pid: u32) -> Result<i64> {
    let (p, h) = (&s.process, &s.host);
    let cgroup = s
        .cgroup
        .as_ref()
        .and_then(|c| serde_json::to_string(c).ok());
    c.insert_id(
        "inserting a snapshot",
        "INSERT INTO snapshots (taken_at, pid, proc_cpu_user_ms, proc_cpu_system_ms,
             proc_cpu_percent, proc_rss_bytes, proc_virtual_bytes, proc_memory_percent,
             proc_threads, proc_io_read_bytes, proc_io_write_bytes, proc_open_fds,
             sys_total_memory, sys_used_memory, sys_available_memory, sys_total_swap,
             sys_used_swap, sys_cpu_percent, load_1, load_5, load_15, uptime_s, cgroup)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23)",
        params![
            s.taken_at_ms,
            pid,
            p.cpu_user_ms,
            p.cpu_system_ms,
            p.cpu_percent,
            p.rss_bytes,
            p.virtual_bytes,
            p.memory_percent,
            p.threads,
            p.io_read_bytes,
            p.io_write_bytes,
            p.open_fds,
            h.total_memory,
            h.used_memory,
            h.available_memory,
            h.total_swap,
            h.used_swap,
            h.cpu_percent,
            h.load_1,
            h.load_5,
            h.load_15,
            h.uptime_s,
            cgroup
        ],
    )
}

/// Inserts the attachments of event `uid`.
pub(crate) fn attachments(c: &mut dyn Conn, uid: &str, all: &[StoredAttachment]) -> Result<()> {
    for a in all {
        let data = a
            .data
            .as_deref()
            .map_or(Value::Null, |d| Value::Bytes(d.to_vec()));
        c.execute(
            "inserting an attachment",
            "INSERT INTO attachments (event_uid, name, content_type, size, data, dropped)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![uid, a.name, a.content_type, a.size, data, a.dropped],
        )?;
    }
    Ok(())
}

/// A column's JSON text; NULL for an empty value.
pub(crate) fn json_unless(empty: bool, v: &impl serde::Serialize) -> Option<String> {
    (!empty).then(|| serde_json::to_string(v).unwrap_or_default())
}

/// Each group's changes from a batch, one statement per group (a resolved
/// group reopens or stays quiet as the alert policy found). The newest
/// event's id is chosen before `last_seen` moves (MySQL assigns left to
/// right).
pub(crate) fn update_groups(c: &mut dyn Conn, deltas: &[GroupDelta]) -> Result<()> {
    let d = c.dialect();
    let sql = format!(
        "UPDATE event_groups SET
             count = count + ?2,
             level = {},
             first_seen = {},
             last_event_uid = CASE WHEN ?5 >= last_seen THEN ?6 ELSE last_event_uid END,
             last_seen = {},
             regressed_in = CASE WHEN ?7 THEN ?8 ELSE regressed_in END,
             regressed_at = CASE WHEN ?7 THEN ?9 ELSE regressed_at END,
             resolved_next = ?10,
             status = CASE WHEN ?7 THEN 'open' ELSE status END
         WHERE id = ?1",
        d.greatest("level", "?3"),
        d.least("first_seen", "?4"),
        d.greatest("last_seen", "?5"),
    );
    for g in deltas {
        let (regressed_in, regressed_at) = match &g.reopened {
            Some((release, at)) => (release.as_deref(), Some(*at)),
            None => (None, None),
        };
        c.execute(
            "updating groups",
            &sql,
            params![
                g.group,
                g.count,
                g.level,
                g.first_seen,
                g.last_seen,
                g.last_uid,
                g.reopened.is_some(),
                regressed_in,
                regressed_at,
                g.quiet
            ],
        )?;
    }
    Ok(())
}
