//! Reassembles a TCP byte stream into frames, each in its own pool slab.
//!
//! The kernel fills provided buffers with whatever bytes the socket has: a buffer may hold part of
//! a frame, one frame, or several. Each frame is copied out into a fresh pool slab, so the provided
//! buffer goes straight back to the kernel and the consumer gets a buffer it may hold as long as it
//! likes. That is the one receive-side copy, and it is deliberate (eRPC: "copies where they are
//! cheaper"): consensus frames are small, a copy of a few hundred bytes costs less than pinning a
//! provided buffer until the consensus core releases it, which would starve the receive ring.
//!
//! The header is validated as soon as [`HEADER_LEN`] bytes are in (magic, version, kind, flags,
//! cluster, destination, length limit), before any payload byte is copied, so garbage, foreign or
//! oversize frames close the connection without being buffered. The checksum is verified when the
//! frame is complete.

use crate::transport::{Buf, BufferPool, RejectReason};
use crate::wire::{FrameKind, FrameRules, ValidHeader, WireError, HEADER_LEN};

/// A complete, checksum-verified frame.
pub(super) struct ReadFrame {
    pub kind: FrameKind,
    pub from: u64,
    pub buf: Buf,
}

/// Why the reader stopped.
pub(super) enum ReadError {
    /// The stream is invalid: close the connection for this reason.
    Reject(RejectReason),
    /// No free slab: keep the rest of the input and retry later (backpressure).
    PoolExhausted,
}

impl From<WireError> for ReadError {
    fn from(error: WireError) -> Self {
        ReadError::Reject(reject_reason(&error))
    }
}

/// The transport's reason for a wire error.
pub(super) fn reject_reason(error: &WireError) -> RejectReason {
    RejectReason::for_wire_error(error)
}

/// Per-connection reassembly state.
pub(super) struct FrameReader {
    header: [u8; HEADER_LEN],
    header_have: usize,
    /// The slab of the frame being filled, once its header validated.
    body: Option<(ValidHeader, Buf)>,
    /// When the first byte of the unfinished frame arrived (for the frame deadline).
    started_ns: u64,
}

impl FrameReader {
    pub fn new() -> Self {
        Self {
            header: [0; HEADER_LEN],
            header_have: 0,
            body: None,
            started_ns: 0,
        }
    }

    /// Whether a frame is partly read.
    pub fn mid_frame(&self) -> bool {
        self.header_have > 0
    }

    /// When the unfinished frame started, if there is one.
    pub fn frame_started_ns(&self) -> Option<u64> {
        self.mid_frame().then_some(self.started_ns)
    }

