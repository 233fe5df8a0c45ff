//! MySQL and MariaDB as a fleet's store, against a real MariaDB the tests
//! start themselves (`mariadb-install-db` + `mariadbd --no-defaults` in a
//! temporary directory on a loopback port). `.ci/run` installs it and sets
//! `ERRSNAPTEST_REQUIRE_MYSQL=1`, which makes a missing server a failure;
//! elsewhere these tests print a skip line.

use std::process::{Command, Output};
use std::time::Duration;

use crate::util;

#[path = "support/mariadb_server.rs"]
mod mariadb_server;
use mariadb_server::{Maria, PASSWORD};

const T: Duration = Duration::from_secs(30);

fn count(m: &Maria, sql: &str) -> i64 {
    m.sql(&format!("USE errsnap; {sql}")).parse().unwrap()
}

#[test]
fn events_reach_mariadb_with_groups_runs_host_and_views() {
    let Some(m) = Maria::start("events_reach_mariadb_with_groups_runs_host_and_views", None) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(m.url("?ssl-mode=DISABLED"))
        .release("svc@3.1.0")
        .build()
        .unwrap();
    for i in 0..50 {
        logger.error(format!("job {} failed", i % 5));
    }
    logger.warn("a warning with trailing space ");
    logger.error("ünïcode ✓ and a 4-byte 🦀");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(count(&m, "SELECT count(*) FROM events"), 52);
    assert_eq!(
        count(&m, "SELECT count(*) FROM event_groups"),
        3,
        "numbers are normalized"
    );
    assert_eq!(count(&m, "SELECT sum(count) FROM event_groups"), 52);
    assert_eq!(count(&m, "SELECT count(*) FROM hosts"), 1);
    assert!(count(&m, "SELECT count(*) FROM frames") > 0);
    assert!(count(&m, "SELECT count(*) FROM snapshots") >= 1);
    assert_eq!(
        m.sql("USE errsnap; SELECT concat(status, ' ', `release`) FROM runs"),
        "exited svc@3.1.0"
    );
    // The original design's views: the logger's table and hw_logs.
    assert_eq!(count(&m, "SELECT count(*) FROM fleet"), 52);
    assert!(count(&m, "SELECT count(*) FROM hw_logs") >= 1);
    assert_eq!(
        m.sql("USE errsnap; SELECT message FROM events WHERE message LIKE '%crab%' OR message LIKE '%🦀%'"),
        "ünïcode ✓ and a 4-byte 🦀"
    );
    assert!(
        !db.exists(),
        "the file is not written: the server is the store"
    );
    // Read back through the library, as the dashboard and the CLI do.
    let fleet =
        errsnap::db::Database::open_url(&m.url("?ssl-mode=DISABLED"), &errsnap::Config::empty())
            .unwrap();
    let groups = fleet.groups(&errsnap::db::GroupQuery::default()).unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups.iter().map(|g| g.count).sum::<i64>(), 52);
    let hits = fleet.search("failed", 10).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    // What InnoDB's index cannot find is said, not an empty answer.
    let e = fleet.search("a of", 10).unwrap_err().to_string();
    assert!(
        e.contains("shorter than 3 letters") && e.contains("stopwords"),
        "{e}"
    );
    assert_eq!(fleet.search("the job failed", 10).unwrap().len(), 1);
    assert!(fleet.check().unwrap().healthy());
    let releases = fleet.releases().unwrap();
    assert_eq!(releases[0].release, "svc@3.1.0");
    // Every other read the CLI and the dashboard make.
    let g = &groups[0];
    assert_eq!(fleet.group(g.id).unwrap().unwrap().count, g.count);
    let events = fleet.events(&errsnap::db::EventFilter::default()).unwrap();
    assert_eq!(events.len().min(52), events.len());
    let detail = fleet.event(&events[0].id).unwrap().unwrap();
    assert!(!detail.frames.is_empty() && detail.snapshot.is_some());
    assert_eq!(fleet.hosts().unwrap().len(), 1);
    let stats = fleet.stats(5).unwrap();
    assert_eq!(stats.events, 52);
    assert!(!fleet.runs(10).unwrap().is_empty());
    let now = events.iter().map(|e| e.ts).max().unwrap() + 1;
    assert_eq!(
        fleet
            .histogram(g.id, now - 3_600_000, now, 12)
            .unwrap()
            .iter()
            .sum::<u64>(),
        g.count as u64
    );
    assert!(!fleet.hourly(None, now - 3_600_000, now).unwrap().is_empty());
    assert!(!fleet.group_values(g.id).unwrap().is_empty());
    assert_eq!(
        fleet.values("release", 5).unwrap(),
        vec!["svc@3.1.0".to_owned()]
    );
    assert!(!fleet.samples(g.id, 5).unwrap().is_empty());
    assert!(fleet.deliveries().unwrap().is_empty());
    let mut export = 0;
    fleet
        .for_each_export::<errsnap::Error>(&errsnap::db::EventFilter::default(), |_| {
            export += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(export, 52);
    fleet.vacuum().unwrap();
}

#[test]
fn four_processes_store_the_exact_count_and_alert_once_per_group() {
    let Some(m) = Maria::start(
        "four_processes_store_the_exact_count_and_alert_once_per_group",
        None,
    ) else {
        return;
    };
    let stub = crate::servers::HttpStub::start();
    let url = m.url("?ssl-mode=DISABLED");
    let dirs: Vec<_> = (0..4).map(|_| util::temp_db()).collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|(_, db)| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
                // The fleet writer scenario takes any server URL.
                .env("ERRSNAPTEST_SCENARIO", "pg_writer")
                .env("ERRSNAPTEST_DB", db)
                .env("ERRSNAPTEST_PG_URL", &url)
                .env("ERRSNAPTEST_SLACK", stub.url())
                .env("ERRSNAPTEST_THREADS", "4")
                .env("ERRSNAPTEST_COUNT", "250")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", util::describe(&out));
    }
    assert_eq!(count(&m, "SELECT count(*) FROM events"), 4 * 4 * 250);
    assert_eq!(
        count(&m, "SELECT sum(count) FROM event_groups"),
        4 * 4 * 250
    );
    assert_eq!(
        count(&m, "SELECT count(*) FROM runs WHERE status = 'exited'"),
        4
    );
    let groups = count(&m, "SELECT count(*) FROM event_groups");
    assert_eq!(
        count(&m, "SELECT count(*) FROM outbox WHERE kind = 'new'"),
        groups,
        "one new-group alert per group across the fleet"
    );
    assert_eq!(stub.requests().len() as i64, groups);
}

