//! #17 (2): the runs ledger: each process that opens the store is a run;
//! a clean exit is `exited`, a panic `crashed`, and a process gone without
//! a word (SIGKILL, OOM) is judged `abnormal` by the next start on the
//! same boot, ended at its last heartbeat with the memory it had then.

use std::time::Duration;

use crate::cli::json;
use crate::panic::panic_then_die;
use crate::util;

fn runs(db: &std::path::Path) -> Vec<serde_json::Value> {
    json(db, &["runs"]).as_array().unwrap().clone()
}

#[test]
fn a_clean_exit_is_exited_with_its_release() {
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
fn a_panic_makes_the_run_crashed() {
    let (_d, db) = util::temp_db();
    // Dies by `_exit` right after the panic hook: no clean exit follows.
    panic_then_die(&db, 20000);
    let r = runs(&db);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["status"], "crashed");
}

#[test]
fn a_killed_process_is_judged_abnormal_by_the_next_start() {
    let (_d, db) = util::temp_db();
    let mut child = util::spawn_started("run_until_killed", &db, &[]);
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

#[test]
fn a_resolved_group_seen_in_a_newer_release_regresses_and_alerts_once() {
    // See: issue #17 (4): "regressed in 1.4.2"; groups new in a release
    let stub = crate::servers::HttpStub::start();
    let (_d, db) = util::temp_db();
    let logger_at = |release: &str| {
        let mut config = errsnap::Config::empty();
        config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
        util::builder(&db, "shop")
            .release(release)
            .config(config)
            .build()
            .unwrap()
    };
    let logger = logger_at("1.4.1");
    logger.error("the cache is cold");
    assert!(logger.flush(Duration::from_secs(20)));
    drop(logger);
    assert_eq!(stub.wait_for(1, Duration::from_secs(10)).len(), 1);
    let group = json(&db, &["groups"])[0]["id"].as_i64().unwrap();
    crate::cli::ok(&db, &["resolve", "--group", &group.to_string()]);
    // The same failure in the next release: reopened, regressed, one alert.
    let logger = logger_at("1.4.2");
    logger.error("the cache is cold");
    logger.error("the cache is cold");
    logger.error("a new failure in 1.4.2");
    assert!(logger.flush(Duration::from_secs(20)));
    drop(logger);
    let reqs = stub.wait_for(3, Duration::from_secs(10));
    let texts: Vec<String> = reqs
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or("").to_owned())
        .collect();
    let regressions: Vec<_> = texts
        .iter()
        .filter(|t| t.contains("regressed in 1.4.2"))
        .collect();
    assert_eq!(regressions.len(), 1, "alerted once: {texts:#?}");
    assert_eq!(
        texts.len(),
        3,
        "the first alert, the regression, the new group: {texts:#?}"
    );
    let groups = json(&db, &["groups"]);
    let old = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == group)
        .unwrap();
    assert_eq!(old["status"], "open");
    assert_eq!(old["regressed_in"], "1.4.2");
    assert_eq!(old["first_release"], "1.4.1");
    let text = crate::cli::ok(&db, &["groups"]);
    assert!(text.contains("[regressed in 1.4.2]"), "{text}");
    assert!(text.contains("[new in 1.4.2]"), "{text}");
    let new = json(&db, &["groups", "--new-in", "1.4.2"]);
    assert_eq!(new.as_array().unwrap().len(), 1, "{new}");
    assert_eq!(new[0]["title"], "a new failure in 1.4.2");
    // Resolving again clears the regression.
    crate::cli::ok(&db, &["resolve", "--group", &group.to_string()]);
    let groups = json(&db, &["groups", "--status", "resolved"]);
    assert!(groups[0]["regressed_in"].is_null(), "{groups}");
}

#[test]
fn releases_count_crash_free_runs() {
    // See: issue #17 (2): "`errsnap releases` shows crash-free runs per release"
    let (_d, db) = util::temp_db();
    for _ in 0..3 {
        let logger = util::builder(&db, "svc").release("2.0.0").build().unwrap();
        logger.error("a handled failure");
        assert!(logger.flush(Duration::from_secs(20)));
    }
    // A run of 2.0.0 that dies by a native crash, and one by a panic.
    #[cfg(target_os = "linux")]
    {
        let out = util::run_child("native", &db, &[("ERRSNAPTEST_CRASH", "abort")]);
        assert!(!out.status.success());
    }
    panic_then_die(&db, 20000);
    let logger = util::builder(&db, "svc").release("2.0.1").build().unwrap();
    logger.error("a handled failure");
    assert!(logger.flush(Duration::from_secs(20)));
    drop(logger);
    let rel = json(&db, &["releases"]);
    let row = |r: &str| {
        rel.as_array()
            .unwrap()
            .iter()
            .find(|x| x["release"] == r)
            .unwrap_or_else(|| panic!("{r} in {rel}"))
            .clone()
    };
    let r200 = row("2.0.0");
    assert_eq!(r200["exited"], 3, "{rel}");
    #[cfg(target_os = "linux")]
    {
        // The native crash (app@2.0.0 in the child) is its own release.
        let native = row("app@2.0.0");
        assert_eq!(
            (native["runs"].clone(), native["crashed"].clone()),
            (1.into(), 1.into()),
            "{rel}"
        );
        assert_eq!(native["crash_free_percent"], 0.0);
    }
    assert_eq!(r200["crash_free_percent"], 100.0, "{rel}");
    assert_eq!(r200["new_groups"], 1);
    let r201 = row("2.0.1");
    assert_eq!(r201["runs"], 1);
    assert_eq!(r201["new_groups"], 0, "the same failure as 2.0.0");
    let text = crate::cli::ok(&db, &["releases"]);
    assert!(text.contains("100.0%"), "{text}");
}
