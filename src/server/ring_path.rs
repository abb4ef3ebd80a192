//! The one-sided replication path of a node on RDMA (DESIGN.md §2.5, after Mu and DARE).
//!
//! - **Follower**: after every step, before the step's messages leave, [`RingPermission`] decides
//!   who may write this node's ring (the candidate it voted for, the leader it accepted, one term
//!   only). A new grant registers the ring anew (fresh rkey; the previous holder's rkey dies with
//!   the old registration) and its 32 bytes travel to the holder in a [`FrameKind::RingGrant`]
//!   frame, sent again whenever the holder's connection comes back up.
//! - **Leader**: a grant for its current term is kept (a voter's grant reaches a candidate before
//!   the vote does); once it leads that term, every Append frame to that follower that fits a slot
//!   is RDMA-WRITTEN WITH IMMEDIATE into the follower's ring (the slot header carries the leader's
//!   term and the Append's commit index) instead of SENT. A write that cannot be posted, a frame larger than a slot, a grant of another
//!   term, or a follower whose connection went down since its grant: the frame goes by SEND.
//! - **Follower again**: each verified slot is handed to the node as the frame it holds, exactly
//!   as a received frame; acknowledgements go back over SEND.
//!
//! Safety does not rest on the ring: a slot's frame is a normal Append frame that the consensus
//! core checks (term, log matching) like any other. The permission keeps a deposed leader's bytes
//! out of the ring memory (its rkey is dead at the follower's NIC) and confines a leader's writes
//! to the term it was granted. A revocation without a new holder (the node campaigns, or moved to a
//! term with no leader yet) deregisters the ring: nobody can write it until the next grant. Every
//! grant is a new registration; within one term the grant may move once, from the candidate this
//! node voted for to the leader of that term, if another node won.

use crate::consensus::ring_permission::{GrantChange, PermissionInput, RingPermission};
use crate::consensus::{Message, Node, OutMessage};
use crate::transport::rdma::ring::{RingAppend, RingGrant, SLOT_HEADER_BYTES};
use crate::transport::{Buf, Remote, Transport};
use crate::wire::{FrameBuilder, FrameKind, FrameRules, HeaderFields, HEADER_LEN};

use super::peer_transport::PeerTransport;
use super::RingCounters;

/// Ring appends handed to the node per poll (more wait in the transport's bounded queue).
const APPENDS_PER_POLL: usize = 256;

/// The ring path's state on one node.
pub(super) struct RingPath {
    permission: RingPermission,
    /// The grant this node issued last, to send again when its holder reconnects.
    issued: Option<(u64, [u8; RingGrant::LEN])>,
    /// Grants accepted from followers (as leader): (follower, term).
    accepted: Vec<(u64, u64)>,
    /// Next slot index per follower (slot = index % slots; monotonic per follower).
    next_index: Vec<(u64, u64)>,
    slot_payload_bytes: usize,
    appends: Vec<RingAppend>,
    scratch: Vec<u8>,
    /// A slot's frame is checked like a received one (the slot's own checksum covers the bytes,
    /// these rules the frame: cluster, addressee, sender, frame checksum).
    rules: FrameRules,
    pub(super) counters: RingCounters,
}

impl RingPath {
    /// The ring path if this node runs RDMA with a ring (`rdma.ring_slots > 0`).
    pub(super) fn new(cfg: &super::ServerConfig, node: &Node) -> Option<Self> {
        let c = &cfg.config;
        if c.transport != crate::config::TransportKind::Rdma
            || c.rdma.as_ref().is_none_or(|r| r.ring_slots == 0)
        {
            return None;
        }
        let slot_payload_bytes = ring_slot_bytes(cfg) - SLOT_HEADER_BYTES;
        let peers = c.members.iter().map(|m| m.id).filter(|&id| id != c.node_id);
        let max_payload = u32::try_from(slot_payload_bytes - HEADER_LEN)
            .expect("a ring slot is one peer slab, far below 4 GiB");
        let rules = FrameRules::new(c.cluster_id, max_payload)
            .expect("peer frames are below the wire's payload ceiling")
            .with_local_node(c.node_id);
        Some(Self {
            rules,
            permission: RingPermission::new(node.id(), node.term()),
            issued: None,
            accepted: Vec::with_capacity(c.members.len()),
            next_index: peers.map(|p| (p, 1)).collect(),
            slot_payload_bytes,
            appends: Vec::with_capacity(APPENDS_PER_POLL),
            scratch: Vec::with_capacity(slot_payload_bytes),
            counters: RingCounters::default(),
        })
    }

