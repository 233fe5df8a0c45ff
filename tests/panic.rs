//! The panic hook (#3): every panic is committed before the process can die.

use std::path::Path;
use std::process::Command;

use crate::util::{self, count, open};

/// message, kind, file, line, level, thread name
type PanicRow = (String, String, Option<String>, Option<i64>, i64, String);

fn panic_rows(path: &Path) -> Vec<PanicRow> {
    let db = open(path);
    let mut stmt = db
        .prepare(
            "SELECT e.message, e.kind, e.file, e.line, e.level, coalesce(e.thread_name, '')
             FROM events e WHERE e.kind = 'panic' ORDER BY e.id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Runs the `panic_then_die` child (a cold process that panics under the
/// hook with `timeout_ms` to spare and `_exit`s right after it).
pub(crate) fn panic_then_die(db: &Path, timeout_ms: u64) -> std::process::Output {
    let t = timeout_ms.to_string();
    let out = util::run_child(
        "panic_then_die",
        db,
        &[("ERRSNAPTEST_PANIC_TIMEOUT_MS", &t)],
    );
    assert!(out.status.success(), "{}", util::describe(&out));
    out
}

fn in_app_functions(path: &Path) -> Vec<String> {
    let db = open(path);
    let mut stmt = db
        .prepare(
            "SELECT f.function FROM frames f JOIN events e ON e.backtrace_id = f.backtrace_id
             WHERE e.kind = 'panic' AND f.in_app = 1 ORDER BY f.idx",
        )
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn unwind_panic_on_main_thread_is_recorded() {
    let (_d, path) = util::temp_db();
    let out = Command::new(util::example("panic_hook"))
        .arg("--db")
        .arg(&path)
        .output()
        .unwrap();
    // Rust's own exit code for a panic in main, and its message (the
    // previous hook still runs).
    assert_eq!(out.status.code(), Some(101), "{}", util::describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the main thread gave up"), "{stderr}");
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (msg, _, file, line, level, thread) = &rows[0];
    assert_eq!(msg, "the main thread gave up: invariant violated (x = 42)");
    assert!(file.as_deref().unwrap().ends_with("panic_hook.rs"));
    assert!(line.unwrap() > 0);
    assert_eq!((*level, thread.as_str()), (5, "main"));
    let fns = in_app_functions(&path);
    assert_eq!(
        fns.first().map(String::as_str),
        Some("panic_hook::explode"),
        "{fns:?}"
    );
    assert!(fns.iter().any(|f| f == "panic_hook::main"), "{fns:?}");
}

#[test]
fn unwind_panic_on_spawned_thread_is_recorded() {
    let (_d, path) = util::temp_db();
    let out = Command::new(util::example("panic_hook"))
        .args(["--thread", "--db"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].0.starts_with("the worker thread gave up"));
    assert_eq!(rows[0].5, "worker-7");
    assert_eq!(
        in_app_functions(&path).first().map(String::as_str),
        Some("panic_hook::explode")
    );
}

#[cfg(unix)]
fn assert_aborted(out: &std::process::Output) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "{}",
        util::describe(out)
    );
}

#[cfg(unix)]
fn libc_sigabrt() -> i32 {
    6
}

#[cfg(unix)]
#[test]
fn abort_panic_on_main_thread_is_recorded() {
    let bin = util::abort_fixture();
    let (_d, path) = util::temp_db();
    let out = Command::new(&bin).arg(&path).arg("main").output().unwrap();
    assert_aborted(&out);
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 1, "{}", util::describe(&out));
    assert_eq!(rows[0].0, "abort fixture panicked on the main thread");
    assert!(rows[0].2.as_deref().unwrap().ends_with("main.rs"));
    assert_eq!(
        in_app_functions(&path).first().map(String::as_str),
        Some("abort_app::fixture_boom")
    );
}

#[cfg(unix)]
#[test]
fn abort_panic_on_spawned_thread_is_recorded() {
    let bin = util::abort_fixture();
    let (_d, path) = util::temp_db();
    let out = Command::new(&bin)
        .arg(&path)
        .arg("thread")
        .output()
        .unwrap();
    assert_aborted(&out);
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 1, "{}", util::describe(&out));
    assert_eq!(rows[0].0, "abort fixture panicked on the spawned thread");
}

#[test]
fn sixteen_threads_panicking_at_once_are_all_recorded() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("panic16", &path, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("joined 16 panicked threads"));
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 16, "{}", util::describe(&out));
    let mut msgs: Vec<_> = rows.iter().map(|r| r.0.clone()).collect();
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), 16);
    // One group: the thread number is normalized away.
    let db = open(&path);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM event_groups WHERE kind = 'panic'"
        ),
        1
    );
    assert_eq!(
        count(&db, "SELECT count FROM event_groups WHERE kind = 'panic'"),
        16
    );
}

#[test]
fn a_panic_inside_the_previous_hook_still_leaves_our_record() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("panic_in_previous_hook", &path, &[]);
    // Rust aborts on a panic inside a panic hook; errsnap does not change that.
    assert!(!out.status.success());
    #[cfg(unix)]
    assert_aborted(&out);
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 1, "{}", util::describe(&out));
    assert_eq!(rows[0].0, "original panic");
}

