//! The reliability suite (#8): kills, concurrency, a full disk, outages,
//! restarts and hostile input. Each test prints its figures (run with
//! `--nocapture`); RELIABILITY.md records them.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use errsnap::{Config, Level};

use crate::servers::{HttpStub, Reply};
use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(30);

/// A small deterministic generator for the kill delays.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn child_cmd(scenario: &str, db: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env("ERRSNAPTEST_SCENARIO", scenario)
        .env("ERRSNAPTEST_DB", db)
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// Everything that must hold in a database at any commit boundary.
fn assert_consistent(path: &Path) {
    let db = open(path);
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let fk: i64 = db
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count() as i64;
    assert_eq!(
        fk, 0,
        "an event points at a missing group, backtrace, snapshot or host"
    );
    // No partial event: every backtrace has all its frames, and the group
    // counts add up to the events (both are written in one transaction).
    assert_eq!(
        count(&db, "SELECT count(*) FROM backtraces b WHERE frame_count != (SELECT count(*) FROM frames f WHERE f.backtrace_id = b.id)"),
        0
    );
    assert_eq!(
        count(&db, "SELECT coalesce(sum(count), 0) FROM event_groups"),
        count(&db, "SELECT count(*) FROM events")
    );
}

#[test]
fn sigkill_at_random_moments_loses_nothing_that_was_flushed() {
    let (dir, _) = util::temp_db();
    let mut rng = Lcg(0x5eed);
    let runs = 50;
    let mut verified = 0i64;
    let mut killed_with_rows = 0;
    for run in 0..runs {
        let path = dir.path().join(format!("kill-{run}.db"));
        let mut child = child_cmd("kill_target", &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                l2.lock().unwrap().push(line);
            }
        });
        // Let it start, then kill it at a random moment of its writing.
        let start = Instant::now();
        // (the harness prints "test child::entry ... " without a newline)
        while !lines.lock().unwrap().iter().any(|l| l.ends_with("started")) {
            assert!(start.elapsed() < T, "the child never started");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(5 + rng.next(300)));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        reader.join().unwrap();
        assert_consistent(&path);
        // Every event whose flush returned before the kill is there.
        let db = open(&path);
        let mut flushed = [-1i64; 4];
        for line in lines.lock().unwrap().iter() {
            if let Some(rest) = line.find("flushed ").map(|i| &line[i + 8..]) {
                let mut it = rest.split(' ');
                let t: usize = it.next().unwrap().parse().unwrap();
                let i: i64 = it.next().unwrap().parse().unwrap();
                flushed[t] = flushed[t].max(i);
            }
        }
        for (t, max) in flushed.iter().enumerate() {
            if *max < 0 {
                continue;
            }
            let present = count(
                &db,
                &format!(
                    "SELECT count(*) FROM events WHERE json_extract(tags, '$.thread') = '{t}'
                     AND CAST(json_extract(tags, '$.seq') AS INTEGER) <= {max}"
                ),
            );
            assert_eq!(
                present,
                max + 1,
                "run {run}: thread {t} flushed up to {max}"
            );
            verified += present;
        }
        // More than the four warm-up events (one per writing thread).
        if count(&db, "SELECT count(*) FROM events") > 4 {
            killed_with_rows += 1;
        }
    }
    eprintln!(
        "reliability: {runs} SIGKILLs, integrity ok every time, {verified} flushed events verified, {killed_with_rows} runs killed mid-write"
    );
    assert!(
        killed_with_rows >= runs / 2,
        "the kills should land while writing"
    );
}

