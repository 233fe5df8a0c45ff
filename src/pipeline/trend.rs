//! A run's trend in words: what the flight recorder's readings of the
//! minutes before an event say, in the few short lines an alert, `errsnap
//! show` and the dashboard print ("RSS 0.2 -> 3.9 GiB in 9 min, cgroup
//! limit 4 GiB (97%)", "CPU at 100% for 6 min", "open files 120 ->
//! 1,020"). Only what changed or stands out is said.

use crate::event::sample::RunSample;

/// The minutes before an event that its trend covers.
pub const TREND_WINDOW_MS: i64 = 10 * 60 * 1000;

/// CPU at or above this (percent of one core) counts as pinned.
const PINNED: f64 = 90.0;
/// Memory moved when it changed by this share and this many bytes.
const MEMORY_SHARE: f64 = 0.2;
const MEMORY_BYTES: u64 = 8 << 20;

/// The trend of `readings` (oldest first) in words, one line per
/// resource that changed or stands out; none from fewer than two readings.
///
/// ```
/// use errsnap::db::{describe_trend, RunSample};
/// let readings: Vec<RunSample> = (0..10)
///     .map(|i| {
///         let mut s = RunSample::at(i * 60_000);
///         s.rss_bytes = Some((200 << 20) + i as u64 * (400 << 20));
///         s.cpu_percent = Some(100.0);
///         s
///     })
///     .collect();
/// let words = describe_trend(&readings);
/// assert_eq!(words[0], "RSS 0.2 -> 3.7 GiB in 9 min");
/// assert_eq!(words[1], "CPU at 100% for 9 min");
/// ```
pub fn describe_trend(readings: &[RunSample]) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return out;
    };
    if readings.len() < 2 || last.at_ms <= first.at_ms {
        return out;
    }
    if let Some(line) = memory(readings, last) {
        out.push(line);
    }
    if let Some(line) = cpu(readings) {
        out.push(line);
    }
    if let Some(line) = climb(readings, "open files", |s| s.open_fds, 0.5, 20) {
        let limit = last
            .fd_percent()
            .filter(|&p| p >= 50.0)
            .and_then(|p| Some(format!(" (limit {}, {:.0}%)", count(last.fd_limit?), p)));
        out.push(line + &limit.unwrap_or_default());
    }
    if let Some(line) = climb(readings, "threads", |s| s.threads, 0.5, 10) {
        out.push(line);
    }
    if let Some(line) = throttling(readings) {
        out.push(line);
    }
    out
}

/// RSS moved (or stood) and how near the cgroup's limit the group is.
fn memory(readings: &[RunSample], last: &RunSample) -> Option<String> {
    let with: Vec<(i64, u64)> = readings
        .iter()
        .filter_map(|s| Some((s.at_ms, s.rss_bytes?)))
        .collect();
    let (&(t0, a), &(t1, b)) = (with.first()?, with.last()?);
    let moved = a.abs_diff(b);
    let mut line = if moved >= MEMORY_BYTES && moved as f64 >= a.min(b) as f64 * MEMORY_SHARE {
        let (x, y, unit) = pair(a, b);
        format!("RSS {x} -> {y} {unit} in {}", span(t1 - t0))
    } else {
        let (x, _, unit) = pair(b, b);
        format!("RSS steady at {x} {unit}")
    };
    if let (Some(max), Some(pct)) = (last.cgroup_memory_max_bytes, last.cgroup_memory_percent()) {
        let (m, _, unit) = pair(max, max);
        let m = m.strip_suffix(".0").unwrap_or(&m);
        line += &format!(", cgroup limit {m} {unit} ({pct:.0}%)");
    }
    Some(line)
}

/// A CPU pinned up to the last reading, or a high average.
fn cpu(readings: &[RunSample]) -> Option<String> {
    let with: Vec<(i64, f64)> = readings
        .iter()
        .filter_map(|s| Some((s.at_ms, s.cpu_percent?)))
        .collect();
    let &(end, _) = with.last()?;
    // The pinned stretch that reaches the last reading.
    let pinned: Vec<&(i64, f64)> = with
        .iter()
        .rev()
        .take_while(|(_, c)| *c >= PINNED)
        .collect();
    if let Some(&&(start, _)) = pinned.last() {
        if end - start >= 60_000 {
            let mean = pinned.iter().map(|(_, c)| c).sum::<f64>() / pinned.len() as f64;
            return Some(format!("CPU at {mean:.0}% for {}", span(end - start)));
        }
    }
    let mean = with.iter().map(|(_, c)| c).sum::<f64>() / with.len() as f64;
    let peak = with.iter().map(|(_, c)| *c).fold(0.0, f64::max);
    (mean >= 50.0).then(|| format!("CPU averaged {mean:.0}% (peak {peak:.0}%)"))
}

/// A count that grew by `share` and at least `least`.
fn climb(
    readings: &[RunSample],
    what: &str,
    of: impl Fn(&RunSample) -> Option<u64>,
    share: f64,
    least: u64,
) -> Option<String> {
    let with: Vec<(i64, u64)> = readings
        .iter()
        .filter_map(|s| Some((s.at_ms, of(s)?)))
        .collect();
    let (&(t0, a), &(t1, b)) = (with.first()?, with.last()?);
    (b >= a + least && (b - a) as f64 >= a as f64 * share)
        .then(|| format!("{what} {} -> {} in {}", count(a), count(b), span(t1 - t0)))
}

