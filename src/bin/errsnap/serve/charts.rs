//! Charts drawn by the server as inline SVG (no script, no external
//! resource): bars for counts, a line for a measure over time. Every
//! label goes through the template, so it is escaped.

use maud::{html, Markup};

/// An hour and a day, in ms.
pub(crate) const HOUR: i64 = 3_600_000;
pub(crate) const DAY: i64 = 24 * HOUR;

/// The end of the current hour: charts end there, so the last bucket holds
/// what happened this hour.
pub(crate) fn hour_end(now: i64) -> i64 {
    (now.div_euclid(HOUR) + 1) * HOUR
}

/// The labels of `n` buckets of `width` ms ending at `end`: their start
/// time, its first `chars` characters (`YYYY-MM-DD HH:MM` or a date).
pub(crate) fn labels(end: i64, width: i64, n: i64, chars: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            crate::output::time(end - (n - i) * width)
                .chars()
                .take(chars)
                .collect()
        })
        .collect()
}

/// Bars of `counts`, `w` × `h` pixels, each bar titled with its label and
/// count (a tooltip); `name` is the chart's accessible name.
pub(crate) fn bars(counts: &[u64], labels: &[String], w: u32, h: u32, name: &str) -> Markup {
    let n = counts.len().max(1) as f64;
    let max = counts.iter().copied().max().unwrap_or(0);
    let slot = f64::from(w) / n;
    let bar = (slot - 1.0).max(1.0);
    let total: u64 = counts.iter().sum();
    html! {
        svg.chart width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} role="img"
            aria-label={(name) ": " (total) " in all, at most " (max)} {
            @for (i, &c) in counts.iter().enumerate() {
                @let bh = if max == 0 || c == 0 { 0.0 } else { (c as f64 / max as f64 * f64::from(h - 1)).max(1.0) };
                rect x={(format!("{:.1}", i as f64 * slot))} y={(format!("{:.1}", f64::from(h) - bh))}
                    width={(format!("{bar:.1}"))} height={(format!("{bh:.1}"))} {
                    title { (labels.get(i).map_or("", String::as_str)) ": " (c) }
                }
            }
        }
    }
}

/// A line through the values of `points` (in their order: one step per
/// occurrence), scaled to `w` × `h` from zero to the highest value, which
/// `fmt` writes in the title; a single point is a dot.
pub(crate) fn line(
    points: &[(i64, f64)],
    w: u32,
    h: u32,
    name: &str,
    fmt: fn(f64) -> String,
) -> Markup {
    if points.is_empty() {
        return html! { p.muted { "no " (name) " recorded" } };
    }
    let max = points
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let steps = (points.len() - 1).max(1) as f64;
    let x = |i: usize| i as f64 / steps * f64::from(w - 4) + 2.0;
    let y = |v: f64| f64::from(h - 2) - v / max * f64::from(h - 4);
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, &(_, v))| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    html! {
        svg.chart.line width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} role="img"
            aria-label={(name) " across " (points.len()) " occurrences, highest " (fmt(max))} {
            title { (name) ": highest " (fmt(max)) }
            @if points.len() == 1 {
                circle cx={(format!("{:.1}", x(0)))} cy={(format!("{:.1}", y(points[0].1)))} r="2.5" {}
            } @else {
                polyline points=(path.join(" ")) {}
            }
        }
    }
}

/// Counts per bucket: `buckets` slices of `width` ms ending at `end`
/// (exclusive), from `(start ms, count)` pairs.
pub(crate) fn bucket(pairs: &[(i64, u64)], end: i64, width: i64, buckets: usize) -> Vec<u64> {
    let start = end - width * buckets as i64;
    let mut out = vec![0u64; buckets];
    for &(t, c) in pairs {
        if t >= start && t < end {
            out[((t - start) / width) as usize] += c;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_each_bucket_start() {
        assert_eq!(hour_end(1), HOUR);
        assert_eq!(hour_end(HOUR), 2 * HOUR);
        assert_eq!(labels(2 * DAY, DAY, 2, 10), ["1970-01-01", "1970-01-02"]);
        assert_eq!(labels(HOUR, HOUR, 1, 16), ["1970-01-01 00:00"]);
    }

    #[test]
    fn buckets_sum_what_falls_inside() {
        let h = 3_600_000;
        let pairs = [(0, 5), (h, 1), (2 * h, 2), (3 * h, 9), (-h, 4)];
        assert_eq!(bucket(&pairs, 3 * h, h, 3), [5, 1, 2]);
        assert_eq!(bucket(&pairs, 3 * h, 3 * h, 1), [8]);
    }

    #[test]
    fn bars_are_escaped_and_scaled() {
        let svg = bars(
            &[1, 4, 0],
            &["<a>".into(), "b".into(), "c".into()],
            30,
            10,
            "x&y",
        )
        .into_string();
        assert!(svg.contains("&lt;a&gt;: 1"), "{svg}");
        assert!(
            svg.contains("aria-label=\"x&amp;y: 5 in all, at most 4\""),
            "{svg}"
        );
        assert!(svg.contains("height=\"9.0\""), "{svg}");
        assert!(!svg.contains("<a>"));
        let l = line(&[(0, 1.0), (10, 3.0), (10, 0.0)], 100, 20, "rss", |v| {
            format!("{v}")
        })
        .into_string();
        assert!(
            l.contains("polyline points=\"2.0,12.7 50.0,2.0 98.0,18.0\""),
            "{l}"
        );
        assert!(
            l.contains("aria-label=\"rss across 3 occurrences, highest 3\""),
            "{l}"
        );
        let dot = line(&[(5, 2.0)], 100, 20, "cpu", |v| format!("{v}")).into_string();
        assert!(dot.contains("<circle cx=\"2.0\" cy=\"2.0\""), "{dot}");
    }
}
