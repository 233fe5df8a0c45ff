//! Upstream items on every backend: what the outbox holds for the channels
//! that take check-ins, sessions and client reports, queued with the
//! changes that made them; the same rows from SQLite and from the
//! PostgreSQL and MariaDB the tests start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::event::{Event, HostInfo};
use crate::level::Level;
use crate::monitors::check_in::{Exit, MonitorSpec, Note, Status};
use crate::monitors::Schedule;
use crate::settings::Durability;
use crate::store::claims::Claimant;
use crate::store::runs::{CrashedRun, RunStart, RunStatus};
use crate::store::seam::{AlertRules, Reader};
use crate::store::sqlite::SqliteStore;
use crate::store::upstream::{self, Item, ItemKind};
use crate::store::Store;

fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn rules() -> AlertRules {
    AlertRules {
        channels: vec!["sentry".into(), "otlp".into(), "slack".into()],
        forward: vec!["sentry".into(), "otlp".into()],
        takes: vec![
            ("sentry".into(), ItemKind::CheckIn),
            ("sentry".into(), ItemKind::Session),
            ("sentry".into(), ItemKind::ClientReport),
            ("otlp".into(), ItemKind::CheckIn),
        ],
        policy: Default::default(),
    }
}

fn nightly() -> MonitorSpec {
    MonitorSpec {
        slug: "nightly".into(),
        schedule: Schedule::crontab("0 3 * * *", "Europe/Helsinki").unwrap(),
        margin: Duration::from_secs(300),
        max_runtime: Some(Duration::from_secs(3600)),
    }
}

fn note(uid: &str, status: Status, when: &str) -> Note {
    Note {
        spec: nightly(),
        uid: format!("{uid:0>32}"),
        status,
        at_ms: at(when),
        duration_ms: (status != Status::InProgress).then_some(600_000),
        exit: Exit::default(),
        reason: (status == Status::Error).then(|| "exit status 3".to_owned()),
        attachments: Vec::new(),
        attachment_cap: 0,
    }
}

/// The run of a process that is not this one (judged gone at the next
/// start of the same boot).
fn dead_run(pid: u32, release: &str) -> RunStart {
    run_at(pid, at("2026-12-07T00:59:00Z"), release)
}

fn run_at(pid: u32, started_at: i64, release: &str) -> RunStart {
    RunStart {
        boot_id: Some("boot-upstream-tests".into()),
        pid,
        process_start: Some(77),
        started_at,
        app_name: None,
        release: Some(release.into()),
        build_id: None,
        cgroup: None,
        oom_kills: None,
        memory_max_bytes: None,
    }
}

