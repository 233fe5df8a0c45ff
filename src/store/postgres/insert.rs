//! Writing a batch into PostgreSQL: one transaction of a few statements,
//! whatever the batch's size. Rows go in as arrays (`unnest`): the new
//! backtraces and their frames, the new groups, then every event in one
//! `INSERT ... ON CONFLICT (uid) DO NOTHING RETURNING`, so only rows
//! actually inserted count or alert and a retried batch changes nothing.
//! Last, just before the commit, the batch's groups are locked in
//! fingerprint order (`FOR NO KEY UPDATE`: no deadlock between processes,
//! no conflict with the events' foreign-key checks), bumped in one
//! statement, and their alerts decided (`decide.rs`): a fleet decides each
//! group's alert once and shares its cooldown.

use std::collections::HashMap;

use postgres::Transaction;

use super::conn::PgConn;
use super::connect::PgTarget;
use super::{PgStore, Stmts};
use crate::error::Result;
use crate::event::{Event, Frame, Snapshot};
use crate::pipeline::fingerprint;
use crate::store::seam::BatchOutcome;
use crate::store::sql;
use crate::store::summary::BatchSummary;

/// Writes the frames of several backtraces in one statement.
fn insert_frames_of(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    stacks: &[(i64, &[Frame])],
) -> Result<()> {
    let n: usize = stacks.iter().map(|(_, f)| f.len()).sum();
    if n == 0 {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(n);
    let mut idx = Vec::with_capacity(n);
    let mut function = Vec::with_capacity(n);
    let mut file = Vec::with_capacity(n);
    let mut line = Vec::with_capacity(n);
    let mut col = Vec::with_capacity(n);
    let mut address = Vec::with_capacity(n);
    let mut module = Vec::with_capacity(n);
    let mut offset = Vec::with_capacity(n);
    let mut in_app = Vec::with_capacity(n);
    let mut build_id = Vec::with_capacity(n);
    for (id, frames) in stacks {
        for (i, f) in frames.iter().enumerate() {
            ids.push(*id);
            idx.push(i as i32);
            function.push(f.function.clone());
            file.push(f.file.clone());
            line.push(f.line.map(|n| n as i32));
            col.push(f.column.map(|n| n as i32));
            address.push(f.address as i64);
            module.push(f.module.clone());
            offset.push(f.module_offset.map(|o| o as i64));
            in_app.push(f.in_app);
            build_id.push(f.build_id.clone());
        }
    }
    tx.execute(
        "INSERT INTO frames (backtrace_id, idx, function, file, line, col, address,
             module, module_offset, in_app, build_id)
         SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::int[],
             $6::int[], $7::bigint[], $8::text[], $9::bigint[], $10::bool[], $11::text[])",
        &[
            &ids, &idx, &function, &file, &line, &col, &address, &module, &offset, &in_app,
            &build_id,
        ],
    )
    .map_err(|e| target.error("inserting frames in", e))?;
    Ok(())
}

/// The storage key of an event's stack (`None`: no frames).
fn hash_of(ev: &Event) -> Option<String> {
    if ev.frames.is_empty() {
        return None;
    }
    Some(match &ev.backtrace_hash {
        Some(h) => h.to_string(),
        None => fingerprint::backtrace_hash(&ev.frames),
    })
}

/// The ids of the batch's backtraces, the new ones inserted with their
/// frames (two statements for the whole batch).
fn backtraces(
    tx: &mut Transaction<'_>,
    target: &PgTarget,
    events: &[Event],
    cache: &HashMap<String, i64>,
) -> Result<HashMap<String, i64>> {
    let fail = |e| target.error("storing backtraces in", e);
    let mut out: HashMap<String, i64> = HashMap::new();
    let mut first: HashMap<String, &Event> = HashMap::new();
    for ev in events {
        if let Some(h) = hash_of(ev) {
            match cache.get(&h) {
                Some(&id) => {
                    out.insert(h, id);
                }
                None => {
                    first.entry(h).or_insert(ev);
                }
            }
        }
    }
    if first.is_empty() {
        return Ok(out);
    }
    let mut hashes: Vec<String> = first.keys().cloned().collect();
    hashes.sort();
    let counts: Vec<i32> = hashes
        .iter()
        .map(|h| first[h].frames.len() as i32)
        .collect();
    let resolved: Vec<bool> = hashes.iter().map(|h| first[h].symbols_resolved).collect();
    let created = tx
        .query(
            "INSERT INTO backtraces (hash, frame_count, resolved)
             SELECT * FROM unnest($1::text[], $2::int[], $3::bool[])
             ON CONFLICT (hash) DO NOTHING RETURNING id, hash",
            &[&hashes, &counts, &resolved],
        )
        .map_err(fail)?;
    let mut stacks: Vec<(i64, &[Frame])> = Vec::with_capacity(created.len());
    for r in &created {
        let (id, hash): (i64, String) = (r.get(0), r.get(1));
        stacks.push((id, &first[&hash].frames));
    }
    insert_frames_of(tx, target, &stacks)?;
    for r in tx
        .query(
            "SELECT id, hash FROM backtraces WHERE hash = ANY($1)",
            &[&hashes],
        )
        .map_err(fail)?
    {
        out.insert(r.get(1), r.get(0));
    }
    Ok(out)
}

