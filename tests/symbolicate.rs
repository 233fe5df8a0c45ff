//! #16 (2): raw frames first. Every frame is stored with its module, module
//! offset and GNU build-id; a stack recorded where nothing could be named
//! (a stripped binary) stays durable and is named later by `errsnap
//! symbolicate`, only against a file with the same build-id.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::{json, ok};
use crate::util::{self, count, open};

/// A stripped copy of this test binary (same build-id, no symbols at all).
pub(crate) fn stripped_copy(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let copy = dir.join("stripped-app");
    let out = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&copy)
        .arg(&exe)
        .output()
        .expect("strip (binutils) is installed");
    assert!(out.status.success(), "{}", util::describe(&out));
    copy
}

pub(crate) fn readelf_build_id(file: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no build-id in {}: {text}", file.display()))
}

#[test]
fn a_stripped_binary_stores_raw_frames_that_symbolicate_names_by_build_id() {
    let (dir, db) = util::temp_db();
    let stripped = stripped_copy(dir.path());
    let out = util::run_child_of(&stripped, "raw_frames", &db, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));

    // Durable without a single name, each frame with module, offset and
    // the build-id readelf reports for the binary.
    let conn = open(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 1);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM frames WHERE function IS NOT NULL AND module LIKE '%stripped-app'"),
        0
    );
    let exe = std::env::current_exe().unwrap();
    let id = readelf_build_id(&exe);
    assert_eq!(readelf_build_id(&stripped), id, "strip keeps the build-id");
    let app_frames = count(
        &conn,
        &format!(
            "SELECT count(*) FROM frames WHERE module LIKE '%stripped-app'
             AND module_offset IS NOT NULL AND build_id = '{id}'"
        ),
    );
    assert!(app_frames >= 3, "{app_frames} raw frames of the app");

    // The stripped file at the recorded path has no symbols: nothing named.
    let r = json(&db, &["symbolicate"]);
    assert_eq!(r["frames_resolved"], 0, "{r}");
    assert!(r["missing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["build_id"] == id.as_str()
            && m["module"].as_str().unwrap().ends_with("stripped-app")));
    // The binary gone altogether: the rows stay, raw, and say what they need.
    let moved = dir.path().join("moved-away");
    std::fs::rename(&stripped, &moved).unwrap();
    let r = json(&db, &["symbolicate"]);
    assert_eq!(r["frames_resolved"], 0, "{r}");
    assert_eq!(r["stacks_updated"], 0, "{r}");
    assert!(r["missing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["module"].as_str().unwrap().ends_with("stripped-app")));
    assert_eq!(count(&open(&db), "SELECT count(*) FROM events"), 1);
    std::fs::rename(&moved, &stripped).unwrap();
    // Another build (the CLI binary has another build-id): never used.
    let cli = env!("CARGO_BIN_EXE_errsnap");
    assert_ne!(readelf_build_id(Path::new(cli)), id);
    let r = json(&db, &["symbolicate", "--binary", cli]);
    assert_eq!(r["frames_resolved"], 0, "{r}");

    // The unstripped binary with the same build-id names them.
    let text = ok(&db, &["symbolicate", "--binary", exe.to_str().unwrap()]);
    assert!(
        text.contains("1 of 1 stacks with raw frames updated"),
        "{text}"
    );
    let conn = open(&db);
    let (function, file, line): (String, String, i64) = conn
        .query_row(
            "SELECT f.function, f.file, f.line FROM events e
             JOIN frames f ON f.backtrace_id = e.backtrace_id
             WHERE f.function LIKE '%fail_where_symbols_are_gone'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the app's frame is named");
    assert!(
        function.ends_with("child::fail_where_symbols_are_gone"),
        "{function}"
    );
    assert!(file.ends_with("tests/child.rs"), "{file}");
    assert!(line > 0);
    // The named frames are searchable (issue #19: texts follow the names).
    let hits = errsnap::db::Database::open(&db)
        .unwrap()
        .search("fail_where_symbols_are_gone", 10)
        .unwrap();
    assert_eq!(hits.len(), 1, "the named function is found");
    // Named frames keep their raw identity, the stack is marked resolved,
    // errsnap's own frames above the app are trimmed once named.
    assert_eq!(
        count(&conn, &format!("SELECT count(*) FROM frames WHERE function LIKE '%fail_where%' AND build_id = '{id}' AND module_offset IS NOT NULL")),
        1
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM backtraces WHERE resolved = 0"),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM frames WHERE function LIKE 'errsnap::%'"
        ),
        0
    );
    // Nothing raw is left of the app; a second run finds nothing to do.
    let r = json(&db, &["symbolicate", "--binary", exe.to_str().unwrap()]);
    assert_eq!(r["stacks"], 0, "{r}");
    // `show` prints the named frame.
    let event = json(&db, &["events"])[0]["id"].as_str().unwrap().to_owned();
    let shown = ok(&db, &["show", &event]);
    assert!(shown.contains("fail_where_symbols_are_gone"), "{shown}");
}

#[test]
fn a_schema_2_file_gains_build_ids_when_opened() {
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "t");
    logger.error("before the migration");
    assert!(logger.flush(std::time::Duration::from_secs(20)));
    drop(logger);
    // Take the file back to schema 2 (before raw frames had build-ids and
    // before the runs ledger).
    open(&db)
        .execute_batch(
            "DROP TRIGGER attachments_follow_events;
             DROP TABLE attachments;
             ALTER TABLE events DROP COLUMN context;
             ALTER TABLE frames DROP COLUMN build_id;
             ALTER TABLE snapshots DROP COLUMN cgroup;
             ALTER TABLE event_groups DROP COLUMN first_release;
             ALTER TABLE event_groups DROP COLUMN resolved_release;
             ALTER TABLE event_groups DROP COLUMN regressed_in;
             ALTER TABLE event_groups DROP COLUMN regressed_at;
             DROP TABLE runs;
             DROP TABLE run_samples;
             DROP TABLE group_texts_fts;
             DROP TABLE group_texts;
             DROP TABLE group_values;
             DROP TABLE group_hours;
             ALTER TABLE event_groups DROP COLUMN resolved_next;
             ALTER TABLE outbox DROP COLUMN origin_run;
             ALTER TABLE outbox DROP COLUMN claim_run;
             DROP INDEX event_groups_merged;
             ALTER TABLE event_groups DROP COLUMN merged_into;
             ALTER TABLE event_groups DROP COLUMN followed;
             ALTER TABLE events DROP COLUMN home_id;
             ALTER TABLE event_groups DROP COLUMN custom;
             DROP TABLE grouping_configs;
             DROP TABLE check_ins;
             DROP TABLE monitors;
             UPDATE frames SET function = NULL, file = NULL, line = NULL, col = NULL;
             PRAGMA user_version = 2;
             UPDATE errsnap_meta SET value = '2' WHERE key = 'schema_version';",
        )
        .unwrap();
    // A newer CLI reads (and names frames in) a file no logger migrated yet.
    let id = json(&db, &["events"])[0]["id"].as_str().unwrap().to_owned();
    let shown = json(&db, &["show", &id]);
    assert!(!shown["frames"].as_array().unwrap().is_empty(), "{shown}");
    let exe = std::env::current_exe().unwrap();
    let r = json(&db, &["symbolicate", "--binary", exe.to_str().unwrap()]);
    // Without recorded build-ids, the binary is matched by file name.
    assert!(r["frames_resolved"].as_u64().unwrap() > 3, "{r}");
    let logger = util::logger(&db, "t");
    logger.error("after the migration");
    assert!(logger.flush(std::time::Duration::from_secs(20)));
    drop(logger);
    let conn = open(&db);
    assert_eq!(count(&conn, "PRAGMA user_version"), crate::util::SCHEMA);
    // The migration indexed the events stored before it for search.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM group_texts WHERE body LIKE 'before the migration%'"
        ),
        1
    );
    assert!(count(&conn, "SELECT sum(count) FROM group_hours") >= 2);
    assert!(count(&conn, "SELECT count(build_id) FROM frames") > 0);
}

