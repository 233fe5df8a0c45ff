//! Alerts configured the way a new user does it (#13): README-style `.env`,
//! a private CA in front of SMTP (aiosmtpd with STARTTLS and AUTH) and a
//! webhook, honest `check`, one exit budget, CPU % in alerts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use errsnap::{db::Database, Config, Level};

use crate::servers::{HttpStub, RealSmtp, Reply, SmtpOptions, TestCa};
use crate::util::{self, count, describe, open, run_child};

const T: Duration = Duration::from_secs(20);

fn write_env(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(".env");
    std::fs::write(&p, text).unwrap();
    p
}

/// The fenced blocks of README.md marked `dotenv`.
fn readme_env_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```dotenv") => cur = Some(String::new()),
            (Some(b), l) if l.starts_with("```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_env_line_of_the_docs_is_accepted() {
    // See: issue #13 (1)
    let dir = tempfile::tempdir().unwrap();
    let blocks = readme_env_blocks();
    assert!(!blocks.is_empty(), "README.md has no ```dotenv block");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = blocks
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("README.md block {}", i + 1), b))
        .collect();
    files.push((
        ".env.example".into(),
        std::fs::read_to_string(root.join(".env.example")).unwrap(),
    ));
    for (name, text) in files {
        let env = write_env(dir.path(), &text);
        let config =
            Config::from_dotenv_path(&env).unwrap_or_else(|e| panic!("{name} is rejected: {e}"));
        // Building the logger sets up every channel the file configures.
        util::builder(&dir.path().join("LOGS.db"), "docs")
            .config(config)
            .build()
            .unwrap_or_else(|e| panic!("{name} does not build: {e}"));
    }
    // The settings file of config/ too.
    Config::empty()
        .with_file(root.join("config/errsnap.example.toml"))
        .unwrap();
}

