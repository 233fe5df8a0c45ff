//! The small writes every store makes the same way: a logger and its
//! view, its host, a counter, a crash linked to the panic it ended.

use super::{params, Conn, Dialect};
use crate::error::Result;
use crate::event::HostInfo;
use crate::pipeline::fingerprint::StableHasher;
use crate::store::ident::validate_logger_name;
use crate::store::seam::AlertRules;
use crate::store::upstream::{self, ClientReportItem, Discarded, Item};
use crate::util::internal_log;

/// The id of logger `name`, created if new with its view (`SELECT * FROM
/// "<name>"`, the original design's query). A table of that name that is
/// not ours keeps its place: the view is skipped, and said so.
///
/// # Errors
/// `name` is not an identifier, or the statements fail.
pub(crate) fn logger_id(c: &mut dyn Conn, name: &str) -> Result<i64> {
    // Spliced into the view's statement: checked however it came.
    validate_logger_name(name)?;
    let doing = "registering a logger";
    let find = "SELECT id FROM loggers WHERE name = ?1";
    if let Some(id) = c.query_opt(doing, find, params![name])? {
        return id.get(0);
    }
    let insert = "INSERT INTO loggers (name, created_at) VALUES (?1, ?2)";
    let at = crate::util::time::now_ms();
    let created: Option<i64> = if c.dialect() == Dialect::Mysql {
        // Made here or meanwhile: the id either way (its view again is
        // harmless).
        let upsert = c.dialect().upsert("loggers", "name", "", true);
        Some(c.insert_id(doing, &format!("{insert} {upsert}"), params![name, at])?)
    } else {
        c.query_opt(
            doing,
            &format!("{insert} ON CONFLICT (name) DO NOTHING RETURNING id"),
            params![name, at],
        )?
        .map(|r| r.get(0))
        .transpose()?
    };
    let Some(id) = created else {
        // Another process registered it meanwhile.
        return c.one(doing, find, params![name]);
    };
    let view = view_sql(c.dialect(), name, id);
    // A failed statement spoils a PostgreSQL transaction: the view goes in
    // its own savepoint. MySQL's DDL commits by itself (no savepoint
    // outlives it): its loggers are registered outside a batch.
    let made = if c.dialect() == Dialect::Mysql {
        c.execute(doing, &view, &[]).map(drop)
    } else {
        c.transaction(doing, &mut |c| c.execute(doing, &view, &[]).map(drop))
    };
    if let Err(e) = made {
        internal_log::report(
            "logger view",
            &format!(
                "logger {name:?} has no view of its events ({e}; is a table of that name there?)"
            ),
        );
    }
    Ok(id)
}

/// The per-logger view, with the host of each event. `name` is validated
/// as an identifier; `logger_id` is an integer from the database.
fn view_sql(d: Dialect, name: &str, logger_id: i64) -> String {
    let (create, time) = match d {
        Dialect::Sqlite => (
            "CREATE VIEW IF NOT EXISTS",
            "strftime('%Y-%m-%dT%H:%M:%fZ', e.ts / 1000.0, 'unixepoch')",
        ),
        Dialect::Postgres => (
            "CREATE OR REPLACE VIEW",
            r#"to_char(to_timestamp(e.ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#,
        ),
        // The session's time zone is UTC.
        Dialect::Mysql => (
            "CREATE OR REPLACE VIEW",
            "date_format(from_unixtime(e.ts / 1000.0), '%Y-%m-%dT%H:%i:%s.%fZ')",
        ),
    };
    format!(
        r#"{create} "{name}" AS
SELECT e.uid AS event_id,
       e.ts AS ts,
       {time} AS time,
       CASE e.level WHEN 0 THEN 'trace' WHEN 1 THEN 'debug' WHEN 2 THEN 'info'
                    WHEN 3 THEN 'warn' WHEN 4 THEN 'error' ELSE 'fatal' END AS level,
       e.kind AS kind,
       e.message AS message,
       e.error_chain AS error_chain,
       e.file AS file,
       e.line AS line,
       e.thread_name AS thread_name,
       e.pid AS pid,
       h.hostname AS hostname,
       g.fingerprint AS fingerprint,
       e.snapshot_id AS snapshot_id
FROM events e JOIN event_groups g ON g.id = e.group_id
LEFT JOIN hosts h ON h.id = e.host_id
WHERE e.logger_id = {logger_id}"#
    )
}

