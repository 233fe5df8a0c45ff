//! The notify thread: delivers the outbox.
//!
//! It owns its own SQLite connection. Each pass it turns finished cooldowns
//! into digests, then claims due rows one at a time (so several processes
//! sharing a file never send the same row twice), sends, and records the
//! outcome. A kill between a server's "ok" and the "sent" commit can cause
//! one duplicate; nothing is ever dropped.
//!
//! While a flush waits, each pass also counts what became of the rows this
//! run's events made (`delivery::tally`), wherever in a fleet they are
//! sent; the flush returns once none of them can be delivered before its
//! deadline any more.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::delivery::{self, ChannelDelivery};
use super::pace::{backoff_ms, Bucket};
use super::{Alerting, ChannelEntry, ChannelError};
use crate::store::upstream::{self, Item, ItemKind};
use crate::store::{AlertRules, Durability, EventDetail, Outcome, Reader, Store};
use crate::util::internal_log;
use crate::util::time::now_ms;

/// Longest sleep between passes (stale claims and digests are checked then).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Longest delay a server may ask for (`Retry-After`, rate limits).
const MAX_PAUSE_MS: i64 = 24 * 3600 * 1000;
const BATCH: usize = 50;
/// How often a pass runs while a flush waits for rows that are being sent
/// (perhaps by another process of a fleet).
const POLL_WHILE_WAITED: Duration = Duration::from_millis(50);

struct State {
    kicks: u64,
    /// While a flush waits: its deadline (ms since the epoch). A row due
    /// before it is still worth waiting for (a retry whose backoff fits).
    horizon: i64,
    shutdown: bool,
    alive: bool,
    /// This process's run, and the outbox's highest id before it started:
    /// the rows its events make come after.
    run: Option<(i64, i64)>,
    /// The highest outbox id a flush waits for.
    wanted: i64,
    /// Every row this run made up to this id is delivered or failed for
    /// good, as `settled_counts` counts them.
    settled: i64,
    settled_counts: Vec<ChannelDelivery>,
    /// Flushes waiting now.
    waiting: usize,
    /// The last count of this run's rows.
    tally: Tally,
}

/// A count of this run's rows, made by a pass.
#[derive(Debug, Clone, Default)]
struct Tally {
    /// The kick the pass answered.
    pass: u64,
    /// The rows counted: ids up to this one.
    upto: i64,
    channels: Vec<ChannelDelivery>,
    /// Some could still be delivered before the horizon.
    waitable: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    progress: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the next progress report, at most until `deadline`.
    fn wait_progress<'a>(
        &self,
        st: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, State>> {
        crate::util::sync::wait_until(&self.progress, st, deadline)
    }
}

/// The running notify thread of one database file.
pub(crate) struct NotifyHandle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The thread's `pthread_t` (0: none).
    pthread: u64,
}

impl std::fmt::Debug for NotifyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyHandle").finish_non_exhaustive()
    }
}