    /// Consumes bytes from `input` until it is empty, a frame completes, or an error. Returns the
    /// completed frame, if any, and advances `input` past what was consumed. Call it in a loop.
    pub fn next(
        &mut self,
        input: &mut &[u8],
        now_ns: u64,
        rules: &FrameRules,
        pool: &BufferPool,
    ) -> Result<Option<ReadFrame>, ReadError> {
        if input.is_empty() && !(self.header_have == HEADER_LEN && self.body.is_none()) {
            return Ok(None);
        }
        if self.body.is_none() {
            if self.header_have == 0 {
                self.started_ns = now_ns;
            }
            let take = (HEADER_LEN - self.header_have).min(input.len());
            self.header[self.header_have..self.header_have + take].copy_from_slice(&input[..take]);
            self.header_have += take;
            *input = &input[take..];
            if self.header_have < HEADER_LEN {
                return Ok(None);
            }
            // Validated again if the previous attempt stopped at pool exhaustion: it is cheap and
            // keeps this path free of a half-state.
            let header = rules.validate_header(&self.header)?;
            if header.frame_len_bytes() > pool.slab_bytes() {
                // The rules' payload limit is configured below the slab size, so this only fires
                // if they disagree; treat it as oversize rather than overrunning a slab.
                return Err(ReadError::Reject(RejectReason::Oversize));
            }
            let Ok(mut buf) = pool.take() else {
                return Err(ReadError::PoolExhausted);
            };
            let filled = buf.fill_from(&self.header);
            debug_assert!(filled, "a slab holds at least a header");
            self.body = Some((header, buf));
        }
        let (header, buf) = self.body.as_mut().expect("a validated header has a slab");
        let need = header.frame_len_bytes() - buf.len();
        let take = need.min(input.len());
        let fitted = buf.extend_from(&input[..take]);
        debug_assert!(fitted, "frame length was checked against the slab size");
        *input = &input[take..];
        if take < need {
            return Ok(None);
        }
        let (header, buf) = self.body.take().expect("checked above");
        self.header_have = 0;
        rules.validate_frame(buf.as_slice())?;
        debug_assert_eq!(buf.len(), header.frame_len_bytes());
        Ok(Some(ReadFrame {
            kind: header.kind(),
            from: header.from(),
            buf,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_payload, HeaderFields};

    const CLUSTER: u64 = 5;

    fn rules() -> FrameRules {
        FrameRules::new(CLUSTER, 1024).unwrap().with_local_node(2)
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + payload.len()];
        let fields = HeaderFields {
            kind: FrameKind::Ping,
            cluster_id: CLUSTER,
            from: 1,
            to: 2,
            term: 0,
            correlation_id: 9,
        };
        encode_payload(&mut out, &fields, payload).unwrap();
        out
    }

    fn read_all(
        reader: &mut FrameReader,
        mut input: &[u8],
        pool: &BufferPool,
    ) -> Result<Vec<Vec<u8>>, RejectReason> {
        let mut out = Vec::new();
        loop {
            match reader.next(&mut input, 0, &rules(), pool) {
                Ok(Some(f)) => out.push(f.buf.as_slice().to_vec()),
                Ok(None) if input.is_empty() => return Ok(out),
                Ok(None) => {}
                Err(ReadError::Reject(r)) => return Err(r),
                Err(ReadError::PoolExhausted) => panic!("pool exhausted"),
            }
        }
    }

    #[test]
    fn frames_split_at_every_byte_boundary_reassemble() {
        let pool = BufferPool::new(2048, 8).unwrap();
        let stream: Vec<u8> = [frame(b"one"), frame(&[7; 300]), frame(b"")].concat();
        for cut in 0..stream.len() {
            let mut reader = FrameReader::new();
            let mut frames = read_all(&mut reader, &stream[..cut], &pool).unwrap();
            frames.extend(read_all(&mut reader, &stream[cut..], &pool).unwrap());
            assert_eq!(
                frames,
                [frame(b"one"), frame(&[7; 300]), frame(b"")],
                "cut at {cut}"
            );
            assert!(!reader.mid_frame());
        }
        assert_eq!(pool.free_count(), 8);
    }

    #[test]
    fn a_bad_header_is_rejected_before_any_payload_is_buffered() {
        let pool = BufferPool::new(2048, 8).unwrap();
        let mut oversize = frame(b"x");
        oversize[40..44].copy_from_slice(&5000u32.to_le_bytes());
        let mut reader = FrameReader::new();
        assert_eq!(
            read_all(&mut reader, &oversize[..HEADER_LEN], &pool),
            Err(RejectReason::Oversize)
        );
        assert_eq!(
            pool.free_count(),
            8,
            "no slab was taken for the rejected frame"
        );
        let mut reader = FrameReader::new();
        assert_eq!(
            read_all(&mut reader, &[0xAB; 100], &pool),
            Err(RejectReason::BadMagic)
        );
    }

    #[test]
    fn a_corrupted_payload_fails_the_checksum() {
        let pool = BufferPool::new(2048, 8).unwrap();
        let mut bad = frame(b"payload");
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            read_all(&mut FrameReader::new(), &bad, &pool),
            Err(RejectReason::BadChecksum)
        );
    }

    #[test]
    fn pool_exhaustion_keeps_the_input_for_a_retry() {
        let pool = BufferPool::new(2048, 1).unwrap();
        let held = pool.take().unwrap();
        let bytes = frame(b"later");
        let mut input: &[u8] = &bytes;
        let mut reader = FrameReader::new();
        assert!(matches!(
            reader.next(&mut input, 0, &rules(), &pool),
            Err(ReadError::PoolExhausted)
        ));
        drop(held);
        let got = reader
            .next(&mut input, 0, &rules(), &pool)
            .ok()
            .flatten()
            .expect("frame after retry");
        assert_eq!(got.buf.as_slice(), &bytes[..]);
        assert!(input.is_empty());
    }
}
