//! Crash-safe snapshot files, written off the shard by a writer thread.
//!
//! `snapshots/snap-<index>-<term>.snap` (both zero-padded to 20 digits):
//!
//! ```text
//!  0  magic "AURSNAP\0"      8  version u32     12 membership length u32
//!  16 index u64              24 term u64        32 data length u64
//!  40 crc32c of membership ‖ data u32           44 crc32c of bytes 0..44 u32
//!  48 membership bytes, then data bytes
//! ```
//!
//! Writing: a temporary file (`….snap.tmp`) is written with bounded buffers (the data is streamed
//! from the caller's reader), its header last, then `fsync`, `rename` onto the final name, `fsync`
//! of the directory. Only then is the snapshot durable — which the store vouches for with a
//! [`DurableSnapshot`], the only thing [`Wal::mark_snapshot`](super::Wal::mark_snapshot) accepts, so
//! the log can never be compacted past a snapshot that might still vanish. The newest
//! [`SnapshotOptions::keep`] snapshots are kept, older ones deleted.
//!
//! Loading: leftover temporary files (a crash mid-write) are removed; the newest snapshot whose
//! header and checksums verify is chosen, and a damaged newer one is skipped with a warning. Its
//! data is streamed back by [`LoadedSnapshot::open_data`], which verifies the checksum again.
//!
//! In `memory` mode nothing is written: a save completes at the next [`SnapshotStore::poll`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::state::LogPosition;
use super::Durability;
use crate::runtime::Doorbell;

/// Name of the snapshot directory inside the data directory.
pub(crate) const SNAPSHOT_DIR: &str = "snapshots";
const MAGIC: [u8; 8] = *b"AURSNAP\0";
const VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const SNAPSHOT_HEADER_LEN: usize = 48;
/// Largest membership section accepted (it is held in memory whole).
pub const MEMBERSHIP_BYTES_MAX: usize = 1 << 20;
/// Buffer for streaming snapshot data in and out.
const CHUNK_BYTES: usize = 256 << 10;
const TEMP_SUFFIX: &str = ".tmp";

/// Proof that a snapshot at [`position`](Self::position) is durable. Only the snapshot store
/// creates one (when a save completes, or for the snapshot it loaded at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableSnapshot {
    position: LogPosition,
}

impl DurableSnapshot {
    /// The log position the snapshot covers.
    pub fn position(&self) -> LogPosition {
        self.position
    }
}

/// Snapshot store settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// In `memory` mode no file is written.
    pub durability: Durability,
    /// How many of the newest snapshots to keep (older ones are deleted once a new one is durable).
    pub keep: usize,
}

impl SnapshotOptions {
    /// Default number of snapshots kept: the newest and one fallback.
    pub const KEEP_DEFAULT: usize = 2;
    /// Most snapshots kept (the configuration's bound too).
    pub const KEEP_MAX: usize = 100;
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            keep: Self::KEEP_DEFAULT,
        }
    }
}

/// Everything the snapshot store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// `keep` out of range.
    #[error("snapshots keep = {keep} is invalid: keep between 1 and {max} snapshots")]
    Keep {
        /// The rejected value.
        keep: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A file operation failed.
    #[error("snapshot: {op} {path} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// Reading the snapshot data from the caller's source failed; nothing was made durable.
    #[error("reading the data of snapshot {index}/{term} from its source failed: {source}")]
    Source {
        /// Index of the snapshot.
        index: u64,
        /// Term of the snapshot.
        term: u64,
        /// The reader's error.
        source: std::io::Error,
    },
    /// Another snapshot is still being written.
    #[error("snapshot {index}/{term} is still being written; poll until it completes before starting another")]
    Busy {
        /// Index of the snapshot in progress.
        index: u64,
        /// Term of the snapshot in progress.
        term: u64,
    },
    /// The membership section is too large.
    #[error("snapshot membership of {len_bytes} bytes exceeds the limit of {MEMBERSHIP_BYTES_MAX} bytes")]
    MembershipTooLarge {
        /// Its size.
        len_bytes: usize,
    },
    /// A snapshot file does not verify.
    #[error("snapshot {path} is invalid: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// The writer thread died without reporting (a panic).
    #[error("the snapshot writer thread panicked; the snapshot was not made durable")]
    WriterPanicked,
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> SnapshotError {
    SnapshotError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn file_name(position: LogPosition) -> String {
    format!("snap-{:020}-{:020}.snap", position.index, position.term)
}

fn parse_name(name: &str) -> Option<LogPosition> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let (index, term) = rest.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(term) {
        return None;
    }
    Some(LogPosition {
        index: index.parse().ok()?,
        term: term.parse().ok()?,
    })
}

/// The fixed header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    position: LogPosition,
    membership_len: u32,
    data_len: u64,
    body_crc: u32,
}