impl NotifyHandle {
    pub(crate) fn start(
        path: &Path,
        durability: Durability,
        backend: crate::store::Backend,
        alerting: Alerting,
    ) -> crate::error::Result<NotifyHandle> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                kicks: 1,
                horizon: 0,
                shutdown: false,
                alive: true,
                run: None,
                wanted: 0,
                settled: 0,
                settled_counts: Vec::new(),
                waiting: 0,
                tally: Tally::default(),
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
        });
        let s = shared.clone();
        let path = path.to_owned();
        let handle = std::thread::Builder::new()
            .name("errsnap-notify".into())
            .spawn(move || notify_main(s, path, durability, backend, alerting))
            .map_err(|e| crate::error::Error::io("starting the errsnap-notify thread", e))?;
        Ok(NotifyHandle {
            shared,
            pthread: crate::util::sync::pthread_of(&handle),
            thread: Mutex::new(Some(handle)),
        })
    }

    /// The thread's `pthread_t` (0: none).
    pub(crate) fn pthread(&self) -> u64 {
        self.pthread
    }

    /// Asks for a pass; returns its number for [`wait_idle`](Self::wait_idle).
    pub(crate) fn kick(&self) -> u64 {
        let mut st = self.shared.lock();
        st.kicks += 1;
        let k = st.kicks;
        drop(st);
        self.shared.wake.notify_one();
        k
    }

    /// This process's run, once the writer recorded it, and the outbox's
    /// highest id before it (see [`wait_delivered`](Self::wait_delivered)).
    pub(crate) fn set_run(&self, run: i64, floor: i64) {
        let mut st = self.shared.lock();
        if st.run.is_none() {
            st.run = Some((run, floor));
            st.settled = floor;
        }
    }

    /// Waits until no row that this run's events made, up to outbox id
    /// `mark`, can still be delivered before `deadline`: each was
    /// delivered, failed for good, or is held by its channel (see
    /// [`delivery::tally`]); retries whose backoff ends before the
    /// deadline are made meanwhile. Returns the rows' count per channel
    /// (the last one made when the deadline passed first), and whether the
    /// count covers `mark`.
    pub(crate) fn wait_delivered(
        &self,
        mark: i64,
        deadline: Instant,
    ) -> (Vec<ChannelDelivery>, bool) {
        let mut st = self.shared.lock();
        if mark <= st.settled {
            return (st.settled_counts.clone(), true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let horizon = now_ms() + i64::try_from(left.as_millis()).unwrap_or(i64::MAX / 2);
        st.horizon = st.horizon.max(horizon);
        st.wanted = st.wanted.max(mark);
        st.waiting += 1;
        st.kicks += 1;
        let k = st.kicks;
        self.shared.wake.notify_one();
        loop {
            let t = &st.tally;
            if (t.pass >= k && t.upto >= mark && !t.waitable) || st.settled >= mark || !st.alive {
                break;
            }
            match self.shared.wait_progress(st, deadline) {
                Some(g) => st = g,
                None => {
                    st = self.shared.lock();
                    break;
                }
            }
        }
        st.waiting -= 1;
        if st.settled >= mark {
            return (st.settled_counts.clone(), true);
        }
        (st.tally.channels.clone(), st.tally.upto >= mark)
    }

    /// Claims nothing more (the process is on its way out), and waits
    /// until the delivery in progress has finished, at most until
    /// `deadline`. Returns whether it has (`false`: a delivery may still
    /// be in flight, its claim held).
    pub(crate) fn stop(&self, deadline: Instant) -> bool {
        let mut st = self.shared.lock();
        st.shutdown = true;
        self.shared.wake.notify_one();
        while st.alive {
            match self.shared.wait_progress(st, deadline) {
                Some(g) => st = g,
                None => return false,
            }
        }
        true
    }

    /// Stops the thread after its current delivery, waiting at most `timeout`.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        if !self.stop(Instant::now() + timeout) {
            return;
        }
        if let Some(h) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl delivery::ChannelState for DeliveryThread {
    fn held_until_after(&self, channel: &str, horizon: i64) -> bool {
        self.broken.contains(channel)
            || !self.rules.channels.iter().any(|c| c == channel)
            || self
                .buckets
                .get(channel)
                .is_some_and(|b| b.paused_until > horizon)
    }

    fn free_at(&self, channel: &str) -> i64 {
        self.buckets.get(channel).map_or(0, Bucket::paced_until)
    }
}

struct DeliveryThread {
    shared: Arc<Shared>,
    store: Box<dyn Store>,
    rules: AlertRules,
    channels: Vec<ChannelEntry>,
    retry_base: Duration,
    give_up_after_ms: i64,
    buckets: HashMap<String, Bucket>,
    broken: HashSet<String>,
    last_stale_check: Instant,
    /// The read side, opened when a forwarding channel first needs an
    /// event in full (and again after an error).
    reader: Option<Box<dyn Reader>>,
    path: PathBuf,
    backend: crate::store::Backend,
    /// Where a new group's suspect commit is blamed, and the last event's
    /// (each channel of one event's alerts asks once).
    repo: Option<crate::suspect::Repository>,
    suspect: Option<(String, Option<String>)>,
}

// Long by design: the notify thread's whole loop (open, claim, deliver,
// wait for the next due time or a kick, drain on shutdown) reads best in
// one place; each step it calls is its own function.
fn notify_main(
    shared: Arc<Shared>,
    path: PathBuf,
    durability: Durability,
    backend: crate::store::Backend,
    alerting: Alerting,
) {
    let store = loop {
        match crate::store::open(&path, &backend, durability, Duration::from_secs(5), false) {
            Ok(s) => break s,
            Err(e) => {
                internal_log::report("notify", &internal_log::chain(&e));
                let st = shared.lock();
                if st.shutdown {
                    drop(st);
                    finish(&shared);
                    return;
                }
                let _ = shared.wake.wait_timeout(st, Duration::from_secs(5));
            }
        }
    };
    let rules = alerting.rules();
    let mut store = store;
    // Its store queues client reports (a loss found here) by these.
    store.set_alert_rules(rules.clone());
    let mut n = DeliveryThread {
        shared: shared.clone(),
        store,
        buckets: alerting
            .channels
            .iter()
            .map(|c| (c.name.to_string(), Bucket::new(c.per_minute)))
            .collect(),
        channels: alerting.channels,
        retry_base: alerting.policy.retry_base,
        give_up_after_ms: i64::try_from(alerting.policy.give_up_after.as_millis())
            .unwrap_or(i64::MAX),
        rules,
        broken: HashSet::new(),
        last_stale_check: Instant::now(),
        reader: None,
        path: path.clone(),
        backend: backend.clone(),
        repo: alerting.repo,
        suspect: None,
    };
    if let Err(e) = release_stale(&mut *n.store, true) {
        internal_log::report("notify", &internal_log::chain(&e));
    }
    loop {
        let (kick, horizon) = {
            let st = shared.lock();
            if st.shutdown {
                break;
            }
            (st.kicks, st.horizon)
        };
        let next_wake = match std::panic::catch_unwind(AssertUnwindSafe(|| n.pass())) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                internal_log::report("notify", &internal_log::chain(&e));
                // The file may have been replaced (a damaged one moved
                // aside): start again on a fresh connection.
                if let Ok(s) =
                    crate::store::open(&path, &backend, durability, Duration::from_secs(5), false)
                {
                    n.store = s;
                    n.reader = None;
                }
                Some(now_ms() + 2_000)
            }
            Err(_) => {
                internal_log::report(
                    "notify",
                    &"a channel panicked; its alert stays in the outbox",
                );
                Some(now_ms() + 2_000)
            }
        };
        let waitable = n.count_own_rows(kick, horizon);
        let st = shared.lock();
        shared.progress.notify_all();
        if st.shutdown {
            break;
        }
        if st.kicks > kick {
            continue;
        }
        let next_wake = if waitable && st.waiting > 0 {
            let poll = now_ms() + POLL_WHILE_WAITED.as_millis() as i64;
            Some(next_wake.map_or(poll, |t| t.min(poll)))
        } else {
            next_wake
        };
        let sleep = next_wake
            .map(|t| Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0)))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        if !sleep.is_zero() {
            let _ = shared
                .wake
                .wait_timeout(st, sleep)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
    finish(&shared);
}

