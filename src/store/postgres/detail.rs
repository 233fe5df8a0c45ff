//! One event in full from a fleet's database: its row, chain, frames,
//! snapshot, host and (for the CLI) its alerts.

use postgres::Client;

use super::connect::PgTarget;
use super::read::{PgReader, EVENT_COLUMNS};
use crate::error::Result;
use crate::event::{AlertKind, HostStats, ProcessStats, Snapshot};
use crate::store::read::*;

impl PgReader {
    /// One event in full, by id (or a unique prefix); with its alerts'
    /// deliveries when `alerts` (a forwarding channel needs none).
    // Long by design: one row's columns, in the order selected.
    pub(super) fn detail(&self, id: &str, alerts: bool) -> Result<Option<EventDetail>> {
        let Some(uid) = self.full_id(id)? else {
            return Ok(None);
        };
        // Before the connection is taken: the lookup may need it.
        let status = self.status_expr();
        let has_context = self.has_context();
        let context = if has_context {
            "e.context::text"
        } else {
            "NULL::text"
        };
        let row = self
            .client()
            .query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS},
                        e.col, e.thread_id, e.error_chain::text, e.app_name, e.release,
                        e.environment, e.tags::text, e.extra::text, e.breadcrumbs::text,
                        e.redactions, g.fingerprint, g.title, g.count, {status},
                        e.backtrace_id, e.host_id,
                        (SELECT resolved FROM backtraces b WHERE b.id = e.backtrace_id),
                        e.snapshot_id, {context}
                     FROM events e JOIN loggers l ON l.id = e.logger_id
                     JOIN event_groups g ON g.id = e.group_id WHERE e.uid = $1"
                ),
                &[&uid],
            )
            .map_err(self.fail("reading an event in"))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let json = |i: usize| r.get::<_, Option<String>>(i);
        let mut d = EventDetail {
            row: Self::event_row(&r),
            column: r.get::<_, Option<i32>>(12).map(|v| v as u32),
            thread_id: r.get::<_, i64>(13) as u64,
            chain: json(14)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            app_name: r.get(15),
            release: r.get(16),
            environment: r.get(17),
            tags: json(18)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            extra: json(19)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or(serde_json::Value::Object(Default::default())),
            breadcrumbs: json(20)
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
            redactions: i64::from(r.get::<_, i32>(21)),
            group_fingerprint: r.get(22),
            group_title: r.get(23),
            group_count: r.get(24),
            group_status: GroupStatus::from_name(&r.get::<_, String>(25))
                .unwrap_or(GroupStatus::Open),
            frames: Vec::new(),
            symbols_resolved: r.get::<_, Option<bool>>(28).unwrap_or(true),
            snapshot: None,
            host: None,
            alerts: Vec::new(),
            transaction: None,
            user: None,
            request: None,
            attachments: Vec::new(),
        };
        d.set_context(json(30).as_deref());
        let backtrace: Option<i64> = r.get(26);
        let host: Option<i64> = r.get(27);
        let snapshot: Option<i64> = r.get(29);
        let mut client = self.client();
        if let Some(bt) = backtrace {
            d.frames = self.sql(&mut client, |c| crate::store::sql::outbox::frames(c, bt))?;
        }
        if let Some(h) = host {
            d.host = super::report::host(&mut client, &self.target, h)?;
        }
        if let Some(s) = snapshot {
            d.snapshot = snapshot_of(&mut client, &self.target, s)?;
        }
        if alerts {
            d.alerts = alerts_of(&mut client, &self.target, &uid)?;
        }
        if has_context {
            d.attachments = attachments_of(&mut client, &self.target, &uid, false)?;
        }
        Ok(Some(d))
    }
}

