//! Events errsnap raises itself (a crash loop, a resource warning): made
//! the same way, each kind under its own logger with one fixed
//! fingerprint, so its group's alert policy sends the first and digests
//! the rest.

use std::sync::Arc;

use serde_json::Map;

use crate::event::{Event, EventId, EventKind};
use crate::level::Level;
use crate::pipeline::fingerprint;

/// An event of errsnap's own: `logger`, `level`, `message`, grouped by
/// `key` under `logger` alone (never by the message's figures), with
/// `extra`, to `channels`.
pub(crate) fn event(
    logger: &str,
    level: Level,
    message: String,
    key: &str,
    extra: Map<String, serde_json::Value>,
    channels: Vec<String>,
) -> Event {
    let now = crate::util::time::now_ms();
    Event {
        id: EventId::generate(now),
        timestamp_ms: now,
        logger: logger.to_owned(),
        level,
        kind: EventKind::Message,
        message,
        chain: Vec::new(),
        location: None,
        thread_name: None,
        thread_id: 0,
        pid: std::process::id(),
        app_name: None,
        release: None,
        environment: None,
        tags: Default::default(),
        extra,
        frames: Arc::from(Vec::new()),
        backtrace_hash: None,
        symbols_resolved: true,
        fingerprint: fingerprint::fingerprint(logger, EventKind::Message, key, &[], &[], None),
        // Its own fixed grouping: `errsnap regroup` leaves it.
        custom_fingerprint: true,
        earlier_fingerprints: Vec::new(),
        snapshot: None,
        alert_channels: channels,
        breadcrumbs: Vec::new(),
        redactions: 0,
        origin: false,
        context: Default::default(),
        attachments: Vec::new(),
    }
}
