//! #17 (1): native crashes. Children die by each signal, by a stack
//! overflow, by `abort` after a panic under `panic = "abort"`, by an
//! allocation refused under `setrlimit`; the next process that opens the
//! store finds one fatal event of kind `crash` naming the signal, with the
//! faulting function and its callers, and the run marked crashed.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use errsnap::{
    db::{Database, EventFilter},
    event::EventKind,
};

use crate::util;

const T: Duration = Duration::from_secs(20);

// ---- played in the child ----

/// Starts a logger with the crash handler, then dies as
/// `ERRSNAPTEST_CRASH` says.
pub(crate) fn die(db: &Path) {
    let how = std::env::var("ERRSNAPTEST_CRASH").unwrap();
    if how == "survive" {
        survive(db);
        return;
    }
    if let Ok(cg) = std::env::var("ERRSNAPTEST_CGROUP") {
        // Join the cgroup before any thread of errsnap starts.
        std::fs::write(
            Path::new(&cg).join("cgroup.procs"),
            std::process::id().to_string(),
        )
        .unwrap();
    }
    let mut b = util::builder(db, "native").release("app@2.0.0");
    if std::env::var("ERRSNAPTEST_END_USER").is_ok() {
        b = b
            .app_name("demo")
            .end_user_message(errsnap::EndUserMessage::Always);
    }
    let logger = b.build().unwrap();
    errsnap::install_panic_hook(&logger);
    // An error, so it comes with a snapshot (the cgroup test reads it).
    logger.error("started");
    assert!(logger.flush(T));
    no_core_dump();
    match how.as_str() {
        "segv" => crash_by_segv(),
        "bus" => crash_by_bus(db.parent().unwrap()),
        "ill" => crash_by_ill(),
        "fpe" => crash_by_fpe(),
        "trap" => crash_by_trap(),
        "abort" => crash_by_abort(),
        "rlimit" => crash_by_rlimit(),
        "oom" => crash_by_oom(),
        "panic" => panic!("a panic, for the end-user message"),
        other => panic!("unknown crash {other}"),
    }
    unreachable!("still alive after {how}");
}

extern "C" fn on_trap(_: libc::c_int) {}

/// SIGTRAP ignored and SIGUSR-like handled before errsnap arms: a raised
/// SIGTRAP (ignored) and a raised SIGFPE (handled by the program's own
/// handler, which returns) end nothing, and leave no crash behind.
fn survive(db: &Path) {
    // SAFETY: dispositions set before any thread of errsnap starts.
    unsafe {
        libc::signal(libc::SIGTRAP, libc::SIG_IGN);
        libc::signal(libc::SIGFPE, on_trap as *const () as libc::sighandler_t);
    }
    let logger = util::builder(db, "native").build().unwrap();
    errsnap::install_panic_hook(&logger);
    // SAFETY: raising signals this process handles or ignores.
    unsafe {
        libc::raise(libc::SIGTRAP);
        libc::raise(libc::SIGFPE);
    }
    logger.info("still alive");
    assert!(logger.flush(T));
    println!("survived");
}

pub(crate) fn no_core_dump() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: sets this process's core size limit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
}

#[inline(never)]
fn crash_by_segv() {
    // SAFETY: it is not: faults on purpose (in assembly: Rust's own null
    // checks would panic first).
    unsafe { std::arch::asm!("mov byte ptr [{0}], 1", in(reg) 0usize) };
}

#[inline(never)]
fn crash_by_bus(dir: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("empty.bin"))
        .unwrap();
    // SAFETY: maps a page of an empty file: reading it raises SIGBUS.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        std::ptr::read_volatile(p as *const u8);
    }
}

#[inline(never)]
fn crash_by_ill() {
    // SAFETY: an undefined instruction, on purpose.
    unsafe { std::arch::asm!("ud2") };
}

#[inline(never)]
fn crash_by_fpe() {
    // SAFETY: an integer division by zero, on purpose.
    unsafe {
        std::arch::asm!(
            "xor edx, edx",
            "div {0:e}",
            in(reg) std::hint::black_box(0u32),
            inout("eax") 1u32 => _,
            out("edx") _,
        )
    };
}

#[inline(never)]
fn crash_by_trap() {
    // SAFETY: a breakpoint with no debugger attached.
    unsafe { std::arch::asm!("int3") };
}

