//! The signal handler (Linux). Async-signal-safe only: atomics, `pwrite`,
//! `write`, `open`, `read`, `close`, `clock_gettime`, `prctl`, `gettid`,
//! `sigaction`, `tgkill`. No allocation, no lock, nothing that could wait.
//!
//! It records into the crash file armed at start (see `layout`), then
//! hands the signal to whatever handled it before (Rust's stack-overflow
//! handler, another library's) or, when that was the default action, puts
//! the default back and raises the signal again: the exit status and the
//! core dump are what they would have been without errsnap.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64};
use std::sync::OnceLock;

use super::layout::{self, RawRecord};

/// The signals handled.
pub(crate) const SIGNALS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGTRAP,
];

/// The armed crash file's descriptor (-1: none).
pub(super) static FD: AtomicI32 = AtomicI32::new(-1);
/// The process that armed it (a forked child does not write its parent's).
pub(super) static PID: AtomicU32 = AtomicU32::new(0);
/// The next record slot to take.
pub(super) static NEXT_SLOT: AtomicU32 = AtomicU32::new(0);
/// Bit `i`: record `i` written.
pub(super) static DONE: AtomicU32 = AtomicU32::new(0);
/// The last panic recorded by the panic hook: its id, thread, and time.
pub(super) static PANIC_ID: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
pub(super) static PANIC_TID: AtomicU32 = AtomicU32::new(0);
pub(super) static PANIC_AT_MS: AtomicI64 = AtomicI64::new(0);
/// The writer's last sign of life.
pub(super) static SIGN_RSS: AtomicU64 = AtomicU64::new(0);
pub(super) static SIGN_CPU: AtomicU64 = AtomicU64::new(u64::MAX);
pub(super) static SIGN_AT_MS: AtomicI64 = AtomicI64::new(0);
/// The end-user message (leaked, never freed: a handler may be reading an
/// older one), printed once. One pointer, so text and length always match.
pub(super) static MESSAGE: AtomicPtr<&'static [u8]> = AtomicPtr::new(std::ptr::null_mut());

/// The system's page size, read at arming (`sysconf` is not
/// async-signal-safe): 4 KiB on x86_64, 4, 16 or 64 KiB on aarch64.
static PAGE_SIZE: AtomicU64 = AtomicU64::new(4096);

/// The page size (read once, outside any handler).
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n >= 4096).unwrap_or(4096)
}

/// The alternate stack errsnap gives a thread: room for a stack overflow's
/// two nested signal frames (Rust's report and ours) whatever the page
/// size and the kernel's own minimum for a signal frame (`AT_MINSIGSTKSZ`,
/// large with SVE on aarch64).
fn alt_stack_size(page: u64) -> usize {
    // SAFETY: getauxval has no preconditions (0 when the kernel gives none).
    let min_frame = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) };
    let size = (64 * 1024u64).max(4 * page).max(8 * min_frame);
    // Whole pages.
    size.div_ceil(page).saturating_mul(page) as usize
}

/// A `SIGABRT` this long after a panic on the same thread is that panic's
/// end (`panic = "abort"`, a panic while panicking).
const PANIC_LINK_MS: i64 = 60_000;

/// The handlers that were there before ours, per signal.
static PREVIOUS: OnceLock<[(libc::c_int, libc::sigaction); SIGNALS.len()]> = OnceLock::new();

/// Installs the handler for every signal in [`SIGNALS`] (once per
/// process), on the alternate signal stack.
pub(super) fn install() -> std::io::Result<()> {
    static RESULT: OnceLock<Result<(), i32>> = OnceLock::new();
    let r = RESULT.get_or_init(|| {
        PAGE_SIZE.store(page_size(), Relaxed);
        // SAFETY: plain libc calls on zero-initialised, then filled,
        // sigaction structs.
        unsafe {
            let mut previous = [(0, std::mem::zeroed::<libc::sigaction>()); SIGNALS.len()];
            for (i, &sig) in SIGNALS.iter().enumerate() {
                if libc::sigaction(sig, std::ptr::null(), &mut previous[i].1) != 0 {
                    return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
                }
                previous[i].0 = sig;
            }
            let _ = PREVIOUS.set(previous);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            for &sig in &SIGNALS {
                if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
                }
            }
        }
        Ok(())
    });
    ensure_alt_stack();
    r.map_err(std::io::Error::from_raw_os_error)
}

