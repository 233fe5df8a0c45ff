//! A native crash is stored with the application's own settings, whoever
//! imports it: its redaction rules are recorded in the crash file when it
//! is armed, and a crash of a logger with a `before_save` hook waits for
//! the application, the only one that can run the hook.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use crate::util::{self, count, open};

#[test]
fn an_imported_crash_is_redacted_by_the_applications_own_patterns() {
    let bin = util::abort_fixture();
    let (_d, db) = util::temp_db();
    let out = Command::new(&bin)
        .arg(&db)
        .arg("segv")
        .env("ERRSNAP_REDACT_PATTERNS", "abort_app/src")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        util::describe(&out)
    );
    // `errsnap check` (here: the library call it makes) has no settings of
    // the application: the crash file brought them.
    let r = errsnap::db::import_crashes(&db).unwrap();
    assert_eq!(r.imported, 1, "{r:?}");
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM frames WHERE file LIKE '%abort_app/src%'"
        ),
        0,
        "the application's pattern applies to the crash's frames"
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM frames WHERE file LIKE '%[REDACTED]%'"
        ) > 0,
        "the fixture's own frames were redacted"
    );
}

#[test]
fn a_crash_of_a_logger_with_a_before_save_hook_waits_for_the_application() {
    let bin = util::abort_fixture();
    let (_d, db) = util::temp_db();
    let out = Command::new(&bin)
        .arg(&db)
        .arg("hook-segv")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        util::describe(&out)
    );
    let r = errsnap::db::import_crashes(&db).unwrap();
    assert_eq!((r.imported, r.waiting), (0, 1), "{r:?}");
    // `errsnap check` says so.
    #[cfg(feature = "cli")]
    {
        let check = Command::new(env!("CARGO_BIN_EXE_errsnap"))
            .arg("--db")
            .arg(&db)
            .arg("check")
            .env_remove("ERRSNAP_DB_PATH")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&check.stdout);
        assert!(
            text.contains("1 crash files wait for the application's next start"),
            "{text}"
        );
    }
    assert_eq!(
        count(
            &open(&db),
            "SELECT count(*) FROM events WHERE kind = 'crash'"
        ),
        0
    );
    // The application starts again: its writer imports it through its hook.
    let out = Command::new(&bin)
        .arg(&db)
        .arg("hook-start")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    let conn = open(&db);
    let tags: String = conn
        .query_row("SELECT tags FROM events WHERE kind = 'crash'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(tags.contains("the app's hook"), "{tags}");
}
