//! When a monitored job is expected: a crontab in a time zone, or an
//! interval between check-ins.
//!
//! Crontabs follow Debian cron's rules, as `cronsim` (Healthchecks.io)
//! implements them, and are parsed by the `cronexpr` crate:
//!
//! - five fields (minute, hour, day of month, month, day of week; names
//!   like `MON` and `JAN`; lists, ranges, steps), or `@hourly`, `@daily`
//!   (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`);
//! - when both day fields are restricted, a day matching either runs; when
//!   either starts with `*`, both must match (`0 0 */2 * MON`: odd days
//!   that are Mondays);
//! - daylight-saving changes: a job whose minute and hour fields both name
//!   fixed values (`30 2 * * *`, `0,30 3`, `30 2-4`) runs by the wall
//!   clock: a time the clock skips runs at the first minute after the gap
//!   (later skipped times of the same job are dropped), and a time the
//!   clock repeats runs once, the first time. A job with `*` in its minute
//!   or hour field (`*/15 * * * *`, `0 */2 * * *`) runs by real time: a
//!   skipped time never runs, a repeated one runs twice.

use std::time::Duration;

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{civil, Timestamp, ToSpan};

use crate::error::{Error, Result};

/// When a monitored job is expected to start.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Crontab(Box<Crontab>),
    Interval(Duration),
}

#[derive(Debug, Clone)]
struct Crontab {
    /// As given (an alias as given, not expanded).
    text: String,
    /// The zone's IANA name.
    zone: String,
    tz: TimeZone,
    /// Both the minute and the hour field name fixed values: the job runs
    /// by the wall clock (see the module's docs).
    wall_clock: bool,
    /// Parsed in the zone (real-time jobs) or in UTC (wall-clock jobs,
    /// whose times are computed as civil times, then placed in the zone).
    tab: cronexpr::Crontab,
}

/// Debian cron's aliases.
const ALIASES: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// A crontab (`"0 3 * * *"`, `"@daily"`) in the IANA time zone `zone`
    /// (`"Europe/Riga"`, `"UTC"`).
    ///
    /// # Errors
    /// A crontab that is not five fields or an alias, a field out of range,
    /// or a zone unknown to this system's time-zone database: the error
    /// names the value.
    ///
    /// ```
    /// use errsnap::monitor::Schedule;
    /// let s = Schedule::crontab("0 3 * * *", "Europe/Riga").unwrap();
    /// // 2026-03-29 03:00 does not exist in Riga (clocks go 03:00 -> 04:00).
    /// let next = s.next_after(1_774_731_600_000).unwrap(); // 2026-03-28 23:00 UTC
    /// assert_eq!(next, 1_774_746_000_000); // 04:00 EEST (01:00 UTC)
    /// assert!(Schedule::crontab("0 3 * *", "UTC").is_err());
    /// assert!(Schedule::crontab("0 3 * * *", "Mars/Olympus").is_err());
    /// ```
    pub fn crontab(expr: &str, zone: &str) -> Result<Schedule> {
        let text = expr.trim();
        let shown = format!("schedule {}", quoted(text));
        let fields = ALIASES
            .iter()
            .find(|(alias, _)| text.eq_ignore_ascii_case(alias))
            .map_or(text, |(_, f)| *f);
        let parts: Vec<&str> = fields.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(Error::config(
                shown,
                "expected five fields (minute hour day-of-month month day-of-week) or an alias like @daily",
            ));
        }
        let tz = TimeZone::get(zone).map_err(|_| {
            Error::config(
                format!("time zone {}", quoted(zone)),
                "not a time zone this system knows (an IANA name like Europe/Riga or UTC)",
            )
        })?;
        let wall_clock = !parts[0].starts_with('*') && !parts[1].starts_with('*');
        let in_zone = if wall_clock { "UTC" } else { zone };
        let options = cronexpr::ParseOptions::default();
        let tab = cronexpr::parse_crontab_with(&format!("{} {in_zone}", parts.join(" ")), options)
            .map_err(|e| Error::config(shown, e.to_string()))?;
        Ok(Schedule {
            kind: Kind::Crontab(Box::new(Crontab {
                text: text.to_owned(),
                zone: zone.to_owned(),
                tz,
                wall_clock,
                tab,
            })),
        })
    }

    /// A job expected every `every` (a heartbeat): the next check-in is due
    /// `every` after the last one.
    ///
    /// # Errors
    /// An interval under one second.
    pub fn interval(every: Duration) -> Result<Schedule> {
        if every < Duration::from_secs(1) {
            return Err(Error::config(
                format!("interval {}", crate::util::time::seconds(every)),
                "at least one second",
            ));
        }
        Ok(Schedule {
            kind: Kind::Interval(every),
        })
    }

    /// The crontab as given, or `None` for an interval.
    pub fn crontab_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Crontab(c) => Some(&c.text),
            Kind::Interval(_) => None,
        }
    }

    /// The crontab's time zone, or `None` for an interval.
    pub fn zone(&self) -> Option<&str> {
        match &self.kind {
            Kind::Crontab(c) => Some(&c.zone),
            Kind::Interval(_) => None,
        }
    }

    /// The interval, or `None` for a crontab.
    pub fn every(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Interval(d) => Some(*d),
            Kind::Crontab(_) => None,
        }
    }

    /// The first time the job is expected strictly after `after_ms` (ms
    /// since the Unix epoch; for an interval, `after_ms` is the last
    /// check-in). `None` when there is none within four years (`0 0 30 2
    /// *`) or the time is out of range.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Interval(d) => {
                after_ms.checked_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            Kind::Crontab(c) => c.next_after(after_ms),
        }
    }
}

