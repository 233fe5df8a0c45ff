//! The MySQL store's seams: everything but the batch insert (`insert.rs`)
//! is the shared SQL layer's, over this store's connection.

use std::path::Path;

use super::conn::MyConn;
use super::MyStore;
use crate::error::Result;
use crate::event::HostInfo;
use crate::store::seam::AlertRules;
use crate::store::sql::backend::SqlStore;
use crate::store::sql::{self, writer};

impl sql::backend::SqlStore for MyStore {
    fn conn(&mut self) -> Box<dyn sql::Conn + '_> {
        Box::new(MyConn {
            conn: &mut self.conn,
            target: &self.target,
            depth: 0,
        })
    }

    fn claims_as(&self) -> (&crate::store::claims::Claimant, sql::Value) {
        (&self.claimant, sql::Value::Text(self.claimer.clone()))
    }
}

impl crate::store::seam::Writer for MyStore {
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
        // Not in a transaction: the logger's view is DDL, which commits.
        let id = writer::logger_id(&mut *SqlStore::conn(self), name)?;
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
        sql::maintenance::name_frames(&mut *SqlStore::conn(self), hash, frames)
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
        // InnoDB's own estimate of the events' bytes (the table keeps its
        // size after a DELETE until it is rebuilt).
        let used = |c: &mut dyn sql::Conn| {
            c.one(
                "measuring",
                "SELECT coalesce(sum(data_length + index_length), 0)
                 FROM information_schema.tables
                 WHERE table_schema = DATABASE() AND table_name = 'events'",
                sql::params![],
            )
        };
        let tables = sql::maintenance::Tables {
            attachments: true,
            texts: true,
        };
        sql::maintenance::enforce(
            &mut *SqlStore::conn(self),
            limits,
            crate::util::time::now_ms(),
            tables,
            &used,
        )
    }
}

impl sql::backend::SqlRuns for MyStore {
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
