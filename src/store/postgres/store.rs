//! The PostgreSQL store: the same model as the SQLite file, written by the
//! writer thread over one connection (a synchronous client: the writer is
//! the only thread that waits for it; callers never do). A batch is one
//! transaction; an event whose uid is stored already is skipped, so a
//! batch retried after a lost connection, or imported from the spool the
//! writer kept while the server was away, is stored exactly once. Alert
//! decisions are made in the same transaction with the group row locked,
//! so a fleet alerts once per group and shares its cooldowns.

use std::path::Path;

use super::PgStore;
use crate::error::Result;
use crate::event::HostInfo;
use crate::store::seam::AlertRules;
use crate::store::sql::backend::SqlStore;
use crate::store::sql::writer;

impl crate::store::sql::backend::SqlStore for PgStore {
    fn conn(&mut self) -> Box<dyn crate::store::sql::Conn + '_> {
        Box::new(super::conn::PgConn {
            client: &mut self.client,
            stmts: &mut self.stmts,
            target: &self.target,
        })
    }

    fn claims_as(&self) -> (&crate::store::claims::Claimant, crate::store::sql::Value) {
        let by = crate::store::sql::Value::Text(self.claimer.clone());
        (&self.claimant, by)
    }
}

impl crate::store::seam::Writer for PgStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn set_alert_rules(&mut self, rules: AlertRules) {
        self.rules = rules;
    }

    fn insert_batch(
        &mut self,
        events: &[crate::event::Event],
    ) -> Result<crate::store::seam::BatchOutcome> {
        let out = super::insert::insert_batch(self, events);
        if out.is_err() {
            self.merges.forget();
        }
        out
    }

    fn ensure_logger(&mut self, name: &str) -> Result<i64> {
        if let Some(&id) = self.loggers.get(name) {
            return Ok(id);
        }
        let id = SqlStore::conn(self)
            .in_transaction("registering a logger", |c| writer::logger_id(c, name))?;
        self.loggers.insert(name.to_owned(), id);
        Ok(id)
    }

    fn register_host(&mut self, host: &HostInfo, now_ms: i64) -> Result<i64> {
        let id = writer::register_host(&mut *SqlStore::conn(self), host, now_ms)?;
        self.host_id = Some(id);
        self.host_name.clone_from(&host.hostname);
        Ok(id)
    }

    fn add_counter(&mut self, name: &str, delta: u64) -> Result<()> {
        let (rules, origin) = (self.rules.clone(), self.run);
        writer::add_counter(&mut *SqlStore::conn(self), name, delta, &rules, origin)
    }
    fn adopt_grouping(
        &mut self,
        current: Option<&crate::settings::grouping::GroupingConfig>,
    ) -> Result<crate::store::seam::Adopted> {
        crate::store::sql::grouping::adopt(&mut *SqlStore::conn(self), current)
    }

    fn name_frames(&mut self, hash: &str, frames: &[crate::event::Frame]) -> Result<bool> {
        let mut c = crate::store::sql::backend::SqlStore::conn(self);
        crate::store::sql::maintenance::name_frames(&mut *c, hash, frames)
    }

    fn attach_crash(
        &mut self,
        uid: &str,
        details: &serde_json::Value,
        attachments: &[crate::event::StoredAttachment],
    ) -> Result<bool> {
        writer::attach_crash(&mut *SqlStore::conn(self), uid, details, attachments)
    }

    fn enforce_retention(&mut self, limits: crate::settings::Limits) -> Result<u64> {
        // A table's size does not shrink after a DELETE (not without
        // VACUUM FULL): the rows' bytes are estimated from the newest
        // rows' average width.
        let used = |c: &mut dyn crate::store::sql::Conn| {
            c.one(
                "measuring",
                "SELECT (count(*) * coalesce((SELECT avg(pg_column_size(e.*))
                     FROM (SELECT * FROM events ORDER BY id DESC LIMIT 1000) e), 0))::bigint
                 FROM events",
                crate::store::sql::params![],
            )
        };
        let tables = crate::store::sql::maintenance::Tables {
            attachments: true,
            texts: true,
        };
        let mut c = crate::store::sql::backend::SqlStore::conn(self);
        crate::store::sql::maintenance::enforce(
            &mut *c,
            limits,
            crate::util::time::now_ms(),
            tables,
            &used,
        )
    }
}

impl crate::store::sql::backend::SqlRuns for PgStore {
    fn host(&self) -> Option<i64> {
        self.host_id
    }
    fn set_run(&mut self, id: i64) {
        self.run = Some(id);
    }
    fn run(&self) -> Option<i64> {
        self.run
    }
    fn rules(&self) -> &crate::store::AlertRules {
        &self.rules
    }
}
