//! One event in full: its row, chain, frames, snapshot, host, alerts and
//! attachments; and the hosts recorded.

use super::backend::SqlReader;
use super::rows::{event_row, json, named, EVENT_COLUMNS};
use super::{params, Conn, Row};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{AlertKind, HostInfo, HostStats, ProcessStats, Snapshot, StoredAttachment};
use crate::store::read::*;

/// One event in full, by id (or a unique prefix of at least 6
/// characters); with its alerts' deliveries when `alerts` (a forwarding
/// channel needs none).
pub(crate) fn event<R: SqlReader + ?Sized>(
    r: &R,
    id: &str,
    alerts: bool,
) -> Result<Option<EventDetail>> {
    let context = r.column("events", "context");
    let status = super::query::status_expr(&r.column("event_groups", "resolved_next"));
    let has_attachments = r.column("attachments", "event_uid") != "NULL";
    let cgroup = r.column("snapshots", "cgroup");
    let mut c = r.conn();
    let Some(uid) = full_id(&mut *c, id)? else {
        return Ok(None);
    };
    let row = c.query_opt(
        "reading an event",
        &format!(
            "SELECT {EVENT_COLUMNS},
                    e.col, e.thread_id, e.error_chain, e.app_name, e.\"release\", e.environment,
                    e.tags, e.extra, e.breadcrumbs, e.redactions,
                    g.fingerprint, g.title, g.count, {status},
                    e.backtrace_id, e.snapshot_id, e.host_id,
                    (SELECT resolved FROM backtraces b WHERE b.id = e.backtrace_id),
                    {context}
             FROM events e JOIN loggers l ON l.id = e.logger_id
             JOIN event_groups g ON g.id = e.group_id WHERE e.uid = ?1"
        ),
        params![uid],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut d = detail_of(&row)?;
    d.set_context(row.get::<Option<String>>(30)?.as_deref());
    if let Some(bt) = row.get::<Option<i64>>(26)? {
        d.frames = super::outbox::frames(&mut *c, bt)?;
    }
    if let Some(s) = row.get::<Option<i64>>(27)? {
        d.snapshot = snapshot(&mut *c, s, &cgroup)?;
    }
    if let Some(h) = row.get::<Option<i64>>(28)? {
        d.host = hosts_where(&mut *c, Some(h))?
            .into_iter()
            .next()
            .map(|(_, h)| h);
    }
    if alerts {
        d.alerts = alerts_of(&mut *c, &uid)?;
    }
    if has_attachments {
        d.attachments = attachments_of(&mut *c, &uid, false)?;
    }
    Ok(Some(d))
}

fn detail_of(r: &Row) -> Result<EventDetail> {
    Ok(EventDetail {
        row: event_row(r)?,
        column: r.get(12)?,
        thread_id: r.get::<i64>(13)? as u64,
        chain: json(r, 14)?.unwrap_or_default(),
        app_name: r.get(15)?,
        release: r.get(16)?,
        environment: r.get(17)?,
        tags: json(r, 18)?.unwrap_or_default(),
        extra: json(r, 19)?.unwrap_or(serde_json::Value::Object(Default::default())),
        breadcrumbs: json(r, 20)?.unwrap_or_default(),
        redactions: r.get(21)?,
        group_fingerprint: r.get(22)?,
        group_title: r.get(23)?,
        group_count: r.get(24)?,
        group_status: named(r, 25, GroupStatus::from_name)?,
        frames: Vec::new(),
        symbols_resolved: r.get::<Option<bool>>(29)?.unwrap_or(true),
        snapshot: None,
        host: None,
        alerts: Vec::new(),
        transaction: None,
        user: None,
        request: None,
        attachments: Vec::new(),
    })
}

/// An event's attachments (given in full or by a unique prefix), with
/// their bytes; none in a database older than attachments.
pub(crate) fn attachments<R: SqlReader + ?Sized>(r: &R, id: &str) -> Result<Vec<StoredAttachment>> {
    if r.column("attachments", "event_uid") == "NULL" {
        return Ok(Vec::new());
    }
    let mut c = r.conn();
    match full_id(&mut *c, id)? {
        Some(uid) => attachments_of(&mut *c, &uid, true),
        None => Ok(Vec::new()),
    }
}

/// Reads the bytes of the event's minidump, when it has one (a forwarder
/// may send it); the other attachments stay a listing.
pub(crate) fn with_minidump<R: SqlReader + ?Sized>(r: &R, d: &mut EventDetail) -> Result<()> {
    if !d.attachments.iter().any(StoredAttachment::is_minidump) {
        return Ok(());
    }
    let mut c = r.conn();
    d.attachments = attachments_of(&mut *c, &d.row.id, true)?
        .into_iter()
        .map(|mut a| {
            if !a.is_minidump() {
                a.data = None;
            }
            a
        })
        .collect();
    Ok(())
}

/// An event's attachments, oldest first; their bytes when `data`.
fn attachments_of(c: &mut dyn Conn, uid: &str, data: bool) -> Result<Vec<StoredAttachment>> {
    c.map(
        "reading attachments",
        &format!(
            "SELECT name, content_type, size, {}, dropped FROM attachments
             WHERE event_uid = ?1 ORDER BY id",
            if data { "data" } else { "NULL" }
        ),
        params![uid],
        |r| {
            Ok(StoredAttachment {
                name: r.get(0)?,
                content_type: r.get(1)?,
                size: r.get(2)?,
                data: r.get(3)?,
                dropped: r.get(4)?,
            })
        },
    )
}

/// The full id of an event given in full or by a unique prefix of at
/// least 6 characters (case does not matter).
pub(crate) fn full_id(c: &mut dyn Conn, id: &str) -> Result<Option<String>> {
    let id = id.trim().to_ascii_uppercase();
    if id.len() == 26 {
        return Ok(Some(id));
    }
    if id.len() < 6 {
        return Ok(None);
    }
    let found: Vec<String> = c.map(
        "finding an event",
        "SELECT uid FROM events WHERE uid >= ?1 AND uid < ?1 || 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ' LIMIT 2",
        params![id],
        |r| r.get(0),
    )?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Error::new(ErrorKind::Config {
            key: "ID".into(),
            message: format!("{id:?} matches several events: give more characters"),
        })),
    }
}

