//! A crash file as a standard minidump (MDMP), the format crash engineers'
//! tools read (rust-minidump, Breakpad, symbolic, Sentry): made afterwards
//! from what the signal handler wrote, with no helper process and no
//! ptrace. Only the crashing thread is recorded; never the environment or
//! the command line.
//!
//! Layout (little-endian): the 32-byte header, the stream directory, then
//! the streams: system info (platform Linux, so readers name the signal),
//! the thread list (the crashing thread, its context and copied stack), the
//! module list (each ELF build-id as the CodeView record `LEBp`), the
//! exception (signal, code, address), misc info (pid, start time), the
//! memory list (the stack again, where readers look for it), and the
//! handler's copies of `/proc/self/maps` and `/proc/self/status`.
//!
//! Only what reads as a whole goes in: a record whose registers are short
//! gives no dump; modules that are empty, too large or overlap an earlier
//! one are left out; a stack copy that is empty is not listed.

use super::file::{CrashFile, Record};
use super::layout;

const SIGNATURE: u32 = 0x504d_444d;
const VERSION: u32 = 0xa793;
const THREAD_LIST: u32 = 3;
const MODULE_LIST: u32 = 4;
const MEMORY_LIST: u32 = 5;
const EXCEPTION: u32 = 6;
const SYSTEM_INFO: u32 = 7;
const MISC_INFO: u32 = 15;
/// Breakpad's `MD_LINUX_PROC_STATUS`: `/proc/self/status` as text.
const LINUX_PROC_STATUS: u32 = 0x4767_0004;
/// Breakpad's `MD_LINUX_MAPS`: `/proc/self/maps` as text.
const LINUX_MAPS: u32 = 0x4767_0009;
/// `PROCESSOR_ARCHITECTURE_AMD64`.
const ARCH_AMD64: u16 = 9;
/// `PROCESSOR_ARCHITECTURE_ARM64`.
const ARCH_ARM64: u16 = 12;
/// `CONTEXT_ARM64 | CONTROL | INTEGER`.
const CONTEXT_ARM64_INTEGER: u32 = 0x0040_0003;
/// The size of a `CONTEXT_ARM64` (912 bytes).
const CONTEXT_ARM64_SIZE: usize = 912;
/// `MINIDUMP_MISC1_PROCESS_ID` and `MINIDUMP_MISC1_PROCESS_TIMES`.
const MISC_PROCESS_ID: u32 = 0x1;
const MISC_PROCESS_TIMES: u32 = 0x2;
/// Breakpad's Linux platform id.
const PLATFORM_LINUX: u32 = 0x8201;
/// `CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS`... the full context.
const CONTEXT_AMD64_FULL: u32 = 0x0010_000b;
/// The size of a `CONTEXT_AMD64` (readers recognise it by its size).
const CONTEXT_AMD64_SIZE: usize = 1232;
/// `'LEBp'`: an ELF build-id CodeView record.
const CV_ELF: u32 = 0x4270_454c;

/// A dump being laid out: bytes appended at 8-byte-aligned offsets.
struct Out(Vec<u8>);

impl Out {
    fn align(&mut self) {
        while !self.0.len().is_multiple_of(8) {
            self.0.push(0);
        }
    }
    /// Appends `bytes`; their offset.
    fn put(&mut self, bytes: &[u8]) -> u32 {
        self.align();
        let at = self.0.len() as u32;
        self.0.extend_from_slice(bytes);
        at
    }
    /// A `MINIDUMP_STRING`: byte length, then UTF-16LE (and a NUL).
    fn string(&mut self, s: &str) -> u32 {
        let utf16: Vec<u16> = s.encode_utf16().collect();
        let mut b = ((utf16.len() * 2) as u32).to_le_bytes().to_vec();
        for u in utf16.iter().chain(std::iter::once(&0)) {
            b.extend_from_slice(&u.to_le_bytes());
        }
        self.put(&b)
    }
}

/// Little-endian fields, in order.
#[derive(Default)]
struct Fields(Vec<u8>);

