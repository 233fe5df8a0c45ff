//! Directories and files that only the current user may touch.
//!
//! A [`PrivateDir`] is an open directory descriptor that was checked with
//! `fstat` on the descriptor itself: a real directory (never a symlink: it is
//! opened `O_DIRECTORY | O_NOFOLLOW`), owned by the effective uid, and not
//! writable by group or others. Files are then opened relative to that
//! descriptor (`openat`), so nothing can be swapped between the check and
//! the use. New files are created `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600;
//! an existing file is used only when `fstat` shows a regular file, owned by
//! us, with a single link.
//!
//! See SECURITY.md for the threat model (other local users on a shared host).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Why a directory or file was refused: a sentence for the internal log.
pub(crate) fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("refusing {}: {why}", path.display()),
    )
}

/// A checked directory, held open.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

#[cfg(unix)]
mod imp {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    use rustix::fs::{AtFlags, Mode, OFlags, CWD};

    /// The effective user id of this process.
    pub(crate) fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn errno(e: rustix::io::Errno) -> io::Error {
        io::Error::from(e)
    }

    // The open flags (as constants: each flag is a distinct bit).
    /// A directory, never through a symlink, never blocking on a FIFO.
    const DIR: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);
    /// Appending to an existing file, never through a symlink.
    const APPEND: OFlags = OFlags::WRONLY
        .union(OFlags::APPEND)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);
    /// Creating a file that must not exist yet.
    const CREATE_NEW: OFlags = APPEND.union(OFlags::CREATE).union(OFlags::EXCL);
    /// Creating a file that must not exist yet, to read and write at offsets.
    const CREATE_RW: OFlags = OFlags::RDWR
        .union(OFlags::CREATE)
        .union(OFlags::EXCL)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);
    /// Reading, never through a symlink, never blocking on a FIFO.
    const READ: OFlags = OFlags::RDONLY
        .union(OFlags::NOFOLLOW)
        .union(OFlags::NONBLOCK)
        .union(OFlags::CLOEXEC);

    /// Opens the directory `name` relative to `at` and checks it; `path`
    /// names it in errors.
    fn open_dir_at(
        at: std::os::fd::BorrowedFd<'_>,
        name: &OsStr,
        path: &Path,
    ) -> io::Result<PrivateDir> {
        let fd = rustix::fs::openat(at, name, DIR, Mode::empty()).map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                refused(path, "a symbolic link or not a directory")
            }
            other => errno(other),
        })?;
        check(&fd, true, path)?;
        Ok(PrivateDir {
            fd,
            path: path.to_owned(),
        })
    }

    /// Checks an open descriptor's `fstat`: the expected type, owned by us,
    /// not writable by group or others (and, for files, one link only).
    pub(super) fn check(fd: &OwnedFd, dir: bool, path: &Path) -> io::Result<()> {
        let file = File::from(fd.try_clone()?);
        let meta = file.metadata()?;
        if dir && !meta.is_dir() {
            return Err(refused(path, "not a directory"));
        }
        if !dir && !meta.is_file() {
            return Err(refused(path, "not a regular file"));
        }
        if meta.uid() != euid() {
            return Err(refused(
                path,
                &format!("owned by uid {}, not by uid {}", meta.uid(), euid()),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refused(
                path,
                &format!(
                    "writable by group or others (mode {:o})",
                    meta.mode() & 0o7777
                ),
            ));
        }
        if !dir && meta.nlink() != 1 {
            return Err(refused(path, "has more than one link"));
        }
        Ok(())
    }

    impl PrivateDir {
        /// Opens `path` as a directory, creating it (mode 0700, its missing
        /// parents too) if needed, and checks it.
        pub(crate) fn open_or_create(path: &Path) -> io::Result<PrivateDir> {
            match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => {}
                Err(rustix::io::Errno::NOENT) => {
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                        let mut b = std::fs::DirBuilder::new();
                        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
                        b.recursive(true).create(parent)?;
                    }
                    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(errno(e)),
                    }
                }
                Err(e) => return Err(errno(e)),
            }
            PrivateDir::open(path)
        }

        /// Opens an existing directory and checks it.
        pub(crate) fn open(path: &Path) -> io::Result<PrivateDir> {
            open_dir_at(CWD, path.as_os_str(), path)
        }

        /// A subdirectory, created 0700 relative to this one if needed, then
        /// checked.
        pub(crate) fn subdir(&self, name: &OsStr) -> io::Result<PrivateDir> {
            match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(errno(e)),
            }
            open_dir_at(self.fd.as_fd(), name, &self.path.join(name))
        }

        /// Opens `name` for appending: created `O_EXCL` 0600 when new,
        /// otherwise used only if it is our own regular file.
        pub(crate) fn append(&self, name: &OsStr) -> io::Result<File> {
            match rustix::fs::openat(&self.fd, name, CREATE_NEW, Mode::from_raw_mode(0o600)) {
                Ok(fd) => Ok(File::from(fd)),
                Err(rustix::io::Errno::EXIST) => {
                    let fd = rustix::fs::openat(&self.fd, name, APPEND, Mode::empty())
                        .map_err(|e| self.file_error(name, e))?;
                    check(&fd, false, &self.path.join(name))?;
                    Ok(File::from(fd))
                }
                Err(e) => Err(self.file_error(name, e)),
            }
        }

        /// Creates `name` (`O_EXCL | O_NOFOLLOW`, 0600) to read and write at
        /// offsets; an existing name is an error.
        pub(crate) fn create_rw(&self, name: &OsStr) -> io::Result<File> {
            rustix::fs::openat(&self.fd, name, CREATE_RW, Mode::from_raw_mode(0o600))
                .map(File::from)
                .map_err(|e| self.file_error(name, e))
        }

        /// Opens `name` for reading if it is our own regular file (a FIFO
        /// or device is never waited on: the open is non-blocking).
        pub(crate) fn read(&self, name: &OsStr) -> io::Result<File> {
            let fd = rustix::fs::openat(&self.fd, name, READ, Mode::empty())
                .map_err(|e| self.file_error(name, e))?;
            check(&fd, false, &self.path.join(name))?;
            Ok(File::from(fd))
        }

        fn file_error(&self, name: &OsStr, e: rustix::io::Errno) -> io::Error {
            if e == rustix::io::Errno::LOOP {
                refused(&self.path.join(name), "a symbolic link")
            } else {
                errno(e)
            }
        }

        /// The names in the directory (without `.` and `..`).
        pub(crate) fn names(&self) -> io::Result<Vec<OsString>> {
            let mut dir = rustix::fs::Dir::read_from(&self.fd).map_err(errno)?;
            let mut out = Vec::new();
            while let Some(entry) = dir.read() {
                let entry = entry.map_err(errno)?;
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    out.push(OsStr::from_bytes(name).to_owned());
                }
            }
            Ok(out)
        }

        /// Removes a file of this directory.
        pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(errno)
        }

        /// Makes the directory's entries durable (after creating or removing
        /// files).
        pub(crate) fn sync(&self) -> io::Result<()> {
            rustix::fs::fsync(self.fd.as_fd()).map_err(errno)
        }
    }
}

