//! Logger names: validated SQL identifiers.

use crate::error::{Error, ErrorKind, Result};

/// Tables and views errsnap owns; a logger may not take these names.
pub(crate) const RESERVED_NAMES: &[&str] = &[
    "events",
    "event_groups",
    "backtraces",
    "frames",
    "hosts",
    "snapshots",
    "hw_logs",
    "loggers",
    "counters",
    "outbox",
    "errsnap_meta",
];

/// SQLite's keywords (<https://sqlite.org/lang_keywords.html>).
const SQLITE_KEYWORDS: &[&str] = &[
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTNULL",
    "NULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
];

/// Checks a logger name: `[A-Za-z_][A-Za-z0-9_]{0,63}`, not an SQLite
/// keyword, not one of errsnap's own tables, not `sqlite_*`.
pub(crate) fn validate_logger_name(name: &str) -> Result<()> {
    let reject = |reason: &str| {
        Err(Error::new(ErrorKind::InvalidLoggerName {
            name: name.chars().take(80).collect(),
            reason: reason.to_owned(),
        }))
    };
    if name.is_empty() {
        return reject("it is empty");
    }
    if name.len() > 64 {
        return reject("it is longer than 64 characters");
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return reject("it must start with an ASCII letter or '_'");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return reject(&format!(
            "{bad:?} is not allowed: use ASCII letters, digits and '_'"
        ));
    }
    if SQLITE_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
        return reject("it is an SQL keyword");
    }
    if RESERVED_NAMES.iter().any(|k| k.eq_ignore_ascii_case(name)) {
        return reject("it is one of errsnap's own tables");
    }
    if name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_") {
        return reject("names starting with sqlite_ are reserved by SQLite");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_identifiers() {
        for ok in ["error_table", "_x", "A1", &"a".repeat(64)] {
            assert!(validate_logger_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_the_rest_with_a_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("x; DROP TABLE events", "not allowed"),
            ("events", "errsnap's own"),
            ("EVENTS", "errsnap's own"),
            ("select", "keyword"),
            ("sqlite_master", "reserved by SQLite"),
            ("1abc", "start with"),
            ("tablé", "not allowed"),
            ("tаble", "not allowed"), // Cyrillic 'а'
            (&"a".repeat(200), "longer than 64"),
        ] {
            let err = validate_logger_name(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
