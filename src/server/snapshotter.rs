//! Periodic snapshots and log compaction of one node (DESIGN.md §7).
//!
//! Every `storage.snapshot_every_entries` applied entries the loop encodes the store at the
//! applied index into memory (on the loop thread: O(store bytes), the one cost on the hot path —
//! counted in `/status` as `snapshot_encode_ns_last`) and hands the bytes to the
//! [`SnapshotStore`]'s writer thread (temp file, fsync, rename, fsync directory — off the loop).
//! Only once the writer reports the snapshot durable does the loop mark it in the WAL (whose old
//! segments are then unlinked) and compact the consensus log up to it, so a crash at any step
//! recovers from the previous snapshot plus the WAL tail.

use std::io::Cursor;
use std::sync::Arc;

use crate::consensus::SnapshotMeta;
use crate::storage::{DurableSnapshot, LogPosition, SnapshotError, SnapshotStore};
use crate::store::Store;

/// Schedules snapshot saves and remembers the newest snapshot.
#[derive(Debug)]
pub(super) struct Snapshotter {
    store: SnapshotStore,
    every_entries: u64,
    /// Index of the last snapshot taken (saved or being saved); 0 for none.
    taken_index: u64,
    /// The snapshot being saved.
    saving: Option<SnapshotMeta>,
}

/// What a save cost, for `/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Taken {
    pub index: u64,
    pub len_bytes: u64,
    pub encode_ns: u64,
}

impl Snapshotter {
    /// `recovered_index` is the index of the snapshot recovered at start-up (0: none).
    pub fn new(store: SnapshotStore, every_entries: u64, recovered_index: u64) -> Self {
        assert!(
            every_entries > 0,
            "snapshot_every_entries is validated >= 1"
        );
        Self {
            store,
            every_entries,
            taken_index: recovered_index,
            saving: None,
        }
    }

    /// Whether a snapshot at `applied` is due: enough entries since the last one and no save in
    /// progress.
    pub fn due(&self, applied: u64) -> bool {
        self.saving.is_none() && applied >= self.taken_index.saturating_add(self.every_entries)
    }

    /// Encodes `store` (applied up to `meta.index`) and starts saving it off the loop.
    pub fn begin(
        &mut self,
        store: &Store,
        meta: SnapshotMeta,
        clock_ns: impl Fn() -> u64,
    ) -> Result<Taken, SnapshotError> {
        assert_eq!(
            store.applied_index(),
            meta.index,
            "a snapshot is taken at the store's applied index"
        );
        let start_ns = clock_ns();
        let mut bytes = Vec::new();
        store
            .snapshot(&mut bytes)
            .expect("encoding into a Vec cannot fail");
        let data: Arc<[u8]> = bytes.into();
        let encode_ns = clock_ns().saturating_sub(start_ns);
        let mut membership = Vec::with_capacity(meta.membership.encoded_len());
        meta.membership.encode(&mut membership);
        let position = LogPosition {
            index: meta.index,
            term: meta.term,
        };
        self.store
            .begin_save(position, membership, Cursor::new(Arc::clone(&data)))?;
        self.taken_index = meta.index;
        let len_bytes = data.len() as u64;
        self.saving = Some(meta);
        Ok(Taken {
            index: meta.index,
            len_bytes,
            encode_ns,
        })
    }

    /// The outcome of the save in progress once it completed (never blocks).
    pub fn poll(&mut self) -> Option<Result<DurableSnapshot, SnapshotError>> {
        let outcome = self.store.poll()?;
        let saved = self.saving.take().expect("a save was in progress");
        if let Ok(durable) = &outcome {
            assert_eq!(durable.position().index, saved.index);
        }
        Some(outcome)
    }
}
