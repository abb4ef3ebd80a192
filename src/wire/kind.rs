//! What a frame carries, as the one `kind` byte of its header.
//!
//! Kinds are grouped in byte ranges so a reader can route a frame by range before it knows every
//! message, and a new message fits in its range without renumbering others:
//!
//! | bytes       | kinds                                                                    |
//! |-------------|--------------------------------------------------------------------------|
//! | `0x00`      | never valid (zeroed memory is not a frame)                               |
//! | `0x01–0x04` | peer handshake: hello, challenge, response, accept (the transport's HMAC)|
//! | `0x08–0x09` | ping, pong (transport liveness and benchmarks)                           |
//! | `0x10`      | fragment: one piece of a peer frame larger than a transport slab         |
//! | `0x20–0x3F` | consensus: one byte per consensus message, numbered by the consensus codec|
//! | `0x40–0x41` | client request, client response                                          |
//!
//! Consensus messages get a kind each (`0x20 + code`) rather than one `Consensus` kind plus a sub-kind
//! byte: the header has no spare byte, and the consensus core owns the numbering of its own messages
//! inside the range through [`ConsensusKind`], so the wire layer never needs to know their names.

/// Number of consensus message codes the `0x20–0x3F` range holds.
const CONSENSUS_CODES: u8 = 32;
const CONSENSUS_FIRST: u8 = 0x20;

/// A consensus message code in `0..32`; the consensus codec assigns them to its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsensusKind(u8);

impl ConsensusKind {
    /// How many distinct consensus codes the wire can carry.
    pub const COUNT: u8 = CONSENSUS_CODES;

    /// The consensus message numbered `code`, or `None` if `code >= ConsensusKind::COUNT`.
    pub const fn new(code: u8) -> Option<Self> {
        if code < CONSENSUS_CODES {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The code the consensus codec gave this message, in `0..ConsensusKind::COUNT`.
    pub const fn code(self) -> u8 {
        self.0
    }
}

/// What a frame carries; encoded as the header's `kind` byte (see the module doc for the ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Handshake step 1, connector → acceptor: "I am node `from` of cluster `cluster_id`" + nonce.
    Hello,
    /// Handshake step 2, acceptor → connector: the acceptor's nonce and its proof.
    Challenge,
    /// Handshake step 3, connector → acceptor: the connector's proof over both nonces.
    Response,
    /// Handshake step 4, acceptor → connector: the connection may carry other frames from now on.
    Accept,
    /// Liveness probe and benchmark request; answered with [`FrameKind::Pong`].
    Ping,
    /// Answer to [`FrameKind::Ping`], echoing its correlation id and payload.
    Pong,
    /// One piece of a peer frame too large for one transport slab; the receiver reassembles the
    /// pieces of one peer in order (transports deliver a peer's frames in order).
    Fragment,
    /// A follower's 32-byte permission for the leader of a term to write its one-sided log ring
    /// (RDMA only; `transport::rdma::ring::RingGrant`).
    RingGrant,
    /// A consensus message; its body is encoded by the consensus codec.
    Consensus(ConsensusKind),
    /// A client's request to a server node.
    ClientRequest,
    /// A server node's answer to a [`FrameKind::ClientRequest`].
    ClientResponse,
}

impl FrameKind {
    /// The header byte for this kind.
    pub const fn to_byte(self) -> u8 {
        match self {
            FrameKind::Hello => 0x01,
            FrameKind::Challenge => 0x02,
            FrameKind::Response => 0x03,
            FrameKind::Accept => 0x04,
            FrameKind::Ping => 0x08,
            FrameKind::Pong => 0x09,
            FrameKind::Fragment => 0x10,
            FrameKind::RingGrant => 0x11,
            FrameKind::Consensus(c) => CONSENSUS_FIRST + c.0,
            FrameKind::ClientRequest => 0x40,
            FrameKind::ClientResponse => 0x41,
        }
    }

    /// The kind a header byte names, or `None` if this version assigns no kind to it.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => FrameKind::Hello,
            0x02 => FrameKind::Challenge,
            0x03 => FrameKind::Response,
            0x04 => FrameKind::Accept,
            0x08 => FrameKind::Ping,
            0x09 => FrameKind::Pong,
            0x10 => FrameKind::Fragment,
            0x11 => FrameKind::RingGrant,
            CONSENSUS_FIRST..=0x3F => FrameKind::Consensus(ConsensusKind(byte - CONSENSUS_FIRST)),
            0x40 => FrameKind::ClientRequest,
            0x41 => FrameKind::ClientResponse,
            _ => return None,
        })
    }

    /// Whether this kind belongs to the peer handshake, the only kinds a transport may deliver on a
    /// connection whose peer has not yet proven it holds the cluster secret.
    pub const fn is_handshake(self) -> bool {
        matches!(
            self,
            FrameKind::Hello | FrameKind::Challenge | FrameKind::Response | FrameKind::Accept
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_maps_to_at_most_one_kind_and_back() {
        let mut known = 0;
        for byte in 0..=u8::MAX {
            if let Some(kind) = FrameKind::from_byte(byte) {
                assert_eq!(kind.to_byte(), byte, "{kind:?}");
                known += 1;
            }
        }
        // 4 handshake + 2 ping/pong + 1 fragment + 1 ring grant + 32 consensus + 2 client.
        assert_eq!(known, 42);
        assert_eq!(FrameKind::from_byte(0), None);
    }

    #[test]
    fn consensus_codes_stay_inside_their_range() {
        assert_eq!(ConsensusKind::new(ConsensusKind::COUNT), None);
        let last = ConsensusKind::new(ConsensusKind::COUNT - 1).expect("31 < 32");
        assert_eq!(FrameKind::Consensus(last).to_byte(), 0x3F);
        let first = ConsensusKind::new(0).expect("0 < 32");
        assert_eq!(FrameKind::Consensus(first).to_byte(), 0x20);
    }

    #[test]
    fn only_handshake_kinds_are_handshake() {
        let handshake: Vec<FrameKind> = (0..=u8::MAX)
            .filter_map(FrameKind::from_byte)
            .filter(|k| k.is_handshake())
            .collect();
        assert_eq!(
            handshake,
            [
                FrameKind::Hello,
                FrameKind::Challenge,
                FrameKind::Response,
                FrameKind::Accept
            ]
        );
    }
}