impl Header {
    fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut bytes = [0u8; SNAPSHOT_HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.membership_len.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.position.index.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.position.term.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.data_len.to_le_bytes());
        bytes[40..44].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[0..44]);
        bytes[44..48].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8; SNAPSHOT_HEADER_LEN]) -> Result<Self, &'static str> {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if bytes[0..8] != MAGIC {
            return Err("bad magic: not an Aurora snapshot");
        }
        if crc32c::crc32c(&bytes[0..44]) != u32_at(44) {
            return Err("header checksum mismatch");
        }
        if u32_at(8) != VERSION {
            return Err("unsupported snapshot format version");
        }
        Ok(Self {
            membership_len: u32_at(12),
            position: LogPosition {
                index: u64_at(16),
                term: u64_at(24),
            },
            data_len: u64_at(32),
            body_crc: u32_at(40),
        })
    }
}

/// A snapshot found valid at start-up. Its data is read with [`open_data`](Self::open_data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSnapshot {
    /// The log position it covers.
    pub position: LogPosition,
    /// The cluster membership bytes stored with it.
    pub membership: Vec<u8>,
    /// Length of the state-machine data.
    pub data_len_bytes: u64,
    path: PathBuf,
    body_crc: u32,
}

impl LoadedSnapshot {
    /// Proof of durability, for [`Wal::mark_snapshot`](super::Wal::mark_snapshot).
    pub fn durable(&self) -> DurableSnapshot {
        DurableSnapshot {
            position: self.position,
        }
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Streams the state-machine data back; the checksum is verified again when the last byte is
    /// read (a mismatch is an `InvalidData` error then).
    pub fn open_data(&self) -> Result<SnapshotData, SnapshotError> {
        let file = File::open(&self.path).map_err(|e| io_error("open", &self.path, e))?;
        let membership_len = self.membership.len() as u64;
        Ok(SnapshotData {
            file,
            offset: SNAPSHOT_HEADER_LEN as u64 + membership_len,
            remaining: self.data_len_bytes,
            crc: crc32c::crc32c(&self.membership),
            expected_crc: self.body_crc,
        })
    }
}

/// The data of a [`LoadedSnapshot`], as a reader.
#[derive(Debug)]
pub struct SnapshotData {
    file: File,
    offset: u64,
    remaining: u64,
    crc: u32,
    expected_crc: u32,
}

impl Read for SnapshotData {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "snapshot file shorter than its header says",
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.offset += n as u64;
        self.remaining -= n as u64;
        if self.remaining == 0 && self.crc != self.expected_crc {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "snapshot data checksum mismatch (the file changed since it was loaded)",
            ));
        }
        Ok(n)
    }
}

/// The writer thread of the save in progress.
#[derive(Debug)]
struct Writer {
    position: LogPosition,
    done: mpsc::Receiver<Result<DurableSnapshot, SnapshotError>>,
    /// Set by the writer after it sent its outcome, before it notifies the doorbell.
    finished: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Raises the writer's `finished` flag, then rings the shard's doorbell (the producer side of the
/// doorbell protocol: publish, then notify).
struct FinishSignal {
    finished: Arc<AtomicBool>,
    doorbell: Option<Arc<Doorbell>>,
}

impl Drop for FinishSignal {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Release);
        if let Some(doorbell) = &self.doorbell {
            doorbell.notify();
        }
    }
}

/// Writes snapshots on a background thread and finds the newest valid one at start-up.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    options: SnapshotOptions,
    doorbell: Option<Arc<Doorbell>>,
    writer: Option<Writer>,
    /// Memory mode: a save that completes at the next poll.
    completed_in_memory: Option<DurableSnapshot>,
}

