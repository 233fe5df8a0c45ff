//! A writer-bound load for profiling: one producer, N events.
#[path = "../benches/common/mod.rs"]
mod common;
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    eprintln!("rss at start {} MiB", common::rss() >> 20);
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var("KEEP_DB").ok();
    let cap: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let logger = errsnap::EventLogger::builder()
        .name("bench")
        .db_path(
            keep.clone()
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| dir.path().join("LOGS.db")),
        )
        .config(errsnap::Config::empty())
        .overflow(errsnap::Overflow::Block(std::time::Duration::from_secs(60)))
        .queue_capacity(cap)
        .build()
        .unwrap();
    let t = std::time::Instant::now();
    for i in 0..n {
        if std::env::var("SAME").is_ok() {
            common::deep(22, &mut || logger.error("connection reset by peer"));
        } else {
            common::deep(8, &mut || logger.error(format!("order {i} failed")));
        }
    }
    logger.flush(std::time::Duration::from_secs(600));
    eprintln!("{} events/s", n as f64 / t.elapsed().as_secs_f64());
    eprintln!(
        "peak rss {} MiB, rss now {} MiB",
        common::peak_rss() >> 20,
        common::rss() >> 20
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for l in status.lines().filter(|l| l.starts_with("Rss")) {
        eprintln!("{l}");
    }
    drop(logger);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for l in status.lines().filter(|l| l.starts_with("RssAnon")) {
        eprintln!("after drop: {l}");
    }
}
