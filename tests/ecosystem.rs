//! Fitting the Rust ecosystem (#14): anyhow and eyre errors, custom
//! grouping, report once, the test mode.

use std::time::Duration;

use errsnap::prelude::*;
use errsnap::{EventLogger, PushOptions};

use crate::util::{self, count, describe, open, run_child};

const T: Duration = Duration::from_secs(20);

/// Three layers, each adding context (see `child.rs`, "anyhow_chain").
#[cfg(feature = "anyhow")]
#[inline(never)]
fn open_settings(path: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    std::fs::read(path).with_context(|| format!("reading {path}"))
}

#[cfg(feature = "anyhow")]
#[inline(never)]
fn parse_settings(logger: &EventLogger) -> anyhow::Result<()> {
    use anyhow::Context;
    open_settings("/nonexistent/errsnap/app.toml")
        .report(logger)
        .context("parsing the settings")?;
    Ok(())
}

#[cfg(feature = "anyhow")]
#[inline(never)]
pub(crate) fn load_settings(logger: &EventLogger) -> anyhow::Result<()> {
    use anyhow::Context;
    parse_settings(logger)
        .report(logger)
        .context("loading the settings")
        .report(logger)
}

#[cfg(feature = "anyhow")]
#[test]
fn an_anyhow_error_keeps_its_chain_and_its_own_backtrace() {
    // See: issue #14 (1, 6)
    let (_d, db) = util::temp_db();
    let out = run_child("anyhow_chain", &db, &[("RUST_LIB_BACKTRACE", "1")]);
    assert!(out.status.success(), "{}", describe(&out));
    let conn = open(&db);
    // Reported at three layers: one event, with the outermost context.
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 1);
    let (chain, error_type): (String, String) = conn
        .query_row("SELECT error_chain, error_type FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let links: Vec<serde_json::Value> = serde_json::from_str(&chain).unwrap();
    let texts: Vec<&str> = links
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(texts[0], "loading the settings");
    assert_eq!(texts[1], "parsing the settings");
    assert_eq!(texts[2], "reading /nonexistent/errsnap/app.toml");
    assert!(texts[3].contains("No such file"), "{texts:?}");
    assert_eq!(error_type, "anyhow::Error");
    // The frames are where the error was made (open_settings), not where
    // it was reported.
    let functions: Vec<String> = conn
        .prepare(
            "SELECT f.function FROM frames f JOIN events e ON e.backtrace_id = f.backtrace_id
             WHERE f.in_app = 1 ORDER BY f.idx",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        functions
            .first()
            .is_some_and(|f| f.ends_with("open_settings")),
        "{functions:?}"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT value FROM counters WHERE name = 'deduplicated'"
        ),
        2
    );
}

#[cfg(feature = "anyhow")]
#[test]
fn capture_anyhow_without_a_backtrace_walks_this_stack() {
    use anyhow::Context;
    let (logger, captured) = EventLogger::for_tests();
    let err = std::fs::read("/nonexistent/x")
        .context("reading x")
        .unwrap_err();
    logger.capture_anyhow_with(&err, PushOptions::new().tag("step", "read"));
    let events = captured.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.chain().len(), 2);
    assert_eq!(e.chain()[0].message, "reading x");
    assert_eq!(e.tags()["step"], "read");
    assert_eq!(e.location().unwrap().file, file!());
}

#[cfg(feature = "eyre")]
#[test]
fn an_eyre_report_keeps_its_chain() {
    // See: issue #14 (1)
    use eyre::WrapErr;
    #[inline(never)]
    fn fetch() -> eyre::Result<u16> {
        "eighty".parse::<u16>().wrap_err("reading the port")
    }
    let (logger, captured) = EventLogger::for_tests();
    let r = fetch().wrap_err("starting the server").report(&logger);
    assert!(r.is_err(), "passed on unchanged");
    let events = captured.events();
    assert_eq!(events.len(), 1);
    let texts: Vec<&str> = events[0]
        .chain()
        .iter()
        .map(|c| c.message.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "starting the server",
            "reading the port",
            "invalid digit found in string"
        ]
    );
    assert_eq!(
        events[0].chain()[0].type_name.as_deref(),
        Some("eyre::Report")
    );
    assert!(
        !events[0].frames().is_empty(),
        "this stack, without a captured one"
    );
}

#[derive(Debug)]
struct Timeout(&'static str);

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} timed out", self.0)
    }
}

impl std::error::Error for Timeout {}

