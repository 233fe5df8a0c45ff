//! The shared SQL layer's connection on SQLite: statements prepared once
//! and cached by rusqlite, values converted at the edge (a list goes in as
//! a JSON array for `json_each`), errors classified by [`super::fail`].

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;

use super::fail;
use crate::error::Result;
use crate::store::sql::{Conn, Dialect, Row, Value};

/// A SQLite connection (or a transaction on it: one derefs to the other).
pub(crate) struct Lite<'a>(pub(crate) &'a Connection);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            list => ToSqlOutput::Owned(rusqlite::types::Value::Text(
                list.list_json().unwrap_or_else(|| "[]".to_owned()),
            )),
        })
    }
}

fn value_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

impl Conn for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(sql).map_err(|e| fail(doing, e))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params))
            .map_err(|e| fail(doing, e))?;
        Ok(n as u64)
    }

    fn each(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = self.0.prepare_cached(sql).map_err(|e| fail(doing, e))?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| fail(doing, e))?;
        while let Some(r) = rows.next().map_err(|e| fail(doing, e))? {
            let row = Row::read(columns, |i| {
                r.get_ref(i).map(value_of).map_err(|e| fail(doing, e))
            })?;
            if !each(row)? {
                break;
            }
        }
        Ok(())
    }

    fn transaction(
        &mut self,
        doing: &str,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<()>,
    ) -> Result<()> {
        if !self.0.is_autocommit() {
            // Already inside one (a batch's): a savepoint keeps it whole.
            self.0
                .execute_batch("SAVEPOINT errsnap_sql")
                .map_err(|e| fail(doing, e))?;
            return match f(&mut Lite(self.0)) {
                Ok(()) => self
                    .0
                    .execute_batch("RELEASE errsnap_sql")
                    .map_err(|e| fail(doing, e)),
                Err(e) => {
                    let _ = self
                        .0
                        .execute_batch("ROLLBACK TO errsnap_sql; RELEASE errsnap_sql");
                    Err(e)
                }
            };
        }
        self.0
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| fail(doing, e))?;
        match f(&mut Lite(self.0)) {
            Ok(()) => self.0.execute_batch("COMMIT").map_err(|e| {
                let _ = self.0.execute_batch("ROLLBACK");
                fail(doing, e)
            }),
            Err(e) => {
                let _ = self.0.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::params;

    #[test]
    // Long by design: one table taken through every method of `Conn` in
    // turn (execute, map with lists, query_opt, one, each, transactions and
    // savepoints), each step counting on the rows the ones before left.
    fn statements_run_with_errsnaps_values_and_lists() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, on_ INTEGER, r REAL, b BLOB)",
        )
        .unwrap();
        let mut lite = Lite(&c);
        let conn: &mut dyn Conn = &mut lite;
        for (name, on) in [("a", true), ("b", false), ("c", true)] {
            conn.execute(
                "adding",
                "INSERT INTO t (name, on_, r, b) VALUES (?1, ?2, ?3, ?4)",
                params![name, on, 1.5, Value::Bytes(vec![0, 1])],
            )
            .unwrap();
        }
        let names = conn
            .map(
                "listing",
                &format!(
                    "SELECT name FROM t WHERE {} AND on_ ORDER BY id",
                    Dialect::Sqlite.any("name", 1)
                ),
                params![vec!["a".to_owned(), "b".to_owned()]],
                |r| r.get::<String>(0),
            )
            .unwrap();
        assert_eq!(names, ["a"]);
        let ids = conn
            .map(
                "listing",
                &format!("SELECT id FROM t WHERE {}", Dialect::Sqlite.any("id", 1)),
                params![vec![2i64, 3]],
                |r| r.get::<i64>(0),
            )
            .unwrap();
        assert_eq!(ids, [2, 3]);
        let r = conn
            .query_opt(
                "one",
                "SELECT name, on_, r, b, NULL FROM t WHERE id = ?1",
                params![1],
            )
            .unwrap()
            .unwrap();
        assert_eq!(r.get::<String>(0).unwrap(), "a");
        assert!(r.get::<bool>(1).unwrap());
        assert_eq!(r.get::<f64>(2).unwrap(), 1.5);
        assert_eq!(r.get::<Vec<u8>>(3).unwrap(), [0, 1]);
        assert_eq!(r.get::<Option<String>>(4).unwrap(), None);
        assert_eq!(
            conn.one::<i64>("count", "SELECT count(*) FROM t", params![])
                .unwrap(),
            3
        );
        // each stops when asked.
        let mut seen = 0;
        conn.each("walk", "SELECT id FROM t", params![], &mut |_| {
            seen += 1;
            Ok(false)
        })
        .unwrap();
        assert_eq!(seen, 1);
        // A failed transaction leaves nothing; a nested one is a savepoint.
        let e = conn.transaction("failing", &mut |c| {
            c.execute("x", "DELETE FROM t", params![])?;
            c.execute("y", "INSERT INTO nowhere VALUES (1)", params![])?;
            Ok(())
        });
        assert!(e.unwrap_err().to_string().contains("y"));
        assert_eq!(
            conn.one::<i64>("count", "SELECT count(*) FROM t", params![])
                .unwrap(),
            3
        );
        let n = conn
            .in_transaction("outer", |c| {
                c.execute("d", "DELETE FROM t WHERE id = 1", params![])?;
                let inner = c.transaction("inner", &mut |c| {
                    c.execute("d", "DELETE FROM t WHERE id = 2", params![])?;
                    c.execute("bad", "SELECT * FROM nowhere", params![])?;
                    Ok(())
                });
                assert!(inner.is_err());
                c.one::<i64>("count", "SELECT count(*) FROM t", params![])
            })
            .unwrap();
        assert_eq!(n, 2, "the inner failure undid only its own part");
        assert_eq!(
            conn.one::<i64>("count", "SELECT count(*) FROM t", params![])
                .unwrap(),
            2
        );
        assert_eq!(conn.dialect(), Dialect::Sqlite);
    }
}
