//! Records a few events into ./LOGS.db, then reads them back and prints them.
//!
//! Run with `cargo run --example quickstart`.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use errsnap::prelude::*;
use errsnap::{EventLogger, PushOptions};

/// A small error with a cause, to show the stored chain.
#[derive(Debug)]
struct ConfigError {
    source: std::io::Error,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not load settings")
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

fn load_settings() -> Result<String, ConfigError> {
    std::fs::read_to_string("/nonexistent/errsnap/settings.toml")
        .map_err(|source| ConfigError { source })
}

fn divide(a: i32, b: i32) -> Result<i32, String> {
    a.checked_div(b)
        .ok_or_else(|| "division by zero".to_owned())
}

fn main() -> Result<(), Box<dyn Error>> {
    // The original design: `event = EventLogger('error_table')`.
    let logger = EventLogger::new("error_table")?;

    // Some CPU work, so the snapshot's CPU % has something to show.
    let mut x = 0u64;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }

    // `event.push_to_table(f'Error: {err}', slack=True, email=False, hw_monitor=True)`
    if let Err(err) = divide(3, 0) {
        logger.push_to_table(format!("Error: {err}"), PushOptions::new().hw_monitor(true));
    }
    // The idiomatic calls.
    logger.warn("cache is 93% full");
    let _ = load_settings().report(&logger);

    if !logger.flush(Duration::from_secs(10)) {
        return Err("events were not committed within 10 s".into());
    }

    let db = rusqlite::Connection::open(logger.path())?;
    println!("recorded into {}", logger.path().display());
    let mut stmt = db.prepare(
        "SELECT e.uid, e.level, e.kind, e.message, e.error_chain, e.file, e.line,
                s.proc_cpu_percent, s.proc_rss_bytes, g.count,
                (SELECT count(*) FROM frames f WHERE f.backtrace_id = e.backtrace_id)
         FROM events e
         JOIN event_groups g ON g.id = e.group_id
         LEFT JOIN snapshots s ON s.id = e.snapshot_id
         WHERE e.pid = ?1 ORDER BY e.id",
    )?;
    let rows = stmt.query_map([std::process::id()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<i64>>(6)?,
            r.get::<_, Option<f64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, i64>(9)?,
            r.get::<_, i64>(10)?,
        ))
    })?;
    for row in rows {
        let (uid, level, kind, msg, chain, file, line, cpu, rss, count, frames) = row?;
        let level = errsnap::Level::from_i64(level).map_or("?", |l| l.as_str());
        println!("- {uid} [{level}/{kind}] {msg}");
        if let Some(chain) = chain {
            println!("    chain: {chain}");
        }
        println!(
            "    at {}:{}  frames: {frames}  group count: {count}",
            file.unwrap_or_default(),
            line.unwrap_or_default()
        );
        if let (Some(cpu), Some(rss)) = (cpu, rss) {
            println!(
                "    process: {cpu:.1}% CPU, {:.1} MiB RSS",
                rss as f64 / 1048576.0
            );
        }
    }
    println!(
        "try: sqlite3 {} 'SELECT * FROM error_table'",
        logger.path().display()
    );
    Ok(())
}
