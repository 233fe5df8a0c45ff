//! The whole benchmark report in one run: caller-side latency percentiles
//! (errsnap and its peers), ratios, sustained throughput, a storm of one
//! error, the panic path, and the snapshot's cost. Prints Markdown and
//! writes `benches/results.json`.
//!
//! ```sh
//! cargo bench --manifest-path benches/Cargo.toml --bench report            # full
//! cargo bench --manifest-path benches/Cargo.toml --bench report -- --quick # a few minutes
//! ```

mod common;
#[path = "report_parts/contended.rs"]
mod contended;
#[path = "report_parts/dashboard.rs"]
mod dashboard;
#[path = "report_parts/exit.rs"]
mod exit;
#[path = "report_parts/fleet.rs"]
mod fleet;
#[path = "report_parts/forward.rs"]
mod forward;
#[path = "report_parts/unwinders.rs"]
mod unwinders;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

struct Sizes {
    calls: u64,
    naive: u64,
    throughput: u64,
    storm: u64,
    panics: u64,
}

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            calls: 20_000,
            naive: 15,
            throughput: 50_000,
            storm: 100_000,
            panics: 20,
        }
    } else {
        Sizes {
            calls: 200_000,
            naive: 60,
            throughput: 200_000,
            storm: 1_000_000,
            panics: 100,
        }
    }
}

fn summary(h: &Histogram<u64>) -> Value {
    json!({
        "samples": h.len(),
        "median_ns": h.value_at_quantile(0.5),
        "p99_ns": h.value_at_quantile(0.99),
        "p999_ns": h.value_at_quantile(0.999),
        "max_ns": h.max(),
        "mean_ns": h.mean().round(),
    })
}

fn with_contended(mut calls: Value, contended: Value, unwinders: Value) -> Value {
    calls["contended"] = contended;
    calls["unwinders"] = unwinders;
    calls
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram")
}

/// Per-call latency of `call`, `n` calls, `between` run untimed every
/// 2,000 calls (errsnap: flush, so the queue never fills).
fn latency(n: u64, mut call: impl FnMut(), mut between: impl FnMut()) -> Histogram<u64> {
    let mut h = hist();
    let mut i = 0;
    while i < n {
        for _ in 0..2_000.min(n - i) {
            let t = Instant::now();
            call();
            let ns = t.elapsed().as_nanos() as u64;
            h.record(ns.max(1)).expect("record");
            i += 1;
        }
        between();
    }
    h
}

