//! The runs ledger's retention on every backend: runs that ended before
//! the limit go with their readings; a run still running stays however
//! old; the same answers from SQLite, PostgreSQL and MariaDB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::event::sample::RunSample;
use crate::store::runs::{RunStart, RunStatus};
use crate::store::seam::Reader;
use crate::store::Store;

const DAY: i64 = 86_400_000;
const T: i64 = 1_796_000_000_000;

fn run(pid: u32, started_at: i64) -> RunStart {
    RunStart {
        boot_id: Some("boot-runs-tests".into()),
        pid,
        process_start: Some(1),
        started_at,
        app_name: None,
        release: None,
        build_id: None,
        cgroup: None,
        oom_kills: None,
        memory_max_bytes: None,
    }
}

fn script(store: &mut dyn Store, reader: &dyn Reader) -> Vec<String> {
    let mut seen = Vec::new();
    let (old, _) = store.start_run(&run(1001, T - 100 * DAY)).unwrap();
    store.end_run(old, RunStatus::Exited, T - 95 * DAY).unwrap();
    let (edge, _) = store.start_run(&run(1002, T - 100 * DAY)).unwrap();
    store
        .end_run(edge, RunStatus::Crashed, T - 90 * DAY)
        .unwrap();
    let reading = RunSample {
        at_ms: T - 95 * DAY,
        ..RunSample::default()
    };
    store.record_samples(old, 0, &[reading]).unwrap();
    let (recent, _) = store.start_run(&run(1003, T - 2 * DAY)).unwrap();
    store.end_run(recent, RunStatus::Exited, T - DAY).unwrap();
    // A process of this boot still running (this one) since long ago.
    let mut me = RunStart::this_process(None, None);
    me.boot_id = Some("boot-runs-tests".into());
    me.started_at = T - 120 * DAY;
    store.start_run(&me).unwrap();
    let gone = store.drop_runs_before(T - 90 * DAY).unwrap();
    seen.push(format!("dropped {gone}"));
    for r in reader.runs(10, None).unwrap() {
        let who = if r.pid == std::process::id() {
            "me".to_owned()
        } else {
            r.pid.to_string()
        };
        seen.push(format!("{who} {}", r.status.as_str()));
    }
    seen.push(format!(
        "readings of the dropped run {}",
        reader.run_samples(old, 0, i64::MAX).unwrap().len()
    ));
    seen
}

fn sqlite() -> Vec<String> {
    super::on_sqlite::on_sqlite(&|store, reader| script(store, reader))
}

#[test]
fn old_runs_go_with_their_readings_and_a_running_one_stays() {
    let got = sqlite();
    assert_eq!(
        got,
        [
            "dropped 1",
            "me running",
            "1003 exited",
            "1002 crashed",
            "readings of the dropped run 0",
        ],
        "{got:#?}"
    );
}

#[cfg(all(feature = "postgres", unix))]
#[test]
fn every_backend_drops_old_runs_alike() {
    super::differential::on_every_server("runs_retention", &sqlite(), &|store, reader| {
        script(store, reader)
    });
}
