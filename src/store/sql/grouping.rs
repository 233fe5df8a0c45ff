//! The writer's side of triage, once for every backend: the grouping
//! configuration a store's events were made with (`grouping_configs`),
//! new fingerprints that follow an earlier configuration's group, and
//! merged groups (`event_groups.merged_into`): an event whose fingerprint's
//! group was merged into another is stored in that one, its own group
//! noted (`events.home_id`), so an unmerge can take it back.
//!
//! A merge and a batch may run at once (another process): the batch takes
//! which of its groups are merged from what its writer read ([`Merges`]),
//! and checks it once it holds their rows ([`check_merges`]); a merge that
//! came between makes the batch fail as busy, and it is written again with
//! the merges read anew (nothing lost).

use std::collections::HashMap;

use super::{params, Conn, Dialect, Lock};
use crate::error::{Error, ErrorKind, Fault, Result};
use crate::event::{Event, EventKind};
use crate::pipeline::fingerprint;
use crate::pipeline::grouping::EARLIER_LIMIT;
use crate::settings::grouping::GroupingConfig;

/// The store's grouping: the configuration in use and the earlier ones
/// still in transition (newest first). With `current`, a different one is
/// recorded as the new configuration in use (the one before it stays in
/// transition until `errsnap regroup` ends it); without, nothing changes.
pub(crate) fn adopt(
    c: &mut dyn Conn,
    current: Option<&GroupingConfig>,
) -> Result<(GroupingConfig, Vec<GroupingConfig>)> {
    let doing = "reading the grouping configuration";
    let live = |c: &mut dyn Conn| -> Result<Vec<String>> {
        c.map(
            doing,
            "SELECT config FROM grouping_configs WHERE retired_at IS NULL ORDER BY id DESC",
            &[],
            |r| r.get(0),
        )
    };
    let mut texts = live(c)?;
    if let Some(current) = current {
        let text = current.to_text();
        if texts.first() != Some(&text) {
            c.in_transaction("recording the grouping configuration", |c| {
                let now = crate::util::time::now_ms();
                let insert = "INSERT INTO grouping_configs (config, adopted_at) VALUES (?1, ?2)";
                if texts.is_empty() {
                    let grouped: bool =
                        c.one(doing, "SELECT EXISTS (SELECT 1 FROM event_groups)", &[])?;
                    // Events grouped before configurations were kept: the
                    // first algorithm's.
                    if grouped {
                        let captured = GroupingConfig::captured().to_text();
                        c.execute(doing, insert, params![captured, now])?;
                    }
                }
                c.execute(doing, insert, params![text, now])?;
                // Only the newest few stay in transition.
                c.execute(
                    doing,
                    "UPDATE grouping_configs SET retired_at = ?1
                     WHERE retired_at IS NULL AND id NOT IN (SELECT id FROM
                         (SELECT id FROM grouping_configs WHERE retired_at IS NULL
                          ORDER BY id DESC LIMIT ?2) AS newest)",
                    params![now, (EARLIER_LIMIT + 1) as i64],
                )?;
                Ok(())
            })?;
            texts = live(c)?;
        }
    }
    let mut configs = texts
        .iter()
        .filter_map(|t| GroupingConfig::from_text(t).map(|g| (t.clone(), g)));
    let (used_text, used) = match current {
        Some(cur) => (cur.to_text(), cur.clone()),
        None => configs.next().unwrap_or_else(|| {
            (
                GroupingConfig::default().to_text(),
                GroupingConfig::default(),
            )
        }),
    };
    let mut earlier: Vec<(String, GroupingConfig)> = Vec::new();
    for (t, g) in configs {
        if t != used_text && !earlier.iter().any(|(e, _)| *e == t) {
            earlier.push((t, g));
        }
    }
    Ok((used, earlier.into_iter().map(|(_, g)| g).collect()))
}

/// Ends a transition: every configuration but the one in use retired
/// (`errsnap regroup` has grouped every event by it).
pub(crate) fn retire_earlier(c: &mut dyn Conn, current: &GroupingConfig) -> Result<()> {
    let now = crate::util::time::now_ms();
    let text = current.to_text();
    let doing = "recording the grouping configuration";
    c.execute(
        doing,
        "UPDATE grouping_configs SET retired_at = ?1 WHERE retired_at IS NULL AND config <> ?2",
        params![now, text],
    )?;
    let used: bool = c.one(
        doing,
        "SELECT EXISTS (SELECT 1 FROM grouping_configs WHERE retired_at IS NULL)",
        &[],
    )?;
    if !used {
        c.execute(
            doing,
            "INSERT INTO grouping_configs (config, adopted_at) VALUES (?1, ?2)",
            params![text, now],
        )?;
    }
    Ok(())
}

