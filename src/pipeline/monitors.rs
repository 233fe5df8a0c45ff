//! A monitor's finding made an event: a failure (missed, timed out,
//! failed, died) in the monitor's group, a recovery in a group of its own,
//! each under the logger `monitors`.

use serde_json::{json, Map};

use crate::event::Event;
use crate::level::Level;
use crate::monitors::check_in::MonitorSpec;
use crate::monitors::judge::{self, Finding};

/// The logger monitors' events are recorded under.
pub(crate) const MONITORS_LOGGER: &str = "monitors";

/// The event of `f`, to `channels`.
pub(crate) fn event(spec: &MonitorSpec, f: &Finding, channels: Vec<String>) -> Event {
    let mut extra = Map::new();
    extra.insert(
        "monitor".to_owned(),
        json!({
            "slug": f.slug,
            "status": f.status.as_str(),
            "check_in": f.uid,
            "expected_at": f.expected_at,
            "started_at": f.started_at,
            "reason": f.reason,
            "recovered": f.recovered,
            "crontab": spec.schedule.crontab_text(),
            "zone": spec.schedule.zone(),
            "every_ms": spec.schedule.every().map(|d| d.as_millis() as u64),
        }),
    );
    // One group per monitor for its failures; its recoveries apart, so a
    // recovery never counts as the failure happening again.
    let (level, key) = if f.recovered {
        (Level::Info, format!("monitor {} recovered", f.slug))
    } else {
        (Level::Error, format!("monitor {}", f.slug))
    };
    let mut ev = super::own::event(
        MONITORS_LOGGER,
        level,
        judge::words(spec, f),
        &key,
        extra,
        channels,
    );
    ev.tags.insert("monitor".to_owned(), f.slug.clone());
    ev.tags
        .insert("monitor.status".to_owned(), f.status.as_str().to_owned());
    ev
}