/// One line per pending item row, in the order they were queued.
fn pending(store: &mut dyn Store) -> Vec<String> {
    let mut due = store
        .due_alerts(&["sentry".into(), "otlp".into()], i64::MAX / 2, 1000)
        .unwrap();
    due.sort_by_key(|d| d.id);
    due.iter()
        .map(|d| {
            let Some(p) = &d.payload else {
                return format!("{} event", d.channel);
            };
            let line = match Item::from_payload(p).expect("reads back") {
                Item::CheckIn(c) => format!(
                    "check_in {} {} {} {:?} {:?} tz={:?} max={:?}",
                    c.slug,
                    &c.id[28..],
                    c.status,
                    c.duration_ms,
                    c.reason,
                    c.zone,
                    c.max_runtime_ms
                ),
                Item::Session(s) => format!(
                    "session init={} seq={} {} errors={} {} dur={}",
                    s.init,
                    s.seq,
                    s.status,
                    s.errors,
                    s.release,
                    s.duration_ms.is_some()
                ),
                Item::ClientReport(r) => format!(
                    "client_report {}",
                    r.discarded
                        .iter()
                        .map(|d| format!("{}:{}={}", d.reason, d.category, d.quantity))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            format!("{} {line}", d.channel)
        })
        .collect()
}

fn script(store: &mut dyn Store, _reader: &dyn Reader) -> Vec<String> {
    store.set_alert_rules(rules());
    let now = at("2026-12-07T12:00:00Z");
    store.register_host(&HostInfo::collect(), now).unwrap();
    // A run found gone at the next start: its session ends abnormal.
    let gone = dead_run(4411, "shop@0.9");
    store.start_run(&gone).unwrap();
    // This process's run, with two events (one error) of its own.
    let mut me = RunStart::this_process(None, Some("shop@1.0".into()));
    me.boot_id = gone.boot_id.clone();
    me.started_at = 1_699_999_000_000;
    let (run, abnormal) = store.start_run(&me).unwrap();
    assert_eq!(abnormal, 1);
    let mut info = Event::sample("started");
    info.level = Level::Info;
    store.insert_batch(&[Event::sample("boom"), info]).unwrap();
    // A run with no release has no session.
    let mut bare = dead_run(4413, "x");
    bare.release = None;
    store.start_run(&bare).unwrap();
    // A job run that starts and ends well, one that fails.
    let claimant = Claimant::this_process();
    for n in [
        note("a", Status::InProgress, "2026-12-07T01:00:10Z"),
        note("a", Status::Ok, "2026-12-07T01:10:10Z"),
        note("b", Status::InProgress, "2026-12-08T01:00:00Z"),
        note("b", Status::Error, "2026-12-08T01:01:00Z"),
    ] {
        store.record_check_in(&n, &claimant).unwrap();
    }
    // A run whose process crashed: judged an error (sent), its session
    // crashed; a run past its maximum: a timeout (not sent: the server
    // finds it by itself).
    let crashed = dead_run(4412, "shop@0.9");
    store.start_run(&crashed).unwrap();
    let who = Claimant {
        boot_id: crashed.boot_id.clone(),
        pid: crashed.pid,
        process_start: crashed.process_start,
    };
    store
        .record_check_in(&note("c", Status::InProgress, "2026-12-09T01:00:00Z"), &who)
        .unwrap();
    store
        .crash_run(&CrashedRun {
            boot_id: crashed.boot_id.as_deref(),
            pid: crashed.pid,
            process_start: crashed.process_start,
            at_ms: at("2026-12-09T01:13:00Z"),
            release: None,
            app_name: None,
        })
        .unwrap();
    store
        .record_check_in(
            &note("d", Status::InProgress, "2026-12-10T01:00:00Z"),
            &claimant,
        )
        .unwrap();
    store.judge_monitors(at("2026-12-10T02:30:00Z")).unwrap();
    // Losses: one report waiting takes more; one being sent does not.
    store.add_counter(upstream::LOST_DUPLICATE, 2).unwrap();
    store.add_counter(upstream::LOST_QUEUE_OVERFLOW, 3).unwrap();
    store.add_counter("dropped_events", 4).unwrap();
    let first = pending(store);
    let report = store
        .due_alerts(&["sentry".into()], i64::MAX / 2, 1000)
        .unwrap()
        .into_iter()
        .find(|d| {
            d.payload
                .as_deref()
                .is_some_and(|p| p.contains("client_report"))
        })
        .unwrap();
    assert!(store.claim(report.id, now).unwrap());
    store.add_counter(upstream::LOST_DUPLICATE, 1).unwrap();
    store.add_counter(upstream::LOST_BEFORE_SAVE, 5).unwrap();
    // The run's session ends once, at exit, before the ledger says so.
    store.end_session(run, RunStatus::Exited, now).unwrap();
    store.end_run(run, RunStatus::Exited, now).unwrap();
    store.end_session(run, RunStatus::Crashed, now).unwrap();
    let mut out = first;
    out.push("--- after the report was claimed and the run ended".into());
    out.extend(pending(store).into_iter().skip(out.len() - 2));
    out
}

fn sqlite() -> Vec<String> {
    super::on_sqlite::on_sqlite(&|store, reader| script(store, reader))
}

#[test]
fn items_are_queued_once_for_each_channel_that_takes_them() {
    let got = sqlite();
    let want = [
        "sentry session init=true seq=0 ok errors=0 shop@0.9 dur=false",
        "sentry session init=false seq=1 abnormal errors=0 shop@0.9 dur=true",
        "sentry session init=true seq=0 ok errors=0 shop@1.0 dur=false",
        "sentry check_in nightly 000a in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000a in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry check_in nightly 000a ok Some(600000) None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000a ok Some(600000) None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry check_in nightly 000b in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000b in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry check_in nightly 000b error Some(600000) Some(\"exit status 3\") tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000b error Some(600000) Some(\"exit status 3\") tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry session init=true seq=0 ok errors=0 shop@0.9 dur=false",
        "sentry check_in nightly 000c in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000c in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry session init=false seq=1 crashed errors=0 shop@0.9 dur=true",
        "sentry check_in nightly 000d in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000d in_progress None None tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry check_in nightly 000c error Some(780000) Some(\"pid 4412 crashed at 2026-12-09 03:13 EET\") tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "otlp check_in nightly 000c error Some(780000) Some(\"pid 4412 crashed at 2026-12-09 03:13 EET\") tz=Some(\"Europe/Helsinki\") max=Some(3600000)",
        "sentry client_report event_processor:error=2,queue_overflow:error=3",
        "--- after the report was claimed and the run ended",
        "sentry client_report event_processor:error=1,before_send:error=5",
        "sentry session init=false seq=1 exited errors=1 shop@1.0 dur=true",
    ];
    assert_eq!(got, want, "{got:#?}");
}

#[cfg(all(feature = "postgres", unix))]
#[test]
fn every_backend_queues_items_alike() {
    super::differential::on_every_server("upstream", &sqlite(), &|store, reader| {
        script(store, reader)
    });
}

/// The error count of each session's end, by release.
fn session_errors(store: &mut dyn Store) -> Vec<(String, u64)> {
    let mut due = store
        .due_alerts(&["sentry".into()], i64::MAX / 2, 1000)
        .unwrap();
    due.sort_by_key(|d| d.id);
    due.iter()
        .filter_map(|d| match Item::from_payload(d.payload.as_deref()?)? {
            Item::Session(s) if s.seq == 1 => Some((s.release, s.errors)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sessions_errors_are_its_process_events_from_just_before_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("LOGS.db");
    let mut owned = SqliteStore::open(&path, Durability::Normal, Duration::from_secs(5)).unwrap();
    let store: &mut dyn Store = &mut owned;
    store.set_alert_rules(rules());
    let t = at("2026-12-07T12:00:00Z");
    store.register_host(&HostInfo::collect(), t).unwrap();
    let run = run_at;
    let error_at = |store: &mut dyn Store, pid: u32, ts: i64| {
        let mut e = Event::sample("boom");
        e.pid = pid;
        e.timestamp_ms = ts;
        store.insert_batch(&[e]).unwrap();
    };
    // A pid's earlier run ends two minutes before the next starts: an
    // error at its end is its own, one a millisecond later the next's.
    let (a, _) = store.start_run(&run(999_999, t - 600_000, "a")).unwrap();
    store.end_run(a, RunStatus::Exited, t - 120_000).unwrap();
    error_at(store, 999_999, t - 120_000);
    error_at(store, 999_999, t - 119_999);
    let (b, _) = store.start_run(&run(999_999, t, "b")).unwrap();
    store.end_session(b, RunStatus::Exited, t + 60_000).unwrap();
    // A run with no predecessor: its process's errors from five minutes
    // before it was recorded.
    error_at(store, 999_998, t - 300_001);
    error_at(store, 999_998, t - 300_000);
    let (c, _) = store.start_run(&run(999_998, t, "c")).unwrap();
    store.end_session(c, RunStatus::Exited, t + 60_000).unwrap();
    assert_eq!(
        session_errors(store),
        [
            ("a".to_owned(), 0),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1)
        ]
    );
}
