//! Opening a store by where it is: the file, or a server its URL names.
//! The one place above the backends that knows them all.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "mysql")]
use super::mysql;
#[cfg(feature = "postgres")]
use super::postgres;
use super::seam::{Admin, Reader, Store};
use super::sqlite;
use crate::error::{Error, Result};
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
    /// A MySQL or MariaDB database.
    #[cfg(feature = "mysql")]
    Mysql(std::sync::Arc<mysql::connect::MyTarget>),
}

/// The server store a database URL names (`ERRSNAP_DATABASE_URL`, `--db`),
/// by its scheme; `password` and `ca_file` where the URL gives none.
///
/// # Errors
/// A scheme errsnap does not know or was built without, or a URL its
/// backend cannot use (named, never with the password).
#[cfg_attr(
    not(any(feature = "postgres", feature = "mysql")),
    allow(unused_variables)
)]
pub(crate) fn backend_for(
    url: &str,
    password: Option<&str>,
    ca_file: Option<PathBuf>,
) -> Result<Backend> {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    match scheme {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Backend::Postgres(std::sync::Arc::new(
            postgres::connect::PgTarget::parse(url, password, ca_file)?,
        ))),
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => Ok(Backend::Mysql(std::sync::Arc::new(
            mysql::connect::MyTarget::parse(url, password, ca_file)?,
        ))),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(Error::config(
            URL_KEY,
            "a PostgreSQL database needs errsnap's `postgres` feature",
        )),
        #[cfg(not(feature = "mysql"))]
        "mysql" | "mariadb" => Err(Error::config(
            URL_KEY,
            "a MySQL or MariaDB database needs errsnap's `mysql` feature",
        )),
        _ => Err(Error::config(
            URL_KEY,
            "not a database URL errsnap reads: postgres://, mysql:// or mariadb://",
        )),
    }
}

/// The setting a database URL comes from.
const URL_KEY: &str = "ERRSNAP_DATABASE_URL";

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
        #[cfg(feature = "mysql")]
        Backend::Mysql(target) => {
            return Ok(Box::new(mysql::MyStore::open(target, path)?));
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
        #[cfg(feature = "mysql")]
        Backend::Mysql(_) => Ok(()),
    }
}

/// Opens the read side of the store at `path` (or on the server `backend`
/// names): what a forwarding channel reads each event from, in full.
pub(crate) fn open_reader(path: &Path, backend: &Backend) -> Result<Box<dyn Reader>> {
    match backend {
        Backend::File => Ok(Box::new(sqlite::read::SqliteReader::open(path)?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres(target) => Ok(Box::new(postgres::read::PgReader::open(target)?)),
        #[cfg(feature = "mysql")]
        Backend::Mysql(target) => Ok(Box::new(mysql::read::MyReader::open(target)?)),
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
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn admin_url(
    url: &str,
    config: &crate::settings::Config,
) -> Result<(Box<dyn Admin>, String)> {
    let password = config.get("ERRSNAP_DATABASE_PASSWORD");
    let ca = config
        .get(crate::settings::TLS_CA_FILE_KEY)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    match backend_for(url, password, ca)? {
        Backend::File => Err(Error::config(URL_KEY, "not a server's URL")),
        #[cfg(feature = "postgres")]
        Backend::Postgres(target) => {
            let shown = target.display().to_owned();
            Ok((Box::new(postgres::read::PgReader::open(&target)?), shown))
        }
        #[cfg(feature = "mysql")]
        Backend::Mysql(target) => {
            let shown = target.display().to_owned();
            Ok((Box::new(mysql::read::MyReader::open(&target)?), shown))
        }
    }
}

/// Creates or upgrades the schema of the server database `url` names.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn migrate_url(
    url: &str,
    config: &crate::settings::Config,
) -> Result<super::read::Migration> {
    let password = config.get("ERRSNAP_DATABASE_PASSWORD");
    let ca = config
        .get(crate::settings::TLS_CA_FILE_KEY)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let (database, (schema_version, migrated)) = match backend_for(url, password, ca)? {
        Backend::File => return Err(Error::config(URL_KEY, "not a server's URL")),
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) => {
            let m = postgres::migrate_postgres(url, config)?;
            (m.database, (m.schema_version, m.migrated))
        }
        #[cfg(feature = "mysql")]
        Backend::Mysql(target) => {
            let mut conn = target.connect()?;
            (
                target.display().to_owned(),
                mysql::migrate::migrate(&mut conn, &target)?,
            )
        }
    };
    Ok(super::read::Migration {
        database,
        schema_version,
        migrated,
    })
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
