//! Resident memory before any capture, after the writer resolved stacks,
//! and after it dropped its symbol tables for idleness
//! (`symbol_cache_idle`, issue #16). Prints one JSON line.
//!
//! ```sh
//! cargo run --release --manifest-path benches/Cargo.toml --example symbol_idle
//! ```

use std::time::Duration;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[inline(never)]
fn nested(depth: usize, logger: &errsnap::EventLogger, i: usize) {
    if depth == 0 {
        logger.error(format!("idle test {i}"));
    } else {
        nested(depth - 1, logger, i);
    }
    std::hint::black_box(depth);
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logger = errsnap::EventLogger::builder()
        .name("idle")
        .db_path(dir.path().join("LOGS.db"))
        .config(errsnap::Config::empty())
        .symbol_cache_idle(Duration::from_secs(2))
        .build()
        .expect("logger");
    logger.info("start");
    logger.flush(Duration::from_secs(30));
    let before = rss_bytes();
    for i in 0..50 {
        nested(i % 25, &logger, i);
    }
    logger.flush(Duration::from_secs(60));
    let loaded = rss_bytes();
    std::thread::sleep(Duration::from_secs(4));
    let released = rss_bytes();
    println!(
        "{{\"rss_before\": {before}, \"rss_tables_loaded\": {loaded}, \"rss_after_idle_release\": {released}}}"
    );
}