    /// Applies the permission rule to the node's state after a step; call before the step's
    /// messages are sent.
    pub(super) fn observe(&mut self, node: &Node, transport: &mut PeerTransport, cluster_id: u64) {
        match self.permission.observe(PermissionInput::of(node)) {
            GrantChange::Unchanged => {}
            GrantChange::Grant { grant, .. } => {
                match transport.ring_grant(grant.leader, grant.term) {
                    Some(bytes) => {
                        self.counters.grants_issued += 1;
                        self.issued = Some((grant.leader, bytes));
                        send_grant(
                            transport,
                            cluster_id,
                            node.id(),
                            grant.leader,
                            grant.term,
                            &bytes,
                        );
                    }
                    None => self.issued = None,
                }
            }
            GrantChange::Revoke { revoked } => {
                tracing::debug!(
                    leader = revoked.leader,
                    term = revoked.term,
                    "ring grant revoked"
                );
                transport.ring_revoke();
                self.issued = None;
            }
        }
        // A leader only writes under grants for its current term.
        let term = node.term();
        self.accepted.retain(|&(_, t)| t == term);
    }

    /// `peer`'s connection is up: it gets this node's grant again if it holds it.
    pub(super) fn peer_up(
        &mut self,
        peer: u64,
        node: &Node,
        transport: &mut PeerTransport,
        cluster_id: u64,
    ) {
        if let Some((holder, bytes)) = self.issued {
            if holder == peer {
                let term = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
                send_grant(transport, cluster_id, node.id(), peer, term, &bytes);
            }
        }
    }

    /// `peer`'s connection went down: its grant is no longer used (it may come back with a new
    /// registration after a restart, which a fresh grant announces).
    pub(super) fn peer_down(&mut self, peer: u64) {
        self.accepted.retain(|&(p, _)| p != peer);
    }

    /// A [`FrameKind::RingGrant`] frame from `from`: kept if it is for this node's current term.
    pub(super) fn on_grant(
        &mut self,
        from: u64,
        payload: &[u8],
        node: &Node,
        transport: &mut PeerTransport,
    ) {
        let Some(grant) = RingGrant::from_bytes(payload) else {
            tracing::warn!(peer = from, "dropped a malformed ring grant");
            return;
        };
        // A voter grants its ring to the candidate it votes for, and the grant leaves before the
        // vote: a candidate keeps it for the term it may win (only a leader sends Appends, and
        // grants of earlier terms are dropped when the term moves on).
        if grant.term != node.term() {
            tracing::debug!(
                peer = from,
                term = grant.term,
                "ring grant for another term; dropped"
            );
            return;
        }
        transport.ring_accept(from, grant);
        self.accepted.retain(|&(p, _)| p != from);
        self.accepted.push((from, grant.term));
        self.counters.grants_accepted += 1;
        tracing::info!(
            peer = from,
            term = grant.term,
            "ring grant accepted: Appends to this follower go by RDMA WRITE"
        );
    }