/// For the batch's events in transition whose fingerprint has no group
/// yet: a group of that fingerprint that points at the group one of its
/// earlier fingerprints has (an alias, as a merge makes), so the events
/// stay where their kind was. `known`: fingerprints whose group exists;
/// `logger`: a logger's id by name.
pub(crate) fn follow_earlier(
    c: &mut dyn Conn,
    events: &[Event],
    known: &dyn Fn(&str) -> bool,
    logger: &mut dyn FnMut(&mut dyn Conn, &str) -> Result<i64>,
) -> Result<()> {
    let mut asked: Vec<&Event> = Vec::new();
    for ev in events {
        if !ev.earlier_fingerprints.is_empty()
            && !known(&ev.fingerprint)
            && !asked.iter().any(|a| a.fingerprint == ev.fingerprint)
        {
            asked.push(ev);
        }
    }
    if asked.is_empty() {
        return Ok(());
    }
    let doing = "following the earlier grouping";
    let d = c.dialect();
    let new: Vec<String> = asked.iter().map(|e| e.fingerprint.clone()).collect();
    let have: Vec<String> = c.map(
        doing,
        &format!(
            "SELECT fingerprint FROM event_groups WHERE {}",
            d.any("fingerprint", 1)
        ),
        params![new],
        |r| r.get(0),
    )?;
    asked.retain(|e| !have.contains(&e.fingerprint));
    if asked.is_empty() {
        return Ok(());
    }
    let earlier: Vec<String> = asked
        .iter()
        .flat_map(|e| e.earlier_fingerprints.iter().cloned())
        .collect();
    let groups: HashMap<String, i64> = c
        .map(
            doing,
            &format!(
                "SELECT fingerprint, coalesce(merged_into, id) FROM event_groups WHERE {}",
                d.any("fingerprint", 1)
            ),
            params![earlier],
            |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
        )?
        .into_iter()
        .collect();
    for ev in asked {
        let Some(&target) = ev.earlier_fingerprints.iter().find_map(|fp| groups.get(fp)) else {
            continue;
        };
        let logger_id = logger(c, &ev.logger)?;
        let uid = ev.id.to_string();
        let group = NewGroup {
            follows: Some(target),
            ..NewGroup::of(ev, logger_id, &uid)
        };
        new_group(c, &group)?;
    }
    Ok(())
}

/// The merged groups a writer knows of (group → the group that took it):
/// read once, and again after a batch failed (one that met a merge fails
/// as busy: [`check_merges`] is what makes a copy that went stale safe).
/// A batch then asks no more than the groups it locks anyway.
#[derive(Debug, Default)]
pub(crate) struct Merges(Known);

#[derive(Debug, Default)]
enum Known {
    #[default]
    Unread,
    All(HashMap<i64, i64>),
    /// More than [`MERGES_KEPT`]: asked batch by batch.
    Many,
}

/// The merged groups a writer keeps at most.
const MERGES_KEPT: usize = 100_000;

impl Merges {
    /// Among the groups `homes`, those merged into another.
    pub(crate) fn of(&mut self, c: &mut dyn Conn, homes: &[i64]) -> Result<HashMap<i64, i64>> {
        if let Known::Unread = self.0 {
            let sql = format!(
                "SELECT id, merged_into FROM event_groups WHERE merged_into IS NOT NULL LIMIT {}",
                MERGES_KEPT + 1
            );
            let all: HashMap<i64, i64> = c
                .map("reading merged groups", &sql, &[], |r| {
                    Ok((r.get::<i64>(0)?, r.get::<i64>(1)?))
                })?
                .into_iter()
                .collect();
            self.0 = if all.len() > MERGES_KEPT {
                Known::Many
            } else {
                Known::All(all)
            };
        }
        match &self.0 {
            Known::All(all) => Ok(homes
                .iter()
                .filter_map(|h| all.get(h).map(|into| (*h, *into)))
                .collect()),
            _ => merged(c, homes),
        }
    }

    /// Forgets what it read (after a failed batch).
    pub(crate) fn forget(&mut self) {
        self.0 = Known::Unread;
    }
}

/// What a new group's row is made of: its fingerprint and what the
/// event that first names it says.
pub(crate) struct NewGroup<'a> {
    pub(crate) fingerprint: &'a str,
    pub(crate) logger_id: i64,
    pub(crate) kind: EventKind,
    pub(crate) level: i64,
    pub(crate) title: String,
    pub(crate) culprit: Option<String>,
    pub(crate) ts: i64,
    pub(crate) uid: &'a str,
    pub(crate) release: Option<&'a str>,
    /// The group it points at (a fingerprint that followed an earlier
    /// grouping); `None` for a group of its own.
    pub(crate) follows: Option<i64>,
    /// The code chose its fingerprint.
    pub(crate) custom: bool,
}

