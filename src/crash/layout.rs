//! The crash file's layout: fixed offsets, so the signal handler writes
//! with `pwrite` at known places and never allocates.
//!
//! ```text
//! 0        header: magic, version, `done` (bit i: record i complete),
//!          modules slot in use, length of the metadata JSON, then it
//! 4 KiB    modules slot A: length (u32) + JSON list of loaded modules
//! 68 KiB   modules slot B (the writer fills the unused slot, then flips)
//! 132 KiB  record 0: RawRecord (4 KiB) + up to 64 KiB of stack
//! 200 KiB  record 1 (a second signal: Rust's abort after a stack overflow)
//! 268 KiB  the flight recorder's ring: 720 readings of 128 bytes (`ring.rs`)
//! 358 KiB  the breadcrumbs: slot in use, slots A and B of 32 KiB (JSON)
//! 422 KiB  the process as the first signal found it: `/proc/self/maps`
//!          (length u32, then up to 128 KiB), `/proc/self/status` (8 KiB)
//! ```

/// `b"ESNPCRSH"`: marks an errsnap crash file.
pub(crate) const MAGIC: [u8; 8] = *b"ESNPCRSH";
/// The layout version written here (3: version 2 and the process's maps
/// and status after it; 2: version 1 and the ring after it). Files of
/// versions 1 and 2 are still read.
pub(crate) const VERSION: u32 = 3;

/// Offset of the `done` mask (u32).
pub(crate) const DONE_AT: u64 = 12;
/// Offset of the modules slot in use (u32: 0 none, 1 A, 2 B).
pub(crate) const SLOT_AT: u64 = 16;
/// Offset of the metadata length (u32); the JSON follows at `META_AT`.
pub(crate) const META_LEN_AT: u64 = 20;
/// Where the metadata JSON starts.
pub(crate) const META_AT: u64 = 24;
/// The header's size: the metadata may fill it.
pub(crate) const HEADER_SIZE: u64 = 4096;

/// The size of each modules slot.
pub(crate) const MODULES_SIZE: u64 = 64 * 1024;
/// Where modules slot `s` (1 or 2) starts.
pub(crate) const fn modules_at(slot: u32) -> u64 {
    HEADER_SIZE + (slot as u64 - 1) * MODULES_SIZE
}

/// How many signal records a file holds.
pub(crate) const RECORDS: u32 = 2;
/// The record header's room (the `RawRecord` fits well inside).
pub(crate) const RECORD_HEADER: u64 = 4096;
/// The most stack copied per record.
pub(crate) const STACK_BYTES: u64 = 64 * 1024;
/// One record: header and stack.
pub(crate) const RECORD_SIZE: u64 = RECORD_HEADER + STACK_BYTES;
/// Where record `i` starts.
pub(crate) const fn record_at(i: u32) -> u64 {
    HEADER_SIZE + 2 * MODULES_SIZE + i as u64 * RECORD_SIZE
}
/// The whole file of layout version 1 (no ring).
pub(crate) const FILE_SIZE_V1: u64 = record_at(RECORDS);

/// Where the flight recorder's ring starts (layout version 2).
pub(crate) const RING_AT: u64 = FILE_SIZE_V1;
/// Readings the ring holds (12 minutes at one a second).
pub(crate) const RING_SLOTS: u64 = 720;
/// One reading's slot.
pub(crate) const RING_SLOT_SIZE: u64 = 128;
/// Where the breadcrumbs' region starts (layout version 2): the slot in
/// use (u32: 0 none, 1 A, 2 B), then the two slots, each a length (u32)
/// and a JSON list of the logger's breadcrumbs.
pub(crate) const CRUMBS_AT: u64 = RING_AT + RING_SLOTS * RING_SLOT_SIZE;
/// The size of each breadcrumbs slot.
pub(crate) const CRUMBS_SIZE: u64 = 32 * 1024;
/// Where breadcrumbs slot `s` (1 or 2) starts.
pub(crate) const fn crumbs_at(slot: u32) -> u64 {
    CRUMBS_AT + 8 + (slot as u64 - 1) * CRUMBS_SIZE
}
/// The whole file of layout version 2 (no maps or status).
pub(crate) const FILE_SIZE_V2: u64 = crumbs_at(3);

/// Where the first signal's copy of `/proc/self/maps` starts (layout
/// version 3): its length (u32, written after the text), 4 bytes of
/// padding, then the text, cut at the room's end.
pub(crate) const MAPS_AT: u64 = FILE_SIZE_V2;
/// The room for `/proc/self/maps`, length included.
pub(crate) const MAPS_SIZE: u64 = 128 * 1024;
/// Where the first signal's copy of `/proc/self/status` starts (as the
/// maps: length, padding, text).
pub(crate) const STATUS_AT: u64 = MAPS_AT + MAPS_SIZE;
/// The room for `/proc/self/status`, length included.
pub(crate) const STATUS_SIZE: u64 = 8 * 1024;
/// The whole file, sized when it is made.
pub(crate) const FILE_SIZE: u64 = STATUS_AT + STATUS_SIZE;

/// The size a file of layout `version` has (`None`: a version unknown).
pub(crate) const fn file_size(version: u32) -> Option<u64> {
    match version {
        1 => Some(FILE_SIZE_V1),
        2 => Some(FILE_SIZE_V2),
        VERSION => Some(FILE_SIZE),
        _ => None,
    }
}