impl Fields {
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    fn zeros(mut self, n: usize) -> Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// The crashing thread's `CONTEXT_AMD64` from glibc's `gregs` order (R8..R15,
/// RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, RIP, EFL, CSGSFS, ...).
fn context_amd64(r: &layout::RawRecord) -> Vec<u8> {
    let g = |i: usize| r.regs[i];
    let mut c = vec![0u8; CONTEXT_AMD64_SIZE];
    let mut put = |at: usize, v: &[u8]| c[at..at + v.len()].copy_from_slice(v);
    put(0x30, &CONTEXT_AMD64_FULL.to_le_bytes());
    let csgsfs = g(18);
    put(0x38, &(csgsfs as u16).to_le_bytes()); // cs
    put(0x3e, &((csgsfs >> 32) as u16).to_le_bytes()); // fs
    put(0x40, &((csgsfs >> 16) as u16).to_le_bytes()); // gs
    put(0x44, &(g(17) as u32).to_le_bytes()); // eflags
                                              // rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15, rip.
    let order = [13, 14, 12, 11, 15, 10, 9, 8, 0, 1, 2, 3, 4, 5, 6, 7, 16];
    for (i, reg) in order.iter().enumerate() {
        put(0x78 + 8 * i, &g(*reg).to_le_bytes());
    }
    c
}

/// The crashing thread's `CONTEXT_ARM64` from x0..x30, sp, pc, pstate.
fn context_arm64(r: &layout::RawRecord) -> Vec<u8> {
    let mut c = vec![0u8; CONTEXT_ARM64_SIZE];
    let mut put = |at: usize, v: &[u8]| c[at..at + v.len()].copy_from_slice(v);
    put(0, &CONTEXT_ARM64_INTEGER.to_le_bytes());
    put(4, &(r.regs[33] as u32).to_le_bytes()); // cpsr
    for i in 0..31 {
        put(8 + 8 * i, &r.regs[i].to_le_bytes());
    }
    put(256, &r.regs[31].to_le_bytes()); // sp
    put(264, &r.regs[32].to_le_bytes()); // pc
    c
}

/// The record's CPU, as the dump names it, and its context (`None`: a CPU
/// not laid out here, or fewer registers than the context needs).
fn context(raw: &layout::RawRecord) -> Option<(u16, Vec<u8>)> {
    match raw.arch {
        layout::ARCH_X86_64 if raw.nregs >= 19 => Some((ARCH_AMD64, context_amd64(raw))),
        layout::ARCH_AARCH64 if raw.nregs >= 34 => Some((ARCH_ARM64, context_arm64(raw))),
        _ => None,
    }
}

/// The streams' count at most (the directory is laid out first).
const MAX_STREAMS: usize = 8;

/// The minidump of `f`'s first signal (`None`: no record, or registers
/// that do not make a context).
pub(crate) fn write(f: &CrashFile) -> Option<Vec<u8>> {
    let rec: &Record = f.records.first()?;
    let raw = &rec.raw;
    let (cpu, context) = context(raw)?;
    let mut out = Out(vec![0u8; 32 + 12 * MAX_STREAMS]);
    let mut dir: Vec<(u32, u32, u32)> = Vec::new();

    // System info: the CPU, Linux, the CPU count unknown.
    let csd = out.string("Linux");
    let sys = Fields::default()
        .u16(cpu)
        .u16(0)
        .u16(0)
        .zeros(2) // processors, product type
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(PLATFORM_LINUX)
        .u32(csd)
        .u16(0)
        .u16(0)
        .zeros(24);
    dir.push((SYSTEM_INFO, sys.0.len() as u32, out.put(&sys.0)));

    let ctx_size = context.len() as u32;
    let ctx_at = out.put(&context);
    // An empty stack copy (the handler could read none) is not listed:
    // readers refuse an empty memory range.
    let stack = &rec.stack[..stack_len(f, rec)];
    let stack_base = if stack.is_empty() { 0 } else { raw.stack_at };
    let stack_at = if stack.is_empty() { 0 } else { out.put(stack) };
    let stack_desc = Fields::default()
        .u64(stack_base)
        .u32(stack.len() as u32)
        .u32(stack_at);
    // One thread: its id, suspend count, priority class and priority,
    // TEB, then its stack and context.
    let thread = Fields::default()
        .u32(1)
        .u32(raw.tid)
        .u32(0)
        .u32(0)
        .u32(0)
        .u64(0)
        .bytes(&stack_desc.0)
        .u32(ctx_size)
        .u32(ctx_at);
    dir.push((THREAD_LIST, thread.0.len() as u32, out.put(&thread.0)));
    let mut memory = u32::from(!stack.is_empty()).to_le_bytes().to_vec();
    if !stack.is_empty() {
        memory.extend_from_slice(&stack_desc.0);
    }
    dir.push((MEMORY_LIST, memory.len() as u32, out.put(&memory)));

    // Modules: base, size, name, the build-id as the CodeView record.
    let mut entries = Vec::new();
    for m in modules(f) {
        let name = out.string(&m.path);
        let id = m
            .build_id
            .as_deref()
            .and_then(hex_bytes)
            .unwrap_or_default();
        let mut cv = CV_ELF.to_le_bytes().to_vec();
        cv.extend_from_slice(&id);
        let cv_at = out.put(&cv);
        let e = Fields::default()
            .u64(m.start)
            .u32(m.end.saturating_sub(m.start) as u32)
            .u32(0)
            .u32(0)
            .u32(name)
            .zeros(13 * 4)
            .u32(cv.len() as u32)
            .u32(cv_at)
            .zeros(8 + 16);
        entries.push(e.0);
    }
    let mut list = (entries.len() as u32).to_le_bytes().to_vec();
    for e in entries {
        list.extend_from_slice(&e);
    }
    dir.push((MODULE_LIST, list.len() as u32, out.put(&list)));

    let exception = Fields::default()
        .u32(raw.tid)
        .u32(0)
        .u32(raw.signal as u32)
        .u32(raw.code as u32)
        .u64(0)
        .u64(raw.fault_addr)
        .u32(0)
        .u32(0)
        .zeros(15 * 8)
        .u32(ctx_size)
        .u32(ctx_at);
    dir.push((EXCEPTION, exception.0.len() as u32, out.put(&exception.0)));

    // Misc info, its first form (24 bytes): the pid, the start time.
    let started = f.meta.started_at_secs.and_then(|s| u32::try_from(s).ok());
    let flags = MISC_PROCESS_ID | started.map_or(0, |_| MISC_PROCESS_TIMES);
    let misc = Fields::default()
        .u32(24)
        .u32(flags)
        .u32(f.meta.pid)
        .u32(started.unwrap_or(0))
        .u32(0)
        .u32(0);
    dir.push((MISC_INFO, misc.0.len() as u32, out.put(&misc.0)));
    for (kind, text) in [(LINUX_MAPS, &f.maps), (LINUX_PROC_STATUS, &f.status)] {
        if !text.is_empty() {
            dir.push((kind, text.len() as u32, out.put(text)));
        }
    }

    let header = Fields::default()
        .u32(SIGNATURE)
        .u32(VERSION)
        .u32(dir.len() as u32)
        .u32(32)
        .u32(0)
        .u32((raw.time_ms / 1000) as u32)
        .u64(0);
    out.0[..32].copy_from_slice(&header.0);
    for (i, (kind, size, at)) in dir.iter().enumerate() {
        let e = Fields::default().u32(*kind).u32(*size).u32(*at);
        out.0[32 + 12 * i..44 + 12 * i].copy_from_slice(&e.0);
    }
    Some(out.0)
}

/// How much of the record's stack copy a dump may hold: never the command
/// line's or the environment's strings (they hold secrets), which sit at
/// the top of the main thread's stack; for the main thread of a file
/// that does not say where they start, none.
fn stack_len(f: &CrashFile, rec: &Record) -> usize {
    let len = rec.stack.len().min(layout::STACK_BYTES as usize);
    let from = rec.raw.stack_at;
    match f.meta.args_at {
        Some(args) if args >= from => len.min(usize::try_from(args - from).unwrap_or(len)),
        // The copy starts past them: not the main thread's stack.
        Some(_) => len,
        None if rec.raw.tid == f.meta.pid => 0,
        None => len,
    }
}

/// The modules a dump lists: by start address, each with a size that fits
/// (not empty, under 4 GiB), none overlapping the one before.
fn modules(f: &CrashFile) -> Vec<&super::ModuleEntry> {
    let mut all: Vec<_> = f
        .modules
        .iter()
        .filter(|m| m.end > m.start && m.end - m.start <= u64::from(u32::MAX))
        .collect();
    all.sort_by_key(|m| m.start);
    let mut kept: Vec<&super::ModuleEntry> = Vec::with_capacity(all.len());
    for m in all {
        if kept.last().is_none_or(|last| m.start >= last.end) {
            kept.push(m);
        }
    }
    kept
}

/// The bytes of a hex build-id (`None`: not hex).
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::{CrashMeta, ModuleEntry};
    use minidump::{
        Minidump, MinidumpException, MinidumpModuleList, MinidumpSystemInfo, MinidumpThreadList,
        Module,
    };

