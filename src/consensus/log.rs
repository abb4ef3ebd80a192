//! The in-memory tail of the replicated log after the last snapshot.
//!
//! Entries live in a ring (`VecDeque`) bounded by `max_log_entries` and by `max_log_bytes` of
//! payload; payload buffers of truncated and compacted entries go to a free list and are reused by
//! later appends, so a log that is compacted as fast as it grows allocates nothing in steady state.
//! Large buffers are not kept (a 1 MiB value's buffer reused for a 64-byte entry would pin 1 MiB).

use std::collections::VecDeque;

use super::membership::Membership;
use super::types::{Entry, EntryKind, LogIndex, SnapshotMeta, Term};

/// Most recycled payload buffers kept; beyond this, freed buffers are dropped.
const MAX_FREE_BUFFERS: usize = 4096;
/// Largest buffer capacity recycled; larger ones go back to the allocator.
const MAX_RECYCLED_BUFFER_BYTES: usize = 64 * 1024;

/// Entries `snapshot.index + 1 ..= last_index()`, plus the meta of the snapshot before them.
#[derive(Debug)]
pub struct Log {
    snapshot: SnapshotMeta,
    entries: VecDeque<Entry>,
    free: Vec<Vec<u8>>,
    max_entries: usize,
    /// Payload bytes of the entries held, and their bound.
    payload_bytes: usize,
    max_bytes: usize,
}

impl Log {
    /// An empty log after `snapshot` (index 0 for a fresh node) holding at most `max_entries`, and
    /// accepting appends while it holds less than `max_bytes` of payload.
    pub(crate) fn new(snapshot: SnapshotMeta, max_entries: usize, max_bytes: usize) -> Self {
        Self {
            snapshot,
            entries: VecDeque::new(),
            free: Vec::new(),
            max_entries,
            payload_bytes: 0,
            max_bytes,
        }
    }

    /// The snapshot the log starts after.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// The first index held in memory (one past the snapshot).
    pub fn first_index(&self) -> LogIndex {
        self.snapshot.index + 1
    }

    pub fn last_index(&self) -> LogIndex {
        self.snapshot.index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    /// Entries held in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Payload bytes of the entries held.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// No append fits: the entry bound is reached, or the payload bytes are at their bound.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries || self.payload_bytes >= self.max_bytes
    }

    /// Whether `count` more entries of `bytes` payload in all stay within both bounds.
    pub fn has_room(&self, count: usize, bytes: usize) -> bool {
        self.entries.len().saturating_add(count) <= self.max_entries
            && self.payload_bytes.saturating_add(bytes) <= self.max_bytes
    }

    /// The term at `index`, if known (held in memory, or the snapshot's last index).
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries `first..=last` (clamped to what is held).
    pub fn entries(
        &self,
        first: LogIndex,
        last: LogIndex,
    ) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        let lo = first
            .max(self.first_index())
            .saturating_sub(self.first_index()) as usize;
        let hi = (last.min(self.last_index()) + 1).saturating_sub(self.first_index()) as usize;
        self.entries.range(lo..hi.max(lo))
    }

    /// Appends an entry of `term` carrying a copy of `payload`; the caller checked `!is_full()`
    /// (restoring from storage may pass the byte bound; the entry bound is hard).
    pub(crate) fn append(&mut self, term: Term, kind: EntryKind, payload: &[u8]) -> LogIndex {
        assert!(
            self.entries.len() < self.max_entries,
            "append to a full log: caller must check is_full first"
        );
        assert!(
            term >= self.last_term(),
            "log terms never decrease ({term} < {})",
            self.last_term()
        );
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(payload);
        self.payload_bytes += payload.len();
        let index = self.last_index() + 1;
        self.entries.push_back(Entry {
            term,
            index,
            kind,
            payload: buf,
        });
        index
    }

    /// Drops entries `index..` (a conflict with the leader's log).
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.snapshot.index,
            "truncating into the snapshot at {index}"
        );
        while self.last_index() >= index {
            let e = self
                .entries
                .pop_back()
                .expect("last_index >= index > snapshot index");
            self.recycle(e.payload);
        }
    }

    /// Forgets entries up to `meta.index`, which a snapshot now covers.
    pub(crate) fn compact(&mut self, meta: SnapshotMeta) {
        assert!(meta.index >= self.snapshot.index && meta.index <= self.last_index());
        assert_eq!(
            self.term(meta.index),
            Some(meta.term),
            "snapshot term must match the log"
        );
        for _ in self.snapshot.index..meta.index {
            let e = self.entries.pop_front().expect("meta.index <= last_index");
            self.recycle(e.payload);
        }
        self.snapshot = meta;
    }

    /// Replaces the whole log by `meta` (a follower installing the leader's snapshot).
    pub(crate) fn reset(&mut self, meta: SnapshotMeta) {
        while let Some(e) = self.entries.pop_back() {
            self.recycle(e.payload);
        }
        self.snapshot = meta;
    }

    /// The membership in force at `index`: the last config entry at or before it, else the
    /// snapshot's. Scans back at most the in-memory log (bounded by `max_log_entries`).
    pub fn membership_at(&self, index: LogIndex) -> (Membership, LogIndex) {
        let last = index.min(self.last_index());
        for e in self.entries(self.first_index(), last).rev() {
            if e.kind == EntryKind::Config {
                let (m, _) = Membership::decode(&e.payload)
                    .expect("config entries are validated before they enter the log");
                return (m, e.index);
            }
        }
        (self.snapshot.membership, self.snapshot.index)
    }

    /// The largest index `<= index` whose term is `<= term` (etcd's `findConflictByTerm`): where a
    /// rejected append's search for the match point resumes.
    pub fn last_index_with_term_at_most(&self, index: LogIndex, term: Term) -> LogIndex {
        let mut i = index.min(self.last_index());
        while i > self.snapshot.index {
            match self.term(i) {
                Some(t) if t <= term => return i,
                _ => i -= 1,
            }
        }
        i
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.payload_bytes -= buf.len();
        if self.free.len() < MAX_FREE_BUFFERS && buf.capacity() <= MAX_RECYCLED_BUFFER_BYTES {
            self.free.push(buf);
        }
    }
}
