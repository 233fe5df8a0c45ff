//! What goes upstream besides events, read back as the servers read it:
//! monitors' check-ins, runs as release-health sessions and errsnap's own
//! losses as client reports, in envelopes parsed by Sentry's own protocol
//! types (`sentry-types`) and answered 200 by a real Bugsink; check-ins as
//! OTLP log records decoded with the official protobuf definitions.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use errsnap::monitor::{MonitorConfig, Schedule};
use sentry_types::protocol::v7::{
    Envelope, EnvelopeItem, MonitorCheckIn, MonitorCheckInStatus, MonitorSchedule, SessionStatus,
    SessionUpdate,
};
use serde_json::Value;

use crate::peers::{Bugsink, FaultProxy, OtlpReceiver};
use crate::util;

const T: Duration = Duration::from_secs(60);

/// Bugsink behind a proxy that keeps each request's body.
fn recorded(test: &str) -> Option<(Bugsink, FaultProxy)> {
    let bugsink = Bugsink::start(test)?;
    let python = crate::peers::python_with(test, "bugsink", "bugsink")?;
    let proxy = FaultProxy::start_with(&python, bugsink.port, "", true);
    Some((bugsink, proxy))
}

/// Every item of every envelope the proxy saw, each parsed by
/// `sentry-types`; every request was answered 200.
fn items(proxy: &FaultProxy) -> Vec<EnvelopeItem> {
    let mut out = Vec::new();
    for r in proxy.requests() {
        assert_eq!(r["answered"], 200, "{r}");
        let body = base64::engine::general_purpose::STANDARD
            .decode(r["body"].as_str().unwrap())
            .unwrap();
        let body = typed_causes(&body);
        let env = Envelope::from_slice(&body).unwrap_or_else(|e| {
            let text = String::from_utf8_lossy(&body);
            let payload = text.lines().nth(2).unwrap_or_default();
            let why = serde_json::from_str::<sentry_types::protocol::v7::Event<'_>>(payload).err();
            panic!("{e} ({why:?}): {}", &text[..text.len().min(300)])
        });
        out.extend(env.items().cloned());
    }
    out
}

/// The envelope with a type given to each exception value that has only
/// a value (a cause whose type Rust does not tell): Relay takes either,
/// the SDK's own types want a type.
fn typed_causes(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = vec![lines[0].to_owned()];
    let mut i = 1;
    while i + 1 < lines.len() {
        let mut header: Value = serde_json::from_str(lines[i]).unwrap();
        let mut payload = lines[i + 1].to_owned();
        if header["type"] == "event" {
            let mut event: Value = serde_json::from_str(&payload).unwrap();
            if let Some(values) = event
                .pointer_mut("/exception/values")
                .and_then(Value::as_array_mut)
            {
                for v in values.iter_mut().filter(|v| v.get("type").is_none()) {
                    assert!(v["value"].is_string(), "{v}");
                    v["type"] = Value::from("Error");
                }
            }
            payload = event.to_string();
            header["length"] = Value::from(payload.len());
        }
        out.push(header.to_string());
        out.push(payload);
        i += 2;
    }
    out.push(String::new());
    out.join("\n").into_bytes()
}

