//! Listing groups and events: the filters of [`GroupQuery`] and
//! [`EventFilter`] built once, in the shared SQL, for every backend.

use super::backend::SqlReader;
use super::rows::{self, event_row, group_row, json, EVENT_COLUMNS};
use super::{params, Conn, ToValue, Value};
use crate::error::Result;
use crate::level::Level;
use crate::store::read::*;
use crate::store::summary::HOUR_MS;

/// A statement's text and its parameters, built condition by condition.
#[derive(Default)]
pub(crate) struct Built {
    pub(crate) sql: String,
    pub(crate) args: Vec<Value>,
}

impl Built {
    /// The next parameter's placeholder, for `v`.
    fn arg(&mut self, v: impl ToValue) -> String {
        self.args.push(v.to_value());
        format!("?{}", self.args.len())
    }

    /// Appends `cond`, its `?` standing for `v` (every `?` the same one).
    fn cond(&mut self, cond: &str, v: impl ToValue) {
        let p = self.arg(v);
        self.sql.push_str(&cond.replace('?', &p));
    }
}

/// A group's status as [`GroupStatus`] names it (`next`: the
/// `resolved_next` column, or `NULL` where the database has none).
pub(crate) fn status_expr(next: &str) -> String {
    format!("CASE WHEN g.status = 'resolved' AND {next} THEN 'resolved-next' ELSE g.status END")
}

/// Lists groups.
// Long by design: one statement built condition by condition, one block per
// filter of `GroupQuery` in the order they are appended, then the order and
// the limit; the columns an older database may lack are looked up first.
pub(crate) fn groups<R: SqlReader + ?Sized>(r: &R, q: &GroupQuery) -> Result<Vec<GroupRow>> {
    // A database no writer has migrated yet may lack the summaries and
    // release columns: a filter on them selects nothing.
    let next = r.column("event_groups", "resolved_next");
    let summaries = next != "NULL";
    let first_release = r.column("event_groups", "first_release");
    let values_asked = q.release.is_some() || q.environment.is_some() || q.host.is_some();
    if !summaries && (values_asked || q.status == Some(GroupStatus::ResolvedInNextRelease)) {
        return Ok(Vec::new());
    }
    let regressed = [
        r.column("event_groups", "regressed_in"),
        r.column("event_groups", "regressed_at"),
    ];
    let merged_into = r.column("event_groups", "merged_into");
    let merges = merged_into != "NULL";
    if q.merged_into.is_some() && !merges {
        return Ok(Vec::new());
    }
    // Columns are looked up before the connection is taken: a backend may
    // answer them on the same connection.
    let mut c = r.conn();
    let d = c.dialect();
    let mut b = Built {
        sql: format!(
            "SELECT {} FROM event_groups g JOIN loggers l ON l.id = g.logger_id WHERE 1 = 1",
            rows::group_columns(
                &status_expr(&next),
                &first_release,
                [&regressed[0], &regressed[1]],
                &merged_into,
            )
        ),
        ..Built::default()
    };
    if !q.ids.is_empty() {
        let p = b.args.len() + 1;
        b.sql.push_str(&format!(" AND {}", d.any("g.id", p)));
        b.args.push(q.ids.to_value());
    }
    match q.merged_into {
        Some(into) => b.cond(" AND g.merged_into = ?", into),
        // A merged group is listed only when asked for by id.
        None if merges && q.ids.is_empty() => b.sql.push_str(" AND g.merged_into IS NULL"),
        None => {}
    }
    if let Some(rel) = &q.new_in {
        b.cond(&format!(" AND {first_release} = ?"), rel);
    }
    if let Some(l) = &q.logger {
        b.cond(" AND l.name = ?", l);
    }
    match q.status {
        None => {}
        Some(GroupStatus::ResolvedInNextRelease) => {
            b.sql
                .push_str(&format!(" AND g.status = 'resolved' AND {next}"));
        }
        Some(s) => b.cond(" AND g.status = ?", s.stored()),
    }
    if let Some(l) = q.min_level {
        b.cond(" AND g.level >= ?", l.as_i64());
    }
    for (key, value) in [
        ("release", &q.release),
        ("environment", &q.environment),
        ("host", &q.host),
    ] {
        if let Some(value) = value {
            b.cond(
                &format!(
                    " AND g.id IN (SELECT group_id FROM group_values WHERE \"key\" = '{key}' AND value = ?)"
                ),
                value,
            );
        }
    }
    if let Some(since) = q.since {
        b.cond(" AND g.last_seen >= ?", since);
    }
    if let Some(until) = q.until {
        b.cond(" AND g.first_seen < ?", until);
    }
    if summaries && (q.since.is_some() || q.until.is_some()) {
        // An occurrence in the range, to the hour.
        let from = b.arg(q.since.map_or(i64::MIN, |t| t.div_euclid(HOUR_MS)));
        let to = b.arg(q.until.map_or(i64::MAX, |t| (t - 1).div_euclid(HOUR_MS)));
        b.sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM group_hours h WHERE h.group_id = g.id
                 AND h.hour BETWEEN {from} AND {to})"
        ));
    }
    b.sql.push_str(match q.order {
        GroupOrder::LastSeen => " ORDER BY g.last_seen DESC, g.id DESC",
        GroupOrder::Count => " ORDER BY g.count DESC, g.last_seen DESC",
        GroupOrder::FirstSeen => " ORDER BY g.first_seen DESC, g.id DESC",
    });
    limit(&mut b.sql, q.limit, q.offset);
    c.map("listing groups", &b.sql, &b.args, group_row)
}

