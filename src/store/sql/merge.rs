//! Merging groups and taking one back out, once for every backend.
//!
//! A merge keeps the merged groups' rows, pointed at the group that took
//! them (`merged_into`): their fingerprints' future events go there (see
//! `sql::grouping`). Their events move, each naming the group it came from
//! (`events.home_id`); their counts, hourly counts, values and hosts are
//! added to the group's. Search texts stay where they are and are read as
//! the group's. An unmerge moves the events of one merged group back and
//! takes their counts with them (counted from the events still stored: an
//! occurrence that retention already deleted stays counted in the group
//! that took it); the fingerprint then groups apart again.
//!
//! Both lock the groups' rows (in fingerprint order, as a batch does), so
//! a writer's batch of the same groups waits, or finds the change once it
//! holds them and is written again (`sql::grouping::check_merges`): no
//! occurrence is lost or counted twice.

use super::{params, Conn, Dialect, Lock, Value};
use crate::error::{Error, ErrorKind, Result};
use crate::store::read::MergeReport;
use crate::store::summary::HOUR_MS;

fn refused(context: String) -> Error {
    Error::new(ErrorKind::Storage { context })
}

/// The locked rows of `ids`: id, merged into, count, first and last seen,
/// level, first and last event, first release.
struct Locked {
    id: i64,
    merged_into: Option<i64>,
    count: i64,
    first_seen: i64,
    last_seen: i64,
    level: i64,
    first_uid: String,
    last_uid: String,
    first_release: Option<String>,
}

fn lock_groups(c: &mut dyn Conn, ids: &[i64]) -> Result<Vec<Locked>> {
    let d = c.dialect();
    let sql = format!(
        "SELECT id, merged_into, count, first_seen, last_seen, level, first_event_uid,
                last_event_uid, first_release
         FROM event_groups WHERE {} ORDER BY fingerprint{}",
        d.any("id", 1),
        d.lock(Lock::Update)
    );
    c.map("locking groups", &sql, params![ids.to_vec()], |r| {
        Ok(Locked {
            id: r.get(0)?,
            merged_into: r.get(1)?,
            count: r.get(2)?,
            first_seen: r.get(3)?,
            last_seen: r.get(4)?,
            level: r.get(5)?,
            first_uid: r.get(6)?,
            last_uid: r.get(7)?,
            first_release: r.get(8)?,
        })
    })
}

