//! The outbox side of the store: throttling decisions made in the event's
//! transaction, and the queries of the notify thread.

use rusqlite::{params, OptionalExtension, Transaction};

use super::fail;
use super::SqliteStore;
use crate::error::Result;
use crate::event::{Alert, AlertFrame, AlertKind};
use crate::event::{EventKind, Frame};
use crate::level::Level;
use crate::store::claims::Claim;
use crate::store::{AlertRules, DueAlert, Outcome, OwnRows};

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

/// The outbox's highest row id (0 when empty).
pub(crate) fn mark(conn: &rusqlite::Connection) -> Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM outbox")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(|e| fail("reading the outbox", e))
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

impl SqliteStore {
    /// Turns suppressed occurrences whose cooldown has ended into digest
    /// alerts. Returns how many were made.
    pub(crate) fn make_due_digests(&mut self, rules: &AlertRules, now: i64) -> Result<usize> {
        let err = |e| fail("making digest alerts", e);
        let cutoff = now.saturating_sub(ms(rules.policy.cooldown));
        // Most passes have none: a read first, so the writer is not kept
        // waiting for a write lock taken for nothing.
        let any: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM alert_state WHERE suppressed > 0 AND last_alert_at <= ?1)",
            )
            .and_then(|mut s| s.query_row([cutoff], |r| r.get(0)))
            .map_err(err)?;
        if !any {
            return Ok(0);
        }
        let tx = self.immediate()?;
        let rows: Vec<(i64, String, i64, String)> = tx
            .prepare_cached(
                "SELECT a.group_id, a.channel, a.suppressed, a.last_event_uid
                 FROM alert_state a JOIN event_groups g ON g.id = a.group_id
                 WHERE a.suppressed > 0 AND a.last_alert_at <= ?1 AND g.status != 'muted'",
            )
            .and_then(|mut s| {
                s.query_map([cutoff], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(err)?;
        let mut made = 0;
        for (group_id, channel, suppressed, uid) in rows {
            if !rules.channels.contains(&channel) {
                continue;
            }
            tx.execute(
                "INSERT INTO outbox (event_uid, group_id, channel, kind, status, suppressed,
                     created_at, next_attempt)
                 VALUES (?1, ?2, ?3, 'digest', 'pending', ?4, ?5, ?5)",
                params![uid, group_id, channel, suppressed, now],
            )
            .map_err(err)?;
            tx.execute(
                "UPDATE alert_state SET suppressed = 0, last_alert_at = ?3
                 WHERE group_id = ?1 AND channel = ?2",
                params![group_id, channel, now],
            )
            .map_err(err)?;
            made += 1;
        }
        tx.commit().map_err(err)?;
        Ok(made)
    }

    /// When the next digest may become due (ms), if any is waiting.
    pub(crate) fn next_digest_at(&mut self, rules: &AlertRules) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT min(last_alert_at) FROM alert_state WHERE suppressed > 0",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|t| t.map(|t| t.saturating_add(ms(rules.policy.cooldown))))
            .map_err(|e| fail("looking for digests", e))
    }

    /// Pending rows due now on the given channels, the earliest due first.
    /// One query per channel, each in the order of the `(status, channel,
    /// next_attempt)` index: a channel's backlog is never read through to
    /// find another's rows, and nothing is sorted but the few rows read.
    pub(crate) fn due_alerts(
        &mut self,
        channels: &[String],
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAlert>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, channel, attempts, created_at, event_uid, next_attempt FROM outbox
                 WHERE status = 'pending' AND channel = ?1 AND next_attempt <= ?2
                 ORDER BY next_attempt, id LIMIT ?3",
            )
            .map_err(|e| fail("reading the outbox", e))?;
        let mut rows: Vec<(i64, DueAlert)> = Vec::new();
        for channel in channels {
            let found = stmt
                .query_map(params![channel, now, limit as i64], |r| {
                    Ok((
                        r.get(5)?,
                        DueAlert {
                            id: r.get(0)?,
                            channel: r.get(1)?,
                            attempts: r.get(2)?,
                            created_at: r.get(3)?,
                            event_uid: r.get(4)?,
                        },
                    ))
                })
                .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| fail("reading the outbox", e))?;
            rows.extend(found);
        }
        rows.sort_by_key(|(at, row)| (*at, row.id));
        rows.truncate(limit);
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }

    /// The earliest `next_attempt` of a pending row on these channels (one
    /// index lookup per channel).
    pub(crate) fn next_attempt_at(&mut self, channels: &[String]) -> Result<Option<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT min(next_attempt) FROM outbox WHERE status = 'pending' AND channel = ?1",
            )
            .map_err(|e| fail("reading the outbox", e))?;
        let mut first: Option<i64> = None;
        for channel in channels {
            let at: Option<i64> = stmt
                .query_row([channel], |r| r.get(0))
                .map_err(|e| fail("reading the outbox", e))?;
            first = match (first, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }

    /// Claims a pending row for this process's run; `false` if another
    /// took it.
    pub(crate) fn claim(&mut self, id: i64, now: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET status = 'sending', claimed_by = ?2, claimed_at = ?3,
                     claim_run = ?4
                 WHERE id = ?1 AND status = 'pending'",
            )
            .and_then(|mut s| s.execute(params![id, self.claimant.pid, now, self.claimant.key()]))
            .map_err(|e| fail("claiming an alert", e))?;
        Ok(n == 1)
    }

    /// Records what a delivery attempt did.
    pub(crate) fn record_outcome(&mut self, id: i64, outcome: Outcome<'_>, now: i64) -> Result<()> {
        let conn = &self.conn;
        let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            conn.prepare_cached(sql).and_then(|mut s| s.execute(p))
        };
        let r = match outcome {
            Outcome::Sent => run(
                "UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1,
                     last_error = NULL WHERE id = ?1",
                params![id, now],
            ),
            Outcome::Retry { at, error } => run(
                "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt = ?2,
                     last_error = ?3, claimed_by = NULL, claimed_at = NULL, claim_run = NULL
                 WHERE id = ?1",
                params![id, at, error],
            ),
            Outcome::Failed { error } => run(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1",
                params![id, error],
            ),
            Outcome::Parked { error } => run(
                "UPDATE outbox SET status = 'pending', attempts = attempts + 1, last_error = ?2,
                     claimed_by = NULL, claimed_at = NULL, claim_run = NULL WHERE id = ?1",
                params![id, error],
            ),
        };
        r.map(|_| ())
            .map_err(|e| fail("recording an alert's delivery", e))
    }

    /// The rows being sent, with their claims.
    pub(crate) fn claims_in_flight(&mut self) -> Result<Vec<Claim>> {
        self.conn
            .prepare_cached("SELECT id, claim_run, claimed_at FROM outbox WHERE status = 'sending'")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(Claim {
                        id: r.get(0)?,
                        run: r.get(1)?,
                        claimed_at: r.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| fail("reading claimed alerts", e))
    }

    /// Puts a claimed row back to pending.
    pub(crate) fn put_back(&mut self, id: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL,
                     claim_run = NULL
                 WHERE id = ?1 AND status = 'sending'",
            )
            .and_then(|mut s| s.execute([id]))
            .map_err(|e| fail("releasing a claimed alert", e))?;
        Ok(n == 1)
    }

    /// Makes every pending row due now.
    pub(crate) fn retry_pending_now(&mut self, now: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE outbox SET next_attempt = ?1 WHERE status = 'pending' AND next_attempt > ?1",
                [now],
            )
            .map(|_| ())
            .map_err(|e| fail("rescheduling pending alerts", e))
    }

    /// The rows that events of run `run` made, with ids in `(after,
    /// upto]`, per channel and status (a range of the primary key: only the
    /// rows made since are read).
    pub(crate) fn own_rows(&mut self, run: i64, after: i64, upto: i64) -> Result<Vec<OwnRows>> {
        self.conn
            .prepare_cached(
                "SELECT channel, status, count(*), min(next_attempt) FROM outbox
                 WHERE id > ?2 AND id <= ?3 AND origin_run = ?1
                 GROUP BY channel, status",
            )
            .and_then(|mut s| {
                s.query_map(params![run, after, upto], |r| {
                    Ok(OwnRows {
                        channel: r.get(0)?,
                        status: r.get(1)?,
                        count: r.get::<_, i64>(2)?.max(0) as u64,
                        next_attempt: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| fail("reading this run's alerts", e))
    }

    /// Builds the alert for an outbox row from the stored event.
    pub(crate) fn load_alert(&mut self, id: i64) -> Result<Option<Alert>> {
        let err = |e| fail("loading an alert's event", e);
        let row = self
            .conn
            .query_row(
                "SELECT o.kind, o.suppressed, e.uid, e.ts, e.level, e.kind, l.name, e.app_name,
                        e.environment, e.message, e.error_chain, e.file, e.line, e.col, h.hostname,
                        e.pid, s.proc_cpu_percent, s.proc_rss_bytes, s.sys_used_memory,
                        s.sys_total_memory, g.title, g.count, e.backtrace_id, e.release
                 FROM outbox o
                 JOIN events e ON e.uid = o.event_uid
                 JOIN loggers l ON l.id = e.logger_id
                 JOIN event_groups g ON g.id = e.group_id
                 LEFT JOIN snapshots s ON s.id = e.snapshot_id
                 LEFT JOIN hosts h ON h.id = e.host_id
                 WHERE o.id = ?1",
                [id],
                |r| {
                    let chain: Option<String> = r.get(10)?;
                    let file: Option<String> = r.get(11)?;
                    let location = file.map(|f| {
                        format!(
                            "{f}:{}:{}",
                            r.get::<_, Option<i64>>(12).ok().flatten().unwrap_or(0),
                            r.get::<_, Option<i64>>(13).ok().flatten().unwrap_or(0)
                        )
                    });
                    let used: Option<i64> = r.get(18)?;
                    let total: Option<i64> = r.get(19)?;
                    Ok((
                        Alert {
                            kind: AlertKind::from_name(&r.get::<_, String>(0)?)
                                .unwrap_or(AlertKind::New),
                            suppressed: r.get::<_, i64>(1)?.max(0) as u64,
                            event_id: r.get(2)?,
                            timestamp_ms: r.get(3)?,
                            level: Level::from_i64(r.get(4)?).unwrap_or(Level::Error),
                            event_kind: EventKind::from_name(&r.get::<_, String>(5)?)
                                .unwrap_or(EventKind::Message),
                            logger: r.get(6)?,
                            app_name: r.get(7)?,
                            environment: r.get(8)?,
                            release: r.get(23)?,
                            message: r.get(9)?,
                            chain: crate::event::alert::chain_messages(chain.as_deref()),
                            location,
                            host: r.get(14)?,
                            pid: r.get::<_, i64>(15)? as u32,
                            cpu_percent: r.get(16)?,
                            rss_bytes: r.get::<_, Option<i64>>(17)?.map(|v| v.max(0) as u64),
                            host_memory_percent: match (used, total) {
                                (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
                                _ => None,
                            },
                            frames: Vec::new(),
                            group_title: r.get(20)?,
                            hosts_seen: None,
                            occurrences: r.get::<_, i64>(21)?.max(0) as u64,
                        },
                        r.get::<_, Option<i64>>(22)?,
                    ))
                },
            )
            .optional()
            .map_err(err)?;
        let Some((mut alert, backtrace_id)) = row else {
            return Ok(None);
        };
        if let Some(bt) = backtrace_id {
            alert.frames = self.frames(bt)?.into_iter().map(AlertFrame::of).collect();
        }
        alert.strip_controls();
        Ok(Some(alert))
    }

    /// The frames of a stored backtrace, innermost first.
    pub(crate) fn frames(&mut self, backtrace_id: i64) -> Result<Vec<Frame>> {
        frames(&self.conn, backtrace_id)
    }
}

/// The frames of a stored backtrace, innermost first.
pub(crate) fn frames(conn: &rusqlite::Connection, backtrace_id: i64) -> Result<Vec<Frame>> {
    // A file of schema 2 (read by a newer CLI, never migrated by reading)
    // has no build-id column.
    let mut stmt = conn
        .prepare_cached(
            "SELECT function, file, line, col, address, module, module_offset, in_app,
                 build_id
             FROM frames WHERE backtrace_id = ?1 ORDER BY idx",
        )
        .or_else(|_| {
            conn.prepare_cached(
                "SELECT function, file, line, col, address, module, module_offset, in_app,
                     NULL
                 FROM frames WHERE backtrace_id = ?1 ORDER BY idx",
            )
        })
        .map_err(|e| fail("reading frames", e))?;
    let rows = stmt
        .query_map([backtrace_id], |r| {
            Ok(Frame {
                function: r.get(0)?,
                file: r.get(1)?,
                line: r.get(2)?,
                column: r.get(3)?,
                address: r.get::<_, i64>(4)? as u64,
                module: r.get(5)?,
                module_offset: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
                in_app: r.get(7)?,
                build_id: r.get(8)?,
            })
        })
        .and_then(|r| r.collect())
        .map_err(|e| fail("reading frames", e))?;
    Ok(rows)
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
