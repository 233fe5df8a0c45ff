//! `forward`: what forwarding costs (issue #20). One producer records N
//! errors; the same run is made without forwarding, with Sentry while its
//! server is down (the write path's own cost), with Sentry, with OTLP and
//! with both, each to a loopback sink that answers at once
//! (keep-alive HTTP/1.1, like a real server). Measured: the write
//! throughput (until `flush`: every event committed with its outbox rows),
//! its ratio to the run without forwarding, the delivery rate of the notify
//! thread (until the sink has them all; the channels' per-minute spacing
//! lifted to its maximum), and the bytes the outbox rows add per event.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A loopback HTTP/1.1 server answering 200 to every POST, counting them.
pub fn sink() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream.try_clone().expect("clone"));
                let mut w = stream;
                loop {
                    let mut len = 0usize;
                    let mut any = false;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        any = true;
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    if !any {
                        return;
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, count)
}

fn file_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        })
        .sum()
}

fn run(dir: &Path, mode: &str, n: u64) -> Value {
    let path = dir.join(format!("forward-{}.db", mode.replace([' ', ','], "-")));
    let (port, count) = sink();
    let mut config = errsnap::Config::empty();
    // The channels' own spacing (default 1,000 a second) lifted to its
    // maximum, so the figure is what the notify thread can do.
    for key in [
        "ERRSNAP_SENTRY_MAX_PER_MINUTE",
        "ERRSNAP_OTLP_MAX_PER_MINUTE",
    ] {
        config.set(key, "600000").expect("config");
    }
    let channels = match mode {
        "sentry" => 1,
        "otlp" => 1,
        "both" => 2,
        _ => 0,
    };
    if mode == "sentry, server down" {
        // Nothing listens there: the channel pauses after the first
        // failure, so this is the write path's own cost (the outbox rows).
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        config
            .set(
                "ERRSNAP_SENTRY_DSN",
                format!("http://0123456789abcdef0123456789abcdef@127.0.0.1:{closed}/1"),
            )
            .expect("config");
    }
    if mode == "sentry" || mode == "both" {
        config
            .set(
                "ERRSNAP_SENTRY_DSN",
                format!("http://0123456789abcdef0123456789abcdef@127.0.0.1:{port}/1"),
            )
            .expect("config");
    }
    if mode == "otlp" || mode == "both" {
        config
            .set("ERRSNAP_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"))
            .expect("config");
    }
    let logger = errsnap::EventLogger::builder()
        .name("bench")
        .db_path(&path)
        .config(config)
        .overflow(errsnap::Overflow::Block(Duration::from_secs(60)))
        .queue_capacity(20_000)
        .build()
        .expect("logger");
    let t = Instant::now();
    for i in 0..n {
        logger.error(format!("order {i} failed: card issuer unavailable"));
    }
    assert!(logger.flush(Duration::from_secs(600)));
    let write = t.elapsed().as_secs_f64();
    let want = n * channels;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while count.load(Ordering::SeqCst) < want {
        assert!(Instant::now() < deadline, "{mode}: not all delivered");
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered = t.elapsed().as_secs_f64();
    let bytes = file_bytes(&path);
    drop(logger);
    json!({
        "mode": mode,
        "events": n,
        "write_seconds": write,
        "writes_per_second": n as f64 / write,
        "requests": count.load(Ordering::SeqCst),
        "delivered_seconds": if channels > 0 { json!(delivered) } else { Value::Null },
        "deliveries_per_second": if channels > 0 { json!(want as f64 / delivered) } else { Value::Null },
        "file_bytes": bytes,
    })
}

/// The whole section.
pub fn forward(quick: bool) -> Value {
    let n = if quick { 5_000 } else { 20_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let runs: Vec<Value> = ["none", "sentry, server down", "sentry", "otlp", "both"]
        .iter()
        .map(|m| run(dir.path(), m, n))
        .collect();
    let base = &runs[0];
    let per_event = |r: &Value| {
        (r["file_bytes"].as_f64().unwrap_or(0.0) - base["file_bytes"].as_f64().unwrap_or(0.0))
            / n as f64
    };
    let ratios: Vec<Value> = runs
        .iter()
        .skip(1)
        .map(|r| {
            json!({
                "mode": r["mode"],
                "write_throughput_vs_none": r["writes_per_second"].as_f64().unwrap_or(0.0)
                    / base["writes_per_second"].as_f64().unwrap_or(1.0),
                "outbox_bytes_per_event": per_event(r),
            })
        })
        .collect();
    json!({ "runs": runs, "ratios": ratios })
}
