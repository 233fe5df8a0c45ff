//! Forwarding channels: every stored event at or above a channel's level,
//! sent in full to another system (a Sentry-compatible server, an
//! OpenTelemetry collector) through the same durable outbox as alerts.
//!
//! Where an alert channel gets an [`Alert`] chosen by the alert policy
//! (threshold, cooldown, digests, mutes), a forwarding channel gets one
//! outbox row per routed event and the stored event itself
//! ([`EventDetail`]), read back on the notify thread. A row is claimed
//! before it is sent and marked sent after; a process killed between the
//! two sends it again at the next start with the same event id, which the
//! servers de-duplicate.

#[cfg(feature = "otlp")]
pub(crate) mod otlp;
#[cfg(feature = "otlp")]
mod proto;
#[cfg(feature = "sentry")]
pub(crate) mod sentry;
#[cfg(feature = "sentry")]
mod sentry_event;
#[cfg(feature = "sentry")]
mod sentry_items;

use std::sync::Arc;

use super::{Alert, Channel, ChannelError};
use crate::level::Level;
use crate::store::upstream::{Item, ItemKind};
use crate::store::EventDetail;

/// What sends one stored event, in full, to a forwarding channel's server.
pub(crate) trait Forward: Send + Sync + 'static {
    /// Sends the event; the errors are read as a channel's are
    /// ([`ChannelError::rate_limited`] pauses the whole channel).
    fn forward(&self, event: &EventDetail) -> Result<(), ChannelError>;

    /// The event as the server would receive it, for previews.
    fn preview(&self, event: &EventDetail) -> String;

    /// The kinds of item besides events this channel takes (check-ins,
    /// sessions, client reports): the store queues those for it.
    fn takes(&self) -> &'static [ItemKind] {
        &[]
    }

    /// Sends one item of a kind it takes (the store queues no other for
    /// it); errors are read as [`Forward::forward`]'s.
    fn send_item(&self, item: &Item) -> Result<(), ChannelError>;
}

/// A forwarding channel as the registry and `test-alert` see it: its
/// name, its defaults, and a test alert sent as an event.
pub(crate) struct Forwarding {
    name: &'static str,
    pub(crate) forward: Arc<dyn Forward>,
}

impl Forwarding {
    #[cfg_attr(not(any(feature = "sentry", feature = "otlp")), allow(dead_code))]
    pub(crate) fn new(name: &'static str, forward: Arc<dyn Forward>) -> Forwarding {
        Forwarding { name, forward }
    }
}

impl Channel for Forwarding {
    fn name(&self) -> &str {
        self.name
    }

    /// A test alert goes out as an event (`errsnap test-alert`).
    fn send(&self, alert: &Alert) -> Result<(), ChannelError> {
        self.forward.forward(&test_event(alert))
    }

    fn min_level(&self) -> Level {
        Level::Error
    }

    /// Forwarding keeps pace with a burst: the server's rate limits, not
    /// this bucket, are what normally slows it.
    fn per_minute(&self) -> u32 {
        60_000
    }

    fn render(&self, alert: &Alert) -> String {
        self.forward.preview(&test_event(alert))
    }
}

