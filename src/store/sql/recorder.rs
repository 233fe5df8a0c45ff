//! The flight recorder's series written and read once over the shared SQL
//! layer: a run's readings in chunks (`store::recorder` packs them), the
//! run an event was raised in, and the age limit.

use super::backend::SqlReader;
use super::{params, Conn};
use crate::error::Result;
use crate::event::sample::RunSample;
use crate::pipeline::trend::TREND_WINDOW_MS;
use crate::store::recorder::{decode, encode};

/// Stores chunk `chunk` of run `run` as `readings` (oldest first): made on
/// its first reading, rewritten after.
pub(crate) fn put_chunk(
    c: &mut dyn Conn,
    run: i64,
    chunk: u32,
    readings: &[RunSample],
) -> Result<()> {
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return Ok(());
    };
    let data = encode(readings);
    let changed = c.execute(
        "recording the run's readings",
        "UPDATE run_samples SET last_at = ?3, readings = ?4, data = ?5
         WHERE run_id = ?1 AND chunk = ?2",
        params![run, chunk, last.at_ms, readings.len(), data[..]],
    )?;
    if changed == 0 {
        c.execute(
            "recording the run's readings",
            "INSERT INTO run_samples (run_id, chunk, first_at, last_at, readings, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                run,
                chunk,
                first.at_ms,
                last.at_ms,
                readings.len(),
                data[..]
            ],
        )?;
    }
    Ok(())
}

/// Adds readings a run left in its crash file after those stored (each
/// newer than the newest stored one), as chunks of their own. How many
/// were added.
pub(crate) fn append(c: &mut dyn Conn, run: i64, readings: &[RunSample]) -> Result<usize> {
    let (last, next): (Option<i64>, Option<i64>) = c
        .query_opt(
            "reading the run's readings",
            "SELECT max(last_at), max(chunk) FROM run_samples WHERE run_id = ?1",
            params![run],
        )?
        .map(|r| Ok::<_, crate::error::Error>((r.get(0)?, r.get(1)?)))
        .transpose()?
        .unwrap_or((None, None));
    let mut newer: Vec<RunSample> = readings
        .iter()
        .filter(|s| last.is_none_or(|l| s.at_ms > l))
        .cloned()
        .collect();
    newer.sort_by_key(|s| s.at_ms);
    let first = next.map_or(0, |n| n + 1);
    for (chunk, part) in (first..).zip(newer.chunks(crate::store::recorder::CHUNK)) {
        put_chunk(c, run, u32::try_from(chunk).unwrap_or(u32::MAX), part)?;
    }
    Ok(newer.len())
}

/// Drops the chunks whose newest reading is older than `before_ms`; how
/// many.
pub(crate) fn drop_before(c: &mut dyn Conn, before_ms: i64) -> Result<u64> {
    c.execute(
        "dropping old readings",
        "DELETE FROM run_samples WHERE last_at < ?1",
        params![before_ms],
    )
}

/// Run `run`'s readings taken from `since` to `until` (ms), oldest first
/// (a database without the recorder's table has none).
pub(crate) fn samples<R: SqlReader + ?Sized>(
    r: &R,
    run: i64,
    since: i64,
    until: i64,
) -> Result<Vec<RunSample>> {
    if r.column("run_samples", "data") == "NULL" {
        return Ok(Vec::new());
    }
    samples_in(&mut *r.conn(), run, since, until)
}

fn samples_in(c: &mut dyn Conn, run: i64, since: i64, until: i64) -> Result<Vec<RunSample>> {
    let chunks: Vec<Vec<u8>> = c.map(
        "reading the run's readings",
        "SELECT data FROM run_samples
         WHERE run_id = ?1 AND last_at >= ?2 AND first_at <= ?3 ORDER BY chunk",
        params![run, since, until],
        |row| row.get(0),
    )?;
    let mut out: Vec<RunSample> = chunks
        .iter()
        .flat_map(|d| decode(d))
        .filter(|s| s.at_ms >= since && s.at_ms <= until)
        .collect();
    out.sort_by_key(|s| s.at_ms);
    out.dedup_by_key(|s| s.at_ms);
    Ok(out)
}

/// The run process `pid` on host `host` was at `at_ms` (the newest one
/// started by then).
pub(crate) fn run_at(
    c: &mut dyn Conn,
    host: Option<i64>,
    pid: u32,
    at_ms: i64,
) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT id FROM runs WHERE {} AND pid = ?2 AND started_at <= ?3
         ORDER BY started_at DESC, id DESC LIMIT 1",
        c.dialect().same("host_id", "?1")
    );
    c.query_opt("finding the event's run", &sql, params![host, pid, at_ms])?
        .map(|row| row.get(0))
        .transpose()
}

/// The run of process `pid` on host `host` at `at_ms`, and its readings of
/// the [`TREND_WINDOW_MS`] before (and up to) that moment.
pub(crate) fn before(
    c: &mut dyn Conn,
    host: Option<i64>,
    pid: u32,
    at_ms: i64,
) -> Result<Option<(i64, Vec<RunSample>)>> {
    let Some(run) = run_at(c, host, pid, at_ms)? else {
        return Ok(None);
    };
    // The reading the heartbeat took just after the event belongs to it.
    let readings = samples_in(c, run, at_ms - TREND_WINDOW_MS, at_ms + 1_000)?;
    Ok(Some((run, readings)))
}
