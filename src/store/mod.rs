//! Where events are kept, in layers (each imports only those below it):
//!
//! - the values and rules every backend shares: the rows a reader returns
//!   (`read`, `runs`), claims (`claims`), the alert policy (`policy`),
//!   summaries (`summary`), logger names (`ident`);
//! - the seams (`seam`): [`Writer`], [`Runs`] and [`Outbox`] make a
//!   [`Store`], owned by one thread at a time (the writer, the notify
//!   thread, or the panic hook's fallback); [`Reader`] and [`Maintenance`]
//!   are what [`Database`] asks;
//! - the SQL layer (`sql`): a connection and row abstraction with a
//!   dialect, and the outbox, runs ledger and read side written once over
//!   it;
//! - the backends: `sqlite/` (`LOGS.db`) and `postgres/` (a fleet's
//!   server), each only its schema and migrations, connecting, and the
//!   batch insert;
//! - opening by location (`open`), [`Database`], the spool (`spool`, the
//!   fallback when the store cannot be written) and `symbolicate`; above
//!   them all, the test that runs the same streams through both backends
//!   (`differential`).
//!
//! Nothing outside this folder names a database library.

pub(crate) mod claims;
mod database;
#[cfg(all(test, feature = "postgres", unix))]
mod differential;
mod ident;
#[cfg(test)]
mod monitor_tests;
#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(test)]
mod on_sqlite;
mod open;
pub(crate) mod policy;
pub(crate) mod postgres;
pub(crate) mod read;
pub(crate) mod recorder;
#[cfg(test)]
mod recorder_tests;
pub(crate) mod runs;
#[cfg(test)]
mod runs_tests;
mod seam;
pub(crate) mod spool;
pub(crate) mod sql;
pub(crate) mod sqlite;
pub(crate) mod summary;
mod symbolicate;
#[cfg(test)]
mod triage_tests;
pub(crate) mod upstream;
#[cfg(test)]
mod upstream_tests;

pub(crate) use crate::settings::Durability;
pub(crate) use crate::settings::Limits;

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "mysql"))))]
pub use database::migrate;
pub use database::{Database, EventTrend};
pub(crate) use ident::validate_logger_name;
pub(crate) use open::{backend_for, move_aside, open, open_reader, prepare, Backend};
pub use read::Migration;
pub use read::{
    AlertStatus, ChannelHealth, CheckReport, DeliveryStatus, EventDetail, EventFilter, EventRow,
    ExportRow, GroupOrder, GroupQuery, GroupRow, GroupStatus, GroupValue, HostRow, HourCount,
    MergeReport, RegroupMove, RegroupReport, Sample, SearchHit, Stats,
};
pub use runs::{ReleaseRow, RunRow, RunStatus};
pub(crate) use seam::{AlertRules, BatchOutcome, DueAlert, Outcome, OwnRows, Reader, Store};
pub use seam::{PurgeReport, PurgeRule};
pub use symbolicate::{MissingModule, SymbolicateReport};
