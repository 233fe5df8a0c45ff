//! Settings files planted by another user: `./.env` and
//! `config/errsnap.toml` are read from wherever a program starts, so
//! another user's file there is ignored (with a line on stderr and in
//! `errsnap check`), and the program's own is obeyed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::servers::HttpStub;
use crate::util;

/// The child: a logger built with the settings of its working directory.
pub(crate) fn default_settings(db: &Path) {
    let logger = errsnap::EventLogger::builder()
        .name("planted")
        .db_path(db)
        .build()
        .unwrap();
    logger.error("a failure the settings decide where to send");
    println!("flushed={}", logger.flush(Duration::from_secs(10)));
}

fn run_in(dir: &Path) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .current_dir(dir)
        .env("ERRSNAPTEST_SCENARIO", "default_settings")
        .env("ERRSNAPTEST_DB", dir.join("LOGS.db"))
        .env_remove("ERRSNAP_CONFIG_FILE")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

#[test]
fn another_users_env_file_is_ignored_and_said_so() {
    let Some((uid, gid)) = crate::security::nobody("planted .env") else {
        return;
    };
    let stub = HttpStub::start();
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, format!("ERRSNAP_WEBHOOK_URL={}\n", stub.url())).unwrap();
    std::os::unix::fs::chown(&env, Some(uid), Some(gid)).unwrap();
    let out = run_in(dir.path());
    assert!(
        out.status.success(),
        "the logger still builds: {}",
        util::describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ignoring .env: owned by uid") && err.contains(&uid.to_string()),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        stub.requests().is_empty(),
        "the planted webhook got the event"
    );
    // `errsnap check` says so too.
    let check = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .args(["check"])
        .current_dir(dir.path())
        .env_remove("ERRSNAP_DB_PATH")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("ignoring .env: owned by uid"),
        "{}",
        util::describe(&check)
    );
    // The same file, ours and private: obeyed.
    std::os::unix::fs::chown(&env, Some(0), Some(0)).unwrap();
    let out = run_in(dir.path());
    assert!(out.status.success(), "{}", util::describe(&out));
    assert_eq!(stub.wait_for(1, Duration::from_secs(20)).len(), 1);
    // Writable by every user: ignored again.
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run_in(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by every user"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stub.requests().len(), 1, "nothing more sent");
}

#[test]
fn another_users_settings_file_is_ignored_but_a_named_one_is_read() {
    let Some((uid, gid)) = crate::security::nobody("planted errsnap.toml") else {
        return;
    };
    let stub = HttpStub::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let file = dir.path().join("config/errsnap.toml");
    // A webhook URL is a secret: a settings file may not hold one, so the
    // planted file redirects the database level instead (everything down
    // to debug stored).
    std::fs::write(&file, "[levels]\ndatabase = \"debug\"\n").unwrap();
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
    let out = run_in(dir.path());
    assert!(out.status.success(), "{}", util::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ignoring config/errsnap.toml: owned by uid"),
        "{err}"
    );
    // Named by the program (ERRSNAP_CONFIG_FILE): trusted, whoever owns it.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .current_dir(dir.path())
        .env("ERRSNAPTEST_SCENARIO", "default_settings")
        .env("ERRSNAPTEST_DB", dir.path().join("LOGS.db"))
        .env("ERRSNAP_CONFIG_FILE", &file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ignoring"));
    drop(stub);
}
