//! The modules loaded in this process (the executable and its shared
//! libraries): where each is mapped, its path and its GNU build-id, so a
//! frame can be stored as module + offset + build-id (Sentry's
//! `debug_meta` images) and resolved later against the matching binary,
//! even when this process has no symbols at all (a stripped binary).
//!
//! Runs on the writer thread only.

use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::time::Duration;
use std::time::Instant;

/// One loaded module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Module {
    /// Its path (the executable's from `/proc/self/exe` where the loader
    /// gives no name).
    pub(crate) path: Arc<str>,
    /// The load address: a frame's module offset is `address - base`.
    pub(crate) base: usize,
    /// The GNU build-id note, as lowercase hex.
    pub(crate) build_id: Option<Arc<str>>,
    /// The address range its loaded segments cover.
    start: usize,
    end: usize,
}

/// The module list, read once and read again (at most once a second) when an
/// address falls outside every known module (a library loaded since).
#[derive(Debug, Default)]
pub(crate) struct Modules {
    list: Vec<Module>,
    refreshed: Option<Instant>,
}

#[cfg(target_os = "linux")]
const REFRESH_EVERY: Duration = Duration::from_secs(1);

impl Modules {
    /// The module holding `ip`, if any.
    #[cfg(target_os = "linux")]
    pub(crate) fn find(&mut self, ip: usize) -> Option<&Module> {
        let stale = self.refreshed.is_none_or(|t| t.elapsed() >= REFRESH_EVERY);
        if stale && !self.list.iter().any(|m| m.contains(ip)) {
            self.list = loaded();
            self.refreshed = Some(Instant::now());
        }
        self.list.iter().find(|m| m.contains(ip))
    }

    /// The module holding `ip`, if any: elsewhere on Unix `dladdr` names
    /// it (no build-id); the answer is kept per address.
    #[cfg(all(unix, not(target_os = "linux")))]
    pub(crate) fn find(&mut self, ip: usize) -> Option<&Module> {
        if !self.list.iter().any(|m| m.contains(ip)) {
            if self.list.len() > 10_000 {
                self.list.clear();
            }
            // SAFETY: dladdr only reads loader tables and writes into `info`.
            let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::dladdr(ip as *const libc::c_void, &mut info) } != 0;
            if !ok || info.dli_fname.is_null() {
                return None;
            }
            // SAFETY: a NUL-terminated string owned by the loader.
            let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
            self.list.push(Module {
                path: Arc::from(name.to_string_lossy().as_ref()),
                base: info.dli_fbase as usize,
                build_id: None,
                start: ip,
                end: ip + 1,
            });
            self.refreshed = Some(Instant::now());
        }
        self.list.iter().find(|m| m.contains(ip))
    }

    /// No module information on this platform.
    #[cfg(not(unix))]
    pub(crate) fn find(&mut self, _ip: usize) -> Option<&Module> {
        None
    }
}

impl Module {
    fn contains(&self, ip: usize) -> bool {
        (self.start..self.end).contains(&ip)
    }
}

/// Lowercase hex of a build-id note's bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The GNU build-id in a block of ELF notes (`NT_GNU_BUILD_ID`, owner
/// "GNU"), each note's name and descriptor padded to `align` bytes.
pub(crate) fn build_id_in_notes(mut notes: &[u8], align: usize) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let pad = |n: usize| n.div_ceil(align) * align;
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while notes.len() >= 12 {
        let namesz = word(notes, 0)? as usize;
        let descsz = word(notes, 4)? as usize;
        let kind = word(notes, 8)?;
        let name_at: usize = 12;
        // Offsets from the note's start, each padded to the alignment.
        let desc_at = pad(name_at.checked_add(namesz)?);
        let next = pad(desc_at.checked_add(descsz)?);
        let name = notes.get(name_at..name_at + namesz)?;
        let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
            return Some(desc);
        }
        notes = notes.get(next..).unwrap_or(&[]);
    }
    None
}

