//! The flight recorder: each run's readings on the heartbeat's timer, in
//! the store and in the crash file's ring, read back after an OOM kill, a
//! SIGSEGV and a SIGKILL; the trend in words in an alert.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use errsnap::db::{describe_trend, Database, EventFilter, RunRow, RunSample, RunStatus};
use errsnap::event::EventKind;

use crate::util;

const T: Duration = Duration::from_secs(20);

/// The child: joins the cgroup it is given, records with a 100 ms
/// heartbeat and the crash handler armed, then leaks, crashes or idles as
/// `ERRSNAPTEST_HOW` says.
pub(crate) fn child(db: &Path) {
    if let Ok(cg) = std::env::var("ERRSNAPTEST_CGROUP") {
        std::fs::write(
            Path::new(&cg).join("cgroup.procs"),
            std::process::id().to_string(),
        )
        .unwrap();
    }
    let mut b = util::builder(db, "recorder")
        .release("app@3.0.0")
        .heartbeat(Duration::from_millis(100));
    if let Ok(rules) = std::env::var("ERRSNAPTEST_WARNINGS") {
        let file = db.with_file_name("errsnap.toml");
        std::fs::write(&file, rules).unwrap();
        b = b.config_file(file);
    }
    let logger = b.build().unwrap();
    errsnap::install_panic_hook(&logger);
    logger.error("started");
    assert!(logger.flush(T));
    crate::crash::no_core_dump();
    let mut out = std::io::stdout();
    match std::env::var("ERRSNAPTEST_HOW").unwrap().as_str() {
        "leak" => {
            // 4 MiB more every 40 ms, each step's RSS as /proc says it.
            let mut hold: Vec<Vec<u8>> = Vec::new();
            loop {
                hold.push(vec![1u8; 4 << 20]);
                std::hint::black_box(&hold);
                let status = std::fs::read_to_string("/proc/self/status").unwrap();
                let kb = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .unwrap()
                    .trim()
                    .trim_end_matches(" kB")
                    .to_owned();
                writeln!(out, "rss {} {kb}", now_ms()).unwrap();
                out.flush().unwrap();
                std::thread::sleep(Duration::from_millis(40));
            }
        }
        "segv" => {
            // Breadcrumbs since the last event: the heartbeat copies them
            // into the crash file (one holds a secret, redacted at import).
            logger.add_breadcrumb(errsnap::Level::Info, "http", "GET /cart 200");
            logger.add_breadcrumb(errsnap::Level::Info, "db", "connect password=hunter2");
            logger.add_breadcrumb(errsnap::Level::Warn, "http", "POST /checkout slow");
            std::thread::sleep(Duration::from_millis(800));
            // SAFETY: it is not: faults on purpose.
            unsafe { std::arch::asm!("mov byte ptr [{0}], 1", in(reg) 0usize) };
        }
        "idle" => {
            writeln!(out, "started").unwrap();
            out.flush().unwrap();
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        other => panic!("unknown {other}"),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn run(how: &str, db: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![("ERRSNAPTEST_HOW", how)];
    all.extend_from_slice(env);
    util::run_child("recorder", db, &all)
}

/// The child's run (the oldest) and its readings.
fn first_run(db: &Path) -> (RunRow, Vec<RunSample>) {
    let d = Database::open(db).unwrap();
    let run = d.runs(10).unwrap().pop().unwrap();
    let readings = d.run_samples(run.id, 0, i64::MAX).unwrap();
    (run, readings)
}

/// Forgets the run's stored readings, as if the store had missed them:
/// only the crash file's ring can give them back.
fn forget_readings(db: &Path, run: i64) {
    let n = util::open(db)
        .execute("DELETE FROM run_samples WHERE run_id = ?1", [run])
        .unwrap();
    assert!(n > 0, "the store had the readings");
}

/// The next start: imports the crash files (and their rings).
fn restart(db: &Path) {
    let logger = util::logger(db, "next");
    logger.info("restarted");
    assert!(logger.flush(T));
}

#[test]
fn an_oom_kill_leaves_the_climb_the_limit_and_the_last_readings() {
    let Some(cg) = crate::crash::memory_cgroup(160 << 20) else {
        eprintln!("SKIPPED flight recorder OOM test: no memory cgroup can be created here");
        return;
    };
    let (_d, db) = util::temp_db();
    // A warning before death: the cgroup's memory above 60% of its limit
    // for 2 readings.
    let rules = "[[resource_warning]]\nmemory_percent_of_limit = 60\nreadings = 2\n";
    let out = run(
        "leak",
        &db,
        &[
            ("ERRSNAPTEST_CGROUP", cg.to_str().unwrap()),
            ("ERRSNAPTEST_WARNINGS", rules),
        ],
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "killed by the kernel: {}",
        util::describe(&out)
    );
    // What /proc/self/status said while it ran: (ms, bytes).
    let said: Vec<(i64, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut p = l.strip_prefix("rss ")?.split(' ');
            Some((
                p.next()?.parse().ok()?,
                p.next()?.parse::<u64>().ok()? * 1024,
            ))
        })
        .collect();
    assert!(said.len() >= 10, "{}", util::describe(&out));

    let (run, stored) = first_run(&db);
    assert!(stored.len() >= 5, "readings while it leaked: {stored:?}");
    // Every reading taken while it leaked lies between what /proc said
    // just before and just after it (a step is 4 MiB; 2 MiB of slack for
    // the reading's own rounding and the allocator).
    let leaking: Vec<&RunSample> = stored
        .iter()
        .filter(|s| s.at_ms > said[0].0 && s.at_ms < said.last().unwrap().0)
        .collect();
    assert!(leaking.len() >= 3, "{stored:?}");
    for s in &leaking {
        let before = said.iter().rev().find(|(t, _)| *t <= s.at_ms).unwrap().1;
        let after = said.iter().find(|(t, _)| *t >= s.at_ms).unwrap().1;
        let rss = s.rss_bytes.unwrap();
        assert!(
            rss + (2 << 20) >= before.min(after) && rss <= before.max(after) + (6 << 20),
            "reading {rss} at {} vs /proc {before}..{after}",
            s.at_ms
        );
    }
    let (first, last) = (&stored[0], stored.last().unwrap());
    assert!(
        last.rss_bytes.unwrap() >= first.rss_bytes.unwrap() + (40 << 20),
        "the climb: {first:?} -> {last:?}"
    );
    assert_eq!(last.cgroup_memory_max_bytes, Some(160 << 20));
    assert!(last.cgroup_memory_percent().unwrap() >= 50.0, "{last:?}");
    // The rule fired once, before the kill, with the climb in words.
    let d = Database::open(&db).unwrap();
    let warnings: Vec<_> = d
        .events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.logger == "resource_warnings")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = d.event(&warnings[0].id).unwrap().unwrap();
    assert_eq!(w.row.level, errsnap::Level::Warn);
    assert!(
        w.row.message.starts_with(
            "resource warning memory: memory above 60% of the cgroup limit for 2 readings"
        ),
        "{}",
        w.row.message
    );
    assert!(
        w.row.ts <= last.at_ms + 1_000,
        "before the end: {} vs {}",
        w.row.ts,
        last.at_ms
    );
    let trend0 = w.extra["trend"][0].as_str().unwrap();
    assert!(
        trend0.starts_with("RSS ") && trend0.contains("cgroup limit 160 MiB"),
        "{trend0}"
    );
    let words = describe_trend(&stored);
    assert!(
        words[0].starts_with("RSS ") && words[0].contains("cgroup limit 160 MiB"),
        "{words:?}"
    );

    // The dashboard's page of the run: its last minutes in words and its
    // charts up to the end (the cgroup's share of its limit among them).
    let dash = crate::dash::Dash::start(&db, &[]);
    let cookie = dash.login();
    let page = dash.get(&format!("/runs/{}", run.id), Some(&cookie));
    assert_eq!(page.status, 200);
    for part in [
        "<h3>Its last minutes</h3>",
        "aria-label=\"RSS across",
        "aria-label=\"cgroup memory across",
        "cgroup limit 160 MiB",
    ] {
        assert!(page.body.contains(part), "{part}: {}", page.body);
    }
    drop(dash);

    // The store missed them: the crash file's ring still has them, read by
    // the next start with the run judged an OOM kill.
    forget_readings(&db, run.id);
    assert!(first_run(&db).1.is_empty());
    restart(&db);
    // Judged by the cgroup's OOM-kill count: removed only now.
    let _ = std::fs::remove_dir(&cg);
    let (run, from_ring) = first_run(&db);
    assert_eq!(run.status, RunStatus::Abnormal, "{run:?}");
    assert_eq!(run.end_reason.as_deref(), Some("oom-kill"), "{run:?}");
    assert!(
        from_ring.len() >= stored.len(),
        "{from_ring:?} vs {stored:?}"
    );
    // The ring keeps full precision; the store's series rounds to the KiB.
    let last_ring = from_ring.last().unwrap();
    assert!(last_ring.at_ms >= last.at_ms);
    assert_eq!(last_ring.cgroup_memory_max_bytes, Some(160 << 20));
}

#[test]
fn a_sigsegv_leaves_its_last_readings_before_the_crash() {
    let (_d, db) = util::temp_db();
    let out = run("segv", &db, &[]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        util::describe(&out)
    );
    let (run, _) = first_run(&db);
    forget_readings(&db, run.id);
    restart(&db);
    let d = Database::open(&db).unwrap();
    let crash = d
        .events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Crash)
        .expect("the crash imported");
    let trend = d
        .event_trend(&crash.id)
        .unwrap()
        .expect("its run's readings");
    assert_eq!(trend.run, run.id);
    // 800 ms at a reading every 100 ms, from the ring alone.
    assert!(trend.readings.len() >= 4, "{:?}", trend.readings);
    assert!(trend.readings.iter().all(|s| s.at_ms <= crash.ts + 1_000));
    assert!(
        trend.words.iter().any(|w| w.starts_with("RSS")),
        "{:?}",
        trend.words
    );
    let run = &d.runs(10).unwrap()[1];
    assert_eq!(run.status, RunStatus::Crashed);
    // The breadcrumbs it had since its last event came with the crash.
    let detail = d.event(&crash.id).unwrap().unwrap();
    let crumbs: Vec<&str> = detail
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_str())
        .collect();
    assert_eq!(crumbs.len(), 3, "{crumbs:?}");
    assert_eq!(crumbs[0], "GET /cart 200");
    assert_eq!(crumbs[2], "POST /checkout slow");
    assert!(
        crumbs[1].starts_with("connect ") && !crumbs[1].contains("hunter2"),
        "{crumbs:?}"
    );

    // `errsnap show` says it in words, with the readings' RSS as bars.
    let text = crate::cli::ok(&db, &["show", &crash.id]);
    let at = text.find("before it (run ").expect(&text);
    let section = &text[at..];
    assert!(section.contains(&trend.words[0]), "{section}");
    assert!(
        section.contains("    RSS ") && section.contains("(highest "),
        "{section}"
    );
    let json = crate::cli::json(&db, &["show", &crash.id]);
    assert_eq!(json["before"]["run"], run.id, "{json}");
    assert_eq!(
        json["before"]["readings"].as_array().unwrap().len(),
        trend.readings.len()
    );
    // The dashboard's event page: the words and the charts.
    let dash = crate::dash::Dash::start(&db, &[]);
    let cookie = dash.login();
    let page = dash.get(&format!("/events/{}", crash.id), Some(&cookie));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h3>Before it</h3>"), "{}", page.body);
    assert!(
        page.body.contains(&trend.words[0].replace('>', "&gt;")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("aria-label=\"RSS across"),
        "{}",
        page.body
    );
}

