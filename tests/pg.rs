//! #18: PostgreSQL for fleets, against a real server the tests start
//! themselves: Debian's `postgresql` (`initdb` + `pg_ctl`) in a temporary
//! directory on a free loopback port, as the `postgres` user when root.
//! `.ci/run` installs it and sets `ERRSNAPTEST_REQUIRE_PG=1`, which makes a
//! missing server a failure; elsewhere these tests print a skip line.

use std::process::{Command, Output};

use crate::servers::TestCa;
use crate::util;

#[path = "support/pg_server.rs"]
pub(crate) mod pg_server;
use pg_server::{Pg, PgOptions, PASSWORD};

fn migrate(url: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_errsnap"));
    cmd.args(["--db", url, "migrate", "--json"])
        .env_remove("ERRSNAP_DATABASE_PASSWORD")
        .env_remove("ERRSNAP_TLS_CA_FILE")
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// What a command printed, both streams.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn twenty_processes_migrating_at_once_migrate_once() {
    // See: issue #18 (2), Tests: "20 processes migrating at once"
    let Some(pg) = Pg::start("i18 migrations", PgOptions::default()) else {
        return;
    };
    let url = pg.url("?sslmode=disable");
    // Spawned together, waited for after.
    let spawned: Vec<_> = (0..20)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_errsnap"))
                .args(["--db", &url, "migrate", "--json"])
                .current_dir(std::env::temp_dir())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = spawned
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert!(o.status.success(), "{}", util::describe(o));
        assert!(!text(o).contains(PASSWORD), "{}", text(o));
    }
    assert_eq!(
        pg.psql("SELECT value FROM errsnap_meta WHERE key = 'schema_version'"),
        util::PG_SCHEMA.to_string()
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'events'"),
        "1"
    );
}

#[test]
fn a_fresh_database_is_migrated_once_and_then_up_to_date() {
    // See: issue #18 (2) and (6): `errsnap migrate`
    let Some(pg) = Pg::start("i18 migrate", PgOptions::default()) else {
        return;
    };
    let out = migrate(&pg.url("?sslmode=disable"), &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["migrated"], true, "{v}");
    assert_eq!(v["schema_version"], util::PG_SCHEMA);
    assert_eq!(
        v["database"],
        format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port),
        "named without the password"
    );
    let out = migrate(&pg.url("?sslmode=disable"), &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["migrated"], false, "{v}");
    // The password may come apart from the URL.
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    let out = migrate(&url, &[("ERRSNAP_DATABASE_PASSWORD", PASSWORD)]);
    assert!(out.status.success(), "{}", util::describe(&out));
    // A database holding another program's `events` table is not adopted.
    pg.psql("CREATE DATABASE other");
    let other = format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{}/other?sslmode=disable",
        pg.port
    );
    pg.psql_on("other", "CREATE TABLE events (id int)");
    let out = migrate(&other, &[]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("not errsnap's") && t.contains("\"events\""),
        "{t}"
    );
    assert!(!t.contains(PASSWORD), "{t}");
}

