//! Health: `check`, `test-alert`, `migrate`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use errsnap::db::Database;

use crate::args::Cli;
use crate::output::Out;
use crate::settings;
use crate::term::safe_line;

/// Whether the store has monitors declared.
pub(crate) fn has_monitors(cli: &Cli) -> bool {
    crate::open(cli)
        .and_then(|d| Ok(d.monitors(0)?))
        .is_ok_and(|m| !m.is_empty())
}

/// Opens the store as a writer would (the settings' channels), which
/// judges every monitor, and waits for what that raised to be delivered.
fn judge_monitors(cli: &Cli) -> Result<()> {
    let logger = crate::monitors_logger(cli)?;
    logger.flush(std::time::Duration::from_secs(10));
    Ok(())
}

/// `errsnap check`: the database, spool, alerts and settings; exit 2 when not healthy.
// Long by design: gathers each part of the health report (crash files, the
// database, deliveries, settings warnings), then prints it as JSON or one
// line per part in the order the text report shows them.
pub(crate) fn check(cli: &Cli, out: &mut Out) -> Result<ExitCode> {
    // Crash files left by processes that are gone become events first (an
    // existing database only: checking never creates one).
    let crashes = cli
        .db
        .exists()
        .then(|| errsnap::db::import_crashes(&cli.db).map_err(|e| e.to_string()));
    let r = match crate::server_url(&cli.db) {
        Some(_) => crate::open(cli)?.check()?,
        None => Database::check_path(&cli.db),
    };
    // Monitors are judged (runs missed, too long, or whose process died)
    // by a writer of the store: its events go out through the channels of
    // the settings. From a timer, this is what notices a job that did not
    // run where nothing else has the store open. Only in a store whose
    // integrity is whole and that has monitors (a writer never opens,
    // moves or migrates a file that `check` only reports on).
    let sound = r.schema_version.is_some() && r.integrity.iter().all(|i| i == "ok");
    let judged = if sound && has_monitors(cli) {
        judge_monitors(cli)
            .err()
            .map(|e| format!("monitors not judged: {e:#}"))
    } else {
        None
    };
    // Each channel's deliveries (alerts and forwarded events), when the
    // database can be read.
    let deliveries = if r.schema_version.is_some() {
        crate::open(cli)
            .ok()
            .and_then(|d| d.deliveries().ok())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut warnings = match settings(cli) {
        Ok(c) => c.warnings().to_vec(),
        Err(e) => vec![format!("the settings cannot be read: {e}")],
    };
    warnings.extend(judged);
    match &crashes {
        Some(Ok(c)) => {
            warnings.extend(c.refused.iter().map(|r| format!("crash file refused: {r}")));
            if c.waiting > 0 {
                warnings.push(format!(
                    "{} crash files wait for the application's next start (its logger has a \
                     before_save hook only it can run)",
                    c.waiting
                ));
            }
        }
        // A database that cannot be opened is already a problem below.
        Some(Err(e)) if r.healthy() => warnings.push(format!("crash files not imported: {e}")),
        Some(Err(_)) => {}
        None => {}
    }
    if cli.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(Ok(c)) = &crashes {
            v["crashes"] = serde_json::to_value(c)?;
        }
        v["deliveries"] = serde_json::to_value(&deliveries)?;
        out.json(&v)?;
    } else {
        let w = &mut out.w;
        if let Some(Ok(c)) = &crashes {
            writeln!(
                w,
                "crashes:        {} imported, {} linked to their panic, {} of running processes",
                c.imported, c.linked, c.running
            )?;
        }
        if !r.integrity.is_empty() {
            writeln!(w, "integrity:      {}", safe_line(&r.integrity.join("; ")))?;
        }
        writeln!(
            w,
            "schema version: {} (this errsnap: {})",
            r.schema_version.map_or("?".to_owned(), |v| v.to_string()),
            r.supported_version
        )?;
        writeln!(
            w,
            "alerts:         {} pending, {} failed",
            r.pending_alerts, r.failed_alerts
        )?;
        for c in &deliveries {
            write!(
                w,
                "  {:<14}{} pending, {} failed, {} sent",
                format!("{}:", safe_line(&c.channel)),
                c.pending,
                c.failed,
                c.sent
            )?;
            if let (Some(e), Some(at)) = (&c.last_error, c.last_error_at) {
                write!(
                    w,
                    "; last error ({}): {}",
                    crate::output::time(at),
                    safe_line(e)
                )?;
            }
            writeln!(w)?;
        }
        writeln!(
            w,
            "spool:          {} files, {} events waiting to be imported",
            r.spool_files, r.spool_events
        )?;
        for warning in r.warnings.iter().chain(&warnings) {
            writeln!(w, "warning: {}", safe_line(warning))?;
        }
        for problem in &r.problems {
            writeln!(w, "problem: {}", safe_line(problem))?;
        }
        writeln!(
            w,
            "{}",
            if r.healthy() {
                "healthy"
            } else {
                "NOT healthy"
            }
        )?;
    }
    Ok(if r.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `errsnap test-alert`: one alert through every configured channel.
pub(crate) fn test_alert(cli: &Cli, out: &mut Out) -> Result<ExitCode> {
    let config = settings(cli)?;
    for warning in config.warnings() {
        writeln!(out.w, "warning: {}", safe_line(warning))?;
    }
    let results = config.send_test_alert()?;
    if results.is_empty() {
        writeln!(out.w, "no alert channel is configured (see .env.example)")?;
        return Ok(ExitCode::from(1));
    }
    let mut failed = false;
    for (channel, r) in &results {
        match r {
            Ok(()) => writeln!(out.w, "{}: delivered", safe_line(channel))?,
            Err(e) => {
                failed = true;
                writeln!(
                    out.w,
                    "{}: FAILED: {}",
                    safe_line(channel),
                    safe_line(&e.to_string())
                )?;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `errsnap migrate --db postgres://...` (or `mysql://`): creates or
/// upgrades the schema.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn migrate(cli: &Cli, out: &mut Out) -> Result<ExitCode> {
    let Some(url) = crate::server_url(&cli.db) else {
        anyhow::bail!(
            "errsnap migrate takes a server's URL (--db postgres://... or mysql://...); \
             a database file is migrated by the first logger that opens it"
        );
    };
    let m = errsnap::db::migrate(url, &settings(cli)?)?;
    if cli.json {
        out.json(&m)?;
    } else {
        writeln!(
            out.w,
            "{}: schema version {} ({})",
            safe_line(&m.database),
            m.schema_version,
            if m.migrated {
                "migrated now"
            } else {
                "up to date"
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