// Long by design: one measurement per peer in the same run, each a few
// lines; keeping them together keeps the comparison fair and visible.
fn caller_costs(s: &Sizes, dir: &Path) -> Value {
    let logger = errsnap_logger(&dir.join("LOGS.db"), errsnap::Durability::Normal);
    let flush = || {
        logger.flush(Duration::from_secs(60));
    };
    // Warm up: symbol cache, page cache, allocator.
    latency(
        5_000,
        || {
            deep(DEPTH, &mut || {
                logger.error("warm up");
            })
        },
        flush,
    );
    let err = timeout();
    let error = latency(
        s.calls,
        || {
            deep(DEPTH, &mut || {
                logger.error("payment provider timed out");
            })
        },
        flush,
    );
    let capture = latency(
        s.calls,
        || {
            deep(DEPTH, &mut || {
                logger.capture_error(&err);
            })
        },
        flush,
    );
    let push = latency(
        s.calls,
        || {
            deep(DEPTH, &mut || {
                logger.push_to_table(
                    "Error: division by zero",
                    errsnap::PushOptions::new().hw_monitor(true),
                );
            })
        },
        flush,
    );
    assert_eq!(
        logger.dropped_events(),
        0,
        "the benchmark must not measure drops"
    );
    drop(logger);

    let sentry_guard = sentry_init();
    latency(
        200,
        || {
            deep(DEPTH, &mut || {
                sentry::capture_message("warm up", sentry::Level::Error);
            })
        },
        || {},
    );
    let sentry = latency(
        s.calls / 10,
        || {
            deep(DEPTH, &mut || {
                sentry::capture_message("payment provider timed out", sentry::Level::Error);
            })
        },
        || {},
    );
    drop(sentry_guard);

    let (dispatch, guard) = tracing_init(dir);
    let tracing = tracing::dispatcher::with_default(&dispatch, || {
        latency(
            5_000,
            || deep(DEPTH, &mut || tracing::error!("warm up")),
            || {},
        );
        latency(
            s.calls,
            || deep(DEPTH, &mut || tracing::error!("payment provider timed out")),
            || std::thread::sleep(Duration::from_millis(1)),
        )
    });
    drop(guard);

    let naive_db = dir.join("NAIVE.db");
    let naive = latency(
        s.naive,
        || {
            deep(DEPTH, &mut || {
                naive_push(&naive_db, "error_table", "Error: division by zero")
            })
        },
        || {},
    );

    // The floor: walking the same stack, nothing else.
    let mut ips = Vec::with_capacity(64);
    let walk = latency(
        s.calls,
        || {
            deep(DEPTH, &mut || {
                ips.clear();
                backtrace::trace(|f| {
                    ips.push(f.ip() as usize);
                    true
                });
                std::hint::black_box(ips.len());
            })
        },
        || {},
    );
    let m = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64;
    json!({
        "errsnap_error": summary(&error),
        "errsnap_capture_error": summary(&capture),
        "errsnap_push_to_table": summary(&push),
        "sentry_capture_message_with_stack": summary(&sentry),
        "tracing_appender_error": summary(&tracing),
        "naive_original_design": summary(&naive),
        "stack_walk_floor": summary(&walk),
        "frames_walked": ips.len(),
        "ratios_by_median": {
            "sentry_over_errsnap": m(&sentry) / m(&error),
            "naive_over_errsnap": m(&naive) / m(&error),
            "errsnap_over_tracing_appender": m(&error) / m(&tracing),
            "errsnap_above_stack_walk_ns": m(&error) - m(&walk),
        }
    })
}

fn throughput(s: &Sizes, dir: &Path) -> Value {
    let mut out = Vec::new();
    for durability in [errsnap::Durability::Normal, errsnap::Durability::Full] {
        for producers in [1usize, 2, 8] {
            let path = dir.join(format!("tp-{durability:?}-{producers}.db"));
            let logger = errsnap_logger(&path, durability);
            let per = s.throughput / producers as u64;
            let t = Instant::now();
            std::thread::scope(|sc| {
                for p in 0..producers {
                    let logger = logger.clone();
                    sc.spawn(move || {
                        for i in 0..per {
                            deep(8, &mut || {
                                logger.error(format!("order {i} from producer {p} failed"))
                            });
                        }
                    });
                }
            });
            assert!(logger.flush(Duration::from_secs(600)));
            let secs = t.elapsed().as_secs_f64();
            let n = per * producers as u64;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
                + std::fs::metadata(path.with_extension("db-wal"))
                    .map(|m| m.len())
                    .unwrap_or(0);
            out.push(json!({
                "durability": format!("{durability:?}"),
                "producers": producers,
                "events": n,
                "seconds": secs,
                "events_per_second": n as f64 / secs,
                "dropped": logger.dropped_events(),
                "file_bytes": bytes,
            }));
        }
    }
    Value::Array(out)
}

/// A minimal webhook on loopback that counts requests.
fn webhook() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/services/bench",
        listener.local_addr().expect("addr")
    );
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            c.fetch_add(1, Ordering::SeqCst);
            let mut w = stream;
            let _ =
                w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, count)
}