impl<'a> NewGroup<'a> {
    /// The group of `ev`'s fingerprint, first named by it.
    pub(crate) fn of(ev: &'a Event, logger_id: i64, uid: &'a str) -> NewGroup<'a> {
        NewGroup {
            fingerprint: &ev.fingerprint,
            logger_id,
            kind: ev.kind,
            level: ev.level.as_i64(),
            title: fingerprint::title(&ev.message),
            culprit: fingerprint::culprit(&ev.frames, ev.location.as_ref()),
            ts: ev.timestamp_ms,
            uid,
            release: ev.release.as_deref(),
            follows: None,
            custom: ev.custom_fingerprint,
        }
    }
}

/// The group of a fingerprint, made (with a count of 0: the events added
/// to it count) if it does not exist yet; its id.
pub(crate) fn new_group(c: &mut dyn Conn, g: &NewGroup<'_>) -> Result<i64> {
    let doing = "storing the event's group";
    let d = c.dialect();
    let sql = format!(
        "INSERT INTO event_groups (fingerprint, logger_id, kind, level, title, culprit,
             first_seen, last_seen, count, first_event_uid, last_event_uid, first_release,
             merged_into, followed, custom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, ?8, ?8, ?9, ?10, ?11, ?12) {}",
        d.upsert("event_groups", "fingerprint", "", d == Dialect::Mysql)
    );
    let args = params![
        g.fingerprint,
        g.logger_id,
        g.kind.as_str(),
        g.level,
        g.title,
        g.culprit,
        g.ts,
        g.uid,
        g.release,
        g.follows,
        g.follows.map(|_| true),
        g.custom.then_some(true)
    ];
    if d == Dialect::Mysql {
        return c.insert_id(doing, &sql, args);
    }
    c.execute(doing, &sql, args)?;
    c.one(
        doing,
        "SELECT id FROM event_groups WHERE fingerprint = ?1",
        params![g.fingerprint],
    )
}

/// Among the groups `homes` (of the batch's fingerprints), those merged
/// into another: group → the group its events go to.
pub(crate) fn merged(c: &mut dyn Conn, homes: &[i64]) -> Result<HashMap<i64, i64>> {
    if homes.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, merged_into FROM event_groups WHERE {} AND merged_into IS NOT NULL",
        c.dialect().any("id", 1)
    );
    Ok(c.map(
        "reading merged groups",
        &sql,
        params![homes.to_vec()],
        |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
    )?
    .into_iter()
    .collect())
}

/// Locks the batch's groups (`targets`, and the merged `homes` its events
/// came from), all at once in fingerprint order, and checks that no merge
/// or unmerge changed them from what [`Merges`] said: else the batch fails
/// as busy (written again, with the groups as they are then). Returns each
/// group's status columns for the alert policy.
pub(crate) fn check_merges(
    c: &mut dyn Conn,
    targets: &[i64],
    homes: &HashMap<i64, i64>,
) -> Result<Vec<GroupState>> {
    let mut ids: Vec<i64> = targets.to_vec();
    ids.extend(homes.keys().copied());
    let d = c.dialect();
    let sql = format!(
        "SELECT id, status, resolved_next, resolved_release, merged_into FROM event_groups
         WHERE {} ORDER BY fingerprint{}",
        d.any("id", 1),
        d.lock(Lock::NoKeyUpdate)
    );
    type Locked = (i64, String, bool, Option<String>, Option<i64>);
    let rows: Vec<Locked> = c.map("reading the groups' status", &sql, params![ids], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    for (id, _, _, _, into) in &rows {
        if *into != homes.get(id).copied() {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "group {id} was merged or unmerged while a batch was written: written again"
                ),
            })
            .with_fault(Fault::Busy));
        }
    }
    Ok(rows
        .into_iter()
        .filter(|r| !homes.contains_key(&r.0))
        .map(|(id, s, n, r, _)| (id, s, n, r))
        .collect())
}

/// A locked group's id, status, whether it is resolved in the next
/// release, and the release it was resolved in.
pub(crate) type GroupState = (i64, String, bool, Option<String>);

/// The group an event is stored in, and its own group when that was
/// merged into another (`events.home_id`).
pub(crate) fn placed(home: i64, merged: &HashMap<i64, i64>) -> (i64, Option<i64>) {
    match merged.get(&home) {
        Some(&into) => (into, Some(home)),
        None => (home, None),
    }
}
