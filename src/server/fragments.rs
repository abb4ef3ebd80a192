//! Peer frames larger than one transport slab, sent as [`FrameKind::Fragment`] pieces.
//!
//! A write of up to `limits.max_value_bytes` (1 MiB by default) is one log entry, and the
//! AppendEntries that carries it is one consensus frame; transport slabs are 32 KiB (the pool grows
//! with the square of the slab, see `PEER_SLAB_BYTES_MAX`). Such a frame is encoded once into a
//! scratch buffer and cut into pieces, each a frame of its own whose payload is
//!
//! ```text
//!  offset  size  field
//!       0     4  total_len   bytes of the whole inner frame (header included)
//!       4     4  offset      where this piece starts in the inner frame
//!       8     …  piece
//! ```
//!
//! Every transport delivers one peer's frames in order, so the receiver keeps one reassembly per
//! peer and accepts only the piece that continues it; a piece at offset 0 starts over (the sender
//! gave up on a frame it could not finish — Raft resends what was lost). The whole frame is then
//! validated like any received frame (cluster, sender, checksum) before it is handled. Buffers are
//! allocated once at start: one scratch frame to send, one per peer to receive.

use crate::transport::{Remote, SendErrorKind, Transport};
use crate::wire::{FrameBuilder, FrameKind, FrameRules, HeaderFields, WireError, HEADER_LEN};
use thiserror::Error;

/// Bytes of a piece's own header (total length and offset).
pub(super) const PIECE_HEADER_BYTES: usize = 8;

/// Why a piece was dropped (the peer's reassembly restarts with its next offset-0 piece).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(super) enum FragmentError {
    #[error("fragment of {len_bytes} bytes is shorter than its {PIECE_HEADER_BYTES}-byte header")]
    Short { len_bytes: usize },
    #[error(
        "fragmented frame of {total_len} bytes exceeds the largest peer frame ({max_bytes} bytes)"
    )]
    TooLarge { total_len: usize, max_bytes: usize },
    #[error("fragment at offset {offset}, expected {expected} (a piece was lost or reordered)")]
    OutOfOrder { offset: usize, expected: usize },
    #[error(
        "fragment claims a frame of {total_len} bytes, the frame being reassembled has {expected}"
    )]
    TotalChanged { total_len: usize, expected: usize },
    #[error("fragment runs past the end of its frame ({end} > {total_len} bytes)")]
    Overrun { end: usize, total_len: usize },
    #[error("fragment from node {0}, which is not a peer")]
    UnknownPeer(u64),
    #[error("reassembled frame is invalid: {0}")]
    Invalid(WireError),
}

/// Cuts `frame` into pieces whose payloads hold at most `piece_bytes`, calling `emit(number,
/// header, piece)` for each in order; stops at the first `Err` and returns it, else the count.
pub(super) fn split<E>(
    frame: &[u8],
    piece_bytes: usize,
    mut emit: impl FnMut(usize, [u8; PIECE_HEADER_BYTES], &[u8]) -> Result<(), E>,
) -> Result<usize, E> {
    assert!(piece_bytes > 0, "a piece carries at least one byte");
    let total = u32::try_from(frame.len()).expect("peer frames are far below 4 GiB");
    for (i, piece) in frame.chunks(piece_bytes).enumerate() {
        let offset = u32::try_from(i * piece_bytes).expect("offset < total");
        let mut header = [0u8; PIECE_HEADER_BYTES];
        header[..4].copy_from_slice(&total.to_le_bytes());
        header[4..].copy_from_slice(&offset.to_le_bytes());
        emit(i, header, piece)?;
    }
    Ok(frame.len().div_ceil(piece_bytes))
}

/// Why a frame could not be sent in pieces (the pieces before the failure are out: the receiver
/// drops them when the next frame starts).
#[derive(Debug, Error)]
pub(super) enum PieceSendError {
    #[error("the peer transport's buffer pool is empty")]
    PoolEmpty,
    #[error("the transport refused piece {piece}: {kind}")]
    Refused { piece: usize, kind: SendErrorKind },
}

