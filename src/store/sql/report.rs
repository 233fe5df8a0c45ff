//! The reports every backend answers the same way: statistics, runs,
//! releases, hourly counts, the values and samples of a group, search, and
//! how deliveries stand.

use super::backend::SqlReader;
use super::{params, Conn, Dialect};
use crate::error::{Error, Result};
use crate::level::Level;
use crate::store::read::*;
use crate::store::runs::{ReleaseRow, RunRow, RunStatus};
use crate::store::summary::{self, HOUR_MS};

/// The condition of a group not merged into another (every group of a
/// database from before merges).
pub(crate) fn live_groups<R: SqlReader + ?Sized>(r: &R) -> &'static str {
    if r.column("event_groups", "merged_into") == "NULL" {
        "1 = 1"
    } else {
        "merged_into IS NULL"
    }
}

/// Counts by level, logger, day, alert status and counter, the top groups
/// and the sizes.
pub(crate) fn stats<R: SqlReader + ?Sized>(r: &R, top: usize) -> Result<Stats> {
    const DOING: &str = "counting";
    let mut s = Stats::default();
    let live = live_groups(r);
    {
        let mut c = r.conn();
        let day = c.dialect().day_of("ts");
        let level = c.dialect().cast_text("level");
        s.events = c.one(DOING, "SELECT count(*) FROM events", params![])?;
        s.groups = c.one(
            DOING,
            &format!("SELECT count(*) FROM event_groups WHERE {live}"),
            params![],
        )?;
        let mut pairs = |sql: &str| -> Result<Vec<(String, i64)>> {
            c.map(DOING, sql, params![], |r| Ok((r.get(0)?, r.get(1)?)))
        };
        for (l, n) in pairs(&format!(
            "SELECT {level}, count(*) FROM events GROUP BY level"
        ))? {
            let name = l
                .parse::<i64>()
                .ok()
                .and_then(Level::from_i64)
                .map_or(l, |l| l.to_string());
            s.by_level.insert(name, n);
        }
        s.by_logger = pairs(
            "SELECT l.name, count(e.id) FROM loggers l LEFT JOIN events e ON e.logger_id = l.id
             GROUP BY l.id, l.name",
        )?
        .into_iter()
        .collect();
        s.by_day = pairs(&format!("SELECT {day}, count(*) FROM events GROUP BY 1"))?
            .into_iter()
            .collect();
        s.alerts = pairs("SELECT status, count(*) FROM outbox GROUP BY status")?
            .into_iter()
            .collect();
        s.counters = pairs("SELECT name, value FROM counters")?
            .into_iter()
            .collect();
    }
    s.top_groups = super::query::groups(
        r,
        &GroupQuery {
            order: GroupOrder::Count,
            limit: top,
            ..GroupQuery::default()
        },
    )?;
    (s.file_bytes, s.used_bytes) = r.size()?;
    Ok(s)
}

/// The newest `limit` runs.
pub(crate) fn runs<R: SqlReader + ?Sized>(
    r: &R,
    limit: usize,
    only: Option<i64>,
) -> Result<Vec<RunRow>> {
    // A database no writer has migrated yet may lack the newer columns.
    let col = |c: &str| r.column("runs", c);
    let sql = format!(
        "SELECT r.id, r.status, r.pid, r.started_at, r.ended_at, h.hostname, r.app_name,
                r.\"release\", r.build_id, r.last_rss_bytes, r.last_cpu_percent, {}, {}, {}
         FROM runs r LEFT JOIN hosts h ON h.id = r.host_id {}
         ORDER BY r.id DESC LIMIT ?1",
        col("end_reason"),
        col("cgroup"),
        col("memory_max_bytes"),
        // One run: its id (a NULL parameter has no type in PostgreSQL).
        if only.is_some() {
            "WHERE r.id = ?2"
        } else {
            ""
        }
    );
    let p = match only {
        Some(id) => params![limit, id].to_vec(),
        None => params![limit].to_vec(),
    };
    r.conn().map("reading runs", &sql, &p, |r| {
        Ok(RunRow {
            id: r.get(0)?,
            status: super::rows::named(r, 1, RunStatus::from_name)?,
            pid: r.get(2)?,
            started_at: r.get(3)?,
            ended_at: r.get(4)?,
            hostname: r.get(5)?,
            app_name: r.get(6)?,
            release: r.get(7)?,
            build_id: r.get(8)?,
            last_rss_bytes: r.get(9)?,
            last_cpu_percent: r.get(10)?,
            end_reason: r.get(11)?,
            cgroup: r.get(12)?,
            memory_max_bytes: r.get(13)?,
        })
    })
}

