//! Regression tests for the outside attack of issue #12: the spool as a
//! hostile local user would use it, foreign and unknown database files,
//! hostile data (deep JSON, long chains, panicking `Display`), and a forked
//! child. Multi-user cases run the attacker as `nobody` (a helper process
//! spawned with `CommandExt::uid`); they print a skip line when not root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use errsnap::{db::Database, ErrorKind};

use crate::util::{self, count, describe, open, run_child};

const T: Duration = Duration::from_secs(20);

/// `nobody`'s uid and gid when this test runs as root; else a skip line.
pub(crate) fn nobody(test: &str) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skip {test}: needs root to run the attacker as another user");
        return None;
    }
    // SAFETY: a valid NUL-terminated name; the result is read at once.
    let pw = unsafe { libc::getpwnam(c"nobody".as_ptr()) };
    if pw.is_null() {
        eprintln!("skip {test}: no user nobody");
        return None;
    }
    // SAFETY: getpwnam returned a valid entry.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// Runs `script` with `sh` as `nobody` (the attacker), with `args` as $1...
fn as_nobody(who: (u32, u32), script: &str, args: &[&Path]) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("attacker")
        .args(args)
        .uid(who.0)
        .gid(who.1)
        .output()
        .unwrap();
    assert!(out.status.success(), "attacker: {}", describe(&out));
    out
}

/// A directory like /tmp: anyone may create entries, sticky.
fn shared_tmp() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    t
}

/// Another program's SQLite database.
fn foreign_db(path: &Path) {
    open(path)
        .execute_batch(
            "PRAGMA application_id = 305419896; -- 0x12345678
             CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);
             INSERT INTO accounts (owner) VALUES ('alice');",
        )
        .unwrap();
}

/// Makes `<db>.spool` unusable (a regular file), so spooling falls back to
/// the per-user directory.
fn block_primary_spool(db: &Path) -> PathBuf {
    let p = db.with_file_name("LOGS.db.spool");
    std::fs::write(&p, b"").unwrap();
    p
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The victim's first spooled line, with its message replaced: a forged
/// event that would be imported if errsnap read the file.
fn forged_line(state: &Path) -> (String, String) {
    let spool = files_under(state)
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("spool-")
        })
        .expect("the victim spooled into its state directory");
    let dir_name = spool
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let line = std::fs::read_to_string(&spool)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace("victim event 0", "FORGED by another user");
    assert!(line.contains("FORGED"), "{line}");
    (dir_name, line)
}

/// The spool falls back to a per-user directory (`$XDG_STATE_HOME/errsnap`)
/// created 0700, with files created 0600.
#[test]
fn the_fallback_spool_is_per_user_and_private() {
    // See: issue #12 (1)
    let (_d, db) = util::temp_db();
    foreign_db(&db);
    block_primary_spool(&db);
    let state = tempfile::tempdir().unwrap();
    let out = run_child(
        "record3",
        &db,
        &[
            ("XDG_STATE_HOME", state.path().to_str().unwrap()),
            ("HOME", "/dev/null"),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("flushed=true"),
        "{}",
        describe(&out)
    );
    let base = state.path().join("errsnap");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&base), 0o700);
    let files = files_under(&base);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(files[0].parent().unwrap()), 0o700);
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(
        std::fs::read_to_string(&files[0]).unwrap().lines().count(),
        3
    );
    // Nothing was written into the other program's file.
    assert_eq!(
        count(&open(&db), "SELECT count(*) FROM sqlite_master"),
        1,
        "the foreign file gained tables"
    );
}

