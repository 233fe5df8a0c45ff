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

/// Locks the rows of the groups `ids` (in fingerprint order, as a batch
/// does), for the rest of the transaction.
pub(crate) fn lock(c: &mut dyn Conn, ids: &[i64]) -> Result<()> {
    lock_groups(c, ids).map(drop)
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
        let args = [params![from.clone()][0].clone(), Value::Int(into)];
        // The groups merged into those merged now follow them; the merged
        // point at `into`, their counts go to it; their events move, each
        // naming its own group.
        let mut events = 0;
        for (set, column) in [
            ("event_groups SET merged_into = ?2", "merged_into"),
            ("event_groups SET merged_into = ?2, count = 0", "id"),
            (
                "events SET home_id = coalesce(home_id, group_id), group_id = ?2",
                "group_id",
            ),
        ] {
            let sql = format!("UPDATE {set} WHERE {}", d.any(column, 1));
            events = c.execute(doing, &sql, &args)?;
        }
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

/// Whether the database keeps each group's hosts in a table (a fleet's
/// does; a file has one host, read from its events).
fn has_group_hosts(d: Dialect) -> bool {
    d != Dialect::Sqlite
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
    if has_group_hosts(d) {
        add_rows(
            c,
            "group_hosts",
            HOSTS,
            &format!("SELECT DISTINCT {g} AS gid, host_id AS hid FROM group_hosts WHERE {of}"),
            &d.upsert("group_hosts", "group_id, host_id", "", false),
            &args,
        )?;
    }
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

/// Stored events moving from one group to another: `which` is a condition
/// on `events e` besides its group, its parameters from `?3` on.
pub(crate) struct Transfer<'a> {
    pub(crate) from: i64,
    pub(crate) to: i64,
    /// The group of the events' own fingerprint when `to` is not it
    /// (`to` took it by a merge).
    pub(crate) home: Option<i64>,
    pub(crate) which: &'a str,
    pub(crate) args: Vec<Value>,
}

/// Moves stored events between two groups whose rows the caller has
/// locked, with their counts: the group's count, hourly counts, values and
/// hosts taken from one and given to the other, the first and last events
/// of each kept ones it has. Returns how many moved.
// Long by design: the moved events' counts are read and moved before the
// events themselves, each summary table in turn, then both groups' rows.
pub(crate) fn transfer(c: &mut dyn Conn, t: &Transfer<'_>) -> Result<u64> {
    let doing = "moving events between groups";
    let d = c.dialect();
    // Every statement names `?2` (PostgreSQL types each parameter by
    // where it is used).
    let to = d.cast_int("?2");
    let mine = format!("e.group_id = ?1 AND {to} = {to} AND {}", t.which);
    let mut args = vec![Value::Int(t.from), Value::Int(t.to)];
    args.extend(t.args.iter().cloned());
    // A group id of the store's own, not a value from outside.
    let home = t.home.map_or("NULL".to_owned(), |h| h.to_string());
    let stats = c
        .query(
            doing,
            &format!("SELECT count(*), max(e.level) FROM events e WHERE {mine}"),
            &args,
        )?
        .into_iter()
        .next()
        .unwrap_or_default();
    let (n, level): (i64, Option<i64>) = (stats.get(0)?, stats.get(1)?);
    if n == 0 {
        return Ok(0);
    }
    let end =
        |c: &mut dyn Conn, cond: &str, a: &[Value], order: &str| -> Result<Option<(i64, String)>> {
            c.query_opt(
                doing,
                &format!(
                    "SELECT e.ts, e.uid FROM events e WHERE {cond}
                 ORDER BY e.ts {order}, e.id {order} LIMIT 1"
                ),
                a,
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        };
    let first = end(c, &mine, &args, "ASC")?;
    let last = end(c, &mine, &args, "DESC")?;
    let hour = d.int_div("e.ts", &HOUR_MS.to_string());
    let g = d.cast_int("?2");
    c.execute(
        doing,
        &format!(
            "UPDATE group_hours SET count = count - (SELECT count(*) FROM events e
                 WHERE {mine} AND {hour} = group_hours.hour)
             WHERE group_id = ?1"
        ),
        &args,
    )?;
    add_rows(
        c,
        "group_hours",
        HOURS,
        &format!(
            "SELECT {g} AS gid, {hour} AS hr, count(*) AS n FROM events e
             WHERE {mine} GROUP BY {hour}"
        ),
        &hours_upsert(d),
        &args,
    )?;
    for (key, expr, join) in VALUE_SOURCES {
        c.execute(
            doing,
            &format!(
                "UPDATE group_values SET count = count - (SELECT count(*) FROM events e {join}
                     WHERE {mine} AND {expr} = group_values.value)
                 WHERE group_id = ?1 AND \"key\" = '{key}'"
            ),
            &args,
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
            &args,
        )?;
    }
    for table in ["group_hours", "group_values"] {
        c.execute(
            doing,
            &format!("DELETE FROM {table} WHERE group_id = ?1 AND count <= 0"),
            params![t.from],
        )?;
    }
    if has_group_hosts(d) {
        add_rows(
            c,
            "group_hosts",
            HOSTS,
            &format!(
                "SELECT DISTINCT {g} AS gid, e.host_id AS hid FROM events e
                 WHERE {mine} AND e.host_id IS NOT NULL"
            ),
            &d.upsert("group_hosts", "group_id, host_id", "", false),
            &args,
        )?;
    }
    // The events.
    let which = t.which;
    let moved = c.execute(
        doing,
        &format!(
            "UPDATE events AS e SET group_id = ?2, home_id = {home}
             WHERE e.group_id = ?1 AND {which}"
        ),
        &args,
    )?;
    // The group that took them: counted, its ends widened.
    let (first, last) = (first.unwrap_or_default(), last.unwrap_or_default());
    c.execute(
        doing,
        &format!(
            "UPDATE event_groups SET count = count + ?2, level = {},
                 first_event_uid = CASE WHEN ?3 < first_seen THEN ?4 ELSE first_event_uid END,
                 first_seen = {},
                 last_event_uid = CASE WHEN ?5 >= last_seen THEN ?6 ELSE last_event_uid END,
                 last_seen = {}
             WHERE id = ?1",
            d.greatest("level", "?7"),
            d.least("first_seen", "?3"),
            d.greatest("last_seen", "?5"),
        ),
        params![
            t.to,
            n,
            first.0,
            first.1,
            last.0,
            last.1,
            level.unwrap_or(0)
        ],
    )?;
    // The group they left: its count less them, its ends ones it has.
    c.execute(
        doing,
        "UPDATE event_groups SET count = count - ?2 WHERE id = ?1",
        params![t.from, n],
    )?;
    let ends: Option<(String, String)> = c
        .query_opt(
            doing,
            "SELECT first_event_uid, last_event_uid FROM event_groups WHERE id = ?1",
            params![t.from],
        )?
        .map(|r| Ok::<_, Error>((r.get(0)?, r.get(1)?)))
        .transpose()?;
    let gone = |c: &mut dyn Conn, uid: &str| -> Result<bool> {
        c.one(
            doing,
            "SELECT EXISTS (SELECT 1 FROM events WHERE uid = ?1 AND group_id = ?2)",
            params![uid, t.to],
        )
    };
    if let Some((first_uid, last_uid)) = ends {
        let here = "e.group_id = ?1";
        if gone(c, &first_uid)? {
            if let Some((ts, uid)) = end(c, here, params![t.from], "ASC")? {
                c.execute(
                    doing,
                    "UPDATE event_groups SET first_seen = ?2, first_event_uid = ?3 WHERE id = ?1",
                    params![t.from, ts, uid],
                )?;
            }
        }
        if gone(c, &last_uid)? {
            if let Some((ts, uid)) = end(c, here, params![t.from], "DESC")? {
                c.execute(
                    doing,
                    "UPDATE event_groups SET last_seen = ?2, last_event_uid = ?3 WHERE id = ?1",
                    params![t.from, ts, uid],
                )?;
            }
        }
    }
    Ok(moved)
}

/// Takes the merged group `group` back out of the group it was merged
/// into, with its events; see the module's description.
///
/// # Errors
/// No such group, or one that is not merged; the store failed.
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
        if rows
            .iter()
            .find(|r| r.id == group)
            .and_then(|r| r.merged_into)
            != Some(into)
        {
            return Err(refused(format!(
                "unmerging: group {group} changed meanwhile; try again"
            )));
        }
        c.execute(
            doing,
            "UPDATE event_groups SET merged_into = NULL WHERE id = ?1",
            params![group],
        )?;
        let events = transfer(
            c,
            &Transfer {
                from: into,
                to: group,
                home: None,
                which: "e.home_id = ?3",
                args: params![group].to_vec(),
            },
        )?;
        // Groups merged into it before it was merged themselves followed
        // it then, and stay where they are: each is unmerged on its own.
        Ok(MergeReport {
            into,
            groups: vec![group],
            events,
        })
    })
}
