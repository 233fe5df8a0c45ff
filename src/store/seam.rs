//! The seams between the store and the rest of errsnap: what a backend
//! is asked to do, in four parts, and the values that cross them. The
//! writer holds a [`Store`] ([`Writer`], [`Runs`] and [`Outbox`] together),
//! the notify thread another; [`crate::db::Database`] holds a [`Reader`] and
//! [`Maintenance`]. Every backend implements them; the SQL backends through
//! the shared layer in `sql/`.

use std::path::Path;

use super::claims::{self, Claim, Claimant};
use super::read::*;
use super::runs::{self, ReleaseRow, RunRow, RunStatus};
use super::upstream::ItemKind;
use crate::error::Result;
use crate::event::sample::RunSample;
use crate::event::{Alert, AlertPolicy, Event, Frame, HostInfo};
use crate::settings::grouping::GroupingConfig;
use crate::settings::Limits;

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    /// Events newly written (duplicates of stored ids are skipped).
    pub(crate) written: usize,
    /// Alerts made pending in the outbox.
    pub(crate) alerts: usize,
    /// With alerts: the outbox's highest row id after them (every row this
    /// batch made has an id at most this; 0 without alerts).
    pub(crate) outbox_mark: i64,
}

/// Rows of this run's own alerts, per channel and status, as
/// [`Store::own_rows`] counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnRows {
    pub(crate) channel: String,
    /// `pending`, `sending`, `sent`, `failed` or `dropped`.
    pub(crate) status: String,
    pub(crate) count: u64,
    /// The earliest `next_attempt` among them.
    pub(crate) next_attempt: Option<i64>,
}

/// What the writer knows about alerting for the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertRules {
    pub(crate) channels: Vec<String>,
    /// The channels among them that forward every routed event (Sentry,
    /// OTLP): one outbox row per event, no threshold, cooldown or mute.
    pub(crate) forward: Vec<String>,
    /// Which forwarding channels take which items that are not events
    /// (check-ins, sessions, client reports).
    pub(crate) takes: Vec<(String, ItemKind)>,
    pub(crate) policy: AlertPolicy,
}

impl AlertRules {
    /// Whether `channel` forwards every routed event.
    pub(crate) fn forwards(&self, channel: &str) -> bool {
        self.forward.iter().any(|c| c == channel)
    }

    /// The channels that take items of `kind`.
    pub(crate) fn takers(&self, kind: ItemKind) -> impl Iterator<Item = &str> {
        self.takes
            .iter()
            .filter(move |(_, k)| *k == kind)
            .map(|(c, _)| c.as_str())
    }
}

/// One outbox row to deliver.
#[derive(Debug, Clone)]
pub(crate) struct DueAlert {
    pub(crate) id: i64,
    pub(crate) channel: String,
    /// The event's id (what a forwarding channel sends), or the item's.
    pub(crate) event_uid: String,
    pub(crate) attempts: i64,
    pub(crate) created_at: i64,
    /// For a row that is not an event's: the item itself
    /// ([`super::upstream::Item`] as JSON).
    pub(crate) payload: Option<String>,
}

/// What happened to a delivery attempt.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    Sent,
    Retry {
        at: i64,
        error: &'a str,
    },
    Failed {
        error: &'a str,
    },
    /// The channel broke: the row waits, unclaimed, for the next start.
    Parked {
        error: &'a str,
    },
}

/// Which events a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurgeRule {
    /// Events older than this timestamp (ms since the Unix epoch).
    OlderThan(i64),
    /// All but the newest `n` events.
    KeepNewest(u64),
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// Events deleted.
    pub events: u64,
    /// Events that matched but were kept (first of their group, or with a
    /// pending alert).
    pub kept: u64,
    /// Snapshots no longer used, deleted.
    pub snapshots: u64,
    /// Backtraces no longer used, deleted (with their frames).
    pub backtraces: u64,
}

