//! Forwarding (issue #20) against real peers on loopback: Bugsink for the
//! Sentry envelopes, an OTLP/HTTP receiver decoding with the official
//! protobuf definitions, and a fault-injecting proxy in front of either
//! (429 with Retry-After, 5xx, dropped connections, 413). See `peers.rs`.

use std::time::{Duration, Instant};

use errsnap::{
    db::{Database, DeliveryStatus, EventFilter},
    Config, Level,
};
use serde_json::Value;

use crate::peers::{free_port, Bugsink, FaultProxy, OtlpReceiver};
use crate::util;

const T: Duration = Duration::from_secs(60);

/// An error with a cause, as applications have them.
#[derive(Debug)]
struct ConfigError(std::io::Error);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("loading /etc/shop/config.toml")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn config_error() -> ConfigError {
    ConfigError(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "permission denied",
    ))
}

/// The stored events, oldest first.
fn stored(db: &std::path::Path) -> Vec<errsnap::db::EventRow> {
    Database::open(db)
        .unwrap()
        .events(&EventFilter::default())
        .unwrap()
}

/// The hex event id Sentry sees for a stored event id.
fn hex(uid: &str) -> String {
    format!(
        "{:032x}",
        uid.parse::<errsnap::EventId>().unwrap().as_u128()
    )
}

/// The delivery status of each stored event on `channel`.
fn statuses(db: &std::path::Path, channel: &str) -> Vec<(String, DeliveryStatus, Option<String>)> {
    let d = Database::open(db).unwrap();
    stored(db)
        .iter()
        .filter_map(|e| {
            let full = d.event(&e.id).unwrap().unwrap();
            full.alerts
                .iter()
                .find(|a| a.channel == channel)
                .map(|a| (e.message.clone(), a.status, a.last_error.clone()))
        })
        .collect()
}

/// Waits until every row of `channel` is neither pending nor sending.
fn settle(db: &std::path::Path, channel: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let h = Database::open(db).unwrap().deliveries().unwrap();
        let busy = h
            .iter()
            .find(|c| c.channel == channel)
            .map_or(0, |c| c.pending);
        if busy == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel} still has {busy} pending: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Bugsink behind the fault proxy answering as `schedule` says.
fn behind_proxy(test: &str, schedule: &str) -> Option<(Bugsink, FaultProxy)> {
    let bugsink = Bugsink::start(test)?;
    let python = crate::peers::python_with(test, "bugsink", "bugsink")?;
    let proxy = FaultProxy::start(&python, bugsink.port, schedule);
    Some((bugsink, proxy))
}

