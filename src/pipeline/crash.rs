//! A crash file becomes an event: the stack is unwound from the copied
//! registers and stack with each module's unwind tables read from its file
//! (checked against the build-id the crashed process had loaded), the
//! frames are named with errsnap's own symbol tables, and the signal is
//! described in words ("SIGSEGV at 0x0 (address not mapped)").

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::crash::file::{CrashFile, Record};
use crate::crash::layout::{self, RawRecord};
use crate::crash::ModuleEntry;
use crate::event::{Event, EventId, EventKind, Frame, StoredAttachment};
use crate::level::Level;
use crate::pipeline::fingerprint;
use crate::pipeline::redact::Redactor;
use crate::pipeline::symbolicate::{resolve_stack, Binaries};
use crate::pipeline::symbols::SymbolTables;

/// The most frames unwound from a crash.
const MAX_FRAMES: usize = 128;

/// A crash file, made an event.
#[derive(Debug)]
pub(crate) struct CrashEvent {
    /// The event (kind `crash`, level fatal).
    pub(crate) event: Event,
    /// The panic this crash ends (a `SIGABRT` right after a panic on the
    /// same thread): the crash is linked to it instead of stored apart.
    pub(crate) after_panic: Option<EventId>,
    /// What the records say (signal, code, registers, ...): stored as the
    /// event's `crash` extra, or added to the panic's.
    pub(crate) details: Value,
}

/// A signal's name.
pub(crate) fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

/// What `si_code` says about a signal (Linux's codes).
fn reason(sig: i32, code: i32) -> Option<&'static str> {
    if code <= 0 {
        return None;
    }
    if code == 0x80 {
        return Some(match sig {
            11 => "general protection fault",
            5 => "breakpoint",
            _ => "raised by the kernel",
        });
    }
    Some(match (sig, code) {
        (11, 1) => "address not mapped",
        (11, 2) => "invalid permissions",
        (11, 3) => "failed address bound checks",
        (11, 4) => "protection key check failed",
        (7, 1) => "invalid address alignment",
        (7, 2) => "nonexistent physical address",
        (7, 3) => "object-specific hardware error",
        (4, 1) => "illegal opcode",
        (4, 2) => "illegal operand",
        (4, 3) => "illegal addressing mode",
        (4, 4) => "illegal trap",
        (4, 5) => "privileged opcode",
        (4, 6) => "privileged register",
        (4, 7) => "coprocessor error",
        (4, 8) => "internal stack error",
        (8, 1) => "integer divide by zero",
        (8, 2) => "integer overflow",
        (8, 3) => "floating-point divide by zero",
        (8, 4) => "floating-point overflow",
        (8, 5) => "floating-point underflow",
        (8, 6) => "floating-point inexact result",
        (8, 7) => "invalid floating-point operation",
        (8, 8) => "subscript out of range",
        (5, 1) => "breakpoint",
        (5, 2) => "trace trap",
        _ => return None,
    })
}

/// Whether a fault is a stack overflow: a SIGSEGV or SIGBUS whose address
/// is within a page of the stack pointer (the guard page below the stack).
fn is_stack_overflow(r: &RawRecord) -> bool {
    (r.signal == 11 || r.signal == 7)
        && r.code > 0
        && r.fault_addr != 0
        && r.sp != 0
        && r.fault_addr.saturating_add(4096) >= r.sp
        && r.fault_addr <= r.sp.saturating_add(4096)
}

/// One record in words: "SIGSEGV at 0x0 (address not mapped)".
pub(crate) fn describe(r: &RawRecord) -> String {
    let name = signal_name(r.signal);
    if r.code <= 0 {
        // Sent: by abort()/raise() in the process itself, or by another.
        if r.signal == 6 && (r.code == -6 || r.sender_pid == 0) {
            return format!("{name} (abort)");
        }
        return match r.sender_pid {
            0 => name,
            pid => format!("{name} sent by pid {pid}"),
        };
    }
    let mut s = name;
    if matches!(r.signal, 4 | 7 | 8 | 11) || r.fault_addr != 0 {
        s.push_str(&format!(" at {:#x}", r.fault_addr));
    }
    if let Some(why) = reason(r.signal, r.code) {
        s.push_str(&format!(" ({why})"));
    }
    s
}

/// The event's message: the first signal, what it means, and what came
/// after it.
fn message(records: &[Record]) -> String {
    let first = &records[0].raw;
    let mut s = if is_stack_overflow(first) {
        format!("stack overflow: {}", describe(first))
    } else {
        describe(first)
    };
    for r in &records[1..] {
        s.push_str(&format!(", then {}", describe(&r.raw)));
    }
    s
}

