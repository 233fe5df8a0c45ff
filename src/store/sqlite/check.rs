//! `errsnap check`: whether a database file is usable and healthy, read
//! without changing it.

use std::path::Path;

use super::read::{err, SqliteReader};
use super::schema;
use crate::error::Result;
use crate::store::read::CheckReport;

impl SqliteReader {
    /// Checks the database at `path` without changing it: whether errsnap
    /// can use it at all (another program's file, an unknown schema), its
    /// integrity, alerts waiting or failed, the spool, lines that could not
    /// be imported, and the file's permissions. Never fails: what cannot be
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
                if let Err(e) = db.check_into(&mut r) {
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
        let spool = crate::store::spool::state(path);
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
        r
    }

    fn check_into(&self, r: &mut CheckReport) -> Result<()> {
        r.integrity = self
            .conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(err("checking integrity"))?;
        if r.integrity != ["ok"] {
            r.problems.push(format!(
                "integrity check failed: {}",
                r.integrity.join("; ")
            ));
        }
        let count = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(err("counting"))
        };
        r.schema_version = Some(count("PRAGMA user_version")?);
        r.pending_alerts =
            count("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")?;
        r.failed_alerts = count("SELECT count(*) FROM outbox WHERE status = 'failed'")?;
        if r.failed_alerts > 0 {
            r.problems
                .push(format!("{} alerts failed for good", r.failed_alerts));
        }
        // A channel whose deliveries fail (a login refused, a certificate
        // not trusted, a server down) holds its alerts: say which, how many
        // wait, and the last error (errors never hold a secret).
        let stuck: Vec<(String, i64, Option<String>)> = self
            .conn
            .prepare(
                "SELECT o.channel, count(*),
                        (SELECT last_error FROM outbox l
                         WHERE l.channel = o.channel AND l.last_error IS NOT NULL
                           AND l.status IN ('pending', 'sending')
                         ORDER BY l.attempts DESC, l.id DESC LIMIT 1)
                 FROM outbox o
                 WHERE o.status IN ('pending', 'sending')
                 GROUP BY o.channel
                 HAVING max(o.attempts) > 0
                 ORDER BY o.channel",
            )
            .and_then(|mut s| {
                s.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect()
            })
            .map_err(err("reading stuck alerts"))?;
        for (channel, waiting, last_error) in stuck {
            r.problems.push(format!(
                "alerts on channel {channel} are not getting through: {waiting} waiting; \
                 last error: {}",
                last_error.as_deref().unwrap_or("unknown")
            ));
        }
        Ok(())
    }
}
