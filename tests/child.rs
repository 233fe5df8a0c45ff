//! Scenarios played by a child copy of this test binary (see
//! `util::run_child`). Without `ERRSNAPTEST_SCENARIO` the entry does nothing.

use std::path::PathBuf;
use std::time::Duration;

use crate::util;

#[inline(never)]
fn raise_the_same_error(logger: &errsnap::EventLogger) {
    // The message varies by run (pid), the code does not.
    logger.error(format!("worker {} lost its lease", std::process::id()));
}

#[inline(never)]
pub(crate) fn fail_where_symbols_are_gone(logger: &errsnap::EventLogger) {
    logger.error("failed in a stripped build");
}

#[inline(never)]
fn fail_the_same_way(logger: &errsnap::EventLogger) {
    logger.error("the index is stale");
}

#[inline(never)]
fn panic_in_named_function(n: usize) {
    panic!("thread {n} failed an invariant");
}

/// A configuration with only the webhook the parent passed.
fn slack_from_env() -> errsnap::Config {
    let mut config = errsnap::Config::empty();
    config
        .set(
            "ERRSNAP_SLACK_WEBHOOK_URL",
            std::env::var("ERRSNAPTEST_SLACK").unwrap(),
        )
        .unwrap();
    config
}

#[test]
fn entry() {
    let Ok(scenario) = std::env::var("ERRSNAPTEST_SCENARIO") else {
        return;
    };
    let db = PathBuf::from(std::env::var("ERRSNAPTEST_DB").unwrap());
    match scenario.as_str() {
        "raw_frames" => {
            // Run from a stripped copy: nothing can be named in-process.
            let logger = util::logger(&db, "stripped");
            fail_where_symbols_are_gone(&logger);
            assert!(logger.flush(Duration::from_secs(20)));
        }
        #[cfg(feature = "postgres")]
        "raw_frames_pg" => {
            // The same, into the PostgreSQL database the test names.
            let url = std::env::var("ERRSNAPTEST_PG_URL").unwrap();
            let logger = util::builder(&db, "stripped")
                .database_url(url)
                .build()
                .unwrap();
            fail_where_symbols_are_gone(&logger);
            assert!(logger.flush(Duration::from_secs(20)));
        }
        #[cfg(feature = "tower")]
        "tower_panic_with_hook" => crate::context::tower_panic_with_hook(&db),
        "same_error" => {
            let logger = util::logger(&db, "runs");
            raise_the_same_error(&logger);
            assert!(logger.flush(Duration::from_secs(20)));
        }
        "guard_drop" => {
            let guard = errsnap::init(util::builder(&db, "guarded").linger(Duration::from_secs(3)))
                .unwrap();
            for i in 0..100 {
                guard.logger().error(format!("event {i}"));
            }
            drop(guard); // must flush: the writer would otherwise linger 3 s
            std::process::exit(0);
        }
        #[cfg(all(feature = "sentry", feature = "otlp"))]
        "original_design" => crate::delivery::original_design(),
        #[cfg(all(feature = "sentry", feature = "otlp"))]
        "exit_from_before_save" => crate::delivery::exit_from_before_save(db.clone()),
        #[cfg(feature = "cli")]
        "default_settings" => crate::planted::default_settings(&db),
        "exit_without_flush" => {
            let logger = util::builder(&db, "unflushed")
                .linger(Duration::from_secs(3))
                .build()
                .unwrap();
            logger.error("queued, never flushed");
            // Skips destructors, but not errsnap's exit hook: the writer
            // stops lingering, commits and records the run.
            std::process::exit(0);
        }
        "run_and_exit" => {
            let logger = util::builder(&db, "runs")
                .release("app@1.2.3")
                .build()
                .unwrap();
            logger.error("one error before a clean exit");
            assert!(logger.flush(Duration::from_secs(20)));
        }
        "run_until_killed" => {
            let logger = util::builder(&db, "runs")
                .heartbeat(Duration::from_millis(100))
                .build()
                .unwrap();
            logger.error("alive");
            assert!(logger.flush(Duration::from_secs(20)));
            println!("started");
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        "error_beside_panic" => {
            // An error and a panic in one batch (the linger gathers them;
            // the panic hurries the writer), then the same error alone.
            let logger = util::builder(&db, "mixed")
                .linger(Duration::from_millis(500))
                .build()
                .unwrap();
            errsnap::install_panic_hook(&logger);
            for round in 0..2 {
                fail_the_same_way(&logger);
                if round == 0 {
                    let _ = std::panic::catch_unwind(|| panic_in_named_function(1));
                }
                assert!(logger.flush(Duration::from_secs(20)));
            }
        }
        "panic_into_url" => {
            // A panic recorded into the database at ERRSNAPTEST_DATABASE_URL
            // (its stack stored raw first, then named by the writer).
            let url = std::env::var("ERRSNAPTEST_DATABASE_URL").unwrap();
            let logger = util::builder(&db, "fleet_panics")
                .database_url(url)
                .build()
                .unwrap();
            errsnap::install_panic_hook(&logger);
            let _ = std::panic::catch_unwind(|| panic_in_named_function(3));
            assert!(logger.flush(Duration::from_secs(60)));
        }
        "panic_then_die" => {
            // A cold process (no symbol table loaded) panics, and dies right
            // after the hook returns: what is in the file is what the hook
            // made durable.
            let timeout: u64 = std::env::var("ERRSNAPTEST_PANIC_TIMEOUT_MS")
                .unwrap()
                .parse()
                .unwrap();
            let logger = util::builder(&db, "dying")
                .panic_timeout(Duration::from_millis(timeout))
                .build()
                .unwrap();
            errsnap::install_panic_hook(&logger);
            let started = std::time::Instant::now();
            let _ = std::panic::catch_unwind(|| panic_in_named_function(7));
            println!("hook returned after {} ms", started.elapsed().as_millis());
            // SAFETY: ends the process at once: no destructor, no drain.
            unsafe { libc::_exit(0) };
        }
        "panic16" => {
            let logger = util::logger(&db, "many");
            errsnap::install_panic_hook(&logger);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
            let handles: Vec<_> = (0..16)
                .map(|n| {
                    let b = barrier.clone();
                    std::thread::spawn(move || {
                        b.wait();
                        panic_in_named_function(n);
                    })
                })
                .collect();
            let failed = handles
                .into_iter()
                .map(|h| h.join())
                .filter(Result::is_err)
                .count();
            println!("joined {failed} panicked threads");
        }
        "panic_in_previous_hook" => {
            std::panic::set_hook(Box::new(|_| {
                panic!("the previous hook itself panics");
            }));
            let logger = util::logger(&db, "prevhook");
            errsnap::install_panic_hook(&logger);
            panic!("original panic");
        }
        "previous_hook_runs_after" => {
            std::panic::set_hook(Box::new(|info| {
                // Ours ran first: its row is already committed.
                let db =
                    rusqlite::Connection::open(std::env::var("ERRSNAPTEST_DB").unwrap()).unwrap();
                let n: i64 = db
                    .query_row(
                        "SELECT count(*) FROM events WHERE kind = 'panic'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                println!("previous hook saw {n} panic rows for: {info}");
            }));
            let logger = util::logger(&db, "chained");
            errsnap::install_panic_hook(&logger);
            errsnap::install_panic_hook(&logger); // twice: still one hook
            panic!("chained panic");
        }
        "panic_while_locked" => {
            let logger = util::builder(&db, "locked")
                .panic_timeout(Duration::from_millis(300))
                .build()
                .unwrap();
            errsnap::install_panic_hook(&logger);
            // Once the writer has the file (schema made, run recorded),
            // another connection takes the write lock: the writer is stuck.
            assert!(logger.flush(Duration::from_secs(20)));
            let locker = rusqlite::Connection::open(&db).unwrap();
            locker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
            // Keep the lock while the panic unwinds, until the process ends.
            std::mem::forget(locker);
            panic!("panic while the database is locked");
        }
        "alert_then_wait" => {
            let config = slack_from_env();
            let logger = util::builder(&db, "alerts")
                .config(config)
                .alert_retry_base(Duration::from_secs(600))
                .build()
                .unwrap();
            logger.error("alert pending at the kill");
            assert!(logger.flush_report(Duration::from_secs(20)).committed);
            println!("committed");
            std::thread::sleep(Duration::from_secs(60));
        }
        "panic_with_alert" => {
            let config = slack_from_env();
            let logger = util::builder(&db, "crash").config(config).build().unwrap();
            errsnap::install_panic_hook(&logger);
            // Ends the process right after the hooks, like panic = "abort".
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                previous(info);
                std::process::abort();
            }));
            panic!("panicked with an alert");
        }
        "panic_with_guard" => {
            // See alerts_setup.rs: a panic that ends main, with init's guard.
            let budget: u64 = std::env::var("ERRSNAPTEST_BUDGET_MS")
                .unwrap()
                .parse()
                .unwrap();
            let _guard = errsnap::init(
                util::builder(&db, "exiting")
                    .config(slack_from_env())
                    .exit_budget(Duration::from_millis(budget))
                    .alert_retry_base(Duration::from_millis(200)),
            )
            .unwrap();
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            println!("panicking_at_ms={at}");
            panic!("the main thread gives up");
        }
        "two_fatals_from_env" => {
            // See alerts_setup.rs: settings from a .env file, as users do.
            let env = std::env::var("ERRSNAPTEST_ENV").unwrap();
            let logger = util::builder(&db, "configured")
                .config(errsnap::Config::from_dotenv_path(env).unwrap())
                .alert_retry_base(Duration::from_secs(600))
                .build()
                .unwrap();
            logger.fatal("the first failure");
            logger.fatal("a second failure");
            assert!(logger.flush(Duration::from_secs(20)));
            logger.flush(Duration::from_secs(10));
        }
        #[cfg(feature = "anyhow")]
        "anyhow_chain" => {
            // See ecosystem.rs: RUST_LIB_BACKTRACE=1 makes anyhow capture.
            let logger = util::logger(&db, "anyhow");
            let r = crate::ecosystem::load_settings(&logger);
            assert!(r.is_err());
            assert!(logger.flush(Duration::from_secs(20)));
        }
        #[cfg(all(feature = "anyhow", feature = "sentry"))]
        "anyhow_chain_forwarded" => {
            // See upstream.rs: the same, forwarded to the Sentry DSN given.
            let dsn = std::env::var("ERRSNAPTEST_SENTRY_DSN").unwrap();
            let mut config = errsnap::Config::empty();
            if let Ok(level) = std::env::var("ERRSNAPTEST_SENTRY_MIN_LEVEL") {
                config.set("ERRSNAP_SENTRY_MIN_LEVEL", level).unwrap();
            }
            let logger = util::builder(&db, "anyhow")
                .config(config)
                .release("shop@2.0.1")
                .sentry_dsn(dsn)
                .build()
                .unwrap();
            let r = crate::ecosystem::load_settings(&logger);
            assert!(r.is_err());
            assert!(logger.flush(Duration::from_secs(20)));
        }
        "disabled_by_env" => {
            // See ecosystem.rs: ERRSNAP_DISABLED=1 in the environment.
            let logger = errsnap::EventLogger::builder()
                .name("off")
                .db_path(&db)
                .build()
                .unwrap();
            errsnap::install_panic_hook(&logger);
            logger.error("nobody records this");
            assert!(logger.flush(Duration::from_secs(1)));
            let threads = std::fs::read_dir("/proc/self/task")
                .map(|d| {
                    d.flatten()
                        .filter(|t| {
                            std::fs::read_to_string(t.path().join("comm"))
                                .is_ok_and(|c| c.starts_with("errsnap"))
                        })
                        .count()
                })
                .unwrap_or(0);
            println!("errsnap_threads={threads}");
            panic!("a panic nobody records");
        }
        "test_mode_panic" => {
            let (logger, captured) = errsnap::EventLogger::for_tests();
            errsnap::install_panic_hook(&logger);
            let _ = std::panic::catch_unwind(|| panic!("caught in a test"));
            let events = captured.events();
            println!(
                "captured={} kind={}",
                events.len(),
                events
                    .first()
                    .map(|e| e.kind().to_string())
                    .unwrap_or_default()
            );
            println!("logger_path={}", logger.path().display());
        }
        "precedence_env" => {
            let logger = util::builder(&db, "specific")
                .config(
                    errsnap::Config::from_dotenv_path(std::env::var("ERRSNAPTEST_ENV").unwrap())
                        .unwrap(),
                )
                .config_file(std::env::var("ERRSNAPTEST_TOML").unwrap())
                .build()
                .unwrap();
            let lowest = errsnap::Level::ALL
                .into_iter()
                .find(|l| logger.enabled(*l))
                .map_or("none".to_owned(), |l| l.to_string());
            println!("lowest stored level: {lowest}");
        }
        "console" => {
            let logger = util::builder(&db, "console")
                .console_level(errsnap::Level::Info)
                .build()
                .unwrap();
            logger.debug("debug line");
            logger.info("cache warmed");
            logger.warn("stored and printed");
            assert!(logger.flush(Duration::from_secs(20)));
        }
        #[cfg(feature = "log")]
        "log_bridge" => {
            struct Inner;
            impl log::Log for Inner {
                fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                    true
                }
                fn log(&self, r: &log::Record<'_>) {
                    println!("forwarded: {} {}", r.level(), r.args());
                }
                fn flush(&self) {}
            }
            let logger = util::logger(&db, "logged");
            errsnap::log::LogBridge::new(logger.clone())
                .forward_to(Box::new(Inner))
                .install()
                .unwrap();
            log::debug!(target: "uploads", "too low for a breadcrumb");
            log::info!(target: "uploads", "upload started");
            log::info!(target: "uploads", "chunk 1 stored");
            log::info!(target: "reqwest::connect", "https://hooks.slack.com/services/SECRET");
            log::error!(target: "uploads", "disk quota exceeded");
            assert!(logger.flush(Duration::from_secs(20)));
        }
        "kill_target" => {
            let logger = util::builder(&db, "killed")
                .linger(Duration::from_millis(2))
                // This debug test binary's tables are far over the default
                // budget: keep them, so the kills land in steady writing
                // rather than in a reload.
                .symbol_cache_bytes(u64::MAX)
                .overflow(errsnap::Overflow::Block(Duration::from_secs(30)))
                .build()
                .unwrap();
            // Warm up from the very stacks the workers write from (their
            // symbols resolved, the first commit done), so the kills land in
            // the middle of steady writing.
            let warm = std::sync::Barrier::new(5);
            std::thread::scope(|s| {
                for t in 0..4 {
                    let logger = logger.clone();
                    let warm = &warm;
                    s.spawn(move || {
                        for i in 0u64.. {
                            logger
                                .event(errsnap::Level::Error, format!("worker {t} step {i}"))
                                .tag("thread", t.to_string())
                                .tag("seq", i.to_string())
                                .emit();
                            if i == 0 {
                                assert!(logger.flush(Duration::from_secs(60)));
                                println!("flushed {t} {i}");
                                warm.wait();
                            }
                            if i % 25 == 24 && logger.flush(Duration::from_secs(30)) {
                                println!("flushed {t} {i}");
                            }
                        }
                    });
                }
                warm.wait();
                println!("started");
            });
        }
        "concurrent_writer" => {
            let logger = util::builder(&db, "multi")
                .overflow(errsnap::Overflow::Block(Duration::from_secs(60)))
                .busy_timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let kinds = ["disk full", "timeout", "refused", "reset", "denied"];
            std::thread::scope(|s| {
                for _ in 0..4 {
                    let logger = logger.clone();
                    s.spawn(move || {
                        for i in 0..2_500 {
                            logger.error(kinds[i % 5]);
                        }
                    });
                }
            });
            assert!(logger.flush(Duration::from_secs(120)));
        }
        "pending_and_spool" => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let dead = format!("http://{}/x", closed.local_addr().unwrap());
            drop(closed);
            let mut config = errsnap::Config::empty();
            config.set("ERRSNAP_SLACK_WEBHOOK_URL", dead).unwrap();
            let logger = util::builder(&db, "restart")
                .config(config)
                .busy_timeout(Duration::from_millis(200))
                .alert_retry_base(Duration::from_secs(600))
                .build()
                .unwrap();
            // Committed; the alert's retry is due long after any deadline.
            logger.error("the same failure");
            assert!(logger.flush_report(Duration::from_secs(20)).committed);
            let locker = rusqlite::Connection::open(&db).unwrap();
            locker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
            logger.error("the same failure");
            logger.error("the same failure");
            assert!(logger.flush_report(Duration::from_secs(20)).committed);
            // Exit with the lock held: the two events stay in the spool.
            std::process::exit(0);
        }
        "writer_panic" => {
            // Silence the default message; ours still records.
            std::panic::set_hook(Box::new(|_| {}));
            let logger = util::builder(&db, "writerpanic")
                .before_save(|ev| {
                    if ev.message().contains("trigger") {
                        panic!("panic inside the writer thread");
                    }
                    true
                })
                .build()
                .unwrap();
            errsnap::install_panic_hook(&logger);
            logger.error("trigger the writer's panic");
            assert!(logger.flush(Duration::from_secs(20)));
            logger.error("the writer goes on");
            assert!(logger.flush(Duration::from_secs(20)));
        }
        "record3" => {
            // See security.rs: three errors, wherever they can go.
            match util::builder(&db, "victim").build() {
                Ok(logger) => {
                    for i in 0..3 {
                        logger.error(format!("victim event {i}"));
                    }
                    println!("flushed={}", logger.flush(Duration::from_secs(20)));
                    println!("dropped={}", logger.dropped_events());
                }
                Err(e) => println!("build error: {e}"),
            }
        }
        "display_panics" => {
            let logger = util::logger(&db, "displays");
            errsnap::install_panic_hook(&logger);
            let r: Result<(), crate::security::PanickyError> = Err(crate::security::PanickyError);
            use errsnap::prelude::*;
            let passed_on = r.report(&logger).is_err();
            logger.capture_error(&crate::security::PanickyError);
            assert!(logger.flush(Duration::from_secs(20)));
            println!("passed_on={passed_on}");
        }
        "fork" => {
            let logger = util::logger(&db, "forked");
            logger.error("parent before fork");
            assert!(logger.flush(Duration::from_secs(20)));
            // SAFETY: the child records, flushes and leaves with `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                logger.error("child event 1");
                logger.error("child event 2");
                let ok = logger.flush(Duration::from_secs(20));
                // SAFETY: ends the child without running the parent's
                // destructors a second time.
                unsafe { libc::_exit(if ok { 0 } else { 3 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!("child_pid={pid}");
            println!("child_exit={}", libc::WEXITSTATUS(status));
            logger.error("parent after fork");
            assert!(logger.flush(Duration::from_secs(20)));
        }
        "fork_busy" => fork_while_sqlite_allocates(&db),
        #[cfg(target_os = "linux")]
        "native" => crate::crash::die(&db),
        #[cfg(all(target_os = "linux", target_arch = "x86_64", feature = "cli"))]
        "recorder" => crate::recorder::child(&db),
        #[cfg(all(feature = "postgres", feature = "cli"))]
        "pg_writer" => crate::pg::writer_child(&db),
        other => panic!("unknown scenario {other}"),
    }
}

/// Forks 30 times while another thread allocates in SQLite without a
/// pause; each child records an event. A child that inherited SQLite's
/// allocator mutex locked would hang: it is killed after 20 s and counted.
fn fork_while_sqlite_allocates(db: &std::path::Path) {
    let logger = util::logger(db, "forked");
    logger.error("parent before forks");
    assert!(logger.flush(Duration::from_secs(20)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let c = rusqlite::Connection::open_in_memory().unwrap();
                c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(64));")
                    .unwrap();
            }
        })
    };
    let (mut ok, mut hung) = (0, 0);
    for _ in 0..30 {
        // SAFETY: the child records, flushes and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            logger.error("child event");
            let done = logger.flush(Duration::from_secs(20));
            // SAFETY: ends the child without running destructors.
            unsafe { libc::_exit(if done { 0 } else { 3 }) };
        }
        let started = std::time::Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: polls our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    ok += 1;
                }
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                // SAFETY: our own child, stuck.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                hung += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    println!("forks_ok={ok} forks_hung={hung}");
}
