//! The outbox side of the store: throttling decisions made in the event's
//! transaction, and the queries of the notify thread.

use rusqlite::{params, OptionalExtension, Transaction};

use super::fail;
use crate::error::Result;
use crate::event::AlertKind;
use crate::store::AlertRules;

/// The group's state before this event touched it.
pub(crate) struct GroupBefore {
    pub(crate) status: Option<String>,
}

/// A group's stored state at the start of a batch, as each new event of
/// the batch finds it (`store::reopen`'s rule, event by event).
pub(crate) struct GroupState {
    status: Option<String>,
    next: bool,
    release: Option<String>,
    /// Whether an event of this batch reopened it, and the channels that
    /// have had an event since (the first one per channel alerts the
    /// regression).
    reopened: bool,
    told: Vec<String>,
}

impl GroupState {
    pub(crate) fn read(tx: &Transaction<'_>, group_id: i64) -> Result<GroupState> {
        let row: Option<(String, bool, Option<String>)> = tx
            .prepare_cached(
                "SELECT status, resolved_next, resolved_release FROM event_groups WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([group_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(|e| fail("reading a group's status", e))?;
        let (status, next, release) = match row {
            Some((s, n, r)) => (Some(s), n, r),
            None => (None, false, None),
        };
        Ok(GroupState {
            status,
            next,
            release,
            reopened: false,
            told: Vec::new(),
        })
    }

    /// The status an event of `release` finds, for each of `channels`: a
    /// group resolved in the next release is quiet (as if muted) for the
    /// release it was resolved in; the first event from another release
    /// (any event, for a plainly resolved group) reopens it, and each
    /// channel's first event from there finds it resolved (a regression),
    /// the later ones open.
    pub(crate) fn see(&mut self, release: Option<&str>, channels: &[String]) -> Vec<GroupBefore> {
        let resolved = self.status.as_deref() == Some("resolved");
        if resolved && self.next && release == self.release.as_deref() {
            return channels
                .iter()
                .map(|_| GroupBefore {
                    status: Some("muted".to_owned()),
                })
                .collect();
        }
        if resolved {
            self.status = Some("open".to_owned());
            self.reopened = true;
        }
        channels
            .iter()
            .map(|c| {
                let first = self.reopened && !self.told.contains(c);
                if first {
                    self.told.push(c.clone());
                }
                GroupBefore {
                    status: if first {
                        Some("resolved".to_owned())
                    } else {
                        self.status.clone()
                    },
                }
            })
            .collect()
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One new event and one channel, for [`decide`].
pub(crate) struct Decision<'a> {
    pub(crate) channel: &'a str,
    pub(crate) uid: &'a str,
    /// The event's time.
    pub(crate) ts: i64,
    pub(crate) group: i64,
    /// The group's status before this event.
    pub(crate) before: &'a GroupBefore,
    pub(crate) now: i64,
    /// The run whose event this is (see `origin_run`).
    pub(crate) origin: Option<i64>,
}

/// Decides, for one new event and one channel, whether an alert is due, and
/// records the decision. Returns whether an outbox row was made pending.
// Long by design: the alert policy (channel configured, muted, threshold,
// cooldown, regression, suppression count) is one decision, read top to
// bottom in the order the rules apply.
pub(crate) fn decide(tx: &Transaction<'_>, rules: &AlertRules, d: &Decision<'_>) -> Result<bool> {
    let Decision {
        channel,
        uid: event_uid,
        ts: event_ts,
        group: group_id,
        before,
        now,
        origin,
    } = *d;
    let err = |e| fail("recording an alert decision", e);
    let insert = |kind: &str, status: &str, suppressed: i64, last_error: Option<&str>| {
        tx.prepare_cached(
            "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                 created_at, next_attempt, last_error, origin_run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                event_uid, group_id, channel, kind, status, suppressed, now, last_error, origin
            ])
        })
        .map_err(err)
    };
    if !rules.channels.iter().any(|c| c == channel) {
        insert(
            AlertKind::New.as_str(),
            "dropped",
            0,
            Some(&format!("the channel {channel:?} is not configured")),
        )?;
        return Ok(false);
    }
    // A forwarding channel copies every routed event to its server (which
    // groups and mutes on its own): one row each, no policy.
    if rules.forwards(channel) {
        insert(AlertKind::New.as_str(), "pending", 0, None)?;
        return Ok(true);
    }
    if before.status.as_deref() == Some("muted") {
        return Ok(false);
    }
    let regression = before.status.as_deref() == Some("resolved");
    let policy = &rules.policy;
    if policy.threshold > 1 && !regression {
        let since = event_ts.saturating_sub(ms(policy.window));
        let n: i64 = tx
            .prepare_cached("SELECT count(*) FROM events WHERE group_id = ?1 AND ts >= ?2")
            .and_then(|mut s| s.query_row(params![group_id, since], |r| r.get(0)))
            .map_err(err)?;
        if n < i64::from(policy.threshold) {
            return Ok(false);
        }
    }
    let state: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT last_alert_at, suppressed FROM alert_state WHERE group_id = ?1 AND channel = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![group_id, channel], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(err)?;
    let kind = match state {
        None => Some((AlertKind::New, 0)),
        Some((_, sup)) if regression => Some((AlertKind::Regression, sup)),
        Some((last, sup)) if event_ts.saturating_sub(last) >= ms(policy.cooldown) => {
            Some((AlertKind::New, sup))
        }
        Some(_) => None,
    };
    match kind {
        Some((kind, suppressed)) => {
            insert(kind.as_str(), "pending", suppressed, None)?;
            tx.prepare_cached(
                "INSERT INTO alert_state (group_id, channel, last_alert_at, suppressed, last_event_uid)
                 VALUES (?1, ?2, ?3, 0, ?4)
                 ON CONFLICT(group_id, channel) DO UPDATE SET
                     last_alert_at = excluded.last_alert_at, suppressed = 0,
                     last_event_uid = excluded.last_event_uid",
            )
            .and_then(|mut s| s.execute(params![group_id, channel, event_ts, event_uid]))
            .map_err(err)?;
            Ok(true)
        }
        None => {
            tx.prepare_cached(
                "UPDATE alert_state SET suppressed = suppressed + 1, last_event_uid = ?3
                 WHERE group_id = ?1 AND channel = ?2",
            )
            .and_then(|mut s| s.execute(params![group_id, channel, event_uid]))
            .map_err(err)?;
            Ok(false)
        }
    }
}

