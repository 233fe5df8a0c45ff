//! The flight recorder's cost (BENCHMARKS.md, section 8): a process that
//! records nothing for `secs` seconds, with a heartbeat every `every_ms`
//! (0: none). Prints its CPU time (every thread) and what its readings take
//! in the store; the same command with `0` is the baseline.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --example recorder_cost -- 100 60
//! cargo run --release --manifest-path benches/Cargo.toml --example recorder_cost -- 0 60
//! ```
use std::time::Duration;

fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes into the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer; RUSAGE_SELF is always accepted.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(u.ru_utime) + ms(u.ru_stime)
}

fn main() {
    let arg = |i: usize, default: u64| -> u64 {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (every_ms, secs) = (arg(1, 100), arg(2, 60));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("LOGS.db");
    let logger = errsnap::EventLogger::builder()
        .name("bench")
        .db_path(&db)
        .config(errsnap::Config::empty())
        .heartbeat(Duration::from_millis(every_ms))
        .build()
        .unwrap();
    logger.info("started");
    assert!(logger.flush(Duration::from_secs(20)));
    let before = cpu_ms();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu = cpu_ms() - before;
    drop(logger);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, readings, bytes): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), coalesce(sum(readings), 0), coalesce(sum(length(data)), 0)
             FROM run_samples",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    println!(
        "{}",
        serde_json::json!({
            "every_ms": every_ms,
            "secs": secs,
            "cpu_ms": (cpu * 10.0).round() / 10.0,
            "rows": rows,
            "readings": readings,
            "data_bytes": bytes,
            "bytes_per_reading": if readings > 0 { bytes as f64 / readings as f64 } else { 0.0 },
        })
    );
}