/// A value as an error shows it: quoted, control characters escaped, at
/// most 80 characters.
fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    format!("{cut:?}")
}

impl Crontab {
    fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = Timestamp::from_millisecond(after_ms).ok()?;
        if !self.wall_clock {
            return Some(self.tab.find_next(after).ok()?.timestamp().as_millisecond());
        }
        // By the wall clock: the next civil time after the one the zone
        // shows now, placed in the zone (cronsim's rule, see the docs).
        let mut cursor: civil::DateTime = after.to_zoned(self.tz.clone()).datetime();
        // A time before `after` (a cursor in the second pass of a repeated
        // hour) is passed over: at most a few rounds.
        for _ in 0..8 {
            let next_civil = self.next_civil(cursor)?;
            let (placed, at) = self.place(next_civil)?;
            if placed.as_millisecond() > after_ms {
                return Some(placed.as_millisecond());
            }
            cursor = at;
        }
        None
    }

    /// The next civil time after `cursor` the fields match (the tab is in
    /// UTC: civil and UTC times are the same numbers).
    fn next_civil(&self, cursor: civil::DateTime) -> Option<civil::DateTime> {
        let as_utc = cursor.to_zoned(TimeZone::UTC).ok()?.timestamp();
        Some(self.tab.find_next(as_utc).ok()?.datetime())
    }

    /// A civil time placed in the zone: itself, the first of a repeated
    /// time, or the first minute after a gap; and the civil time used.
    fn place(&self, mut at: civil::DateTime) -> Option<(Timestamp, civil::DateTime)> {
        // A gap is at most a day long (Samoa's 2011); a minute at a time.
        for _ in 0..=(26 * 60) {
            let ambiguous = self.tz.to_ambiguous_zoned(at);
            match ambiguous.offset() {
                AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
                    return Some((ambiguous.earlier().ok()?.timestamp(), at));
                }
                AmbiguousOffset::Gap { .. } => at = at.checked_add(1.minute()).ok()?,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn next(s: &Schedule, from: &str) -> String {
        Timestamp::from_millisecond(s.next_after(at(from)).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_runs_after_it_and_once_in_the_autumn() {
        // Riga: 2026-03-29 03:00 EET -> 04:00 EEST; 2026-10-25 04:00 EEST
        // -> 03:00 EET.
        let s = Schedule::crontab("30 3 * * *", "Europe/Riga").unwrap();
        assert_eq!(next(&s, "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00Z");
        assert_eq!(next(&s, "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00Z");
        assert_eq!(next(&s, "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00Z");
        // Past the first 03:30: not again in the repeated hour.
        assert_eq!(next(&s, "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00Z");
        // Two skipped times of one job: the first runs after the gap.
        let two = Schedule::crontab("0,30 3 * * *", "Europe/Riga").unwrap();
        assert_eq!(next(&two, "2026-03-28T23:00:00Z"), "2026-03-29T01:00:00Z");
        assert_eq!(next(&two, "2026-03-29T01:00:00Z"), "2026-03-30T00:00:00Z");
    }

    #[test]
    fn a_day_the_clock_skipped_whole_runs_after_it() {
        // Samoa skipped 2011-12-30 (UTC-10 -> UTC+14): the noon run of that
        // day runs at the first minute after the gap, midnight of the 31st.
        let s = Schedule::crontab("0 12 * * *", "Pacific/Apia").unwrap();
        assert_eq!(next(&s, "2011-12-29T22:00:00Z"), "2011-12-30T10:00:00Z");
    }

    #[test]
    fn a_job_by_real_time_skips_the_gap_and_repeats_in_the_fold() {
        let s = Schedule::crontab("*/30 3 * * *", "Europe/Riga").unwrap();
        // No 03:xx on the spring day: the next day's 03:00 EEST.
        assert_eq!(next(&s, "2026-03-28T23:00:00Z"), "2026-03-30T00:00:00Z");
        // The autumn day: 03:00 and 03:30 twice.
        let mut t = at("2026-10-24T23:00:00Z");
        let mut seen = Vec::new();
        for _ in 0..4 {
            t = s.next_after(t).unwrap();
            seen.push(Timestamp::from_millisecond(t).unwrap().to_string());
        }
        assert_eq!(
            seen,
            [
                "2026-10-25T00:00:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T01:30:00Z"
            ]
        );
    }

    #[test]
    fn day_fields_join_by_or_unless_one_starts_with_a_star() {
        // Odd days that are Mondays (January 2024: the 1st, 15th, 29th).
        let and = Schedule::crontab("0 0 */2 * MON", "UTC").unwrap();
        assert_eq!(next(&and, "2024-01-02T00:00:00Z"), "2024-01-15T00:00:00Z");
        // Odd days, or Mondays.
        let or = Schedule::crontab("0 0 1-31/2 * MON", "UTC").unwrap();
        assert_eq!(next(&or, "2024-01-01T00:00:00Z"), "2024-01-03T00:00:00Z");
        assert_eq!(next(&or, "2024-01-07T00:00:00Z"), "2024-01-08T00:00:00Z");
    }

    #[test]
    fn aliases_intervals_and_errors() {
        let d = Schedule::crontab("@daily", "UTC").unwrap();
        assert_eq!(d.crontab_text(), Some("@daily"));
        assert_eq!(next(&d, "2024-01-01T10:00:00Z"), "2024-01-02T00:00:00Z");
        let i = Schedule::interval(Duration::from_secs(600)).unwrap();
        assert_eq!(i.next_after(1_000), Some(601_000));
        assert_eq!(i.every(), Some(Duration::from_secs(600)));
        assert!(Schedule::interval(Duration::from_millis(10)).is_err());
        assert!(Schedule::interval(Duration::from_millis(999)).is_err());
        assert!(
            Schedule::interval(Duration::from_secs(1)).is_ok(),
            "one second exactly"
        );
        let e = Schedule::crontab("61 3 * * *", "UTC")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"61 3 * * *\""), "{e}");
        let e = Schedule::crontab("0 3 * *", "UTC").unwrap_err().to_string();
        assert!(e.contains("five fields"), "{e}");
        let e = Schedule::crontab("0 3 * * *", "Nowhere/Else")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Nowhere/Else"), "{e}");
        // Never: February 30th.
        let never = Schedule::crontab("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(never.next_after(0), None);
    }
}
