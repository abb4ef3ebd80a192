//! Periodic snapshots and log compaction of one node (DESIGN.md §7).
//!
//! Every `storage.snapshot_every_entries` applied entries the loop encodes the store at the
//! applied index into memory (on the loop thread: O(store bytes), the one cost on the hot path —
//! counted in `/status` as `snapshot_encode_ns_last`) and hands the bytes to the
//! [`SnapshotStore`]'s writer thread (temp file, fsync, rename, fsync directory — off the loop).
//! Only once the writer reports the snapshot durable does the loop mark it in the WAL (whose old
//! segments are then unlinked) and compact the consensus log up to it, so a crash at any step
//! recovers from the previous snapshot plus the WAL tail.
//!
//! The encoded bytes of the newest durable snapshot stay in memory (one copy, shared with the
//! writer) so a leader can ship them to a follower behind the compaction point
//! ([`super::snapshot_transfer`]).

use std::io::Cursor;
use std::sync::Arc;

use crate::consensus::SnapshotMeta;
use crate::storage::{DurableSnapshot, LogPosition, SnapshotError, SnapshotStore};
use crate::store::Store;

/// A snapshot's bytes as this node holds them.
#[derive(Debug, Clone)]
pub(super) struct HeldSnapshot {
    pub meta: SnapshotMeta,
    pub data: Arc<[u8]>,
}

/// Schedules snapshot saves and remembers the newest snapshot.
#[derive(Debug)]
pub(super) struct Snapshotter {
    store: SnapshotStore,
    every_entries: u64,
    /// Index of the last snapshot taken (saved or being saved); 0 for none.
    taken_index: u64,
    /// The snapshot being saved.
    saving: Option<HeldSnapshot>,
    /// The newest durable snapshot.
    held: Option<HeldSnapshot>,
}

/// What a save cost, for `/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Taken {
    pub index: u64,
    pub len_bytes: u64,
    pub encode_ns: u64,
}

impl Snapshotter {
    /// `held` is the snapshot recovered at start-up, if any.
    pub fn new(store: SnapshotStore, every_entries: u64, held: Option<HeldSnapshot>) -> Self {
        assert!(
            every_entries > 0,
            "snapshot_every_entries is validated >= 1"
        );
        Self {
            store,
            every_entries,
            taken_index: held.as_ref().map_or(0, |h| h.meta.index),
            saving: None,
            held,
        }
    }

    /// Whether a snapshot at `applied` is due: no save in progress, and enough entries since the
    /// last one or a log holding `log_bytes` of payload, at least half its bound `max_log_bytes`
    /// (large values fill the log's bytes long before its entries).
    pub fn due(&self, applied: u64, log_bytes: usize, max_log_bytes: usize) -> bool {
        self.saving.is_none()
            && (applied >= self.taken_index.saturating_add(self.every_entries)
                || (applied > self.taken_index && log_bytes >= max_log_bytes / 2))
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
        self.begin_save(&meta, &data)?;
        self.taken_index = meta.index;
        let len_bytes = data.len() as u64;
        self.saving = Some(HeldSnapshot { meta, data });
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
            assert_eq!(durable.position().index, saved.meta.index);
            self.held = Some(saved);
        }
        Some(outcome)
    }

    /// The newest durable snapshot this node holds.
    pub fn held(&self) -> Option<&HeldSnapshot> {
        self.held.as_ref()
    }

    /// Saves a snapshot installed from the leader and waits until it is durable. Blocks the loop
    /// for one snapshot write (temp file, fsync, rename, fsync directory): the core may not be
    /// told the install is persisted before, and this happens only on a follower that is behind
    /// anyway. A periodic save in progress is waited for first and superseded.
    pub fn install_blocking(
        &mut self,
        meta: SnapshotMeta,
        data: Arc<[u8]>,
    ) -> Result<DurableSnapshot, SnapshotError> {
        if self.saving.take().is_some() {
            // Its outcome no longer matters: the installed snapshot is newer.
            let _ = self.store.wait();
        }
        self.begin_save(&meta, &data)?;
        let durable = self.store.wait().expect("a save was just started")?;
        self.taken_index = meta.index;
        self.held = Some(HeldSnapshot { meta, data });
        Ok(durable)
    }

    /// Starts writing `data`, the snapshot at `meta`, off the loop.
    fn begin_save(&mut self, meta: &SnapshotMeta, data: &Arc<[u8]>) -> Result<(), SnapshotError> {
        let mut membership = Vec::with_capacity(meta.membership.encoded_len());
        meta.membership.encode(&mut membership);
        let position = LogPosition {
            index: meta.index,
            term: meta.term,
        };
        self.store
            .begin_save(position, membership, Cursor::new(Arc::clone(data)))
    }
}
