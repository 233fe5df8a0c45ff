//! The alert policy, once for every store: given a group's stored state and
//! its new events of a batch, which rows the outbox gets and what the group
//! and each channel remember. A pure function; the stores only read its
//! inputs and write its result (`sql::alerts`).
//!
//! The events are decided one by one in the order they were recorded (the
//! writer's order), each against everything recorded before it, so a
//! stream gives the same rows however it is cut into batches:
//!
//! - a channel that is not configured gets a `dropped` row per event;
//! - a forwarding channel (Sentry, OTLP) gets a row per event, whatever
//!   the group's status;
//! - a muted group, or one resolved in the next release while its events
//!   come from the release it was resolved in, alerts nothing;
//! - a resolved group is reopened by its first new event (resolved in the
//!   next release: its first event from another release), which alerts the
//!   regression to each of its channels, whatever the threshold and
//!   cooldown;
//! - otherwise an event alerts when the group has at least `threshold`
//!   events with a time in `(ts - window, ts]` (this one and those
//!   recorded before it), and the channel's last alert is `cooldown` or
//!   more before it; an event that meets the threshold within the cooldown
//!   is counted for the channel's digest.

use crate::error::Result;
use crate::event::AlertKind;
use crate::store::seam::AlertRules;

/// A group's stored state before the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupState<'a> {
    /// `open`, `resolved` or `muted` (`open` for a group the batch made).
    pub(crate) status: &'a str,
    /// Resolved in the next release.
    pub(crate) resolved_next: bool,
    /// The release it was resolved in.
    pub(crate) resolved_release: Option<&'a str>,
}

/// One new event of the group (stored by this batch, not a duplicate).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEvent<'a> {
    pub(crate) uid: &'a str,
    pub(crate) ts: i64,
    pub(crate) release: Option<&'a str>,
    /// The channels it is routed to.
    pub(crate) channels: &'a [String],
}

/// What a channel remembers of a group (`alert_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelMemory {
    /// When (event time) the last alert went out.
    pub(crate) last_alert_at: i64,
    /// Events held back since, for the digest.
    pub(crate) suppressed: i64,
    /// The newest event held back or alerted (the digest names it).
    pub(crate) last_event_uid: String,
}

/// The fate of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowStatus {
    Pending,
    Dropped,
}

/// One outbox row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedRow {
    /// The event (index into the batch's events of the group).
    pub(crate) event: usize,
    pub(crate) channel: String,
    pub(crate) kind: AlertKind,
    pub(crate) status: RowStatus,
    /// Events held back before it (a `new` or `regression` alert).
    pub(crate) suppressed: i64,
    pub(crate) last_error: Option<String>,
}

/// What a batch does to one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Outbox rows, in the events' order (then each event's channels').
    pub(crate) rows: Vec<PlannedRow>,
    /// The channels whose memory changed, with what they now remember.
    pub(crate) memory: Vec<(String, ChannelMemory)>,
    /// Resolved in the next release and still quiet.
    pub(crate) quiet: bool,
    /// Reopened by this batch: the release and time of the event that
    /// reopened it.
    pub(crate) reopened: Option<(Option<String>, i64)>,
}

impl Plan {
    /// Alerts and forwards made pending.
    pub(crate) fn pending(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.status == RowStatus::Pending)
            .count()
    }
}

