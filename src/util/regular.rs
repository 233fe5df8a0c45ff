//! Opening a file a stored row names, safely: only a regular file, never
//! blocking on a FIFO or a device.

use std::path::Path;

/// Opens `path` read-only if it is a regular file: without blocking (a FIFO
/// or a device named by a stored row opens at once and is refused on its
/// type, never read), without following it to a terminal.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = opts.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}