const GROUPS_INSERT: &str = "INSERT INTO event_groups (fingerprint, logger_id, kind, level,
         title, culprit, first_seen, last_seen, count, first_event_uid, last_event_uid,
         first_release, custom)
     SELECT f, l, k, lv, t, c, ts, ts, 0, u, u, r, cu
     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::smallint[], $5::text[],
                 $6::text[], $7::bigint[], $8::text[], $9::text[], $10::boolean[])
          AS x(f, l, k, lv, t, c, ts, u, r, cu)
     ORDER BY f
     ON CONFLICT (fingerprint) DO NOTHING";

const GROUPS_SELECT: &str = "SELECT id, fingerprint FROM event_groups WHERE fingerprint = ANY($1)";

/// The ids of the batch's groups, the new ones created with a count of 0
/// (the batch adds its events), in fingerprint order.
fn groups(
    tx: &mut Transaction<'_>,
    stmts: &mut Stmts,
    target: &PgTarget,
    events: &[Event],
    loggers: &HashMap<String, i64>,
    cache: &HashMap<String, i64>,
) -> Result<HashMap<String, i64>> {
    let fail = |e| target.error("storing groups in", e);
    let mut out = HashMap::new();
    let mut first: HashMap<&str, &Event> = HashMap::new();
    for ev in events {
        match cache.get(&ev.fingerprint) {
            Some(&id) => {
                out.insert(ev.fingerprint.clone(), id);
            }
            None => {
                first.entry(ev.fingerprint.as_str()).or_insert(ev);
            }
        }
    }
    if first.is_empty() {
        return Ok(out);
    }
    let mut fps: Vec<&str> = first.keys().copied().collect();
    fps.sort_unstable();
    let evs: Vec<&Event> = fps.iter().map(|f| first[f]).collect();
    let logger: Vec<i64> = evs.iter().map(|e| loggers[&e.logger]).collect();
    let kind: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
    let level: Vec<i16> = evs.iter().map(|e| e.level.as_i64() as i16).collect();
    let title: Vec<String> = evs.iter().map(|e| fingerprint::title(&e.message)).collect();
    let culprit: Vec<Option<String>> = evs
        .iter()
        .map(|e| fingerprint::culprit(&e.frames, e.location.as_ref()))
        .collect();
    let ts: Vec<i64> = evs.iter().map(|e| e.timestamp_ms).collect();
    let uid: Vec<String> = evs.iter().map(|e| e.id.to_string()).collect();
    let release: Vec<Option<&str>> = evs.iter().map(|e| e.release.as_deref()).collect();
    let custom: Vec<Option<bool>> = evs
        .iter()
        .map(|e| e.custom_fingerprint.then_some(true))
        .collect();
    let st = stmts.get(tx, GROUPS_INSERT).map_err(fail)?;
    tx.execute(
        &st,
        &[
            &fps, &logger, &kind, &level, &title, &culprit, &ts, &uid, &release, &custom,
        ],
    )
    .map_err(fail)?;
    let st = stmts.get(tx, GROUPS_SELECT).map_err(fail)?;
    for r in tx.query(&st, &[&fps]).map_err(fail)? {
        out.insert(r.get(1), r.get(0));
    }
    Ok(out)
}