/// Runs in a child process (a clean peak-RSS figure): one error, n times.
fn storm_child(n: u64) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("LOGS.db");
    let (url, alerts) = webhook();
    let baseline = rss();
    let mut config = errsnap::Config::empty();
    config
        .set("ERRSNAP_SLACK_WEBHOOK_URL", url)
        .expect("config");
    let logger = errsnap::EventLogger::builder()
        .name("storm")
        .db_path(&path)
        .config(config)
        .overflow(errsnap::Overflow::Block(Duration::from_secs(60)))
        .build()
        .expect("logger");
    let t = Instant::now();
    for _ in 0..n {
        deep(DEPTH, &mut || logger.error("connection reset by peer"));
    }
    assert!(logger.flush(Duration::from_secs(900)));
    let secs = t.elapsed().as_secs_f64();
    logger.flush(Duration::from_secs(10));
    let peak = peak_rss();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    let (anon, file) = (field("RssAnon:"), field("RssFile:"));
    drop(logger);
    // After the last connection closed (WAL checkpointed into the file).
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let db = errsnap::db::Database::open(&path).expect("db");
    let groups = db
        .groups(&errsnap::db::GroupQuery::default())
        .expect("groups");
    // The goal holds only with file:line still resolved.
    let mut newest = errsnap::db::EventFilter::default();
    newest.newest_first = true;
    newest.limit = 1;
    let last = db.events(&newest).expect("events");
    let detail = db.event(&last[0].id).expect("event").expect("stored");
    let frames_with_line = detail
        .frames
        .iter()
        .filter(|f| f.in_app && f.file.is_some() && f.line.is_some())
        .count();
    assert!(
        frames_with_line > 0,
        "the storm's stack is resolved to file:line"
    );
    json!({
        "occurrences": n,
        "in_app_frames_with_file_line": frames_with_line,
        "seconds": secs,
        "events_per_second": n as f64 / secs,
        "db_bytes": bytes,
        "bytes_per_occurrence": bytes as f64 / n as f64,
        "groups": groups.len(),
        "group_count": groups.first().map_or(0, |g| g.count),
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_rss_over_baseline_bytes": peak.saturating_sub(baseline),
        "rss_anon_at_end_bytes": anon,
        "rss_file_at_end_bytes": file,
        "alerts_sent": alerts.load(Ordering::SeqCst),
    })
}

/// Runs in a child process: panic to durable row, cold then warm.
fn panic_child(n: u64, prewarm: bool) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("LOGS.db");
    std::panic::set_hook(Box::new(|_| {})); // the "previous" hook: silent
    let logger = errsnap::EventLogger::builder()
        .name("panics")
        .db_path(&path)
        .config(errsnap::Config::empty())
        .prewarm_symbols(prewarm)
        .build()
        .expect("logger");
    logger.flush(Duration::from_secs(10));
    if prewarm {
        // Give the writer the moment a service would have before its first panic.
        std::thread::sleep(Duration::from_secs(2));
    }
    errsnap::install_panic_hook(&logger);
    let one = || {
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| {
            deep(DEPTH, &mut || -> () { panic!("invariant violated") })
        });
        assert!(r.is_err());
        t.elapsed().as_nanos() as u64
    };
    // When the first (cold) panic's row is durable, as another reader of
    // the file sees it: the hook commits the raw stack first, then waits
    // (within its timeout) for the names.
    let base = Instant::now();
    let poller = {
        let path = path.clone();
        std::thread::spawn(move || {
            let db = errsnap::db::Database::open(&path).expect("db");
            loop {
                let n = db
                    .count_events(&errsnap::db::EventFilter::default())
                    .expect("count");
                if n >= 1 {
                    return base.elapsed().as_nanos() as u64;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        })
    };
    let started = base.elapsed().as_nanos() as u64;
    let cold = one();
    let cold_durable = poller.join().expect("poller").saturating_sub(started);
    let mut h = hist();
    for _ in 0..n {
        h.record(one()).expect("record");
    }
    let db = errsnap::db::Database::open(&path).expect("db");
    let stored = db
        .count_events(&errsnap::db::EventFilter::default())
        .expect("count");
    assert_eq!(
        stored,
        n + 1,
        "every panic was committed before the hook returned"
    );
    json!({ "cold_ns": cold, "cold_durable_ns": cold_durable, "warm": summary(&h) })
}

fn snapshot_cost(n: u64) -> Value {
    // The writer's sampler, shared (one uncontended lock per take).
    let h = latency(
        n,
        || {
            std::hint::black_box(errsnap::snapshot::Snapshot::take());
        },
        || {},
    );
    json!({ "writer_per_batch": summary(&h), "caller_ns": 0 })
}

fn child(kind: &str, n: u64) -> Value {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .args([kind, &n.to_string()])
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).expect("child json")
}

