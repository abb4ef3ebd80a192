//! Plain per-transport counters, owned by the shard (no atomics on the hot path). The metrics
//! module renders them with the reason as a label (`aurora_transport_rejected_total{reason=…}`).

use std::fmt;

/// Why this side closed a connection. Every variant is a metric label and a log reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// The frame header did not start with the magic number (garbage bytes, not Aurora).
    BadMagic,
    /// The frame header carries a protocol version this build does not speak.
    UnsupportedVersion,
    /// The frame kind is unknown, or not allowed in the connection's state.
    UnknownKind,
    /// The frame is for another cluster.
    WrongCluster,
    /// The header's length field exceeds the largest frame.
    Oversize,
    /// The checksum over header and payload does not match.
    BadChecksum,
    /// Reserved flag bits are set in the header.
    ReservedFlags,
    /// The frame is addressed to another node.
    WrongDestination,
    /// The frame claims another sender than the node the connection authenticated as.
    WrongSender,
    /// The stream ended in the middle of a frame.
    Truncated,
    /// A handshake frame was out of order or malformed (e.g. a consensus frame before the
    /// handshake finished).
    HandshakeProtocol,
    /// The handshake MAC did not verify: the remote does not hold the cluster secret.
    HandshakeBadMac,
    /// The remote claims a node id that is not a configured peer (or is this node).
    UnknownPeer,
    /// The handshake did not finish within its deadline (e.g. a peer that connects and sends
    /// nothing).
    HandshakeTimeout,
    /// A started frame was not completed within the frame deadline (e.g. a peer that dribbles one
    /// byte at a time).
    FrameTimeout,
    /// The connection table is full.
    TooManyConnections,
}

impl RejectReason {
    /// Every reason, in label order.
    pub const ALL: [RejectReason; 16] = [
        RejectReason::BadMagic,
        RejectReason::UnsupportedVersion,
        RejectReason::UnknownKind,
        RejectReason::WrongCluster,
        RejectReason::Oversize,
        RejectReason::BadChecksum,
        RejectReason::ReservedFlags,
        RejectReason::WrongDestination,
        RejectReason::WrongSender,
        RejectReason::Truncated,
        RejectReason::HandshakeProtocol,
        RejectReason::HandshakeBadMac,
        RejectReason::UnknownPeer,
        RejectReason::HandshakeTimeout,
        RejectReason::FrameTimeout,
        RejectReason::TooManyConnections,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            RejectReason::BadMagic => "bad_magic",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::WrongCluster => "wrong_cluster",
            RejectReason::Oversize => "oversize",
            RejectReason::BadChecksum => "bad_checksum",
            RejectReason::ReservedFlags => "reserved_flags",
            RejectReason::WrongDestination => "wrong_destination",
            RejectReason::WrongSender => "wrong_sender",
            RejectReason::Truncated => "truncated",
            RejectReason::HandshakeProtocol => "handshake_protocol",
            RejectReason::HandshakeBadMac => "handshake_bad_mac",
            RejectReason::UnknownPeer => "unknown_peer",
            RejectReason::HandshakeTimeout => "handshake_timeout",
            RejectReason::FrameTimeout => "frame_timeout",
            RejectReason::TooManyConnections => "too_many_connections",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }

    /// The reason a connection is closed for when its frame fails wire validation.
    pub fn for_wire_error(error: &crate::wire::WireError) -> Self {
        use crate::wire::WireError;
        match error {
            WireError::Truncated { .. } | WireError::TrailingBytes { .. } => {
                RejectReason::Truncated
            }
            WireError::BadMagic { .. } => RejectReason::BadMagic,
            WireError::UnsupportedVersion { .. } => RejectReason::UnsupportedVersion,
            WireError::UnknownKind { .. } => RejectReason::UnknownKind,
            WireError::ReservedFlags { .. } => RejectReason::ReservedFlags,
            WireError::WrongCluster { .. } => RejectReason::WrongCluster,
            WireError::WrongDestination { .. } => RejectReason::WrongDestination,
            WireError::WrongSender { .. } => RejectReason::WrongSender,
            WireError::Oversize { .. } => RejectReason::Oversize,
            WireError::BadChecksum { .. } => RejectReason::BadChecksum,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Counters of one transport instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Frames handed up as `Event::Received`.
    pub frames_received: u64,
    /// Frames whose send completed.
    pub frames_sent: u64,
    /// Payload-and-header bytes received in delivered frames.
    pub bytes_received: u64,
    /// Connections that completed the handshake.
    pub peers_up: u64,
    /// Established connections that went down, for any reason.
    pub peers_down: u64,
    /// Outgoing connection attempts (first tries and reconnects).
    pub connect_attempts: u64,
    /// Accepted incoming connections (before the handshake).
    pub accepted: u64,
    /// Times the receive path had no free slab or provided buffer and had to wait.
    pub receive_stalls: u64,
    /// System calls that entered the kernel to submit or reap (`io_uring_enter` and the like):
    /// per round trip this is the number a benchmark compares against a raw socket's.
    pub kernel_enters: u64,
    rejected: [u64; RejectReason::ALL.len()],
}

impl TransportStats {
    /// Counts one connection closed for `reason`.
    pub fn count_rejected(&mut self, reason: RejectReason) {
        self.rejected[reason.slot()] += 1;
    }

    /// Connections closed for `reason` so far.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.slot()]
    }

    /// All rejection counters with their labels, for rendering.
    pub fn rejected_by_reason(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL
            .iter()
            .map(|r| (*r, self.rejected[r.slot()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_and_label() {
        let mut stats = TransportStats::default();
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(reason.slot(), i, "ALL is in declaration order");
            for _ in 0..=i {
                stats.count_rejected(*reason);
            }
        }
        for (i, (reason, count)) in stats.rejected_by_reason().enumerate() {
            assert_eq!(count, i as u64 + 1, "{reason}");
        }
        let mut labels: Vec<_> = RejectReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), RejectReason::ALL.len());
    }
}
