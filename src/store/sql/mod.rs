//! The SQL layer every backend shares: a connection ([`Conn`]) that runs
//! statements with errsnap's own values ([`Value`]) and returns rows of
//! them, and a [`Dialect`] for the little that differs in the text of a
//! statement. Statements are written once, with numbered `?N` parameters
//! (PostgreSQL's connection turns them into `$N`); the queries, row
//! mappings, outbox and read side written over it serve every backend.
//! A backend keeps only what truly differs: its schema and migrations,
//! connecting, and the batch insert.

pub(crate) mod alerts;
pub(crate) mod backend;
mod detail;
pub(crate) mod grouping;
pub(crate) mod insert;
pub(crate) mod items;
pub(crate) mod maintenance;
pub(crate) mod merge;
pub(crate) mod monitors;
pub(crate) mod outbox;
mod query;
pub(crate) mod read;
pub(crate) mod recorder;
pub(crate) mod regroup;
pub(crate) mod report;
mod rows;
pub(crate) mod runs;
mod value;
pub(crate) mod writer;

pub(crate) use value::{params, FromValue, Row, ToValue, Value};

use crate::error::{Error, ErrorKind, Result};

/// A connection (or a transaction on one) that runs errsnap's statements.
/// Errors name what was being done (`doing`) and the database, never a
/// secret; each backend classifies its own (a lock held elsewhere, a
/// serialization failure, a damaged file) for the writer.
pub(crate) trait Conn {
    /// Which SQL the database speaks.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<u64>;
    /// Runs a query and calls `each` with every row, as they come, until it
    /// returns `false`.
    fn each(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> Result<bool>,
    ) -> Result<()>;
    /// Runs `f` in a transaction, committed when it returns `Ok`.
    fn transaction(
        &mut self,
        doing: &str,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<()>,
    ) -> Result<()>;
}

