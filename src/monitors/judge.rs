//! The rules that judge a monitor's runs, apart from the store: which
//! expected time a run that starts answers, which expected times went by
//! without a run, and the words of what was found.

use std::time::Duration;

use super::check_in::{MonitorSpec, Status};

/// How early a run may start and still answer the next expected time
/// (a timer that fires a little ahead, clocks a little apart).
pub(crate) const EARLY_MS: i64 = 60_000;

/// The most missed runs found for one monitor in one pass (a monitor
/// silent for weeks is not a flood of events: the next pass goes on).
pub(crate) const MISSES_PER_PASS: usize = 10;

/// The expected time a run starting at `start_ms` answers: the first one
/// at or after `start_ms - margin` that is no more than [`EARLY_MS`] after
/// the start (`None`: an interval monitor, or a run at no expected time).
pub(crate) fn expected_for_start(spec: &MonitorSpec, start_ms: i64) -> Option<i64> {
    spec.schedule.crontab_text()?;
    let margin = ms(spec.margin);
    let e = spec.schedule.next_after(start_ms - margin - 1)?;
    (e <= start_ms + EARLY_MS).then_some(e)
}

/// The expected times past their margin at `now_ms` that have not been
/// judged: for a crontab, those after `judged_until`; for an interval, the
/// one after the last run (`last_ms`, or when the monitor was declared).
pub(crate) fn due(spec: &MonitorSpec, judged_until: i64, last_ms: i64, now_ms: i64) -> Vec<i64> {
    let margin = ms(spec.margin);
    if let Some(every) = spec.schedule.every() {
        let e = last_ms.saturating_add(ms(every));
        return if e > judged_until && e + margin < now_ms {
            vec![e]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    let mut cursor = judged_until;
    while out.len() < MISSES_PER_PASS {
        match spec.schedule.next_after(cursor) {
            Some(e) if e + margin < now_ms => {
                out.push(e);
                cursor = e;
            }
            _ => break,
        }
    }
    out
}

/// What the judge (or a check-in) found wrong, or right again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) slug: String,
    pub(crate) status: Status,
    /// The run's id.
    pub(crate) uid: String,
    pub(crate) expected_at: Option<i64>,
    pub(crate) started_at: Option<i64>,
    /// Why, in words: an exit status, an error, how the process ended.
    pub(crate) reason: Option<String>,
    /// The monitor came back after a failure.
    pub(crate) recovered: bool,
}

/// A time as the monitor's schedule reads it (`2026-12-07 03:00 EET`).
pub(crate) fn local(spec: &MonitorSpec, at_ms: i64) -> String {
    let zone = spec.schedule.zone().unwrap_or("UTC");
    let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else {
        return at_ms.to_string();
    };
    match jiff::tz::TimeZone::get(zone) {
        Ok(tz) => ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string(),
        Err(_) => ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// The event's message for a finding.
pub(crate) fn words(spec: &MonitorSpec, f: &Finding) -> String {
    let slug = &f.slug;
    let started = f.started_at.map(|s| local(spec, s));
    let run = match (f.expected_at, &started) {
        (Some(e), _) => format!("the {} run", local(spec, e)),
        (None, Some(s)) => format!("the run started {s}"),
        (None, None) => "the run".to_owned(),
    };
    let why = f
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    if f.recovered {
        return format!("monitor {slug} is back: {run} ended ok");
    }
    match f.status {
        Status::Missed => match spec.schedule.every() {
            Some(every) => format!(
                "monitor {slug}: no check-in within {} of {} (expected every {})",
                secs(spec.margin),
                f.expected_at.map_or_else(String::new, |e| local(spec, e)),
                secs(every)
            ),
            None => format!(
                "monitor {slug}: {run} did not start (margin {})",
                secs(spec.margin)
            ),
        },
        Status::Timeout => format!(
            "monitor {slug}: {run} ran past its maximum of {}{why}",
            spec.max_runtime.map_or_else(String::new, secs)
        ),
        Status::Error => format!("monitor {slug}: {run} failed{why}"),
        Status::Ok | Status::InProgress | Status::Declared => format!("monitor {slug}: {run}{why}"),
    }
}

fn secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitors::Schedule;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn nightly() -> MonitorSpec {
        MonitorSpec {
            slug: "nightly".into(),
            schedule: Schedule::crontab("0 3 * * *", "Europe/Riga").unwrap(),
            margin: Duration::from_secs(300),
            max_runtime: Some(Duration::from_secs(3600)),
        }
    }

    #[test]
    fn a_start_answers_the_expected_time_within_its_margin() {
        let s = nightly();
        // 03:00 EET is 01:00 UTC in December.
        assert_eq!(
            expected_for_start(&s, at("2026-12-07T01:00:05Z")),
            Some(at("2026-12-07T01:00:00Z"))
        );
        assert_eq!(
            expected_for_start(&s, at("2026-12-07T01:04:59Z")),
            Some(at("2026-12-07T01:00:00Z"))
        );
        // At the margin exactly: still on time.
        assert_eq!(
            expected_for_start(&s, at("2026-12-07T01:05:00Z")),
            Some(at("2026-12-07T01:00:00Z"))
        );
        assert_eq!(
            expected_for_start(&s, at("2026-12-07T00:59:30Z")),
            Some(at("2026-12-07T01:00:00Z"))
        );
        assert_eq!(
            expected_for_start(&s, at("2026-12-07T01:05:01Z")),
            None,
            "late"
        );
        assert_eq!(
            expected_for_start(&s, at("2026-12-07T00:58:00Z")),
            None,
            "early"
        );
        let beat = MonitorSpec {
            schedule: Schedule::interval(Duration::from_secs(60)).unwrap(),
            ..nightly()
        };
        assert_eq!(expected_for_start(&beat, at("2026-12-07T01:00:00Z")), None);
    }

    #[test]
    fn expected_times_are_due_once_past_their_margin_and_at_most_ten_at_once() {
        let s = nightly();
        let declared = at("2026-12-06T12:00:00Z");
        assert!(due(&s, declared, declared, at("2026-12-07T01:04:00Z")).is_empty());
        // At the margin exactly: not yet.
        assert!(due(&s, declared, declared, at("2026-12-07T01:05:00Z")).is_empty());
        assert_eq!(
            due(&s, declared, declared, at("2026-12-07T01:05:01Z")),
            [at("2026-12-07T01:00:00Z")]
        );
        // Judged already: nothing again.
        let judged = at("2026-12-07T01:00:00Z");
        assert!(due(&s, judged, declared, at("2026-12-07T02:00:00Z")).is_empty());
        // A month of silence: ten now, the rest in later passes.
        let long = due(&s, declared, declared, at("2027-01-07T02:00:00Z"));
        assert_eq!(long.len(), MISSES_PER_PASS);
        assert_eq!(long[0], at("2026-12-07T01:00:00Z"));
        // An interval: due once after the last run.
        let beat = MonitorSpec {
            schedule: Schedule::interval(Duration::from_secs(60)).unwrap(),
            margin: Duration::from_secs(30),
            ..nightly()
        };
        let last = at("2026-12-07T01:00:00Z");
        assert!(due(&beat, 0, last, last + 89_000).is_empty());
        assert!(
            due(&beat, 0, last, last + 90_000).is_empty(),
            "at the margin exactly"
        );
        assert_eq!(due(&beat, 0, last, last + 91_000), [last + 60_000]);
        assert!(
            due(&beat, last + 60_000, last, last + 200_000).is_empty(),
            "judged"
        );
    }

    #[test]
    fn findings_read_in_the_schedules_own_time() {
        let s = nightly();
        let f = Finding {
            slug: "nightly".into(),
            status: Status::Missed,
            uid: "u".into(),
            expected_at: Some(at("2026-12-07T01:00:00Z")),
            started_at: None,
            reason: None,
            recovered: false,
        };
        assert_eq!(
            words(&s, &f),
            "monitor nightly: the 2026-12-07 03:00 EET run did not start (margin 5m)"
        );
        let t = Finding {
            status: Status::Timeout,
            started_at: Some(at("2026-12-07T01:00:10Z")),
            ..f.clone()
        };
        assert_eq!(
            words(&s, &t),
            "monitor nightly: the 2026-12-07 03:00 EET run ran past its maximum of 1h"
        );
        let e = Finding {
            status: Status::Error,
            reason: Some("pid 4411 was OOM-killed at 03:13".into()),
            ..t.clone()
        };
        assert_eq!(
            words(&s, &e),
            "monitor nightly: the 2026-12-07 03:00 EET run failed: pid 4411 was OOM-killed at 03:13"
        );
        let back = Finding {
            status: Status::Ok,
            recovered: true,
            ..t
        };
        assert_eq!(
            words(&s, &back),
            "monitor nightly is back: the 2026-12-07 03:00 EET run ended ok"
        );
    }
}