#[test]
fn python_dotenv_style_values_work() {
    // See: issue #13 (1): unquoted values with spaces, as python-dotenv reads them
    let dir = tempfile::tempdir().unwrap();
    let env = write_env(
        dir.path(),
        "# the original design's style\n\
         webhook = https://hooks.slack.com/services/T000/B000/XXXX\n\
         mail_server = smtp.example.com\n\
         server_port = 587\n\
         username = alerts@example.com\n\
         password = app password with spaces\n\
         ERRSNAP_EMAIL_FROM=Errsnap Alerts <alerts@example.com>\n\
         ERRSNAP_EMAIL_TO=oncall@example.com, dev@example.com   # both\n",
    );
    let config = Config::from_dotenv_path(&env).unwrap();
    assert_eq!(
        config.get("ERRSNAP_EMAIL_FROM"),
        Some("Errsnap Alerts <alerts@example.com>")
    );
    assert_eq!(
        config.get("ERRSNAP_EMAIL_TO"),
        Some("oncall@example.com, dev@example.com")
    );
    assert_eq!(
        config.get("ERRSNAP_SMTP_PASSWORD"),
        Some("app password with spaces")
    );
    util::builder(&dir.path().join("LOGS.db"), "t")
        .config(config)
        .build()
        .unwrap();
    // A line that still cannot be read names its number and the fix.
    let env = write_env(dir.path(), "ERRSNAP_APP_NAME=ok\npassword=\"hunter2\n");
    let err = Config::from_dotenv_path(&env).unwrap_err().to_string();
    assert!(err.contains(".env:2") && err.contains("close it"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn original_design_keys_are_named_as_written() {
    // See: issue #13 (6)
    let dir = tempfile::tempdir().unwrap();
    let env = write_env(
        dir.path(),
        "mail_server = smtp.example.com\nserver_port = lots\n",
    );
    let err = util::builder(&dir.path().join("LOGS.db"), "t")
        .config(Config::from_dotenv_path(&env).unwrap())
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server_port")
            && err.contains("\"lots\"")
            && err.contains("ERRSNAP_SMTP_PORT"),
        "{err}"
    );
    assert!(err.starts_with("invalid server_port"), "{err}");
    // A misspelled one is reported (and ignored), with the right name.
    let env = write_env(dir.path(), "mail_sever = smtp.example.com\nAPP_DEBUG=1\n");
    let config = Config::from_dotenv_path(&env).unwrap();
    assert_eq!(config.warnings().len(), 1, "{:?}", config.warnings());
    assert!(
        config.warnings()[0].contains("mail_sever")
            && config.warnings()[0].contains("did you mean mail_server"),
        "{:?}",
        config.warnings()
    );
    // Without a host, the e-mail keys the user wrote are named.
    let env = write_env(dir.path(), "username = a@example.com\npassword = x\n");
    let err = util::builder(&dir.path().join("LOGS.db"), "t")
        .config(Config::from_dotenv_path(&env).unwrap())
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("but username is set"), "{err}");
}

/// A real SMTP server (aiosmtpd) with STARTTLS by a private CA and a login
/// of `alerts` with `password`, a database, and the `.env` of the e-mail
/// channel pointing at it, trusting the CA or not. `None` when Python's
/// aiosmtpd is missing and not required.
struct MailSetup {
    smtp: RealSmtp,
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    config: Config,
}

fn smtp_behind_a_private_ca(test: &str, password: &str, trust_the_ca: bool) -> Option<MailSetup> {
    let ca = TestCa::new();
    let smtp = RealSmtp::start(
        test,
        SmtpOptions {
            tls: Some(&ca),
            auth: Some(("alerts", password)),
        },
    )?;
    let (dir, path) = util::temp_db();
    let trust = if trust_the_ca {
        format!("ERRSNAP_TLS_CA_FILE={}\n", ca.write(dir.path()).display())
    } else {
        String::new()
    };
    let config = email_env(dir.path(), smtp.port, &trust);
    Some(MailSetup {
        smtp,
        dir,
        path,
        config,
    })
}

fn email_env(dir: &Path, port: u16, extra: &str) -> Config {
    let env = write_env(
        dir,
        &format!(
            "ERRSNAP_SMTP_HOST=127.0.0.1\n\
             ERRSNAP_SMTP_PORT={port}\n\
             ERRSNAP_SMTP_TLS=starttls\n\
             ERRSNAP_SMTP_USERNAME=alerts\n\
             ERRSNAP_SMTP_PASSWORD=s3cret-pass\n\
             ERRSNAP_EMAIL_FROM=Errsnap Alerts <alerts@example.com>\n\
             ERRSNAP_EMAIL_TO=oncall@example.com, dev@example.com\n\
             ERRSNAP_ALERT_TIMEOUT_SECS=5\n\
             {extra}"
        ),
    );
    Config::from_dotenv_path(env).unwrap()
}

#[test]
fn starttls_smtp_with_a_private_ca_delivers() {
    let Some(MailSetup {
        smtp,
        dir: _dir,
        path,
        config,
    }) = smtp_behind_a_private_ca(
        "starttls_smtp_with_a_private_ca_delivers",
        "s3cret-pass",
        true,
    )
    else {
        return;
    };
    let logger = util::builder(&path, "mailed")
        .config(config)
        .build()
        .unwrap();
    logger.fatal("the ledger does not balance");
    assert!(logger.flush(T));
    assert!(logger.flush(T));
    let mails = smtp.wait_for(1, T);
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "alerts");
    assert_eq!(m["mail_from"], "alerts@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "dev@example.com"])
    );
    let data = m["data"].as_str().unwrap();
    assert!(
        data.contains("From: \"Errsnap Alerts\" <alerts@example.com>")
            || data.contains("From: Errsnap Alerts <alerts@example.com>"),
        "{data}"
    );
    // The first event of the process carries a CPU figure, and the mail
    // shows it.
    assert!(data.contains("CPU "), "{data}");
    assert!(Database::check_path(&path).healthy());
}

