//! How fast a channel may send: its per-minute pace with a small burst,
//! the pause its server imposed, and the backoff between retries of one
//! alert.

use std::time::Duration;

/// Longest retry delay.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// How many sends a channel may make at once before its per-minute pace
/// applies: a short-lived program's few alerts go out before it exits,
/// while a storm of new groups is still paced.
const BURST: i64 = 5;

/// At most `per_minute` sends per channel on average, in bursts of up to
/// [`BURST`] (the generic cell rate algorithm: `tat` is when the channel
/// would be idle again had it sent at its pace); and the pause a channel's
/// server imposed (a rate limit), or that its failures earned (a
/// forwarding channel whose server is down).
pub(super) struct Bucket {
    interval_ms: i64,
    /// How far ahead of its pace the channel may run.
    burst_ms: i64,
    tat: i64,
    pub(super) paused_until: i64,
}

impl Bucket {
    pub(super) fn new(per_minute: u32) -> Bucket {
        let per_minute = i64::from(per_minute.max(1));
        let interval_ms = 60_000 / per_minute;
        Bucket {
            interval_ms,
            burst_ms: (per_minute.min(BURST) - 1) * interval_ms,
            tat: 0,
            paused_until: 0,
        }
    }

    /// When its pace lets the channel send next.
    pub(super) fn paced_until(&self) -> i64 {
        self.tat - self.burst_ms
    }

    /// When the channel may send next.
    pub(super) fn free_at(&self) -> i64 {
        self.paced_until().max(self.paused_until)
    }

    pub(super) fn take(&mut self, now: i64) -> bool {
        if now >= self.free_at() {
            self.tat = self.tat.max(now) + self.interval_ms;
            true
        } else {
            false
        }
    }

    pub(super) fn pause(&mut self, until: i64) {
        self.paused_until = self.paused_until.max(until);
    }
}

/// Exponential backoff with ±20 % jitter, capped at five minutes.
pub(super) fn backoff_ms(base: Duration, attempts: i64) -> i64 {
    let base = i64::try_from(base.as_millis()).unwrap_or(1000).max(1);
    let exp = base
        .saturating_mul(1i64 << attempts.clamp(0, 20))
        .min(MAX_BACKOFF_MS);
    let jitter = (crate::event::random_u64() % 401) as i64 - 200; // -200..=200 per mille
    (exp + exp * jitter / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let a = backoff_ms(base, 0);
        assert!((800..=1200).contains(&a), "{a}");
        let c = backoff_ms(base, 3);
        assert!((6400..=9600).contains(&c), "{c}");
        // Five minutes, ±20 %.
        assert_eq!(MAX_BACKOFF_MS, 300_000);
        let capped = backoff_ms(base, 40);
        assert!((240_000..=360_000).contains(&capped), "{capped}");
    }

    #[test]
    fn the_jitter_spreads_both_ways_by_up_to_a_fifth() {
        let samples: Vec<i64> = (0..400)
            .map(|_| backoff_ms(Duration::from_secs(1), 0))
            .collect();
        let (lo, hi) = (
            *samples.iter().min().unwrap_or(&0),
            *samples.iter().max().unwrap_or(&0),
        );
        assert!((800..900).contains(&lo), "some well below a second: {lo}");
        assert!((1100..=1200).contains(&hi), "some well above: {hi}");
    }

    #[test]
    fn a_bucket_sends_a_burst_then_keeps_its_pace() {
        let mut b = Bucket::new(60);
        for i in 0..BURST {
            assert!(b.take(1_000_000 + i), "send {i} of the burst");
        }
        assert!(!b.take(1_000_010), "past the burst");
        assert_eq!(b.free_at(), 1_001_000);
        assert!(b.take(1_001_000));
        assert!(!b.take(1_001_500));
        // Idle for a while: a whole burst again, never more.
        let later = 2_000_000;
        for i in 0..BURST {
            assert!(b.take(later + i));
        }
        assert!(!b.take(later + BURST));
        // A slow channel (one a minute) has no burst at all.
        let mut slow = Bucket::new(1);
        assert!(slow.take(0));
        assert!(!slow.take(59_999));
        assert!(slow.take(60_000));
        // A pause holds it whatever its pace.
        let mut p = Bucket::new(60);
        p.pause(5_000);
        assert_eq!(p.free_at(), 5_000);
        assert!(!p.take(4_999) && p.take(5_000));
    }
}