/// Time the CPU quota held the group back over the readings.
fn throttling(readings: &[RunSample]) -> Option<String> {
    let with: Vec<(i64, u64)> = readings
        .iter()
        .filter_map(|s| Some((s.at_ms, s.cgroup_throttled_usec?)))
        .collect();
    let (&(t0, a), &(t1, b)) = (with.first()?, with.last()?);
    let held = b.checked_sub(a)?;
    (held >= 1_000_000).then(|| {
        format!(
            "CPU quota held it back {} in {}",
            span((held / 1000) as i64),
            span(t1 - t0)
        )
    })
}

/// Two sizes in one unit: GiB with a decimal from 1 GiB up, else MiB.
fn pair(a: u64, b: u64) -> (String, String, &'static str) {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if a.max(b) >= 1 << 30 {
        (
            format!("{:.1}", a as f64 / GIB),
            format!("{:.1}", b as f64 / GIB),
            "GiB",
        )
    } else {
        (
            format!("{:.0}", a as f64 / MIB),
            format!("{:.0}", b as f64 / MIB),
            "MiB",
        )
    }
}

/// A count with thousands separated (`1,020`).
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A stretch of time in whole units: `45 s`, `9 min`, `2 h 5 min`.
fn span(ms: i64) -> String {
    let s = (ms.max(0) + 500) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", (s + 30) / 60),
        _ => {
            let m = (s + 30) / 60;
            format!("{} h {} min", m / 60, m % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn series(n: i64, step_ms: i64, f: impl Fn(i64, &mut RunSample)) -> Vec<RunSample> {
        (0..n)
            .map(|i| {
                let mut s = RunSample::at(1_000_000 + i * step_ms);
                f(i, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn a_memory_climb_under_a_limit_is_said_with_the_limit() {
        let r = series(10, 60_000, |i, s| {
            s.rss_bytes = Some(200 * MIB + i as u64 * 410 * MIB);
            s.cgroup_memory_bytes = Some(s.rss_bytes.unwrap() + 80 * MIB);
            s.cgroup_memory_max_bytes = Some(4 * GIB);
            s.cpu_percent = Some(5.0);
        });
        assert_eq!(
            describe_trend(&r),
            vec!["RSS 0.2 -> 3.8 GiB in 9 min, cgroup limit 4 GiB (97%)"]
        );
    }

    #[test]
    fn steady_memory_and_a_quiet_cpu_say_little() {
        let r = series(30, 10_000, |i, s| {
            s.rss_bytes = Some(300 * MIB + (i as u64 % 3) * MIB);
            s.cpu_percent = Some(12.0);
            s.open_fds = Some(40 + (i as u64 % 2));
            s.threads = Some(8);
        });
        assert_eq!(describe_trend(&r), vec!["RSS steady at 302 MiB"]);
        // One reading, or readings at one instant: no trend at all.
        assert!(describe_trend(&r[..1]).is_empty());
        assert!(describe_trend(&[r[0].clone(), r[0].clone()]).is_empty());
        assert!(describe_trend(&[]).is_empty());
    }

    #[test]
    fn a_pinned_cpu_is_timed_up_to_the_last_reading() {
        let r = series(10, 60_000, |i, s| {
            s.cpu_percent = Some(if i < 3 { 10.0 } else { 99.6 });
        });
        assert_eq!(describe_trend(&r), vec!["CPU at 100% for 6 min"]);
        // Pinned, then idle at the end: an average instead.
        let r = series(10, 60_000, |i, s| {
            s.cpu_percent = Some(if i < 8 { 100.0 } else { 0.0 });
        });
        assert_eq!(describe_trend(&r), vec!["CPU averaged 80% (peak 100%)"]);
        // Under a minute pinned is not a trend.
        let r = series(5, 10_000, |_, s| s.cpu_percent = Some(100.0));
        assert_eq!(describe_trend(&r), vec!["CPU averaged 100% (peak 100%)"]);
    }

    #[test]
    fn descriptors_and_threads_that_climb_are_counted() {
        let r = series(10, 60_000, |i, s| {
            s.open_fds = Some(120 + i as u64 * 100);
            s.fd_limit = Some(1024);
            s.threads = Some(8 + i as u64 * 40);
        });
        assert_eq!(
            describe_trend(&r),
            vec![
                "open files 120 -> 1,020 in 9 min (limit 1,024, 100%)",
                "threads 8 -> 368 in 9 min"
            ]
        );
        // A small climb is noise.
        let r = series(10, 60_000, |i, s| s.open_fds = Some(100 + i as u64));
        assert!(describe_trend(&r).is_empty());
    }

    #[test]
    fn quota_throttling_is_said_when_it_held_the_process_back() {
        let r = series(3, 60_000, |i, s| {
            s.cgroup_throttled_usec = Some(5_000_000 + i as u64 * 45_000_000);
        });
        assert_eq!(
            describe_trend(&r),
            vec!["CPU quota held it back 90 s in 2 min"]
        );
    }

    #[test]
    fn numbers_and_spans_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(span(44_600), "45 s");
        assert_eq!(span(119_000), "119 s");
        assert_eq!(span(540_000), "9 min");
        assert_eq!(span(7_500_000), "2 h 5 min");
        assert_eq!(
            pair(200 * MIB, 3 * GIB),
            ("0.2".into(), "3.0".into(), "GiB")
        );
        assert_eq!(
            pair(200 * MIB, 300 * MIB),
            ("200".into(), "300".into(), "MiB")
        );
    }
}
