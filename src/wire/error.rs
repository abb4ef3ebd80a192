//! Why a frame was rejected or could not be encoded.

use thiserror::Error;

use super::header::{HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN_BYTES};
use crate::config::NodeId;

/// A received frame that must not be delivered. The transport counts it under
/// [`WireError::reason`] and closes or drops per its policy; nothing here panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WireError {
    #[error(
        "truncated frame: need {need} bytes, have {have}; a stream reader should wait for more \
         bytes, a datagram this short is damaged"
    )]
    Truncated { need: usize, have: usize },
    #[error(
        "bad magic {got:#010x} (expected {MAGIC:#010x}): the sender does not speak the Aurora wire \
         protocol or the stream lost frame alignment; close the connection"
    )]
    BadMagic { got: u32 },
    #[error(
        "unsupported wire version {got} (this build speaks version {supported}); run the same Aurora \
         release on every node"
    )]
    UnsupportedVersion { got: u8, supported: u8 },
    #[error(
        "unknown frame kind {got:#04x}: not assigned in this wire version; the sender runs a different \
         release or the frame is corrupt"
    )]
    UnknownKind { got: u8 },
    #[error(
        "reserved flag bits set: {got:#06x} (this version defines no flags, all must be zero); the \
         sender runs a different release or the frame is corrupt"
    )]
    ReservedFlags { got: u16 },
    #[error(
        "frame for cluster {got:#x} reached cluster {expected:#x}: a node of another cluster is \
         connecting here; check cluster_id in both nodes' configuration"
    )]
    WrongCluster { expected: u64, got: u64 },
    #[error(
        "frame addressed to node {got} reached node {expected}: the sender's peer address list is \
         wrong; check the peers section of its configuration"
    )]
    WrongDestination { expected: NodeId, got: NodeId },
    #[error(
        "frame claims to come from node {got} on a connection authenticated as node {expected}: \
         possible spoofing or a misconfigured sender; close the connection"
    )]
    WrongSender { expected: NodeId, got: NodeId },
    #[error(
        "payload of {len} bytes exceeds this receiver's limit of {max} bytes; raise \
         max_frame_payload_bytes (protocol ceiling {MAX_PAYLOAD_LEN_BYTES}) if the sender is \
         legitimate, otherwise the stream is corrupt"
    )]
    Oversize { len: u32, max: u32 },
    #[error(
        "crc32c mismatch: header carries {expected:#010x}, frame hashes to {computed:#010x}; the \
         frame was corrupted in transit or the stream lost frame alignment"
    )]
    BadChecksum { expected: u32, computed: u32 },
    #[error(
        "datagram holds {have} bytes but its frame is {frame_len} bytes: a datagram carries exactly \
         one frame; the sender is broken or the datagram was damaged"
    )]
    TrailingBytes { frame_len: usize, have: usize },
}

impl WireError {
    /// The metric label this rejection is counted under (`aurora_wire_rejected_total{reason=…}`).
    pub const fn reason(&self) -> RejectReason {
        match self {
            WireError::Truncated { .. } => RejectReason::Truncated,
            WireError::BadMagic { .. } => RejectReason::BadMagic,
            WireError::UnsupportedVersion { .. } => RejectReason::UnsupportedVersion,
            WireError::UnknownKind { .. } => RejectReason::UnknownKind,
            WireError::ReservedFlags { .. } => RejectReason::ReservedFlags,
            WireError::WrongCluster { .. } => RejectReason::WrongCluster,
            WireError::WrongDestination { .. } => RejectReason::WrongDestination,
            WireError::WrongSender { .. } => RejectReason::WrongSender,
            WireError::Oversize { .. } => RejectReason::Oversize,
            WireError::BadChecksum { .. } => RejectReason::BadChecksum,
            WireError::TrailingBytes { .. } => RejectReason::TrailingBytes,
        }
    }
}

/// One metric label per [`WireError`] variant, usable as an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Truncated,
    BadMagic,
    UnsupportedVersion,
    UnknownKind,
    ReservedFlags,
    WrongCluster,
    WrongDestination,
    WrongSender,
    Oversize,
    BadChecksum,
    TrailingBytes,
}

impl RejectReason {
    /// Every reason, in index order.
    pub const ALL: [RejectReason; 11] = [
        RejectReason::Truncated,
        RejectReason::BadMagic,
        RejectReason::UnsupportedVersion,
        RejectReason::UnknownKind,
        RejectReason::ReservedFlags,
        RejectReason::WrongCluster,
        RejectReason::WrongDestination,
        RejectReason::WrongSender,
        RejectReason::Oversize,
        RejectReason::BadChecksum,
        RejectReason::TrailingBytes,
    ];

    /// The Prometheus label value (`snake_case`).
    pub const fn label(self) -> &'static str {
        match self {
            RejectReason::Truncated => "truncated",
            RejectReason::BadMagic => "bad_magic",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::ReservedFlags => "reserved_flags",
            RejectReason::WrongCluster => "wrong_cluster",
            RejectReason::WrongDestination => "wrong_destination",
            RejectReason::WrongSender => "wrong_sender",
            RejectReason::Oversize => "oversize",
            RejectReason::BadChecksum => "bad_checksum",
            RejectReason::TrailingBytes => "trailing_bytes",
        }
    }

    /// Position in [`RejectReason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A frame that could not be encoded; always a bug or a mis-sized buffer on the sending side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error(
        "send buffer of {have} bytes cannot hold a frame of {need} bytes ({HEADER_LEN}-byte header \
         + payload); use a larger pool slab or split the payload"
    )]
    BufferTooSmall { need: usize, have: usize },
    #[error(
        "payload of {len} bytes exceeds the protocol ceiling of {max} bytes; split it (snapshots go \
         in chunks)"
    )]
    PayloadTooLarge { len: usize, max: u32 },
    #[error(
        "payload writer reported {written} bytes but had room for only {capacity}; the encoder \
         returned a wrong length"
    )]
    PayloadOverrun { written: usize, capacity: usize },
}

/// A receiver limit outside what the protocol allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RulesError {
    #[error(
        "max_frame_payload_bytes = {max} is above the protocol ceiling of {ceiling} bytes; lower it"
    )]
    MaxPayloadAboveCeiling { max: u32, ceiling: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order_with_unique_labels() {
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        let mut labels: Vec<&str> = RejectReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), RejectReason::ALL.len());
    }
}
