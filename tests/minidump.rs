//! A native crash's minidump, read by readers errsnap did not write:
//! rust-minidump (`minidump`), and symbolic, the parser Bugsink uses
//! (`tests/support/minidump_read.py`, the calls of Bugsink's own code),
//! which walks the crashing thread with the binary's CFI; and Bugsink
//! itself, which merges a forwarded dump into its event.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use errsnap::db::{Database, EventDetail, EventFilter};
use minidump::{
    Minidump, MinidumpException, MinidumpMemoryList, MinidumpMiscInfo, MinidumpModuleList,
    MinidumpSystemInfo, MinidumpThreadList, Module,
};
use serde_json::Value;

use crate::peers::{python_with, support, Bugsink};
use crate::util;

const T: Duration = Duration::from_secs(30);

/// A crashed run of the fixture: its store, the crash file as the handler
/// left it, the event that carries the dump, and the dump.
struct Crashed {
    _dir: tempfile::TempDir,
    db: PathBuf,
    stdout: String,
    file: Vec<u8>,
    event: EventDetail,
    dump: Vec<u8>,
}

fn crash_files(db: &Path) -> Vec<PathBuf> {
    let mut d = db.as_os_str().to_owned();
    d.push(".crash");
    std::fs::read_dir(d)
        .map(|r| r.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

/// Runs `abort_app DB how` (it must die by `signal`), imports its crash,
/// and finds the one event with a minidump.
fn crash(how: &str, signal: i32) -> Crashed {
    crash_then(how, signal, &[], |db| {
        errsnap::db::import_crashes(db).unwrap();
    })
}

/// As [`crash`], with `env` for the fixture and `import` to import.
fn crash_then(how: &str, signal: i32, env: &[(&str, &str)], import: impl FnOnce(&Path)) -> Crashed {
    let (dir, db) = util::temp_db();
    let out = Command::new(util::abort_fixture())
        .arg(&db)
        .arg(how)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "{how}: {}",
        util::describe(&out)
    );
    let files = crash_files(&db);
    assert_eq!(files.len(), 1, "{how}: one crash file");
    let file = std::fs::read(&files[0]).unwrap();
    import(&db);
    assert!(crash_files(&db).is_empty(), "{how}: imported");
    let d = Database::open(&db).unwrap();
    let mut with_dump = Vec::new();
    for row in d.events(&EventFilter::default()).unwrap() {
        let dumps: Vec<Vec<u8>> = d
            .attachments(&row.id)
            .unwrap()
            .into_iter()
            .filter(|a| a.is_minidump())
            .map(|a| {
                assert_eq!(a.name(), "minidump.dmp");
                a.data().unwrap().to_vec()
            })
            .collect();
        for dump in dumps {
            with_dump.push((d.event(&row.id).unwrap().unwrap(), dump));
        }
    }
    assert_eq!(with_dump.len(), 1, "{how}: one event carries one minidump");
    let (event, dump) = with_dump.pop().unwrap();
    Crashed {
        _dir: dir,
        db,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        file,
        event,
        dump,
    }
}

/// A register the crash event recorded (`"0x..."`).
fn register(e: &EventDetail, name: &str) -> u64 {
    let text = e.extra["crash"]["registers"][name].as_str().unwrap();
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

/// Reads every stream a reader looks at; panics on any that does not read.
fn read_whole(bytes: Vec<u8>) -> Minidump<'static, Vec<u8>> {
    let dump = Minidump::read(bytes).expect("a minidump");
    let sys: MinidumpSystemInfo = dump.get_stream().expect("system info");
    let threads: MinidumpThreadList<'_> = dump.get_stream().expect("thread list");
    for t in &threads.threads {
        t.context(&sys, None).expect("the thread's context");
    }
    let _: MinidumpModuleList = dump.get_stream().expect("module list");
    let _: MinidumpMemoryList<'_> = dump.get_stream().expect("memory list");
    let exc: MinidumpException<'_> = dump.get_stream().expect("exception");
    exc.context(&sys, None).expect("the exception's context");
    let _: MinidumpMiscInfo = dump.get_stream().expect("misc info");
    dump
}

fn raw_text(dump: &Minidump<'static, Vec<u8>>, kind: u32) -> String {
    String::from_utf8_lossy(dump.get_raw_stream(kind).unwrap_or_default()).into_owned()
}

#[test]
fn rust_minidump_reads_each_signal_its_address_thread_and_process() {
    let bin = util::abort_fixture();
    let bin_path = std::fs::canonicalize(&bin).unwrap();
    for (how, signal, reason) in [
        ("segv", libc::SIGSEGV, "SIGSEGV / SEGV_MAPERR"),
        ("bus", libc::SIGBUS, "SIGBUS / BUS_ADRERR"),
        ("main", libc::SIGABRT, "SIGABRT"),
    ] {
        let c = crash(how, signal);
        eprintln!("{how}: a {}-byte minidump", c.dump.len());
        let dump = read_whole(c.dump.clone());
        let sys: MinidumpSystemInfo = dump.get_stream().unwrap();
        assert_eq!(sys.os, minidump::system_info::Os::Linux, "{how}");
        let exc: MinidumpException<'_> = dump.get_stream().unwrap();
        let said = exc.get_crash_reason(sys.os, sys.cpu).to_string();
        assert!(said.starts_with(reason), "{how}: {said}");
        let crash = &c.event.extra["crash"];
        let tid = crash["tid"].as_u64().unwrap() as u32;
        assert_eq!(exc.get_crashing_thread_id(), tid, "{how}");
        match how {
            "segv" => assert_eq!(exc.get_crash_address(sys.os, sys.cpu), 0),
            "bus" => {
                // The page the fixture printed before reading it.
                let page = c
                    .stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("page at 0x"))
                    .unwrap();
                let page = u64::from_str_radix(page, 16).unwrap();
                assert_eq!(exc.get_crash_address(sys.os, sys.cpu), page, "{how}");
                assert_eq!(crash["fault_address"], format!("{page:#x}"));
            }
            _ => assert!(crash.get("fault_address").is_none()),
        }
        // Thread 0 is the crashing thread, with the registers stored.
        let threads: MinidumpThreadList<'_> = dump.get_stream().unwrap();
        assert_eq!(threads.threads.len(), 1, "{how}: only the crashing thread");
        let t = &threads.threads[0];
        assert_eq!(t.raw.thread_id, tid);
        let ctx = t.context(&sys, None).unwrap();
        assert_eq!(
            ctx.get_instruction_pointer(),
            register(&c.event, "rip"),
            "{how}"
        );
        assert_eq!(ctx.get_stack_pointer(), register(&c.event, "rsp"), "{how}");
        let stack = &t.raw.stack;
        assert!(
            stack.start_of_memory_range <= ctx.get_stack_pointer(),
            "{how}"
        );
        let size = stack.memory.data_size;
        assert!(size > 1024, "{how}: {size} bytes of stack");
        // The binary's module covers the instruction pointer (a segfault
        // in its own code); its code id is a build-id.
        let modules: MinidumpModuleList = dump.get_stream().unwrap();
        let own = modules
            .iter()
            .find(|m| Path::new(&*m.code_file()) == bin_path)
            .unwrap_or_else(|| panic!("{how}: no module for {}", bin_path.display()));
        let code_id = own.code_identifier().unwrap().to_string();
        assert!(code_id.len() >= 16, "{how}: {code_id}");
        if how != "main" {
            assert!(
                (own.base_address()..own.base_address() + own.size())
                    .contains(&ctx.get_instruction_pointer()),
                "{how}"
            );
        }
        // The process: pid and start time; its maps and status as the
        // handler read them.
        let misc: MinidumpMiscInfo = dump.get_stream().unwrap();
        assert_eq!(misc.raw.process_id(), Some(&c.event.row.pid), "{how}");
        let started = i64::from(*misc.raw.process_create_time().unwrap());
        let at = c.event.row.ts / 1000;
        assert!(
            started <= at && at - started < 120,
            "{how}: {started} / {at}"
        );
        let maps = raw_text(&dump, 0x4767_0009);
        assert!(maps.contains(&*bin_path.to_string_lossy()), "{how}: {maps}");
        assert!(maps.contains("[stack]"), "{how}");
        let status = raw_text(&dump, 0x4767_0004);
        assert!(
            status.contains(&format!("\nPid:\t{}\n", c.event.row.pid)),
            "{how}: {status}"
        );
        assert!(status.contains("VmRSS:"), "{how}");
        // Never the environment or the command line.
        for secret in ["PATH=", "environ"] {
            assert!(
                !String::from_utf8_lossy(&c.dump).contains(secret),
                "{how}: {secret}"
            );
        }
    }
}

