//! Warnings before death: the settings file's `[[resource_warning]]` rules
//! checked against the flight recorder's latest readings. A rule that
//! holds raises one `warn` event of its own group (logger
//! `resource_warnings`), carrying the trend; it fires again only after it
//! stopped holding.

use serde_json::{json, Map};

use crate::event::sample::RunSample;
use crate::event::Event;
use crate::level::Level;
use crate::settings::resource_warnings::{Condition, ResourceWarning};

/// The logger resource warnings are recorded under.
pub(crate) const LOGGER: &str = "resource_warnings";

/// What rule `rule` sees in `recent` (oldest first): `None` when it does
/// not hold, else what holds, in words.
pub(crate) fn check(rule: &ResourceWarning, recent: &[RunSample]) -> Option<String> {
    let last = recent
        .len()
        .checked_sub(rule.readings)
        .map(|at| &recent[at..])?;
    match rule.condition {
        Condition::MemoryPercent(limit) => {
            let all: Vec<f64> = last
                .iter()
                .map(RunSample::cgroup_memory_percent)
                .collect::<Option<_>>()?;
            let low = all.iter().copied().fold(f64::INFINITY, f64::min);
            (low > limit).then(|| {
                format!(
                    "memory above {limit}% of the cgroup limit for {} readings (now {:.0}%)",
                    rule.readings,
                    all[all.len() - 1]
                )
            })
        }
        Condition::FdPercent(limit) => {
            let all: Vec<f64> = last
                .iter()
                .map(RunSample::fd_percent)
                .collect::<Option<_>>()?;
            let low = all.iter().copied().fold(f64::INFINITY, f64::min);
            let (open, max) = (
                last[last.len() - 1].open_fds?,
                last[last.len() - 1].fd_limit?,
            );
            (low > limit).then(|| {
                format!(
                    "open descriptors above {limit}% of their limit for {} readings (now {open} of {max})",
                    rule.readings
                )
            })
        }
        Condition::RssGrowth(per_min) => {
            let (a, b) = (last.first()?, last.last()?);
            let minutes = (b.at_ms - a.at_ms) as f64 / 60_000.0;
            if minutes <= 0.0 {
                return None;
            }
            let rate = (b.rss_bytes? as f64 - a.rss_bytes? as f64) / minutes;
            (rate > per_min).then(|| {
                let mib = |v: f64| v / (1u64 << 20) as f64;
                format!(
                    "RSS growing {:.0} MiB a minute over {} readings (the rule: {:.0})",
                    mib(rate),
                    rule.readings,
                    mib(per_min)
                )
            })
        }
    }
}

/// The warning event of rule `rule`, saying `what` with the trend of
/// `recent` in `extra`.
pub(crate) fn event(
    rule: &ResourceWarning,
    what: &str,
    recent: &[RunSample],
    channels: Vec<String>,
) -> Event {
    let mut extra = Map::new();
    extra.insert("rule".to_owned(), json!(rule.name));
    extra.insert(
        "trend".to_owned(),
        json!(super::trend::describe_trend(recent)),
    );
    super::own::event(
        LOGGER,
        Level::Warn,
        format!("resource warning {}: {what}", rule.name),
        &format!("resource warning {}", rule.name),
        extra,
        channels,
    )
}