/// The write side of a store: batches of events and what they need.
/// Owned by one thread at a time; every method is one transaction (or
/// none), so a failure leaves nothing half done.
pub(crate) trait Writer: Send + std::fmt::Debug {
    /// Where the store is, for messages and for the spool.
    fn path(&self) -> &Path;
    /// Sets the channels and policy used for alert decisions.
    fn set_alert_rules(&mut self, rules: AlertRules);
    /// Writes a batch in one transaction; events whose id is stored already
    /// are skipped (a retried or re-imported batch is written once).
    fn insert_batch(&mut self, events: &[Event]) -> Result<BatchOutcome>;
    /// Makes sure a logger exists (with its `SELECT * FROM <name>` view).
    fn ensure_logger(&mut self, name: &str) -> Result<i64>;
    /// Records the host description once; later events point to it.
    fn register_host(&mut self, host: &HostInfo, now_ms: i64) -> Result<i64>;
    /// Adds `delta` to a named counter (`dropped_events`, ...).
    fn add_counter(&mut self, name: &str, delta: u64) -> Result<()>;
    /// Replaces the frames of the stored stack with storage key `hash`
    /// (a raw stack committed first) with its named frames. `false` when
    /// no such stack is stored.
    fn name_frames(&mut self, hash: &str, frames: &[Frame]) -> Result<bool>;
    /// Adds a native crash's details to the stored event `uid` (the panic
    /// that the crash ended) as its `crash` extra, and its attachments (the
    /// minidump). `false` when no such event is stored.
    fn attach_crash(
        &mut self,
        uid: &str,
        details: &serde_json::Value,
        attachments: &[crate::event::StoredAttachment],
    ) -> Result<bool>;
    /// Applies automatic retention; returns how many events were deleted.
    fn enforce_retention(&mut self, limits: Limits) -> Result<u64>;
    /// The store's grouping: the configuration in use and the earlier ones
    /// in transition (`sql::grouping::adopt`); with `current`, records it
    /// as the one in use.
    fn adopt_grouping(&mut self, current: Option<&GroupingConfig>) -> Result<Adopted>;
}

/// The grouping configuration in use, and the earlier ones (newest first).
pub(crate) type Adopted = (GroupingConfig, Vec<GroupingConfig>);