#[test]
fn symbolic_walks_a_segfault_to_main_with_the_binarys_cfi() {
    let Some(python) = python_with("minidump read by symbolic", "symbolic", "symbolic") else {
        return;
    };
    let bin = std::fs::canonicalize(util::abort_fixture()).unwrap();
    let c = crash("segv", libc::SIGSEGV);
    let path = c.db.with_extension("dmp");
    std::fs::write(&path, &c.dump).unwrap();
    let out = Command::new(&python)
        .arg(support("minidump_read.py"))
        .arg(&path)
        .arg(&bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["crashed"], true, "{r}");
    assert!(
        r["crash_reason"].as_str().unwrap().starts_with("SIGSEGV"),
        "{r}"
    );
    assert_eq!(r["crash_address"], 0);
    assert_eq!(r["os"], "Linux");
    assert_eq!(r["cpu"], "amd64");
    assert_eq!(r["thread_id"], c.event.extra["crash"]["tid"]);
    // Module ids: each file symbolic can open has the code id the dump
    // says (its build-id), the binary included.
    let files = r["files"].as_object().unwrap();
    let mut checked = 0;
    for m in r["modules"].as_array().unwrap() {
        let file = m["code_file"].as_str().unwrap();
        if let Some(id) = files[file].as_str() {
            assert_eq!(
                m["code_id"].as_str().unwrap().to_lowercase(),
                id.to_lowercase(),
                "{file}"
            );
            checked += 1;
        }
        if Path::new(file) == bin {
            assert_eq!(m["code_id"], r["binary"]["code_id"]);
        }
    }
    assert!(checked >= 2, "the binary and libc at least: {r}");
    // The walk with the binary's CFI: the faulting instruction first, then
    // the callers up to `main`.
    let frames = r["with_cfi"].as_array().unwrap();
    assert_eq!(
        frames[0]["instruction"].as_u64().unwrap(),
        register(&c.event, "rip")
    );
    let names: Vec<String> = frames
        .iter()
        .map(|f| {
            f["functions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(" < ")
        })
        .collect();
    let segv = names.iter().position(|n| n.contains("fixture_segv"));
    let main = names.iter().position(|n| n.contains("abort_app::main"));
    assert!(segv.is_some() && main > segv, "with CFI: {names:#?}");
    assert!(
        frames[1..=main.unwrap()]
            .iter()
            .all(|f| f["trust"] == "cfi"),
        "every caller up to main found by CFI: {frames:#?}"
    );
}

#[cfg(feature = "fuzzing")]
#[test]
fn damaged_crash_files_give_a_whole_dump_or_none() {
    let c = crash("segv", libc::SIGSEGV);
    assert!(errsnap::fuzzing::crash_file_minidump(&c.file).is_some());
    // Byte flips where the reader looks: the header and metadata, the
    // module list, record 0 (its fields and stack), the maps and status.
    let regions: [(usize, usize); 5] = [
        (0, 4096),
        (4096, 4096 + 8192),
        (135_168, 135_168 + 4096),
        (135_168 + 4096, 135_168 + 4096 + 65_536),
        (c.file.len() - 139_264, c.file.len()),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut made, mut refused) = (0, 0);
    let dir = tempfile::tempdir().unwrap();
    let mut kept = Vec::new();
    for i in 0..400 {
        let mut b = c.file.clone();
        for _ in 0..=(next() % 8) {
            let (lo, hi) = regions[(next() % regions.len() as u64) as usize];
            let at = lo + (next() as usize) % (hi - lo);
            b[at] ^= 1 << (next() % 8);
        }
        if i % 50 == 0 {
            // A file cut short is refused whole.
            let cut = (next() as usize) % b.len();
            assert!(errsnap::fuzzing::crash_file_minidump(&b[..cut]).is_none());
        }
        match errsnap::fuzzing::crash_file_minidump(&b) {
            Some(dump) => {
                made += 1;
                if kept.len() < 40 {
                    let p = dir.path().join(format!("{i}.dmp"));
                    std::fs::write(&p, &dump).unwrap();
                    kept.push(p);
                }
                read_whole(dump);
            }
            None => refused += 1,
        }
    }
    assert!(
        made > 100,
        "most damage leaves a readable crash: {made} made, {refused} refused"
    );
    eprintln!("damaged crash files: {made} gave a dump that reads whole, {refused} gave none");
    // symbolic (Breakpad's stricter processor) reads them too.
    let Some(python) = python_with("damaged dumps read by symbolic", "symbolic", "symbolic") else {
        return;
    };
    let out = Command::new(&python)
        .arg(support("minidump_read.py"))
        .arg("--many")
        .args(&kept)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), kept.len());
    assert!(lines.iter().all(|l| l == "ok"), "{lines:#?}");
}

