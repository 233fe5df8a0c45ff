//! What the benchmarks share: the workloads and the peers' set-ups.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Calls `f` from `depth` nested frames, so captures walk a realistic stack
/// (~30 frames with the harness's own).
#[inline(never)]
pub fn deep<R>(depth: usize, f: &mut dyn FnMut() -> R) -> R {
    if depth == 0 {
        f()
    } else {
        let r = deep(depth - 1, f);
        std::hint::black_box(&r);
        r
    }
}

/// The nesting used everywhere (plus main/harness frames: ~30 in all).
pub const DEPTH: usize = 22;

/// An error with a cause, for `capture_error`.
#[derive(Debug)]
pub struct Timeout(pub std::io::Error);

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("payment provider timed out")
    }
}

impl std::error::Error for Timeout {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

pub fn timeout() -> Timeout {
    Timeout(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "read timed out after 30s",
    ))
}

/// An errsnap logger on `path`, isolated from `.env`, every event stored.
pub fn errsnap_logger(path: &Path, durability: errsnap::Durability) -> errsnap::EventLogger {
    errsnap::EventLogger::builder()
        .name("bench")
        .db_path(path)
        .config(errsnap::Config::empty())
        .durability(durability)
        .overflow(errsnap::Overflow::Block(Duration::from_secs(60)))
        .queue_capacity(20_000)
        .build()
        .expect("errsnap logger")
}

/// A sentry transport that drops every envelope: sentry's cost is what it
/// does on the caller's thread.
struct Drop_;

impl sentry::Transport for Drop_ {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        std::hint::black_box(envelope);
    }
}

/// sentry with stack traces on every event (messages too), no network.
pub fn sentry_init() -> sentry::ClientInitGuard {
    let mut options = sentry::ClientOptions::new();
    options.dsn = Some("https://public@127.0.0.1/1".parse().expect("dsn"));
    options.attach_stacktrace = true;
    options.transport = Some(Arc::new(|_: &sentry::ClientOptions| {
        Arc::new(Drop_) as Arc<dyn sentry::Transport>
    }));
    sentry::init(options)
}

/// `tracing` with a non-blocking file writer (tracing-appender): the floor
/// for "just log a line", no stack.
pub fn tracing_init(
    dir: &Path,
) -> (
    tracing::Dispatch,
    tracing_appender::non_blocking::WorkerGuard,
) {
    let file = tracing_appender::rolling::never(dir, "app.log");
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(file);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    (tracing::Dispatch::new(subscriber), guard)
}

/// A faithful port of the original design's `push_to_table` with
/// `hw_monitor=True`: per event it opens the database, creates the table,
/// takes a full `System::new_all()`, a resolved backtrace, inserts, closes.
pub fn naive_push(path: &Path, table: &str, msg: &str) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (date TEXT, msg TEXT, trace TEXT);
         CREATE TABLE IF NOT EXISTS hw_logs (date TEXT, pid INTEGER, msg TEXT, cpu REAL, mem INTEGER);"
    ))
    .expect("create");
    let mut sys = sysinfo::System::new_all();
    sys.refresh_all();
    let pid = sysinfo::Pid::from_u32(std::process::id());
    let (cpu, mem) = sys
        .process(pid)
        .map(|p| (p.cpu_usage() as f64, p.memory() as i64))
        .unwrap_or((0.0, 0));
    let trace = format!("{:?}", backtrace::Backtrace::new());
    let now = format!("{:?}", std::time::SystemTime::now());
    conn.execute(
        &format!("INSERT INTO {table} (date, msg, trace) VALUES (?1, ?2, ?3)"),
        rusqlite::params![now, msg, trace],
    )
    .expect("insert");
    conn.execute(
        "INSERT INTO hw_logs (date, pid, msg, cpu, mem) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![now, std::process::id(), msg, cpu, mem],
    )
    .expect("insert");
}

/// Peak resident memory of this process so far (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Current resident memory (VmRSS), in bytes.
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
