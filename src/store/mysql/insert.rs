//! Writing a batch into MySQL or MariaDB: one transaction; the batch's
//! loggers, stacks, groups and snapshots found or made first (each upsert
//! names its row through `LAST_INSERT_ID`, so processes making the same
//! group at once share one row), then the events, each skipped when its
//! uid is stored (a retried or spooled batch is stored once), then, for the
//! events actually inserted, the alerts (`sql::alerts::decide_batch`, the
//! groups locked in fingerprint order), the groups' counts and the
//! summaries. Statements are prepared once per connection (the client's
//! cache); the ids it hands out are remembered only once the batch
//! commits.

use std::collections::HashMap;

use super::conn::MyConn;
use super::MyStore;
use crate::error::Result;
use crate::event::{Event, Snapshot, StoredAttachment};
use crate::pipeline::fingerprint;
use crate::store::seam::BatchOutcome;
use crate::store::sql::alerts::{by_group, decide_batch, GroupDelta, Stamp};
use crate::store::sql::{self, params, Conn};
use crate::store::summary::{BatchSummary, NewText};

/// The longest value a group is seen with (`group_values.value`).
const VALUE_CHARS: usize = 255;

/// The ids a batch found or made, kept once it commits.
#[derive(Default)]
struct Found {
    loggers: HashMap<String, i64>,
    backtraces: HashMap<String, i64>,
    groups: HashMap<String, i64>,
}

/// Writes a batch in one transaction; see the module's description.
pub(super) fn insert_batch(store: &mut MyStore, events: &[Event]) -> Result<BatchOutcome> {
    if events.is_empty() {
        return Ok(BatchOutcome::default());
    }
    for cache in [&mut store.backtraces, &mut store.groups] {
        if cache.len() > 10_000 {
            cache.clear();
        }
    }
    // New loggers first, outside the batch's transaction: a logger's view
    // is DDL, which would commit the batch halfway.
    for ev in events {
        if !store.loggers.contains_key(&ev.logger) {
            crate::store::seam::Writer::ensure_logger(store, &ev.logger)?;
        }
    }
    let now = crate::util::time::now_ms();
    let stamp = Stamp {
        now,
        origin: store.run,
    };
    let mut c = MyConn {
        conn: &mut store.conn,
        target: &store.target,
        depth: 0,
    };
    let mut found = Found::default();
    let mut summary = BatchSummary::default();
    let known = (&store.loggers, &store.backtraces, &store.groups);
    let host = (store.host_id, store.host_name.as_deref());
    // Room for one row's values in a statement, the rest of it aside.
    let budget = store.max_packet.saturating_sub(64 << 10).max(64 << 10);
    let rules = &store.rules;
    let texts = &store.texts;
    let merges = &mut store.merges;
    let out = (&mut c as &mut dyn Conn).in_transaction("writing a batch to", |c| {
        found = Found::default();
        summary = BatchSummary::default();
        let mut out = BatchOutcome::default();
        let mut new: Vec<(i64, &Event)> = Vec::new();
        let mut last_snapshot: Option<(&Snapshot, i64)> = None;
        // The rows each event points to, made or found first.
        let mut rows: Vec<(&Event, String, Row)> = Vec::with_capacity(events.len());
        // Fingerprints new under the grouping in use join their earlier
        // group (a transition).
        sql::grouping::follow_earlier(
            c,
            events,
            &|fp| known.2.contains_key(fp),
            &mut |c, name| sql::writer::logger_id(c, name),
        )?;
        for ev in events {
            let uid = ev.id.to_string();
            let logger = logger_of(c, known.0, &mut found, &ev.logger)?;
            let backtrace = backtrace_of(c, known.1, &mut found, ev)?;
            let snapshot = match (&ev.snapshot, last_snapshot) {
                (None, _) => None,
                (Some(s), Some((prev, id))) if prev == s => Some(id),
                (Some(s), _) => {
                    let id = sql::insert::snapshot(c, s, ev.pid)?;
                    last_snapshot = Some((s, id));
                    Some(id)
                }
            };
            let group = group_of(c, known.2, &mut found, ev, logger, &uid)?;
            let row = Row {
                ids: [logger, group],
                backtrace,
                snapshot,
                host: host.0,
                budget,
                home: None,
            };
            rows.push((ev, uid, row));
        }
        // Events of a merged group go to the one it was merged into.
        let mut homes: Vec<i64> = rows.iter().map(|(_, _, r)| r.ids[1]).collect();
        homes.sort_unstable();
        homes.dedup();
        let merged = merges.of(c, &homes)?;
        for (_, _, row) in &mut rows {
            (row.ids[1], row.home) = sql::grouping::placed(row.ids[1], &merged);
        }
        // Then the events not stored yet (a retried or spooled batch is
        // stored once; a uid twice in a batch keeps its first copy), many
        // rows to a statement.
        let stored = stored_uids(c, rows.iter().map(|(_, uid, _)| uid.clone()).collect())?;
        let mut seen = std::collections::HashSet::new();
        rows.retain(|(_, uid, _)| !stored.contains(uid) && seen.insert(uid.clone()));
        insert_events(c, &rows, budget)?;
        for (ev, uid, row) in &rows {
            sql::insert::attachments(c, uid, &fitting(&ev.attachments, budget))?;
            out.written += 1;
            summary.add(ev, (row.ids[1], row.home), row.backtrace, host.1, texts);
            new.push((row.ids[1], *ev));
        }
        if new.is_empty() {
            return Ok(out);
        }
        let groups = by_group(new);
        let (alerts, deltas) = decide_batch(c, &groups, rules, stamp, &merged)?;
        out.alerts = alerts;
        update_groups(c, &deltas, host.0)?;
        if out.alerts > 0 {
            out.outbox_mark = sql::outbox::mark(c)?;
        }
        write_summary(c, &summary)?;
        Ok(out)
    })?;
    store.texts.remember(&summary);
    store.loggers.extend(found.loggers);
    store.backtraces.extend(found.backtraces);
    store.groups.extend(found.groups);
    Ok(out)
}