/// Sends the whole frame `frame` to peer `to` as [`FrameKind::Fragment`] pieces filling the
/// transport's slabs; `fields` are the frame's own (the pieces carry its cluster, sender and term).
pub(super) fn send_in_pieces<T: Transport>(
    transport: &mut T,
    to: u64,
    fields: &HeaderFields,
    frame: &[u8],
) -> Result<usize, PieceSendError> {
    let piece_fields = HeaderFields {
        kind: FrameKind::Fragment,
        ..*fields
    };
    let piece_bytes = transport.buffers().slab_bytes() - HEADER_LEN - PIECE_HEADER_BYTES;
    split(frame, piece_bytes, |number, header, piece| {
        let mut buf = transport
            .buffers()
            .take()
            .map_err(|_| PieceSendError::PoolEmpty)?;
        let mut builder = FrameBuilder::new(buf.slab_mut(), &piece_fields)
            .expect("a slab holds a header and a piece");
        let payload = builder.payload_mut();
        payload[..PIECE_HEADER_BYTES].copy_from_slice(&header);
        payload[PIECE_HEADER_BYTES..PIECE_HEADER_BYTES + piece.len()].copy_from_slice(piece);
        let len = builder
            .finish(PIECE_HEADER_BYTES + piece.len())
            .expect("the piece was cut to fit the slab");
        buf.set_len(len);
        transport
            .send(Remote::Peer(to), buf)
            .map_err(|e| PieceSendError::Refused {
                piece: number,
                kind: e.kind,
            })
    })
}

/// One peer's frame being reassembled.
struct Partial {
    peer: u64,
    /// The inner frame so far; capacity reserved at start, never grown.
    bytes: Vec<u8>,
    total_len: usize,
}

/// Reassembly of fragmented frames, one per peer.
pub(super) struct Reassembly {
    partials: Vec<Partial>,
    max_frame_bytes: usize,
    rules: FrameRules,
}

impl Reassembly {
    /// `rules` validate the whole frame once it is complete.
    pub fn new(
        peers: impl IntoIterator<Item = u64>,
        max_frame_bytes: usize,
        rules: FrameRules,
    ) -> Self {
        assert!(max_frame_bytes > HEADER_LEN);
        let partials = peers
            .into_iter()
            .map(|peer| Partial {
                peer,
                bytes: Vec::with_capacity(max_frame_bytes),
                total_len: 0,
            })
            .collect();
        Self {
            partials,
            max_frame_bytes,
            rules,
        }
    }

    /// Adds one piece (the payload of a fragment frame from `peer`). `Ok(true)`: the frame is
    /// whole and valid; take it with [`Reassembly::take`].
    pub fn add(&mut self, peer: u64, piece: &[u8]) -> Result<bool, FragmentError> {
        let max_frame_bytes = self.max_frame_bytes;
        let partial = self
            .partials
            .iter_mut()
            .find(|p| p.peer == peer)
            .ok_or(FragmentError::UnknownPeer(peer))?;
        let result = Self::extend(partial, piece, max_frame_bytes);
        match result {
            Ok(true) => {
                if let Err(e) = self
                    .rules
                    .validate_frame(&partial.bytes)
                    .and_then(|f| f.check_sender(peer).map(|()| f.len_bytes()))
                    .and_then(|len| {
                        if len == partial.bytes.len() {
                            Ok(())
                        } else {
                            Err(WireError::TrailingBytes {
                                frame_len: len,
                                have: partial.bytes.len(),
                            })
                        }
                    })
                {
                    partial.bytes.clear();
                    return Err(FragmentError::Invalid(e));
                }
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                partial.bytes.clear();
                Err(e)
            }
        }
    }

