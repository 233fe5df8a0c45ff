//! `exit`: what errsnap adds to a short-lived program (issue #27). The
//! report binary re-runs itself as a child in each mode, many times, and
//! times each whole process (spawn to exit): an empty program, the
//! original design's `EventLogger::new` then a return or
//! `std::process::exit`, `errsnap::init`, sentry's `init` (a DSN, nothing
//! sent), and `push_to_table(.., slack(true))` then `std::process::exit`
//! with the Slack webhook on a loopback server that answers at once, or
//! one that never answers. Added time = a mode's median minus the empty
//! program's median, in the same run.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

/// The child side: one mode, then the process ends as the mode says.
pub fn exit_child(mode: &str) {
    match mode {
        "empty" => {}
        "new-return" => {
            let logger = errsnap::EventLogger::new("error_table").expect("logger");
            drop(logger);
        }
        "new-exit" => {
            let _logger = errsnap::EventLogger::new("error_table").expect("logger");
            std::process::exit(0);
        }
        "init-return" => {
            let guard =
                errsnap::init(errsnap::EventLogger::builder().name("error_table")).expect("init");
            drop(guard);
        }
        "sentry-init" => {
            let dsn = std::env::var("BENCH_SENTRY_DSN").expect("dsn");
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut options = sentry::ClientOptions::default();
            options.release = Some("bench@1".into());
            let guard = sentry::init((dsn, options));
            drop(guard);
        }
        "alert-exit" => {
            let logger = errsnap::EventLogger::new("error_table").expect("logger");
            logger.push_to_table(
                "Error: division by zero",
                errsnap::PushOptions::new().slack(true).email(false),
            );
            std::process::exit(0);
        }
        other => panic!("unknown exit mode {other}"),
    }
}

/// A loopback server that accepts connections and never answers.
fn hung_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// One mode, as the report runs it: its name, the child mode, its
/// directory (its LOGS.db kept between runs, as a program run again finds
/// it) and its environment.
struct Mode {
    name: &'static str,
    child: &'static str,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

/// One run of `m` (ms from spawn to exit).
fn run_once(exe: &Path, m: &Mode) -> f64 {
    let mut cmd = Command::new(exe);
    cmd.args(["--exit-child", m.child])
        .current_dir(m.dir.path());
    cmd.env("ERRSNAP_HEARTBEAT_SECS", "0");
    for (k, v) in &m.env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().expect("child");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "{}: {}",
        m.name,
        String::from_utf8_lossy(&out.stderr)
    );
    ms
}

/// Wall times (ms) of `runs` runs of each mode after one warm-up each, the
/// modes taking turns (A B C A B C ...), so that a drift of the machine's
/// speed falls on all of them alike.
fn time_modes(modes: &[Mode], runs: usize) -> Vec<Vec<f64>> {
    let exe = std::env::current_exe().expect("exe");
    for m in modes {
        run_once(&exe, m);
    }
    let mut times = vec![Vec::with_capacity(runs); modes.len()];
    for _ in 0..runs {
        for (m, t) in modes.iter().zip(times.iter_mut()) {
            t.push(run_once(&exe, m));
        }
    }
    times
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summary(mut v: Vec<f64>) -> Value {
    let med = median(&mut v);
    json!({
        "median_ms": med,
        "min_ms": v.first().copied().unwrap_or(0.0),
        "max_ms": v.last().copied().unwrap_or(0.0),
        "runs": v.len(),
    })
}

pub fn exit_costs(quick: bool) -> Value {
    let runs = if quick { 10 } else { 60 };
    let (port, delivered) = crate::forward::sink();
    let hung = hung_server();
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mode = |name, child, env: Vec<(&'static str, String)>| Mode {
        name,
        child,
        dir: tempfile::tempdir().expect("tempdir"),
        env,
    };
    let alert_env = |url: String| {
        vec![
            ("ERRSNAP_SLACK_WEBHOOK_URL", url),
            // Every run alerts (no cooldown between runs).
            ("ERRSNAP_ALERT_COOLDOWN_SECS", "0".to_owned()),
        ]
    };
    let modes = vec![
        mode("empty", "empty", Vec::new()),
        mode("new-return", "new-return", Vec::new()),
        mode("new-exit", "new-exit", Vec::new()),
        mode("init-return", "init-return", Vec::new()),
        mode(
            "sentry-init",
            "sentry-init",
            vec![(
                "BENCH_SENTRY_DSN",
                format!("http://0123456789abcdef0123456789abcdef@127.0.0.1:{dead}/1"),
            )],
        ),
        mode(
            "alert-exit",
            "alert-exit",
            alert_env(format!("http://127.0.0.1:{port}/hook")),
        ),
    ];
    let before = delivered.load(std::sync::atomic::Ordering::SeqCst);
    let times = time_modes(&modes, runs);
    let sent = delivered.load(std::sync::atomic::Ordering::SeqCst) - before;
    let mut out = serde_json::Map::new();
    for (m, t) in modes.iter().zip(times) {
        out.insert(m.name.into(), summary(t));
    }
    // The hung webhook on its own: each run waits out the exit budget.
    let hung_mode = [mode(
        "alert-exit-hung",
        "alert-exit",
        alert_env(format!("http://127.0.0.1:{hung}/hook")),
    )];
    let hung_times = time_modes(&hung_mode, if quick { 2 } else { 5 });
    out.insert(
        "alert-exit-hung".into(),
        summary(hung_times.into_iter().next().unwrap_or_default()),
    );
    let base = out["empty"]["median_ms"].as_f64().unwrap_or(0.0);
    let added = |k: &str| out[k]["median_ms"].as_f64().unwrap_or(0.0) - base;
    let added_json = json!({
        "new_then_return_ms": added("new-return"),
        "new_then_exit_ms": added("new-exit"),
        "init_then_return_ms": added("init-return"),
        "sentry_init_ms": added("sentry-init"),
        "one_alert_then_exit_ms": added("alert-exit"),
        "hung_webhook_then_exit_ms": added("alert-exit-hung"),
    });
    out.insert("added_over_empty".into(), added_json);
    // Every alert run (warm-up included) delivered before its exit.
    out.insert("alert_runs".into(), json!(runs + 1));
    out.insert("alerts_delivered_during_runs".into(), json!(sent));
    Value::Object(out)
}
