//! Levels and routing, configuration precedence, sampling, `before_save`,
//! redaction and the bridges (#5).

use std::time::Duration;

use errsnap::{Config, Level, LevelFilter};

use crate::servers::{HttpStub, SmtpMode, SmtpSink};
use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(20);

fn channels_config(stub: &HttpStub, sink: &SmtpSink) -> Config {
    let mut c = Config::empty();
    c.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    c.set("ERRSNAP_SLACK_MAX_PER_MINUTE", "6000").unwrap();
    c.set("ERRSNAP_EMAIL_MAX_PER_MINUTE", "600").unwrap();
    c.set("ERRSNAP_SMTP_HOST", "127.0.0.1").unwrap();
    c.set("ERRSNAP_SMTP_PORT", sink.addr.port().to_string())
        .unwrap();
    c.set("ERRSNAP_SMTP_TLS", "none").unwrap();
    c.set("ERRSNAP_EMAIL_FROM", "errsnap@test.invalid").unwrap();
    c.set("ERRSNAP_EMAIL_TO", "oncall@test.invalid").unwrap();
    c
}

/// For each level: (stored?, slack?, email?).
fn destinations(path: &std::path::Path, logger: &str) -> Vec<(String, bool, bool, bool)> {
    let db = open(path);
    let mut out = Vec::new();
    for level in Level::ALL {
        let msg = format!("{logger} at {level}");
        let stored = count(
            &db,
            &format!("SELECT count(*) FROM events WHERE message = '{msg}'"),
        ) == 1;
        let channel = |c: &str| {
            count(
                &db,
                &format!(
                    "SELECT count(*) FROM outbox o JOIN events e ON e.uid = o.event_uid
                     WHERE e.message = '{msg}' AND o.channel = '{c}' AND o.status = 'sent'"
                ),
            ) == 1
        };
        out.push((
            level.to_string(),
            stored,
            channel("slack"),
            channel("email"),
        ));
    }
    out
}

#[test]
fn every_level_reaches_the_destinations_its_level_allows() {
    let stub = HttpStub::start();
    let sink = SmtpSink::start(SmtpMode::Accept);
    let (_d, path) = util::temp_db();
    let config = channels_config(&stub, &sink);
    // Defaults: database >= warn, Slack >= error, e-mail >= fatal.
    let defaults = util::builder(&path, "defaults")
        .config(config.clone())
        .build()
        .unwrap();
    // Per-logger settings: Slack from warn, no database of its own, no mail.
    let custom = util::builder(&path, "custom")
        .config(config.clone())
        .db_level(LevelFilter::Off)
        .slack_min_level(Level::Warn)
        .email_min_level(LevelFilter::Off)
        .build()
        .unwrap();
    let off = util::builder(&path, "silent")
        .config(config)
        .db_level(LevelFilter::Off)
        .slack_min_level(LevelFilter::Off)
        .email_min_level(LevelFilter::Off)
        .build()
        .unwrap();
    for logger in [&defaults, &custom, &off] {
        for level in Level::ALL {
            logger.log(level, format!("{} at {level}", logger.name()));
        }
        assert!(logger.flush(T));
    }
    assert!(defaults.flush(T));
    let yes = true;
    let no = false;
    let table = |rows: &[(bool, bool, bool)]| -> Vec<(String, bool, bool, bool)> {
        Level::ALL
            .iter()
            .zip(rows)
            .map(|(l, r)| (l.to_string(), r.0, r.1, r.2))
            .collect()
    };
    assert_eq!(
        destinations(&path, "defaults"),
        table(&[
            (no, no, no),
            (no, no, no),
            (no, no, no),
            (yes, no, no),
            (yes, yes, no),
            (yes, yes, yes)
        ])
    );
    // An alerted event is always stored (the outbox needs it).
    assert_eq!(
        destinations(&path, "custom"),
        table(&[
            (no, no, no),
            (no, no, no),
            (no, no, no),
            (yes, yes, no),
            (yes, yes, no),
            (yes, yes, no)
        ])
    );
    assert_eq!(destinations(&path, "silent"), table(&[(no, no, no); 6]));
    assert!(!off.enabled(Level::Fatal));
    assert!(defaults.enabled(Level::Warn) && !defaults.enabled(Level::Info));
}

