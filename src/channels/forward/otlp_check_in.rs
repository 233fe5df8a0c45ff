//! A monitor's check-in as an OTLP `LogRecord`: its event name
//! `errsnap.check_in`, severity INFO (a run starting or ending well) or
//! ERROR (a run that failed), a body people read ("monitor nightly-sync:
//! ok after 12.3 s"), and the check-in as `errsnap.check_in.*` and the
//! monitor as `errsnap.monitor.*` attributes; the resource's
//! `service.name` is the monitor's slug (the job is the service).

use super::{any, nanos, severity, Any, Attrs, Msg};
use crate::level::Level;
use crate::store::upstream::CheckInItem;

/// The record's event name.
pub(super) const EVENT_NAME: &str = "errsnap.check_in";

/// The whole `ExportLogsServiceRequest` of one check-in.
pub(super) fn request(c: &CheckInItem, now_ms: i64) -> Vec<u8> {
    let mut res = Attrs::default();
    res.text("service.name", &c.slug);
    super::export(&res, &record(c, now_ms))
}

/// What people read: the slug, the status, how long it ran, why it failed.
fn body(c: &CheckInItem) -> String {
    let took = c
        .duration_ms
        .map(|ms| {
            format!(
                " after {}",
                crate::util::time::seconds(std::time::Duration::from_millis(ms.max(0) as u64))
            )
        })
        .unwrap_or_default();
    let why = c
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match c.status.as_str() {
        "in_progress" => format!("monitor {}: started", c.slug),
        "ok" => format!("monitor {}: ok{took}", c.slug),
        s => format!("monitor {}: {s}{took}{why}", c.slug),
    }
}

fn record(c: &CheckInItem, now_ms: i64) -> Msg {
    let mut a = Attrs::default();
    a.text("errsnap.monitor.slug", &c.slug);
    a.text("errsnap.check_in.id", &c.id);
    a.text("errsnap.check_in.status", &c.status);
    if let Some(ms) = c.duration_ms {
        a.put("errsnap.check_in.duration_ms", Any::Int(ms));
    }
    if let Some(r) = &c.reason {
        a.text("errsnap.check_in.reason", r);
    }
    match (&c.crontab, c.every_ms) {
        (Some(tab), _) => a.text("errsnap.monitor.crontab", tab),
        (None, Some(ms)) => a.put("errsnap.monitor.every_ms", Any::Int(ms)),
        (None, None) => {}
    }
    if let Some(z) = &c.zone {
        a.text("errsnap.monitor.timezone", z);
    }
    a.put("errsnap.monitor.margin_ms", Any::Int(c.margin_ms));
    if let Some(ms) = c.max_runtime_ms {
        a.put("errsnap.monitor.max_runtime_ms", Any::Int(ms));
    }
    let level = if c.status == "error" {
        Level::Error
    } else {
        Level::Info
    };
    let (number, text) = severity(level);
    let mut r = Msg::default();
    r.fixed64(1, nanos(c.at_ms))
        .int(2, number)
        .string(3, text)
        .message(5, &any(&Any::Str(&body(c))));
    for kv in &a.list {
        r.message(6, kv);
    }
    r.fixed64(11, nanos(now_ms)).string(12, EVENT_NAME);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: &str, duration_ms: Option<i64>, reason: Option<&str>) -> CheckInItem {
        CheckInItem {
            id: "0123456789abcdef0123456789abcdef".into(),
            slug: "nightly-sync".into(),
            status: status.into(),
            at_ms: 1_000,
            duration_ms,
            crontab: Some("0 3 * * *".into()),
            zone: Some("UTC".into()),
            every_ms: None,
            margin_ms: 60_000,
            max_runtime_ms: None,
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn the_body_says_what_happened_to_the_run() {
        assert_eq!(
            body(&item("in_progress", None, None)),
            "monitor nightly-sync: started"
        );
        assert_eq!(
            body(&item("ok", Some(2_500), None)),
            "monitor nightly-sync: ok after 2.5 s"
        );
        assert_eq!(
            body(&item("error", Some(10_000), Some("exit status 3"))),
            "monitor nightly-sync: error after 10 s: exit status 3"
        );
    }
}
