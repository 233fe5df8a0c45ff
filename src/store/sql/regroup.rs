//! `errsnap regroup`: every stored event grouped again by a grouping
//! configuration, from its stored (redacted) fields, by the function the
//! writer uses (`pipeline::grouping::group`); events whose fingerprint the
//! code chose stay where they are. A dry run says which events would move
//! where; a run moves them (`sql::merge::transfer`, a page at a time),
//! undoes the pointers an earlier grouping left (`followed`, never a merge
//! someone made), merges a group left without events into the one that
//! took most of them, and ends the transition: the store's configuration is
//! the one given.

use std::collections::{BTreeMap, HashMap};

use super::rows::json;
use super::{params, Conn, Value};
use crate::error::Result;
use crate::event::{ChainLink, EventKind, Frame, Location};
use crate::pipeline::fingerprint;
use crate::pipeline::grouping::{group, Grouped, Subject};
use crate::settings::grouping::GroupingConfig;
use crate::store::read::{RegroupMove, RegroupReport};

/// Events read (and moved) at a time.
const PAGE: i64 = 1000;
/// Stacks whose frames are kept while regrouping.
const FRAME_CACHE: usize = 4096;

/// A group as regrouping sees it.
#[derive(Debug, Clone)]
struct Known {
    title: String,
    /// Merged into another by someone (a pointer of an earlier grouping
    /// is undone first, so it is none).
    merged_into: Option<i64>,
}

/// The groups by id and by fingerprint.
#[derive(Default)]
struct Groups {
    by_id: HashMap<i64, Known>,
    by_fingerprint: HashMap<String, i64>,
}

impl Groups {
    fn read(c: &mut dyn Conn) -> Result<Groups> {
        let mut g = Groups::default();
        let rows = c.map(
            "reading groups",
            "SELECT id, fingerprint, title, merged_into, followed FROM event_groups",
            &[],
            |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<Option<i64>>(3)?,
                    r.get::<Option<bool>>(4)?.unwrap_or(false),
                ))
            },
        )?;
        for (id, fp, title, into, followed) in rows {
            g.by_fingerprint.insert(fp.clone(), id);
            g.by_id.insert(
                id,
                Known {
                    title,
                    merged_into: into.filter(|_| !followed),
                },
            );
        }
        Ok(g)
    }

    /// Where events of `fp` go: their own group (if it exists) and the
    /// group it is merged into.
    fn place(&self, fp: &str) -> Option<(i64, i64)> {
        let home = *self.by_fingerprint.get(fp)?;
        let into = self.by_id.get(&home).and_then(|k| k.merged_into);
        Some((home, into.unwrap_or(home)))
    }
}

/// One stored event's fields, as grouping reads them.
struct Stored {
    id: i64,
    uid: String,
    logger: String,
    logger_id: i64,
    kind: EventKind,
    level: i64,
    ts: i64,
    message: String,
    chain: Vec<ChainLink>,
    location: Option<Location>,
    tags: BTreeMap<String, String>,
    backtrace: Option<i64>,
    group: i64,
    home: Option<i64>,
    custom: bool,
    release: Option<String>,
}

fn page(c: &mut dyn Conn, after: i64) -> Result<Vec<Stored>> {
    c.map(
        "reading events to regroup",
        "SELECT e.id, e.uid, l.name, e.logger_id, e.kind, e.level, e.ts, e.message,
                e.error_chain, e.file, e.line, e.col, e.tags, e.backtrace_id, e.group_id,
                e.home_id, o.custom, e.\"release\"
         FROM events e JOIN loggers l ON l.id = e.logger_id
         JOIN event_groups o ON o.id = coalesce(e.home_id, e.group_id)
         WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
        params![after, PAGE],
        |r| {
            let file: Option<String> = r.get(9)?;
            Ok(Stored {
                id: r.get(0)?,
                uid: r.get(1)?,
                logger: r.get(2)?,
                logger_id: r.get(3)?,
                kind: EventKind::from_name(&r.get::<String>(4)?).unwrap_or(EventKind::Error),
                level: r.get(5)?,
                ts: r.get(6)?,
                message: r.get(7)?,
                chain: json(r, 8)?.unwrap_or_default(),
                location: file
                    .map(|file| -> Result<Location> {
                        Ok(Location {
                            file,
                            line: r.get::<Option<u32>>(10)?.unwrap_or(0),
                            column: r.get::<Option<u32>>(11)?.unwrap_or(0),
                        })
                    })
                    .transpose()?,
                tags: json(r, 12)?.unwrap_or_default(),
                backtrace: r.get(13)?,
                group: r.get(14)?,
                home: r.get(15)?,
                custom: r.get::<Option<bool>>(16)?.unwrap_or(false),
                release: r.get(17)?,
            })
        },
    )
}

