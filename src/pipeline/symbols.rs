//! errsnap's own symbol tables: each module's DWARF read with
//! `addr2line`/`gimli` one unit at a time (see [`crate::pipeline::dwarf`]),
//! and its symbol table, owned by whoever resolves (the writer thread, or
//! `errsnap symbolicate`).
//!
//! Nothing here is process-wide: no lock is shared with the callers' stack
//! walks, and dropping a [`SymbolTables`] gives all of its memory back
//! (the backtrace crate's cache stays for the life of the process).

use std::collections::HashMap;

use crate::pipeline::dwarf::ModuleDwarf;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// One function (or inlined function) at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sym {
    pub(crate) function: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
}

/// A module file's symbols, or why there are none.
enum Tables {
    Loaded(Box<ModuleDwarf>),
    /// The file is missing, unreadable, or not the binary that ran (another
    /// build-id): its frames keep their raw address.
    Unusable,
}

/// Module tables by module path.
#[derive(Default)]
pub(crate) struct SymbolTables {
    /// By module path and build-id: the same path may hold another build.
    modules: HashMap<(Arc<str>, Option<Arc<str>>), Tables>,
    /// Counts lookups: the clock of least-recently-used eviction.
    tick: u64,
    /// Whether mapped file pages were read since they were last dropped.
    touched: bool,
}

impl std::fmt::Debug for SymbolTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolTables")
            .field("modules", &self.modules.len())
            .field("bytes", &self.estimated_bytes())
            .finish()
    }
}

impl SymbolTables {
    /// The functions (innermost first, inlined ones included) at `offset`
    /// in the module file `path`, whose build-id must be `build_id` when
    /// one is given. `first` is the innermost frame: its address is the
    /// faulting instruction itself; every other one is a return address,
    /// so the call before it is looked up. Empty when nothing is known.
    pub(crate) fn lookup(
        &mut self,
        path: &Arc<str>,
        build_id: Option<&str>,
        offset: u64,
        first: bool,
    ) -> Vec<Sym> {
        self.touched = true;
        self.tick += 1;
        let tables = self
            .modules
            .entry((path.clone(), build_id.map(Arc::from)))
            .or_insert_with(|| load(Path::new(&**path), build_id));
        match tables {
            Tables::Loaded(m) => {
                let probe = if first {
                    offset
                } else {
                    offset.saturating_sub(1)
                };
                m.lookup(probe, self.tick)
            }
            Tables::Unusable => Vec::new(),
        }
    }

    /// The memory the loaded tables are estimated to hold: the heap
    /// allocated (and not freed) while their units were parsed and
    /// searched, plus their symbol tables. Their files' mapped pages are not counted:
    /// [`SymbolTables::drop_mapped_pages`] gives those back after each
    /// batch.
    pub(crate) fn estimated_bytes(&self) -> u64 {
        self.modules
            .values()
            .map(|t| match t {
                Tables::Loaded(m) => m.bytes(),
                Tables::Unusable => 0,
            })
            .sum()
    }

    /// Drops parsed units (and symbol tables), least recently used first,
    /// until the tables hold at most `budget`. Returns how many it dropped.
    pub(crate) fn evict_to(&mut self, budget: u64) -> usize {
        let mut total = self.estimated_bytes();
        let mut dropped = 0;
        while total > budget {
            let oldest = self
                .modules
                .values_mut()
                .filter_map(|t| match t {
                    Tables::Loaded(m) => m.oldest_use().map(|u| (u, m)),
                    Tables::Unusable => None,
                })
                .min_by_key(|(u, _)| *u);
            let Some((_, m)) = oldest else { break };
            let Some(bytes) = m.evict_oldest() else {
                break;
            };
            total = total.saturating_sub(bytes);
            dropped += 1;
        }
        dropped
    }

    /// Drops the resident pages of the module files read since the last
    /// call (read-only mappings: a later lookup reads them again from the
    /// page cache). Reading a unit here and there faults in much more of a
    /// file than it uses.
    pub(crate) fn drop_mapped_pages(&mut self) {
        if !std::mem::take(&mut self.touched) {
            return;
        }
        for t in self.modules.values() {
            if let Tables::Loaded(m) = t {
                m.drop_mapped_pages();
            }
        }
    }