#[inline(never)]
fn crash_by_abort() {
    std::process::abort();
}

/// Caps the address space near what is mapped now, then asks for more:
/// Rust's allocation error handler aborts.
#[inline(never)]
fn crash_by_rlimit() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let cap = (kib << 10) + (256 << 20);
    let lim = libc::rlimit {
        rlim_cur: cap,
        rlim_max: cap,
    };
    // SAFETY: lowers this process's address-space limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(4 << 30));
    std::hint::black_box(&v);
}

/// Touches memory until the cgroup's limit has the kernel kill it.
#[inline(never)]
fn crash_by_oom() {
    let mut hold: Vec<Vec<u8>> = Vec::new();
    loop {
        hold.push(vec![1u8; 8 << 20]);
        std::hint::black_box(&hold);
    }
}

// ---- checked in the parent ----

fn run(how: &str, db: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![("ERRSNAPTEST_CRASH", how)];
    all.extend_from_slice(env);
    util::run_child("native", db, &all)
}

/// What the next process to open the store finds: the store's events of
/// kind `crash` (after one start), and the runs.
fn restart(db: &Path) {
    let logger = util::logger(db, "next");
    logger.info("restarted");
    assert!(logger.flush(T));
}

fn crashes(db: &Path) -> Vec<errsnap::db::EventDetail> {
    let d = Database::open(db).unwrap();
    d.events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Crash)
        .map(|e| d.event(&e.id).unwrap().unwrap())
        .collect()
}

fn run_status(db: &Path) -> Vec<String> {
    Database::open(db)
        .unwrap()
        .runs(10)
        .unwrap()
        .iter()
        .map(|r| format!("{:?}", r.status).to_lowercase())
        .collect()
}

fn functions(e: &errsnap::db::EventDetail) -> Vec<String> {
    e.frames.iter().filter_map(|f| f.function.clone()).collect()
}

fn crash_dir_files(db: &Path) -> usize {
    let mut d = db.as_os_str().to_owned();
    d.push(".crash");
    std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0)
}

#[test]
fn each_signal_is_recorded_and_imported_by_the_next_start() {
    // See: issue #17 (1): SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP
    let cases = [
        ("segv", libc::SIGSEGV, "SIGSEGV at 0x0 (address not mapped)"),
        ("bus", libc::SIGBUS, "SIGBUS at 0x"),
        ("ill", libc::SIGILL, "SIGILL at 0x"),
        ("fpe", libc::SIGFPE, "SIGFPE at 0x"),
        ("trap", libc::SIGTRAP, "SIGTRAP"),
        ("abort", libc::SIGABRT, "SIGABRT (abort)"),
    ];
    for (how, signal, message) in cases {
        let (_d, db) = util::temp_db();
        let out = run(how, &db, &[]);
        assert_eq!(
            out.status.signal(),
            Some(signal),
            "{how}: the signal still ends the process: {}",
            util::describe(&out)
        );
        assert_eq!(crash_dir_files(&db), 1, "{how}: the crash file waits");
        assert!(crashes(&db).is_empty(), "{how}: nothing imported yet");
        restart(&db);
        let c = crashes(&db);
        assert_eq!(c.len(), 1, "{how}: {}", util::describe(&out));
        let e = &c[0];
        assert!(
            e.row.message.starts_with(message),
            "{how}: {}",
            e.row.message
        );
        assert_eq!(e.row.level, errsnap::Level::Fatal);
        assert_eq!(e.release.as_deref(), Some("app@2.0.0"));
        assert_eq!(e.row.logger, "native");
        let crash = &e.extra["crash"];
        assert_eq!(crash["signal_number"], signal, "{how}");
        assert!(
            crash["registers"]["rip"].as_str().is_some(),
            "{how}: {crash}"
        );
        assert!(
            crash["stack_bytes"].as_u64().unwrap() > 1024,
            "{how}: {crash}"
        );
        let f = functions(e);
        let name = format!("crash_by_{how}");
        let at = f.iter().position(|s| s.ends_with(&name));
        assert!(at.is_some(), "{how}: the faulting function is named: {f:?}");
        assert!(
            f[at.unwrap()..].iter().any(|s| s.ends_with("crash::die")),
            "{how}: and its callers: {f:?}"
        );
        assert_eq!(run_status(&db)[1], "crashed", "{how}");
        assert_eq!(crash_dir_files(&db), 0, "{how}: imported once, removed");
        restart(&db);
        assert_eq!(crashes(&db).len(), 1, "{how}: never twice");
    }
}