fn frames_of(c: &mut dyn Conn, backtrace: i64) -> Result<Vec<Frame>> {
    c.map(
        "reading a stack",
        "SELECT function, file, line, in_app FROM frames WHERE backtrace_id = ?1 ORDER BY idx",
        params![backtrace],
        |r| Ok(Frame::named(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Where one page's moving events go: (from group, to group, own group
/// when `to` took it by a merge) → the events, in order.
type Moves = BTreeMap<(i64, i64, Option<i64>), Vec<String>>;

/// Groups every stored event again by `config`; with `apply`, moves them.
///
/// # Errors
/// The store failed (a run stops where it was: what moved stays moved and
/// counted, and running it again finishes it).
// Long by design: one pass over the events, a page at a time, each page's
// moves made before the next is read; then the groups left empty and the
// transition's end.
pub(crate) fn regroup(
    c: &mut dyn Conn,
    config: &GroupingConfig,
    apply: bool,
) -> Result<RegroupReport> {
    if apply {
        // The pointers an earlier grouping left are undone: the events
        // are placed by this one.
        c.execute(
            "regrouping",
            "UPDATE event_groups SET merged_into = NULL, followed = NULL WHERE followed",
            &[],
        )?;
    }
    let mut groups = Groups::read(c)?;
    let mut report = RegroupReport {
        applied: apply,
        ..RegroupReport::default()
    };
    let mut totals: BTreeMap<(i64, String), (Option<i64>, u64)> = BTreeMap::new();
    let mut taken: HashMap<i64, HashMap<i64, u64>> = HashMap::new();
    let mut frames: HashMap<i64, Vec<Frame>> = HashMap::new();
    let mut after = 0;
    loop {
        let events = page(c, after)?;
        let Some(last) = events.last() else { break };
        after = last.id;
        let mut moves = Moves::new();
        for ev in &events {
            report.scanned += 1;
            if ev.custom {
                report.custom += 1;
                continue;
            }
            let stack: &[Frame] = match ev.backtrace {
                Some(b) => {
                    if !frames.contains_key(&b) {
                        if frames.len() >= FRAME_CACHE {
                            frames.clear();
                        }
                        let f = frames_of(c, b)?;
                        frames.insert(b, f);
                    }
                    &frames[&b]
                }
                None => &[],
            };
            let s = Subject {
                logger: &ev.logger,
                kind: ev.kind,
                message: &ev.message,
                chain: &ev.chain,
                frames: stack,
                location: ev.location.as_ref(),
                tags: &ev.tags,
            };
            let fp = match group(config, &s, None) {
                Grouped::Fingerprint { fingerprint, .. } => fingerprint,
                Grouped::Ignored => {
                    report.ignored += 1;
                    continue;
                }
            };
            let own = ev.home.unwrap_or(ev.group);
            let (home, to) = match groups.place(&fp) {
                Some(p) => p,
                None if apply => {
                    let id = make_group(c, &fp, ev, stack)?;
                    groups.by_fingerprint.insert(fp.clone(), id);
                    groups.by_id.insert(
                        id,
                        Known {
                            title: fingerprint::title(&ev.message),
                            merged_into: None,
                        },
                    );
                    (id, id)
                }
                None => (-1, -1),
            };
            if (home, to) == (own, ev.group) {
                continue;
            }
            report.events += 1;
            let entry = totals
                .entry((ev.group, fp.clone()))
                .or_insert((Some(to).filter(|t| *t >= 0), 0));
            entry.1 += 1;
            if apply {
                *taken.entry(ev.group).or_default().entry(to).or_insert(0) += 1;
                moves
                    .entry((ev.group, to, (home != to).then_some(home)))
                    .or_default()
                    .push(ev.uid.clone());
            }
        }
        let which = c.dialect().any("e.uid", 3);
        for ((from, to, home), uids) in moves {
            c.in_transaction("regrouping", |c| {
                super::merge::lock(c, &[from, to])?;
                super::merge::transfer(
                    c,
                    &super::merge::Transfer {
                        from,
                        to,
                        home,
                        which: &which,
                        args: vec![Value::Texts(uids.clone())],
                    },
                )
            })?;
        }
    }
    for ((from, fp), (to, events)) in totals {
        report.moves.push(RegroupMove {
            from,
            from_title: groups
                .by_id
                .get(&from)
                .map(|k| k.title.clone())
                .unwrap_or_default(),
            to: to.filter(|t| *t != from),
            fingerprint: fp,
            events,
        });
    }
    if apply {
        // A group left without events joins the one that took most.
        for (from, to) in taken {
            let left: bool = c.one(
                "regrouping",
                "SELECT EXISTS (SELECT 1 FROM events WHERE group_id = ?1)",
                params![from],
            )?;
            let best = to.into_iter().max_by_key(|(g, n)| (*n, -g)).map(|(g, _)| g);
            if let (false, Some(best)) = (left, best) {
                if best != from
                    && groups
                        .by_id
                        .get(&from)
                        .is_some_and(|k| k.merged_into.is_none())
                {
                    super::merge::merge(c, best, &[from])?;
                    report.emptied.push(from);
                }
            }
        }
        super::grouping::retire_earlier(c, config)?;
    }
    Ok(report)
}

/// Makes the group of a fingerprint first seen while regrouping (count 0:
/// the events moved into it count).
fn make_group(c: &mut dyn Conn, fp: &str, ev: &Stored, frames: &[Frame]) -> Result<i64> {
    super::grouping::new_group(
        c,
        &super::grouping::NewGroup {
            fingerprint: fp,
            logger_id: ev.logger_id,
            kind: ev.kind,
            level: ev.level,
            title: fingerprint::title(&ev.message),
            culprit: fingerprint::culprit(frames, ev.location.as_ref()),
            ts: ev.ts,
            uid: &ev.uid,
            release: ev.release.as_deref(),
            follows: None,
            custom: false,
        },
    )
}