    /// Whether any module's tables are loaded.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}

/// Opens a module file, refusing one whose build-id differs from the one
/// that ran (the binary was rebuilt or upgraded since).
fn load(path: &Path, build_id: Option<&str>) -> Tables {
    if let Some(want) = build_id {
        match build_id_of_file(path) {
            Ok(Some(have)) if have == want => {}
            _ => return Tables::Unusable,
        }
    }
    // Debian's -dbgsym/-dbg packages (and other distributions') keep the
    // debug information of stripped libraries under their build-id.
    let debug = build_id.and_then(separate_debug_file);
    match ModuleDwarf::open(debug.as_deref().unwrap_or(path)) {
        Some(m) => Tables::Loaded(Box::new(m)),
        None => Tables::Unusable,
    }
}

/// `/usr/lib/debug/.build-id/ab/cdef….debug` for build-id `abcdef…`, if
/// that file exists.
fn separate_debug_file(build_id: &str) -> Option<std::path::PathBuf> {
    if build_id.len() < 3 || !build_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (dir, rest) = build_id.split_at(2);
    let p = Path::new("/usr/lib/debug/.build-id")
        .join(dir)
        .join(format!("{rest}.debug"));
    p.is_file().then_some(p)
}

/// `foo::bar::h0123456789abcdef` -> `foo::bar`.
pub(crate) fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// The GNU build-id of an ELF file (64-bit, native byte order), read from
/// its note segments; `None` for a file without one or not such an ELF.
pub(crate) fn build_id_of_file(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    const PT_NOTE: u32 = 4;
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 64];
    if file.read_exact(&mut header).is_err()
        || &header[..4] != b"\x7fELF"
        || header[4] != 2
        || header[5] != if cfg!(target_endian = "little") { 1 } else { 2 }
    {
        return Ok(None);
    }
    let u16_at = |b: &[u8], at: usize| u16::from_ne_bytes([b[at], b[at + 1]]) as usize;
    let u32_at = |b: &[u8], at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    let u64_at = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        u16_at(&header, 0x36),
        u16_at(&header, 0x38),
    );
    if phentsize < 56 || phnum == 0 {
        return Ok(None);
    }
    // At most 65,535 headers of a sane size: never a huge allocation for a
    // crafted header.
    if phentsize > 256 {
        return Ok(None);
    }
    let mut table = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff))?;
    file.read_exact(&mut table)?;
    for h in table.chunks_exact(phentsize) {
        if u32_at(h, 0) != PT_NOTE {
            continue;
        }
        let (offset, size, align) = (u64_at(h, 8), u64_at(h, 32), u64_at(h, 48));
        if size > 1 << 20 {
            continue;
        }
        let mut notes = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut notes)?;
        let align = if align == 8 { 8 } else { 4 };
        if let Some(id) = crate::pipeline::modules::build_id_in_notes(&notes, align) {
            return Ok(Some(crate::pipeline::modules::hex(id)));
        }
    }
    Ok(None)
}

/// The heap in use by the process: glibc's count of allocated bytes
/// (`mallinfo2`: small chunks and mmapped ones), which sees memory reused
/// from earlier frees; elsewhere the anonymous resident memory.
pub(crate) fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Looked up at run time: glibc before 2.33 has no mallinfo2, and
        // errsnap must still link there.
        type MallInfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
        static MALLINFO2: std::sync::OnceLock<Option<MallInfo2>> = std::sync::OnceLock::new();
        let f = MALLINFO2.get_or_init(|| {
            // SAFETY: dlsym with a NUL-terminated name; a non-null result
            // is glibc's `mallinfo2`, whose signature is the one above.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr()) };
            (!p.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, MallInfo2>(p) })
        });
        match f {
            Some(f) => {
                // SAFETY: mallinfo2 only reads the allocator's statistics.
                let m = unsafe { f() };
                Some((m.uordblks + m.hblkhd) as u64)
            }
            None => anon_resident_bytes(),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        anon_resident_bytes()
    }
}

/// The process's anonymous resident memory (resident minus file-backed,
/// Linux: `/proc/self/statm`).
pub(crate) fn anon_resident_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let s = std::fs::read_to_string("/proc/self/statm").ok()?;
        let mut f = s.split_whitespace().skip(1);
        let resident: u64 = f.next()?.parse().ok()?;
        let shared: u64 = f.next()?.parse().ok()?;
        let pages = resident.saturating_sub(shared);
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok()?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn here() -> usize {
        here as *const () as usize
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resolves_this_function_from_its_module_file_and_checks_the_build_id() {
        let ip = here();
        let mut modules = crate::pipeline::modules::Modules::default();
        let m = modules.find(ip).unwrap().clone();
        let offset = (ip - m.base) as u64;
        let mut t = SymbolTables::default();
        let syms = t.lookup(&m.path, m.build_id.as_deref(), offset, true);
        let s = syms.last().expect("resolved");
        assert!(
            s.function
                .as_deref()
                .unwrap()
                .ends_with("symbols::tests::here"),
            "{syms:?}"
        );
        assert!(s.file.as_deref().unwrap().ends_with("symbols.rs"));
        assert!(s.line.is_some());
        assert!(!t.is_empty());
        assert_eq!(
            build_id_of_file(Path::new(&*m.path)).unwrap().as_deref(),
            m.build_id.as_deref()
        );
        // Another build-id: the file is not the binary that ran.
        let mut t = SymbolTables::default();
        assert!(t.lookup(&m.path, Some("00"), offset, true).is_empty());
        // No file: nothing, no error.
        let gone: Arc<str> = Arc::from("/nonexistent/errsnap-test-module");
        assert!(t.lookup(&gone, None, offset, true).is_empty());
    }

    #[test]
    fn build_id_of_a_file_that_is_not_elf_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(build_id_of_file(&p).unwrap(), None);
        std::fs::write(&p, b"").unwrap();
        assert_eq!(build_id_of_file(&p).unwrap(), None);
    }

    #[test]
    fn hashes_are_stripped() {
        assert_eq!(strip_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(strip_hash("a::b::hello"), "a::b::hello");
    }
}
