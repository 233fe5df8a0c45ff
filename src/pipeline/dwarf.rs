//! One module file's debug information, parsed one compilation unit at a
//! time.
//!
//! `addr2line`'s own loader parses the header and line-program header of
//! every unit when it opens a file (tens of MiB of heap for a binary with
//! debug info) and, reading unit headers across `.debug_info`, faults in
//! most of the mapped file. Here the file is mapped, `.debug_aranges` (or,
//! without it, one pass over the units' address ranges) says which unit
//! holds an address, and only that unit is parsed: an `addr2line::Context`
//! over a `.debug_info` cut down to that one unit. Parsed units are kept
//! with an estimate of their memory and evicted least recently used first.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSymbol, ObjectSymbolTable};

/// One function (or inlined function) at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sym {
    pub(crate) function: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
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

/// Section bytes: a range of the mapped file, or decompressed bytes.
#[derive(Clone, Debug)]
pub(crate) enum Bytes {
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Arc<[u8]>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped { map, start, len } => &map[*start..*start + *len],
            Bytes::Owned(v) => v,
        }
    }
}

// SAFETY: the bytes live in an `Arc` (the mapping or the buffer) that no
// one mutates: their address is stable across moves and clones.
unsafe impl stable_deref_trait::StableDeref for Bytes {}
// SAFETY: as above; a clone points at the same bytes.
unsafe impl stable_deref_trait::CloneStableDeref for Bytes {}

type Reader = gimli::EndianReader<gimli::RunTimeEndian, Bytes>;

/// A parsed unit and what it is estimated to hold.
struct ParsedUnit {
    ctx: addr2line::Context<Reader>,
    bytes: u64,
    last_used: u64,
}

/// A module file's debug information.
pub(crate) struct ModuleDwarf {
    map: Arc<memmap2::Mmap>,
    endian: gimli::RunTimeEndian,
    sections: HashMap<gimli::SectionId, Reader>,
    /// `(begin, end, unit offset)`, sorted by `begin`.
    ranges: Vec<(u64, u64, usize)>,
    units: HashMap<usize, ParsedUnit>,
    /// The symbol table, read on first need: `(address, size, name)`.
    symbols: Option<Vec<(u64, u64, Box<str>)>>,
    symbols_bytes: u64,
    symbols_used: u64,
}

impl std::fmt::Debug for ModuleDwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleDwarf")
            .field("ranges", &self.ranges.len())
            .field("units", &self.units.len())
            .finish_non_exhaustive()
    }
}

