//! `errsnap`: browse, export, retain and check an errsnap database.
//!
//! Install with `cargo install errsnap --features cli` (or, from a clone,
//! `cargo install --path . --features cli`); run `errsnap --help`.

mod args;
mod cmd;
mod export;
mod output;
mod secrets;
mod serve;
mod term;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use errsnap::db::{Database, EventFilter};

use crate::args::{Cli, Command, Filters};
use crate::output::{now_ms, parse_time, Out};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`errsnap events | head`) is not an error.
            if e.chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("errsnap: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}

pub(crate) fn open(cli: &Cli) -> Result<Database> {
    open_at(&cli.db, cli.env_file.as_deref())
}

/// Opens the database at `db` (a path, or a PostgreSQL URL whose settings
/// come from `env_file`, else `./.env`).
pub(crate) fn open_at(
    db: &std::path::Path,
    env_file: Option<&std::path::Path>,
) -> Result<Database> {
    if let Some(url) = server_url(db) {
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        return Ok(Database::open_url(url, &settings_from(env_file)?)?);
        #[cfg(not(any(feature = "postgres", feature = "mysql")))]
        {
            let _ = (url, env_file);
            bail!("a database server needs errsnap built with the `postgres` or `mysql` feature");
        }
    }
    if std::fs::symlink_metadata(db).is_err() {
        bail!(
            "no database at {}: run your program once (it creates the file), or point at one \
             with --db PATH or ERRSNAP_DB_PATH",
            db.display()
        );
    }
    Database::open(db).with_context(|| format!("cannot open {}", db.display()))
}

/// The `--db` value when it is a PostgreSQL URL (never printed: it may
/// hold a password; messages name `Database::path`, which has none).
/// `db` when it is a server's URL (PostgreSQL, MySQL, MariaDB).
fn server_url(db: &std::path::Path) -> Option<&str> {
    db.to_str().filter(|s| {
        ["postgres://", "postgresql://", "mysql://", "mariadb://"]
            .iter()
            .any(|p| s.starts_with(p))
    })
}

/// What messages call the database: its path, or the server without the
/// password.
pub(crate) fn db_name(cli: &Cli, db: &Database) -> String {
    if server_url(&cli.db).is_some() {
        db.path().display().to_string()
    } else {
        cli.db.display().to_string()
    }
}

/// The settings: `--env-file`, else `./.env`, with the environment on top.
/// A writer of the store for monitors (`errsnap monitor run`, `check`,
/// `serve`): the logger `monitors`, with the settings' channels. Its
/// writer judges every monitor when it opens the store and on each
/// heartbeat.
pub(crate) fn monitors_logger(cli: &Cli) -> Result<errsnap::EventLogger> {
    let builder = errsnap::EventLogger::builder()
        .name("monitors")
        .config(settings(cli)?);
    let builder = match server_url(&cli.db) {
        Some(url) => builder.database_url(url),
        None => builder.db_path(&cli.db),
    };
    builder.build().context("starting errsnap's writer")
}

fn settings(cli: &Cli) -> Result<errsnap::Config> {
    settings_from(cli.env_file.as_deref())
}

fn settings_from(env_file: Option<&std::path::Path>) -> Result<errsnap::Config> {
    Ok(match env_file {
        Some(p) => errsnap::Config::from_dotenv_path(p)?,
        None => errsnap::Config::from_env()?,
    })
}

fn filter(f: &Filters) -> Result<EventFilter> {
    let now = now_ms();
    let mut out = EventFilter::default();
    out.group = f.group;
    out.logger = f.logger.clone();
    out.min_level = f.level;
    out.since = f
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()
        .context("--since")?;
    out.until = f
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()
        .context("--until")?;
    out.grep = f.grep.clone();
    out.file = match &f.file {
        None => None,
        Some(spec) => match spec.rsplit_once(':') {
            Some((path, line)) if line.chars().all(|c| c.is_ascii_digit()) && !line.is_empty() => {
                Some((path.to_owned(), Some(line.parse().context("--file LINE")?)))
            }
            _ => Some((spec.clone(), None)),
        },
    };
    Ok(out)
}
fn run(cli: Cli) -> Result<ExitCode> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let long_lived = matches!(cli.command, Command::Serve(_));
    if let Some(warning) = secrets::check_db_arg(&argv, &cli.db, long_lived)? {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("errsnap: warning: {warning}");
        }
    }
    use cmd::{browse, check, maintain, monitor, report, show, triage};
    // Before the output is taken: the job's output passes through it.
    if let Command::Monitor(a) = &cli.command {
        return match &a.action {
            args::MonitorAction::Run(r) => monitor::run(&cli, r),
        };
    }
    let out = &mut Out::new(cli.color);
    match &cli.command {
        Command::Groups(a) => browse::groups(&cli, a, out),
        Command::Events(a) => browse::events(&cli, a, out),
        Command::Show(a) => show::show(&cli, a, out),
        Command::Tail(a) => browse::tail(&cli, a, out),
        Command::Stats(a) => report::stats(&cli, a, out),
        Command::Host => report::host(&cli, out),
        Command::Runs(a) => report::runs(&cli, a, out),
        Command::Releases => report::releases(&cli, out),
        Command::Export(a) => maintain::export(&cli, a, out),
        Command::Purge(a) => maintain::purge(&cli, a, out),
        Command::Resolve(a) => maintain::resolve(&cli, a, out),
        Command::Symbolicate(a) => maintain::symbolicate(&cli, a, out),
        Command::Merge(a) => triage::merge(&cli, a, out),
        Command::Unmerge(a) => triage::unmerge(&cli, a, out),
        Command::Regroup(a) => triage::regroup(&cli, a, out),
        Command::Blame(a) => triage::blame(&cli, a, out),
        Command::Check => check::check(&cli, out),
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        Command::Migrate => check::migrate(&cli, out),
        Command::TestAlert => check::test_alert(&cli, out),
        Command::Serve(a) => serve::serve(&cli, a),
        Command::Monitor(_) => unreachable!("handled above"),
        Command::Monitors(a) => monitor::list(&cli, a, out),
    }
}