    fn crash(signal: i32, code: i32) -> CrashFile {
        let mut raw = layout::RawRecord::zeroed();
        raw.magic = layout::RECORD_MAGIC;
        raw.signal = signal;
        raw.code = code;
        raw.tid = 4242;
        raw.arch = layout::ARCH_X86_64;
        raw.fault_addr = 0x10;
        raw.time_ms = 1_800_000_000_000;
        raw.nregs = 23;
        raw.regs[16] = 0x5555_0000_1234; // rip
        raw.regs[15] = 0x7ffc_0000_1000; // rsp
        raw.regs[10] = 0x7ffc_0000_1040; // rbp
        raw.stack_at = 0x7ffc_0000_1000;
        raw.stack_len = 256;
        CrashFile {
            meta: CrashMeta {
                pid: 777,
                ..Default::default()
            },
            modules: vec![ModuleEntry {
                path: "/usr/bin/app".into(),
                base: 0x5555_0000_0000,
                start: 0x5555_0000_0000,
                end: 0x5555_0010_0000,
                build_id: Some("000102030405060708090a0b0c0d0e0f10111213".into()),
            }],
            records: vec![Record {
                raw,
                stack: vec![0xab; 256],
            }],
            readings: Vec::new(),
            breadcrumbs: Vec::new(),
            maps: Vec::new(),
            status: Vec::new(),
        }
    }

