//! The one-sided log ring (DESIGN.md §2.5, after Mu and DARE): a follower's log slots live in
//! registered memory and the current leader RDMA-WRITEs entries straight into them, so a follower's
//! CPU is not on the replication path's critical section.
//!
//! **Write permission belongs to one term.** The follower registers the ring memory region anew for
//! every term it grants ([`RingGrant`]): a fresh registration carries a fresh rkey, and the previous
//! registration is deregistered only after the new one exists, so the two can never share an rkey.
//! A leader deposed by a vote in a higher term therefore holds an rkey the NIC no longer knows: its
//! writes fail at the follower's NIC with a remote access error (its queue pair goes to ERROR) and
//! not one byte lands. The grant travels to the leader inside the consensus layer's own messages
//! (it is 32 bytes, [`RingGrant::to_bytes`]); the transport only enforces it.
//!
//! **Slot layout** (each slot `slot_bytes`, entry `index` lives in slot `index % slots`):
//!
//! ```text
//!  offset  size  field
//!       0     8  index          log index of the entry
//!       8     8  entry_term     term the entry was created in
//!      16     8  leader_term    term of the grant the leader wrote under
//!      24     8  commit_index   the leader's commit index, piggybacked
//!      32     4  len_bytes      payload length
//!      36     4  crc32c         over bytes 0..36 and the payload
//!      40     …  payload
//! ```
//!
//! The leader writes a slot with RDMA WRITE WITH IMMEDIATE (imm = low 32 bits of the index), which
//! consumes one posted receive at the follower and tells it which slot just filled; RC ordering
//! makes the slot's bytes visible before that completion. The follower checks the slot (checksum,
//! index, the granted term) before reporting a [`RingAppend`]. Wrapping is the caller's to bound: a
//! leader keeps fewer than `slots` entries unacknowledged per follower (a torn read would fail the
//! checksum and be rejected, never delivered).

use crate::transport::PeerId;

/// Bytes of a slot header.
pub const SLOT_HEADER_BYTES: usize = 40;

/// A follower's permission for one leader to write its ring during one term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingGrant {
    pub term: u64,
    /// Address of slot 0 in the follower's memory.
    pub addr: u64,
    pub rkey: u32,
    pub slots: u32,
    pub slot_bytes: u32,
}

impl RingGrant {
    /// Encoded length.
    pub const LEN: usize = 32;

    /// The bytes to carry inside a consensus message.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..8].copy_from_slice(&self.term.to_le_bytes());
        out[8..16].copy_from_slice(&self.addr.to_le_bytes());
        out[16..20].copy_from_slice(&self.rkey.to_le_bytes());
        out[20..24].copy_from_slice(&self.slots.to_le_bytes());
        out[24..28].copy_from_slice(&self.slot_bytes.to_le_bytes());
        out
    }

    /// Decodes [`RingGrant::to_bytes`]; `None` for a wrong length or an impossible shape.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN || bytes[28..] != [0; 4] {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let grant = Self {
            term: u64_at(0),
            addr: u64_at(8),
            rkey: u32_at(16),
            slots: u32_at(20),
            slot_bytes: u32_at(24),
        };
        (grant.slots > 0 && grant.slot_bytes as usize > SLOT_HEADER_BYTES).then_some(grant)
    }

    /// Where entry `index` goes in the follower's memory.
    pub fn slot_addr(&self, index: u64) -> u64 {
        self.addr + (index % u64::from(self.slots)) * u64::from(self.slot_bytes)
    }
}

/// A slot the leader wrote and the follower verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingAppend {
    pub from: PeerId,
    pub index: u64,
    pub entry_term: u64,
    pub leader_term: u64,
    pub commit_index: u64,
    pub len_bytes: u32,
}

/// Why a ring operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("this node has no log ring: set ring_slots > 0 in the RDMA transport configuration")]
    NoRing,
    #[error(
        "cannot grant ring write permission for term {term}: term {granted} was already granted \
         (grants only move to higher terms, or once within a term from the voted-for candidate \
         to the accepted leader)"
    )]
    StaleTerm { term: u64, granted: u64 },
    #[error(
        "no ring write permission from peer {peer} for term {term} (granted: {granted:?}); the \
         follower grants it when it accepts this node as leader of that term"
    )]
    NoGrant {
        peer: PeerId,
        term: u64,
        granted: Option<u64>,
    },
    #[error("peer {peer} is not connected (wait for PeerUp)")]
    NotConnected { peer: PeerId },
    #[error("ring entry of {len_bytes} B does not fit a {slot_bytes} B slot (header {SLOT_HEADER_BYTES} B)")]
    TooLarge { len_bytes: usize, slot_bytes: u32 },
    #[error("no room: the send queue or the buffer pool is full; retry after completions")]
    Busy,
    #[error(
        "registering the ring for term {term} failed: {}", std::io::Error::from_raw_os_error(*errno)
    )]
    Register { term: u64, errno: i32 },
}

/// Why a written slot was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    Checksum,
    /// The slot holds another index than the immediate named.
    Index,
    /// The slot was written under another term than the one granted.
    Term,
    Length,
}