fn thread_name(r: &RawRecord) -> Option<String> {
    let end = r.thread_name.iter().position(|&b| b == 0).unwrap_or(16);
    let s = String::from_utf8_lossy(&r.thread_name[..end]).into_owned();
    (!s.is_empty()).then_some(s)
}

const X86_64_REGS: [&str; 23] = [
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx", "rdx", "rax",
    "rcx", "rsp", "rip", "eflags", "csgsfs", "err", "trapno", "oldmask", "cr2",
];

fn registers(r: &RawRecord) -> Map<String, Value> {
    let mut m = Map::new();
    let n = (r.nregs as usize).min(layout::REGS);
    for (i, v) in r.regs[..n].iter().enumerate() {
        let name = match r.arch {
            layout::ARCH_X86_64 => X86_64_REGS.get(i).map(|s| (*s).to_owned()),
            layout::ARCH_AARCH64 => Some(match i {
                31 => "sp".to_owned(),
                32 => "pc".to_owned(),
                33 => "pstate".to_owned(),
                _ => format!("x{i}"),
            }),
            _ => None,
        };
        if let Some(name) = name {
            m.insert(name, Value::String(format!("{v:#018x}")));
        }
    }
    m
}

fn record_details(r: &Record) -> Value {
    let raw = &r.raw;
    let mut d = json!({
        "signal": signal_name(raw.signal),
        "signal_number": raw.signal,
        "code": raw.code,
        "description": describe(raw),
        "thread": thread_name(raw),
        "tid": raw.tid,
        "at": raw.time_ms,
        "stack_bytes": r.stack.len(),
        "registers": registers(raw),
    });
    if raw.code > 0 {
        d["fault_address"] = Value::String(format!("{:#x}", raw.fault_addr));
    } else if raw.sender_pid != 0 {
        d["sender_pid"] = json!(raw.sender_pid);
    }
    d
}

/// The panic a record links to, if any.
fn panic_of(r: &RawRecord) -> Option<EventId> {
    let v = (u128::from(r.panic_id[0]) << 64) | u128::from(r.panic_id[1]);
    (v != 0).then(|| EventId::from_u128(v))
}

/// Makes the event of a crash file with records (`None` without any).
/// Frames are unwound and named here; `tables` are the writer's.
pub(crate) fn to_event(
    file: &CrashFile,
    tables: &mut SymbolTables,
    redactor: &Redactor,
) -> Option<CrashEvent> {
    let first = file.records.first()?;
    let meta = &file.meta;
    let raw_frames = unwind(&file.modules, first);
    let frames = resolve_stack(&raw_frames, &Binaries::default(), tables, redactor).frames;
    let message = message(&file.records);
    let stack_overflow = is_stack_overflow(&first.raw);
    let mut details = record_details(first);
    details["stack_overflow"] = json!(stack_overflow);
    if file.records.len() > 1 {
        details["then"] = Value::Array(file.records[1..].iter().map(record_details).collect());
    }
    let raw = &first.raw;
    if raw.sign_at_ms > 0 {
        details["last_sign"] = json!({
            "at": raw.sign_at_ms,
            "rss_bytes": raw.rss_bytes,
            "cpu_percent": (raw.cpu_permille != u64::MAX).then(|| raw.cpu_permille as f64 / 10.0),
        });
    }
    let after_panic = file.records.iter().find_map(|r| panic_of(&r.raw));
    if let Some(p) = after_panic {
        details["after_panic"] = json!(p.to_string());
    }
    let id = meta
        .id
        .parse::<EventId>()
        .unwrap_or_else(|_| EventId::generate(raw.time_ms));
    let fingerprint =
        fingerprint::fingerprint(&meta.logger, EventKind::Crash, &message, &[], &frames, None);
    let complete = frames.iter().all(|f| f.function.is_some());
    let backtrace_hash =
        (!frames.is_empty()).then(|| Arc::from(fingerprint::backtrace_hash(&frames)));
    let mut extra = Map::new();
    extra.insert("crash".to_owned(), details.clone());
    let mut event = Event {
        id,
        timestamp_ms: raw.time_ms,
        logger: meta.logger.clone(),
        level: Level::Fatal,
        kind: EventKind::Crash,
        message,
        chain: Vec::new(),
        location: None,
        thread_name: thread_name(raw),
        thread_id: u64::from(raw.tid),
        pid: meta.pid,
        app_name: meta.app_name.clone(),
        release: meta.release.clone(),
        environment: meta.environment.clone(),
        tags: Default::default(),
        extra,
        frames: Arc::from(frames),
        backtrace_hash,
        symbols_resolved: complete,
        fingerprint,
        custom_fingerprint: false,
        earlier_fingerprints: Vec::new(),
        snapshot: None,
        alert_channels: meta.channels.clone(),
        breadcrumbs: file.breadcrumbs.clone(),
        redactions: 0,
        origin: false,
        context: Default::default(),
        attachments: minidump(file).into_iter().collect(),
    };
    event.redactions = redactor.event(&mut event);
    Some(CrashEvent {
        event,
        after_panic,
        details,
    })
}