const EVENTS_INSERT: &str =
    "INSERT INTO events (uid, ts, logger_id, level, kind, message, error_chain,
                     error_type, file, line, col, thread_name, thread_id, pid, app_name,
                     release, environment, tags, extra, group_id, backtrace_id, host_id,
                     alert_channels, breadcrumbs, redactions, snapshot_id, context,
                     home_id)
                 SELECT uid, ts, lg, lv, k, m, ch::jsonb, et, f, ln, cl, th, tid, pid, app,
                        rel, env, tg::jsonb, ex::jsonb, g, bt, h, ac, bc::jsonb, rd, sn,
                        cx::jsonb, hm
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::smallint[],
                             $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                             $10::int[], $11::int[], $12::text[], $13::bigint[],
                             $14::bigint[], $15::text[], $16::text[], $17::text[],
                             $18::text[], $19::text[], $20::bigint[], $21::bigint[],
                             $22::bigint[], $23::text[], $24::text[], $25::int[], $26::int[],
                             $27::bigint[], $28::text[], $29::bigint[])
                      AS x(uid, ts, lg, lv, k, m, ch, et, f, ln, cl, th, tid, pid, app, rel,
                           env, tg, ex, g, bt, h, ac, bc, rd, ord, sn, cx, hm)
                 ORDER BY ord
                 ON CONFLICT (uid) DO NOTHING RETURNING id, uid";

/// Inserts the events (1,000 rows a statement); the row id of each one
/// actually inserted, by its position in `events`.
// Long by design: one array per column of `EVENTS_INSERT`'s `unnest`, then
// the parameters in its `$1` to `$29` order; apart, a column and its
// placeholder could drift out of step.
fn insert_events(
    tx: &mut Transaction<'_>,
    stmts: &mut Stmts,
    target: &PgTarget,
    events: &[Event],
    links: &Links<'_>,
    host_id: Option<i64>,
) -> Result<Vec<(usize, i64)>> {
    let mut inserted = Vec::new();
    for (chunk_no, chunk) in events.chunks(1000).enumerate() {
        let base = chunk_no * 1000;
        let uid: Vec<String> = chunk.iter().map(|e| e.id.to_string()).collect();
        let ts: Vec<i64> = chunk.iter().map(|e| e.timestamp_ms).collect();
        let logger: Vec<i64> = chunk.iter().map(|e| links.loggers[&e.logger]).collect();
        let level: Vec<i16> = chunk.iter().map(|e| e.level.as_i64() as i16).collect();
        let kind: Vec<&str> = chunk.iter().map(|e| e.kind.as_str()).collect();
        let message: Vec<&str> = chunk.iter().map(|e| e.message.as_str()).collect();
        let chain: Vec<Option<String>> = chunk
            .iter()
            .map(|e| sql::insert::json_unless(e.chain.is_empty(), &e.chain))
            .collect();
        let error_type: Vec<Option<&str>> = chunk
            .iter()
            .map(|e| e.chain.first().and_then(|c| c.type_name.as_deref()))
            .collect();
        let file: Vec<Option<&str>> = chunk
            .iter()
            .map(|e| e.location.as_ref().map(|l| l.file.as_str()))
            .collect();
        let line: Vec<Option<i32>> = chunk
            .iter()
            .map(|e| e.location.as_ref().map(|l| l.line as i32))
            .collect();
        let col: Vec<Option<i32>> = chunk
            .iter()
            .map(|e| e.location.as_ref().map(|l| l.column as i32))
            .collect();
        let thread: Vec<Option<&str>> = chunk.iter().map(|e| e.thread_name.as_deref()).collect();
        let thread_id: Vec<i64> = chunk.iter().map(|e| e.thread_id as i64).collect();
        let pid: Vec<i64> = chunk.iter().map(|e| i64::from(e.pid)).collect();
        let app: Vec<Option<&str>> = chunk.iter().map(|e| e.app_name.as_deref()).collect();
        let release: Vec<Option<&str>> = chunk.iter().map(|e| e.release.as_deref()).collect();
        let env: Vec<Option<&str>> = chunk.iter().map(|e| e.environment.as_deref()).collect();
        let tags: Vec<Option<String>> = chunk
            .iter()
            .map(|e| sql::insert::json_unless(e.tags.is_empty(), &e.tags))
            .collect();
        let extra: Vec<Option<String>> = chunk
            .iter()
            .map(|e| sql::insert::json_unless(e.extra.is_empty(), &e.extra))
            .collect();
        let group: Vec<i64> = chunk.iter().map(|e| links.group_of(e).0).collect();
        let home: Vec<Option<i64>> = chunk.iter().map(|e| links.group_of(e).1).collect();
        let backtrace: Vec<Option<i64>> = chunk
            .iter()
            .map(|e| hash_of(e).and_then(|h| links.backtraces.get(&h).copied()))
            .collect();
        let host: Vec<Option<i64>> = chunk.iter().map(|_| host_id).collect();
        let channels: Vec<Option<String>> = chunk
            .iter()
            .map(|e| (!e.alert_channels.is_empty()).then(|| e.alert_channels.join(",")))
            .collect();
        let crumbs: Vec<Option<String>> = chunk
            .iter()
            .map(|e| sql::insert::json_unless(e.breadcrumbs.is_empty(), &e.breadcrumbs))
            .collect();
        let redactions: Vec<i32> = chunk.iter().map(|e| e.redactions as i32).collect();
        let context: Vec<Option<String>> = chunk
            .iter()
            .map(|e| sql::insert::json_unless(e.context.is_empty(), &e.context))
            .collect();
        let ord: Vec<i32> = (0..chunk.len() as i32).collect();
        let snapshot: Vec<Option<i64>> = chunk
            .iter()
            .map(|e| {
                let s = e.snapshot.as_ref()?;
                links
                    .snapshots
                    .iter()
                    .find(|(p, _)| *p == s)
                    .map(|(_, id)| *id)
            })
            .collect();
        let st = stmts
            .get(tx, EVENTS_INSERT)
            .map_err(|e| target.error("writing events to", e))?;
        let rows = tx
            .query(
                &st,
                &[
                    &uid,
                    &ts,
                    &logger,
                    &level,
                    &kind,
                    &message,
                    &chain,
                    &error_type,
                    &file,
                    &line,
                    &col,
                    &thread,
                    &thread_id,
                    &pid,
                    &app,
                    &release,
                    &env,
                    &tags,
                    &extra,
                    &group,
                    &backtrace,
                    &host,
                    &channels,
                    &crumbs,
                    &redactions,
                    &ord,
                    &snapshot,
                    &context,
                    &home,
                ],
            )
            .map_err(|e| target.error("writing events to", e))?;
        // An id sent twice in one batch is the first one's (as it is
        // stored), so the policy sees the events in the order they came.
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (i, u) in uid.iter().enumerate() {
            at.entry(u.as_str()).or_insert(i);
        }
        for r in rows {
            let (id, u): (i64, String) = (r.get(0), r.get(1));
            if let Some(&i) = at.get(u.as_str()) {
                inserted.push((base + i, id));
            }
        }
    }
    inserted.sort_unstable();
    Ok(inserted)
}

