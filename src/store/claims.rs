//! Who holds an outbox row while it is being sent (a *claim*), when a claim
//! is stale, and what this process's own alerts have become: the same
//! rules for every store (each backend only reads and writes the rows).
//!
//! A claim names its run by boot id, pid and process start, never by a
//! bare pid: a reused pid is not taken for the run that claimed. Any
//! process, on any host, puts back a claim whose run has ended (the runs
//! ledger says so), and a process on the same boot also one whose process
//! is gone. A claim is never put back while its run may still be sending,
//! so a row is delivered at most twice (a kill between the server's "ok"
//! and the "sent" commit), never lost.

/// A claim older than this is stale whatever its run: no delivery takes
/// that long (every channel has timeouts of seconds), so its process is
/// gone or stuck. Also the rule for claims made by an older errsnap, which
/// name no run.
pub(crate) const STALE_CLAIM_MS: i64 = 10 * 60 * 1000;

/// A run as a claim names it: its boot, pid and process start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimant {
    /// `/proc/sys/kernel/random/boot_id` (Linux).
    pub(crate) boot_id: Option<String>,
    pub(crate) pid: u32,
    /// Clock ticks since boot when the process started.
    pub(crate) process_start: Option<u64>,
}

impl Claimant {
    /// This process.
    pub(crate) fn this_process() -> Claimant {
        let pid = std::process::id();
        Claimant {
            boot_id: super::runs::boot_id(),
            pid,
            process_start: super::runs::process_start(pid),
        }
    }

    /// The stored form: `boot/pid/start`, `-` for what is unknown.
    pub(crate) fn key(&self) -> String {
        let start = self
            .process_start
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        format!(
            "{}/{}/{}",
            self.boot_id.as_deref().unwrap_or("-"),
            self.pid,
            start
        )
    }

    /// Reads [`key`](Self::key)'s form back (`None`: not a claim key).
    pub(crate) fn parse(key: &str) -> Option<Claimant> {
        let mut parts = key.rsplitn(3, '/');
        let start = parts.next()?;
        let pid = parts.next()?.parse().ok()?;
        let boot = parts.next()?;
        Some(Claimant {
            boot_id: (boot != "-" && !boot.is_empty()).then(|| boot.to_owned()),
            pid,
            process_start: match start {
                "-" => None,
                s => Some(s.parse().ok()?),
            },
        })
    }
}

/// One row being sent, as `Outbox::claims_in_flight` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The outbox row.
    pub(crate) id: i64,
    /// Its claim's run key (`None`: claimed by an older errsnap).
    pub(crate) run: Option<String>,
    pub(crate) claimed_at: Option<i64>,
}

