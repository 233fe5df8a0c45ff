//! Monitors on every backend: check-ins recorded, missed runs found once
//! per expected time, timeouts and dead processes judged once, failures
//! and recoveries said; the same answers from SQLite and from the
//! PostgreSQL and MariaDB the tests start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::event::HostInfo;
use crate::monitors::check_in::{Exit, MonitorSpec, Note, Status};
use crate::monitors::judge::Finding;
use crate::monitors::Schedule;
use crate::store::claims::Claimant;
use crate::store::runs::{CrashedRun, RunStart};
use crate::store::seam::Reader;
use crate::store::Store;

fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn nightly() -> MonitorSpec {
    MonitorSpec {
        slug: "nightly".into(),
        schedule: Schedule::crontab("0 3 * * *", "UTC").unwrap(),
        margin: Duration::from_secs(300),
        max_runtime: Some(Duration::from_secs(3600)),
    }
}

fn beat() -> MonitorSpec {
    MonitorSpec {
        slug: "worker-beat".into(),
        schedule: Schedule::interval(Duration::from_secs(60)).unwrap(),
        margin: Duration::from_secs(30),
        max_runtime: None,
    }
}

fn note(spec: &MonitorSpec, uid: &str, status: Status, when: &str) -> Note {
    Note {
        spec: spec.clone(),
        uid: format!("{uid:0>32}"),
        status,
        at_ms: at(when),
        // A heartbeat takes no time; a nightly run ten minutes.
        duration_ms: (status != Status::InProgress).then_some(if spec.schedule.every().is_some() {
            0
        } else {
            600_000
        }),
        exit: Exit::default(),
        reason: (status == Status::Error).then(|| "exit status 3".to_owned()),
        attachments: Vec::new(),
        attachment_cap: 0,
    }
}

