//! What became of this process's alerts: the answer of
//! [`EventLogger::flush_report`](crate::EventLogger::flush_report), and
//! the rule that turns the outbox rows a run's events made into it.

use crate::store::OwnRows;

/// What a flush found, per channel: see
/// [`EventLogger::flush_report`](crate::EventLogger::flush_report).
///
/// Counts are of outbox rows (one alert, or one forwarded event, each)
/// made by events this process handed over, whichever process of a fleet
/// sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelDelivery {
    /// The channel's name (`slack`, `email`, `webhook`, `sentry`, `otlp`,
    /// or a custom channel's).
    pub channel: String,
    /// Accepted by the channel's server.
    pub delivered: u64,
    /// Failed for good: refused, given up after the retry period, or routed
    /// to a channel that is not configured. Waiting cannot change them.
    pub failed: u64,
    /// Waiting on a channel that cannot send before the deadline whatever
    /// happens: its server refused the credentials or the webhook is gone
    /// (until the next start), or it paused the channel past the deadline
    /// (a rate limit). They stay in the outbox.
    pub held: u64,
    /// Still on their way: being sent, or due for a retry. Waiting longer
    /// may deliver them; they stay in the outbox otherwise.
    pub pending: u64,
}

/// What a flush did: whether everything handed over before it was
/// committed, and what became of the alerts and forwards of those events,
/// per channel. Returned by
/// [`EventLogger::flush_report`](crate::EventLogger::flush_report).
///
/// Occurrences that a cooldown holds back for a later digest are not part
/// of it: a digest is due when its cooldown ends, and no flush waits for
/// one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Every event handed over before the flush is committed (or, while
    /// the database cannot be written, kept in the spool beside it).
    pub committed: bool,
    /// Per channel that this process's events were routed to, by name.
    pub channels: Vec<ChannelDelivery>,
    /// Whether `channels` counts every alert made so far: `false` when the
    /// deadline passed before the alerts of the latest events could be
    /// counted (the notify thread was still busy, or could not reach the
    /// database); `channels` then holds an older count.
    pub counted: bool,
}

impl FlushReport {
    pub(crate) fn new(committed: bool, channels: Vec<ChannelDelivery>, counted: bool) -> Self {
        FlushReport {
            committed,
            channels,
            counted,
        }
    }

    /// `true` when nothing is left that waiting could deliver: everything
    /// is committed, and each alert was delivered, failed for good, or is
    /// held by its channel (see [`ChannelDelivery::held`]).
    pub fn is_complete(&self) -> bool {
        self.committed && self.counted && self.pending() == 0
    }

    /// Alerts still on their way (see [`ChannelDelivery::pending`]).
    pub fn pending(&self) -> u64 {
        self.channels.iter().map(|c| c.pending).sum()
    }

    /// Alerts delivered.
    pub fn delivered(&self) -> u64 {
        self.channels.iter().map(|c| c.delivered).sum()
    }
}

/// What the notify thread knows of a channel when it counts.
pub(crate) trait ChannelState {
    /// The channel cannot send before `horizon` whatever happens (broken
    /// until restart, not configured here, or paused by its server).
    fn held_until_after(&self, channel: &str, horizon: i64) -> bool;
    /// When the channel may send next (its per-minute spacing).
    fn free_at(&self, channel: &str) -> i64;
}