#[test]
fn panics_are_stored_even_when_the_database_level_is_off() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "quiet")
        .db_level(LevelFilter::Off)
        .build()
        .unwrap();
    let r: Result<(), errsnap::CatchError<std::io::Error>> =
        logger.catch(|| panic!("still recorded"));
    assert!(r.is_err());
    logger.error("not stored");
    assert!(logger.flush(T));
    assert_eq!(
        count(
            &open(&path),
            "SELECT count(*) FROM events WHERE kind = 'panic'"
        ),
        1
    );
    assert_eq!(count(&open(&path), "SELECT count(*) FROM events"), 1);
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn precedence_builder_then_environment_then_file_logger_then_file_root() {
    let (dir, path) = util::temp_db();
    let toml = write(
        dir.path(),
        "errsnap.toml",
        "[levels]\ndatabase = \"error\"\n\n[loggers.specific]\ndatabase = \"info\"\n",
    );
    let empty_env = write(dir.path(), "empty.env", "# nothing\n");
    let warn_env = write(dir.path(), "warn.env", "ERRSNAP_DB_LEVEL=warn\n");
    let db_min = |name: &str, env: &std::path::Path, builder: Option<LevelFilter>| {
        let mut b = util::builder(&path, name)
            .config(Config::from_dotenv_path(env).unwrap())
            .config_file(&toml);
        if let Some(l) = builder {
            b = b.db_level(l);
        }
        let logger = b.build().unwrap();
        Level::ALL.into_iter().find(|l| logger.enabled(*l))
    };
    // The file: a logger's own section wins over the root.
    assert_eq!(db_min("specific", &empty_env, None), Some(Level::Info));
    assert_eq!(db_min("other", &empty_env, None), Some(Level::Error));
    // .env (and the environment) win over the file.
    assert_eq!(db_min("specific", &warn_env, None), Some(Level::Warn));
    // The builder wins over everything.
    assert_eq!(
        db_min("specific", &warn_env, Some(LevelFilter::Debug)),
        Some(Level::Debug)
    );
    // The process environment wins over .env: checked in a child process.
    let out = util::run_child(
        "precedence_env",
        &path,
        &[
            ("ERRSNAP_DB_LEVEL", "fatal"),
            ("ERRSNAPTEST_ENV", warn_env.to_str().unwrap()),
            ("ERRSNAPTEST_TOML", toml.to_str().unwrap()),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lowest stored level: fatal"),
        "{}",
        util::describe(&out)
    );
}

#[test]
fn bad_levels_and_files_are_named_errors() {
    let (dir, path) = util::temp_db();
    let cases = [
        (
            "[levels]\ndatabase = \"loud\"\n",
            "ERRSNAP_DB_LEVEL",
            "loud",
        ),
        (
            "[loggers.t]\nconsole = \"verbose\"\n",
            "loggers.t.console",
            "verbose",
        ),
        (
            "[levels]\ndatabse = \"info\"\n",
            "\"databse\" is no destination",
            "line 2",
        ),
        (
            "[sampling]\nkeep_one_in = \"ten\"\n",
            "errsnap.toml",
            "line 2",
        ),
        (
            "[redaction]\npatterns = [\"(unclosed\"]\n",
            "ERRSNAP_REDACT_PATTERNS",
            "(unclosed",
        ),
        ("[levels\n", "errsnap.toml", "line 1"),
    ];
    for (text, a, b) in cases {
        let toml = write(dir.path(), "errsnap.toml", text);
        let err = util::builder(&path, "t")
            .config_file(&toml)
            .build()
            .expect_err(text)
            .to_string();
        assert!(err.contains(a) && err.contains(b), "{text:?}: {err}");
    }
    // An explicitly named file must exist.
    let err = util::builder(&path, "t")
        .config_file(dir.path().join("missing.toml"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
    // The default file is optional: this test's working directory has none.
    assert!(!std::path::Path::new(errsnap::Config::DEFAULT_FILE).exists());
    let mut c = Config::empty();
    c.set("ERRSNAP_DB_LEVEL", "sometimes").unwrap();
    let err = util::builder(&path, "t")
        .config(c)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ERRSNAP_DB_LEVEL") && err.contains("\"sometimes\""),
        "{err}"
    );
}

#[test]
fn the_documented_example_file_loads() {
    let (_d, path) = util::temp_db();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/errsnap.example.toml");
    let logger = util::builder(&path, "payments")
        .config_file(&file)
        .build()
        .unwrap();
    // The example gives `payments` a database level of info.
    assert!(logger.enabled(Level::Info));
}

#[test]
fn sampling_keeps_one_in_n_below_error_and_counts_the_rest() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "sampled")
        .sample_keep_one_in(10)
        .build()
        .unwrap();
    for i in 0..100 {
        logger.warn(format!("slow request {i}"));
    }
    for i in 0..5 {
        logger.error(format!("failed request {i}"));
    }
    assert!(logger.flush(T));
    let db = open(&path);
    assert_eq!(
        count(&db, "SELECT count(*) FROM events WHERE level = 3"),
        10
    );
    assert_eq!(count(&db, "SELECT count(*) FROM events WHERE level = 4"), 5);
    assert_eq!(
        count(&db, "SELECT value FROM counters WHERE name = 'sampled_out'"),
        90
    );
}