/// The alerts of one event and their delivery, oldest first.
fn alerts_of(c: &mut dyn Conn, uid: &str) -> Result<Vec<AlertStatus>> {
    c.map(
        "reading alerts",
        "SELECT channel, kind, status, attempts, last_error, sent_at FROM outbox
         WHERE event_uid = ?1 ORDER BY id",
        params![uid],
        |r| {
            Ok(AlertStatus {
                channel: r.get(0)?,
                kind: named(r, 1, AlertKind::from_name)?,
                status: named(r, 2, DeliveryStatus::from_name)?,
                attempts: r.get(3)?,
                last_error: r.get(4)?,
                sent_at: r.get(5)?,
            })
        },
    )
}

/// A stored snapshot (`cgroup`: its column, or `NULL`).
fn snapshot(c: &mut dyn Conn, id: i64, cgroup: &str) -> Result<Option<Snapshot>> {
    let row = c.query_opt(
        "reading a snapshot",
        &format!(
            "SELECT taken_at, proc_cpu_user_ms, proc_cpu_system_ms, proc_cpu_percent,
                    proc_rss_bytes, proc_virtual_bytes, proc_memory_percent, proc_threads,
                    proc_io_read_bytes, proc_io_write_bytes, proc_open_fds, sys_total_memory,
                    sys_used_memory, sys_available_memory, sys_total_swap, sys_used_swap,
                    sys_cpu_percent, load_1, load_5, load_15, uptime_s, {cgroup}
             FROM snapshots WHERE id = ?1"
        ),
        params![id],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        taken_at_ms: r.get(0)?,
        process: ProcessStats {
            cpu_user_ms: r.get(1)?,
            cpu_system_ms: r.get(2)?,
            cpu_percent: r.get(3)?,
            rss_bytes: r.get(4)?,
            virtual_bytes: r.get(5)?,
            memory_percent: r.get(6)?,
            threads: r.get(7)?,
            io_read_bytes: r.get(8)?,
            io_write_bytes: r.get(9)?,
            open_fds: r.get(10)?,
        },
        host: HostStats {
            total_memory: r.get(11)?,
            used_memory: r.get(12)?,
            available_memory: r.get(13)?,
            total_swap: r.get(14)?,
            used_swap: r.get(15)?,
            cpu_percent: r.get(16)?,
            load_1: r.get(17)?,
            load_5: r.get(18)?,
            load_15: r.get(19)?,
            uptime_s: r.get(20)?,
        },
        cgroup: json(&r, 21)?,
    }))
}

/// The recorded hosts (or the one with `id`), most recent first.
pub(crate) fn hosts_where(c: &mut dyn Conn, id: Option<i64>) -> Result<Vec<(HostRow, HostInfo)>> {
    let any = c.dialect().cast_int("?1");
    c.map(
        "reading hosts",
        &format!(
            "SELECT id, hostname, os_name, os_version, kernel_version, arch, cpu_brand, cpu_count,
                    physical_cores, cpu_frequency_mhz, total_memory, total_swap, boot_time,
                    first_seen, last_seen
             FROM hosts WHERE {any} IS NULL OR id = ?1 ORDER BY last_seen DESC"
        ),
        params![id],
        |r| {
            Ok((
                HostRow {
                    id: r.get(0)?,
                    first_seen: r.get(13)?,
                    last_seen: r.get(14)?,
                },
                HostInfo {
                    hostname: r.get(1)?,
                    os_name: r.get(2)?,
                    os_version: r.get(3)?,
                    kernel_version: r.get(4)?,
                    arch: r.get(5)?,
                    cpu_brand: r.get(6)?,
                    cpu_count: r.get(7)?,
                    physical_cores: r.get(8)?,
                    cpu_frequency_mhz: r.get(9)?,
                    total_memory: r.get(10)?,
                    total_swap: r.get(11)?,
                    boot_time: r.get(12)?,
                },
            ))
        },
    )
}