impl SnapshotStore {
    /// Opens the store under `data_dir` and loads the newest valid snapshot (removing leftover
    /// temporary files). In `memory` mode it touches no file and loads nothing.
    pub fn open(
        data_dir: &Path,
        options: SnapshotOptions,
    ) -> Result<(Self, Option<LoadedSnapshot>), SnapshotError> {
        if options.keep == 0 || options.keep > SnapshotOptions::KEEP_MAX {
            return Err(SnapshotError::Keep {
                keep: options.keep,
                max: SnapshotOptions::KEEP_MAX,
            });
        }
        let dir = data_dir.join(SNAPSHOT_DIR);
        let store = Self {
            dir,
            options,
            doorbell: None,
            writer: None,
            completed_in_memory: None,
        };
        if options.durability == Durability::Memory {
            return Ok((store, None));
        }
        super::dir::ensure(&store.dir).map_err(|e| io_error("create directory", &store.dir, e))?;
        let loaded = load_newest(&store.dir)?;
        Ok((store, loaded))
    }

    /// Rings `doorbell` when a save completes, so a parked shard wakes to [`poll`](Self::poll).
    pub fn set_doorbell(&mut self, doorbell: Arc<Doorbell>) {
        self.doorbell = Some(doorbell);
    }

    /// The snapshot being written (or written and not yet polled), if any.
    pub fn saving(&self) -> Option<LogPosition> {
        self.writer
            .as_ref()
            .map(|w| w.position)
            .or(self.completed_in_memory.map(|done| done.position))
    }

    /// Starts writing a snapshot at `position` on a writer thread, streaming `data` from the
    /// reader; returns at once. One save at a time until its outcome is polled
    /// ([`SnapshotError::Busy`] otherwise). The outcome arrives through [`poll`](Self::poll).
    pub fn begin_save<R>(
        &mut self,
        position: LogPosition,
        membership: Vec<u8>,
        data: R,
    ) -> Result<(), SnapshotError>
    where
        R: Read + Send + 'static,
    {
        let in_progress = self
            .writer
            .as_ref()
            .map(|w| w.position)
            .or(self.completed_in_memory.map(|done| done.position));
        if let Some(position) = in_progress {
            return Err(SnapshotError::Busy {
                index: position.index,
                term: position.term,
            });
        }
        if membership.len() > MEMBERSHIP_BYTES_MAX {
            return Err(SnapshotError::MembershipTooLarge {
                len_bytes: membership.len(),
            });
        }
        if self.options.durability == Durability::Memory {
            self.completed_in_memory = Some(DurableSnapshot { position });
            return Ok(());
        }
        let (sender, done) = mpsc::sync_channel(1);
        let dir = self.dir.clone();
        let keep = self.options.keep;
        let doorbell = self.doorbell.clone();
        let finished = Arc::new(AtomicBool::new(false));
        let finished_by_writer = Arc::clone(&finished);
        let thread = std::thread::Builder::new()
            .name(format!("aurora-snapshot-{}", position.index))
            .spawn(move || {
                // Dropped last, also when unwinding: the outcome (or the disconnect) is visible
                // before the flag and the ring.
                let _finish = FinishSignal {
                    finished: finished_by_writer,
                    doorbell,
                };
                let result = write_snapshot(&dir, position, &membership, data, keep);
                // The store may have been dropped meanwhile; then nobody needs the outcome.
                let _ = sender.send(result);
            })
            .map_err(|e| io_error("spawn writer thread for", &self.dir, e))?;
        self.writer = Some(Writer {
            position,
            done,
            finished,
            thread,
        });
        Ok(())
    }

    /// Whether a save completed and [`poll`](Self::poll) would return its outcome: part of the
    /// shard's `has_pending` check before it parks.
    pub fn has_completed(&self) -> bool {
        self.completed_in_memory.is_some()
            || self
                .writer
                .as_ref()
                .is_some_and(|w| w.finished.load(Ordering::Acquire))
    }

