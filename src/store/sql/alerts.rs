//! The alert policy (`store::policy`) on the shared SQL layer: its inputs
//! read (each channel's memory, locked where rows lock; the group's events
//! in a window) and its plan written (outbox rows, channel memory), inside
//! the batch's transaction, for every backend.

use std::cell::RefCell;

use super::{params, Conn, Lock, ToValue};

/// Outbox rows written by one statement.
const ROWS_PER_STATEMENT: usize = 64;
use crate::error::Result;
use crate::store::policy::{self, ChannelMemory, GroupState, NewEvent, Plan, RowStatus};
use crate::store::seam::AlertRules;

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
        c.execute(
            DOING,
            "INSERT INTO alert_state (group_id, channel, last_alert_at, suppressed, last_event_uid)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (group_id, channel) DO UPDATE SET
                 last_alert_at = excluded.last_alert_at, suppressed = excluded.suppressed,
                 last_event_uid = excluded.last_event_uid",
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