#[cfg(unix)]
pub(crate) use imp::euid;

#[cfg(not(unix))]
#[path = "portable.rs"]
mod imp;

impl PrivateDir {
    /// The directory's path (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// errsnap's per-user state directory: `$XDG_STATE_HOME/errsnap`, else
/// `~/.local/state/errsnap`, else `$TMPDIR/errsnap-<uid>`; each created
/// 0700 and checked before use. The first that passes is returned; else
/// an error naming each candidate and why it was refused.
pub(crate) fn user_state_dir() -> io::Result<PrivateDir> {
    first_usable(&user_state_candidates())
}

fn first_usable(candidates: &[PathBuf]) -> io::Result<PrivateDir> {
    let mut refusals = Vec::new();
    for candidate in candidates {
        match PrivateDir::open_or_create(candidate) {
            Ok(d) => return Ok(d),
            // A refusal names its path already.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => refusals.push(e.to_string()),
            Err(e) => refusals.push(format!("{}: {e}", candidate.display())),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "no usable per-user state directory ({})",
            refusals.join("; ")
        ),
    ))
}

/// The per-user state directories that exist and pass the checks (for
/// imports and `errsnap check`; nothing is created), and the reasons for
/// those that exist but were refused.
pub(crate) fn existing_user_state_dirs() -> (Vec<PrivateDir>, Vec<io::Error>) {
    existing(&user_state_candidates())
}