/// Marks a written record.
pub(crate) const RECORD_MAGIC: u32 = 0x4352_5348;

/// Registers kept per record.
pub(crate) const REGS: usize = 40;

/// The CPU a record's registers belong to.
pub(crate) const ARCH_X86_64: u32 = 1;
/// See [`ARCH_X86_64`].
pub(crate) const ARCH_AARCH64: u32 = 2;

/// One signal, as the handler writes it: plain integers only, so any bytes
/// read back form a valid value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawRecord {
    pub(crate) magic: u32,
    pub(crate) signal: i32,
    pub(crate) code: i32,
    /// The sender's pid for a signal sent by a process (`si_code <= 0`).
    pub(crate) sender_pid: i32,
    pub(crate) tid: u32,
    pub(crate) arch: u32,
    pub(crate) fault_addr: u64,
    /// Wall clock, ms since the Unix epoch.
    pub(crate) time_ms: i64,
    /// The kernel's name of the thread (15 bytes and a NUL).
    pub(crate) thread_name: [u8; 16],
    pub(crate) nregs: u32,
    pub(crate) _pad: u32,
    /// x86_64: glibc's `gregs` order (R8..R15, RDI, RSI, RBP, RBX, RDX,
    /// RAX, RCX, RSP, RIP, EFL, CSGSFS, ERR, TRAPNO, OLDMASK, CR2);
    /// aarch64: x0..x30, sp, pc, pstate.
    pub(crate) regs: [u64; REGS],
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    pub(crate) fp: u64,
    /// The copied stack: its address in the crashed process and length.
    pub(crate) stack_at: u64,
    pub(crate) stack_len: u64,
    /// The panic this thread had just recorded (0: none): a `SIGABRT`
    /// that follows it is the same failure.
    pub(crate) panic_id: [u64; 2],
    /// The last sign of life the writer noted (0: none).
    pub(crate) rss_bytes: u64,
    /// CPU use then, in tenths of a percent of one core (`u64::MAX`: unknown).
    pub(crate) cpu_permille: u64,
    pub(crate) sign_at_ms: i64,
}

impl RawRecord {
    /// A record of zeros.
    pub(crate) const fn zeroed() -> RawRecord {
        RawRecord {
            magic: 0,
            signal: 0,
            code: 0,
            sender_pid: 0,
            tid: 0,
            arch: 0,
            fault_addr: 0,
            time_ms: 0,
            thread_name: [0; 16],
            nregs: 0,
            _pad: 0,
            regs: [0; REGS],
            pc: 0,
            sp: 0,
            fp: 0,
            stack_at: 0,
            stack_len: 0,
            panic_id: [0; 2],
            rss_bytes: 0,
            cpu_permille: u64::MAX,
            sign_at_ms: 0,
        }
    }

    /// The record's bytes, as written.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `RawRecord` is `repr(C)` of integers and integer arrays,
        // laid out without padding (every field is 4 or 8 bytes, in pairs).
        unsafe {
            std::slice::from_raw_parts(
                (self as *const RawRecord).cast::<u8>(),
                std::mem::size_of::<RawRecord>(),
            )
        }
    }

    /// Reads a record back from bytes (`None` if too short).
    pub(crate) fn from_bytes(b: &[u8]) -> Option<RawRecord> {
        if b.len() < std::mem::size_of::<RawRecord>() {
            return None;
        }
        // SAFETY: long enough, and every bit pattern is a valid
        // `RawRecord` (integers only); read unaligned from the buffer.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<RawRecord>()) })
    }
}

const _: () = assert!(std::mem::size_of::<RawRecord>() as u64 <= RECORD_HEADER);
const _: () = assert!(std::mem::size_of::<RawRecord>().is_multiple_of(8));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_fit() {
        let mut r = RawRecord::zeroed();
        r.signal = 11;
        r.regs[16] = 0xdead_beef;
        r.thread_name[..4].copy_from_slice(b"main");
        let back = RawRecord::from_bytes(r.as_bytes()).unwrap();
        assert_eq!(back.signal, 11);
        assert_eq!(back.regs[16], 0xdead_beef);
        assert_eq!(&back.thread_name[..4], b"main");
        assert!(RawRecord::from_bytes(&r.as_bytes()[..10]).is_none());
        assert_eq!(record_at(0), 4096 + 2 * 65536);
        assert_eq!(FILE_SIZE_V1, record_at(0) + 2 * RECORD_SIZE);
        assert_eq!(CRUMBS_AT, FILE_SIZE_V1 + 720 * 128);
        assert_eq!(FILE_SIZE_V2, CRUMBS_AT + 8 + 2 * 32 * 1024);
        assert_eq!(MAPS_AT, FILE_SIZE_V2);
        assert_eq!(FILE_SIZE, FILE_SIZE_V2 + 128 * 1024 + 8 * 1024);
        assert_eq!(file_size(1), Some(FILE_SIZE_V1));
        assert_eq!(file_size(2), Some(FILE_SIZE_V2));
        assert_eq!(file_size(3), Some(FILE_SIZE));
        assert_eq!(file_size(4), None);
        assert_eq!(modules_at(1), 4096);
        assert_eq!(modules_at(2), 4096 + 65536);
        assert_eq!(STACK_BYTES, 65536);
        assert_eq!(RECORD_SIZE, 4096 + 65536);
        assert_eq!(FILE_SIZE_V1, 4096 + 2 * 65536 + 2 * (4096 + 65536));
    }
}
