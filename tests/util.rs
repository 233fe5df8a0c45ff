//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use errsnap::{Config, EventLogger, EventLoggerBuilder};
use rusqlite::Connection;

/// The schema versions this build writes (SQLite, PostgreSQL, MySQL): the
/// tests that name a version name these.
pub(crate) const SCHEMA: i64 = 13;
pub(crate) const PG_SCHEMA: i64 = 8;
pub(crate) const MYSQL_SCHEMA: i64 = 5;

/// A fresh directory and the path of a `LOGS.db` inside it.
pub(crate) fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("LOGS.db");
    (dir, path)
}

/// A builder isolated from `./.env` and `ERRSNAP_*` variables.
pub(crate) fn builder(path: &Path, name: &str) -> EventLoggerBuilder {
    EventLogger::builder()
        .name(name)
        .db_path(path)
        .config(Config::empty())
}

pub(crate) fn logger(path: &Path, name: &str) -> EventLogger {
    builder(path, name).build().unwrap()
}

/// A plain rusqlite connection, as a user with `sqlite3` would have.
pub(crate) fn open(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

/// The bytes of a database file and its WAL, to look for what must not be
/// stored.
pub(crate) fn file_bytes(path: &Path) -> Vec<u8> {
    let mut out = std::fs::read(path).unwrap();
    let wal = path.with_extension("db-wal");
    if let Ok(more) = std::fs::read(wal) {
        out.extend(more);
    }
    out
}

pub(crate) fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Re-runs this test binary as a child that plays `scenario` (see
/// `child.rs`) against `db`.
pub(crate) fn run_child(scenario: &str, db: &Path, env: &[(&str, &str)]) -> Output {
    run_child_of(&std::env::current_exe().unwrap(), scenario, db, env)
}

/// Starts child scenario `scenario` and returns once it printed a line
/// ending in `started` (it runs on, to be killed by the test).
pub(crate) fn spawn_started(
    scenario: &str,
    db: &Path,
    env: &[(&str, &str)],
) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env("ERRSNAPTEST_SCENARIO", scenario)
        .env("ERRSNAPTEST_DB", db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let start = std::time::Instant::now();
    while !lines
        .next()
        .and_then(Result::ok)
        .is_some_and(|l| l.ends_with("started"))
    {
        assert!(start.elapsed().as_secs() < 60, "{scenario} never started");
    }
    child
}

/// Like [`run_child`], with `exe` a copy of this test binary (e.g. a
/// stripped one).
pub(crate) fn run_child_of(exe: &Path, scenario: &str, db: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env("ERRSNAPTEST_SCENARIO", scenario)
        .env("ERRSNAPTEST_DB", db)
        .env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `target/<profile>/`, found from this test binary's path.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/integration-<hash>
    exe.parent().unwrap().parent().unwrap().to_owned()
}

static EXAMPLES: Mutex<bool> = Mutex::new(false);

/// An example binary. A plain `cargo test` builds the examples; a filtered
/// run (`cargo test --test integration`) does not, so build them once here.
pub(crate) fn example(name: &str) -> PathBuf {
    let p = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = EXAMPLES.lock().unwrap_or_else(|e| e.into_inner());
    if !p.exists() && !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--examples",
                "--all-features",
                "--manifest-path",
            ])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        *built = true;
    }
    assert!(p.exists(), "example {name} not built at {}", p.display());
    p
}

static FIXTURE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Builds `tests/fixtures/abort_app` (a `panic = "abort"` crate) once.
pub(crate) fn abort_fixture() -> PathBuf {
    let mut built = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/abort_app/Cargo.toml");
    let target = profile_dir().parent().unwrap().join("fixtures");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the abort fixture failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target
        .join("debug")
        .join(format!("abort_app{}", std::env::consts::EXE_SUFFIX));
    *built = Some(bin.clone());
    bin
}

/// How a child process ended, for messages.
pub(crate) fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