/// The runs ledger: one row per process that opened the store.
pub(crate) trait Runs {
    /// Records this process's run, after judging earlier runs of this boot
    /// whose process is gone as abnormal; returns the run's id and how many
    /// were judged.
    fn start_run(&mut self, run: &runs::RunStart) -> Result<(i64, usize)>;
    /// Ends a run (`exited` only ends a running one; `crashed` also an
    /// exited one); `true` when its status changed.
    fn end_run(&mut self, id: i64, status: RunStatus, now_ms: i64) -> Result<bool>;
    /// Queues the end of run `id`'s session as `status` before the ledger
    /// records it (at exit, so that the session is delivered with the
    /// rest); a session has one end, the first queued.
    fn end_session(&mut self, id: i64, status: RunStatus, now_ms: i64) -> Result<()>;
    /// How many runs crashed or ended abnormally at or after `since_ms`
    /// (the crash-loop rule).
    fn troubled_runs_since(&mut self, since_ms: i64) -> Result<u64>;
    /// The run's last sign of life, and its application and release when
    /// not known yet.
    fn touch_run(&mut self, id: i64, now_ms: i64, sign: &runs::RunSign<'_>) -> Result<()>;
    /// Marks the run of a process that died by a native crash as crashed,
    /// ended when it crashed, with its release (found by boot, pid and process start, so a reused
    /// pid is never taken for it). `false` when no such run is recorded or
    /// it was marked crashed already (by the panic the crash ended).
    fn crash_run(&mut self, run: &runs::CrashedRun<'_>) -> Result<bool>;
    /// How the runs ledger records the run `c` names (`None`: unknown).
    fn run_status_of(&mut self, c: &Claimant) -> Result<Option<RunStatus>>;
    /// The run of a process found by boot, pid and start (`None`: not
    /// recorded).
    fn find_run(
        &mut self,
        boot_id: Option<&str>,
        pid: u32,
        process_start: Option<u64>,
    ) -> Result<Option<i64>>;
    /// Stores chunk `chunk` of the run's flight recorder (its readings so
    /// far, oldest first).
    fn record_samples(&mut self, run: i64, chunk: u32, readings: &[RunSample]) -> Result<()>;
    /// Adds readings newer than the run's stored ones (a crash file's
    /// ring); how many.
    fn append_samples(&mut self, run: i64, readings: &[RunSample]) -> Result<usize>;
    /// Drops recorder chunks whose newest reading is older than `before_ms`.
    fn drop_samples_before(&mut self, before_ms: i64) -> Result<u64>;
    /// Drops the runs that ended (or were last seen) before `before_ms`,
    /// with their readings; never one still running. How many went.
    fn drop_runs_before(&mut self, before_ms: i64) -> Result<u64>;
}

/// The outbox: alerts and forwards waiting for their channel, claimed by
/// one process at a time.
pub(crate) trait Outbox {
    /// Turns ended cooldowns with held-back occurrences into digests.
    fn make_due_digests(&mut self, rules: &AlertRules, now: i64) -> Result<usize>;
    /// When the next digest falls due.
    fn next_digest_at(&mut self, rules: &AlertRules) -> Result<Option<i64>>;
    /// Alerts due now on these channels, oldest first.
    fn due_alerts(&mut self, channels: &[String], now: i64, limit: usize) -> Result<Vec<DueAlert>>;
    /// When the next retry on these channels falls due.
    fn next_attempt_at(&mut self, channels: &[String]) -> Result<Option<i64>>;
    /// Claims a due alert for this process; `false` if another took it.
    fn claim(&mut self, id: i64, now: i64) -> Result<bool>;
    /// The alert an outbox row stands for, built from its stored event.
    fn load_alert(&mut self, id: i64) -> Result<Option<Alert>>;
    /// Records how a delivery went.
    fn record_outcome(&mut self, id: i64, outcome: Outcome<'_>, now: i64) -> Result<()>;
    /// Who this store's claims name: this process's run (see
    /// [`claims`]).
    fn claimant(&self) -> &Claimant;
    /// The rows being sent, with their claims.
    fn claims_in_flight(&mut self) -> Result<Vec<Claim>>;
    /// Puts a claimed row back to pending; `false` if it was no longer
    /// being sent.
    fn put_back(&mut self, id: i64) -> Result<bool>;
    /// Makes every pending row due now.
    fn retry_pending_now(&mut self, now: i64) -> Result<()>;
    /// The outbox's highest row id (0 when empty).
    fn outbox_mark(&mut self) -> Result<i64>;
    /// This run's own rows (made by events the run `run` wrote) with ids in
    /// `(after, upto]`, counted per channel and status.
    fn own_rows(&mut self, run: i64, after: i64, upto: i64) -> Result<Vec<OwnRows>>;
}

/// A store as its owner holds it: writer, runs ledger and outbox. The
/// claim rules (see [`claims`]) are here, the same for every backend.
/// Monitors and their check-ins (`sql::monitors`).
pub(crate) trait Monitors {
    /// Records a check-in, declaring its monitor (its latest schedule and
    /// limits); what it found: a failure, or a recovery.
    fn record_check_in(
        &mut self,
        note: &crate::monitors::check_in::Note,
        run: &Claimant,
    ) -> Result<Vec<crate::monitors::judge::Finding>>;
    /// Judges every monitor at `now_ms`: runs missed, past their maximum,
    /// or whose process ended without an answer; each finding made once
    /// across every process that judges.
    /// Deletes the check-ins that ended (or were expected) before
    /// `before_ms`, and the upstream items delivered or failed before then;
    /// a run still in progress stays. How many check-ins went.
    fn drop_check_ins_before(&mut self, before_ms: i64) -> Result<u64>;
    fn judge_monitors(
        &mut self,
        now_ms: i64,
    ) -> Result<
        Vec<(
            crate::monitors::check_in::MonitorSpec,
            crate::monitors::judge::Finding,
        )>,
    >;
}

pub(crate) trait Store: Writer + Runs + Outbox + Monitors {
    /// Puts back the claims that are stale (see [`claims::is_stale`]); at
    /// start, also retries pending rows at once instead of waiting out
    /// their backoff (a start often follows a configuration fix).
    fn release_stale(
        &mut self,
        alive: &dyn Fn(u32, Option<u64>) -> bool,
        at_start: bool,
    ) -> Result<()> {
        let now = crate::util::time::now_ms();
        let claims = self.claims_in_flight()?;
        let me = self.claimant().clone();
        // The ledger is asked once per claiming run.
        let mut asked: Vec<(Claimant, bool)> = Vec::new();
        let mut stale = Vec::new();
        {
            let mut ended = |c: &Claimant| -> bool {
                if let Some((_, e)) = asked.iter().find(|(k, _)| k == c) {
                    return *e;
                }
                let e = matches!(
                    self.run_status_of(c),
                    Ok(Some(s)) if s != RunStatus::Running
                );
                asked.push((c.clone(), e));
                e
            };
            for claim in &claims {
                if claims::is_stale(claim, &me, &mut ended, alive, now) {
                    stale.push(claim.id);
                }
            }
        }
        for id in stale {
            self.put_back(id)?;
        }
        if at_start {
            // After the put-backs: they are retried at once too.
            self.retry_pending_now(now)?;
        }
        Ok(())
    }

    /// Puts back this process's own claims: a delivery the exit budget cut
    /// short (its row would otherwise stay `sending` until another process
    /// judged the run).
    fn release_own(&mut self) -> Result<()> {
        let me = self.claimant().key();
        for claim in self.claims_in_flight()? {
            if claim.run.as_deref() == Some(me.as_str()) {
                self.put_back(claim.id)?;
            }
        }
        Ok(())
    }
}

impl<T: Writer + Runs + Outbox + Monitors> Store for T {}

/// The read side of a store, behind [`crate::db::Database`]; each method is
/// what the `Database` method of the same name documents.
pub(crate) trait Reader: Send + std::fmt::Debug {
    fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>>;
    fn histogram(&self, group: i64, since: i64, until: i64, buckets: usize) -> Result<Vec<u64>>;
    fn for_each_event(&self, f: &EventFilter, each: &mut dyn FnMut(EventRow) -> bool)
        -> Result<()>;
    fn count_events(&self, f: &EventFilter) -> Result<u64>;
    fn event(&self, id: &str) -> Result<Option<EventDetail>>;
    /// One event in full, by its full id, without its alerts' deliveries
    /// (what a forwarding channel sends).
    fn event_to_forward(&self, uid: &str) -> Result<Option<EventDetail>>;
    /// An event's attachments (by id or prefix), with their bytes.
    fn attachments(&self, uid: &str) -> Result<Vec<crate::event::StoredAttachment>>;
    fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>>;
    fn stats(&self, top: usize) -> Result<Stats>;
    fn purge_candidates(&self, rule: PurgeRule) -> Result<Vec<String>>;
    fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter>;
    fn check(&self) -> Result<CheckReport>;
    fn for_each_export(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(ExportRow) -> bool,
    ) -> Result<()>;
    fn last_row(&self) -> Result<Option<i64>>;
    fn runs(&self, limit: usize, only: Option<i64>) -> Result<Vec<RunRow>>;
    fn monitors(&self, runs: usize) -> Result<Vec<crate::monitors::rows::MonitorRow>>;
    fn run_samples(&self, run: i64, since: i64, until: i64) -> Result<Vec<RunSample>>;
    fn trend_before(&self, uid: &str) -> Result<Option<(i64, Vec<RunSample>)>>;
    fn releases(&self) -> Result<Vec<ReleaseRow>>;
    fn hourly(&self, groups: Option<&[i64]>, since: i64, until: i64) -> Result<Vec<HourCount>>;
    fn group_values(&self, group: i64) -> Result<Vec<GroupValue>>;
    fn values(&self, key: &str, limit: usize) -> Result<Vec<String>>;
    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>>;
    fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>>;
    fn deliveries(&self) -> Result<Vec<ChannelHealth>>;
}

/// What changes a store from the outside: group status, purges, frames
/// named later, giving space back.
pub(crate) trait Maintenance: Reader {
    fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool>;
    fn purge(&mut self, rule: PurgeRule) -> Result<PurgeReport>;
    fn vacuum(&self) -> Result<()>;
    fn raw_backtraces(&self, after: i64, limit: usize) -> Result<Vec<(i64, Vec<Frame>)>>;
    fn replace_frames(&mut self, id: i64, frames: &[Frame]) -> Result<()>;
    /// Merges the groups `from` into `into` (`sql::merge`).
    fn merge_groups(&self, into: i64, from: &[i64]) -> Result<MergeReport>;
    /// Takes a merged group back out, with its events.
    fn unmerge_group(&self, group: i64) -> Result<MergeReport>;
    /// Groups the stored events again by `config` (`sql::regroup`).
    fn regroup(&self, config: &GroupingConfig, apply: bool) -> Result<RegroupReport>;
}

/// A database opened for reading and administration.
pub(crate) trait Admin: Reader + Maintenance {}

impl<T: Reader + Maintenance> Admin for T {}