#[test]
fn a_fallback_directory_planted_by_another_user_is_refused() {
    // See: issue #12 (1)
    let Some(attacker) = nobody("a_fallback_directory_planted_by_another_user_is_refused") else {
        return;
    };
    let (_d, db) = util::temp_db();
    foreign_db(&db);
    let blocker = block_primary_spool(&db);
    // The victim's own state directory, to learn its layout and a real line.
    let state = tempfile::tempdir().unwrap();
    let out = run_child(
        "record3",
        &db,
        &[
            ("XDG_STATE_HOME", state.path().to_str().unwrap()),
            ("HOME", "/dev/null"),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let (subdir, forged) = forged_line(state.path());

    // The attacker creates the victim's fallback in a shared /tmp first,
    // open to all, with a forged spool file in it.
    let tmp = shared_tmp();
    let base = tmp.path().join("errsnap-0");
    let sub = base.join(&subdir);
    let planted = sub.join("spool-999999.jsonl");
    let forged_file = tmp.path().join("forged.jsonl");
    std::fs::write(&forged_file, format!("{forged}\n")).unwrap();
    as_nobody(
        attacker,
        r#"mkdir -m 0777 "$1" && mkdir -m 0777 "$2" && cp "$3" "$4" && chmod 0666 "$4""#,
        &[&base, &sub, &forged_file, &planted],
    );
    let env = [
        ("XDG_STATE_HOME", ""),
        ("HOME", "/dev/null"),
        ("TMPDIR", tmp.path().to_str().unwrap()),
    ];
    // The victim cannot spool anywhere now: it refuses, and says why.
    let out = run_child("record3", &db, &env);
    let err = stderr(&out);
    assert!(
        err.contains("refusing") && err.contains(&format!("owned by uid {}", attacker.0)),
        "{}",
        describe(&out)
    );
    // Nothing of the victim's landed in the attacker's directory.
    for f in files_under(&base) {
        assert_eq!(
            std::fs::metadata(&f).unwrap().uid(),
            attacker.0,
            "{} was written by the victim",
            f.display()
        );
    }
    // With a working database, the next start imports nothing from there.
    std::fs::remove_file(&db).unwrap();
    std::fs::remove_file(&blocker).unwrap();
    let out = run_child("record3", &db, &env);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("flushed=true"),
        "{}",
        describe(&out)
    );
    let conn = open(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 3);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message LIKE 'FORGED%'"
        ),
        0
    );
    assert_eq!(
        std::fs::read_to_string(&planted).unwrap(),
        format!("{forged}\n"),
        "the planted file was read and removed"
    );
}

#[test]
fn a_fallback_directory_that_is_a_symlink_is_refused() {
    // See: issue #12 (1)
    let Some(attacker) = nobody("a_fallback_directory_that_is_a_symlink_is_refused") else {
        return;
    };
    let (_d, db) = util::temp_db();
    foreign_db(&db);
    block_primary_spool(&db);
    // A directory only the victim may write: following the link would pass
    // every ownership check, so only O_NOFOLLOW stops it.
    let victims = tempfile::tempdir().unwrap();
    let tmp = shared_tmp();
    let base = tmp.path().join("errsnap-0");
    as_nobody(attacker, r#"ln -s "$1" "$2""#, &[victims.path(), &base]);
    let out = run_child(
        "record3",
        &db,
        &[
            ("XDG_STATE_HOME", ""),
            ("HOME", "/dev/null"),
            ("TMPDIR", tmp.path().to_str().unwrap()),
        ],
    );
    assert!(stderr(&out).contains("symbolic link"), "{}", describe(&out));
    assert!(
        files_under(victims.path()).is_empty(),
        "the victim wrote through the link"
    );
    assert!(std::fs::symlink_metadata(&base).unwrap().is_symlink());
}

#[test]
fn a_symlinked_spool_directory_beside_the_database_is_refused() {
    // See: issue #12 (1): a hostile working directory
    let (dir, db) = util::temp_db();
    foreign_db(&db);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, db.with_file_name("LOGS.db.spool")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let env = [
        ("XDG_STATE_HOME", state.path().to_str().unwrap()),
        ("HOME", "/dev/null"),
    ];
    let out = run_child("record3", &db, &env);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("flushed=true"),
        "{}",
        describe(&out)
    );
    assert!(stderr(&out).contains("symbolic link"), "{}", describe(&out));
    assert!(
        files_under(&elsewhere).is_empty(),
        "written through the link"
    );
    assert_eq!(
        files_under(state.path()).len(),
        1,
        "spooled per user instead"
    );
    // A forged file reached through the link is never imported either.
    let (_, forged) = forged_line(state.path());
    std::fs::write(elsewhere.join("spool-999999.jsonl"), format!("{forged}\n")).unwrap();
    std::fs::remove_file(&db).unwrap();
    let out = run_child("record3", &db, &env);
    assert!(out.status.success(), "{}", describe(&out));
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message LIKE 'FORGED%'"
        ),
        0
    );
    // The victim's own spooled events came back (3 + 3 new).
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 6);
    assert!(elsewhere.join("spool-999999.jsonl").exists());
}