/// Each release's runs and groups, the newest release first.
pub(crate) fn releases<R: SqlReader + ?Sized>(r: &R) -> Result<Vec<ReleaseRow>> {
    if r.column("runs", "release") == "NULL" || r.column("event_groups", "first_release") == "NULL"
    {
        // A database from before the runs ledger and release tracking.
        return Ok(Vec::new());
    }
    let live = live_groups(r);
    let mut conn = r.conn();
    let order = conn
        .dialect()
        .desc_nulls_last("coalesce(r.first_seen, g.first_event)");
    let sql = format!(
        "WITH names AS (
             SELECT \"release\" FROM runs WHERE \"release\" IS NOT NULL
             UNION SELECT first_release FROM event_groups WHERE first_release IS NOT NULL
             UNION SELECT regressed_in FROM event_groups WHERE regressed_in IS NOT NULL
         ),
         r AS (
             SELECT \"release\", count(*) AS runs,
                    count(CASE WHEN status = 'exited' THEN 1 END) AS exited,
                    count(CASE WHEN status = 'crashed' THEN 1 END) AS crashed,
                    count(CASE WHEN status = 'abnormal' THEN 1 END) AS abnormal,
                    count(CASE WHEN status = 'running' THEN 1 END) AS running,
                    min(started_at) AS first_seen,
                    max(coalesce(ended_at, last_seen, started_at)) AS last_seen
             FROM runs WHERE \"release\" IS NOT NULL GROUP BY \"release\"
         ),
         g AS (
             SELECT first_release AS \"release\", count(*) AS new_groups,
                    min(first_seen) AS first_event, max(last_seen) AS last_event
             FROM event_groups WHERE first_release IS NOT NULL AND {live}
             GROUP BY first_release
         ),
         rg AS (
             SELECT regressed_in AS \"release\", count(*) AS regressed
             FROM event_groups WHERE regressed_in IS NOT NULL AND {live}
             GROUP BY regressed_in
         )
         SELECT n.\"release\", coalesce(r.runs, 0), coalesce(r.exited, 0),
                coalesce(r.crashed, 0), coalesce(r.abnormal, 0), coalesce(r.running, 0),
                coalesce(r.first_seen, g.first_event), coalesce(r.last_seen, g.last_event),
                coalesce(g.new_groups, 0), coalesce(rg.regressed, 0)
         FROM names n
         LEFT JOIN r ON r.\"release\" = n.\"release\"
         LEFT JOIN g ON g.\"release\" = n.\"release\"
         LEFT JOIN rg ON rg.\"release\" = n.\"release\"
         ORDER BY {order}, n.\"release\" DESC"
    );
    conn.map("reading releases", &sql, params![], |r| {
        let (runs, crashed, abnormal): (u64, u64, u64) = (r.get(1)?, r.get(3)?, r.get(4)?);
        Ok(ReleaseRow {
            release: r.get(0)?,
            runs,
            exited: r.get(2)?,
            crashed,
            abnormal,
            running: r.get(5)?,
            crash_free_percent: ReleaseRow::crash_free(runs, crashed + abnormal),
            first_seen: r.get(6)?,
            last_seen: r.get(7)?,
            new_groups: r.get(8)?,
            regressed_groups: r.get(9)?,
        })
    })
}

/// Occurrences per hour in `[since, until)`: of each of `groups` (by
/// group, then hour), or (`None`) of all groups together.
pub(crate) fn hourly(
    c: &mut dyn Conn,
    groups: Option<&[i64]>,
    since: i64,
    until: i64,
) -> Result<Vec<HourCount>> {
    const DOING: &str = "counting occurrences per hour";
    let (from, to) = (since.div_euclid(HOUR_MS), (until - 1).div_euclid(HOUR_MS));
    let row = |r: &super::Row| {
        Ok(HourCount {
            group: r.get(0)?,
            hour_ms: r.get::<i64>(1)? * HOUR_MS,
            count: r.get(2)?,
        })
    };
    match groups {
        None => c.map(
            DOING,
            "SELECT NULL, hour, sum(count) FROM group_hours
             WHERE hour BETWEEN ?1 AND ?2 GROUP BY hour ORDER BY hour",
            params![from, to],
            row,
        ),
        Some(ids) => {
            let sql = format!(
                "SELECT group_id, hour, count FROM group_hours
                 WHERE {} AND hour BETWEEN ?2 AND ?3 ORDER BY group_id, hour",
                c.dialect().any("group_id", 1)
            );
            c.map(DOING, &sql, params![ids, from, to], row)
        }
    }
}

