//! Failpoints for crash tests (feature `failpoints`, never in production builds).
//!
//! A failpoint is a named step of a write — before the write, after it but before the sync, after
//! a snapshot's rename, … When the armed point is reached for the `skip + 1`-th time, the process
//! aborts right there (for [`Failpoint::WalTornWrite`], after writing only part of the batch), the
//! way a power cut or `kill -9` would stop it. Crash tests run the workload in a child process, arm
//! one point, and recover in the parent.
//!
//! One process-wide point at a time: the child arms it once, before its workload starts.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Every step of a write at which a crash test can stop the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failpoint {
    /// A batch is ready to be written; nothing of it reached the file.
    WalBeforeWrite,
    /// Only part of a batch reached the file: it ends in the middle of its last record.
    WalTornWrite,
    /// The whole batch was written (page cache) but not synced.
    WalAfterWriteBeforeSync,
    /// The batch was synced, but the host was not told yet.
    WalAfterSyncBeforeDurable,
    /// The next segment's file was created but not preallocated or synced.
    WalSegmentCreated,
    /// The first batch of a fresh segment is about to be written (the roll).
    WalSegmentRoll,
    /// The first fully compacted segment was unlinked; the directory was not synced.
    WalSegmentDelete,
    /// A snapshot's temporary file is fully written but not synced.
    SnapshotTempWritten,
    /// A snapshot's temporary file is synced but not renamed.
    SnapshotTempSynced,
    /// A snapshot was renamed into place; its directory was not synced.
    SnapshotRenamed,
    /// A snapshot's directory was synced; older snapshots were not pruned and the host was not
    /// told yet.
    SnapshotDirSynced,
}

impl Failpoint {
    /// Every failpoint, for tests that iterate over them.
    pub const ALL: [Self; 11] = [
        Self::WalBeforeWrite,
        Self::WalTornWrite,
        Self::WalAfterWriteBeforeSync,
        Self::WalAfterSyncBeforeDurable,
        Self::WalSegmentCreated,
        Self::WalSegmentRoll,
        Self::WalSegmentDelete,
        Self::SnapshotTempWritten,
        Self::SnapshotTempSynced,
        Self::SnapshotRenamed,
        Self::SnapshotDirSynced,
    ];

    /// A stable name, e.g. for passing the point to a child process.
    pub fn name(self) -> &'static str {
        match self {
            Self::WalBeforeWrite => "wal-before-write",
            Self::WalTornWrite => "wal-torn-write",
            Self::WalAfterWriteBeforeSync => "wal-after-write-before-sync",
            Self::WalAfterSyncBeforeDurable => "wal-after-sync-before-durable",
            Self::WalSegmentCreated => "wal-segment-created",
            Self::WalSegmentRoll => "wal-segment-roll",
            Self::WalSegmentDelete => "wal-segment-delete",
            Self::SnapshotTempWritten => "snapshot-temp-written",
            Self::SnapshotTempSynced => "snapshot-temp-synced",
            Self::SnapshotRenamed => "snapshot-renamed",
            Self::SnapshotDirSynced => "snapshot-dir-synced",
        }
    }

    /// Inverse of [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn id(self) -> usize {
        Self::ALL
            .iter()
            .position(|&p| p == self)
            .expect("ALL lists every failpoint")
            + 1
    }
}

/// The armed point's id (0: none) and how many hits remain before it fires.
static ARMED: AtomicUsize = AtomicUsize::new(0);
static SKIP: AtomicU64 = AtomicU64::new(0);

/// Arms `point` to fire on its `skip + 1`-th hit (and never again after that).
pub fn arm(point: Failpoint, skip: u64) {
    SKIP.store(skip, Ordering::SeqCst);
    ARMED.store(point.id(), Ordering::SeqCst);
}

/// Disarms whatever point is armed.
pub fn disarm() {
    ARMED.store(0, Ordering::SeqCst);
}

/// Counts a hit of `point`; true when it must fire now.
pub(crate) fn fires(point: Failpoint) -> bool {
    if ARMED.load(Ordering::SeqCst) != point.id() {
        return false;
    }
    let previous = SKIP.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if previous.is_ok() {
        return false;
    }
    disarm();
    true
}

/// Stops the process at `point`, as a crash would.
pub(crate) fn crash(point: Failpoint) -> ! {
    eprintln!("failpoint {} fired: aborting", point.name());
    std::process::abort()
}

/// Writes `bytes` to `file` at `offset` with plain `pwrite`s, for failpoints that must leave a
/// (partial) write in the file before crashing. Crash-test-only, so it panics on failure.
pub(crate) fn write_synchronously(file: &impl AsRawFd, bytes: &[u8], offset: u64) {
    let mut written = 0usize;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: writes from a live slice to a descriptor the caller owns.
        let n = unsafe {
            libc::pwrite(
                file.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                libc::off_t::try_from(offset + written as u64).expect("offset fits off_t"),
            )
        };
        assert!(
            n > 0,
            "failpoint pwrite failed: {}",
            std::io::Error::last_os_error()
        );
        written += usize::try_from(n).expect("positive");
    }
}