    #[test]
    fn rust_minidump_reads_the_signal_the_thread_and_the_modules() {
        let bytes = write(&crash(11, 1)).unwrap();
        let dump = Minidump::read(bytes).unwrap();
        let sys: MinidumpSystemInfo = dump.get_stream().unwrap();
        assert_eq!(sys.os, minidump::system_info::Os::Linux);
        let exc: MinidumpException<'_> = dump.get_stream().unwrap();
        assert_eq!(
            exc.get_crash_reason(sys.os, sys.cpu).to_string(),
            "SIGSEGV / SEGV_MAPERR"
        );
        assert_eq!(exc.get_crash_address(sys.os, sys.cpu), 0x10);
        assert_eq!(exc.get_crashing_thread_id(), 4242);
        let threads: MinidumpThreadList<'_> = dump.get_stream().unwrap();
        let t = &threads.threads[0];
        let ctx = t.context(&sys, None).unwrap();
        assert_eq!(ctx.get_instruction_pointer(), 0x5555_0000_1234);
        assert_eq!(ctx.get_stack_pointer(), 0x7ffc_0000_1000);
        let modules: MinidumpModuleList = dump.get_stream().unwrap();
        let m = modules.iter().next().unwrap();
        assert_eq!(m.code_file(), "/usr/bin/app");
        assert_eq!(
            m.code_identifier().unwrap().to_string(),
            "000102030405060708090a0b0c0d0e0f10111213"
        );
        assert_eq!(
            m.debug_identifier().unwrap().breakpad().to_string(),
            "030201000504070608090A0B0C0D0E0F0"
        );
    }

    #[test]
    fn an_abort_reads_as_sigabrt() {
        let bytes = write(&crash(6, -6)).unwrap();
        let dump = Minidump::read(bytes).unwrap();
        let sys: MinidumpSystemInfo = dump.get_stream().unwrap();
        let exc: MinidumpException<'_> = dump.get_stream().unwrap();
        assert!(exc
            .get_crash_reason(sys.os, sys.cpu)
            .to_string()
            .starts_with("SIGABRT"));
    }

    #[test]
    fn an_aarch64_record_reads_as_arm64_with_its_pc_and_sp() {
        let mut f = crash(11, 2);
        let raw = &mut f.records[0].raw;
        raw.arch = layout::ARCH_AARCH64;
        raw.regs = [0; layout::REGS];
        for i in 0..31 {
            raw.regs[i] = 0x1000 + i as u64;
        }
        raw.regs[31] = 0x7ffc_0000_1000; // sp
        raw.regs[32] = 0x5555_0000_4321; // pc
        raw.regs[33] = 0x6000_0000; // pstate
        raw.nregs = 34;
        let dump = Minidump::read(write(&f).unwrap()).unwrap();
        let sys: MinidumpSystemInfo = dump.get_stream().unwrap();
        assert_eq!(sys.cpu, minidump::system_info::Cpu::Arm64);
        let exc: MinidumpException<'_> = dump.get_stream().unwrap();
        assert_eq!(
            exc.get_crash_reason(sys.os, sys.cpu).to_string(),
            "SIGSEGV / SEGV_ACCERR"
        );
        let threads: MinidumpThreadList<'_> = dump.get_stream().unwrap();
        let ctx = threads.threads[0].context(&sys, None).unwrap();
        assert_eq!(ctx.get_instruction_pointer(), 0x5555_0000_4321);
        assert_eq!(ctx.get_stack_pointer(), 0x7ffc_0000_1000);
        assert_eq!(ctx.get_register("x29"), Some(0x1000 + 29));
        assert_eq!(ctx.get_register("lr"), Some(0x1000 + 30));
        // Fewer registers than the context needs: no dump.
        f.records[0].raw.nregs = 33;
        assert!(write(&f).is_none());
    }