fn logger_of(
    c: &mut dyn Conn,
    known: &HashMap<String, i64>,
    found: &mut Found,
    name: &str,
) -> Result<i64> {
    if let Some(&id) = known.get(name).or_else(|| found.loggers.get(name)) {
        return Ok(id);
    }
    let id = sql::writer::logger_id(c, name)?;
    found.loggers.insert(name.to_owned(), id);
    Ok(id)
}

/// The backtrace row of an event's frames, made with its frames if new.
fn backtrace_of(
    c: &mut dyn Conn,
    known: &HashMap<String, i64>,
    found: &mut Found,
    ev: &Event,
) -> Result<Option<i64>> {
    if ev.frames.is_empty() {
        return Ok(None);
    }
    let hash = match &ev.backtrace_hash {
        Some(h) => h.to_string(),
        None => fingerprint::backtrace_hash(&ev.frames),
    };
    if let Some(&id) = known.get(&hash).or_else(|| found.backtraces.get(&hash)) {
        return Ok(Some(id));
    }
    let doing = "storing a backtrace";
    let upsert = c.dialect().upsert("backtraces", "hash", "", true);
    // 1: made now (its frames go with it); 0: there already.
    let made = c.execute(
        doing,
        &format!(
            "INSERT INTO backtraces (hash, frame_count, resolved) VALUES (?1, ?2, ?3) {upsert}"
        ),
        params![hash, ev.frames.len() as i64, ev.symbols_resolved],
    )?;
    let id: i64 = c.one(doing, "SELECT LAST_INSERT_ID()", params![])?;
    if made == 1 {
        sql::maintenance::insert_frames(c, id, &ev.frames, true)?;
    }
    found.backtraces.insert(hash, id);
    Ok(Some(id))
}

/// The group of an event's fingerprint, made (with a count of 0: the
/// batch adds its events) if it does not exist yet.
fn group_of(
    c: &mut dyn Conn,
    known: &HashMap<String, i64>,
    found: &mut Found,
    ev: &Event,
    logger: i64,
    uid: &str,
) -> Result<i64> {
    if let Some(&id) = known
        .get(&ev.fingerprint)
        .or_else(|| found.groups.get(&ev.fingerprint))
    {
        return Ok(id);
    }
    let id = sql::grouping::new_group(c, &sql::grouping::NewGroup::of(ev, logger, uid))?;
    found.groups.insert(ev.fingerprint.clone(), id);
    Ok(id)
}

/// What an event's row points to, and the bytes it may take.
struct Row {
    /// The logger and the group.
    ids: [i64; 2],
    backtrace: Option<i64>,
    snapshot: Option<i64>,
    host: Option<i64>,
    budget: usize,
    /// The group of the event's own fingerprint, when merged into the
    /// group of `ids`.
    home: Option<i64>,
}

/// The attachments, each one larger than a statement may be kept without
/// its bytes (said in `dropped`, as the other caps say).
fn fitting(all: &[StoredAttachment], budget: usize) -> Vec<StoredAttachment> {
    all.iter()
        .map(|a| match &a.data {
            Some(d) if d.len() > budget => StoredAttachment {
                data: None,
                dropped: Some("over the server's max_allowed_packet".into()),
                ..a.clone()
            },
            _ => a.clone(),
        })
        .collect()
}

