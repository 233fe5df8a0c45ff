//! The core issue (#2): what one event holds, typed, in a real LOGS.db.

use std::time::Duration;

use errsnap::{ErrorKind, EventLogger, Level, PushOptions};

use crate::util::{self, count, open};

const T: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Layer {
    msg: &'static str,
    source: Option<Box<Layer>>,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.msg)
    }
}

impl std::error::Error for Layer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

fn nested() -> Layer {
    Layer {
        msg: "request failed",
        source: Some(Box::new(Layer {
            msg: "database unavailable",
            source: Some(Box::new(Layer {
                msg: "connection refused",
                source: None,
            })),
        })),
    }
}

#[test]
fn every_field_is_present_and_typed() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "error_table")
        .app_name("billing")
        .release("1.4.2")
        .environment("staging")
        .tag("region", "eu-1")
        .build()
        .unwrap();
    let id = logger
        .event(Level::Error, "card declined")
        .tag("customer", "c-42")
        .extra("amount_cents", 1299)
        .error(&nested())
        .emit();
    assert!(logger.flush(T));

    let db = open(&path);
    let row = db
        .query_row(
            "SELECT typeof(uid), typeof(ts), typeof(level), typeof(kind), typeof(message),
                    typeof(error_chain), typeof(file), typeof(line), typeof(col),
                    typeof(thread_name), typeof(thread_id), typeof(pid), typeof(app_name),
                    typeof(release), typeof(environment), typeof(tags), typeof(extra),
                    typeof(group_id), typeof(backtrace_id), typeof(snapshot_id), typeof(host_id),
                    uid, ts, level, kind, pid, app_name, release, environment, tags, extra, line, file
             FROM events",
            [],
            |r| {
                let mut types = Vec::new();
                for i in 0..21 {
                    types.push(r.get::<_, String>(i)?);
                }
                Ok((
                    types,
                    r.get::<_, String>(21)?,
                    r.get::<_, i64>(22)?,
                    r.get::<_, i64>(23)?,
                    r.get::<_, String>(24)?,
                    r.get::<_, i64>(25)?,
                    (r.get::<_, String>(26)?, r.get::<_, String>(27)?, r.get::<_, String>(28)?),
                    (r.get::<_, String>(29)?, r.get::<_, String>(30)?),
                    r.get::<_, i64>(31)?,
                    r.get::<_, String>(32)?,
                ))
            },
        )
        .unwrap();
    let (types, uid, ts, level, kind, pid, ctx, json, line, file) = row;
    assert_eq!(
        types,
        [
            "text", "integer", "integer", "text", "text", "text", "text", "integer", "integer",
            "text", "integer", "integer", "text", "text", "text", "text", "text", "integer",
            "integer", "integer", "integer"
        ]
    );
    assert_eq!(uid, id.to_string());
    assert_eq!(ts, id.timestamp_ms());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now - ts).abs() < 60_000,
        "timestamp {ts} is not now ({now})"
    );
    assert_eq!(level, 4);
    assert_eq!(kind, "error");
    assert_eq!(pid, std::process::id() as i64);
    assert_eq!(ctx, ("billing".into(), "1.4.2".into(), "staging".into()));
    let tags: serde_json::Value = serde_json::from_str(&json.0).unwrap();
    assert_eq!(
        tags,
        serde_json::json!({"region": "eu-1", "customer": "c-42"})
    );
    let extra: serde_json::Value = serde_json::from_str(&json.1).unwrap();
    assert_eq!(extra, serde_json::json!({"amount_cents": 1299}));
    assert!(file.ends_with("store.rs"), "{file}");
    assert!(line > 0);

    // The snapshot: process and host figures, typed.
    let (rss, vsz, mem_pct, threads, total, avail, uptime): (i64, i64, f64, i64, i64, i64, i64) =
        db.query_row(
            "SELECT proc_rss_bytes, proc_virtual_bytes, proc_memory_percent, proc_threads,
                    sys_total_memory, sys_available_memory, uptime_s FROM snapshots",
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
    assert!(rss > 0 && vsz >= rss && mem_pct > 0.0 && threads >= 2);
    assert!(total > 0 && avail > 0 && avail <= total && uptime > 0);
    let user_ms: Option<i64> = db
        .query_row("SELECT proc_cpu_user_ms FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert!(user_ms.is_some());

    // The host description, recorded once and pointed to.
    let (arch, cpus, mem): (String, i64, i64) = db
        .query_row(
            "SELECT h.arch, h.cpu_count, h.total_memory FROM hosts h JOIN events e ON e.host_id = h.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(!arch.is_empty() && cpus > 0 && mem > 0);
    assert_eq!(count(&db, "SELECT count(*) FROM hosts"), 1);

    // The group.
    let (title, gcount, first, last): (String, i64, i64, i64) = db
        .query_row(
            "SELECT title, count, first_seen, last_seen FROM event_groups",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((title.as_str(), gcount), ("card declined", 1));
    assert_eq!((first, last), (ts, ts));
}

#[test]
fn nested_error_chain_is_kept_outermost_first() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "chains");
    logger.capture_error(&nested());
    assert!(logger.flush(T));
    let db = open(&path);
    let (chain, ty, msg): (String, String, String) = db
        .query_row(
            "SELECT error_chain, error_type, message FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let chain: Vec<serde_json::Value> = serde_json::from_str(&chain).unwrap();
    let msgs: Vec<&str> = chain
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "request failed",
            "database unavailable",
            "connection refused"
        ]
    );
    assert!(ty.ends_with("Layer"), "{ty}");
    assert_eq!(msg, "request failed");
}

