//! The caller's stack walk with `framehop` (Linux x86_64): DWARF CFI
//! (`.eh_frame`, found through `.eh_frame_hdr`) with a per-thread rule
//! cache, so a stack walked before costs a cache lookup per frame instead
//! of libgcc's FDE search and CFA program (measured in BENCHMARKS.md §2e).
//!
//! Every module's `.eh_frame_hdr` and `.eh_frame` are copied once (about a
//! MiB for a large binary), so a library unloaded later can never be read;
//! that copy is made on the writer thread ([`refresh`]), never on a
//! caller's. Stack reads are bounded to this thread's stack. Until the list
//! is read, or when a frame's address lies outside every known module (a
//! library loaded since), the walk is refused and the writer reads the list
//! again (at most once a second): the caller falls back to
//! `_Unwind_Backtrace` for that capture.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};

type Walker = UnwinderX86_64<Box<[u8]>>;

struct Modules {
    unwinder: Walker,
    /// Address ranges of the modules, sorted.
    ranges: Vec<(u64, u64)>,
    read_at: Instant,
}

static MODULES: RwLock<Option<Arc<Modules>>> = RwLock::new(None);

const REREAD_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static CACHE: RefCell<Option<Box<CacheX86_64>>> = const { RefCell::new(None) };
    /// This thread's stack: `(lowest, highest)` address.
    static STACK: Option<(u64, u64)> = stack_bounds();
}

/// Set when a walk found no module list, or an address outside every
/// known module (a library loaded since): the writer reads the list again.
static STALE: AtomicBool = AtomicBool::new(true);

fn current() -> Option<Arc<Modules>> {
    let m = match MODULES.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    if m.is_none() {
        STALE.store(true, Ordering::Relaxed);
    }
    m
}

/// Reads the module list (and copies its unwind tables) when a walk asked
/// for it, at most once a second. Called on the writer thread, never on a
/// caller's: the list is built without the lock held, then swapped in.
pub(crate) fn refresh() {
    if !STALE.load(Ordering::Relaxed) {
        return;
    }
    let recent = match MODULES.read() {
        Ok(g) => g
            .as_ref()
            .is_some_and(|m| m.read_at.elapsed() < REREAD_EVERY),
        Err(_) => false,
    };
    if recent {
        return;
    }
    let fresh = Arc::new(load());
    *MODULES.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh);
    STALE.store(false, Ordering::Relaxed);
}