#[test]
fn before_save_may_change_or_drop_and_a_panicking_hook_loses_nothing() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "hooked")
        .before_save(|ev| {
            if ev.message().contains("boom-in-hook") {
                panic!("the hook itself fails");
            }
            ev.tags_mut().insert("team".into(), "payments".into());
            ev.message_mut().push_str(" [seen]");
            !ev.message().starts_with("healthcheck")
        })
        .build()
        .unwrap();
    logger.error("healthcheck failed");
    logger.error("card declined");
    logger.error("boom-in-hook");
    assert!(logger.flush(T));
    let db = open(&path);
    let rows: Vec<(String, String)> = db
        .prepare("SELECT message, tags FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "card declined [seen]");
    assert!(rows[0].1.contains("\"team\":\"payments\""));
    assert_eq!(rows[1].0, "boom-in-hook");
    assert!(rows[1].1.contains("\"errsnap.before_save\":\"panicked\""));
}

#[derive(Debug)]
struct Wrapped(std::io::Error);
impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("calling the payment API failed")
    }
}
impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn secrets_are_redacted_before_storage_and_alerts() {
    let stub = HttpStub::start();
    let (_d, path) = util::temp_db();
    let mut config = Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", stub.url()).unwrap();
    let logger = util::builder(&path, "secrets")
        .config(config)
        .redact_emails(true)
        .redact_patterns(["card=[0-9]{16}"])
        .build()
        .unwrap();
    let err = Wrapped(std::io::Error::other(
        "401 from https://api.pay.test?api_key=sk_live_LEAKED1 with Authorization: Bearer LEAKED2",
    ));
    logger
        .event(
            Level::Error,
            "charge for bob@example.com failed: card=4111111111111111, password=LEAKED3",
        )
        .error(&err)
        .tag("session_token", "LEAKED4")
        .tag("webhook", "https://hooks.slack.com/services/T0/B0/LEAKED5")
        .extra(
            "request",
            serde_json::json!({"headers": {"x-api-key": "LEAKED6"}, "aws": "AKIAIOSFODNN7LEAKED7"}),
        )
        .emit();
    assert!(logger.flush(T));
    let db = open(&path);
    let (msg, chain, tags, extra, n): (String, String, String, String, i64) = db
        .query_row(
            "SELECT message, error_chain, tags, extra, redactions FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let everything = format!("{msg}{chain}{tags}{extra}{}", stub.requests()[0].body);
    for secret in [
        "LEAKED",
        "bob@example.com",
        "4111111111111111",
        "AKIAIOSFODNN7",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} survived: {everything}"
        );
    }
    assert!(
        msg.contains("[EMAIL]") && msg.contains("password=[REDACTED]"),
        "{msg}"
    );
    assert!(n >= 8, "counted {n} redactions");
    // The database has no trace of the secrets anywhere.
    drop(db);
    let raw = std::fs::read(&path).unwrap();
    let wal = std::fs::read(path.with_file_name("LOGS.db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        assert!(
            !bytes.windows(6).any(|w| w == b"LEAKED"),
            "a secret reached the file"
        );
    }
}

