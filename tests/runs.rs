//! #17 (2): the runs ledger: each process that opens the store is a run;
//! a clean exit is `exited`, a panic `crashed`, and a process gone without
//! a word (SIGKILL, OOM) is judged `abnormal` by the next start on the
//! same boot, ended at its last heartbeat with the memory it had then.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::json;
use crate::panic::panic_then_die;
use crate::util;

fn runs(db: &std::path::Path) -> Vec<serde_json::Value> {
    json(db, &["runs"]).as_array().unwrap().clone()
}

#[test]
fn i17_a_clean_exit_is_exited_with_its_release() {
    let (_d, db) = util::temp_db();
    let out = util::run_child("run_and_exit", &db, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let r = runs(&db);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "exited");
    assert_eq!(r[0]["release"], "app@1.2.3");
    assert!(r[0]["ended_at"].as_i64().unwrap() >= r[0]["started_at"].as_i64().unwrap());
    assert!(r[0]["build_id"].as_str().is_some_and(|b| b.len() >= 16));
}

#[test]
fn i17_a_panic_makes_the_run_crashed() {
    let (_d, db) = util::temp_db();
    // Dies by `_exit` right after the panic hook: no clean exit follows.
    panic_then_die(&db, 20000);
    let r = runs(&db);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "crashed");
}

#[test]
fn i17_a_killed_process_is_judged_abnormal_by_the_next_start() {
    let (_d, db) = util::temp_db();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env("ERRSNAPTEST_SCENARIO", "run_until_killed")
        .env("ERRSNAPTEST_DB", &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let start = Instant::now();
    while !lines
        .next()
        .and_then(Result::ok)
        .is_some_and(|l| l.ends_with("started"))
    {
        assert!(start.elapsed() < Duration::from_secs(60), "never started");
    }
    let r = runs(&db);
    assert_eq!(r[0]["status"], "running", "alive: {r:?}");
    // Idle, its writer notes a sign of life every 100 ms, with its memory.
    std::thread::sleep(Duration::from_millis(600));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        runs(&db)[0]["status"],
        "running",
        "nobody has judged it yet"
    );
    // The next process to open the store judges it.
    let logger = util::logger(&db, "next");
    logger.error("after the kill");
    assert!(logger.flush(Duration::from_secs(20)));
    let r = runs(&db);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0]["status"], "running", "this process");
    assert_eq!(r[1]["status"], "abnormal", "{r:?}");
    // Ended at its last heartbeat, well after its start, with its memory
    // then.
    let (started, ended) = (
        r[1]["started_at"].as_i64().unwrap(),
        r[1]["ended_at"].as_i64().unwrap(),
    );
    assert!(
        ended >= started + 300,
        "last sign of life {ended} vs start {started}"
    );
    assert!(r[1]["last_rss_bytes"].as_u64().unwrap() > 1 << 20, "{r:?}");
    drop(logger);
    // Dropping this test's logger ended its own run cleanly.
    assert_eq!(runs(&db)[0]["status"], "exited");
}
