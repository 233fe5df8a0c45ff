//! `fleet`: events per second into PostgreSQL (issue #18 (5)), from one
//! process and from four at once, into a local server the report starts
//! itself (Debian's `postgresql`, as in the tests). Each process records
//! `n` errors from 4 threads across 50 groups and flushes; the time is from
//! the first event handed over to the last one committed on the server.
//! "Four processes together no slower than one" is the ratio of the
//! aggregate rates.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "../../../tests/support/pg_server.rs"]
mod pg_server;

#[path = "../../../tests/support/mariadb_server.rs"]
pub(crate) mod mariadb_server;

/// Played in a child: `n` errors into the database at `url`, then flush;
/// prints `{"events": n, "seconds": s}`.
pub(crate) fn pg_child(n: u64, url: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let logger = errsnap::EventLogger::builder()
        .name("fleet")
        .db_path(dir.path().join("LOGS.db"))
        .config(errsnap::Config::empty())
        .database_url(url)
        // Back-pressure instead of drops: the sustained rate is measured.
        .overflow(errsnap::Overflow::Block(Duration::from_secs(60)))
        .build()
        .expect("logger");
    // The connection and the schema are ready before the clock starts.
    logger.error("warm up");
    assert!(logger.flush(Duration::from_secs(60)));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let logger = &logger;
            s.spawn(move || {
                for i in 0..n / 4 {
                    logger.error(format!("job {} failed on worker {t}", i % 50));
                }
            });
        }
    });
    assert!(logger.flush(Duration::from_secs(600)), "flushed");
    let seconds = start.elapsed().as_secs_f64();
    json!({"events": n / 4 * 4, "seconds": seconds, "dropped": logger.dropped_events()})
}

fn run_children(url: &str, processes: usize, n: u64) -> (u64, f64, u64) {
    let exe = std::env::current_exe().expect("exe");
    let start = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args(["--pg-child", &n.to_string(), url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("child")
        })
        .collect();
    let mut events = 0;
    let mut dropped = 0;
    for c in children {
        let out = c.wait_with_output().expect("child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.lines().last().unwrap_or("{}")).expect("json");
        events += v["events"].as_u64().unwrap_or(0);
        dropped += v["dropped"].as_u64().unwrap_or(0);
    }
    (events, start.elapsed().as_secs_f64(), dropped)
}

/// The same for MySQL / MariaDB (`fleet_mysql`): one process and four,
/// into a local MariaDB the report starts itself.
pub(crate) fn fleet_mysql(quick: bool) -> Value {
    let Some(m) = mariadb_server::Maria::start("bench fleet mysql", None) else {
        return json!({"skipped": "no MariaDB server binaries"});
    };
    let url = m.url("?ssl-mode=DISABLED");
    let n = if quick { 20_000 } else { 200_000 };
    let (one_events, one_s, one_dropped) = run_children(&url, 1, n);
    let (four_events, four_s, four_dropped) = run_children(&url, 4, n);
    let stored: i64 = m
        .sql("SELECT count(*) FROM errsnap.events")
        .parse()
        .unwrap_or(-1);
    let one_rate = one_events as f64 / one_s;
    let four_rate = four_events as f64 / four_s;
    json!({
        "one_process": {"events": one_events, "seconds": one_s, "events_per_s": one_rate, "dropped": one_dropped},
        "four_processes": {"events": four_events, "seconds": four_s, "events_per_s": four_rate, "dropped": four_dropped},
        "four_vs_one": four_rate / one_rate,
        "stored": stored,
        "expected_stored": one_events + four_events + 5,
    })
}

/// The `fleet` section (`Value::Null` with a note when no PostgreSQL is
/// installed).
pub(crate) fn fleet(quick: bool) -> Value {
    let Some(pg) = pg_server::Pg::start("bench fleet", pg_server::PgOptions::default()) else {
        return json!({"skipped": "no PostgreSQL server binaries"});
    };
    let url = pg.url("?sslmode=disable");
    let n = if quick { 20_000 } else { 200_000 };
    let (one_events, one_s, one_dropped) = run_children(&url, 1, n);
    let (four_events, four_s, four_dropped) = run_children(&url, 4, n);
    let stored: i64 = pg.psql("SELECT count(*) FROM events").parse().unwrap_or(-1);
    let one_rate = one_events as f64 / one_s;
    let four_rate = four_events as f64 / four_s;
    json!({
        "one_process": {"events": one_events, "seconds": one_s, "events_per_s": one_rate, "dropped": one_dropped},
        "four_processes": {"events": four_events, "seconds": four_s, "events_per_s": four_rate, "dropped": four_dropped},
        "four_vs_one": four_rate / one_rate,
        // Warm-up events included: 1 per process.
        "stored": stored,
        "expected_stored": one_events + four_events + 5,
    })
}