#[test]
fn a_wrong_password_and_a_refused_tls_say_why_without_the_secret() {
    // See: issue #18 Tests: "wrong password and TLS-required refusals ->
    // clear errors with no secret in any output"
    let ca = TestCa::new();
    let Some(pg) = Pg::start(
        "i18 refusals",
        PgOptions {
            tls: Some((&ca.cert_pem, &ca.key_pem)),
            tls_only: true,
        },
    ) else {
        return;
    };
    let wrong = format!(
        "postgres://postgres:Wr0ng-Pa55@127.0.0.1:{}/postgres?sslmode=require",
        pg.port
    );
    let out = migrate(&wrong, &[]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("password authentication failed"), "{t}");
    assert!(
        t.contains(&format!("127.0.0.1:{}", pg.port)),
        "names the server: {t}"
    );
    assert!(!t.contains("Wr0ng-Pa55"), "{t}");
    // Unencrypted: refused by the server's hostssl-only rules.
    let out = migrate(&pg.url("?sslmode=disable"), &[]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("no encryption") || t.contains("pg_hba.conf"),
        "{t}"
    );
    assert!(!t.contains(PASSWORD), "{t}");
    // require: encrypted, any certificate.
    let out = migrate(&pg.url("?sslmode=require"), &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    // verify-full: the test CA (sslrootcert, or ERRSNAP_TLS_CA_FILE) and
    // the host name in the certificate.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path());
    let full = format!(
        "postgres://postgres:{PASSWORD}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        pg.port,
        ca_file.display()
    );
    let out = migrate(&full, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let out = migrate(
        &format!(
            "postgres://postgres:{PASSWORD}@localhost:{}/postgres?sslmode=verify-full",
            pg.port
        ),
        &[("ERRSNAP_TLS_CA_FILE", ca_file.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", util::describe(&out));
    // Without a root file (libpq refuses verify-* then; errsnap used to
    // fall back to the public roots, which never sign a private server).
    let out = migrate(
        &format!(
            "postgres://postgres:{PASSWORD}@localhost:{}/postgres?sslmode=verify-full",
            pg.port
        ),
        &[],
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.to_lowercase().contains("certificate"), "{t}");
    assert!(!t.contains(PASSWORD), "{t}");
    // verify-ca ignores the name, not the CA.
    let ca_only = format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=verify-ca&sslrootcert={}",
        pg.port,
        ca_file.display()
    );
    let out = migrate(&ca_only, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
}

const T: std::time::Duration = std::time::Duration::from_secs(60);

/// Played in a child: `ERRSNAPTEST_THREADS` threads each record
/// `ERRSNAPTEST_COUNT` errors into `ERRSNAPTEST_PG_URL` (optionally with a
/// Slack webhook), then flush.
pub(crate) fn writer_child(db: &std::path::Path) {
    let url = std::env::var("ERRSNAPTEST_PG_URL").unwrap();
    let threads: usize = std::env::var("ERRSNAPTEST_THREADS").map_or(1, |v| v.parse().unwrap());
    let count: usize = std::env::var("ERRSNAPTEST_COUNT").map_or(1, |v| v.parse().unwrap());
    let mut config = errsnap::Config::empty();
    if let Ok(hook) = std::env::var("ERRSNAPTEST_SLACK") {
        config.set("ERRSNAP_SLACK_WEBHOOK_URL", hook).unwrap();
    }
    let logger = util::builder(db, "fleet")
        .database_url(url)
        .config(config)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..threads {
            let logger = &logger;
            s.spawn(move || {
                for i in 0..count {
                    logger.error(format!("job {} failed on worker {t}", i % 5));
                }
            });
        }
    });
    assert!(logger.flush(T), "flushed into PostgreSQL");
    assert!(logger.flush(T));
}

fn pg_count(pg: &Pg, sql: &str) -> i64 {
    pg.psql(sql).parse().unwrap()
}

#[test]
fn events_reach_postgres_with_groups_runs_and_host() {
    // See: issue #18 (1, 2): the same model as SQLite
    let Some(pg) = Pg::start("i18 writer", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(pg.url("?sslmode=disable"))
        .release("svc@3.1.0")
        .build()
        .unwrap();
    for i in 0..50 {
        logger.error(format!("job {} failed", i % 5));
    }
    logger.warn("a warning");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(pg_count(&pg, "SELECT count(*) FROM events"), 51);
    assert_eq!(
        pg_count(&pg, "SELECT count(*) FROM event_groups"),
        2,
        "numbers are normalized"
    );
    assert_eq!(pg_count(&pg, "SELECT sum(count) FROM event_groups"), 51);
    assert_eq!(pg_count(&pg, "SELECT count(*) FROM hosts"), 1);
    assert!(pg_count(&pg, "SELECT count(*) FROM frames") > 0);
    assert_eq!(
        pg.psql("SELECT status || ' ' || release FROM runs"),
        "exited svc@3.1.0"
    );
    assert!(pg_count(&pg, "SELECT count(*) FROM snapshots") >= 1);
    assert!(
        !db.exists(),
        "the file is not written: the server is the store"
    );
}

#[test]
fn eight_processes_of_four_threads_store_the_exact_count() {
    // See: issue #18 Tests: "8 processes x 4 threads -> the exact row count"
    let Some(pg) = Pg::start("i18 processes", PgOptions::default()) else {
        return;
    };
    let url = pg.url("?sslmode=disable");
    let dirs: Vec<_> = (0..8).map(|_| util::temp_db()).collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|(_, db)| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
                .env("ERRSNAPTEST_SCENARIO", "pg_writer")
                .env("ERRSNAPTEST_DB", db)
                .env("ERRSNAPTEST_PG_URL", &url)
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
    assert_eq!(pg_count(&pg, "SELECT count(*) FROM events"), 8 * 4 * 250);
    assert_eq!(
        pg_count(&pg, "SELECT sum(count) FROM event_groups"),
        8 * 4 * 250
    );
    assert_eq!(
        pg_count(&pg, "SELECT count(*) FROM runs WHERE status = 'exited'"),
        8
    );
}

#[test]
fn a_server_stopped_mid_stream_loses_nothing_and_stores_nothing_twice() {
    // See: issue #18 (3) and Tests: "the server stopped (pg_ctl stop -m
    // immediate) mid-stream and restarted -> nothing lost, nothing twice"
    let Some(pg) = Pg::start("i18 store-and-forward", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(pg.url("?sslmode=disable&connect_timeout=2"))
        .build()
        .unwrap();
    let send = |from: usize| {
        for i in from..from + 200 {
            logger.error(format!("request {i} failed"));
        }
    };
    send(0);
    assert!(logger.flush(T));
    pg.stop_immediate();
    let started = std::time::Instant::now();
    send(200);
    // The caller never waits for the server: 200 events handed over at
    // once; they wait in the spool beside LOGS.db.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        !logger.flush(std::time::Duration::from_secs(3)),
        "not forwarded while the server is down"
    );
    let mut spool = db.as_os_str().to_owned();
    spool.push(".spool");
    assert!(std::path::Path::new(&spool).exists(), "held in the spool");
    pg.restart();
    send(400);
    assert!(logger.flush(T), "forwarded once the server answers");
    drop(logger);
    assert_eq!(
        pg_count(&pg, "SELECT count(*) FROM events"),
        600,
        "nothing lost"
    );
    assert_eq!(
        pg_count(&pg, "SELECT sum(count) FROM event_groups"),
        600,
        "nothing counted twice"
    );
    // A second import of the same events (a kill between the insert and
    // the spool's removal) changes nothing: the uids are stored.
    assert!(!std::path::Path::new(&spool).join("spool-1.jsonl").exists());
}

#[test]
fn a_fleet_alerts_once_per_group() {
    // See: issue #18 (4): one alert per group across all hosts (processes
    // here), cooldowns shared
    let Some(pg) = Pg::start("i18 fleet alerts", PgOptions::default()) else {
        return;
    };
    let stub = crate::servers::HttpStub::start();
    let url = pg.url("?sslmode=disable");
    let children: Vec<_> = (0..3)
        .map(|_| {
            let (d, db) = util::temp_db();
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
                .env("ERRSNAPTEST_SCENARIO", "pg_writer")
                .env("ERRSNAPTEST_DB", &db)
                .env("ERRSNAPTEST_PG_URL", &url)
                .env("ERRSNAPTEST_SLACK", stub.url())
                .env("ERRSNAPTEST_COUNT", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (d, child)
        })
        .collect();
    for (_d, c) in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", util::describe(&out));
    }
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1, "one alert for the group across the fleet");
    assert_eq!(pg_count(&pg, "SELECT count(*) FROM events"), 3);
    assert_eq!(
        pg.psql("SELECT status FROM outbox WHERE kind = 'new'"),
        "sent"
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

fn cli_json(url: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cli(url, &all);
    assert!(out.status.success(), "{args:?}: {}", util::describe(&out));
    assert!(!text(&out).contains(PASSWORD));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", util::describe(&out)))
}

#[test]
fn the_cli_reads_a_url_as_it_reads_a_file() {
    // See: issue #18 (6): `errsnap --db postgres://... groups|events|show|check|resolve`
    let Some(pg) = Pg::start("i18 cli", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(pg.url("?sslmode=disable"))
        .build()
        .unwrap();
    for i in 0..6 {
        logger.error(format!("payment {} declined", i % 2));
    }
    logger.warn("cache cold");
    assert!(logger.flush(T));
    drop(logger);
    // The password from ERRSNAP_DATABASE_PASSWORD, not the URL.
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    let groups = cli_json(&url, &["groups"]);
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    let payment = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["count"] == 6)
        .unwrap()
        .clone();
    let events = cli_json(&url, &["events", "--group", &payment["id"].to_string()]);
    assert_eq!(events.as_array().unwrap().len(), 6);
    let id = events[0]["id"].as_str().unwrap();
    let shown = cli_json(&url, &["show", id]);
    assert_eq!(shown["message"], events[0]["message"]);
    assert!(!shown["frames"].as_array().unwrap().is_empty(), "{shown}");
    assert_eq!(
        cli_json(&url, &["events", "--level", "warn", "--grep", "CACHE"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    cli_json(&url, &["resolve", "--group", &payment["id"].to_string()]);
    assert_eq!(
        pg.psql(&format!(
            "SELECT status FROM event_groups WHERE id = {}",
            payment["id"]
        )),
        "resolved"
    );
    let runs = cli_json(&url, &["runs"]);
    assert_eq!(runs[0]["status"], "exited");
    let check = cli_json(&url, &["check"]);
    assert_eq!(check["schema_version"], util::PG_SCHEMA, "{check}");
    let stats = cli_json(&url, &["stats"]);
    assert_eq!(stats["events"], 7, "{stats}");
    assert_eq!(stats["by_level"]["error"], 6, "{stats}");
    assert_eq!(stats["top_groups"][0]["count"], 6);
    let hosts = cli_json(&url, &["host"]);
    assert_eq!(hosts.as_array().map(Vec::len), Some(1), "{hosts}");
    assert!(cli_json(&url, &["releases"]).as_array().unwrap().is_empty());
    // Purge keeps each group's first event (and pending alerts).
    let dry = cli(&url, &["purge", "--keep", "1", "--dry-run"]);
    assert!(
        text(&dry).contains("would delete 5 events"),
        "{}",
        text(&dry)
    );
    let purged = cli_json(&url, &["purge", "--keep", "1"]);
    assert_eq!(pg_count(&pg, "SELECT count(*) FROM events"), 2, "{purged}");
    assert_eq!(
        pg_count(&pg, "SELECT sum(count) FROM event_groups"),
        7,
        "groups keep their counts"
    );
    // Export reads a server as it reads a file (the shared read side): the
    // two events the purge kept.
    let dump = tempfile::tempdir().unwrap();
    let v = cli_json(
        &pg.url("?sslmode=disable"),
        &[
            "export",
            "--format",
            "jsonl",
            "--out",
            dump.path().to_str().unwrap(),
        ],
    );
    assert_eq!(v["events"], 2, "{v}");
    let mut lines = 0;
    for f in std::fs::read_dir(dump.path()).unwrap() {
        let body = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!body.contains(PASSWORD));
        lines += body.lines().count();
    }
    assert_eq!(lines, 2, "one line per event");
}

/// Raw frames stored in a fleet database (a stripped build) are named by
/// `errsnap --db URL symbolicate`, only against a file with their build-id,
/// as in a file.
#[test]
fn a_fleets_raw_frames_are_named_by_symbolicate() {
    let Some(pg) = Pg::start("symbolicate", PgOptions::default()) else {
        return;
    };
    let (dir, db) = util::temp_db();
    let stripped = crate::symbolicate::stripped_copy(dir.path());
    let url = pg.url("?sslmode=disable");
    let out = util::run_child_of(
        &stripped,
        "raw_frames_pg",
        &db,
        &[("ERRSNAPTEST_PG_URL", url.as_str())],
    );
    assert!(out.status.success(), "{}", util::describe(&out));
    let named = "SELECT count(*) FROM frames WHERE function LIKE '%fail_where_symbols_are_gone'";
    assert_eq!(pg_count(&pg, named), 0, "stored raw");
    let exe = std::env::current_exe().unwrap();
    let id = crate::symbolicate::readelf_build_id(&exe);
    assert!(
        pg_count(
            &pg,
            &format!(
                "SELECT count(*) FROM frames WHERE build_id = '{id}' AND module_offset IS NOT NULL"
            )
        ) >= 3
    );
    // Another build-id (the CLI's binary) names nothing.
    let r = cli_json(
        &url,
        &["symbolicate", "--binary", env!("CARGO_BIN_EXE_errsnap")],
    );
    assert_eq!(r["frames_resolved"], 0, "{r}");
    let r = cli_json(&url, &["symbolicate", "--binary", exe.to_str().unwrap()]);
    assert_eq!(r["stacks_updated"], 1, "{r}");
    assert_eq!(pg_count(&pg, named), 1, "{r}");
    assert_eq!(
        pg_count(&pg, "SELECT count(*) FROM backtraces WHERE NOT resolved"),
        0
    );
    // The named function is searchable.
    let fleet = errsnap::db::Database::open_url(&url, &errsnap::Config::empty()).unwrap();
    let hits = fleet.search("fail_where_symbols_are_gone", 10).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
}

#[test]
fn events_spooled_by_a_process_are_forwarded_by_the_next_one() {
    // See: issue #18 (3): "forwarded exactly once ... by the same process
    // or the next one to start"
    let Some(pg) = Pg::start("i18 next process", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let url = pg.url("?sslmode=disable&connect_timeout=2");
    pg.stop_immediate();
    {
        let logger = util::builder(&db, "fleet")
            .database_url(url.clone())
            .exit_budget(std::time::Duration::from_millis(500))
            .build()
            .unwrap();
        for i in 0..50 {
            logger.error(format!("offline failure {i}"));
        }
        assert!(!logger.flush(std::time::Duration::from_secs(3)));
    }
    pg.restart();
    let logger = util::builder(&db, "fleet")
        .database_url(url)
        .build()
        .unwrap();
    assert!(logger.flush(T), "the next start forwards what waited");
    drop(logger);
    assert_eq!(pg_count(&pg, "SELECT count(*) FROM events"), 50);
    assert_eq!(pg_count(&pg, "SELECT sum(count) FROM event_groups"), 50);
}

#[test]
fn the_dashboard_reads_and_changes_a_fleet_database() {
    // See: issue #19: the dashboard works on the PostgreSQL store alike
    let Some(pg) = Pg::start("i19 dashboard", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(pg.url("?sslmode=disable"))
        .release("4.0")
        .environment("prod")
        .build()
        .unwrap();
    for i in 0..6 {
        logger.error(format!("payment {i} declined"));
    }
    logger.warn("cache cold");
    let e = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "ledger refused the connection",
    );
    logger.capture_error(&e);
    assert!(logger.flush(T));
    let dash = crate::dash::Dash::start_with_password(
        &format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            pg.port
        ),
        PASSWORD,
    );
    let cookie = dash.login();
    let get = |p: &str| {
        let r = dash.get(p, Some(&cookie));
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        assert!(!r.body.contains(PASSWORD), "{p} shows no password");
        r.body
    };
    let rows = |p: &str| get(p).matches("<tr data-group=").count();
    assert_eq!(rows("/"), 3);
    assert_eq!(rows("/?release=4.0"), 3);
    assert_eq!(rows("/?environment=prod&level=error"), 2);
    assert_eq!(rows("/?environment=staging"), 0);
    assert_eq!(rows("/?range=1h&sort=first"), 3);
    let by_count = get("/?sort=count");
    let g = crate::dash::first_group(&by_count);
    assert!(
        by_count.contains("aria-label=\"last 24 hours: 6 in all, at most 6\""),
        "{by_count}"
    );
    let page = get(&format!("/groups/{g}"));
    for want in [
        "aria-label=\"per hour: 6 in all",
        "<th>4.0</th>",
        "<th>prod</th>",
        "<h3>Stack</h3>",
        "id=\"count\">6<",
    ] {
        assert!(page.contains(want), "{want}");
    }
    let hits = |q: &str| {
        get(&format!("/search?q={q}"))
            .matches("<li><span class=\"status")
            .count()
    };
    assert_eq!(hits("ledger"), 1);
    assert_eq!(hits("declin"), 1);
    assert_eq!(hits("refused+connection"), 1);
    assert_eq!(hits("nowhere"), 0);
    assert_eq!(
        pg_count(
            &pg,
            "SELECT count(*) FROM group_texts WHERE body LIKE 'payment%'"
        ),
        1
    );
    assert!(get("/stats").contains("Events per hour"));
    assert!(get("/events").contains("payment 5 declined"));
    // Resolve in the next release: quiet for 4.0, as in the file.
    let csrf = crate::dash::csrf(&page);
    let r = dash.post(
        &format!("/groups/{g}/status"),
        &cookie,
        &format!("status=resolved-next&csrf={csrf}"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let state = |pg: &Pg| {
        pg.psql(&format!("SELECT status || ' ' || resolved_next || ' ' || coalesce(resolved_release, '-') FROM event_groups WHERE id = {g}"))
    };
    assert_eq!(state(&pg), "resolved true 4.0");
    logger.error("payment 9 declined");
    assert!(logger.flush(T));
    assert_eq!(state(&pg), "resolved true 4.0");
    assert!(get(&format!("/groups/{g}")).contains("resolved (next release)"));
    let r = dash.post(
        &format!("/groups/{g}/status"),
        &cookie,
        &format!("status=open&csrf={csrf}"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(state(&pg), "open false 4.0");
}

#[test]
fn a_schema_1_fleet_database_is_read_as_it_is_then_upgraded_with_its_events_summarized() {
    // See: issue #19: schema 2 of the fleet store (the dashboard's summaries)
    let Some(pg) = Pg::start("i19 upgrade", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let logger = util::builder(&db, "fleet")
        .database_url(pg.url("?sslmode=disable"))
        .release("3.1")
        .build()
        .unwrap();
    for i in 0..5 {
        logger.error(format!("payment {i} declined"));
    }
    let e = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "ledger refused the connection",
    );
    logger.capture_error(&e);
    assert!(logger.flush(T));
    drop(logger);
    // Back to schema 1, as a fleet of the previous version left it.
    pg.psql(
        "DROP TABLE group_texts; DROP TABLE group_values; DROP TABLE group_hours;
         ALTER TABLE event_groups DROP COLUMN resolved_next;
         UPDATE errsnap_meta SET value = '1' WHERE key IN ('schema_version', 'min_writer_version')",
    );
    let url = pg.url("?sslmode=disable");
    // This CLI reads it without the summaries.
    let groups = cli_json(&url, &["groups"]);
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    let id = groups[0]["id"].to_string();
    let out = cli(
        &url,
        &["resolve", "--group", &id, "--status", "resolved-next"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("schema version 1"),
        "{}",
        util::describe(&out)
    );
    cli_json(&url, &["resolve", "--group", &id, "--status", "muted"]);
    // The upgrade fills the summaries from the stored events.
    let out = migrate(&url, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["migrated"].as_bool(), v["schema_version"].as_i64()),
        (Some(true), Some(util::PG_SCHEMA))
    );
    assert_eq!(
        pg_count(&pg, "SELECT sum(count)::bigint FROM group_hours"),
        6
    );
    assert_eq!(
        pg_count(&pg, "SELECT count(*) FROM group_texts"),
        2,
        "one text per group: ids normalized"
    );
    assert_eq!(
        pg_count(
            &pg,
            "SELECT count(*) FROM group_values WHERE key = 'release' AND value = '3.1'"
        ),
        2
    );
    assert_eq!(
        pg_count(
            &pg,
            "SELECT count(*) FROM group_texts WHERE words @@ to_tsquery('simple', 'ledger')"
        ),
        1
    );
    let found = cli_json(&url, &["groups", "--status", "muted"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[test]
fn a_panics_named_frames_are_searchable_in_a_fleet_database() {
    // See: issue #19: search texts follow frames named after they were stored
    let Some(pg) = Pg::start("i19 panic search", PgOptions::default()) else {
        return;
    };
    let (_d, db) = util::temp_db();
    let url = pg.url("?sslmode=disable");
    let out = util::run_child("panic_into_url", &db, &[("ERRSNAPTEST_DATABASE_URL", &url)]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let found = errsnap::db::Database::open_url(&url, &errsnap::Config::empty())
        .unwrap()
        .search("panic_in_named_function", 10)
        .unwrap();
    assert_eq!(found.len(), 1, "the panicking function is found by name");
    assert_eq!(found[0].group.kind, errsnap::event::EventKind::Panic);
}

#[test]
fn a_fleet_forwards_each_event_once_muted_or_not() {
    // See: issue #20 (1, 2) on the PostgreSQL store: one outbox row per
    // forwarded event, read back through the fleet's reader.
    let Some(pg) = Pg::start("i20 fleet forwarding", PgOptions::default()) else {
        return;
    };
    let Some(otlp) = crate::peers::OtlpReceiver::start("i20 fleet forwarding") else {
        return;
    };
    let slack = crate::servers::HttpStub::start();
    let url = pg.url("?sslmode=disable");
    let (_d, db) = util::temp_db();
    let mut cfg = errsnap::Config::empty();
    cfg.set("ERRSNAP_SLACK_WEBHOOK_URL", slack.url()).unwrap();
    let logger = util::builder(&db, "fleet")
        .config(cfg)
        .database_url(&url)
        .release("svc@3.2.0")
        .otlp_endpoint(format!("http://127.0.0.1:{}", otlp.port))
        .build()
        .unwrap();
    for _ in 0..3 {
        logger.error("job 7 failed: lease lost");
    }
    logger.warn("below the level");
    assert!(logger.flush(T));
    let records = otlp.wait_for(3, T);
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|r| r["resource"]["service.version"] == "svc@3.2.0"));
    // The fleet's reader gives the whole event: snapshot and host.
    assert!(
        records[0]["attrs"]["errsnap.process.rss_bytes"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(records[0]["resource"]["host.name"].is_string());
    assert!(records[0]["resource"]["host.arch"].is_string());
    let fleet = errsnap::db::Database::open_url(&url, &errsnap::Config::empty()).unwrap();
    let group = fleet.groups(&errsnap::db::GroupQuery::default()).unwrap()[0].id;
    assert!(fleet
        .set_group_status(group, errsnap::db::GroupStatus::Muted)
        .unwrap());
    logger.error("job 7 failed: lease lost");
    assert!(logger.flush(T));
    assert_eq!(otlp.wait_for(4, T).len(), 4, "muted, still forwarded");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(otlp.records().len(), 4, "each once");
    assert_eq!(slack.requests().len(), 1, "one alert: cooldown, then muted");
    assert_eq!(
        pg.psql(
            "SELECT status || ' ' || count(*) FROM outbox WHERE channel = 'otlp' GROUP BY status"
        ),
        "sent 4"
    );
}
