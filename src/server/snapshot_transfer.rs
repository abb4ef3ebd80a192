//! InstallSnapshot over peer frames that hold at most one transport slab (32 KiB with
//! `tcp_uring`): the snapshot bytes travel in chunks, each a full consensus InstallSnapshot frame
//! whose snapshot-data section is
//!
//! ```text
//!  total_len u64 ‖ offset u64 ‖ chunk bytes
//! ```
//!
//! The consensus core knows nothing of chunks: the leader's loop turns one InstallSnapshot from the
//! core into a [`Shipment`] it sends a bounded number of chunks of per iteration (a full send queue
//! only pauses it), and the follower's loop reassembles them in an [`Assembly`] and steps the core
//! with the last chunk's message once every byte is there. A lost chunk leaves a gap: the
//! follower drops the assembly, the core's snapshot retry (one election timeout without an ack)
//! asks for the snapshot again and the shipment restarts from offset 0.

use std::sync::Arc;

use crate::consensus::InstallSnapshot;

/// Bytes of the chunk header in the snapshot-data section.
pub(super) const CHUNK_HEADER_BYTES: usize = 16;
/// Largest snapshot a follower accepts (it is reassembled in memory).
pub(super) const MAX_SNAPSHOT_BYTES: u64 = 1 << 32;
/// Chunks sent per peer per loop iteration: bounds the time one iteration spends on a transfer.
pub(super) const CHUNKS_PER_ITERATION: usize = 16;

/// A snapshot being sent to one follower.
#[derive(Debug)]
pub(super) struct Shipment {
    pub to: u64,
    /// The core's latest InstallSnapshot for this follower (its term, seq and ctx ride on every
    /// chunk; the follower's acknowledgement answers the last one).
    pub message: InstallSnapshot,
    pub data: Arc<[u8]>,
    /// Bytes sent so far.
    pub next_offset: usize,
}

impl Shipment {
    pub fn done(&self) -> bool {
        self.next_offset >= self.data.len() && self.next_offset > 0
    }

    /// Writes the chunk header and up to `max_bytes` of data from `next_offset` into `out`;
    /// returns the number of data bytes taken.
    pub fn chunk_into(&self, max_bytes: usize, out: &mut Vec<u8>) -> usize {
        let take = max_bytes.min(self.data.len() - self.next_offset);
        out.clear();
        out.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.next_offset as u64).to_le_bytes());
        out.extend_from_slice(&self.data[self.next_offset..self.next_offset + take]);
        take
    }
}

/// The shipments in progress, at most one per follower.
#[derive(Debug, Default)]
pub(super) struct Shipments {
    pub active: Vec<Shipment>,
}

impl Shipments {
    /// The core asked to send `message` to `to` with the snapshot `data`. A shipment of the same
    /// snapshot still under way continues (with the new message's term, seq and ctx); a finished
    /// or different one starts over.
    pub fn start(&mut self, to: u64, message: InstallSnapshot, data: &Arc<[u8]>) {
        if let Some(s) = self.active.iter_mut().find(|s| s.to == to) {
            let same = s.message.meta.index == message.meta.index
                && s.message.meta.term == message.meta.term;
            s.message = message;
            if !same || s.done() {
                s.data = Arc::clone(data);
                s.next_offset = 0;
            }
            return;
        }
        self.active.push(Shipment {
            to,
            message,
            data: Arc::clone(data),
            next_offset: 0,
        });
    }

    /// The follower's connection went down: chunks in flight may be lost.
    pub fn peer_down(&mut self, to: u64) {
        self.active.retain(|s| s.to != to);
    }

    /// Drops finished shipments (the follower answers the last chunk; a retry restarts one).
    pub fn retain_unfinished(&mut self) {
        self.active.retain(|s| !s.done());
    }
}

/// Why a chunk was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum ChunkError {
    #[error("the chunk header is cut short")]
    Short,
    #[error("the snapshot of {total_len} bytes exceeds {MAX_SNAPSHOT_BYTES} bytes")]
    TooLarge { total_len: u64 },
    #[error("chunk at offset {offset} of {total_len} does not continue the {have} bytes received")]
    Gap {
        offset: u64,
        total_len: u64,
        have: u64,
    },
}