/// Which rules fire now: each holding rule not already fired (a rule that
/// no longer holds is re-armed). `fired[i]` is rule `i`'s state.
pub(crate) fn fire(
    rules: &[ResourceWarning],
    fired: &mut Vec<bool>,
    recent: &[RunSample],
) -> Vec<(usize, String)> {
    fired.resize(rules.len(), false);
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        match check(rule, recent) {
            Some(what) if !fired[i] => {
                fired[i] = true;
                out.push((i, what));
            }
            Some(_) => {}
            None => fired[i] = false,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn rule(condition: Condition, readings: usize) -> ResourceWarning {
        ResourceWarning {
            name: "r".into(),
            condition,
            readings,
        }
    }

    fn memory(pcts: &[u64]) -> Vec<RunSample> {
        pcts.iter()
            .enumerate()
            .map(|(i, p)| {
                let mut s = RunSample::at(i as i64 * 1000);
                s.cgroup_memory_max_bytes = Some(100 * MIB);
                s.cgroup_memory_bytes = Some(p * MIB);
                s
            })
            .collect()
    }

    #[test]
    fn memory_must_stay_above_the_share_for_every_reading() {
        let r = rule(Condition::MemoryPercent(90.0), 3);
        assert_eq!(check(&r, &memory(&[50, 95, 96])), None, "two readings only");
        assert_eq!(check(&r, &memory(&[95, 89, 96, 97])), None, "one dipped");
        assert_eq!(
            check(&r, &memory(&[95, 90, 96, 97])),
            None,
            "at the share is not above"
        );
        assert_eq!(
            check(&r, &memory(&[10, 91, 96, 97])).as_deref(),
            Some("memory above 90% of the cgroup limit for 3 readings (now 97%)")
        );
        // Without a limit there is nothing to compare with.
        let mut no_limit = memory(&[95, 96, 97]);
        no_limit[1].cgroup_memory_max_bytes = None;
        assert_eq!(check(&r, &no_limit), None);
    }

    #[test]
    fn descriptors_are_held_to_their_limit() {
        let r = rule(Condition::FdPercent(80.0), 2);
        let fds = |n: &[u64]| -> Vec<RunSample> {
            n.iter()
                .map(|&n| {
                    let mut s = RunSample::at(0);
                    s.open_fds = Some(n);
                    s.fd_limit = Some(1000);
                    s
                })
                .collect()
        };
        assert_eq!(check(&r, &fds(&[900, 800])), None);
        assert_eq!(
            check(&r, &fds(&[100, 801, 950])).as_deref(),
            Some("open descriptors above 80% of their limit for 2 readings (now 950 of 1000)")
        );
    }

    #[test]
    fn growth_is_measured_per_minute_over_the_readings() {
        let r = rule(Condition::RssGrowth(100.0 * MIB as f64), 3);
        let rss = |v: &[(i64, u64)]| -> Vec<RunSample> {
            v.iter()
                .map(|&(t, m)| {
                    let mut s = RunSample::at(t);
                    s.rss_bytes = Some(m * MIB);
                    s
                })
                .collect()
        };
        const T: i64 = 1_700_000_000_000;
        // 100 MiB in 30 s: 200 a minute.
        assert_eq!(
            check(&r, &rss(&[(T, 100), (T + 15_000, 150), (T + 30_000, 200)])).as_deref(),
            Some("RSS growing 200 MiB a minute over 3 readings (the rule: 100)")
        );
        // 40 MiB in 30 s: 80 a minute; 50 MiB: exactly the rule, not above.
        assert_eq!(
            check(&r, &rss(&[(T, 100), (T + 15_000, 120), (T + 30_000, 140)])),
            None
        );
        assert_eq!(
            check(&r, &rss(&[(T, 100), (T + 15_000, 120), (T + 30_000, 150)])),
            None
        );
        // Readings at one instant say nothing.
        assert_eq!(check(&r, &rss(&[(T, 100), (T, 150), (T, 900)])), None);
    }

    #[test]
    fn a_rule_fires_once_until_it_stops_holding() {
        let rules = vec![rule(Condition::MemoryPercent(90.0), 2)];
        let mut fired = Vec::new();
        let mut seen = memory(&[95]);
        let mut fires = Vec::new();
        for p in [96, 97, 98, 50, 95, 96, 97] {
            seen.extend(memory(&[p]));
            fires.push(fire(&rules, &mut fired, &seen).len());
        }
        assert_eq!(fires, vec![1, 0, 0, 0, 0, 1, 0]);
        let ev = event(&rules[0], "what", &seen, vec!["slack".into()]);
        assert_eq!(ev.level, Level::Warn);
        assert_eq!(ev.logger, LOGGER);
        assert_eq!(ev.message, "resource warning r: what");
        assert_eq!(ev.extra["rule"], "r");
        assert!(ev.custom_fingerprint);
        let other = event(&rules[0], "else", &seen[..2], Vec::new());
        assert_eq!(ev.fingerprint, other.fingerprint, "one group per rule");
        let mut renamed = rules[0].clone();
        renamed.name = "s".into();
        assert_ne!(
            ev.fingerprint,
            event(&renamed, "what", &seen, Vec::new()).fingerprint
        );
    }
}