#[cfg(test)]
mod state_tests {
    use super::GroupState;

    fn state(status: &str, next: bool, release: Option<&str>) -> GroupState {
        GroupState {
            status: Some(status.to_owned()),
            next,
            release: release.map(str::to_owned),
            reopened: false,
            told: Vec::new(),
        }
    }

    fn seen(s: &mut GroupState, release: Option<&str>, channels: &[&str]) -> Vec<String> {
        let channels: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
        s.see(release, &channels)
            .into_iter()
            .map(|b| b.status.unwrap_or_default())
            .collect()
    }

    #[test]
    fn resolved_in_the_next_release_is_quiet_until_another_release_reopens_it() {
        let mut s = state("resolved", true, Some("1.0"));
        assert_eq!(seen(&mut s, Some("1.0"), &["slack"]), ["muted"]);
        // Another release without a channel reopens it all the same.
        assert_eq!(seen(&mut s, Some("1.1"), &[]), Vec::<String>::new());
        // Each channel's first event from there is the regression.
        assert_eq!(
            seen(&mut s, Some("1.0"), &["slack", "email"]),
            ["resolved", "resolved"]
        );
        assert_eq!(
            seen(&mut s, Some("1.1"), &["slack", "webhook"]),
            ["open", "resolved"]
        );
    }

    #[test]
    fn open_muted_and_plainly_resolved_groups() {
        let mut open = state("open", false, None);
        assert_eq!(seen(&mut open, Some("1.0"), &["slack"]), ["open"]);
        let mut muted = state("muted", false, None);
        assert_eq!(seen(&mut muted, Some("1.0"), &["slack"]), ["muted"]);
        let mut resolved = state("resolved", false, Some("1.0"));
        assert_eq!(seen(&mut resolved, Some("1.0"), &["slack"]), ["resolved"]);
        assert_eq!(seen(&mut resolved, Some("1.0"), &["slack"]), ["open"]);
    }
}