/// `errsnap symbolicate` on a forged row (a fleet's shared database is
/// enough to forge one): the paths a row names are opened only as regular
/// files, without blocking, and used only if their build-id is the
/// recorded one, or if the user named the file with `--binary`.
#[test]
fn forged_frames_never_make_symbolicate_hang_or_read_a_file_nobody_vouched_for() {
    let (dir, db) = util::temp_db();
    let stripped = stripped_copy(dir.path());
    let out = util::run_child_of(&stripped, "raw_frames", &db, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let exe = std::env::current_exe().unwrap();
    let fifo = dir.path().join("a-fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // The app's frames now name the unstripped binary without a build-id
    // (it would name them, if it were opened); one frame names the FIFO
    // with the real build-id (opening it for reading would block).
    let conn = open(&db);
    conn.execute(
        "UPDATE frames SET module = ?1, build_id = NULL WHERE module LIKE '%stripped-app'",
        [exe.to_str().unwrap()],
    )
    .unwrap();
    let fifo_frames = conn
        .execute(
            "UPDATE frames SET module = ?1, build_id = 'abcdef0123456789'
             WHERE (backtrace_id, idx) = (SELECT backtrace_id, idx FROM frames
                 WHERE module_offset IS NOT NULL AND function IS NULL AND module = ?2
                 ORDER BY backtrace_id, idx DESC LIMIT 1)",
            [fifo.to_str().unwrap(), exe.to_str().unwrap()],
        )
        .unwrap();
    assert_eq!(fifo_frames, 1);
    drop(conn);
    let mut child = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(&db)
        .args(["symbolicate", "--json"])
        .env_remove("ERRSNAP_DB_PATH")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("errsnap symbolicate hung on a FIFO a stored frame named");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        r["frames_resolved"], 0,
        "nothing named from files nobody vouched for: {r}"
    );
    assert_eq!(
        count(
            &open(&db),
            "SELECT count(*) FROM frames WHERE function LIKE '%fail_where_symbols_are_gone'"
        ),
        0
    );
    // The user names the binary: its frames (no build-id recorded, same
    // file name) are named from it.
    let r = json(&db, &["symbolicate", "--binary", exe.to_str().unwrap()]);
    assert!(r["frames_resolved"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(
        count(
            &open(&db),
            "SELECT count(*) FROM frames WHERE function LIKE '%fail_where_symbols_are_gone'"
        ),
        1
    );
}