#[test]
fn an_untrusted_certificate_breaks_the_channel_and_check_says_so() {
    // No ERRSNAP_TLS_CA_FILE: the server's CA is unknown.
    let Some(MailSetup {
        smtp,
        dir: _dir,
        path,
        config,
    }) = smtp_behind_a_private_ca(
        "an_untrusted_certificate_breaks_the_channel_and_check_says_so",
        "s3cret-pass",
        false,
    )
    else {
        return;
    };
    let logger = util::builder(&path, "mailed")
        .config(config)
        .build()
        .unwrap();
    logger.fatal("nobody will hear of this");
    logger.fatal("nor of this");
    assert!(logger.flush(T));
    logger.flush(Duration::from_secs(5));
    drop(logger);
    assert!(smtp.mails().is_empty());
    let report = Database::check_path(&path);
    assert!(!report.healthy());
    let problem = report
        .problems
        .iter()
        .find(|p| p.contains("channel email"))
        .unwrap_or_else(|| panic!("{:?}", report.problems));
    assert!(
        problem.contains("2 waiting") && problem.contains("certificate"),
        "{problem}"
    );
    assert!(!problem.contains("s3cret-pass"), "{problem}");
}

#[test]
fn a_refused_login_makes_check_exit_non_zero() {
    // The `.env` says s3cret-pass; the server wants another.
    let Some(MailSetup {
        smtp: _smtp,
        dir,
        path,
        ..
    }) = smtp_behind_a_private_ca(
        "a_refused_login_makes_check_exit_non_zero",
        "the-right-one",
        true,
    )
    else {
        return;
    };
    let out = run_child(
        "two_fatals_from_env",
        &path,
        &[("ERRSNAPTEST_ENV", dir.path().join(".env").to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", describe(&out));
    // Reported once on stderr, as a broken channel, without the password.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("alert channel broken").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("535"), "{stderr}");
    assert!(!stderr.contains("s3cret-pass"), "{stderr}");
    let report = Database::check_path(&path);
    let problem = report
        .problems
        .iter()
        .find(|p| p.contains("channel email"))
        .unwrap_or_else(|| panic!("{:?}", report.problems));
    assert!(
        problem.contains("535") && problem.contains("2 waiting"),
        "{problem}"
    );
    #[cfg(feature = "cli")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_errsnap"))
            .arg("--db")
            .arg(&path)
            .arg("check")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("channel email") && text.contains("535"),
            "{text}"
        );
        assert!(!text.contains("s3cret-pass"), "{text}");
    }
}

#[test]
fn a_webhook_behind_a_private_ca() {
    // See: issue #13 (2, 3)
    let ca = TestCa::new();
    let stub = HttpStub::start_tls(&ca);
    let (dir, path) = util::temp_db();
    let ca_file = ca.write(dir.path());
    let env = write_env(
        dir.path(),
        &format!(
            "ERRSNAP_SLACK_WEBHOOK_URL={}\nERRSNAP_TLS_CA_FILE={}\n",
            stub.url(),
            ca_file.display()
        ),
    );
    let logger = util::builder(&path, "hooked")
        .config(Config::from_dotenv_path(&env).unwrap())
        .build()
        .unwrap();
    logger.error("over https, trusted");
    assert!(logger.flush(T));
    assert_eq!(stub.requests().len(), 1);
    drop(logger);
    // Without the CA: refused, the channel is broken, check names it.
    let (_d2, path2) = util::temp_db();
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    let logger = util::builder(&path2, "hooked")
        .config(config)
        .build()
        .unwrap();
    logger.error("over https, not trusted");
    assert!(logger.flush(T));
    logger.flush(Duration::from_secs(5));
    drop(logger);
    assert_eq!(stub.requests().len(), 1, "nothing more got through");
    let report = Database::check_path(&path2);
    let problem = report
        .problems
        .iter()
        .find(|p| p.contains("channel slack"))
        .unwrap_or_else(|| panic!("{:?}", report.problems));
    assert!(
        problem.contains("1 waiting") && problem.contains("certificate"),
        "{problem}"
    );
    assert!(!problem.contains("SECRETTOKEN"), "{problem}");
    // A bundle that is not one is refused when the logger is built.
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    config
        .set(
            "ERRSNAP_TLS_CA_FILE",
            dir.path().join("bad.pem").display().to_string(),
        )
        .unwrap();
    let err = util::builder(&path2, "x")
        .config(config)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("ERRSNAP_TLS_CA_FILE") && err.to_string().contains("bad.pem"),
        "{err}"
    );
}