/// The message, cut (at a character) so that the row fits in `budget`
/// bytes beside its other values, with a note of what was cut.
fn message_within(message: &str, others: usize, budget: usize) -> std::borrow::Cow<'_, str> {
    let room = budget.saturating_sub(others);
    if message.len() <= room {
        return message.into();
    }
    let note = format!(
        " … [cut by errsnap: {} bytes over the server's max_allowed_packet]",
        message.len() - room
    );
    let mut end = room.saturating_sub(note.len());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &message[..end]).into()
}

/// The uids of `uids` that are stored already.
fn stored_uids(c: &mut dyn Conn, uids: Vec<String>) -> Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    for chunk in uids.chunks(1000) {
        for r in c.query(
            "looking up the batch's events",
            "SELECT uid FROM events WHERE uid IN (?1)",
            params![sql::Value::Texts(chunk.to_vec())],
        )? {
            out.insert(r.get::<String>(0)?);
        }
    }
    Ok(out)
}

/// The columns of an event row, in the order [`event_values`] gives them.
const EVENT_COLUMNS: &str = "uid, ts, logger_id, level, kind, message, error_chain,
     error_type, file, line, col, thread_name, thread_id, pid, app_name,
     \"release\", environment, tags, extra, group_id, backtrace_id, snapshot_id,
     host_id, alert_channels, breadcrumbs, redactions, context, home_id";
const EVENT_WIDTH: usize = 28;
/// Rows to one statement at most (and no more bytes than half a packet).
const EVENT_ROWS: usize = 200;

/// Inserts the rows, as many to a statement as fit.
fn insert_events(c: &mut dyn Conn, rows: &[(&Event, String, Row)], budget: usize) -> Result<()> {
    let mut values: Vec<sql::Value> = Vec::new();
    let mut bytes = 0;
    let mut n = 0;
    for (ev, uid, row) in rows {
        let v = event_values(ev, uid, row);
        let size: usize = v
            .iter()
            .map(|v| match v {
                sql::Value::Text(t) => t.len(),
                _ => 8,
            })
            .sum();
        if n > 0 && (n == EVENT_ROWS || bytes + size > budget / 2) {
            flush_events(c, &mut values, n)?;
            bytes = 0;
            n = 0;
        }
        values.extend(v);
        bytes += size;
        n += 1;
    }
    if n > 0 {
        flush_events(c, &mut values, n)?;
    }
    Ok(())
}

fn flush_events(c: &mut dyn Conn, values: &mut Vec<sql::Value>, n: usize) -> Result<()> {
    // A row stored meanwhile by another process (a spool replayed twice)
    // is left as it is.
    c.execute(
        "inserting events",
        &format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES {} ON DUPLICATE KEY UPDATE id = id",
            tuples(n, EVENT_WIDTH)
        ),
        values,
    )?;
    values.clear();
    Ok(())
}

/// An event's row, its values in [`EVENT_COLUMNS`]' order.
fn event_values(ev: &Event, uid: &str, row: &Row) -> Vec<sql::Value> {
    let [logger, group] = row.ids;
    let chain = sql::insert::json_unless(ev.chain.is_empty(), &ev.chain);
    let tags = sql::insert::json_unless(ev.tags.is_empty(), &ev.tags);
    let breadcrumbs = sql::insert::json_unless(ev.breadcrumbs.is_empty(), &ev.breadcrumbs);
    let context = sql::insert::json_unless(ev.context.is_empty(), &ev.context);
    let mut extra = sql::insert::json_unless(ev.extra.is_empty(), &ev.extra);
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let fixed = len(&chain) + len(&tags) + len(&breadcrumbs) + len(&context) + 4096;
    if fixed + len(&extra) > row.budget {
        // A JSON value cannot be cut and stay JSON: the extra data goes,
        // and says so.
        extra = Some(
            serde_json::json!({ "errsnap.cut": format!(
                "extra data of {} bytes: over the server's max_allowed_packet",
                len(&extra)
            ) })
            .to_string(),
        );
    }
    let message = message_within(&ev.message, fixed + len(&extra), row.budget);
    params![
        uid,
        ev.timestamp_ms,
        logger,
        ev.level.as_i64(),
        ev.kind.as_str(),
        message.as_ref(),
        chain,
        ev.chain.first().and_then(|l| l.type_name.as_deref()),
        ev.location.as_ref().map(|l| l.file.as_str()),
        ev.location.as_ref().map(|l| l.line),
        ev.location.as_ref().map(|l| l.column),
        ev.thread_name,
        ev.thread_id as i64,
        ev.pid,
        ev.app_name,
        ev.release.as_deref().map(|r| cut(r, VALUE_CHARS)),
        ev.environment.as_deref().map(|e| cut(e, VALUE_CHARS)),
        tags,
        extra,
        group,
        row.backtrace,
        row.snapshot,
        row.host,
        (!ev.alert_channels.is_empty()).then(|| ev.alert_channels.join(",")),
        breadcrumbs,
        ev.redactions,
        context,
        row.home,
    ]
    .to_vec()
}