#[test]
fn four_processes_by_four_threads_write_exactly_forty_thousand() {
    let (_d, path) = util::temp_db();
    // Create the file first, so four first-openers do not race to migrate.
    drop(util::logger(&path, "multi"));
    let start = Instant::now();
    let children: Vec<_> = (0..4)
        .map(|_| {
            child_cmd("concurrent_writer", &path)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let took = start.elapsed();
    // A start imports whatever a process had to spool while the others held
    // the lock.
    let logger = util::logger(&path, "multi");
    assert!(logger.flush(T));
    drop(logger);
    assert_consistent(&path);
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 40_000);
    assert_eq!(count(&db, "SELECT count(DISTINCT uid) FROM events"), 40_000);
    assert_eq!(count(&db, "SELECT count(DISTINCT pid) FROM events"), 4);
    assert_eq!(count(&db, "SELECT count(*) FROM event_groups"), 5);
    assert_eq!(count(&db, "SELECT min(count) FROM event_groups"), 8_000);
    assert_eq!(count(&db, "SELECT max(count) FROM event_groups"), 8_000);
    eprintln!("reliability: 4 processes x 4 threads x 2,500 events: 40,000 rows, 5 groups of 8,000, in {took:?}");
}

/// Mounts a small tmpfs (root only); `None` where that is not possible.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_spools_elsewhere_and_imports_once_space_returns() {
    let (dir, _) = util::temp_db();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_fs) = Tmpfs::mount(&mnt, "700k") else {
        eprintln!("reliability: cannot mount a tmpfs here; the full-disk case is not exercised");
        return;
    };
    // Fill most of the file system, leaving the database little room (and
    // room enough, once the filler goes, for the write-ahead log's pages to
    // be copied into the database file beside the log).
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![7u8; 300 * 1024]).unwrap();
    let path = mnt.join("LOGS.db");
    let logger = util::builder(&path, "diskfull")
        .backtrace_level(Level::Fatal)
        .build()
        .unwrap();
    let big = "x".repeat(16 * 1024);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(logger.error(format!("{i} {big}")));
        // One event per transaction, so the disk fills part way.
        assert!(
            logger.flush(T),
            "flush returns once the event is stored or spooled"
        );
    }
    // The per-user fallback: $XDG_STATE_HOME/errsnap, ~/.local/state/errsnap
    // or $TMPDIR/errsnap-<uid> (see SECURITY.md).
    let own = format!("spool-{}.jsonl", std::process::id());
    let state_dirs = [
        std::env::var_os("XDG_STATE_HOME").map(|s| std::path::PathBuf::from(s).join("errsnap")),
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/state/errsnap")),
        // SAFETY: geteuid has no preconditions.
        Some(std::env::temp_dir().join(format!("errsnap-{}", unsafe { libc::geteuid() }))),
    ];
    let fallback_has_files = state_dirs
        .iter()
        .flatten()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .any(|sub| sub.path().join(&own).exists());
    let stored_before = count(&open(&path), "SELECT count(*) FROM events");
    assert!(
        stored_before < 20,
        "the disk should have filled up ({stored_before} stored)"
    );
    assert!(
        stored_before > 0,
        "some events should fit before the disk is full"
    );
    assert!(
        fallback_has_files,
        "the spool went to the per-user state directory"
    );
    // Space comes back: the writer retries and imports, exactly once.
    std::fs::remove_file(&filler).unwrap();
    let start = Instant::now();
    while count(&open(&path), "SELECT count(*) FROM events") < 20 {
        assert!(start.elapsed() < T, "the spool was not imported");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(logger);
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(DISTINCT uid) FROM events"), 20);
    for id in ids {
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM events WHERE uid = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    eprintln!("reliability: disk full after {stored_before} events; 20 - {stored_before} spooled to the temp dir and imported once");
}

#[test]
fn a_panicking_channel_keeps_the_alert_and_the_process() {
    struct Boom;
    impl errsnap::channels::Channel for Boom {
        fn name(&self) -> &str {
            "boom"
        }
        fn send(
            &self,
            _: &errsnap::channels::Alert,
        ) -> Result<(), errsnap::channels::ChannelError> {
            panic!("the channel itself fails");
        }
    }
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "boom")
        .channel(Boom)
        .alert_retry_base(Duration::from_secs(600))
        .build()
        .unwrap();
    logger.error("to a panicking channel");
    // Committed; the alert waits for a retry long after the deadline.
    let report = logger.flush_report(T);
    assert!(report.committed && report.pending() == 1, "{report:?}");
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);
    let (status, err): (String, String) = db
        .query_row("SELECT status, last_error FROM outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(status, "pending");
    assert!(err.contains("panicked"), "{err}");
    // The process is fine and keeps recording.
    logger.error("after");
    assert!(logger.flush_report(T).committed);
    assert_eq!(count(&open(&path), "SELECT count(*) FROM events"), 2);
}

