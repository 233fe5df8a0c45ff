//! The shared SQL layer's connection on MySQL and MariaDB: `?N` made `?`
//! with the values in the order they stand (a parameter used twice is sent
//! twice), a list parameter spread into `?, ?, ?` (`Dialect::any` writes
//! `col IN (?N)`), statements prepared once per connection (the client's
//! cache), and values converted by the column the server describes (a TEXT
//! column reads as text, a BLOB as bytes, `sum()`'s DECIMAL as an integer).

use mysql::consts::ColumnType;
use mysql::prelude::Queryable;

use super::connect::MyTarget;
use crate::error::{Error, ErrorKind, Result};
use crate::store::sql::{each_param, Conn, Dialect, Row, Value};

/// The binary collation's number: a column of it holds bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// A connection, in a transaction `depth` levels deep.
pub(crate) struct MyConn<'a> {
    pub(crate) conn: &'a mut mysql::Conn,
    pub(crate) target: &'a MyTarget,
    pub(crate) depth: u32,
}

/// A statement's text for MySQL and its values in order.
pub(crate) fn positional(sql: &str, params: &[Value]) -> Result<(String, Vec<mysql::Value>)> {
    let mut out = String::with_capacity(sql.len());
    let mut values = Vec::with_capacity(params.len());
    each_param(sql, &mut out, |n, out| {
        let v = params.get(n.wrapping_sub(1)).ok_or_else(|| {
            Error::new(ErrorKind::Storage {
                context: format!("a statement names parameter ?{n} of {}", params.len()),
            })
        })?;
        match v {
            Value::Ints(list) if list.is_empty() => out.push_str("NULL"),
            Value::Texts(list) if list.is_empty() => out.push_str("NULL"),
            Value::Ints(list) => {
                out.push_str(&vec!["?"; list.len()].join(", "));
                values.extend(list.iter().map(|&i| mysql::Value::Int(i)));
            }
            Value::Texts(list) => {
                out.push_str(&vec!["?"; list.len()].join(", "));
                values.extend(
                    list.iter()
                        .map(|t| mysql::Value::Bytes(t.clone().into_bytes())),
                );
            }
            v => {
                out.push('?');
                values.push(to_mysql(v));
            }
        }
        Ok(())
    })?;
    Ok((out, values))
}

fn to_mysql(v: &Value) -> mysql::Value {
    match v {
        Value::Null => mysql::Value::NULL,
        Value::Int(i) => mysql::Value::Int(*i),
        Value::Real(f) => mysql::Value::Double(*f),
        Value::Text(s) => mysql::Value::Bytes(s.clone().into_bytes()),
        Value::Bytes(b) => mysql::Value::Bytes(b.clone()),
        Value::Bool(b) => mysql::Value::Int(i64::from(*b)),
        // Spread by `positional`; never one value.
        Value::Ints(_) | Value::Texts(_) => mysql::Value::NULL,
    }
}

/// A value of a row, read as the column says.
fn from_mysql(v: mysql::Value, column: &mysql::Column) -> Result<Value> {
    Ok(match v {
        mysql::Value::NULL => Value::Null,
        mysql::Value::Int(i) => Value::Int(i),
        mysql::Value::UInt(u) => Value::Int(i64::try_from(u).unwrap_or(i64::MAX)),
        mysql::Value::Float(f) => Value::Real(f64::from(f)),
        mysql::Value::Double(f) => Value::Real(f),
        mysql::Value::Bytes(b) => match column.column_type() {
            ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
                let s = String::from_utf8_lossy(&b);
                match s.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Real(s.parse::<f64>().map_err(|_| {
                        Error::new(ErrorKind::Storage {
                            context: format!("a DECIMAL value {s:?} is no number"),
                        })
                    })?),
                }
            }
            _ if column.character_set() == BINARY_CHARSET => Value::Bytes(b),
            _ => Value::Text(String::from_utf8(b).map_err(|_| {
                Error::new(ErrorKind::Storage {
                    context: format!("column {} holds text that is not UTF-8", column.name_str()),
                })
            })?),
        },
        other => {
            return Err(Error::new(ErrorKind::Storage {
                context: format!(
                    "column {} holds a date or time ({other:?}); errsnap stores times as numbers",
                    column.name_str()
                ),
            }))
        }
    })
}

impl Conn for MyConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn execute(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<u64> {
        let (sql, values) = positional(sql, params)?;
        let target = self.target;
        let result = self
            .conn
            .exec_iter(sql, values)
            .map_err(|e| target.error(doing, e))?;
        Ok(result.affected_rows())
    }

    fn each(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> Result<bool>,
    ) -> Result<()> {
        let (sql, values) = positional(sql, params)?;
        let target = self.target;
        let mut result = self
            .conn
            .exec_iter(sql, values)
            .map_err(|e| target.error(doing, e))?;
        for r in result.by_ref() {
            let r = r.map_err(|e| target.error(doing, e))?;
            let columns = r.columns();
            let mut raw = r.unwrap();
            let row = Row::read(columns.len(), |i| {
                from_mysql(
                    std::mem::replace(&mut raw[i], mysql::Value::NULL),
                    &columns[i],
                )
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
        let target = self.target;
        let depth = self.depth;
        let (begin, commit, rollback) = if depth == 0 {
            (
                "START TRANSACTION".to_owned(),
                "COMMIT".to_owned(),
                "ROLLBACK".to_owned(),
            )
        } else {
            (
                format!("SAVEPOINT errsnap_{depth}"),
                format!("RELEASE SAVEPOINT errsnap_{depth}"),
                format!("ROLLBACK TO SAVEPOINT errsnap_{depth}"),
            )
        };
        self.conn
            .query_drop(&begin)
            .map_err(|e| target.error(doing, e))?;
        let mut inner = MyConn {
            conn: &mut *self.conn,
            target,
            depth: depth + 1,
        };
        match f(&mut inner) {
            Ok(()) => self
                .conn
                .query_drop(&commit)
                .map_err(|e| target.error(doing, e)),
            Err(e) => {
                // The error that made it roll back is the one to report.
                let _ = self.conn.query_drop(&rollback);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_become_positional_and_lists_spread() {
        let (sql, values) = positional(
            "SELECT a FROM t WHERE x = ?2 AND y IN (?1) AND z = '?3' AND w = ?2 AND v IN (?3)",
            &[
                Value::Ints(vec![7, 8]),
                Value::Text("k".into()),
                Value::Texts(vec![]),
            ],
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT a FROM t WHERE x = ? AND y IN (?, ?) AND z = '?3' AND w = ? AND v IN (NULL)"
        );
        assert_eq!(
            values,
            vec![
                mysql::Value::Bytes(b"k".to_vec()),
                mysql::Value::Int(7),
                mysql::Value::Int(8),
                mysql::Value::Bytes(b"k".to_vec()),
            ]
        );
        let e = positional("SELECT ?4", &[Value::Null])
            .unwrap_err()
            .to_string();
        assert!(e.contains("?4"), "{e}");
    }
}
