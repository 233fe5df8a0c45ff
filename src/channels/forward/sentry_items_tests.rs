//! The items read back by Sentry's own protocol types (`sentry-types`),
//! as a server would read them.

use sentry_types::protocol::v7::{
    Envelope, EnvelopeItem, MonitorCheckInStatus, MonitorIntervalUnit, MonitorSchedule,
    SessionStatus,
};

use super::*;
use crate::store::upstream::Discarded;

const NOW: i64 = 1_796_000_000_000;

fn parsed(item: &Item) -> EnvelopeItem {
    let (kind, payload) = super::item(item, NOW).unwrap();
    let env = Envelope::from_slice(&envelope(kind, &payload, NOW)).unwrap();
    let mut items = env.items();
    let first = items.next().expect("one item").clone();
    assert!(items.next().is_none());
    first
}

fn check_in(status: &str) -> CheckInItem {
    CheckInItem {
        id: "0123456789abcdef0123456789abcdef".into(),
        slug: "nightly-sync".into(),
        status: status.into(),
        at_ms: NOW,
        duration_ms: (status != "in_progress").then_some(12_345),
        crontab: Some("0 3 * * *".into()),
        zone: Some("Europe/Helsinki".into()),
        every_ms: None,
        margin_ms: 5 * 60_000,
        max_runtime_ms: Some(90 * 60_000 + 1),
        reason: None,
    }
}

