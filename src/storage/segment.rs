//! Segment files: names, listing, and the blocking file operations used at start-up (recovery
//! repairs, the first preallocation). On the running shard the same steps go through the ring.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::WalError;

/// Name of the WAL's directory inside the data directory.
pub(crate) const WAL_DIR: &str = "wal";
const SUFFIX: &str = ".wal";
/// Digits of the zero-padded sequence number, so names sort in sequence order.
const SEQ_DIGITS: usize = 20;

/// File name of segment `seq`: `00000000000000000042.wal`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:0width$}{SUFFIX}", width = SEQ_DIGITS)
}

/// The sequence number in a segment file name, or `None` if the name is not one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir`, sorted by sequence number. Other files are left alone (and logged).
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let read = std::fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    let mut segments = Vec::new();
    for item in read {
        let item = item.map_err(|e| WalError::io("list", dir, e))?;
        let name = item.file_name();
        match name.to_str().and_then(parse_name) {
            Some(seq) => segments.push((seq, item.path())),
            None => tracing::warn!(
                file = %item.path().display(),
                "ignoring a file in the WAL directory that is not a segment"
            ),
        }
    }
    segments.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(segments)
}

/// `fsync`s a directory so the names created or removed in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    super::dir::sync(dir).map_err(|e| WalError::io("fsync directory", dir, e))
}

/// Opens a directory for `fsync` and `unlinkat` through the ring.
pub(crate) fn open_dir(dir: &Path) -> Result<File, WalError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| WalError::io("open directory", dir, e))
}

/// An exclusive `flock` on the WAL directory, held while this lives: two processes appending to
/// one WAL would interleave records and destroy it. (A child forked meanwhile shares the lock
/// until it execs or exits.)
///
/// The descriptor is its own and never handed to the ring: a file an io_uring request touched may
/// be released by a kernel worker after the request completes, which would let the lock outlive
/// its owner for a moment and refuse a restart in that window.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<Self, WalError> {
        let file = open_dir(dir)?;
        // SAFETY: flock on a descriptor `file` owns; no memory arguments.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(WalError::Locked {
                    dir: dir.to_owned(),
                });
            }
            return Err(WalError::io("lock directory", dir, error));
        }
        Ok(Self { _file: file })
    }
}

/// Creates segment file `seq` in `dir`, failing if it exists (a leftover is a logic error).
pub(crate) fn create(dir: &Path, seq: u64) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(file_name(seq));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| WalError::io("create segment", &path, e))?;
    Ok((file, path))
}

/// Opens an existing segment for reading and writing.
pub(crate) fn open(path: &Path) -> Result<File, WalError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| WalError::io("open segment", path, e))
}

/// Whether `fallocate(2)` mode 0 works on the file system of `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preallocation {
    /// Blocks reserved up front: later `fdatasync`s need not update the file size.
    Fallocate,
    /// The file system has no `fallocate`; the file was extended sparse with `ftruncate`.
    Sparse,
}

/// Extends `file` to `len_bytes` of zeros, reserving blocks where the file system can.
pub(crate) fn preallocate(
    file: &File,
    path: &Path,
    len_bytes: u64,
) -> Result<Preallocation, WalError> {
    let len = libc::off_t::try_from(len_bytes).expect("segment sizes are validated below 1 GiB");
    // SAFETY: fallocate on a descriptor `file` owns; no memory arguments.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(Preallocation::Fallocate);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(WalError::io("fallocate", path, error));
    }
    tracing::warn!(
        file = %path.display(),
        "the file system does not support fallocate; WAL segments are sparse, so every fdatasync \
         also writes block allocation metadata"
    );
    file.set_len(len_bytes)
        .map_err(|e| WalError::io("ftruncate", path, e))?;
    Ok(Preallocation::Sparse)
}

/// Cuts `file` at `keep_bytes` (the torn tail, or everything) and preallocates it back to
/// `len_bytes` of zeros, then syncs it: stale bytes of a torn write can never reappear after a
/// later, shorter record.
pub(crate) fn zero_from(
    file: &File,
    path: &Path,
    keep_bytes: u64,
    len_bytes: u64,
) -> Result<(), WalError> {
    file.set_len(keep_bytes)
        .map_err(|e| WalError::io("ftruncate", path, e))?;
    preallocate(file, path, len_bytes)?;
    file.sync_all().map_err(|e| WalError::io("fsync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_sequence_and_parse_back() {
        assert_eq!(file_name(42), "00000000000000000042.wal");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        for bad in [
            "42.wal",
            "00000000000000000042.tmp",
            "0000000000000000004x.wal",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
