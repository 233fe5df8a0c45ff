//! Writing a batch of resolved events: one `BEGIN IMMEDIATE` transaction
//! per batch; loggers, backtraces, snapshots and groups are shared rows,
//! looked up (cached) or created; each group is updated once per batch;
//! the alert decisions are made inside the same transaction.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::conn::Lite;
use super::{fail, SqliteStore, CACHE_LIMIT};
use crate::error::Result;
use crate::event::{Event, Snapshot};
use crate::pipeline::fingerprint;
use crate::store::seam::BatchOutcome;
use crate::store::sql;
use crate::store::sql::alerts::{by_group, decide_batch, Stamp};
use crate::store::summary::BatchSummary;

/// The rows an event points to.
struct Links {
    logger: i64,
    backtrace: Option<i64>,
    snapshot: Option<i64>,
    group: i64,
    /// The group of the event's own fingerprint, when merged into `group`.
    home: Option<i64>,
}

/// What one batch created so far (forgotten again if it does not commit).
#[derive(Default)]
struct Created {
    loggers: Vec<String>,
    backtraces: Vec<String>,
    groups: HashMap<String, i64>,
}

impl SqliteStore {
    /// Writes a batch in one `BEGIN IMMEDIATE` transaction. Events whose id is
    /// already stored are skipped (so a retried or re-imported batch is
    /// written exactly once). Returns how many were new.
    pub(crate) fn insert_batch(&mut self, events: &[Event]) -> Result<BatchOutcome> {
        if self.backtraces.len() > CACHE_LIMIT {
            self.backtraces.clear();
        }
        if self.groups.len() > CACHE_LIMIT {
            self.groups.clear();
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| fail("starting a write transaction", e))?;
        let mut out = BatchOutcome::default();
        let now = crate::util::time::now_ms();
        let mut created = Created::default();
        // Each new event with its group.
        let mut new: Vec<(i64, &Event)> = Vec::new();
        let mut last_snapshot: Option<(&Snapshot, i64)> = None;
        let mut summary = BatchSummary::default();
        // Fingerprints new under the grouping in use join their earlier
        // group (a transition).
        let cache = &self.groups;
        sql::grouping::follow_earlier(
            &mut Lite(&tx),
            events,
            &|fp| cache.contains_key(fp),
            &mut |c, name| sql::writer::logger_id(c, name),
        )?;
        let mut linked = Vec::with_capacity(events.len());
        for ev in events {
            let uid = ev.id.to_string();
            let links = Links {
                logger: logger_of(&tx, &mut self.loggers, &mut created, &ev.logger)?,
                backtrace: backtrace_of(&tx, &mut self.backtraces, &mut created, ev)?,
                snapshot: snapshot_of(&tx, &mut last_snapshot, ev)?,
                group: 0,
                home: None,
            };
            let links = Links {
                group: group_of(&tx, &self.groups, &mut created, ev, links.logger, &uid)?,
                ..links
            };
            linked.push((ev, uid, links));
        }
        // Events of a merged group go to the one it was merged into.
        let mut homes: Vec<i64> = linked.iter().map(|(_, _, l)| l.group).collect();
        homes.sort_unstable();
        homes.dedup();
        let merged = self.merges.of(&mut Lite(&tx), &homes)?;
        for (ev, uid, mut links) in linked {
            (links.group, links.home) = sql::grouping::placed(links.group, &merged);
            // A retried or re-imported event (same id) is written once.
            if insert_event(&tx, ev, &uid, &links, self.host_id)? == 0 {
                continue;
            }
            sql::insert::attachments(&mut Lite(&tx), &uid, &ev.attachments)?;
            out.written += 1;
            summary.add(
                ev,
                (links.group, links.home),
                links.backtrace,
                self.host_name.as_deref(),
                &self.texts,
            );
            new.push((links.group, ev));
        }
        let groups = by_group(new);
        let stamp = Stamp {
            now,
            origin: self.run,
        };
        let (alerts, deltas) = decide_batch(&mut Lite(&tx), &groups, &self.rules, stamp, &merged)?;
        out.alerts = alerts;
        sql::insert::update_groups(&mut Lite(&tx), &deltas)?;
        if out.alerts > 0 {
            out.outbox_mark = crate::store::sql::outbox::mark(&mut super::conn::Lite(&tx))?;
        }
        super::summary::write(&tx, &summary)?;
        match tx.commit() {
            Ok(()) => {
                self.texts.remember(&summary);
                self.groups.extend(created.groups);
                Ok(out)
            }
            Err(e) => {
                // The ids handed out during the failed transaction may not
                // exist: forget them.
                for name in created.loggers {
                    self.loggers.remove(&name);
                }
                for hash in created.backtraces {
                    self.backtraces.remove(&hash);
                }
                Err(fail("committing a batch of events", e))
            }
        }
    }
}

fn logger_of(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    created: &mut Created,
    name: &str,
) -> Result<i64> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    let id = sql::writer::logger_id(&mut Lite(tx), name)?;
    created.loggers.push(name.to_owned());
    cache.insert(name.to_owned(), id);
    Ok(id)
}

fn snapshot_of<'e>(
    tx: &rusqlite::Transaction<'_>,
    last: &mut Option<(&'e Snapshot, i64)>,
    ev: &'e Event,
) -> Result<Option<i64>> {
    Ok(match (&ev.snapshot, *last) {
        (None, _) => None,
        (Some(s), Some((prev, id))) if prev == s => Some(id),
        (Some(s), _) => {
            let id = sql::insert::snapshot(&mut Lite(tx), s, ev.pid)?;
            *last = Some((s, id));
            Some(id)
        }
    })
}

