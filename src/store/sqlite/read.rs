//! The read and administration side of a SQLite store, behind
//! [`crate::db::Database`]: the file opened (never migrated by reading), its
//! columns, size, health and `VACUUM`; everything read or changed through
//! it is the shared SQL layer's (`sql::read`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{fail, schema};
use crate::error::{Error, ErrorKind, Result};
use crate::store::read::CheckReport;
use crate::store::sql::backend::SqlReader;
use crate::store::sql::{params, Conn};

/// An open SQLite database for reading and administration.
pub(crate) struct SqliteReader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Columns seen (a file only gains columns; one not seen yet is looked
    /// up again: a writer may migrate the file under a long-lived reader).
    seen: RefCell<Vec<(String, String)>>,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteReader {
    /// Opens an existing errsnap database.
    ///
    /// # Errors
    /// The file does not exist, is not an errsnap database, or was written by
    /// a newer errsnap.
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<SqliteReader> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::new(ErrorKind::Io {
                context: format!("opening {}: no such file", path.display()),
            }));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(format!("opening {}", path.display()), e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| fail("setting busy_timeout", e))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
            .map_err(|e| fail("setting pragmas", e))?;
        conn.set_prepared_statement_cache_capacity(64);
        if schema::inspect(&conn, path)? == schema::Disposition::New {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "opening {}: an empty file, not yet an errsnap database",
                    path.display()
                ),
            }));
        }
        Ok(SqliteReader {
            conn,
            path: path.to_owned(),
            seen: RefCell::new(Vec::new()),
        })
    }

    /// The integrity and schema part of a health check.
    fn integrity(&self, r: &mut CheckReport) -> Result<()> {
        let mut c = self.conn();
        r.integrity = c.map(
            "checking integrity",
            "PRAGMA integrity_check",
            params![],
            |r| r.get(0),
        )?;
        if r.integrity != ["ok"] {
            r.problems.push(format!(
                "integrity check failed: {}",
                r.integrity.join("; ")
            ));
        }
        r.schema_version = Some(c.one("reading the schema", "PRAGMA user_version", params![])?);
        crate::store::sql::report::alert_health(&mut *c, r)
    }

    /// Checks the database at `path` without changing it: whether errsnap
    /// can use it at all (another program's file, an unknown schema), its
    /// integrity, alerts waiting or failed, and the file's permissions
    /// (the spool beside it: `store::open::check_path`). Never fails: what cannot be
    /// checked is a problem in the report.
    pub(crate) fn check_path(path: impl AsRef<Path>) -> CheckReport {
        let path = path.as_ref();
        let mut r = CheckReport {
            integrity: Vec::new(),
            schema_version: None,
            supported_version: schema::LATEST,
            pending_alerts: 0,
            failed_alerts: 0,
            spool_files: 0,
            spool_events: 0,
            rejected: Vec::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        match SqliteReader::open(path) {
            Ok(db) => {
                if let Err(e) = db.integrity(&mut r) {
                    r.problems.push(crate::util::internal_log::chain(&e));
                }
            }
            Err(e) => r.problems.push(crate::util::internal_log::chain(&e)),
        }
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                r.warnings.push(format!(
                    "{} is readable or writable by group or others (mode {mode:o}): \
                     run chmod 600 on it",
                    path.display()
                ));
            }
        }
        r
    }
}

impl SqlReader for SqliteReader {
    fn conn(&self) -> Box<dyn Conn + '_> {
        Box::new(super::conn::Lite(&self.conn))
    }

    fn column(&self, table: &str, column: &str) -> String {
        let key = (table.to_owned(), column.to_owned());
        if self.seen.borrow().contains(&key) {
            return column.to_owned();
        }
        let found = super::column_or_null(&self.conn, table, column);
        if found != "NULL" {
            self.seen.borrow_mut().push(key);
        }
        found
    }

    fn size(&self) -> Result<(u64, u64)> {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        let file = len(&self.path) + len(Path::new(&wal));
        Ok((file, super::used_bytes(&mut *self.conn())?))
    }

    fn health(&self) -> Result<CheckReport> {
        Ok(SqliteReader::check_path(&self.path))
    }

    fn compact(&self) -> Result<()> {
        self.conn
            .execute_batch("VACUUM")
            .map_err(|e| fail("vacuuming", e))
    }

    fn place(&self) -> String {
        self.path.display().to_string()
    }

    fn schema_version(&self) -> Result<Option<i64>> {
        self.conn()
            .one("reading the schema", "PRAGMA user_version", params![])
            .map(Some)
    }
}
