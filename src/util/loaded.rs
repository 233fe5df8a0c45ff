//! The modules the dynamic loader has loaded (`dl_iterate_phdr`): each
//! one's name, load bias and program headers, for the writer's module list
//! (build-ids) and the callers' unwinder (unwind tables).

use std::ffi::CStr;

/// A program header of this platform's ELF class.
#[cfg(target_pointer_width = "64")]
pub(crate) type Phdr = libc::Elf64_Phdr;
/// A program header of this platform's ELF class.
#[cfg(target_pointer_width = "32")]
pub(crate) type Phdr = libc::Elf32_Phdr;

/// One loaded module, valid while the callback runs (the loader holds its
/// lock: the module cannot be unloaded meanwhile).
pub(crate) struct Loaded<'a> {
    /// Its path as the loader knows it; empty for the main program.
    pub(crate) name: &'a CStr,
    /// What its addresses are offset by: `address in memory - address in
    /// the file`.
    pub(crate) bias: usize,
    /// Its program headers.
    pub(crate) headers: &'a [Phdr],
}

impl Loaded<'_> {
    /// The bytes of segment `h` in memory.
    ///
    /// # Safety
    /// `h` must be one of `self.headers` whose bytes are mapped (a
    /// `PT_LOAD`, or a segment inside one such as `PT_NOTE` or
    /// `PT_GNU_EH_FRAME`); the slice is valid only during the callback.
    pub(crate) unsafe fn bytes(&self, h: &Phdr) -> &[u8] {
        let at = self.bias.wrapping_add(h.p_vaddr as usize);
        // SAFETY: per the contract above.
        unsafe { std::slice::from_raw_parts(at as *const u8, h.p_memsz as usize) }
    }
}

/// Calls `each` for every loaded module.
pub(crate) fn for_each(mut each: impl FnMut(&Loaded<'_>)) {
    unsafe extern "C" fn trampoline(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `dl_phdr_info` for the call;
        // `data` is the `&mut dyn FnMut` passed below.
        let (info, each) = unsafe { (&*info, &mut *(data as *mut &mut dyn FnMut(&Loaded<'_>))) };
        let headers = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let name = if info.dlpi_name.is_null() {
            c""
        } else {
            // SAFETY: a NUL-terminated string owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }
        };
        each(&Loaded {
            name,
            bias: info.dlpi_addr as usize,
            headers,
        });
        0
    }
    let mut each: &mut dyn FnMut(&Loaded<'_>) = &mut each;
    // SAFETY: `trampoline` matches the callback type and only uses `data`
    // as the closure reference passed here, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(trampoline),
            &mut each as *mut &mut dyn FnMut(&Loaded<'_>) as *mut libc::c_void,
        );
    }
}