/// Decides a group's new events (see the module's rules). `memory` reads
/// what a channel remembers (asked once per channel); `stored_in_window`
/// counts the group's stored events, this whole batch included, with a
/// time in `(from, to]` (asked only with a threshold above 1).
///
/// # Errors
/// Only those of the two readers.
// Long by design: the module's rules for each event and channel in the order
// they take precedence, with the group's status and each channel's memory
// carried from event to event.
pub(crate) fn decide(
    group: GroupState<'_>,
    events: &[NewEvent<'_>],
    rules: &AlertRules,
    memory: &mut dyn FnMut(&str) -> Result<Option<ChannelMemory>>,
    stored_in_window: &mut dyn FnMut(i64, i64) -> Result<u64>,
) -> Result<Plan> {
    let policy = &rules.policy;
    let cooldown = crate::util::time::duration_ms(policy.cooldown);
    let window = crate::util::time::duration_ms(policy.window);
    let mut plan = Plan::default();
    // The status each event finds, as the events come; the event that
    // reopens the group alerts the regression to each of its channels.
    let mut status = group.status;
    let mut known: Vec<(String, Option<ChannelMemory>, bool)> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let quiet_now =
            status == "resolved" && group.resolved_next && ev.release == group.resolved_release;
        let regression = status == "resolved" && !quiet_now;
        if regression {
            status = "open";
            plan.reopened = Some((ev.release.map(str::to_owned), ev.ts));
        }
        let mut seen: Vec<&str> = Vec::new();
        for channel in ev.channels.iter().map(String::as_str) {
            if seen.contains(&channel) {
                continue;
            }
            seen.push(channel);
            let row = |kind, status, suppressed, last_error| PlannedRow {
                event: i,
                channel: channel.to_owned(),
                kind,
                status,
                suppressed,
                last_error,
            };
            if !rules.channels.iter().any(|c| c == channel) {
                plan.rows.push(row(
                    AlertKind::New,
                    RowStatus::Dropped,
                    0,
                    Some(format!("the channel {channel:?} is not configured")),
                ));
                continue;
            }
            if rules.forwards(channel) {
                plan.rows
                    .push(row(AlertKind::New, RowStatus::Pending, 0, None));
                continue;
            }
            if status == "muted" || quiet_now {
                continue;
            }
            if policy.threshold > 1 && !regression {
                let from = ev.ts.saturating_sub(window);
                let later = events[i + 1..]
                    .iter()
                    .filter(|e| e.ts > from && e.ts <= ev.ts)
                    .count() as u64;
                let before = stored_in_window(from, ev.ts)?.saturating_sub(later);
                if before < u64::from(policy.threshold) {
                    continue;
                }
            }
            let slot = match known.iter().position(|(c, _, _)| c == channel) {
                Some(at) => at,
                None => {
                    known.push((channel.to_owned(), memory(channel)?, false));
                    known.len() - 1
                }
            };
            let (_, state, changed) = &mut known[slot];
            *changed = true;
            let alert = match state {
                _ if regression => Some((
                    AlertKind::Regression,
                    state.as_ref().map_or(0, |m| m.suppressed),
                )),
                None => Some((AlertKind::New, 0)),
                Some(m) if ev.ts.saturating_sub(m.last_alert_at) >= cooldown => {
                    Some((AlertKind::New, m.suppressed))
                }
                Some(_) => None,
            };
            match (alert, state) {
                (Some((kind, suppressed)), state) => {
                    plan.rows
                        .push(row(kind, RowStatus::Pending, suppressed, None));
                    *state = Some(ChannelMemory {
                        last_alert_at: ev.ts,
                        suppressed: 0,
                        last_event_uid: ev.uid.to_owned(),
                    });
                }
                (None, Some(m)) => {
                    m.suppressed += 1;
                    m.last_event_uid = ev.uid.to_owned();
                }
                (None, None) => {}
            }
        }
    }
    plan.quiet = status == "resolved" && group.resolved_next;
    plan.memory = known
        .into_iter()
        .filter_map(|(c, m, changed)| Some((c, m.filter(|_| changed)?)))
        .collect();
    Ok(plan)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::AlertPolicy;

    const MIN: i64 = 60_000;

    /// Three channels (one forwarding), a 10-minute cooldown, `threshold`
    /// events in an hour.
    pub(crate) fn rules(threshold: u32) -> AlertRules {
        AlertRules {
            channels: vec!["slack".into(), "email".into(), "sentry".into()],
            forward: vec!["sentry".into()],
            takes: Vec::new(),
            policy: AlertPolicy {
                cooldown: Duration::from_secs(600),
                threshold,
                window: Duration::from_secs(3600),
                ..AlertPolicy::default()
            },
        }
    }

    /// A group's history, kept like a store keeps it, fed in batches.
    struct Sim {
        status: &'static str,
        next: bool,
        resolved: Option<&'static str>,
        stored: Vec<i64>,
        memory: Vec<(String, ChannelMemory)>,
        rows: Vec<(String, String, AlertKind, RowStatus, i64)>,
    }

    impl Sim {
        fn new(status: &'static str) -> Sim {
            Sim {
                status,
                next: false,
                resolved: None,
                stored: Vec::new(),
                memory: Vec::new(),
                rows: Vec::new(),
            }
        }

        fn feed(&mut self, events: &[(&str, i64, Option<&str>, &[String])], rules: &AlertRules) {
            let evs: Vec<NewEvent<'_>> = events
                .iter()
                .map(|(uid, ts, release, channels)| NewEvent {
                    uid,
                    ts: *ts,
                    release: *release,
                    channels,
                })
                .collect();
            self.stored.extend(evs.iter().map(|e| e.ts));
            let stored = self.stored.clone();
            let memory = self.memory.clone();
            let plan = decide(
                GroupState {
                    status: self.status,
                    resolved_next: self.next,
                    resolved_release: self.resolved,
                },
                &evs,
                rules,
                &mut |c| Ok(memory.iter().find(|(k, _)| k == c).map(|(_, m)| m.clone())),
                &mut |from, to| Ok(stored.iter().filter(|&&t| t > from && t <= to).count() as u64),
            )
            .unwrap();
            for r in &plan.rows {
                self.rows.push((
                    evs[r.event].uid.to_owned(),
                    r.channel.clone(),
                    r.kind,
                    r.status,
                    r.suppressed,
                ));
            }
            for (c, m) in plan.memory {
                self.memory.retain(|(k, _)| *k != c);
                self.memory.push((c, m));
            }
            if let Some((_, at)) = &plan.reopened {
                assert!(events.iter().any(|e| e.1 == *at));
                self.status = "open";
            }
            self.next = plan.quiet;
        }
    }

    fn ch(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_first_event_alerts_then_the_cooldown_holds_the_rest_back() {
        let slack = ch(&["slack"]);
        let mut s = Sim::new("open");
        s.feed(
            &[
                ("a", 0, None, &slack),
                ("b", MIN, None, &slack),
                ("c", 11 * MIN, None, &slack),
            ],
            &rules(1),
        );
        let kinds: Vec<_> = s.rows.iter().map(|r| (r.0.as_str(), r.2, r.4)).collect();
        assert_eq!(
            kinds,
            [("a", AlertKind::New, 0), ("c", AlertKind::New, 1)],
            "b is held back and counted in c's alert"
        );
        assert_eq!(s.memory[0].1.last_alert_at, 11 * MIN);
        assert_eq!(s.memory[0].1.suppressed, 0);
    }

    #[test]
    fn the_threshold_counts_events_in_the_window_up_to_each_one() {
        let slack = ch(&["slack"]);
        let mut s = Sim::new("open");
        // Three at once: only the third meets a threshold of 3.
        s.feed(
            &[
                ("a", 0, None, &slack),
                ("b", 0, None, &slack),
                ("c", 0, None, &slack),
            ],
            &rules(3),
        );
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0].0, "c");
        // An hour and more later, the old ones are out of the window
        // (which excludes its start).
        s.feed(&[("d", 60 * MIN, None, &slack)], &rules(3));
        assert_eq!(s.rows.len(), 1, "d has only itself in (0, 60 min]");
    }

    #[test]
    fn batches_do_not_change_the_rows() {
        let slack = ch(&["slack", "sentry", "nowhere"]);
        let events: Vec<(String, i64)> = (0..40)
            .map(|i| (format!("e{i}"), (i * 7 % 13) * MIN + i * 1000))
            .collect();
        for threshold in [1, 3] {
            let r = rules(threshold);
            let mut whole = Sim::new("open");
            let all: Vec<_> = events
                .iter()
                .map(|(u, t)| (u.as_str(), *t, Some("1.0"), slack.as_slice()))
                .collect();
            whole.feed(&all, &r);
            for cut in [1, 3, 7] {
                let mut parts = Sim::new("open");
                for chunk in all.chunks(cut) {
                    parts.feed(chunk, &r);
                }
                assert_eq!(
                    parts.rows, whole.rows,
                    "threshold {threshold}, batches of {cut}"
                );
                assert_eq!(parts.memory, whole.memory);
            }
        }
    }

    #[test]
    fn the_event_that_reopens_a_group_alerts_the_regression_on_each_channel() {
        let both = ch(&["slack", "email"]);
        let mut s = Sim::new("resolved");
        s.memory.push((
            "slack".into(),
            ChannelMemory {
                last_alert_at: 0,
                suppressed: 4,
                last_event_uid: "old".into(),
            },
        ));
        s.feed(
            &[
                ("a", MIN, Some("2.0"), &both),
                ("b", 2 * MIN, Some("2.0"), &both),
            ],
            &rules(5),
        );
        let kinds: Vec<_> = s
            .rows
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str(), r.2, r.4))
            .collect();
        assert_eq!(
            kinds,
            [
                ("a", "slack", AlertKind::Regression, 4),
                ("a", "email", AlertKind::Regression, 0),
            ],
            "the threshold does not hold a regression back; b is under it"
        );
        assert_eq!(s.status, "open");
    }

    #[test]
    fn resolved_in_the_next_release_stays_quiet_for_its_release() {
        let slack = ch(&["slack", "sentry"]);
        let mut s = Sim::new("resolved");
        s.next = true;
        s.resolved = Some("1.0");
        s.feed(&[("a", MIN, Some("1.0"), &slack)], &rules(1));
        assert_eq!(s.rows.len(), 1, "only the forward");
        assert_eq!(s.rows[0].1, "sentry");
        assert!(s.next && s.status == "resolved");
        s.feed(
            &[
                ("b", 2 * MIN, Some("1.0"), &slack),
                ("c", 3 * MIN, Some("1.1"), &slack),
            ],
            &rules(1),
        );
        let slack_rows: Vec<_> = s
            .rows
            .iter()
            .filter(|r| r.1 == "slack")
            .map(|r| (r.0.as_str(), r.2))
            .collect();
        assert_eq!(
            slack_rows,
            [("c", AlertKind::Regression)],
            "b quiet, c reopens it"
        );
        assert_eq!(s.status, "open");
    }

    #[test]
    fn quiet_only_while_every_event_is_from_the_resolved_release() {
        let slack = ch(&["slack"]);
        let case = |status, next, resolved, releases: &[Option<&'static str>]| {
            let mut s = Sim::new(status);
            s.next = next;
            s.resolved = resolved;
            let evs: Vec<(String, Option<&str>)> = releases
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("e{i}"), *r))
                .collect();
            let feed: Vec<_> = evs
                .iter()
                .enumerate()
                .map(|(i, (u, r))| (u.as_str(), i as i64 * MIN, *r, slack.as_slice()))
                .collect();
            s.feed(&feed, &rules(1));
            let reopened_by = s
                .rows
                .iter()
                .find(|r| r.2 == AlertKind::Regression)
                .map(|r| r.0.clone());
            (s.next, s.status, reopened_by)
        };
        let quiet = (true, "resolved", None);
        assert_eq!(
            case("resolved", true, Some("1.0"), &[Some("1.0"), Some("1.0")]),
            quiet
        );
        assert_eq!(
            case("resolved", true, Some("1.0"), &[Some("1.0"), Some("1.1")]),
            (false, "open", Some("e1".into()))
        );
        assert_eq!(
            case("resolved", true, Some("1.0"), &[Some("1.1"), Some("1.0")]),
            (false, "open", Some("e0".into()))
        );
        assert_eq!(
            case("resolved", true, Some("1.0"), &[None]),
            (false, "open", Some("e0".into()))
        );
        assert_eq!(case("resolved", true, None, &[None]), quiet);
        assert_eq!(
            case("resolved", false, Some("1.0"), &[Some("1.0")]),
            (false, "open", Some("e0".into()))
        );
        assert_eq!(
            case("open", true, Some("1.0"), &[Some("1.0")]),
            (false, "open", None)
        );
        assert_eq!(
            case("muted", false, None, &[Some("2.0")]),
            (false, "muted", None)
        );
    }

    #[test]
    fn muted_groups_forward_and_drop_but_never_alert() {
        let all = ch(&["slack", "sentry", "pager", "slack"]);
        let mut s = Sim::new("muted");
        s.feed(&[("a", 0, None, &all)], &rules(1));
        let rows: Vec<_> = s.rows.iter().map(|r| (r.1.as_str(), r.3)).collect();
        assert_eq!(
            rows,
            [
                ("sentry", RowStatus::Pending),
                ("pager", RowStatus::Dropped)
            ],
            "a channel named twice counts once"
        );
        assert!(s.memory.is_empty());
    }
}