    /// The outcome of the save in progress, once it completed; never blocks.
    pub fn poll(&mut self) -> Option<Result<DurableSnapshot, SnapshotError>> {
        if let Some(done) = self.completed_in_memory.take() {
            return Some(Ok(done));
        }
        let writer = self.writer.as_ref()?;
        let outcome = match writer.done.try_recv() {
            Ok(outcome) => outcome,
            Err(mpsc::TryRecvError::Empty) => return None,
            Err(mpsc::TryRecvError::Disconnected) => Err(SnapshotError::WriterPanicked),
        };
        self.finish_writer();
        Some(outcome)
    }

    /// Blocks until the save in progress completes (`None` if there is none). For start-up,
    /// shutdown and tests — never on the shard's loop.
    pub fn wait(&mut self) -> Option<Result<DurableSnapshot, SnapshotError>> {
        if let Some(done) = self.completed_in_memory.take() {
            return Some(Ok(done));
        }
        let writer = self.writer.as_ref()?;
        let outcome = writer
            .done
            .recv()
            .unwrap_or(Err(SnapshotError::WriterPanicked));
        self.finish_writer();
        Some(outcome)
    }

    fn finish_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            // The thread has sent its outcome (or died), so this returns promptly.
            let _ = writer.thread.join();
        }
    }
}

impl Drop for SnapshotStore {
    /// Lets a save in progress finish: a half-written snapshot would only be a temporary file, but
    /// a detached writer could outlive the node's shutdown.
    fn drop(&mut self) {
        self.finish_writer();
    }
}

/// Runs on the writer thread: temp file, stream, header, fsync, rename, fsync directory, prune.
fn write_snapshot<R: Read>(
    dir: &Path,
    position: LogPosition,
    membership: &[u8],
    mut data: R,
    keep: usize,
) -> Result<DurableSnapshot, SnapshotError> {
    let final_path = dir.join(file_name(position));
    let temp_path = dir.join(format!("{}{TEMP_SUFFIX}", file_name(position)));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(|e| io_error("create", &temp_path, e))?;
    let write = |file: &mut File, bytes: &[u8]| {
        file.write_all(bytes)
            .map_err(|e| io_error("write", &temp_path, e))
    };
    write(&mut file, &[0u8; SNAPSHOT_HEADER_LEN])?;
    write(&mut file, membership)?;
    let mut crc = crc32c::crc32c(membership);
    let mut data_len: u64 = 0;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    // Bounded by the source's length: each pass consumes at least one byte or ends.
    loop {
        let n = match data.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                let _ = std::fs::remove_file(&temp_path);
                return Err(SnapshotError::Source {
                    index: position.index,
                    term: position.term,
                    source,
                });
            }
        };
        crc = crc32c::crc32c_append(crc, &chunk[..n]);
        write(&mut file, &chunk[..n])?;
        data_len += n as u64;
    }
    let header = Header {
        position,
        membership_len: u32::try_from(membership.len())
            .expect("checked against MEMBERSHIP_BYTES_MAX"),
        data_len,
        body_crc: crc,
    };
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| io_error("write header of", &temp_path, e))?;
    failpoint!(SnapshotTempWritten);
    file.sync_all()
        .map_err(|e| io_error("fsync", &temp_path, e))?;
    drop(file);
    failpoint!(SnapshotTempSynced);
    std::fs::rename(&temp_path, &final_path).map_err(|e| io_error("rename", &temp_path, e))?;
    failpoint!(SnapshotRenamed);
    fsync_dir(dir)?;
    failpoint!(SnapshotDirSynced);
    prune(dir, keep)?;
    Ok(DurableSnapshot { position })
}

fn fsync_dir(dir: &Path) -> Result<(), SnapshotError> {
    super::dir::sync(dir).map_err(|e| io_error("fsync directory", dir, e))
}