/// Whether `claim` may be put back: its run has ended, or (same boot) its
/// process is gone, or it is older than [`STALE_CLAIM_MS`]. `ended` says
/// whether the runs ledger records the claiming run as ended; `alive`
/// whether a process of this boot with that pid and start still runs.
pub(crate) fn is_stale(
    claim: &Claim,
    me: &Claimant,
    ended: &mut dyn FnMut(&Claimant) -> bool,
    alive: &dyn Fn(u32, Option<u64>) -> bool,
    now: i64,
) -> bool {
    let old = claim
        .claimed_at
        .is_none_or(|t| now.saturating_sub(t) > STALE_CLAIM_MS);
    let Some(by) = claim.run.as_deref().and_then(Claimant::parse) else {
        return old;
    };
    if by == *me {
        // Still sending: this process puts it back itself if the delivery
        // is cut short (see `Store::release_own`).
        return false;
    }
    if by.boot_id.is_some() && by.boot_id == me.boot_id && !alive(by.pid, by.process_start) {
        return true;
    }
    old || ended(&by)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(boot: &str, pid: u32, start: u64) -> Claimant {
        Claimant {
            boot_id: Some(boot.into()),
            pid,
            process_start: Some(start),
        }
    }

    fn claim(by: Option<&Claimant>, at: i64) -> Claim {
        Claim {
            id: 1,
            run: by.map(Claimant::key),
            claimed_at: Some(at),
        }
    }

    const NOW: i64 = 100 * STALE_CLAIM_MS;

    #[test]
    fn a_claim_is_old_after_ten_minutes() {
        assert_eq!(STALE_CLAIM_MS, 600_000);
    }

    #[test]
    fn keys_round_trip_with_and_without_their_parts() {
        for c in [
            run("3f0c-aa", 4411, 987_654),
            Claimant {
                boot_id: None,
                pid: 7,
                process_start: None,
            },
        ] {
            assert_eq!(Claimant::parse(&c.key()), Some(c.clone()), "{}", c.key());
        }
        assert_eq!(run("b", 1, 2).key(), "b/1/2");
        for bad in ["", "4411", "b/x/2", "b/1/x", "b/1"] {
            assert_eq!(Claimant::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_claim_of_this_process_is_never_stale() {
        let me = run("b", 10, 5);
        let c = claim(Some(&me), 0);
        assert!(!is_stale(&c, &me, &mut |_| true, &|_, _| false, NOW));
    }

    #[test]
    fn on_the_same_boot_a_gone_process_or_a_reused_pid_releases_the_claim() {
        let me = run("b", 10, 5);
        let other = run("b", 11, 6);
        let fresh = claim(Some(&other), NOW);
        assert!(!is_stale(&fresh, &me, &mut |_| false, &|_, _| true, NOW));
        assert!(is_stale(&fresh, &me, &mut |_| false, &|_, _| false, NOW));
        // The check is asked with the claim's own pid and start.
        let probe = |pid: u32, start: Option<u64>| (pid, start) == (11, Some(6));
        assert!(!is_stale(&fresh, &me, &mut |_| false, &probe, NOW));
        let wrong = |pid: u32, start: Option<u64>| (pid, start) == (10, Some(5));
        assert!(is_stale(&fresh, &me, &mut |_| false, &wrong, NOW));
    }

    #[test]
    fn on_another_host_the_ledger_decides_then_the_age() {
        let me = run("b", 10, 5);
        let far = run("elsewhere", 10, 5);
        let fresh = claim(Some(&far), NOW);
        // The local process check is never asked for another boot.
        let never = |_: u32, _: Option<u64>| -> bool { panic!("asked about another boot") };
        assert!(!is_stale(&fresh, &me, &mut |_| false, &never, NOW));
        assert!(is_stale(&fresh, &me, &mut |c| c == &far, &never, NOW));
        let old = claim(Some(&far), NOW - STALE_CLAIM_MS - 1);
        assert!(is_stale(&old, &me, &mut |_| false, &never, NOW));
        let edge = claim(Some(&far), NOW - STALE_CLAIM_MS);
        assert!(!is_stale(&edge, &me, &mut |_| false, &never, NOW));
    }

    #[test]
    fn a_claim_naming_no_run_waits_out_its_age() {
        let me = run("b", 10, 5);
        let legacy = claim(None, NOW - 1);
        assert!(!is_stale(&legacy, &me, &mut |_| true, &|_, _| false, NOW));
        let old = claim(None, NOW - STALE_CLAIM_MS - 1);
        assert!(is_stale(&old, &me, &mut |_| false, &|_, _| true, NOW));
        let undated = Claim {
            id: 1,
            run: None,
            claimed_at: None,
        };
        assert!(is_stale(&undated, &me, &mut |_| false, &|_, _| true, NOW));
    }

    #[test]
    fn without_boot_ids_only_the_ledger_and_the_age_decide() {
        let me = Claimant {
            boot_id: None,
            pid: 10,
            process_start: None,
        };
        let other = Claimant {
            boot_id: None,
            pid: 11,
            process_start: None,
        };
        let fresh = claim(Some(&other), NOW);
        assert!(!is_stale(&fresh, &me, &mut |_| false, &|_, _| false, NOW));
        assert!(is_stale(&fresh, &me, &mut |_| true, &|_, _| true, NOW));
    }
}