impl ModuleDwarf {
    /// Maps and indexes a module file. `None` for a file that is not an
    /// object file errsnap can read.
    pub(crate) fn open(path: &Path) -> Option<ModuleDwarf> {
        let file = crate::util::regular::open_regular(path).ok()?;
        // SAFETY: the mapping is read-only; a module file replaced while
        // mapped keeps its old inode (the build-id was checked before).
        let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.ok()?);
        let obj = object::File::parse(&**map).ok()?;
        let endian = if obj.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let base = map.as_ptr() as usize;
        let mut sections = HashMap::new();
        for id in ALL_SECTIONS {
            let Some(s) = obj.section_by_name(id.name()) else {
                continue;
            };
            let bytes = match s.compressed_file_range() {
                Ok(r) if r.format == object::CompressionFormat::None => match s.data() {
                    // An empty or NOBITS section (a stripped file keeps the
                    // header) points nowhere in the mapping.
                    Ok([]) => continue,
                    Ok(d) => match (d.as_ptr() as usize).checked_sub(base) {
                        Some(start) if start + d.len() <= map.len() => Bytes::Mapped {
                            map: map.clone(),
                            start,
                            len: d.len(),
                        },
                        _ => continue,
                    },
                    Err(_) => continue,
                },
                _ => match s.uncompressed_data() {
                    Ok(d) => Bytes::Owned(Arc::from(d.into_owned())),
                    Err(_) => continue,
                },
            };
            sections.insert(*id, gimli::EndianReader::new(bytes, endian));
        }
        drop(obj);
        let mut m = ModuleDwarf {
            map,
            endian,
            sections,
            ranges: Vec::new(),
            units: HashMap::new(),
            symbols: None,
            symbols_bytes: 0,
            symbols_used: 0,
        };
        m.ranges = m.index().unwrap_or_default();
        Some(m)
    }

    fn empty(&self) -> Reader {
        gimli::EndianReader::new(Bytes::Owned(Arc::from(Vec::new())), self.endian)
    }

    fn dwarf(&self, info: Option<Reader>) -> gimli::Dwarf<Reader> {
        let loaded: Result<_, std::convert::Infallible> = gimli::Dwarf::load(|id| {
            Ok(match (id, &info) {
                (gimli::SectionId::DebugInfo, Some(cut)) => cut.clone(),
                (gimli::SectionId::DebugAranges | gimli::SectionId::DebugTypes, Some(_)) => {
                    self.empty()
                }
                _ => self
                    .sections
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| self.empty()),
            })
        });
        match loaded {
            Ok(d) => d,
            Err(never) => match never {},
        }
    }

    /// Which unit covers which addresses: `.debug_aranges`, else one pass
    /// over the units' ranges.
    fn index(&self) -> gimli::Result<Vec<(u64, u64, usize)>> {
        let dwarf = self.dwarf(None);
        let mut out = Vec::new();
        let mut headers = dwarf.debug_aranges.headers();
        while let Some(h) = headers.next()? {
            let unit = h.debug_info_offset().0;
            let mut entries = h.entries();
            while let Some(e) = entries.next()? {
                let r = e.range();
                if r.begin < r.end {
                    out.push((r.begin, r.end, unit));
                }
            }
        }
        if out.is_empty() {
            let mut units = dwarf.units();
            while let Some(h) = units.next()? {
                let Some(offset) = h.debug_info_offset() else {
                    continue;
                };
                let Ok(unit) = dwarf.unit(h) else { continue };
                let mut ranges = dwarf.unit_ranges(&unit)?;
                while let Some(r) = ranges.next()? {
                    if r.begin < r.end {
                        out.push((r.begin, r.end, offset.0));
                    }
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The unit whose ranges hold `probe`.
    fn unit_of(&self, probe: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= probe);
        self.ranges[..i]
            .iter()
            .rev()
            .take(16)
            .find(|r| probe < r.1)
            .map(|r| r.2)
    }

    /// A context over `.debug_info` cut down to the unit at `offset`.
    fn parse_unit(&self, offset: usize) -> Option<addr2line::Context<Reader>> {
        let info = self.sections.get(&gimli::SectionId::DebugInfo)?;
        let header = gimli::DebugInfo::from(info.clone())
            .header_from_offset(gimli::DebugInfoOffset(offset))
            .ok()?;
        let len = header.length_including_self();
        let mut cut = info.clone();
        gimli::Reader::skip(&mut cut, offset).ok()?;
        gimli::Reader::truncate(&mut cut, len).ok()?;
        addr2line::Context::from_dwarf(self.dwarf(Some(cut))).ok()
    }

    /// The functions at `probe` (innermost first); the heap allocated
    /// while finding them is added to the unit's estimate.
    pub(crate) fn lookup(&mut self, probe: u64, tick: u64) -> Vec<Sym> {
        let mut out = Vec::new();
        if let Some(offset) = self.unit_of(probe) {
            // The heap a unit takes is measured once, around its parse and
            // first lookup (which parses its lines and functions): the
            // allocator's statistics are not read on every lookup.
            let fresh = !self.units.contains_key(&offset);
            let before = if fresh { heap_in_use() } else { None };
            if fresh {
                if let Some(ctx) = self.parse_unit(offset) {
                    self.units.insert(
                        offset,
                        ParsedUnit {
                            ctx,
                            bytes: 0,
                            last_used: tick,
                        },
                    );
                }
            }
            if let Some(u) = self.units.get_mut(&offset) {
                u.last_used = tick;
                out = frames(&u.ctx, probe);
                if let (Some(a), Some(b)) = (before, heap_in_use()) {
                    u.bytes = b.saturating_sub(a);
                }
            }
        }
        if out.iter().all(|s| s.function.is_none()) {
            self.symbols_used = tick;
            if let Some(name) = self.symbol(probe) {
                match out.first_mut() {
                    Some(s) => s.function = Some(name),
                    None => out.push(Sym {
                        function: Some(name),
                        file: None,
                        line: None,
                        column: None,
                    }),
                }
            }
        }
        out
    }

    /// The symbol table's name for `probe` (read on first need).
    fn symbol(&mut self, probe: u64) -> Option<String> {
        if self.symbols.is_none() {
            let before = heap_in_use();
            let mut list: Vec<(u64, u64, Box<str>)> = Vec::new();
            if let Ok(obj) = object::File::parse(&**self.map) {
                let table = obj.symbol_table().or_else(|| obj.dynamic_symbol_table());
                if let Some(t) = table {
                    for s in t.symbols() {
                        if s.kind() == object::SymbolKind::Text && s.address() != 0 {
                            if let Ok(n) = s.name() {
                                list.push((s.address(), s.size(), n.into()));
                            }
                        }
                    }
                }
            }
            list.sort_unstable_by_key(|s| s.0);
            self.symbols = Some(list);
            if let (Some(a), Some(b)) = (before, heap_in_use()) {
                self.symbols_bytes = b.saturating_sub(a);
            }
        }
        let list = self.symbols.as_ref()?;
        let i = list.partition_point(|s| s.0 <= probe);
        let (addr, size, name) = list.get(i.checked_sub(1)?)?;
        if *size != 0 && probe >= addr + size {
            return None;
        }
        Some(strip_hash(&addr2line::demangle_auto(
            std::borrow::Cow::Borrowed(name),
            None,
        )))
    }

    /// The memory its parsed units and symbol table are estimated to hold.
    pub(crate) fn bytes(&self) -> u64 {
        self.symbols_bytes + self.units.values().map(|u| u.bytes).sum::<u64>()
    }

    /// Drops its least recently used parsed unit (or its symbol table);
    /// returns the bytes it was estimated to hold, `None` when nothing is
    /// left to drop.
    pub(crate) fn evict_oldest(&mut self) -> Option<u64> {
        let oldest = self
            .units
            .iter()
            .min_by_key(|(_, u)| u.last_used)
            .map(|(&o, u)| (o, u.last_used));
        match oldest {
            Some((offset, used)) if self.symbols.is_none() || used <= self.symbols_used => {
                self.units.remove(&offset).map(|u| u.bytes)
            }
            _ => {
                self.symbols.take()?;
                Some(std::mem::take(&mut self.symbols_bytes))
            }
        }
    }

    /// When its least recently used unit (or symbol table) was last used.
    pub(crate) fn oldest_use(&self) -> Option<u64> {
        let units = self.units.values().map(|u| u.last_used).min();
        let symbols = self.symbols.as_ref().map(|_| self.symbols_used);
        units.into_iter().chain(symbols).min()
    }

    /// Drops the resident pages of its mapping (read-only: nothing is
    /// lost; a later read faults them in again from the page cache).
    pub(crate) fn drop_mapped_pages(&self) {
        #[cfg(target_os = "linux")]
        // SAFETY: our own read-only mapping, alive for this call; dropping
        // its pages changes no data.
        unsafe {
            libc::madvise(
                self.map.as_ptr() as *mut libc::c_void,
                self.map.len(),
                libc::MADV_DONTNEED,
            );
        }
    }
}

fn frames(ctx: &addr2line::Context<Reader>, probe: u64) -> Vec<Sym> {
    let mut out = Vec::new();
    let mut failed = false;
    match ctx.find_frames(probe).skip_all_loads() {
        Ok(mut it) => loop {
            let f = match it.next() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            };
            let function = f
                .function
                .as_ref()
                .and_then(|n| n.demangle().ok())
                .map(|n| strip_hash(&n));
            let (file, line, column) = f
                .location
                .map(|l| (l.file.map(str::to_owned), l.line, l.column))
                .unwrap_or((None, None, None));
            out.push(Sym {
                function,
                file,
                line,
                column,
            });
        },
        Err(_) => failed = true,
    }
    // The function entries could not be read: with `.debug_info` cut to one
    // unit, a reference into another unit (inlined code, LTO) fails. The
    // line table alone still gives file:line; the symbol table names it.
    if failed && out.is_empty() {
        if let Ok(Some(l)) = ctx.find_location(probe) {
            out.push(Sym {
                function: None,
                file: l.file.map(str::to_owned),
                line: l.line,
                column: l.column,
            });
        }
    }
    out
}

/// The sections a lookup may read.
const ALL_SECTIONS: &[gimli::SectionId] = &[
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugInfo,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
];