/// The rows a batch's events point to.
struct Links<'e> {
    loggers: HashMap<String, i64>,
    backtraces: HashMap<String, i64>,
    /// Each fingerprint's own group.
    groups: HashMap<String, i64>,
    /// Those of `groups` merged into another (see `sql::grouping`).
    merged: HashMap<i64, i64>,
    snapshots: Vec<(&'e Snapshot, i64)>,
}

impl Links<'_> {
    /// The group an event is stored in, and its own when merged.
    fn group_of(&self, ev: &Event) -> (i64, Option<i64>) {
        sql::grouping::placed(self.groups[&ev.fingerprint], &self.merged)
    }
}

/// Writes a batch in one transaction; see the module's description.
// Long by design: one transaction, its steps in the order they must run
// (loggers, stacks, groups, snapshots, events, attachments, alerts,
// summaries), and the caches filled only once it has committed.
pub(super) fn insert_batch(store: &mut PgStore, events: &[Event]) -> Result<BatchOutcome> {
    let mut out = BatchOutcome::default();
    if events.is_empty() {
        return Ok(out);
    }
    let target = store.target.clone();
    let fail = |e| target.error("writing a batch to", e);
    let host_id = store.host_id;
    let rules = store.rules.clone();
    let now = crate::util::time::now_ms();
    if store.backtraces.len() > 10_000 {
        store.backtraces.clear();
    }
    if store.groups.len() > 10_000 {
        store.groups.clear();
    }
    let mut summary = BatchSummary::default();
    let mut tx = store.client.transaction().map_err(fail)?;
    let mut loggers = HashMap::new();
    for ev in events {
        if loggers.contains_key(&ev.logger) {
            continue;
        }
        let id = match store.loggers.get(&ev.logger) {
            Some(&id) => id,
            None => sql::writer::logger_id(
                &mut PgConn {
                    client: &mut tx,
                    stmts: &mut store.stmts,
                    target: &target,
                },
                &ev.logger,
            )?,
        };
        loggers.insert(ev.logger.clone(), id);
    }
    let backtraces = backtraces(&mut tx, &target, events, &store.backtraces)?;
    let cache = &store.groups;
    sql::grouping::follow_earlier(
        &mut PgConn {
            client: &mut tx,
            stmts: &mut store.stmts,
            target: &target,
        },
        events,
        &|fp| cache.contains_key(fp),
        &mut |_, name| Ok(loggers[name]),
    )?;
    let groups = groups(
        &mut tx,
        &mut store.stmts,
        &target,
        events,
        &loggers,
        &store.groups,
    )?;
    let mut homes: Vec<i64> = groups.values().copied().collect();
    homes.sort_unstable();
    homes.dedup();
    let merged = store.merges.of(
        &mut PgConn {
            client: &mut tx,
            stmts: &mut store.stmts,
            target: &target,
        },
        &homes,
    )?;
    let mut links = Links {
        loggers,
        backtraces,
        groups,
        merged,
        snapshots: Vec::new(),
    };
    // The batch's snapshots first (events of a batch share theirs), so
    // each event row is written once, with its snapshot.
    for ev in events {
        if let Some(snap) = &ev.snapshot {
            if !links.snapshots.iter().any(|(s, _)| *s == snap) {
                let mut c = PgConn {
                    client: &mut tx,
                    stmts: &mut store.stmts,
                    target: &target,
                };
                let id = sql::insert::snapshot(&mut c, snap, ev.pid)?;
                links.snapshots.push((snap, id));
            }
        }
    }
    let inserted = insert_events(&mut tx, &mut store.stmts, &target, events, &links, host_id)?;
    out.written = inserted.len();
    if inserted.is_empty() {
        // All stored already (a retried batch): its snapshots go again.
        let ids: Vec<i64> = links.snapshots.iter().map(|(_, id)| *id).collect();
        if !ids.is_empty() {
            tx.execute("DELETE FROM snapshots WHERE id = ANY($1)", &[&ids])
                .map_err(fail)?;
        }
    }
    if !inserted.is_empty() {
        let new: Vec<&Event> = inserted.iter().map(|&(i, _)| &events[i]).collect();
        let mut c = PgConn {
            client: &mut tx,
            stmts: &mut store.stmts,
            target: &target,
        };
        for ev in &new {
            sql::insert::attachments(&mut c, &ev.id.to_string(), &ev.attachments)?;
        }
        let placed: HashMap<String, i64> = links
            .groups
            .keys()
            .map(|fp| {
                (
                    fp.clone(),
                    sql::grouping::placed(links.groups[fp], &links.merged).0,
                )
            })
            .collect();
        let batch = super::decide::Batch {
            rules: &rules,
            groups: &placed,
            merged: &links.merged,
            host_id,
            now,
            origin: store.run,
        };
        out.alerts =
            super::decide::bump_and_decide(&mut store.stmts, &mut tx, &target, &new, &batch)?;
        if out.alerts > 0 {
            out.outbox_mark = crate::store::sql::outbox::mark(&mut super::conn::PgConn {
                client: &mut tx,
                stmts: &mut store.stmts,
                target: &target,
            })?;
        }
        for ev in &new {
            let backtrace = hash_of(ev).and_then(|h| links.backtraces.get(&h).copied());
            summary.add(
                ev,
                links.group_of(ev),
                backtrace,
                store.host_name.as_deref(),
                &store.texts,
            );
        }
        super::summary::write(&mut store.stmts, &mut tx, &target, &summary)?;
    }
    tx.commit().map_err(fail)?;
    store.texts.remember(&summary);
    for (name, id) in links.loggers {
        store.loggers.insert(name, id);
    }
    store.backtraces.extend(links.backtraces);
    store.groups.extend(links.groups);
    Ok(out)
}