    /// Writes the Append frame in `buf` into `to`'s ring if `to` granted this term; `true` when
    /// written (the caller drops `buf`), `false` when it must go by SEND.
    pub(super) fn try_write(
        &mut self,
        transport: &mut PeerTransport,
        to: u64,
        msg: &OutMessage,
        buf: &Buf,
    ) -> bool {
        let Message::Append(a) = msg else {
            return false;
        };
        let term = msg.term();
        if !self.accepted.contains(&(to, term)) {
            return false;
        }
        let frame = buf.as_slice();
        if frame.len() > self.slot_payload_bytes {
            self.counters.fallbacks += 1;
            return false;
        }
        let Some(next) = self.next_index.iter_mut().find(|(p, _)| *p == to) else {
            return false;
        };
        match transport.ring_write(to, term, next.1, a.commit, frame) {
            Ok(()) => {
                next.1 += 1;
                self.counters.frames_written += 1;
                true
            }
            Err(e) => {
                self.counters.fallbacks += 1;
                tracing::debug!(peer = to, error = %e, "ring write not posted; sending the Append");
                false
            }
        }
    }

    /// Takes the verified ring slots reported since the last call; returns how many
    /// ([`RingPath::load`] each, then [`RingPath::restore`]).
    pub(super) fn take_appends(&mut self, transport: &mut PeerTransport) -> usize {
        self.appends.clear();
        transport.take_ring_appends(&mut self.appends)
    }

    /// The frame in the `i`-th slot taken, copied out of the ring (the caller steps it, then
    /// hands the buffer back). `None` if the slot was overwritten since (the leader keeps far
    /// fewer frames in flight than the ring has slots; Raft resends what is lost).
    pub(super) fn load(&mut self, i: usize, transport: &PeerTransport) -> Option<(u64, Vec<u8>)> {
        let append = self.appends.get(i)?;
        let frame = transport.ring_entry(append.index)?;
        let valid = self
            .rules
            .validate_frame(frame)
            .and_then(|f| f.check_sender(append.from).map(|()| f.len_bytes()));
        match valid {
            Ok(len) if len == frame.len() => {}
            Ok(len) => {
                self.counters.frames_rejected += 1;
                tracing::warn!(
                    peer = append.from,
                    len,
                    slot_len = frame.len(),
                    "ring slot holds trailing bytes; dropped"
                );
                return None;
            }
            Err(e) => {
                self.counters.frames_rejected += 1;
                tracing::warn!(peer = append.from, error = %e, "ring slot's frame is invalid; dropped");
                return None;
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(frame);
        self.counters.frames_delivered += 1;
        Some((append.from, scratch))
    }

    /// Returns the buffer [`RingPath::load`] lent out (its capacity is reused: no allocation).
    pub(super) fn restore(&mut self, scratch: Vec<u8>) {
        self.scratch = scratch;
    }
}

/// Bytes of one ring slot: one peer slab, so every Append frame a slab holds fits a slot.
pub(super) fn ring_slot_bytes(cfg: &super::ServerConfig) -> usize {
    cfg.peer_slab_bytes
}

/// Sends a grant to its holder in a [`FrameKind::RingGrant`] frame (lost if the holder is not
/// connected: it is sent again when the holder comes up).
fn send_grant(
    transport: &mut PeerTransport,
    cluster_id: u64,
    me: u64,
    to: u64,
    term: u64,
    bytes: &[u8; RingGrant::LEN],
) {
    let Ok(mut buf) = transport.buffers().take() else {
        return;
    };
    let fields = HeaderFields {
        kind: FrameKind::RingGrant,
        cluster_id,
        from: me,
        to,
        term,
        correlation_id: 0,
    };
    let Ok(mut builder) = FrameBuilder::new(buf.slab_mut(), &fields) else {
        return;
    };
    builder.payload_mut()[..RingGrant::LEN].copy_from_slice(bytes);
    let Ok(len) = builder.finish(RingGrant::LEN) else {
        return;
    };
    debug_assert_eq!(len, HEADER_LEN + RingGrant::LEN);
    buf.set_len(len);
    let _ = transport.send(Remote::Peer(to), buf);
}