#[test]
fn anyhow_and_boxed_errors_keep_their_chain() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "dyn_errors");
    let err = anyhow::Error::new(nested()).context("handling /checkout");
    logger.capture_error(&*err);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(nested());
    logger.capture_error(&*boxed);
    assert!(logger.flush(T));
    let db = open(&path);
    let chains: Vec<String> = db
        .prepare("SELECT error_chain FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(chains[0].contains("handling /checkout") && chains[0].contains("connection refused"));
    assert!(chains[1].contains("request failed") && chains[1].contains("connection refused"));
}

#[inline(never)]
fn in_app_caller(logger: &EventLogger) {
    logger.error("from a named function");
}

#[test]
fn in_app_frames_have_file_and_line() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "framed");
    in_app_caller(&logger);
    assert!(logger.flush(T));
    let db = open(&path);
    let (function, file, line, in_app): (String, String, i64, bool) = db
        .query_row(
            "SELECT f.function, f.file, f.line, f.in_app FROM frames f
             JOIN events e ON e.backtrace_id = f.backtrace_id WHERE f.idx = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    // errsnap's own frames are trimmed: the top frame is the caller.
    assert!(function.ends_with("store::in_app_caller"), "{function}");
    assert!(file.ends_with("tests/store.rs"), "{file}");
    assert!(line > 0 && in_app);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM frames WHERE function LIKE 'errsnap::%'"
        ),
        0
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM frames WHERE module_offset IS NOT NULL"
        ) > 0
    );
}

#[test]
fn cpu_percent_is_not_zero_for_a_busy_process() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "busy");
    // Let the writer's sampler start, then burn CPU on this thread.
    assert!(logger.flush(T));
    let start = std::time::Instant::now();
    let mut x = 1u64;
    while start.elapsed() < Duration::from_millis(400) {
        x = std::hint::black_box(x.wrapping_mul(2862933555777941757).wrapping_add(3037000493));
    }
    logger.push_to_table("after work", PushOptions::new().hw_monitor(true));
    assert!(logger.flush(T));
    let db = open(&path);
    let pct: f64 = db
        .query_row("SELECT cpu_percent FROM hw_logs", [], |r| r.get(0))
        .unwrap();
    assert!(pct > 20.0, "a busy process showed {pct}% CPU");
}

#[test]
fn hw_monitor_off_stores_no_snapshot() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "nohw");
    logger.push_to_table("plain", PushOptions::new().hw_monitor(false).slack(true));
    assert!(logger.flush(T));
    let db = open(&path);
    let (snap, channels): (Option<i64>, String) = db
        .query_row("SELECT snapshot_id, alert_channels FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((snap, channels.as_str()), (None, "slack"));
    // Slack is not configured here: the request is kept, as dropped, not lost silently.
    let (status, err): (String, String) = db
        .query_row("SELECT status, last_error FROM outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(status, "dropped");
    assert!(err.contains("not configured"), "{err}");
}

/// See: issue #2 (table-name injection).
#[test]
fn logger_name_injection_is_rejected() {
    let (_d, path) = util::temp_db();
    let ok = util::logger(&path, "error_table");
    ok.error("before");
    assert!(ok.flush(T));
    let long = "a".repeat(200);
    for bad in [
        "x; DROP TABLE events",
        "events",
        "select",
        "",
        long.as_str(),
        "hw_logs",
        "a\"b",
        "tаble",
        "sqlite_master",
    ] {
        let err = util::builder(&path, bad).build().unwrap_err();
        match err.kind() {
            ErrorKind::InvalidLoggerName { name, reason } => {
                assert_eq!(name, &bad.chars().take(80).collect::<String>());
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?}: unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("invalid logger name"), "{err}");
    }
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM loggers"), 1);
}

#[test]
fn hostile_messages_are_stored_byte_for_byte() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "hostile");
    let big = "0123456789abcdef".repeat(65_536); // 1 MiB
    let messages = [
        "it's \"quoted\" 'twice'".to_owned(),
        "nul\0inside\0".to_owned(),
        big,
        "emoji 🦀🔥 and 👩‍👩‍👧".to_owned(),
        "עברית ومرحبا mixed RTL \u{202e}override".to_owned(),
        "'); DROP TABLE events; --".to_owned(),
        "line one\r\nline two\n".to_owned(),
        String::new(),
    ];
    let ids: Vec<_> = messages.iter().map(|m| logger.error(m.clone())).collect();
    assert!(logger.flush(T));
    let db = open(&path);
    for (id, m) in ids.iter().zip(&messages) {
        let (stored, len): (String, i64) = db
            .query_row(
                "SELECT message, length(CAST(message AS BLOB)) FROM events WHERE uid = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(&stored, m);
        assert_eq!(len as usize, m.len());
    }
}