/// The crash's minidump, as the event's attachment (`None` when the
/// file's records make none, or the file asked for none).
fn minidump(file: &CrashFile) -> Option<StoredAttachment> {
    if file.meta.no_minidump {
        return None;
    }
    let data = crate::crash::minidump::write(file)?;
    Some(StoredAttachment {
        name: crate::event::attachment::MINIDUMP_NAME.to_owned(),
        content_type: Some(crate::event::attachment::MINIDUMP_TYPE.to_owned()),
        size: data.len() as u64,
        data: Some(data),
        dropped: None,
    })
}

/// The logger the crash-loop events are recorded under.
pub(crate) const CRASH_LOOP_LOGGER: &str = "crash_loops";

/// One occurrence of the crash-loop group: `runs` runs crashed or ended
/// abnormally within `window`. Every occurrence has the same fingerprint,
/// so the group's alert policy gives one alert, then digests while the
/// loop lasts.
pub(crate) fn crash_loop_event(
    runs: u64,
    window: std::time::Duration,
    channels: Vec<String>,
) -> Event {
    let secs = window.as_secs();
    let window_text = if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    };
    let mut extra = Map::new();
    extra.insert("crashed_runs".to_owned(), json!(runs));
    extra.insert("window_secs".to_owned(), json!(window.as_secs()));
    super::own::event(
        CRASH_LOOP_LOGGER,
        Level::Fatal,
        format!("crash loop: {runs} runs crashed or ended abnormally within {window_text} (errsnap runs)"),
        "crash loop",
        extra,
        channels,
    )
}

/// The raw frames of a record: unwound with the modules' unwind tables on
/// Linux x86_64; elsewhere (or when nothing unwinds) the faulting
/// instruction alone.
fn unwind(modules: &[ModuleEntry], rec: &Record) -> Vec<Frame> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    let mut addrs = walk(modules, rec);
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    let mut addrs: Vec<u64> = Vec::new();
    if addrs.is_empty() && rec.raw.pc != 0 {
        addrs.push(rec.raw.pc);
    }
    addrs
        .into_iter()
        .map(|a| {
            let m = modules.iter().find(|m| (m.start..m.end).contains(&a));
            Frame {
                function: None,
                file: None,
                line: None,
                column: None,
                address: a,
                module: m.map(|m| m.path.clone()),
                module_offset: m.map(|m| a.wrapping_sub(m.base)),
                build_id: m.and_then(|m| m.build_id.clone()),
                in_app: false,
            }
        })
        .collect()
}

