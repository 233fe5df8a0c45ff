//! The small writes every store makes the same way: its host, a counter,
//! a crash linked to the panic it ended.

use super::{params, Conn, Dialect};
use crate::error::Result;
use crate::event::HostInfo;
use crate::pipeline::fingerprint::StableHasher;

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
    c.one(
        "recording the host description",
        "INSERT INTO hosts (key, hostname, os_name, os_version, kernel_version, arch,
             cpu_brand, cpu_count, physical_cores, cpu_frequency_mhz, total_memory,
             total_swap, boot_time, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)
         ON CONFLICT (key) DO UPDATE SET last_seen = excluded.last_seen
         RETURNING id",
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

/// Adds `delta` to a named counter (e.g. `dropped_events`).
pub(crate) fn add_counter(c: &mut dyn Conn, name: &str, delta: u64) -> Result<()> {
    c.execute(
        "updating a counter",
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
        params![name, delta],
    )?;
    Ok(())
}

/// Notes a native crash's details in the `crash` key of the panic event's
/// `extra`; whether the event was found.
pub(crate) fn attach_crash(
    c: &mut dyn Conn,
    uid: &str,
    details: &serde_json::Value,
) -> Result<bool> {
    let set = match c.dialect() {
        Dialect::Sqlite => "json_set(coalesce(extra, '{}'), '$.crash', json(?2))",
        Dialect::Postgres => "jsonb_set(coalesce(extra, '{}'::jsonb), '{crash}', ?2::text::jsonb)",
    };
    let n = c.execute(
        "linking a crash to its panic",
        &format!("UPDATE events SET extra = {set} WHERE uid = ?1"),
        params![uid, details.to_string()],
    )?;
    Ok(n > 0)
}
