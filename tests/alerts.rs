//! Alerts (#4): Slack and SMTP over loopback with real protocols, the
//! outbox, retries, throttling, and configuration errors.

use std::time::{Duration, Instant};

use errsnap::{Config, EventLogger, EventLoggerBuilder, Level, PushOptions};

use crate::servers::{HttpStub, Reply, SmtpMode, SmtpSink};
use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(20);

fn slack_config(stub: &HttpStub) -> Config {
    let mut c = Config::empty();
    c.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    c.set("ERRSNAP_SLACK_APP_NAME", "shop").unwrap();
    c.set("ERRSNAP_SLACK_MAX_PER_MINUTE", "6000").unwrap();
    c
}

fn slack_logger(path: &std::path::Path, stub: &HttpStub) -> EventLoggerBuilder {
    util::builder(path, "alerts")
        .config(slack_config(stub))
        .alert_retry_base(Duration::from_millis(50))
}

fn outbox(path: &std::path::Path) -> Vec<(String, String, i64, Option<String>)> {
    let db = open(path);
    let mut stmt = db
        .prepare("SELECT channel, status, attempts, last_error FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn slack_alert_has_the_expected_shape_and_escapes_user_text() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub)
        .environment("prod")
        .build()
        .unwrap();
    let hostile = "db down <!channel> see <https://evil.example|bank> & ```rm -rf```";
    let id = logger.error(hostile);
    assert!(logger.flush(T));
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/services/T000/B000/SECRETTOKEN");
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/json")));
    let body = r.json();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("[shop] ERROR: db down &lt;!channel&gt;"),
        "{text}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    // What the real server receives: no link, mention or preview made of
    // the logged text.
    assert_eq!(
        (&body["unfurl_links"], &body["unfurl_media"]),
        (&serde_json::json!(false), &serde_json::json!(false))
    );
    assert_eq!(blocks[0]["text"]["verbatim"], true, "{body}");
    assert!(!r.body.contains("<!channel>") && !r.body.contains("<https://"));
    let all = r.body.clone();
    assert!(
        all.contains(&id.to_string()),
        "the event id is in the alert"
    );
    assert!(all.contains("pid "), "{all}");
    assert!(all.contains("Occurrences"), "{all}");
    assert!(all.contains("Backtrace"), "{all}");
    // The stored event keeps the text intact.
    let db = open(&path);
    let stored: String = db
        .query_row(
            "SELECT message FROM events WHERE uid = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, hostile);
    assert_eq!(
        outbox(&path),
        vec![("slack".into(), "sent".into(), 1, None)]
    );
}

#[test]
fn levels_route_and_push_options_override() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub).build().unwrap();
    logger.warn("below the slack level");
    logger.push_to_table(
        "explicitly asked",
        PushOptions::new().level(Level::Warn).slack(true),
    );
    logger.push_to_table("explicitly not", PushOptions::new().slack(false));
    logger.push_to_table(
        "no email channel",
        PushOptions::new().email(true).slack(false),
    );
    assert!(logger.flush(T));
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].json()["text"]
        .as_str()
        .unwrap()
        .contains("explicitly asked"));
    let rows = outbox(&path);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].0, "email");
    assert_eq!(rows[1].1, "dropped");
    assert!(rows[1].3.as_deref().unwrap().contains("not configured"));
}

#[test]
fn server_errors_are_retried_with_backoff_until_delivered() {
    let stub = HttpStub::start();
    stub.script([Reply::status(500, "oops"), Reply::status(503, "busy")]);
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub).build().unwrap();
    logger.error("flaky webhook");
    assert!(logger.flush(T));
    let reqs = stub.wait_for(3, T);
    assert_eq!(reqs.len(), 3);
    assert!(logger.flush(T));
    // Backoff: the second retry waits longer than the first (base 50 ms).
    let gap1 = reqs[1].at - reqs[0].at;
    let gap2 = reqs[2].at - reqs[1].at;
    assert!(gap1 >= Duration::from_millis(35), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(70), "{gap2:?}");
    assert_eq!(
        outbox(&path),
        vec![("slack".into(), "sent".into(), 3, None)]
    );
    // Delivered once: no further request.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stub.requests().len(), 3);
}

#[test]
fn a_429_is_retried_after_retry_after() {
    let stub = HttpStub::start();
    stub.script([Reply::Status(
        429,
        "rate_limited".into(),
        vec![("Retry-After".into(), "1".into())],
    )]);
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub).build().unwrap();
    logger.error("rate limited");
    assert!(logger.flush(T));
    let reqs = stub.wait_for(2, T);
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(logger.flush(T));
    assert_eq!(outbox(&path)[0].1, "sent");
}