#[test]
fn a_check_in_is_a_monitor_check_in_with_its_config() {
    for (status, want) in [
        ("in_progress", MonitorCheckInStatus::InProgress),
        ("ok", MonitorCheckInStatus::Ok),
        ("error", MonitorCheckInStatus::Error),
    ] {
        let EnvelopeItem::MonitorCheckIn(c) = parsed(&Item::CheckIn(check_in(status))) else {
            panic!("not a check-in");
        };
        assert_eq!(
            c.check_in_id.simple().to_string(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(c.monitor_slug, "nightly-sync");
        assert_eq!(c.status, want);
        let expected = (status != "in_progress").then_some(12.345);
        assert_eq!(c.duration, expected);
        let config = c.monitor_config.expect("always the config");
        assert_eq!(
            config.schedule,
            MonitorSchedule::Crontab {
                value: "0 3 * * *".into()
            }
        );
        assert_eq!(config.checkin_margin, Some(5));
        assert_eq!(config.max_runtime, Some(91), "rounded up");
        assert_eq!(config.timezone.as_deref(), Some("Europe/Helsinki"));
    }
}

#[test]
fn intervals_take_the_largest_unit_that_divides_them_in_whole_minutes() {
    for (ms, value, unit) in [
        (30_000, 1, MonitorIntervalUnit::Minute),
        (90_000, 2, MonitorIntervalUnit::Minute),
        (120_000, 2, MonitorIntervalUnit::Minute),
        (90 * 60_000, 90, MonitorIntervalUnit::Minute),
        (2 * 3_600_000, 2, MonitorIntervalUnit::Hour),
        (36 * 3_600_000, 36, MonitorIntervalUnit::Hour),
        (2 * 86_400_000, 2, MonitorIntervalUnit::Day),
        (14 * 86_400_000, 2, MonitorIntervalUnit::Week),
    ] {
        let mut c = check_in("ok");
        c.crontab = None;
        c.zone = None;
        c.every_ms = Some(ms);
        c.max_runtime_ms = None;
        c.margin_ms = 0;
        let EnvelopeItem::MonitorCheckIn(c) = parsed(&Item::CheckIn(c)) else {
            panic!("not a check-in");
        };
        let config = c.monitor_config.unwrap();
        assert_eq!(
            config.schedule,
            MonitorSchedule::Interval { value, unit },
            "{ms}"
        );
        assert_eq!(config.checkin_margin, Some(1), "at least a minute");
        assert_eq!(config.max_runtime, None);
        assert_eq!(config.timezone, None);
    }
}

#[test]
fn a_long_slug_is_cut_to_fifty_and_stays_apart() {
    let a = "a".repeat(45) + "-first-of-two";
    let b = "a".repeat(45) + "-second-of-two";
    assert_eq!(slug(&a).chars().count(), 50);
    assert_ne!(slug(&a), slug(&b));
    assert_eq!(slug(&a), slug(&a));
    assert!(slug(&a).starts_with(&"a".repeat(41)));
    assert_eq!(slug("nightly"), "nightly");
    assert_eq!(slug(&"x".repeat(50)), "x".repeat(50));
}

fn session(status: &str) -> SessionItem {
    SessionItem {
        sid: crate::store::upstream::session_id(Some("boot"), 42, Some(7), NOW - 60_000),
        init: status == "ok",
        seq: u64::from(status != "ok"),
        started_ms: NOW - 60_000,
        at_ms: NOW,
        status: status.into(),
        errors: 3,
        duration_ms: (status != "ok").then_some(60_000),
        release: "shop@1.4.2".into(),
        environment: Some("production".into()),
        host: Some("web-1".into()),
    }
}

#[test]
fn a_run_is_a_session_update_of_its_release() {
    for (status, want) in [
        ("ok", SessionStatus::Ok),
        ("exited", SessionStatus::Exited),
        ("crashed", SessionStatus::Crashed),
        ("abnormal", SessionStatus::Abnormal),
    ] {
        let item = session(status);
        let EnvelopeItem::SessionUpdate(s) = parsed(&Item::Session(item.clone())) else {
            panic!("not a session");
        };
        assert_eq!(s.session_id.simple().to_string(), item.sid);
        assert_eq!(s.status, want);
        assert_eq!(s.errors, 3);
        assert_eq!(s.init, status == "ok");
        assert_eq!(s.sequence, Some(u64::from(status != "ok")));
        assert_eq!(s.attributes.release, "shop@1.4.2");
        assert_eq!(s.attributes.environment.as_deref(), Some("production"));
        assert_eq!(s.distinct_id.as_deref(), Some("web-1"));
        let started = s.started.duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(started.as_millis() as i64, NOW - 60_000);
        assert_eq!(s.duration, (status != "ok").then_some(60.0));
    }
}

#[test]
fn sessions_relay_would_drop_are_refused_by_name() {
    let mut old = session("exited");
    old.started_ms = NOW - 5 * 86_400_000 - 1;
    let e = super::item(&Item::Session(old), NOW).unwrap_err();
    assert!(e.contains("5 days"), "{e}");
    let mut young = session("exited");
    young.started_ms = NOW - 5 * 86_400_000;
    assert!(super::item(&Item::Session(young), NOW).is_ok());
    for bad in [
        "latest",
        ".",
        "..",
        "",
        " 1.0",
        "1.0\n",
        "a/b",
        &"r".repeat(201),
    ] {
        let mut s = session("exited");
        s.release = bad.to_owned();
        let e = super::item(&Item::Session(s), NOW).unwrap_err();
        assert!(e.contains("release"), "{bad:?}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
    let mut s = session("exited");
    s.release = "r".repeat(200);
    assert!(super::item(&Item::Session(s), NOW).is_ok());
}

#[test]
fn losses_are_a_client_report_with_sentrys_reasons() {
    let report = ClientReportItem {
        at_ms: NOW,
        discarded: ["queue_overflow", "sample_rate", "event_processor"]
            .iter()
            .enumerate()
            .map(|(i, r)| Discarded {
                reason: (*r).to_owned(),
                category: "error".into(),
                quantity: i as u64 + 1,
            })
            .collect(),
    };
    let EnvelopeItem::ClientReport(r) = parsed(&Item::ClientReport(report)) else {
        panic!("not a client report");
    };
    let back = serde_json::to_value(&r).unwrap();
    assert_eq!(back["timestamp"].as_f64(), Some(NOW as f64 / 1000.0));
    let counts: Vec<(String, String, u64)> = back["discarded_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["reason"].as_str().unwrap().to_owned(),
                d["category"].as_str().unwrap().to_owned(),
                d["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("queue_overflow".into(), "error".into(), 1),
            ("sample_rate".into(), "error".into(), 2),
            ("event_processor".into(), "error".into(), 3),
        ]
    );
    // Every reason errsnap names is one Sentry's types know.
    for counter in [
        crate::store::upstream::LOST_QUEUE_OVERFLOW,
        crate::store::upstream::LOST_DUPLICATE,
        crate::store::upstream::LOST_IGNORED,
        crate::store::upstream::LOST_BEFORE_SAVE,
        crate::store::upstream::LOST_UNWRITABLE,
        crate::store::upstream::GAVE_UP_RATE_LIMITED,
    ] {
        let reason = crate::store::upstream::discard_reason(counter).unwrap();
        let r: Result<sentry_types::protocol::v7::ClientReport, _> =
            serde_json::from_value(serde_json::json!({"timestamp": 1, "discarded_events": [
                {"reason": reason, "category": "error", "quantity": 1}]}));
        assert!(r.is_ok(), "{reason}");
    }
}
