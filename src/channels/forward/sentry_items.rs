//! The items besides events a Sentry-compatible server takes, as Relay
//! reads them: a monitor's `check_in` (always with its `monitor_config`,
//! so the server creates or updates the monitor and finds misses and
//! timeouts by itself), a run as a release-health `session`, and errsnap's
//! own losses as a `client_report`.
//!
//! Relay drops silently what it does not like, so what it would drop is
//! refused here, named: a session older than the 5 days Relay takes, or
//! whose release Relay refuses. What it would cut is made to fit: a slug
//! over 50 characters keeps its first 41 and a hash of the whole; limits
//! are whole minutes (rounded up, at least one: never a miss the monitor
//! here would not find).

use serde_json::{json, Value};

use crate::pipeline::fingerprint::StableHasher;
use crate::store::upstream::{CheckInItem, ClientReportItem, Item, SessionItem};
use crate::util::time::rfc3339;

/// The longest slug Relay keeps.
const SLUG_MAX: usize = 50;
/// Relay drops sessions that began longer ago than this.
const SESSION_MAX_AGE_MS: i64 = 5 * 24 * 3600 * 1000;
/// The longest release Relay takes.
const RELEASE_MAX: usize = 200;

/// The item's type and payload, or why the server would drop it.
pub(crate) fn item(item: &Item, now_ms: i64) -> Result<(&'static str, Value), String> {
    match item {
        Item::CheckIn(c) => Ok(("check_in", check_in(c))),
        Item::Session(s) => session(s, now_ms).map(|v| ("session", v)),
        Item::ClientReport(r) => Ok(("client_report", client_report(r))),
    }
}

/// The envelope of one item that is not an event.
pub(crate) fn envelope(kind: &str, payload: &Value, now_ms: i64) -> Vec<u8> {
    let payload = payload.to_string();
    let head = json!({
        "sent_at": rfc3339(now_ms),
        "sdk": { "name": "errsnap", "version": env!("CARGO_PKG_VERSION") },
    });
    let header = json!({ "type": kind, "length": payload.len() });
    let mut out = Vec::with_capacity(payload.len() + 200);
    for line in [head.to_string(), header.to_string(), payload] {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Whole minutes, rounded up, at least one.
fn minutes(ms: i64) -> u64 {
    let ms = u64::try_from(ms).unwrap_or(0);
    ms.div_ceil(60_000).max(1)
}

/// A slug Relay keeps whole.
pub(crate) fn slug(s: &str) -> String {
    if s.chars().count() <= SLUG_MAX {
        return s.to_owned();
    }
    let mut h = StableHasher::new();
    h.field(s);
    let head: String = s.chars().take(SLUG_MAX - 9).collect();
    format!("{head}-{}", &h.finish_hex()[..8])
}

/// An interval as Sentry's schedule: the largest unit that divides it
/// (minutes at least, rounded up).
fn interval(every_ms: i64) -> Value {
    let total = minutes(every_ms);
    let (value, unit) = [(7 * 24 * 60, "week"), (24 * 60, "day"), (60, "hour")]
        .into_iter()
        .find(|(m, _)| total.is_multiple_of(*m))
        .map_or((total, "minute"), |(m, unit)| (total / m, unit));
    json!({ "type": "interval", "value": value, "unit": unit })
}

fn check_in(c: &CheckInItem) -> Value {
    let schedule = match (&c.crontab, c.every_ms) {
        (Some(tab), _) => json!({ "type": "crontab", "value": tab }),
        (None, Some(ms)) => interval(ms),
        (None, None) => Value::Null,
    };
    let mut config = json!({
        "schedule": schedule,
        "checkin_margin": minutes(c.margin_ms),
    });
    if let Some(max) = c.max_runtime_ms {
        config["max_runtime"] = json!(minutes(max));
    }
    if let Some(zone) = &c.zone {
        config["timezone"] = json!(zone);
    }
    let mut v = json!({
        "check_in_id": c.id,
        "monitor_slug": slug(&c.slug),
        "status": c.status,
        "monitor_config": config,
    });
    if let Some(ms) = c.duration_ms {
        v["duration"] = json!(ms.max(0) as f64 / 1000.0);
    }
    v
}

/// Why Relay would refuse `release`, if it would.
fn release_refused(release: &str) -> Option<&'static str> {
    let trimmed = release.trim();
    if trimmed.is_empty() || trimmed != release {
        Some("is empty or has spaces around it")
    } else if matches!(release, "." | ".." | "latest") {
        Some("is one Sentry reserves")
    } else if release
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        Some("has a control character or a slash")
    } else if release.chars().count() > RELEASE_MAX {
        Some("is over 200 characters")
    } else {
        None
    }
}

fn session(s: &SessionItem, now_ms: i64) -> Result<Value, String> {
    if now_ms.saturating_sub(s.started_ms) > SESSION_MAX_AGE_MS {
        return Err("the run began more than 5 days ago: Sentry drops such sessions".to_owned());
    }
    if let Some(why) = release_refused(&s.release) {
        return Err(format!(
            "the release {why}: Sentry drops its sessions (release {:?})",
            super::cut(&s.release, 80).0
        ));
    }
    let mut attrs = json!({ "release": s.release });
    if let Some(e) = &s.environment {
        attrs["environment"] = json!(e);
    }
    let mut v = json!({
        "sid": s.sid,
        "init": s.init,
        "seq": s.seq,
        "started": rfc3339(s.started_ms),
        "timestamp": rfc3339(s.at_ms.max(s.started_ms)),
        "status": s.status,
        "errors": s.errors,
        "attrs": attrs,
    });
    if let Some(h) = &s.host {
        v["did"] = json!(h);
    }
    if let Some(ms) = s.duration_ms {
        v["duration"] = json!(ms.max(0) as f64 / 1000.0);
    }
    Ok(v)
}

/// A client report (its time in seconds, as Sentry's SDKs send it).
fn client_report(r: &ClientReportItem) -> Value {
    json!({
        "timestamp": r.at_ms as f64 / 1000.0,
        "discarded_events": r.discarded.iter().map(|d| json!({
            "reason": d.reason,
            "category": d.category,
            "quantity": d.quantity,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[path = "sentry_items_tests.rs"]
mod tests;
