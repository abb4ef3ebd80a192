//! Storage: the write-ahead log, crash-safe snapshots and the durability modes (DESIGN.md §7).
//!
//! # On disk
//!
//! ```text
//!  <data dir>/wal/00000000000000000007.wal        segments of checksummed records (record.rs)
//!  <data dir>/snapshots/snap-<index>-<term>.snap  snapshots (snapshot.rs)
//! ```
//!
//! # The persistence contract with the consensus core
//!
//! The sans-IO core hands its host entries and hard states to persist, each batch with a must-sync
//! flag, and may send the messages that depend on them (vote grants, append acknowledgements) only
//! once they are durable. The host, on its shard, maps that onto the [`Wal`]:
//!
//! 1. [`Wal::append_entries`] (an append at or below the last index replaces the suffix),
//!    [`Wal::set_hard_state`], and, after a snapshot is durable, [`Wal::mark_snapshot`] — these
//!    only encode into a preallocated buffer;
//! 2. [`Wal::flush`]`(must_sync, now_ns)` once per loop iteration → a flush sequence number;
//! 3. [`Wal::poll`]`(now_ns)` every iteration → [`Durable`] `{ flush_seq, last, hard_state }`,
//!    cumulative and in order: everything flushed up to `flush_seq` is on disk. Only now may the
//!    messages that waited for those flushes leave.
//!
//! Nothing blocks: writes and syncs go through the WAL's own io_uring (one `write` and one linked
//! `fdatasync` per batch — group commit), and snapshots are written by a thread. Register the
//! shard's doorbell with [`Wal::register_eventfd`] and [`SnapshotStore::set_doorbell`] so a parked
//! shard wakes when either completes, and include [`Wal::has_pending_completions`] in its
//! `has_pending` check.
//!
//! # Durability modes
//!
//! - [`Durability::Fsync`] (default): every entry and hard state is written and `fdatasync`ed
//!   before it is reported durable. An acknowledged write survives every node losing power.
//! - [`Durability::Memory`]: replicated memory, as in Mu and DARE. Log entries and snapshots are
//!   **not** written: a write is safe while a quorum of replicas keeps it in memory, and
//!   [`Durable`] for entries is reported without touching the disk. The hard state's term and vote
//!   **are** still written and `fdatasync`ed (they change only at elections, so this costs
//!   nothing in steady state): a node that restarted and forgot its vote could vote twice in one
//!   term and elect two leaders. A restarted memory-mode node comes back with an empty log (its
//!   [`WalRecovery::last`] is index 0), so the consensus layer must treat it as recovering (no
//!   votes until it has caught up) — that part is the consensus layer's. It catches up by
//!   appending from index 1 or by installing a snapshot ([`Wal::mark_snapshot`] with
//!   `discard_suffix`) and appending after it.
//!
//! The mode is recorded in every segment header; starting in the other mode is refused
//! ([`WalError::ModeMismatch`]). Its display form (`fsync` / `memory`) is what `/status` and every
//! benchmark report show.
//!
//! # Recovery
//!
//! [`recover`] reads the WAL and the snapshots and checks they fit together. The host restores the
//! state machine from the loaded snapshot, replays [`WalRecovery::entries`], then calls
//! [`WalRecovery::start`] to get the running [`Wal`]. A torn tail (the last write of a crash) is
//! cut; damage anywhere else refuses to start with the file, offset and what to do (see
//! `recovery.rs`).
//!
//! # Crash tests
//!
//! With feature `failpoints` (test-only), every write step has a named
//! [`failpoint::Failpoint`] that aborts the process there; `tests/storage_crash.rs` runs a workload
//! in a child process, crashes it at each point, and checks in the parent that every acknowledged
//! write is recovered intact, nothing is invented, and the WAL accepts writes again.

use std::path::Path;

/// Stops the process at the named [`failpoint::Failpoint`] if it is armed and due; nothing without
/// feature `failpoints`.
macro_rules! failpoint {
    ($point:ident) => {
        #[cfg(feature = "failpoints")]
        {
            use $crate::storage::failpoint::{crash, fires, Failpoint};
            if fires(Failpoint::$point) {
                crash(Failpoint::$point);
            }
        }
    };
}

mod dir;
mod durability;
mod error;
#[cfg(feature = "failpoints")]
pub mod failpoint;
mod record;
mod recovery;
mod segment;
mod snapshot;
mod state;
mod wal;