/// The releases, environments and hosts a group was seen with (the 50
/// most recent of each), most recent first.
pub(crate) fn group_values(c: &mut dyn Conn, group: i64) -> Result<Vec<GroupValue>> {
    c.map(
        "reading a group's values",
        "SELECT \"key\", value, count, first_seen, last_seen FROM (
             SELECT \"key\", value, count, first_seen, last_seen, row_number() OVER (
                 PARTITION BY \"key\" ORDER BY last_seen DESC) AS n
             FROM group_values WHERE group_id = ?1) AS v
         WHERE n <= 50 ORDER BY \"key\", last_seen DESC",
        params![group],
        |r| {
            Ok(GroupValue {
                key: r.get(0)?,
                value: r.get(1)?,
                count: r.get(2)?,
                first_seen: r.get(3)?,
                last_seen: r.get(4)?,
            })
        },
    )
}

/// The values of `key` (`release`, `environment`, `host`) seen, most
/// recently seen first.
pub(crate) fn values(c: &mut dyn Conn, key: &str, limit: usize) -> Result<Vec<String>> {
    c.map(
        "listing values",
        "SELECT value FROM group_values WHERE \"key\" = ?1
         GROUP BY value ORDER BY max(last_seen) DESC LIMIT ?2",
        params![key, limit],
        |r| r.get(0),
    )
}