#[test]
fn a_removed_webhook_stops_the_channel_and_keeps_the_alerts() {
    let stub = HttpStub::start();
    stub.set_default(Reply::status(404, "no_service"));
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub).build().unwrap();
    logger.error("first");
    assert!(logger.flush(T));
    stub.wait_for(1, T);
    logger.error("second, a different group");
    assert!(logger.flush(T));
    logger.flush(Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stub.requests().len(), 1, "no retry on a broken channel");
    let rows = outbox(&path);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.1 == "pending"),
        "nothing lost: {rows:?}"
    );
    assert!(rows[0].3.as_deref().unwrap().contains("no_service"));
    // The webhook URL (a secret) is in no stored error.
    assert!(rows
        .iter()
        .all(|r| !r.3.clone().unwrap_or_default().contains("SECRETTOKEN")));
}

#[test]
fn a_bad_payload_fails_only_that_alert() {
    let stub = HttpStub::start();
    stub.script([Reply::status(400, "invalid_payload")]);
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub).build().unwrap();
    logger.error("one");
    assert!(logger.flush(T));
    stub.wait_for(1, T);
    logger.error("another group");
    assert!(logger.flush(T));
    let rows = outbox(&path);
    assert_eq!(rows[0].1, "failed");
    assert_eq!(rows[1].1, "sent");
}

#[test]
fn a_hanging_webhook_times_out_and_the_caller_never_waits() {
    let stub = HttpStub::start();
    stub.script([Reply::Hang(Duration::from_secs(4))]);
    let (_d, path) = util::temp_db();
    let mut config = slack_config(&stub);
    config.set("ERRSNAP_ALERT_TIMEOUT_SECS", "1").unwrap();
    let logger = util::builder(&path, "hang")
        .config(config)
        .alert_retry_base(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..50 {
        let t = Instant::now();
        logger.error(format!("hang {i}"));
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A regression guard only; the measured figure is reported elsewhere.
    assert!(
        worst < Duration::from_millis(50),
        "a caller waited {worst:?}"
    );
    assert!(logger.flush(T));
    let reqs = stub.wait_for(2, T);
    assert!(reqs.len() >= 2);
    assert!(logger.flush(T));
    let rows = outbox(&path);
    assert_eq!(rows.len(), 1, "one group, one alert");
    assert_eq!(rows[0].1, "sent");
    assert!(rows[0].2 >= 2);
}

#[test]
fn ten_thousand_identical_errors_make_one_alert_and_digests() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub)
        .alert_cooldown(Duration::from_secs(1))
        .overflow(errsnap::Overflow::Block(T))
        .build()
        .unwrap();
    let start = Instant::now();
    for i in 0..10_000 {
        logger.error(format!("connection reset by peer (attempt {i})"));
    }
    assert!(logger.flush(Duration::from_secs(60)));
    let elapsed = start.elapsed();
    // The last cooldown ends, its digest goes out, then all is quiet.
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(logger.flush(T));
    let reqs = stub.requests();
    let cooldowns = elapsed.as_secs() + 2;
    assert!(
        reqs.len() >= 2 && reqs.len() as u64 <= cooldowns + 1,
        "{} alerts for 10,000 errors in {elapsed:?}",
        reqs.len()
    );
    assert!(reqs[0].json()["text"]
        .as_str()
        .unwrap()
        .ends_with("(attempt 0)"));
    let last = reqs.last().unwrap().json()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        last.contains("(digest: ") && last.contains(" more since the last alert)"),
        "{last}"
    );
    // Every occurrence is accounted for: alerted itself, or counted in the
    // "N more since" of a later alert.
    let db = open(&path);
    let accounted: i64 = count(
        &db,
        "SELECT sum(suppressed + (kind != 'digest')) FROM outbox WHERE status = 'sent'",
    );
    assert_eq!(accounted, 10_000);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox"), reqs.len() as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 10_000);
}

#[test]
fn the_threshold_rule_waits_for_n_within_the_window() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub)
        .alert_threshold(5, Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..4 {
        logger.error("disk nearly full");
    }
    assert!(logger.flush(T));
    assert_eq!(stub.requests().len(), 0);
    logger.error("disk nearly full");
    assert!(logger.flush(T));
    assert_eq!(stub.requests().len(), 1);
}

