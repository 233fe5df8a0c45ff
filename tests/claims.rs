//! Claims name their run (boot id, pid, process start), and any process
//! puts back a claim whose run has ended: on SQLite and on PostgreSQL, the
//! same three claims are left `sending` by hand, then a new process starts.
//!
//! - a run of another host (another boot id) that the ledger records as
//!   exited: put back, its alert sent;
//! - a run of this boot whose process is gone: put back, sent;
//! - a run of another host still `running` in the ledger, claimed just
//!   now: left alone (it may still be sending).

use std::time::Duration;

use errsnap::Config;

use crate::servers::HttpStub;
use crate::util;

const T: Duration = Duration::from_secs(20);

/// This machine's boot id.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_owned()
}

/// A pid that no process has now (a child that has ended).
fn gone_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// The statements that leave the three claims, and their runs (the SQL is
/// the same on both stores).
fn forge_claims(now_ms: i64) -> String {
    let here = boot_id();
    let gone = gone_pid();
    let claim = |message: &str, run: &str| {
        format!(
            "UPDATE outbox SET status = 'sending', claimed_at = {now_ms}, claim_run = '{run}'
             WHERE event_uid = (SELECT uid FROM events WHERE message = '{message}');"
        )
    };
    format!(
        "INSERT INTO runs (boot_id, pid, process_start, started_at, status)
             VALUES ('elsewhere-a', 4242, 77, 1, 'exited'),
                    ('elsewhere-b', 4343, 88, 1, 'running');
         {}{}{}",
        claim("disk full", "elsewhere-a/4242/77"),
        claim("queue stuck", &format!("{here}/{gone}/5")),
        claim("cache cold", "elsewhere-b/4343/88"),
    )
}

/// Each event's outbox row, as `message:status:claim` in message order.
const ROWS: &str = "SELECT e.message, o.status, o.claim_run FROM outbox o
    JOIN events e ON e.uid = o.event_uid ORDER BY e.message";

/// What the rows should be after the restart: the two stale claims sent
/// (by the new process, whose claim they keep), the live one untouched.
fn assert_rows(rows: &[(String, String, Option<String>)]) {
    let short: Vec<(&str, &str)> = rows
        .iter()
        .map(|(m, s, _)| (m.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        short,
        [
            ("cache cold", "sending"),
            ("disk full", "sent"),
            ("queue stuck", "sent")
        ],
        "a claim of a run still running elsewhere is left alone: {rows:?}"
    );
    assert_eq!(rows[0].2.as_deref(), Some("elsewhere-b/4343/88"));
    let me = format!("{}/{}/", boot_id(), std::process::id());
    for (m, _, claim) in &rows[1..] {
        assert!(
            claim.as_deref().is_some_and(|c| c.starts_with(&me)),
            "{m}: sent by this process ({claim:?})"
        );
    }
}

/// Three groups, three alerts, none delivered (the webhook refuses
/// connections); the logger is gone afterwards.
fn three_pending_alerts(builder: errsnap::EventLoggerBuilder) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", dead).unwrap();
    let logger = builder
        .config(config)
        .alert_retry_base(Duration::from_secs(600))
        .build()
        .unwrap();
    for what in ["disk full", "queue stuck", "cache cold"] {
        logger.error(what);
    }
    assert!(logger.flush_report(T).committed);
    drop(logger);
}

/// Starts a process with a working webhook; returns the Slack messages it
/// sent and the statuses left.
fn restart(builder: errsnap::EventLoggerBuilder, slack: &HttpStub) {
    let mut config = Config::empty();
    config
        .set("ERRSNAP_SLACK_WEBHOOK_URL", slack.url())
        .unwrap();
    let logger = builder.config(config).build().unwrap();
    slack.wait_for(2, T);
    std::thread::sleep(Duration::from_millis(300));
    drop(logger);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_claim_of_an_ended_run_is_put_back_by_any_process_on_sqlite() {
    let (_d, path) = util::temp_db();
    three_pending_alerts(util::builder(&path, "claims"));
    let db = util::open(&path);
    db.execute_batch(&forge_claims(now_ms())).unwrap();
    drop(db);
    let slack = HttpStub::start();
    restart(util::builder(&path, "claims"), &slack);
    let texts: Vec<String> = slack.requests().iter().map(|r| r.body.clone()).collect();
    assert_eq!(texts.len(), 2, "the two stale claims, once each: {texts:?}");
    assert!(texts.iter().any(|t| t.contains("disk full")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("queue stuck")), "{texts:?}");
    let rows: Vec<(String, String, Option<String>)> = util::open(&path)
        .prepare(ROWS)
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_rows(&rows);
}

#[cfg(all(feature = "postgres", feature = "cli"))]
#[test]
fn a_claim_of_an_ended_run_is_put_back_by_any_process_on_postgres() {
    use crate::pg::pg_server::{Pg, PgOptions};
    let Some(pg) = Pg::start("claims on postgres", PgOptions::default()) else {
        return;
    };
    let url = pg.url("?sslmode=disable");
    let (_d, path) = util::temp_db();
    three_pending_alerts(util::builder(&path, "claims").database_url(url.clone()));
    pg.psql(&forge_claims(now_ms()));
    let slack = HttpStub::start();
    restart(
        util::builder(&path, "claims").database_url(url.clone()),
        &slack,
    );
    let texts: Vec<String> = slack.requests().iter().map(|r| r.body.clone()).collect();
    assert_eq!(texts.len(), 2, "the two stale claims, once each: {texts:?}");
    assert!(texts.iter().any(|t| t.contains("disk full")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("queue stuck")), "{texts:?}");
    let rows: Vec<(String, String, Option<String>)> = pg
        .psql(&format!(
            "SELECT string_agg(m || '|' || s || '|' || c, ';' ORDER BY m) FROM ({ROWS}) AS r(m, s, c)"
        ))
        .split(';')
        .map(|r| {
            let mut f = r.splitn(3, '|');
            let (m, s, c) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (m.to_owned(), s.to_owned(), Some(c.to_owned()))
        })
        .collect();
    assert_rows(&rows);
}
