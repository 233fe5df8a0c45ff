//! Reading crash files back (at the next start, or `errsnap check`).
//!
//! A crash file is read only through [`PrivateDir`] (our own regular file,
//! one link, no symlink), only when its size, magic and version are the
//! ones written here, and every length in it is checked against the
//! layout before use: a damaged or forged file is refused, never trusted.

use std::ffi::OsStr;
use std::io::Read;

use super::layout::{self, RawRecord};
use super::{CrashMeta, ModuleEntry};
use crate::util::private_dir::PrivateDir;

/// One signal's record with its stack copy.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) raw: RawRecord,
    pub(crate) stack: Vec<u8>,
}

/// A crash file, read back.
#[derive(Debug, Clone)]
pub(crate) struct CrashFile {
    pub(crate) meta: CrashMeta,
    pub(crate) modules: Vec<ModuleEntry>,
    /// The records written (in the order the signals came); empty when the
    /// process never crashed.
    pub(crate) records: Vec<Record>,
    /// The flight recorder's last readings, oldest first (none in a file
    /// of layout version 1).
    pub(crate) readings: Vec<crate::event::sample::RunSample>,
    /// The logger's breadcrumbs as of the last heartbeat (none in a file
    /// of layout version 1).
    pub(crate) breadcrumbs: Vec<crate::event::Breadcrumb>,
    /// `/proc/self/maps` as the first signal found it (empty before
    /// layout version 3, or when the handler could not read it), cut to a
    /// whole last line when it filled its room.
    pub(crate) maps: Vec<u8>,
    /// `/proc/self/status` as the first signal found it (as `maps`).
    pub(crate) status: Vec<u8>,
}

/// Whether `name` is a crash file's name.
pub(crate) fn is_crash_name(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("crash-") && n.ends_with(".bin"))
}

fn bad(name: &OsStr, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("crash file {}: {why}", name.to_string_lossy()),
    )
}

fn u32_at(b: &[u8], at: u64) -> u32 {
    let at = at as usize;
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}

/// Reads and checks the crash file `name` of `dir`.
///
/// # Errors
/// Not our file (see [`PrivateDir::read`]), not the size, magic or version
/// written by this layout, or metadata that does not parse.
pub(crate) fn read(dir: &PrivateDir, name: &OsStr) -> std::io::Result<CrashFile> {
    let mut f = dir.read(name)?;
    let len = f.metadata()?.len();
    if ![1, 2, layout::VERSION]
        .iter()
        .any(|&v| layout::file_size(v) == Some(len))
    {
        return Err(bad(name, &format!("size {len}, not {}", layout::FILE_SIZE)));
    }
    let mut b = Vec::with_capacity(len as usize);
    f.by_ref().take(len).read_to_end(&mut b)?;
    if b.len() as u64 != len {
        return Err(bad(name, "shorter than its size"));
    }
    parse(name, &b)
}