fn check_ins(items: &[EnvelopeItem]) -> Vec<MonitorCheckIn> {
    items
        .iter()
        .filter_map(|i| match i {
            EnvelopeItem::MonitorCheckIn(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn sessions(items: &[EnvelopeItem]) -> Vec<SessionUpdate<'static>> {
    items
        .iter()
        .filter_map(|i| match i {
            EnvelopeItem::SessionUpdate(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The client reports among `items`, as JSON.
fn reports(items: &[EnvelopeItem]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|i| match i {
            EnvelopeItem::ClientReport(r) => Some(serde_json::to_value(r).unwrap()),
            _ => None,
        })
        .collect()
}

/// Waits until the proxy has seen `n` requests.
fn wait_requests(proxy: &FaultProxy, n: usize) {
    let deadline = Instant::now() + T;
    while proxy.requests().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_runs_check_ins_session_and_losses_reach_sentry_as_its_own_items() {
    let Some((bugsink, proxy)) = recorded("upstream_items") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .release("shop@2.0.1")
        .environment("staging")
        .sample_keep_one_in(10)
        .sentry_dsn(bugsink.dsn_via(proxy.port))
        .build()
        .unwrap();
    let nightly = log
        .monitor(
            "nightly-sync",
            MonitorConfig::new(Schedule::crontab("0 3 * * *", "Europe/Helsinki").unwrap())
                .checkin_margin(Duration::from_secs(5 * 60))
                .max_runtime(Duration::from_secs(90 * 60)),
        )
        .unwrap();
    let run = nightly.start();
    let id = run.id().to_owned();
    for i in 0..20 {
        log.warn(format!("slow request {i}"));
    }
    log.error("payment declined by the issuer");
    run.ok();
    assert!(log.flush(T));
    // At exit (the monitor holds the logger too): the run's session ends,
    // the losses are reported, and both are delivered before the process
    // goes.
    drop(nightly);
    drop(log);
    let items = items(&proxy);

    let c = check_ins(&items);
    assert_eq!(c.len(), 2, "{items:#?}");
    assert!(c.iter().all(|c| c.check_in_id.simple().to_string() == id));
    assert_eq!(c[0].status, MonitorCheckInStatus::InProgress);
    assert_eq!(c[1].status, MonitorCheckInStatus::Ok);
    assert!(c[1].duration.is_some_and(|d| (0.0..60.0).contains(&d)));
    for c in &c {
        assert_eq!(c.monitor_slug, "nightly-sync");
        let config = c.monitor_config.as_ref().expect("always the config");
        assert_eq!(
            config.schedule,
            MonitorSchedule::Crontab {
                value: "0 3 * * *".into()
            }
        );
        assert_eq!(config.checkin_margin, Some(5));
        assert_eq!(config.max_runtime, Some(90));
        assert_eq!(config.timezone.as_deref(), Some("Europe/Helsinki"));
    }

    let s = sessions(&items);
    assert_eq!(s.len(), 2, "a start and an end: {s:#?}");
    assert_eq!(s[0].session_id, s[1].session_id);
    assert!(s[0].init && !s[1].init);
    assert_eq!(
        (s[0].status, s[1].status),
        (SessionStatus::Ok, SessionStatus::Exited)
    );
    assert_eq!(s[1].errors, 1, "the one error event");
    assert!(s[1].duration.is_some());
    for s in &s {
        assert_eq!(s.attributes.release, "shop@2.0.1");
        assert_eq!(s.attributes.environment.as_deref(), Some("staging"));
    }

    // 18 warnings were sampled out, but sampling only leaves out events no
    // channel takes: Sentry would never have had them, and hears nothing.
    assert_eq!(reports(&items), Vec::<Value>::new());

    // The event went as an event; Bugsink keeps it and drops the rest.
    let events = items
        .iter()
        .filter(|i| matches!(i, EnvelopeItem::Event(_)))
        .count();
    assert_eq!(events, 1);
    let q = bugsink.wait_events(1, T);
    assert_eq!(q["events"].as_array().map_or(0, Vec::len), 1, "{q}");
    // Nothing waits or failed.
    let d = errsnap::db::Database::open(&db).unwrap();
    for h in d.deliveries().unwrap() {
        assert_eq!((h.pending, h.failed), (0, 0), "{h:?}");
    }
}

#[cfg(feature = "cli")]
#[test]
fn a_wrapped_job_goes_to_sentry_and_to_the_collector_before_errsnap_exits() {
    let Some((bugsink, proxy)) = recorded("upstream_wrapped_job") else {
        return;
    };
    let Some(otlp) = OtlpReceiver::start("upstream_wrapped_job") else {
        return;
    };
    let (_d, db) = util::temp_db();
    let out = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(&db)
        .env_remove("ERRSNAP_DB_PATH")
        .env("ERRSNAP_SENTRY_DSN", bugsink.dsn_via(proxy.port))
        .env(
            "ERRSNAP_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", otlp.port),
        )
        .args([
            "monitor",
            "run",
            "backup",
            "--every",
            "1h",
            "--margin",
            "10m",
            "--",
            "sh",
            "-c",
            "echo copying; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // Delivered before the wrapper exited: nothing is left to wait for.
    let items = items(&proxy);
    let c = check_ins(&items);
    assert_eq!(c.len(), 2, "{items:#?}");
    assert_eq!(c[0].check_in_id, c[1].check_in_id);
    assert_eq!(
        (c[0].status, c[1].status),
        (
            MonitorCheckInStatus::InProgress,
            MonitorCheckInStatus::Error
        )
    );
    let config = c[1].monitor_config.as_ref().unwrap();
    assert_eq!(
        config.schedule,
        MonitorSchedule::Interval {
            value: 1,
            unit: sentry_types::protocol::v7::MonitorIntervalUnit::Hour
        }
    );
    assert_eq!(config.checkin_margin, Some(10));
    // The failure is an event too.
    assert!(items.iter().any(|i| matches!(i, EnvelopeItem::Event(_))));
    let records = otlp.wait_for(3, Duration::from_secs(5));
    let check_in_records: Vec<&Value> = records
        .iter()
        .filter(|r| r["attrs"]["errsnap.check_in.id"].is_string())
        .collect();
    assert_eq!(check_in_records.len(), 2, "{records:#?}");
    let statuses: Vec<&str> = check_in_records
        .iter()
        .map(|r| r["attrs"]["errsnap.check_in.status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["in_progress", "error"]);
    let end = check_in_records[1];
    assert_eq!(end["severity"], 17);
    assert_eq!(end["resource"]["service.name"], "backup");
    assert_eq!(end["attrs"]["errsnap.monitor.every_ms"], 3_600_000);
    assert!(
        end["body_text"]
            .as_str()
            .unwrap()
            .starts_with("monitor backup: error after"),
        "{end}"
    );
    assert_eq!(
        end["attrs"]["errsnap.check_in.id"].as_str().unwrap(),
        c[0].check_in_id.simple().to_string()
    );
}

#[test]
fn an_event_given_up_while_sentry_kept_limiting_is_reported_as_ratelimit_backoff() {
    let Some(bugsink) = Bugsink::start("upstream_ratelimit_backoff") else {
        return;
    };
    let Some(python) =
        crate::peers::python_with("upstream_ratelimit_backoff", "bugsink", "bugsink")
    else {
        return;
    };
    // Two 429s, each pausing the channel 3 s; then Bugsink answers.
    let proxy = FaultProxy::start_with(&python, bugsink.port, "429:3,429:3", true);
    let (_d, db) = util::temp_db();
    let log = util::builder(&db, "shop")
        .sentry_dsn(bugsink.dsn_via(proxy.port))
        .build()
        .unwrap();
    log.error("payment declined by the issuer");
    wait_requests(&proxy, 1);
    // The event has waited longer than errsnap tries (a day): the next
    // 429 is the last.
    util::open(&db)
        .execute(
            "UPDATE outbox SET created_at = created_at - 25 * 3600 * 1000 WHERE group_id IS NOT NULL",
            [],
        )
        .unwrap();
    wait_requests(&proxy, 3);
    drop(log);
    let requests = proxy.requests();
    let answered: Vec<&Value> = requests.iter().map(|r| &r["answered"]).collect();
    assert_eq!(
        answered[..3],
        [&Value::from(429), &Value::from(429), &Value::from(200)]
    );
    let body = base64::engine::general_purpose::STANDARD
        .decode(requests[2]["body"].as_str().unwrap())
        .unwrap();
    let env = Envelope::from_slice(&body).unwrap();
    let Some(EnvelopeItem::ClientReport(r)) = env.items().next() else {
        panic!("{}", String::from_utf8_lossy(&body));
    };
    assert_eq!(
        serde_json::to_value(r).unwrap()["discarded_events"],
        serde_json::json!([{"reason": "ratelimit_backoff", "category": "error", "quantity": 1}])
    );
    // The event failed for good and says why; Bugsink never had it.
    let d = errsnap::db::Database::open(&db).unwrap();
    let sentry = d
        .deliveries()
        .unwrap()
        .into_iter()
        .find(|h| h.channel == "sentry")
        .unwrap();
    assert_eq!((sentry.failed, sentry.pending), (1, 0), "{sentry:?}");
    assert_eq!(bugsink.query()["events"].as_array().map_or(0, Vec::len), 0);
}

/// One anyhow failure reported at three layers (see ecosystem.rs: one
/// event, two repeats) by a child forwarding to Sentry at `min_level`;
/// what reached the server, and the store's count of repeats.
#[cfg(feature = "anyhow")]
fn three_reports_of_one_failure(test: &str, min_level: &str) -> Option<(Vec<EnvelopeItem>, i64)> {
    let (bugsink, proxy) = recorded(test)?;
    let (_d, db) = util::temp_db();
    let dsn = bugsink.dsn_via(proxy.port);
    let out = util::run_child(
        "anyhow_chain_forwarded",
        &db,
        &[
            ("RUST_LIB_BACKTRACE", "1"),
            ("ERRSNAPTEST_SENTRY_DSN", &dsn),
            ("ERRSNAPTEST_SENTRY_MIN_LEVEL", min_level),
        ],
    );
    assert!(out.status.success(), "{}", util::describe(&out));
    let repeats = util::count(
        &util::open(&db),
        "SELECT value FROM counters WHERE name = 'deduplicated'",
    );
    Some((items(&proxy), repeats))
}

/// The last session update's status and errors.
#[cfg(feature = "anyhow")]
fn session_end(items: &[EnvelopeItem]) -> Option<(SessionStatus, u64)> {
    sessions(items).last().map(|s| (s.status, s.errors))
}

#[cfg(feature = "anyhow")]
#[test]
fn reports_of_a_failure_already_reported_are_a_client_report_of_event_processor() {
    let Some((sent, repeats)) = three_reports_of_one_failure("upstream_duplicates", "error") else {
        return;
    };
    assert_eq!(repeats, 2);
    let events = sent
        .iter()
        .filter(|i| matches!(i, EnvelopeItem::Event(_)))
        .count();
    assert_eq!(events, 1);
    let r = reports(&sent);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(
        r[0]["discarded_events"],
        serde_json::json!([{"reason": "event_processor", "category": "error", "quantity": 2}])
    );
    // The run's session says one error, not three.
    assert_eq!(session_end(&sent), Some((SessionStatus::Exited, 1)));
}

#[cfg(feature = "anyhow")]
#[test]
fn repeats_of_errors_sentry_does_not_take_are_not_reported_to_it() {
    let Some((sent, repeats)) =
        three_reports_of_one_failure("upstream_duplicates_not_forwarded", "fatal")
    else {
        return;
    };
    // Still two repeats in the store's own count, and the session's one
    // error; nothing of them at Sentry.
    assert_eq!(repeats, 2);
    assert!(!sent.iter().any(|i| matches!(i, EnvelopeItem::Event(_))));
    assert_eq!(reports(&sent), Vec::<Value>::new());
    assert_eq!(session_end(&sent), Some((SessionStatus::Exited, 1)));
}