impl dyn Conn + '_ {
    /// Every row of a query.
    pub(crate) fn query(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        self.each(doing, sql, params, &mut |r| {
            rows.push(r);
            Ok(true)
        })?;
        Ok(rows)
    }

    /// Every row of a query, mapped.
    pub(crate) fn map<T>(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each(doing, sql, params, &mut |r| {
            out.push(f(&r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<Row>> {
        let mut first = None;
        self.each(doing, sql, params, &mut |r| {
            first = Some(r);
            Ok(false)
        })?;
        Ok(first)
    }

    /// The first column of the first row: a count, a `max`, an `EXISTS`.
    ///
    /// # Errors
    /// The query fails or returns no row.
    pub(crate) fn one<T: FromValue>(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<T> {
        match self.query_opt(doing, sql, params)? {
            Some(r) => r.get(0),
            None => Err(Error::new(ErrorKind::Storage {
                context: format!("{doing}: the query returned no row"),
            })),
        }
    }

    /// Runs an `INSERT` of one row into a table with an `id` column (with
    /// an [`Dialect::upsert`] made with `id` where it may find the row
    /// there already); the row's id.
    pub(crate) fn insert_id(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<i64> {
        if self.dialect() == Dialect::Mysql {
            self.execute(doing, sql, params)?;
            return self.one(doing, "SELECT LAST_INSERT_ID()", &[]);
        }
        self.one(doing, &format!("{sql} RETURNING id"), params)
    }

    /// Runs `f` in a transaction and returns what it made.
    pub(crate) fn in_transaction<T>(
        &mut self,
        doing: &str,
        f: impl FnOnce(&mut dyn Conn) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.transaction(doing, &mut |c| {
            if let Some(f) = f.take() {
                out = Some(f(c)?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| {
            Error::new(ErrorKind::Storage {
                context: format!("{doing}: the transaction did not run"),
            })
        })
    }
}

/// Which SQL a database speaks, for the parts of a statement that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
    /// MySQL 8 and MariaDB 10.6 or later, in a session with ANSI quotes
    /// and `||` (`store::mysql::connect`).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    Mysql,
}

/// A row lock a statement takes where the database has them (SQLite's
/// writer holds the whole file instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// `FOR UPDATE`.
    Update,
    /// `FOR NO KEY UPDATE`: a row whose key others still reference.
    NoKeyUpdate,
    /// `FOR UPDATE SKIP LOCKED`: rows another process holds are skipped.
    SkipLocked,
    /// `FOR UPDATE OF alias`: only that table's rows of a join.
    UpdateOf(&'static str),
}

impl Dialect {
    /// `col` is one of the list given as parameter `n`.
    pub(crate) fn any(self, col: &str, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("{col} IN (SELECT value FROM json_each(?{n}))"),
            Dialect::Postgres => format!("{col} = ANY(?{n})"),
            // The connection spreads the list into `?, ?, ?`.
            Dialect::Mysql => format!("{col} IN (?{n})"),
        }
    }

    /// The lock clause ending a `SELECT` (empty where there is none).
    pub(crate) fn lock(self, lock: Lock) -> String {
        match (self, lock) {
            (Dialect::Sqlite, _) => String::new(),
            (Dialect::Postgres, Lock::Update) => " FOR UPDATE".into(),
            (Dialect::Postgres, Lock::NoKeyUpdate) => " FOR NO KEY UPDATE".into(),
            (Dialect::Postgres, Lock::SkipLocked) => " FOR UPDATE SKIP LOCKED".into(),
            (Dialect::Postgres, Lock::UpdateOf(alias)) => format!(" FOR UPDATE OF {alias}"),
            // MariaDB has no `OF` and no weaker row lock: the joined rows
            // are locked too.
            (Dialect::Mysql, Lock::SkipLocked) => " FOR UPDATE SKIP LOCKED".into(),
            (Dialect::Mysql, _) => " FOR UPDATE".into(),
        }
    }

    /// `haystack` holds the text parameter `p`, whatever the case.
    pub(crate) fn contains_ci(self, haystack: &str, p: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr(lower({haystack}), lower({p})) > 0"),
            Dialect::Postgres => format!("strpos(lower({haystack}), lower({p})) > 0"),
            Dialect::Mysql => format!("locate(lower({p}), lower({haystack})) > 0"),
        }
    }

    /// `a` equals `b`, a NULL equal to a NULL.
    pub(crate) fn same(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{a} IS {b}"),
            Dialect::Postgres => format!("{a} IS NOT DISTINCT FROM {b}"),
            Dialect::Mysql => format!("{a} <=> {b}"),
        }
    }

    /// The greater of two values.
    pub(crate) fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("max({a}, {b})"),
            Dialect::Postgres => format!("greatest({a}, {b})"),
            // MySQL's `greatest` is NULL when either is; PostgreSQL's
            // skips a NULL.
            Dialect::Mysql => format!("greatest(coalesce({a}, {b}), coalesce({b}, {a}))"),
        }
    }

    /// The lesser of two values (neither NULL).
    pub(crate) fn least(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("min({a}, {b})"),
            Dialect::Postgres | Dialect::Mysql => format!("least({a}, {b})"),
        }
    }

    /// The UTC day (`YYYY-MM-DD`) of a time in milliseconds.
    pub(crate) fn day_of(self, ms: &str) -> String {
        match self {
            Dialect::Sqlite => format!("strftime('%Y-%m-%d', {ms} / 1000, 'unixepoch')"),
            Dialect::Postgres => {
                format!("to_char(to_timestamp({ms} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
            }
            // The session's time zone is UTC.
            Dialect::Mysql => format!("date_format(from_unixtime({ms} DIV 1000), '%Y-%m-%d')"),
        }
    }

    /// The clause making an `INSERT` into `table` an upsert on the unique
    /// columns `conflict`: `sets` (assignments written as PostgreSQL reads
    /// them: `col = excluded.col`, the old row as `table.col`) or, empty,
    /// nothing. With `id`, MySQL's `LAST_INSERT_ID()` names the row either
    /// way (see `insert_id`).
    pub(crate) fn upsert(self, table: &str, conflict: &str, sets: &str, id: bool) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres if sets.is_empty() => {
                format!("ON CONFLICT ({conflict}) DO NOTHING")
            }
            Dialect::Sqlite | Dialect::Postgres => {
                format!("ON CONFLICT ({conflict}) DO UPDATE SET {sets}")
            }
            Dialect::Mysql => {
                let mut sets = mysql_assignments(&sets.replace(&format!("{table}."), ""));
                if id {
                    if !sets.is_empty() {
                        sets.push_str(", ");
                    }
                    sets.push_str("id = LAST_INSERT_ID(id)");
                } else if sets.is_empty() {
                    let first = conflict.split(',').next().unwrap_or(conflict).trim();
                    sets = format!("{first} = {first}");
                }
                format!("ON DUPLICATE KEY UPDATE {sets}")
            }
        }
    }

    /// `expr` as an integer (PostgreSQL types a parameter by it).
    pub(crate) fn cast_int(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS SIGNED)"),
            _ => format!("CAST({expr} AS BIGINT)"),
        }
    }

    /// `expr` as text.
    pub(crate) fn cast_text(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// `a` divided by `b`, both integers, as an integer (MySQL's `/` gives
    /// a decimal).
    pub(crate) fn int_div(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Mysql => format!("{a} DIV {b}"),
            _ => format!("{a} / {b}"),
        }
    }

    /// `expr DESC`, NULLs last (MySQL has no `NULLS LAST`: they sort
    /// first there when descending).
    pub(crate) fn desc_nulls_last(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("{expr} IS NULL, {expr} DESC"),
            _ => format!("{expr} DESC NULLS LAST"),
        }
    }

    /// Whether rows can be locked one by one (else a writer holds the
    /// whole database, as SQLite's does).
    pub(crate) fn has_row_locks(self) -> bool {
        self != Dialect::Sqlite
    }

    /// A statement taking a lock, named by the integer parameter `?1`, for
    /// the rest of the transaction (none where the writer holds the whole
    /// database).
    pub(crate) fn advisory_lock(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(?1)"),
            // A row of `errsnap_locks`, made if missing, locked until the
            // transaction ends.
            Dialect::Mysql => {
                Some("INSERT INTO errsnap_locks (id) VALUES (?1) ON DUPLICATE KEY UPDATE id = id")
            }
        }
    }
}