/// Walks the copied stack with framehop: the first address is the
/// faulting instruction, the others return addresses.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn walk(modules: &[ModuleEntry], rec: &Record) -> Vec<u64> {
    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{Module, Unwinder};

    let mut unwinder: UnwinderX86_64<Vec<u8>> = UnwinderX86_64::new();
    for m in modules {
        if let Some(info) = unwind_sections(m) {
            unwinder.add_module(Module::new(m.path.clone(), m.start..m.end, m.base, info));
        }
    }
    let r = &rec.raw;
    let (at, stack) = (r.stack_at, &rec.stack);
    let mut read = |addr: u64| -> Result<u64, ()> {
        let off = addr.checked_sub(at).ok_or(())? as usize;
        let b = stack.get(off..off.checked_add(8).ok_or(())?).ok_or(())?;
        Ok(u64::from_ne_bytes(b.try_into().map_err(|_| ())?))
    };
    let mut cache = CacheX86_64::new();
    let mut frames = unwinder.iter_frames(
        r.pc,
        UnwindRegsX86_64::new(r.pc, r.sp, r.fp),
        &mut cache,
        &mut read,
    );
    let mut out = Vec::new();
    while out.len() < MAX_FRAMES {
        match frames.next() {
            Ok(Some(f)) => out.push(f.address()),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// A module's `.eh_frame_hdr` and `.eh_frame`, read from its file if the
/// file's build-id is the one the crashed process had loaded.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn unwind_sections(m: &ModuleEntry) -> Option<framehop::ExplicitModuleSectionInfo<Vec<u8>>> {
    use object::{Object, ObjectSection};
    let path = std::path::Path::new(&m.path);
    if let Some(want) = &m.build_id {
        let have = crate::pipeline::symbols::build_id_of_file(path).ok()??;
        if &have != want {
            return None;
        }
    }
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: a read-only private mapping of a file we only read; a file
    // truncated meanwhile could fault, as for every mapped symbol file.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let obj = object::File::parse(&*map).ok()?;
    let section = |name: &str| {
        let s = obj.section_by_name(name)?;
        let data = s.data().ok()?.to_vec();
        Some((s.address()..s.address() + data.len() as u64, data))
    };
    let (hdr_svma, hdr) = section(".eh_frame_hdr")?;
    let (eh_svma, eh) = section(".eh_frame")?;
    Some(framehop::ExplicitModuleSectionInfo {
        base_svma: 0,
        eh_frame_hdr_svma: Some(hdr_svma),
        eh_frame_hdr: Some(hdr),
        eh_frame_svma: Some(eh_svma),
        eh_frame: Some(eh),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(signal: i32, code: i32, addr: u64, sp: u64) -> RawRecord {
        let mut r = RawRecord::zeroed();
        r.signal = signal;
        r.code = code;
        r.fault_addr = addr;
        r.sp = sp;
        r
    }

    #[test]
    fn signals_are_described_in_words() {
        assert_eq!(
            describe(&rec(11, 1, 0, 0x7000)),
            "SIGSEGV at 0x0 (address not mapped)"
        );
        assert_eq!(
            describe(&rec(11, 2, 0x5000, 0x9000_0000)),
            "SIGSEGV at 0x5000 (invalid permissions)"
        );
        assert_eq!(
            describe(&rec(8, 1, 0x40, 0)),
            "SIGFPE at 0x40 (integer divide by zero)"
        );
        assert_eq!(
            describe(&rec(4, 2, 0x40, 0)),
            "SIGILL at 0x40 (illegal operand)"
        );
        assert_eq!(
            describe(&rec(7, 2, 0x10, 0)),
            "SIGBUS at 0x10 (nonexistent physical address)"
        );
        assert_eq!(describe(&rec(5, 0x80, 0, 0)), "SIGTRAP (breakpoint)");
        assert_eq!(describe(&rec(6, -6, 0, 0)), "SIGABRT (abort)");
        let mut sent = rec(11, 0, 0, 0);
        sent.sender_pid = 77;
        assert_eq!(describe(&sent), "SIGSEGV sent by pid 77");
        assert_eq!(signal_name(31), "signal 31");
    }

    #[test]
    fn a_fault_beside_the_stack_pointer_is_a_stack_overflow() {
        let sp = 0x7fff_0000_1000;
        assert!(is_stack_overflow(&rec(11, 1, sp - 8, sp)));
        assert!(is_stack_overflow(&rec(11, 2, sp, sp)));
        assert!(!is_stack_overflow(&rec(11, 1, 0, sp)));
        assert!(!is_stack_overflow(&rec(11, 1, sp - 8192, sp)));
        assert!(!is_stack_overflow(&rec(11, 1, sp + 8192, sp)));
        assert!(!is_stack_overflow(&rec(6, 1, sp, sp)));
        assert!(
            !is_stack_overflow(&rec(11, 0, sp, sp)),
            "a sent signal has no fault"
        );
        let records = [
            Record {
                raw: rec(11, 1, sp - 8, sp),
                stack: Vec::new(),
            },
            Record {
                raw: rec(6, -6, 0, 0),
                stack: Vec::new(),
            },
        ];
        assert_eq!(
            message(&records),
            format!(
                "stack overflow: SIGSEGV at {:#x} (address not mapped), then SIGABRT (abort)",
                sp - 8
            )
        );
    }

    #[test]
    fn registers_are_named_per_architecture() {
        let mut r = RawRecord::zeroed();
        r.arch = layout::ARCH_X86_64;
        r.nregs = 23;
        r.regs[16] = 0x1234;
        let m = registers(&r);
        assert_eq!(m["rip"], "0x0000000000001234");
        assert_eq!(m.len(), 23);
        r.arch = 0;
        assert!(registers(&r).is_empty());
    }
}