/// Puts back stale claims (see `store::claims`): of runs that ended, and
/// on this boot of processes that are gone.
fn release_stale(store: &mut dyn Store, at_start: bool) -> crate::error::Result<()> {
    store.release_stale(&crate::store::runs::still_running, at_start)
}

fn finish(shared: &Shared) {
    let mut st = shared.lock();
    st.alive = false;
    shared.progress.notify_all();
}

impl DeliveryThread {
    fn usable(&self) -> Vec<String> {
        self.rules
            .channels
            .iter()
            .filter(|c| !self.broken.contains(*c))
            .cloned()
            .collect()
    }

    fn stopping(&self) -> bool {
        self.shared.lock().shutdown
    }

    /// While a flush waits: counts the rows this run's events made (see
    /// [`NotifyHandle::wait_delivered`]) and publishes the count for the
    /// pass answering kick `kick`. Returns whether some could still be
    /// delivered before `horizon`.
    fn count_own_rows(&mut self, kick: u64, horizon: i64) -> bool {
        let (run, after, upto) = {
            let st = self.shared.lock();
            match st.run {
                Some((run, _)) if st.wanted > st.settled => (run, st.settled, st.wanted),
                _ => return false,
            }
        };
        let rows = match self.store.own_rows(run, after, upto) {
            Ok(r) => r,
            Err(e) => {
                internal_log::report("notify", &internal_log::chain(&e));
                return true;
            }
        };
        let (counted, waitable) = delivery::tally(&rows, self, horizon);
        let fin = counted.iter().all(|c| c.pending == 0 && c.held == 0);
        let mut st = self.shared.lock();
        let mut channels = st.settled_counts.clone();
        delivery::merge(&mut channels, &counted);
        if fin && st.settled == after {
            // Final rows stay final: never counted again.
            st.settled = upto;
            st.settled_counts = channels.clone();
        }
        st.tally = Tally {
            pass: kick,
            upto,
            channels,
            waitable,
        };
        waitable
    }