#[test]
fn outages_never_make_the_caller_wait_and_alerts_go_out_once_after() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    config.set("ERRSNAP_SLACK_MAX_PER_MINUTE", "6000").unwrap();
    config.set("ERRSNAP_ALERT_TIMEOUT_SECS", "1").unwrap();
    // An SMTP server that is absent: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    config.set("ERRSNAP_SMTP_HOST", "127.0.0.1").unwrap();
    config.set("ERRSNAP_SMTP_PORT", port.to_string()).unwrap();
    config.set("ERRSNAP_SMTP_TLS", "none").unwrap();
    config.set("ERRSNAP_EMAIL_FROM", "a@test.invalid").unwrap();
    config.set("ERRSNAP_EMAIL_TO", "b@test.invalid").unwrap();
    config.set("ERRSNAP_EMAIL_MIN_LEVEL", "error").unwrap();
    let logger = util::builder(&path, "outage")
        .config(config)
        .alert_retry_base(Duration::from_millis(200))
        .build()
        .unwrap();
    // Slack: down (500), then rate limited, then hanging, then fine.
    stub.script([
        Reply::status(500, "down"),
        Reply::Status(
            429,
            "slow down".into(),
            vec![("Retry-After".into(), "1".into())],
        ),
        Reply::Hang(Duration::from_secs(3)),
    ]);
    let mut worst = Duration::ZERO;
    for i in 0..200 {
        let t = Instant::now();
        logger.error(format!(
            "failure {} during the outage",
            ["a", "b", "c", "d"][i % 4]
        ));
        worst = worst.max(t.elapsed());
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Committed; the e-mails cannot go out (no server), so the flush
    // stops at its timeout with them pending.
    let report = logger.flush_report(Duration::from_secs(2));
    assert!(report.committed && !report.is_complete(), "{report:?}");
    assert!(
        worst < Duration::from_millis(50),
        "a caller waited {worst:?} (regression guard)"
    );
    // Slack recovers: each group's alert goes out exactly once.
    let reqs = stub.wait_for(7, T);
    std::thread::sleep(Duration::from_millis(500));
    let db = open(&path);
    let sent = count(
        &db,
        "SELECT count(*) FROM outbox WHERE channel = 'slack' AND status = 'sent'",
    );
    assert_eq!(sent, 4, "four groups, four Slack alerts");
    let ok_requests = reqs.len() as i64 - 3; // the scripted failures
    assert_eq!(
        stub.requests().len() as i64 - 3,
        sent,
        "none sent twice ({ok_requests})"
    );
    // E-mail is absent: its alerts wait in the outbox.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE channel = 'email' AND status = 'pending'"
        ),
        4
    );
    eprintln!("reliability: worst caller-side time during the Slack/SMTP outage: {worst:?}");
}

#[test]
fn a_restart_drains_pending_alerts_and_the_spool() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let out = util::run_child("pending_and_spool", &path, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let spool = path.with_file_name("LOGS.db.spool");
    assert!(spool.exists(), "the child left a spool");
    // Pending, or claimed by the child when it exited (released at start).
    assert_eq!(
        count(
            &open(&path),
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ),
        1,
        "{}",
        util::describe(&out)
    );
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    let logger = util::builder(&path, "restart")
        .config(config)
        .build()
        .unwrap();
    // This process's own events (the spooled ones) made no alert: they
    // are in the cooldown. The earlier run's pending alert goes out at
    // start, without a flush waiting for it.
    assert!(logger.flush(T));
    assert!(!spool.exists());
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 3);
    stub.wait_for(1, T);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        stub.requests().len(),
        1,
        "the pending alert, once; the spooled events are in its cooldown"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM outbox WHERE status = 'pending'"),
        0
    );
}