/// Merges the groups `from` into `into`, in one transaction; see the
/// module's description.
///
/// # Errors
/// A group that does not exist or is merged itself (the error says into
/// which), `into` among `from`, or the store failed.
// Long by design: one transaction, its steps in the order they must run
// (rows locked and checked, pointers, events, the group's counts, then
// each summary table), so a reader never sees half a merge.
pub(crate) fn merge(c: &mut dyn Conn, into: i64, from: &[i64]) -> Result<MergeReport> {
    let mut from: Vec<i64> = from.to_vec();
    from.sort_unstable();
    from.dedup();
    if from.is_empty() {
        return Err(refused("merging: name the groups to merge".into()));
    }
    if from.contains(&into) {
        return Err(refused(format!(
            "merging: group {into} cannot be merged into itself"
        )));
    }
    c.in_transaction("merging groups", |c| {
        let doing = "merging groups";
        let mut ids = from.clone();
        ids.push(into);
        let rows = lock_groups(c, &ids)?;
        for id in &ids {
            match rows.iter().find(|r| r.id == *id) {
                None => return Err(refused(format!("merging: no group {id}"))),
                Some(Locked {
                    merged_into: Some(m),
                    ..
                }) => {
                    return Err(refused(format!(
                        "merging: group {id} is merged into group {m} already \
                         (merge group {m}, or unmerge {id} first)"
                    )))
                }
                Some(_) => {}
            }
        }
        let d = c.dialect();
        let list = params![from.clone()];
        // The groups merged into those merged now follow them.
        c.execute(
            doing,
            &format!(
                "UPDATE event_groups SET merged_into = ?2 WHERE {}",
                d.any("merged_into", 1)
            ),
            &[list[0].clone(), Value::Int(into)],
        )?;
        c.execute(
            doing,
            &format!(
                "UPDATE event_groups SET merged_into = ?2, count = 0 WHERE {}",
                d.any("id", 1)
            ),
            &[list[0].clone(), Value::Int(into)],
        )?;
        let events = c.execute(
            doing,
            &format!(
                "UPDATE events SET home_id = coalesce(home_id, group_id), group_id = ?2
                 WHERE {}",
                d.any("group_id", 1)
            ),
            &[list[0].clone(), Value::Int(into)],
        )?;
        // The group's row: counts added, the first and last of all.
        let mut all: Vec<&Locked> = rows.iter().collect();
        all.sort_by_key(|r| r.first_seen);
        let first = all[0];
        let last = all
            .iter()
            .max_by_key(|r| r.last_seen)
            .copied()
            .unwrap_or(first);
        let count: i64 = rows.iter().map(|r| r.count).sum();
        let level = rows.iter().map(|r| r.level).max().unwrap_or(0);
        c.execute(
            doing,
            "UPDATE event_groups SET count = ?2, level = ?3, first_seen = ?4, last_seen = ?5,
                 first_event_uid = ?6, last_event_uid = ?7, first_release = ?8
             WHERE id = ?1",
            params![
                into,
                count,
                level,
                first.first_seen,
                last.last_seen,
                first.first_uid,
                last.last_uid,
                first.first_release
            ],
        )?;
        move_summaries(c, &from, into)?;
        Ok(MergeReport {
            into,
            groups: from.clone(),
            events,
        })
    })
}

/// `INSERT INTO table (columns)` the rows of `select`, added to those
/// there (`upsert`). The rows come through a derived table whose columns
/// are named apart from the table's: MySQL would find a column of the
/// update clause ambiguous, and SQLite needs the `WHERE` before an upsert.
fn add_rows(
    c: &mut dyn Conn,
    table: &str,
    columns: &str,
    select: &str,
    upsert: &str,
    args: &[Value],
) -> Result<u64> {
    c.execute(
        "adding up groups' summaries",
        &format!(
            "INSERT INTO {table} ({columns}) SELECT * FROM ({select}) AS src WHERE 1 = 1 {upsert}"
        ),
        args,
    )
}

/// The upsert adding hourly counts to a group's.
fn hours_upsert(d: Dialect) -> String {
    d.upsert(
        "group_hours",
        "group_id, hour",
        "count = group_hours.count + excluded.count",
        false,
    )
}

const HOURS: &str = "group_id, hour, count";
const VALUES: &str = "group_id, \"key\", value, count, first_seen, last_seen";
const HOSTS: &str = "group_id, host_id";

/// The merged groups' hourly counts, values and hosts added to `into`'s.
fn move_summaries(c: &mut dyn Conn, from: &[i64], into: i64) -> Result<()> {
    let doing = "merging groups' summaries";
    let d = c.dialect();
    let list = params![from.to_vec()][0].clone();
    let args = [list.clone(), Value::Int(into)];
    let g = d.cast_int("?2");
    let of = d.any("group_id", 1);
    add_rows(
        c,
        "group_hours",
        HOURS,
        &format!("SELECT {g} AS gid, hour AS hr, sum(count) AS n FROM group_hours WHERE {of} GROUP BY hour"),
        &hours_upsert(d),
        &args,
    )?;
    add_rows(
        c,
        "group_values",
        VALUES,
        &format!(
            "SELECT {g} AS gid, \"key\" AS k, value AS v, sum(count) AS n,
                 min(first_seen) AS f, max(last_seen) AS l
             FROM group_values WHERE {of} GROUP BY \"key\", value"
        ),
        &values_upsert(d),
        &args,
    )?;
    add_rows(
        c,
        "group_hosts",
        HOSTS,
        &format!("SELECT DISTINCT {g} AS gid, host_id AS hid FROM group_hosts WHERE {of}"),
        &d.upsert("group_hosts", "group_id, host_id", "", false),
        &args,
    )?;
    for table in ["group_hours", "group_values"] {
        c.execute(
            doing,
            &format!("DELETE FROM {table} WHERE {}", d.any("group_id", 1)),
            std::slice::from_ref(&list),
        )?;
    }
    Ok(())
}