/// A snapshot being received from the leader.
#[derive(Debug)]
pub(super) struct Assembly {
    from: u64,
    index: u64,
    term: u64,
    total_len: u64,
    bytes: Vec<u8>,
}

/// Reassembles chunks; at most one snapshot at a time.
#[derive(Debug, Default)]
pub(super) struct Receiver {
    assembly: Option<Assembly>,
}

impl Receiver {
    /// Adds one chunk of `message`'s snapshot from `from`. Returns the whole snapshot once its last
    /// byte arrived.
    pub fn add(
        &mut self,
        from: u64,
        message: &InstallSnapshot,
        section: &[u8],
    ) -> Result<Option<Vec<u8>>, ChunkError> {
        if section.len() < CHUNK_HEADER_BYTES {
            return Err(ChunkError::Short);
        }
        let total_len = u64::from_le_bytes(section[..8].try_into().expect("8 bytes"));
        let offset = u64::from_le_bytes(section[8..16].try_into().expect("8 bytes"));
        let chunk = &section[CHUNK_HEADER_BYTES..];
        if total_len > MAX_SNAPSHOT_BYTES {
            return Err(ChunkError::TooLarge { total_len });
        }
        let (index, term) = (message.meta.index, message.meta.term);
        if offset == 0 {
            self.assembly = Some(Assembly {
                from,
                index,
                term,
                total_len,
                bytes: Vec::new(),
            });
        }
        let fits = self.assembly.as_ref().is_some_and(|a| {
            a.from == from
                && a.index == index
                && a.term == term
                && a.total_len == total_len
                && a.bytes.len() as u64 == offset
                && offset + chunk.len() as u64 <= total_len
        });
        if !fits {
            let have = self.assembly.take().map_or(0, |a| a.bytes.len() as u64);
            return Err(ChunkError::Gap {
                offset,
                total_len,
                have,
            });
        }
        let a = self.assembly.as_mut().expect("checked above");
        a.bytes.extend_from_slice(chunk);
        if a.bytes.len() as u64 == a.total_len {
            return Ok(self.assembly.take().map(|a| a.bytes));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{Membership, SnapshotMeta, VoterGroup};

    fn message(index: u64) -> InstallSnapshot {
        let group = VoterGroup::new(&[1, 2, 3], 2, 2).expect("group");
        InstallSnapshot {
            term: 2,
            meta: SnapshotMeta {
                index,
                term: 2,
                membership: Membership::new(group, &[]).expect("membership"),
            },
            ctx_ns: 0,
            seq: 1,
        }
    }

    #[test]
    fn chunks_reassemble_to_the_snapshot_and_a_gap_drops_it() {
        let data: Arc<[u8]> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut shipments = Shipments::default();
        shipments.start(2, message(50), &data);
        let mut receiver = Receiver::default();
        let mut section = Vec::new();
        let mut whole = None;
        let mut chunks = 0;
        while !shipments.active[0].done() {
            let s = &mut shipments.active[0];
            let took = s.chunk_into(3_000, &mut section);
            s.next_offset += took;
            chunks += 1;
            if chunks == 2 {
                // Lost chunk: the next one leaves a gap.
                continue;
            }
            match receiver.add(1, &message(50), &section) {
                Ok(Some(bytes)) => whole = Some(bytes),
                Ok(None) => {}
                Err(ChunkError::Gap { .. }) => {
                    assert!(chunks > 2, "only chunks after the loss")
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(chunks, 4);
        assert!(
            whole.is_none(),
            "a snapshot with a lost chunk is never complete"
        );
        // The retry restarts the finished shipment from 0 and this time nothing is lost.
        shipments.start(2, message(50), &data);
        assert_eq!(shipments.active[0].next_offset, 0);
        while !shipments.active[0].done() {
            let s = &mut shipments.active[0];
            let took = s.chunk_into(3_000, &mut section);
            s.next_offset += took;
            if let Some(bytes) = receiver.add(1, &message(50), &section).expect("in order") {
                whole = Some(bytes);
            }
        }
        assert_eq!(whole.as_deref(), Some(&data[..]));
    }
}