#[test]
fn hostile_messages_are_stored_intact_and_safe_in_alerts() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    config.set("ERRSNAP_SLACK_MAX_PER_MINUTE", "6000").unwrap();
    let logger = util::builder(&path, "hostile")
        .config(config)
        .build()
        .unwrap();
    let messages = [
        String::new(),
        "nul\0byte".to_owned(),
        "line one\r\nline two".to_owned(),
        "\x1b[31mred\x1b[0m \x1b]0;title\x07".to_owned(),
        "<!channel> <!here> <@U123> <https://evil.test|click>".to_owned(),
        "</script><script>alert(1)</script>".to_owned(),
        "'; DROP TABLE events; -- \" OR 1=1".to_owned(),
        "مرحبا עולם \u{202e}evil\u{202c} e\u{301}\u{301}\u{301} z\u{338}".to_owned(),
    ];
    for m in &messages {
        logger.error(m.clone());
    }
    assert!(logger.flush(T));
    let db = open(&path);
    for m in &messages {
        let n: i64 = db
            .query_row("SELECT count(*) FROM events WHERE message = ?1", [m], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "{m:?} not stored byte for byte");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM events"),
        messages.len() as i64
    );
    for r in stub.requests() {
        let v = r.json();
        let mut texts = vec![v["text"].as_str().unwrap().to_owned()];
        for b in v["blocks"].as_array().unwrap() {
            texts.push(b.to_string());
        }
        for t in texts {
            assert!(
                !t.contains("<!") && !t.contains("<https") && !t.contains("<@"),
                "{t}"
            );
            assert!(!t.contains("<script>"), "{t}");
        }
    }
    let os = {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            std::ffi::OsStr::from_bytes(b"bad \xff\xfe path").to_owned()
        }
        #[cfg(not(unix))]
        {
            std::ffi::OsString::from("bad path")
        }
    };
    logger.log_os(Level::Error, &os);
    assert!(logger.flush(T));
    let (msg, tags): (String, String) = db
        .query_row(
            "SELECT message, tags FROM events WHERE message LIKE 'bad %'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    #[cfg(unix)]
    {
        assert_eq!(msg, "bad \u{fffd}\u{fffd} path");
        assert!(tags.contains("\"errsnap.invalid_utf8\":\"true\""), "{tags}");
    }
    let _ = (msg, tags);
}

#[test]
fn every_configuration_key_rejects_bad_values_by_name_and_never_echoes_secrets() {
    let (_d, path) = util::temp_db();
    let secret = "S3CRET-VALUE-123";
    let long = "9".repeat(5_000);
    let mut rejected = 0;
    for (key, is_secret) in Config::keys() {
        for value in [
            "not a value ☃",
            "-1",
            long.as_str(),
            "99999999999999999999999",
        ] {
            let value = if is_secret {
                format!("{value}{secret}")
            } else {
                value.to_owned()
            };
            let mut c = Config::empty();
            c.set(key, value.clone()).unwrap();
            assert!(!format!("{c:?}").contains(secret));
            let result =
                std::panic::catch_unwind(|| util::builder(&path, "keys").config(c).build());
            let result = result.unwrap_or_else(|_| panic!("{key}={value:?} panicked"));
            if let Err(e) = result {
                let text = e.to_string();
                // The key itself, or the companion key this one needs.
                let names_a_key =
                    text.contains(key) || (text.contains("missing") && text.contains("ERRSNAP_"));
                assert!(names_a_key, "{key}={value:?}: {text}");
                assert!(
                    !text.contains(secret) && !format!("{e:?}").contains(secret),
                    "{key}: {text}"
                );
                rejected += 1;
            }
        }
    }
    eprintln!("reliability: {} keys x 4 bad values: {rejected} rejected by name, the rest accepted as free text", Config::keys().count());
    assert!(rejected > 60);
}

#[test]
fn a_runaway_logger_never_blocks_and_counts_every_drop() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "runaway")
        .queue_capacity(100)
        .linger(Duration::from_millis(200))
        .build()
        .unwrap();
    let start = Instant::now();
    let n = 100_000;
    for i in 0..n {
        logger.warn(format!("flood {i}"));
    }
    let took = start.elapsed();
    assert!(logger.flush(T));
    drop(logger);
    let db = open(&path);
    let stored = count(&db, "SELECT count(*) FROM events");
    let dropped = count(
        &db,
        "SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'dropped_events'",
    );
    assert_eq!(stored + dropped, n, "every event is stored or counted");
    eprintln!("reliability: {n} events into a 100-slot queue in {took:?}: {stored} stored, {dropped} dropped and counted");
}