    fn extend(
        partial: &mut Partial,
        piece: &[u8],
        max_frame_bytes: usize,
    ) -> Result<bool, FragmentError> {
        let (header, data) =
            piece
                .split_at_checked(PIECE_HEADER_BYTES)
                .ok_or(FragmentError::Short {
                    len_bytes: piece.len(),
                })?;
        let total_len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let offset = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
        if total_len > max_frame_bytes {
            return Err(FragmentError::TooLarge {
                total_len,
                max_bytes: max_frame_bytes,
            });
        }
        if offset == 0 {
            partial.bytes.clear();
            partial.total_len = total_len;
        } else if offset != partial.bytes.len() || partial.bytes.is_empty() {
            return Err(FragmentError::OutOfOrder {
                offset,
                expected: partial.bytes.len(),
            });
        } else if total_len != partial.total_len {
            return Err(FragmentError::TotalChanged {
                total_len,
                expected: partial.total_len,
            });
        }
        let end = offset + data.len();
        if end > total_len || data.is_empty() {
            return Err(FragmentError::Overrun { end, total_len });
        }
        debug_assert!(
            partial.bytes.capacity() >= end,
            "capacity reserved at start"
        );
        partial.bytes.extend_from_slice(data);
        Ok(end == total_len)
    }

    /// The whole frame from `peer` after [`Reassembly::add`] said so; hand it back with
    /// [`Reassembly::restore`] (the buffer is reused, never reallocated).
    pub fn take(&mut self, peer: u64) -> Vec<u8> {
        self.partials
            .iter_mut()
            .find(|p| p.peer == peer)
            .map(|p| std::mem::take(&mut p.bytes))
            .unwrap_or_default()
    }

    /// Returns the buffer [`Reassembly::take`] lent out, emptied.
    pub fn restore(&mut self, peer: u64, mut bytes: Vec<u8>) {
        bytes.clear();
        if let Some(p) = self.partials.iter_mut().find(|p| p.peer == peer) {
            p.bytes = bytes;
        }
    }