pub use durability::Durability;
pub use error::{CorruptReason, WalError, WalOptionsError};
pub use record::{HeaderFault, Malformed, RecordFault, SEGMENT_HEADER_LEN};
pub use recovery::{EntryReader, TornTail, WalRecovery};
pub use snapshot::{
    DurableSnapshot, LoadedSnapshot, SnapshotData, SnapshotError, SnapshotOptions, SnapshotStore,
    MEMBERSHIP_BYTES_MAX, SNAPSHOT_HEADER_LEN,
};
pub use state::{Entry, EntryRef, HardState, LogPosition, LogRuleError};
pub use wal::{Durable, Wal, WalOptions, WalStats};

/// Settings for the WAL and the snapshot store of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// WAL settings, including the durability mode both use.
    pub wal: WalOptions,
    /// How many snapshots to keep.
    pub snapshots_kept: usize,
}

impl StorageOptions {
    /// The storage settings of a node's validated configuration (`durability` and `[storage]`).
    /// Write buffers keep their default size, capped at the segment size so a full batch always
    /// fits a fresh segment. Values outside what storage supports are refused when it opens.
    pub fn from_config(durability: Durability, storage: &crate::config::Storage) -> Self {
        let segment_bytes = storage.wal_segment_bytes;
        let buffer_bytes = usize::try_from(segment_bytes)
            .map_or(WalOptions::BUFFER_BYTES_DEFAULT, |segment| {
                segment.min(WalOptions::BUFFER_BYTES_DEFAULT)
            });
        Self {
            wal: WalOptions {
                durability,
                segment_bytes,
                buffer_bytes,
            },
            snapshots_kept: usize::try_from(storage.snapshots_kept).unwrap_or(usize::MAX),
        }
    }
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            wal: WalOptions::default(),
            snapshots_kept: SnapshotOptions::KEEP_DEFAULT,
        }
    }
}

/// What [`recover`] found.
#[derive(Debug)]
pub struct Recovered {
    /// The WAL's state and entries; [`WalRecovery::start`] it after replaying the entries.
    pub wal: WalRecovery,
    /// The snapshot store, ready to write.
    pub snapshots: SnapshotStore,
    /// The newest valid snapshot, if any; restore the state machine from it first.
    pub snapshot: Option<LoadedSnapshot>,
}

/// Why storage could not be recovered.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The WAL failed to recover.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The snapshot store failed to open.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The WAL was compacted past every valid snapshot: the entries in between are gone.
    #[error(
        "the WAL is compacted up to index {compacted_index} (term {compacted_term}) but the newest \
         valid snapshot is {newest}; the entries in between are lost, so this node refuses to \
         start: restore it from a peer (move its data directory aside and rejoin)"
    )]
    SnapshotMissing {
        /// Where the WAL's log starts after.
        compacted_index: u64,
        /// Term there.
        compacted_term: u64,
        /// The newest valid snapshot, described.
        newest: String,
    },
}

/// Recovers a node's storage under `data_dir`: the WAL (verified, torn tail found) and the newest
/// valid snapshot, checked to cover everything the WAL compacted away.
pub fn recover(data_dir: &Path, options: &StorageOptions) -> Result<Recovered, StorageError> {
    let wal = WalRecovery::open(data_dir, options.wal.clone())?;
    let (snapshots, snapshot) = SnapshotStore::open(
        data_dir,
        SnapshotOptions {
            durability: options.wal.durability,
            keep: options.snapshots_kept,
        },
    )?;
    check_snapshot_covers_log(wal.compacted(), snapshot.as_ref())?;
    Ok(Recovered {
        wal,
        snapshots,
        snapshot,
    })
}

/// Checks that `snapshot` covers the log up to `compacted` (where the WAL's entries start after).
pub fn check_snapshot_covers_log(
    compacted: LogPosition,
    snapshot: Option<&LoadedSnapshot>,
) -> Result<(), StorageError> {
    if compacted.index == 0 {
        return Ok(());
    }
    let covers =
        snapshot.is_some_and(|s| s.position.index > compacted.index || s.position == compacted);
    if covers {
        return Ok(());
    }
    Err(StorageError::SnapshotMissing {
        compacted_index: compacted.index,
        compacted_term: compacted.term,
        newest: snapshot.map_or_else(
            || "none".to_owned(),
            |s| format!("at index {} (term {})", s.position.index, s.position.term),
        ),
    })
}
