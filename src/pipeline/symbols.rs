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
pub(crate) use crate::pipeline::dwarf::Sym;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

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
    debug_file_under(Path::new("/usr/lib/debug/.build-id"), build_id)
}

/// `root/ab/cdef….debug` for build-id `abcdef…` (hex only: a recorded id
/// can never name another path), if that file exists.
fn debug_file_under(root: &Path, build_id: &str) -> Option<std::path::PathBuf> {
    if build_id.len() < 3 || !build_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (dir, rest) = build_id.split_at(2);
    let p = root.join(dir).join(format!("{rest}.debug"));
    p.is_file().then_some(p)
}

/// The GNU build-id of an ELF file (64-bit, native byte order), read from
/// its note segments; `None` for a file without one or not such an ELF.
pub(crate) fn build_id_of_file(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    const PT_NOTE: u32 = 4;
    let mut file = crate::util::regular::open_regular(path)?;
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

    /// A minimal ELF64 file of this machine's byte order: a header, two
    /// program headers (a `PT_LOAD`, then `ptype` over `notes`).
    fn elf(
        class: u8,
        endian: u8,
        phentsize: u16,
        phnum: u16,
        ptype: u32,
        notes: &[u8],
        align: u64,
    ) -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = class;
        v[5] = endian;
        v[0x20..0x28].copy_from_slice(&64u64.to_ne_bytes());
        v[0x36..0x38].copy_from_slice(&phentsize.to_ne_bytes());
        v[0x38..0x3a].copy_from_slice(&phnum.to_ne_bytes());
        let notes_at = 64 + 2 * 56;
        v.extend(phdr(56, 1, 0, 0, align));
        v.extend(phdr(56, ptype, notes_at as u64, notes.len() as u64, align));
        v.extend_from_slice(notes);
        v
    }

    /// One program header of `size` bytes: type, file offset, file size and
    /// alignment set, the rest zero.
    fn phdr(size: usize, ptype: u32, offset: u64, filesz: u64, align: u64) -> Vec<u8> {
        let mut h = vec![0u8; size];
        h[..4].copy_from_slice(&ptype.to_ne_bytes());
        h[8..16].copy_from_slice(&offset.to_ne_bytes());
        h[32..40].copy_from_slice(&filesz.to_ne_bytes());
        h[48..56].copy_from_slice(&align.to_ne_bytes());
        h
    }

    fn gnu_note(id: &[u8], align: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&4u32.to_ne_bytes());
        v.extend_from_slice(&(id.len() as u32).to_ne_bytes());
        v.extend_from_slice(&3u32.to_ne_bytes());
        v.extend_from_slice(b"GNU\0");
        while v.len() % align != 0 {
            v.push(0);
        }
        v.extend_from_slice(id);
        v
    }

    #[test]
    // Long by design: one file built by hand per case the reader must
    // accept or refuse, each beside its assertion, all read through the
    // same temporary file.
    fn build_ids_are_read_only_from_well_formed_native_elf64_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        let native = if cfg!(target_endian = "little") { 1 } else { 2 };
        let id = [0xde, 0xad, 0xbe, 0xef];
        let read = |bytes: Vec<u8>| {
            std::fs::write(&p, bytes).unwrap();
            build_id_of_file(&p).unwrap()
        };
        // Well formed, both note alignments.
        assert_eq!(
            read(elf(2, native, 56, 2, 4, &gnu_note(&id, 4), 4)).as_deref(),
            Some("deadbeef")
        );
        assert_eq!(
            read(elf(2, native, 56, 2, 4, &gnu_note(&id, 8), 8)).as_deref(),
            Some("deadbeef")
        );
        // A bigger program-header entry is fine.
        // Entries up to 256 bytes are fine.
        let mut wide = elf(2, native, 256, 2, 4, &[], 4);
        wide.truncate(64);
        wide.extend(phdr(256, 1, 0, 0, 4));
        wide.extend(phdr(256, 4, 64 + 512, gnu_note(&id, 4).len() as u64, 4));
        wide.extend(gnu_note(&id, 4));
        assert_eq!(read(wide).as_deref(), Some("deadbeef"));
        // Notes padded to 4 bytes are walked with 4: an ABI-tag-like note
        // with a 4-byte descriptor comes first.
        let mut two = Vec::new();
        two.extend_from_slice(&4u32.to_ne_bytes());
        two.extend_from_slice(&4u32.to_ne_bytes());
        two.extend_from_slice(&1u32.to_ne_bytes());
        two.extend_from_slice(b"GNU\0");
        two.extend_from_slice(&[9, 9, 9, 9]);
        two.extend(gnu_note(&id, 4));
        assert_eq!(
            read(elf(2, native, 56, 2, 4, &two, 4)).as_deref(),
            Some("deadbeef")
        );
        // Not this machine's kind of file, or no note segment: none.
        assert_eq!(
            read(elf(1, native, 56, 2, 4, &gnu_note(&id, 4), 4)),
            None,
            "32-bit"
        );
        assert_eq!(
            read(elf(2, 3 - native, 56, 2, 4, &gnu_note(&id, 4), 4)),
            None,
            "byte order"
        );
        assert_eq!(
            read(elf(2, native, 40, 2, 4, &gnu_note(&id, 4), 4)),
            None,
            "short entries"
        );
        // Entries shorter than an ELF64 header are never cut into (a
        // 48-byte cut would start at the first entry's alignment, 4 =
        // PT_NOTE, and read past its end).
        assert_eq!(
            read(elf(2, native, 48, 2, 4, &gnu_note(&id, 4), 4)),
            None,
            "48-byte entries"
        );
        // Header counts over 255 are read whole (both bytes): the note
        // segment is the 258th entry.
        let mut many = elf(2, native, 56, 258, 4, &[], 4);
        many.truncate(64 + 56);
        many.extend(vec![0u8; 56 * 256]);
        let note = gnu_note(&id, 4);
        many.extend(phdr(56, 4, 64 + 56 * 258, note.len() as u64, 4));
        many.extend(note);
        assert_eq!(read(many).as_deref(), Some("deadbeef"));
        assert_eq!(
            read(elf(2, native, 512, 2, 4, &gnu_note(&id, 4), 4)),
            None,
            "huge entries"
        );
        assert_eq!(
            read(elf(2, native, 56, 0, 4, &gnu_note(&id, 4), 4)),
            None,
            "no headers"
        );
        assert_eq!(
            read(elf(2, native, 56, 2, 7, &gnu_note(&id, 4), 4)),
            None,
            "not PT_NOTE"
        );
        let mut bad_magic = elf(2, native, 56, 2, 4, &gnu_note(&id, 4), 4);
        bad_magic[1] = b'X';
        assert_eq!(read(bad_magic), None);
        // A note segment claiming more than 1 MiB is skipped, never read.
        let mut huge = elf(2, native, 56, 2, 4, &gnu_note(&id, 4), 4);
        let size_at = 64 + 56 + 32;
        huge[size_at..size_at + 8].copy_from_slice(&((1u64 << 20) + 1).to_ne_bytes());
        assert_eq!(read(huge), None);
    }

    #[test]
    fn separate_debug_files_are_found_by_build_id_only() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("ab")).unwrap();
        std::fs::write(root.path().join("ab/cdef.debug"), b"").unwrap();
        let found = debug_file_under(root.path(), "abcdef").unwrap();
        assert_eq!(found, root.path().join("ab/cdef.debug"));
        assert_eq!(
            debug_file_under(root.path(), "abcdee"),
            None,
            "no such file"
        );
        assert_eq!(debug_file_under(root.path(), "ab"), None, "too short");
        std::fs::write(root.path().join("ab/c.debug"), b"").unwrap();
        assert!(
            debug_file_under(root.path(), "abc").is_some(),
            "three digits"
        );
        assert_eq!(debug_file_under(root.path(), "ab/../cdef"), None, "not hex");
        // A file that a non-hex id would reach is never used.
        std::fs::create_dir_all(root.path().join("zz")).unwrap();
        std::fs::write(root.path().join("zz/file.debug"), b"").unwrap();
        assert_eq!(debug_file_under(root.path(), "zzfile"), None, "not hex");
        std::fs::create_dir_all(root.path().join("ab/cd.debug")).unwrap();
        assert_eq!(debug_file_under(root.path(), "abcd"), None, "a directory");
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
        assert_eq!(
            crate::pipeline::dwarf::strip_hash("a::b::h0123456789abcdef"),
            "a::b"
        );
        assert_eq!(
            crate::pipeline::dwarf::strip_hash("a::b::hello"),
            "a::b::hello"
        );
    }
}