#[test]
fn signals_the_program_ignores_or_handles_are_no_crash() {
    // See: issue #17 (1): "chains to the previous handler ... so the exit
    // status ... stay as they were" (and nothing is recorded when the
    // program goes on)
    let (_d, db) = util::temp_db();
    let out = run("survive", &db, &[]);
    assert!(out.status.success(), "{}", util::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("survived"));
    restart(&db);
    assert!(crashes(&db).is_empty(), "no crash recorded");
    assert_eq!(run_status(&db)[1], "exited");
}

#[test]
fn a_segfault_in_a_real_binary_names_its_callers_up_to_main() {
    // See: issue #17 (1): "the frames name the faulting function and its
    // callers up to main"
    let bin = util::abort_fixture();
    let (_d, db) = util::temp_db();
    let out = Command::new(&bin).arg(&db).arg("segv").output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        util::describe(&out)
    );
    errsnap::db::import_crashes(&db).unwrap();
    let c = crashes(&db);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].row.message, "SIGSEGV at 0x0 (address not mapped)");
    let f = functions(&c[0]);
    let at = f.iter().position(|s| s == "abort_app::fixture_segv");
    assert!(at.is_some(), "{f:?}");
    assert_eq!(
        f.get(at.unwrap() + 1).map(String::as_str),
        Some("abort_app::main"),
        "{f:?}"
    );
    assert_eq!(run_status(&db)[0], "crashed");
}

#[test]
fn a_stack_overflow_is_one_failure_with_both_signals_linked() {
    // See: issue #17 (1): Rust's stack-overflow abort; two records, one failure
    let bin = util::abort_fixture();
    for how in ["overflow", "overflow-thread"] {
        let (_d, db) = util::temp_db();
        let out = Command::new(&bin).arg(&db).arg(how).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{how}: the exit status Rust gives: {}",
            util::describe(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("has overflowed its stack"),
            "{how}: Rust's own handler still reports: {stderr}"
        );
        errsnap::db::import_crashes(&db).unwrap();
        let c = crashes(&db);
        assert_eq!(c.len(), 1, "{how}: counted once");
        let m = &c[0].row.message;
        assert!(m.starts_with("stack overflow: SIGSEGV at 0x"), "{how}: {m}");
        assert_eq!(c[0].extra["crash"]["stack_overflow"], true);
        if how == "overflow" {
            // The arming thread has errsnap's 64 KiB signal stack: Rust's
            // abort is recorded too, linked.
            assert!(m.ends_with(", then SIGABRT (abort)"), "{m}");
            assert_eq!(c[0].extra["crash"]["then"][0]["signal"], "SIGABRT");
        }
        let f = functions(&c[0]);
        assert!(
            f.iter().any(|s| s == "abort_app::fixture_recurse"),
            "{how}: {f:?}"
        );
        assert_eq!(run_status(&db)[0], "crashed", "{how}");
    }
}

#[test]
fn a_panic_under_panic_abort_and_its_sigabrt_are_one_failure() {
    // See: issue #17 (1): a panic under `panic = "abort"` followed by SIGABRT
    let bin = util::abort_fixture();
    let (_d, db) = util::temp_db();
    let out = Command::new(&bin).arg(&db).arg("main").output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        util::describe(&out)
    );
    let report = errsnap::db::import_crashes(&db).unwrap();
    assert_eq!((report.imported, report.linked), (0, 1), "{report:?}");
    assert!(crashes(&db).is_empty(), "no second event");
    let d = Database::open(&db).unwrap();
    let panics: Vec<_> = d
        .events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Panic)
        .collect();
    assert_eq!(panics.len(), 1);
    let p = d.event(&panics[0].id).unwrap().unwrap();
    assert_eq!(p.extra["crash"]["signal"], "SIGABRT", "{}", p.extra);
    assert_eq!(p.extra["crash"]["after_panic"], panics[0].id);
    assert_eq!(run_status(&db)[0], "crashed");
}

