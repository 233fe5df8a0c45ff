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

/// The room around a chart's plot for its axes: the values on the left,
/// the times below.
const LEFT: f64 = 58.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 18.0;
const RIGHT: f64 = 6.0;

/// The plot's area in a `w` × `h` chart: left, top, width, height.
fn plot(w: u32, h: u32) -> (f64, f64, f64, f64) {
    let pw = (f64::from(w) - LEFT - RIGHT).max(10.0);
    let ph = (f64::from(h) - TOP - BOTTOM).max(10.0);
    (LEFT, TOP, pw, ph)
}

/// The axes of a plot: the value axis with its top and zero written by
/// `top` and `zero`, the time axis with its first and last label, and
/// what the values are (`unit`).
fn axes(w: u32, h: u32, top: &str, zero: &str, first: &str, last: &str, unit: &str) -> Markup {
    let (x0, y0, pw, ph) = plot(w, h);
    let bottom = y0 + ph;
    html! {
        line.axis x1=(f1(x0)) y1=(f1(y0)) x2=(f1(x0)) y2=(f1(bottom)) {}
        line.axis x1=(f1(x0)) y1=(f1(bottom)) x2=(f1(x0 + pw)) y2=(f1(bottom)) {}
        text.axis.value x=(f1(x0 - 4.0)) y=(f1(y0 + 8.0)) text-anchor="end" { (top) }
        text.axis.value x=(f1(x0 - 4.0)) y=(f1(bottom)) text-anchor="end" { (zero) }
        text.axis.unit x=(f1(x0 - 4.0)) y=(f1(y0 + ph / 2.0 + 4.0)) text-anchor="end" { (unit) }
        text.axis.time x=(f1(x0)) y=(f1(f64::from(h) - 4.0)) text-anchor="start" { (first) }
        text.axis.time x=(f1(x0 + pw)) y=(f1(f64::from(h) - 4.0)) text-anchor="end" { (last) }
    }
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// Bars of `counts`, `w` × `h` pixels with labelled axes (the highest
/// count and zero; the first and last bucket's label), each bar titled
/// with its label and count (a tooltip); `name` says what is counted.
pub(crate) fn bars(counts: &[u64], labels: &[String], w: u32, h: u32, name: &str) -> Markup {
    let (x0, y0, pw, ph) = plot(w, h);
    let n = counts.len().max(1) as f64;
    let max = counts.iter().copied().max().unwrap_or(0);
    let slot = pw / n;
    let bar = (slot - 1.0).max(1.0);
    let total: u64 = counts.iter().sum();
    let label = |i: usize| labels.get(i).map_or("", String::as_str);
    html! {
        svg.chart width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} role="img"
            aria-label={(name) ": " (total) " in all, at most " (max)} {
            (axes(w, h, &max.to_string(), "0", label(0), label(counts.len().saturating_sub(1)), name))
            @for (i, &c) in counts.iter().enumerate() {
                @let bh = if max == 0 || c == 0 { 0.0 } else { (c as f64 / max as f64 * ph).max(1.0) };
                rect x=(f1(x0 + i as f64 * slot)) y=(f1(y0 + ph - bh))
                    width=(f1(bar)) height=(f1(bh)) {
                    title { (label(i)) ": " (c) }
                }
            }
        }
    }
}

/// A line through the values of `points` (in their order: one step per
/// occurrence), scaled from zero to the highest value, with labelled axes:
/// the highest value and zero written by `fmt`, the first and last
/// occurrence's time; a single point is a dot.
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
    let (x0, y0, pw, ph) = plot(w, h);
    let max = points
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let steps = (points.len() - 1).max(1) as f64;
    let x = |i: usize| x0 + i as f64 / steps * pw;
    let y = |v: f64| y0 + ph - v / max * ph;
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, &(_, v))| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    let when = |ms: i64| crate::output::time(ms).chars().take(16).collect::<String>();
    let (first, last) = (points[0].0, points[points.len() - 1].0);
    html! {
        svg.chart.line width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} role="img"
            aria-label={(name) " across " (points.len()) " occurrences, highest " (fmt(max))} {
            title { (name) ": highest " (fmt(max)) }
            (axes(w, h, &fmt(max), &fmt(0.0), &when(first), &when(last), name))
            @if points.len() == 1 {
                circle cx=(f1(x(0))) cy=(f1(y(points[0].1))) r="2.5" {}
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
        // A plot of 100 × 34 pixels at (58, 8) in a 164 × 60 chart.
        let svg = bars(
            &[1, 4, 0],
            &["<a>".into(), "b".into(), "c".into()],
            164,
            60,
            "x&y",
        )
        .into_string();
        assert!(svg.contains("&lt;a&gt;: 1"), "{svg}");
        assert!(
            svg.contains("aria-label=\"x&amp;y: 5 in all, at most 4\""),
            "{svg}"
        );
        assert!(
            svg.contains("height=\"34.0\""),
            "the highest bar fills the plot: {svg}"
        );
        assert!(svg.contains("height=\"8.5\""), "a quarter of it: {svg}");
        assert!(!svg.contains("<a>"));
        // The axes say the scale and the span.
        assert!(
            svg.contains(">4</text>") && svg.contains(">0</text>"),
            "{svg}"
        );
        assert!(
            svg.contains(">&lt;a&gt;</text>") && svg.contains(">c</text>"),
            "{svg}"
        );
        assert!(svg.contains(">x&amp;y</text>"), "{svg}");
        let l = line(
            &[(0, 1.0), (60_000, 3.0), (120_000, 0.0)],
            164,
            60,
            "rss",
            |v| format!("{v} B"),
        )
        .into_string();
        assert!(
            l.contains("polyline points=\"58.0,30.7 108.0,8.0 158.0,42.0\""),
            "{l}"
        );
        assert!(
            l.contains("aria-label=\"rss across 3 occurrences, highest 3 B\""),
            "{l}"
        );
        assert!(
            l.contains(">3 B</text>") && l.contains(">0 B</text>"),
            "{l}"
        );
        assert!(
            l.contains(">1970-01-01 00:00</text>") && l.contains(">1970-01-01 00:02</text>"),
            "{l}"
        );
        let dot = line(&[(5, 2.0)], 164, 60, "cpu", |v| format!("{v}")).into_string();
        assert!(dot.contains("<circle cx=\"58.0\" cy=\"8.0\""), "{dot}");
    }
}
