//! Delivered before the program ends: the original design's program
//! (`EventLogger::new("error_table")`, `push_to_table(msg,
//! PushOptions::new().slack(true)..)`, then the program ends) against a
//! loopback webhook that answers like Slack, a real SMTP server (aiosmtpd)
//! and a real Sentry-compatible server (Bugsink), in every way a program
//! ends: a return from `main`, `flush` then `std::process::exit`,
//! `std::process::exit` alone, a panic, a `panic = "abort"` build, and
//! SIGTERM with `ERRSNAP_DRAIN_ON_TERMINATION`. Each stored event that alerts
//! gives one Slack message, one e-mail and one Bugsink event *during the
//! run*: the peers are read after the child has exited, and no other
//! process ever opens its database.

use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use errsnap::{EventLogger, PushOptions};

use crate::peers::Bugsink;
use crate::servers::{HttpStub, RealSmtp, SmtpOptions};
use crate::util::{self, count, open};

/// The child side of every ending (`ERRSNAPTEST_ENDING`): the original
/// design's program, run in its own directory (`./LOGS.db`, settings from
/// the environment).
pub(crate) fn original_design() {
    let ending = std::env::var("ERRSNAPTEST_ENDING").unwrap();
    let event = EventLogger::new("error_table").unwrap();
    if ending == "panic" {
        errsnap::install_panic_hook(&event);
    }
    event.push_to_table(
        "Error: division by zero",
        PushOptions::new().slack(true).email(true).hw_monitor(true),
    );
    match ending.as_str() {
        "return" => {}
        "flush_exit" => {
            let delivered = event.flush(Duration::from_secs(10));
            println!("flushed={delivered}");
            std::process::exit(0);
        }
        "exit" => {
            // The parent times the exit from this line.
            println!("exiting");
            std::process::exit(0)
        }
        "panic" => panic!("the original design gives up"),
        "sigterm" => {
            println!("ready");
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        other => panic!("unknown ending {other}"),
    }
}

/// The three peers, and the settings that point the child at them.
struct Peers {
    slack: HttpStub,
    smtp: RealSmtp,
    bugsink: Bugsink,
}

impl Peers {
    fn start(test: &str) -> Option<Peers> {
        let smtp = RealSmtp::start(test, SmtpOptions::default())?;
        let bugsink = Bugsink::start(test)?;
        Some(Peers {
            slack: HttpStub::start(),
            smtp,
            bugsink,
        })
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ERRSNAP_SLACK_WEBHOOK_URL", self.slack.url()),
            ("ERRSNAP_SMTP_HOST", "127.0.0.1".into()),
            ("ERRSNAP_SMTP_PORT", self.smtp.port.to_string()),
            ("ERRSNAP_SMTP_TLS", "none".into()),
            ("ERRSNAP_EMAIL_FROM", "alerts@shop.test".into()),
            ("ERRSNAP_EMAIL_TO", "oncall@shop.test".into()),
            ("ERRSNAP_EMAIL_MIN_LEVEL", "error".into()),
            ("ERRSNAP_SENTRY_DSN", self.bugsink.dsn.clone()),
            // Room for a loaded machine (the suite runs servers beside
            // it): what is tested is that the exit waits, not how fast.
            ("ERRSNAP_EXIT_BUDGET_MS", "15000".into()),
        ]
    }

    /// What each peer has received so far.
    fn received(&self) -> (usize, usize, usize) {
        let events = self.bugsink.query()["events"]
            .as_array()
            .map_or(0, Vec::len);
        (self.slack.requests().len(), self.smtp.mails().len(), events)
    }
}