#[test]
fn resolved_groups_alert_again_and_muted_ones_never() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub).build().unwrap();
    logger.error("payment gateway timeout");
    logger.error("search index stale");
    assert!(logger.flush(T));
    assert_eq!(stub.requests().len(), 2);
    let db = open(&path);
    db.execute(
        "UPDATE event_groups SET status = 'resolved' WHERE title LIKE 'payment%'",
        [],
    )
    .unwrap();
    db.execute(
        "UPDATE event_groups SET status = 'muted' WHERE title LIKE 'search%'",
        [],
    )
    .unwrap();
    logger.error("payment gateway timeout");
    logger.error("search index stale");
    assert!(logger.flush(T));
    let reqs = stub.requests();
    assert_eq!(
        reqs.len(),
        3,
        "within the cooldown only the regression alerts"
    );
    assert!(reqs[2].json()["text"]
        .as_str()
        .unwrap()
        .contains("regression"));
    let status: String = db
        .query_row(
            "SELECT status FROM event_groups WHERE title LIKE 'payment%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "open");
}

#[test]
fn alerts_pending_at_a_kill_are_sent_once_at_the_next_start() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    // The child's webhook points at a closed port: its alert stays pending.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/services/x", closed.local_addr().unwrap());
    drop(closed);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child::entry", "--nocapture", "--test-threads=1"])
        .env("ERRSNAPTEST_SCENARIO", "alert_then_wait")
        .env("ERRSNAPTEST_DB", &path)
        .env("ERRSNAPTEST_SLACK", &dead_url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("committed") {
        line.clear();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    let _ = child.wait();
    let rows = outbox(&path);
    assert_eq!(rows.len(), 1);
    // Killed while retrying or in the middle of a delivery attempt.
    assert!(rows[0].1 == "pending" || rows[0].1 == "sending", "{rows:?}");

    // The earlier run's alert goes out at the next start (a flush waits
    // only for the alerts of its own process's events: there are none).
    for _ in 0..2 {
        let logger = slack_logger(&path, &stub).build().unwrap();
        assert!(logger.flush(T));
        stub.wait_for(1, T);
        drop(logger);
    }
    assert_eq!(stub.requests().len(), 1, "sent once, not once per start");
    assert_eq!(outbox(&path)[0].1, "sent");
}

#[test]
fn a_panic_waits_for_its_fatal_alert() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let out = util::run_child(
        "panic_with_alert",
        &path,
        &[("ERRSNAPTEST_SLACK", &stub.url())],
    );
    assert!(!out.status.success());
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1, "{}", util::describe(&out));
    let text = reqs[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("FATAL") && text.contains("panicked with an alert"),
        "{text}"
    );
    assert_eq!(outbox(&path)[0].1, "sent");
}

#[test]
fn send_test_alert_reports_each_channel() {
    let stub = HttpStub::start();
    let sink = SmtpSink::start(SmtpMode::Accept);
    let (_d, path) = util::temp_db();
    let mut config = slack_config(&stub);
    email_config(&mut config, &sink);
    let logger = util::builder(&path, "t").config(config).build().unwrap();
    let results = logger.send_test_alert();
    let names: Vec<_> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["slack", "email"]);
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert!(stub.requests()[0].body.contains("test alert"));
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(count(&open(&path), "SELECT count(*) FROM events"), 0);
}

fn email_config(c: &mut Config, sink: &SmtpSink) {
    c.set("ERRSNAP_SMTP_HOST", "127.0.0.1").unwrap();
    c.set("ERRSNAP_SMTP_PORT", sink.addr.port().to_string())
        .unwrap();
    c.set("ERRSNAP_SMTP_TLS", "none").unwrap();
    c.set("ERRSNAP_SMTP_USERNAME", "alerts@shop.test").unwrap();
    c.set("ERRSNAP_SMTP_PASSWORD", "s3cret-pass").unwrap();
    c.set("ERRSNAP_EMAIL_FROM", "Shop Alerts <alerts@shop.test>")
        .unwrap();
    c.set("ERRSNAP_EMAIL_TO", "oncall@shop.test, dev@shop.test")
        .unwrap();
    c.set("ERRSNAP_EMAIL_APP_NAME", "shop").unwrap();
    c.set("ERRSNAP_EMAIL_MIN_LEVEL", "error").unwrap();
}