/// The snapshot files in `dir`, newest first; temporary files are removed.
fn list(dir: &Path) -> Result<Vec<(LogPosition, PathBuf)>, SnapshotError> {
    let mut snapshots = Vec::new();
    let mut removed = false;
    for item in std::fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
        let item = item.map_err(|e| io_error("list", dir, e))?;
        let path = item.path();
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(TEMP_SUFFIX) {
            tracing::warn!(file = %path.display(), "removing a snapshot left half-written by a crash");
            std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
            removed = true;
        } else if let Some(position) = parse_name(&name) {
            snapshots.push((position, path));
        } else {
            tracing::warn!(file = %path.display(), "ignoring a file in the snapshot directory that is not a snapshot");
        }
    }
    if removed {
        fsync_dir(dir)?;
    }
    snapshots.sort_unstable_by_key(|(position, _)| std::cmp::Reverse(*position));
    Ok(snapshots)
}

fn load_newest(dir: &Path) -> Result<Option<LoadedSnapshot>, SnapshotError> {
    for (position, path) in list(dir)? {
        match validate(&path, position) {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(SnapshotError::Invalid { path, what }) => tracing::warn!(
                file = %path.display(), problem = what,
                "skipping an invalid snapshot; trying the next older one"
            ),
            Err(other) => return Err(other),
        }
    }
    Ok(None)
}

/// Reads the whole file, checking header, name, lengths and checksum.
fn validate(path: &Path, named: LogPosition) -> Result<LoadedSnapshot, SnapshotError> {
    let invalid = |what| SnapshotError::Invalid {
        path: path.to_owned(),
        what,
    };
    let mut file = File::open(path).map_err(|e| io_error("open", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| io_error("stat", path, e))?
        .len();
    let mut header_bytes = [0u8; SNAPSHOT_HEADER_LEN];
    if file_len < SNAPSHOT_HEADER_LEN as u64 {
        return Err(invalid("shorter than the header"));
    }
    file.read_exact(&mut header_bytes)
        .map_err(|e| io_error("read", path, e))?;
    let header = Header::decode(&header_bytes).map_err(invalid)?;
    if header.position != named {
        return Err(invalid("the header's index/term differ from the file name"));
    }
    if header.membership_len as usize > MEMBERSHIP_BYTES_MAX {
        return Err(invalid("membership section larger than the limit"));
    }
    let expected_len = (SNAPSHOT_HEADER_LEN as u64)
        .checked_add(u64::from(header.membership_len))
        .and_then(|n| n.checked_add(header.data_len));
    if expected_len != Some(file_len) {
        return Err(invalid(
            "file length differs from the lengths in the header",
        ));
    }
    let mut membership = vec![0u8; header.membership_len as usize];
    file.read_exact(&mut membership)
        .map_err(|e| io_error("read", path, e))?;
    let mut crc = crc32c::crc32c(&membership);
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut remaining = header.data_len;
    // Bounded by the data length checked above.
    while remaining > 0 {
        let want = chunk
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        file.read_exact(&mut chunk[..want])
            .map_err(|e| io_error("read", path, e))?;
        crc = crc32c::crc32c_append(crc, &chunk[..want]);
        remaining -= want as u64;
    }
    if crc != header.body_crc {
        return Err(invalid("data checksum mismatch"));
    }
    Ok(LoadedSnapshot {
        position: header.position,
        membership,
        data_len_bytes: header.data_len,
        path: path.to_owned(),
        body_crc: header.body_crc,
    })
}

/// Deletes all but the newest `keep` snapshots.
fn prune(dir: &Path, keep: usize) -> Result<(), SnapshotError> {
    let snapshots = list(dir)?;
    if snapshots.len() <= keep {
        return Ok(());
    }
    for (_, path) in &snapshots[keep..] {
        std::fs::remove_file(path).map_err(|e| io_error("remove", path, e))?;
    }
    fsync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_position() {
        let position = LogPosition { index: 12, term: 3 };
        assert_eq!(parse_name(&file_name(position)), Some(position));
        assert_eq!(parse_name("snap-12-3.snap"), None);
        assert_eq!(parse_name(&format!("{}.tmp", file_name(position))), None);
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let header = Header {
            position: LogPosition { index: 7, term: 2 },
            membership_len: 5,
            data_len: 99,
            body_crc: 0xdead_beef,
        };
        let mut bytes = header.encode();
        assert_eq!(Header::decode(&bytes), Ok(header));
        bytes[20] ^= 1;
        assert_eq!(Header::decode(&bytes), Err("header checksum mismatch"));
    }
}
