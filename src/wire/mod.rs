//! The wire format: one fixed 56-byte frame header in front of every message Aurora sends.
//!
//! ```text
//!  offset  size  field           notes
//!       0     4  magic           MAGIC ("AUR1" read as little-endian bytes)
//!       4     1  version         VERSION; anything else is rejected
//!       5     1  kind            FrameKind byte (ranges: handshake, ping, consensus, client)
//!       6     2  flags           none defined in version 1: every bit must be zero
//!       8     8  cluster_id      must equal the receiver's cluster id
//!      16     8  from            sender NodeId
//!      24     8  to              receiver NodeId (checked when the receiver knows its own id)
//!      32     8  term            consensus term (0 outside consensus)
//!      40     4  length          payload bytes after the header, <= the receiver's limit
//!      44     4  crc32c          over the header with this field zeroed, then the payload
//!      48     8  correlation_id  echoed in responses and every log line about this frame
//! ```
//!
//! All integers are little-endian; the crate refuses to build on a big-endian target so the header
//! can be a plain [`bytemuck::Pod`] struct read and written without byte swapping.
//!
//! Decoding is two-phase for stream transports: [`FrameRules::validate_header`] needs only the first
//! [`HEADER_LEN`] bytes and tells a TCP reader how long the frame is (rejecting foreign, oversize or
//! garbage frames before their payload is read); [`FrameRules::validate_frame`] then checks the whole
//! frame, checksum included, and returns a [`Frame`] that borrows the receive buffer. Datagram
//! transports use the one-shot [`FrameRules::decode_datagram`]. Every malformed input is a
//! [`WireError`], never a panic, and each error maps to a [`RejectReason`] metric label, counted per
//! shard by [`RejectMetrics`] as `aurora_wire_rejected_total{reason=…}`.
//!
//! Encoding writes header and payload straight into a caller-provided buffer (a registered pool slab)
//! with no allocation: [`encode_into`] or the reserve-then-finish [`FrameBuilder`].

mod decode;
mod encode;
mod error;
mod header;
mod kind;
mod rejects;

pub use decode::{Frame, FrameRules, ValidHeader};
pub use encode::{encode_into, encode_payload, FrameBuilder, HeaderFields};
pub use error::{EncodeError, RejectReason, RulesError, WireError};
pub use header::{FrameHeader, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN_BYTES, VERSION};
pub use kind::{ConsensusKind, FrameKind};
pub use rejects::RejectMetrics;
