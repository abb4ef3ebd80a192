//! The fixed frame header as it lies in memory and on the wire.

#[cfg(not(target_endian = "little"))]
compile_error!(
    "aurora's wire header is little-endian and read in place as a Pod struct; \
     big-endian targets are not supported"
);

/// `b"AUR1"` read as a little-endian `u32`: the first four bytes of every frame.
pub const MAGIC: u32 = u32::from_le_bytes(*b"AUR1");

/// The only wire version this build speaks. A change to the header or to the meaning of a kind bumps it.
pub const VERSION: u8 = 1;

/// Size of [`FrameHeader`] in bytes; a stream reader needs this many bytes before it can validate.
pub const HEADER_LEN: usize = core::mem::size_of::<FrameHeader>();

/// Where the `crc32c` field sits in the header.
pub(super) const CRC_OFFSET: usize = core::mem::offset_of!(FrameHeader, crc32c);

/// Protocol ceiling on `length`: no receiver may be configured to accept more (16 MiB). Large state
/// (snapshots) is sent in chunks well below this.
pub const MAX_PAYLOAD_LEN_BYTES: u32 = 16 << 20;

/// The raw header, exactly as it sits at the start of a frame.
///
/// Any bit pattern is a valid `FrameHeader` (it is `Pod`): a raw header proves nothing. Only a
/// [`ValidHeader`](super::ValidHeader) or [`Frame`](super::Frame) returned by
/// [`FrameRules`](super::FrameRules) has been checked.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FrameHeader {
    pub magic: u32,
    pub version: u8,
    pub kind: u8,
    pub flags: u16,
    pub cluster_id: u64,
    pub from: u64,
    pub to: u64,
    pub term: u64,
    /// Payload bytes after the header.
    pub length: u32,
    /// crc32c over the header with this field zeroed, followed by the payload.
    pub crc32c: u32,
    pub correlation_id: u64,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<FrameHeader>() == 56);
    assert!(size_of::<FrameHeader>() % 8 == 0);
    assert!(align_of::<FrameHeader>() == 8);
    assert!(offset_of!(FrameHeader, magic) == 0);
    assert!(offset_of!(FrameHeader, version) == 4);
    assert!(offset_of!(FrameHeader, kind) == 5);
    assert!(offset_of!(FrameHeader, flags) == 6);
    assert!(offset_of!(FrameHeader, cluster_id) == 8);
    assert!(offset_of!(FrameHeader, from) == 16);
    assert!(offset_of!(FrameHeader, to) == 24);
    assert!(offset_of!(FrameHeader, term) == 32);
    assert!(offset_of!(FrameHeader, length) == 40);
    assert!(offset_of!(FrameHeader, crc32c) == 44);
    assert!(offset_of!(FrameHeader, correlation_id) == 48);
};

impl FrameHeader {
    /// Reads a header from the first [`HEADER_LEN`] bytes of `bytes`, whatever their alignment.
    ///
    /// A copy of 56 bytes (a few register moves) rather than a cast: frames in a TCP stream start at
    /// arbitrary offsets of the receive buffer, and a misaligned `&FrameHeader` would be undefined
    /// behaviour. The payload is never copied. Returns `None` if `bytes` is shorter than a header.
    pub fn read_from(bytes: &[u8]) -> Option<Self> {
        let raw = bytes.get(..HEADER_LEN)?;
        Some(bytemuck::pod_read_unaligned(raw))
    }

    /// The checksum this header and `payload` must carry: crc32c over the header with the
    /// `crc32c` field zeroed, then the payload.
    pub fn compute_crc32c(&self, payload: &[u8]) -> u32 {
        let mut zeroed = *self;
        zeroed.crc32c = 0;
        let crc = crc32c::crc32c(bytemuck::bytes_of(&zeroed));
        crc32c::crc32c_append(crc, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_is_the_ascii_tag_on_the_wire() {
        assert_eq!(MAGIC.to_le_bytes(), *b"AUR1");
    }

    #[test]
    fn read_from_accepts_misaligned_bytes() {
        let header = FrameHeader {
            magic: MAGIC,
            version: VERSION,
            kind: 8,
            flags: 0,
            cluster_id: 7,
            from: 1,
            to: 2,
            term: 3,
            length: 0,
            crc32c: 0,
            correlation_id: 9,
        };
        let mut buf = [0u8; HEADER_LEN + 1];
        buf[1..].copy_from_slice(bytemuck::bytes_of(&header));
        assert_eq!(FrameHeader::read_from(&buf[1..]), Some(header));
        assert_eq!(FrameHeader::read_from(&buf[..HEADER_LEN - 1]), None);
    }
}
