//! Opening a store by where it is: the file, or a server its URL names.
//! The one place above the backends that knows them all.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "postgres")]
use super::postgres;
use super::seam::{Admin, Reader, Store};
use super::sqlite;
use crate::error::Result;
use crate::settings::Durability;

/// Where a logger's events are stored: the file at its path, or (feature
/// `postgres`) a PostgreSQL database shared by a fleet, the file's
/// directory then keeping only the spool and the crash files.
#[derive(Debug, Clone, Default)]
pub(crate) enum Backend {
    /// The SQLite file at the logger's path.
    #[default]
    File,
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(std::sync::Arc<postgres::connect::PgTarget>),
}

impl Backend {
    /// Whether events go to the file (not to a server).
    pub(crate) fn is_file(&self) -> bool {
        matches!(self, Backend::File)
    }
}

/// Opens the store at `path` (or the server `backend` names) for writing,
/// creating and migrating it. With `recover`, a damaged file is first
/// moved aside (with its `-wal` and `-shm`) and a new one created.
pub(crate) fn open(
    path: &Path,
    backend: &Backend,
    durability: Durability,
    busy_timeout: Duration,
    recover: bool,
) -> Result<Box<dyn Store>> {
    match backend {
        Backend::File => {}
        #[cfg(feature = "postgres")]
        Backend::Postgres(target) => {
            return Ok(Box::new(postgres::PgStore::open(target, path)?));
        }
    }
    let store = if recover {
        sqlite::SqliteStore::open_or_recover(path, durability, busy_timeout)?
    } else {
        sqlite::SqliteStore::open(path, durability, busy_timeout)?
    };
    Ok(Box::new(store))
}

/// What the caller's thread checks before a writer starts, without opening
/// anything: the database file can be made where it should be (a missing
/// directory is an error of `build`, not a silent spool). Opening, which
/// reads the schema or reaches a server, is the writer's.
pub(crate) fn prepare(path: &Path, backend: &Backend) -> Result<()> {
    match backend {
        Backend::File => sqlite::create_private(path),
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) => Ok(()),
    }
}

/// Opens the read side of the store at `path` (or on the server `backend`
/// names): what a forwarding channel reads each event from, in full.
pub(crate) fn open_reader(path: &Path, backend: &Backend) -> Result<Box<dyn Reader>> {
    match backend {
        Backend::File => Ok(Box::new(sqlite::read::SqliteReader::open(path)?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres(target) => Ok(Box::new(postgres::read::PgReader::open(target)?)),
    }
}

/// Moves a damaged store aside (no connection of this process may be open
/// on it); returns where it went.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf> {
    sqlite::move_aside(path)
}

/// Opens the file at `path` for reading and administration.
pub(crate) fn admin(path: &Path) -> Result<Box<dyn Admin>> {
    Ok(Box::new(sqlite::read::SqliteReader::open(path)?))
}

/// Opens the server `url` names for reading and administration; what
/// messages call it (without the password).
#[cfg(feature = "postgres")]
pub(crate) fn admin_url(
    url: &str,
    config: &crate::settings::Config,
) -> Result<(Box<dyn Admin>, String)> {
    let target = postgres::migrate_target(url, config)?;
    let shown = target.display().to_owned();
    Ok((Box::new(postgres::read::PgReader::open(&target)?), shown))
}

/// Checks the file at `path` without changing it (see
/// [`crate::db::Database::check_path`]).
pub(crate) fn check_path(path: &Path) -> crate::store::read::CheckReport {
    let mut r = sqlite::read::SqliteReader::check_path(path);
    add_spool(&mut r, path);
    r
}

/// Adds the spool beside the database file at `path` to a check: events
/// waiting to be imported, and lines that could not be.
pub(crate) fn add_spool(r: &mut crate::store::read::CheckReport, path: &Path) {
    let spool = super::spool::state(path);
    r.spool_files = spool.files;
    r.spool_events = spool.events;
    if spool.files > 0 {
        r.problems.push(format!(
            "{} events in {} spool files wait to be imported (the database could not be \
             written)",
            spool.events, spool.files
        ));
    }
    for reason in spool.refused {
        r.problems.push(format!("spool: {reason}"));
    }
    for (file, lines) in spool.rejected {
        r.problems.push(format!(
            "{lines} spool lines could not be imported; they are kept in {}",
            file.display()
        ));
        r.rejected.push((file.display().to_string(), lines));
    }
}
