//! Writing frames into caller-provided buffers, without allocation.

use super::error::EncodeError;
use super::header::{FrameHeader, CRC_OFFSET, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN_BYTES, VERSION};
use super::kind::FrameKind;
use crate::config::NodeId;

/// The header fields a sender chooses; magic, version, flags, length and checksum are filled in by
/// the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderFields {
    pub kind: FrameKind,
    pub cluster_id: u64,
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
    pub correlation_id: u64,
}

/// Reserve-then-finish encoding: the header's room is reserved at the front of `buf`, the caller
/// writes the payload in place through [`FrameBuilder::payload_mut`], and [`FrameBuilder::finish`]
/// writes the header with length and checksum. This lets a codec with its own errors (the consensus
/// codec) encode straight into a registered pool buffer.
#[derive(Debug)]
pub struct FrameBuilder<'a> {
    buf: &'a mut [u8],
    fields: HeaderFields,
}

impl<'a> FrameBuilder<'a> {
    /// Reserves a header at the front of `buf`; fails if `buf` cannot hold even an empty frame.
    pub fn new(buf: &'a mut [u8], fields: &HeaderFields) -> Result<Self, EncodeError> {
        if buf.len() < HEADER_LEN {
            return Err(EncodeError::BufferTooSmall {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        Ok(Self {
            buf,
            fields: *fields,
        })
    }

    /// Where the payload goes: the buffer after the header, capped at the protocol ceiling.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self
            .buf
            .len()
            .min(HEADER_LEN + MAX_PAYLOAD_LEN_BYTES as usize);
        &mut self.buf[HEADER_LEN..end]
    }

    /// Writes the header for a payload of `payload_len` bytes already in place, and returns the
    /// frame's total length (the bytes of `buf` to send).
    pub fn finish(mut self, payload_len: usize) -> Result<usize, EncodeError> {
        let capacity = self.payload_mut().len();
        if payload_len > capacity {
            return Err(EncodeError::PayloadOverrun {
                written: payload_len,
                capacity,
            });
        }
        let length = u32::try_from(payload_len)
            .expect("payload_len <= capacity <= MAX_PAYLOAD_LEN_BYTES, which fits in u32");
        let header = FrameHeader {
            magic: MAGIC,
            version: VERSION,
            kind: self.fields.kind.to_byte(),
            flags: 0,
            cluster_id: self.fields.cluster_id,
            from: self.fields.from,
            to: self.fields.to,
            term: self.fields.term,
            length,
            crc32c: 0,
            correlation_id: self.fields.correlation_id,
        };
        // The header goes in with its checksum zeroed, so one pass over the contiguous frame is
        // exactly "crc32c over the header with the field zeroed, then the payload".
        let frame = &mut self.buf[..HEADER_LEN + payload_len];
        frame[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&header));
        let crc = crc32c::crc32c(frame);
        frame[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(crc, header.compute_crc32c(&frame[HEADER_LEN..]));
        Ok(HEADER_LEN + payload_len)
    }
}

/// Encodes one frame into `buf`: `write_payload` fills the payload area in place and returns how many
/// bytes it wrote. Returns the frame's total length.
pub fn encode_into(
    buf: &mut [u8],
    fields: &HeaderFields,
    write_payload: impl FnOnce(&mut [u8]) -> usize,
) -> Result<usize, EncodeError> {
    let mut builder = FrameBuilder::new(buf, fields)?;
    let written = write_payload(builder.payload_mut());
    builder.finish(written)
}

/// Encodes one frame carrying a copy of `payload` into `buf`. Returns the frame's total length.
pub fn encode_payload(
    buf: &mut [u8],
    fields: &HeaderFields,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    if payload.len() > MAX_PAYLOAD_LEN_BYTES as usize {
        return Err(EncodeError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN_BYTES,
        });
    }
    let need = HEADER_LEN + payload.len();
    if buf.len() < need {
        return Err(EncodeError::BufferTooSmall {
            need,
            have: buf.len(),
        });
    }
    encode_into(buf, fields, |room| {
        room[..payload.len()].copy_from_slice(payload);
        payload.len()
    })
}