    /// One pass: delivers what is due. Returns when to wake next.
    fn pass(&mut self) -> crate::error::Result<Option<i64>> {
        if self.last_stale_check.elapsed() >= MAX_SLEEP {
            self.last_stale_check = Instant::now();
            release_stale(&mut *self.store, false)?;
        }
        self.store.make_due_digests(&self.rules, now_ms())?;
        loop {
            let now = now_ms();
            // Only channels that may send now: a channel waiting for its
            // per-minute spacing or paused by its server holds back none
            // of the others' rows.
            let open: Vec<String> = self
                .usable()
                .into_iter()
                .filter(|c| self.buckets.get(c).is_some_and(|b| b.free_at() <= now))
                .collect();
            if open.is_empty() {
                break;
            }
            let due = self.store.due_alerts(&open, now, BATCH)?;
            if due.is_empty() {
                break;
            }
            let mut progressed = false;
            for row in due {
                if self.stopping() {
                    return Ok(None);
                }
                if self.broken.contains(&row.channel) {
                    continue;
                }
                let now = now_ms();
                let Some(bucket) = self.buckets.get_mut(&row.channel) else {
                    continue;
                };
                if !bucket.take(now) {
                    continue;
                }
                if !self.store.claim(row.id, now)? {
                    continue;
                }
                progressed = true;
                self.deliver(row)?;
            }
            if !progressed {
                break;
            }
        }
        // When each channel has work next (also while it only waits for
        // its per-minute spacing or its server's pause).
        let mut next = self.store.next_digest_at(&self.rules)?;
        for c in self.usable() {
            let Some(at) = self.store.next_attempt_at(std::slice::from_ref(&c))? else {
                continue;
            };
            let free = self.buckets.get(&c).map_or(0, Bucket::free_at);
            let when = at.max(free);
            next = Some(next.map_or(when, |n: i64| n.min(when)));
        }
        Ok(next)
    }

    /// The event of an outbox row in full, for a forwarding channel.
    fn load_event(&mut self, uid: &str) -> crate::error::Result<Option<EventDetail>> {
        let reader = match &mut self.reader {
            Some(r) => r,
            None => self
                .reader
                .insert(crate::store::open_reader(&self.path, &self.backend)?),
        };
        match reader.event_to_forward(uid) {
            Ok(Some(e)) => Ok(Some(e)),
            // Not there: perhaps the file was replaced under this reader
            // (a damaged one moved aside); look once more on a fresh one.
            Ok(None) => {
                let fresh = crate::store::open_reader(&self.path, &self.backend)?;
                let found = fresh.event_to_forward(uid);
                self.reader = Some(fresh);
                found
            }
            Err(e) => {
                // Opened again at the next try.
                self.reader = None;
                Err(e)
            }
        }
    }

