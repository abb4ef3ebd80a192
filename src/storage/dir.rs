//! Directory operations shared by the WAL and the snapshot store: a name created, renamed or
//! removed in a directory is durable only once the directory itself is synced.

use std::fs::File;
use std::path::Path;

/// `fsync`s a directory so the names created, renamed or removed in it are durable.
pub(crate) fn sync(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its parents if missing, syncing the parent so the new name is durable.
pub(crate) fn ensure(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) => sync(parent),
        None => Ok(()),
    }
}
