//! Creating the MySQL / MariaDB schema: DDL commits by itself there, so
//! the schema is made in idempotent steps (`schema.sql`) under a named
//! lock (`GET_LOCK`), and the version recorded last; processes starting
//! together make it once, the others wait and find it done, and one that
//! died halfway leaves steps the next one finishes. Like the SQLite file, a
//! database is used only when it is errsnap's: tables named like errsnap's
//! without errsnap's record are refused, never written.

use mysql::prelude::Queryable;

use super::connect::MyTarget;
use crate::error::{Error, ErrorKind, Result};

/// The schema this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 5;
/// The oldest build that may write a database of [`SCHEMA_VERSION`]
/// (version 4 would take an outbox row that is not an event's for an
/// event's, and fail it).
const MIN_WRITER: i64 = 5;
const SCHEMA: &str = include_str!("schema.sql");
/// The named lock every migrating process takes (per server).
const LOCK: &str = "errsnap_migrate";

/// The schema's statements for this server: the key collation MariaDB or
/// MySQL 8 has, the case-insensitive one of searched text.
pub(crate) fn statements(mariadb: bool) -> Vec<String> {
    let key = if mariadb {
        "utf8mb4_nopad_bin"
    } else {
        "utf8mb4_0900_bin"
    };
    let text = if mariadb {
        "utf8mb4_unicode_ci"
    } else {
        "utf8mb4_0900_ai_ci"
    };
    SCHEMA
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{KEY}", key).replace("{TEXT}", text))
        .collect()
}

/// Creates or upgrades the schema; the version after, and whether this
/// call changed it.
///
/// # Errors
/// The lock is not had within a minute, the database holds tables named
/// like errsnap's that are not errsnap's, or its schema is newer than this
/// build writes.
pub(crate) fn migrate(conn: &mut mysql::Conn, target: &MyTarget) -> Result<(i64, bool)> {
    let fail = |e| target.error("migrating", e);
    let got: Option<i64> = conn
        .exec_first("SELECT GET_LOCK(?, 60)", (LOCK,))
        .map_err(fail)?
        .flatten();
    if got != Some(1) {
        return Err(Error::new(ErrorKind::Storage {
            context: format!(
                "migrating {}: another process held the migration lock for a minute",
                target.display()
            ),
        }));
    }
    let out = migrate_locked(conn, target);
    let _ = conn.exec_drop("SELECT RELEASE_LOCK(?)", (LOCK,));
    out
}

fn migrate_locked(conn: &mut mysql::Conn, target: &MyTarget) -> Result<(i64, bool)> {
    let fail = |e| target.error("migrating", e);
    let tables: Vec<String> = conn
        .query(
            "SELECT table_name FROM information_schema.tables
             WHERE table_schema = DATABASE()
               AND table_name IN ('errsnap_meta', 'events', 'event_groups', 'outbox', 'runs')",
        )
        .map_err(fail)?;
    let version: Option<i64> = if tables.iter().any(|t| t == "errsnap_meta") {
        conn.query_first::<String, _>(
            r#"SELECT value FROM errsnap_meta WHERE "key" = 'schema_version'"#,
        )
        .map_err(fail)?
        .and_then(|v| v.parse().ok())
    } else {
        None
    };
    match version {
        None => {
            // Tables of ours by name but not by record: another program's.
            if let Some(table) = tables.iter().find(|t| *t != "errsnap_meta") {
                return Err(Error::new(ErrorKind::Storage {
                    context: format!(
                        "{} has a table {table:?} but no errsnap schema record: not errsnap's, \
                         left untouched (give errsnap a database of its own)",
                        target.display()
                    ),
                }));
            }
        }
        Some(v) if v >= SCHEMA_VERSION => {
            let min_writer = conn
                .query_first::<String, _>(
                    r#"SELECT value FROM errsnap_meta WHERE "key" = 'min_writer_version'"#,
                )
                .map_err(fail)?
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(v);
            if min_writer > SCHEMA_VERSION {
                return Err(Error::new(ErrorKind::FutureSchema {
                    path: target.display().to_owned(),
                    found: v,
                    min_writer,
                    supported: SCHEMA_VERSION,
                }));
            }
            return Ok((v, false));
        }
        Some(_) => {}
    }
    let server: String = conn
        .query_first("SELECT VERSION()")
        .map_err(fail)?
        .unwrap_or_default();
    for stmt in statements(server.contains("MariaDB")) {
        match conn.query_drop(&stmt) {
            Ok(()) => {}
            // A step of an upgrade already made (by the table's creation,
            // or by a process that died after it).
            Err(mysql::Error::MySqlError(e))
                if stmt.starts_with("ALTER TABLE") && matches!(e.code, 1060 | 1061) => {}
            Err(e) => return Err(fail(e)),
        }
    }
    conn.exec_drop(
        r#"INSERT INTO errsnap_meta ("key", value) VALUES
             ('application', 'errsnap'), ('schema_version', ?), ('min_writer_version', ?)
         ON DUPLICATE KEY UPDATE value = VALUES(value)"#,
        (SCHEMA_VERSION.to_string(), MIN_WRITER.to_string()),
    )
    .map_err(fail)?;
    Ok((SCHEMA_VERSION, true))
}