    // Long by design: one delivery and every outcome of it (sent, retry with
    // backoff, failed for good, rate-limited, channel gone) recorded in one
    // place, so no outcome is left unrecorded.
    fn deliver(&mut self, row: crate::store::DueAlert) -> crate::error::Result<()> {
        let Some(channel) = self
            .channels
            .iter()
            .find(|c| *c.name == *row.channel)
            .cloned()
        else {
            return Ok(());
        };
        let gone = Outcome::Failed {
            error: "the event is no longer stored",
        };
        let send: Box<dyn FnOnce() -> Result<(), ChannelError>> = match &channel.forward {
            // A check-in, a session or a client report: the row holds it.
            Some(forward) if row.payload.is_some() => {
                let item = row.payload.as_deref().and_then(Item::from_payload);
                let Some(item) = item else {
                    let unread = Outcome::Failed {
                        error: "the item does not read (made by another errsnap version?)",
                    };
                    return self.store.record_outcome(row.id, unread, now_ms());
                };
                let forward = forward.clone();
                Box::new(move || forward.send_item(&item))
            }
            Some(forward) => {
                let event = match self.load_event(&row.event_uid) {
                    Ok(Some(e)) => e,
                    Ok(None) => return self.store.record_outcome(row.id, gone, now_ms()),
                    Err(e) => {
                        // The row is this process's claim: put it back.
                        let error =
                            format!("reading the event to forward: {}", internal_log::chain(&e));
                        let at = now_ms() + backoff_ms(self.retry_base, row.attempts);
                        return self.store.record_outcome(
                            row.id,
                            Outcome::Retry { at, error: &error },
                            now_ms(),
                        );
                    }
                };
                let forward = forward.clone();
                Box::new(move || forward.forward(&event))
            }
            None => {
                let Some(mut alert) = self.store.load_alert(row.id)? else {
                    return self.store.record_outcome(row.id, gone, now_ms());
                };
                if let Some(app) = &channel.app_name {
                    alert.app_name = Some(app.clone());
                }
                if let Some(repo) = &self.repo {
                    match &self.suspect {
                        Some((id, s)) if *id == alert.event_id => alert.suspect = s.clone(),
                        _ => {
                            alert.suspect = super::suspect::of(repo, &alert);
                            self.suspect = Some((alert.event_id.clone(), alert.suspect.clone()));
                        }
                    }
                }
                let c = channel.channel.clone();
                Box::new(move || c.send(&alert))
            }
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(send)).unwrap_or_else(|_| {
            Err(ChannelError::transient(
                format!("{}: the channel panicked", row.channel),
                None,
            ))
        });
        let now = now_ms();
        match result {
            Ok(()) => self.store.record_outcome(row.id, Outcome::Sent, now),
            Err(e) if e.breaks_channel() => {
                self.broken.insert(row.channel.clone());
                internal_log::report(
                    "alert channel broken",
                    &format_args!(
                        "{e}; no more alerts go to {:?} until restart (they wait in the outbox)",
                        row.channel
                    ),
                );
                self.store.record_outcome(
                    row.id,
                    Outcome::Parked {
                        error: &e.to_string(),
                    },
                    now,
                )
            }
            Err(e) if e.is_retryable() => {
                let error = e.to_string();
                if now.saturating_sub(row.created_at) > self.give_up_after_ms {
                    self.store
                        .record_outcome(row.id, Outcome::Failed { error: &error }, now)?;
                    // An event its server kept limiting until errsnap gave
                    // up is a loss that server hears of (a client report).
                    let reported = self
                        .rules
                        .takers(ItemKind::ClientReport)
                        .any(|c| c == row.channel);
                    if reported && row.payload.is_none() && e.pause().is_some() {
                        self.store.add_counter(upstream::GAVE_UP_RATE_LIMITED, 1)?;
                    }
                    return Ok(());
                }
                let delay = match e.retry_after() {
                    Some(d) => i64::try_from(d.as_millis())
                        .unwrap_or(MAX_PAUSE_MS)
                        .min(MAX_PAUSE_MS),
                    None => backoff_ms(self.retry_base, row.attempts),
                };
                // A server that limits the whole channel, or a forwarding
                // channel's server failing: nothing more is sent on the
                // channel until then (its rows wait in the outbox), so
                // neither the server nor the other channels' alerts are
                // kept busy by one row after another failing.
                if e.pause().is_some() || channel.forward.is_some() {
                    if let Some(b) = self.buckets.get_mut(&row.channel) {
                        b.pause(now.saturating_add(delay));
                    }
                }
                self.store.record_outcome(
                    row.id,
                    Outcome::Retry {
                        at: now.saturating_add(delay),
                        error: &error,
                    },
                    now,
                )
            }
            Err(e) => self.store.record_outcome(
                row.id,
                Outcome::Failed {
                    error: &e.to_string(),
                },
                now,
            ),
        }
    }
}
