//! Reading a fleet's MySQL or MariaDB database (`errsnap --db mysql://...`):
//! one connection behind a lock, its size and health, and `OPTIMIZE
//! TABLE`; everything read or changed through it is the shared SQL
//! layer's (`sql::read`).

use std::sync::{Mutex, MutexGuard};

use mysql::prelude::Queryable;

use super::conn::MyConn;
use super::connect::MyTarget;
use super::migrate::SCHEMA_VERSION;
use crate::error::{Error, ErrorKind, Result};
use crate::store::read::CheckReport;
use crate::store::sql::backend::SqlReader;
use crate::store::sql::{params, Conn, Dialect, Row, Value};

/// A connection reading a fleet's database.
pub(crate) struct MyReader {
    conn: Mutex<mysql::Conn>,
    target: MyTarget,
}

impl std::fmt::Debug for MyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MyReader")
            .field("at", &self.target.display())
            .finish_non_exhaustive()
    }
}

impl MyReader {
    /// Connects (the schema must be errsnap's: it is checked, not made).
    ///
    /// # Errors
    /// The server cannot be reached or refuses the login, or the database
    /// holds no errsnap schema.
    pub(crate) fn open(target: &MyTarget) -> Result<MyReader> {
        let mut conn = target.connect()?;
        let ours: Option<String> = conn
            .query_first(
                "SELECT table_name FROM information_schema.tables
                 WHERE table_schema = DATABASE() AND table_name = 'errsnap_meta'",
            )
            .map_err(|e| target.error("reading", e))?;
        if ours.is_none() {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "{} holds no errsnap schema (start a logger with it to make one)",
                    target.display()
                ),
            }));
        }
        Ok(MyReader {
            conn: Mutex::new(conn),
            target: target.clone(),
        })
    }
}

/// The connection, held for one call of the shared layer.
struct Held<'a> {
    conn: MutexGuard<'a, mysql::Conn>,
    target: &'a MyTarget,
}

impl Held<'_> {
    fn my(&mut self) -> MyConn<'_> {
        MyConn {
            conn: &mut self.conn,
            target: self.target,
            depth: 0,
        }
    }
}

impl Conn for Held<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }
    fn execute(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<u64> {
        self.my().execute(doing, sql, params)
    }
    fn each(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> Result<bool>,
    ) -> Result<()> {
        self.my().each(doing, sql, params, each)
    }
    fn transaction(
        &mut self,
        doing: &str,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<()>,
    ) -> Result<()> {
        self.my().transaction(doing, f)
    }
}

impl SqlReader for MyReader {
    fn conn(&self) -> Box<dyn Conn + '_> {
        Box::new(Held {
            conn: self.conn.lock().unwrap_or_else(|p| p.into_inner()),
            target: &self.target,
        })
    }

    /// Every column of schema 1 (the first MySQL schema) is there.
    fn column(&self, _table: &str, column: &str) -> String {
        column.to_owned()
    }

    fn size(&self) -> Result<(u64, u64)> {
        let (size, used): (u64, u64) = {
            let mut c = self.conn();
            let row = c
                .query_opt(
                    "measuring",
                    "SELECT coalesce(sum(data_length + index_length + data_free), 0),
                            coalesce(sum(data_length + index_length), 0)
                     FROM information_schema.tables WHERE table_schema = DATABASE()",
                    params![],
                )?
                .ok_or_else(|| {
                    Error::new(ErrorKind::Storage {
                        context: "measuring: no row".into(),
                    })
                })?;
            (row.get(0)?, row.get(1)?)
        };
        Ok((size, used))
    }

    fn schema_version(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_opt(
                "checking",
                r#"SELECT value FROM errsnap_meta WHERE "key" = 'schema_version'"#,
                params![],
            )?
            .map(|r| r.get::<String>(0))
            .transpose()?
            .and_then(|v| v.parse().ok()))
    }

    fn health(&self) -> Result<CheckReport> {
        let version = self.schema_version()?;
        let mut r = CheckReport {
            schema_version: version,
            supported_version: SCHEMA_VERSION,
            ..Default::default()
        };
        match version {
            Some(v) if v > SCHEMA_VERSION => r.warnings.push(format!(
                "schema version {v} is newer than this errsnap's ({SCHEMA_VERSION})"
            )),
            Some(_) => {}
            None => r
                .problems
                .push("no errsnap schema version recorded".to_owned()),
        }
        crate::store::sql::report::alert_health(&mut *self.conn(), &mut r)?;
        Ok(r)
    }

    fn compact(&self) -> Result<()> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tables: Vec<String> = c
            .query(
                "SELECT table_name FROM information_schema.tables
                 WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
            )
            .map_err(|e| self.target.error("compacting", e))?;
        for t in tables {
            // Rebuilds the table and gives its free space back.
            let _: Vec<mysql::Row> = c
                .query(format!("OPTIMIZE TABLE \"{}\"", t.replace('"', "")))
                .map_err(|e| self.target.error("compacting", e))?;
        }
        Ok(())
    }

    fn place(&self) -> String {
        self.target.display().to_owned()
    }
}