#[test]
fn a_sigkill_leaves_its_last_readings_in_the_store_and_the_ring() {
    let (_d, db) = util::temp_db();
    let mut child = util::spawn_started("recorder", &db, &[("ERRSNAPTEST_HOW", "idle")]);
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (run, stored) = first_run(&db);
    assert!(stored.len() >= 5, "{stored:?}");
    assert!(stored.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    assert!(stored.iter().all(|s| s.rss_bytes.unwrap() > 1 << 20));
    assert!(stored
        .iter()
        .all(|s| s.threads.unwrap() >= 2 && s.open_fds.is_some()));
    forget_readings(&db, run.id);
    restart(&db);
    let (run, from_ring) = first_run(&db);
    assert_eq!(run.status, RunStatus::Abnormal);
    assert!(from_ring.len() >= stored.len(), "{from_ring:?}");
    assert_eq!(
        from_ring.last().unwrap().at_ms,
        stored.last().unwrap().at_ms
    );
}

#[test]
fn an_alert_carries_the_minutes_before_it_in_words() {
    let stub = crate::servers::HttpStub::start();
    let (_d, db) = util::temp_db();
    let mut config = errsnap::Config::empty();
    config.set("ERRSNAP_WEBHOOK_URL", stub.url()).unwrap();
    let logger = util::builder(&db, "shop")
        .heartbeat(Duration::from_millis(100))
        .config(config)
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    logger.error("the cache is cold");
    assert!(logger.flush(T));
    let reqs = stub.wait_for(1, Duration::from_secs(10));
    let doc = reqs[0].json();
    let trend: Vec<&str> = doc["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    // Memory is always said (steady or moving: this test process's other
    // tests move it).
    assert!(
        trend.first().is_some_and(|t| t.starts_with("RSS ")),
        "{doc}"
    );
    // The store's readings say it the same way (those taken up to a second
    // after the event included).
    let d = Database::open(&db).unwrap();
    let ev = &d.events(&EventFilter::default()).unwrap()[0];
    let t = d.event_trend(&ev.id).unwrap().unwrap();
    assert!(t.readings.len() >= 4, "{:?}", t.readings);
    assert_eq!(describe_trend(&t.readings), t.words);
    assert!(t.words[0].starts_with("RSS "), "{:?}", t.words);
}