/// The loaded modules as a crash file records them (empty where there is
/// no loader list).
pub(crate) fn for_crash_file() -> Vec<crate::crash::ModuleEntry> {
    #[cfg(target_os = "linux")]
    {
        loaded()
            .into_iter()
            .filter(|m| !m.path.is_empty())
            .map(|m| crate::crash::ModuleEntry {
                path: m.path.to_string(),
                base: m.base as u64,
                start: m.start as u64,
                end: m.end as u64,
                build_id: m.build_id.map(|b| b.to_string()),
            })
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// How many modules are loaded and where: changes when a library is
/// loaded or unloaded (cheap: no build-ids read).
pub(crate) fn generation() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut h = crate::pipeline::fingerprint::StableHasher::new();
        crate::util::loaded::for_each(|m| {
            h.write(&m.bias.to_ne_bytes());
            h.write(m.name.to_bytes());
        });
        u64::from_str_radix(&h.finish_hex()[..16], 16).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The loaded modules, from the dynamic loader's program headers.
#[cfg(target_os = "linux")]
fn loaded() -> Vec<Module> {
    let mut out = Vec::new();
    crate::util::loaded::for_each(|m| {
        let (mut start, mut end) = (usize::MAX, 0usize);
        let mut build_id = None;
        for h in m.headers {
            match h.p_type {
                libc::PT_LOAD => {
                    let at = m.bias.wrapping_add(h.p_vaddr as usize);
                    start = start.min(at);
                    end = end.max(at.saturating_add(h.p_memsz as usize));
                }
                libc::PT_NOTE if build_id.is_none() => {
                    // SAFETY: a PT_NOTE segment lies inside a loaded one.
                    let notes = unsafe { m.bytes(h) };
                    let align = if h.p_align == 8 { 8 } else { 4 };
                    build_id = build_id_in_notes(notes, align).map(|b| Arc::from(hex(b)));
                }
                _ => {}
            }
        }
        if start >= end {
            return;
        }
        let path = if m.name.is_empty() {
            // The main program: the loader gives it no name.
            std::env::current_exe()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            m.name.to_string_lossy().into_owned()
        };
        out.push(Module {
            path: Arc::from(path),
            base: m.bias,
            build_id,
            start,
            end,
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: u32, name: &[u8], desc: &[u8], align: usize) -> Vec<u8> {
        let pad = |v: &mut Vec<u8>| {
            while !v.len().is_multiple_of(align) {
                v.push(0);
            }
        };
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(name);
        pad(&mut v);
        v.extend_from_slice(desc);
        pad(&mut v);
        v
    }

    #[test]
    fn finds_the_gnu_build_id_among_other_notes() {
        for align in [4, 8] {
            let mut notes = note(5, b"GNU\0", &[1; 12], align); // a property note
            notes.extend(note(3, b"Go\0\0", &[9; 4], align)); // another owner
            notes.extend(note(3, b"GNU\0", &[0xab, 0x01, 0xff], align));
            assert_eq!(
                build_id_in_notes(&notes, align),
                Some(&[0xab, 0x01, 0xff][..])
            );
            assert_eq!(hex(build_id_in_notes(&notes, align).unwrap()), "ab01ff");
        }
        // Truncated or absent: none, never a read past the end.
        let notes = note(3, b"GNU\0", &[7; 20], 4);
        assert_eq!(build_id_in_notes(&notes[..notes.len() - 1], 4), None);
        assert_eq!(build_id_in_notes(&note(1, b"GNU\0", &[7; 20], 4), 4), None);
        assert_eq!(build_id_in_notes(&[], 4), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_program_is_found_with_its_build_id() {
        let ip = this_program_is_found_with_its_build_id as *const () as usize;
        let mut m = Modules::default();
        let module = m
            .find(ip)
            .expect("the test binary is a loaded module")
            .clone();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(&*module.path, exe.to_string_lossy());
        assert!(ip >= module.base);
        // Debian's linker writes a build-id by default; rustc keeps it.
        let id = module.build_id.expect("a GNU build-id");
        assert!(id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        // libc is another module, with another id.
        let libc_ip = libc::getpid as *const () as usize;
        let other = m.find(libc_ip).expect("libc is loaded").clone();
        assert_ne!(other.path, module.path);
        assert!(m.find(0).is_none());
    }
}