/// Walks the calling thread's stack, pushing each frame's address (the
/// first is inside this function; the others are return addresses) while
/// `keep` says so. `false` when the walk could not be trusted (an address
/// outside every known module): the caller walks another way.
#[inline(never)]
// Long by design: the walk starts from this frame's own registers, so
// reading them, bounding the stack and walking stay in one frame (whose
// layout decides whether framehop can cache its rule; see below).
pub(crate) fn walk(ips: &mut Vec<usize>, max: usize) -> bool {
    let (pc, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers; no memory, no stack use.
    unsafe {
        std::arch::asm!(
            "lea {0}, [rip]",
            "mov {1}, rsp",
            "mov {2}, rbp",
            out(reg) pc,
            out(reg) sp,
            out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    // During thread teardown the thread-locals may be gone: walk another
    // way rather than panic.
    let Ok(Some((stack_low, high))) = STACK.try_with(|s| *s) else {
        return false;
    };
    // On another stack (a coroutine's, a signal stack), nothing here
    // bounds the reads: walk another way. (Written as two comparisons: with
    // `Range::contains` the compiler laid out this frame so that framehop
    // could not cache its unwind rule, 1.2 µs per walk instead of 0.5.)
    if sp < stack_low || sp >= high {
        return false;
    }
    let Some(modules) = current() else {
        return false;
    };
    let low = sp;
    let mut read_stack = |addr: u64| -> Result<u64, ()> {
        if addr >= low
            && addr.checked_add(8).is_some_and(|end| end <= high)
            && addr.is_multiple_of(8)
        {
            // SAFETY: an aligned word inside this thread's live stack
            // (between the current stack pointer and its top).
            Ok(unsafe { (addr as *const u64).read() })
        } else {
            Err(())
        }
    };
    let known = |a: u64| {
        let i = modules.ranges.partition_point(|r| r.0 <= a);
        i > 0 && a < modules.ranges[i - 1].1
    };
    let start = ips.len();
    let trusted = CACHE
        .try_with(|c| {
            let Ok(mut slot) = c.try_borrow_mut() else {
                return false;
            };
            let cache = slot.get_or_insert_with(|| Box::new(CacheX86_64::new()));
            let mut frames = modules.unwinder.iter_frames(
                pc,
                UnwindRegsX86_64::new(pc, sp, bp),
                cache,
                &mut read_stack,
            );
            while ips.len() - start < max {
                match frames.next() {
                    Ok(Some(f)) => {
                        let a = f.address();
                        if !known(a) {
                            return false;
                        }
                        ips.push(a as usize);
                    }
                    // The end of the stack, or a frame it cannot unwind
                    // through: what was walked stands.
                    Ok(None) | Err(_) => break,
                }
            }
            true
        })
        .unwrap_or(false);
    if !trusted {
        ips.truncate(start);
        STALE.store(true, Ordering::Relaxed);
    }
    trusted
}

/// This thread's stack range (glibc: `pthread_getattr_np`).
fn stack_bounds() -> Option<(u64, u64)> {
    // SAFETY: the attribute object is initialised by pthread_getattr_np and
    // destroyed after use; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        ok.then(|| (addr as u64, addr as u64 + size as u64))
    }
}

/// Every loaded module with unwind tables, their tables copied.
fn load() -> Modules {
    struct Found {
        name: String,
        avma: (u64, u64),
        bias: u64,
        hdr: (u64, Box<[u8]>),
        eh: (u64, Box<[u8]>),
    }

    let mut found: Vec<Found> = Vec::new();
    crate::util::loaded::for_each(|m| {
        let bias = m.bias as u64;
        let loads: Vec<(u64, u64)> = m
            .headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD)
            .map(|h| {
                let lo = bias.wrapping_add(h.p_vaddr);
                (lo, lo.saturating_add(h.p_memsz))
            })
            .collect();
        let Some(hdr) = m.headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME) else {
            return;
        };
        let hdr_at = bias.wrapping_add(hdr.p_vaddr);
        // SAFETY: PT_GNU_EH_FRAME lies in a loaded segment.
        let hdr_bytes = unsafe { m.bytes(hdr) };
        let Some(eh_at) = eh_frame_start(hdr_bytes, hdr_at) else {
            return;
        };
        // `.eh_frame` runs at most to the end of its segment; framehop
        // reads only the entries the header's index points at.
        let Some(&(_, seg_end)) = loads.iter().find(|(lo, hi)| (*lo..*hi).contains(&eh_at)) else {
            return;
        };
        // SAFETY: inside the loaded segment found above, valid while the
        // loader holds the module (during this callback): copied now.
        let eh_bytes =
            unsafe { std::slice::from_raw_parts(eh_at as *const u8, (seg_end - eh_at) as usize) };
        let lo = loads.iter().map(|r| r.0).min().unwrap_or(0);
        let hi = loads.iter().map(|r| r.1).max().unwrap_or(0);
        found.push(Found {
            name: m.name.to_string_lossy().into_owned(),
            avma: (lo, hi),
            bias,
            hdr: (hdr_at, hdr_bytes.into()),
            eh: (eh_at, eh_bytes.into()),
        });
    });
    let mut unwinder = Walker::new();
    let mut ranges = Vec::with_capacity(found.len());
    for f in found {
        ranges.push(f.avma);
        let (hdr_at, hdr) = f.hdr;
        let (eh_at, eh) = f.eh;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            eh_frame_hdr_svma: Some(hdr_at - f.bias..hdr_at - f.bias + hdr.len() as u64),
            eh_frame_hdr: Some(hdr),
            eh_frame_svma: Some(eh_at - f.bias..eh_at - f.bias + eh.len() as u64),
            eh_frame: Some(eh),
            ..Default::default()
        };
        unwinder.add_module(Module::new(f.name, f.avma.0..f.avma.1, f.bias, info));
    }
    ranges.sort_unstable();
    Modules {
        unwinder,
        ranges,
        read_at: Instant::now(),
    }
}

/// Where `.eh_frame` starts, from `.eh_frame_hdr` (at `hdr_at`).
fn eh_frame_start(hdr: &[u8], hdr_at: u64) -> Option<u64> {
    use gimli::{BaseAddresses, EhFrameHdr, NativeEndian, Pointer};
    let parsed = EhFrameHdr::new(hdr, NativeEndian)
        .parse(&BaseAddresses::default().set_eh_frame_hdr(hdr_at), 8)
        .ok()?;
    match parsed.eh_frame_ptr() {
        Pointer::Direct(p) => Some(p),
        Pointer::Indirect(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #[inline(never)]
    fn both() -> (Vec<usize>, Vec<usize>) {
        super::refresh();
        let mut fast = Vec::new();
        assert!(super::walk(&mut fast, 128));
        let mut slow = Vec::new();
        // SAFETY: as in `capture::stack`.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                slow.push(f.ip() as usize);
                true
            })
        };
        (fast, slow)
    }

    #[test]
    fn finds_the_same_return_addresses_as_libgcc() {
        let (fast, slow) = both();
        assert!(fast.len() > 5, "{fast:x?}");
        // The first frames differ (each walker's own); from `both` up, the
        // return addresses are the same.
        let mine = both as *const () as usize;
        let pos = |v: &[usize]| v.iter().position(|&a| a > mine && a < mine + 4096);
        let (Some(i), Some(j)) = (pos(&fast), pos(&slow)) else {
            panic!("both walks pass through `both`: {fast:x?} {slow:x?}");
        };
        let n = (fast.len() - i).min(slow.len() - j);
        assert!(n > 3);
        assert_eq!(
            fast[i + 1..i + n],
            slow[j + 1..j + n],
            "{fast:x?}\n{slow:x?}"
        );
    }

    #[test]
    fn a_second_walk_of_the_same_stack_is_identical() {
        let walks: Vec<Vec<usize>> = (0..3).map(|_| both().0).collect();
        assert_eq!(walks[0], walks[1]);
        assert_eq!(walks[1], walks[2], "the cached rules give the same walk");
    }
}