fn events_of(q: &Value) -> Vec<Value> {
    q["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn events_reach_bugsink_grouped_as_errsnap_groups_them() {
    // See: issue #20 (1, Tests: normal delivery)
    let Some(bugsink) = Bugsink::start("i20_events_reach_bugsink") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .app_name("shop")
        .release("2.0.1")
        .environment("staging")
        .tag("region", "eu-west")
        .sentry_dsn(&bugsink.dsn)
        .build()
        .unwrap();
    log.add_breadcrumb(Level::Info, "http", "GET /cart 200");
    log.capture_error(&config_error());
    log.capture_error(&config_error());
    log.warn("below the forwarding level");
    log.event(Level::Error, "payment declined by the issuer")
        .tag("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
        .tag("span_id", "00f067aa0ba902b7")
        .extra("order", serde_json::json!({"id": 42, "items": 3}))
        .emit();
    let caught = log.catch(|| -> Result<(), std::io::Error> { panic!("index out of bounds") });
    assert!(caught.is_err());
    assert!(log.flush(T));
    let q = bugsink.wait_events(4, T);
    let events = events_of(&q);
    assert_eq!(events.len(), 4, "{q}");
    let rows = stored(&db);
    let forwarded: Vec<&errsnap::db::EventRow> =
        rows.iter().filter(|r| r.level >= Level::Error).collect();
    assert_eq!(forwarded.len(), 4);
    for r in &forwarded {
        assert!(
            events.iter().any(|e| e["event_id"] == hex(&r.id)),
            "{} not in Bugsink",
            r.id
        );
    }
    // The two captures of one error are one errsnap group and one issue.
    let errors: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["type"] == "ConfigError" || e["type"].as_str().unwrap().ends_with("ConfigError")
        })
        .collect();
    assert_eq!(errors.len(), 2, "{events:#?}");
    assert_eq!(errors[0]["issue"], errors[1]["issue"]);
    let issue = q["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == errors[0]["issue"])
        .unwrap();
    assert_eq!(issue["count"], 2);
    let first = rows
        .iter()
        .find(|r| errors[0]["event_id"] == hex(&r.id))
        .unwrap();
    let group = Database::open(&db)
        .unwrap()
        .event(&first.id)
        .unwrap()
        .unwrap()
        .group_fingerprint;
    assert!(
        issue["groupings"][0].as_str().unwrap().contains(&group),
        "grouped by errsnap's fingerprint: {issue}"
    );
    let e = &errors[0]["data"];
    assert_eq!(errors[0]["value"], "loading /etc/shop/config.toml");
    assert_eq!(e["exception"]["values"][0]["value"], "permission denied");
    assert_eq!(e["release"], "2.0.1");
    assert_eq!(errors[0]["environment"], "staging");
    assert_eq!(e["tags"]["region"], "eu-west");
    assert_eq!(e["platform"], "native");
    assert_eq!(e["breadcrumbs"]["values"][0]["message"], "GET /cart 200");
    assert!(
        e["contexts"]["errsnap"]["snapshot"]["process"]["rss_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(e["contexts"]["app"]["app_memory"].as_u64().unwrap() > 0);
    assert!(e["contexts"]["os"]["name"].is_string(), "{}", e["contexts"]);
    assert!(!errors[0]["server_name"].as_str().unwrap_or("").is_empty());
    let frames = e["exception"]["values"][1]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    let ours = frames
        .iter()
        .rfind(|f| f["in_app"] == true)
        .expect("an in-app frame");
    assert!(
        ours["filename"].as_str().unwrap().ends_with("forward.rs"),
        "{ours}"
    );
    assert!(ours["lineno"].as_u64().unwrap() > 0);
    assert!(ours["instruction_addr"].as_str().unwrap().starts_with("0x"));
    // A message, its trace, its extra; a panic, unhandled.
    let msg = events
        .iter()
        .find(|e| e["value"] == "payment declined by the issuer")
        .unwrap();
    assert_eq!(msg["type"], "Log Message");
    assert_eq!(
        msg["data"]["contexts"]["trace"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(msg["data"]["extra"]["order"]["id"], 42);
    let panic = events.iter().find(|e| e["type"] == "panic").unwrap();
    assert_eq!(panic["value"], "index out of bounds");
    assert_eq!(panic["level"], "fatal");
    assert_eq!(
        panic["data"]["exception"]["values"][0]["mechanism"]["handled"],
        false
    );
    for (m, s, _) in statuses(&db, "sentry") {
        assert_eq!(s, DeliveryStatus::Sent, "{m}");
    }
    assert!(!statuses(&db, "sentry")
        .iter()
        .any(|(m, _, _)| m.contains("below the forwarding level")));
    drop(log);

    // A retry after a kill sends the same event ids again: the rows are
    // made pending as a killed sender leaves them, and the next process
    // sends them; the server keeps each event once.
    let conn = util::open(&db);
    let n = conn
        .execute(
            // The events' rows (the run's session is two more).
            "UPDATE outbox SET status = 'pending', next_attempt = 0
             WHERE channel = 'sentry' AND group_id IS NOT NULL",
            [],
        )
        .unwrap();
    assert_eq!(n, 4);
    drop(conn);
    let again = util::builder(&db, "shop")
        .sentry_dsn(&bugsink.dsn)
        .build()
        .unwrap();
    assert!(again.flush(T));
    settle(&db, "sentry", T);
    let q = bugsink.query();
    assert_eq!(events_of(&q).len(), 4, "stored once: {q}");
    assert_eq!(issue_count(&q, &errors[0]["issue"]), 2);
    assert!(statuses(&db, "sentry")
        .iter()
        .all(|(_, s, _)| *s == DeliveryStatus::Sent));
}

fn issue_count(q: &Value, id: &Value) -> u64 {
    q["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| &i["id"] == id)
        .and_then(|i| i["count"].as_u64())
        .unwrap_or(0)
}

#[test]
fn events_recorded_while_the_servers_are_down_arrive_once_when_they_are_back() {
    // See: issue #20 (3, Tests: the server down then back)
    let Some(mut bugsink) = Bugsink::prepare("i20_down_then_back", None) else {
        return;
    };
    let otlp_port = free_port();
    let (_d, db) = util::temp_db();
    let build = || {
        util::builder(&db, "shop")
            .sentry_dsn(&bugsink.dsn)
            .otlp_endpoint(format!("http://127.0.0.1:{otlp_port}"))
            .alert_retry_base(Duration::from_millis(200))
            .exit_budget(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    // The first process records while both servers are down, and exits.
    let first = build();
    first.error("order 1 failed");
    first.error("order 2 failed");
    assert!(first.flush(T));
    drop(first);
    let h = Database::open(&db).unwrap().deliveries().unwrap();
    for channel in ["sentry", "otlp"] {
        let c = h.iter().find(|c| c.channel == channel).unwrap();
        assert_eq!((c.pending, c.sent), (2, 0), "{c:?}");
        let err = c.last_error.as_deref().unwrap();
        assert!(err.contains("could not connect"), "{err}");
        assert!(!err.contains(&bugsink.key()), "no key in {err}");
    }
    // The next process records one more while they are still down ...
    let second = build();
    second.error("order 3 failed");
    assert!(second.flush(T));
    std::thread::sleep(Duration::from_millis(500));
    // ... and they come back.
    bugsink.run();
    let Some(otlp) = OtlpReceiver::start_on("i20_down_then_back", otlp_port) else {
        return;
    };
    let q = bugsink.wait_events(3, T);
    let records = otlp.wait_for(3, T);
    settle(&db, "sentry", T);
    settle(&db, "otlp", T);
    let ids: Vec<String> = stored(&db).iter().map(|r| hex(&r.id)).collect();
    let mut got: Vec<String> = events_of(&q)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "each event once in Bugsink");
    let mut bodies: Vec<String> = records
        .iter()
        .map(|r| r["body_text"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        ["order 1 failed", "order 2 failed", "order 3 failed"]
    );
    drop(second);
}

#[test]
fn a_429_pauses_the_channel_for_its_retry_after_and_5xx_is_retried() {
    // See: issue #20 (1: 429 with Retry-After, retry with backoff; Tests: 429, 5xx)
    let Some((bugsink, proxy)) = behind_proxy("i20_429_and_5xx", "429:2,503,drop,pass") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .sentry_dsn(bugsink.dsn_via(proxy.port))
        .alert_retry_base(Duration::from_millis(100))
        .build()
        .unwrap();
    for i in 0..3 {
        log.error(format!("checkout {i} failed"));
    }
    assert!(log.flush(T));
    let q = bugsink.wait_events(3, T);
    settle(&db, "sentry", T);
    assert_eq!(events_of(&q).len(), 3, "{q}");
    let r = proxy.requests();
    assert_eq!(r[0]["answered"], 429);
    assert_eq!(r[1]["answered"], 503);
    assert_eq!(r[2]["answered"], "drop");
    let gap = r[1]["t"].as_f64().unwrap() - r[0]["t"].as_f64().unwrap();
    assert!(
        gap >= 1.9,
        "nothing sent during the 2 s pause (gap {gap:.2} s)"
    );
    // Three events, three successful requests: nothing sent twice.
    let passed = r.iter().filter(|x| x["answered"] == 200).count();
    assert_eq!(passed, 3, "{r:#?}");
    for req in &r {
        let auth = req["headers"]["x-sentry-auth"].as_str().unwrap();
        assert!(auth.contains("sentry_version=7") && auth.contains(&bugsink.key()));
    }
    drop(log);
}

#[test]
fn bugsinks_own_rate_limit_pauses_the_channel_and_its_transaction_limit_does_not() {
    // See: issue #20 (1: X-Sentry-Rate-Limits)
    let Some(mut bugsink) = Bugsink::prepare("i20_bugsink_quota", Some(2)) else {
        return;
    };
    bugsink.run();
    let python = crate::peers::python_with("i20_bugsink_quota", "bugsink", "bugsink").unwrap();
    let proxy = FaultProxy::start(&python, bugsink.port, "");
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .sentry_dsn(bugsink.dsn_via(proxy.port))
        .build()
        .unwrap();
    for i in 0..5 {
        log.error(format!("job {i} failed"));
    }
    assert!(log.flush(T));
    let deadline = Instant::now() + T;
    while proxy.requests().len() < 3 {
        assert!(Instant::now() < deadline, "{:?}", proxy.requests());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Given time, nothing more is tried while the 60 s limit lasts.
    std::thread::sleep(Duration::from_secs(3));
    let r = proxy.requests();
    assert_eq!(r.len(), 3, "{r:#?}");
    assert_eq!(r[0]["answered"], 200);
    assert_eq!(r[1]["answered"], 200);
    let limits = r[0]["upstream"]["x-sentry-rate-limits"].as_str().unwrap();
    assert!(limits.contains("transaction"), "{limits}");
    assert_eq!(r[2]["answered"], 429);
    assert!(r[2]["upstream"]["x-sentry-rate-limits"]
        .as_str()
        .unwrap()
        .contains("60::"));
    let h = Database::open(&db).unwrap().deliveries().unwrap();
    let c = h.iter().find(|c| c.channel == "sentry").unwrap();
    assert_eq!((c.sent, c.pending, c.failed), (2, 3, 0), "{c:?}");
    assert!(
        c.last_error.as_deref().unwrap().contains("rate limited"),
        "{c:?}"
    );
    assert_eq!(events_of(&bugsink.query()).len(), 2);
    drop(log);
}

#[test]
fn an_oversized_event_is_cut_to_fit_and_a_413_is_not_retried() {
    // See: issue #20 (1: within Sentry's size limits, truncation marked; Tests: oversized)
    let Some((bugsink, proxy)) = behind_proxy("i20_oversized", "pass,413") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .sentry_dsn(bugsink.dsn_via(proxy.port))
        .alert_retry_base(Duration::from_millis(100))
        .build()
        .unwrap();
    let huge = "x".repeat(3 << 20);
    log.event(
        Level::Error,
        format!("import failed: {}", "y".repeat(20_000)),
    )
    .extra("payload", huge.as_str())
    .extra("rows", 17)
    .emit();
    assert!(log.flush(T));
    settle(&db, "sentry", T);
    log.error("refused by the server");
    log.error("after the refusal");
    assert!(log.flush(T));
    let q = bugsink.wait_events(2, T);
    settle(&db, "sentry", T);
    std::thread::sleep(Duration::from_millis(500));
    let events = events_of(&q);
    assert_eq!(events.len(), 2, "{q}");
    let big = events
        .iter()
        .find(|e| e["value"].as_str().unwrap().starts_with("import failed"))
        .unwrap();
    let data = &big["data"];
    assert_eq!(data["extra"]["rows"], 17);
    assert!(data["extra"]["payload"]
        .as_str()
        .unwrap()
        .starts_with("[cut by errsnap"));
    let cut: Vec<&str> = data["extra"]["errsnap.truncated"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        cut.contains(&"message") && cut.contains(&"extra"),
        "{cut:?}"
    );
    assert_eq!(
        proxy.requests().len(),
        3,
        "the refused event was tried once: {:#?}",
        proxy.requests()
    );
    let s = statuses(&db, "sentry");
    let refused = s
        .iter()
        .find(|(m, _, _)| m == "refused by the server")
        .unwrap();
    assert_eq!(refused.1, DeliveryStatus::Failed);
    assert!(refused.2.as_deref().unwrap().contains("413"), "{refused:?}");
    assert!(events.iter().any(|e| e["value"] == "after the refusal"));
    drop(log);
}

#[test]
fn otlp_records_carry_severity_exception_attributes_trace_ids_and_resource() {
    // See: issue #20 (2)
    let Some(otlp) = OtlpReceiver::start("i20_otlp_records") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let mut cfg = Config::empty();
    cfg.set("ERRSNAP_OTLP_HEADERS", "x-honeycomb-team=team-secret")
        .unwrap();
    cfg.set("ERRSNAP_OTLP_MIN_LEVEL", "warn").unwrap();
    let log = util::builder(&db, "shop")
        .config(cfg)
        .app_name("shop")
        .release("2.0.1")
        .environment("staging")
        .otlp_endpoint(format!("http://127.0.0.1:{}", otlp.port))
        .build()
        .unwrap();
    log.capture_error(&config_error());
    log.event(Level::Warn, "cache 93% full")
        .tag("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
        .tag("span_id", "00f067aa0ba902b7")
        .emit();
    log.info("below the level");
    log.error(format!("dump: {}", "z".repeat(100_000)));
    assert!(log.flush(T));
    let records = otlp.wait_for(3, T);
    settle(&db, "otlp", T);
    assert_eq!(records.len(), 3, "{records:#?}");
    let err = records
        .iter()
        .find(|r| r["attrs"]["exception.type"].is_string())
        .unwrap();
    assert_eq!(err["severity"], 17);
    assert_eq!(err["severity_text"], "ERROR");
    assert_eq!(err["body_text"], "loading /etc/shop/config.toml");
    let a = &err["attrs"];
    assert!(
        a["exception.type"]
            .as_str()
            .unwrap()
            .ends_with("ConfigError"),
        "{a}"
    );
    assert_eq!(a["exception.message"], "loading /etc/shop/config.toml");
    let st = a["exception.stacktrace"].as_str().unwrap();
    assert!(st.contains("Caused by: permission denied"), "{st}");
    assert!(st.contains("forward.rs"), "{st}");
    assert!(a["errsnap.process.rss_bytes"].as_i64().unwrap() > 0);
    assert!(a["code.file.path"]
        .as_str()
        .unwrap()
        .ends_with("forward.rs"));
    let rows = stored(&db);
    assert!(rows
        .iter()
        .any(|r| r.id == a["errsnap.event_id"].as_str().unwrap()));
    let res = &err["resource"];
    assert_eq!(res["service.name"], "shop");
    assert_eq!(res["service.version"], "2.0.1");
    assert_eq!(res["deployment.environment.name"], "staging");
    assert_eq!(res["process.pid"], i64::from(std::process::id()));
    assert!(res["host.name"].is_string());
    assert_eq!(err["scope"]["name"], "errsnap");
    assert_eq!(err["headers"]["x-honeycomb-team"], "team-secret");
    assert!(err["time_ns"].as_u64().unwrap() / 1_000_000 == rows[0].ts as u64);
    let warn = records.iter().find(|r| r["severity"] == 13).unwrap();
    assert_eq!(warn["trace_id_hex"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(warn["span_id_hex"], "00f067aa0ba902b7");
    assert!(warn["attrs"].get("exception.type").is_none());
    let dump = records
        .iter()
        .find(|r| r["body_text"].as_str().unwrap().starts_with("dump"))
        .unwrap();
    assert_eq!(
        dump["body_text"].as_str().unwrap().chars().count(),
        32 * 1024 + 1
    );
    assert_eq!(dump["attrs"]["errsnap.truncated"][0], "body");
    drop(log);
}

#[test]
fn otlp_retries_503_and_429_and_drops_what_the_collector_rejects() {
    // See: issue #20 (2: same outbox, retry and exactly-once rules; Tests: 429, 5xx)
    let Some(otlp) = OtlpReceiver::start("i20_otlp_faults") else {
        return;
    };
    let python = crate::peers::python_with(
        "i20_otlp_faults",
        "opentelemetry.proto",
        "opentelemetry-proto",
    )
    .unwrap();
    let proxy = FaultProxy::start(&python, otlp.port, "503:1,429:1,500,pass");
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .otlp_endpoint(format!("http://127.0.0.1:{}", proxy.port))
        .alert_retry_base(Duration::from_millis(100))
        .build()
        .unwrap();
    log.error("first");
    log.error("second");
    log.error("a record the collector refuses [reject]");
    assert!(log.flush(T));
    let records = otlp.wait_for(3, T);
    settle(&db, "otlp", T);
    std::thread::sleep(Duration::from_millis(300));
    let records_now = otlp.records();
    assert_eq!(records_now.len(), 3, "each once: {records:#?}");
    let r = proxy.requests();
    assert_eq!(r[0]["answered"], 503);
    assert_eq!(r[1]["answered"], 429);
    assert_eq!(r[2]["answered"], 500);
    let gap = r[2]["t"].as_f64().unwrap() - r[1]["t"].as_f64().unwrap();
    assert!(
        gap >= 0.9,
        "the 429's Retry-After was honoured (gap {gap:.2} s)"
    );
    let s = statuses(&db, "otlp");
    let refused = s.iter().find(|(m, _, _)| m.contains("[reject]")).unwrap();
    assert_eq!(refused.1, DeliveryStatus::Failed);
    assert!(
        refused.2.as_deref().unwrap().contains("rejected 1 record"),
        "{refused:?}"
    );
    assert_eq!(
        s.iter().filter(|x| x.1 == DeliveryStatus::Sent).count(),
        2,
        "{s:?}"
    );
    drop(log);
}

#[cfg(feature = "cli")]
#[test]
fn test_alert_and_check_cover_the_forwarding_channels() {
    // See: issue #20 (4)
    let Some(bugsink) = Bugsink::start("i20_cli") else {
        return;
    };
    let Some(otlp) = OtlpReceiver::start("i20_cli") else {
        return;
    };
    let (dir, db) = util::temp_db();
    let errsnap = |env: &str, args: &[&str]| {
        std::fs::write(dir.path().join(".env"), env).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_errsnap"))
            .current_dir(dir.path())
            .arg("--db")
            .arg(&db)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("ERRSNAP_DB_PATH")
            .output()
            .unwrap()
    };
    let env = format!(
        "ERRSNAP_SENTRY_DSN={}\nERRSNAP_OTLP_ENDPOINT=http://127.0.0.1:{}\n",
        bugsink.dsn, otlp.port
    );
    let out = errsnap(&env, &["test-alert"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(text.contains("sentry: delivered"), "{text}");
    assert!(text.contains("otlp: delivered"), "{text}");
    let q = bugsink.wait_events(1, T);
    assert!(events_of(&q)[0]["value"]
        .as_str()
        .unwrap()
        .contains("errsnap test alert"));
    let r = otlp.wait_for(1, T);
    assert!(r[0]["body_text"]
        .as_str()
        .unwrap()
        .contains("errsnap test alert"));
    assert_eq!(r[0]["attrs"]["errsnap.test"], "true");

    // Events recorded while the Sentry server is unreachable: `check`
    // counts them per channel and shows the last error, without the key.
    let dead = bugsink.dsn_via(free_port());
    let log = util::builder(&db, "shop")
        .sentry_dsn(&dead)
        .otlp_endpoint(format!("http://127.0.0.1:{}", otlp.port))
        .exit_budget(Duration::from_millis(300))
        .build()
        .unwrap();
    log.error("order 7 failed");
    log.error("order 8 failed");
    assert!(log.flush(T));
    settle(&db, "otlp", T);
    drop(log);
    let out = errsnap(&env, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Deliveries that do not get through make the database unhealthy.
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    assert!(text.contains("problem: alerts on channel sentry are not getting through"));
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} line in {text}"))
            .to_owned()
    };
    let sentry = line("sentry");
    assert!(sentry.contains("2 pending, 0 failed, 0 sent"), "{sentry}");
    assert!(sentry.contains("could not connect"), "{sentry}");
    assert!(
        !text.contains(&bugsink.key()),
        "the key is never shown: {text}"
    );
    assert!(
        line("otlp").contains("0 pending, 0 failed, 2 sent"),
        "{text}"
    );
    let out = errsnap(&env, &["check", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = v["deliveries"].as_array().unwrap();
    assert!(
        d.iter()
            .any(|c| c["channel"] == "sentry" && c["pending"] == 2),
        "{v}"
    );
}

#[test]
fn alert_channels_keep_their_rules_and_pace_next_to_a_paused_forwarder() {
    // See: issue #20 (each destination a channel on the durable outbox):
    // a forwarder paused by its server holds back no alert, and alerts keep
    // their cooldown.
    let Some((bugsink, proxy)) = behind_proxy("i20_paused_forwarder", "429:30") else {
        return;
    };
    let slack = crate::servers::HttpStub::start();
    let (_d, db) = util::temp_db();
    let mut cfg = Config::empty();
    cfg.set("ERRSNAP_SLACK_WEBHOOK_URL", slack.url()).unwrap();
    let log = util::builder(&db, "shop")
        .config(cfg)
        .sentry_dsn(bugsink.dsn_via(proxy.port))
        .build()
        .unwrap();
    // A flush whose deadline falls inside the server's 30 s pause does not
    // wait for the pause: the forwarded event is held by its channel.
    log.error("disk full on /var");
    let report = log.flush_report(Duration::from_secs(5));
    assert!(report.is_complete(), "{report:?}");
    let sentry = report.channels.iter().find(|c| c.channel == "sentry");
    assert_eq!(sentry.map(|c| c.held), Some(1), "{report:?}");
    let deadline = Instant::now() + T;
    while proxy.requests().is_empty() {
        assert!(Instant::now() < deadline, "no request reached the proxy");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Sentry now pauses the channel for 30 s. Meanwhile:
    log.error("disk full on /var");
    log.error("database unreachable");
    assert!(log.flush(Duration::from_secs(5)));
    let t = Instant::now();
    let alerts = slack.wait_for(2, Duration::from_secs(20));
    assert_eq!(alerts.len(), 2, "both groups alerted while Sentry waits");
    assert!(t.elapsed() < Duration::from_secs(20));
    // Nothing due until the pause ends: waiting for the alerts ends now.
    assert!(log.flush(Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        slack.requests().len(),
        2,
        "the repeat waits for its cooldown"
    );
    assert_eq!(proxy.requests().len(), 1, "no request during the pause");
    let h = Database::open(&db).unwrap().deliveries().unwrap();
    let s = h.iter().find(|c| c.channel == "sentry").unwrap();
    assert_eq!((s.pending, s.sent), (3, 0), "{s:?}");
    drop(log);
}

#[test]
fn muted_and_resolved_groups_still_forward_every_event() {
    // See: issue #20 (1: each stored event ... is queued): the server
    // groups and mutes on its own; errsnap's mute is for its alerts.
    let Some(otlp) = OtlpReceiver::start("i20_muted_forward") else {
        return;
    };
    let slack = crate::servers::HttpStub::start();
    let (_d, db) = util::temp_db();
    let mut cfg = Config::empty();
    cfg.set("ERRSNAP_SLACK_WEBHOOK_URL", slack.url()).unwrap();
    let log = util::builder(&db, "shop")
        .config(cfg)
        .otlp_endpoint(format!("http://127.0.0.1:{}", otlp.port))
        .build()
        .unwrap();
    log.error("cache node 3 down");
    assert!(log.flush(T));
    assert_eq!(otlp.wait_for(1, T).len(), 1);
    assert_eq!(slack.wait_for(1, T).len(), 1);
    let database = Database::open(&db).unwrap();
    let group = database.group_of(&stored(&db)[0].id).unwrap().unwrap();
    assert!(database
        .set_group_status(group, errsnap::db::GroupStatus::Muted)
        .unwrap());
    log.error("cache node 3 down");
    log.error("cache node 3 down");
    assert!(log.flush(T));
    let records = otlp.wait_for(3, T);
    assert_eq!(records.len(), 3, "muted, still forwarded");
    assert!(log.flush(T));
    assert_eq!(slack.requests().len(), 1, "muted: no alert");
    drop(log);
}

#[test]
fn scoped_events_forward_their_request_user_and_transaction() {
    // See: issue #21 (3: "forwarding (Sentry request interface) sends")
    let Some(bugsink) = Bugsink::start("i21_scoped_events_forward") else {
        return;
    };
    let Some(otlp) = OtlpReceiver::start("i21_scoped_events_forward") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "web")
        .sentry_dsn(&bugsink.dsn)
        .otlp_endpoint(format!("http://127.0.0.1:{}", otlp.port))
        .store_user_email(false)
        .store_user_ip(true)
        .build()
        .unwrap();
    let mut request = errsnap::event::Request::new("GET", "/carts/7")
        .route("/carts/{id}")
        .query("token=abc&page=2")
        .header("User-Agent", "it/1.0")
        .peer("127.0.0.1")
        .host("shop.local");
    request.status = Some(500);
    log.scope(
        |s| {
            s.set_transaction("GET /carts/{id}")
                .set_user(
                    errsnap::User::new()
                        .id("42")
                        .username("ann")
                        .email("ann@example.com"),
                )
                .set_request(request);
        },
        || log.error("cart 7 is corrupt"),
    );
    assert!(log.flush(T));
    let q = bugsink.wait_events(1, T);
    let events = events_of(&q);
    assert_eq!(events.len(), 1, "{q}");
    let e = &events[0]["data"];
    assert_eq!(e["transaction"], "GET /carts/{id}", "{e}");
    assert_eq!(e["user"]["id"], "42", "{e}");
    assert_eq!(e["user"]["username"], "ann");
    assert!(e["user"]["email"].is_null(), "e-mail storing is off: {e}");
    let r = &e["request"];
    assert_eq!(r["method"], "GET", "{e}");
    assert_eq!(r["url"], "http://shop.local/carts/7");
    assert_eq!(r["query_string"], "token=[REDACTED]&page=2");
    assert_eq!(r["env"]["REMOTE_ADDR"], "127.0.0.1");
    assert!(r["headers"].to_string().contains("it/1.0"), "{r}");
    assert_eq!(e["contexts"]["response"]["status_code"], 500);
    // (Not a bare "abc": a hexadecimal address may hold those letters.)
    assert!(
        !e.to_string().contains("token=abc"),
        "the query's secret was sent: {e}"
    );
    let records = otlp.wait_for(1, T);
    let a = &records[0]["attrs"];
    assert_eq!(a["http.route"], "/carts/{id}", "{a}");
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["url.path"], "/carts/7");
    assert_eq!(a["url.query"], "token=[REDACTED]&page=2");
    assert_eq!(a["http.response.status_code"], 500);
    assert_eq!(a["client.address"], "127.0.0.1");
    assert_eq!(a["user.id"], "42");
    assert!(a["user.email"].is_null());
    assert_eq!(a["errsnap.transaction"], "GET /carts/{id}");
}
