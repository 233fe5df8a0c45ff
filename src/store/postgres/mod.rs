//! The PostgreSQL store (feature `postgres`): a fleet's many hosts record
//! into one database behind the same [`Store`] and [`Reader`] seams as the
//! file. Ids are assigned by the server; a batch is a few multi-row
//! statements with `ON CONFLICT DO NOTHING RETURNING` (group counts and
//! alerts come only from rows actually inserted, so a retried batch
//! changes nothing); outbox rows are claimed with `FOR UPDATE SKIP LOCKED`
//! (a fleet delivers each alert once). Without the feature only the schema
//! is here (its shape is tested).
//!
//! [`Store`]: crate::store::seam::Store
//! [`Reader`]: crate::store::seam::Reader

// Without the feature, only the schema's test reads the constants.
#![cfg_attr(not(feature = "postgres"), allow(dead_code))]

#[cfg(feature = "postgres")]
pub(crate) mod conn;
#[cfg(feature = "postgres")]
pub(crate) mod connect;
#[cfg(feature = "postgres")]
mod decide;
#[cfg(feature = "postgres")]
mod insert;
#[cfg(feature = "postgres")]
mod migrate;
#[cfg(feature = "postgres")]
pub(crate) mod read;
#[cfg(feature = "postgres")]
#[cfg(feature = "postgres")]
mod store;
#[cfg(feature = "postgres")]
mod summary;
#[cfg(feature = "postgres")]
pub(crate) mod tls;
#[cfg(feature = "postgres")]
mod verify;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use migrate::{migrate_postgres, PgMigration};
#[cfg(feature = "postgres")]
pub(crate) use pg_store::{PgStore, Stmts};

/// The PostgreSQL store's state (its `Store` methods are in `store.rs`,
/// the batch path in `insert.rs` and `decide.rs`, the notify side in
/// `outbox.rs`, runs and retention in `runs.rs`).
#[cfg(feature = "postgres")]
mod pg_store {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use postgres::Client;

    use super::connect::PgTarget;
    use crate::error::Result;
    use crate::store::seam::AlertRules;

    /// How long one statement may take before the writer gives up on it (and
    /// spools the batch): a slow server must not hold the queue forever.
    const STATEMENT_TIMEOUT_MS: u32 = 15_000;

    /// The PostgreSQL store of one process.
    pub(crate) struct PgStore {
        pub(crate) client: Client,
        pub(crate) target: PgTarget,
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
        /// The batch path's statements, prepared once per connection (one
        /// round trip per statement instead of two).
        pub(crate) stmts: Stmts,
        /// This host and process, in `claimed_by` (what older builds read).
        pub(crate) claimer: String,
        /// Who this connection's claims name (`claim_run`).
        pub(crate) claimant: crate::store::claims::Claimant,
        /// This process's run, once recorded: the origin of the outbox
        /// rows its events make.
        pub(crate) run: Option<i64>,
        /// The registered host's name (a value groups are seen with).
        pub(crate) host_name: Option<String>,
        /// Search texts known to be stored.
        pub(crate) texts: crate::store::summary::KnownTexts,
    }

    impl std::fmt::Debug for PgStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PgStore")
                .field("at", &self.target.display())
                .finish_non_exhaustive()
        }
    }

    impl PgStore {
        /// Connects, and creates or upgrades the schema.
        ///
        /// # Errors
        /// The server cannot be reached, refuses the login, or its schema
        /// cannot be used (see [`super::migrate_postgres`]).
        pub(crate) fn open(target: &PgTarget, local: &Path) -> Result<PgStore> {
            let mut client = target.connect()?;
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {STATEMENT_TIMEOUT_MS}; SET lock_timeout = {STATEMENT_TIMEOUT_MS}"
                ))
                .map_err(|e| target.error("configuring the session of", e))?;
            super::migrate::migrate(&mut client, target)?;
            let host = sysinfo::System::host_name().unwrap_or_default();
            Ok(PgStore {
                client,
                target: target.clone(),
                path: local.to_owned(),
                rules: AlertRules::default(),
                host_id: None,
                loggers: HashMap::new(),
                backtraces: HashMap::new(),
                groups: HashMap::new(),
                merges: Default::default(),
                stmts: Stmts::default(),
                claimer: format!("{host}:{}", std::process::id()),
                claimant: crate::store::claims::Claimant::this_process(),
                run: None,
                host_name: None,
                texts: Default::default(),
            })
        }
    }

    /// Statements prepared on this connection, by their SQL (bounded: a
    /// listing's filters make many texts; cleared past 1,000).
    #[derive(Default)]
    pub(crate) struct Stmts(HashMap<String, postgres::Statement>);

    impl Stmts {
        /// The prepared statement of `sql` (prepared now if new).
        pub(crate) fn get(
            &mut self,
            client: &mut impl postgres::GenericClient,
            sql: &str,
        ) -> std::result::Result<postgres::Statement, postgres::Error> {
            if let Some(s) = self.0.get(sql) {
                return Ok(s.clone());
            }
            let s = client.prepare(sql)?;
            if self.0.len() >= 1000 {
                self.0.clear();
            }
            self.0.insert(sql.to_owned(), s.clone());
            Ok(s)
        }
    }
}

/// The schema (version 8; every statement idempotent, so applying it
/// upgrades versions 1 to 7), applied under `pg_advisory_xact_lock` so that
/// processes starting together migrate once.
pub(crate) const SCHEMA: &str = include_str!("schema.sql");

/// The PostgreSQL schema version this build writes.
#[cfg(feature = "postgres")]
pub(crate) const SCHEMA_VERSION: i64 = 8;

/// The oldest writer that may write this schema (version 7 would take an
/// outbox row that is not an event's for an event's, and fail it).
#[cfg(feature = "postgres")]
pub(crate) const MIN_WRITER: i64 = 8;

/// The key of the migration lock (`'errsnap'` as an integer).
pub(crate) const MIGRATION_LOCK: i64 = 0x0065_7272_736e_6170;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_every_table_of_the_sqlite_model() {
        for table in [
            "loggers",
            "hosts",
            "backtraces",
            "frames",
            "event_groups",
            "snapshots",
            "events",
            "outbox",
            "alert_state",
            "counters",
            "errsnap_meta",
            "runs",
            "group_hosts",
            "group_hours",
            "group_values",
            "group_texts",
        ] {
            assert!(
                SCHEMA.contains(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
                "{table}"
            );
        }
        assert!(SCHEMA.contains("uid            TEXT    NOT NULL UNIQUE"));
        assert_eq!(&MIGRATION_LOCK.to_be_bytes()[1..], b"errsnap");
    }
}