/// ` LIMIT n OFFSET m` (0: no limit, no offset).
fn limit(sql: &mut String, limit: usize, offset: usize) {
    if limit > 0 || offset > 0 {
        let n = if limit == 0 { i64::MAX } else { limit as i64 };
        sql.push_str(&format!(" LIMIT {n} OFFSET {offset}"));
    }
}

/// Occurrences of a group in `buckets` equal slices of `[since, until)`.
pub(crate) fn histogram(
    c: &mut dyn Conn,
    group: i64,
    since: i64,
    until: i64,
    buckets: usize,
) -> Result<Vec<u64>> {
    let buckets = buckets.max(1);
    let width = ((until - since) / buckets as i64).max(1);
    let mut out = vec![0u64; buckets];
    let bucket = c.dialect().int_div("(ts - ?2)", "?4");
    for r in c.query(
        "counting occurrences",
        &format!(
            "SELECT {bucket}, count(*) FROM events
             WHERE group_id = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY 1"
        ),
        params![group, since, until, width],
    )? {
        let (b, n): (i64, u64) = (r.get(0)?, r.get(1)?);
        if let Some(slot) = usize::try_from(b).ok().and_then(|b| out.get_mut(b)) {
            *slot += n;
        }
    }
    Ok(out)
}

/// The events a filter selects, in its order and up to its limit.
pub(crate) fn event_query(c: &dyn Conn, f: &EventFilter) -> Built {
    let d = c.dialect();
    let mut b = Built {
        sql: format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN loggers l ON l.id = e.logger_id WHERE 1 = 1"
        ),
        ..Built::default()
    };
    if let Some(g) = f.group {
        b.cond(" AND e.group_id = ?", g);
    }
    if let Some(l) = &f.logger {
        b.cond(" AND l.name = ?", l);
    }
    if let Some(l) = f.min_level {
        b.cond(" AND e.level >= ?", l.as_i64());
    }
    if let Some(t) = f.since {
        b.cond(" AND e.ts >= ?", t);
    }
    if let Some(t) = f.until {
        b.cond(" AND e.ts < ?", t);
    }
    if let Some(g) = &f.grep {
        let p = b.arg(g);
        b.sql
            .push_str(&format!(" AND {}", d.contains_ci("e.message", &p)));
    }
    if let Some((file, line)) = &f.file {
        // An exact path, or any path ending in "/<file>".
        b.cond(" AND (e.file = ?", file);
        b.cond(" OR e.file LIKE ? ESCAPE '\\')", like_suffix(file));
        if let Some(line) = line {
            b.cond(" AND e.line = ?", i64::from(*line));
        }
    }
    if let Some(r) = f.after_row {
        b.cond(" AND e.id > ?", r);
    }
    if let Some(r) = f.before_row {
        b.cond(" AND e.id < ?", r);
    }
    b.sql.push_str(if f.newest_first {
        " ORDER BY e.id DESC"
    } else {
        " ORDER BY e.id"
    });
    limit(&mut b.sql, f.limit, 0);
    b
}

