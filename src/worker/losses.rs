//! What the worker counts as lost, and which of it a server hears of:
//! every event lost is counted (the `counters` table's `dropped_events`,
//! `deduplicated`, ...); an event routed to a channel that takes client
//! reports is also counted by why (`Lost`), for the report that tells
//! that channel's server what it did not get.

use std::sync::atomic::Ordering;

use super::Shared;
use crate::channels::Alerting;
use crate::store::upstream::{self, ItemKind};

/// Why an event routed to a channel that takes client reports was lost,
/// as the `counters` table names it (`upstream::discard_reason` gives
/// Sentry's reason).
#[derive(Debug, Clone, Copy)]
pub(super) enum Lost {
    QueueOverflow = 0,
    Duplicate = 1,
    Ignored = 2,
    BeforeSave = 3,
    Unwritable = 4,
}

impl Lost {
    pub(super) const ALL: [Lost; 5] = [
        Lost::QueueOverflow,
        Lost::Duplicate,
        Lost::Ignored,
        Lost::BeforeSave,
        Lost::Unwritable,
    ];

    pub(super) fn counter(self) -> &'static str {
        match self {
            Lost::QueueOverflow => upstream::LOST_QUEUE_OVERFLOW,
            Lost::Duplicate => upstream::LOST_DUPLICATE,
            Lost::Ignored => upstream::LOST_IGNORED,
            Lost::BeforeSave => upstream::LOST_BEFORE_SAVE,
            Lost::Unwritable => upstream::LOST_UNWRITABLE,
        }
    }
}

/// The channels that take client reports.
pub(super) fn report_takers(alerting: &Alerting) -> Vec<String> {
    alerting
        .channels
        .iter()
        .filter(|c| {
            c.forward
                .as_ref()
                .is_some_and(|f| f.takes().contains(&ItemKind::ClientReport))
        })
        .map(|c| c.name.to_string())
        .collect()
}

impl Shared {
    /// Counts events lost (queue full, writer gone, spool unwritable).
    pub(super) fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.dropped_total.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an event lost (see [`Shared::count_dropped`]), and as a loss
    /// its channel's server hears of when it was routed to one that takes
    /// client reports.
    pub(super) fn count_dropped_event(&self, alert_channels: &[String]) {
        self.count_dropped(1);
        self.count_lost_upstream(alert_channels, Lost::QueueOverflow);
    }

    /// Whether an event routed to `alert_channels` is one a channel that
    /// takes client reports would have sent.
    pub(super) fn reports_loss_of(&self, alert_channels: &[String]) -> bool {
        alert_channels
            .iter()
            .any(|c| self.report_takers.contains(c))
    }

    /// Counts a loss of an event routed to a channel that takes client
    /// reports (nothing for any other).
    pub(super) fn count_lost_upstream(&self, alert_channels: &[String], why: Lost) {
        if self.reports_loss_of(alert_channels) {
            self.lost_upstream[why as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}