#[test]
fn spool_files_that_are_not_ours_are_never_imported() {
    // See: issue #12 (1): import reads only regular files we own
    let (_d, db) = util::temp_db();
    // A real spooled line, from a run whose database was refused.
    foreign_db(&db);
    {
        let logger = util::logger(&db, "victim");
        logger.error("victim event 0");
        assert!(logger.flush(T));
    }
    let spool = db.with_file_name("LOGS.db.spool");
    let own = std::fs::read_dir(&spool)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let line = std::fs::read_to_string(&own).unwrap();
    std::fs::remove_file(&own).unwrap();
    let forged = line.replace("victim event 0", "FORGED by a link");
    // A symlink to a file with forged events, and a FIFO.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("forged.jsonl");
    std::fs::write(&target, &forged).unwrap();
    std::os::unix::fs::symlink(&target, spool.join("spool-999998.jsonl")).unwrap();
    let fifo = std::ffi::CString::new(
        spool
            .join("spool-999997.jsonl")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // A file of another user's (needs root to give it away).
    let other_user = nobody("spool_files_that_are_not_ours_are_never_imported (chown)");
    if let Some((uid, gid)) = other_user {
        let p = spool.join("spool-999996.jsonl");
        std::fs::write(&p, forged.replace("a link", "another user")).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    }
    std::fs::remove_file(&db).unwrap();
    let logger = util::logger(&db, "victim");
    logger.error("after");
    assert!(logger.flush(T));
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message LIKE 'FORGED%'"
        ),
        0
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 1);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), forged);
    // `check` names each refused file.
    let report = Database::check_path(&db);
    assert!(!report.healthy());
    let problems = report.problems.join("\n");
    assert!(problems.contains("spool-999998.jsonl"), "{problems}");
    assert!(problems.contains("spool-999997.jsonl"), "{problems}");
    if other_user.is_some() {
        assert!(
            problems.contains("spool-999996.jsonl") && problems.contains("owned by uid"),
            "{problems}"
        );
    }
}

#[test]
fn lines_that_cannot_be_imported_are_kept_and_counted() {
    // See: issue #12 (2)
    let (_d, db) = util::temp_db();
    foreign_db(&db);
    {
        let logger = util::logger(&db, "imports");
        for i in 0..3 {
            logger.error(format!("spooled {i}"));
        }
        assert!(logger.flush(T));
    }
    let spool = db.with_file_name("LOGS.db.spool");
    let own = std::fs::read_dir(&spool)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&own).unwrap();
    // Deeper than serde_json reads (128), as an older errsnap could write.
    let mut v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut deep = serde_json::json!(1);
    for _ in 0..200 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    v["extra"] = serde_json::json!({ "deep": deep });
    v["id"] = serde_json::json!("01KBAAAAAAAAAAAAAAAAAAAAAA");
    let mut extra_lines = serde_json::to_string(&v).unwrap();
    extra_lines.push_str("\n{\"not\": \"an event\"}\n");
    std::fs::write(&own, format!("{text}{extra_lines}")).unwrap();
    std::fs::remove_file(&db).unwrap();
    let logger = util::logger(&db, "imports");
    assert!(logger.flush(T));
    let conn = open(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 3);
    assert_eq!(
        count(
            &conn,
            "SELECT value FROM counters WHERE name = 'spool_rejected'"
        ),
        2
    );
    let rejected: Vec<PathBuf> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let name = rejected[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("rejected-"), "{name}");
    assert_eq!(std::fs::read_to_string(&rejected[0]).unwrap(), extra_lines);
    let report = Database::check_path(&db);
    assert!(!report.healthy());
    let problems = report.problems.join("\n");
    assert!(
        problems.contains("2 spool lines could not be imported") && problems.contains(&name),
        "{problems}"
    );
}