fn existing(candidates: &[PathBuf]) -> (Vec<PrivateDir>, Vec<io::Error>) {
    let mut dirs = Vec::new();
    let mut refused = Vec::new();
    for p in candidates {
        if std::fs::symlink_metadata(p).is_err() {
            continue;
        }
        match PrivateDir::open(p) {
            Ok(d) => dirs.push(d),
            Err(e) => refused.push(e),
        }
    }
    (dirs, refused)
}

fn user_state_candidates() -> Vec<PathBuf> {
    #[cfg(unix)]
    let uid = euid().to_string();
    #[cfg(not(unix))]
    let uid = String::from("user");
    candidates_from(
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
        &std::env::temp_dir(),
        &uid,
    )
}

/// The candidates for these settings (relative `XDG_STATE_HOME` or `HOME`
/// values are ignored, as the XDG specification says).
fn candidates_from(
    xdg_state: Option<OsString>,
    home: Option<OsString>,
    tmp: &Path,
    uid: &str,
) -> Vec<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let mut out = Vec::new();
    if let Some(state) = xdg_state.and_then(absolute) {
        out.push(state.join("errsnap"));
    } else if let Some(home) = home.and_then(absolute) {
        out.push(home.join(".local/state/errsnap"));
    }
    out.push(tmp.join(format!("errsnap-{uid}")));
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_private_and_refuses_symlinks_and_open_modes() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a/b/state");
        let d = PrivateDir::open_or_create(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mut f = d.append(OsStr::new("x.jsonl")).unwrap();
        f.write_all(b"1\n").unwrap();
        let fmode = std::fs::metadata(p.join("x.jsonl"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(fmode, 0o600);
        // Appending again reuses our own file.
        d.append(OsStr::new("x.jsonl"))
            .unwrap()
            .write_all(b"2\n")
            .unwrap();
        assert_eq!(std::fs::read(p.join("x.jsonl")).unwrap(), b"1\n2\n");
        assert_eq!(d.names().unwrap(), vec![OsString::from("x.jsonl")]);

        // A symlinked file is refused for both appending and reading.
        std::os::unix::fs::symlink(p.join("x.jsonl"), p.join("link.jsonl")).unwrap();
        let err = d.append(OsStr::new("link.jsonl")).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = d.read(OsStr::new("link.jsonl")).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // Other failures keep the system's words.
        let err = d.read(OsStr::new("missing")).unwrap_err().to_string();
        assert!(!err.contains("symbolic link"), "{err}");
        // A hard link (two names for one file) is refused.
        std::fs::hard_link(p.join("x.jsonl"), p.join("hard.jsonl")).unwrap();
        assert!(d.read(OsStr::new("hard.jsonl")).is_err());
        assert!(d.append(OsStr::new("hard.jsonl")).is_err());
        // A FIFO is refused without blocking.
        let fifo = p.join("fifo.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(d.read(OsStr::new("fifo.jsonl")).is_err());

        // A symlinked directory is refused.
        let link = t.path().join("linked");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let err = PrivateDir::open(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // A directory others may write is refused, even an existing one.
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = PrivateDir::open_or_create(&open).unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o720)).unwrap();
        assert!(PrivateDir::open(&open).is_err());
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o702)).unwrap();
        assert!(PrivateDir::open(&open).is_err());
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(PrivateDir::open(&open).is_ok());
        // A file where a directory should be is refused.
        assert!(PrivateDir::open(&p.join("x.jsonl")).is_err());
        assert!(d.subdir(OsStr::new("x.jsonl")).is_err());
        let sub = d.subdir(OsStr::new("sub")).unwrap();
        assert_eq!(sub.path(), p.join("sub"));
        d.remove(OsStr::new("link.jsonl")).unwrap();
        assert!(!p.join("link.jsonl").exists());
    }

    #[allow(clippy::unwrap_used)]
    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    fn cloexec(fd: i32) -> bool {
        // SAFETY: F_GETFD on a descriptor we own.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        flags >= 0 && flags & libc::FD_CLOEXEC != 0
    }

    #[test]
    fn fifos_and_links_in_place_of_directories_are_refused_without_blocking() {
        // Without O_DIRECTORY an open of a FIFO would block forever; without
        // O_NOFOLLOW a link to a directory of ours would pass every check.
        let t = tempfile::tempdir().unwrap();
        let d = PrivateDir::open_or_create(&t.path().join("d")).unwrap();
        mkfifo(&t.path().join("fifo"));
        assert!(PrivateDir::open(&t.path().join("fifo")).is_err());
        mkfifo(&t.path().join("d/fifo"));
        assert!(d.subdir(OsStr::new("fifo")).is_err());
        let real = d.subdir(OsStr::new("real")).unwrap();
        std::os::unix::fs::symlink(real.path(), t.path().join("d/link")).unwrap();
        let err = d.subdir(OsStr::new("link")).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // Every descriptor is closed on exec (a child never inherits them).
        use std::os::fd::AsRawFd;
        assert!(cloexec(d.fd.as_raw_fd()));
        assert!(cloexec(real.fd.as_raw_fd()));
        let f = d.append(OsStr::new("f.jsonl")).unwrap();
        assert!(cloexec(f.as_raw_fd()));
        let g = d.append(OsStr::new("f.jsonl")).unwrap();
        assert!(cloexec(g.as_raw_fd()));
        assert!(cloexec(d.read(OsStr::new("f.jsonl")).unwrap().as_raw_fd()));
    }

    #[test]
    fn appends_go_to_the_end_and_new_files_are_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let d = PrivateDir::open_or_create(&t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/x"), b"first\n").unwrap();
        std::fs::set_permissions(t.path().join("d/x"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let mut f = d.append(OsStr::new("x")).unwrap();
        f.write_all(b"second\n").unwrap();
        assert_eq!(
            std::fs::read(t.path().join("d/x")).unwrap(),
            b"first\nsecond\n"
        );
        // Read-only descriptors cannot write.
        let mut r = d.read(OsStr::new("x")).unwrap();
        assert!(r.write_all(b"no").is_err());
    }

    #[test]
    fn candidates_follow_xdg_then_home_then_tmp() {
        let tmp = Path::new("/tmp");
        let c = candidates_from(Some("/state".into()), Some("/home/u".into()), tmp, "1000");
        assert_eq!(
            c,
            [
                PathBuf::from("/state/errsnap"),
                PathBuf::from("/tmp/errsnap-1000")
            ]
        );
        let c = candidates_from(Some("rel".into()), Some("/home/u".into()), tmp, "7");
        assert_eq!(
            c,
            [
                PathBuf::from("/home/u/.local/state/errsnap"),
                PathBuf::from("/tmp/errsnap-7")
            ]
        );
        let c = candidates_from(None, Some("".into()), tmp, "7");
        assert_eq!(c, [PathBuf::from("/tmp/errsnap-7")]);
        assert_eq!(
            user_state_candidates().last().map(|p| p.parent().is_some()),
            Some(true)
        );
    }

    #[test]
    fn the_first_usable_candidate_wins_and_refusals_are_named() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("file"), b"").unwrap();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let blocked = t.path().join("file/errsnap");
        let good = t.path().join("good");
        let d = first_usable(&[blocked.clone(), open.clone(), good.clone()]).unwrap();
        assert_eq!(d.path(), good);
        let err = first_usable(&[blocked.clone(), open.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{}: ", blocked.display())) && err.contains("refusing"),
            "{err}"
        );
        assert_eq!(err.matches(&open.display().to_string()).count(), 1, "{err}");
        // Existing ones only; a refused one comes back with its reason.
        let (dirs, refused) = existing(&[blocked, open, good.clone(), t.path().join("none")]);
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0].path(), good);
        assert_eq!(refused.len(), 1);
        assert!(refused[0]
            .to_string()
            .contains("writable by group or others"));
    }

    #[test]
    fn a_file_with_open_permissions_is_not_appended_to() {
        let t = tempfile::tempdir().unwrap();
        let d = PrivateDir::open_or_create(&t.path().join("s")).unwrap();
        let f = t.path().join("s/open.jsonl");
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o622)).unwrap();
        assert!(d.append(OsStr::new("open.jsonl")).is_err());
        assert!(d.read(OsStr::new("open.jsonl")).is_err());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(d.read(OsStr::new("open.jsonl")).is_ok());
    }
}