#[test]
fn an_allocation_refused_under_setrlimit_aborts_and_counts_as_crashed() {
    // See: issue #17 Tests: "a child that caps its address space with
    // setrlimit dies by abort and counts as crashed"
    let (_d, db) = util::temp_db();
    let out = run("rlimit", &db, &[]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        util::describe(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory allocation of"));
    restart(&db);
    let c = crashes(&db);
    assert_eq!(c.len(), 1, "{}", util::describe(&out));
    assert_eq!(c[0].row.message, "SIGABRT (abort)");
    assert!(
        functions(&c[0])
            .iter()
            .any(|s| s.ends_with("crash_by_rlimit")),
        "{:?}",
        functions(&c[0])
    );
    assert_eq!(run_status(&db)[1], "crashed");
}

#[test]
fn the_end_user_message_names_the_saved_report() {
    // See: issue #17 (5)
    let (_d, db) = util::temp_db();
    let out = run("segv", &db, &[("ERRSNAPTEST_END_USER", "1")]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    restart(&db);
    let c = crashes(&db);
    assert_eq!(c.len(), 1);
    assert!(
        stderr.contains(&format!(
            "demo crashed. A report was saved (id {}).",
            c[0].row.id
        )),
        "{stderr}"
    );
    // A panic: the line instead of Rust's message and backtrace.
    let (_d, db) = util::temp_db();
    let out = run("panic", &db, &[("ERRSNAPTEST_END_USER", "1")]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let d = Database::open(&db).unwrap();
    let ev = d.events(&EventFilter::default()).unwrap();
    let panic = ev.iter().find(|e| e.kind == EventKind::Panic).unwrap();
    assert!(
        stderr.contains(&format!(
            "demo crashed. A report was saved (id {}).",
            panic.id
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked at"), "{stderr}");
}

#[test]
fn crash_files_that_are_not_ours_are_refused_and_kept() {
    // See: issue #17 (1) with the security rules: never adopt a file that
    // is not ours
    let (_d, db) = util::temp_db();
    drop(util::logger(&db, "t"));
    let mut dir = db.as_os_str().to_owned();
    dir.push(".crash");
    std::fs::create_dir(&dir).unwrap();
    let dir = std::path::PathBuf::from(dir);
    std::fs::write(dir.join("crash-1-forged.bin"), b"ESNPCRSH garbage").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("crash-2-link.bin")).unwrap();
    let report = errsnap::db::import_crashes(&db).unwrap();
    assert_eq!(report.refused.len(), 2, "{report:?}");
    assert!(
        report.refused.iter().any(|r| r.contains("symbolic link")),
        "{report:?}"
    );
    assert_eq!(report.imported, 0);
    assert!(
        dir.join("crash-1-forged.bin").exists(),
        "kept for a person to look at"
    );
    assert!(crashes(&db).is_empty());
}

#[cfg(feature = "cli")]
#[test]
fn errsnap_check_imports_crash_files() {
    // See: issue #17 (1): "At the next start (any process opening the same
    // store, and `errsnap check`)"
    let (_d, db) = util::temp_db();
    let out = run("abort", &db, &[]);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let r = crate::cli::json(&db, &["check"]);
    assert_eq!(r["crashes"]["imported"], 1, "{r}");
    assert_eq!(crashes(&db).len(), 1);
    let r = crate::cli::json(&db, &["check"]);
    assert_eq!(r["crashes"]["imported"], 0, "once: {r}");
}

/// A fresh memory cgroup limited to `bytes` (no swap) inside this
/// process's own, v2 or v1; `None` where none can be made (not root, a
/// read-only or absent hierarchy).
pub(crate) fn memory_cgroup(bytes: u64) -> Option<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("errsnap-test-{}-{nanos}", std::process::id());
    let mut candidates = Vec::new();
    for line in own.lines() {
        let mut p = line.splitn(3, ':');
        let (id, ctl, path) = (p.next()?, p.next()?, p.next()?);
        let rel = path.trim_start_matches('/');
        if id == "0" && ctl.is_empty() {
            for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                candidates.push((2, Path::new(base).join(rel).join(&name)));
            }
        } else if ctl.split(',').any(|c| c == "memory") {
            candidates.push((
                1,
                Path::new("/sys/fs/cgroup").join(ctl).join(rel).join(&name),
            ));
        }
    }
    for (version, dir) in candidates {
        if std::fs::create_dir(&dir).is_err() {
            continue;
        }
        let limit = bytes.to_string();
        let ok = if version == 2 {
            std::fs::write(dir.join("memory.max"), &limit).is_ok()
                && std::fs::write(dir.join("memory.swap.max"), "0").is_ok()
        } else {
            std::fs::write(dir.join("memory.limit_in_bytes"), &limit).is_ok()
                && (!dir.join("memory.memsw.limit_in_bytes").exists()
                    || std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &limit).is_ok())
        };
        if ok {
            return Some(dir);
        }
        let _ = std::fs::remove_dir(&dir);
    }
    None
}

#[test]
fn an_oom_kill_in_a_small_cgroup_is_abnormal_and_named() {
    // See: issue #17 Tests: "by OOM: a child placed in a cgroup with a small
    // memory.max, killed by the kernel (abnormal, named an OOM kill)"
    let Some(cg) = memory_cgroup(160 << 20) else {
        eprintln!("SKIPPED i17 OOM test: no memory cgroup can be created here");
        return;
    };
    let (_d, db) = util::temp_db();
    let out = run("oom", &db, &[("ERRSNAPTEST_CGROUP", cg.to_str().unwrap())]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "killed by the kernel: {}",
        util::describe(&out)
    );
    restart(&db);
    let _ = std::fs::remove_dir(&cg);
    let runs = Database::open(&db).unwrap().runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    let r = &runs[1];
    assert_eq!(r.status, errsnap::db::RunStatus::Abnormal, "{r:?}");
    assert_eq!(r.end_reason.as_deref(), Some("oom-kill"), "{r:?}");
    assert_eq!(r.memory_max_bytes, Some(160 << 20), "{r:?}");
    assert!(crashes(&db).is_empty(), "a SIGKILL leaves no crash record");
    // The snapshot names the cgroup too.
    let d = Database::open(&db).unwrap();
    let started = d
        .events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .find(|e| e.logger == "native")
        .unwrap();
    let detail = d.event(&started.id).unwrap().unwrap();
    let cgroup = detail.snapshot.and_then(|s| s.cgroup);
    assert_eq!(
        cgroup.and_then(|c| c.memory_max_bytes),
        Some(160 << 20),
        "{:?}",
        detail.row
    );
}

#[test]
fn a_crash_loop_of_three_runs_raises_exactly_one_alert() {
    // See: issue #17 (3) and Tests: "A crash loop of three children raises
    // exactly one alert on a loopback webhook"
    let stub = crate::servers::HttpStub::start();
    let (_d, db) = util::temp_db();
    let url = stub.url();
    let crash_loop_alerts = || {
        stub.requests()
            .iter()
            .filter(|r| {
                r.json()["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("crash loop"))
            })
            .count()
    };
    for i in 0..3 {
        let out = util::run_child("panic_with_alert", &db, &[("ERRSNAPTEST_SLACK", &url)]);
        assert!(!out.status.success(), "{i}: {}", util::describe(&out));
        if i < 2 {
            assert_eq!(crash_loop_alerts(), 0, "{i}: not a loop yet");
        }
    }
    // The next start sends what is still waiting.
    let mut config = errsnap::Config::empty();
    config.set("ERRSNAP_SLACK_WEBHOOK_URL", &url).unwrap();
    let logger = util::builder(&db, "next")
        .config(config.clone())
        .build()
        .unwrap();
    logger.info("restarted");
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(crash_loop_alerts(), 1, "{:?}", stub.requests().len());
    let text = stub
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or("").to_owned())
        .find(|t| t.contains("crash loop"))
        .unwrap();
    assert!(
        text.contains("3 runs crashed or ended abnormally within 5 min"),
        "{text}"
    );
    // A fourth crash while the loop lasts: held for the digest, no alert.
    let out = util::run_child("panic_with_alert", &db, &[("ERRSNAPTEST_SLACK", &url)]);
    assert!(!out.status.success());
    let logger = util::builder(&db, "next").config(config).build().unwrap();
    assert!(logger.flush(T));
    drop(logger);
    assert_eq!(crash_loop_alerts(), 1, "one alert, then digests");
    let d = Database::open(&db).unwrap();
    let loops: Vec<_> = d
        .events(&EventFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.logger == "crash_loops")
        .collect();
    assert_eq!(loops.len(), 2, "one occurrence per crashed run in the loop");
}