#[test]
fn bugsink_merges_the_forwarded_dump_only_when_asked() {
    let Some(bugsink) = Bugsink::start("minidump to bugsink") else {
        return;
    };
    for (send, expect_dump) in [("0", false), ("1", true)] {
        let before = bugsink.query()["events"].as_array().map_or(0, Vec::len);
        let env = [
            ("ERRSNAP_SENTRY_DSN", bugsink.dsn.as_str()),
            ("ERRSNAP_SENTRY_MINIDUMP", send),
        ];
        // The next start of the application imports the crash and sends it.
        let c = crash_then("segv", libc::SIGSEGV, &env, |db| {
            let log = util::builder(db, "aborts")
                .sentry_dsn(&bugsink.dsn)
                .sentry_minidump(send == "1")
                .build()
                .unwrap();
            assert!(log.flush(T));
        });
        let q = bugsink.wait_events(before + 1, T);
        let events = q["events"].as_array().unwrap();
        assert_eq!(events.len(), before + 1, "{send}: {q}");
        let data = &events[before]["data"];
        let values = data["exception"]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let from_dump = values.iter().find(|v| {
            v["value"]
                .as_str()
                .is_some_and(|s| s.starts_with("Fatal Error: SIGSEGV"))
        });
        assert_eq!(from_dump.is_some(), expect_dump, "{send}: {data}");
        if let Some(v) = from_dump {
            // The dump's crashing thread, its frames by address.
            assert_eq!(v["thread_id"], c.event.extra["crash"]["tid"]);
            let frames = v["stacktrace"]["frames"].as_array().unwrap();
            let top = frames.last().unwrap()["instruction_addr"].as_str().unwrap();
            assert_eq!(top, format!("{:#x}", register(&c.event, "rip")));
        }
    }
}