fn said(found: &[Finding]) -> Vec<String> {
    found
        .iter()
        .map(|f| {
            format!(
                "{} {}{} {}",
                f.slug,
                f.status.as_str(),
                if f.recovered { " recovered" } else { "" },
                f.reason.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

/// Runs the same script on a store and its reader; what was found.
fn script(store: &mut dyn Store, reader: &dyn Reader) -> Vec<String> {
    let mut seen = Vec::new();
    let me = Claimant::this_process();
    store
        .register_host(&HostInfo::collect(), at("2026-12-06T12:00:00Z"))
        .unwrap();
    let n = nightly();
    let record = |store: &mut dyn Store, note: Note, seen: &mut Vec<String>| {
        let f = store.record_check_in(&note, &me).unwrap();
        seen.extend(said(&f));
    };
    // Declared at noon; the first night's run starts on time and ends ok.
    record(
        store,
        note(&n, "d", Status::Declared, "2026-12-06T12:00:00Z"),
        &mut seen,
    );
    record(
        store,
        note(&n, "a", Status::InProgress, "2026-12-07T03:00:10Z"),
        &mut seen,
    );
    record(
        store,
        note(&n, "a", Status::Ok, "2026-12-07T03:10:10Z"),
        &mut seen,
    );
    let judge = |store: &mut dyn Store, when: &str, seen: &mut Vec<String>| {
        let found: Vec<Finding> = store
            .judge_monitors(at(when))
            .unwrap()
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        seen.push(format!("judged at {when}: {}", said(&found).join("; ")));
    };
    judge(store, "2026-12-07T04:00:00Z", &mut seen);
    // The second night nothing starts: missed once, however often judged.
    judge(store, "2026-12-08T03:04:00Z", &mut seen);
    judge(store, "2026-12-08T03:06:00Z", &mut seen);
    judge(store, "2026-12-08T03:07:00Z", &mut seen);
    // The third night's run runs too long: timed out once; its late end is
    // noted, the finding stands.
    record(
        store,
        note(&n, "b", Status::InProgress, "2026-12-09T03:00:30Z"),
        &mut seen,
    );
    judge(store, "2026-12-09T04:00:00Z", &mut seen);
    judge(store, "2026-12-09T04:01:00Z", &mut seen);
    judge(store, "2026-12-09T04:02:00Z", &mut seen);
    record(
        store,
        note(&n, "b", Status::Ok, "2026-12-09T04:05:00Z"),
        &mut seen,
    );
    // The fourth fails; the fifth is ok: a recovery.
    record(
        store,
        note(&n, "c", Status::InProgress, "2026-12-10T03:00:00Z"),
        &mut seen,
    );
    record(
        store,
        note(&n, "c", Status::Error, "2026-12-10T03:01:00Z"),
        &mut seen,
    );
    record(
        store,
        note(&n, "e", Status::InProgress, "2026-12-11T03:00:00Z"),
        &mut seen,
    );
    record(
        store,
        note(&n, "e", Status::Ok, "2026-12-11T03:01:00Z"),
        &mut seen,
    );
    // The sixth's process crashes (the runs ledger says so): judged once,
    // with the reason.
    let dead = RunStart {
        boot_id: Some("boot-monitor-tests".into()),
        pid: 4411,
        process_start: Some(77),
        started_at: at("2026-12-12T02:59:00Z"),
        app_name: None,
        release: None,
        build_id: None,
        cgroup: None,
        oom_kills: None,
        memory_max_bytes: None,
    };
    store.start_run(&dead).unwrap();
    let who = Claimant {
        boot_id: dead.boot_id.clone(),
        pid: dead.pid,
        process_start: dead.process_start,
    };
    let f = store
        .record_check_in(
            &note(&n, "f", Status::InProgress, "2026-12-12T03:00:00Z"),
            &who,
        )
        .unwrap();
    seen.extend(said(&f));
    judge(store, "2026-12-12T03:10:00Z", &mut seen);
    store
        .crash_run(&CrashedRun {
            boot_id: dead.boot_id.as_deref(),
            pid: dead.pid,
            process_start: dead.process_start,
            at_ms: at("2026-12-12T03:13:00Z"),
            release: None,
            app_name: None,
        })
        .unwrap();
    judge(store, "2026-12-12T03:20:00Z", &mut seen);
    judge(store, "2026-12-12T03:30:00Z", &mut seen);
    // A heartbeat every minute, 30 s of margin: a silence is missed once.
    let b = beat();
    record(
        store,
        note(&b, "g", Status::Ok, "2026-12-12T04:00:00Z"),
        &mut seen,
    );
    judge(store, "2026-12-12T04:01:20Z", &mut seen);
    judge(store, "2026-12-12T04:01:40Z", &mut seen);
    judge(store, "2026-12-12T04:03:00Z", &mut seen);
    record(
        store,
        note(&b, "h", Status::Ok, "2026-12-12T04:03:10Z"),
        &mut seen,
    );
    // Runs older than a day go (never one still in progress): the first
    // five nights'.
    let open = note(&b, "i", Status::InProgress, "2026-12-10T04:00:30Z");
    store.record_check_in(&open, &me).unwrap();
    let gone = store
        .drop_check_ins_before(at("2026-12-11T12:00:00Z"))
        .unwrap();
    seen.push(format!("dropped {gone}"));
    // What a reader lists.
    for m in reader.monitors(10).unwrap() {
        let runs: Vec<String> = m
            .runs
            .iter()
            .map(|r| {
                format!(
                    "{}{}",
                    r.status,
                    r.reason
                        .as_deref()
                        .map(|x| format!(" ({x})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        seen.push(format!(
            "{} failing={} runs: {}",
            m.slug,
            m.failing,
            runs.join(", ")
        ));
    }
    seen
}

fn sqlite() -> Vec<String> {
    super::on_sqlite::on_sqlite(&|store, reader| script(store, reader))
}

#[test]
fn runs_are_judged_once_each_and_said_in_words() {
    let got = sqlite();
    let want = [
        "judged at 2026-12-07T04:00:00Z: ",
        "judged at 2026-12-08T03:04:00Z: ",
        "judged at 2026-12-08T03:06:00Z: nightly missed -",
        "judged at 2026-12-08T03:07:00Z: ",
        "judged at 2026-12-09T04:00:00Z: ",
        "judged at 2026-12-09T04:01:00Z: nightly timeout -",
        "judged at 2026-12-09T04:02:00Z: ",
        "nightly error exit status 3",
        "nightly ok recovered -",
        "judged at 2026-12-12T03:10:00Z: ",
        "judged at 2026-12-12T03:20:00Z: nightly error pid 4411 crashed at 2026-12-12 03:13 UTC",
        "judged at 2026-12-12T03:30:00Z: ",
        "judged at 2026-12-12T04:01:20Z: ",
        "judged at 2026-12-12T04:01:40Z: worker-beat missed -",
        "judged at 2026-12-12T04:03:00Z: ",
        "worker-beat ok recovered -",
        "dropped 5",
        "nightly failing=true runs: error (pid 4411 crashed at 2026-12-12 03:13 UTC)",
        "worker-beat failing=false runs: ok, missed, ok, in_progress",
    ];
    assert_eq!(got, want, "{got:#?}");
}

#[cfg(all(feature = "postgres", unix))]
#[test]
fn every_backend_judges_monitors_alike() {
    super::differential::on_every_server("monitors", &sqlite(), &|store, reader| {
        script(store, reader)
    });
}