/// Writes the slot image for an entry into `out` (a leader's registered send buffer); returns its
/// length.
pub fn encode_slot(
    out: &mut [u8],
    index: u64,
    entry_term: u64,
    leader_term: u64,
    commit_index: u64,
    payload: &[u8],
) -> usize {
    let len = SLOT_HEADER_BYTES + payload.len();
    assert!(out.len() >= len, "caller checked the slot size");
    out[0..8].copy_from_slice(&index.to_le_bytes());
    out[8..16].copy_from_slice(&entry_term.to_le_bytes());
    out[16..24].copy_from_slice(&leader_term.to_le_bytes());
    out[24..32].copy_from_slice(&commit_index.to_le_bytes());
    out[32..36].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    out[SLOT_HEADER_BYTES..len].copy_from_slice(payload);
    let crc = slot_crc(&out[..36], payload);
    out[36..40].copy_from_slice(&crc.to_le_bytes());
    len
}

fn slot_crc(head: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(head), payload)
}

/// Checks a slot the follower was told about (`imm` = low 32 bits of the index) under the term it
/// granted; returns the append and the payload.
pub fn check_slot(
    slot: &[u8],
    imm: u32,
    granted_term: u64,
    from: PeerId,
) -> Result<(RingAppend, &[u8]), SlotError> {
    let u64_at = |i: usize| u64::from_le_bytes(slot[i..i + 8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(slot[32..36].try_into().expect("4 bytes"));
    let Some(payload) = slot.get(SLOT_HEADER_BYTES..SLOT_HEADER_BYTES + len as usize) else {
        return Err(SlotError::Length);
    };
    let crc = u32::from_le_bytes(slot[36..40].try_into().expect("4 bytes"));
    if crc != slot_crc(&slot[..36], payload) {
        return Err(SlotError::Checksum);
    }
    let append = RingAppend {
        from,
        index: u64_at(0),
        entry_term: u64_at(8),
        leader_term: u64_at(16),
        commit_index: u64_at(24),
        len_bytes: len,
    };
    if append.index as u32 != imm {
        return Err(SlotError::Index);
    }
    if append.leader_term != granted_term {
        return Err(SlotError::Term);
    }
    Ok((append, payload))
}

/// The follower's ring memory: `slots × slot_bytes`, 8-byte aligned, never moved while registered.
pub(super) struct RingMemory {
    words: Box<[u64]>,
    pub slots: u32,
    pub slot_bytes: u32,
}

impl RingMemory {
    pub fn new(slots: u32, slot_bytes: u32) -> Self {
        assert!(slots > 0 && slot_bytes as usize > SLOT_HEADER_BYTES && slot_bytes % 8 == 0);
        let words = vec![0u64; slots as usize * slot_bytes as usize / 8].into_boxed_slice();
        Self {
            words,
            slots,
            slot_bytes,
        }
    }

    pub fn region(&mut self) -> (*mut u8, usize) {
        (self.words.as_mut_ptr().cast(), self.words.len() * 8)
    }

    /// The slot holding `index` (read-only view; the NIC writes it).
    pub fn slot(&self, index: u64) -> &[u8] {
        let start = (index % u64::from(self.slots)) as usize * self.slot_bytes as usize;
        // SAFETY: the words are plain bytes; the range lies inside the allocation.
        let bytes: &[u8] = unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.words.len() * 8)
        };
        &bytes[start..start + self.slot_bytes as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips_and_every_field_is_checked() {
        let mut slot = [0u8; 128];
        encode_slot(&mut slot, 7, 2, 3, 5, b"entry");
        let (append, payload) = check_slot(&slot, 7, 3, 9).unwrap();
        assert_eq!(payload, b"entry");
        assert_eq!(
            append,
            RingAppend {
                from: 9,
                index: 7,
                entry_term: 2,
                leader_term: 3,
                commit_index: 5,
                len_bytes: 5
            }
        );
        assert_eq!(check_slot(&slot, 8, 3, 9).unwrap_err(), SlotError::Index);
        assert_eq!(check_slot(&slot, 7, 4, 9).unwrap_err(), SlotError::Term);
        slot[SLOT_HEADER_BYTES] ^= 1;
        assert_eq!(check_slot(&slot, 7, 3, 9).unwrap_err(), SlotError::Checksum);
        slot[32] = 200;
        assert_eq!(check_slot(&slot, 7, 3, 9).unwrap_err(), SlotError::Length);
    }

    #[test]
    fn grants_round_trip_and_address_slots_modulo_the_ring() {
        let grant = RingGrant {
            term: 4,
            addr: 0x1000,
            rkey: 0xabcd,
            slots: 8,
            slot_bytes: 256,
        };
        assert_eq!(RingGrant::from_bytes(&grant.to_bytes()), Some(grant));
        assert_eq!(RingGrant::from_bytes(&[0; 31]), None);
        assert_eq!(grant.slot_addr(9), 0x1000 + 256);
        let mut zero_slots = grant.to_bytes();
        zero_slots[20..24].fill(0);
        assert_eq!(RingGrant::from_bytes(&zero_slots), None);
    }
}
