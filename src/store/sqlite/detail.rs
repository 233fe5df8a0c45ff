//! One event in full: its row, chain, frames, snapshot and host.

use rusqlite::OptionalExtension;

use super::read::{err, event_row, named, SqliteReader};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{AlertKind, HostInfo, HostStats, ProcessStats, Snapshot};
use crate::store::read::*;

impl SqliteReader {
    /// One event in full, by id (or a unique prefix of at least 6
    /// characters); with its alerts' deliveries when `alerts` (a
    /// forwarding channel needs none).
    pub(crate) fn event(&self, id: &str, alerts: bool) -> Result<Option<EventDetail>> {
        let Some(uid) = self.full_id(id)? else {
            return Ok(None);
        };
        let context = super::column_or_null(&self.conn, "events", "context");
        let next = if self.has_summaries() {
            "resolved_next".to_owned()
        } else {
            "NULL".to_owned()
        };
        // Cached: a forwarding channel reads one event after another.
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT e.id, e.uid, e.ts, l.name, e.level, e.kind, e.message, e.file, e.line,
                        e.group_id, e.thread_name, e.pid,
                        e.col, e.thread_id, e.error_chain, e.app_name, e.release, e.environment,
                        e.tags, e.extra, e.breadcrumbs, e.redactions,
                        g.fingerprint, g.title, g.count,
                        CASE WHEN g.status = 'resolved' AND {next} = 1 THEN 'resolved-next'
                             ELSE g.status END,
                        e.backtrace_id, e.snapshot_id, e.host_id,
                        (SELECT resolved FROM backtraces b WHERE b.id = e.backtrace_id),
                        {context}
                 FROM events e JOIN loggers l ON l.id = e.logger_id
                 JOIN event_groups g ON g.id = e.group_id WHERE e.uid = ?1"
            ))
            .and_then(|mut st| {
                st.query_row([&uid], |r| {
                    let json = |i: usize| -> rusqlite::Result<Option<String>> { r.get(i) };
                    Ok((
                        EventDetail {
                            row: event_row(r)?,
                            column: r.get(12)?,
                            thread_id: r.get::<_, i64>(13)? as u64,
                            chain: json(14)?
                                .and_then(|j| serde_json::from_str(&j).ok())
                                .unwrap_or_default(),
                            app_name: r.get(15)?,
                            release: r.get(16)?,
                            environment: r.get(17)?,
                            tags: json(18)?
                                .and_then(|j| serde_json::from_str(&j).ok())
                                .unwrap_or_default(),
                            extra: json(19)?
                                .and_then(|j| serde_json::from_str(&j).ok())
                                .unwrap_or(serde_json::Value::Object(Default::default())),
                            breadcrumbs: json(20)?
                                .and_then(|j| serde_json::from_str(&j).ok())
                                .unwrap_or_default(),
                            redactions: r.get(21)?,
                            group_fingerprint: r.get(22)?,
                            group_title: r.get(23)?,
                            group_count: r.get(24)?,
                            group_status: named(r, 25, GroupStatus::from_name)?,
                            frames: Vec::new(),
                            symbols_resolved: r.get::<_, Option<bool>>(29)?.unwrap_or(true),
                            snapshot: None,
                            host: None,
                            alerts: Vec::new(),
                            transaction: None,
                            user: None,
                            request: None,
                            attachments: Vec::new(),
                        },
                        r.get::<_, Option<i64>>(26)?,
                        r.get::<_, Option<i64>>(27)?,
                        r.get::<_, Option<i64>>(28)?,
                        r.get::<_, Option<String>>(30)?,
                    ))
                })
                .optional()
            })
            .map_err(err("reading an event"))?;
        let Some((mut d, bt, snap, host, context)) = row else {
            return Ok(None);
        };
        d.set_context(context.as_deref());
        if let Some(bt) = bt {
            d.frames = crate::store::sql::outbox::frames(&mut super::conn::Lite(&self.conn), bt)?;
        }
        if let Some(s) = snap {
            d.snapshot = self.snapshot(s)?;
        }
        if let Some(h) = host {
            d.host = self.host(h)?;
        }
        if alerts {
            d.alerts = self.alerts_of(&uid)?;
        }
        d.attachments = self.attachments_of(&uid, false)?;
        Ok(Some(d))
    }

    /// An event's attachments, oldest first; their bytes when `data`
    /// (none in a file older than schema 8).
    pub(crate) fn attachments_of(
        &self,
        uid: &str,
        data: bool,
    ) -> Result<Vec<crate::event::StoredAttachment>> {
        if super::column_or_null(&self.conn, "attachments", "event_uid") == "NULL" {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT name, content_type, size, {}, dropped FROM attachments
             WHERE event_uid = ?1 ORDER BY id",
            if data { "data" } else { "NULL" }
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map([uid], |r| {
                    Ok(crate::event::StoredAttachment {
                        name: r.get(0)?,
                        content_type: r.get(1)?,
                        size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        data: r.get(3)?,
                        dropped: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(err("reading attachments"))
    }

    /// The full id of an event given in full or by a unique prefix of at
    /// least 6 characters (case does not matter).
    pub(super) fn full_id(&self, id: &str) -> Result<Option<String>> {
        let id = id.trim().to_ascii_uppercase();
        Ok(if id.len() == 26 {
            Some(id)
        } else if id.len() >= 6 {
            let found: Vec<String> = self
                .conn
                .prepare_cached("SELECT uid FROM events WHERE uid >= ?1 AND uid < ?1 || 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ' LIMIT 2")
                .and_then(|mut s| s.query_map([&id], |r| r.get(0))?.collect())
                .map_err(err("finding an event"))?;
            match found.len() {
                1 => found.into_iter().next(),
                0 => None,
                _ => {
                    return Err(Error::new(ErrorKind::Config {
                        key: "ID".into(),
                        message: format!("{id:?} matches several events: give more characters"),
                    }))
                }
            }
        } else {
            None
        })
    }

    /// The alerts of one event and their delivery, oldest first.
    fn alerts_of(&self, uid: &str) -> Result<Vec<AlertStatus>> {
        self.conn
            .prepare_cached(
                "SELECT channel, kind, status, attempts, last_error, sent_at FROM outbox
                 WHERE event_uid = ?1 ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map([uid], |r| {
                    Ok(AlertStatus {
                        channel: r.get(0)?,
                        kind: named(r, 1, AlertKind::from_name)?,
                        status: named(r, 2, DeliveryStatus::from_name)?,
                        attempts: r.get(3)?,
                        last_error: r.get(4)?,
                        sent_at: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(err("reading alerts"))
    }

    fn snapshot(&self, id: i64) -> Result<Option<Snapshot>> {
        let opt = |v: Option<i64>| v.map(|n| n.max(0) as u64);
        let cgroup = super::column_or_null(&self.conn, "snapshots", "cgroup");
        self.conn
            .prepare_cached(&format!(
                "SELECT taken_at, proc_cpu_user_ms, proc_cpu_system_ms, proc_cpu_percent,
                        proc_rss_bytes, proc_virtual_bytes, proc_memory_percent, proc_threads,
                        proc_io_read_bytes, proc_io_write_bytes, proc_open_fds, sys_total_memory,
                        sys_used_memory, sys_available_memory, sys_total_swap, sys_used_swap,
                        sys_cpu_percent, load_1, load_5, load_15, uptime_s, {cgroup}
                     FROM snapshots WHERE id = ?1"
            ))
            .and_then(|mut st| {
                st.query_row([id], |r| {
                    Ok(Snapshot {
                        taken_at_ms: r.get(0)?,
                        process: ProcessStats {
                            cpu_user_ms: opt(r.get(1)?),
                            cpu_system_ms: opt(r.get(2)?),
                            cpu_percent: r.get(3)?,
                            rss_bytes: r.get::<_, i64>(4)? as u64,
                            virtual_bytes: r.get::<_, i64>(5)? as u64,
                            memory_percent: r.get(6)?,
                            threads: opt(r.get(7)?),
                            io_read_bytes: opt(r.get(8)?),
                            io_write_bytes: opt(r.get(9)?),
                            open_fds: opt(r.get(10)?),
                        },
                        host: HostStats {
                            total_memory: r.get::<_, i64>(11)? as u64,
                            used_memory: r.get::<_, i64>(12)? as u64,
                            available_memory: r.get::<_, i64>(13)? as u64,
                            total_swap: r.get::<_, i64>(14)? as u64,
                            used_swap: r.get::<_, i64>(15)? as u64,
                            cpu_percent: r.get(16)?,
                            load_1: r.get(17)?,
                            load_5: r.get(18)?,
                            load_15: r.get(19)?,
                            uptime_s: r.get::<_, i64>(20)? as u64,
                        },
                        cgroup: r
                            .get::<_, Option<String>>(21)?
                            .and_then(|j| serde_json::from_str(&j).ok()),
                    })
                })
                .optional()
            })
            .map_err(err("reading a snapshot"))
    }

    fn host(&self, id: i64) -> Result<Option<HostInfo>> {
        Ok(self
            .hosts_where("WHERE id = ?1", Some(id))?
            .into_iter()
            .next()
            .map(|(_, h)| h))
    }

    fn hosts_where(&self, cond: &str, id: Option<i64>) -> Result<Vec<(HostRow, HostInfo)>> {
        let sql = format!(
            "SELECT id, hostname, os_name, os_version, kernel_version, arch, cpu_brand, cpu_count,
                    physical_cores, cpu_frequency_mhz, total_memory, total_swap, boot_time,
                    first_seen, last_seen
             FROM hosts {cond} ORDER BY last_seen DESC"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(err("reading hosts"))?;
        let map = |r: &rusqlite::Row<'_>| {
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
                    cpu_count: r.get::<_, i64>(7)? as u64,
                    physical_cores: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
                    cpu_frequency_mhz: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
                    total_memory: r.get::<_, i64>(10)? as u64,
                    total_swap: r.get::<_, i64>(11)? as u64,
                    boot_time: r.get::<_, i64>(12)? as u64,
                },
            ))
        };
        let rows = match id {
            Some(id) => stmt.query_map([id], map).and_then(|r| r.collect()),
            None => stmt.query_map([], map).and_then(|r| r.collect()),
        };
        rows.map_err(err("reading hosts"))
    }

    /// The recorded hosts, most recent first.
    pub(crate) fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>> {
        self.hosts_where("", None)
    }
}