#[test]
fn a_30000_deep_extra_is_cut_not_a_crash() {
    // See: issue #12 (2)
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "deep");
    let mut deep = serde_json::json!("bottom");
    for _ in 0..30_000 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    logger
        .event(errsnap::Level::Error, "deep extra")
        .extra("deep", deep)
        .emit();
    assert!(logger.flush(T));
    let extra: String = open(&db)
        .query_row(
            "SELECT extra FROM events WHERE message = 'deep extra'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(extra.contains("nested deeper than 64 levels"), "{extra}");
    // 64 arrays, then the marker (whose text has one more bracket).
    assert_eq!(extra.matches('[').count(), 64 + 1);
}

fn assert_refused_untouched(db: &Path, reads_as: &Path, expected: &[&str]) {
    let before = std::fs::read(reads_as).unwrap();
    let logger = util::logger(db, "refused");
    logger.error("kept in the spool");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(
        std::fs::read(reads_as).unwrap(),
        before,
        "the file was modified"
    );
    let spooled: usize = files_under(&db.with_file_name("LOGS.db.spool"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    assert_eq!(spooled, 1, "the event was not spooled");
    let report = Database::check_path(db);
    assert!(!report.healthy());
    let first = &report.problems[0];
    for e in expected {
        assert!(first.contains(e), "{first:?} lacks {e:?}");
    }
}

#[test]
fn another_programs_database_is_refused_untouched() {
    // See: issue #12 (3)
    let (dir, db) = util::temp_db();
    foreign_db(&db);
    let err = Database::open(&db).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ForeignDatabase {
                application_id: 0x1234_5678,
                ..
            }
        ),
        "{err:?}"
    );
    assert_refused_untouched(
        &db,
        &db,
        &[&db.display().to_string(), "application_id 0x12345678"],
    );
    // Reached through a symlink, and with application_id 0 (plain SQLite).
    let (_d2, link) = util::temp_db();
    let plain = dir.path().join("app.sqlite");
    open(&plain)
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    std::os::unix::fs::symlink(&plain, &link).unwrap();
    assert_refused_untouched(
        &link,
        &plain,
        &["not an errsnap database", "application_id 0x0"],
    );
    assert!(!dir.path().join("app.sqlite-wal").exists());
}

#[test]
fn an_unknown_schema_version_is_refused_untouched() {
    // See: issue #12 (4)
    let (_d, db) = util::temp_db();
    open(&db)
        .execute_batch("PRAGMA user_version = -1;")
        .unwrap();
    let known = format!("1 to {}", util::SCHEMA);
    assert_refused_untouched(&db, &db, &["schema version -1", &known]);
    // errsnap's mark with a version no errsnap wrote.
    let (_d, db) = util::temp_db();
    drop(util::logger(&db, "t"));
    open(&db)
        .execute_batch("PRAGMA user_version = -7;")
        .unwrap();
    assert_refused_untouched(&db, &db, &["schema version -7", "never wrote"]);
}

#[test]
fn a_newer_schema_is_written_when_compatible_and_refused_when_not() {
    // See: issue #12 (4): rolling upgrades and rollbacks
    let (_d, db) = util::temp_db();
    drop(util::logger(&db, "t"));
    // A newer errsnap added a table and says older writers still fit.
    let (newer, newest) = (util::SCHEMA + 1, util::SCHEMA + 2);
    open(&db)
        .execute_batch(&format!(
            "CREATE TABLE from_the_future (x);
             PRAGMA user_version = {newer};
             UPDATE errsnap_meta SET value = '{newer}' WHERE key = 'schema_version';"
        ))
        .unwrap();
    let logger = util::logger(&db, "t");
    logger.error("written by the older build");
    assert!(logger.flush(T));
    drop(logger);
    let conn = open(&db);
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 1);
    assert_eq!(
        count(&conn, "PRAGMA user_version"),
        newer,
        "never migrated down"
    );
    assert!(Database::check_path(&db).healthy());
    // A later one changed the schema in a way older writers cannot follow.
    conn.execute_batch(&format!(
        "PRAGMA user_version = {newest};
         UPDATE errsnap_meta SET value = '{newer}' WHERE key = 'min_writer_version';"
    ))
    .unwrap();
    drop(conn);
    let found = format!("schema version {newest}");
    let needs = format!("writer of schema {newer}");
    assert_refused_untouched(&db, &db, &[&found, &needs]);
}