/// The first `n` characters of `s`.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Each group's changes from the batch, and the host it was seen on.
fn update_groups(c: &mut dyn Conn, deltas: &[GroupDelta], host: Option<i64>) -> Result<()> {
    const DOING: &str = "updating groups";
    sql::insert::update_groups(c, deltas)?;
    if let Some(h) = host {
        let mut groups: Vec<i64> = deltas.iter().map(|d| d.group).collect();
        groups.sort_unstable();
        for chunk in groups.chunks(SUMMARY_ROWS) {
            let mut values = Vec::with_capacity(chunk.len() * 2);
            for g in chunk {
                values.extend_from_slice(params![*g, h]);
            }
            c.execute(
                DOING,
                &format!(
                    "INSERT INTO group_hosts (group_id, host_id) VALUES {}
                     ON DUPLICATE KEY UPDATE host_id = host_id",
                    tuples(chunk.len(), 2)
                ),
                &values,
            )?;
        }
    }
    Ok(())
}

/// Adds a batch's summary: occurrences per hour, values, new search texts
/// (the full-text index follows the rows by itself), many rows to a
/// statement, in key order (writers adding to the same rows lock them in
/// the same order).
fn write_summary(c: &mut dyn Conn, s: &BatchSummary) -> Result<()> {
    const DOING: &str = "updating the groups' summaries";
    let mut hours: Vec<_> = s.hours.iter().collect();
    hours.sort_unstable();
    for chunk in hours.chunks(SUMMARY_ROWS) {
        let mut values = Vec::with_capacity(chunk.len() * 3);
        for (&(group, hour), &n) in chunk {
            values.extend_from_slice(params![group, hour, n]);
        }
        c.execute(
            DOING,
            &format!(
                "INSERT INTO group_hours (group_id, hour, count) VALUES {}
                 ON DUPLICATE KEY UPDATE count = count + VALUES(count)",
                tuples(chunk.len(), 3)
            ),
            &values,
        )?;
    }
    let mut rows: Vec<_> = s.values.iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for chunk in rows.chunks(SUMMARY_ROWS) {
        let mut values = Vec::with_capacity(chunk.len() * 6);
        for ((group, key, value), v) in chunk {
            values.extend_from_slice(params![
                group,
                *key,
                cut(value, VALUE_CHARS),
                v.count,
                v.first_seen,
                v.last_seen
            ]);
        }
        c.execute(
            DOING,
            &format!(
                "INSERT INTO group_values (group_id, \"key\", value, count, first_seen, last_seen)
                 VALUES {}
                 ON DUPLICATE KEY UPDATE count = count + VALUES(count),
                     first_seen = least(first_seen, VALUES(first_seen)),
                     last_seen = greatest(last_seen, VALUES(last_seen))",
                tuples(chunk.len(), 6)
            ),
            &values,
        )?;
    }
    for t in &s.texts {
        add_text(c, t)?;
    }
    Ok(())
}

/// Rows of a summary to one statement at most.
const SUMMARY_ROWS: usize = 500;

/// `(?1, ?2), (?3, ?4)` for `rows` rows of `width` values.
fn tuples(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=width).map(|i| format!("?{}", r * width + i)).collect();
            format!("({})", p.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn add_text(c: &mut dyn Conn, t: &NewText) -> Result<()> {
    c.execute(
        "indexing a search text",
        "INSERT INTO group_texts (\"key\", group_id, backtrace_id, head_len, body)
         VALUES (?1, ?2, ?3, ?4, ?5) ON DUPLICATE KEY UPDATE id = id",
        params![t.key, t.group, t.backtrace, t.head_len, t.body],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_packet_is_cut_at_a_character_and_says_so() {
        assert_eq!(message_within("short", 10, 100), "short");
        let long = "é".repeat(1000); // 2,000 bytes
        let cut = message_within(&long, 100, 1100);
        assert!(cut.len() <= 1000, "{}", cut.len());
        assert!(cut.starts_with('é'));
        assert!(
            cut.ends_with("bytes over the server's max_allowed_packet]"),
            "{cut}"
        );
        let a = StoredAttachment {
            name: "big".into(),
            content_type: None,
            size: 10,
            data: Some(vec![0; 10]),
            dropped: None,
        };
        let kept = fitting(std::slice::from_ref(&a), 10);
        assert_eq!(kept[0].data.as_deref(), Some(&[0u8; 10][..]));
        let dropped = fitting(std::slice::from_ref(&a), 9);
        assert!(dropped[0].data.is_none());
        assert_eq!(dropped[0].size, 10);
        assert!(dropped[0]
            .dropped
            .as_deref()
            .unwrap()
            .contains("max_allowed_packet"));
    }
}