fn us(ns: &Value) -> String {
    format!("{:.2} µs", ns.as_f64().unwrap_or(0.0) / 1000.0)
}

// Long by design: the report's sections in the order BENCHMARKS.md shows.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Child modes.
    if let [kind, n] = args.as_slice() {
        if let Ok(n) = n.parse::<u64>() {
            let v = match kind.as_str() {
                "--storm-child" => storm_child(n),
                "--panic-child" => panic_child(n, false),
                "--panic-prewarmed-child" => panic_child(n, true),
                _ => Value::Null,
            };
            if !v.is_null() {
                println!("{v}");
                return;
            }
        }
    }
    if let [kind, mode] = args.as_slice() {
        if kind == "--exit-child" {
            exit::exit_child(mode);
            return;
        }
    }
    if let [kind, n, url] = args.as_slice() {
        if kind == "--pg-child" {
            println!("{}", fleet::pg_child(n.parse().expect("n"), url));
            return;
        }
    }
    if args.iter().any(|a| a == "--dashboard-mysql-only") {
        // Only the dashboard on MariaDB, printed (results.json untouched).
        let quick = args.iter().any(|a| a == "--quick");
        println!("{}", dashboard::dashboard_mysql(quick));
        return;
    }
    if args.iter().any(|a| a == "--fleet-mysql-only") {
        // Only the MySQL / MariaDB fleet, printed (results.json untouched).
        let quick = args.iter().any(|a| a == "--quick");
        println!("{}", fleet::fleet_mysql(quick));
        return;
    }
    if args.iter().any(|a| a == "--fleet-only") {
        // Only `fleet`, printed (results.json untouched).
        let quick = args.iter().any(|a| a == "--quick");
        println!("{}", fleet::fleet(quick));
        return;
    }
    if args.iter().any(|a| a == "--forward-only") {
        // Only `forward`, printed (results.json untouched).
        let quick = args.iter().any(|a| a == "--quick");
        println!("{}", forward::forward(quick));
        return;
    }
    if args.iter().any(|a| a == "--dashboard-only") {
        // Only `dashboard`, printed (results.json untouched).
        let quick = args.iter().any(|a| a == "--quick");
        println!("{}", dashboard::dashboard(quick));
        return;
    }
    if args.iter().any(|a| a == "--exit-only") {
        // Only `exit`, printed (results.json untouched).
        let quick = args.iter().any(|a| a == "--quick");
        println!("{}", exit::exit_costs(quick));
        return;
    }
    if args.iter().any(|a| a == "--unwinders-only") {
        // Only `caller_cost.unwinders`, printed (results.json untouched).
        println!("{}", unwinders::unwinders(200_000));
        return;
    }
    if args.iter().any(|a| a == "--contended-only") {
        // Only `caller_cost.contended`, printed (results.json untouched).
        let dir = tempfile::tempdir().expect("tempdir");
        println!("{}", contended::contended(dir.path()));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let s = sizes(quick);
    let dir = tempfile::tempdir().expect("tempdir");
    eprintln!(
        "errsnap benchmark report ({} mode)",
        if quick { "quick" } else { "full" }
    );

    eprintln!("caller-side cost ...");
    let calls = caller_costs(&s, dir.path());
    eprintln!("caller-side cost while the writer symbolizes ...");
    let contended = contended::contended(dir.path());
    eprintln!("unwinders side by side ...");
    let unwinders = unwinders::unwinders(s.calls);
    eprintln!("throughput ...");
    let tp = throughput(&s, dir.path());
    eprintln!("storm of {} ...", s.storm);
    let storm = child("--storm-child", s.storm);
    eprintln!("panic path ...");
    let panic = child("--panic-child", s.panics);
    let panic_prewarmed = child("--panic-prewarmed-child", s.panics);
    eprintln!("snapshot ...");
    let snap = snapshot_cost(if quick { 500 } else { 5_000 });
    eprintln!("fleet (PostgreSQL) ...");
    let fleet = fleet::fleet(quick);
    eprintln!("dashboard ...");
    let dashboard = dashboard::dashboard(quick);
    eprintln!("forwarding ...");
    let forwarding = forward::forward(quick);
    eprintln!("short-lived programs ...");
    let exit_costs = exit::exit_costs(quick);

    let versions = json!({
        "rustc": String::from_utf8_lossy(&Command::new("rustc").arg("--version").output().map(|o| o.stdout).unwrap_or_default()).trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    let results = json!({
        "mode": if quick { "quick" } else { "full" },
        "machine": versions,
        "caller_cost": with_contended(calls, contended, unwinders),
        "throughput": tp,
        "storm": storm,
        "panic_path": panic,
        "panic_path_prewarmed": panic_prewarmed,
        "snapshot": snap,
        "fleet": fleet,
        "dashboard": dashboard,
        "forwarding": forwarding,
        "exit": exit_costs,
    });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).expect("json"))
        .expect("write results");

    // Markdown.
    println!("| workload (caller side, ~30 frames) | median | p99 |");
    println!("| --- | ---: | ---: |");
    for k in [
        "errsnap_error",
        "errsnap_capture_error",
        "errsnap_push_to_table",
        "stack_walk_floor",
        "tracing_appender_error",
        "sentry_capture_message_with_stack",
        "naive_original_design",
    ] {
        let v = &results["caller_cost"][k];
        println!("| {k} | {} | {} |", us(&v["median_ns"]), us(&v["p99_ns"]));
    }
    let r = &results["caller_cost"]["ratios_by_median"];
    println!(
        "\nratios by median: sentry / errsnap = {:.0}x, naive / errsnap = {:.0}x, errsnap / tracing-appender = {:.1}x",
        r["sentry_over_errsnap"].as_f64().unwrap_or(0.0),
        r["naive_over_errsnap"].as_f64().unwrap_or(0.0),
        r["errsnap_over_tracing_appender"].as_f64().unwrap_or(0.0)
    );
    println!("\n| durability | producers | events/s |");
    println!("| --- | ---: | ---: |");
    for row in results["throughput"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {:.0} |",
            row["durability"].as_str().unwrap_or(""),
            row["producers"],
            row["events_per_second"].as_f64().unwrap_or(0.0)
        );
    }
    let st = &results["storm"];
    println!(
        "\nstorm: {} occurrences in {:.1} s, {:.0} B per occurrence, peak RSS +{:.1} MiB over baseline, {} alert(s), {} group(s)",
        st["occurrences"],
        st["seconds"].as_f64().unwrap_or(0.0),
        st["bytes_per_occurrence"].as_f64().unwrap_or(0.0),
        st["peak_rss_over_baseline_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
        st["alerts_sent"],
        st["groups"]
    );
    println!(
        "panic: cold row durable (raw stack) in {}, hook returned with names after {}, warm median {} (p99 {})",
        us(&results["panic_path"]["cold_durable_ns"]),
        us(&results["panic_path"]["cold_ns"]),
        us(&results["panic_path"]["warm"]["median_ns"]),
        us(&results["panic_path"]["warm"]["p99_ns"])
    );
    println!(
        "panic to durable row with prewarm_symbols: cold {}, warm median {}",
        us(&results["panic_path_prewarmed"]["cold_ns"]),
        us(&results["panic_path_prewarmed"]["warm"]["median_ns"])
    );
    println!(
        "snapshot: writer pays {} per batch (median), caller pays nothing",
        us(&results["snapshot"]["writer_per_batch"]["median_ns"])
    );
    let f = &results["fleet"];
    println!(
        "fleet (PostgreSQL, local server): one process {:.0} events/s, four processes {:.0} events/s together ({:.2}x)",
        f["one_process"]["events_per_s"].as_f64().unwrap_or(0.0),
        f["four_processes"]["events_per_s"].as_f64().unwrap_or(0.0),
        f["four_vs_one"].as_f64().unwrap_or(0.0)
    );
    for r in results["forwarding"]["ratios"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "forwarding to {}: write throughput {:.2}x of none, {:.0} outbox bytes per event",
            r["mode"].as_str().unwrap_or("?"),
            r["write_throughput_vs_none"].as_f64().unwrap_or(0.0),
            r["outbox_bytes_per_event"].as_f64().unwrap_or(0.0)
        );
    }
    eprintln!("wrote {}", path.display());
}
