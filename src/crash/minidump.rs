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
//! exception (signal, code, address), misc info (pid), and the memory list
//! (the stack again, where readers look for it).

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
/// `PROCESSOR_ARCHITECTURE_AMD64`.
const ARCH_AMD64: u16 = 9;
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

/// The minidump of `f`'s first signal (`None`: no record, or a CPU this
/// writer does not lay out yet: aarch64).
pub(crate) fn write(f: &CrashFile) -> Option<Vec<u8>> {
    let rec: &Record = f.records.first()?;
    let raw = &rec.raw;
    if raw.arch != layout::ARCH_X86_64 || raw.nregs < 19 {
        return None;
    }
    const STREAMS: u32 = 6;
    let mut out = Out(vec![0u8; 32 + 12 * STREAMS as usize]);
    let mut dir: Vec<(u32, u32, u32)> = Vec::new();

    // System info: AMD64, Linux, the CPU count unknown.
    let csd = out.string("Linux");
    let sys = Fields::default()
        .u16(ARCH_AMD64)
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

    let context = context_amd64(raw);
    let ctx_at = out.put(&context);
    let stack_at = out.put(&rec.stack);
    let stack = Fields::default()
        .u64(raw.stack_at)
        .u32(rec.stack.len() as u32)
        .u32(stack_at);
    let thread = Fields::default()
        .u32(1)
        .u32(raw.tid)
        .u32(0)
        .u32(0)
        .u32(0)
        .u64(0)
        .u64(raw.stack_at)
        .u32(rec.stack.len() as u32)
        .u32(stack_at)
        .u32(CONTEXT_AMD64_SIZE as u32)
        .u32(ctx_at);
    dir.push((THREAD_LIST, thread.0.len() as u32, out.put(&thread.0)));
    let mut memory = 1u32.to_le_bytes().to_vec();
    memory.extend_from_slice(&stack.0);
    dir.push((MEMORY_LIST, memory.len() as u32, out.put(&memory)));

    // Modules: base, size, name, the build-id as the CodeView record.
    let mut entries = Vec::new();
    for m in &f.modules {
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
        .u32(CONTEXT_AMD64_SIZE as u32)
        .u32(ctx_at);
    dir.push((EXCEPTION, exception.0.len() as u32, out.put(&exception.0)));

    let misc = Fields::default()
        .u32(24)
        .u32(0x1) // the process id is set
        .u32(f.meta.pid)
        .u32(0)
        .u32(0)
        .u32(0);
    dir.push((MISC_INFO, misc.0.len() as u32, out.put(&misc.0)));

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
}