/// Gives the calling thread an alternate signal stack (64 KiB, more with
/// large pages: [`alt_stack_size`]) if it has none (a thread Rust did not
/// start) or a smaller one (Rust's own is `SIGSTKSZ`, 8 KiB: too small for
/// a stack overflow's two nested signal frames, Rust's report and ours),
/// with a guard page of the system's size below it. Rust frees only the
/// stack it made, so replacing it is safe.
fn ensure_alt_stack() {
    let page = page_size();
    let size = alt_stack_size(page);
    let guard = page as usize;
    // SAFETY: queries, then installs a fresh anonymous mapping (a guard
    // page below it) that is never unmapped: the thread may use it until
    // the process ends.
    unsafe {
        let mut cur: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut cur) != 0
            || cur.ss_flags & libc::SS_ONSTACK != 0
            || (cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_size >= size)
        {
            return;
        }
        let mem = libc::mmap(
            std::ptr::null_mut(),
            size + guard,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        libc::mprotect(mem, guard, libc::PROT_NONE);
        let st = libc::stack_t {
            ss_sp: mem.cast::<u8>().add(guard).cast(),
            ss_flags: 0,
            ss_size: size,
        };
        libc::sigaltstack(&st, std::ptr::null_mut());
    }
}

unsafe extern "C" fn on_signal(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo and ucontext.
    unsafe {
        let errno = *libc::__errno_location();
        let (slot, overflow) = record(sig, info, ctx);
        *libc::__errno_location() = errno;
        if overflow && small_alt_stack() {
            // Rust's handler is about to abort: a second signal frame would
            // not fit on this small alternate stack (the kernel would end
            // the process with SIGSEGV instead of SIGABRT). Let SIGABRT act
            // as it would have without errsnap; the overflow is recorded.
            restore(libc::SIGABRT);
        }
        chain(sig, info, ctx);
        // Still here, and the previous handler left ours installed: it
        // handled the signal (a runtime that traps SIGSEGV on purpose, a
        // handler that logs a sent signal): the process goes on, so this
        // was no crash.
        if let Some(slot) = slot {
            if still_ours(sig) {
                undo(slot);
            }
        }
    }
}

/// Whether our handler is still the one installed for `sig`.
fn still_ours(sig: libc::c_int) -> bool {
    // SAFETY: a query into a local.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut cur) == 0
            && cur.sa_sigaction == on_signal as *const () as usize
    }
}

/// Writes the done mask into the file. Two threads crashing at once each
/// write it; the loop ends when the mask written is the mask now, so the
/// last write is the fullest.
fn write_mask(fd: libc::c_int) {
    loop {
        let done = DONE.load(Acquire);
        // SAFETY: writes the mask's 4 bytes at its offset.
        unsafe {
            libc::pwrite(
                fd,
                (&done as *const u32).cast(),
                4,
                layout::DONE_AT as libc::off_t,
            )
        };
        if DONE.load(Acquire) == done {
            break;
        }
    }
}

/// Takes record `slot` back (its bit cleared in the file's mask).
fn undo(slot: u32) {
    let Some(fd) = Some(FD.load(Acquire)).filter(|fd| *fd >= 0) else {
        return;
    };
    DONE.fetch_and(!(1 << slot), AcqRel);
    write_mask(fd);
    let _ = NEXT_SLOT.compare_exchange(slot + 1, slot, AcqRel, Relaxed);
}

/// Whether this thread's alternate signal stack is smaller than the one
/// `ensure_alt_stack` gives (Rust's own, on threads other than the arming
/// one).
fn small_alt_stack() -> bool {
    // SAFETY: a query into a local.
    unsafe {
        let mut cur: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut cur) == 0 && cur.ss_size < 32 * 1024
    }
}

/// Puts back the handler `sig` had before errsnap's.
fn restore(sig: libc::c_int) {
    if let Some((_, old)) = PREVIOUS
        .get()
        .and_then(|p| p.iter().find(|(s, _)| *s == sig))
    {
        // SAFETY: reinstalls a saved action.
        unsafe { libc::sigaction(sig, old, std::ptr::null_mut()) };
    }
}

