//! What forwarding channels send that is not an event: a monitor's
//! check-in, a run as a release-health session, and errsnap's own losses
//! as a client report. The store queues each as an outbox row of its own
//! kind, in the transaction that made it (the check-in recorded, the run
//! started or ended, the losses counted), one row per channel that takes
//! it; the row holds the item as JSON (`payload`), and the channel turns
//! it into its server's form when it sends.

use serde::{Deserialize, Serialize};

/// The kinds of upstream item, as the outbox's `kind` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ItemKind {
    CheckIn,
    Session,
    ClientReport,
}

impl ItemKind {
    /// The outbox's `kind`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ItemKind::CheckIn => "check_in",
            ItemKind::Session => "session",
            ItemKind::ClientReport => "client_report",
        }
    }
}

/// One item, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub(crate) enum Item {
    CheckIn(CheckInItem),
    Session(SessionItem),
    ClientReport(ClientReportItem),
}

impl Item {
    pub(crate) fn kind(&self) -> ItemKind {
        match self {
            Item::CheckIn(_) => ItemKind::CheckIn,
            Item::Session(_) => ItemKind::Session,
            Item::ClientReport(_) => ItemKind::ClientReport,
        }
    }

    /// What the outbox row names it by (`event_uid`): the check-in's run
    /// id, the session's id, the report's time.
    pub(crate) fn key(&self) -> String {
        match self {
            Item::CheckIn(c) => c.id.clone(),
            Item::Session(s) => SessionItem::key_of(&s.sid, s.seq),
            Item::ClientReport(r) => format!("client-report-{}", r.at_ms),
        }
    }

    /// The item as the outbox's `payload` holds it.
    pub(crate) fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The item of an outbox row's `payload`.
    pub(crate) fn from_payload(payload: &str) -> Option<Item> {
        serde_json::from_str(payload).ok()
    }
}

/// A run of a monitor starting or ending (one id for both), or a
/// heartbeat, with the monitor's schedule and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckInItem {
    /// The run's id: 32 hex digits, the same for its start and its end.
    pub(crate) id: String,
    pub(crate) slug: String,
    /// `in_progress`, `ok` or `error`.
    pub(crate) status: String,
    pub(crate) at_ms: i64,
    pub(crate) duration_ms: Option<i64>,
    /// The crontab and its zone, or the interval.
    pub(crate) crontab: Option<String>,
    pub(crate) zone: Option<String>,
    pub(crate) every_ms: Option<i64>,
    pub(crate) margin_ms: i64,
    pub(crate) max_runtime_ms: Option<i64>,
    /// Why it failed, when it did.
    pub(crate) reason: Option<String>,
}

/// A run of the runs ledger as a release-health session: its start
/// (`ok`, `init`) and its end (`exited`, `crashed`, `abnormal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionItem {
    /// The session's id (32 hex digits, from the run's process).
    pub(crate) sid: String,
    /// Whether this is the session's first update.
    pub(crate) init: bool,
    /// Orders the updates of one session (the later one wins).
    pub(crate) seq: u64,
    pub(crate) started_ms: i64,
    pub(crate) at_ms: i64,
    /// `ok` (running), `exited`, `crashed` or `abnormal`.
    pub(crate) status: String,
    /// Error events of the run so far.
    pub(crate) errors: u64,
    pub(crate) duration_ms: Option<i64>,
    pub(crate) release: String,
    pub(crate) environment: Option<String>,
    /// The host, as the session's distinct id.
    pub(crate) host: Option<String>,
}

impl SessionItem {
    /// What the outbox names a session's update by: its id and `seq`.
    pub(crate) fn key_of(sid: &str, seq: u64) -> String {
        format!("{sid}-{seq}")
    }
}

/// errsnap's own losses since the last report, by Sentry's reason and
/// data category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClientReportItem {
    pub(crate) at_ms: i64,
    pub(crate) discarded: Vec<Discarded>,
}

/// One count of a client report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Discarded {
    /// Sentry's reason (`queue_overflow`, `sample_rate`, ...).
    pub(crate) reason: String,
    /// Sentry's data category (`error`).
    pub(crate) category: String,
    pub(crate) quantity: u64,
}

impl ClientReportItem {
    /// Adds `more`'s counts to this report's.
    pub(crate) fn add(&mut self, more: &ClientReportItem) {
        self.at_ms = self.at_ms.max(more.at_ms);
        for d in &more.discarded {
            match self
                .discarded
                .iter_mut()
                .find(|x| x.reason == d.reason && x.category == d.category)
            {
                Some(x) => x.quantity = x.quantity.saturating_add(d.quantity),
                None => self.discarded.push(d.clone()),
            }
        }
    }
}

/// The counters of losses among events routed to a channel that takes
/// client reports (events no such channel would have sent are not its
/// server's business): the queue was full, the event repeated a failure
/// already reported up its call chain, a grouping rule ignored it, the
/// logger's `before_save` hook dropped it, it could be neither stored nor
/// spooled.
pub(crate) const LOST_QUEUE_OVERFLOW: &str = "forwarded_lost_queue_full";
/// See [`LOST_QUEUE_OVERFLOW`].
pub(crate) const LOST_DUPLICATE: &str = "forwarded_lost_duplicate";
/// See [`LOST_QUEUE_OVERFLOW`].
pub(crate) const LOST_IGNORED: &str = "forwarded_lost_ignored";
/// See [`LOST_QUEUE_OVERFLOW`].
pub(crate) const LOST_BEFORE_SAVE: &str = "forwarded_lost_before_save";
/// See [`LOST_QUEUE_OVERFLOW`].
pub(crate) const LOST_UNWRITABLE: &str = "forwarded_lost_unwritable";
/// The counter of events a channel that takes client reports gave up
/// sending while its server kept rate-limiting it.
pub(crate) const GAVE_UP_RATE_LIMITED: &str = "forward_gave_up_rate_limited";

