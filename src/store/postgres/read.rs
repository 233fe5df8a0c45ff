//! Reading a fleet's PostgreSQL database (`errsnap --db postgres://...`):
//! the connection (its statements prepared once), which columns the
//! database has (one no writer has migrated yet is read as it is), its size
//! and health, and `VACUUM ANALYZE`; everything read or changed through it
//! is the shared SQL layer's (`sql::read`).

use std::sync::{Mutex, MutexGuard};

use postgres::Client;

use super::conn::PgConn;
use super::connect::PgTarget;
use super::Stmts;
use crate::error::{Error, ErrorKind, Result};
use crate::store::read::CheckReport;
use crate::store::sql::backend::SqlReader;
use crate::store::sql::{params, Conn, Dialect, Row, Value};

/// A connection reading a fleet's database.
pub(crate) struct PgReader {
    session: Mutex<Session>,
    pub(super) target: PgTarget,
    /// Columns seen (a database only gains columns; one not seen yet is
    /// looked up again: a writer may upgrade it under a long-lived reader).
    seen: Mutex<Vec<(String, String)>>,
}

struct Session {
    client: Client,
    stmts: Stmts,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader")
            .field("at", &self.target.display())
            .finish_non_exhaustive()
    }
}

impl PgReader {
    /// Connects (the schema must be errsnap's: it is checked, not made).
    ///
    /// # Errors
    /// The server cannot be reached or refuses the login, or the database
    /// holds no errsnap schema.
    pub(crate) fn open(target: &PgTarget) -> Result<PgReader> {
        let mut client = target.connect()?;
        let ours: bool = client
            .query_one("SELECT to_regclass('errsnap_meta') IS NOT NULL", &[])
            .map_err(|e| target.error("reading", e))?
            .get(0);
        if !ours {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "{} holds no errsnap schema (run `errsnap --db URL migrate`, or start a logger with it)",
                    target.display()
                ),
            }));
        }
        Ok(PgReader {
            session: Mutex::new(Session {
                client,
                stmts: Stmts::default(),
            }),
            target: target.clone(),
            seen: Mutex::new(Vec::new()),
        })
    }
}

/// The session, held for one call of the shared layer.
struct Held<'a> {
    session: MutexGuard<'a, Session>,
    target: &'a PgTarget,
}

impl Held<'_> {
    fn pg(&mut self) -> PgConn<'_, Client> {
        let s = &mut *self.session;
        PgConn {
            client: &mut s.client,
            stmts: &mut s.stmts,
            target: self.target,
        }
    }
}

impl Conn for Held<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    fn execute(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<u64> {
        self.pg().execute(doing, sql, params)
    }
    fn each(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> Result<bool>,
    ) -> Result<()> {
        self.pg().each(doing, sql, params, each)
    }
    fn transaction(
        &mut self,
        doing: &str,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<()>,
    ) -> Result<()> {
        self.pg().transaction(doing, f)
    }
}

impl SqlReader for PgReader {
    fn conn(&self) -> Box<dyn Conn + '_> {
        Box::new(Held {
            session: self.session.lock().unwrap_or_else(|p| p.into_inner()),
            target: &self.target,
        })
    }

    fn column(&self, table: &str, column: &str) -> String {
        let key = (table.to_owned(), column.to_owned());
        let seen = |s: &Mutex<Vec<(String, String)>>| {
            s.lock().unwrap_or_else(|p| p.into_inner()).contains(&key)
        };
        if seen(&self.seen) {
            return column.to_owned();
        }
        // The shared layer asks for columns before it takes the connection;
        // asked while it is held, the lookup would wait for itself.
        let session = match self.session.try_lock() {
            Ok(s) => s,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                debug_assert!(false, "a column looked up while the connection is held");
                self.session.lock().unwrap_or_else(|p| p.into_inner())
            }
        };
        let mut held = Held {
            session,
            target: &self.target,
        };
        let found = (&mut held as &mut dyn Conn)
            .one::<bool>(
                "reading the schema",
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = ?1
                      AND column_name = ?2)",
                params![table, column],
            )
            .unwrap_or(false);
        if !found {
            return "NULL".to_owned();
        }
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key);
        column.to_owned()
    }

    fn size(&self) -> Result<(u64, u64)> {
        let size: u64 = self.conn().one(
            "measuring",
            "SELECT pg_database_size(current_database())",
            params![],
        )?;
        Ok((size, size))
    }

    fn schema_version(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_opt(
                "checking",
                "SELECT value FROM errsnap_meta WHERE key = 'schema_version'",
                params![],
            )?
            .map(|r| r.get::<String>(0))
            .transpose()?
            .and_then(|v| v.parse().ok()))
    }

    fn health(&self) -> Result<CheckReport> {
        let version = self.schema_version()?;
        let mut c = self.conn();
        let mut r = CheckReport {
            schema_version: version,
            supported_version: super::SCHEMA_VERSION,
            ..Default::default()
        };
        match version {
            Some(v) if v > super::SCHEMA_VERSION => r.warnings.push(format!(
                "schema version {v} is newer than this errsnap's ({})",
                super::SCHEMA_VERSION
            )),
            Some(_) => {}
            None => r
                .problems
                .push("no errsnap schema version recorded".to_owned()),
        }
        crate::store::sql::report::alert_health(&mut *c, &mut r)?;
        Ok(r)
    }

    fn compact(&self) -> Result<()> {
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        s.client
            .batch_execute("VACUUM ANALYZE")
            .map_err(|e| self.target.error("vacuuming", e))
    }

    fn place(&self) -> String {
        self.target.display().to_owned()
    }
}