fn panicking_at(out: &std::process::Output) -> u128 {
    String::from_utf8_lossy(&out.stdout)
        .split("panicking_at_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", describe(out)))
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn a_panic_while_slack_hangs_exits_within_the_budget() {
    // See: issue #13 (4): 7.7 s before (2.6 s in the hook, then 5 s more)
    let stub = HttpStub::start();
    stub.set_default(Reply::Hang(Duration::from_secs(30)));
    let (_d, path) = util::temp_db();
    let out = run_child(
        "panic_with_guard",
        &path,
        &[
            ("ERRSNAPTEST_SLACK", &stub.url()),
            ("ERRSNAPTEST_BUDGET_MS", "1500"),
        ],
    );
    let exited = now_ms();
    assert_eq!(out.status.code(), Some(101), "{}", describe(&out));
    let spent = exited - panicking_at(&out);
    // The budget plus the time a process takes to end and be reaped.
    assert!(
        spent < 1500 + 1000,
        "exit took {spent} ms: {}",
        describe(&out)
    );
    eprintln!("exit with a hanging webhook: {spent} ms (budget 1500 ms)");
    // The record is there; the alert waits in the outbox for the next start.
    let db = open(&path);
    assert_eq!(
        count(&db, "SELECT count(*) FROM events WHERE kind = 'panic'"),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ),
        1
    );
}

#[test]
fn a_failed_delivery_at_exit_is_retried_when_its_backoff_fits() {
    // See: issue #13 (4)
    let stub = HttpStub::start();
    stub.script([Reply::status(500, "try again")]);
    let (_d, path) = util::temp_db();
    let out = run_child(
        "panic_with_guard",
        &path,
        &[
            ("ERRSNAPTEST_SLACK", &stub.url()),
            ("ERRSNAPTEST_BUDGET_MS", "3000"),
        ],
    );
    assert_eq!(out.status.code(), Some(101), "{}", describe(&out));
    assert_eq!(stub.requests().len(), 2, "{}", describe(&out));
    assert_eq!(
        count(
            &open(&path),
            "SELECT count(*) FROM outbox WHERE status = 'sent'"
        ),
        1
    );
}