/// `excluded.col` as MySQL's `VALUES(col)`.
fn mysql_assignments(sets: &str) -> String {
    let mut out = String::with_capacity(sets.len());
    let mut rest = sets;
    while let Some(i) = rest.find("excluded.") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "excluded.".len()..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"'))
            .unwrap_or(after.len());
        out.push_str(&format!("VALUES({})", &after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `?N` parameters as PostgreSQL's `$N`, outside quoted text.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let _ = each_param(sql, &mut out, |n, out| {
        out.push_str(&format!("${n}"));
        Ok(())
    });
    out
}

/// Copies `sql` to `out`, each numbered parameter `?N` outside quoted text
/// (`'...'`, `"..."`, `` `...` ``) written by `param` instead.
///
/// # Errors
/// Those of `param`.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn each_param(
    sql: &str,
    out: &mut String,
    mut param: impl FnMut(usize, &mut String) -> Result<()>,
) -> Result<()> {
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                param(n, out)?;
            }
            None => out.push(c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_become_dollars_outside_quotes() {
        assert_eq!(
            dollar_params(
                "SELECT a FROM t WHERE x = ?1 AND y IN (?2, ?12) AND z = '?3' AND \"?4\" = ?5"
            ),
            "SELECT a FROM t WHERE x = $1 AND y IN ($2, $12) AND z = '?3' AND \"?4\" = $5"
        );
        assert_eq!(dollar_params("a ? b"), "a ? b", "a bare ? is left alone");
        assert_eq!(dollar_params("'it''s ?1' ?2"), "'it''s ?1' $2");
    }

    #[test]
    fn the_dialects_differ_only_where_they_must() {
        assert_eq!(
            Dialect::Sqlite.any("channel", 2),
            "channel IN (SELECT value FROM json_each(?2))"
        );
        assert_eq!(Dialect::Postgres.any("channel", 2), "channel = ANY(?2)");
        assert_eq!(Dialect::Sqlite.lock(Lock::SkipLocked), "");
        assert_eq!(
            Dialect::Postgres.lock(Lock::SkipLocked),
            " FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(
            Dialect::Postgres.lock(Lock::UpdateOf("a")),
            " FOR UPDATE OF a"
        );
        assert!(Dialect::Postgres.has_row_locks() && !Dialect::Sqlite.has_row_locks());
        assert!(Dialect::Sqlite.advisory_lock().is_none());
        assert!(Dialect::Postgres.advisory_lock().unwrap().contains("?1"));
        assert_eq!(
            Dialect::Postgres.lock(Lock::NoKeyUpdate),
            " FOR NO KEY UPDATE"
        );
    }
}