#[test]
fn the_console_destination_prints_on_the_writer_thread() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("console", &path, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INFO  console: cache warmed (tests/child.rs:"),
        "{stderr}"
    );
    assert!(!stderr.contains("debug line"), "{stderr}");
    // Console-only events are not stored.
    assert_eq!(count(&open(&path), "SELECT count(*) FROM events"), 1);
}

#[cfg(feature = "tracing")]
mod tracing_bridge {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test(flavor = "current_thread")]
    async fn tracing_errors_become_events_with_fields_spans_and_breadcrumbs() {
        let (_d, path) = util::temp_db();
        let logger = util::logger(&path, "traced");
        let subscriber = tracing_subscriber::registry()
            .with(errsnap::tracing::ErrsnapLayer::new(logger.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let request = tracing::info_span!("request", route = "/checkout", user_id = 7u64);
        let _r = request.enter();
        tracing::info!("cart loaded");
        tracing::debug!("below the breadcrumb level");
        tracing::warn!(attempt = 2, "payment provider slow");
        async {
            let step = tracing::info_span!("charge");
            let _s = step.enter();
            let err = std::io::Error::other("gateway timeout");
            tracing::error!(
                order_id = 42,
                amount = 12.5,
                error = &err as &dyn std::error::Error,
                "payment failed"
            );
        }
        .await;
        // Ignored: a record on an errsnap thread (its dependencies log there).
        std::thread::Builder::new()
            .name("errsnap-fake".into())
            .spawn(|| tracing::error!("must not recurse"))
            .unwrap()
            .join()
            .unwrap();
        assert!(logger.flush(T));
        let db = open(&path);
        assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);
        let (msg, kind, tags, extra, crumbs, file, chain): (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = db
            .query_row(
                "SELECT message, kind, tags, extra, breadcrumbs, file, error_chain FROM events",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(msg, "payment failed");
        assert_eq!(kind, "error");
        assert!(chain.contains("gateway timeout"));
        assert!(file.ends_with("routing.rs"), "{file}");
        let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
        assert_eq!(tags["span"], "charge");
        assert!(tags["target"].as_str().unwrap().contains("routing"));
        let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
        assert_eq!(extra["fields"]["order_id"], 42);
        assert_eq!(extra["fields"]["amount"], 12.5);
        let spans: Vec<&str> = extra["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(spans, ["request", "charge"]);
        assert_eq!(extra["spans"][0]["fields"]["route"], "/checkout");
        assert_eq!(extra["spans"][0]["fields"]["user_id"], 7);
        let crumbs: Vec<serde_json::Value> = serde_json::from_str(&crumbs).unwrap();
        let texts: Vec<&str> = crumbs
            .iter()
            .map(|c| c["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            ["cart loaded", "payment provider slow {\"attempt\":2}"]
        );
        assert_eq!(crumbs[1]["level"], "warn");
    }

    #[test]
    fn the_tracing_example_runs_in_a_multi_thread_runtime() {
        let (dir, _) = util::temp_db();
        let out = std::process::Command::new(util::example("tracing_layer"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", util::describe(&out));
        let db = open(&dir.path().join("LOGS.db"));
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM service WHERE message = 'inventory lookup failed'"
            ),
            1
        );
    }
}

#[cfg(feature = "log")]
#[test]
fn log_records_become_events_and_breadcrumbs() {
    let (_d, path) = util::temp_db();
    let out = util::run_child("log_bridge", &path, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    // Forwarded to the inner logger too.
    assert!(String::from_utf8_lossy(&out.stdout).contains("forwarded: ERROR disk quota exceeded"));
    let db = open(&path);
    let (msg, tags, crumbs): (String, String, String) = db
        .query_row("SELECT message, tags, breadcrumbs FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(msg, "disk quota exceeded");
    assert!(tags.contains("\"target\":\"uploads\""), "{tags}");
    let crumbs: Vec<serde_json::Value> = serde_json::from_str(&crumbs).unwrap();
    let texts: Vec<&str> = crumbs
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["upload started", "chunk 1 stored"]);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);
}