/// This test binary as a child playing `original_design`, in `dir`.
fn child(dir: &Path, ending: &str, env: &[(&'static str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .current_dir(dir)
        .env("ERRSNAPTEST_SCENARIO", "original_design")
        .env("ERRSNAPTEST_DB", dir.join("LOGS.db"))
        .env("ERRSNAPTEST_ENDING", ending)
        .env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs an ending to its end (SIGTERM once it is ready, for `sigterm`).
fn run(dir: &Path, ending: &str, env: &[(&'static str, String)]) -> Output {
    let mut cmd = child(dir, ending, env);
    if ending != "sigterm" {
        return cmd.output().unwrap();
    }
    let mut c = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    // SAFETY: signals our own child.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
    c.wait_with_output().unwrap()
}

/// What the child stored: events that alert (error and above), and per
/// channel its outbox rows by status.
fn stored(db: &Path) -> (i64, Vec<(String, String, i64)>, Vec<String>) {
    let conn = open(db);
    let alerting = count(&conn, "SELECT count(*) FROM events WHERE level >= 4");
    let rows = conn
        .prepare("SELECT channel, status, count(*) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let runs = conn
        .prepare("SELECT status FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    (alerting, rows, runs)
}

/// Every alerting event was sent on every channel, during the run.
fn assert_delivered(peers: &Peers, before: (usize, usize, usize), db: &Path, how: &str, run: &str) {
    let (alerting, rows, runs) = stored(db);
    assert!(alerting >= 1, "{how}: nothing stored");
    let expected: Vec<(String, String, i64)> = ["email", "sentry", "slack"]
        .iter()
        .map(|c| ((*c).to_owned(), "sent".to_owned(), alerting))
        .collect();
    assert_eq!(rows, expected, "{how}: every alert sent, nothing left");
    // Bugsink digests an event in the background: give it a moment, but
    // the child (the only sender) is gone already.
    let n = before.2 + alerting as usize;
    peers.bugsink.wait_events(n, Duration::from_secs(30));
    let after = peers.received();
    let a = alerting as usize;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (a, a, a),
        "{how}: one Slack message, one e-mail and one Sentry event per stored event"
    );
    assert_eq!(runs, [run], "{how}: the run is recorded as {run}");
}

#[test]
fn the_original_design_delivers_in_every_ending() {
    let Some(peers) = Peers::start("delivery endings") else {
        return;
    };
    let env = peers.env();
    for (ending, status, ledger) in [
        ("return", Some(0), "exited"),
        ("flush_exit", Some(0), "exited"),
        ("exit", Some(0), "exited"),
        ("panic", Some(101), "crashed"),
    ] {
        let before = peers.received();
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), ending, &env);
        assert_eq!(
            out.status.code(),
            status,
            "{ending}: {}",
            util::describe(&out)
        );
        if ending == "flush_exit" {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("flushed=true"),
                "flush returns true once delivered: {}",
                util::describe(&out)
            );
        }
        assert_delivered(&peers, before, &dir.path().join("LOGS.db"), ending, ledger);
    }
    // SIGTERM with the opt-in: drained, then ended by the signal itself.
    let before = peers.received();
    let dir = tempfile::tempdir().unwrap();
    let mut env_term = env.clone();
    env_term.push(("ERRSNAP_DRAIN_ON_TERMINATION", "1".into()));
    let out = run(dir.path(), "sigterm", &env_term);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGTERM),
        "{}",
        util::describe(&out)
    );
    assert_delivered(
        &peers,
        before,
        &dir.path().join("LOGS.db"),
        "sigterm",
        "exited",
    );
    // A `panic = "abort"` build: the hook delivers before the abort.
    let before = peers.received();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("LOGS.db");
    let mut cmd = Command::new(util::abort_fixture());
    cmd.arg(&db).arg("alert").current_dir(dir.path());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        util::describe(&out)
    );
    let how = format!("panic = abort ({})", util::describe(&out));
    assert_delivered(&peers, before, &db, &how, "crashed");
}

/// Without the opt-in, SIGTERM ends the process as it always did (what
/// README says still loses the queue).
#[test]
fn without_the_opt_in_sigterm_ends_the_process_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let slack = HttpStub::start();
    let env = vec![("ERRSNAP_SLACK_WEBHOOK_URL", slack.url())];
    let out = run(dir.path(), "sigterm", &env);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGTERM),
        "{}",
        util::describe(&out)
    );
}

/// A webhook that accepts and never answers: the exit still ends within
/// the budget, and the delivery cut short is put back (pending, not left
/// `sending`) for the next start.
#[test]
fn a_hung_webhook_keeps_the_exit_within_the_budget() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(4) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().unwrap();
    let budget = Duration::from_millis(1500);
    let env = vec![
        (
            "ERRSNAP_SLACK_WEBHOOK_URL",
            format!("http://127.0.0.1:{port}/hook"),
        ),
        ("ERRSNAP_ALERT_TIMEOUT_SECS", "30".into()),
        ("ERRSNAP_EXIT_BUDGET_MS", budget.as_millis().to_string()),
    ];
    // Timed from the call to `exit` (the child says so), not from its
    // start, which a loaded machine makes slow.
    let mut c = child(dir.path(), "exit", &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("exiting") {
        line.clear();
        if lines.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    let started = Instant::now();
    let out = c.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(
        took < budget + Duration::from_millis(1000),
        "the exit took {took:?} with a budget of {budget:?}"
    );
    let (alerting, rows, runs) = stored(&dir.path().join("LOGS.db"));
    assert_eq!(alerting, 1);
    assert_eq!(
        rows,
        [
            // Asked for, but no e-mail is configured here.
            ("email".to_owned(), "dropped".to_owned(), 1),
            ("slack".to_owned(), "pending".to_owned(), 1)
        ],
        "put back, not left sending"
    );
    let claim: Option<String> = open(&dir.path().join("LOGS.db"))
        .query_row(
            "SELECT claim_run FROM outbox WHERE channel = 'slack'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(claim, None);
    assert_eq!(runs, ["exited"]);
    drop(held);
}

/// `std::process::exit` from one of errsnap's own threads (a `before_save`
/// hook) is not waited on: the exit hook does nothing there.
#[test]
fn exit_from_an_errsnap_thread_does_not_wait_for_itself() {
    let (_d, path) = util::temp_db();
    let started = Instant::now();
    let out = util::run_child("exit_from_before_save", &path, &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", util::describe(&out));
    assert!(
        took < Duration::from_secs(8),
        "the exit waited for the writer it was called from ({took:?}, budget 20 s)"
    );
}

/// The writer side of `exit_from_before_save`.
pub(crate) fn exit_from_before_save(db: PathBuf) {
    let logger = util::builder(&db, "selfexit")
        .exit_budget(Duration::from_secs(20))
        .before_save(|_| std::process::exit(3))
        .build()
        .unwrap();
    logger.error("the hook ends the process");
    std::thread::sleep(Duration::from_secs(30));
}