/// Parses a crash file's bytes.
pub(crate) fn parse(name: &OsStr, b: &[u8]) -> std::io::Result<CrashFile> {
    let size = b.len() as u64;
    let known = [1, 2, layout::VERSION]
        .iter()
        .any(|&v| layout::file_size(v) == Some(size));
    if !known || b[..8] != layout::MAGIC {
        return Err(bad(name, "not an errsnap crash file"));
    }
    let version = u32_at(b, 8);
    // Earlier builds' files: version 1 has no ring, version 2 no maps; the
    // size and the version must agree.
    let Some(expected) = layout::file_size(version) else {
        return Err(bad(name, &format!("layout version {version} unknown")));
    };
    if size != expected {
        return Err(bad(
            name,
            &format!("size {size} for layout version {version}"),
        ));
    }
    let meta_len = u64::from(u32_at(b, layout::META_LEN_AT));
    if meta_len > layout::HEADER_SIZE - layout::META_AT {
        return Err(bad(name, "metadata length out of range"));
    }
    let meta_bytes = &b[layout::META_AT as usize..(layout::META_AT + meta_len) as usize];
    let meta: CrashMeta =
        serde_json::from_slice(meta_bytes).map_err(|e| bad(name, &format!("metadata: {e}")))?;
    let slot = u32_at(b, layout::SLOT_AT);
    let modules = if slot == 1 || slot == 2 {
        let at = layout::modules_at(slot);
        let n = u64::from(u32_at(b, at));
        if n > layout::MODULES_SIZE - 4 {
            return Err(bad(name, "module list length out of range"));
        }
        let json = &b[(at + 4) as usize..(at + 4 + n) as usize];
        serde_json::from_slice(json).map_err(|e| bad(name, &format!("module list: {e}")))?
    } else {
        Vec::new()
    };
    let done = u32_at(b, layout::DONE_AT);
    let mut records = Vec::new();
    for i in 0..layout::RECORDS {
        if done & (1 << i) == 0 {
            continue;
        }
        let at = layout::record_at(i) as usize;
        let Some(raw) = RawRecord::from_bytes(&b[at..at + layout::RECORD_HEADER as usize]) else {
            continue;
        };
        if raw.magic != layout::RECORD_MAGIC {
            // Marked done but never written whole (a crash while writing
            // it): the other record still counts.
            continue;
        }
        let n = raw.stack_len.min(layout::STACK_BYTES) as usize;
        let from = at + layout::RECORD_HEADER as usize;
        records.push(Record {
            raw,
            stack: b[from..from + n].to_vec(),
        });
    }
    // Two threads may have crashed at once: the first signal first.
    records.sort_by_key(|r| r.raw.time_ms);
    let readings = super::ring::read(&b[(layout::RING_AT as usize).min(b.len())..])
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let breadcrumbs = if version >= 2 {
        breadcrumbs(b)
    } else {
        Vec::new()
    };
    let (maps, status) = if version >= 3 {
        (
            proc_text(b, layout::MAPS_AT, layout::MAPS_SIZE),
            proc_text(b, layout::STATUS_AT, layout::STATUS_SIZE),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(CrashFile {
        meta,
        modules,
        records,
        readings,
        breadcrumbs,
        maps,
        status,
    })
}

/// A `/proc` text the handler copied at `at` (room `size`, its length
/// first): empty when the length is out of range or the text is not
/// lines of text; cut after its last whole line when it filled the room.
fn proc_text(b: &[u8], at: u64, size: u64) -> Vec<u8> {
    let n = u64::from(u32_at(b, at));
    if n > size - 8 {
        return Vec::new();
    }
    let text = &b[(at + 8) as usize..(at + 8 + n) as usize];
    let whole = match text.iter().rposition(|&c| c == b'\n') {
        Some(i) => &text[..=i],
        None => &[][..],
    };
    // The kernel's text: printable ASCII, tabs and newlines (a path with
    // other bytes is still a path; control characters are not).
    if whole
        .iter()
        .any(|&c| c < 0x20 && c != b'\n' && c != b'\t' || c == 0x7f)
    {
        return Vec::new();
    }
    whole.to_vec()
}

/// The breadcrumbs of a layout-2 file's slot in use: none when no slot is,
/// or when its length or JSON is damaged (the crash itself still counts).
fn breadcrumbs(b: &[u8]) -> Vec<crate::event::Breadcrumb> {
    let slot = u32_at(b, layout::CRUMBS_AT);
    if slot != 1 && slot != 2 {
        return Vec::new();
    }
    let at = layout::crumbs_at(slot);
    let n = u64::from(u32_at(b, at));
    if n > layout::CRUMBS_SIZE - 4 {
        return Vec::new();
    }
    serde_json::from_slice(&b[(at + 4) as usize..(at + 4 + n) as usize]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(
        meta: &CrashMeta,
        modules: &[ModuleEntry],
        records: &[(u32, RawRecord, &[u8])],
    ) -> Vec<u8> {
        let mut b = vec![0u8; layout::FILE_SIZE as usize];
        b[..8].copy_from_slice(&layout::MAGIC);
        b[8..12].copy_from_slice(&layout::VERSION.to_ne_bytes());
        let json = serde_json::to_vec(meta).unwrap();
        b[20..24].copy_from_slice(&(json.len() as u32).to_ne_bytes());
        b[24..24 + json.len()].copy_from_slice(&json);
        let m = serde_json::to_vec(modules).unwrap();
        let at = layout::modules_at(2) as usize;
        b[at..at + 4].copy_from_slice(&(m.len() as u32).to_ne_bytes());
        b[at + 4..at + 4 + m.len()].copy_from_slice(&m);
        b[16..20].copy_from_slice(&2u32.to_ne_bytes());
        let mut done = 0u32;
        for (i, r, stack) in records {
            let at = layout::record_at(*i) as usize;
            b[at..at + r.as_bytes().len()].copy_from_slice(r.as_bytes());
            let s = at + layout::RECORD_HEADER as usize;
            b[s..s + stack.len()].copy_from_slice(stack);
            done |= 1 << i;
        }
        b[12..16].copy_from_slice(&done.to_ne_bytes());
        b
    }

    fn record(sig: i32, t: i64, stack: &[u8]) -> RawRecord {
        let mut r = RawRecord::zeroed();
        r.magic = layout::RECORD_MAGIC;
        r.signal = sig;
        r.time_ms = t;
        r.stack_len = stack.len() as u64;
        r
    }

    #[test]
    fn breadcrumbs_come_from_the_slot_in_use_and_damage_drops_only_them() {
        let meta = CrashMeta {
            id: "01ABC".into(),
            pid: 42,
            ..Default::default()
        };
        let crumb = |m: &str| crate::event::Breadcrumb {
            timestamp_ms: 7,
            level: crate::level::Level::Info,
            category: "http".into(),
            message: m.into(),
        };
        let mut b = file(&meta, &[], &[(0, record(11, 10, b"xy"), b"xy")]);
        let put = |b: &mut Vec<u8>, slot: u32, json: &[u8]| {
            let at = layout::crumbs_at(slot) as usize;
            b[at..at + 4].copy_from_slice(&(json.len() as u32).to_ne_bytes());
            b[at + 4..at + 4 + json.len()].copy_from_slice(json);
        };
        let name = OsStr::new("crash-42-01ABC.bin");
        // No slot in use yet: none.
        assert!(parse(name, &b).unwrap().breadcrumbs.is_empty());
        put(&mut b, 1, &serde_json::to_vec(&[crumb("old")]).unwrap());
        put(
            &mut b,
            2,
            &serde_json::to_vec(&[crumb("GET /"), crumb("POST /pay")]).unwrap(),
        );
        let flag = layout::CRUMBS_AT as usize;
        b[flag..flag + 4].copy_from_slice(&2u32.to_ne_bytes());
        let f = parse(name, &b).unwrap();
        assert_eq!(f.breadcrumbs, vec![crumb("GET /"), crumb("POST /pay")]);
        b[flag..flag + 4].copy_from_slice(&1u32.to_ne_bytes());
        assert_eq!(parse(name, &b).unwrap().breadcrumbs, vec![crumb("old")]);
        // A length past the slot, or JSON that does not parse: no
        // breadcrumbs, the crash still read.
        let at = layout::crumbs_at(1) as usize;
        b[at..at + 4].copy_from_slice(&(layout::CRUMBS_SIZE as u32 - 3).to_ne_bytes());
        let f = parse(name, &b).unwrap();
        assert!(f.breadcrumbs.is_empty());
        assert_eq!(f.records.len(), 1);
        b[at..at + 4].copy_from_slice(&(layout::CRUMBS_SIZE as u32 - 4).to_ne_bytes());
        assert!(parse(name, &b).unwrap().breadcrumbs.is_empty());
        // The last slot: a length one past its room reaches past the file.
        b[flag..flag + 4].copy_from_slice(&2u32.to_ne_bytes());
        let last = layout::crumbs_at(2) as usize;
        b[last..last + 4].copy_from_slice(&(layout::CRUMBS_SIZE as u32 - 3).to_ne_bytes());
        assert!(parse(name, &b).unwrap().breadcrumbs.is_empty());
        // JSON that fills the slot exactly is read.
        let empty = serde_json::to_vec(&[crumb("")]).unwrap().len();
        let big = crumb(&"x".repeat(layout::CRUMBS_SIZE as usize - 4 - empty));
        let json = serde_json::to_vec(std::slice::from_ref(&big)).unwrap();
        assert_eq!(json.len() as u64, layout::CRUMBS_SIZE - 4);
        put(&mut b, 2, &json);
        assert_eq!(parse(name, &b).unwrap().breadcrumbs, vec![big]);
        b[flag..flag + 4].copy_from_slice(&1u32.to_ne_bytes());
        put(&mut b, 1, b"[{\"not\": \"a crumb\"}]");
        assert!(parse(name, &b).unwrap().breadcrumbs.is_empty());
        b[flag..flag + 4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse(name, &b).unwrap().breadcrumbs.is_empty());
    }

    #[test]
    fn the_maps_and_status_are_read_as_whole_lines_of_text_and_damage_drops_only_them() {
        let meta = CrashMeta {
            id: "01ABC".into(),
            pid: 42,
            ..Default::default()
        };
        let name = OsStr::new("crash-42-01ABC.bin");
        let mut b = file(&meta, &[], &[(0, record(11, 10, b"xy"), b"xy")]);
        let put = |b: &mut Vec<u8>, at: u64, text: &[u8]| {
            let at = at as usize;
            b[at..at + 4].copy_from_slice(&(text.len() as u32).to_ne_bytes());
            b[at + 8..at + 8 + text.len()].copy_from_slice(text);
        };
        let maps = b"5555-6666 r-xp 00000000 08:01 12 /usr/bin/app\n7ffc-7ffd rw-p 0 0 0 [stack]\n";
        put(&mut b, layout::MAPS_AT, maps);
        put(&mut b, layout::STATUS_AT, b"Name:\tapp\nPid:\t42\n");
        let f = parse(name, &b).unwrap();
        assert_eq!(f.maps, maps);
        assert_eq!(f.status, b"Name:\tapp\nPid:\t42\n");
        // A text that filled its room ends at its last whole line.
        put(&mut b, layout::STATUS_AT, b"Name:\tapp\nPid:\t4");
        assert_eq!(parse(name, &b).unwrap().status, b"Name:\tapp\n");
        // A length past the room, or control characters: dropped, the
        // crash and the other text still read.
        let at = layout::MAPS_AT as usize;
        b[at..at + 4].copy_from_slice(&(layout::MAPS_SIZE as u32 - 7).to_ne_bytes());
        let f = parse(name, &b).unwrap();
        assert!(f.maps.is_empty());
        assert_eq!(f.records.len(), 1);
        assert_eq!(f.status, b"Name:\tapp\n");
        b[at..at + 4].copy_from_slice(&(layout::MAPS_SIZE as u32 - 8).to_ne_bytes());
        // (the room's end: zeros after the old text's last line)
        assert_eq!(
            parse(name, &b).unwrap().maps,
            maps,
            "held to its room exactly"
        );
        put(&mut b, layout::MAPS_AT, b"ok\n\x1b[2J\n");
        assert!(parse(name, &b).unwrap().maps.is_empty());
        put(&mut b, layout::MAPS_AT, b"ok\x7f\n");
        assert!(parse(name, &b).unwrap().maps.is_empty());
        put(&mut b, layout::MAPS_AT, b"tab\tok /\xc3\xa9\n");
        assert_eq!(parse(name, &b).unwrap().maps, b"tab\tok /\xc3\xa9\n");
        // A layout-2 file (an earlier build's): read, without them.
        let mut v2 = b.clone();
        v2.truncate(layout::FILE_SIZE_V2 as usize);
        v2[8..12].copy_from_slice(&2u32.to_ne_bytes());
        let f = parse(name, &v2).unwrap();
        assert!(f.maps.is_empty() && f.status.is_empty());
        assert_eq!(f.records.len(), 1);
        v2[8..12].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse(name, &v2).unwrap_err().to_string().contains("size"));
    }

    #[test]
    fn a_layout_1_file_is_still_read_without_ring_or_breadcrumbs() {
        let meta = CrashMeta {
            id: "01ABC".into(),
            pid: 42,
            ..Default::default()
        };
        let mut b = file(&meta, &[], &[(0, record(11, 10, b"xy"), b"xy")]);
        b.truncate(layout::FILE_SIZE_V1 as usize);
        let name = OsStr::new("crash-42-01ABC.bin");
        // The size says version 1; the header must too.
        assert!(parse(name, &b).unwrap_err().to_string().contains("size"));
        b[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let f = parse(name, &b).unwrap();
        assert_eq!(f.records.len(), 1);
        assert!(f.readings.is_empty() && f.breadcrumbs.is_empty());
        // A version-1 header on a file of the new size is refused too.
        let mut big = file(&meta, &[], &[]);
        big[8..12].copy_from_slice(&1u32.to_ne_bytes());
        assert!(parse(name, &big).unwrap_err().to_string().contains("size"));
    }

    #[test]
    fn parses_what_the_layout_says_and_orders_records_by_time() {
        let meta = CrashMeta {
            id: "01ABC".into(),
            pid: 42,
            logger: "app".into(),
            ..Default::default()
        };
        let modules = vec![ModuleEntry {
            path: "/bin/app".into(),
            base: 0x1000,
            start: 0x1000,
            end: 0x9000,
            build_id: Some("ab".into()),
        }];
        let b = file(
            &meta,
            &modules,
            &[
                (1, record(6, 20, b"late"), b"late"),
                (0, record(11, 10, b"xy"), b"xy"),
            ],
        );
        let f = parse(OsStr::new("crash-42-01ABC.bin"), &b).unwrap();
        assert_eq!(f.meta, meta);
        assert_eq!(f.modules, modules);
        assert_eq!(f.records.len(), 2);
        assert_eq!(f.records[0].raw.signal, 11);
        assert_eq!(f.records[0].stack, b"xy");
        assert_eq!(f.records[1].raw.signal, 6);
    }

    #[test]
    fn damaged_or_foreign_files_are_refused() {
        let meta = CrashMeta::default();
        let good = file(&meta, &[], &[]);
        let name = OsStr::new("crash-1-x.bin");
        assert!(parse(name, &good).unwrap().records.is_empty());
        let mut b = good.clone();
        b[0] = b'X';
        assert!(parse(name, &b).is_err(), "magic");
        let mut b = good.clone();
        b[8..12].copy_from_slice(&9u32.to_ne_bytes());
        assert!(parse(name, &b).is_err(), "version");
        let mut b = good.clone();
        b[20..24].copy_from_slice(&5000u32.to_ne_bytes());
        assert!(parse(name, &b).is_err(), "metadata length");
        let mut b = good.clone();
        let at = layout::modules_at(2) as usize;
        b[at..at + 4].copy_from_slice(&70_000u32.to_ne_bytes());
        assert!(parse(name, &b).is_err(), "module list length");
        let mut b = good.clone();
        b[12..16].copy_from_slice(&1u32.to_ne_bytes());
        assert!(
            parse(name, &b).unwrap().records.is_empty(),
            "a record marked done without its magic is skipped, the file kept"
        );
        assert!(parse(name, &good[..100]).is_err(), "size");
        // A stack length past the room is cut to the room.
        let mut r = record(11, 1, b"");
        r.stack_len = u64::MAX;
        let b = file(&meta, &[], &[(0, r, b"")]);
        let f = parse(name, &b).unwrap();
        assert_eq!(f.records[0].stack.len() as u64, layout::STACK_BYTES);
        assert!(is_crash_name(OsStr::new("crash-1-x.bin")));
        assert!(!is_crash_name(OsStr::new("spool-1.jsonl")));
        assert!(!is_crash_name(OsStr::new("crash-1.jsonl")));
        assert!(!is_crash_name(OsStr::new("x-crash-1.bin")));
    }

    /// A file whose metadata JSON, padded with spaces, is exactly `len`
    /// bytes long (and says so).
    fn with_meta_len(len: usize) -> Vec<u8> {
        let mut b = file(&CrashMeta::default(), &[], &[]);
        let json = serde_json::to_vec(&CrashMeta::default()).unwrap();
        let end = (24 + len).min(b.len());
        b[24..24 + json.len()].copy_from_slice(&json);
        for x in &mut b[24 + json.len()..end] {
            *x = b' ';
        }
        b[20..24].copy_from_slice(&(len as u32).to_ne_bytes());
        b
    }

    /// A file whose module list JSON in slot `slot`, padded with spaces, is
    /// exactly `len` bytes long.
    fn with_modules_len(slot: u32, len: usize) -> Vec<u8> {
        let mut b = file(&CrashMeta::default(), &[], &[]);
        let at = layout::modules_at(slot) as usize;
        b[at + 4] = b'[';
        for x in &mut b[at + 5..at + 4 + len - 1] {
            *x = b' ';
        }
        b[at + 4 + len - 1] = b']';
        b[at..at + 4].copy_from_slice(&(len as u32).to_ne_bytes());
        b[16..20].copy_from_slice(&slot.to_ne_bytes());
        b
    }

    #[test]
    fn lengths_are_held_to_their_room_exactly() {
        let name = OsStr::new("crash-1-x.bin");
        let meta_room = (layout::HEADER_SIZE - layout::META_AT) as usize;
        assert!(
            parse(name, &with_meta_len(meta_room)).is_ok(),
            "fills its room"
        );
        // One byte more reads into the module slot: refused, although the
        // bytes there (spaces) would still parse.
        let over = with_meta_len(meta_room + 1);
        assert!(parse(name, &over).is_err());
        let module_room = (layout::MODULES_SIZE - 4) as usize;
        for slot in [1, 2] {
            let f = parse(name, &with_modules_len(slot, module_room)).unwrap();
            assert!(f.modules.is_empty(), "slot {slot}: an empty list, padded");
            let mut b = with_modules_len(slot, module_room);
            let at = layout::modules_at(slot) as usize;
            b[at..at + 4].copy_from_slice(&((module_room + 1) as u32).to_ne_bytes());
            // The byte past the room would still parse (a space): only the
            // length check refuses.
            b[at + 4 + module_room] = b' ';
            assert!(parse(name, &b).is_err(), "slot {slot}: one byte over");
        }
        // A slot number other than 1 or 2 means no list (never read).
        for slot in [0u32, 3] {
            let mut b = with_modules_len(2, 10);
            b[16..20].copy_from_slice(&slot.to_ne_bytes());
            let at = layout::modules_at(2) as usize;
            b[at + 4] = b'x'; // would not parse if it were read
            assert!(parse(name, &b).unwrap().modules.is_empty(), "slot {slot}");
        }
        // Slot 1 is read when it is the one in use (not slot 2).
        let mut b = with_modules_len(1, 2);
        let at2 = layout::modules_at(2) as usize;
        b[at2..at2 + 4].copy_from_slice(&1u32.to_ne_bytes());
        b[at2 + 4] = b'x';
        assert!(parse(name, &b).is_ok(), "slot 2 is not read");
    }

    #[test]
    fn read_checks_the_file_before_parsing_it() {
        let d = tempfile::tempdir().unwrap();
        let dir = PrivateDir::open_or_create(&d.path().join("c")).unwrap();
        let good = file(&CrashMeta::default(), &[], &[]);
        std::fs::write(dir.path().join("crash-1-a.bin"), &good).unwrap();
        assert!(read(&dir, OsStr::new("crash-1-a.bin")).is_ok());
        let mut long = good.clone();
        long.push(0);
        std::fs::write(dir.path().join("crash-1-b.bin"), &long).unwrap();
        let e = read(&dir, OsStr::new("crash-1-b.bin")).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        std::fs::write(dir.path().join("crash-1-c.bin"), &good[..100]).unwrap();
        assert!(read(&dir, OsStr::new("crash-1-c.bin")).is_err());
    }
}
