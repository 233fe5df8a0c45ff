//! Creating and upgrading the PostgreSQL schema: in one transaction under
//! `pg_advisory_xact_lock`, so that processes starting together (a fleet
//! rolling out) migrate once and the others find it done. Like the SQLite
//! file, a database is used only when it is errsnap's: tables named like
//! errsnap's without errsnap's record are refused, never written.

use super::connect::PgTarget;
use super::{MIGRATION_LOCK, MIN_WRITER, SCHEMA, SCHEMA_VERSION};
use crate::error::{Error, ErrorKind, Result};
use crate::settings::Config;

/// What [`migrate_postgres`] did (the name of [`crate::db::Migration`]
/// before MySQL).
pub type PgMigration = crate::store::read::Migration;

/// Connects to the PostgreSQL database at `url` and creates or upgrades
/// errsnap's schema in it (what `errsnap migrate` does, and every process
/// that opens the store). The password comes from the URL or
/// `ERRSNAP_DATABASE_PASSWORD`, trusted CAs from `sslrootcert` or
/// `ERRSNAP_TLS_CA_FILE` in `config`.
///
/// # Errors
/// The server cannot be reached or refuses the login; the database holds
/// tables named like errsnap's that are not errsnap's; its schema is newer
/// than this build writes. No message holds the password.
pub fn migrate_postgres(url: &str, config: &Config) -> Result<crate::store::read::Migration> {
    let target = target_of(url, config)?;
    let mut client = target.connect()?;
    let (schema_version, migrated) = migrate(&mut client, &target)?;
    Ok(crate::store::read::Migration {
        database: target.display().to_owned(),
        schema_version,
        migrated,
    })
}

/// The target named by `url`, with the password and CA file `config` gives.
pub(crate) fn target_of(url: &str, config: &Config) -> Result<PgTarget> {
    let password = config.get("ERRSNAP_DATABASE_PASSWORD");
    let ca = config
        .get(crate::settings::TLS_CA_FILE_KEY)
        .filter(|s| !s.is_empty())
        .map(std::path::PathBuf::from);
    PgTarget::parse(url, password, ca)
}

/// Creates or upgrades the schema; the version after, and whether this
/// call changed it.
// Long by design: one transaction under the migration lock: read the
// recorded version, then one arm per case (none: create, unless the tables
// are another program's; older; the same; newer).
pub(crate) fn migrate(client: &mut postgres::Client, target: &PgTarget) -> Result<(i64, bool)> {
    let fail = |e| target.error("migrating", e);
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail)?;
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('errsnap_meta') IS NOT NULL", &[])
        .map_err(fail)?
        .get(0);
    let version = if has_meta {
        tx.query_opt(
            "SELECT value FROM errsnap_meta WHERE key = 'schema_version'",
            &[],
        )
        .map_err(fail)?
        .and_then(|r| r.get::<_, String>(0).parse::<i64>().ok())
    } else {
        None
    };
    match version {
        None => {
            // Tables of ours by name but not by record: another program's.
            let theirs: Option<String> = tx
                .query_opt(
                    "SELECT c.relname::text FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema()
                       AND c.relname IN ('events', 'event_groups', 'outbox', 'runs')
                     LIMIT 1",
                    &[],
                )
                .map_err(fail)?
                .map(|r| r.get(0));
            if let Some(table) = theirs {
                return Err(Error::new(ErrorKind::Storage {
                    context: format!(
                        "{} has a table {table:?} but no errsnap schema record: \
                         not errsnap's, left untouched (give errsnap a database or schema of its own)",
                        target.display()
                    ),
                }));
            }
            tx.batch_execute(SCHEMA).map_err(fail)?;
            record(&mut tx).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok((SCHEMA_VERSION, true))
        }
        Some(v) if v < SCHEMA_VERSION => {
            // Every statement of the schema is idempotent: applied again,
            // it adds what the newer version has; then the summaries of
            // the events stored so far.
            tx.batch_execute(SCHEMA).map_err(fail)?;
            if v < 2 {
                super::summary::backfill(&mut tx, target)?;
            }
            record(&mut tx).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok((SCHEMA_VERSION, true))
        }
        Some(v) if v == SCHEMA_VERSION => Ok((v, false)),
        Some(v) => {
            let min_writer = tx
                .query_opt(
                    "SELECT value FROM errsnap_meta WHERE key = 'min_writer_version'",
                    &[],
                )
                .map_err(fail)?
                .and_then(|r| r.get::<_, String>(0).parse::<i64>().ok())
                .unwrap_or(v);
            if min_writer <= SCHEMA_VERSION {
                Ok((v, false))
            } else {
                Err(Error::new(ErrorKind::FutureSchema {
                    path: target.display().to_owned(),
                    found: v,
                    min_writer,
                    supported: SCHEMA_VERSION,
                }))
            }
        }
    }
}

/// Records this build's schema version and the oldest writer of it.
fn record(tx: &mut postgres::Transaction<'_>) -> std::result::Result<u64, postgres::Error> {
    tx.execute(
        "INSERT INTO errsnap_meta (key, value) VALUES
             ('schema_version', $1), ('min_writer_version', $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION.to_string(), &MIN_WRITER.to_string()],
    )
}