#[test]
fn the_previous_hook_runs_after_ours_once() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("previous_hook_runs_after", &path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("previous hook saw 1 panic rows for").count(),
        1,
        "{}",
        util::describe(&out)
    );
    assert_eq!(panic_rows(&path).len(), 1);
}

#[test]
fn a_panic_while_the_database_is_locked_goes_to_the_spool_and_is_imported() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("panic_while_locked", &path, &[]);
    assert!(!out.status.success());
    let spool = path.with_file_name("LOGS.db.spool");
    let files: Vec<_> = std::fs::read_dir(&spool)
        .unwrap_or_else(|e| {
            panic!(
                "no spool at {}: {e}\n{}",
                spool.display(),
                util::describe(&out)
            )
        })
        .collect();
    assert_eq!(files.len(), 1);
    assert!(panic_rows(&path).is_empty());
    // The next start imports it, exactly once.
    let logger = util::logger(&path, "locked");
    assert!(logger.flush(std::time::Duration::from_secs(20)));
    let _again = util::logger(&path, "other");
    let rows = panic_rows(&path);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "panic while the database is locked");
    assert!(!spool.exists());
}

#[test]
fn a_panic_inside_the_writer_itself_is_recorded() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("writer_panic", &path, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let db = open(&path);
    // The panic, recorded by the hook on the writer thread with a connection
    // of its own (it cannot wait for itself).
    let (msg, thread): (String, String) = db
        .query_row(
            "SELECT message, thread_name FROM events WHERE kind = 'panic'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(msg, "panic inside the writer thread");
    assert_eq!(thread, "errsnap-writer");
    // The event whose hook panicked is kept, and the writer goes on.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE message = 'trigger the writer''s panic'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE message = 'the writer goes on'"
        ),
        1
    );
}

/// #16 (2): a cold panic's row is committed with its raw stack first
/// (module, offset, build-id), before any symbol table is loaded: with a
/// panic timeout far shorter than loading this debug binary's tables (~0.9
/// s), the process that dies right after the hook still leaves the panic,
/// and `symbolicate` names its stack later.
#[test]
fn a_cold_panic_is_durable_raw_before_its_stack_is_named() {
    let (_d, db) = util::temp_db();
    let out = panic_then_die(&db, 60);
    let rows = panic_rows(&db);
    assert_eq!(rows.len(), 1, "{}", util::describe(&out));
    assert_eq!(rows[0].0, "thread 7 failed an invariant");
    let conn = open(&db);
    let raw = count(
        &conn,
        "SELECT count(*) FROM frames f JOIN events e ON e.backtrace_id = f.backtrace_id
         WHERE e.kind = 'panic' AND f.function IS NULL AND f.module_offset IS NOT NULL
           AND f.build_id IS NOT NULL",
    );
    assert!(raw >= 3, "raw frames with build-ids: {raw}");
    assert!(in_app_functions(&db).is_empty(), "nothing named yet");
    // The binary is still there with the same build-id: named from it.
    let mut database = errsnap::db::Database::open(&db).unwrap();
    let report = database.symbolicate(&[]).unwrap();
    assert!(report.frames_resolved >= 3, "{report:?}");
    assert!(
        in_app_functions(&db)
            .iter()
            .any(|f| f.ends_with("panic_in_named_function")),
        "{:?}",
        in_app_functions(&db)
    );
}

/// #16 (2): with time to spare, the hook also waits for the names: the
/// same dying process leaves its panic's stack named.
#[test]
fn a_panic_hook_with_time_left_waits_for_the_names() {
    let (_d, db) = util::temp_db();
    panic_then_die(&db, 20000);
    assert_eq!(panic_rows(&db).len(), 1);
    assert!(
        in_app_functions(&db)
            .iter()
            .any(|f| f.ends_with("panic_in_named_function")),
        "{:?}",
        in_app_functions(&db)
    );
    let conn = open(&db);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM backtraces WHERE resolved = 0"),
        0
    );
}

/// #16: a panic's batch-mates are not written raw: an ordinary error that
/// shared a batch with a panic is grouped (by its named frames) with the
/// same error written alone later, and the panic's own stack keeps its
/// application frames once named.
#[test]
fn an_error_beside_a_panic_is_grouped_as_usual() {
    let (_d, db) = util::temp_db();
    let out = util::run_child("error_beside_panic", &db, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message = 'the index is stale'"
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(DISTINCT group_id) FROM events WHERE message = 'the index is stale'"
        ),
        1,
        "one group for the same error"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events e JOIN frames f ON f.backtrace_id = e.backtrace_id
             WHERE e.message = 'the index is stale' AND f.function LIKE '%fail_the_same_way'"
        ),
        2
    );
    assert!(
        in_app_functions(&db)
            .iter()
            .any(|f| f.ends_with("panic_in_named_function")),
        "{:?}",
        in_app_functions(&db)
    );
}