#[test]
fn two_loggers_share_one_file() {
    let (_d, path) = util::temp_db();
    let a = util::logger(&path, "orders");
    let b = util::logger(&path, "payments");
    a.error("order failed");
    b.warn("payment slow");
    b.error("payment failed");
    assert!(a.flush(T) && b.flush(T));
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM orders"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM payments"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 3);
    let level: String = db
        .query_row(
            "SELECT level FROM payments ORDER BY ts, event_id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(level, "warn");
}

#[test]
fn seed_queries_work_right_after_new() {
    let (_d, path) = util::temp_db();
    let logger = util::logger(&path, "error_table");
    // The view exists once the logger has started (the writer makes it;
    // `flush` waits for that), before any push.
    assert!(logger.flush(T));
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM error_table"), 0);
    logger.push_to_table("Error: division by zero", PushOptions::new());
    assert!(logger.flush(T));
    let msg: String = db
        .query_row("SELECT message FROM error_table", [], |r| r.get(0))
        .unwrap();
    assert_eq!(msg, "Error: division by zero");
    let (m, pid): (String, i64) = db
        .query_row("SELECT message, pid FROM hw_logs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (m.as_str(), pid),
        ("Error: division by zero", std::process::id() as i64)
    );
    let ver: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ver, util::SCHEMA);
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn eight_threads_times_a_thousand_lose_nothing() {
    let (_d, path) = util::temp_db();
    let logger = util::builder(&path, "load")
        .overflow(errsnap::Overflow::Block(Duration::from_secs(30)))
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let logger = logger.clone();
            s.spawn(move || {
                for i in 0..1000 {
                    logger.error(format!("thread {t} event {i}"));
                }
            });
        }
    });
    assert!(logger.flush(Duration::from_secs(60)));
    assert_eq!(logger.dropped_events(), 0);
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 8000);
    assert_eq!(count(&db, "SELECT count(DISTINCT uid) FROM events"), 8000);
    // "thread <n> event <n>" normalizes to one group per call site.
    assert_eq!(count(&db, "SELECT sum(count) FROM event_groups"), 8000);
    assert_eq!(count(&db, "SELECT count(*) FROM event_groups"), 1);
}

#[test]
fn same_error_in_two_runs_gets_one_group() {
    let (_d, path) = util::temp_db();
    for _ in 0..2 {
        let out = util::run_child("same_error", &path, &[]);
        assert!(out.status.success(), "{}", util::describe(&out));
    }
    let db = open(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 2);
    assert_eq!(count(&db, "SELECT count(DISTINCT pid) FROM events"), 2);
    let (groups, total): (i64, i64) = db
        .query_row("SELECT count(*), sum(count) FROM event_groups", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((groups, total), (1, 2));
}

#[test]
fn a_database_from_a_newer_errsnap_is_refused_untouched() {
    let (_d, path) = util::temp_db();
    drop(util::logger(&path, "t"));
    {
        // A newer errsnap that older writers cannot follow.
        let db = open(&path);
        db.execute_batch(
            "CREATE TABLE keep (x); INSERT INTO keep VALUES (1); PRAGMA user_version = 99;
             UPDATE errsnap_meta SET value = '99' WHERE key = 'min_writer_version';",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = errsnap::db::Database::open(&path).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::FutureSchema {
                found: 99,
                min_writer: 99,
                supported: util::SCHEMA,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("99"), "{err}");
    // The logger starts, and keeps its events in the spool.
    let logger = util::logger(&path, "t");
    logger.error("spooled, not written");
    assert!(logger.flush(std::time::Duration::from_secs(20)));
    drop(logger);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the file was modified"
    );
    assert!(path.with_file_name("LOGS.db.spool").is_dir());
}

#[cfg(unix)]
#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, path) = util::temp_db();
    let _logger = util::logger(&path, "perm");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn bad_settings_name_the_key() {
    let (dir, path) = util::temp_db();
    let env = dir.path().join(".env");
    std::fs::write(&env, "ERRSNAP_DURABILITY=sometimes\n").unwrap();
    let err = EventLogger::builder()
        .name("t")
        .db_path(&path)
        .config(errsnap::Config::from_dotenv_path(&env).unwrap())
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ERRSNAP_DURABILITY") && text.contains("\"sometimes\""),
        "{text}"
    );
}