/// Groups whose message, chain or frames hold every word of `typed` (the
/// last one as a prefix), best match first.
pub(crate) fn search<R: SqlReader + ?Sized>(
    r: &R,
    typed: &str,
    limit: usize,
) -> Result<Vec<SearchHit>> {
    let mut words = summary::words(typed);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let merges = live_groups(r) != "1 = 1";
    // The best texts, then their groups, each once, in the order of their
    // best text.
    let found: Vec<(i64, String)> = {
        let mut c = r.conn();
        if c.dialect() == Dialect::Mysql {
            words = innodb_words(&mut *c, words)?;
        }
        let (sql, query) = search_sql(c.dialect(), &words);
        let found: Vec<(i64, String)> =
            c.map("searching", sql, params![query, (limit * 8).max(64)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        // A merged group's texts are the group's that took it.
        let mut ids: Vec<i64> = found.iter().map(|(g, _)| *g).collect();
        ids.sort_unstable();
        ids.dedup();
        let merged = if merges && !ids.is_empty() {
            super::grouping::merged(&mut *c, &ids)?
        } else {
            Default::default()
        };
        found
            .into_iter()
            .map(|(g, body)| (merged.get(&g).copied().unwrap_or(g), body))
            .collect()
    };
    summary::hits(found, limit, typed, |ids| {
        super::query::groups(
            r,
            &GroupQuery {
                ids: ids.to_vec(),
                ..GroupQuery::default()
            },
        )
    })
}

/// InnoDB's full-text index holds no word shorter than its minimum, and
/// none of its stopwords: those are left out of the search, and a search
/// of nothing else is an error that says why.
fn innodb_words(c: &mut dyn Conn, words: Vec<String>) -> Result<Vec<String>> {
    const STOPWORDS: &[&str] = &[
        "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
        "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what",
        "when", "where", "who", "will", "with", "und", "www",
    ];
    let min: i64 = c.one("searching", "SELECT @@innodb_ft_min_token_size", params![])?;
    let (kept, left): (Vec<String>, Vec<String>) = words.into_iter().partition(|w| {
        w.chars().count() as i64 >= min && !STOPWORDS.contains(&w.to_lowercase().as_str())
    });
    if kept.is_empty() {
        return Err(Error::config(
            "search",
            format!(
                "{}: the server's full-text index holds no word shorter than {min} letters \
                 and none of its stopwords (the, for, with, ...); search for a longer word",
                left.join(" ")
            ),
        ));
    }
    Ok(kept)
}

/// The search statement of a dialect (parameters: the query, the number
/// of texts) and its query for `words`: each word quoted (nothing typed is
/// read as an operator), the last one a prefix.
fn search_sql(d: Dialect, words: &[String]) -> (&'static str, String) {
    let n = words.len();
    let term = |i: usize, w: &str| match (d, i + 1 == n) {
        (Dialect::Sqlite, true) => format!("\"{w}\"*"),
        (Dialect::Sqlite, false) => format!("\"{w}\""),
        (Dialect::Postgres, true) => format!("'{}':*", w.to_lowercase().replace('\'', "")),
        (Dialect::Postgres, false) => format!("'{}'", w.to_lowercase().replace('\'', "")),
        // InnoDB's boolean mode: every word required, the last a prefix;
        // only letters and digits, so nothing typed is an operator.
        (Dialect::Mysql, last) => {
            let w: String = w
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if last {
                format!("+{w}*")
            } else {
                format!("+\"{w}\"")
            }
        }
    };
    let terms: Vec<String> = words.iter().enumerate().map(|(i, w)| term(i, w)).collect();
    match d {
        // FTS5 ranks with a bounded heap.
        Dialect::Sqlite => (
            "SELECT t.group_id, t.body
             FROM group_texts_fts f JOIN group_texts t ON t.id = f.rowid
             WHERE group_texts_fts MATCH ?1 ORDER BY f.rank LIMIT ?2",
            terms.join(" "),
        ),
        Dialect::Postgres => (
            "SELECT t.group_id, t.body FROM group_texts t, to_tsquery('simple', ?1) q
             WHERE t.words @@ q ORDER BY ts_rank(t.words, q) DESC, t.id LIMIT ?2",
            terms.join(" & "),
        ),
        // InnoDB's full-text index skips stopwords and words shorter than
        // its minimum (3 letters by default): `search` says so.
        Dialect::Mysql => (
            "SELECT group_id, body FROM group_texts
             WHERE MATCH (body) AGAINST (?1 IN BOOLEAN MODE)
             ORDER BY MATCH (body) AGAINST (?1 IN BOOLEAN MODE) DESC, id LIMIT ?2",
            terms.join(" "),
        ),
    }
}

/// The process figures of a group's newest occurrences that have a
/// snapshot, oldest first.
pub(crate) fn samples(c: &mut dyn Conn, group: i64, limit: usize) -> Result<Vec<Sample>> {
    let mut v = c.map(
        "reading a group's snapshots",
        "SELECT e.ts, s.proc_cpu_percent, s.proc_rss_bytes, s.proc_memory_percent
         FROM events e JOIN snapshots s ON s.id = e.snapshot_id
         WHERE e.group_id = ?1 ORDER BY e.ts DESC LIMIT ?2",
        params![group, limit],
        |r| {
            Ok(Sample {
                ts: r.get(0)?,
                cpu_percent: r.get(1)?,
                rss_bytes: r.get(2)?,
                memory_percent: r.get(3)?,
            })
        },
    )?;
    v.reverse();
    Ok(v)
}

/// Alert deliveries per channel, with the newest error.
pub(crate) fn deliveries(c: &mut dyn Conn) -> Result<Vec<ChannelHealth>> {
    c.map(
        "reading alert deliveries",
        &format!(
            "SELECT o.channel,
                    count(CASE WHEN o.status IN ('pending', 'sending') THEN 1 END),
                    count(CASE WHEN o.status = 'failed' THEN 1 END),
                    count(CASE WHEN o.status = 'sent' THEN 1 END), {NEWEST_CHANNEL_ERROR}
             FROM outbox o GROUP BY o.channel ORDER BY o.channel"
        ),
        params![],
        |r| {
            Ok(ChannelHealth {
                channel: r.get(0)?,
                pending: r.get(1)?,
                failed: r.get(2)?,
                sent: r.get(3)?,
                last_error: r.get(4)?,
                last_error_at: r.get(5)?,
            })
        },
    )
}

/// The outbox's part of a health check: alerts waiting and failed, and
/// each channel whose deliveries fail (a login refused, a certificate not
/// trusted, a server down) with how many wait and its last error (errors
/// never hold a secret).
pub(crate) fn alert_health(c: &mut dyn Conn, r: &mut CheckReport) -> Result<()> {
    const DOING: &str = "reading the outbox";
    r.pending_alerts = c.one(
        DOING,
        "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')",
        params![],
    )?;
    r.failed_alerts = c.one(
        DOING,
        "SELECT count(*) FROM outbox WHERE status = 'failed'",
        params![],
    )?;
    if r.failed_alerts > 0 {
        r.problems
            .push(format!("{} alerts failed for good", r.failed_alerts));
    }
    let stuck: Vec<(String, i64, Option<String>)> = c.map(
        DOING,
        "SELECT o.channel, count(*),
                (SELECT last_error FROM outbox l
                 WHERE l.channel = o.channel AND l.last_error IS NOT NULL
                   AND l.status IN ('pending', 'sending')
                 ORDER BY l.attempts DESC, l.id DESC LIMIT 1)
         FROM outbox o
         WHERE o.status IN ('pending', 'sending')
         GROUP BY o.channel
         HAVING max(o.attempts) > 0
         ORDER BY o.channel",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (channel, waiting, last_error) in stuck {
        r.problems.push(format!(
            "alerts on channel {channel} are not getting through: {waiting} waiting; \
             last error: {}",
            last_error.as_deref().unwrap_or("unknown")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_words_are_quoted_terms_the_last_a_prefix() {
        let words = vec!["disk".to_owned(), "Fu'll".to_owned()];
        assert_eq!(search_sql(Dialect::Sqlite, &words).1, "\"disk\" \"Fu'll\"*");
        assert_eq!(search_sql(Dialect::Postgres, &words).1, "'disk' & 'full':*");
    }
}
