//! Where a logger's events go: the canonical path of its file, and the
//! backend (the file, or a PostgreSQL, MySQL or MariaDB database) its
//! settings name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::settings::Settings;

/// Where the events go: the file, or the server database the settings
/// name.
pub(super) fn backend_of(s: &Settings) -> Result<crate::store::Backend> {
    let Some(url) = &s.database_url else {
        return Ok(crate::store::Backend::File);
    };
    crate::store::backend_for(url, s.database_password.as_deref(), s.tls_ca_file.clone())
}

/// The canonical form of a database path, so two spellings of one file share
/// one writer. The parent directory must exist.
pub(super) fn absolute(path: &Path) -> Result<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        Error::config(
            "ERRSNAP_DB_PATH",
            format!("{:?}: expected a file path", path.display().to_string()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| Error::io(format!("finding the directory of {}", path.display()), e))?;
    Ok(parent.join(file_name))
}