#[test]
fn a_server_killed_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let Some(mut m) = Maria::start(
        "a_server_killed_mid_stream_loses_nothing_and_stores_nothing_twice",
        None,
    ) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(m.url("?ssl-mode=DISABLED"))
        .build()
        .unwrap();
    let send = |from: usize| {
        for i in from..from + 200 {
            logger.error(format!("request {i} failed"));
        }
    };
    send(0);
    assert!(logger.flush(T));
    m.kill();
    let started = std::time::Instant::now();
    send(200);
    // The caller never waits for the server.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        !logger.flush(std::time::Duration::from_secs(3)),
        "not forwarded while the server is down"
    );
    let mut spool = db.as_os_str().to_owned();
    spool.push(".spool");
    assert!(std::path::Path::new(&spool).exists(), "held in the spool");
    m.restart();
    send(400);
    assert!(logger.flush(T), "forwarded once the server answers");
    drop(logger);
    assert_eq!(
        count(&m, "SELECT count(*) FROM events"),
        600,
        "nothing lost"
    );
    assert_eq!(
        count(&m, "SELECT sum(count) FROM event_groups"),
        600,
        "nothing counted twice"
    );
}

fn cli(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(url)
        .args(args)
        .env_remove("ERRSNAP_TLS_CA_FILE")
        .env("ERRSNAP_DATABASE_PASSWORD", PASSWORD)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

#[test]
fn the_cli_reads_a_mysql_url_as_it_reads_a_file() {
    let Some(m) = Maria::start("the_cli_reads_a_mysql_url_as_it_reads_a_file", None) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(m.url("?ssl-mode=DISABLED"))
        .build()
        .unwrap();
    for i in 0..6 {
        logger.error(format!("payment {} declined", i % 2));
    }
    assert!(logger.flush(T));
    drop(logger);
    // The password from ERRSNAP_DATABASE_PASSWORD, not the URL.
    let url = format!(
        "mariadb://errsnap@127.0.0.1:{}/errsnap?ssl-mode=DISABLED",
        m.port
    );
    let out = cli(&url, &["groups", "--json"]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let groups: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(groups.as_array().map(Vec::len), Some(1), "{groups}");
    assert_eq!(groups[0]["count"], 6);
    let id = groups[0]["id"].as_i64().unwrap().to_string();
    let out = cli(&url, &["resolve", "--group", &id]);
    assert!(out.status.success(), "{}", util::describe(&out));
    assert_eq!(m.sql("SELECT status FROM errsnap.event_groups"), "resolved");
    let out = cli(&url, &["check"]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let out = cli(&url, &["migrate", "--json"]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (done["schema_version"].as_i64(), done["migrated"].as_bool()),
        (Some(util::MYSQL_SCHEMA), Some(false)),
        "{done}"
    );
    // A wrong password: refused, said so, never echoed.
    let wrong = format!(
        "mysql://errsnap:not-it-7Y@127.0.0.1:{}/errsnap?ssl-mode=DISABLED",
        m.port
    );
    let out = cli(&wrong, &["groups"]);
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Access denied") && !text.contains("not-it-7Y"),
        "{text}"
    );
}

#[test]
fn a_50_mb_message_is_cut_to_the_servers_packet_never_a_failed_batch() {
    let Some(m) = Maria::start(
        "a_50_mb_message_is_cut_to_the_servers_packet_never_a_failed_batch",
        None,
    ) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(m.url("?ssl-mode=DISABLED"))
        .build()
        .unwrap();
    logger.error("before");
    logger.error("x".repeat(50_000_000));
    logger.error("after");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(
        count(&m, "SELECT count(*) FROM events"),
        3,
        "the batch stored whole"
    );
    let packet = count(&m, "SELECT @@max_allowed_packet");
    let longest = count(&m, "SELECT max(length(message)) FROM events");
    assert!(
        longest < packet && longest > packet / 2,
        "{longest} of {packet}"
    );
    assert_eq!(
        count(
            &m,
            "SELECT count(*) FROM events WHERE message LIKE '%max_allowed_packet]'"
        ),
        1
    );
}
