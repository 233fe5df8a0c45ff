//! The read side and maintenance written once over the shared SQL layer:
//! a backend gives a connection and says which columns its database has
//! (one a writer has not migrated yet is read as it is), its size, health
//! and how it compacts; every [`Reader`] and [`Maintenance`] method is
//! here.

use super::backend::SqlReader;
use super::maintenance::{self, Columns, Tables};
use super::{detail, params, query, recorder, report};
use crate::error::Result;
use crate::event::sample::RunSample;
use crate::event::{Frame, HostInfo, StoredAttachment};
use crate::store::read::*;
use crate::store::runs::{ReleaseRow, RunRow};
use crate::store::seam::{Maintenance, PurgeReport, PurgeRule, Reader};

/// Whether the database has the summaries (hours, values, search texts).
fn summaries(r: &(impl SqlReader + ?Sized)) -> bool {
    r.column("event_groups", "resolved_next") != "NULL"
}

impl<T: SqlReader> Reader for T {
    fn groups(&self, q: &GroupQuery) -> Result<Vec<GroupRow>> {
        query::groups(self, q)
    }

    fn histogram(&self, group: i64, since: i64, until: i64, buckets: usize) -> Result<Vec<u64>> {
        query::histogram(&mut *self.conn(), group, since, until, buckets)
    }

    fn for_each_event(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        query::for_each_event(&mut *self.conn(), f, each)
    }

    fn count_events(&self, f: &EventFilter) -> Result<u64> {
        query::count_events(&mut *self.conn(), f)
    }

    fn event(&self, id: &str) -> Result<Option<EventDetail>> {
        detail::event(self, id, true)
    }

    fn event_to_forward(&self, uid: &str) -> Result<Option<EventDetail>> {
        let mut d = detail::event(self, uid, false)?;
        if let Some(d) = d.as_mut() {
            detail::with_minidump(self, d)?;
        }
        Ok(d)
    }

    fn attachments(&self, uid: &str) -> Result<Vec<StoredAttachment>> {
        detail::attachments(self, uid)
    }

    fn hosts(&self) -> Result<Vec<(HostRow, HostInfo)>> {
        detail::hosts_where(&mut *self.conn(), None)
    }

    fn stats(&self, top: usize) -> Result<Stats> {
        report::stats(self, top)
    }

    fn purge_candidates(&self, rule: PurgeRule) -> Result<Vec<String>> {
        maintenance::purge_candidates(&mut *self.conn(), rule)
    }

    fn purge_bound(&self, rule: PurgeRule) -> Result<EventFilter> {
        maintenance::purge_bound(&mut *self.conn(), rule)
    }

    fn check(&self) -> Result<CheckReport> {
        self.health()
    }

    fn for_each_export(
        &self,
        f: &EventFilter,
        each: &mut dyn FnMut(ExportRow) -> bool,
    ) -> Result<()> {
        query::for_each_export(&mut *self.conn(), f, each)
    }

    fn last_row(&self) -> Result<Option<i64>> {
        self.conn().one(
            "reading the newest event",
            "SELECT max(id) FROM events",
            params![],
        )
    }

    fn runs(&self, limit: usize, only: Option<i64>) -> Result<Vec<RunRow>> {
        report::runs(self, limit, only)
    }

    fn monitors(&self, runs: usize) -> Result<Vec<crate::monitors::rows::MonitorRow>> {
        if self.column("monitors", "slug") == "NULL" {
            return Ok(Vec::new());
        }
        let now = crate::util::time::now_ms();
        super::monitors::list(&mut *self.conn(), runs, now)
    }

    fn releases(&self) -> Result<Vec<ReleaseRow>> {
        report::releases(self)
    }

    fn run_samples(&self, run: i64, since: i64, until: i64) -> Result<Vec<RunSample>> {
        recorder::samples(self, run, since, until)
    }