/// The decoded body of the MIME part of this content type.
fn part(data: &str, content_type: &str) -> String {
    let start = data
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part"));
    let rest = &data[start..];
    let (head, body) = rest.split_once("\r\n\r\n").unwrap();
    let body = body.split("\r\n--").next().unwrap_or("");
    if head.contains("Content-Transfer-Encoding: base64") {
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        String::from_utf8_lossy(&crate::servers::b64decode(&clean)).into_owned()
    } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
        qp(body)
    } else {
        body.to_owned()
    }
}

fn qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn email_has_headers_both_bodies_recipients_and_auth() {
    let sink = SmtpSink::start(SmtpMode::Accept);
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    email_config(&mut config, &sink);
    let logger = util::builder(&path, "mail")
        .config(config)
        .app_name("ignored")
        .build()
        .unwrap();
    let hostile = "card declined\r\nBcc: victim@evil.test <!channel> </script><script>x()</script>";
    let id = logger.error(hostile);
    assert!(logger.flush(T));
    let mails = sink.wait_for(1, T);
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(
        m.auth,
        Some(("alerts@shop.test".into(), "s3cret-pass".into()))
    );
    assert_eq!(m.from, "alerts@shop.test");
    assert_eq!(m.to, ["oncall@shop.test", "dev@shop.test"]);
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("[shop] ERROR: card declined")
    );
    assert!(m.header("Bcc").is_none());
    assert!(m.header("Date").is_some());
    assert!(m.header("Message-ID").unwrap().contains(&id.to_string()));
    assert!(m.header("To").unwrap().contains("dev@shop.test"));
    assert!(m.data.contains("multipart/alternative"));
    let text = part(&m.data, "text/plain");
    let html = part(&m.data, "text/html");
    assert!(
        text.contains("Backtrace:") && html.contains("Backtrace:"),
        "{text}"
    );
    assert!(
        text.contains(hostile),
        "the plain text carries the message as is"
    );
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;x()"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!m.data.contains("s3cret-pass"));
    let stored: String = open(&path)
        .query_row("SELECT message FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, hostile);
}

