//! What a backend gives the shared SQL layer: a store's connection and
//! who its claims name (the outbox), its host and run (the runs ledger),
//! and a reader's connection, columns, size, health and compaction (every
//! `Reader` and `Maintenance` method). Implementing these three traits
//! makes a backend's outbox, ledger and read side.

use super::{Conn, Value};
use crate::error::Result;
use crate::store::claims::Claimant;
use crate::store::read::CheckReport;

/// What a SQL store gives the shared outbox: a connection for one call,
/// and who its claims name.
pub(crate) trait SqlStore {
    /// The store's connection.
    fn conn(&mut self) -> Box<dyn Conn + '_>;
    /// This process's run (`claim_run`) and what `claimed_by` holds for
    /// it (read by older builds: a pid in SQLite, `host:pid` in
    /// PostgreSQL).
    fn claims_as(&self) -> (&Claimant, Value);
}

/// What a SQL store gives the shared runs ledger besides its connection.
pub(crate) trait SqlRuns: SqlStore {
    /// The host this store registered (`register_host`), if any yet.
    fn host(&self) -> Option<i64>;
    /// Notes the run this process started.
    fn set_run(&mut self, id: i64);
    /// The run this process started, once noted.
    fn run(&self) -> Option<i64>;
    /// The channels and policy (which channels take which upstream items).
    fn rules(&self) -> &crate::store::AlertRules;
}

/// What a SQL backend gives the shared read side.
pub(crate) trait SqlReader: Send + std::fmt::Debug {
    /// The connection, for one call: never held while another method of
    /// this trait is called (ask for columns first; a backend may answer
    /// them on the same connection).
    fn conn(&self) -> Box<dyn Conn + '_>;
    /// `column` (as it is named in a statement) when `table` has it, else
    /// `NULL`.
    fn column(&self, table: &str, column: &str) -> String;
    /// Bytes the database takes, and bytes its rows use.
    fn size(&self) -> Result<(u64, u64)>;
    /// Integrity, schema, alerts waiting or failed (see
    /// [`crate::db::Database::check`]).
    fn health(&self) -> Result<CheckReport>;
    /// Gives free space back.
    fn compact(&self) -> Result<()>;
    /// What messages call the database.
    fn place(&self) -> String;
    /// The schema version the database records.
    fn schema_version(&self) -> Result<Option<i64>>;
}
