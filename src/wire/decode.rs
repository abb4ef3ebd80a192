//! Validating received bytes into frames that borrow the receive buffer.

use super::encode::HeaderFields;
use super::error::{RulesError, WireError};
use super::header::{FrameHeader, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN_BYTES, VERSION};
use super::kind::FrameKind;
use crate::config::NodeId;

/// What a receiver accepts: its cluster, its payload limit and, once known, its own node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRules {
    cluster_id: u64,
    max_payload_len_bytes: u32,
    local_node: Option<NodeId>,
    accept_unknown_cluster: bool,
}

impl FrameRules {
    /// Rules for a receiver in `cluster_id` accepting payloads up to `max_payload_len_bytes`
    /// (at most [`MAX_PAYLOAD_LEN_BYTES`]). Frames are not checked against a destination node.
    pub fn new(cluster_id: u64, max_payload_len_bytes: u32) -> Result<Self, RulesError> {
        if max_payload_len_bytes > MAX_PAYLOAD_LEN_BYTES {
            return Err(RulesError::MaxPayloadAboveCeiling {
                max: max_payload_len_bytes,
                ceiling: MAX_PAYLOAD_LEN_BYTES,
            });
        }
        Ok(Self {
            cluster_id,
            max_payload_len_bytes,
            local_node: None,
            accept_unknown_cluster: false,
        })
    }

    /// The same rules, also accepting cluster id 0, which a client that knows only endpoint addresses
    /// sends until an answer (stamped with the real id) tells it. Never for peers: a peer always knows.
    pub fn accepting_unknown_cluster(self) -> Self {
        Self {
            accept_unknown_cluster: true,
            ..self
        }
    }

    /// The same rules, also rejecting frames whose `to` is not `node` (a peer connection; a client
    /// that does not know the server's node id connects under rules without this check).
    pub fn with_local_node(self, node: NodeId) -> Self {
        Self {
            local_node: Some(node),
            ..self
        }
    }

    /// The largest payload these rules accept, in bytes.
    pub fn max_payload_len_bytes(&self) -> u32 {
        self.max_payload_len_bytes
    }

    /// Phase 1 for stream transports: validates the header in the first [`HEADER_LEN`] bytes of
    /// `bytes` (magic, version, kind, flags, cluster, destination, length limit) without looking at
    /// the payload. [`ValidHeader::frame_len_bytes`] then says how many bytes the whole frame needs.
    pub fn validate_header(&self, bytes: &[u8]) -> Result<ValidHeader, WireError> {
        let header = FrameHeader::read_from(bytes).ok_or(WireError::Truncated {
            need: HEADER_LEN,
            have: bytes.len(),
        })?;
        if header.magic != MAGIC {
            return Err(WireError::BadMagic { got: header.magic });
        }
        if header.version != VERSION {
            return Err(WireError::UnsupportedVersion {
                got: header.version,
                supported: VERSION,
            });
        }
        let kind =
            FrameKind::from_byte(header.kind).ok_or(WireError::UnknownKind { got: header.kind })?;
        if header.flags != 0 {
            return Err(WireError::ReservedFlags { got: header.flags });
        }
        let unknown_allowed = self.accept_unknown_cluster && header.cluster_id == 0;
        if header.cluster_id != self.cluster_id && !unknown_allowed {
            return Err(WireError::WrongCluster {
                expected: self.cluster_id,
                got: header.cluster_id,
            });
        }
        if let Some(local) = self.local_node {
            if header.to != local {
                return Err(WireError::WrongDestination {
                    expected: local,
                    got: header.to,
                });
            }
        }
        if header.length > self.max_payload_len_bytes {
            return Err(WireError::Oversize {
                len: header.length,
                max: self.max_payload_len_bytes,
            });
        }
        Ok(ValidHeader { header, kind })
    }

    /// Phase 2 for stream transports (and the core of the one-shot path): validates the frame at the
    /// start of `bytes` — header again, then that the payload is all there and the checksum matches —
    /// and returns a view borrowing `bytes`. Bytes after the frame (the next frame in a stream) are
    /// left alone; [`Frame::len_bytes`] says where they start.
    pub fn validate_frame<'a>(&self, bytes: &'a [u8]) -> Result<Frame<'a>, WireError> {
        let header = self.validate_header(bytes)?;
        let frame_len = header.frame_len_bytes();
        let frame = bytes.get(..frame_len).ok_or(WireError::Truncated {
            need: frame_len,
            have: bytes.len(),
        })?;
        let payload = &frame[HEADER_LEN..];
        let computed = header.header.compute_crc32c(payload);
        if computed != header.header.crc32c {
            return Err(WireError::BadChecksum {
                expected: header.header.crc32c,
                computed,
            });
        }
        Ok(Frame {
            header,
            bytes: frame,
        })
    }

    /// One-shot path for datagram transports: `datagram` must be exactly one valid frame.
    pub fn decode_datagram<'a>(&self, datagram: &'a [u8]) -> Result<Frame<'a>, WireError> {
        let frame = self.validate_frame(datagram)?;
        if frame.len_bytes() != datagram.len() {
            return Err(WireError::TrailingBytes {
                frame_len: frame.len_bytes(),
                have: datagram.len(),
            });
        }
        Ok(frame)
    }
}

/// A header that passed [`FrameRules::validate_header`]; its payload has not been checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidHeader {
    header: FrameHeader,
    kind: FrameKind,
}

impl ValidHeader {
    pub fn kind(&self) -> FrameKind {
        self.kind
    }
    pub fn cluster_id(&self) -> u64 {
        self.header.cluster_id
    }
    pub fn from(&self) -> NodeId {
        self.header.from
    }
    pub fn to(&self) -> NodeId {
        self.header.to
    }
    pub fn term(&self) -> u64 {
        self.header.term
    }
    pub fn correlation_id(&self) -> u64 {
        self.header.correlation_id
    }
    /// The checksum the header carries.
    pub fn crc32c(&self) -> u32 {
        self.header.crc32c
    }
    /// Payload bytes after the header.
    pub fn payload_len_bytes(&self) -> usize {
        self.header.length as usize
    }
    /// Header plus payload: how many bytes a stream reader needs before calling
    /// [`FrameRules::validate_frame`].
    pub fn frame_len_bytes(&self) -> usize {
        HEADER_LEN + self.payload_len_bytes()
    }
    /// The fields a sender chose, e.g. to answer or forward this frame.
    pub fn fields(&self) -> HeaderFields {
        HeaderFields {
            kind: self.kind,
            cluster_id: self.header.cluster_id,
            from: self.header.from,
            to: self.header.to,
            term: self.header.term,
            correlation_id: self.header.correlation_id,
        }
    }
    /// The header as it was on the wire.
    pub fn raw(&self) -> &FrameHeader {
        &self.header
    }
}

/// A fully validated frame borrowing the receive buffer: nothing was copied but the 56-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    header: ValidHeader,
    bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn header(&self) -> &ValidHeader {
        &self.header
    }
    /// The payload, in place in the receive buffer.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
    /// The whole frame (header and payload), e.g. to forward it unchanged.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Length of the whole frame; in a stream, the next frame starts this many bytes in.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }
    /// Checks the frame's `from` against the node its connection authenticated as.
    pub fn check_sender(&self, authenticated: NodeId) -> Result<(), WireError> {
        if self.header.from() == authenticated {
            Ok(())
        } else {
            Err(WireError::WrongSender {
                expected: authenticated,
                got: self.header.from(),
            })
        }
    }
}