/// `%/<file>` with LIKE's wildcards in `file` escaped.
fn like_suffix(file: &str) -> String {
    let mut out = String::from("%/");
    for c in file.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Calls `each` for every event the filter selects, as they come.
pub(crate) fn for_each_event(
    c: &mut dyn Conn,
    f: &EventFilter,
    each: &mut dyn FnMut(EventRow) -> bool,
) -> Result<()> {
    let b = event_query(c, f);
    c.each("listing events", &b.sql, &b.args, &mut |r| {
        Ok(each(event_row(&r)?))
    })
}

/// Counts the events a filter selects (up to its limit).
pub(crate) fn count_events(c: &mut dyn Conn, f: &EventFilter) -> Result<u64> {
    let b = event_query(c, f);
    c.one(
        "counting events",
        &format!("SELECT count(*) FROM ({}) sel", b.sql),
        &b.args,
    )
}

/// Calls `each` for every event the filter selects, in full export form,
/// oldest first (the filter's order and limit apply).
pub(crate) fn for_each_export(
    c: &mut dyn Conn,
    f: &EventFilter,
    each: &mut dyn FnMut(ExportRow) -> bool,
) -> Result<()> {
    let b = event_query(c, f);
    let sql = format!(
        "SELECT e.uid, e.ts, l.name, e.level, e.kind, e.message, e.error_type, e.error_chain,
                e.file, e.line, e.col, e.thread_name, e.thread_id, e.pid, e.app_name,
                e.\"release\", e.environment, e.group_id, g.fingerprint, e.tags, e.extra,
                e.breadcrumbs, e.redactions, s.proc_cpu_percent, s.proc_rss_bytes, h.hostname
         FROM ({}) sel
         JOIN events e ON e.id = sel.id
         JOIN loggers l ON l.id = e.logger_id
         JOIN event_groups g ON g.id = e.group_id
         LEFT JOIN snapshots s ON s.id = e.snapshot_id
         LEFT JOIN hosts h ON h.id = e.host_id
         ORDER BY e.id",
        b.sql
    );
    let empty_list = || serde_json::Value::Array(Vec::new());
    let empty_map = || serde_json::Value::Object(Default::default());
    c.each("exporting events", &sql, &b.args, &mut |r| {
        let ts: i64 = r.get(1)?;
        Ok(each(ExportRow {
            id: r.get(0)?,
            time: crate::util::time::rfc3339(ts),
            ts,
            logger: r.get(2)?,
            level: Level::from_i64(r.get(3)?).map_or("?".into(), |l| l.to_string()),
            kind: r.get(4)?,
            message: r.get(5)?,
            error_type: r.get(6)?,
            error_chain: json(&r, 7)?.unwrap_or_else(empty_list),
            file: r.get(8)?,
            line: r.get(9)?,
            column: r.get(10)?,
            thread: r.get(11)?,
            thread_id: r.get(12)?,
            pid: r.get(13)?,
            app_name: r.get(14)?,
            release: r.get(15)?,
            environment: r.get(16)?,
            group: r.get(17)?,
            fingerprint: r.get(18)?,
            tags: json(&r, 19)?.unwrap_or_else(empty_map),
            extra: json(&r, 20)?.unwrap_or_else(empty_map),
            breadcrumbs: json(&r, 21)?.unwrap_or_else(empty_list),
            redactions: r.get(22)?,
            cpu_percent: r.get(23)?,
            rss_bytes: r.get(24)?,
            host: r.get(25)?,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_file_name_are_escaped() {
        assert_eq!(like_suffix("a_b%c\\d.rs"), "%/a\\_b\\%c\\\\d.rs");
    }

    #[test]
    fn every_question_mark_of_a_condition_is_its_one_parameter() {
        let mut b = Built::default();
        b.cond(" AND x = ?", 1i64);
        b.cond(" AND (y = ? OR z = ?)", "v");
        assert_eq!(b.sql, " AND x = ?1 AND (y = ?2 OR z = ?2)");
        assert_eq!(b.args, [Value::Int(1), Value::Text("v".into())]);
        let mut s = String::new();
        limit(&mut s, 0, 5);
        assert_eq!(s, format!(" LIMIT {} OFFSET 5", i64::MAX));
        let mut s = String::new();
        limit(&mut s, 0, 0);
        assert_eq!(s, "");
    }
}