#[cfg(feature = "cli")]
#[test]
fn the_dump_is_saved_by_the_cli_and_downloaded_from_the_dashboard() {
    let c = crash("segv", libc::SIGSEGV);
    let id = c.event.row.id.clone();
    // `errsnap show ID --save-attachments DIR`.
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_errsnap"))
        .arg("--db")
        .arg(&c.db)
        .args(["show", &id, "--save-attachments"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::describe(&out));
    let saved = std::fs::read(out_dir.path().join("minidump.dmp")).unwrap();
    assert_eq!(saved, c.dump);
    // The dashboard: the event's page links it; the link downloads it,
    // never shown by the browser.
    let dash = crate::dash::Dash::start(&c.db, &[]);
    let cookie = dash.login();
    let page = dash.get(&format!("/events/{id}"), Some(&cookie)).body;
    let link = format!("/events/{id}/attachments/0");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(
        page.contains("minidump (only the crashing thread)"),
        "{page}"
    );
    let r = dash.get(&link, Some(&cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"minidump.dmp\"")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let len = c.dump.len().to_string();
    assert_eq!(r.header("content-length"), Some(len.as_str()));
    assert!(r.body.starts_with("MDMP"));
    // Without the session: not given; past the last: not found.
    assert_ne!(dash.get(&link, None).status, 200);
    let past = dash.get(&format!("/events/{id}/attachments/1"), Some(&cookie));
    assert_eq!(past.status, 404);
}
