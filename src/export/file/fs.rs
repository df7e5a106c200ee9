//! File-system helpers: directories and files created with exact permissions, whatever the umask.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Creates `dir` (and its parents) if missing, and sets `mode` on it when this call created it.
pub(crate) fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    // The umask may have removed bits the operator asked for.
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// Opens `path` for appending, creating it with exactly `mode` if missing.
pub(crate) fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)?;
    if !existed {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(file)
}

/// An error that names the path it concerns.
pub(crate) fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}
