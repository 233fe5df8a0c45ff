//! The alert policy (`store::policy`) on the shared SQL layer: its inputs
//! read (each channel's memory, locked where rows lock; the group's events
//! in a window) and its plan written (outbox rows, channel memory), inside
//! the batch's transaction, for every backend.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{params, Conn, Lock, ToValue};
use crate::error::Result;
use crate::event::Event;
use crate::store::policy::{self, ChannelMemory, GroupState, NewEvent, Plan, RowStatus};
use crate::store::seam::AlertRules;

/// Outbox rows written by one statement.
const ROWS_PER_STATEMENT: usize = 64;

/// What a batch adds to one group, and what the alert policy found for
/// it: the group's row is then updated once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupDelta {
    pub(crate) group: i64,
    pub(crate) count: i64,
    pub(crate) level: i64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    /// The newest event's id (the later one of two at the same time).
    pub(crate) last_uid: String,
    /// Still quiet (resolved in the next release, not seen in a newer one).
    pub(crate) quiet: bool,
    /// Reopened by an event: its release and time.
    pub(crate) reopened: Option<(Option<String>, i64)>,
}

/// A batch's new events by group, the groups in the order the batch
/// first names them, each group's events in the batch's order.
pub(crate) fn by_group<'e>(
    events: impl IntoIterator<Item = (i64, &'e Event)>,
) -> Vec<(i64, Vec<&'e Event>)> {
    let mut groups: Vec<(i64, Vec<&'e Event>)> = Vec::new();
    let mut at: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for (group, ev) in events {
        let i = *at.entry(group).or_insert_with(|| {
            groups.push((group, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(ev);
    }
    groups
}

/// Decides the alerts of a batch's new events (all inserted already),
/// group by group in the order `groups` gives (see [`by_group`]: the
/// outbox rows follow the events). The groups' rows are locked first, all
/// at once in fingerprint order, so two writers never wait for each other
/// in a circle. Returns how many rows were made pending, and each group's
/// delta.
/// `merged`: the batch's groups merged into others (see
/// `sql::grouping::merged`), checked again once locked.
pub(crate) fn decide_batch(
    c: &mut dyn Conn,
    groups: &[(i64, Vec<&Event>)],
    rules: &AlertRules,
    stamp: Stamp,
    merged: &HashMap<i64, i64>,
) -> Result<(usize, Vec<GroupDelta>)> {
    let ids: Vec<i64> = groups.iter().map(|(g, _)| *g).collect();
    let states = super::grouping::check_merges(c, &ids, merged)?;
    let mut made = 0;
    let mut deltas = Vec::with_capacity(groups.len());
    for (group, evs) in groups {
        let (status, next, resolved) = states
            .iter()
            .find(|s| s.0 == *group)
            .map_or(("open", false, None), |s| {
                (s.1.as_str(), s.2, s.3.as_deref())
            });
        let uids: Vec<String> = evs.iter().map(|e| e.id.to_string()).collect();
        let new: Vec<NewEvent<'_>> = evs
            .iter()
            .zip(&uids)
            .map(|(e, uid)| NewEvent {
                uid,
                ts: e.timestamp_ms,
                release: e.release.as_deref(),
                channels: &e.alert_channels,
            })
            .collect();
        let state = GroupState {
            status,
            resolved_next: next,
            resolved_release: resolved,
        };
        let plan = decide_group(c, *group, state, &new, rules, stamp)?;
        made += plan.pending();
        let mut delta = GroupDelta {
            group: *group,
            count: 0,
            level: 0,
            first_seen: i64::MAX,
            last_seen: i64::MIN,
            last_uid: String::new(),
            quiet: plan.quiet,
            reopened: plan.reopened,
        };
        for (e, uid) in evs.iter().zip(uids) {
            delta.count += 1;
            delta.level = delta.level.max(e.level.as_i64());
            delta.first_seen = delta.first_seen.min(e.timestamp_ms);
            if e.timestamp_ms >= delta.last_seen {
                delta.last_seen = e.timestamp_ms;
                delta.last_uid = uid;
            }
        }
        deltas.push(delta);
    }
    Ok((made, deltas))
}

/// What the rows a batch makes carry besides the plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    /// When they were made (and are first due).
    pub(crate) now: i64,
    /// The run whose events these are (`origin_run`).
    pub(crate) origin: Option<i64>,
}

/// Decides the alerts of one group's new events (in the order they were
/// recorded, all inserted already) and records them; the plan, for the
/// group's own update (quiet, reopened).
// Long by design: the policy's two readers given as the SQL they run, then
// the plan written back (outbox rows, many to a statement, then each
// channel's memory), all in one place while the group is locked.
pub(crate) fn decide_group(
    c: &mut dyn Conn,
    group: i64,
    state: GroupState<'_>,
    events: &[NewEvent<'_>],
    rules: &AlertRules,
    stamp: Stamp,
) -> Result<Plan> {
    const DOING: &str = "deciding alerts";
    let lock = c.dialect().lock(Lock::Update);
    let conn = RefCell::new(&mut *c);
    let plan = policy::decide(
        state,
        events,
        rules,
        &mut |channel| {
            let row = conn.borrow_mut().query_opt(
                DOING,
                &format!(
                    "SELECT last_alert_at, suppressed, last_event_uid FROM alert_state
                     WHERE group_id = ?1 AND channel = ?2{lock}"
                ),
                params![group, channel],
            )?;
            row.map(|r| {
                Ok(ChannelMemory {
                    last_alert_at: r.get(0)?,
                    suppressed: r.get(1)?,
                    last_event_uid: r.get(2)?,
                })
            })
            .transpose()
        },
        &mut |from, to| {
            conn.borrow_mut().one(
                DOING,
                "SELECT count(*) FROM events WHERE group_id = ?1 AND ts > ?2 AND ts <= ?3",
                params![group, from, to],
            )
        },
    )?;
    // Many rows in a statement (a round trip each would hold the group's
    // lock that much longer).
    for chunk in plan.rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                 created_at, next_attempt, last_error, origin_run) VALUES ",
        );
        let mut values = Vec::with_capacity(chunk.len() * 9);
        for (i, row) in chunk.iter().enumerate() {
            let n = i * 8;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 7,
                n + 8,
                chunk.len() * 8 + 1
            ));
            let status = match row.status {
                RowStatus::Pending => "pending",
                RowStatus::Dropped => "dropped",
            };
            values.extend_from_slice(params![
                events[row.event].uid,
                group,
                row.channel,
                row.kind.as_str(),
                status,
                row.suppressed,
                stamp.now,
                row.last_error
            ]);
        }
        values.push(stamp.origin.to_value());
        c.execute(DOING, &sql, &values)?;
    }
    for (channel, m) in &plan.memory {
        let upsert = c.dialect().upsert(
            "alert_state",
            "group_id, channel",
            "last_alert_at = excluded.last_alert_at, suppressed = excluded.suppressed,
             last_event_uid = excluded.last_event_uid",
            false,
        );
        c.execute(
            DOING,
            &format!(
                "INSERT INTO alert_state (group_id, channel, last_alert_at, suppressed, last_event_uid)
                 VALUES (?1, ?2, ?3, ?4, ?5) {upsert}"
            ),
            params![
                group,
                channel,
                m.last_alert_at,
                m.suppressed,
                m.last_event_uid
            ],
        )?;
    }
    Ok(plan)
}