/// The rows a run's events made, counted per channel; and whether some of
/// them could still be delivered before `horizon` (a flush waits while
/// they can).
pub(crate) fn tally(
    rows: &[OwnRows],
    channels: &dyn ChannelState,
    horizon: i64,
) -> (Vec<ChannelDelivery>, bool) {
    let mut out: Vec<ChannelDelivery> = Vec::new();
    let mut waitable = false;
    for r in rows {
        let i = match out.iter().position(|c| c.channel == r.channel) {
            Some(i) => i,
            None => {
                out.push(ChannelDelivery {
                    channel: r.channel.clone(),
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        match r.status.as_str() {
            "sent" => c.delivered += r.count,
            "failed" | "dropped" => c.failed += r.count,
            // Someone (this process, or another of the fleet) is sending.
            "sending" => {
                c.pending += r.count;
                waitable = true;
            }
            _ if channels.held_until_after(&r.channel, horizon) => c.held += r.count,
            _ => {
                c.pending += r.count;
                let due = r
                    .next_attempt
                    .unwrap_or(i64::MAX)
                    .max(channels.free_at(&r.channel));
                waitable |= due <= horizon;
            }
        }
    }
    out.sort_by(|a, b| a.channel.cmp(&b.channel));
    (out, waitable)
}

/// Adds `add`'s counts to `into`'s, channel by channel (kept in name
/// order).
pub(crate) fn merge(into: &mut Vec<ChannelDelivery>, add: &[ChannelDelivery]) {
    for a in add {
        match into.iter_mut().find(|c| c.channel == a.channel) {
            Some(c) => {
                c.delivered += a.delivered;
                c.failed += a.failed;
                c.held += a.held;
                c.pending += a.pending;
            }
            None => into.push(a.clone()),
        }
    }
    into.sort_by(|a, b| a.channel.cmp(&b.channel));
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Chans {
        held: &'static [&'static str],
        spaced_until: i64,
    }

    impl ChannelState for Chans {
        fn held_until_after(&self, channel: &str, _: i64) -> bool {
            self.held.contains(&channel)
        }
        fn free_at(&self, _: &str) -> i64 {
            self.spaced_until
        }
    }

    fn row(channel: &str, status: &str, count: u64, next: i64) -> OwnRows {
        OwnRows {
            channel: channel.into(),
            status: status.into(),
            count,
            next_attempt: Some(next),
        }
    }

    const FREE: Chans = Chans {
        held: &[],
        spaced_until: 0,
    };

    #[test]
    fn every_status_lands_in_its_count_per_channel() {
        let rows = [
            row("slack", "sent", 3, 0),
            row("slack", "failed", 1, 0),
            row("email", "dropped", 2, 0),
            row("email", "sent", 1, 0),
        ];
        let (c, waitable) = tally(&rows, &FREE, 100);
        assert!(!waitable);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].channel.as_str(), c[0].delivered, c[0].failed),
            ("email", 1, 2)
        );
        assert_eq!(
            (c[1].channel.as_str(), c[1].delivered, c[1].failed),
            ("slack", 3, 1)
        );
        let report = FlushReport::new(true, c, true);
        assert!(report.is_complete());
        assert_eq!((report.delivered(), report.pending()), (4, 0));
        assert!(!FlushReport::new(true, report.channels.clone(), false).is_complete());
    }

    #[test]
    fn a_row_being_sent_is_waited_for() {
        let (c, waitable) = tally(&[row("sentry", "sending", 1, 0)], &FREE, 100);
        assert!(waitable);
        assert_eq!(c[0].pending, 1);
        // Whatever its due time said before it was claimed.
        let (_, waitable) = tally(&[row("sentry", "sending", 1, 500)], &FREE, 100);
        assert!(waitable, "a claimed row is being sent now");
        // Even on a channel held here: another process may be sending it.
        let held = Chans {
            held: &["sentry"],
            spaced_until: 0,
        };
        let (c, waitable) = tally(&[row("sentry", "sending", 2, 500)], &held, 100);
        assert!(waitable);
        assert_eq!((c[0].pending, c[0].held), (2, 0));
    }

    #[test]
    fn counts_add_up_channel_by_channel_in_name_order() {
        let d = |channel: &str, n: u64| ChannelDelivery {
            channel: channel.into(),
            delivered: n,
            failed: n + 1,
            held: n + 2,
            pending: n + 3,
        };
        let mut into = vec![d("slack", 1)];
        merge(&mut into, &[d("slack", 10), d("email", 5)]);
        assert_eq!(
            into,
            vec![d("email", 5), {
                let mut s = d("slack", 11);
                s.failed = 13;
                s.held = 15;
                s.pending = 17;
                s
            }]
        );
        merge(&mut into, &[]);
        assert_eq!(into.len(), 2);
    }

    #[test]
    fn a_retry_is_waited_for_only_when_it_falls_before_the_deadline() {
        let (c, waitable) = tally(&[row("slack", "pending", 2, 100)], &FREE, 100);
        assert!(waitable);
        assert_eq!(c[0].pending, 2);
        let (c, waitable) = tally(&[row("slack", "pending", 2, 101)], &FREE, 100);
        assert!(!waitable, "a retry after the deadline ends the wait");
        let report = FlushReport::new(true, c, true);
        assert!(!report.is_complete(), "but waiting longer could deliver it");
    }

    #[test]
    fn a_channel_spaced_past_the_deadline_is_not_waited_for() {
        let spaced = Chans {
            held: &[],
            spaced_until: 101,
        };
        let (c, waitable) = tally(&[row("slack", "pending", 1, 0)], &spaced, 100);
        assert!(!waitable);
        assert_eq!(c[0].pending, 1);
    }

    #[test]
    fn a_held_channel_neither_waits_nor_leaves_the_flush_incomplete() {
        let held = Chans {
            held: &["email"],
            spaced_until: 0,
        };
        let rows = [row("email", "pending", 1, 0), row("slack", "sent", 1, 0)];
        let (c, waitable) = tally(&rows, &held, 100);
        assert!(!waitable);
        assert_eq!((c[0].held, c[0].pending), (1, 0));
        let report = FlushReport::new(true, c, true);
        assert!(report.is_complete());
        assert!(!FlushReport::new(false, report.channels, true).is_complete());
    }
}