fn group_of(
    tx: &rusqlite::Transaction<'_>,
    cache: &HashMap<String, i64>,
    created: &mut Created,
    ev: &Event,
    logger_id: i64,
    uid: &str,
) -> Result<i64> {
    if let Some(&id) = cache
        .get(&ev.fingerprint)
        .or(created.groups.get(&ev.fingerprint))
    {
        return Ok(id);
    }
    let id = ensure_group(tx, ev, logger_id, uid)?;
    created.groups.insert(ev.fingerprint.clone(), id);
    Ok(id)
}

/// Inserts the event's row; 0 when an event of that id is already stored.
fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    ev: &Event,
    uid: &str,
    links: &Links,
    host_id: Option<i64>,
) -> Result<usize> {
    let chain = sql::insert::json_unless(ev.chain.is_empty(), &ev.chain);
    let tags = sql::insert::json_unless(ev.tags.is_empty(), &ev.tags);
    let extra = sql::insert::json_unless(ev.extra.is_empty(), &ev.extra);
    let breadcrumbs = sql::insert::json_unless(ev.breadcrumbs.is_empty(), &ev.breadcrumbs);
    let context = sql::insert::json_unless(ev.context.is_empty(), &ev.context);
    tx.prepare_cached(
        "INSERT INTO events (uid, ts, logger_id, level, kind, message, error_chain,
             error_type, file, line, col, thread_name, thread_id, pid, app_name,
             release, environment, tags, extra, group_id, backtrace_id, snapshot_id,
             host_id, alert_channels, breadcrumbs, redactions, context, home_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
             ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)
         ON CONFLICT(uid) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            uid,
            ev.timestamp_ms,
            links.logger,
            ev.level.as_i64(),
            ev.kind.as_str(),
            ev.message,
            chain,
            ev.chain.first().and_then(|c| c.type_name.as_deref()),
            ev.location.as_ref().map(|l| l.file.as_str()),
            ev.location.as_ref().map(|l| l.line),
            ev.location.as_ref().map(|l| l.column),
            ev.thread_name,
            ev.thread_id as i64,
            ev.pid,
            ev.app_name,
            ev.release,
            ev.environment,
            tags,
            extra,
            links.group,
            links.backtrace,
            links.snapshot,
            host_id,
            (!ev.alert_channels.is_empty()).then(|| ev.alert_channels.join(",")),
            breadcrumbs,
            ev.redactions,
            context,
            links.home,
        ])
    })
    .map_err(|e| fail("inserting an event", e))
}

/// The backtrace row of an event's frames (shared by every event with the
/// same frames), created with its frames if new.
fn backtrace_of(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    created: &mut Created,
    ev: &Event,
) -> Result<Option<i64>> {
    if ev.frames.is_empty() {
        return Ok(None);
    }
    let hash = match &ev.backtrace_hash {
        Some(h) => h.to_string(),
        None => fingerprint::backtrace_hash(&ev.frames),
    };
    if let Some(&id) = cache.get(&hash) {
        return Ok(Some(id));
    }
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM backtraces WHERE hash = ?1")
        .and_then(|mut s| s.query_row([&hash], |r| r.get(0)).optional())
        .map_err(|e| fail("looking up a backtrace", e))?;
    let id = match existing {
        Some(id) => id,
        None => insert_backtrace(tx, &hash, ev)?,
    };
    cache.insert(hash.clone(), id);
    created.backtraces.push(hash);
    Ok(Some(id))
}

fn insert_backtrace(tx: &rusqlite::Transaction<'_>, hash: &str, ev: &Event) -> Result<i64> {
    let id: i64 = tx
        .query_row(
            "INSERT INTO backtraces (hash, frame_count, resolved) VALUES (?1, ?2, ?3) RETURNING id",
            params![hash, ev.frames.len() as i64, ev.symbols_resolved],
            |r| r.get(0),
        )
        .map_err(|e| fail("inserting a backtrace", e))?;
    // The writer's file is migrated: it has the build-id column.
    sql::maintenance::insert_frames(&mut Lite(tx), id, &ev.frames, true)?;
    Ok(id)
}

/// The group of an event's fingerprint, created (with a count of 0: the
/// batch adds its events) if it does not exist yet.
fn ensure_group(
    tx: &rusqlite::Transaction<'_>,
    ev: &Event,
    logger_id: i64,
    uid: &str,
) -> Result<i64> {
    let err = |e| fail("creating the event's group", e);
    let title = fingerprint::title(&ev.message);
    let culprit = fingerprint::culprit(&ev.frames, ev.location.as_ref());
    tx.prepare_cached(
        "INSERT INTO event_groups (fingerprint, logger_id, kind, level, title, culprit,
             first_seen, last_seen, count, first_event_uid, last_event_uid, first_release,
             custom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, ?8, ?8, ?9, ?10)
         ON CONFLICT(fingerprint) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            ev.fingerprint,
            logger_id,
            ev.kind.as_str(),
            ev.level.as_i64(),
            title,
            culprit,
            ev.timestamp_ms,
            uid,
            ev.release,
            ev.custom_fingerprint.then_some(1),
        ])
    })
    .map_err(err)?;
    tx.prepare_cached("SELECT id FROM event_groups WHERE fingerprint = ?1")
        .and_then(|mut s| s.query_row([&ev.fingerprint], |r| r.get(0)))
        .map_err(err)
}