/// Sentry's reason for the events counted as lost under `counter` (the
/// `counters` table's name), for the counters of losses a server hears
/// of: a full queue is `queue_overflow`, a duplicate and an ignored event
/// `event_processor` (what Sentry's SDKs call a drop by their own
/// processing), the `before_save` hook `before_send`, an event neither
/// stored nor spooled `internal_sdk_error`, an event given up while the
/// server kept limiting `ratelimit_backoff`. Sampling has none: it only
/// leaves out events no channel takes.
pub(crate) fn discard_reason(counter: &str) -> Option<&'static str> {
    match counter {
        LOST_QUEUE_OVERFLOW => Some("queue_overflow"),
        LOST_DUPLICATE | LOST_IGNORED => Some("event_processor"),
        LOST_BEFORE_SAVE => Some("before_send"),
        LOST_UNWRITABLE => Some("internal_sdk_error"),
        GAVE_UP_RATE_LIMITED => Some("ratelimit_backoff"),
        _ => None,
    }
}

/// A session id for a run: 32 hex digits from what tells the process
/// apart (boot, pid, process start, start time), the same at its start and
/// its end whoever ends it (another process, perhaps another errsnap
/// version: it must never change).
pub(crate) fn session_id(
    boot_id: Option<&str>,
    pid: i64,
    process_start: Option<i64>,
    started_ms: i64,
) -> String {
    let text = format!(
        "{}/{pid}/{}/{started_ms}",
        boot_id.unwrap_or(""),
        process_start.unwrap_or(0)
    );
    let mut h = crate::pipeline::fingerprint::StableHasher::new();
    h.field(&text);
    let mut hex = h.finish_hex().into_bytes();
    // A version-4 UUID's marks (version nibble 4, variant 10xx), so any
    // reader takes it for one.
    hex[12] = b'4';
    hex[16] = b"89ab"[usize::from(hex[16]) % 4];
    String::from_utf8(hex).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_reads_back_from_its_payload() {
        let item = Item::ClientReport(ClientReportItem {
            at_ms: 5,
            discarded: vec![Discarded {
                reason: "sample_rate".into(),
                category: "error".into(),
                quantity: 3,
            }],
        });
        assert_eq!(Item::from_payload(&item.to_payload()), Some(item));
        assert_eq!(Item::from_payload("{\"item\":\"nothing\"}"), None);
    }

    #[test]
    fn reports_add_up_by_reason_and_category() {
        let one = |reason: &str, n| ClientReportItem {
            at_ms: n as i64,
            discarded: vec![Discarded {
                reason: reason.into(),
                category: "error".into(),
                quantity: n,
            }],
        };
        let mut r = one("sample_rate", 2);
        r.add(&one("sample_rate", 3));
        r.add(&one("queue_overflow", 7));
        assert_eq!(r.at_ms, 7);
        assert_eq!(r.discarded.len(), 2);
        assert_eq!(r.discarded[0].quantity, 5);
        assert_eq!(r.discarded[1].quantity, 7);
    }

    #[test]
    fn losses_have_sentrys_reasons() {
        assert_eq!(discard_reason(LOST_QUEUE_OVERFLOW), Some("queue_overflow"));
        assert_eq!(discard_reason(LOST_DUPLICATE), Some("event_processor"));
        assert_eq!(discard_reason(LOST_IGNORED), Some("event_processor"));
        assert_eq!(discard_reason(LOST_BEFORE_SAVE), Some("before_send"));
        assert_eq!(discard_reason(LOST_UNWRITABLE), Some("internal_sdk_error"));
        assert_eq!(
            discard_reason(GAVE_UP_RATE_LIMITED),
            Some("ratelimit_backoff")
        );
        // Every loss, not only those of events a server would have had.
        for all in [
            "dropped_events",
            "sampled_out",
            "deduplicated",
            "grouping_ignored",
        ] {
            assert_eq!(discard_reason(all), None, "{all}");
        }
    }

    #[test]
    fn a_session_id_is_a_uuid_of_its_process() {
        let a = session_id(Some("boot"), 42, Some(7), 1000);
        assert_eq!(a.len(), 32);
        assert_eq!(&a[12..13], "4");
        assert!(matches!(&a[16..17], "8" | "9" | "a" | "b"));
        assert_eq!(a, session_id(Some("boot"), 42, Some(7), 1000));
        assert_ne!(a, session_id(Some("boot"), 43, Some(7), 1000));
        assert_ne!(a, session_id(Some("boot"), 42, Some(8), 1000));
        assert_ne!(a, session_id(None, 42, Some(7), 1000));
        // Pinned: the next start (a newer build, perhaps) ends the session
        // its predecessor began.
        assert_eq!(a, "ee67f0e026d648cba59d6aca16a4b096");
    }
}