fn gettid() -> u32 {
    // SAFETY: a plain system call.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: async-signal-safe; writes `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Writes one record (its own frame, so its stack is given back before the
/// previous handler runs). Returns the record's slot, and whether the fault
/// looks like a stack overflow (a SIGSEGV or SIGBUS within a page of the
/// stack pointer).
#[inline(never)]
// Long by design: runs in the signal handler, its steps in the order the
// crash file needs (checks, claim a slot, fill the record, copy the stack,
// write it, the mask last), each unsafe call beside its SAFETY note.
unsafe fn record(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) -> (Option<u32>, bool) {
    let fd = FD.load(Acquire);
    // SAFETY: getpid is async-signal-safe.
    if fd < 0 || unsafe { libc::getpid() } as u32 != PID.load(Relaxed) {
        return (None, false);
    }
    // A signal sent to a process that ignored it before errsnap: it still
    // is ignored, and nothing ends.
    // SAFETY: the kernel's siginfo.
    let sent = info.is_null() || unsafe { (*info).si_code } <= 0;
    let ignored = PREVIOUS
        .get()
        .and_then(|p| p.iter().find(|(s, _)| *s == sig))
        .is_some_and(|(_, a)| a.sa_sigaction == libc::SIG_IGN);
    if sent && ignored {
        return (None, false);
    }
    let slot = NEXT_SLOT.fetch_add(1, AcqRel);
    if slot >= layout::RECORDS {
        return (None, false);
    }
    let mut r = RawRecord::zeroed();
    r.magic = layout::RECORD_MAGIC;
    r.signal = sig;
    r.tid = gettid();
    r.time_ms = now_ms();
    if !info.is_null() {
        // SAFETY: the kernel's siginfo; `si_addr` is meaningful for faults
        // and `si_pid` for sent signals (read according to `si_code`).
        unsafe {
            r.code = (*info).si_code;
            if r.code <= 0 {
                r.sender_pid = (*info).si_pid();
            } else {
                r.fault_addr = (*info).si_addr() as u64;
            }
        }
    }
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer.
    unsafe { libc::prctl(libc::PR_GET_NAME, r.thread_name.as_mut_ptr()) };
    // SAFETY: the kernel's ucontext for this signal.
    unsafe { registers(&mut r, ctx) };
    let panic_at = PANIC_AT_MS.load(Relaxed);
    if sig == libc::SIGABRT
        && PANIC_TID.load(Relaxed) == r.tid
        && panic_at > 0
        && r.time_ms.saturating_sub(panic_at) < PANIC_LINK_MS
    {
        r.panic_id = [PANIC_ID[0].load(Relaxed), PANIC_ID[1].load(Relaxed)];
    }
    r.rss_bytes = SIGN_RSS.load(Relaxed);
    r.cpu_permille = SIGN_CPU.load(Relaxed);
    r.sign_at_ms = SIGN_AT_MS.load(Relaxed);
    let at = layout::record_at(slot);
    // SAFETY: pwrite from memory the kernel checks (EFAULT, never a fault).
    let (stack_at, stack_len) = unsafe { copy_stack(fd, r.sp, at + layout::RECORD_HEADER) };
    r.stack_at = stack_at;
    r.stack_len = stack_len;
    let bytes = r.as_bytes();
    // SAFETY: writes the record's bytes at its offset.
    unsafe { libc::pwrite(fd, bytes.as_ptr().cast(), bytes.len(), at as libc::off_t) };
    DONE.fetch_or(1 << slot, AcqRel);
    // The mask is written last, after the record.
    write_mask(fd);
    if slot == 0 {
        // The process as it is now, for the minidump made at import
        // (after the record: it counts even if these fail). Never the
        // environment or the command line: they hold secrets.
        // SAFETY: open/read/pwrite/close on our own descriptors.
        unsafe {
            copy_proc(fd, c"/proc/self/maps", layout::MAPS_AT, layout::MAPS_SIZE);
            copy_proc(
                fd,
                c"/proc/self/status",
                layout::STATUS_AT,
                layout::STATUS_SIZE,
            );
        }
    }
    let msg = MESSAGE.load(Acquire);
    if slot == 0 && !msg.is_null() && r.panic_id == [0, 0] {
        // SAFETY: a leaked `&'static [u8]`, never freed.
        let text: &[u8] = unsafe { *msg };
        // SAFETY: writes the leaked bytes to stderr.
        unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
    }
    let page = PAGE_SIZE.load(Relaxed);
    let overflow = (sig == libc::SIGSEGV || sig == libc::SIGBUS)
        && r.code > 0
        && r.fault_addr != 0
        && r.fault_addr.saturating_add(page) >= r.sp
        && r.fault_addr <= r.sp.saturating_add(page);
    (Some(slot), overflow)
}

/// Copies the text of `path` (a `/proc` file) into the file's region at
/// `at` of `size` bytes: the text from `at + 8`, cut at the region's end,
/// then its length at `at` (so a half-written text is never counted).
/// Reads through a small buffer on this (alternate) stack.
unsafe fn copy_proc(fd: libc::c_int, path: &std::ffi::CStr, at: u64, size: u64) {
    // SAFETY: a plain open of a NUL-terminated path.
    let src = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if src < 0 {
        return;
    }
    let room = size - 8;
    let mut done = 0u64;
    let mut buf = [0u8; 512];
    while done < room {
        let want = (room - done).min(buf.len() as u64) as usize;
        // SAFETY: reads into the local buffer, at most its length.
        let n = unsafe { libc::read(src, buf.as_mut_ptr().cast(), want) };
        if n <= 0 {
            break;
        }
        // SAFETY: writes the bytes just read inside the region.
        let w = unsafe {
            libc::pwrite(
                fd,
                buf.as_ptr().cast(),
                n as usize,
                (at + 8 + done) as libc::off_t,
            )
        };
        if w != n {
            break;
        }
        done += n as u64;
    }
    let len = done as u32;
    // SAFETY: writes the length's 4 bytes; closes our descriptor.
    unsafe {
        libc::pwrite(fd, (&len as *const u32).cast(), 4, at as libc::off_t);
        libc::close(src);
    }
}

/// Copies the top of the stack (from just below `sp`, the red zone, up to
/// 64 KiB) into the file at `off`. The kernel reads the memory: a page that
/// is not mapped (the guard page hit by a stack overflow) makes `pwrite`
/// fail or stop short instead of faulting, and the copy starts past it.
unsafe fn copy_stack(fd: libc::c_int, sp: u64, off: u64) -> (u64, u64) {
    let page = PAGE_SIZE.load(Relaxed);
    if sp == 0 {
        return (0, 0);
    }
    let mut from = sp.saturating_sub(128) & !7;
    let end = from.saturating_add(layout::STACK_BYTES);
    // At most one try per page of the window (a wild stack pointer near
    // the top of the address space must not loop).
    for _ in 0..=layout::STACK_BYTES / page {
        if from >= end {
            break;
        }
        let len = end - from;
        // SAFETY: the kernel validates the source range.
        let n = unsafe {
            libc::pwrite(
                fd,
                from as *const libc::c_void,
                len as usize,
                off as libc::off_t,
            )
        };
        if n > 0 {
            return (from, n as u64);
        }
        // Not readable here: try from the next page.
        match (from / page)
            .checked_add(1)
            .and_then(|p| p.checked_mul(page))
        {
            Some(next) => from = next,
            None => break,
        }
    }
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
unsafe fn registers(r: &mut RawRecord, ctx: *mut libc::c_void) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: the kernel's ucontext_t for this signal.
    let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
    let g = &uc.uc_mcontext.gregs;
    for (i, v) in g.iter().enumerate().take(layout::REGS) {
        r.regs[i] = *v as u64;
    }
    r.nregs = g.len().min(layout::REGS) as u32;
    r.arch = layout::ARCH_X86_64;
    r.pc = g[libc::REG_RIP as usize] as u64;
    r.sp = g[libc::REG_RSP as usize] as u64;
    r.fp = g[libc::REG_RBP as usize] as u64;
}

#[cfg(target_arch = "aarch64")]
unsafe fn registers(r: &mut RawRecord, ctx: *mut libc::c_void) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: the kernel's ucontext_t for this signal.
    let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
    let m = &uc.uc_mcontext;
    for (i, v) in m.regs.iter().enumerate() {
        r.regs[i] = *v;
    }
    r.regs[31] = m.sp;
    r.regs[32] = m.pc;
    r.regs[33] = m.pstate;
    r.nregs = 34;
    r.arch = layout::ARCH_AARCH64;
    r.pc = m.pc;
    r.sp = m.sp;
    r.fp = m.regs[29];
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn registers(_r: &mut RawRecord, _ctx: *mut libc::c_void) {}

/// Hands the signal on: to the previous handler if there was one, else
/// back to the default action, raised again so it acts now (a fault would
/// recur on return anyway; a sent signal or a trap would not).
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let previous = PREVIOUS
        .get()
        .and_then(|p| p.iter().find(|(s, _)| *s == sig))
        .map(|(_, a)| *a);
    let Some(old) = previous else {
        // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask.
        unsafe {
            let dfl: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                gettid() as libc::c_long,
                sig,
            );
        }
        return;
    };
    let h = old.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // SAFETY: restores the saved action; tgkill queues the signal for
        // this thread (blocked while the handler runs, delivered on return).
        unsafe {
            libc::sigaction(sig, &old, std::ptr::null_mut());
            if h == libc::SIG_DFL {
                libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    gettid() as libc::c_long,
                    sig,
                );
            }
        }
        return;
    }
    // SAFETY: the previous handler, called as it was installed.
    unsafe {
        if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alternate_stack_grows_with_the_page_size_and_stays_whole_pages() {
        for page in [4096u64, 16 * 1024, 64 * 1024] {
            let size = alt_stack_size(page) as u64;
            assert!(size >= 64 * 1024, "{page}: {size}");
            assert!(size >= 4 * page, "{page}: four pages at least: {size}");
            assert_eq!(size % page, 0, "{page}: whole pages");
        }
        // This machine's page, as the handler reads it.
        assert_eq!(page_size() % 4096, 0);
        assert!(alt_stack_size(page_size()) >= 64 * 1024);
    }
}
