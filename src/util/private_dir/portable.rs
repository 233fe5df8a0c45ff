//! [`PrivateDir`] where there are no Unix permissions: no other user to
//! guard against here, plain file-system calls.

use super::*;

impl PrivateDir {
    pub(crate) fn open_or_create(path: &Path) -> io::Result<PrivateDir> {
        std::fs::create_dir_all(path)?;
        PrivateDir::open(path)
    }
    pub(crate) fn open(path: &Path) -> io::Result<PrivateDir> {
        if !std::fs::symlink_metadata(path)?.is_dir() {
            return Err(refused(path, "not a directory"));
        }
        Ok(PrivateDir {
            path: path.to_owned(),
        })
    }
    pub(crate) fn subdir(&self, name: &OsStr) -> io::Result<PrivateDir> {
        PrivateDir::open_or_create(&self.path.join(name))
    }
    pub(crate) fn append(&self, name: &OsStr) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(name))
    }
    pub(crate) fn create_rw(&self, name: &OsStr) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(self.path.join(name))
    }
    pub(crate) fn read(&self, name: &OsStr) -> io::Result<File> {
        File::open(self.path.join(name))
    }
    pub(crate) fn names(&self) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(&self.path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}