#[test]
fn control_characters_never_reach_an_alert() {
    // See: issue #13 (6): a NUL went to Slack as \u0000
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    let logger = util::builder(&path, "nul").config(config).build().unwrap();
    logger.error("before\0after\x1b[31m red\x07 bell\r\nnext line");
    assert!(logger.flush(T));
    let body = &stub.requests()[0].body;
    for bad in ["\\u0000", "\\u001b", "\\u0007", "\\r"] {
        assert!(!body.contains(bad), "{bad} in {body}");
    }
    assert!(body.contains("beforeafter"), "{body}");
    assert!(body.contains("next line"), "{body}");
    // The database keeps the exact text.
    let stored: String = open(&path)
        .query_row("SELECT message FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(stored.contains('\0') && stored.contains('\x1b'));
}

#[test]
fn a_stalled_smtp_server_times_out_with_a_clear_error() {
    // See: issue #13 (6): "Resource temporarily unavailable (os error 11)"
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, then never says a word.
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(3).collect();
        std::thread::sleep(Duration::from_secs(20));
        drop(conns);
    });
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    for (k, v) in [
        ("ERRSNAP_SMTP_HOST", "127.0.0.1".to_owned()),
        ("ERRSNAP_SMTP_PORT", port.to_string()),
        ("ERRSNAP_SMTP_TLS", "none".to_owned()),
        ("ERRSNAP_EMAIL_FROM", "a@example.com".to_owned()),
        ("ERRSNAP_EMAIL_TO", "b@example.com".to_owned()),
        ("ERRSNAP_ALERT_TIMEOUT_SECS", "1".to_owned()),
    ] {
        config.set(k, v).unwrap();
    }
    let logger = util::builder(&path, "stalled")
        .config(config)
        .alert_retry_base(Duration::from_secs(600))
        .build()
        .unwrap();
    logger.fatal("the mail server is asleep");
    // The one attempt times out; its retry is due after any deadline, so
    // the flush stops waiting at once and says the alert is still pending.
    let start = Instant::now();
    let report = logger.flush_report(T);
    assert!(
        start.elapsed() < T / 2,
        "waited for a retry that cannot come"
    );
    assert!(report.committed && report.counted && !report.is_complete());
    assert_eq!(report.pending(), 1, "{report:?}");
    let start = Instant::now();
    let error = loop {
        let e: Option<String> = open(&path)
            .query_row("SELECT last_error FROM outbox", [], |r| r.get(0))
            .unwrap();
        if let Some(e) = e {
            break e;
        }
        assert!(start.elapsed() < T, "no delivery attempt finished");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(error.contains("timed out after 1 s"), "{error}");
    assert!(!error.contains("os error"), "{error}");
    drop(logger);
    drop(held);
}

#[test]
fn the_first_event_of_a_process_has_a_cpu_figure() {
    // See: issue #13 (5): `cpu: ?` for the first event
    let (_d, path) = util::temp_db();
    let out = run_child("same_error", &path, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let cpu: Option<f64> = open(&path)
        .query_row("SELECT cpu_percent FROM hw_logs", [], |r| r.get(0))
        .unwrap();
    #[cfg(target_os = "linux")]
    assert!(cpu.is_some(), "no CPU % for the first event");
    let _ = (cpu, Level::Error);
}

#[test]
fn the_generic_webhook_posts_the_alert_as_json_with_its_header() {
    // See: issue #15: a channel besides Slack and e-mail
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    config.set("ERRSNAP_WEBHOOK_URL", stub.url()).unwrap();
    config
        .set(
            "ERRSNAP_WEBHOOK_HEADER",
            "Authorization: Bearer s3cret-token",
        )
        .unwrap();
    config.set("ERRSNAP_WEBHOOK_APP_NAME", "shop").unwrap();
    let logger = util::builder(&path, "hooked")
        .config(config)
        .build()
        .unwrap();
    logger.warn("below the webhook's level");
    logger.error("the webhook hears this");
    assert!(logger.flush(T));
    let reqs = stub.wait_for(1, T);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Bearer s3cret-token"));
    let doc = r.json();
    assert_eq!(doc["source"], "errsnap");
    assert_eq!(doc["kind"], "new");
    assert_eq!(doc["level"], "error");
    assert_eq!(doc["message"], "the webhook hears this");
    assert_eq!(doc["app"], "shop");
    assert_eq!(doc["logger"], "hooked");
    assert!(doc["frames"].as_array().is_some_and(|f| !f.is_empty()));
    assert!(doc["process"]["rss_bytes"].as_u64().is_some());
    // A bad header is refused by name, never echoing the value.
    let mut config = Config::empty();
    config.set("ERRSNAP_WEBHOOK_URL", stub.url()).unwrap();
    config
        .set("ERRSNAP_WEBHOOK_HEADER", "no colon s3cret")
        .unwrap();
    let err = util::builder(&path, "x")
        .config(config)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ERRSNAP_WEBHOOK_HEADER") && !err.contains("s3cret"),
        "{err}"
    );
    // A header without a URL is a named error too.
    let mut config = Config::empty();
    config.set("ERRSNAP_WEBHOOK_HEADER", "A: b").unwrap();
    let err = util::builder(&path, "x")
        .config(config)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("ERRSNAP_WEBHOOK_URL"), "{err}");
}