    /// Forgets `peer`'s partial frame (its connection went down: the rest will never come).
    pub fn reset(&mut self, peer: u64) {
        if let Some(p) = self.partials.iter_mut().find(|p| p.peer == peer) {
            p.bytes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_payload, FrameKind, HeaderFields};

    const CLUSTER: u64 = 7;

    fn frame(from: u64, payload_len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 31 % 251) as u8).collect();
        let fields = HeaderFields {
            kind: FrameKind::ClientRequest,
            cluster_id: CLUSTER,
            from,
            to: 1,
            term: 3,
            correlation_id: 0,
        };
        let mut buf = vec![0u8; HEADER_LEN + payload_len];
        let len = encode_payload(&mut buf, &fields, &payload).expect("fits");
        buf.truncate(len);
        buf
    }

    fn pieces(frame: &[u8], piece_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        split::<()>(frame, piece_bytes, |_, h, p| {
            out.push([&h[..], p].concat());
            Ok(())
        })
        .expect("no error");
        out
    }

    fn reassembly() -> Reassembly {
        let rules = FrameRules::new(CLUSTER, 4 << 20).expect("valid rules");
        Reassembly::new([2, 3], 2 << 20, rules)
    }

    #[test]
    fn a_large_frame_round_trips_through_pieces() {
        let f = frame(2, 1 << 20);
        let ps = pieces(&f, 32 * 1024 - HEADER_LEN - PIECE_HEADER_BYTES);
        assert_eq!(
            ps.len(),
            f.len()
                .div_ceil(32 * 1024 - HEADER_LEN - PIECE_HEADER_BYTES)
        );
        let mut r = reassembly();
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(r.add(2, p), Ok(i + 1 == ps.len()), "piece {i}");
        }
        let whole = r.take(2);
        assert_eq!(whole, f);
        r.restore(2, whole);
        // The buffer is reused: a second frame reassembles the same way.
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(r.add(2, p), Ok(i + 1 == ps.len()));
        }
    }

    #[test]
    fn peers_reassemble_independently() {
        let (a, b) = (frame(2, 100_000), frame(3, 70_000));
        let (pa, pb) = (pieces(&a, 30_000), pieces(&b, 30_000));
        let mut r = reassembly();
        assert_eq!(r.add(2, &pa[0]), Ok(false));
        assert_eq!(r.add(3, &pb[0]), Ok(false));
        assert_eq!(r.add(2, &pa[1]), Ok(false));
        assert_eq!(r.add(3, &pb[1]), Ok(false));
        assert_eq!(r.add(3, &pb[2]), Ok(true));
        assert_eq!(r.take(3), b);
        assert_eq!(r.add(2, &pa[2]), Ok(false));
        assert_eq!(r.add(2, &pa[3]), Ok(true));
        assert_eq!(r.take(2), a);
    }

    #[test]
    fn a_lost_piece_drops_the_frame_and_the_next_frame_starts_clean() {
        let f = frame(2, 100_000);
        let ps = pieces(&f, 30_000);
        let mut r = reassembly();
        assert_eq!(r.add(2, &ps[0]), Ok(false));
        assert_eq!(
            r.add(2, &ps[2]),
            Err(FragmentError::OutOfOrder {
                offset: 60_000,
                expected: 30_000
            })
        );
        // The rest of the broken frame is refused too, then a fresh frame succeeds.
        assert!(matches!(
            r.add(2, &ps[3]),
            Err(FragmentError::OutOfOrder { .. })
        ));
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(r.add(2, p), Ok(i + 1 == ps.len()));
        }
    }

    #[test]
    fn a_restart_at_offset_zero_abandons_the_partial_frame() {
        let (a, b) = (frame(2, 90_000), frame(2, 50_000));
        let (pa, pb) = (pieces(&a, 30_000), pieces(&b, 30_000));
        let mut r = reassembly();
        assert_eq!(r.add(2, &pa[0]), Ok(false));
        assert_eq!(r.add(2, &pb[0]), Ok(false));
        assert_eq!(r.add(2, &pb[1]), Ok(true));
        assert_eq!(r.take(2), b);
    }

    #[test]
    fn bad_pieces_are_refused_with_what_is_wrong() {
        let mut r = reassembly();
        assert_eq!(
            r.add(2, &[1, 2, 3]),
            Err(FragmentError::Short { len_bytes: 3 })
        );
        let mut huge = [0u8; 16];
        huge[..4].copy_from_slice(&(3u32 << 20).to_le_bytes());
        assert_eq!(
            r.add(2, &huge),
            Err(FragmentError::TooLarge {
                total_len: 3 << 20,
                max_bytes: 2 << 20
            })
        );
        let mut over = [0u8; 20];
        over[..4].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            r.add(2, &over),
            Err(FragmentError::Overrun {
                end: 12,
                total_len: 10
            })
        );
        assert_eq!(r.add(9, &over), Err(FragmentError::UnknownPeer(9)));
        let f = frame(2, 40_000);
        let ps = pieces(&f, 30_000);
        assert_eq!(r.add(2, &ps[0]), Ok(false));
        let mut changed = ps[1].clone();
        changed[..4].copy_from_slice(&50_000u32.to_le_bytes());
        assert_eq!(
            r.add(2, &changed),
            Err(FragmentError::TotalChanged {
                total_len: 50_000,
                expected: f.len()
            })
        );
    }

    #[test]
    fn a_reassembled_frame_is_validated_like_a_received_one() {
        let mut r = reassembly();
        // Claims to come from node 3 but arrived over node 2's connection.
        let forged = frame(3, 40_000);
        let ps = pieces(&forged, 30_000);
        assert_eq!(r.add(2, &ps[0]), Ok(false));
        assert!(matches!(
            r.add(2, &ps[1]),
            Err(FragmentError::Invalid(WireError::WrongSender { .. }))
        ));
        // A flipped payload byte fails the checksum.
        let mut corrupt = frame(2, 40_000);
        corrupt[HEADER_LEN + 35_000] ^= 1;
        let ps = pieces(&corrupt, 30_000);
        assert_eq!(r.add(2, &ps[0]), Ok(false));
        assert!(matches!(
            r.add(2, &ps[1]),
            Err(FragmentError::Invalid(WireError::BadChecksum { .. }))
        ));
    }

    #[test]
    fn reset_forgets_a_partial_frame() {
        let f = frame(2, 40_000);
        let ps = pieces(&f, 30_000);
        let mut r = reassembly();
        assert_eq!(r.add(2, &ps[0]), Ok(false));
        r.reset(2);
        assert!(matches!(
            r.add(2, &ps[1]),
            Err(FragmentError::OutOfOrder { .. })
        ));
    }
}