    fn trend_before(&self, uid: &str) -> Result<Option<(i64, Vec<RunSample>)>> {
        if self.column("run_samples", "data") == "NULL" {
            return Ok(None);
        }
        let mut c = self.conn();
        let Some(row) = c.query_opt(
            "reading the event's run",
            "SELECT host_id, pid, ts FROM events WHERE uid = ?1",
            params![uid],
        )?
        else {
            return Ok(None);
        };
        recorder::before(&mut *c, row.get(0)?, row.get(1)?, row.get(2)?)
    }

    fn hourly(&self, groups: Option<&[i64]>, since: i64, until: i64) -> Result<Vec<HourCount>> {
        if !summaries(self) {
            return Ok(Vec::new());
        }
        report::hourly(&mut *self.conn(), groups, since, until)
    }

    fn group_values(&self, group: i64) -> Result<Vec<GroupValue>> {
        if !summaries(self) {
            return Ok(Vec::new());
        }
        report::group_values(&mut *self.conn(), group)
    }

    fn values(&self, key: &str, limit: usize) -> Result<Vec<String>> {
        if !summaries(self) {
            return Ok(Vec::new());
        }
        report::values(&mut *self.conn(), key, limit)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        if !summaries(self) {
            return Ok(Vec::new());
        }
        report::search(self, query, limit)
    }

    fn samples(&self, group: i64, limit: usize) -> Result<Vec<Sample>> {
        report::samples(&mut *self.conn(), group, limit)
    }

    fn deliveries(&self) -> Result<Vec<ChannelHealth>> {
        report::deliveries(&mut *self.conn())
    }
}

impl<T: SqlReader> Maintenance for T {
    fn set_group_status(&self, group: i64, status: GroupStatus) -> Result<bool> {
        let older = if summaries(self) {
            None
        } else {
            let v = self.schema_version()?;
            Some(match v {
                Some(v) => format!("{} has schema version {v}", self.place()),
                None => format!("{} has an older schema", self.place()),
            })
        };
        maintenance::set_group_status(&mut *self.conn(), group, status, older.as_deref())
    }

    fn purge(&mut self, rule: PurgeRule) -> Result<PurgeReport> {
        let tables = tables(self);
        maintenance::purge(&mut *self.conn(), rule, tables)
    }

    fn vacuum(&self) -> Result<()> {
        self.compact()
    }

    fn raw_backtraces(&self, after: i64, limit: usize) -> Result<Vec<(i64, Vec<Frame>)>> {
        maintenance::raw_backtraces(&mut *self.conn(), after, limit)
    }

    fn replace_frames(&mut self, id: i64, frames: &[Frame]) -> Result<()> {
        let columns = Columns {
            build_ids: self.column("frames", "build_id") != "NULL",
            texts: summaries(self),
        };
        maintenance::replace_frames(&mut *self.conn(), id, frames, columns)
    }

    fn merge_groups(&self, into: i64, from: &[i64]) -> Result<MergeReport> {
        merges(self)?;
        super::merge::merge(&mut *self.conn(), into, from)
    }

    fn unmerge_group(&self, group: i64) -> Result<MergeReport> {
        merges(self)?;
        super::merge::unmerge(&mut *self.conn(), group)
    }

    fn regroup(
        &self,
        config: &crate::settings::grouping::GroupingConfig,
        apply: bool,
    ) -> Result<RegroupReport> {
        merges(self)?;
        super::regroup::regroup(&mut *self.conn(), config, apply)
    }
}

/// Refuses a merge on a database no writer of merges has migrated.
fn merges(r: &(impl SqlReader + ?Sized)) -> Result<()> {
    if r.column("event_groups", "merged_into") != "NULL" {
        return Ok(());
    }
    Err(crate::error::Error::new(crate::error::ErrorKind::Storage {
        context: format!(
            "{}: merging groups needs a newer schema (run the program, or `errsnap migrate`, \
             once to upgrade it)",
            r.place()
        ),
    }))
}

/// What a purge of `r`'s database also cleans up.
pub(crate) fn tables(r: &(impl SqlReader + ?Sized)) -> Tables {
    Tables {
        attachments: r.column("attachments", "event_uid") != "NULL",
        texts: r.column("group_texts", "backtrace_id") != "NULL",
    }
}