/// The upsert adding one group's values to another's.
fn values_upsert(d: Dialect) -> String {
    d.upsert(
        "group_values",
        "group_id, \"key\", value",
        &format!(
            "count = group_values.count + excluded.count, first_seen = {}, last_seen = {}",
            d.least("group_values.first_seen", "excluded.first_seen"),
            d.greatest("group_values.last_seen", "excluded.last_seen"),
        ),
        false,
    )
}

/// Where each kind of value of an event comes from (`e`: the event, `h`:
/// its host), as the writer's summary counts them.
const VALUE_SOURCES: [(&str, &str, &str); 3] = [
    ("release", "e.\"release\"", ""),
    ("environment", "e.environment", ""),
    ("host", "h.hostname", "JOIN hosts h ON h.id = e.host_id"),
];

/// Takes the merged group `group` back out of the group it was merged
/// into, with its events; see the module's description.
///
/// # Errors
/// No such group, or one that is not merged; the store failed.
// Long by design: one transaction, its steps in the order they must run
// (the moved events' counts read before they move, then the rows).
pub(crate) fn unmerge(c: &mut dyn Conn, group: i64) -> Result<MergeReport> {
    c.in_transaction("unmerging a group", |c| {
        let doing = "unmerging a group";
        let into: Option<Option<i64>> = c
            .query_opt(
                doing,
                "SELECT merged_into FROM event_groups WHERE id = ?1",
                params![group],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        let into = match into {
            None => return Err(refused(format!("unmerging: no group {group}"))),
            Some(None) => {
                return Err(refused(format!(
                    "unmerging: group {group} is not merged into another"
                )))
            }
            Some(Some(into)) => into,
        };
        let rows = lock_groups(c, &[group, into])?;
        // Changed before the lock was had: said, not guessed.
        if rows.iter().find(|r| r.id == group).and_then(|r| r.merged_into) != Some(into) {
            return Err(refused(format!(
                "unmerging: group {group} changed meanwhile; try again"
            )));
        }
        let d = c.dialect();
        let mine = "e.group_id = ?1 AND e.home_id = ?2";
        // What moves, counted first.
        let (n, first, last, level): (i64, Option<i64>, Option<i64>, Option<i64>) = {
            let r = c
                .query(
                    doing,
                    &format!(
                        "SELECT count(*), min(e.ts), max(e.ts), max(e.level) FROM events e
                         WHERE {mine}"
                    ),
                    params![into, group],
                )?
                .into_iter()
                .next()
                .unwrap_or_default();
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)
        };
        let hour = d.int_div("e.ts", &HOUR_MS.to_string());
        // The group's hourly counts and values: the moved events' taken
        // out of the one it was merged into, given back to its own.
        c.execute(
            doing,
            &format!(
                "UPDATE group_hours SET count = count - (SELECT count(*) FROM events e
                     WHERE {mine} AND {hour} = group_hours.hour)
                 WHERE group_id = ?1"
            ),
            params![into, group],
        )?;
        let g = d.cast_int("?2");
        add_rows(
            c,
            "group_hours",
            HOURS,
            &format!(
                "SELECT {g} AS gid, {hour} AS hr, count(*) AS n FROM events e
                 WHERE {mine} GROUP BY {hour}"
            ),
            &hours_upsert(d),
            params![into, group],
        )?;
        for (key, expr, join) in VALUE_SOURCES {
            c.execute(
                doing,
                &format!(
                    "UPDATE group_values SET count = count - (SELECT count(*) FROM events e {join}
                         WHERE {mine} AND {expr} = group_values.value)
                     WHERE group_id = ?1 AND \"key\" = '{key}'"
                ),
                params![into, group],
            )?;
            add_rows(
                c,
                "group_values",
                VALUES,
                &format!(
                    "SELECT {g} AS gid, '{key}' AS k, {expr} AS v, count(*) AS n,
                         min(e.ts) AS f, max(e.ts) AS l
                     FROM events e {join}
                     WHERE {mine} AND {expr} IS NOT NULL AND {expr} <> ''
                     GROUP BY {expr}"
                ),
                &values_upsert(d),
                params![into, group],
            )?;
        }
        for table in ["group_hours", "group_values"] {
            c.execute(
                doing,
                &format!("DELETE FROM {table} WHERE group_id = ?1 AND count <= 0"),
                params![into],
            )?;
        }
        add_rows(
            c,
            "group_hosts",
            HOSTS,
            &format!(
                "SELECT DISTINCT {g} AS gid, e.host_id AS hid FROM events e
                 WHERE {mine} AND e.host_id IS NOT NULL"
            ),
            &d.upsert("group_hosts", "group_id, host_id", "", false),
            params![into, group],
        )?;
        // The events, and the groups' rows.
        let events = c.execute(
            doing,
            "UPDATE events SET group_id = ?2, home_id = NULL WHERE group_id = ?1 AND home_id = ?2",
            params![into, group],
        )?;
        let ends = |c: &mut dyn Conn, g: i64, order: &str| -> Result<Option<(i64, String)>> {
            c.query_opt(
                doing,
                &format!("SELECT ts, uid FROM events WHERE group_id = ?1 ORDER BY ts {order}, id {order} LIMIT 1"),
                params![g],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        };
        if n > 0 {
            let first_uid = ends(c, group, "ASC")?.map(|(_, u)| u);
            let last_uid = ends(c, group, "DESC")?.map(|(_, u)| u);
            c.execute(
                doing,
                "UPDATE event_groups SET merged_into = NULL, count = ?2, first_seen = ?3,
                     last_seen = ?4, level = ?5, first_event_uid = coalesce(?6, first_event_uid),
                     last_event_uid = coalesce(?7, last_event_uid)
                 WHERE id = ?1",
                params![group, n, first, last, level, first_uid, last_uid],
            )?;
        } else {
            c.execute(
                doing,
                "UPDATE event_groups SET merged_into = NULL WHERE id = ?1",
                params![group],
            )?;
        }
        // The group it leaves: its count less the moved events, its first
        // and last events ones it still has.
        let left = rows.iter().find(|r| r.id == into);
        let first_moved = match left {
            Some(r) => c.one::<bool>(
                doing,
                "SELECT EXISTS (SELECT 1 FROM events WHERE uid = ?1 AND group_id = ?2)",
                params![r.first_uid, group],
            )?,
            None => false,
        };
        if first_moved {
            if let Some((ts, uid)) = ends(c, into, "ASC")? {
                c.execute(
                    doing,
                    "UPDATE event_groups SET first_seen = ?2, first_event_uid = ?3 WHERE id = ?1",
                    params![into, ts, uid],
                )?;
            }
        }
        let last = ends(c, into, "DESC")?;
        match last {
            Some((ts, uid)) => c.execute(
                doing,
                "UPDATE event_groups SET count = count - ?2, last_seen = ?3, last_event_uid = ?4
                 WHERE id = ?1",
                params![into, n, ts, uid],
            )?,
            None => c.execute(
                doing,
                "UPDATE event_groups SET count = count - ?2 WHERE id = ?1",
                params![into, n],
            )?,
        };
        // Groups merged into it before it was merged themselves followed
        // it then, and stay where they are: each is unmerged on its own.
        Ok(MergeReport {
            into,
            groups: vec![group],
            events,
        })
    })
}