impl PgReader {
    /// An event's attachments with their bytes, by id or prefix.
    pub(super) fn attachments_by_id(
        &self,
        id: &str,
    ) -> Result<Vec<crate::event::StoredAttachment>> {
        let Some(uid) = self.full_id(id)? else {
            return Ok(Vec::new());
        };
        if !self.has_context() {
            return Ok(Vec::new());
        }
        attachments_of(&mut self.client(), &self.target, &uid, true)
    }
}

/// An event's attachments, oldest first; their bytes when `data`.
pub(super) fn attachments_of(
    c: &mut Client,
    t: &PgTarget,
    uid: &str,
    data: bool,
) -> Result<Vec<crate::event::StoredAttachment>> {
    let sql = format!(
        "SELECT name, content_type, size, {}, dropped FROM attachments
         WHERE event_uid = $1 ORDER BY id",
        if data { "data" } else { "NULL::bytea" }
    );
    Ok(c.query(&sql, &[&uid])
        .map_err(|e| t.error("reading attachments in", e))?
        .iter()
        .map(|r| crate::event::StoredAttachment {
            name: r.get(0),
            content_type: r.get(1),
            size: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            data: r.get(3),
            dropped: r.get(4),
        })
        .collect())
}

fn alerts_of(c: &mut Client, t: &PgTarget, uid: &str) -> Result<Vec<AlertStatus>> {
    Ok(c.query(
        "SELECT channel, kind, status, attempts, last_error, sent_at FROM outbox
             WHERE event_uid = $1 ORDER BY id",
        &[&uid],
    )
    .map_err(|e| t.error("reading alerts in", e))?
    .iter()
    .filter_map(|r| {
        Some(AlertStatus {
            channel: r.get(0),
            kind: AlertKind::from_name(&r.get::<_, String>(1))?,
            status: DeliveryStatus::from_name(&r.get::<_, String>(2))?,
            attempts: i64::from(r.get::<_, i32>(3)),
            last_error: r.get(4),
            sent_at: r.get(5),
        })
    })
    .collect())
}

/// A stored snapshot.
fn snapshot_of(c: &mut Client, t: &PgTarget, id: i64) -> Result<Option<Snapshot>> {
    let opt = |v: Option<i64>| v.map(|n| n.max(0) as u64);
    let n = |v: i64| v.max(0) as u64;
    let row = c
        .query_opt(
            "SELECT taken_at, proc_cpu_user_ms, proc_cpu_system_ms, proc_cpu_percent,
                proc_rss_bytes, proc_virtual_bytes, proc_memory_percent, proc_threads,
                proc_io_read_bytes, proc_io_write_bytes, proc_open_fds, sys_total_memory,
                sys_used_memory, sys_available_memory, sys_total_swap, sys_used_swap,
                sys_cpu_percent, load_1, load_5, load_15, uptime_s, cgroup::text
             FROM snapshots WHERE id = $1",
            &[&id],
        )
        .map_err(|e| t.error("reading a snapshot in", e))?;
    Ok(row.map(|r| Snapshot {
        taken_at_ms: r.get(0),
        process: ProcessStats {
            cpu_user_ms: opt(r.get(1)),
            cpu_system_ms: opt(r.get(2)),
            cpu_percent: r.get(3),
            rss_bytes: n(r.get(4)),
            virtual_bytes: n(r.get(5)),
            memory_percent: r.get(6),
            threads: opt(r.get(7)),
            io_read_bytes: opt(r.get(8)),
            io_write_bytes: opt(r.get(9)),
            open_fds: opt(r.get(10)),
        },
        host: HostStats {
            total_memory: n(r.get(11)),
            used_memory: n(r.get(12)),
            available_memory: n(r.get(13)),
            total_swap: n(r.get(14)),
            used_swap: n(r.get(15)),
            cpu_percent: r.get(16),
            load_1: r.get(17),
            load_5: r.get(18),
            load_15: r.get(19),
            uptime_s: n(r.get(20)),
        },
        cgroup: r
            .get::<_, Option<String>>(21)
            .and_then(|j| serde_json::from_str(&j).ok()),
    }))
}