/// The event id as 32 lowercase hex digits (a ULID is 128 bits, as a
/// UUID is): what Sentry calls `event_id`, stable across retries.
#[cfg_attr(not(feature = "sentry"), allow(dead_code))]
pub(crate) fn hex_id(uid: &str) -> String {
    match uid.parse::<crate::event::EventId>() {
        Ok(id) => format!("{:032x}", id.as_u128()),
        // Not a stored id (never expected): a stable stand-in.
        Err(_) => {
            let mut h: u128 = 0xcbf2_9ce4_8422_2325;
            for b in uid.bytes() {
                h = (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
            }
            format!("{h:032x}")
        }
    }
}

/// The event's trace and span ids, when its tags carry them
/// (`trace_id`: 32 hex digits, not all zero; `span_id`: 16).
#[cfg_attr(not(any(feature = "sentry", feature = "otlp")), allow(dead_code))]
pub(crate) fn trace_ids(event: &EventDetail) -> Option<(String, Option<String>)> {
    let hex = |key: &str, len: usize| {
        let v = event.tags.get(key)?.trim().to_ascii_lowercase();
        let ok = v.len() == len
            && v.bytes().all(|b| b.is_ascii_hexdigit())
            && v.bytes().any(|b| b != b'0');
        ok.then_some(v)
    };
    let trace = hex("trace_id", 32)?;
    Some((trace, hex("span_id", 16)))
}

/// `s` cut to at most `max` characters; whether it was cut.
#[cfg_attr(not(any(feature = "sentry", feature = "otlp")), allow(dead_code))]
pub(crate) fn cut(s: &str, max: usize) -> (String, bool) {
    match s.char_indices().nth(max) {
        Some((at, _)) => (format!("{}…", &s[..at]), true),
        None => (s.to_owned(), false),
    }
}

/// The event a test alert stands for (`errsnap test-alert` through a
/// forwarding channel sends it as an event).
pub(crate) fn test_event(alert: &crate::event::Alert) -> EventDetail {
    use crate::store::{EventRow, GroupStatus};
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("errsnap.test".to_owned(), "true".to_owned());
    EventDetail {
        row: EventRow {
            row: 0,
            id: alert.event_id.clone(),
            ts: alert.timestamp_ms,
            logger: alert.logger.clone(),
            level: alert.level,
            kind: alert.event_kind,
            message: alert.message.clone(),
            file: None,
            line: None,
            group: 0,
            thread: std::thread::current().name().map(str::to_owned),
            pid: alert.pid,
        },
        column: None,
        thread_id: 0,
        chain: Vec::new(),
        app_name: alert.app_name.clone(),
        release: alert.release.clone(),
        environment: alert.environment.clone(),
        tags,
        extra: serde_json::Value::Null,
        breadcrumbs: Vec::new(),
        redactions: 0,
        group_fingerprint: "errsnap-test-alert".to_owned(),
        group_title: alert.group_title.clone(),
        group_count: 1,
        group_status: GroupStatus::Open,
        frames: Vec::new(),
        symbols_resolved: true,
        snapshot: None,
        host: alert.host.clone().map(|h| crate::event::HostInfo {
            hostname: Some(h),
            ..crate::event::HostInfo::default()
        }),
        alerts: Vec::new(),
        transaction: None,
        user: None,
        request: None,
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_the_ulid_as_128_bits() {
        let id = crate::event::EventId::generate(1_700_000_000_000);
        let hex = hex_id(&id.to_string());
        assert_eq!(hex.len(), 32);
        assert_eq!(u128::from_str_radix(&hex, 16).unwrap(), id.as_u128());
        assert_eq!(hex_id("not an id"), hex_id("not an id"));
        assert_ne!(hex_id("not an id"), hex_id("not an ie"));
        assert_eq!(hex_id("x").len(), 32);
    }

    #[test]
    fn a_test_alert_becomes_an_event_of_its_host_and_logger() {
        let mut alert = crate::event::Alert::test("web", Some("shop".into()), None);
        alert.host = Some("web-1".into());
        let e = test_event(&alert);
        assert_eq!(e.host.unwrap().hostname.as_deref(), Some("web-1"));
        assert_eq!(e.row.id, alert.event_id);
        assert_eq!(e.row.logger, "web");
        assert_eq!(e.app_name.as_deref(), Some("shop"));
        assert_eq!(e.tags["errsnap.test"], "true");
    }

    #[test]
    fn cut_counts_characters() {
        assert_eq!(cut("héllo", 5), ("héllo".to_owned(), false));
        assert_eq!(cut("héllo", 2), ("hé…".to_owned(), true));
    }
}
