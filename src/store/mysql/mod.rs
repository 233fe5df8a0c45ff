//! The MySQL and MariaDB store (feature `mysql`): a fleet's events in a
//! MySQL 8 or MariaDB 10.6+ database, behind the same seams as the file and
//! PostgreSQL, through the shared SQL layer. Ids are assigned by the
//! server; an event whose uid is stored already is skipped (a retried or
//! spooled batch is stored once); outbox rows are claimed with `FOR UPDATE
//! SKIP LOCKED` (a fleet delivers each alert once); sessions are READ
//! COMMITTED (REPEATABLE READ's gap locks deadlock concurrent upserts) and
//! a deadlock or lock wait timeout is retried as busy.

pub(crate) mod conn;
pub(crate) mod connect;
mod insert;
pub(crate) mod migrate;
pub(crate) mod read;
mod store;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mysql::prelude::Queryable;

use self::connect::MyTarget;
use crate::error::Result;
use crate::store::seam::AlertRules;

/// How long a statement waits for another's row lock before the batch is
/// given up (and spooled).
const LOCK_WAIT_SECS: u32 = 15;

/// The MySQL store of one process.
pub(crate) struct MyStore {
    pub(crate) conn: mysql::Conn,
    pub(crate) target: MyTarget,
    /// The local database path: where the spool and crash files are kept.
    pub(crate) path: PathBuf,
    pub(crate) rules: AlertRules,
    pub(crate) host_id: Option<i64>,
    pub(crate) loggers: HashMap<String, i64>,
    /// Backtrace ids by storage key (bounded: cleared past 10,000).
    pub(crate) backtraces: HashMap<String, i64>,
    /// Group ids by fingerprint (bounded the same way).
    pub(crate) groups: HashMap<String, i64>,
    /// The merged groups, as last read.
    pub(crate) merges: crate::store::sql::grouping::Merges,
    /// This host and process, in `claimed_by`.
    pub(crate) claimer: String,
    /// Who this connection's claims name (`claim_run`).
    pub(crate) claimant: crate::store::claims::Claimant,
    /// This process's run, once recorded.
    pub(crate) run: Option<i64>,
    /// The registered host's name (a value groups are seen with).
    pub(crate) host_name: Option<String>,
    /// Search texts known to be stored.
    pub(crate) texts: crate::store::summary::KnownTexts,
    /// The server's `max_allowed_packet`: no statement may be larger (an
    /// event's message or an attachment over it is cut to fit).
    pub(crate) max_packet: usize,
}

impl std::fmt::Debug for MyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MyStore")
            .field("at", &self.target.display())
            .finish_non_exhaustive()
    }
}

impl MyStore {
    /// Connects, and creates or upgrades the schema.
    ///
    /// # Errors
    /// The server cannot be reached, refuses the login or the TLS asked
    /// for, or its schema cannot be used (another program's, or newer).
    pub(crate) fn open(target: &MyTarget, local: &Path) -> Result<MyStore> {
        let mut conn = target.connect()?;
        conn.query_drop(format!(
            "SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECS}"
        ))
        .map_err(|e| target.error("configuring the session of", e))?;
        migrate::migrate(&mut conn, target)?;
        let max_packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .map_err(|e| target.error("configuring the session of", e))?;
        let host = sysinfo::System::host_name().unwrap_or_default();
        Ok(MyStore {
            conn,
            target: target.clone(),
            path: local.to_owned(),
            rules: AlertRules::default(),
            host_id: None,
            loggers: HashMap::new(),
            backtraces: HashMap::new(),
            groups: HashMap::new(),
            merges: Default::default(),
            claimer: format!("{host}:{}", std::process::id()),
            claimant: crate::store::claims::Claimant::this_process(),
            run: None,
            host_name: None,
            texts: Default::default(),
            max_packet: max_packet.map_or(16 << 20, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        })
    }
}