#[test]
fn a_custom_fingerprint_merges_different_errors() {
    // See: issue #14 (2)
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "grouped");
    let provider = PushOptions::new().fingerprint(["payment-provider", "timeout"]);
    logger.capture_error_with(&Timeout("stripe"), provider.clone());
    logger.push_to_table(
        "adyen did not answer",
        provider.clone().level(errsnap::Level::Warn),
    );
    let r: Result<(), Timeout> = Err(Timeout("paypal"));
    let _ = r.report_with_options(
        &logger,
        provider.tag("provider", "paypal").extra("attempt", 3),
    );
    // Errsnap's own grouping, split further by a part of the caller's.
    logger.capture_error_with(
        &Timeout("stripe"),
        PushOptions::new().fingerprint(["{{ default }}", "eu"]),
    );
    logger.capture_error_with(
        &Timeout("stripe"),
        PushOptions::new().fingerprint(["{{ default }}", "us"]),
    );
    logger
        .event(errsnap::Level::Error, "the cache is cold")
        .fingerprint(["payment-provider", "timeout"])
        .emit();
    assert!(logger.flush(T));
    let conn = open(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 6);
    assert_eq!(
        count(&conn, "SELECT max(count) FROM event_groups"),
        4,
        "four events share the custom group"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM event_groups"), 3);
    let (tags, extra): (String, String) = conn
        .query_row(
            "SELECT tags, extra FROM events WHERE message = 'paypal timed out'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(tags.contains("\"provider\":\"paypal\""), "{tags}");
    assert!(extra.contains("\"attempt\":3"), "{extra}");
}

#[inline(never)]
fn read_config(logger: &EventLogger) -> std::io::Result<Vec<u8>> {
    std::fs::read("/nonexistent/errsnap/config").report(logger)
}

#[inline(never)]
fn start_service(logger: &EventLogger) -> std::io::Result<Vec<u8>> {
    read_config(logger).report(logger)
}

#[inline(never)]
fn run(logger: &EventLogger) -> std::io::Result<Vec<u8>> {
    start_service(logger).report(logger)
}

#[test]
fn an_error_reported_at_three_layers_is_one_event() {
    // See: issue #14 (6)
    let (logger, captured) = EventLogger::for_tests();
    assert!(run(&logger).is_err());
    let events = captured.take();
    assert_eq!(events.len(), 1, "{events:#?}");
    // The outermost report is the one kept.
    let here = events[0].location().unwrap();
    assert_eq!(here.file, file!());
    let source = include_str!("ecosystem.rs");
    let in_run = source
        .lines()
        .position(|l| l.trim() == "start_service(logger).report(logger)")
        .unwrap() as u32
        + 1;
    assert_eq!(here.line, in_run, "the report in run()");
    // The same failure reported again at the same place is a new failure.
    for _ in 0..3 {
        let _ = read_config(&logger);
    }
    assert_eq!(captured.take().len(), 3, "a retry loop is not merged");
    // Two different reports in one function are two events.
    two_files(&logger);
    assert_eq!(captured.take().len(), 2);
}

#[inline(never)]
fn two_files(logger: &EventLogger) {
    let a = std::fs::read("/nonexistent/a").report(logger);
    let b = std::fs::read("/nonexistent/b").report(logger);
    assert!(a.is_err() && b.is_err());
}

#[test]
fn the_test_mode_writes_no_file_and_shows_what_was_recorded() {
    // See: issue #14 (7)
    let (logger, captured) = EventLogger::for_tests();
    logger.warn("low disk");
    logger
        .event(errsnap::Level::Error, "checkout failed")
        .tag("cart", "42")
        .emit();
    let _ = "x".parse::<u8>().report(&logger);
    let events = captured.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].tags()["cart"], "42");
    assert!(events[2].fingerprint().len() > 10);
    assert!(!logger.path().exists(), "{}", logger.path().display());
    assert!(captured.take().len() == 3 && captured.is_empty());
    // A panic inside the test mode goes to the list too (in a child: the
    // hook is process-wide).
    let (_d, db) = util::temp_db();
    let cwd = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env("ERRSNAPTEST_SCENARIO", "test_mode_panic")
        .env("ERRSNAPTEST_DB", &db)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("captured=1 kind=panic"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "the test mode wrote a file"
    );
}

#[test]
fn errsnap_disabled_turns_everything_off() {
    // See: issue #14 (7)
    let (dir, db) = util::temp_db();
    let out = run_child("disabled_by_env", &db, &[("ERRSNAP_DISABLED", "1")]);
    assert_eq!(out.status.code(), Some(101), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("errsnap_threads=0"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file, no spool"
    );
    // The builder switch does the same in code.
    let (dir2, db2) = util::temp_db();
    let logger = util::builder(&db2, "off").disabled(true).build().unwrap();
    logger.error("not recorded");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(std::fs::read_dir(dir2.path()).unwrap().count(), 0);
    // A bad value names the key.
    let mut config = errsnap::Config::empty();
    config.set("ERRSNAP_DISABLED", "maybe").unwrap();
    let err = util::builder(&db2, "x").config(config).build().unwrap_err();
    assert!(err.to_string().contains("ERRSNAP_DISABLED"), "{err}");
}