/// Records the host description once (keyed by what stays the same while
/// the machine does: not the CPU's current frequency); events written
/// later point to it. Returns its id.
pub(crate) fn register_host(c: &mut dyn Conn, host: &HostInfo, now_ms: i64) -> Result<i64> {
    let stable = HostInfo {
        cpu_frequency_mhz: None,
        ..host.clone()
    };
    let mut h = StableHasher::new();
    h.field(&serde_json::to_string(&stable).unwrap_or_default());
    let upsert = c
        .dialect()
        .upsert("hosts", "\"key\"", "last_seen = excluded.last_seen", true);
    c.insert_id(
        "recording the host description",
        &format!(
            "INSERT INTO hosts (\"key\", hostname, os_name, os_version, kernel_version, arch,
                 cpu_brand, cpu_count, physical_cores, cpu_frequency_mhz, total_memory,
                 total_swap, boot_time, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14) {upsert}"
        ),
        params![
            h.finish_hex(),
            host.hostname,
            host.os_name,
            host.os_version,
            host.kernel_version,
            host.arch,
            host.cpu_brand,
            host.cpu_count,
            host.physical_cores,
            host.cpu_frequency_mhz,
            host.total_memory,
            host.total_swap,
            host.boot_time,
            now_ms
        ],
    )
}

/// Adds `delta` to a named counter (e.g. `dropped_events`); a loss Sentry
/// has a reason for is also reported to the channels that take client
/// reports, in the same transaction.
pub(crate) fn add_counter(
    c: &mut dyn Conn,
    name: &str,
    delta: u64,
    rules: &AlertRules,
    origin: Option<i64>,
) -> Result<()> {
    c.in_transaction("updating a counter", |c| {
        let upsert = c.dialect().upsert(
            "counters",
            "name",
            "value = counters.value + excluded.value",
            false,
        );
        c.execute(
            "updating a counter",
            &format!("INSERT INTO counters (name, value) VALUES (?1, ?2) {upsert}"),
            params![name, delta],
        )?;
        if let Some(reason) = upstream::discard_reason(name) {
            let now = crate::util::time::now_ms();
            let report = Item::ClientReport(ClientReportItem {
                at_ms: now,
                discarded: vec![Discarded {
                    reason: reason.to_owned(),
                    category: "error".to_owned(),
                    quantity: delta,
                }],
            });
            super::items::queue(c, rules, &report, now, origin)?;
        }
        Ok(())
    })
}

/// Notes a native crash's details in the `crash` key of the panic event's
/// `extra`; whether the event was found.
pub(crate) fn attach_crash(
    c: &mut dyn Conn,
    uid: &str,
    details: &serde_json::Value,
    attachments: &[crate::event::StoredAttachment],
) -> Result<bool> {
    let set = match c.dialect() {
        Dialect::Sqlite => "json_set(coalesce(extra, '{}'), '$.crash', json(?2))",
        Dialect::Postgres => "jsonb_set(coalesce(extra, '{}'::jsonb), '{crash}', ?2::text::jsonb)",
        Dialect::Mysql => "json_set(coalesce(extra, '{}'), '$.crash', json_extract(?2, '$'))",
    };
    let n = c.execute(
        "linking a crash to its panic",
        &format!("UPDATE events SET extra = {set} WHERE uid = ?1"),
        params![uid, details.to_string()],
    )?;
    if n > 0 {
        // An import tried again (its file still there) replaces, never adds.
        for a in attachments {
            c.execute(
                "replacing a crash's attachment",
                "DELETE FROM attachments WHERE event_uid = ?1 AND name = ?2",
                params![uid, a.name],
            )?;
        }
        super::insert::attachments(c, uid, attachments)?;
    }
    Ok(n > 0)
}
