//! The fallback store (#6): when LOGS.db cannot be written, events go to
//! the spool and come back exactly once; a damaged file is moved aside.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(20);

fn spool_lines(path: &Path) -> usize {
    let dir = path.with_file_name("LOGS.db.spool");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes a file immutable (even for root); `false` where not supported.
fn immutable(path: &Path, on: bool) -> bool {
    Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_read_only_database_spools_and_the_spool_is_imported_once() {
    let (_d, path) = util::temp_db();
    {
        let logger = util::logger(&path, "ro");
        logger.error("before");
        assert!(logger.flush(T));
    }
    // The last connection closed: no -wal left. Now make the file read-only
    // in a way root cannot ignore.
    if !immutable(&path, true) {
        eprintln!("chattr is not available: holding a lock stands in for read-only");
        return a_locked_database_spools_at_runtime_then_imports();
    }
    let logger = util::logger(&path, "ro");
    for i in 0..5 {
        logger.error(format!("while read-only {i}"));
    }
    assert!(logger.flush(T), "flush returns once the events are spooled");
    assert_eq!(spool_lines(&path), 5);
    assert!(immutable(&path, false));
    // The writer retries the database and imports the spool.
    wait_until("the spool to be imported", || spool_lines(&path) == 0);
    assert!(logger.flush(T));
    drop(logger);
    let again = util::logger(&path, "ro");
    assert!(again.flush(T));
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 6);
    assert_eq!(count(&db, "SELECT count(DISTINCT uid) FROM events"), 6);
    assert!(!path.with_file_name("LOGS.db.spool").exists());
}

#[test]
fn a_locked_database_spools_at_runtime_then_imports() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "locked")
        .exit_budget(Duration::from_secs(30))
        .build()
        .unwrap();
    logger.error("before the lock");
    assert!(logger.flush(T));
    let locker = open(&path);
    locker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    for i in 0..3 {
        logger.error(format!("during the lock {i}"));
    }
    // busy_timeout (5 s) passes, then the batch goes to the spool.
    assert!(logger.flush(T));
    assert_eq!(spool_lines(&path), 3);
    locker.execute_batch("COMMIT;").unwrap();
    drop(locker);
    wait_until("the spool to be imported", || spool_lines(&path) == 0);
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 4);
}

#[test]
fn a_damaged_database_is_moved_aside_not_overwritten() {
    let (dir, path) = util::temp_db();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let logger = util::logger(&path, "fresh");
    logger.error("after the damage");
    assert!(logger.flush(T));
    let moved: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("LOGS.db.corrupt-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        std::fs::read(moved[0].path()).unwrap(),
        garbage,
        "kept byte for byte"
    );
    assert_eq!(count(&open(&path), "SELECT count(*) FROM events"), 1);
}

#[test]
fn a_database_from_a_newer_errsnap_is_never_moved_or_written() {
    let (dir, path) = util::temp_db();
    open(&path)
        .execute_batch("PRAGMA user_version = 7;")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let logger = util::builder(&path, "t").build().unwrap();
    logger.error("spooled");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Only the file and its spool: nothing was moved aside.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["LOGS.db", "LOGS.db.spool"]);
}

#[test]
fn automatic_retention_keeps_the_newest_and_every_first_event() {
    let (_d, path) = util::temp_db();
    {
        let logger = util::builder(&path, "kept")
            .retention_max_events(10)
            .build()
            .unwrap();
        logger.error("the first of its group");
        for i in 0..40 {
            logger.error(format!("event {i}"));
        }
    } // the last logger of the file stops its writer, which applies retention
    let db = open(&path);
    let n = count(&db, "SELECT count(*) FROM events");
    assert!(n <= 12, "{n} events left");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE message = 'the first of its group'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE message = 'event 39'"
        ),
        1
    );
    assert_eq!(count(&db, "SELECT sum(count) FROM event_groups"), 41);
}