#[test]
fn a_ten_megabyte_message_is_truncated_in_alerts_and_kept_whole() {
    let stub = HttpStub::start();
    let sink = SmtpSink::start(SmtpMode::Accept);
    let (_d, path) = util::temp_db();
    let mut config = slack_config(&stub);
    email_config(&mut config, &sink);
    let logger = util::builder(&path, "big").config(config).build().unwrap();
    let big = "x".repeat(10 * 1024 * 1024);
    logger.error(big.clone());
    assert!(logger.flush(T));
    let req = &stub.requests()[0];
    assert!(
        req.body.len() < 40_000,
        "slack body {} bytes",
        req.body.len()
    );
    assert!(req.body.contains("[truncated]"));
    let mail = &sink.wait_for(1, T)[0];
    assert!(
        mail.data.len() < 1_000_000,
        "mail {} bytes",
        mail.data.len()
    );
    let len: i64 = open(&path)
        .query_row("SELECT length(message) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(len as usize, big.len());
}

#[test]
fn refused_smtp_auth_breaks_the_channel_and_keeps_the_alert() {
    let sink = SmtpSink::start(SmtpMode::RefuseAuth);
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    email_config(&mut config, &sink);
    let logger = util::builder(&path, "auth").config(config).build().unwrap();
    logger.error("cannot log in");
    assert!(logger.flush(T));
    logger.flush(Duration::from_secs(2));
    let rows = outbox(&path);
    assert_eq!(rows[0].1, "pending");
    assert!(rows[0].3.as_deref().unwrap().contains("535"), "{rows:?}");
    assert!(!rows[0].3.as_deref().unwrap().contains("s3cret"));
    assert!(sink.mails().is_empty());
}

#[test]
fn an_smtp_server_closing_mid_data_is_retried() {
    let sink = SmtpSink::start(SmtpMode::CloseMidData);
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    email_config(&mut config, &sink);
    let logger = util::builder(&path, "middata")
        .config(config)
        .alert_retry_base(Duration::from_millis(100))
        .build()
        .unwrap();
    logger.error("half a mail");
    let start = Instant::now();
    while sink.connections() < 1 && start.elapsed() < T {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    sink.set_mode(SmtpMode::Accept);
    assert_eq!(sink.wait_for(1, T).len(), 1);
    assert!(logger.flush(T));
    assert_eq!(outbox(&path)[0].1, "sent");
}

fn run_in_runtime(stub: &HttpStub) {
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, stub).build().unwrap();
    logger.error("from inside tokio");
    assert!(logger.flush(T));
    drop(logger); // the notify thread and its HTTP client stop off the runtime
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_multi_thread_tokio_runtime() {
    let stub = HttpStub::start();
    run_in_runtime(&stub);
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_current_thread_tokio_runtime() {
    let stub = HttpStub::start();
    run_in_runtime(&stub);
    let stub2 = HttpStub::start();
    let (_d, path) = util::temp_db();
    let logger = slack_logger(&path, &stub2).build().unwrap();
    assert_eq!(logger.send_test_alert()[0].1, Ok(()));
    assert_eq!(stub.requests().len(), 1);
}

#[test]
fn configuration_errors_name_the_key_and_never_the_secret() {
    let (_d, path) = util::temp_db();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "ERRSNAP_SLACK_WEBHOOK_URL",
                "http://hooks.slack.com/services/SECRETTOKEN",
            )],
            "ERRSNAP_SLACK_WEBHOOK_URL",
        ),
        (
            &[("ERRSNAP_SLACK_WEBHOOK_URL", "not a url SECRETTOKEN")],
            "ERRSNAP_SLACK_WEBHOOK_URL",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_SMTP_PORT", "abc"),
                ("ERRSNAP_EMAIL_TO", "a@b.test"),
                ("ERRSNAP_EMAIL_FROM", "c@d.test"),
            ],
            "ERRSNAP_SMTP_PORT",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_SMTP_PORT", "0"),
                ("ERRSNAP_EMAIL_TO", "a@b.test"),
            ],
            "ERRSNAP_SMTP_PORT",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_SMTP_PORT", "70000"),
            ],
            "ERRSNAP_SMTP_PORT",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_SMTP_TLS", "sometimes"),
            ],
            "ERRSNAP_SMTP_TLS",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_EMAIL_FROM", "c@d.test"),
                ("ERRSNAP_EMAIL_TO", "not-an-address"),
            ],
            "ERRSNAP_EMAIL_TO",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_EMAIL_FROM", "bad address"),
                ("ERRSNAP_EMAIL_TO", "a@b.test"),
            ],
            "ERRSNAP_EMAIL_FROM",
        ),
        (&[("ERRSNAP_EMAIL_TO", "a@b.test")], "ERRSNAP_SMTP_HOST"),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_SMTP_TLS", "none"),
                ("ERRSNAP_SMTP_USERNAME", "u"),
                ("ERRSNAP_SMTP_PASSWORD", "SECRETTOKEN"),
                ("ERRSNAP_EMAIL_TO", "a@b.test"),
            ],
            "ERRSNAP_SMTP_TLS",
        ),
        (
            &[
                ("ERRSNAP_SMTP_HOST", "mail.test"),
                ("ERRSNAP_SMTP_USERNAME", "u"),
                ("ERRSNAP_EMAIL_TO", "a@b.test"),
            ],
            "ERRSNAP_SMTP_PASSWORD",
        ),
        (
            &[
                ("ERRSNAP_SLACK_MIN_LEVEL", "loud"),
                (
                    "ERRSNAP_SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/SECRETTOKEN",
                ),
            ],
            "ERRSNAP_SLACK_MIN_LEVEL",
        ),
        (
            &[("ERRSNAP_ALERT_COOLDOWN_SECS", "-5")],
            "ERRSNAP_ALERT_COOLDOWN_SECS",
        ),
        (
            &[("ERRSNAP_ALERT_TIMEOUT_SECS", "0")],
            "ERRSNAP_ALERT_TIMEOUT_SECS",
        ),
    ];
    for (pairs, key) in cases {
        let mut c = Config::empty();
        for (k, v) in *pairs {
            c.set(k, *v).unwrap();
        }
        assert!(!format!("{c:?}").contains("SECRETTOKEN"), "{c:?}");
        let err = EventLogger::builder()
            .name("t")
            .db_path(&path)
            .config(c)
            .build()
            .expect_err(&format!("{pairs:?} should be refused"));
        let text = err.to_string();
        assert!(text.contains(key), "{pairs:?}: {text}");
        assert!(!text.contains("SECRETTOKEN"), "{text}");
        assert!(!format!("{err:?}").contains("SECRETTOKEN"), "{err:?}");
    }
}

#[test]
fn the_example_env_file_loads_as_is() {
    let (_d, path) = util::temp_db();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example");
    let config = Config::from_dotenv_path(&example).unwrap();
    let logger = util::builder(&path, "example_env")
        .config(config)
        .build()
        .unwrap();
    // Nothing is configured to send to in the example.
    assert!(logger.send_test_alert().is_empty());
}