#[test]
fn check_warns_about_a_database_others_can_read() {
    // See: issue #12 (6)
    let (_d, db) = util::temp_db();
    drop(util::logger(&db, "t"));
    assert!(Database::check_path(&db).warnings.is_empty());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let report = Database::check_path(&db);
    assert!(report.healthy(), "{:?}", report.problems);
    assert!(
        report.warnings[0].contains("mode 644") && report.warnings[0].contains("chmod 600"),
        "{:?}",
        report.warnings
    );
}

/// An error whose chain has `n` more links below it.
#[derive(Debug)]
struct Deep(usize);

impl std::fmt::Display for Deep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "layer {}", self.0)
    }
}

impl std::error::Error for Deep {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Leaked on purpose: a test-only chain of 'static links.
        (self.0 > 0).then(|| &*Box::leak(Box::new(Deep(self.0 - 1))) as _)
    }
}

#[test]
fn a_chain_cut_at_65_links_says_how_many_causes_are_left() {
    // See: issue #12 (6)
    let (_d, db) = util::temp_db();
    let logger = util::logger(&db, "chains");
    logger.capture_error(&Deep(99)); // 100 links
    logger.capture_error(&Deep(64)); // 65 links: 64 and one more cause
    logger.capture_error(&Deep(63)); // 64 links: whole
    assert!(logger.flush(T));
    let conn = open(&db);
    let chain = |top: &str| -> Vec<String> {
        let json: String = conn
            .query_row(
                "SELECT error_chain FROM events WHERE message = ?1",
                [top],
                |r| r.get(0),
            )
            .unwrap();
        let v: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        v.iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let c = chain("layer 99");
    assert_eq!(c.len(), 65);
    assert_eq!(c[63], "layer 36");
    assert_eq!(c[64], "... 36 more causes");
    let c = chain("layer 64");
    assert_eq!(c.len(), 65);
    assert_eq!(c[64], "... 1 more cause");
    let c = chain("layer 63");
    assert_eq!(c.len(), 64);
    assert_eq!(c[63], "layer 0");
}

/// An error whose `Display` panics (see `child.rs`, "display_panics").
#[derive(Debug)]
pub(crate) struct PanickyError;

impl std::fmt::Display for PanickyError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Display of PanickyError exploded")
    }
}

impl std::error::Error for PanickyError {}

#[test]
fn a_panicking_display_is_recorded_as_a_placeholder() {
    // See: issue #12 (6)
    let (_d, db) = util::temp_db();
    let out = run_child("display_panics", &db, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("passed_on=true"),
        "{}",
        describe(&out)
    );
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message = '<Display panicked>'"
        ),
        2
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM events WHERE kind = 'panic'"),
        0,
        "the caught panic was recorded as the program's"
    );
}

#[test]
fn a_child_forked_while_sqlite_allocates_never_hangs() {
    // Found in #21: a child opened SQLite while the parent's writer held
    // SQLite's allocator mutex at the fork, and waited for it forever.
    let (_d, db) = util::temp_db();
    let out = run_child("fork_busy", &db, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("forks_ok=30 forks_hung=0"),
        "{}",
        describe(&out)
    );
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message = 'child event'"
        ),
        30
    );
}

#[test]
fn a_forked_child_records_its_own_events() {
    // See: issue #12 (6)
    let (_d, db) = util::temp_db();
    let out = run_child("fork", &db, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("child_exit=0"), "{}", describe(&out));
    let child_pid: i64 = stdout
        .split("child_pid=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let conn = open(&db);
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM events WHERE message LIKE 'child event%' AND pid = {child_pid}")
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE message LIKE 'parent%'"
        ),
        2
    );
    assert_eq!(count(&conn, "SELECT count(DISTINCT pid) FROM events"), 2);
}
