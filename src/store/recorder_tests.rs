//! The flight recorder's series on every backend: chunks made and
//! rewritten, a crash file's readings added once, the readings before an
//! event found by its run, old chunks dropped; the same answers from
//! SQLite and from the PostgreSQL and MariaDB the tests start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::event::sample::RunSample;
use crate::event::{Event, EventId, HostInfo};
use crate::store::recorder::as_stored;
use crate::store::runs::RunStart;
use crate::store::seam::Reader;
use crate::store::Store;

const T0: i64 = 1_800_000_000_000;

fn reading(i: i64) -> RunSample {
    let mut s = RunSample::at(T0 + i * 10_000);
    s.rss_bytes = Some((100 << 20) + i as u64 * (50 << 20));
    s.cpu_percent = Some(12.5 + i as f64);
    s.threads = Some(4);
    s.open_fds = Some(20 + i as u64);
    s.fd_limit = Some(1024);
    s.cgroup_memory_bytes = Some((150 << 20) + i as u64 * (50 << 20));
    s.cgroup_memory_max_bytes = Some(1 << 30);
    s
}

/// Runs the same script on a store and its reader; what the reader saw.
fn script(store: &mut dyn Store, reader: &dyn Reader) -> Vec<String> {
    let mut seen = Vec::new();
    store.register_host(&HostInfo::collect(), T0).unwrap();
    let mut start = RunStart::this_process(None, Some("1.0".into()));
    start.started_at = T0 - 1_000;
    let (run, _) = store.start_run(&start).unwrap();
    // The run found by its id (`Database::run`), alone.
    let one = reader.runs(5, Some(run)).unwrap();
    assert_eq!(one.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run]);
    assert!(reader.runs(5, Some(run + 100)).unwrap().is_empty());
    // Chunk 0 made, then rewritten with a second reading; chunk 1 made.
    store.record_samples(run, 0, &[reading(0)]).unwrap();
    store
        .record_samples(run, 0, &[reading(0), reading(1)])
        .unwrap();
    store.record_samples(run, 1, &[reading(2)]).unwrap();
    let all = reader.run_samples(run, 0, i64::MAX).unwrap();
    let want: Vec<RunSample> = (0..3).map(|i| as_stored(&reading(i))).collect();
    assert_eq!(all, want);
    seen.push(format!("stored {}", all.len()));
    // A crash file's ring: only what the store lacks is added.
    let ring: Vec<RunSample> = (1..6).map(reading).collect();
    assert_eq!(store.append_samples(run, &ring).unwrap(), 3);
    assert_eq!(store.append_samples(run, &ring).unwrap(), 0, "once");
    let all = reader.run_samples(run, 0, i64::MAX).unwrap();
    assert_eq!(
        all.iter().map(|s| s.at_ms).collect::<Vec<_>>(),
        (0..6).map(|i| T0 + i * 10_000).collect::<Vec<_>>()
    );
    seen.push(format!("after the ring {}", all.len()));
    // A window's readings only.
    let some = reader.run_samples(run, T0 + 15_000, T0 + 35_000).unwrap();
    seen.push(format!("window {}", some.len()));
    // The readings before an event of this run.
    let mut ev = Event::sample("the cache is cold");
    ev.id = EventId::generate(T0 + 52_000);
    ev.timestamp_ms = T0 + 52_000;
    ev.pid = std::process::id();
    store.insert_batch(std::slice::from_ref(&ev)).unwrap();
    let (of, before) = reader.trend_before(&ev.id.to_string()).unwrap().unwrap();
    assert_eq!(of, run);
    seen.push(format!("before the event {}", before.len()));
    seen.extend(crate::pipeline::trend::describe_trend(&before));
    // Old chunks go; the newer ones stay.
    store.drop_samples_before(T0 + 15_000).unwrap();
    let left = reader.run_samples(run, 0, i64::MAX).unwrap();
    seen.push(format!("after dropping {}", left.len()));
    seen
}

fn sqlite() -> Vec<String> {
    super::on_sqlite::on_sqlite(&|store, reader| script(store, reader))
}

#[test]
fn the_series_is_stored_read_and_dropped_by_chunks() {
    assert_eq!(
        sqlite(),
        vec![
            "stored 3",
            "after the ring 6",
            "window 2",
            "before the event 6",
            "RSS 100 -> 350 MiB in 50 s, cgroup limit 1 GiB (39%)",
            "after dropping 4",
        ]
    );
}

#[cfg(all(feature = "postgres", unix))]
#[test]
fn every_backend_keeps_the_series_alike() {
    super::differential::on_every_server("recorder", &sqlite(), &|store, reader| {
        script(store, reader)
    });
}