    fn stack_bytes(f: &CrashFile) -> u32 {
        let dump = Minidump::read(write(f).unwrap()).unwrap();
        let threads: MinidumpThreadList<'_> = dump.get_stream().unwrap();
        threads.threads[0].raw.stack.memory.data_size
    }

    #[test]
    fn the_stack_copy_stops_below_the_command_line_and_environment() {
        let mut f = crash(11, 1);
        // Another thread's stack, nothing said: whole.
        assert_eq!(stack_bytes(&f), 256);
        // The strings start inside the copy: it ends there.
        f.meta.args_at = Some(0x7ffc_0000_1000 + 100);
        assert_eq!(stack_bytes(&f), 100);
        f.meta.args_at = Some(0x7ffc_0000_1000);
        assert_eq!(stack_bytes(&f), 0);
        // Above the copy, or below its start (another stack): whole.
        f.meta.args_at = Some(0x7ffc_0000_1000 + 256);
        assert_eq!(stack_bytes(&f), 256);
        f.meta.args_at = Some(0x7ffc_0000_0fff);
        assert_eq!(stack_bytes(&f), 256);
        // The main thread of a file that does not say where they are: none.
        f.meta.args_at = None;
        f.records[0].raw.tid = f.meta.pid;
        assert_eq!(stack_bytes(&f), 0);
        let dump = Minidump::read(write(&f).unwrap()).unwrap();
        let memory: minidump::MinidumpMemoryList<'_> = dump.get_stream().unwrap();
        assert_eq!(memory.iter().count(), 0, "an empty range is not listed");
    }

    #[test]
    fn modules_that_are_empty_huge_or_overlapping_are_left_out() {
        let mut f = crash(11, 1);
        let m = |path: &str, start: u64, end: u64| ModuleEntry {
            path: path.into(),
            base: start,
            start,
            end,
            build_id: Some("zz".into()),
        };
        f.modules = vec![
            m("/c", 0x3000, 0x4000),
            m("/a", 0x1000, 0x2000),
            m("/overlaps-a", 0x1800, 0x2800),
            m("/empty", 0x5000, 0x5000),
            m("/backwards", 0x7000, 0x6000),
            m("/huge", 0x10_0000_0000, 0x30_0000_0000),
            m("/b", 0x2000, 0x3000),
        ];
        let dump = Minidump::read(write(&f).unwrap()).unwrap();
        let modules: MinidumpModuleList = dump.get_stream().unwrap();
        let names: Vec<String> = modules.iter().map(|m| m.code_file().into_owned()).collect();
        assert_eq!(names, ["/a", "/b", "/c"]);
        // As written (a reader may hide an empty or huge one itself).
        let raw = dump.get_raw_stream(MODULE_LIST).unwrap();
        assert_eq!(u32::from_le_bytes(raw[..4].try_into().unwrap()), 3);
        // A build-id that is not hex: an empty CodeView id, still listed.
        assert!(modules
            .iter()
            .all(|m| m.code_identifier().is_none_or(|c| c.as_str().is_empty())));
    }

    #[test]
    fn the_process_streams_and_start_time_are_written_when_known() {
        let mut f = crash(11, 1);
        let dump = Minidump::read(write(&f).unwrap()).unwrap();
        assert!(dump.get_raw_stream(LINUX_MAPS).is_err());
        let misc: minidump::MinidumpMiscInfo = dump.get_stream().unwrap();
        assert_eq!(misc.raw.process_id(), Some(&777));
        assert_eq!(misc.raw.process_create_time(), None);
        f.maps = b"5555-6666 r-xp 00000000 08:01 1 /usr/bin/app\n".to_vec();
        f.status = b"Name:\tapp\nPid:\t777\n".to_vec();
        f.meta.started_at_secs = Some(1_800_000_000);
        let dump = Minidump::read(write(&f).unwrap()).unwrap();
        assert_eq!(dump.get_raw_stream(LINUX_MAPS).unwrap(), &f.maps[..]);
        assert_eq!(
            dump.get_raw_stream(LINUX_PROC_STATUS).unwrap(),
            &f.status[..]
        );
        let misc: minidump::MinidumpMiscInfo = dump.get_stream().unwrap();
        assert_eq!(misc.raw.process_create_time(), Some(&1_800_000_000));
    }
}
